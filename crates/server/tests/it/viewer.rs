//! The imaging viewer's routes through the router: its files need no token, its configuration
//! names the first-party client at the URLs the request reached, and registering that client
//! writes only what changed. (The page itself is driven in a browser by
//! `crates/cli/tests/it/viewer_scenario.rs`.)

use std::sync::Arc;

use access::{AuthConfig, Authenticator};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use server::{Auth, ServerConfig};

use crate::support::{App, app_with};

fn signing_in() -> (App, Arc<Authenticator>) {
    let store = test_support::sqlite();
    let authenticator = Arc::new(
        Authenticator::open(
            Arc::clone(&store.store),
            AuthConfig::new("http://meridian.test/fhir"),
        )
        .unwrap(),
    );
    let app = app_with(
        store,
        ServerConfig {
            auth: Auth::Required(Arc::clone(&authenticator)),
            ..ServerConfig::default()
        },
    );
    (app, authenticator)
}

async fn get(app: &App, uri: &str, host: &str) -> crate::support::Answer {
    app.send(Method::GET, uri, &[("host", host)], Body::empty())
        .await
}

#[test]
fn the_viewer_is_served_without_a_token_and_names_its_client_at_the_address_asked() {
    let (app, _) = signing_in();
    crate::support::runtime().block_on(async {
        for (uri, location) in [
            ("/viewer", "viewer/"),
            ("/viewer?study=1.2.3&lang=zh", "viewer/?study=1.2.3&lang=zh"),
        ] {
            let answer = get(&app, uri, "127.0.0.1:8080").await;
            assert_eq!(answer.status, StatusCode::PERMANENT_REDIRECT, "{uri}");
            assert_eq!(answer.header("location"), Some(location), "{uri}");
        }
        for (uri, media_type) in [
            ("/viewer/", "text/html; charset=utf-8"),
            ("/viewer/viewer.js", "text/javascript; charset=utf-8"),
            ("/viewer/viewer.css", "text/css; charset=utf-8"),
        ] {
            let answer = get(&app, uri, "127.0.0.1:8080").await;
            assert_eq!(answer.status, StatusCode::OK, "{uri}");
            assert_eq!(answer.header("content-type"), Some(media_type), "{uri}");
            assert!(!answer.body.is_empty(), "{uri}");
        }
        let page = get(&app, "/viewer/", "127.0.0.1:8080").await;
        let policy = page.header("content-security-policy").unwrap();
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert!(policy.contains("connect-src 'self';"), "{policy}");

        let config = get(&app, "/viewer/config.json", "127.0.0.1:8080")
            .await
            .json();
        assert_eq!(
            config,
            serde_json::json!({
                "sign_in": true,
                "client_id": "meridian-viewer",
                "scope": "user/ImagingStudy.rs patient/ImagingStudy.rs",
                "authorization_endpoint": "http://127.0.0.1:8080/auth/authorize",
                "token_endpoint": "http://127.0.0.1:8080/auth/token",
                "redirect_uri": "http://127.0.0.1:8080/viewer/",
                "aud": "http://127.0.0.1:8080/fhir",
                "dicomweb": "http://127.0.0.1:8080/dicomweb",
            })
        );
        // Links follow the Host only for the hosts the server answers for.
        let elsewhere = get(&app, "/viewer/config.json", "elsewhere.example.org").await;
        assert_eq!(elsewhere.status, StatusCode::MISDIRECTED_REQUEST);
    });
}

#[test]
fn without_sign_in_the_viewer_is_told_there_is_none() {
    let app = app_with(test_support::sqlite(), ServerConfig::default());
    crate::support::runtime().block_on(async {
        let config = get(&app, "/viewer/config.json", "localhost:8080")
            .await
            .json();
        assert_eq!(
            config,
            serde_json::json!({"sign_in": false, "dicomweb": "http://localhost:8080/dicomweb"})
        );
    });
}

#[test]
fn registering_the_viewer_writes_only_what_changed() {
    let (_app, authenticator) = signing_in();
    let first = ["http://127.0.0.1:8080/viewer/".to_owned()];
    assert!(server::register_viewer(&authenticator, &first).unwrap());
    assert!(!server::register_viewer(&authenticator, &first).unwrap());
    let moved = ["https://hie.example.org/viewer/".to_owned()];
    assert!(server::register_viewer(&authenticator, &moved).unwrap());
    let client = authenticator
        .client(server::VIEWER_CLIENT_ID)
        .unwrap()
        .unwrap();
    assert_eq!(client.redirect_uris, moved);
    assert!(client.is_public());
    assert_eq!(client.grant_types, ["authorization_code"]);
}
