//! Concurrent HTTP clients against a real socket: no update is lost, and with If-Match exactly
//! one writer per version wins.

use std::sync::Arc;

use repository::Repository;
use serde_json::json;
use server::{AppState, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A minimal HTTP/1.1 client: one request per connection, `Connection: close`.
pub(crate) async fn request(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn serve(
    store: Arc<dyn store::Store>,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    Arc<dyn store::Store>,
) {
    let repository = Arc::new(Repository::new(Arc::clone(&store)));
    let state = AppState::new(repository, ServerConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    (address, stop, store)
}

async fn concurrent_clients(store: Arc<dyn store::Store>) {
    let (address, stop, _store) = serve(store).await;
    let json_type = ("content-type", "application/fhir+json");
    let seed = json!({"resourceType": "Patient", "id": "p1", "active": true}).to_string();
    assert_eq!(
        request(address, "PUT", "/fhir/Patient/p1", &[json_type], &seed)
            .await
            .0,
        201
    );

    // Twenty clients, each with its own distinct update and no If-Match: all accepted.
    let mut tasks = Vec::new();
    for client in 0..20 {
        tasks.push(tokio::spawn(async move {
            let body = json!({"resourceType": "Patient", "id": "p1", "name": [{"text": format!("client {client}")}]}).to_string();
            request(address, "PUT", "/fhir/Patient/p1", &[json_type], &body).await.0
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let (_, body) = request(address, "GET", "/fhir/Patient/p1", &[], "").await;
    let current: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        current["meta"]["versionId"],
        json!("21"),
        "no update was lost"
    );

    // Twenty clients all claiming version 21: exactly one wins, the others get 412.
    let mut tasks = Vec::new();
    for client in 0..20 {
        tasks.push(tokio::spawn(async move {
            let body = json!({"resourceType": "Patient", "id": "p1", "name": [{"text": format!("again {client}")}]}).to_string();
            request(address, "PUT", "/fhir/Patient/p1", &[json_type, ("if-match", "W/\"21\"")], &body).await.0
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        19,
        "{statuses:?}"
    );
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_http_clients_on_sqlite() {
    concurrent_clients(test_support::sqlite().store).await;
}

/// Runs `test` on a multi-threaded runtime with a PostgreSQL store. The synchronous driver
/// opens and closes connections on a runtime of its own, which tokio refuses on an async thread:
/// the store is made before the runtime starts and its last reference dropped after it ends.
fn on_postgres<F: Future<Output = ()>>(test: impl FnOnce(Arc<dyn store::Store>) -> F) {
    let database = test_support::postgres();
    let kept = Arc::clone(&database.store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(test(Arc::clone(&kept)));
    drop(runtime);
    drop(kept);
    drop(database);
}

#[test]
fn concurrent_http_clients_on_postgres() {
    on_postgres(concurrent_clients);
}

/// Starts `clients` requests at once and answers their statuses.
async fn all_at_once(
    address: std::net::SocketAddr,
    clients: usize,
    make: impl Fn(usize) -> (&'static str, String, Vec<(&'static str, String)>, String),
) -> Vec<u16> {
    let barrier = Arc::new(tokio::sync::Barrier::new(clients));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (method, path, headers, body) = make(client);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            barrier.wait().await;
            request(address, method, &path, &headers, &body).await.0
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

/// How many resources of `type_` match `query`, by a search with a total.
async fn count(address: std::net::SocketAddr, type_: &str, query: &str) -> u64 {
    let (status, body) = request(
        address,
        "GET",
        &format!("/fhir/{type_}?{query}&_total=accurate"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let bundle: serde_json::Value = serde_json::from_str(&body).unwrap();
    bundle["total"].as_u64().unwrap()
}

/// Regression: on PostgreSQL, 20 clients sending the same conditional create left 11-16
/// Patients for one identifier, after which every conditional reference to it failed with 412.
/// Conditional create, update, delete and transactions' `ifNoneExist` are atomic with respect
/// to their criteria on every store.
async fn conditional_writes_under_concurrency(store: Arc<dyn store::Store>) {
    let (address, stop, _store) = serve(store).await;
    let fhir_json = || ("content-type", "application/fhir+json".to_owned());

    // Conditional create: If-None-Exist.
    let statuses = all_at_once(address, 20, |client| {
        let body = json!({"resourceType": "Patient",
            "identifier": [{"system": "urn:test:mrn", "value": "race-create"}],
            "name": [{"family": format!("Client{client}")}]})
        .to_string();
        let headers = vec![
            fhir_json(),
            (
                "if-none-exist",
                "identifier=urn:test:mrn|race-create".to_owned(),
            ),
        ];
        ("POST", "/fhir/Patient".to_owned(), headers, body)
    })
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(
        count(address, "Patient", "identifier=urn:test:mrn|race-create").await,
        1
    );

    // Conditional update of a resource that does not exist yet: one creates, the rest update.
    let statuses = all_at_once(address, 20, |client| {
        let body = json!({"resourceType": "Patient",
            "identifier": [{"system": "urn:test:mrn", "value": "race-update"}],
            "name": [{"family": format!("Client{client}")}]})
        .to_string();
        let path = "/fhir/Patient?identifier=urn:test:mrn|race-update".to_owned();
        ("PUT", path, vec![fhir_json()], body)
    })
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(
        count(address, "Patient", "identifier=urn:test:mrn|race-update").await,
        1
    );

    // A transaction creating an Organization with ifNoneExist and a Patient pointing at it by
    // a conditional reference.
    let statuses = all_at_once(address, 20, |client| {
        let body = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:4d1e0f4e-5a4b-4c1a-9d3e-000000000001",
             "resource": {"resourceType": "Organization",
                "identifier": [{"system": "urn:test:org", "value": "race-org"}],
                "name": "Race County Hospital"},
             "request": {"method": "POST", "url": "Organization",
                "ifNoneExist": "identifier=urn:test:org|race-org"}},
            {"resource": {"resourceType": "Patient",
                "identifier": [{"system": "urn:test:mrn", "value": format!("race-tx-{client}")}],
                "managingOrganization": {"reference": "Organization?identifier=urn:test:org|race-org"}},
             "request": {"method": "POST", "url": "Patient"}}
        ]})
        .to_string();
        ("POST", "/fhir".to_owned(), vec![fhir_json()], body)
    })
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        count(address, "Organization", "identifier=urn:test:org|race-org").await,
        1
    );
    assert_eq!(
        count(
            address,
            "Patient",
            "organization.identifier=urn:test:org|race-org"
        )
        .await,
        20
    );

    // Conditional delete racing conditional creates of the same criteria: whatever the order,
    // at most one Patient matches afterwards.
    let statuses = all_at_once(address, 20, |client| {
        if client % 2 == 0 {
            let path = "/fhir/Patient?identifier=urn:test:mrn|race-create".to_owned();
            ("DELETE", path, vec![], String::new())
        } else {
            let body = json!({"resourceType": "Patient",
                "identifier": [{"system": "urn:test:mrn", "value": "race-create"}]})
            .to_string();
            let headers = vec![
                fhir_json(),
                (
                    "if-none-exist",
                    "identifier=urn:test:mrn|race-create".to_owned(),
                ),
            ];
            ("POST", "/fhir/Patient".to_owned(), headers, body)
        }
    })
    .await;
    assert!(
        statuses.iter().all(|s| [200, 201, 204].contains(s)),
        "{statuses:?}"
    );
    assert!(count(address, "Patient", "identifier=urn:test:mrn|race-create").await <= 1);
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_writes_under_concurrency_on_sqlite() {
    conditional_writes_under_concurrency(test_support::sqlite().store).await;
}

#[test]
fn conditional_writes_under_concurrency_on_postgres() {
    on_postgres(conditional_writes_under_concurrency);
}
