//! Concurrent HTTP clients against a real socket: no update is lost, and with If-Match exactly
//! one writer per version wins.

use std::sync::Arc;

use repository::Repository;
use serde_json::json;
use server::{AppState, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A minimal HTTP/1.1 client: one request per connection, `Connection: close`.
async fn request(
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
    store: test_support::TestStore,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    test_support::TestStore,
) {
    let repository = Arc::new(Repository::new(Arc::clone(&store.store)));
    let state = AppState::new(repository, ServerConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    (address, stop, store)
}

async fn concurrent_clients(store: test_support::TestStore) {
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
    concurrent_clients(test_support::sqlite()).await;
}
