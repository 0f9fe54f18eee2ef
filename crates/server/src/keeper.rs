//! The threads that keep the platform's own change-log consumers running on this server (the
//! verifiable log, chronic-disease management): each catches up with the change log, then
//! waits for this server's next write (or two seconds, for other servers' writes on a shared
//! store), as the operator caller it is given: no client's caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use caller::Caller;
use repository::{Cursor, Repository, RepositoryError};

/// Keeps a consumer's thread running; dropping it stops the thread.
pub struct KeeperGuard {
    stop: Arc<AtomicBool>,
}

impl Drop for KeeperGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How a keeper paces itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// The most changes one step reads.
    pub batch: usize,
    /// After a step that read less than a full batch, how long the keeper lets writes gather
    /// before its next step. Each step reads the change log (on PostgreSQL two statements
    /// at least), and a consumer that commits for nearly every batch (the ledger's: every
    /// request leaves an audit event) would add a commit, on the embedded store a sync, to
    /// every write.
    pub settle: Duration,
}

/// Starts the thread `name`: `step` is called with the repository, the keeper's caller
/// (`Caller::operator(name)`), its cursor and the batch size, and answers how many changes it
/// read past; it is called again at once after a full batch, after `pace.settle` after a
/// smaller one, and after this server's next write (or two seconds) at the end of the log.
pub(crate) fn start(
    state: &crate::AppState,
    name: &'static str,
    pace: Pace,
    mut step: impl FnMut(&Repository, &Caller, &mut Cursor, usize) -> Result<usize, RepositoryError>
    + Send
    + 'static,
) -> std::io::Result<KeeperGuard> {
    let stop = Arc::new(AtomicBool::new(false));
    let repository = Arc::clone(state.repository());
    let written = state.written();
    let stopping = Arc::clone(&stop);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let keeper = Caller::operator(name);
            let mut seen = 0;
            let mut cursor = Cursor::default();
            while !stopping.load(Ordering::Relaxed) {
                match step(&repository, &keeper, &mut cursor, pace.batch) {
                    Ok(changes) if changes >= pace.batch => continue,
                    Ok(changes) if changes > 0 => {
                        if !pace.settle.is_zero() {
                            std::thread::sleep(pace.settle);
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, consumer = name, "change-log consumer"),
                }
                seen = written.wait_after(seen, Duration::from_secs(2));
                if !pace.settle.is_zero() {
                    std::thread::sleep(pace.settle);
                }
            }
        })?;
    Ok(KeeperGuard { stop })
}
