//! `$export` over HTTP: kick-off, status polling, the manifest, the files, cancellation.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

const ASYNC: (&str, &str) = ("prefer", "respond-async");

async fn seed(app: &App) {
    for gender in ["male", "female", "female"] {
        let patient = app
            .post_json(
                "/fhir/Patient",
                &json!({"resourceType": "Patient", "gender": gender}),
            )
            .await
            .json();
        let reference = format!("Patient/{}", patient["id"].as_str().unwrap());
        app.post_json(
            "/fhir/Observation",
            &json!({"resourceType": "Observation", "status": "final", "code": {"text": "weight"}, "subject": {"reference": reference}}),
        )
        .await;
    }
    app.post_json(
        "/fhir/Organization",
        &json!({"resourceType": "Organization", "name": "Township health center"}),
    )
    .await;
}

/// Polls the status URL until the job is done; answers the final answer.
pub(crate) async fn wait(app: &App, status_url: &str) -> Answer {
    // Polls until done: the bound only keeps a broken export from hanging the suite (two
    // minutes; a loaded CI machine takes seconds).
    for _ in 0..6000 {
        let answer = app.get(status_url).await;
        if answer.status != StatusCode::ACCEPTED {
            return answer;
        }
        let progress = answer.header("x-progress").unwrap();
        assert!(
            progress == "queued" || progress.ends_with("resources written"),
            "{progress}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the export did not finish");
}

pub(crate) fn local(url: &str) -> &str {
    url.strip_prefix("http://meridian.test").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_export_runs_asynchronously_and_serves_its_files() {
    let app = app(test_support::sqlite());
    seed(&app).await;
    let kick_off = app
        .send(
            Method::GET,
            "/fhir/$export?_type=Patient,Observation",
            &[ASYNC],
            Body::empty(),
        )
        .await;
    assert_eq!(kick_off.status, StatusCode::ACCEPTED);
    let status_url = kick_off.header("content-location").unwrap().to_owned();
    let done = wait(&app, local(&status_url)).await;
    assert_eq!(done.status, StatusCode::OK);
    let manifest = done.json();
    assert_eq!(manifest["requiresAccessToken"], json!(false));
    assert!(
        manifest["request"]
            .as_str()
            .unwrap()
            .ends_with("/fhir/$export")
    );
    let outputs = manifest["output"].as_array().unwrap();
    assert_eq!(
        outputs
            .iter()
            .map(|o| (o["type"].as_str().unwrap(), o["count"].as_u64().unwrap()))
            .collect::<Vec<_>>(),
        [("Patient", 3), ("Observation", 3)]
    );
    let file = app.get(local(outputs[0]["url"].as_str().unwrap())).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.header("content-type"), Some("application/fhir+ndjson"));
    let lines: Vec<serde_json::Value> = String::from_utf8(file.body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|r| r["resourceType"] == "Patient"));

    // Deleting the job removes it and its files.
    let deleted = app
        .send(Method::DELETE, local(&status_url), &[], Body::empty())
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert_eq!(
        app.get(local(&status_url)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(local(outputs[0]["url"].as_str().unwrap()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_and_group_exports_and_type_filters() {
    let app = app(test_support::sqlite());
    seed(&app).await;
    let kick_off = app
        .send(
            Method::GET,
            "/fhir/Patient/$export",
            &[ASYNC],
            Body::empty(),
        )
        .await;
    let manifest = wait(&app, local(kick_off.header("content-location").unwrap()))
        .await
        .json();
    let types: Vec<&str> = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert!(!types.contains(&"Organization"), "{types:?}");

    let filtered = app
        .send(
            Method::GET,
            "/fhir/$export?_type=Patient&_typeFilter=Patient%3Fgender%3Dfemale",
            &[ASYNC],
            Body::empty(),
        )
        .await;
    let manifest = wait(&app, local(filtered.header("content-location").unwrap()))
        .await
        .json();
    assert_eq!(manifest["output"][0]["count"], json!(2));

    let missing_group = app
        .send(
            Method::GET,
            "/fhir/Group/nope/$export",
            &[ASYNC],
            Body::empty(),
        )
        .await;
    assert_eq!(missing_group.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_kick_offs_are_refused_before_a_job_starts() {
    let app = app(test_support::sqlite());
    let no_prefer = app.get("/fhir/$export").await;
    assert_eq!(no_prefer.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_prefer.issue().0, "required");
    for query in [
        "_outputFormat=text/csv",
        "_type=Nonsense",
        "_since=soon",
        "_typeFilter=Observation%3Fbogus%3D1",
    ] {
        let answer = app
            .send(
                Method::GET,
                &format!("/fhir/$export?{query}"),
                &[ASYNC],
                Body::empty(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
    }
    assert_eq!(
        app.get("/fhir/$export-status/unknown").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/fhir/$export-file/unknown/Patient.ndjson")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// Regression: the output files answered 406 to `Accept: application/fhir+ndjson`, the type the
/// Bulk Data spec tells clients to ask for, so standard bulk clients could not download an
/// export. These are the headers such a client sends at each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_client_sending_the_specs_accept_headers_downloads_the_files() {
    let app = app(test_support::sqlite());
    seed(&app).await;
    let kick_off = app
        .send(
            Method::GET,
            "/fhir/$export?_type=Patient&_outputFormat=application%2Ffhir%2Bndjson",
            &[
                ("accept", "application/fhir+json"),
                ("prefer", "respond-async, handling=lenient"),
            ],
            Body::empty(),
        )
        .await;
    assert_eq!(kick_off.status, StatusCode::ACCEPTED);
    let status_url = local(kick_off.header("content-location").unwrap()).to_owned();
    let mut done = None;
    // Polls until done: the bound only keeps a broken export from hanging the suite (two
    // minutes; a loaded CI machine takes seconds).
    for _ in 0..6000 {
        let answer = app
            .send(
                Method::GET,
                &status_url,
                &[("accept", "application/json")],
                Body::empty(),
            )
            .await;
        if answer.status != StatusCode::ACCEPTED {
            done = Some(answer);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let done = done.expect("the export finishes");
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.header("content-type"), Some("application/json"));
    let file_url = done.json()["output"][0]["url"].as_str().unwrap().to_owned();

    for accept in [
        Some("application/fhir+ndjson"),
        Some("application/ndjson"),
        Some("application/fhir+ndjson; q=0.9, */*; q=0.1"),
        Some("*/*"),
        Some("application/*"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("accept", *a)).collect();
        let file = app
            .send(Method::GET, local(&file_url), &headers, Body::empty())
            .await;
        assert_eq!(file.status, StatusCode::OK, "Accept: {accept:?}");
        assert_eq!(
            file.header("content-type"),
            Some("application/fhir+ndjson"),
            "Accept: {accept:?}"
        );
        assert_eq!(String::from_utf8(file.body).unwrap().lines().count(), 3);
    }
    for (name, value) in [
        ("accept", "application/fhir+xml"),
        ("accept", "application/fhir+ndjson; q=0"),
    ] {
        let refused = app
            .send(
                Method::GET,
                local(&file_url),
                &[(name, value)],
                Body::empty(),
            )
            .await;
        assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE, "{value}");
        assert!(
            refused.json()["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("application/fhir+ndjson"),
            "{value}"
        );
    }
    // The kick-off answers only in FHIR JSON: asking it for NDJSON is refused before a job starts.
    let ndjson_kick_off = app
        .send(
            Method::GET,
            "/fhir/$export",
            &[ASYNC, ("accept", "application/fhir+ndjson")],
            Body::empty(),
        )
        .await;
    assert_eq!(ndjson_kick_off.status, StatusCode::NOT_ACCEPTABLE);
}
