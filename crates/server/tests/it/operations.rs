//! The operation registry is the one list of operations: the CapabilityStatement lists exactly
//! what it holds, at the right level and type, and the dispatcher reaches every entry.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use fhir_model::operation::{InvokeMethod, Level, OperationDecl};
use serde_json::json;

use crate::support::*;

/// (resource type, or `None` at the system level; name; definition).
type Listed = BTreeSet<(Option<String>, String, String)>;

/// What the CapabilityStatement says is there.
fn listed_in(statement: &serde_json::Value) -> Listed {
    let rest = &statement["rest"][0];
    let mut listed = Listed::new();
    let mut add = |on: Option<String>, operation: &serde_json::Value| {
        let fresh = listed.insert((
            on.clone(),
            operation["name"].as_str().unwrap().to_owned(),
            operation["definition"].as_str().unwrap().to_owned(),
        ));
        assert!(fresh, "{operation} listed twice on {on:?}");
    };
    for operation in rest["operation"].as_array().into_iter().flatten() {
        add(None, operation);
    }
    for resource in rest["resource"].as_array().unwrap() {
        let on = resource["type"].as_str().unwrap().to_owned();
        for operation in resource["operation"].as_array().into_iter().flatten() {
            add(Some(on.clone()), operation);
        }
    }
    listed
}

/// What the registry says should be listed: every FHIR operation at each of its levels, on
/// each of its types (every type when it names none); not the Bulk Data endpoints.
fn expected_from(registry: &[OperationDecl]) -> Listed {
    let types = fhir_model::r4().resource_types();
    let mut expected = Listed::new();
    for decl in registry.iter().filter(|d| d.is_listed()) {
        for level in decl.levels {
            let on: Vec<Option<String>> = match level {
                Level::System => vec![None],
                Level::Type | Level::Instance if decl.resource_types.is_empty() => {
                    types.iter().map(|t| Some(t.to_string())).collect()
                }
                Level::Type | Level::Instance => decl
                    .resource_types
                    .iter()
                    .map(|t| Some(t.to_string()))
                    .collect(),
            };
            for on in on {
                expected.insert((on, decl.code().to_owned(), decl.definition.to_owned()));
            }
        }
    }
    expected
}

#[tokio::test]
async fn the_capability_statement_lists_exactly_the_registered_operations() {
    for (services, app) in [
        ("repository", app(test_support::sqlite())),
        (
            "repository and identity",
            identity_app(test_support::sqlite()),
        ),
    ] {
        let registry = app.state.registered_operations();
        let statement = app.get("/fhir/metadata").await.json();
        let listed = listed_in(&statement);
        let expected = expected_from(&registry);
        assert_eq!(
            listed.difference(&expected).collect::<Vec<_>>(),
            Vec::<&(Option<String>, String, String)>::new(),
            "listed but not registered ({services})"
        );
        assert_eq!(
            expected.difference(&listed).collect::<Vec<_>>(),
            Vec::<&(Option<String>, String, String)>::new(),
            "registered but not listed ({services})"
        );
    }
}

#[tokio::test]
async fn the_registry_holds_the_identity_operations_only_when_they_are_enabled() {
    let names = |registry: Vec<OperationDecl>| -> BTreeSet<&'static str> {
        registry.iter().map(|d| d.name).collect()
    };
    let plain = names(app(test_support::sqlite()).state.registered_operations());
    let with_identity = names(
        identity_app(test_support::sqlite())
            .state
            .registered_operations(),
    );
    assert!(!plain.contains("$match"), "{plain:?}");
    assert!(with_identity.contains("$match"), "{with_identity:?}");
    assert!(plain.is_subset(&with_identity));
    let every: BTreeSet<&str> = repository::operations::OPERATIONS
        .iter()
        .chain(residents::operations::OPERATIONS)
        .chain(cds::operations::OPERATIONS)
        .chain(workflow::operations::OPERATIONS)
        .chain(notify::operations::OPERATIONS)
        .chain(chronic::operations::OPERATIONS)
        .chain(intake::operations::OPERATIONS)
        .chain(imaging::operations::OPERATIONS)
        .chain(analytics::operations::OPERATIONS)
        .map(|d| d.name)
        .collect();
    assert_eq!(with_identity, every);
}

/// A URL for `decl` at `level`: on its first type (Patient when it names none), on the id
/// `x1`, with placeholder segments for an endpoint.
fn url_of(decl: &OperationDecl, level: Level) -> String {
    let on = decl.resource_types.first().copied().unwrap_or("Patient");
    let mut url = match level {
        Level::System => format!("/fhir/{}", decl.name),
        Level::Type => format!("/fhir/{on}/{}", decl.name),
        Level::Instance => format!("/fhir/{on}/x1/{}", decl.name),
    };
    for i in 0..decl.path_segments() {
        url.push_str(&format!("/s{i}"));
    }
    url
}

fn method_of(method: InvokeMethod) -> Method {
    match method {
        InvokeMethod::Get => Method::GET,
        InvokeMethod::Post => Method::POST,
        InvokeMethod::Delete => Method::DELETE,
    }
}

#[tokio::test]
async fn every_registered_operation_is_dispatched() {
    let app = identity_app(test_support::sqlite());
    for decl in app.state.registered_operations() {
        // FHIR's rule for operations (the Bulk Data status endpoint, not one, cancels by DELETE).
        assert!(
            !decl.is_listed() || !decl.affects_state || !decl.methods.contains(&InvokeMethod::Get),
            "{}: an operation that changes state is never invoked with GET",
            decl.name
        );
        for level in decl.levels {
            let url = url_of(&decl, *level);
            // The dispatcher knows it: another method is 405 with the methods it takes.
            let wrong = app.send(Method::PUT, &url, &[], Body::empty()).await;
            assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED, "PUT {url}");
            let allowed: Vec<&str> = decl.methods.iter().map(|m| m.as_str()).collect();
            assert_eq!(wrong.header("allow"), Some(allowed.join(", ").as_str()));
            // And its handler answers: whatever it says (the placeholders name nothing), it is
            // not the dispatcher's "no such operation".
            for method in decl.methods {
                let method = method_of(*method);
                let body = if method == Method::POST {
                    json!({"resourceType": "Parameters"}).to_string()
                } else {
                    String::new()
                };
                let answer = app
                    .send(
                        method.clone(),
                        &url,
                        &[("content-type", "application/fhir+json")],
                        body,
                    )
                    .await;
                if answer.status == StatusCode::NOT_FOUND {
                    let diagnostics = answer.json()["issue"][0]["diagnostics"].to_string();
                    assert!(
                        !diagnostics.contains("is not supported")
                            && !diagnostics.contains("no FHIR endpoint"),
                        "{method} {url}: {diagnostics}"
                    );
                }
                assert_ne!(
                    answer.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {url}"
                );
            }
        }
    }
}

#[tokio::test]
async fn an_unregistered_operation_is_404_and_a_registered_one_on_another_type_too() {
    let app = app(test_support::sqlite());
    for url in [
        "/fhir/$nothing",
        "/fhir/Patient/$nothing",
        "/fhir/Patient/x1/$nothing",
        "/fhir/Observation/x1/$everything",
        "/fhir/Observation/$export",
        "/fhir/$export-status",
        "/fhir/$export/extra",
    ] {
        let answer = app.get(url).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{url}");
        assert_eq!(answer.issue().0, "not-found", "{url}");
    }
}
