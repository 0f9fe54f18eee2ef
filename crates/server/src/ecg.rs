//! ECGs recorded as FHIR Observations (`docs/ecg.md`): `Observation/[id]/$ecg-tracing` draws
//! the recording on ECG paper, `Observation/[id]/$ecg-measure` records its measurements. Both
//! run under the caller: the recording is read through the read path, the measurements are
//! written as the caller, and the patient is on the request's trail. (An ECG stored as a DICOM
//! waveform is measured when it is stored and drawn by its WADO-RS `rendered` resource.)

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::lanes::blocking;
use crate::operations::{Handled, Invocation, Registered, fhir_json};
use crate::request::Produces;
use crate::response::json_response;

pub(crate) const OPERATIONS: &[Registered] = &[
    Registered {
        decl: imaging::operations::ECG_TRACING,
        handler: tracing,
        produces: Produces::Drawing,
    },
    fhir_json(imaging::operations::ECG_MEASURE, measure),
];

/// Whether the request asks for PNG rather than SVG (`_format=png`, or an Accept that takes
/// PNG but not SVG).
fn wants_png(call: &Invocation) -> bool {
    let format = call
        .fhir
        .query
        .iter()
        .find(|(name, _)| name == "_format")
        .map(|(_, value)| value.as_str());
    if let Some(format) = format {
        return matches!(format, "png" | "image/png");
    }
    let accept = call
        .fhir
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("image/png") && !accept.contains("image/svg+xml")
}

fn tracing(call: Invocation) -> Handled {
    Box::pin(async move {
        let png = wants_png(&call);
        let id = call.id().to_owned();
        let fhir = call.fhir;
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let (patient, drawing) = blocking(move || {
            let (observation, tracing) = imaging::operations::recording(&repository, &caller, &id)?;
            let measurements = tracing.measure().ok();
            let title = imaging::operations::title(&observation);
            let drawing = if png {
                imaging::ecg::paper::png(&tracing, measurements.as_ref(), 5.0)?
            } else {
                imaging::ecg::paper::svg(&tracing, measurements.as_ref(), &title).into_bytes()
            };
            let patient = crate::audit::patients_mentioned(&observation);
            Ok::<_, crate::ApiError>((patient, drawing))
        })
        .await?;
        fhir.audit.patients(patient);
        let media_type = if png { "image/png" } else { "image/svg+xml" };
        Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, media_type),
                (header::CACHE_CONTROL, "private, no-store"),
            ],
            drawing,
        )
            .into_response())
    })
}

fn measure(call: Invocation) -> Handled {
    Box::pin(async move {
        let id = call.id().to_owned();
        let fhir = call.fhir;
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let measured = blocking(move || {
            Ok::<_, crate::ApiError>(imaging::operations::measure(&repository, &caller, &id)?)
        })
        .await?;
        fhir.audit
            .patients(crate::audit::patients_mentioned(&measured));
        Ok(json_response(
            StatusCode::OK,
            serde_json::to_vec(&measured).unwrap_or_default(),
            fhir.pretty,
        ))
    })
}
