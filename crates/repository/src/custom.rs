//! SearchParameter resources written to the server, and reindexing.
//!
//! A stored SearchParameter (not retired) joins the official R4 parameters: the repository
//! rebuilds its indexer whenever one is written or deleted, so new writes are indexed with it at
//! once. Existing resources are brought up to date by [`Repository::reindex_batch`], which
//! walks every current resource in row order, re-extracts its index rows and records how far it
//! got in a checkpoint, so an interrupted reindex resumes where it stopped.

use std::sync::Arc;

use caller::Caller;
use fhir_model::{Issue, IssueCode, SearchParamDef, SearchParamType};
use fhirpath::CompileOptions;
use search::{Indexer, Registry};
use serde_json::Value;
use store::ScanQuery;

use crate::{Repository, RepositoryError};

const REINDEX_CHECKPOINT: &str = "reindex";

/// The job kind reindexing runs as.
pub const REINDEX_JOB: &str = "reindex";

/// Resources reindexed in one transaction of a reindex job.
const REINDEX_BATCH: usize = 1000;

/// How far a reindex has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReindexProgress {
    /// Resources reindexed by this call.
    pub processed: usize,
    /// The row key reached (the checkpoint).
    pub after_row: i64,
    /// Nothing is left to do; the checkpoint is cleared.
    pub done: bool,
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn texts(value: &Value, key: &str) -> Vec<Box<str>> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(Into::into)
        .collect()
}

/// A SearchParameter resource as a definition the indexer can use, or why it cannot be used.
pub(crate) fn definition_of(
    resource: &Value,
    registry: &Registry,
) -> Result<SearchParamDef, Issue> {
    let invalid = |message: &str, at: &str| {
        Issue::error(IssueCode::BusinessRule, message.to_owned())
            .at(format!("SearchParameter.{at}"))
    };
    let code =
        text(resource, "code").ok_or_else(|| invalid("a search parameter needs a code", "code"))?;
    let kind: SearchParamType =
        serde_json::from_value(resource.get("type").cloned().unwrap_or(Value::Null))
            .map_err(|_| invalid("a search parameter needs a type", "type"))?;
    let base = texts(resource, "base");
    if base.is_empty() {
        return Err(invalid("a search parameter needs a base", "base"));
    }
    let model = fhir_model::r4();
    for resource_type in &base {
        if !model.is_resource_type(resource_type)
            && !matches!(&**resource_type, "Resource" | "DomainResource")
        {
            return Err(invalid(
                &format!("'{resource_type}' is not a resource type"),
                "base",
            ));
        }
    }
    let expression = text(resource, "expression");
    if kind != SearchParamType::Special {
        let Some(expression) = expression else {
            return Err(invalid(
                "a search parameter needs an expression",
                "expression",
            ));
        };
        for resource_type in base.iter().filter(|t| model.is_resource_type(t)) {
            let options = CompileOptions {
                context_type: Some(resource_type.to_string()),
                strict: false,
            };
            fhirpath::compile_with(expression, &options).map_err(|e| {
                invalid(
                    &format!("the expression does not compile for {resource_type}: {e}"),
                    "expression",
                )
            })?;
        }
    }
    let mut components = Vec::new();
    for component in resource
        .get("component")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let definition = text(component, "definition").unwrap_or_default();
        let component_code = base
            .iter()
            .flat_map(|t| registry.params_of(t))
            .find(|p| &*p.definition.url == definition)
            .map(|p| p.code.clone())
            .ok_or_else(|| {
                invalid(
                    &format!("component definition '{definition}' is not a known parameter"),
                    "component",
                )
            })?;
        let component_expression = text(component, "expression")
            .ok_or_else(|| invalid("a component needs an expression", "component"))?;
        components.push(fhir_model::CompositeComponent {
            code: component_code,
            expression: component_expression.into(),
        });
    }
    Ok(SearchParamDef {
        url: text(resource, "url").unwrap_or_default().into(),
        code: code.into(),
        base,
        kind,
        expression: expression.map(Into::into),
        targets: texts(resource, "target"),
        components,
        modifier: texts(resource, "modifier"),
        comparator: texts(resource, "comparator"),
        usage: None,
    })
}

impl Repository {
    /// Rebuilds the indexer from the official parameters and every stored SearchParameter that
    /// is not retired. Answers how many stored parameters took effect.
    pub fn load_search_parameters(&self, ctx: &Caller) -> Result<usize, RepositoryError> {
        let model = self.model;
        let mut registry = Registry::r4(model);
        let official: std::collections::HashSet<&str> =
            model.search_parameters().iter().map(|p| &*p.url).collect();
        let mut loaded = 0;
        let mut after_row = 0;
        loop {
            let batch = self.reader(ctx).scan(&ScanQuery {
                types: vec!["SearchParameter".into()],
                since: None,
                after_row,
                limit: 500,
                // The reader states what its caller may see.
                visibility: Default::default(),
            })?;
            let Some(last) = batch.last() else { break };
            after_row = last.row;
            for record in &batch {
                let resource = crate::stored::parse_stored(record)?;
                if text(&resource, "status") == Some("retired")
                    || text(&resource, "url").is_some_and(|url| official.contains(url))
                {
                    continue;
                }
                match definition_of(&resource, &registry) {
                    Ok(definition) => {
                        let definition = Arc::new(definition);
                        let types: Vec<Box<str>> = definition
                            .base
                            .iter()
                            .flat_map(|b| match &**b {
                                "Resource" | "DomainResource" => model.resource_types().to_vec(),
                                t => vec![t.into()],
                            })
                            .collect();
                        for resource_type in types {
                            registry.add(model, &resource_type, definition.clone());
                        }
                        loaded += 1;
                    }
                    Err(issue) => tracing::warn!(
                        id = record.id,
                        issue = issue.diagnostics,
                        "stored SearchParameter not used"
                    ),
                }
            }
        }
        let indexer = Arc::new(Indexer::new(Arc::new(registry)));
        *self
            .indexer
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = indexer;
        Ok(loaded)
    }

    /// Reindexes the next `batch` current resources after the checkpoint, in one transaction,
    /// and moves the checkpoint. Call until `done`. A resource written since the scan is
    /// skipped: its own write indexed it with the current parameters.
    pub fn reindex_batch(
        &self,
        ctx: &Caller,
        batch: usize,
    ) -> Result<ReindexProgress, RepositoryError> {
        let after_row = match self.store.checkpoint(REINDEX_CHECKPOINT)? {
            Some(value) => value.parse().unwrap_or(0),
            None => 0,
        };
        let records = self.reader(ctx).scan(&ScanQuery {
            types: Vec::new(),
            since: None,
            after_row,
            limit: batch,
            // The reader states what its caller may see.
            visibility: Default::default(),
        })?;
        let Some(last) = records.last() else {
            self.with_transaction(ctx, |tx| Ok(tx.set_checkpoint(REINDEX_CHECKPOINT, None)?))?;
            return Ok(ReindexProgress {
                processed: 0,
                after_row,
                done: true,
            });
        };
        let last_row = last.row;
        let indexer = self.indexer();
        let mut extracted = Vec::with_capacity(records.len());
        for record in &records {
            let resource = crate::stored::parse_stored(record)?;
            let entries = indexer
                .extract(&record.resource_type, &record.id, &resource)
                .map_err(|e| {
                    RepositoryError::Unprocessable(vec![Issue::error(
                        IssueCode::Processing,
                        e.to_string(),
                    )])
                })?;
            extracted.push(entries);
        }
        let processed = self.with_transaction(ctx, |tx| {
            let mut processed = 0;
            for (record, entries) in records.iter().zip(&extracted) {
                let unchanged =
                    tx.current(&record.resource_type, &record.id)?
                        .is_some_and(|current| {
                            current.version == record.version && !current.is_deleted()
                        });
                if unchanged {
                    tx.replace_index(record.row, entries)?;
                    processed += 1;
                }
            }
            tx.set_checkpoint(REINDEX_CHECKPOINT, Some(&last_row.to_string()))?;
            Ok(processed)
        })?;
        Ok(ReindexProgress {
            processed,
            after_row: last_row,
            done: false,
        })
    }

    /// Forgets a reindex in progress, so the next one starts from the beginning.
    pub fn restart_reindex(&self, ctx: &Caller) -> Result<(), RepositoryError> {
        self.with_transaction(ctx, |tx| Ok(tx.set_checkpoint(REINDEX_CHECKPOINT, None)?))
    }
}

/// Runs reindex jobs: [`Repository::reindex_batch`] until done, for the caller that asked,
/// reporting how far it got. The checkpoint is in the store, so a job taken over after a
/// restart goes on where the last batch ended.
pub struct ReindexJob {
    repository: Arc<Repository>,
}

impl ReindexJob {
    pub fn new(repository: Arc<Repository>) -> ReindexJob {
        ReindexJob { repository }
    }

    /// The parameters of a reindex job for `caller`, `batch` resources a transaction,
    /// starting over when `restart`.
    pub fn params(caller: &Caller, restart: bool, batch: usize) -> String {
        serde_json::json!({"caller": caller.to_json(), "restart": restart, "batch": batch})
            .to_string()
    }
}

impl jobs::JobHandler for ReindexJob {
    fn kind(&self) -> &'static str {
        REINDEX_JOB
    }

    fn run(&self, context: &dyn jobs::JobContext) -> Result<String, jobs::JobError> {
        let job = context.job();
        let params: Value = serde_json::from_str(&job.params).map_err(|_| {
            jobs::JobError::Fail("the reindex job's parameters do not parse".into())
        })?;
        let caller = params
            .get("caller")
            .and_then(Caller::from_json)
            .ok_or_else(|| jobs::JobError::Fail("the reindex job names no caller".into()))?;
        let failed = |error: RepositoryError| {
            if error.is_retryable() {
                jobs::JobError::Retry(error.to_string())
            } else {
                jobs::JobError::Fail(error.to_string())
            }
        };
        // Only the first attempt starts over: a retry goes on from the checkpoint.
        if params.get("restart").and_then(Value::as_bool) == Some(true) && job.attempts == 1 {
            self.repository.restart_reindex(&caller).map_err(failed)?;
        }
        let batch = params
            .get("batch")
            .and_then(Value::as_u64)
            .map_or(REINDEX_BATCH, |b| (b as usize).max(1));
        let mut total = 0usize;
        loop {
            if context.should_stop() {
                return Err(jobs::JobError::Stopped);
            }
            let progress = self
                .repository
                .reindex_batch(&caller, batch)
                .map_err(failed)?;
            total += progress.processed;
            context.progress(
                serde_json::json!({"reindexed": total, "afterRow": progress.after_row}).to_string(),
            );
            if progress.done {
                return Ok(serde_json::json!({"reindexed": total}).to_string());
            }
        }
    }
}
