//! The workflow service's operations over HTTP, thin over `workflow`: finding and booking
//! slots, check-in by electronic health code, the institution's worklist, the escalation of
//! what is overdue and the turnaround figures. Plain REST writes of Tasks, Appointments and
//! CarePlans need nothing here: the service's write hook judges them in their transactions.

use axum::http::StatusCode;
use axum::response::Response;
use fhir_model::{IssueCode, clock};
use repository::{RepositoryError, SearchRequest};
use serde_json::{Value, json};
use workflow::operations as ops;

use crate::ApiError;
use crate::lanes::blocking;
use crate::operations::{Handled, Invocation, Registered, fhir_json};
use crate::request::{BodyKind, operation_params, param, read_json};
use crate::response::json_response;

/// The workflow operations, each with its handler.
pub(crate) const OPERATIONS: &[Registered] = &[
    fhir_json(ops::FIND, find),
    fhir_json(ops::BOOK, book),
    fhir_json(ops::CHECK_IN, check_in),
    fhir_json(ops::WORKLIST, worklist),
    fhir_json(ops::ESCALATE, escalate),
    fhir_json(ops::TURNAROUND, turnaround),
];

fn answer(value: &Value, pretty: bool) -> Response {
    json_response(
        StatusCode::OK,
        serde_json::to_vec(value).unwrap_or_default(),
        pretty,
    )
}

/// `Slot/$find` and `Appointment/$find`: the free slots the caller may book now (reserved
/// ones only with a `referral` that admits the caller, or once released), as Slots or as
/// proposed Appointments.
fn find(call: Invocation) -> Handled {
    Box::pin(async move {
        let limit = call.state.config().max_body_bytes;
        let as_appointments = call.resource_type() == "Appointment";
        let fhir = call.fhir;
        let params = operation_params(&fhir, &call.method, call.body, limit).await?;
        let repository = call.state.repository().clone();
        let config = call.state.config().workflow.clone();
        let caller = fhir.caller.clone();
        let found = blocking(move || {
            let reader = repository.reader(&caller);
            Ok(workflow::booking::find(
                &reader,
                &config,
                &params,
                clock::now_micros(),
            )?)
        })
        .await?;
        let base = &fhir.base;
        let entries: Vec<Value> = found
            .into_iter()
            .map(|(record, slot)| {
                if as_appointments {
                    let mut appointment = json!({
                        "resourceType": "Appointment",
                        "status": "proposed",
                        "slot": [{"reference": format!("Slot/{}", record.id)}],
                    });
                    for key in [
                        "start",
                        "end",
                        "serviceType",
                        "specialty",
                        "appointmentType",
                    ] {
                        if let Some(value) = slot.get(key) {
                            appointment[key] = value.clone();
                        }
                    }
                    json!({"resource": appointment, "search": {"mode": "match"}})
                } else {
                    json!({
                        "fullUrl": format!("{base}/Slot/{}", record.id),
                        "resource": slot,
                        "search": {"mode": "match"},
                    })
                }
            })
            .collect();
        let bundle = json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": entries.len(),
            "entry": entries,
        });
        Ok(answer(&bundle, fhir.pretty))
    })
}

/// `Appointment/$book`: the Appointment (or Parameters with an `appointment` resource) is
/// completed from its slot and created; the slot is taken in the same transaction. 201 with
/// the appointment; 409 when the slot is taken.
fn book(call: Invocation) -> Handled {
    Box::pin(async move {
        let limit = call.state.config().max_body_bytes;
        let fhir = call.fhir;
        let body = read_json(&fhir.headers, call.body, limit, BodyKind::Resource).await?;
        let appointment = if body.get("resourceType").and_then(Value::as_str) == Some("Parameters")
        {
            body["parameter"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == "appointment")
                .and_then(|p| p.get("resource"))
                .cloned()
                .ok_or_else(|| {
                    ApiError::bad_request(
                        IssueCode::Required,
                        "the Parameters carry no 'appointment' resource",
                    )
                })?
        } else {
            body
        };
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let written = {
            let repository = repository.clone();
            blocking(move || Ok(workflow::booking::book(&repository, &caller, appointment)?))
                .await?
        };
        fhir.audit.written(&repository, &written);
        Ok(crate::fhir::written_response(&fhir, &written))
    })
}

/// `Appointment/$check-in`: Parameters with the resident's electronic health `code` (and
/// `pin` for a printed one). The code is resolved by the identity service under the caller;
/// the resident's appointment today in a slot of the caller's institution becomes
/// `checked-in` and is returned.
fn check_in(call: Invocation) -> Handled {
    Box::pin(async move {
        let limit = call.state.config().max_body_bytes;
        let Some((mpi, codes)) = call.state.identity().map(|i| {
            (
                std::sync::Arc::clone(&i.mpi),
                std::sync::Arc::clone(&i.codes),
            )
        }) else {
            return Err(ApiError::from(RepositoryError::NotSupported(
                "check-in by health code needs the identity services".into(),
            )));
        };
        let fhir = call.fhir;
        let params = operation_params(&fhir, &call.method, call.body, limit).await?;
        let Some(code) = param(&params, "code").map(str::to_owned) else {
            return Err(ApiError::bad_request(
                IssueCode::Required,
                "$check-in needs the resident's health code ('code')",
            ));
        };
        let pin = param(&params, "pin").map(str::to_owned);
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let checked_in = blocking(move || {
            let patients = codes.identify(&mpi, &repository, &caller, &code, pin.as_deref())?;
            Ok::<_, ApiError>(workflow::booking::check_in(
                &repository,
                &caller,
                &patients,
                clock::now_micros(),
            )?)
        })
        .await?;
        fhir.audit
            .patients(crate::audit::patients_mentioned(&checked_in));
        Ok(answer(&checked_in, fhir.pretty))
    })
}

/// `Task/$worklist`: the open Tasks addressed to the caller's institution (or, for the
/// platform, to the `party` given), soonest due first, as a searchset.
fn worklist(call: Invocation) -> Handled {
    Box::pin(async move {
        let fhir = call.fhir;
        let params = fhir.criteria();
        let party = match (&fhir.caller.organization, param(&params, "party")) {
            (Some(own), Some(asked)) if own != asked => {
                return Err(ApiError::from(RepositoryError::Forbidden(
                    "an institution sees its own worklist".into(),
                )));
            }
            (Some(own), _) => own.clone(),
            (None, Some(asked)) => asked.to_owned(),
            (None, None) => {
                return Err(ApiError::bad_request(
                    IssueCode::Required,
                    "whose worklist: give party=Organization/ID",
                ));
            }
        };
        let mut search = vec![
            ("party".to_owned(), party),
            (
                "status".to_owned(),
                search::registry::OPEN_TASK_STATES.join(","),
            ),
            ("_sort".to_owned(), "due".to_owned()),
        ];
        for (name, value) in &params {
            if matches!(
                name.as_str(),
                "code" | "patient" | "priority" | "_count" | "due"
            ) {
                search.push((name.clone(), value.clone()));
            }
        }
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let base = fhir.base.clone();
        let bundle = {
            let repository = repository.clone();
            blocking(move || {
                Ok(repository
                    .reader(&caller)
                    .search(&base, &SearchRequest::of_type("Task", search))?)
            })
            .await?
        };
        fhir.audit.bundle(&repository, &bundle);
        Ok(json_response(StatusCode::OK, bundle, fhir.pretty))
    })
}

/// `Task/$escalate` (administrators): escalates what is overdue at `now` (an instant; the
/// present when absent). Returns the Tasks escalated.
fn escalate(call: Invocation) -> Handled {
    Box::pin(async move {
        let limit = call.state.config().max_body_bytes;
        let fhir = call.fhir;
        let params = operation_params(&fhir, &call.method, call.body, limit).await?;
        let now = match param(&params, "now") {
            Some(text) => clock::parse_instant(text).ok_or_else(|| {
                ApiError::bad_request(
                    IssueCode::Value,
                    format!("now must be an instant with a time zone, not '{text}'"),
                )
            })?,
            None => clock::now_micros(),
        };
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let escalated =
            blocking(move || Ok(workflow::deadline::escalate(&repository, &caller, now)?)).await?;
        let parameters: Vec<Value> = escalated
            .iter()
            .map(|id| json!({"name": "escalated", "valueReference": {"reference": format!("Task/{id}")}}))
            .collect();
        Ok(answer(
            &json!({"resourceType": "Parameters", "parameter": parameters}),
            fhir.pretty,
        ))
    })
}

/// `Task/$turnaround?month=YYYY-MM`: per institution addressed, the requests closed that
/// month and how long they took. An institution sees the requests it made or received.
fn turnaround(call: Invocation) -> Handled {
    Box::pin(async move {
        let fhir = call.fhir;
        let params = fhir.criteria();
        let month = match param(&params, "month") {
            Some(month)
                if month.len() == 7 && clock::parse_range(&format!("{month}-01")).is_some() =>
            {
                month.to_owned()
            }
            Some(other) => {
                return Err(ApiError::bad_request(
                    IssueCode::Value,
                    format!("month is YYYY-MM, not '{other}'"),
                ));
            }
            None => clock::format_instant(clock::now_micros())[..7].to_owned(),
        };
        let organization = fhir.caller.organization.clone();
        let repository = call.state.repository().clone();
        let figures = blocking(move || {
            Ok(workflow::deadline::turnaround(
                &**repository.store(),
                &month,
                organization.as_deref(),
            )?)
        })
        .await?;
        Ok(answer(&figures, fhir.pretty))
    })
}
