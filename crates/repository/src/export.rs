//! Bulk export (FHIR Bulk Data Access 2.0): every resource in scope written as NDJSON, one file
//! per type, straight from the stored bytes, into blob storage. It runs as a durable job
//! ([`ExportJob`], kind `bulk-export`), so an export outlives the process that started it; this
//! module knows nothing of HTTP.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use blob::{BlobKey, BlobStore};
use jobs::{JobContext, JobError, JobHandler};

use caller::Caller;
use fhir_model::{IssueCode, Outcome};
use search::query::{Filter, SearchQuery};
use search::{Handling, SearchTarget, parse_search, patient_compartment};
use serde_json::{Value, json};
use store::{ScanQuery, VersionRecord};

use crate::bundle::parse_query;
use crate::{Repository, RepositoryError};
use fhir_model::clock;

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportLevel {
    /// Everything (`[base]/$export`).
    System,
    /// Everything in any patient's compartment (`[base]/Patient/$export`).
    Patient,
    /// Everything in the compartments of a Group's member patients (`[base]/Group/[id]/$export`).
    Group(String),
}

/// An export request, checked.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub level: ExportLevel,
    /// Only these types (`_type`); every type in scope when empty.
    pub types: Vec<String>,
    /// Only resources changed since (`_since`, microseconds).
    pub since: Option<i64>,
    /// Per type, search criteria a resource must match one of (`_typeFilter`).
    pub type_filters: BTreeMap<String, Vec<Vec<(String, String)>>>,
}

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    pub resource_type: String,
    /// Where the file is in blob storage.
    pub key: BlobKey,
    pub count: u64,
}

/// Why an export stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the export was cancelled")]
    Cancelled,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the export: {0}")]
    Blob(#[from] blob::BlobError),
}

const PAGE: usize = 1000;

impl ExportRequest {
    /// Reads `_type`, `_since`, `_typeFilter` and `_outputFormat` (which must be NDJSON).
    pub fn parse(
        repository: &Repository,
        level: ExportLevel,
        params: &[(String, String)],
    ) -> Result<ExportRequest, RepositoryError> {
        let bad = |name: &str, message: String| {
            RepositoryError::BadSearch(search::SearchError {
                param: name.to_owned(),
                message,
            })
        };
        let mut request = ExportRequest {
            level,
            types: Vec::new(),
            since: None,
            type_filters: BTreeMap::new(),
        };
        for (name, value) in params {
            match name.as_str() {
                "_outputFormat" => {
                    if !matches!(
                        value.as_str(),
                        "application/fhir+ndjson" | "application/ndjson" | "ndjson"
                    ) {
                        return Err(bad(
                            name,
                            format!("'{value}' is not supported: exports are NDJSON"),
                        ));
                    }
                }
                "_type" => {
                    for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        if !repository.knows_type(t) {
                            return Err(bad(name, format!("'{t}' is not a resource type")));
                        }
                        request.types.push(t.to_owned());
                    }
                }
                "_since" => {
                    request.since = Some(
                        clock::parse_instant(value)
                            .ok_or_else(|| bad(name, format!("'{value}' is not an instant")))?,
                    );
                }
                "_typeFilter" => {
                    for filter in value.split(',').filter(|f| !f.is_empty()) {
                        let Some((resource_type, query)) = filter.split_once('?') else {
                            return Err(bad(name, format!("'{filter}' is not [type]?[criteria]")));
                        };
                        if !repository.knows_type(resource_type) {
                            return Err(bad(
                                name,
                                format!("'{resource_type}' is not a resource type"),
                            ));
                        }
                        let criteria = parse_query(query);
                        // Check the criteria now, so a bad filter fails the kick-off, not the job.
                        parse_search(
                            repository.indexer().registry(),
                            None,
                            SearchTarget::Type(resource_type),
                            &criteria,
                            Handling::Strict,
                        )?;
                        request
                            .type_filters
                            .entry(resource_type.to_owned())
                            .or_default()
                            .push(criteria);
                    }
                }
                _ => {
                    return Err(bad(name, "is not a parameter of $export".to_owned()));
                }
            }
        }
        Ok(request)
    }
}

impl Repository {
    /// Writes the export into blob storage under `prefix` (one `[Type].ndjson` per type that
    /// has resources) and answers the files. `written` counts resources as they go; the export
    /// stops early, with [`ExportError::Cancelled`], once `stop` says so.
    pub fn export(
        &self,
        ctx: &Caller,
        request: &ExportRequest,
        blobs: &dyn BlobStore,
        prefix: &BlobKey,
        written: &AtomicU64,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<ExportFile>, ExportError> {
        let model = self.model();
        let in_scope = |t: &str| match request.level {
            ExportLevel::System => true,
            ExportLevel::Patient | ExportLevel::Group(_) => {
                t == "Patient" || !model.compartment_params("Patient", t).is_empty()
            }
        };
        let types: Vec<String> = if request.types.is_empty() {
            model
                .resource_types()
                .iter()
                .map(|t| t.to_string())
                .filter(|t| in_scope(t))
                .collect()
        } else {
            request
                .types
                .iter()
                .filter(|t| in_scope(t))
                .cloned()
                .collect()
        };
        let members = match &request.level {
            ExportLevel::Group(id) => Some(self.group_members(ctx, id)?),
            _ => None,
        };
        let mut files = Vec::new();
        for resource_type in &types {
            let key = prefix.join(&format!("{resource_type}.ndjson"))?;
            let mut out = blobs.create(&key)?;
            let mut count = 0u64;
            let mut write = |record: &VersionRecord| -> Result<(), ExportError> {
                if stop() {
                    return Err(ExportError::Cancelled);
                }
                if let Some(content) = &record.content {
                    out.write_all(content)?;
                    out.write_all(b"\n")?;
                    count += 1;
                    written.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            };
            match (&members, request.type_filters.get(resource_type)) {
                (None, None) => self.export_scan(ctx, request, resource_type, &mut write)?,
                (members, filters) => self.export_search(
                    ctx,
                    request,
                    resource_type,
                    members.as_deref(),
                    filters,
                    &mut write,
                )?,
            }
            // A type without resources has no file: its writer is dropped unfinished.
            if count > 0 {
                out.finish()?;
                files.push(ExportFile {
                    resource_type: resource_type.clone(),
                    key,
                    count,
                });
            }
        }
        Ok(files)
    }

    /// Every current resource of a type, in row order, keeping those in the level's scope.
    fn export_scan(
        &self,
        ctx: &Caller,
        request: &ExportRequest,
        resource_type: &str,
        write: &mut dyn FnMut(&VersionRecord) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        let mut after_row = 0;
        loop {
            let batch = self.reader(ctx).scan(&ScanQuery {
                types: vec![resource_type.to_owned()],
                since: request.since,
                after_row,
                limit: PAGE,
                // The reader states what its caller may see.
                visibility: Default::default(),
            })?;
            let Some(last) = batch.last() else {
                return Ok(());
            };
            after_row = last.row;
            for record in &batch {
                if request.level == ExportLevel::Patient
                    && !self.in_some_patient_compartment(record)?
                {
                    continue;
                }
                write(record)?;
            }
        }
    }

    /// A resource belongs to the Patient-level export when it is a Patient or points at one
    /// through its type's compartment parameters.
    fn in_some_patient_compartment(&self, record: &VersionRecord) -> Result<bool, RepositoryError> {
        if record.resource_type == "Patient" {
            return Ok(true);
        }
        let resource = crate::stored::parse_stored(record)?;
        let entries = self
            .indexer()
            .extract(&record.resource_type, &record.id, &resource)
            .map_err(|e| {
                RepositoryError::Unprocessable(vec![fhir_model::Issue::error(
                    IssueCode::Processing,
                    e.to_string(),
                )])
            })?;
        Ok(entries.patient_key != search::PatientKey::NONE)
    }

    /// Resources of a type found by search: the Group's patients' compartments, and/or the
    /// type's `_typeFilter` criteria; each resource once.
    fn export_search(
        &self,
        ctx: &Caller,
        request: &ExportRequest,
        resource_type: &str,
        members: Option<&[String]>,
        filters: Option<&Vec<Vec<(String, String)>>>,
        write: &mut dyn FnMut(&VersionRecord) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        let indexer = self.indexer();
        let criteria_sets: Vec<Vec<(String, String)>> =
            filters.cloned().unwrap_or_else(|| vec![Vec::new()]);
        let scopes: Vec<Option<&String>> = match members {
            Some(members) => members.iter().map(Some).collect(),
            None => vec![None],
        };
        let mut seen = HashSet::new();
        for criteria in &criteria_sets {
            for scope in &scopes {
                let parsed = parse_search(
                    indexer.registry(),
                    None,
                    SearchTarget::Type(resource_type),
                    criteria,
                    Handling::Strict,
                )
                .map_err(RepositoryError::from)?;
                let mut query: SearchQuery = parsed.query;
                query.count = PAGE;
                query.include.clear();
                query.revinclude.clear();
                if let Some(patient) = scope {
                    query.filters.push(patient_compartment(patient));
                }
                if let Some(since) = request.since {
                    query
                        .filters
                        .push(Filter::LastUpdated(search::query::RangePredicate {
                            any_of: vec![vec![(
                                search::query::RangeColumn::Low,
                                search::query::Comparison::Ge,
                                search::query::Bound::Integer(since),
                            )]],
                        }));
                }
                loop {
                    let page = self.reader(ctx).page(&query)?;
                    for record in &page.matches {
                        if seen.insert(record.row) {
                            write(record)?;
                        }
                    }
                    match page.next {
                        Some(cursor) => query.cursor = Some(cursor),
                        None => break,
                    }
                }
            }
        }
        Ok(())
    }

    /// The ids of the patients a Group lists as members.
    fn group_members(&self, ctx: &Caller, id: &str) -> Result<Vec<String>, RepositoryError> {
        let group = self.read(ctx, "Group", id)?;
        let group: Value = crate::stored::parse_stored(&group)?;
        Ok(group
            .get("member")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|m| m.get("inactive").and_then(Value::as_bool) != Some(true))
            .filter_map(|m| {
                m.pointer("/entity/reference")?
                    .as_str()?
                    .strip_prefix("Patient/")
                    .map(str::to_owned)
            })
            .collect())
    }
}

/// The job kind exports run as.
pub const EXPORT_JOB: &str = "bulk-export";

/// Where an export job's files live in blob storage.
pub fn export_prefix(job_id: &str) -> Result<BlobKey, blob::BlobError> {
    BlobKey::new(format!("exports/{job_id}"))
}

impl ExportRequest {
    /// The request as a job's parameters (JSON), with what the manifest must say of it and the
    /// caller the export runs for.
    pub fn to_job_params(
        &self,
        request_url: &str,
        transaction_time: &str,
        on_behalf_of: &Caller,
    ) -> String {
        let level = match &self.level {
            ExportLevel::System => json!({"kind": "system"}),
            ExportLevel::Patient => json!({"kind": "patient"}),
            ExportLevel::Group(id) => json!({"kind": "group", "id": id}),
        };
        let filters: serde_json::Map<String, Value> = self
            .type_filters
            .iter()
            .map(|(t, sets)| {
                let sets: Vec<Value> = sets
                    .iter()
                    .map(|criteria| {
                        Value::Array(criteria.iter().map(|(n, v)| json!([n, v])).collect())
                    })
                    .collect();
                (t.clone(), Value::Array(sets))
            })
            .collect();
        json!({
            "level": level,
            "types": self.types,
            "since": self.since,
            "typeFilters": filters,
            "requestUrl": request_url,
            "transactionTime": transaction_time,
            "caller": on_behalf_of.to_json(),
        })
        .to_string()
    }

    /// The request back from a job's parameters, with its request URL, transaction time and
    /// caller.
    pub fn from_job_params(params: &str) -> Option<(ExportRequest, String, String, Caller)> {
        let value: Value = serde_json::from_str(params).ok()?;
        let level = match value.pointer("/level/kind")?.as_str()? {
            "system" => ExportLevel::System,
            "patient" => ExportLevel::Patient,
            "group" => ExportLevel::Group(value.pointer("/level/id")?.as_str()?.to_owned()),
            _ => return None,
        };
        let types = value
            .get("types")?
            .as_array()?
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()?;
        let since = value.get("since").and_then(Value::as_i64);
        let mut type_filters = BTreeMap::new();
        for (t, sets) in value.get("typeFilters")?.as_object()? {
            let mut criteria_sets = Vec::new();
            for set in sets.as_array()? {
                let mut criteria = Vec::new();
                for pair in set.as_array()? {
                    criteria.push((
                        pair.get(0)?.as_str()?.to_owned(),
                        pair.get(1)?.as_str()?.to_owned(),
                    ));
                }
                criteria_sets.push(criteria);
            }
            type_filters.insert(t.clone(), criteria_sets);
        }
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        Some((
            ExportRequest {
                level,
                types,
                since,
                type_filters,
            },
            text("requestUrl")?,
            text("transactionTime")?,
            Caller::from_json(value.get("caller")?)?,
        ))
    }
}

/// The result of a finished export job, as it keeps it (JSON): the manifest's facts and the
/// files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportResult {
    pub request_url: String,
    pub transaction_time: String,
    pub files: Vec<ExportFile>,
}

impl ExportResult {
    pub fn to_json(&self) -> String {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| json!({"type": f.resource_type, "key": f.key.as_str(), "count": f.count}))
            .collect();
        json!({
            "requestUrl": self.request_url,
            "transactionTime": self.transaction_time,
            "files": files,
        })
        .to_string()
    }

    pub fn from_json(text: &str) -> Option<ExportResult> {
        let value: Value = serde_json::from_str(text).ok()?;
        let files = value
            .get("files")?
            .as_array()?
            .iter()
            .map(|f| {
                Some(ExportFile {
                    resource_type: f.get("type")?.as_str()?.to_owned(),
                    key: BlobKey::new(f.get("key")?.as_str()?).ok()?,
                    count: f.get("count")?.as_u64()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(ExportResult {
            request_url: value.get("requestUrl")?.as_str()?.to_owned(),
            transaction_time: value.get("transactionTime")?.as_str()?.to_owned(),
            files,
        })
    }
}

/// Runs export jobs: the export into blob storage under `exports/[job id]/`.
pub struct ExportJob {
    repository: Arc<Repository>,
    blobs: Arc<dyn BlobStore>,
}

impl ExportJob {
    pub fn new(repository: Arc<Repository>, blobs: Arc<dyn BlobStore>) -> ExportJob {
        ExportJob { repository, blobs }
    }
}

impl JobHandler for ExportJob {
    fn kind(&self) -> &'static str {
        EXPORT_JOB
    }

    fn run(&self, context: &dyn JobContext) -> Result<String, JobError> {
        let job = context.job();
        let Some((request, request_url, transaction_time, ctx)) =
            ExportRequest::from_job_params(&job.params)
        else {
            return Err(JobError::Fail(
                "the export job's parameters do not parse".into(),
            ));
        };
        let prefix = export_prefix(&job.id).map_err(|e| JobError::Fail(e.to_string()))?;
        // A retry starts over: what an earlier attempt wrote goes first.
        self.blobs
            .delete_prefix(&prefix)
            .map_err(|e| JobError::Retry(e.to_string()))?;
        let written = AtomicU64::new(0);
        let reported = AtomicU64::new(0);
        let stop = || {
            let now = written.load(Ordering::Relaxed);
            if now >= reported.load(Ordering::Relaxed) + 1000 {
                reported.store(now, Ordering::Relaxed);
                context.progress(json!({"written": now}).to_string());
            }
            context.should_stop()
        };
        match self
            .repository
            .export(&ctx, &request, &*self.blobs, &prefix, &written, &stop)
        {
            Ok(files) => Ok(ExportResult {
                request_url,
                transaction_time,
                files,
            }
            .to_json()),
            Err(ExportError::Cancelled) => {
                let _ = self.blobs.delete_prefix(&prefix);
                Err(JobError::Stopped)
            }
            Err(ExportError::Repository(error)) if error.is_retryable() => {
                Err(JobError::Retry(error.to_string()))
            }
            Err(ExportError::Repository(RepositoryError::Store(
                store::StoreError::Unavailable(message),
            ))) => Err(JobError::Retry(message)),
            Err(ExportError::Repository(error)) => Err(JobError::Fail(
                error
                    .issues(&ctx.request_id)
                    .iter()
                    .map(|issue| issue.diagnostics.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
            Err(ExportError::Io(error)) => Err(JobError::Retry(error.to_string())),
            Err(ExportError::Blob(error)) => Err(JobError::Retry(error.to_string())),
        }
    }
}
