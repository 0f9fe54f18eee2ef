//! Writes: create, update, patch and delete, plain and conditional, each in one store
//! transaction. Validation and index extraction happen before the transaction starts, so the
//! database holds its write lock only for the database work.

use fhir_model::clock;
use std::collections::{HashMap, HashSet};

use caller::Caller;
use fhir_model::{Issue, IssueCode};
use search::IndexEntries;
use serde_json::Value;
use store::{Method, VersionRecord, VersionWrite};

use crate::stored::gone;
use crate::{Interaction, ResourceFacts, Stewardship, WriteFacts, WriteTx};

use crate::meta::{Body, is_valid_id, new_id};
use crate::{Repository, RepositoryError, WriteStatus, Written, into_object, resource_type_of};

/// A resource checked and indexed, ready to be written as some version.
pub(crate) struct Prepared {
    pub resource_type: String,
    pub body: Body,
    pub index: IndexEntries,
    /// What the access policy read from the resource.
    pub facts: ResourceFacts,
}

impl Prepared {
    pub fn id(&self) -> &str {
        self.body.id()
    }
}

impl Repository {
    /// Validates a resource and extracts its index entries, for the id it will be stored under.
    pub(crate) fn prepare(&self, resource: Value, id: &str) -> Result<Prepared, RepositoryError> {
        let resource_type = resource_type_of(self.model, &resource)?;
        let issues = self.validate(&resource);
        if issues.iter().any(Issue::is_error) {
            let errors: Vec<Issue> = issues.into_iter().filter(Issue::is_error).collect();
            // A resource that breaks only this server's rules (the repetition limits) is
            // well-formed FHIR: 422, as FHIR prescribes for business rules; otherwise 400.
            if errors.iter().all(|e| e.code == IssueCode::BusinessRule) {
                return Err(RepositoryError::Unprocessable(errors));
            }
            return Err(RepositoryError::Invalid(errors));
        }
        let indexer = self.indexer();
        if resource_type == "SearchParameter"
            && resource.get("status").and_then(Value::as_str) != Some("retired")
        {
            crate::custom::definition_of(&resource, indexer.registry())
                .map_err(|issue| RepositoryError::Unprocessable(vec![issue]))?;
        }
        let index = indexer
            .extract(&resource_type, id, &resource)
            .map_err(|e| {
                RepositoryError::Unprocessable(vec![Issue::error(
                    IssueCode::Processing,
                    e.to_string(),
                )])
            })?;
        let facts = self.access_policy().facts(&resource_type, &resource);
        Ok(Prepared {
            resource_type,
            body: Body::new(into_object(resource), id),
            index,
            facts,
        })
    }

    /// Asks the access policy whether the transaction's caller may write `prepared` over
    /// `previous`, and who holds it if so.
    pub(crate) fn admit(
        &self,
        tx: &WriteTx<'_>,
        prepared: &Prepared,
        previous: Option<&VersionRecord>,
    ) -> Result<Stewardship, RepositoryError> {
        self.access_policy()
            .admit_write(
                tx.caller(),
                &WriteFacts {
                    resource_type: &prepared.resource_type,
                    id: prepared.id(),
                    previous,
                    resource: Some(&prepared.facts),
                    by_service: tx.by_service,
                },
            )
            .map_err(|denied| RepositoryError::Forbidden(denied.0))
    }

    /// Fails with 403 when the access policy does not let `caller` use `interaction` on
    /// `resource_type`.
    pub fn permit(
        &self,
        caller: &Caller,
        interaction: Interaction,
        resource_type: &str,
    ) -> Result<(), RepositoryError> {
        self.access_policy()
            .permits(caller, interaction, resource_type)
            .map_err(|denied| RepositoryError::Forbidden(denied.0))
    }

    /// Writes `prepared` as the version after `previous`.
    pub(crate) fn put_version(
        &self,
        tx: &mut WriteTx<'_>,
        prepared: &Prepared,
        previous: Option<&VersionRecord>,
        last_updated: i64,
    ) -> Result<VersionRecord, RepositoryError> {
        if prepared.resource_type == "SearchParameter" {
            tx.wrote_search_parameters = true;
        }
        let version = previous.map_or(1, |p| p.version + 1);
        let method = if previous.is_some_and(|p| !p.is_deleted()) {
            Method::Update
        } else {
            Method::Create
        };
        let stewardship = self.admit(tx, prepared, previous)?;
        let time = clock::format_instant(last_updated);
        let content = prepared.body.to_bytes(version, &time);
        let row = tx.put(VersionWrite {
            resource_type: &prepared.resource_type,
            id: prepared.id(),
            previous,
            version,
            last_updated,
            method,
            content: Some(&content),
            content_hash: prepared.body.content_hash(),
            custodian: stewardship.custodian.as_deref(),
            sensitivity: stewardship.sensitivity,
            index: &prepared.index,
        })?;
        let record = VersionRecord {
            row,
            resource_type: prepared.resource_type.clone(),
            id: prepared.id().to_owned(),
            version,
            last_updated,
            method,
            content: Some(content),
            content_hash: prepared.body.content_hash(),
            custodian: stewardship.custodian,
            sensitivity: stewardship.sensitivity,
        };
        self.note_for_hooks(tx, &record, previous);
        Ok(record)
    }

    /// Creates or updates `prepared` inside a transaction, checking `If-Match`.
    pub(crate) fn upsert_in(
        &self,
        tx: &mut WriteTx<'_>,
        prepared: &Prepared,
        if_match: Option<i64>,
        last_updated: i64,
    ) -> Result<Written, RepositoryError> {
        let previous = tx.current(&prepared.resource_type, prepared.id())?;
        self.upsert_over(tx, prepared, previous, if_match, last_updated)
    }

    /// [`Self::upsert_in`] with the current version taken from `ahead` when it was read ahead
    /// (and not yet written in this transaction), read from the transaction otherwise.
    pub(crate) fn upsert_read_ahead(
        &self,
        tx: &mut WriteTx<'_>,
        prepared: &Prepared,
        if_match: Option<i64>,
        last_updated: i64,
        ahead: &mut ReadAhead,
    ) -> Result<Written, RepositoryError> {
        match ahead
            .0
            .remove(&(prepared.resource_type.clone(), prepared.id().to_owned()))
        {
            Some(previous) => self.upsert_over(tx, prepared, previous, if_match, last_updated),
            None => self.upsert_in(tx, prepared, if_match, last_updated),
        }
    }

    /// [`Self::upsert_in`] when the caller has already read the resource's current version in
    /// this transaction.
    fn upsert_over(
        &self,
        tx: &mut WriteTx<'_>,
        prepared: &Prepared,
        previous: Option<VersionRecord>,
        if_match: Option<i64>,
        last_updated: i64,
    ) -> Result<Written, RepositoryError> {
        check_if_match(
            if_match,
            previous.as_ref(),
            &prepared.resource_type,
            prepared.id(),
        )?;
        // Refused before "nothing changed" is answered: that answer shows the stored version.
        self.admit(tx, prepared, previous.as_ref())?;
        if let Some(current) = &previous
            && !current.is_deleted()
            && current.content_hash == prepared.body.content_hash()
        {
            return Ok(Written {
                status: WriteStatus::Unchanged,
                record: previous,
            });
        }
        let record = self.put_version(tx, prepared, previous.as_ref(), last_updated)?;
        let status = if previous.as_ref().is_some_and(|p| !p.is_deleted()) {
            WriteStatus::Updated
        } else {
            WriteStatus::Created
        };
        Ok(Written {
            status,
            record: Some(record),
        })
    }

    /// Deletes a resource inside a transaction, checking `If-Match`.
    pub(crate) fn delete_in(
        &self,
        tx: &mut WriteTx<'_>,
        resource_type: &str,
        id: &str,
        if_match: Option<i64>,
        last_updated: i64,
    ) -> Result<Written, RepositoryError> {
        crate::check_id(id)?;
        let previous = tx.current(resource_type, id)?;
        check_if_match(if_match, previous.as_ref(), resource_type, id)?;
        let Some(previous) = previous.filter(|p| !p.is_deleted()) else {
            return Ok(Written {
                status: WriteStatus::NothingToDelete,
                record: None,
            });
        };
        let stewardship = self
            .access_policy()
            .admit_write(
                tx.caller(),
                &WriteFacts {
                    resource_type,
                    id,
                    previous: Some(&previous),
                    resource: None,
                    by_service: tx.by_service,
                },
            )
            .map_err(|denied| RepositoryError::Forbidden(denied.0))?;
        if resource_type == "SearchParameter" {
            tx.wrote_search_parameters = true;
        }
        let version = previous.version + 1;
        let empty = IndexEntries::default();
        let row = tx.put(VersionWrite {
            resource_type,
            id,
            previous: Some(&previous),
            version,
            last_updated,
            method: Method::Delete,
            content: None,
            content_hash: 0,
            custodian: stewardship.custodian.as_deref(),
            sensitivity: stewardship.sensitivity,
            index: &empty,
        })?;
        let record = VersionRecord {
            row,
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            version,
            last_updated,
            method: Method::Delete,
            content: None,
            content_hash: 0,
            custodian: stewardship.custodian,
            sensitivity: stewardship.sensitivity,
        };
        self.note_for_hooks(tx, &record, Some(&previous));
        Ok(Written {
            status: WriteStatus::Deleted,
            record: Some(record),
        })
    }

    /// The resources of `resource_type` a conditional operation's criteria match (see
    /// [`crate::Reader::conditional_matches`]).
    pub(crate) fn matches_in(
        &self,
        tx: &mut WriteTx<'_>,
        resource_type: &str,
        criteria: &[(String, String)],
    ) -> Result<Vec<VersionRecord>, RepositoryError> {
        let caller = tx.caller();
        self.reader(caller)
            .conditional_matches(tx, resource_type, criteria)
    }

    /// `POST [type]`: creates a resource with a new id; with `If-None-Exist`, only if no
    /// resource matches the criteria.
    pub fn create(
        &self,
        ctx: &Caller,
        resource: Value,
        if_none_exist: Option<&[(String, String)]>,
    ) -> Result<Written, RepositoryError> {
        // The server ignores a client id on create.
        let prepared = self.prepare(resource, &new_id())?;
        self.permit(ctx, Interaction::Create, &prepared.resource_type)?;
        self.with_transaction(ctx, |tx| {
            if let Some(criteria) = if_none_exist {
                let mut found = self.matches_in(tx, &prepared.resource_type, criteria)?;
                match found.len() {
                    0 => {}
                    1 => {
                        return Ok(Written {
                            status: WriteStatus::Existing,
                            record: found.pop(),
                        });
                    }
                    _ => {
                        return Err(RepositoryError::PreconditionFailed(
                            "If-None-Exist matched more than one resource".into(),
                        ));
                    }
                }
            }
            let record = self.put_version(tx, &prepared, None, clock::now_micros())?;
            Ok(Written {
                status: WriteStatus::Created,
                record: Some(record),
            })
        })
    }

    /// `PUT [type]/[id]`: updates, or creates with the client's id.
    pub fn update(
        &self,
        ctx: &Caller,
        resource_type: &str,
        id: &str,
        resource: Value,
        if_match: Option<i64>,
    ) -> Result<Written, RepositoryError> {
        self.check_type(resource_type)?;
        self.permit(ctx, Interaction::Update, resource_type)?;
        check_body_matches_url(&resource, resource_type, Some(id))?;
        let prepared = self.prepare(resource, id)?;
        self.with_transaction(ctx, |tx| {
            self.upsert_in(tx, &prepared, if_match, clock::now_micros())
        })
    }

    /// `PUT [type]?criteria`: updates the one match, or creates when there is none.
    pub fn conditional_update(
        &self,
        ctx: &Caller,
        resource_type: &str,
        criteria: &[(String, String)],
        resource: Value,
        if_match: Option<i64>,
    ) -> Result<Written, RepositoryError> {
        self.check_type(resource_type)?;
        self.permit(ctx, Interaction::Update, resource_type)?;
        check_body_matches_url(&resource, resource_type, None)?;
        let body_id = resource
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut prepared_for: Option<(String, Prepared)> = None;
        let resource = &resource;
        self.with_transaction(ctx, |tx| {
            let found = self.matches_in(tx, resource_type, criteria)?;
            let id = match (found.as_slice(), &body_id) {
                ([], Some(id)) => id.clone(),
                ([], None) => new_id(),
                ([only], Some(id)) if only.id != *id => {
                    return Err(RepositoryError::invalid_at(
                        IssueCode::Invalid,
                        format!("the resource's id '{id}' is not the id of the resource the criteria match"),
                        "id",
                    ));
                }
                ([only], _) => only.id.clone(),
                _ => {
                    return Err(RepositoryError::PreconditionFailed(
                        "the criteria match more than one resource".into(),
                    ));
                }
            };
            // Prepare once per id: a retried transaction usually lands on the same one.
            if prepared_for.as_ref().is_none_or(|(prepared_id, _)| *prepared_id != id) {
                prepared_for = Some((id.clone(), self.prepare(resource.clone(), &id)?));
            }
            let (_, prepared) = prepared_for.as_ref().expect("prepared above");
            self.upsert_in(tx, prepared, if_match, clock::now_micros())
        })
    }

    /// `PATCH [type]/[id]` with a JSON Patch document.
    pub fn patch(
        &self,
        ctx: &Caller,
        resource_type: &str,
        id: &str,
        patch: &Value,
        if_match: Option<i64>,
    ) -> Result<Written, RepositoryError> {
        self.check_resource(resource_type, id)?;
        self.permit(ctx, Interaction::Update, resource_type)?;
        self.with_transaction(ctx, |tx| {
            self.patch_in(tx, resource_type, id, patch, if_match, clock::now_micros())
        })
    }

    /// `patch` inside an open transaction (also for a transaction Bundle's PATCH entries).
    pub(crate) fn patch_in(
        &self,
        tx: &mut WriteTx<'_>,
        resource_type: &str,
        id: &str,
        patch: &Value,
        if_match: Option<i64>,
        now: i64,
    ) -> Result<Written, RepositoryError> {
        let operations: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
            RepositoryError::invalid(
                IssueCode::Invalid,
                format!("the body is not a JSON Patch document: {e}"),
            )
        })?;
        let current = match tx.current(resource_type, id)? {
            None => {
                return Err(RepositoryError::NotFound(format!(
                    "{resource_type}/{id} does not exist"
                )));
            }
            Some(c) if c.is_deleted() => return Err(gone(&c)),
            Some(c) => c,
        };
        check_if_match(if_match, Some(&current), resource_type, id)?;
        let mut resource = crate::stored::parse_stored(&current)?;
        json_patch::patch(&mut resource, &operations).map_err(|e| {
            RepositoryError::Unprocessable(vec![Issue::error(
                IssueCode::Processing,
                format!("the patch cannot be applied: {e}"),
            )])
        })?;
        // What the patch made is judged as the result of the request: 422, not 400.
        let unprocessable = |e| match e {
            RepositoryError::Invalid(issues) => RepositoryError::Unprocessable(issues),
            other => other,
        };
        check_body_matches_url(&resource, resource_type, Some(id)).map_err(unprocessable)?;
        let prepared = self.prepare(resource, id).map_err(unprocessable)?;
        self.upsert_in(tx, &prepared, None, now)
    }

    /// `DELETE [type]/[id]`.
    pub fn delete(
        &self,
        ctx: &Caller,
        resource_type: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<Written, RepositoryError> {
        self.check_resource(resource_type, id)?;
        self.permit(ctx, Interaction::Delete, resource_type)?;
        self.with_transaction(ctx, |tx| {
            self.delete_in(tx, resource_type, id, if_match, clock::now_micros())
        })
    }

    /// `DELETE [type]?criteria`: deletes the one match (412 when several match).
    pub fn conditional_delete(
        &self,
        ctx: &Caller,
        resource_type: &str,
        criteria: &[(String, String)],
    ) -> Result<Written, RepositoryError> {
        self.check_type(resource_type)?;
        self.permit(ctx, Interaction::Delete, resource_type)?;
        self.with_transaction(ctx, |tx| {
            let found = self.matches_in(tx, resource_type, criteria)?;
            match found.as_slice() {
                [] => Ok(Written {
                    status: WriteStatus::NothingToDelete,
                    record: None,
                }),
                [only] => self.delete_in(tx, resource_type, &only.id, None, clock::now_micros()),
                _ => Err(RepositoryError::PreconditionFailed(
                    "the criteria match more than one resource".into(),
                )),
            }
        })
    }
}

fn check_if_match(
    if_match: Option<i64>,
    current: Option<&VersionRecord>,
    resource_type: &str,
    id: &str,
) -> Result<(), RepositoryError> {
    let Some(expected) = if_match else {
        return Ok(());
    };
    match current {
        Some(c) if c.version == expected && !c.is_deleted() => Ok(()),
        Some(c) => Err(RepositoryError::PreconditionFailed(format!(
            "If-Match names version {expected} of {resource_type}/{id}, but the current version is {}{}",
            c.version,
            if c.is_deleted() { " (deleted)" } else { "" }
        ))),
        None => Err(RepositoryError::PreconditionFailed(format!(
            "If-Match names version {expected} of {resource_type}/{id}, which does not exist"
        ))),
    }
}

/// The body of an update must say the type of the URL, and the id of the URL when there is one.
fn check_body_matches_url(
    resource: &Value,
    resource_type: &str,
    url_id: Option<&str>,
) -> Result<(), RepositoryError> {
    if let Some(id) = url_id
        && !is_valid_id(id)
    {
        return Err(RepositoryError::invalid(
            IssueCode::Invalid,
            format!("'{id}' is not a valid id (1 to 64 of A-Z, a-z, 0-9, '-' and '.')"),
        ));
    }
    match resource.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == resource_type => {}
        Some(t) => {
            return Err(RepositoryError::invalid_at(
                IssueCode::Invalid,
                format!("the body is a {t}, but the URL is for {resource_type}"),
                "resourceType",
            ));
        }
        None => {
            return Err(RepositoryError::invalid(
                IssueCode::Required,
                "the resource has no resourceType",
            ));
        }
    }
    let body_id = resource.get("id");
    match (url_id, body_id) {
        (Some(url_id), Some(Value::String(body_id))) if body_id == url_id => Ok(()),
        (Some(url_id), Some(Value::String(body_id))) => Err(RepositoryError::invalid_at(
            IssueCode::Invalid,
            format!("the body's id '{body_id}' is not the URL's id '{url_id}'"),
            &format!("{resource_type}.id"),
        )),
        (Some(_), None) => Err(RepositoryError::invalid_at(
            IssueCode::Required,
            "an update must carry the resource's id in the body",
            &format!("{resource_type}.id"),
        )),
        (_, Some(Value::String(body_id))) if !is_valid_id(body_id) => {
            Err(RepositoryError::invalid_at(
                IssueCode::Invalid,
                format!("'{body_id}' is not a valid id"),
                &format!("{resource_type}.id"),
            ))
        }
        (_, Some(Value::String(_))) | (None, None) => Ok(()),
        (_, Some(_)) => Err(RepositoryError::invalid_at(
            IssueCode::Structure,
            "id must be a string",
            &format!("{resource_type}.id"),
        )),
    }
}

/// The current versions of the resources a batch of writes (an import batch, a transaction
/// Bundle) is about to write, read in one call. A store that buffers writes (PostgreSQL) can
/// then send the batch's writes together instead of flushing before each resource's own
/// lookup. A version read ahead serves the first write of its resource only (see
/// [`Repository::upsert_read_ahead`]); later writes of it read what the earlier one wrote.
#[derive(Default)]
pub(crate) struct ReadAhead(HashMap<(String, String), Option<VersionRecord>>);

impl ReadAhead {
    pub(crate) fn read<'a>(
        tx: &mut WriteTx<'_>,
        keys: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ReadAhead, RepositoryError> {
        let mut seen = HashSet::new();
        let keys: Vec<(&str, &str)> = keys.into_iter().filter(|key| seen.insert(*key)).collect();
        let records = tx.current_many(&keys)?;
        Ok(ReadAhead(
            keys.into_iter()
                .map(|(t, id)| (t.to_owned(), id.to_owned()))
                .zip(records)
                .collect(),
        ))
    }
}
