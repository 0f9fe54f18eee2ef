//! The audit trail over HTTP: every read, search, write and export of patient data leaves its
//! AuditEvents (found by `AuditEvent?patient=`), none is lost under concurrent clients, an
//! answer never leaves when its audit cannot be written (503), and the trail cannot be changed
//! through the API.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use repository::Repository;
use serde_json::{Value, json};
use server::{AppState, ServerConfig};

use crate::support::*;

/// The AuditEvents a search of the trail finds (one page of up to 1000).
async fn trail(app: &App, query: &str) -> Vec<Value> {
    let answer = app
        .get(&format!("/fhir/AuditEvent?{query}&_count=1000"))
        .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["resource"].clone())
        .collect()
}

fn subtype(event: &Value) -> &str {
    event["subtype"][0]["code"].as_str().unwrap_or("")
}

fn entities(event: &Value) -> Vec<String> {
    event["entity"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["what"]["reference"].as_str().map(str::to_owned))
        .collect()
}

fn request_id_of(event: &Value) -> Option<&str> {
    event["entity"]
        .as_array()?
        .iter()
        .find(|e| e["type"]["code"] == "XrequestId")?["what"]["identifier"]["value"]
        .as_str()
}

/// A patient and one of their Observations; answers their ids.
async fn patient_with_observation(app: &App) -> (String, String) {
    let patient = app
        .post_json(
            "/fhir/Patient",
            &json!({"resourceType": "Patient", "name": [{"family": "Wang"}]}),
        )
        .await;
    assert_eq!(patient.status, StatusCode::CREATED);
    let patient = patient.json()["id"].as_str().unwrap().to_owned();
    let observation = app
        .post_json(
            "/fhir/Observation",
            &json!({"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                    "subject": {"reference": format!("Patient/{patient}")}}),
        )
        .await;
    assert_eq!(observation.status, StatusCode::CREATED);
    (
        patient,
        observation.json()["id"].as_str().unwrap().to_owned(),
    )
}

store_tests! {
    async fn a_read_is_audited_under_the_patient_it_showed(app) {
        let (patient, observation) = patient_with_observation(app).await;
        let answer = app
            .send(Method::GET, &format!("/fhir/Observation/{observation}"), &[("x-request-id", "read-1")], Body::empty())
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        let events = trail(app, &format!("patient=Patient/{patient}&subtype=read")).await;
        assert_eq!(events.len(), 1, "{events:#?}");
        let event = &events[0];
        assert_eq!(event["type"]["code"], "rest");
        assert_eq!(event["action"], "R");
        assert_eq!(event["outcome"], "0");
        assert_eq!(
            entities(event),
            [format!("Patient/{patient}"), format!("Observation/{observation}/_history/1")]
        );
        assert_eq!(request_id_of(event), Some("read-1"));
        // The server is the observer and the destination.
        assert_eq!(event["source"]["observer"]["display"], "Meridian");
        assert_eq!(event["agent"].as_array().unwrap().last().unwrap()["network"]["address"], "http://meridian.test/fhir");
        // A read of nothing is recorded as a failure, under the patient it named.
        let missing = app.get("/fhir/Patient/nobody-here").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let events = trail(app, "patient=Patient/nobody-here").await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["outcome"], "4");
        assert_eq!(events[0]["outcomeDesc"], "404 Not Found");
    }

    async fn searches_are_audited_per_patient_with_their_query(app) {
        let (first, _) = patient_with_observation(app).await;
        let (second, _) = patient_with_observation(app).await;
        let answer = app.get("/fhir/Observation?code:text=weight").await;
        assert_eq!(answer.json()["entry"].as_array().unwrap().len(), 2);
        for patient in [&first, &second] {
            let events = trail(app, &format!("patient=Patient/{patient}&subtype=search-type")).await;
            assert_eq!(events.len(), 1, "{events:#?}");
            let query = events[0]["entity"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["role"]["code"] == "24")
                .unwrap()["query"]
                .as_str()
                .unwrap();
            let query = base64::engine::general_purpose::STANDARD.decode(query).unwrap();
            assert_eq!(String::from_utf8(query).unwrap(), "Observation?code:text=weight");
            assert_eq!(events[0]["action"], "E");
        }
        // A search that finds nothing still names the patient it asked about, and a
        // compartment search and $everything name theirs.
        app.get(&format!("/fhir/Condition?patient={first}")).await;
        app.get(&format!("/fhir/Patient/{second}/Observation")).await;
        app.get(&format!("/fhir/Patient/{second}/$everything")).await;
        // (Reading the trail is itself an access to the patient's record, audited too.)
        let mut searched: Vec<String> = trail(app, &format!("patient=Patient/{first}&subtype=search-type"))
            .await
            .iter()
            .flat_map(|e| e["entity"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["description"].as_str().map(str::to_owned))
            .collect();
        searched.sort();
        assert_eq!(searched, ["AuditEvent", "Condition", "Observation"]);
        let second_trail = trail(app, &format!("patient=Patient/{second}")).await;
        let subtypes: Vec<&str> = second_trail.iter().map(subtype).collect();
        assert!(subtypes.contains(&"search-type"), "{subtypes:?}");
        assert!(
            second_trail.iter().any(|e| e["subtype"][1]["code"] == "$everything"),
            "{second_trail:#?}"
        );
        // The directory is not patient data: reading it is not audited.
        let organization = app
            .post_json("/fhir/Organization", &json!({"resourceType": "Organization", "name": "County hospital"}))
            .await
            .json();
        let before = trail(app, "subtype=read").await.len();
        app.get(&format!("/fhir/Organization/{}", organization["id"].as_str().unwrap())).await;
        assert_eq!(trail(app, "subtype=read").await.len(), before);
    }

    async fn writes_are_audited_with_what_they_wrote(app) {
        let (patient, observation) = patient_with_observation(app).await;
        let update = json!({"resourceType": "Observation", "id": observation, "status": "amended",
                            "code": {"text": "weight"}, "subject": {"reference": format!("Patient/{patient}")}});
        assert_eq!(app.put_json(&format!("/fhir/Observation/{observation}"), &update, &[]).await.status, StatusCode::OK);
        assert_eq!(
            app.send(Method::DELETE, &format!("/fhir/Observation/{observation}"), &[], Body::empty()).await.status,
            StatusCode::NO_CONTENT
        );
        let events = trail(app, &format!("patient=Patient/{patient}")).await;
        let mut seen: Vec<(String, String, Vec<String>)> = events
            .iter()
            .map(|e| (e["action"].as_str().unwrap().to_owned(), subtype(e).to_owned(), entities(e)))
            .collect();
        seen.sort();
        let patient_ref = format!("Patient/{patient}");
        assert_eq!(
            seen,
            [
                ("C".into(), "create".into(), vec![patient_ref.clone(), format!("Observation/{observation}/_history/1")]),
                ("C".into(), "create".into(), vec![patient_ref.clone(), format!("Patient/{patient}/_history/1")]),
                ("D".into(), "delete".into(), vec![patient_ref.clone(), format!("Observation/{observation}/_history/3")]),
                ("U".into(), "update".into(), vec![patient_ref.clone(), format!("Observation/{observation}/_history/2")]),
            ]
        );
        // Agents are searchable: the anonymous caller is the requestor of each.
        assert!(events.iter().all(|e| e["agent"][0]["requestor"] == true));
    }

    async fn a_consent_change_is_marked_under_its_patient(app) {
        let (patient, _) = patient_with_observation(app).await;
        let consent = json!({"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": format!("Patient/{patient}")},
            "provision": {"type": "permit", "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                                                         "reference": {"reference": "Organization/township"}}]}});
        let answer = app.post_json("/fhir/Consent", &consent).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&answer.body));
        let events = trail(app, &format!("patient=Patient/{patient}&subtype=consent-change")).await;
        assert_eq!(events.len(), 1, "{events:#?}");
        assert_eq!(events[0]["action"], "C");
        assert!(entities(&events[0]).iter().any(|e| e.starts_with("Consent/")));
    }

    async fn a_transaction_is_audited_entry_by_entry(app) {
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:8f6b2f5e-34a4-4c83-8a7f-1c1a3b7d9e01",
             "resource": {"resourceType": "Patient", "name": [{"family": "Li"}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "bp"},
                          "subject": {"reference": "urn:uuid:8f6b2f5e-34a4-4c83-8a7f-1c1a3b7d9e01"}},
             "request": {"method": "POST", "url": "Observation"}},
        ]});
        let answer = app.post_json("/fhir", &bundle).await;
        assert_eq!(answer.status, StatusCode::OK);
        let response = answer.json();
        let patient = response["entry"][0]["response"]["location"].as_str().unwrap();
        let patient = patient.split('/').take(2).collect::<Vec<_>>().join("/");
        let events = trail(app, &format!("patient={patient}&subtype=create")).await;
        assert_eq!(events.len(), 2, "{events:#?}");
        let written: Vec<String> = events.iter().flat_map(entities).filter(|e| e.contains("_history")).collect();
        assert!(written.iter().any(|e| e.starts_with("Observation/")), "{written:?}");
        assert_eq!(trail(app, "subtype=transaction").await.len(), 1);
    }

    async fn an_export_is_audited_at_kick_off_and_at_each_file(app) {
        patient_with_observation(app).await;
        let answer = app
            .send(Method::GET, "/fhir/$export?_type=Patient", &[("prefer", "respond-async")], Body::empty())
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        let events = trail(app, "subtype=operation").await;
        let export: Vec<&Value> = events.iter().filter(|e| e["subtype"][1]["code"] == "$export").collect();
        assert_eq!(export.len(), 1, "{events:#?}");
        let query = export[0]["entity"].as_array().unwrap().iter().find(|e| e["role"]["code"] == "24").unwrap();
        let query = base64::engine::general_purpose::STANDARD.decode(query["query"].as_str().unwrap()).unwrap();
        assert_eq!(String::from_utf8(query).unwrap(), "/fhir/$export?_type=Patient");
        // Each file downloaded is recorded with the file it was.
        let status_url = answer.header("content-location").unwrap().to_owned();
        let done = crate::export::wait(app, crate::export::local(&status_url)).await;
        let file_url = done.json()["output"][0]["url"].as_str().unwrap().to_owned();
        let file = app.get(crate::export::local(&file_url)).await;
        assert_eq!(file.status, StatusCode::OK);
        let events = trail(app, "subtype=operation").await;
        let files: Vec<&Value> = events.iter().filter(|e| e["subtype"][1]["code"] == "$export-file").collect();
        assert_eq!(files.len(), 1, "{events:#?}");
        let query = files[0]["entity"].as_array().unwrap().iter().find(|e| e["role"]["code"] == "24").unwrap();
        let query = base64::engine::general_purpose::STANDARD.decode(query["query"].as_str().unwrap()).unwrap();
        assert_eq!(String::from_utf8(query).unwrap(), crate::export::local(&file_url));
    }

    async fn the_trail_cannot_be_changed_through_the_api(app) {
        let (patient, _) = patient_with_observation(app).await;
        let event = trail(app, &format!("patient=Patient/{patient}")).await.remove(0);
        let id = event["id"].as_str().unwrap();
        let forged = json!({"resourceType": "AuditEvent", "id": id, "type": {"code": "rest"},
                            "recorded": "2020-01-01T00:00:00Z", "agent": [{"requestor": true}],
                            "source": {"observer": {"display": "x"}}});
        let attempts = [
            app.post_json("/fhir/AuditEvent", &forged).await,
            app.put_json(&format!("/fhir/AuditEvent/{id}"), &forged, &[]).await,
            app.put_json(&format!("/fhir/AuditEvent?_id={id}"), &forged, &[]).await,
            app.send(Method::DELETE, &format!("/fhir/AuditEvent/{id}"), &[], Body::empty()).await,
            app.send(Method::DELETE, "/fhir/AuditEvent?outcome=0", &[], Body::empty()).await,
            app.send(Method::PATCH, &format!("/fhir/AuditEvent/{id}"),
                     &[("content-type", "application/json-patch+json")],
                     r#"[{"op": "replace", "path": "/outcome", "value": "8"}]"#).await,
        ];
        for answer in &attempts {
            assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(answer.header("allow"), Some("GET"));
            assert_eq!(answer.issue().0, "not-supported");
        }
        // Inside a transaction: the whole Bundle is refused, nothing of it written.
        let patients_before = app.get("/fhir/Patient?_summary=count").await.json()["total"].clone();
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "DELETE", "url": format!("AuditEvent/{id}")}},
        ]});
        let answer = app.post_json("/fhir", &bundle).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert_eq!(answer.issue(), ("forbidden".to_owned(), Some("Bundle.entry[1]".to_owned())));
        assert_eq!(app.get("/fhir/Patient?_summary=count").await.json()["total"], patients_before);
        // The event is as it was, and the attempts are on the trail.
        let now = app.get(&format!("/fhir/AuditEvent/{id}")).await.json();
        assert_eq!(now["meta"]["versionId"], "1");
        assert_eq!(now["recorded"], event["recorded"]);
        assert!(trail(app, "subtype=delete&outcome=4").await.len() >= 2);
    }

    async fn no_answer_leaves_when_its_audit_cannot_be_written(app) {
        let (patient, observation) = patient_with_observation(app).await;
        app.state.audit_sink().close();
        for path in [
            format!("/fhir/Observation/{observation}"),
            format!("/fhir/Observation?subject=Patient/{patient}"),
            format!("/fhir/Patient/{patient}/$everything"),
        ] {
            let answer = app.get(&path).await;
            assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert_eq!(answer.issue().0, "transient");
            let body = String::from_utf8_lossy(&answer.body);
            assert!(!body.contains("weight") && !body.contains("Wang"), "{body}");
        }
        // A write is refused too; what it wrote stays (the store committed it), but the client
        // is not told it succeeded.
        let answer = app
            .post_json("/fhir/Patient", &json!({"resourceType": "Patient", "name": [{"family": "Zhao"}]}))
            .await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        // Requests about no patient data still answer.
        assert_eq!(app.get("/fhir/metadata").await.status, StatusCode::OK);
    }
}

/// An audit sink over a PostgreSQL role that may read but not write: the store itself refuses
/// the events, and the data is not answered.
#[test]
fn a_store_that_refuses_the_audit_write_gets_503_and_no_data() {
    let database = test_support::TestDatabase::create();
    let role = format!("{}_reader", database.name());
    let open = |url: &str| -> Arc<dyn store::Store> {
        Arc::new(
            store_postgres::PostgresStore::open({
                let mut config = store_postgres::PostgresConfig::new(url);
                config.max_connections = 4;
                config
            })
            .expect("the store opens"),
        )
    };
    let store = open(&database.url);
    {
        let mut admin = database.connect();
        admin
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN; \
                 GRANT CONNECT ON DATABASE {db} TO {role}; \
                 GRANT USAGE, CREATE ON SCHEMA public TO {role}; \
                 GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};",
                db = database.name()
            ))
            .unwrap();
    }
    let reader_url = database.url.replacen("postgres@", &format!("{role}@"), 1);
    let reader = open(&reader_url);
    let repository = Arc::new(Repository::new(Arc::clone(&store)));
    let sink = Arc::new(access::audit::AuditSink::start(
        Arc::new(Repository::new(reader)),
        caller::Caller::operator("audit-trail"),
        access::audit::SinkConfig::default(),
    ));
    let exports = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        public_base: Some("http://meridian.test/fhir".into()),
        export_dir: exports.path().join("exports"),
        ..ServerConfig::default()
    };
    let state = AppState::build_with_audit(repository, config, None, None, sink);
    let router = server::router(state.clone());
    runtime().block_on(async {
        let app = RouterOnly(router);
        let patient = app
            .put(
                "/fhir/Patient/p1",
                &json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Wang"}]}),
            )
            .await;
        assert_eq!(patient.0, StatusCode::SERVICE_UNAVAILABLE, "{}", patient.1);
        let read = app.get("/fhir/Patient/p1").await;
        assert_eq!(read.0, StatusCode::SERVICE_UNAVAILABLE, "{}", read.1);
        assert!(!read.1.contains("Wang"), "{}", read.1);
        assert!(read.1.contains("transient"), "{}", read.1);
    });
    drop(state);
    let mut admin = database.connect();
    admin
        .batch_execute(&format!("DROP OWNED BY {role}; "))
        .unwrap();
    drop(admin);
    drop(store);
    drop(database);
    if let Ok(mut server) = postgres::Client::connect(&test_support::server_url(), postgres::NoTls)
    {
        let _ = server.batch_execute(&format!("DROP ROLE IF EXISTS {role}"));
    }
}

/// The router alone, for a test that builds its own state.
struct RouterOnly(axum::Router);

impl RouterOnly {
    async fn send(&self, method: Method, uri: &str, body: String) -> (StatusCode, String) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let request = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/fhir+json")
            .body(Body::from(body))
            .unwrap();
        let response = self.0.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&self, uri: &str) -> (StatusCode, String) {
        self.send(Method::GET, uri, String::new()).await
    }

    async fn put(&self, uri: &str, body: &Value) -> (StatusCode, String) {
        self.send(Method::PUT, uri, body.to_string()).await
    }
}

/// Sixteen clients reading fifty times each over a real socket: every read has its
/// AuditEvent, none lost, each with its own request id.
async fn concurrent_reads_are_each_audited(store: Arc<dyn store::Store>) {
    let repository = Arc::new(Repository::new(Arc::clone(&store)));
    let state = AppState::new(repository, ServerConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    let json_type = ("content-type", "application/fhir+json");
    let patient = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Chen"}]});
    let (status, _) = crate::concurrency::request(
        address,
        "PUT",
        "/fhir/Patient/p1",
        &[json_type],
        &patient.to_string(),
    )
    .await;
    assert_eq!(status, 201);
    let mut clients = Vec::new();
    for client in 0..16 {
        clients.push(tokio::spawn(async move {
            for read in 0..50 {
                let id = format!("client-{client}-read-{read}");
                let (status, body) = crate::concurrency::request(
                    address,
                    "GET",
                    "/fhir/Patient/p1",
                    &[("x-request-id", &id)],
                    "",
                )
                .await;
                assert_eq!(status, 200, "{body}");
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let (status, body) = crate::concurrency::request(
        address,
        "GET",
        "/fhir/AuditEvent?patient=Patient/p1&subtype=read&_count=1000",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let bundle: Value = serde_json::from_str(&body).unwrap();
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| request_id_of(&e["resource"]).map(str::to_owned))
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..16)
        .flat_map(|c| (0..50).map(move |r| format!("client-{c}-read-{r}")))
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
    let stats = state.audit_sink().stats();
    // Printed, not asserted: how many transactions carried them depends on the machine.
    eprintln!(
        "audit sink: {} events in {} transactions",
        stats.events, stats.transactions
    );
    let _ = stop.send(());
}

#[test]
fn concurrent_reads_are_each_audited_sqlite() {
    let store = test_support::sqlite();
    runtime().block_on(concurrent_reads_are_each_audited(Arc::clone(&store.store)));
}

#[test]
fn concurrent_reads_are_each_audited_postgres() {
    let store = test_support::postgres();
    runtime().block_on(concurrent_reads_are_each_audited(Arc::clone(&store.store)));
}

/// The identity operations are audited under the patients they name and show.
#[tokio::test]
async fn identity_operations_are_audited_under_their_patients() {
    let app = identity_app(test_support::sqlite());
    let registration = |mrn: &str| {
        json!({"resourceType": "Patient", "identifier": [{"system": "urn:county:mrn", "value": mrn}],
               "name": [{"family": "王", "given": ["秀英"]}], "gender": "female", "birthDate": "1949-12-31"})
    };
    let first = app
        .post_json("/fhir/Patient", &registration("C-1"))
        .await
        .json();
    let first = format!("Patient/{}", first["id"].as_str().unwrap());
    let query = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": registration("C-2")}]});
    let answer = app.post_json("/fhir/Patient/$match", &query).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let events = trail(&app, &format!("patient={first}&subtype=operation")).await;
    assert!(
        events.iter().any(|e| e["subtype"][1]["code"] == "$match"),
        "{events:#?}"
    );
}
