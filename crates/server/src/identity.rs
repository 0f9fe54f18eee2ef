//! The identity operations over HTTP: `Patient/$match`, PIXm (`Patient/$ihe-pix`), the health
//! code (`Patient/[id]/$health-code`, `Patient/$resolve-health-code`,
//! `Patient/$revoke-health-code`), the master-record operations (`Person/[id]/$link`,
//! `Person/[id]/$unlink`, `Person/$merge`) and the review queue (`Task/[id]/$accept-match`,
//! `Task/[id]/$reject-match`; the queue itself is an ordinary Task search), and the matching
//! model (`Person/$model` reports it, `Person/$estimate-model` re-estimates it from the
//! Patients the server holds). PDQm is ordinary Patient search; residents are found by ordinary
//! Person search. The identity service declares these operations (`residents::operations`);
//! here each is bound to its handler, which reads the request and calls the service.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use caller::Caller;
use fhir_model::IssueCode;
use fhir_model::clock;
use fhir_model::operation::OperationDecl;
use repository::Repository;
use residents::compare::Field;
use residents::health_code::{CodeKind, HealthCodes};
use residents::mpi::{LearningOutcome, ModelOrigin, Mpi, ReviewDecision};
use residents::operations as ops;
use serde_json::{Value, json};

use crate::lanes::blocking;
use crate::operations::{Handled, Handler, Invocation, Registered};
use crate::request::{BodyKind, Produces, optional_parameters, parameters, read_json};
use crate::response::json_response;
use crate::{ApiError, AppState};

/// The identity services the server exposes.
#[derive(Clone)]
pub struct IdentityServices {
    pub mpi: Arc<Mpi>,
    pub codes: Arc<HealthCodes>,
}

/// The identity service's operations, each with its handler (`operations::Registry` takes
/// them when the services are enabled).
pub(crate) const OPERATIONS: &[Registered] = &[
    bind(ops::MATCH, match_patients),
    bind(ops::IHE_PIX, pix),
    bind(ops::HEALTH_CODE, health_code),
    bind(ops::RESOLVE_HEALTH_CODE, resolve_health_code),
    bind(ops::REVOKE_HEALTH_CODE, revoke_health_code),
    bind(ops::LINK, link),
    bind(ops::UNLINK, unlink),
    bind(ops::MERGE, merge),
    bind(ops::MODEL, model),
    bind(ops::ESTIMATE_MODEL, estimate_model),
    bind(ops::ACCEPT_MATCH, accept_match),
    bind(ops::REJECT_MATCH, reject_match),
];

const fn bind(decl: OperationDecl, handler: Handler) -> Registered {
    Registered {
        decl,
        handler,
        produces: Produces::FhirJson,
    }
}

/// What an identity operation works with, on its blocking thread.
struct Services {
    mpi: Arc<Mpi>,
    codes: Arc<HealthCodes>,
    repository: Arc<Repository>,
}

impl Services {
    fn of(state: &AppState) -> Result<Services, ApiError> {
        // The registry holds these operations only when the services are enabled.
        let Some(services) = state.identity() else {
            return Err(ApiError::NotFound(
                "the identity services are not enabled on this server".into(),
            ));
        };
        Ok(Services {
            mpi: Arc::clone(&services.mpi),
            codes: Arc::clone(&services.codes),
            repository: Arc::clone(state.repository()),
        })
    }
}

/// A POST operation: `work` runs on a blocking thread with the services, the caller, the
/// instance id (empty at the type level) and the body (a Parameters, or `{}` when empty);
/// what it returns is the 200 answer, with the `fullUrl`s of a Bundle made absolute.
fn post(
    call: Invocation,
    work: fn(&Services, &Caller, &str, &Value) -> Result<Value, ApiError>,
) -> Handled {
    Box::pin(async move {
        let services = Services::of(&call.state)?;
        let limit = call.state.config().max_body_bytes;
        let fhir = call.fhir;
        let parameters = read_json(&fhir.headers, call.body, limit, BodyKind::Resource).await?;
        let ctx = fhir.caller.clone();
        let id = call.id.unwrap_or_default();
        // The patients the request names (a link's source and target), and below those the
        // answer shows (a match's candidates), for the audit trail.
        fhir.audit
            .patients(crate::audit::patients_mentioned(&parameters));
        let mut answer = blocking(move || work(&services, &ctx, &id, &parameters)).await?;
        fhir.audit
            .patients(crate::audit::patients_mentioned(&answer));
        if let Some(entries) = answer.get_mut("entry").and_then(Value::as_array_mut) {
            for entry in entries {
                if let Some(url) = entry.get("fullUrl").and_then(Value::as_str) {
                    entry["fullUrl"] = json!(format!("{}/{url}", fhir.base));
                }
            }
        }
        Ok(answer_response(&answer, fhir.pretty))
    })
}

fn answer_response(answer: &Value, pretty: bool) -> Response {
    json_response(
        StatusCode::OK,
        serde_json::to_vec(answer).unwrap_or_default(),
        pretty,
    )
}

/// `Patient/$ihe-pix` (GET).
fn pix(call: Invocation) -> Handled {
    Box::pin(async move {
        let services = Services::of(&call.state)?;
        let query = call.fhir.criteria();
        let ctx = call.fhir.caller.clone();
        let answer =
            blocking(move || cross_reference(&services.mpi, &services.repository, &ctx, &query))
                .await?;
        call.fhir
            .audit
            .patients(crate::audit::patients_mentioned(&answer));
        Ok(answer_response(&answer, call.fhir.pretty))
    })
}

/// `Person/$model` (GET).
fn model(call: Invocation) -> Handled {
    Box::pin(async move {
        let services = Services::of(&call.state)?;
        let answer = model_parameters(&services.mpi, None);
        Ok(answer_response(&answer, call.fhir.pretty))
    })
}

fn match_patients(call: Invocation) -> Handled {
    post(call, |s, ctx, _, body| {
        find_matches(&s.mpi, &s.repository, ctx, body)
    })
}

fn health_code(call: Invocation) -> Handled {
    post(call, |s, ctx, id, body| {
        let printed = optional_parameters(body)?
            .and_then(|p| find_parameter(p, "printed"))
            .map(|p| {
                p.get("valueBoolean")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| {
                        invalid(
                            "'printed' takes valueBoolean",
                            "Parameters.parameter.valueBoolean",
                        )
                    })
            })
            .transpose()?
            .unwrap_or(false);
        let kind = if printed {
            CodeKind::Printed
        } else {
            CodeKind::Dynamic
        };
        let issued = s.codes.issue(&s.mpi, &s.repository, ctx, id, kind)?;
        let mut parameters = vec![
            json!({"name": "code", "valueString": issued.code}),
            json!({"name": "expires", "valueInstant": clock::format_instant(issued.expires)}),
            json!({"name": "qr-svg", "valueAttachment": {"contentType": "image/svg+xml", "data": STANDARD.encode(issued.qr_svg.as_bytes())}}),
            json!({"name": "qr-png", "valueAttachment": {"contentType": "image/png", "data": STANDARD.encode(&issued.qr_png)}}),
        ];
        if let Some(pin) = issued.pin {
            parameters.push(json!({"name": "pin", "valueString": pin}));
        }
        Ok(json!({"resourceType": "Parameters", "parameter": parameters}))
    })
}

fn resolve_health_code(call: Invocation) -> Handled {
    post(call, |s, ctx, _, body| {
        let parameters = parameters(body)?;
        let code = string_parameter(parameters, "code")?
            .ok_or_else(|| invalid("the Parameters carry no 'code'", "Parameters.parameter"))?;
        let pin = string_parameter(parameters, "pin")?;
        let resolved = s
            .codes
            .resolve(&s.mpi, &s.repository, ctx, &code, pin.as_deref())?;
        let mut out = vec![
            json!({"name": "person", "resource": repository::parse_stored(&resolved.person)?}),
        ];
        let mut identifiers: Vec<Value> = Vec::new();
        for patient in &resolved.patients {
            let resource = repository::parse_stored(patient)?;
            for identifier in resource
                .get("identifier")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !identifiers.contains(identifier) {
                    identifiers.push(identifier.clone());
                }
            }
            out.push(json!({"name": "patient", "resource": resource}));
        }
        out.extend(
            identifiers
                .into_iter()
                .map(|i| json!({"name": "identifier", "valueIdentifier": i})),
        );
        Ok(json!({"resourceType": "Parameters", "parameter": out}))
    })
}

fn revoke_health_code(call: Invocation) -> Handled {
    post(call, |s, ctx, _, body| {
        let code = string_parameter(parameters(body)?, "code")?
            .ok_or_else(|| invalid("the Parameters carry no 'code'", "Parameters.parameter"))?;
        s.codes.revoke(&s.mpi, &s.repository, ctx, &code)?;
        Ok(
            json!({"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational", "diagnostics": "the health code is revoked"}]}),
        )
    })
}

fn link(call: Invocation) -> Handled {
    post(call, |s, ctx, id, body| {
        let patient = reference_parameter(parameters(body)?, "patient", "Patient")?;
        s.mpi.link(&s.repository, ctx, id, &patient)?;
        read_resource(&s.repository, ctx, "Person", id)
    })
}

fn unlink(call: Invocation) -> Handled {
    post(call, |s, ctx, id, body| {
        let patient = reference_parameter(parameters(body)?, "patient", "Patient")?;
        s.mpi.unlink(&s.repository, ctx, id, &patient)?;
        read_resource(&s.repository, ctx, "Person", id)
    })
}

fn estimate_model(call: Invocation) -> Handled {
    post(call, |s, ctx, _, body| {
        optional_parameters(body)?;
        // Runs here, on the request's blocking thread; the answer waits for it (seconds for
        // thousands of Patients, minutes for a million: the schedule is for those).
        let outcome = s.mpi.learn(&s.repository, ctx)?;
        Ok(model_parameters(&s.mpi, Some(&outcome)))
    })
}

fn merge(call: Invocation) -> Handled {
    post(call, |s, ctx, _, body| {
        let parameters = parameters(body)?;
        let source = reference_parameter(parameters, "source", "Person")?;
        let target = reference_parameter(parameters, "target", "Person")?;
        s.mpi.merge(&s.repository, ctx, &source, &target)?;
        read_resource(&s.repository, ctx, "Person", &target)
    })
}

fn accept_match(call: Invocation) -> Handled {
    post(call, |s, ctx, id, _| {
        Ok(s.mpi
            .review(&s.repository, ctx, id, ReviewDecision::Accept)?)
    })
}

fn reject_match(call: Invocation) -> Handled {
    post(call, |s, ctx, id, _| {
        Ok(s.mpi
            .review(&s.repository, ctx, id, ReviewDecision::Reject)?)
    })
}

/// `Person/$model`: the matching model in use (where it came from, the prior, and per field and
/// level m, u and the weight in bits), the thresholds, and what the last re-estimation did;
/// after `$estimate-model`, that estimation's outcome.
fn model_parameters(mpi: &Mpi, outcome: Option<&LearningOutcome>) -> Value {
    let matcher = mpi.matcher();
    let model = &matcher.model;
    let mut parameters = Vec::new();
    match mpi.model_origin() {
        ModelOrigin::BuiltIn => {
            parameters.push(json!({"name": "origin", "valueCode": "built-in"}));
        }
        ModelOrigin::Estimated(estimated) => {
            parameters.push(json!({"name": "origin", "valueCode": "estimated"}));
            parameters.push(
                json!({"name": "estimated", "valueInstant": clock::format_instant(estimated.at)}),
            );
            parameters.push(json!({"name": "records", "valueInteger": estimated.records}));
            parameters.push(json!({"name": "blocked-pairs", "valueInteger": estimated.blocked_pairs.min(i32::MAX as usize)}));
            parameters.push(json!({"name": "iterations", "valueInteger": estimated.iterations}));
            parameters.push(json!({"name": "converged", "valueBoolean": estimated.converged}));
            parameters.push(json!({"name": "expected-matches", "valueDecimal": (estimated.expected_matches * 100.0).round() / 100.0}));
        }
    }
    parameters.push(json!({"name": "prior", "valueDecimal": model.prior}));
    parameters
        .push(json!({"name": "auto-link-threshold", "valueDecimal": matcher.thresholds.auto_link}));
    parameters.push(json!({"name": "review-threshold", "valueDecimal": matcher.thresholds.review}));
    if let Some(frequencies) = &matcher.frequencies {
        let (family, given) = frequencies.distinct();
        parameters.push(json!({"name": "name-frequencies", "part": [
            {"name": "names-counted", "valueInteger": frequencies.total()},
            {"name": "family-names", "valueInteger": family},
            {"name": "given-names", "valueInteger": given},
        ]}));
    }
    for field in Field::ALL {
        let f = field as usize;
        let mut parts = vec![json!({"name": "name", "valueCode": field.name()})];
        for level in 1..=field.levels() {
            let weight = model.weight(field, level as u8);
            parts.push(json!({"name": "level", "part": [
                {"name": "level", "valueInteger": level},
                {"name": "meaning", "valueString": field.level_label(level as u8)},
                {"name": "m", "valueDecimal": model.m[f][level]},
                {"name": "u", "valueDecimal": model.u[f][level]},
                {"name": "weight", "valueDecimal": (weight * 100.0).round() / 100.0},
            ]}));
        }
        parameters.push(json!({"name": "field", "part": parts}));
    }
    parameters.push(json!({"name": "learning", "valueCode": if mpi.learning_running() { "running" } else { "idle" }}));
    if let Some(last) = outcome.cloned().or_else(|| mpi.last_learning()) {
        let mut parts = vec![
            json!({"name": "started", "valueInstant": clock::format_instant(last.at)}),
            json!({"name": "records", "valueInteger": last.records}),
            json!({"name": "adopted", "valueBoolean": last.adopted}),
            json!({"name": "persons-merged", "valueInteger": last.persons_merged}),
            json!({"name": "reviews-queued", "valueInteger": last.reviews_queued}),
            json!({"name": "reviews-closed", "valueInteger": last.reviews_closed}),
        ];
        if let Some(reason) = &last.refused {
            parts.push(json!({"name": "refused", "valueString": reason}));
        }
        parameters.push(json!({"name": "last-estimation", "part": parts}));
    }
    json!({"resourceType": "Parameters", "parameter": parameters})
}

/// `Patient/$match`: a searchset of the Patients of every resident the given Patient may be,
/// each with its score and match grade; the resident's Person comes along as an include.
fn find_matches(
    mpi: &Mpi,
    repository: &Repository,
    ctx: &Caller,
    body: &Value,
) -> Result<Value, ApiError> {
    let parameters = parameters(body)?;
    let resource = find_parameter(parameters, "resource")
        .and_then(|p| p.get("resource"))
        .ok_or_else(|| {
            invalid(
                "$match needs the Patient in the 'resource' parameter",
                "Parameters.parameter",
            )
        })?;
    if resource.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return Err(invalid(
            "the 'resource' parameter must be a Patient",
            "Parameters.parameter.resource",
        ));
    }
    let issues: Vec<_> = repository
        .validate(resource)
        .into_iter()
        .filter(fhir_model::Issue::is_error)
        .collect();
    if !issues.is_empty() {
        return Err(repository::RepositoryError::Invalid(issues).into());
    }
    let only_certain = match find_parameter(parameters, "onlyCertainMatches") {
        None => false,
        Some(p) => p
            .get("valueBoolean")
            .and_then(Value::as_bool)
            .ok_or_else(|| {
                invalid(
                    "'onlyCertainMatches' takes valueBoolean",
                    "Parameters.parameter.valueBoolean",
                )
            })?,
    };
    let count = match find_parameter(parameters, "count") {
        None => 10,
        Some(p) => p
            .get("valueInteger")
            .and_then(Value::as_u64)
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                invalid(
                    "'count' takes a valueInteger from 1 to 100",
                    "Parameters.parameter.valueInteger",
                )
            })? as usize,
    };
    let results = mpi.find_matches(repository, ctx, resource, only_certain, count)?;
    let mut entries = Vec::new();
    for result in &results {
        let score = (result.verdict.score.probability * 10_000.0).round() / 10_000.0;
        for patient in &result.patients {
            entries.push(json!({
                "fullUrl": format!("Patient/{}", patient.id),
                "resource": repository::parse_stored(patient)?,
                "search": {
                    "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/match-grade", "valueCode": result.grade.code()}],
                    "mode": "match",
                    "score": score,
                }
            }));
        }
        entries.push(json!({
            "fullUrl": format!("Person/{}", result.person.id),
            "resource": repository::parse_stored(&result.person)?,
            "search": {"mode": "include"}
        }));
    }
    let total = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .count();
    Ok(json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "searchset",
        "total": total,
        "entry": entries,
    }))
}

/// PIXm (ITI-83).
fn cross_reference(
    mpi: &Mpi,
    repository: &Repository,
    ctx: &Caller,
    query: &[(String, String)],
) -> Result<Value, ApiError> {
    let mut source = None;
    let mut targets = Vec::new();
    for (name, value) in query {
        match name.as_str() {
            "sourceIdentifier" => {
                if source.is_some() {
                    return Err(invalid(
                        "sourceIdentifier may be given once",
                        "sourceIdentifier",
                    ));
                }
                source = Some(value.clone());
            }
            "targetSystem" => targets.extend(value.split(',').map(str::to_owned)),
            "_format" | "_pretty" => {}
            other => {
                return Err(invalid(
                    format!("'{other}' is not a parameter of $ihe-pix"),
                    other,
                ));
            }
        }
    }
    let source = source.ok_or_else(|| {
        invalid(
            "$ihe-pix needs sourceIdentifier=system|value",
            "sourceIdentifier",
        )
    })?;
    let Some((system, value)) = source
        .split_once('|')
        .filter(|(s, v)| !s.is_empty() && !v.is_empty())
    else {
        return Err(invalid(
            "sourceIdentifier must be system|value, both present",
            "sourceIdentifier",
        ));
    };
    let result = mpi.cross_reference(repository, ctx, system, value, &targets)?;
    let mut parameters: Vec<Value> = result
        .identifiers
        .iter()
        .map(|(s, v)| json!({"name": "targetIdentifier", "valueIdentifier": {"system": s, "value": v}}))
        .collect();
    parameters.extend(
        result
            .patients
            .iter()
            .map(|p| json!({"name": "targetId", "valueReference": {"reference": p}})),
    );
    let mut out = json!({"resourceType": "Parameters"});
    if !parameters.is_empty() {
        out["parameter"] = Value::Array(parameters);
    }
    Ok(out)
}

fn invalid(message: impl Into<String>, expression: &str) -> ApiError {
    ApiError::BadRequest(fhir_model::Issue::error(IssueCode::Invalid, message).at(expression))
}

fn read_resource(
    repository: &Repository,
    ctx: &Caller,
    resource_type: &str,
    id: &str,
) -> Result<Value, ApiError> {
    let record = repository.read(ctx, resource_type, id)?;
    Ok(repository::parse_stored(&record)?)
}

fn find_parameter<'a>(parameters: &'a [Value], name: &str) -> Option<&'a Value> {
    parameters
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
}

fn string_parameter(parameters: &[Value], name: &str) -> Result<Option<String>, ApiError> {
    match find_parameter(parameters, name) {
        None => Ok(None),
        Some(p) => p
            .get("valueString")
            .and_then(Value::as_str)
            .map(|s| Some(s.to_owned()))
            .ok_or_else(|| {
                invalid(
                    format!("'{name}' takes valueString"),
                    "Parameters.parameter.valueString",
                )
            }),
    }
}

/// A `valueReference` parameter to `resource_type/id`: the id.
fn reference_parameter(
    parameters: &[Value],
    name: &str,
    resource_type: &str,
) -> Result<String, ApiError> {
    let reference = find_parameter(parameters, name)
        .and_then(|p| p.pointer("/valueReference/reference"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            invalid(
                format!("the Parameters need '{name}' as a valueReference to a {resource_type}"),
                "Parameters.parameter",
            )
        })?;
    reference
        .strip_prefix(&format!("{resource_type}/"))
        .filter(|id| repository::meta::is_valid_id(id))
        .map(str::to_owned)
        .ok_or_else(|| {
            invalid(
                format!("'{name}' must reference a {resource_type} as {resource_type}/[id]"),
                "Parameters.parameter.valueReference",
            )
        })
}
