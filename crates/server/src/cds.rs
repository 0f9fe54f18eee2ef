//! CDS Hooks 2.0 over HTTP (`cds`): the discovery document, the services (`patient-view`,
//! `order-select`, `order-sign`) and their feedback endpoints, and the recognition metrics'
//! `$evaluate-measure`. A hook request is signed by a registered client (a JWT as CDS Hooks
//! asks: `iss`/`sub` the client, `aud` the service URL, `jti` once, `kid`; keys registered or
//! fetched from the registered `jku`); the record is read under the `fhirAuthorization` token's
//! caller when the request brings one, else under the client's, through the one read path, and
//! every call is on the audit trail. The token itself is never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use access::audit::Interaction;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use caller::Caller;
use cds::{CdsError, HookRequest, Language};
use fhir_model::IssueCode;
use fhir_model::operation::{Audience, InvokeMethod, Level, OperationDecl, OperationKind};
use serde_json::{Value, json};

use crate::audit::AuditNote;
use crate::auth::{Auth, auth_off_caller, bearer};
use crate::operations::{Handled, Invocation};
use crate::{ApiError, AppState};

/// Calling a CDS service, as the access decision knows it: institutions and the platform.
const CALL_SERVICE: OperationDecl = OperationDecl {
    name: "$cds-hooks",
    levels: &[Level::System],
    resource_types: &[],
    methods: &[InvokeMethod::Post],
    affects_state: true,
    definition: "",
    kind: OperationKind::Endpoint { path_segments: 0 },
    audience: Audience::Institutions,
};

/// How long fetched client keys are kept.
const KEY_TTL: Duration = Duration::from_secs(300);
/// The largest key set fetched from a `jku`.
const MAX_JWKS_BYTES: usize = 64 * 1024;

pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    // CDS clients may run in a browser (an EHR's web front end, the CDS Hooks sandbox): the
    // services answer cross-origin requests. No cookie is ever read; the JWT is the credential.
    let services = Router::new()
        .route("/cds-services", get(discovery).options(preflight))
        .route("/cds-services/{id}", post(call).options(preflight))
        .route(
            "/cds-services/{id}/feedback",
            post(feedback).options(preflight),
        )
        .layer(axum::middleware::map_response(cross_origin));
    router.merge(services)
}

async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn cross_origin(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        (
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "authorization, content-type, accept-language",
        ),
        (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
        (header::ACCESS_CONTROL_MAX_AGE, "600"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn discovery() -> Response {
    json_response(StatusCode::OK, &cds::hook::discovery())
}

fn from_cds(error: CdsError) -> ApiError {
    match error {
        CdsError::BadRequest(message) => ApiError::bad_request(IssueCode::Invalid, message),
        CdsError::Repository(error) => error.into(),
    }
}

/// The keys a `jku` names, fetched (and kept for a while).
async fn fetch_keys(url: &str) -> Result<Value, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, (Instant, Value)>>> = OnceLock::new();
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some((at, keys)) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(url)
        && at.elapsed() < KEY_TTL
    {
        return Ok(keys.clone());
    }
    let client = CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    });
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("its jku could not be fetched: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("its jku answered {}", response.status()));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("its jku could not be read: {e}"))?;
    if bytes.len() > MAX_JWKS_BYTES {
        return Err("its jku's key set is too large".into());
    }
    let keys: Value =
        serde_json::from_slice(&bytes).map_err(|_| "its jku is not a JSON key set".to_owned())?;
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(url.to_owned(), (Instant::now(), keys.clone()));
    Ok(keys)
}

/// The URLs a JWT for this service may name as `aud`.
fn audiences(state: &AppState, headers: &HeaderMap, id: &str) -> Result<Vec<String>, ApiError> {
    let base = crate::host::link_base(headers, state.config())?;
    let origin = base.strip_suffix("/fhir").unwrap_or(&base).to_owned();
    Ok(vec![
        format!("{origin}/cds-services/{id}"),
        format!("{origin}/cds-services/{id}/feedback"),
        format!("{origin}/cds-services"),
    ])
}

/// The client a request's JWT authenticates, or the refusal (401).
async fn client(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<Option<(Arc<access::Authenticator>, access::signin::Client)>, ApiError> {
    let authenticator = match &state.config().auth {
        Auth::Off => return Ok(None),
        Auth::Required(authenticator) => Arc::clone(authenticator),
    };
    let jwt = bearer(headers)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "a CDS Hooks request needs Authorization: Bearer with the client's JWT".into(),
            )
        })?
        .to_owned();
    let audiences = audiences(state, headers, id)?;
    let unauthorized = |e: access::OAuthError| {
        ApiError::Unauthorized(
            e.to_json()["error_description"]
                .as_str()
                .unwrap_or("the JWT is not valid")
                .to_owned(),
        )
    };
    let key_url = {
        let (authenticator, jwt) = (Arc::clone(&authenticator), jwt.clone());
        crate::lanes::blocking(move || Ok::<_, ApiError>(authenticator.cds_jwt_key_url(&jwt)))
            .await?
            .map_err(unauthorized)?
    };
    let fetched = match key_url {
        Some(url) => Some(fetch_keys(&url).await.map_err(|why| {
            ApiError::Unauthorized(format!("the CDS Hooks JWT is not valid: {why}"))
        })?),
        None => None,
    };
    let verified = {
        let authenticator = Arc::clone(&authenticator);
        crate::lanes::blocking(move || {
            Ok::<_, ApiError>(authenticator.verify_cds_jwt(&jwt, &audiences, fetched.as_ref()))
        })
        .await?
        .map_err(unauthorized)?
    };
    Ok(Some((authenticator, verified)))
}

fn peer(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<crate::PeerAddress>()
        .map(|p| p.0)
}

/// A refusal before the caller is known, on the audit trail as an attempt by nobody known.
async fn refused(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    id: &str,
    what: &str,
    error: ApiError,
) -> Response {
    let mut nobody = Caller::anonymous(id);
    nobody.address = address;
    let note = AuditNote::default();
    note.begin(Interaction::Operation(what.into()), None);
    crate::audit::settle_noted(state, &nobody, &note, error.into_response(id)).await
}

async fn body_bytes(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.config().max_body_bytes;
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(limit))
}

/// `POST /cds-services/{id}`: one hook call.
async fn call(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> Response {
    let request_id = crate::request::request_id(request.headers());
    let address = peer(&request);
    let what = format!("$cds-{id}");
    let Some(hook) = cds::service::service(&id) else {
        return ApiError::NotFound(format!("there is no CDS service '{id}'"))
            .into_response(&request_id);
    };
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let client = match client(&state, &headers, &id).await {
        Ok(client) => client,
        Err(error) => return refused(&state, address, &request_id, &what, error).await,
    };
    let bytes = match body_bytes(&state, body).await {
        Ok(bytes) => bytes,
        Err(error) => return refused(&state, address, &request_id, &what, error).await,
    };
    let parsed = {
        let repository = Arc::clone(state.repository());
        crate::lanes::blocking(move || {
            Ok::<_, ApiError>(HookRequest::parse(&bytes, hook, repository.model()))
        })
        .await
    };
    let hook_request = match parsed {
        Ok(Ok(request)) => request,
        Ok(Err(error)) => {
            return refused(&state, address, &request_id, &what, from_cds(error)).await;
        }
        Err(error) => return refused(&state, address, &request_id, &what, error).await,
    };
    // Who asked (the client that signed), and whose rights the record is read under: the user
    // of fhirAuthorization when the client brings one, else the client's.
    let asking = match &client {
        None => auth_off_caller(&request_id, address),
        Some((authenticator, client)) => authenticator.client_caller(client, address, &request_id),
    };
    // A token for another FHIR server (the client's own) is not for this one: not used.
    let ours = match crate::host::link_base(&headers, state.config()) {
        Ok(base) => hook_request
            .fhir_server
            .as_deref()
            .is_none_or(|server| server.trim_end_matches('/') == base),
        Err(error) => return error.into_response(&request_id),
    };
    let caller = match (&client, &hook_request.fhir_authorization) {
        (Some((authenticator, _)), Some(token)) if ours => {
            let (authenticator, token, rid) = (
                Arc::clone(authenticator),
                token.access_token.clone(),
                request_id.clone(),
            );
            let answer = crate::lanes::blocking(move || {
                Ok::<_, ApiError>(authenticator.authenticate(&token, None, None, address, &rid))
            })
            .await;
            match answer {
                Ok(Ok(caller)) => caller,
                Ok(Err(_)) => {
                    let error = ApiError::Unauthorized(
                        "fhirAuthorization.access_token is not a valid token of this server".into(),
                    );
                    return refused(&state, address, &request_id, &what, error).await;
                }
                Err(error) => return refused(&state, address, &request_id, &what, error).await,
            }
        }
        _ => asking.clone(),
    };
    let note = AuditNote::default();
    note.begin(Interaction::Operation(what.clone()), None);
    if let Some(patient) = hook_request.patient() {
        note.patients(crate::audit::patient_reference(&patient));
    }
    let response = match access::policy::may_invoke(&caller, &CALL_SERVICE, None) {
        Err(denied) => ApiError::from(repository::RepositoryError::Forbidden(denied.0))
            .into_response(&request_id),
        Ok(()) => {
            let language = Language::from_accept(
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok()),
            );
            let base = match crate::host::link_base(&headers, state.config()) {
                Ok(base) => base,
                Err(error) => return error.into_response(&request_id),
            };
            let (state2, caller2) = (state.clone(), caller.clone());
            let answered = crate::lanes::blocking(move || {
                let ctx = cds::service::Context {
                    repository: state2.repository(),
                    caller: &caller2,
                    client: &asking,
                    base: &base,
                    language,
                    now: fhir_model::clock::now_micros(),
                };
                cds::service::answer(&ctx, &hook_request).map_err(from_cds)
            })
            .await;
            match answered {
                Ok(answer) => {
                    if !answer.failed_rules.is_empty() {
                        tracing::warn!(rules = ?answer.failed_rules, hook = hook.name(), "rules failed on a hook call");
                    }
                    json_response(StatusCode::OK, &answer.body)
                }
                Err(error) => error.into_response(&request_id),
            }
        }
    };
    crate::audit::settle_noted(&state, &caller, &note, response).await
}

/// `POST /cds-services/{id}/feedback`: accepted and overridden cards, recorded.
async fn feedback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let request_id = crate::request::request_id(request.headers());
    let address = peer(&request);
    let what = "$cds-feedback";
    if cds::service::service(&id).is_none() {
        return ApiError::NotFound(format!("there is no CDS service '{id}'"))
            .into_response(&request_id);
    }
    let (parts, body) = request.into_parts();
    let client = match client(&state, &parts.headers, &id).await {
        Ok(client) => client,
        Err(error) => return refused(&state, address, &request_id, what, error).await,
    };
    let caller = match &client {
        None => auth_off_caller(&request_id, address),
        Some((authenticator, client)) => authenticator.client_caller(client, address, &request_id),
    };
    let note = AuditNote::default();
    note.begin(Interaction::Operation(what.into()), None);
    let response = match access::policy::may_invoke(&caller, &CALL_SERVICE, None) {
        Err(denied) => ApiError::from(repository::RepositoryError::Forbidden(denied.0))
            .into_response(&request_id),
        Ok(()) => match body_bytes(&state, body).await {
            Err(error) => error.into_response(&request_id),
            Ok(bytes) => {
                let (state2, caller2) = (state.clone(), caller.clone());
                let recorded = crate::lanes::blocking(move || {
                    cds::service::feedback(state2.repository(), &caller2, &bytes).map_err(from_cds)
                })
                .await;
                match recorded {
                    Ok(count) => json_response(StatusCode::OK, &json!({"recorded": count})),
                    Err(error) => error.into_response(&request_id),
                }
            }
        },
    };
    crate::audit::settle_noted(&state, &caller, &note, response).await
}

/// `Measure/ResultRecognition/$evaluate-measure`: the recognition metrics for a period
/// (`periodStart`, `periodEnd`; this month when absent), of the caller's institution, or of
/// every institution (or the `subject` Organization) for the platform. The indicator
/// catalogue's Measures go to `analytics::evaluate_indicator`.
pub(crate) fn evaluate_measure(call: Invocation) -> Handled {
    Box::pin(async move {
        let id = call.id.clone();
        let fhir = call.fhir;
        // A measure is computed over residents' records (checks, visits, readings): a
        // population read, audited though a Measure holds no patient data.
        fhir.audit.about_patient_data();
        let limit = call.state.config().max_body_bytes;
        let params =
            crate::request::operation_params(&fhir, &call.method, call.body, limit).await?;
        let get = |name: &str| crate::request::param(&params, name).map(str::to_owned);
        // The Measure: the instance called on, or at the type level the `measure` parameter (its
        // id, `Measure/ID`, or its canonical URL).
        let measure = match id {
            Some(id) => Some(id),
            None => get("measure").map(|m| {
                if m == cds::metrics::MEASURE_URL {
                    cds::metrics::MEASURE_ID.to_owned()
                } else {
                    m.strip_prefix("Measure/").unwrap_or(&m).to_owned()
                }
            }),
        };
        // The region's indicators are computed from the materialised views.
        if let Some(indicator) = measure
            .as_deref()
            .and_then(analytics::indicators::indicator)
        {
            return crate::analytics::evaluate_indicator(&call.state, &fhir, &params, indicator)
                .await;
        }
        if measure.as_deref() != Some(cds::metrics::MEASURE_ID) {
            return Err(ApiError::NotFound(format!(
                "$evaluate-measure is computed here for Measure/{} and the indicator catalogue's Measures only",
                cds::metrics::MEASURE_ID
            )));
        }
        if let Some(kind) = get("reportType")
            && kind != "summary"
        {
            return Err(ApiError::bad_request(
                IssueCode::NotSupported,
                format!("reportType '{kind}' is not supported: only summary"),
            ));
        }
        let now = fhir_model::clock::now_micros();
        let bound = |name: &str, end: bool| -> Result<(i64, String), ApiError> {
            match get(name) {
                Some(text) => fhir_model::clock::parse_range(&text)
                    .map(|(low, high)| (if end { high } else { low }, text.clone()))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            IssueCode::Value,
                            format!("{name} must be a date or dateTime, not '{text}'"),
                        )
                    }),
                None => {
                    let month = cds::metrics::month_of(now);
                    let text = if end {
                        fhir_model::clock::format_instant(now)
                    } else {
                        format!("{month}-01")
                    };
                    let micros = fhir_model::clock::parse_range(&text)
                        .map_or(now, |(l, h)| if end { h } else { l });
                    Ok((micros, text))
                }
            }
        };
        let (start, start_text) = bound("periodStart", false)?;
        let (end, end_text) = bound("periodEnd", true)?;
        if end < start {
            return Err(ApiError::bad_request(
                IssueCode::Value,
                "periodEnd is before periodStart",
            ));
        }
        let caller = fhir.caller.clone();
        let subject = get("subject");
        if let Some(subject) = &subject
            && !subject.starts_with("Organization/")
        {
            return Err(ApiError::bad_request(
                IssueCode::Value,
                "subject must be an Organization (Organization/ID)",
            ));
        }
        // An institution sees its own checks only.
        let organization = match (&caller.organization, subject) {
            (Some(own), Some(asked)) if *own != asked => {
                return Err(ApiError::from(repository::RepositoryError::Forbidden(
                    "an institution sees its own recognition metrics only".into(),
                )));
            }
            (Some(own), _) => Some(own.clone()),
            (None, asked) => asked,
        };
        let request = cds::metrics::ReportRequest {
            start,
            end,
            period_text: (start_text, end_text),
            organization,
        };
        let repository = call.state.repository().clone();
        let report = crate::lanes::blocking(move || {
            let checks =
                cds::metrics::checks_in(&**repository.store(), &request).map_err(from_cds)?;
            Ok::<_, ApiError>(cds::metrics::measure_report(&checks, &request, now))
        })
        .await?;
        Ok(crate::response::json_response(
            StatusCode::OK,
            report.to_string().into_bytes(),
            fhir.pretty,
        ))
    })
}
