//! What the audit trail adds to a read served over HTTP, measured in one run on both stores:
//! concurrent clients read a Patient (patient data: audited, the answer waits for its
//! AuditEvent's commit) and an Organization (directory data: not audited) through the same
//! server, dispatcher and read path. The difference is the audit's cost.
//!
//! `cargo bench -p server --bench audit_overhead -- [--clients N] [--reads N] [--rate N]`
//! (reads per client; with `--rate`, the clients together send that many requests a second,
//! paced, instead of as fast as they can). PostgreSQL is the server `MERIDIAN_TEST_DATABASE_URL` names (a fresh database);
//! SQLite a file in a temporary directory. One request per connection (`Connection: close`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use repository::Repository;
use server::{AppState, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn request(address: std::net::SocketAddr, method: &str, path: &str, body: &str) -> u16 {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let text = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/fhir+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let head = String::from_utf8_lossy(&response[..response.len().min(16)]).into_owned();
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Reads of `path` by `clients` clients: (reads/s, p50 ms, p99 ms).
async fn measure(
    address: std::net::SocketAddr,
    path: &'static str,
    clients: usize,
    reads: usize,
    rate: usize,
) -> (f64, f64, f64) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(reads);
            let mut pace = (rate > 0).then(|| {
                tokio::time::interval(Duration::from_secs_f64(clients as f64 / rate as f64))
            });
            for _ in 0..reads {
                if let Some(pace) = &mut pace {
                    pace.tick().await;
                }
                let start = Instant::now();
                assert_eq!(request(address, "GET", path, "").await, 200);
                times.push(start.elapsed());
            }
            times
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    times.sort();
    (
        times.len() as f64 / elapsed,
        percentile(&times, 0.5),
        percentile(&times, 0.99),
    )
}

fn argument(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let clients = argument("--clients", 16);
    let reads = argument("--reads", 200);
    let rate = argument("--rate", 0);
    match rate {
        0 => println!(
            "{clients} clients x {reads} reads as fast as they go, one request per connection"
        ),
        _ => println!(
            "{clients} clients x {reads} reads at {rate} requests/s in all, one request per connection"
        ),
    }
    println!(
        "{:<10} {:<32} {:>9} {:>9} {:>9} {:>10}",
        "store", "read", "reads/s", "p50 ms", "p99 ms", "audit txs"
    );
    for backend in ["sqlite", "postgres"] {
        let store = match backend {
            "sqlite" => test_support::sqlite(),
            _ => test_support::postgres(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let repository = Arc::new(Repository::new(Arc::clone(&store.store)));
            let state = AppState::new(repository, ServerConfig::default());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(server::serve(listener, state.clone(), async move {
                let _ = stopped.await;
            }));
            let patient = r#"{"resourceType":"Patient","id":"p1","name":[{"family":"Wang","given":["Xiuying"]}],"gender":"female","birthDate":"1949-12-31"}"#;
            let organization = r#"{"resourceType":"Organization","id":"o1","name":"County hospital","active":true}"#;
            assert_eq!(request(address, "PUT", "/fhir/Patient/p1", patient).await, 201);
            assert_eq!(request(address, "PUT", "/fhir/Organization/o1", organization).await, 201);
            // Warm up both paths, then alternate so drifting load favours neither.
            measure(address, "/fhir/Patient/p1", clients, 10, 0).await;
            measure(address, "/fhir/Organization/o1", clients, 10, 0).await;
            for round in 0..2 {
                for (name, path) in [
                    ("Organization (not audited)", "/fhir/Organization/o1"),
                    ("Patient (audited)", "/fhir/Patient/p1"),
                ] {
                    let before = state.audit_sink().stats().transactions;
                    let (achieved, p50, p99) = measure(address, path, clients, reads, rate).await;
                    let transactions = state.audit_sink().stats().transactions - before;
                    println!(
                        "{backend:<10} {:<32} {achieved:>9.0} {p50:>9.2} {p99:>9.2} {transactions:>10}",
                        format!("{name}, round {}", round + 1)
                    );
                }
            }
            let _ = stop.send(());
        });
        drop(runtime);
    }
}
