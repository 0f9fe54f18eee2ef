//! Chronic-disease management's edge (`docs/chronic.md`): `EpisodeOfCare/$worklist` over
//! HTTP, and the thread that runs the `chronic` change-log consumer (registry entries from
//! diagnoses, alerts from critical readings) as soon as anything is written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;

use crate::lanes::blocking;
use crate::operations::{Handled, Invocation, Registered, fhir_json};
use crate::request::operation_params;
use crate::response::json_response;

pub(crate) const OPERATIONS: &[Registered] =
    &[fhir_json(::chronic::operations::WORKLIST, worklist)];

/// `EpisodeOfCare/$worklist`: a family doctor's or institution's follow-ups due and
/// overdue, uncontrolled residents and alerts not yet acknowledged, read under the caller.
fn worklist(call: Invocation) -> Handled {
    Box::pin(async move {
        let limit = call.state.config().max_body_bytes;
        let fhir = call.fhir;
        let params = operation_params(&fhir, &call.method, call.body, limit).await?;
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let list = blocking(move || {
            Ok::<_, crate::ApiError>(::chronic::operations::invoke_worklist(
                &repository,
                &caller,
                &params,
            )?)
        })
        .await?;
        fhir.audit.patients(crate::audit::patients_mentioned(&list));
        Ok(json_response(
            StatusCode::OK,
            serde_json::to_vec(&list).unwrap_or_default(),
            fhir.pretty,
        ))
    })
}

/// Keeps the chronic-disease consumer running; dropping it stops the thread.
pub struct ChronicGuard {
    stop: Arc<AtomicBool>,
}

impl Drop for ChronicGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts the consumer: it catches up with the change log, then waits for this server's
/// writes (or polls every two seconds, for other servers' writes on a shared store). It runs
/// as the platform's own registry keeper, the operator: no client's caller.
pub fn start(state: &crate::AppState) -> std::io::Result<ChronicGuard> {
    let stop = Arc::new(AtomicBool::new(false));
    let repository = Arc::clone(state.repository());
    let written = state.written();
    let stopping = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("chronic".into())
        .spawn(move || {
            let keeper = caller::Caller::operator("chronic");
            let mut seen = 0;
            let mut cursor = repository::Cursor::default();
            while !stopping.load(Ordering::Relaxed) {
                match ::chronic::consumer::process(&repository, &keeper, &mut cursor, 2_000) {
                    Ok(done) if done.changes > 0 => {
                        if done.registrations + done.alerts > 0 {
                            tracing::info!(
                                registrations = done.registrations,
                                alerts = done.alerts,
                                "chronic-disease management"
                            );
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "chronic-disease consumer"),
                }
                seen = written.wait_after(seen, Duration::from_secs(2));
            }
        })?;
    Ok(ChronicGuard { stop })
}
