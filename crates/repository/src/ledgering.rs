//! The verifiable log fed from the change log: a consumer (`ledger`) that appends a leaf for
//! every committed version the log records (`ledger::leaf`), in the change log's order, in
//! batches.
//!
//! The log used to be appended inside each write's transaction, under the log's one lock held
//! until that transaction committed: every write of a result, a consent or an audit event (the
//! audit trail's batches, the master index's own events) queued behind every other for the
//! length of a commit, on any number of cores. A version's change commits with the version,
//! so a consumer of the change log misses none: each batch of changes becomes one append, one
//! short hold of the lock, one commit. A leaf now follows its version by the consumer's delay
//! (it runs after each write on this server, and every two seconds for other servers' writes);
//! whatever reads the log for a version just written (a leaf, a proof, a checkpoint) catches
//! up first ([`Repository::catch_up_ledger`]).

use std::collections::HashSet;

use caller::Caller;
use ledger::leaf::{LeafFields, always_logged, may_be_logged, stored_is_result_observation};
use ledger::log::PendingLeaf;

use crate::changes::{Change, Cursor};
use crate::{InTransaction, Repository, RepositoryError};

/// The change-log consumer that appends to the verifiable log.
pub const LEDGER_CONSUMER: &str = "ledger";

/// What one call of [`Repository::log_committed`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Logged {
    /// Changes read past (0 at the end of the change log).
    pub changes: usize,
    /// Leaves appended.
    pub leaves: usize,
}

impl Repository {
    /// Appends the leaves of up to `max` changes after `cursor` (or the consumer's stored
    /// position, when further), as `keeper` (the operator caller of the platform's own
    /// ledger keeper), passing batches of changes of kinds the log never records. Call it
    /// again until `changes == 0`, with the same cursor.
    pub fn log_committed(
        &self,
        keeper: &Caller,
        cursor: &mut Cursor,
        max: usize,
    ) -> Result<Logged, RepositoryError> {
        let feed = self.change_feed(LEDGER_CONSUMER);
        // (A cursor that has seen a stored position knows the consumer started: no read.)
        if !cursor.has_started() && feed.position()? == 0 && self.store().ledger_size()? > 0 {
            // A store logged by writers that appended in their own transactions (before this
            // consumer): every change committed so far has its leaf.
            feed.start_at_end(keeper)?;
        }
        let leaves = feed.consume_relevant(
            keeper,
            cursor,
            max,
            |changes| {
                Ok(changes
                    .iter()
                    .any(|change| may_be_logged(&change.resource_type)))
            },
            |tx, changes| self.append_leaves(keeper, tx, changes),
        )?;
        let mut done = Logged {
            changes: cursor.take_passed(),
            leaves: 0,
        };
        if let Some((changes, leaves)) = leaves {
            done.changes += changes;
            done.leaves = leaves;
        }
        Ok(done)
    }

    /// Appends every leaf of versions committed before the call: what a reader of the log
    /// for a version just written calls first. Stops after a bounded number of batches when
    /// writers keep it busy (the keeper's own loop takes the rest).
    pub fn catch_up_ledger(&self, keeper: &Caller) -> Result<(), RepositoryError> {
        let mut cursor = Cursor::default();
        for _ in 0..1_000 {
            if self.log_committed(keeper, &mut cursor, 2_000)?.changes == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The batch's transaction: reads the versions of kinds the log may record, decides as
    /// `ledger::leaf` does (an Observation once logged stays logged: its previous version's
    /// leaf is looked up, in this batch or the store) and appends the leaves, in order.
    /// Answers how many changes the batch held and how many leaves it appended. The versions,
    /// and the previous versions' leaves, are read for the whole batch at once (one statement
    /// each on PostgreSQL: read one by one, they were three statements for each change an
    /// Observation's update or deletion made).
    fn append_leaves(
        &self,
        keeper: &Caller,
        tx: &mut InTransaction<'_, '_>,
        changes: &[Change],
    ) -> Result<(usize, usize), RepositoryError> {
        let changes_logged: Vec<&Change> = changes
            .iter()
            .filter(|change| may_be_logged(&change.resource_type))
            .collect();
        let keys: Vec<(&str, &str, i64)> = changes_logged
            .iter()
            .map(|change| change.version_key())
            .collect();
        // The versions are read through the one read path, as the keeper (an operator);
        // committed before the batch was read, one is gone only if expunged since.
        let records = self.reader(keeper).versions_of(&keys)?;
        // Whether each version read is logged by its own kind (always, or a result
        // Observation), judged once; one that is not, after its first version, is logged as
        // its previous version was (in this batch or an earlier one): an Observation once
        // logged stays so.
        let by_kind: Vec<Option<bool>> = changes_logged
            .iter()
            .zip(&records)
            .map(|(change, record)| {
                record.as_ref().map(|record| {
                    always_logged(&change.resource_type)
                        || record
                            .content
                            .as_deref()
                            .is_some_and(stored_is_result_observation)
                })
            })
            .collect();
        let previous: Vec<(&str, &str, i64)> = changes_logged
            .iter()
            .zip(&by_kind)
            .filter(|(change, by_kind)| **by_kind == Some(false) && change.version > 1)
            .map(|(change, _)| {
                (
                    change.resource_type.as_str(),
                    change.id.as_str(),
                    change.version - 1,
                )
            })
            .collect();
        let previous_leaves = self.store().ledger_leaves_of(&previous)?;
        let previous_logged: HashSet<(&str, &str, i64)> = previous
            .iter()
            .zip(&previous_leaves)
            .filter_map(|(key, leaf)| leaf.as_ref().map(|_| *key))
            .collect();
        let mut pending = Vec::new();
        let mut logged_here: HashSet<(&str, &str)> = HashSet::new();
        for ((change, record), by_kind) in changes_logged.into_iter().zip(&records).zip(by_kind) {
            let (Some(record), Some(by_kind)) = (record, by_kind) else {
                continue;
            };
            let resource_type = change.resource_type.as_str();
            let id = change.id.as_str();
            let logged = by_kind
                || (change.version > 1
                    && (logged_here.contains(&(resource_type, id))
                        || previous_logged.contains(&(resource_type, id, change.version - 1))));
            if !logged {
                continue;
            }
            logged_here.insert((resource_type, id));
            let time = fhir_model::clock::format_instant(record.last_updated);
            pending.push(PendingLeaf {
                row: record.row,
                resource_type: record.resource_type.clone(),
                id: record.id.clone(),
                version: record.version,
                input: ledger::leaf::leaf_input(&LeafFields {
                    resource_type,
                    id: &record.id,
                    version: record.version,
                    content: record.content.as_deref(),
                    org: record.custodian.as_deref(),
                    time: &time,
                }),
            });
        }
        let leaves = pending.len();
        ledger::log::append(tx.transaction(), pending)?;
        Ok((changes.len(), leaves))
    }
}
