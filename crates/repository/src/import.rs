//! Bulk import: resources, NDJSON lines and Bundles loaded through the same validation and
//! indexing as every write, fast.
//!
//! Workers parse, validate and index units in parallel; one writer applies them in batched
//! store transactions. Channels are bounded, so memory stays flat whatever the input size. A
//! bad unit never stops the load: it is reported with its source and the issues, and the rest
//! goes on.
//!
//! Import keeps the ids it is given — a resource's own id, or the `urn:uuid:` full URL of a
//! Bundle entry — so importing the same data again writes nothing new (an unchanged resource
//! gets no new version), and an export re-imported gives the same resources.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use caller::Caller;
use fhir_model::Outcome as _;
use fhir_model::{Issue, IssueCode};
use serde_json::Value;
use store::VersionRecord;

use crate::bundle::{Lookup, parse_query, rewrite_references};
use crate::meta::{is_valid_id, new_id};
use crate::write::{Prepared, ReadAhead};
use crate::{Repository, RepositoryError, WriteStatus, WriteTx};
use fhir_model::clock;

/// One thing to import: a JSON document (a resource or a Bundle) and where it came from
/// (`file.ndjson:12`, `bundles/x.json`), for the report.
#[derive(Debug, Clone)]
pub struct ImportUnit {
    pub source: String,
    pub json: Vec<u8>,
}

/// How to import.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// Threads that parse, validate and index.
    pub workers: usize,
    /// Resources per store transaction (a transaction Bundle is never split).
    pub batch_resources: usize,
    /// Whether the store's planner statistics are refreshed at the end (always, but to measure
    /// plans on statistics left stale).
    pub refresh_statistics: bool,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ImportOptions {
            workers: cores.max(1),
            batch_resources: 5000,
            refresh_statistics: true,
        }
    }
}

/// What an import did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    /// Already there, unchanged: no new version.
    pub unchanged: u64,
    /// Units (a resource, a line, a Bundle or one of its entries) that failed.
    pub failed: u64,
}

impl ImportCounts {
    pub fn resources(&self) -> u64 {
        self.created + self.updated + self.unchanged
    }
}

/// A unit that could not be imported, and why.
#[derive(Debug, Clone)]
pub struct ImportFailure {
    pub source: String,
    pub issues: Vec<Issue>,
}

/// The result of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub counts: ImportCounts,
    pub failures: Vec<ImportFailure>,
}

/// Resources a worker gathers before handing them to the writer (a Bundle goes whole).
const RESOURCES_PER_MESSAGE: usize = 64;

/// One write of a prepared unit.
enum Operation {
    /// Create or update with the given id.
    Put(Prepared),
    /// Create unless a resource matches the criteria (`ifNoneExist`).
    CreateUnlessExists(Prepared, Vec<(String, String)>),
}

/// A unit ready for the writer: all of its operations commit together.
struct PreparedUnit {
    source: String,
    operations: Vec<Operation>,
}

enum Outcome {
    Ready(PreparedUnit),
    Failed(ImportFailure),
    /// Every outcome of unit `seq` has been sent.
    Done(u64),
    /// A worker waits until every unit before `seq` is committed: a conditional reference of
    /// unit `seq` matched nothing, and what it points at may come earlier in the input.
    Waiting(u64),
}

impl Outcome {
    /// The resources an outcome carries.
    fn weight(&self) -> usize {
        match self {
            Outcome::Ready(unit) => unit.operations.len(),
            Outcome::Failed(_) => 1,
            Outcome::Done(_) | Outcome::Waiting(_) => 0,
        }
    }
}

/// How far the writer has committed: every unit numbered below `upto` is committed (or failed).
#[derive(Default)]
struct Watermark {
    upto: Mutex<u64>,
    moved: std::sync::Condvar,
}

impl Watermark {
    fn set(&self, upto: u64) {
        *self.upto.lock().unwrap_or_else(|p| p.into_inner()) = upto;
        self.moved.notify_all();
    }

    /// Waits until every unit before `seq` is committed.
    fn wait_for(&self, seq: u64) {
        let mut upto = self.upto.lock().unwrap_or_else(|p| p.into_inner());
        while *upto < seq {
            upto = self.moved.wait(upto).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The writer's account of which units are finished, to move the watermark.
#[derive(Default)]
struct Finished {
    /// Units whose outcomes were all received, not yet all committed.
    received: std::collections::BTreeSet<u64>,
    /// Received and committed, above the watermark (waiting for a gap below to fill).
    committed: std::collections::BTreeSet<u64>,
    upto: u64,
}

impl Finished {
    /// After a flush: everything received is committed; answers the new watermark.
    fn flushed(&mut self) -> u64 {
        self.committed.append(&mut self.received);
        while self.committed.remove(&self.upto) {
            self.upto += 1;
        }
        self.upto
    }
}

impl Repository {
    /// Imports `units` and answers what happened. `progress` is called after every commit.
    pub fn import(
        &self,
        ctx: &Caller,
        units: impl Iterator<Item = ImportUnit> + Send,
        options: ImportOptions,
        progress: &(dyn Fn(&ImportCounts) + Sync),
    ) -> ImportReport {
        let mut report = ImportReport::default();
        let units = Mutex::new(units.enumerate());
        let watermark = Watermark::default();
        let (sender, receiver) = sync_channel::<Vec<Outcome>>(options.workers.max(1) * 4);
        std::thread::scope(|scope| {
            for _ in 0..options.workers.max(1) {
                let sender = sender.clone();
                let (units, watermark) = (&units, &watermark);
                scope.spawn(move || self.import_worker(ctx, units, watermark, sender));
            }
            drop(sender);
            self.import_writer(ctx, receiver, options, progress, &watermark, &mut report);
        });
        if options.refresh_statistics
            && report.counts.created + report.counts.updated > 0
            && let Err(error) = self.store.refresh_statistics()
        {
            // The data is in; only the planner's picture of it is stale.
            tracing::warn!(%error, "refreshing planner statistics after the import failed");
        }
        report
    }

    /// Prepares units and sends their outcomes to the writer in chunks: one message (and one
    /// wake-up of a sleeping thread) per [`RESOURCES_PER_MESSAGE`] resources, not per resource.
    /// Whatever a worker holds is sent before it blocks, so no unit waits on an unsent one.
    fn import_worker(
        &self,
        ctx: &Caller,
        units: &Mutex<impl Iterator<Item = (usize, ImportUnit)>>,
        watermark: &Watermark,
        sender: SyncSender<Vec<Outcome>>,
    ) {
        let mut conditional_cache = HashMap::new();
        let mut chunk = Vec::new();
        // The resources in `chunk`.
        let mut weight = 0;
        loop {
            let next = units
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .next();
            let Some((seq, unit)) = next else { break };
            let seq = seq as u64;
            let prepared = self.prepare_unit(ctx, &unit, true, &mut conditional_cache);
            let outcomes = if let Some(outcomes) = prepared {
                outcomes
            } else {
                // What the unit refers to may come earlier in the input: wait until all of that
                // is committed, then try once more, this time reporting what does not resolve.
                chunk.push(Outcome::Waiting(seq));
                weight = 0;
                if sender.send(std::mem::take(&mut chunk)).is_err() {
                    return;
                }
                watermark.wait_for(seq);
                self.prepare_unit(ctx, &unit, false, &mut conditional_cache)
                    .unwrap_or_default()
            };
            weight += outcomes.iter().map(Outcome::weight).sum::<usize>();
            chunk.extend(outcomes);
            chunk.push(Outcome::Done(seq));
            if weight >= RESOURCES_PER_MESSAGE {
                weight = 0;
                if sender.send(std::mem::take(&mut chunk)).is_err() {
                    return;
                }
            }
        }
        if !chunk.is_empty() {
            // The writer may be gone after a panic; then there is nobody to tell.
            let _ = sender.send(chunk);
        }
    }

    fn import_writer(
        &self,
        ctx: &Caller,
        receiver: Receiver<Vec<Outcome>>,
        options: ImportOptions,
        progress: &(dyn Fn(&ImportCounts) + Sync),
        watermark: &Watermark,
        report: &mut ImportReport,
    ) {
        let mut pending: Vec<PreparedUnit> = Vec::new();
        let mut pending_resources = 0;
        let mut finished = Finished::default();
        // Workers waiting for everything before their unit to be committed.
        let mut waiting = std::collections::BTreeSet::new();
        let flush = |pending: &mut Vec<PreparedUnit>,
                     finished: &mut Finished,
                     report: &mut ImportReport| {
            self.flush(ctx, std::mem::take(pending), report);
            watermark.set(finished.flushed());
            progress(&report.counts);
        };
        // The first waiter can go on once every unit before it has been received: commit then.
        let first_waiter_ready = |waiting: &std::collections::BTreeSet<u64>,
                                  finished: &Finished| {
            waiting.first().is_some_and(|&w| {
                (finished.upto..w)
                    .all(|s| finished.received.contains(&s) || finished.committed.contains(&s))
            })
        };
        for outcome in receiver.into_iter().flatten() {
            match outcome {
                Outcome::Ready(unit) => {
                    pending_resources += unit.operations.len();
                    pending.push(unit);
                }
                Outcome::Failed(failure) => {
                    report.counts.failed += 1;
                    report.failures.push(failure);
                }
                Outcome::Done(seq) => {
                    finished.received.insert(seq);
                    if pending_resources >= options.batch_resources {
                        flush(&mut pending, &mut finished, report);
                        pending_resources = 0;
                    }
                }
                Outcome::Waiting(seq) => {
                    waiting.insert(seq);
                }
            }
            while first_waiter_ready(&waiting, &finished) {
                flush(&mut pending, &mut finished, report);
                pending_resources = 0;
                let upto = finished.upto;
                waiting.retain(|&w| w > upto);
            }
        }
        flush(&mut pending, &mut finished, report);
    }

    /// Commits units together; when that fails, one by one, so only the bad unit is refused.
    fn flush(&self, ctx: &Caller, units: Vec<PreparedUnit>, report: &mut ImportReport) {
        if units.is_empty() {
            return;
        }
        let together = self.with_transaction(ctx, |tx| {
            let now = clock::now_micros();
            let mut counts = ImportCounts::default();
            let mut ahead = read_ahead(tx, &units)?;
            for unit in &units {
                apply(self, tx, unit, now, &mut counts, &mut ahead)?;
            }
            Ok(counts)
        });
        match together {
            Ok(counts) => add(&mut report.counts, &counts),
            Err(_) if units.len() > 1 => {
                for unit in units {
                    self.flush(ctx, vec![unit], report);
                }
            }
            Err(error) => {
                report.counts.failed += 1;
                report.failures.push(ImportFailure {
                    source: units[0].source.clone(),
                    issues: error.issues(&ctx.request_id),
                });
            }
        }
    }

    /// Parses and prepares one unit; a Bundle of type batch becomes one unit per entry. Answers
    /// nothing when `may_wait` and a conditional reference matched nothing yet.
    fn prepare_unit(
        &self,
        ctx: &Caller,
        unit: &ImportUnit,
        may_wait: bool,
        conditional_cache: &mut HashMap<String, String>,
    ) -> Option<Vec<Outcome>> {
        let fail = |source: &str, error: RepositoryError| {
            Outcome::Failed(ImportFailure {
                source: source.to_owned(),
                issues: error.issues(&ctx.request_id),
            })
        };
        // The server's reader: duplicate keys refused, a byte-order mark (a file's first line)
        // skipped; the failure names the unit's file and line, the issue the line and column.
        let value: Value = match fhir_model::json::parse(&unit.json) {
            Ok(value) => value,
            Err(error) => {
                return Some(vec![fail(
                    &unit.source,
                    RepositoryError::Invalid(vec![error.issue()]),
                )]);
            }
        };
        if value.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Some(vec![match self.prepare_resource(value, None) {
                Ok(prepared) => Outcome::Ready(PreparedUnit {
                    source: unit.source.clone(),
                    operations: vec![Operation::Put(prepared)],
                }),
                Err(error) => fail(&unit.source, error),
            }]);
        }
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // As for a Bundle posted to the server: its entries are validated one by one, so what
        // only the whole can break (bdl-7) is checked here, and fails the whole file.
        let issues = fhir_model::bundle_invariants(&value);
        if !issues.is_empty() {
            return Some(vec![fail(&unit.source, RepositoryError::Invalid(issues))]);
        }
        let Value::Object(mut bundle) = value else {
            unreachable!("a Bundle is an object")
        };
        let entries = match bundle.remove("entry") {
            Some(Value::Array(entries)) => entries,
            None => Vec::new(),
            Some(_) => {
                return Some(vec![fail(
                    &unit.source,
                    RepositoryError::invalid(IssueCode::Structure, "entry must be an array"),
                )]);
            }
        };
        match kind.as_str() {
            "transaction" => match self.prepare_transaction(ctx, entries, conditional_cache) {
                Ok(operations) => Some(vec![Outcome::Ready(PreparedUnit {
                    source: unit.source.clone(),
                    operations,
                })]),
                Err(error) if may_wait && is_unresolved_reference(&error) => None,
                Err(error) => Some(vec![fail(&unit.source, error)]),
            },
            _ => {
                // A batch, collection or searchset: every entry on its own. One that must wait
                // for a flush makes the whole Bundle wait (and be prepared again), so its
                // entries stay in order.
                let mut outcomes = Vec::with_capacity(entries.len());
                for (index, entry) in entries.into_iter().enumerate() {
                    let source = format!("{}#entry[{index}]", unit.source);
                    let operations = self.prepare_transaction(ctx, vec![entry], conditional_cache);
                    outcomes.push(match operations {
                        Ok(operations) => Outcome::Ready(PreparedUnit { source, operations }),
                        Err(error) if may_wait && is_unresolved_reference(&error) => return None,
                        Err(error) => fail(&source, error),
                    });
                }
                Some(outcomes)
            }
        }
    }

    /// A resource kept under its own id (or a new one when it has none).
    fn prepare_resource(
        &self,
        resource: Value,
        id: Option<&str>,
    ) -> Result<Prepared, RepositoryError> {
        let own = resource
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let id = match (own, id) {
            (Some(own), _) => own,
            (None, Some(id)) => id.to_owned(),
            (None, None) => new_id(),
        };
        if !is_valid_id(&id) {
            return Err(RepositoryError::invalid_at(
                IssueCode::Invalid,
                format!("'{id}' is not a valid id"),
                "id",
            ));
        }
        self.prepare(resource, &id)
    }

    /// The entries of a transaction as operations: ids fixed, bundle-local and conditional
    /// references rewritten, every resource validated and indexed.
    fn prepare_transaction(
        &self,
        ctx: &Caller,
        entries: Vec<Value>,
        conditional_cache: &mut HashMap<String, String>,
    ) -> Result<Vec<Operation>, RepositoryError> {
        struct Planned {
            resource: Value,
            id: String,
            criteria: Option<Vec<(String, String)>>,
        }
        let mut planned = Vec::with_capacity(entries.len());
        let mut aliases = HashMap::new();
        for (index, entry) in entries.into_iter().enumerate() {
            let Value::Object(mut entry) = entry else {
                return Err(at_entry(
                    index,
                    RepositoryError::invalid(IssueCode::Structure, "an entry must be an object"),
                ));
            };
            let Some(resource) = entry.remove("resource") else {
                return Err(at_entry(
                    index,
                    RepositoryError::invalid(
                        IssueCode::Required,
                        "import takes entries with a resource",
                    ),
                ));
            };
            let Some(resource_type) = resource
                .get("resourceType")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                return Err(at_entry(
                    index,
                    RepositoryError::invalid(
                        IssueCode::Required,
                        "the resource has no resourceType",
                    ),
                ));
            };
            let request = entry.get("request");
            let method = request
                .and_then(|r| r.get("method"))
                .and_then(Value::as_str)
                .unwrap_or("PUT");
            if !matches!(method, "POST" | "PUT") {
                return Err(at_entry(
                    index,
                    RepositoryError::NotSupported(format!(
                        "import applies POST and PUT entries, not {method}"
                    )),
                ));
            }
            let full_url = entry.get("fullUrl").and_then(Value::as_str);
            let from_url = request
                .and_then(|r| r.get("url"))
                .and_then(Value::as_str)
                .and_then(|url| url.split('?').next()?.split('/').nth(1).map(str::to_owned));
            let from_full_url = full_url
                .and_then(|u| u.strip_prefix("urn:uuid:").or_else(|| u.rsplit('/').next()))
                .filter(|id| is_valid_id(id))
                .map(str::to_owned);
            let id = resource
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or(from_url)
                .or(from_full_url)
                .unwrap_or_else(new_id);
            if let Some(full_url) = full_url {
                aliases.insert(full_url.to_owned(), format!("{resource_type}/{id}"));
            }
            let criteria = request
                .and_then(|r| r.get("ifNoneExist"))
                .and_then(Value::as_str)
                .map(|q| parse_query(q.trim_start_matches('?')));
            planned.push(Planned {
                resource,
                id,
                criteria,
            });
        }
        let lookup: &mut Lookup<'_> =
            &mut |resource_type, criteria| self.matches_outside(ctx, resource_type, criteria);
        let mut operations = Vec::with_capacity(planned.len());
        for (index, mut plan) in planned.into_iter().enumerate() {
            rewrite_references(
                self,
                lookup,
                &mut plan.resource,
                &aliases,
                conditional_cache,
            )
            .map_err(|e| at_entry(index, e))?;
            if let Value::Object(map) = &mut plan.resource {
                map.insert("id".into(), Value::String(plan.id.clone()));
            }
            let prepared = self
                .prepare(plan.resource, &plan.id)
                .map_err(|e| at_entry(index, e))?;
            operations.push(match plan.criteria {
                Some(criteria) => Operation::CreateUnlessExists(prepared, criteria),
                None => Operation::Put(prepared),
            });
        }
        Ok(operations)
    }

    /// Resources matching criteria, read outside any transaction (at most two).
    fn matches_outside(
        &self,
        ctx: &Caller,
        resource_type: &str,
        criteria: &[(String, String)],
    ) -> Result<Vec<VersionRecord>, RepositoryError> {
        self.reader(ctx).find(resource_type, criteria, 2)
    }
}

/// Reads ahead the current versions of every resource the batch puts.
fn read_ahead(tx: &mut WriteTx<'_>, units: &[PreparedUnit]) -> Result<ReadAhead, RepositoryError> {
    let keys =
        units
            .iter()
            .flat_map(|unit| &unit.operations)
            .filter_map(|operation| match operation {
                Operation::Put(prepared) => Some((prepared.resource_type.as_str(), prepared.id())),
                Operation::CreateUnlessExists(..) => None,
            });
    ReadAhead::read(tx, keys)
}

fn apply(
    repository: &Repository,
    tx: &mut WriteTx<'_>,
    unit: &PreparedUnit,
    now: i64,
    counts: &mut ImportCounts,
    ahead: &mut ReadAhead,
) -> Result<(), RepositoryError> {
    for operation in &unit.operations {
        let status = match operation {
            Operation::Put(prepared) => {
                repository
                    .upsert_read_ahead(tx, prepared, None, now, ahead)?
                    .status
            }
            Operation::CreateUnlessExists(prepared, criteria) => {
                match repository
                    .matches_in(tx, &prepared.resource_type, criteria)?
                    .len()
                {
                    0 => {
                        repository
                            .upsert_read_ahead(tx, prepared, None, now, ahead)?
                            .status
                    }
                    1 => WriteStatus::Existing,
                    _ => {
                        return Err(RepositoryError::PreconditionFailed(
                            "ifNoneExist matched more than one resource".into(),
                        ));
                    }
                }
            }
        };
        match status {
            WriteStatus::Created => counts.created += 1,
            WriteStatus::Updated => counts.updated += 1,
            WriteStatus::Unchanged | WriteStatus::Existing => counts.unchanged += 1,
            WriteStatus::Deleted | WriteStatus::NothingToDelete => {}
        }
    }
    Ok(())
}

fn add(total: &mut ImportCounts, more: &ImportCounts) {
    total.created += more.created;
    total.updated += more.updated;
    total.unchanged += more.unchanged;
    total.failed += more.failed;
}

fn at_entry(index: usize, error: RepositoryError) -> RepositoryError {
    RepositoryError::TransactionEntry {
        index,
        error: Box::new(error),
    }
}

fn is_unresolved_reference(error: &RepositoryError) -> bool {
    match error {
        RepositoryError::TransactionEntry { error, .. } => is_unresolved_reference(error),
        RepositoryError::PreconditionFailed(message) => message.contains("matches no resource"),
        _ => false,
    }
}
