//! The REST interactions over HTTP: statuses, headers, Prefer, metadata, health.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

fn patient() -> serde_json::Value {
    json!({"resourceType": "Patient", "identifier": [{"system": "urn:sys", "value": "1"}], "gender": "male"})
}

#[tokio::test]
async fn create_answers_201_with_location_etag_and_last_modified() {
    let app = app(test_support::sqlite());
    let answer = app.post_json("/fhir/Patient", &patient()).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let body = answer.json();
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        answer.header("location"),
        Some(format!("http://meridian.test/fhir/Patient/{id}/_history/1").as_str())
    );
    assert_eq!(answer.header("etag"), Some("W/\"1\""));
    assert!(answer.header("last-modified").unwrap().ends_with(" GMT"));
    assert_eq!(
        answer.header("content-type"),
        Some("application/fhir+json; charset=utf-8")
    );

    let read = app.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json(), body);
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    let vread = app.get(&format!("/fhir/Patient/{id}/_history/1")).await;
    assert_eq!(vread.json(), body);
}

#[tokio::test]
async fn prefer_return_shapes_the_answer_to_a_write() {
    let app = app(test_support::sqlite());
    let json_type = ("content-type", "application/fhir+json");
    let minimal = app
        .send(
            Method::POST,
            "/fhir/Patient",
            &[json_type, ("prefer", "return=minimal")],
            patient().to_string(),
        )
        .await;
    assert_eq!(minimal.status, StatusCode::CREATED);
    assert!(minimal.body.is_empty());
    assert!(minimal.header("location").is_some());
    let outcome = app
        .send(
            Method::POST,
            "/fhir/Patient",
            &[json_type, ("prefer", "return=OperationOutcome")],
            patient().to_string(),
        )
        .await;
    assert_eq!(outcome.issue().0, "informational");
}

#[tokio::test]
async fn update_delete_and_gone() {
    let app = app(test_support::sqlite());
    let mut body = patient();
    body["id"] = json!("p1");
    assert_eq!(
        app.put_json("/fhir/Patient/p1", &body, &[]).await.status,
        StatusCode::CREATED
    );
    body["gender"] = json!("female");
    let updated = app
        .put_json("/fhir/Patient/p1", &body, &[("if-match", "W/\"1\"")])
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.header("etag"), Some("W/\"2\""));
    let stale = app
        .put_json("/fhir/Patient/p1", &body, &[("if-match", "W/\"1\"")])
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.issue().0, "conflict");
    let deleted = app
        .send(Method::DELETE, "/fhir/Patient/p1", &[], Body::empty())
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = app.get("/fhir/Patient/p1").await;
    assert_eq!(gone.status, StatusCode::GONE);
    assert_eq!(gone.issue().0, "deleted");
}

#[tokio::test]
async fn json_patch_over_http() {
    let app = app(test_support::sqlite());
    let id = app.post_json("/fhir/Patient", &patient()).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let patch = json!([{"op": "replace", "path": "/gender", "value": "female"}]);
    let patched = app
        .send(
            Method::PATCH,
            &format!("/fhir/Patient/{id}"),
            &[("content-type", "application/json-patch+json")],
            patch.to_string(),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.json()["gender"], json!("female"));
    let wrong_type = app
        .send(
            Method::PATCH,
            &format!("/fhir/Patient/{id}"),
            &[("content-type", "application/xml")],
            patch.to_string(),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn conditional_create_with_if_none_exist() {
    let app = app(test_support::sqlite());
    let headers = [
        ("content-type", "application/fhir+json"),
        ("if-none-exist", "identifier=urn:sys|1"),
    ];
    let first = app
        .send(
            Method::POST,
            "/fhir/Patient",
            &headers,
            patient().to_string(),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = app
        .send(
            Method::POST,
            "/fhir/Patient",
            &headers,
            patient().to_string(),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.json()["id"], first.json()["id"]);
}

#[tokio::test]
async fn search_and_history_bundles_link_to_their_next_pages() {
    let app = app(test_support::sqlite());
    for _ in 0..3 {
        app.post_json("/fhir/Patient", &patient()).await;
    }
    let page = app.get("/fhir/Patient?gender=male&_count=2").await.json();
    assert_eq!(page["type"], json!("searchset"));
    assert_eq!(page["entry"].as_array().unwrap().len(), 2);
    assert_eq!(page["entry"][0]["search"]["mode"], json!("match"));
    let next = page["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = next.strip_prefix("http://meridian.test").unwrap();
    let rest = app.get(next).await.json();
    assert_eq!(rest["entry"].as_array().unwrap().len(), 1);
    assert!(
        rest["link"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["relation"] != "next")
    );
    let form = app
        .send(
            Method::POST,
            "/fhir/Patient/_search",
            &[("content-type", "application/x-www-form-urlencoded")],
            "gender=male",
        )
        .await;
    assert_eq!(form.json()["entry"].as_array().unwrap().len(), 3);
    let history = app.get("/fhir/_history").await.json();
    assert_eq!(history["type"], json!("history"));
    // The system's history holds the audit trail of these requests too.
    let patients = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Patient")
        .count();
    assert_eq!(patients, 3);
    let type_history = app.get("/fhir/Patient/_history?_count=1").await.json();
    assert_eq!(type_history["entry"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_transaction_over_http() {
    let app = app(test_support::sqlite());
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                      "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}},
         "request": {"method": "POST", "url": "Observation"}}
    ]});
    let answer = app.post_json("/fhir", &bundle).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["type"], json!("transaction-response"));
    assert_eq!(
        body["entry"][1]["resource"]["subject"]["reference"],
        json!(format!(
            "Patient/{}",
            body["entry"][0]["resource"]["id"].as_str().unwrap()
        ))
    );
}

#[tokio::test]
async fn validate_reports_without_writing() {
    let app = app(test_support::sqlite());
    let good = app.post_json("/fhir/Patient/$validate", &patient()).await;
    assert_eq!(good.status, StatusCode::OK);
    assert_eq!(good.issue().0, "informational");
    let mut bad = patient();
    bad["gender"] = json!("purple");
    let answer = app.post_json("/fhir/Patient/$validate", &bad).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.issue(),
        ("code-invalid".to_owned(), Some("Patient.gender".to_owned()))
    );
    let wrapped =
        json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": bad}]});
    assert_eq!(
        app.post_json("/fhir/Patient/$validate", &wrapped)
            .await
            .issue()
            .0,
        "code-invalid"
    );
    let instance = app
        .post_json("/fhir/Patient/p9/$validate", &patient())
        .await;
    assert_eq!(
        instance.issue(),
        ("invalid".to_owned(), Some("id".to_owned()))
    );
    assert_eq!(
        app.get("/fhir/Patient").await.json().get("entry"),
        None,
        "validation wrote nothing"
    );
}

#[tokio::test]
async fn metadata_says_what_is_implemented() {
    let app = app(test_support::sqlite());
    let statement = app.get("/fhir/metadata").await.json();
    assert_eq!(statement["resourceType"], json!("CapabilityStatement"));
    assert_eq!(statement["fhirVersion"], json!("4.0.1"));
    let resources = statement["rest"][0]["resource"].as_array().unwrap();
    assert_eq!(resources.len(), 146);
    let patient = resources.iter().find(|r| r["type"] == "Patient").unwrap();
    let params: Vec<&str> = patient["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for expected in ["_id", "identifier", "name", "gender"] {
        assert!(
            params.contains(&expected),
            "{expected} missing from {params:?}"
        );
    }
    for param in patient["searchParam"].as_array().unwrap() {
        let kind = param["type"].as_str().unwrap();
        let supported = [
            "token",
            "string",
            "reference",
            "date",
            "number",
            "quantity",
            "uri",
            "composite",
        ];
        assert!(supported.contains(&kind), "{param}");
    }
}

#[tokio::test]
async fn health_endpoints_answer() {
    let app = app(test_support::sqlite());
    assert_eq!(app.get("/health/live").await.status, StatusCode::OK);
    assert_eq!(app.get("/health/ready").await.status, StatusCode::OK);
}
