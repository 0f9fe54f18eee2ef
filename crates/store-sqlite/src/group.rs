//! Group commit on the one writer connection.
//!
//! With `synchronous = FULL` every SQLite commit waits for its own sync of the log, and writes
//! every page it changed into the log again, though the transaction before it changed most of
//! the same pages (the last leaf of each index a new row lands in). Under many clients the
//! writer spent its time syncing and writing the same pages over.
//!
//! Here a store transaction is a savepoint inside a SQLite transaction that several of them
//! share: a group. A transaction that commits while other writers wait for the connection
//! releases its savepoint into the group and hands the connection on, then waits for the group
//! to be committed; the last one in (no writer waiting, or [`MAX_MEMBERS`] in the group)
//! commits it, one sync for all of them, and wakes the rest. Each learns the outcome of the
//! commit that made it durable: no transaction answers success before its changes are on disk,
//! and if that commit fails, every transaction in the group fails. A transaction that rolls
//! back rolls back to its savepoint and leaves the others' changes in the group.
//!
//! Inside a group a transaction sees the changes of the ones committed into it before it (on
//! this connection); reads on the readers' connections see them only once the group commits.
//! A transaction that takes a key lock ([`Member::fresh_group`]) before writing anything starts
//! a group of its own, the one before committed first: the locks that order writers on
//! PostgreSQL order them on the committed state here too, as reads made after the lock on
//! another connection expect.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rusqlite::Connection;
use store::StoreError;

use crate::{lock, map_error};

/// The most transactions one commit makes durable: a bound on how long the first of them waits.
pub(crate) const MAX_MEMBERS: usize = 64;

const SAVEPOINT: &str = "SAVEPOINT meridian_tx";
const RELEASE: &str = "RELEASE meridian_tx";
const ROLLBACK_TO: &str = "ROLLBACK TO meridian_tx; RELEASE meridian_tx";

/// The writer connection and the group its open SQLite transaction holds, if any.
pub(crate) struct Writer {
    pub(crate) connection: Connection,
    group: Option<Arc<Group>>,
    /// Store transactions committed into the open group.
    members: usize,
    /// Groups committed so far.
    commits: usize,
}

impl Deref for Writer {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.connection
    }
}

impl DerefMut for Writer {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.connection
    }
}

impl Writer {
    /// Opens the group's SQLite transaction when none is open.
    fn open(&mut self) -> Result<(), StoreError> {
        if self.group.is_none() {
            self.connection
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(map_error)?;
            self.group = Some(Arc::default());
            self.members = 0;
        }
        Ok(())
    }

    /// Commits the open group, if any, and tells its members how it went.
    fn settle(&mut self) -> Result<(), StoreError> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        let members = std::mem::take(&mut self.members);
        let outcome = if members == 0 {
            // Nothing was committed into it: nothing to make durable.
            self.connection.execute_batch("ROLLBACK").map_err(map_error)
        } else {
            self.commits += 1;
            self.connection.execute_batch("COMMIT").map_err(map_error)
        };
        if outcome.is_err() && !self.connection.is_autocommit() {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
        group.finish(outcome.as_ref().map(|_| ()).map_err(ToString::to_string));
        outcome
    }
}

/// The outcome of a group's commit, for the members waiting on it.
#[derive(Default)]
struct Group {
    outcome: Mutex<Option<Result<(), String>>>,
    done: Condvar,
}

impl Group {
    fn finish(&self, outcome: Result<(), String>) {
        *lock(&self.outcome) = Some(outcome);
        self.done.notify_all();
    }

    fn wait(&self) -> Result<(), StoreError> {
        let mut outcome = lock(&self.outcome);
        loop {
            match &*outcome {
                Some(Ok(())) => return Ok(()),
                Some(Err(error)) => {
                    return Err(StoreError::Unavailable(format!(
                        "the commit this transaction was part of failed: {error}"
                    )));
                }
                None => outcome = self.done.wait(outcome).unwrap_or_else(|p| p.into_inner()),
            }
        }
    }
}

/// The writer connection, shared by group.
pub(crate) struct Writers {
    writer: Mutex<Writer>,
    /// Threads waiting for the writer to begin a transaction.
    waiting: AtomicUsize,
}

impl Writers {
    pub(crate) fn new(connection: Connection) -> Writers {
        Writers {
            writer: Mutex::new(Writer {
                connection,
                group: None,
                members: 0,
                commits: 0,
            }),
            waiting: AtomicUsize::new(0),
        }
    }

    /// The writer for work of its own outside any transaction (a bulk load's switches), with
    /// whatever group was open committed first.
    pub(crate) fn exclusive(&self) -> Result<MutexGuard<'_, Writer>, StoreError> {
        let mut writer = lock(&self.writer);
        writer.settle()?;
        Ok(writer)
    }

    /// A store transaction: a savepoint in the open group, or in a new one.
    pub(crate) fn begin(&self) -> Result<Member<'_>, StoreError> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut writer = lock(&self.writer);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        writer.open()?;
        let mut member = Member {
            writers: self,
            writer: Some(writer),
            savepoint: false,
            changes_at_start: 0,
        };
        member.savepoint()?;
        Ok(member)
    }
}

/// One store transaction in a group.
pub(crate) struct Member<'a> {
    writers: &'a Writers,
    /// `None` once the connection was handed on.
    writer: Option<MutexGuard<'a, Writer>>,
    /// Whether its savepoint is open.
    savepoint: bool,
    /// The connection's count of changed rows when the savepoint opened.
    changes_at_start: u64,
}

impl Member<'_> {
    fn writer(&mut self) -> &mut Writer {
        self.writer
            .as_mut()
            .expect("the writer is held until the transaction ends")
    }

    pub(crate) fn connection(&self) -> &Connection {
        self.writer
            .as_ref()
            .expect("the writer is held until the transaction ends")
    }

    fn savepoint(&mut self) -> Result<(), StoreError> {
        let writer = self.writer();
        writer.execute_batch(SAVEPOINT).map_err(map_error)?;
        let changes = writer.total_changes();
        self.changes_at_start = changes;
        self.savepoint = true;
        Ok(())
    }

    /// Before the transaction has changed anything, commits the group it joined and starts it
    /// in a group of its own, so that everything committed before it is visible to every
    /// connection. After a change, nothing: what it reads on the writer includes the group's.
    pub(crate) fn fresh_group(&mut self) -> Result<(), StoreError> {
        let changes_at_start = self.changes_at_start;
        let writer = self.writer();
        if writer.members == 0 || writer.total_changes() != changes_at_start {
            return Ok(());
        }
        writer.execute_batch(RELEASE).map_err(map_error)?;
        self.savepoint = false;
        let writer = self.writer();
        writer.settle()?;
        writer.open()?;
        self.savepoint()
    }

    /// Commits the transaction: into the group, then waits for the group's commit.
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        let writers = self.writers;
        self.writer().execute_batch(RELEASE).map_err(map_error)?;
        self.savepoint = false;
        let writer = self.writer();
        writer.members += 1;
        let group = Arc::clone(
            writer
                .group
                .as_ref()
                .expect("a member's group is open until it commits"),
        );
        if writers.waiting.load(Ordering::SeqCst) > 0 && writer.members < MAX_MEMBERS {
            // The next writer commits the group, or hands it on in turn.
            self.writer = None;
            return group.wait();
        }
        writer.settle()
    }
}

impl Drop for Member<'_> {
    fn drop(&mut self) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        if self.savepoint
            && let Err(error) = writer.execute_batch(ROLLBACK_TO)
        {
            tracing::error!(%error, "rolling back a SQLite savepoint failed");
        }
        self.savepoint = false;
        // The group holds others' changes: it is committed by the next writer, or now.
        if (writer.members == 0 || self.writers.waiting.load(Ordering::SeqCst) == 0)
            && let Err(error) = writer.settle()
        {
            tracing::error!(%error, "committing a SQLite group after a rollback failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Barrier};

    use store::Store;

    use crate::{Durability, SqliteConfig, SqliteStore};

    fn open(dir: &std::path::Path) -> SqliteStore {
        SqliteStore::open(SqliteConfig {
            path: dir.join("t.db"),
            durability: Durability::Full,
            max_readers: 4,
        })
        .unwrap()
    }

    fn fresh(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("meridian-group-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn every_commit_answered_is_kept_and_a_rollback_leaves_the_rest_of_its_group() {
        let dir = fresh("many");
        let store = Arc::new(open(&dir));
        const THREADS: usize = 16;
        const EACH: usize = 40;
        let start = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (store, start) = (Arc::clone(&store), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    for n in 0..EACH {
                        let mut tx = store.begin().unwrap();
                        tx.set_checkpoint(&format!("t{t}-{n}"), Some("x")).unwrap();
                        if n % 7 == 3 {
                            drop(tx); // rolled back, inside whatever group it joined
                        } else {
                            tx.commit().unwrap();
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let groups = crate::lock(&store.writers.writer).commits;
        drop(store);
        let reopened = open(&dir);
        let kept = reopened.checkpoints_with_prefix("t").unwrap();
        let expected: Vec<String> = (0..THREADS)
            .flat_map(|t| {
                (0..EACH)
                    .filter(|n| n % 7 != 3)
                    .map(move |n| format!("t{t}-{n}"))
            })
            .collect();
        let mut names: Vec<String> = kept.into_iter().map(|(name, _)| name).collect();
        let mut expected_sorted = expected.clone();
        names.sort();
        expected_sorted.sort();
        assert_eq!(
            names, expected_sorted,
            "every commit answered, and no rolled-back one"
        );
        assert!(
            groups < expected.len(),
            "{} commits made {groups} groups: 16 writers at once share commits",
            expected.len()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_lock_taken_in_a_group_first_commits_the_group_for_every_connection() {
        let dir = fresh("lock");
        let store = Arc::new(open(&dir));
        let holding = Arc::new(Barrier::new(2));
        // A writes, then commits once B waits for the writer: A's commit joins the group,
        // hands the writer on to B, and waits for the group.
        let a = {
            let (store, holding) = (Arc::clone(&store), Arc::clone(&holding));
            std::thread::spawn(move || {
                let mut tx = store.begin().unwrap();
                tx.set_checkpoint("a", Some("1")).unwrap();
                holding.wait();
                while store.writers.waiting.load(Ordering::SeqCst) == 0 {
                    std::thread::yield_now();
                }
                tx.commit()
            })
        };
        holding.wait();
        let mut b = store.begin().unwrap();
        assert_eq!(
            store.checkpoint("a").unwrap(),
            None,
            "A is in the open group: not yet committed for the readers"
        );
        assert!(!a.is_finished(), "A waits for its group's commit");
        b.lock_key(1).unwrap();
        assert_eq!(store.checkpoint("a").unwrap().as_deref(), Some("1"));
        b.set_checkpoint("b", Some("2")).unwrap();
        b.commit().unwrap();
        a.join().unwrap().unwrap();
        assert_eq!(store.checkpoint("b").unwrap().as_deref(), Some("2"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
