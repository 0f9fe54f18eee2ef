//! Chronic-disease management's edge (`docs/chronic.md`): `EpisodeOfCare/$worklist` over
//! HTTP, and the thread that runs the `chronic` change-log consumer (registry entries from
//! diagnoses, alerts from critical readings) as soon as anything is written.

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

/// Starts the consumer's thread (`crate::keeper`): registry entries and alerts as soon as
/// anything is written.
pub fn start(state: &crate::AppState) -> std::io::Result<crate::KeeperGuard> {
    let pace = crate::keeper::Pace {
        batch: 2_000,
        // It passes most batches without a transaction, but each look at the change log is
        // two statements: let writes gather a little (an alert waits at most this long more).
        settle: std::time::Duration::from_millis(100),
    };
    crate::keeper::start(
        state,
        "chronic",
        pace,
        |repository, keeper, cursor, batch| {
            let done = ::chronic::consumer::process(repository, keeper, cursor, batch)?;
            if done.registrations + done.alerts > 0 {
                tracing::info!(
                    registrations = done.registrations,
                    alerts = done.alerts,
                    "chronic-disease management"
                );
            }
            Ok(done.changes)
        },
    )
}
