//! The FHIR operations the imaging service owns, declared once (the server dispatches them and
//! lists them in its CapabilityStatement from this table): the tracing of an ECG recorded as
//! an `Observation` with `SampledData`, drawn, and its measurements recorded. Both read the
//! recording through the caller's read path; the measurements are written as the caller.

use caller::Caller;
use fhir_model::operation::{Audience, InvokeMethod, Level, OperationDecl, OperationKind};
use repository::{Repository, RepositoryError};
use serde_json::Value;

use crate::ImagingError;
use crate::ecg::{self, Tracing};

/// `GET Observation/[id]/$ecg-tracing`: the recording on ECG paper, as SVG (or PNG when
/// asked), with its measurements in the caption.
pub const ECG_TRACING: OperationDecl = OperationDecl {
    name: "$ecg-tracing",
    levels: &[Level::Instance],
    resource_types: &["Observation"],
    methods: &[InvokeMethod::Get],
    affects_state: false,
    definition: "https://meridian.example/fhir/OperationDefinition/Observation-ecg-tracing",
    kind: OperationKind::Operation,
    audience: Audience::Institutions,
};

/// `POST Observation/[id]/$ecg-measure`: measures the recording and writes (or rewrites) its
/// measurement Observation (`ecg-<hash>`, derived from the recording); answers it.
pub const ECG_MEASURE: OperationDecl = OperationDecl {
    name: "$ecg-measure",
    levels: &[Level::Instance],
    resource_types: &["Observation"],
    methods: &[InvokeMethod::Post],
    affects_state: true,
    definition: "https://meridian.example/fhir/OperationDefinition/Observation-ecg-measure",
    kind: OperationKind::Operation,
    audience: Audience::Institutions,
};

/// Every operation the imaging service owns.
pub const OPERATIONS: &[OperationDecl] = &[ECG_TRACING, ECG_MEASURE];

/// The recording `Observation/<id>` as `caller` may read it, and its tracing.
pub fn recording(
    repository: &Repository,
    caller: &Caller,
    id: &str,
) -> Result<(Value, Tracing), ImagingError> {
    let record = repository.read(caller, "Observation", id)?;
    let observation = repository::parse_stored(&record)?;
    let tracing = ecg::from_observation(&observation)?;
    Ok((observation, tracing))
}

/// The title of a recording's drawing: its code and when it was taken.
pub fn title(observation: &Value) -> String {
    let code = observation
        .pointer("/code/text")
        .or_else(|| observation.pointer("/code/coding/0/display"))
        .and_then(Value::as_str)
        .unwrap_or("ECG");
    let when = observation
        .get("effectiveDateTime")
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!("{code}  {when}").trim().to_owned()
}

/// Measures `Observation/<id>` and writes its measurement Observation as `caller`.
pub fn measure(repository: &Repository, caller: &Caller, id: &str) -> Result<Value, ImagingError> {
    let (observation, tracing) = recording(repository, caller, id)?;
    let measurements = tracing.measure().map_err(|e| {
        ImagingError::Unrenderable(format!("the recording cannot be measured: {e}"))
    })?;
    let subject = observation
        .pointer("/subject/reference")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ImagingError::BadRequest("the recording has no subject to measure for".into())
        })?;
    let source = format!("Observation/{id}");
    let measured_id = ecg::record::measurement_id(&source);
    if measured_id == id {
        return Err(ImagingError::BadRequest(
            "the Observation is itself a measurement".into(),
        ));
    }
    let result = ecg::record::observation(
        &measured_id,
        subject,
        observation.get("effectiveDateTime").and_then(Value::as_str),
        &source,
        ("https://meridian.example/sid/ecg-recording", &source),
        &measurements,
    );
    let written = repository.update(caller, "Observation", &measured_id, result, None)?;
    let record = written
        .record
        .ok_or_else(|| RepositoryError::Internal("the measurement was not written".into()))?;
    Ok(repository::parse_stored(&record)?)
}
