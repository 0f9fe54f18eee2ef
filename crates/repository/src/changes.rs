//! Consumers of the change log: subscriptions and notifications, audit forwarding, the results
//! log's checkpointer, the analytics refresh. Each has a name and keeps its own position in a
//! checkpoint of the store, so it resumes after a restart where it stopped.
//!
//! [`ChangeFeed::consume`] hands a batch of changes to the consumer inside a write transaction
//! and moves the position in that same transaction: what the consumer writes to the store and
//! its position commit together, so each change is handled exactly once, across restarts and
//! with several instances of one consumer (they take the batch in turn). A consumer whose
//! effects leave the store (a message sent) reads with [`ChangeFeed::next`] and acknowledges
//! after: at least once, and it must tolerate a repeat.
//!
//! Most consumers act on few of the changes (a critical reading among thousands of
//! Observations, a change some subscription is about). [`ChangeFeed::consume_relevant`] reads
//! a batch first and asks the consumer whether any change in it is one it acts on; a batch that
//! asks nothing of it is passed without a transaction, the instance's [`Cursor`] moving past
//! it and the position stored only every [`Cursor::STORE_EVERY`] changes or
//! [`Cursor::STORE_AFTER`]. Each write through the API would otherwise commit (and on SQLite,
//! wait for its own sync of) one more transaction per consumer, all on the one writer. A
//! restart re-reads what was passed since the position was last stored, which asks nothing of
//! the consumer again.
//!
//! The log carries what changed (type, id, version, method), not content: a consumer reads the
//! resources through the [`crate::Reader`] under its own caller, like any other reader.

use std::time::{Duration, Instant};

use caller::Caller;
pub use store::Change;
use xxhash_rust::xxh3::xxh3_64;

use crate::{InTransaction, Repository, RepositoryError};

/// Where one instance of a consumer has read to: past its stored position over changes that
/// asked nothing of it. Kept by the consumer's loop from one call of
/// [`ChangeFeed::consume_relevant`] to the next.
#[derive(Debug, Default)]
pub struct Cursor {
    /// Every change up to here is handled, or asks nothing of the consumer.
    read: i64,
    /// The position stored in the store, as far as this instance knows.
    stored: i64,
    /// Since when `read` has been past `stored`.
    ahead_since: Option<Instant>,
    /// Changes passed without a transaction since [`Cursor::take_passed`] was last called.
    passed: usize,
}

impl Cursor {
    /// The most changes passed before the position is stored.
    pub const STORE_EVERY: i64 = 1_000;
    /// The longest a passed change waits for the position to be stored.
    pub const STORE_AFTER: Duration = Duration::from_secs(5);

    /// Whether this cursor has seen the consumer's stored position past the start of the log
    /// (it never moves back).
    pub(crate) fn has_started(&self) -> bool {
        self.stored > 0
    }

    /// How many changes were passed since the last call.
    pub fn take_passed(&mut self) -> usize {
        std::mem::take(&mut self.passed)
    }

    /// Takes in the stored position (another instance may have moved it).
    fn stored_at(&mut self, stored: i64) {
        self.stored = self.stored.max(stored);
        if self.read <= self.stored {
            self.read = self.stored;
            self.ahead_since = None;
        }
    }

    fn pass(&mut self, changes: &[Change]) {
        if let Some(last) = changes.last() {
            self.read = last.position;
            self.passed += changes.len();
            self.ahead_since.get_or_insert_with(Instant::now);
        }
    }

    /// Whether the position should be stored now.
    fn due(&self) -> bool {
        self.read > self.stored
            && (self.read - self.stored >= Self::STORE_EVERY
                || self
                    .ahead_since
                    .is_some_and(|since| since.elapsed() >= Self::STORE_AFTER))
    }
}

/// A named consumer of the change log.
pub struct ChangeFeed<'r> {
    repository: &'r Repository,
    checkpoint: String,
}

impl Repository {
    /// The position of the last change committed so far (0 for an empty log).
    pub fn change_log_end(&self) -> Result<i64, RepositoryError> {
        let mut end = 0;
        loop {
            let changes = self.store().changes(end, 10_000)?;
            match changes.last() {
                Some(last) => end = last.position,
                None => return Ok(end),
            }
        }
    }

    /// The change log as the consumer `consumer` sees it.
    pub fn change_feed(&self, consumer: &str) -> ChangeFeed<'_> {
        ChangeFeed {
            repository: self,
            checkpoint: format!("changes:{consumer}"),
        }
    }
}

impl ChangeFeed<'_> {
    /// The position of the last change the consumer handled (0 before the first).
    pub fn position(&self) -> Result<i64, RepositoryError> {
        match self.repository.store().checkpoint(&self.checkpoint)? {
            None => Ok(0),
            // A position that does not parse is not taken for the start: that would hand the
            // consumer every change again.
            Some(value) => value.parse().map_err(|_| {
                RepositoryError::Internal(format!(
                    "the change log position {} is not a number: {value:?}",
                    self.checkpoint
                ))
            }),
        }
    }

    /// Up to `limit` changes after the consumer's position, without moving it.
    pub fn next(&self, limit: usize) -> Result<Vec<Change>, RepositoryError> {
        Ok(self.repository.store().changes(self.position()?, limit)?)
    }

    /// Records that the consumer has handled every change up to `position`.
    pub fn acknowledge(&self, caller: &Caller, position: i64) -> Result<(), RepositoryError> {
        self.repository.with_transaction(caller, |tx| {
            tx.set_checkpoint(&self.checkpoint, Some(&position.to_string()))?;
            Ok(())
        })
    }

    /// Hands up to `limit` changes after the consumer's position to `work`, in a transaction
    /// that also moves the position past them, and answers what `work` answered (`None` when
    /// there was nothing new). If `work` fails, nothing it wrote is kept and the position stays.
    pub fn consume<T>(
        &self,
        caller: &Caller,
        limit: usize,
        work: impl FnMut(&mut InTransaction<'_, '_>, &[Change]) -> Result<T, RepositoryError>,
    ) -> Result<Option<T>, RepositoryError> {
        Ok(self
            .handle_batch(caller, 0, limit, work)?
            .map(|(value, _)| value))
    }

    /// The transaction of [`Self::consume`]: up to `limit` changes after `from` or the stored
    /// position, whichever is further, handed to `work`, the position moved past them; answers
    /// what `work` answered and the new position.
    fn handle_batch<T>(
        &self,
        caller: &Caller,
        from: i64,
        limit: usize,
        mut work: impl FnMut(&mut InTransaction<'_, '_>, &[Change]) -> Result<T, RepositoryError>,
    ) -> Result<Option<(T, i64)>, RepositoryError> {
        let lock = self.advisory_lock();
        self.repository.with_transaction(caller, |tx| {
            // Other instances of this consumer wait here; the position read after the lock is
            // the one the last of them committed.
            tx.lock_key(lock)?;
            let changes = self
                .repository
                .store()
                .changes(self.position()?.max(from), limit)?;
            let Some(last) = changes.last() else {
                return Ok(None);
            };
            let value = work(&mut InTransaction::new(self.repository, tx), &changes)?;
            tx.set_checkpoint(&self.checkpoint, Some(&last.position.to_string()))?;
            Ok(Some((value, last.position)))
        })
    }

    /// [`Self::consume`] for a consumer that acts on few changes: reads batches after the
    /// cursor and passes each one `relevant` finds asks nothing of the consumer, without a
    /// transaction; the first batch with one goes to `work` as in [`Self::consume`]
    /// (its changes read again after the lock, from the cursor or the stored position,
    /// whichever is further). `relevant` runs outside any transaction, after the batch was
    /// read, so it sees whatever was committed before the batch's changes. It must not answer
    /// `false` for a change `work` would act on. Answers `None` at the end of the log; the
    /// cursor's passed changes are counted in [`Cursor::take_passed`].
    pub fn consume_relevant<T>(
        &self,
        caller: &Caller,
        cursor: &mut Cursor,
        limit: usize,
        mut relevant: impl FnMut(&[Change]) -> Result<bool, RepositoryError>,
        work: impl FnMut(&mut InTransaction<'_, '_>, &[Change]) -> Result<T, RepositoryError>,
    ) -> Result<Option<T>, RepositoryError> {
        loop {
            cursor.stored_at(self.position()?);
            let changes = self.repository.store().changes(cursor.read, limit)?;
            if !changes.is_empty() && relevant(&changes)? {
                break;
            }
            cursor.pass(&changes);
            if cursor.due() {
                self.store(caller, cursor)?;
            }
            if changes.is_empty() {
                return Ok(None);
            }
        }
        let done = self.handle_batch(caller, cursor.read, limit, work)?;
        Ok(done.map(|(value, position)| {
            cursor.stored_at(position);
            value
        }))
    }

    /// Stores the cursor's position (never moving the stored one back).
    pub fn store(&self, caller: &Caller, cursor: &mut Cursor) -> Result<(), RepositoryError> {
        if cursor.read > cursor.stored {
            self.advance_to(caller, cursor.read)?;
            cursor.stored_at(cursor.read);
        }
        Ok(())
    }

    /// Moves the consumer's position to `position` (never back): for a consumer that acts
    /// outside the store (publishing elsewhere) and records what it has done only afterwards,
    /// at least once.
    pub fn advance_to(&self, caller: &Caller, position: i64) -> Result<(), RepositoryError> {
        let lock = self.advisory_lock();
        self.repository.with_transaction(caller, |tx| {
            tx.lock_key(lock)?;
            if self.position()? < position {
                tx.set_checkpoint(&self.checkpoint, Some(&position.to_string()))?;
            }
            Ok(())
        })
    }

    /// For a consumer that has never run: its position moves past every change so far, so it
    /// starts with what comes next instead of replaying the store's history (a publisher
    /// configured on a store in use). Answers whether it moved.
    pub fn start_at_end(&self, caller: &Caller) -> Result<bool, RepositoryError> {
        if self
            .repository
            .store()
            .checkpoint(&self.checkpoint)?
            .is_some()
        {
            return Ok(false);
        }
        let end = self.repository.change_log_end()?;
        let lock = self.advisory_lock();
        self.repository.with_transaction(caller, |tx| {
            tx.lock_key(lock)?;
            if self
                .repository
                .store()
                .checkpoint(&self.checkpoint)?
                .is_some()
            {
                return Ok(false);
            }
            tx.set_checkpoint(&self.checkpoint, Some(&end.to_string()))?;
            Ok(true)
        })
    }

    /// The advisory lock the instances of this consumer take turns under.
    fn advisory_lock(&self) -> i64 {
        (xxh3_64(self.checkpoint.as_bytes()) >> 1) as i64
    }
}
