//! The server's background schedules (deadlines, indicators, the matching model, sign-in
//! pruning): each a named thread that does its work every interval until serving ends.

use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::time::Duration;

use anyhow::{Context, Result};

/// When a schedule first does its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum First {
    /// As soon as it starts.
    AtOnce,
    /// One interval after it starts.
    AfterInterval,
}

/// Runs `work` on a thread named `name` every `interval`, the first time as `first` says,
/// until the returned sender is dropped (or sent to): keep it for as long as the schedule
/// should run.
pub fn every(
    name: &str,
    interval: Duration,
    first: First,
    mut work: impl FnMut() + Send + 'static,
) -> Result<Sender<()>> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            if first == First::AtOnce {
                work();
            }
            loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => work(),
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
        .with_context(|| format!("starting the {name} schedule"))?;
    Ok(stop)
}
