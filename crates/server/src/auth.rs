//! Sign-in over HTTP, thin: the SMART discovery document, the OAuth endpoints under `/auth`
//! (authorize with its pages, token, introspect, revoke, JWKS, dynamic registration, EHR
//! launch contexts), and the bearer check that makes every other FHIR request's caller. The
//! work is `access::Authenticator`'s; this file reads forms and headers and writes answers.

use std::net::IpAddr;
use std::sync::Arc;

use access::Authenticator;
use access::signin::{AuthorizeRefusal, SignInRefusal, SignedIn};
use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use caller::{Actor, Caller};
use serde_json::{Value, json};

use crate::pages::{self, Lang, Switch};
use crate::{ApiError, AppState};

/// How requests are authenticated.
#[derive(Clone, Default)]
pub enum Auth {
    /// Every FHIR request but the public ones carries a valid bearer token.
    Required(Arc<Authenticator>),
    /// `serve --auth off` (loopback only), and the router tests that are not about sign-in:
    /// every request acts as an all-powerful administrator, `auth-off`.
    #[default]
    Off,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Required(_) => f.write_str("Auth::Required"),
            Auth::Off => f.write_str("Auth::Off"),
        }
    }
}

/// The caller of every request when sign-in is off.
pub fn auth_off_caller(request_id: &str, address: Option<IpAddr>) -> Caller {
    let mut caller = Caller::anonymous(request_id);
    caller.actor = Actor::Administrator("auth-off".into());
    caller.scopes = vec!["system/*.cruds".into()];
    caller.address = address;
    caller
}

/// The client's address, set on each request by the connection that carried it.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddress(pub IpAddr);

/// Forms and registration bodies larger than this are refused.
const MAX_FORM_BYTES: usize = 64 * 1024;
const LANG_COOKIE: &str = "meridian_lang";

pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/.well-known/smart-configuration", get(smart_configuration))
        .route(
            "/fhir/.well-known/smart-configuration",
            get(smart_configuration),
        )
        .route(
            "/fhir/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/auth/authorize", get(authorize_page).post(authorize_form))
        .route("/auth/token", post(token))
        .route("/auth/introspect", post(introspect))
        .route("/auth/revoke", post(revoke))
        .route("/auth/jwks", get(jwks))
        .route("/auth/register", post(register))
        .route("/auth/launch", post(launch))
}

/// The origin of this request's FHIR base (`https://hie.example.org`).
fn origin(base: &str) -> &str {
    base.strip_suffix("/fhir").unwrap_or(base)
}

/// The `Authorization: Bearer` token, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A header's value as UTF-8 text (a break-glass reason may be Chinese).
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => std::str::from_utf8(value.as_bytes())
            .map(Some)
            .map_err(|_| {
                ApiError::bad_request(
                    fhir_model::IssueCode::Invalid,
                    format!("the {name} header is not UTF-8 text"),
                )
            }),
    }
}

/// The caller of a FHIR request: its bearer token's, or the all-powerful one when sign-in is
/// off. A missing or invalid token is 401.
pub(crate) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    address: Option<IpAddr>,
    request_id: &str,
) -> Result<Caller, ApiError> {
    let authenticator = match &state.config().auth {
        Auth::Off => return Ok(auth_off_caller(request_id, address)),
        Auth::Required(authenticator) => Arc::clone(authenticator),
    };
    let token = bearer(headers)
        .ok_or_else(|| ApiError::Unauthorized("this request needs a bearer token".into()))?
        .to_owned();
    let purpose = header_text(headers, "x-purpose-of-use")?.map(str::to_owned);
    let reason = header_text(headers, "x-break-glass-reason")?.map(str::to_owned);
    let request_id = request_id.to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        authenticator.authenticate(
            &token,
            purpose.as_deref(),
            reason.as_deref(),
            address,
            &request_id,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(format!("authentication panicked: {e}")))?;
    match answer {
        Ok(caller) => Ok(caller),
        Err(access::AuthError::InvalidToken(message)) => Err(ApiError::Unauthorized(message)),
        Err(error) => Err(error.into()),
    }
}

fn authenticator(state: &AppState) -> Option<Arc<Authenticator>> {
    match &state.config().auth {
        Auth::Required(authenticator) => Some(Arc::clone(authenticator)),
        Auth::Off => None,
    }
}

fn not_enabled() -> Response {
    oauth_error(
        StatusCode::NOT_FOUND,
        "invalid_request",
        "sign-in is off on this server",
    )
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    json_answer(
        status,
        &json!({"error": code, "error_description": description}),
    )
}

fn json_answer(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn from_oauth(error: &access::OAuthError) -> Response {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = json_answer(status, &error.to_json());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"meridian\""),
        );
    }
    response
}

/// The client id of an `Authorization: Basic` header with an empty password.
fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let id = percent_encoding::percent_decode_str(id)
        .decode_utf8()
        .ok()?
        .into_owned();
    (secret.is_empty() && !id.is_empty()).then_some(id)
}

/// Runs sign-in work on a blocking thread (it reads the store and hashes passwords).
async fn work<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(job).await.map_err(|error| {
        tracing::error!(%error, "sign-in work panicked");
        oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the server failed",
        )
    })
}

/// The form of a request body (`application/x-www-form-urlencoded`).
async fn form(headers: &HeaderMap, body: Body) -> Result<Vec<(String, String)>, Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            oauth_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the form is too large or could not be read",
            )
        })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the form is not UTF-8",
        )
    })?;
    Ok(repository::parse_query(text))
}

/// The authenticator and the link base of a request to a sign-in endpoint, or the answer
/// that refuses it (sign-in is off; a `Host` this server does not answer for).
fn authenticator_and_base(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Arc<Authenticator>, String), Box<Response>> {
    let Some(authenticator) = authenticator(state) else {
        return Err(Box::new(not_enabled()));
    };
    Ok((authenticator, link_base(state, headers)?))
}

fn link_base(state: &AppState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    crate::host::link_base(headers, state.config())
        .map_err(|error| Box::new(error.into_response("sign-in")))
}

/// SMART App Launch 2.0's discovery document.
async fn smart_configuration(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (authenticator, base) = match authenticator_and_base(&state, &headers) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let origin = origin(&base);
    json_answer(
        StatusCode::OK,
        &json!({
            "issuer": authenticator.config().audience,
            "jwks_uri": format!("{origin}/auth/jwks"),
            "authorization_endpoint": format!("{origin}/auth/authorize"),
            "token_endpoint": format!("{origin}/auth/token"),
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "registration_endpoint": format!("{origin}/auth/register"),
            "introspection_endpoint": format!("{origin}/auth/introspect"),
            "revocation_endpoint": format!("{origin}/auth/revoke"),
            "response_types_supported": ["code"],
            "scopes_supported": [
                "openid", "fhirUser", "profile", "launch", "launch/patient", "offline_access",
                "online_access", "patient/*.cruds", "patient/*.rs", "user/*.cruds", "user/*.rs",
                "system/*.cruds", "system/*.rs"
            ],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "capabilities": [
                "launch-ehr", "launch-standalone", "authorize-post", "client-public",
                "client-confidential-asymmetric", "context-ehr-patient",
                "context-standalone-patient", "sso-openid-connect", "permission-offline",
                "permission-online", "permission-patient", "permission-user", "permission-v1",
                "permission-v2"
            ],
        }),
    )
}

/// OpenID Connect discovery, for clients that verify the id_token (its issuer is the FHIR base).
async fn openid_configuration(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (authenticator, base) = match authenticator_and_base(&state, &headers) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let origin = origin(&base);
    json_answer(
        StatusCode::OK,
        &json!({
            "issuer": authenticator.config().audience,
            "authorization_endpoint": format!("{origin}/auth/authorize"),
            "token_endpoint": format!("{origin}/auth/token"),
            "jwks_uri": format!("{origin}/auth/jwks"),
            "registration_endpoint": format!("{origin}/auth/register"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": ["openid", "fhirUser", "profile"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser", "name"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        }),
    )
}

/// The security section of the CapabilityStatement (SMART's service and its endpoints).
pub(crate) fn capability_security(base: &str) -> Value {
    let origin = origin(base);
    json!({
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [
                {"url": "authorize", "valueUri": format!("{origin}/auth/authorize")},
                {"url": "token", "valueUri": format!("{origin}/auth/token")},
                {"url": "introspect", "valueUri": format!("{origin}/auth/introspect")},
                {"url": "revoke", "valueUri": format!("{origin}/auth/revoke")},
                {"url": "register", "valueUri": format!("{origin}/auth/register")},
            ],
        }],
        "service": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR",
            }],
            "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
        }],
        "description": "Every request but metadata needs a bearer token from this server's SMART authorization server (or a configured OpenID Connect provider).",
    })
}

async fn jwks(State(state): State<AppState>) -> Response {
    match authenticator(&state) {
        Some(authenticator) => {
            let mut response = json_answer(StatusCode::OK, &authenticator.jwks());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            );
            response
        }
        None => not_enabled(),
    }
}

/// The URLs the token endpoint is reached at (what an assertion's `aud` may be).
fn token_endpoints(authenticator: &Authenticator, base: &str) -> Vec<String> {
    let mut endpoints = vec![format!("{}/auth/token", origin(base))];
    let configured = format!("{}/auth/token", origin(&authenticator.config().audience));
    if !endpoints.contains(&configured) {
        endpoints.push(configured);
    }
    endpoints
}

async fn token(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (authenticator, base) = match authenticator_and_base(&state, &headers) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let mut params = match form(&headers, body).await {
        Ok(params) => params,
        Err(response) => return response,
    };
    // A public client may name itself with HTTP Basic and an empty secret (RFC 6749 2.3.1).
    if let Some(client_id) = basic_client_id(&headers)
        && !params.iter().any(|(name, _)| name == "client_id")
    {
        params.push(("client_id".into(), client_id));
    }
    let endpoints = token_endpoints(&authenticator, &base);
    match work(move || authenticator.token(&params, &endpoints)).await {
        Ok(Ok(answer)) => json_answer(StatusCode::OK, &answer),
        Ok(Err(error)) => from_oauth(&error),
        Err(response) => response,
    }
}

/// The caller of an OAuth endpoint that needs one (introspection, registration, launch).
async fn endpoint_caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, Response> {
    caller(state, headers, None, "sign-in")
        .await
        .map_err(|error| match error {
            ApiError::Unauthorized(message) => {
                let mut response = oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", &message);
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"meridian\", error=\"invalid_token\""),
                );
                response
            }
            other => other.into_response("sign-in"),
        })
}

async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(authenticator) = authenticator(&state) else {
        return not_enabled();
    };
    if let Err(response) = endpoint_caller(&state, &headers).await {
        return response;
    }
    let params = match form(&headers, body).await {
        Ok(params) => params,
        Err(response) => return response,
    };
    let Some(token) = params
        .iter()
        .find(|(n, _)| n == "token")
        .map(|(_, v)| v.clone())
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    match work(move || authenticator.introspect(&token)).await {
        Ok(Ok(answer)) => json_answer(StatusCode::OK, &answer),
        Ok(Err(error)) => from_oauth(&error),
        Err(response) => response,
    }
}

async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(authenticator) = authenticator(&state) else {
        return not_enabled();
    };
    let params = match form(&headers, body).await {
        Ok(params) => params,
        Err(response) => return response,
    };
    let Some(token) = params
        .iter()
        .find(|(n, _)| n == "token")
        .map(|(_, v)| v.clone())
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    match work(move || authenticator.revoke(&token)).await {
        Ok(Ok(())) => json_answer(StatusCode::OK, &json!({})),
        Ok(Err(error)) => from_oauth(&error),
        Err(response) => response,
    }
}

/// RFC 7591 dynamic registration, for administrators.
async fn register(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(authenticator) = authenticator(&state) else {
        return not_enabled();
    };
    let caller = match endpoint_caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if !matches!(caller.actor, Actor::Administrator(_)) {
        return oauth_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "only an administrator registers clients",
        );
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_client_metadata",
            "the metadata is too large",
        );
    };
    let Ok(metadata) = serde_json::from_slice::<Value>(&bytes) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "the metadata is not JSON",
        );
    };
    match work(move || authenticator.register_client(&metadata)).await {
        Ok(Ok(client)) => json_answer(StatusCode::CREATED, &client.to_metadata()),
        Ok(Err(error)) => from_oauth(&error),
        Err(response) => response,
    }
}

/// An EHR launch: a practitioner (or administrator) names the patient, and gets the `launch`
/// value to open the app with.
async fn launch(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(authenticator) = authenticator(&state) else {
        return not_enabled();
    };
    let caller = match endpoint_caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let allowed = match &caller.actor {
        Actor::Administrator(_) => true,
        Actor::User(user) => user.starts_with("Practitioner/"),
        _ => false,
    };
    if !allowed {
        return oauth_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "only a practitioner launches an app",
        );
    }
    let params = match form(&headers, body).await {
        Ok(params) => params,
        Err(response) => return response,
    };
    let patient = params
        .iter()
        .find(|(n, _)| n == "patient")
        .map(|(_, v)| v.clone());
    let Some(patient) = patient.filter(|p| {
        p.strip_prefix("Patient/").is_some_and(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
    }) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "patient must be Patient/ID",
        );
    };
    match work(move || authenticator.create_launch(&patient, 300)).await {
        Ok(Ok(launch)) => json_answer(StatusCode::OK, &json!({"launch": launch})),
        Ok(Err(error)) => from_oauth(&error.into()),
        Err(response) => response,
    }
}

/// The pages' language: a `lang` switch, else the cookie, else `Accept-Language`.
fn language(headers: &HeaderMap, chosen: Option<&str>) -> (Lang, bool) {
    if let Some(lang) = chosen.and_then(Lang::parse) {
        return (lang, true);
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == LANG_COOKIE).then(|| Lang::parse(value)).flatten()
        });
    if let Some(lang) = cookie {
        return (lang, false);
    }
    (
        Lang::from_accept_language(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        ),
        false,
    )
}

fn html(status: StatusCode, lang: Lang, remember: bool, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if remember {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/auth; Max-Age=31536000; SameSite=Lax; HttpOnly",
            lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.insert(header::SET_COOKIE, value);
        }
    }
    response
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => (StatusCode::BAD_REQUEST, "the redirect URI cannot be sent").into_response(),
    }
}

/// `GET /auth/authorize`: the request checked, then the sign-in page.
async fn authorize_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (authenticator, base) = match authenticator_and_base(&state, &headers) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let mut params = repository::parse_query(query.as_deref().unwrap_or(""));
    let chosen = params
        .iter()
        .find(|(n, _)| n == "lang")
        .map(|(_, v)| v.clone());
    params.retain(|(name, _)| name != "lang");
    let (lang, remember) = language(&headers, chosen.as_deref());
    // The query again without `lang`, for the language switch's links.
    let switch_query: String = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.starts_with("lang=") && *pair != "lang")
        .collect::<Vec<_>>()
        .join("&");
    begin(
        authenticator,
        base,
        params,
        lang,
        remember,
        Some(switch_query),
    )
    .await
}

/// The authorization request checked, then the sign-in page (or the refusal). `switch_query`
/// is the request's query for the language links (none for a POSTed request).
async fn begin(
    authenticator: Arc<Authenticator>,
    base: String,
    params: Vec<(String, String)>,
    lang: Lang,
    remember: bool,
    switch_query: Option<String>,
) -> Response {
    let answer = work(move || {
        let request = authenticator.check_authorize(&params, &[base])?;
        let sealed = authenticator.seal_request(&request).map_err(|error| {
            tracing::error!(%error, "sealing an authorization request");
            AuthorizeRefusal::Page("the server failed; try again later".into())
        })?;
        Ok::<_, AuthorizeRefusal>((request, sealed))
    })
    .await;
    match answer {
        Ok(Ok((request, sealed))) => {
            let scopes: Vec<String> = request
                .scope
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect();
            let client = request
                .client_name
                .clone()
                .unwrap_or(request.client_id.clone());
            html(
                StatusCode::OK,
                lang,
                remember,
                pages::login(
                    lang,
                    match &switch_query {
                        Some(query) => Switch::Link(query),
                        None => Switch::None,
                    },
                    &client,
                    &scopes,
                    &sealed,
                    None,
                    "",
                ),
            )
        }
        Ok(Err(AuthorizeRefusal::Redirect(location))) => redirect(&location),
        Ok(Err(AuthorizeRefusal::Page(message))) => html(
            StatusCode::BAD_REQUEST,
            lang,
            remember,
            pages::problem(lang, &message),
        ),
        Err(response) => response,
    }
}

/// `POST /auth/authorize`: the steps after the sign-in page (credentials, organisation,
/// approval), each carrying its state sealed.
async fn authorize_form(State(state): State<AppState>, request: Request) -> Response {
    let Some(authenticator) = authenticator(&state) else {
        return not_enabled();
    };
    let address = request.extensions().get::<PeerAddress>().map(|p| p.0);
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let fields = match form(&headers, body).await {
        Ok(fields) => fields,
        Err(_) => {
            let (lang, _) = language(&headers, None);
            return html(StatusCode::BAD_REQUEST, lang, false, pages::expired(lang));
        }
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let switch = field("switch_lang");
    let (lang, remember) = language(&headers, switch.as_deref().or(field("lang").as_deref()));
    let page = |status: StatusCode, body: String| html(status, lang, remember, body);
    let expired = || {
        html(
            StatusCode::BAD_REQUEST,
            lang,
            remember,
            pages::expired(lang),
        )
    };
    match field("step").as_deref() {
        Some("login") => {
            let Some(sealed) = field("request") else {
                return expired();
            };
            let Some(request) = authenticator.open_request(&sealed) else {
                return expired();
            };
            let scopes: Vec<String> = request
                .scope
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect();
            let client = request
                .client_name
                .clone()
                .unwrap_or(request.client_id.clone());
            let username = field("username").unwrap_or_default();
            if switch.is_some() {
                return page(
                    StatusCode::OK,
                    pages::login(
                        lang,
                        Switch::None,
                        &client,
                        &scopes,
                        &sealed,
                        None,
                        &username,
                    ),
                );
            }
            let password = field("password").unwrap_or_default();
            let signing_in = Arc::clone(&authenticator);
            let name = username.clone();
            let outcome =
                work(move || signing_in.sign_in(request, &name, &password, address)).await;
            match outcome {
                Ok(Ok(signed_in)) => next_step(&authenticator, signed_in, lang, remember).await,
                Ok(Err(SignInRefusal::WrongCredentials)) => page(
                    StatusCode::UNAUTHORIZED,
                    pages::login(
                        lang,
                        Switch::None,
                        &client,
                        &scopes,
                        &sealed,
                        Some(pages::sign_in_error(lang, None)),
                        &username,
                    ),
                ),
                Ok(Err(SignInRefusal::Throttled(seconds))) => {
                    let mut response = page(
                        StatusCode::TOO_MANY_REQUESTS,
                        pages::login(
                            lang,
                            Switch::None,
                            &client,
                            &scopes,
                            &sealed,
                            Some(pages::sign_in_error(lang, Some(seconds))),
                            &username,
                        ),
                    );
                    response.headers_mut().insert(
                        header::RETRY_AFTER,
                        HeaderValue::from(seconds.max(1) as u64),
                    );
                    response
                }
                Ok(Err(SignInRefusal::Error(error))) => {
                    tracing::error!(%error, "sign-in failed");
                    page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        pages::problem(lang, "the server failed; try again later"),
                    )
                }
                Err(response) => response,
            }
        }
        Some("organization") => {
            let Some(sealed) = field("signed") else {
                return expired();
            };
            let Some(mut signed_in) = authenticator.open_signed_in(&sealed) else {
                return expired();
            };
            if switch.is_none() {
                let chosen = field("organization").unwrap_or_default();
                let lookup = Arc::clone(&authenticator);
                let account = signed_in.clone();
                let organizations = match work(move || lookup.organizations_of(&account)).await {
                    Ok(Ok(organizations)) => organizations,
                    Ok(Err(_)) | Err(_) => {
                        return page(
                            StatusCode::SERVICE_UNAVAILABLE,
                            pages::problem(lang, "the server failed; try again later"),
                        );
                    }
                };
                if organizations.contains(&chosen) {
                    signed_in.organization = Some(chosen);
                }
            }
            next_step(&authenticator, signed_in, lang, remember).await
        }
        Some("approve") => {
            let Some(sealed) = field("signed") else {
                return expired();
            };
            let Some(signed_in) = authenticator.open_signed_in(&sealed) else {
                return expired();
            };
            if switch.is_some() {
                return next_step(&authenticator, signed_in, lang, remember).await;
            }
            match field("decision").as_deref() {
                Some("allow") => {
                    let approving = Arc::clone(&authenticator);
                    let patient = field("patient");
                    let signed = signed_in.clone();
                    match work(move || approving.approve(&signed, patient.as_deref())).await {
                        Ok(Ok(location)) => redirect(&location),
                        Ok(Err(AuthorizeRefusal::Redirect(location))) => redirect(&location),
                        Ok(Err(AuthorizeRefusal::Page(message))) => {
                            approval_page(
                                &authenticator,
                                signed_in,
                                lang,
                                remember,
                                Some(message),
                                StatusCode::BAD_REQUEST,
                            )
                            .await
                        }
                        Err(response) => response,
                    }
                }
                Some("deny") => redirect(&authenticator.deny(&signed_in.request)),
                _ => next_step(&authenticator, signed_in, lang, remember).await,
            }
        }
        // SMART's authorize-post: the authorization request itself, as a form.
        None if field("response_type").is_some() => {
            let base = match link_base(&state, &headers) {
                Ok(base) => base,
                Err(response) => return *response,
            };
            let params: Vec<(String, String)> = fields
                .into_iter()
                .filter(|(name, _)| name != "lang")
                .collect();
            begin(authenticator, base, params, lang, remember, None).await
        }
        _ => expired(),
    }
}

/// After sign-in: the organisation choice when there is one to make, else the approval.
async fn next_step(
    authenticator: &Arc<Authenticator>,
    signed_in: SignedIn,
    lang: Lang,
    remember: bool,
) -> Response {
    let lookup = Arc::clone(authenticator);
    let account = signed_in.clone();
    let organizations = match work(move || lookup.organizations_of(&account)).await {
        Ok(Ok(organizations)) => organizations,
        Ok(Err(_)) | Err(_) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                remember,
                pages::problem(lang, "the server failed; try again later"),
            );
        }
    };
    if signed_in.organization.is_none() && organizations.len() > 1 {
        return match authenticator.seal_signed_in(&signed_in) {
            Ok(sealed) => html(
                StatusCode::OK,
                lang,
                remember,
                pages::organizations(lang, &sealed, &signed_in.account, &organizations),
            ),
            Err(_) => html(
                StatusCode::INTERNAL_SERVER_ERROR,
                lang,
                remember,
                pages::problem(lang, "the server failed"),
            ),
        };
    }
    approval_page(
        authenticator,
        signed_in,
        lang,
        remember,
        None,
        StatusCode::OK,
    )
    .await
}

async fn approval_page(
    authenticator: &Arc<Authenticator>,
    signed_in: SignedIn,
    lang: Lang,
    remember: bool,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let lookup = Arc::clone(authenticator);
    let account = signed_in.clone();
    let looked_up = work(move || {
        Ok::<_, access::AuthError>((
            lookup.scopes_for(&account)?,
            lookup.needs_patient(&account)?,
        ))
    })
    .await;
    let (scopes, ask_patient) = match looked_up {
        Ok(Ok(found)) => found,
        Ok(Err(_)) | Err(_) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                remember,
                pages::problem(lang, "the server failed; try again later"),
            );
        }
    };
    let scopes: Vec<String> = scopes.iter().map(ToString::to_string).collect();
    let client = signed_in
        .request
        .client_name
        .clone()
        .unwrap_or(signed_in.request.client_id.clone());
    match authenticator.seal_signed_in(&signed_in) {
        Ok(sealed) => html(
            status,
            lang,
            remember,
            pages::approval(&pages::Approval {
                lang,
                sealed_signed_in: &sealed,
                client: &client,
                account: &signed_in.account,
                organization: signed_in.organization.as_deref(),
                scopes: &scopes,
                ask_patient,
                error: error.as_deref(),
            }),
        ),
        Err(_) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            remember,
            pages::problem(lang, "the server failed"),
        ),
    }
}
