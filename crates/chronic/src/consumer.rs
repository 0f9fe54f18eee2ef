//! The change-log consumer `chronic`: enrolment and alerts run from the log of committed
//! changes, so they apply to whatever arrives (REST, bulk import, HL7 v2, kiosks) without
//! adding to the write that brought it, and a region loaded before the service existed is
//! caught up from the start of the log.
//!
//! Each batch runs in one transaction with the consumer's new position
//! (`repository::ChangeFeed::consume`): what the batch enrols and alerts commits together with
//! having handled it, so a change is handled once across restarts and with several servers. A
//! change is judged on the resource's current version, and only when that version is the
//! change's own: an older change of a resource that has moved on is left to its newest change
//! (a Condition since refuted enrols nobody; an Observation corrected below the critical limit
//! raises nothing).
//!
//! Most changes ask nothing of it (an Observation that is no reading or no critical one, a
//! Condition of no programme): a batch of such changes is passed without a transaction
//! (`repository::ChangeFeed::consume_relevant`), judged on the version each change wrote.

use caller::Caller;
use repository::{Change, Cursor, InTransaction, Repository, RepositoryError};
use serde_json::Value;
use store::Method;

use crate::alert::{Raised, raise};
use crate::reading::{is_critical, reading};
use crate::registry::{Enrolment, enrol, programs_of};
use crate::rules::{Rules, rules};

/// The consumer's name (its position is the store checkpoint `changes:chronic`).
pub const CONSUMER: &str = "chronic";

/// What one call of [`process`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Processed {
    /// Changes handled (the consumer's position moved past them).
    pub changes: usize,
    /// New enrolments (an EpisodeOfCare and a CarePlan each).
    pub registrations: usize,
    /// New alerts.
    pub alerts: usize,
}

/// Handles up to `max` changes after `cursor` (or the consumer's stored position, when
/// further), as `operator` (the operator caller the server makes for its "chronic" keeper),
/// passing before them any batches that ask nothing of it. Answers what it did; `changes == 0`
/// when it was at the end of the log. Call it again until then, with the same cursor.
pub fn process(
    repository: &Repository,
    operator: &Caller,
    cursor: &mut Cursor,
    max: usize,
) -> Result<Processed, RepositoryError> {
    let rules = rules()?;
    let feed = repository.change_feed(CONSUMER);
    let done = feed.consume_relevant(
        operator,
        cursor,
        max,
        |changes| asks_something(repository, operator, rules, changes),
        |tx, changes| handle(tx, rules, changes),
    )?;
    let mut done = done.unwrap_or_default();
    done.changes += cursor.take_passed();
    Ok(done)
}

/// Whether [`handle`] could act on any of `changes`: a Condition of some programme or a
/// critical reading, in the version the change wrote (`handle` judges the current version, and
/// only when it is the change's own). The versions are read together, through the one read
/// path as `operator` (one statement on PostgreSQL, where one a change was two round trips for
/// every Observation written).
fn asks_something(
    repository: &Repository,
    operator: &Caller,
    rules: &Rules,
    changes: &[Change],
) -> Result<bool, RepositoryError> {
    let keys: Vec<(&str, &str, i64)> = changes
        .iter()
        .filter(|change| {
            change.method != Method::Delete
                && matches!(change.resource_type.as_str(), "Condition" | "Observation")
        })
        .map(Change::version_key)
        .collect();
    if keys.is_empty() {
        return Ok(false);
    }
    let records = repository.reader(operator).versions_of(&keys)?;
    for (&(resource_type, _, _), record) in keys.iter().zip(records) {
        // Not found as that version, or unreadable: left to the transaction to judge.
        let Some(resource) = record
            .and_then(|record| record.content)
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        else {
            return Ok(true);
        };
        let asks = if resource_type == "Condition" {
            !programs_of(rules, &resource).is_empty()
        } else {
            reading(rules, &resource).is_some_and(|r| is_critical(rules, &r.measurement))
        };
        if asks {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Processes until the end of the log; for tests and the command line.
pub fn process_all(
    repository: &Repository,
    operator: &Caller,
    batch: usize,
) -> Result<Processed, RepositoryError> {
    let mut total = Processed::default();
    let mut cursor = Cursor::default();
    loop {
        let done = process(repository, operator, &mut cursor, batch.max(1))?;
        if done.changes == 0 {
            repository
                .change_feed(CONSUMER)
                .store(operator, &mut cursor)?;
            return Ok(total);
        }
        total.changes += done.changes;
        total.registrations += done.registrations;
        total.alerts += done.alerts;
    }
}

fn handle(
    tx: &mut InTransaction<'_, '_>,
    rules: &Rules,
    changes: &[Change],
) -> Result<Processed, RepositoryError> {
    let mut done = Processed {
        changes: changes.len(),
        ..Processed::default()
    };
    for change in changes {
        if change.method == Method::Delete
            || !matches!(change.resource_type.as_str(), "Condition" | "Observation")
        {
            continue;
        }
        let Some((record, resource)) = tx.read(&change.resource_type, &change.id)? else {
            continue;
        };
        if record.version != change.version {
            continue;
        }
        let outcome = if change.resource_type == "Condition" {
            enrol(tx, rules, &resource).map(|enrolments| {
                done.registrations += enrolments
                    .iter()
                    .filter(|(_, e)| matches!(e, Enrolment::Registered { .. }))
                    .count();
            })
        } else {
            raise(tx, rules, &resource).map(|raised| {
                if matches!(raised, Raised::New(_)) {
                    done.alerts += 1;
                }
            })
        };
        match outcome {
            Ok(()) => {}
            // What the service would write from this resource is not a valid resource (a
            // reference of a shape the model refuses): the resource is skipped, logged, so one
            // bad record never stops the consumer for everything behind it. Validation runs
            // before anything reaches the database, so the transaction is intact.
            Err(error @ (RepositoryError::Invalid(_) | RepositoryError::Unprocessable(_))) => {
                tracing::warn!(resource_type = %change.resource_type, id = %change.id, %error,
                    "chronic: a change could not be handled; skipped");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(done)
}
