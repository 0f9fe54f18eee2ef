//! Batch and transaction Bundles.
//!
//! A transaction is all or nothing in one store transaction. Its entries are processed in the
//! order FHIR requires (DELETE, POST, PUT/PATCH, then GET), new ids are assigned up front so
//! that `urn:uuid:` full URLs and conditional references (`Practitioner?identifier=...`) can be
//! rewritten to real references before anything is written. A batch runs each entry on its own.

use std::collections::HashMap;

use caller::Caller;
use fhir_model::{IssueCode, Outcome};
use serde_json::{Value, json};
use store::{HistoryScope, VersionRecord};

use crate::meta::{is_valid_id, new_id};
use crate::read::HistoryRequest;
use crate::render::BundleWriter;
use crate::searches::SearchRequest;
use crate::write::{Prepared, ReadAhead};
use crate::{InTransaction, Repository, RepositoryError, WriteStatus, WriteTx, Written};
use fhir_model::clock;

/// What the client asked of the response (`Prefer: return=`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BundleOptions {
    /// Put each written resource into its response entry.
    pub return_representation: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verb {
    // Declared in processing order.
    Delete,
    Post,
    Put,
    Patch,
    Get,
    Head,
}

/// One entry's request, parsed.
struct Entry {
    index: usize,
    full_url: Option<String>,
    resource: Option<Value>,
    verb: Verb,
    resource_type: String,
    /// `[type]/[id]`'s id.
    id: Option<String>,
    /// `[type]/[id]/_history/[vid]`'s version.
    version: Option<String>,
    /// `[type]?criteria`.
    criteria: Option<Vec<(String, String)>>,
    if_match: Option<i64>,
    if_none_exist: Option<Vec<(String, String)>>,
}

/// What a transaction decided for an entry before writing: the id it will have, or that a
/// conditional create found its resource.
enum Plan {
    Create { id: String },
    Existing(VersionRecord),
    Update { id: String },
    Delete { id: Option<String> },
    Patch { id: String },
    Read,
}

impl Repository {
    /// `POST [base]` with a batch or transaction Bundle: the response Bundle.
    pub fn process_bundle(
        &self,
        ctx: &Caller,
        base: &str,
        bundle: Value,
        options: BundleOptions,
    ) -> Result<Vec<u8>, RepositoryError> {
        if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Err(RepositoryError::invalid_at(
                IssueCode::Invalid,
                "POST to the base takes a batch or transaction Bundle",
                "resourceType",
            ));
        }
        let kind = bundle
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // The entries' resources are validated one by one as they are written; what only the
        // whole Bundle can break (bdl-7, two entries claiming one fullUrl) is checked here.
        let issues = fhir_model::bundle_invariants(&bundle);
        if !issues.is_empty() {
            return Err(RepositoryError::Invalid(issues));
        }
        let entries = parse_entries(self, base, bundle)?;
        match kind.as_str() {
            "transaction" => self.transaction(ctx, base, entries, options, &mut |_| Ok(())),
            "batch" => Ok(self.batch(ctx, base, entries, options)),
            other => Err(RepositoryError::invalid_at(
                IssueCode::Invalid,
                format!("Bundle.type must be batch or transaction, not '{other}'"),
                "Bundle.type",
            )),
        }
    }

    /// A transaction Bundle from a service (the intake's mapped messages), with `first` run
    /// inside the same store transaction before any entry: what the service must commit or
    /// roll back with the Bundle (a message's control id marked as applied). `first` acts as
    /// the service, so its own writes are not refused by the caller's write rules.
    pub fn process_transaction_with(
        &self,
        ctx: &Caller,
        base: &str,
        bundle: Value,
        options: BundleOptions,
        first: &mut dyn FnMut(&mut InTransaction<'_, '_>) -> Result<(), RepositoryError>,
    ) -> Result<Vec<u8>, RepositoryError> {
        if bundle.get("type").and_then(Value::as_str) != Some("transaction") {
            return Err(RepositoryError::invalid_at(
                IssueCode::Invalid,
                "a service's Bundle must be a transaction",
                "Bundle.type",
            ));
        }
        let issues = fhir_model::bundle_invariants(&bundle);
        if !issues.is_empty() {
            return Err(RepositoryError::Invalid(issues));
        }
        let entries = parse_entries(self, base, bundle)?;
        self.transaction(ctx, base, entries, options, first)
    }

    fn transaction(
        &self,
        ctx: &Caller,
        base: &str,
        entries: Vec<Entry>,
        options: BundleOptions,
        first: &mut dyn FnMut(&mut InTransaction<'_, '_>) -> Result<(), RepositoryError>,
    ) -> Result<Vec<u8>, RepositoryError> {
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| (entries[i].verb, i));
        let written = self.with_transaction(ctx, |tx| {
            let by_client = !std::mem::replace(&mut tx.by_service, true);
            first(&mut InTransaction::new(self, tx))?;
            if by_client {
                tx.by_service = false;
            }
            let now = clock::now_micros();
            let mut results: Vec<Option<Written>> = (0..entries.len()).map(|_| None).collect();
            // Deletes first: the conditional creates and updates planned next must see their effect.
            let deletes: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&i| entries[i].verb == Verb::Delete)
                .collect();
            for &i in &deletes {
                let entry = &entries[i];
                let fail = |error: RepositoryError| RepositoryError::TransactionEntry {
                    index: i,
                    error: Box::new(error),
                };
                let result = match plan(self, tx, entry).map_err(fail)? {
                    Plan::Delete { id: Some(id) } => self
                        .delete_in(tx, &entry.resource_type, &id, entry.if_match, now)
                        .map_err(fail)?,
                    _ => Written {
                        status: WriteStatus::NothingToDelete,
                        record: None,
                    },
                };
                results[i] = Some(result);
            }
            let mut plans = Vec::with_capacity(entries.len());
            for entry in &entries {
                plans.push(match entry.verb {
                    Verb::Delete => Plan::Read,
                    _ => plan(self, tx, entry).map_err(|error| {
                        RepositoryError::TransactionEntry {
                            index: entry.index,
                            error: Box::new(error),
                        }
                    })?,
                });
            }
            let aliases = aliases(base, &entries, &plans);
            let mut conditional_cache = HashMap::new();
            let keys = entries
                .iter()
                .zip(&plans)
                .filter_map(|(entry, plan)| match plan {
                    Plan::Create { id } | Plan::Update { id } => {
                        Some((entry.resource_type.as_str(), id.as_str()))
                    }
                    _ => None,
                });
            let mut ahead = ReadAhead::read(tx, keys)?;
            for &i in order.iter().filter(|&&i| entries[i].verb != Verb::Delete) {
                let entry = &entries[i];
                let fail = |error: RepositoryError| RepositoryError::TransactionEntry {
                    index: i,
                    error: Box::new(error),
                };
                let result = match &plans[i] {
                    Plan::Existing(record) => Written {
                        status: WriteStatus::Existing,
                        record: Some(record.clone()),
                    },
                    Plan::Create { id } | Plan::Update { id } => {
                        let mut resource = entry.resource.clone().unwrap_or(Value::Null);
                        rewrite_references(
                            self,
                            &mut |t, c| self.matches_in(tx, t, c),
                            &mut resource,
                            &aliases,
                            &mut conditional_cache,
                        )
                        .map_err(fail)?;
                        let prepared: Prepared = self.prepare(resource, id).map_err(fail)?;
                        self.upsert_read_ahead(tx, &prepared, entry.if_match, now, &mut ahead)
                            .map_err(fail)?
                    }
                    Plan::Patch { id } => {
                        let patch = binary_patch(entry.resource.as_ref()).map_err(fail)?;
                        self.patch_in(tx, &entry.resource_type, id, &patch, entry.if_match, now)
                            .map_err(fail)?
                    }
                    Plan::Delete { .. } | Plan::Read => continue,
                };
                results[i] = Some(result);
            }
            Ok(results)
        })?;
        let mut writer = BundleWriter::new("transaction-response", None, &[]);
        for (entry, result) in entries.iter().zip(written) {
            match result {
                Some(written) => write_response(&mut writer, base, &written, options),
                None => self.read_entry(ctx, base, entry, &mut writer),
            }
        }
        Ok(writer.finish())
    }

    fn batch(
        &self,
        ctx: &Caller,
        base: &str,
        entries: Vec<Entry>,
        options: BundleOptions,
    ) -> Vec<u8> {
        let mut writer = BundleWriter::new("batch-response", None, &[]);
        for entry in &entries {
            let result = match entry.verb {
                Verb::Get | Verb::Head => {
                    self.read_entry(ctx, base, entry, &mut writer);
                    continue;
                }
                Verb::Post => match &entry.resource {
                    Some(resource) => {
                        self.create(ctx, resource.clone(), entry.if_none_exist.as_deref())
                    }
                    None => Err(missing_resource()),
                },
                Verb::Put => match (&entry.resource, &entry.id, &entry.criteria) {
                    (Some(resource), Some(id), _) => self.update(
                        ctx,
                        &entry.resource_type,
                        id,
                        resource.clone(),
                        entry.if_match,
                    ),
                    (Some(resource), None, Some(criteria)) => self.conditional_update(
                        ctx,
                        &entry.resource_type,
                        criteria,
                        resource.clone(),
                        entry.if_match,
                    ),
                    (None, _, _) => Err(missing_resource()),
                    _ => Err(bad_url("PUT needs [type]/[id] or [type]?criteria")),
                },
                Verb::Patch => match (binary_patch(entry.resource.as_ref()), &entry.id) {
                    (Ok(patch), Some(id)) => {
                        self.patch(ctx, &entry.resource_type, id, &patch, entry.if_match)
                    }
                    (Err(error), _) => Err(error),
                    (_, None) => Err(bad_url("PATCH needs [type]/[id]")),
                },
                Verb::Delete => match (&entry.id, &entry.criteria) {
                    (Some(id), _) => self.delete(ctx, &entry.resource_type, id, entry.if_match),
                    (None, Some(criteria)) => {
                        self.conditional_delete(ctx, &entry.resource_type, criteria)
                    }
                    _ => Err(bad_url("DELETE needs [type]/[id] or [type]?criteria")),
                },
            };
            match result {
                Ok(written) => write_response(&mut writer, base, &written, options),
                Err(error) => write_error(&mut writer, &error, &ctx.request_id),
            }
        }
        writer.finish()
    }

    /// A GET entry, answered after the writes: a read, a vread, a history or a search.
    fn read_entry(&self, ctx: &Caller, base: &str, entry: &Entry, writer: &mut BundleWriter) {
        let result = match (&entry.id, &entry.version, &entry.criteria) {
            (Some(id), Some(version), _) if version == "_history" => self
                .history(
                    ctx,
                    base,
                    &HistoryRequest {
                        scope: HistoryScope::Instance(entry.resource_type.clone(), id.clone()),
                        params: entry.criteria.clone().unwrap_or_default(),
                    },
                )
                .map(Some),
            (Some(id), Some(version), _) => self
                .vread(ctx, &entry.resource_type, id, version)
                .map(|record| record.content),
            (Some(id), None, _) => self
                .read(ctx, &entry.resource_type, id)
                .map(|record| record.content),
            (None, _, criteria) => self
                .search(
                    ctx,
                    base,
                    &SearchRequest::of_type(
                        &entry.resource_type,
                        criteria.clone().unwrap_or_default(),
                    ),
                )
                .map(Some),
        };
        match result {
            Ok(content) => writer.entry(
                None,
                content.as_deref(),
                &[("response", json!({"status": "200 OK"}))],
            ),
            Err(error) => write_error(writer, &error, &ctx.request_id),
        }
    }
}

fn missing_resource() -> RepositoryError {
    RepositoryError::invalid(IssueCode::Required, "this entry needs a resource")
}

fn bad_url(message: &str) -> RepositoryError {
    RepositoryError::invalid(IssueCode::Invalid, message.to_owned())
}

/// A Binary holding a JSON Patch (how a Bundle carries PATCH), decoded; or a bare JSON Patch
/// array, which some clients send. The decoded document is read like any body from outside.
fn binary_patch(resource: Option<&Value>) -> Result<Value, RepositoryError> {
    let not_a_patch = || {
        RepositoryError::invalid(
            IssueCode::Invalid,
            "a PATCH entry carries its JSON Patch as a Binary resource",
        )
    };
    let resource = resource.ok_or_else(not_a_patch)?;
    if resource.is_array() {
        return Ok(resource.clone());
    }
    let data = resource
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(not_a_patch)?;
    let bytes = decode_base64(data).ok_or_else(not_a_patch)?;
    fhir_model::json::parse(&bytes).map_err(|error| {
        // No expression: the place is inside the decoded data, which the text names.
        RepositoryError::invalid(
            IssueCode::Structure,
            format!("the JSON Patch in the Binary's data is not valid JSON: {error}"),
        )
    })
}

/// Base64 of either alphabet (FHIR's `base64Binary` is the standard one; clients send the URL
/// one too), padding optional, line breaks ignored.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let text: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = if text.contains(['-', '_']) {
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT)
    } else {
        GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT)
    };
    engine.decode(text).ok()
}

fn parse_entries(
    repository: &Repository,
    base: &str,
    bundle: Value,
) -> Result<Vec<Entry>, RepositoryError> {
    let Value::Object(mut bundle) = bundle else {
        unreachable!("checked to be a Bundle object")
    };
    let entries = match bundle.remove("entry") {
        None => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(_) => {
            return Err(RepositoryError::invalid_at(
                IssueCode::Structure,
                "entry must be an array",
                "Bundle.entry",
            ));
        }
    };
    let mut parsed = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let at = |field: &str| format!("Bundle.entry[{index}]{field}");
        let Value::Object(mut entry) = entry else {
            return Err(RepositoryError::invalid_at(
                IssueCode::Structure,
                "an entry must be an object",
                &at(""),
            ));
        };
        let request = entry.remove("request").unwrap_or(Value::Null);
        let method = request
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let verb = match method {
            "GET" => Verb::Get,
            "HEAD" => Verb::Head,
            "POST" => Verb::Post,
            "PUT" => Verb::Put,
            "PATCH" => Verb::Patch,
            "DELETE" => Verb::Delete,
            _ => {
                return Err(RepositoryError::invalid_at(
                    IssueCode::Required,
                    format!(
                        "entry {index} needs request.method (GET, HEAD, POST, PUT, PATCH or DELETE)"
                    ),
                    &at(".request.method"),
                ));
            }
        };
        let url = request
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let url = url
            .strip_prefix(base)
            .map(|u| u.trim_start_matches('/'))
            .unwrap_or(url);
        let (path, query) = match url.split_once('?') {
            Some((path, query)) => (path, Some(parse_query(query))),
            None => (url, None),
        };
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let Some(resource_type) = segments.first() else {
            return Err(RepositoryError::invalid_at(
                IssueCode::Required,
                format!("entry {index} needs request.url"),
                &at(".request.url"),
            ));
        };
        if !repository.knows_type(resource_type) {
            return Err(RepositoryError::invalid_at(
                IssueCode::NotSupported,
                format!("entry {index}: '{resource_type}' is not a resource type"),
                &at(".request.url"),
            ));
        }
        let id = segments.get(1).map(|s| s.to_string());
        if let Some(id) = &id
            && !is_valid_id(id)
            && id != "_search"
        {
            return Err(RepositoryError::invalid_at(
                IssueCode::Invalid,
                format!("entry {index}: '{id}' is not a valid id"),
                &at(".request.url"),
            ));
        }
        let version = match segments.get(2) {
            Some(&"_history") => Some(
                segments
                    .get(3)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "_history".into()),
            ),
            _ => None,
        };
        let if_match = match request.get("ifMatch").and_then(Value::as_str) {
            Some(tag) => Some(parse_etag(tag).ok_or_else(|| {
                RepositoryError::invalid_at(
                    IssueCode::Invalid,
                    format!("'{tag}' is not an ETag"),
                    &at(".request.ifMatch"),
                )
            })?),
            None => None,
        };
        let if_none_exist = request
            .get("ifNoneExist")
            .and_then(Value::as_str)
            .map(|q| parse_query(q.trim_start_matches('?')));
        let resource = entry.remove("resource");
        if matches!(verb, Verb::Post | Verb::Put)
            && let Some(resource) = &resource
            && resource.get("resourceType").and_then(Value::as_str) != Some(resource_type)
        {
            return Err(RepositoryError::invalid_at(
                IssueCode::Invalid,
                format!(
                    "entry {index}: the resource is not a {resource_type}, as request.url says"
                ),
                &at(".resource.resourceType"),
            ));
        }
        parsed.push(Entry {
            index,
            full_url: entry
                .get("fullUrl")
                .and_then(Value::as_str)
                .map(str::to_owned),
            resource,
            verb,
            resource_type: resource_type.to_string(),
            id: id.filter(|id| id != "_search"),
            version,
            criteria: query,
            if_match,
            if_none_exist,
        });
    }
    Ok(parsed)
}

/// `W/"3"` or `"3"` or `3`.
pub fn parse_etag(tag: &str) -> Option<i64> {
    tag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// Splits and decodes a query string (`application/x-www-form-urlencoded`: `+` is a space).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// Decides, inside the transaction, the id an entry will have: a new id for a create, the
/// existing resource for a conditional create that matches, the match of a conditional update
/// or delete.
fn plan(
    repository: &Repository,
    tx: &mut WriteTx<'_>,
    entry: &Entry,
) -> Result<Plan, RepositoryError> {
    let one_match = |found: Vec<VersionRecord>| -> Result<Option<VersionRecord>, RepositoryError> {
        match found.len() {
            0 | 1 => Ok(found.into_iter().next()),
            _ => Err(RepositoryError::PreconditionFailed(
                "the criteria match more than one resource".into(),
            )),
        }
    };
    let interaction = match entry.verb {
        Verb::Post => Some(crate::Interaction::Create),
        Verb::Put | Verb::Patch => Some(crate::Interaction::Update),
        Verb::Delete => Some(crate::Interaction::Delete),
        // Reads are answered after the writes, through the ordinary read entry points.
        Verb::Get | Verb::Head => None,
    };
    if let Some(interaction) = interaction {
        repository.permit(tx.caller(), interaction, &entry.resource_type)?;
    }
    Ok(match entry.verb {
        Verb::Post => {
            if entry.resource.is_none() {
                return Err(missing_resource());
            }
            match &entry.if_none_exist {
                Some(criteria) => {
                    match one_match(repository.matches_in(tx, &entry.resource_type, criteria)?)? {
                        Some(existing) => Plan::Existing(existing),
                        None => Plan::Create { id: new_id() },
                    }
                }
                None => Plan::Create { id: new_id() },
            }
        }
        Verb::Put => {
            let Some(resource) = &entry.resource else {
                return Err(missing_resource());
            };
            match (&entry.id, &entry.criteria) {
                (Some(id), _) => {
                    if resource.get("id").and_then(Value::as_str) != Some(id) {
                        return Err(RepositoryError::invalid_at(
                            IssueCode::Invalid,
                            format!("the resource's id is not '{id}', as request.url says"),
                            "id",
                        ));
                    }
                    Plan::Update { id: id.clone() }
                }
                (None, Some(criteria)) => {
                    match one_match(repository.matches_in(tx, &entry.resource_type, criteria)?)? {
                        Some(found) => Plan::Update { id: found.id },
                        None => Plan::Update {
                            id: resource
                                .get("id")
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                                .unwrap_or_else(new_id),
                        },
                    }
                }
                (None, None) => return Err(bad_url("PUT needs [type]/[id] or [type]?criteria")),
            }
        }
        Verb::Patch => match &entry.id {
            Some(id) => Plan::Patch { id: id.clone() },
            None => return Err(bad_url("PATCH needs [type]/[id]")),
        },
        Verb::Delete => match (&entry.id, &entry.criteria) {
            (Some(id), _) => Plan::Delete {
                id: Some(id.clone()),
            },
            (None, Some(criteria)) => Plan::Delete {
                id: one_match(repository.matches_in(tx, &entry.resource_type, criteria)?)?
                    .map(|r| r.id),
            },
            (None, None) => return Err(bad_url("DELETE needs [type]/[id] or [type]?criteria")),
        },
        Verb::Get | Verb::Head => Plan::Read,
    })
}

/// Every name an entry's resource goes by in the bundle (its fullUrl) mapped to its reference.
fn aliases(base: &str, entries: &[Entry], plans: &[Plan]) -> HashMap<String, String> {
    let mut aliases = HashMap::new();
    for (entry, plan) in entries.iter().zip(plans) {
        let id = match plan {
            Plan::Create { id } | Plan::Update { id } | Plan::Patch { id } => id.clone(),
            Plan::Existing(record) => record.id.clone(),
            Plan::Delete { .. } | Plan::Read => continue,
        };
        let reference = format!("{}/{id}", entry.resource_type);
        if let Some(full_url) = &entry.full_url {
            aliases.insert(full_url.clone(), reference.clone());
        }
        // An absolute reference to this server names the same resource.
        aliases.insert(format!("{base}/{reference}"), reference);
    }
    aliases
}

/// Finds the resources of a type that match search criteria: inside a transaction for REST
/// transactions, by a plain read for imports.
pub(crate) type Lookup<'a> =
    dyn FnMut(&str, &[(String, String)]) -> Result<Vec<VersionRecord>, RepositoryError> + 'a;

/// Rewrites the references of a resource: bundle-local names become `Type/id`, and
/// conditional references (`Type?criteria`) become the one resource they match.
pub(crate) fn rewrite_references(
    repository: &Repository,
    lookup: &mut Lookup<'_>,
    value: &mut Value,
    aliases: &HashMap<String, String>,
    cache: &mut HashMap<String, String>,
) -> Result<(), RepositoryError> {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "reference"
                    && let Value::String(reference) = child
                {
                    if let Some(resolved) =
                        resolve_reference(repository, lookup, reference, aliases, cache)?
                    {
                        *reference = resolved;
                    }
                } else {
                    rewrite_references(repository, lookup, child, aliases, cache)?;
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            for item in items {
                rewrite_references(repository, lookup, item, aliases, cache)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn resolve_reference(
    repository: &Repository,
    lookup: &mut Lookup<'_>,
    reference: &str,
    aliases: &HashMap<String, String>,
    cache: &mut HashMap<String, String>,
) -> Result<Option<String>, RepositoryError> {
    if let Some(resolved) = aliases.get(reference) {
        return Ok(Some(resolved.clone()));
    }
    if reference.starts_with("urn:uuid:") || reference.starts_with("urn:oid:") {
        return Err(RepositoryError::invalid(
            IssueCode::NotFound,
            format!("the reference '{reference}' names no entry of the transaction"),
        ));
    }
    let Some((resource_type, query)) = reference.split_once('?') else {
        return Ok(None);
    };
    if let Some(resolved) = cache.get(reference) {
        return Ok(Some(resolved.clone()));
    }
    if !repository.knows_type(resource_type) {
        return Err(RepositoryError::invalid(
            IssueCode::Invalid,
            format!("the conditional reference '{reference}' names no resource type"),
        ));
    }
    let found = lookup(resource_type, &parse_query(query))?;
    match found.as_slice() {
        [only] => {
            let resolved = format!("{resource_type}/{}", only.id);
            cache.insert(reference.to_owned(), resolved.clone());
            Ok(Some(resolved))
        }
        [] => Err(RepositoryError::PreconditionFailed(format!(
            "the conditional reference '{reference}' matches no resource"
        ))),
        _ => Err(RepositoryError::PreconditionFailed(format!(
            "the conditional reference '{reference}' matches more than one resource"
        ))),
    }
}

fn write_response(
    writer: &mut BundleWriter,
    base: &str,
    written: &Written,
    options: BundleOptions,
) {
    let status = match written.status {
        WriteStatus::Created => "201 Created",
        WriteStatus::Updated | WriteStatus::Unchanged | WriteStatus::Existing => "200 OK",
        WriteStatus::Deleted | WriteStatus::NothingToDelete => "204 No Content",
    };
    let mut response = json!({"status": status});
    let mut full_url = None;
    if let Some(record) = &written.record {
        response["etag"] = json!(format!("W/\"{}\"", record.version));
        response["lastModified"] = json!(clock::format_instant(record.last_updated));
        if !record.is_deleted() {
            response["location"] = json!(format!(
                "{}/{}/_history/{}",
                record.resource_type, record.id, record.version
            ));
            full_url = Some(format!("{base}/{}/{}", record.resource_type, record.id));
        }
    }
    let resource = written
        .record
        .as_ref()
        .filter(|_| options.return_representation)
        .and_then(|r| r.content.as_deref());
    writer.entry(full_url.as_deref(), resource, &[("response", response)]);
}

fn write_error(writer: &mut BundleWriter, error: &RepositoryError, request_id: &str) {
    let status = error.http_status();
    let reason = match status {
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        422 => "Unprocessable Entity",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let outcome = fhir_model::Issue::operation_outcome(&error.issues(request_id));
    writer.entry(
        None,
        None,
        &[(
            "response",
            json!({"status": format!("{status} {reason}"), "outcome": outcome}),
        )],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            parse_query("identifier=http://x.org%7C123&name=a+b"),
            [
                ("identifier".to_owned(), "http://x.org|123".to_owned()),
                ("name".to_owned(), "a b".to_owned())
            ]
        );
        assert_eq!(
            parse_query("bad=%zz&x=%"),
            [
                ("bad".to_owned(), "%zz".to_owned()),
                ("x".to_owned(), "%".to_owned())
            ]
        );
    }

    #[test]
    fn etags_parse_in_their_usual_forms() {
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"3\""), Some(3));
        assert_eq!(parse_etag("3"), Some(3));
        assert_eq!(parse_etag("W/\"x\""), None);
    }

    #[test]
    fn base64_patches_decode() {
        assert_eq!(
            decode_base64("W3sib3AiOiJ0ZXN0In1d").unwrap(),
            br#"[{"op":"test"}]"#
        );
    }
}
