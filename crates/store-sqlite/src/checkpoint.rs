//! WAL checkpoints on a thread of their own.
//!
//! SQLite's default is to checkpoint inside the commit that pushes the log past a threshold:
//! the writer stops to copy the log's pages into the database file and sync both. Under a bulk
//! load that was 8% of the writer's time, and the writer is the one thread every write waits
//! for. Here the writer's commit only wakes the checkpointer, which copies pages on the other
//! core while the writer goes on.
//!
//! A passive checkpoint never blocks the writer, but the log only starts over from its
//! beginning when a write transaction begins with every frame copied, which a writer that is
//! always busy never does. So past a hard limit the writer copies what is left itself (by then
//! little: the checkpointer kept up with the rest), and the log restarts at its next
//! transaction. The log stays bounded at about the hard limit.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;
use store::StoreError;

use crate::map_error;

/// When checkpoints happen, in pages of the log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// A commit that leaves the log this long wakes the checkpointer.
    pub soft: i32,
    /// A commit that leaves the log this long copies the rest itself, so the log can restart.
    pub hard: i32,
}

impl Limits {
    /// 16 MiB and 128 MiB of 4 KiB pages (SQLite's own threshold is 1,000 pages).
    pub(crate) const DEFAULT: Limits = Limits {
        soft: 4_000,
        hard: 32_000,
    };
}

#[derive(Default)]
struct State {
    requested: bool,
    stopping: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The checkpointing thread; stopped and joined when dropped.
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing with `connection` (its own, on the same database) for commits made
    /// on `writer`.
    pub(crate) fn start(
        writer: &mut Connection,
        connection: Connection,
        limits: Limits,
    ) -> Result<Checkpointer, StoreError> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || run(&shared, &connection))
                .map_err(|e| StoreError::Internal(format!("starting the checkpointer: {e}")))?
        };
        let hook_shared = Arc::clone(&shared);
        writer
            .wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages| {
                if pages >= limits.hard {
                    // An error here would make the committed transaction report failure.
                    if let Err(error) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                        tracing::debug!(%error, "writer's WAL checkpoint did not run");
                    }
                } else if pages >= limits.soft {
                    let mut state = hook_shared.lock();
                    if !state.requested {
                        state.requested = true;
                        hook_shared.wake.notify_one();
                    }
                }
                Ok(())
            }))
            .map_err(map_error)?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }
}

fn run(shared: &Shared, connection: &Connection) {
    loop {
        {
            let mut state = shared.lock();
            while !state.requested && !state.stopping {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.stopping {
                return;
            }
            state.requested = false;
        }
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "WAL checkpoint failed");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the checkpoint thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use super::*;

    fn open(path: &Path) -> Connection {
        let connection = Connection::open(path).unwrap();
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .unwrap();
        connection
    }

    /// A database with a writer and a checkpointer, in a directory of its own.
    fn database(name: &str, limits: Limits) -> (PathBuf, Connection, Checkpointer) {
        let dir = std::env::temp_dir().join(format!("meridian-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let mut writer = open(&path);
        writer
            .execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
            .unwrap();
        let checkpointer = Checkpointer::start(&mut writer, open(&path), limits).unwrap();
        (dir, writer, checkpointer)
    }

    /// Commits `batches` transactions of 40 rows of 1 KB (about 11 pages each).
    fn write(writer: &Connection, batches: i64) {
        for batch in 0..batches {
            writer.execute_batch("BEGIN").unwrap();
            for k in 0..40 {
                writer
                    .execute(
                        "INSERT INTO t (k, v) VALUES (?1, zeroblob(1000))",
                        [batch * 40 + k],
                    )
                    .unwrap();
            }
            writer.execute_batch("COMMIT").unwrap();
        }
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    #[test]
    fn the_checkpointer_copies_the_log_into_the_database() {
        // The writer never checkpoints (hard limit out of reach): only the thread can.
        let limits = Limits {
            soft: 20,
            hard: i32::MAX,
        };
        let (dir, writer, checkpointer) = database("ckpt-copy", limits);
        write(&writer, 20);
        // 800 KB were committed; until a checkpoint they live in the log only.
        let deadline = Instant::now() + Duration::from_secs(30);
        while size(&dir.join("t.db")) < 600_000 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            size(&dir.join("t.db")) >= 600_000,
            "nothing was checkpointed into the database file"
        );
        drop(checkpointer);
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_busy_writer_keeps_the_log_bounded_and_every_commit_succeeds() {
        // The thread is never woken (soft limit out of reach): the writer's own checkpoint at
        // the hard limit must let the log start over.
        let limits = Limits {
            soft: i32::MAX,
            hard: 100,
        };
        let (dir, writer, checkpointer) = database("ckpt-bound", limits);
        write(&writer, 100);
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 4000);
        // About 1,100 pages went through the log; it never held more than the limit and a
        // transaction (a frame is a page and a 24-byte header).
        let log = size(&dir.join("t.db-wal"));
        assert!(log > 0, "the log is in use");
        assert!(log < 160 * (4096 + 24), "the log grew to {log} bytes");
        drop(checkpointer);
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
