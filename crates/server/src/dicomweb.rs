//! DICOMweb (PS3.18) at `/dicomweb`: STOW-RS, QIDO-RS and WADO-RS over the `imaging` service.
//! Every request runs as the caller its bearer token names, through the access policy's
//! permission on ImagingStudy and its read path, and is on the audit trail (with the patients
//! whose studies it stored, found or retrieved) before its answer leaves. Errors are HTTP
//! statuses with a plain-text reason, as PS3.18 answers them; a stored instance's failure is
//! its failure reason in the STOW response.

use std::collections::HashMap;
use std::sync::Arc;

use access::audit::Interaction as Audited;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use caller::Caller;
use fhir_model::operation::{
    Audience, InvokeMethod, Level as OperationLevel, OperationDecl, OperationKind,
};
use imaging::ImagingError;
use imaging::archive::Outcome;
use imaging::multipart;
use imaging::qido::{Level, Query};
use repository::Interaction;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::audit::AuditNote;

/// The largest STOW-RS body accepted.
pub const MAX_STOW_BYTES: usize = 512 * 1024 * 1024;

pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    const INSTANCE: &str = "/dicomweb/studies/{study}/series/{series}/instances/{instance}";
    let dicomweb = Router::new()
        .route("/dicomweb/studies", get(studies).post(store))
        .route("/dicomweb/series", get(all_series))
        .route("/dicomweb/instances", get(all_instances))
        .route(
            "/dicomweb/studies/{study}",
            get(retrieve).post(store_in_study).delete(delete),
        )
        .route("/dicomweb/studies/{study}/metadata", get(metadata))
        .route("/dicomweb/studies/{study}/thumbnail", get(thumbnail))
        .route("/dicomweb/studies/{study}/series", get(series_in))
        .route("/dicomweb/studies/{study}/instances", get(instances_in))
        .route(
            "/dicomweb/studies/{study}/series/{series}",
            get(retrieve).delete(delete),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/metadata",
            get(metadata),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/thumbnail",
            get(thumbnail),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances",
            get(instances_in),
        )
        .route(INSTANCE, get(retrieve))
        .route(&format!("{INSTANCE}/metadata"), get(metadata))
        .route(&format!("{INSTANCE}/rendered"), get(rendered))
        .route(&format!("{INSTANCE}/thumbnail"), get(thumbnail))
        .route(&format!("{INSTANCE}/frames/{{frames}}"), get(frames))
        .route(&format!("{INSTANCE}/bulkdata/{{*path}}"), get(bulkdata))
        .route(
            &format!("{INSTANCE}/frames/{{frames}}/rendered"),
            get(frame_rendered),
        )
        .layer(axum::middleware::from_fn(cors));
    router.merge(dicomweb)
}

/// CORS (Fetch standard) for viewers served from another origin (OHIF): a preflight is
/// answered for any origin, and every answer to a request with an `Origin` may be read by it.
/// Any origin is safe here because nothing is ambient: every request carries its bearer token
/// in `Authorization`, which a page of another origin has only if the user signed in to it
/// (no cookie is ever read), and the token's caller is what the request may do.
async fn cors(request: Request, next: axum::middleware::Next) -> Response {
    let origin = request.headers().contains_key(header::ORIGIN);
    let preflight = request.method() == axum::http::Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Accept, Content-Type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        response
    } else {
        next.run(request).await
    };
    if origin || preflight {
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Content-Type, Content-Length, Content-Location, Warning"),
        );
    }
    response
}

/// The study, series and instance a URL names (its path parameters).
type Address = Path<HashMap<String, String>>;

fn parts(Path(address): Address) -> (String, Option<String>, Option<String>, Option<String>) {
    let mut address = address;
    (
        address.remove("study").unwrap_or_default(),
        address.remove("series"),
        address.remove("instance"),
        address.remove("frames"),
    )
}

fn problem(status: StatusCode, reason: &str) -> Response {
    let mut response = (status, format!("{reason}\n")).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn from_imaging(error: ImagingError) -> Response {
    match error {
        ImagingError::BadRequest(reason) => problem(StatusCode::BAD_REQUEST, &reason),
        ImagingError::NotFound(reason) => problem(StatusCode::NOT_FOUND, &reason),
        // PS3.18 8.3.5.1: a rendering the origin server cannot make is "not acceptable".
        ImagingError::Unrenderable(reason) => problem(StatusCode::NOT_ACCEPTABLE, &reason),
        ImagingError::Storage(reason) => {
            tracing::error!(%reason, "the archive's storage failed");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the archive's storage failed",
            )
        }
        ImagingError::Repository(error) => from_repository(error),
    }
}

fn from_repository(error: repository::RepositoryError) -> Response {
    let status = StatusCode::from_u16(fhir_model::Outcome::http_status(&error))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(%error, "a DICOMweb request failed");
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the record could not be reached",
        );
    }
    problem(status, &error.to_string())
}

/// The request's caller and its audit note; a request without a valid token is refused (and
/// recorded as an attempt by nobody known).
fn authenticated(
    state: &AppState,
    request: &Request,
    audited: Audited,
) -> impl Future<Output = Result<(Caller, AuditNote, String), Response>> + Send + use<> {
    let headers = request.headers().clone();
    let address = request
        .extensions()
        .get::<crate::PeerAddress>()
        .map(|p| p.0);
    let state = state.clone();
    async move { authenticate(&state, headers, address, audited).await }
}

async fn authenticate(
    state: &AppState,
    headers: HeaderMap,
    address: Option<std::net::IpAddr>,
    audited: Audited,
) -> Result<(Caller, AuditNote, String), Response> {
    let request_id = crate::request::request_id(&headers);
    let note = AuditNote::default();
    note.begin(audited, Some("ImagingStudy"));
    match crate::auth::caller(state, &headers, address, &request_id).await {
        Ok(caller) => Ok((caller, note, request_id)),
        Err(error) => {
            let mut nobody = Caller::anonymous(request_id.clone());
            nobody.address = address;
            let refused = match error {
                crate::ApiError::Unauthorized(reason) => problem(StatusCode::UNAUTHORIZED, &reason),
                other => other.into_response(&request_id),
            };
            Err(crate::audit::settle_noted(state, &nobody, &note, refused).await)
        }
    }
}

/// The DICOMweb base URL links in answers start with.
/// None when the Host header is not one to link to.
fn base(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let fhir = crate::host::link_base(headers, state.config()).ok()?;
    Some(format!(
        "{}/dicomweb",
        fhir.strip_suffix("/fhir").unwrap_or(&fhir)
    ))
}

fn bad_host() -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "the Host header is not a host this server answers for",
    )
}

/// `body` answered as `media_type`.
fn typed(body: Vec<u8>, media_type: &str) -> Response {
    let mut response = Response::new(Body::from(body));
    if let Ok(value) = HeaderValue::from_str(media_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// `parts` (each with its own Content-Type) as one `multipart/related` answer of `kind`.
fn multipart_response(kind: &str, parts: &[(String, Vec<u8>)]) -> Response {
    let boundary = format!("meridian-{}", uuid::Uuid::new_v4().simple());
    typed(
        multipart::build(&boundary, parts),
        &format!("multipart/related; type=\"{kind}\"; boundary={boundary}"),
    )
}

fn dicom_json(body: &Value) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom+json"),
    );
    response
}

// --- Deletion (administrators) ---

/// Deleting a study or series, as the access decision knows it: administrators only.
const DELETE: OperationDecl = OperationDecl {
    name: "$dicomweb-delete",
    levels: &[OperationLevel::System],
    resource_types: &[],
    methods: &[InvokeMethod::Delete],
    affects_state: true,
    definition: "",
    kind: OperationKind::Endpoint { path_segments: 0 },
    audience: Audience::Administrators,
};

async fn delete(State(state): State<AppState>, address: Address, request: Request) -> Response {
    let (study, series, _, _) = parts(address);
    let (caller, note, _) = match authenticated(&state, &request, Audited::Delete).await {
        Ok(authenticated) => authenticated,
        Err(refused) => return refused,
    };
    note.query(request.uri().path().to_owned());
    drop(request);
    let response = async {
        access::policy::may_invoke(&caller, &DELETE, None)
            .map_err(|denied| from_repository(repository::RepositoryError::Forbidden(denied.0)))?;
        let (repository, archive, caller2, study2) = (
            Arc::clone(state.repository()),
            state.archive(),
            caller.clone(),
            study.clone(),
        );
        let patient = tokio::task::spawn_blocking(move || {
            archive.delete(&repository, &caller2, &study2, series.as_deref())
        })
        .await
        .map_err(|_| problem(StatusCode::SERVICE_UNAVAILABLE, "the deletion failed"))?
        .map_err(from_imaging)?;
        note.patients(patient);
        note.with(|access| {
            access.add_resource(format!("ImagingStudy/{}", imaging::study::study_id(&study)))
        });
        Ok::<_, Response>(StatusCode::NO_CONTENT.into_response())
    }
    .await
    .unwrap_or_else(|response| response);
    crate::audit::settle_noted(&state, &caller, &note, response).await
}

// --- STOW-RS ---

async fn store(State(state): State<AppState>, request: Request) -> Response {
    stow(state, None, request).await
}

async fn store_in_study(
    State(state): State<AppState>,
    address: Address,
    request: Request,
) -> Response {
    let (study, _, _, _) = parts(address);
    stow(state, Some(study), request).await
}

async fn stow(state: AppState, study: Option<String>, request: Request) -> Response {
    let (caller, note, _) = match authenticated(&state, &request, Audited::Create).await {
        Ok(authenticated) => authenticated,
        Err(refused) => return refused,
    };
    let response = stow_as(&state, &caller, &note, study, request).await;
    crate::audit::settle_noted(&state, &caller, &note, response).await
}

async fn stow_as(
    state: &AppState,
    caller: &Caller,
    note: &AuditNote,
    study: Option<String>,
    request: Request,
) -> Response {
    if let Err(error) = state
        .repository()
        .permit(caller, Interaction::Create, "ImagingStudy")
    {
        return from_repository(error);
    }
    let Some(base) = base(state, request.headers()) else {
        return bad_host();
    };
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if multipart::media_type(&content_type) != "multipart/related" {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "STOW-RS takes multipart/related; type=\"application/dicom\"",
        );
    }
    if let Some(kind) = multipart::parameter(&content_type, "type")
        && !kind.eq_ignore_ascii_case("application/dicom")
    {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("parts of type {kind} are not stored: send application/dicom"),
        );
    }
    let Some(boundary) = multipart::parameter(&content_type, "boundary") else {
        return problem(
            StatusCode::BAD_REQUEST,
            "the Content-Type names no boundary",
        );
    };
    let body = match axum::body::to_bytes(request.into_body(), MAX_STOW_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("a STOW-RS request may carry at most {MAX_STOW_BYTES} bytes"),
            );
        }
    };
    let (repository, archive, caller2) = (
        Arc::clone(state.repository()),
        state.archive(),
        caller.clone(),
    );
    let endpoint_address = base.clone();
    // Splitting a body of up to 512 MiB and reading its instances is blocking work: done on
    // a blocking thread, the parts read where they lie in the body.
    let stored = tokio::task::spawn_blocking(move || {
        let parts = match multipart::split(&body, &boundary) {
            Ok(parts) => parts,
            Err(reason) => return Err(Box::new(problem(StatusCode::BAD_REQUEST, &reason))),
        };
        if let Some(other) = parts.iter().find_map(|p| {
            p.header("content-type")
                .map(multipart::media_type)
                .filter(|t| t != "application/dicom")
        }) {
            return Err(Box::new(problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("a part of type {other} is not stored: send application/dicom"),
            )));
        }
        let parts: Vec<&[u8]> = parts.iter().map(|p| p.body).collect();
        archive
            .store(
                &repository,
                &caller2,
                &parts,
                study.as_deref(),
                Some(&endpoint_address),
            )
            .map_err(|error| Box::new(from_repository(error)))
    })
    .await;
    let outcomes = match stored {
        Ok(Ok(outcomes)) => outcomes,
        Ok(Err(refused)) => return *refused,
        Err(_) => return problem(StatusCode::SERVICE_UNAVAILABLE, "storing failed"),
    };
    stow_response(note, &base, &outcomes)
}

/// The STOW-RS response (PS3.18 10.5.3): 200 when every instance was stored without
/// warning, 202 when some failed or were stored with a warning, 409 when none was stored.
fn stow_response(note: &AuditNote, base: &str, outcomes: &[Outcome]) -> Response {
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    let mut warned = false;
    let mut studies: Vec<&str> = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Stored {
                sop_class,
                sop_instance,
                study,
                patient,
                warning,
            } => {
                note.patients([patient.clone()]);
                note.with(|access| {
                    access.add_resource(format!("ImagingStudy/{}", imaging::study::study_id(study)))
                });
                if !studies.contains(&study.as_str()) {
                    studies.push(study);
                }
                let mut item = json!({
                    "00081150": {"vr": "UI", "Value": [sop_class]},
                    "00081155": {"vr": "UI", "Value": [sop_instance]},
                    "00081190": {"vr": "UR", "Value": [format!("{base}/studies/{study}/instances/{sop_instance}")]},
                });
                if let Some(warning) = warning {
                    warned = true;
                    item["00081196"] =
                        json!({"vr": "US", "Value": [imaging::part10::COERCION_OF_DATA_ELEMENTS]});
                    item["00000902"] = json!({"vr": "LO", "Value": [warning]});
                }
                referenced.push(item);
            }
            Outcome::Failed {
                sop_class,
                sop_instance,
                refusal,
            } => {
                let mut item = Map::new();
                if let Some(class) = sop_class {
                    item.insert("00081150".into(), json!({"vr": "UI", "Value": [class]}));
                }
                if let Some(instance) = sop_instance {
                    item.insert("00081155".into(), json!({"vr": "UI", "Value": [instance]}));
                }
                item.insert(
                    "00081197".into(),
                    json!({"vr": "US", "Value": [refusal.code]}),
                );
                item.insert(
                    "00000902".into(),
                    json!({"vr": "LO", "Value": [refusal.reason]}),
                );
                failed.push(Value::Object(item));
            }
        }
    }
    let mut body = Map::new();
    if studies.len() == 1 {
        body.insert(
            "00081190".into(),
            json!({"vr": "UR", "Value": [format!("{base}/studies/{}", studies[0])]}),
        );
    }
    if !referenced.is_empty() {
        body.insert("00081199".into(), json!({"vr": "SQ", "Value": referenced}));
    }
    if !failed.is_empty() {
        body.insert("00081198".into(), json!({"vr": "SQ", "Value": failed}));
    }
    let status = if referenced.is_empty() {
        StatusCode::CONFLICT
    } else if failed.is_empty() && !warned {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let mut response = dicom_json(&Value::Object(body));
    *response.status_mut() = status;
    response
}

// --- QIDO-RS ---

async fn studies(State(state): State<AppState>, request: Request) -> Response {
    qido(state, Level::Study, None, None, request).await
}

async fn all_series(State(state): State<AppState>, request: Request) -> Response {
    qido(state, Level::Series, None, None, request).await
}

async fn all_instances(State(state): State<AppState>, request: Request) -> Response {
    qido(state, Level::Instance, None, None, request).await
}

async fn series_in(State(state): State<AppState>, address: Address, request: Request) -> Response {
    let (study, _, _, _) = parts(address);
    qido(state, Level::Series, Some(study), None, request).await
}

async fn instances_in(
    State(state): State<AppState>,
    address: Address,
    request: Request,
) -> Response {
    let (study, series, _, _) = parts(address);
    qido(state, Level::Instance, Some(study), series, request).await
}

async fn qido(
    state: AppState,
    level: Level,
    study: Option<String>,
    series: Option<String>,
    request: Request,
) -> Response {
    let (caller, note, _) = match authenticated(&state, &request, Audited::SearchType).await {
        Ok(authenticated) => authenticated,
        Err(refused) => return refused,
    };
    let query_text = request.uri().query().unwrap_or("").to_owned();
    note.query(format!("{}?{query_text}", request.uri().path()));
    let response = async {
        state
            .repository()
            .permit(&caller, Interaction::Search, "ImagingStudy")
            .map_err(from_repository)?;
        let params: Vec<(String, String)> = form_urlencoded(&query_text);
        let query = Query::parse(level, study, series, &params).map_err(from_imaging)?;
        let (repository, archive, caller2) = (
            Arc::clone(state.repository()),
            state.archive(),
            caller.clone(),
        );
        let answer = tokio::task::spawn_blocking(move || {
            imaging::qido::search(&repository, &archive, &caller2, &query)
        })
        .await
        .map_err(|_| problem(StatusCode::SERVICE_UNAVAILABLE, "the search failed"))?
        .map_err(from_imaging)?;
        note.patients(answer.patients);
        let results: Vec<Value> = answer.results.into_iter().map(Value::Object).collect();
        Ok::<_, Response>(dicom_json(&Value::Array(results)))
    }
    .await
    .unwrap_or_else(|response| response);
    crate::audit::settle_noted(&state, &caller, &note, response).await
}

fn form_urlencoded(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

// --- WADO-RS ---

async fn retrieve(State(state): State<AppState>, address: Address, request: Request) -> Response {
    let (study, series, instance, _) = parts(address);
    wado(state, study, series, instance, false, request).await
}

async fn metadata(State(state): State<AppState>, address: Address, request: Request) -> Response {
    let (study, series, instance, _) = parts(address);
    wado(state, study, series, instance, true, request).await
}

async fn wado(
    state: AppState,
    study: String,
    series: Option<String>,
    instance: Option<String>,
    metadata: bool,
    request: Request,
) -> Response {
    let addressed = (study.clone(), series, instance);
    let (caller, note, _) = match authenticated(&state, &request, Audited::Read).await {
        Ok(authenticated) => authenticated,
        Err(refused) => return refused,
    };
    note.query(request.uri().path().to_owned());
    let base = base(&state, request.headers());
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*")
        .to_owned();
    drop(request);
    let response = async {
        state
            .repository()
            .permit(&caller, Interaction::Read, "ImagingStudy")
            .map_err(from_repository)?;
        let base = base.ok_or_else(bad_host)?;
        if !metadata && !accepts_dicom(&accept) {
            return Err(problem(
                StatusCode::NOT_ACCEPTABLE,
                "instances are retrieved as multipart/related; type=\"application/dicom\"",
            ));
        }
        let parts = located(
            &state,
            &caller,
            &note,
            addressed,
            move |archive, located| {
                let mut parts = Vec::with_capacity(located.len());
                for found in located {
                    if metadata {
                        let attributes = archive
                            .attributes(&found.object)
                            .map_err(ImagingError::Storage)?;
                        let instance_base = format!(
                            "{base}/studies/{study}/series/{}/instances/{}/",
                            found.series, found.instance
                        );
                        parts.push((
                            String::new(),
                            serde_json::to_vec(&imaging::wado::with_bulk_base(
                                attributes,
                                &instance_base,
                            ))
                            .unwrap_or_default(),
                        ));
                    } else {
                        let file = archive.file(&found.object).map_err(ImagingError::Storage)?;
                        parts.push((
                            format!(
                                "application/dicom; transfer-syntax={}",
                                found.object.transfer_syntax
                            ),
                            file,
                        ));
                    }
                }
                Ok(parts)
            },
        )
        .await?;
        if metadata {
            let mut body = b"[".to_vec();
            for (n, (_, json)) in parts.iter().enumerate() {
                if n > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(json);
            }
            body.push(b']');
            return Ok(typed(body, "application/dicom+json"));
        }
        Ok(multipart_response("application/dicom", &parts))
    }
    .await
    .unwrap_or_else(|response| response);
    crate::audit::settle_noted(&state, &caller, &note, response).await
}

/// The instances of a study, series or instance (`addressed`) as `caller` may see them, made
/// into an answer's parts by `work` on a blocking thread; the study and its patient are noted
/// on the request's trail.
async fn located(
    state: &AppState,
    caller: &Caller,
    note: &AuditNote,
    (study, series, instance): (String, Option<String>, Option<String>),
    work: impl FnOnce(
        &imaging::archive::Archive,
        &[imaging::wado::Located],
    ) -> Result<Vec<(String, Vec<u8>)>, ImagingError>
    + Send
    + 'static,
) -> Result<Vec<(String, Vec<u8>)>, Response> {
    let (repository, archive, caller) = (
        Arc::clone(state.repository()),
        state.archive(),
        caller.clone(),
    );
    let study2 = study.clone();
    let (parts, patient) = tokio::task::spawn_blocking(move || {
        let (located, patient) = imaging::wado::locate(
            &repository,
            &caller,
            &study2,
            series.as_deref(),
            instance.as_deref(),
        )?;
        Ok::<_, ImagingError>((work(&archive, &located)?, patient))
    })
    .await
    .map_err(|_| problem(StatusCode::SERVICE_UNAVAILABLE, "the retrieval failed"))?
    .map_err(from_imaging)?;
    note.patients(patient);
    note.with(|access| {
        access.add_resource(format!("ImagingStudy/{}", imaging::study::study_id(&study)))
    });
    Ok(parts)
}

/// Whether an Accept header admits DICOM instances in multipart/related.
fn accepts_dicom(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let kind = multipart::media_type(range);
        match kind.as_str() {
            "*/*" | "multipart/*" => true,
            "multipart/related" => multipart::parameter(range, "type")
                .is_none_or(|t| t.eq_ignore_ascii_case("application/dicom")),
            "application/dicom" => true,
            _ => false,
        }
    })
}

// --- Rendered frames, thumbnails and frames ---

/// What an image request asks of an instance.
enum Picture {
    Rendered(u32),
    Thumbnail,
    Frames(Vec<u32>),
    /// The bulk data a `BulkDataURI` of the instance's metadata names.
    Bulk(String),
}

async fn bulkdata(State(state): State<AppState>, address: Address, request: Request) -> Response {
    let Path(named) = &address;
    let path = named.get("path").cloned().unwrap_or_default();
    let (study, series, instance, _) = parts(address);
    picture(state, study, series, instance, Picture::Bulk(path), request).await
}

async fn rendered(State(state): State<AppState>, address: Address, request: Request) -> Response {
    let (study, series, instance, _) = parts(address);
    picture(
        state,
        study,
        series,
        instance,
        Picture::Rendered(1),
        request,
    )
    .await
}

async fn thumbnail(State(state): State<AppState>, address: Address, request: Request) -> Response {
    let (study, series, instance, _) = parts(address);
    picture(state, study, series, instance, Picture::Thumbnail, request).await
}

fn frame_numbers(list: &str) -> Option<Vec<u32>> {
    let numbers: Option<Vec<u32>> = list
        .split(',')
        .map(|n| n.trim().parse::<u32>().ok().filter(|n| *n > 0))
        .collect();
    numbers.filter(|n| !n.is_empty() && n.len() <= 4096)
}

async fn frame_rendered(
    State(state): State<AppState>,
    address: Address,
    request: Request,
) -> Response {
    let (study, series, instance, frames) = parts(address);
    let frames = frames.unwrap_or_default();
    match frame_numbers(&frames).as_deref() {
        Some([frame]) => {
            picture(
                state,
                study,
                series,
                instance,
                Picture::Rendered(*frame),
                request,
            )
            .await
        }
        _ => problem(
            StatusCode::BAD_REQUEST,
            &format!("'{frames}' is not one frame number (from 1)"),
        ),
    }
}

async fn frames(State(state): State<AppState>, address: Address, request: Request) -> Response {
    let (study, series, instance, frames) = parts(address);
    let frames = frames.unwrap_or_default();
    match frame_numbers(&frames) {
        Some(frames) => {
            picture(
                state,
                study,
                series,
                instance,
                Picture::Frames(frames),
                request,
            )
            .await
        }
        None => problem(
            StatusCode::BAD_REQUEST,
            &format!("'{frames}' is not a list of frame numbers (from 1)"),
        ),
    }
}

/// How frames are asked for (PS3.18 8.7.3.5): as JPEG images, or in a transfer syntax (none
/// named is explicit VR little endian, `*` is the stored one).
enum FramesAs {
    Jpeg,
    Syntax(Option<String>),
}

/// The first media range of `accept` that asks for frames.
fn frames_as(accept: &str) -> FramesAs {
    for range in accept.split(',') {
        let kind = multipart::media_type(range);
        let inner = multipart::parameter(range, "type").map(|t| t.to_ascii_lowercase());
        match (kind.as_str(), inner.as_deref()) {
            ("image/jpeg", _) | ("multipart/related", Some("image/jpeg")) => return FramesAs::Jpeg,
            ("multipart/related" | "application/octet-stream" | "*/*" | "multipart/*", _) => {
                return FramesAs::Syntax(multipart::parameter(range, "transfer-syntax"));
            }
            _ => {}
        }
    }
    FramesAs::Syntax(None)
}

/// Frames `numbers` of a stored file as asked: in the stored syntax, transcoded to explicit VR
/// little endian, or as JPEG images of their own size; another syntax is not acceptable.
fn frames_in(
    file: &[u8],
    numbers: &[u32],
    stored: &str,
    asked: &FramesAs,
) -> Result<Vec<(String, Vec<u8>)>, ImagingError> {
    use imaging::render::{self, EXPLICIT_VR_LITTLE_ENDIAN};
    let (syntax, frames) = match asked {
        FramesAs::Jpeg => {
            return numbers
                .iter()
                .map(|n| {
                    let rendering = render::Rendering {
                        frame: *n,
                        window: None,
                        format: render::Format::Jpeg { quality: 90 },
                        viewport: None,
                    };
                    Ok(("image/jpeg".to_owned(), render::render(file, &rendering)?))
                })
                .collect();
        }
        FramesAs::Syntax(Some(wanted)) if wanted == "*" || wanted == stored => {
            (stored, imaging::frames::frames(file, numbers)?)
        }
        FramesAs::Syntax(None) => (
            EXPLICIT_VR_LITTLE_ENDIAN,
            render::native_frames(file, numbers)?,
        ),
        FramesAs::Syntax(Some(wanted)) if wanted == EXPLICIT_VR_LITTLE_ENDIAN => (
            EXPLICIT_VR_LITTLE_ENDIAN,
            render::native_frames(file, numbers)?,
        ),
        FramesAs::Syntax(Some(wanted)) => {
            return Err(ImagingError::Unrenderable(format!(
                "frames are served in their stored syntax {stored} or transcoded to explicit VR \
                 little endian ({EXPLICIT_VR_LITTLE_ENDIAN}), not {wanted}"
            )));
        }
    };
    let media_type = format!("application/octet-stream; transfer-syntax={syntax}");
    Ok(frames
        .into_iter()
        .map(|bytes| (media_type.clone(), bytes))
        .collect())
}

async fn picture(
    state: AppState,
    study: String,
    series: Option<String>,
    instance: Option<String>,
    picture: Picture,
    request: Request,
) -> Response {
    let addressed = (study, series, instance);
    let (caller, note, _) = match authenticated(&state, &request, Audited::Read).await {
        Ok(authenticated) => authenticated,
        Err(refused) => return refused,
    };
    note.query(request.uri().path().to_owned());
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*")
        .to_owned();
    let params = form_urlencoded(request.uri().query().unwrap_or(""));
    drop(request);
    let response = async {
        state
            .repository()
            .permit(&caller, Interaction::Read, "ImagingStudy")
            .map_err(from_repository)?;
        let rendering = match &picture {
            Picture::Rendered(frame) => Some(imaging::render::parse(&params, &accept, *frame)),
            Picture::Thumbnail => Some(imaging::render::parse(&params, &accept, 1).map(|mut r| {
                r.viewport = r.viewport.or(Some((
                    imaging::render::THUMBNAIL,
                    imaging::render::THUMBNAIL,
                )));
                r
            })),
            Picture::Frames(_) | Picture::Bulk(_) => None,
        }
        .transpose()
        .map_err(from_imaging)?;
        let frames_asked = matches!(picture, Picture::Frames(_) | Picture::Bulk(_));
        let frames_as = frames_as(&accept);
        let part_type = match frames_as {
            FramesAs::Jpeg if matches!(picture, Picture::Frames(_)) => "image/jpeg",
            _ => "application/octet-stream",
        };
        let mut parts = located(
            &state,
            &caller,
            &note,
            addressed,
            move |archive, located| {
                // A series' or study's thumbnail is its middle instance's.
                let chosen = &located[located.len() / 2];
                let file = archive
                    .file(&chosen.object)
                    .map_err(ImagingError::Storage)?;
                Ok(match (&picture, &rendering) {
                    (_, Some(rendering)) => vec![(
                        rendering.format.media_type().to_owned(),
                        imaging::render::render(&file, rendering)?,
                    )],
                    (Picture::Frames(numbers), None) => {
                        frames_in(&file, numbers, &chosen.object.transfer_syntax, &frames_as)?
                    }
                    (Picture::Bulk(path), None) => {
                        let (parts, encapsulated) = imaging::frames::bulk(&file, path)?;
                        let media_type = if encapsulated {
                            format!(
                                "application/octet-stream; transfer-syntax={}",
                                chosen.object.transfer_syntax
                            )
                        } else {
                            "application/octet-stream".to_owned()
                        };
                        parts
                            .into_iter()
                            .map(|bytes| (media_type.clone(), bytes))
                            .collect()
                    }
                    _ => Vec::new(),
                })
            },
        )
        .await?;
        if !frames_asked {
            let (media_type, bytes) = parts.remove(0);
            return Ok(typed(bytes, &media_type));
        }
        Ok(multipart_response(part_type, &parts))
    }
    .await
    .unwrap_or_else(|response| response);
    crate::audit::settle_noted(&state, &caller, &note, response).await
}
