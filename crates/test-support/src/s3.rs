//! An S3-compatible server for tests: moto's server (PyPI `moto[server]`), started once per
//! test process on a free port, installed with pip when missing (the tests' own set-up), and
//! stopped when the test process ends. Each test gets a bucket of its own.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A bucket on the test server.
pub struct TestBucket {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub bucket: String,
}

struct Server {
    endpoint: String,
    _child: Child,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// A fresh, empty bucket on the test S3 server. Fails the test with instructions when the
/// server cannot be started.
pub fn bucket() -> TestBucket {
    let server = SERVER
        .get_or_init(start)
        .as_ref()
        .unwrap_or_else(|message| panic!("{message}"));
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let bucket = format!(
        "meridian-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let status = request(&server.endpoint, "PUT", &format!("/{bucket}"));
    assert_eq!(
        status,
        Some(200),
        "creating bucket {bucket} on {}",
        server.endpoint
    );
    TestBucket {
        endpoint: server.endpoint.clone(),
        bucket,
    }
}

fn start() -> Result<Server, String> {
    if Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "moto[server]"])
            .status()
            .map_err(|e| e.to_string())
            .and_then(|s| {
                if s.success() {
                    Ok(())
                } else {
                    Err(format!("pip: {s}"))
                }
            });
        if let Err(error) = installed {
            return Err(format!(
                "the S3 tests need an S3-compatible server: `python3 -m pip install 'moto[server]'` ({error})"
            ));
        }
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // The server lives as long as this process: the shell kills it when its standard input,
    // held by this process, closes.
    let child = Command::new("sh")
        .args([
            "-c",
            &format!(
                "moto_server -p {port} >/dev/null 2>&1 & server=$!; cat >/dev/null; kill $server"
            ),
        ])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting moto_server: {e}"))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if request(&endpoint, "GET", "/").is_some() {
            return Ok(Server {
                endpoint,
                _child: child,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "moto_server did not answer on {endpoint} within 30 s"
    ))
}

/// A bare HTTP/1.1 request without a body; the status, or `None` when nothing answers.
fn request(endpoint: &str, method: &str, path: &str) -> Option<u16> {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split(' ').nth(1)?.parse().ok()
}
