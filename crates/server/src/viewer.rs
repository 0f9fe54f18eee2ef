//! The imaging viewer at `/viewer/`: one page, one script and one stylesheet, built into the
//! binary (`viewer/`). They hold no patient data and are served without a token. The page signs
//! its user in through this server's own OAuth endpoints as the first-party public client
//! `meridian-viewer` (authorization code with PKCE), which `meridian serve` keeps registered
//! with the viewer's URL as its redirect URI, and sends every data request to `/dicomweb` with
//! that user's bearer token: what it shows is what the user may see, under the same access
//! rules and on the same audit trail as any other DICOMweb client.

use std::net::SocketAddr;

use access::signin::Client;
use access::{Authenticator, OAuthError};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::{AppState, Auth, ServerConfig};

/// The viewer's client id: the same on every server, so the page needs no configuration.
pub const VIEWER_CLIENT_ID: &str = "meridian-viewer";
/// What the viewer may be granted: reading and searching imaging studies, as a clinician
/// (`user/`) or as a resident looking at their own (`patient/`; a clinician's token keeps it
/// too, where without a patient it grants nothing more).
const VIEWER_SCOPE: &str = "user/ImagingStudy.rs patient/ImagingStudy.rs";
/// Shown on the sign-in pages.
const VIEWER_NAME: &str = "Meridian imaging viewer / 影像浏览";

const PAGE: &str = include_str!("viewer/index.html");
const SCRIPT: &str = include_str!("viewer/viewer.js");
const STYLE: &str = include_str!("viewer/viewer.css");

/// The page may run its own script and show images decoded from blobs; everything it fetches
/// comes from this server.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/viewer", get(to_page))
        .route("/viewer/", get(page))
        .route("/viewer/viewer.js", get(script))
        .route("/viewer/viewer.css", get(style))
        .route("/viewer/config.json", get(config))
}

/// The viewer's URL at the origin of a FHIR base (`https://hie.example.org/fhir`).
fn viewer_url(fhir_base: &str) -> String {
    let base = fhir_base.trim_end_matches('/');
    format!("{}/viewer/", base.strip_suffix("/fhir").unwrap_or(base))
}

/// The redirect URIs the viewer signs in with: its URL under the public base, or, when none is
/// configured, at every name the server answers for (loopback names and the allowed hosts)
/// on the port it listens on.
pub fn viewer_redirect_uris(config: &ServerConfig, listening: SocketAddr) -> Vec<String> {
    if let Some(base) = &config.public_base {
        return vec![viewer_url(base)];
    }
    let port = listening.port();
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .map(|name| authority(name, port))
        .collect();
    hosts.extend(
        config
            .allowed_hosts
            .iter()
            .map(|allowed| allowed.authority(port)),
    );
    let mut uris: Vec<String> = Vec::new();
    for host in hosts {
        let uri = viewer_url(&format!("http://{host}"));
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    uris
}

/// `name:port` as a browser sends it in `Host` (no port for 80).
pub(crate) fn authority(name: &str, port: u16) -> String {
    if port == 80 {
        name.to_owned()
    } else {
        format!("{name}:{port}")
    }
}

/// Registers the viewer's client with `redirect_uris`, replacing what was registered under its
/// id; writes nothing when it is already so. Answers whether it wrote.
pub fn register_viewer(
    authenticator: &Authenticator,
    redirect_uris: &[String],
) -> Result<bool, OAuthError> {
    let wanted = Client::from_metadata(
        &json!({
            "client_name": VIEWER_NAME,
            "redirect_uris": redirect_uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "scope": VIEWER_SCOPE,
        }),
        VIEWER_CLIENT_ID,
    )?;
    if let Some(registered) = authenticator.client(VIEWER_CLIENT_ID)? {
        let same = Client {
            client_id_issued_at: wanted.client_id_issued_at,
            ..registered
        };
        if same == wanted {
            return Ok(false);
        }
    }
    authenticator.put_client(&wanted)?;
    Ok(true)
}

/// A static file, not cached without asking again (a new server version may change it).
fn asset(body: &'static str, media_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `/viewer` (no slash): the page's relative links need the slash.
async fn to_page(RawQuery(query): RawQuery) -> Response {
    let location = match query {
        Some(query) if !query.is_empty() => format!("viewer/?{query}"),
        _ => "viewer/".to_owned(),
    };
    let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

async fn page() -> Response {
    let mut response = asset(PAGE, "text/html; charset=utf-8");
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    // The sign-in's code comes back in the page's URL: it is never sent on.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

/// Where the page signs in and what it asks for, at the URLs this request reached the server
/// by (its public base, or the `Host` it named).
async fn config(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = match crate::host::link_base(&headers, state.config()) {
        Ok(base) => base,
        Err(error) => return error.into_response("viewer"),
    };
    let origin = base.strip_suffix("/fhir").unwrap_or(&base).to_owned();
    let body = match &state.config().auth {
        Auth::Required(_) => json!({
            "sign_in": true,
            "client_id": VIEWER_CLIENT_ID,
            "scope": VIEWER_SCOPE,
            "authorization_endpoint": format!("{origin}/auth/authorize"),
            "token_endpoint": format!("{origin}/auth/token"),
            "redirect_uri": viewer_url(&base),
            "aud": base,
            "dicomweb": format!("{origin}/dicomweb"),
        }),
        // `serve --auth off`: every request is the administrator's, with no token to get.
        Auth::Off => json!({"sign_in": false, "dicomweb": format!("{origin}/dicomweb")}),
    };
    let mut response = body.to_string().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_viewer_signs_in_at_its_public_url_or_at_every_loopback_name() {
        let listening: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let public = ServerConfig {
            public_base: Some("https://hie.example.org/region/fhir/".into()),
            ..ServerConfig::default()
        };
        assert_eq!(
            viewer_redirect_uris(&public, listening),
            ["https://hie.example.org/region/viewer/"]
        );
        let local = ServerConfig {
            allowed_hosts: vec![
                crate::AllowedHost::parse("hie.lan").unwrap(),
                crate::AllowedHost::parse("10.0.0.5:9000").unwrap(),
            ],
            ..ServerConfig::default()
        };
        assert_eq!(
            viewer_redirect_uris(&local, listening),
            [
                "http://localhost:8080/viewer/",
                "http://127.0.0.1:8080/viewer/",
                "http://[::1]:8080/viewer/",
                "http://hie.lan:8080/viewer/",
                "http://10.0.0.5:9000/viewer/",
            ]
        );
        let on_80: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(
            viewer_redirect_uris(&ServerConfig::default(), on_80)[0],
            "http://localhost/viewer/"
        );
    }
}
