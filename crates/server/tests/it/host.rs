//! Which `Host` the server answers for: links are built from it when no public base is set, so
//! a foreign one is refused rather than echoed into every link.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use server::{AllowedHost, ServerConfig};

use crate::support::*;

fn without_public_base(allowed_hosts: &[&str]) -> App {
    app_with(
        test_support::sqlite(),
        ServerConfig {
            public_base: None,
            allowed_hosts: allowed_hosts
                .iter()
                .map(|host| AllowedHost::parse(host).unwrap())
                .collect(),
            ..ServerConfig::default()
        },
    )
}

async fn search_with(app: &App, headers: &[(&str, &str)]) -> Answer {
    app.send(Method::GET, "/fhir/Patient", headers, Body::empty())
        .await
}

fn self_link(answer: &Answer) -> String {
    let bundle = answer.json();
    assert_eq!(bundle["link"][0]["relation"], "self", "{bundle}");
    bundle["link"][0]["url"].as_str().unwrap().to_owned()
}

/// Regression: with no public base, `Host: evil.example` made every link in the answer point
/// at `http://evil.example/fhir/...`.
#[tokio::test]
async fn a_foreign_host_is_refused_not_echoed_into_links_when_no_public_base_is_set() {
    let app = without_public_base(&[]);
    let answer = search_with(&app, &[("host", "evil.example")]).await;
    assert_eq!(answer.status, StatusCode::MISDIRECTED_REQUEST);
    let body = String::from_utf8(answer.body.clone()).unwrap();
    let diagnostics = answer.json()["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        diagnostics.contains("public_base") && diagnostics.contains("allowed_hosts"),
        "{diagnostics}"
    );
    assert!(!body.contains("http://evil.example"), "{body}");

    let with_port = search_with(&app, &[("host", "evil.example:8080")]).await;
    assert_eq!(with_port.status, StatusCode::MISDIRECTED_REQUEST);
    let malformed = search_with(&app, &[("host", "evil.example/x?")]).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn loopback_hosts_are_answered_and_links_follow_them() {
    let app = without_public_base(&[]);
    for host in [
        "localhost",
        "LocalHost:8080",
        "127.0.0.1",
        "127.0.0.1:8080",
        "127.8.9.10:1",
        "[::1]",
        "[::1]:8080",
    ] {
        let answer = search_with(&app, &[("host", host)]).await;
        assert_eq!(answer.status, StatusCode::OK, "{host}");
        assert!(
            self_link(&answer).starts_with(&format!("http://{host}/fhir/Patient")),
            "{host}: {}",
            self_link(&answer)
        );
    }
    // No Host at all (HTTP/1.0): links name localhost, as before.
    let answer = search_with(&app, &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(self_link(&answer).starts_with("http://localhost/fhir/"));
    for host in ["localhost.evil.example", "127.0.0.1.evil.example", "[::2]"] {
        let answer = search_with(&app, &[("host", host)]).await;
        assert_eq!(answer.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
    }
}

#[tokio::test]
async fn allowed_hosts_are_answered_on_any_port_unless_one_is_named() {
    let app = without_public_base(&["hie.example.org", "10.0.0.5:8080"]);
    for host in ["hie.example.org", "HIE.example.org:8443", "10.0.0.5:8080"] {
        let answer = search_with(&app, &[("host", host)]).await;
        assert_eq!(answer.status, StatusCode::OK, "{host}");
        assert!(self_link(&answer).starts_with(&format!("http://{host}/fhir/")));
    }
    for host in [
        "10.0.0.5",
        "10.0.0.5:9090",
        "example.org",
        "x.hie.example.org",
    ] {
        let answer = search_with(&app, &[("host", host)]).await;
        assert_eq!(answer.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
    }
}

#[tokio::test]
async fn with_a_public_base_links_use_it_whatever_the_host() {
    let app = app(test_support::sqlite());
    let answer = search_with(&app, &[("host", "evil.example")]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(self_link(&answer).starts_with("http://meridian.test/fhir/Patient"));
}

#[tokio::test]
async fn forwarded_headers_are_not_trusted() {
    let app = without_public_base(&[]);
    let answer = search_with(
        &app,
        &[
            ("host", "localhost:8080"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "host=evil.example;proto=https"),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(self_link(&answer).starts_with("http://localhost:8080/fhir/"));
}

#[tokio::test]
async fn health_endpoints_answer_whatever_the_host() {
    let app = without_public_base(&[]);
    for path in ["/health/live", "/health/ready"] {
        let answer = app
            .send(
                Method::GET,
                path,
                &[("host", "evil.example")],
                Body::empty(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
    }
}

#[test]
fn allowed_host_entries_are_checked() {
    for good in [
        "hie.example.org",
        "HIE.Example.org:443",
        "10.0.0.5",
        "[2001:db8::1]:8080",
    ] {
        assert!(AllowedHost::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "https://hie.example.org",
        "hie.example.org/fhir",
        "hie.example.org:port",
        "hie.example.org:70000",
        "2001:db8::1",
        "[not-an-address]",
        "*",
    ] {
        assert!(AllowedHost::parse(bad).is_err(), "{bad}");
    }
}
