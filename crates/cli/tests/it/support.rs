//! `meridian` as a real process: `serve` on the embedded store or on a fresh PostgreSQL
//! database, the other commands on the same store, and requests over real sockets.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// Long enough that only a connection the server never closes reaches it.
pub use crate::python_venv::python_with;

/// Runs this directory's Python check `tests/it/SCRIPT` with `python` (a virtual
/// environment's, or `python3`) and `args`, straight to the server (no HTTP proxy from the
/// environment); fails the test with its output unless it succeeds. Answers its standard
/// output.
pub fn python_check<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    python: &Path,
    script: &str,
    args: &[S],
) -> String {
    let output = Command::new(python)
        .arg(format!("{}/tests/it/{script}", env!("CARGO_MANIFEST_DIR")))
        .args(args)
        .env("NO_PROXY", "*")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

pub const NEVER: Duration = Duration::from_secs(10);

/// The store a server runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// A database of its own on the local Citus cluster (`test_support::citus_url`), the
    /// store's tables distributed there.
    Citus,
}

pub struct Serving {
    pub child: Child,
    pub address: SocketAddr,
    pub log: mpsc::Receiver<String>,
    /// The log up to the line that says where it listens.
    pub start_up: Vec<String>,
    /// An administrator's access token, from `meridian token` on the same store.
    pub token: String,
    /// The arguments that name the server's store, for other `meridian` commands.
    store_args: Vec<OsString>,
    _data: Option<tempfile::TempDir>,
    _database: Option<test_support::TestDatabase>,
}

impl Serving {
    /// The lines the server has logged at ERROR since they were last read.
    pub fn errors_logged(&self) -> Vec<String> {
        self.log
            .try_iter()
            .filter(|line| line.contains("ERROR"))
            .collect()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server on a fresh embedded store of its own.
pub fn serve(args: &[&str]) -> Serving {
    serve_on(Backend::Sqlite, args)
}

/// The server on a fresh store of `backend` (a PostgreSQL database of its own, dropped with
/// it; the data directory then holds only the administrator's password and the blobs).
pub fn serve_on(backend: Backend, args: &[&str]) -> Serving {
    let data = tempfile::tempdir().unwrap();
    let mut serving = match backend {
        Backend::Sqlite => serve_in(&data.path().join("store"), args),
        Backend::Postgres | Backend::Citus => {
            let database = if matches!(backend, Backend::Citus) {
                test_support::TestDatabase::create_on(&test_support::citus_url())
            } else {
                test_support::TestDatabase::create()
            };
            let store_args = vec![
                "--database-url".into(),
                database.url.clone().into(),
                "--data".into(),
                data.path().join("data").into(),
            ];
            let mut serving = start(store_args, args);
            serving._database = Some(database);
            serving
        }
    };
    serving._data = Some(data);
    serving
}

/// The server on the embedded store in `data` (kept when the server stops).
pub fn serve_in(data: &Path, args: &[&str]) -> Serving {
    start(vec!["--data".into(), data.into()], args)
}

/// The server on the store `store_args` name (another server's, say), which outlives it.
pub fn serve_with_store(store_args: &[&str], args: &[&str]) -> Serving {
    start(store_args.iter().map(OsString::from).collect(), args)
}

fn start(store_args: Vec<OsString>, args: &[&str]) -> Serving {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(&store_args)
        .args(args)
        .env_clear()
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let (lines, log) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut start_up = Vec::new();
    let address = loop {
        let line = log
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server did not start: {start_up:#?}"));
        let address = line
            .split_once("serving FHIR R4 at http://")
            .and_then(|(_, rest)| rest.split_once("/fhir"))
            .map(|(address, _)| address.parse().unwrap());
        start_up.push(line);
        if let Some(address) = address {
            break address;
        }
    };
    let token = meridian_on(&store_args, &["token"], "");
    Serving {
        child,
        address,
        log,
        start_up,
        token,
        store_args,
        _data: None,
        _database: None,
    }
}

/// Runs `meridian ARGS STORE_ARGS` (with `stdin` on standard input) and answers its output.
fn meridian_on(store_args: &[OsString], args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .args(store_args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "meridian {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Runs `meridian ARGS --data DATA` (with `stdin` on standard input) and answers its output.
pub fn meridian_with_input(data: &Path, args: &[&str], stdin: &str) -> String {
    meridian_on(&["--data".into(), data.into()], args, stdin)
}

pub fn meridian_in(data: &Path, args: &[&str]) -> String {
    meridian_with_input(data, args, "")
}

impl Serving {
    /// SIGTERM, and the process's exit.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
    }

    /// Stops the server and starts it again on the same store with `args`.
    pub fn restart(mut self, args: &[&str]) -> Serving {
        self.stop();
        let mut serving = start(self.store_args.clone(), args);
        serving._data = self._data.take();
        serving._database = self._database.take();
        serving
    }

    /// Runs `meridian ARGS` on this server's store: whether it succeeded, its output and its
    /// error output.
    pub fn meridian_status(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .args(args)
            .args(&self.store_args)
            .env_clear()
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// The arguments that name this server's store.
    pub fn store_args(&self) -> &[OsString] {
        &self.store_args
    }

    /// Runs `meridian ARGS` on this server's store, `stdin` on its standard input.
    pub fn meridian(&self, args: &[&str], stdin: &str) -> String {
        meridian_on(&self.store_args, args, stdin)
    }

    /// This server's store, opened beside it as `meridian token` opens it (for what no
    /// command makes: tokens signed with its key for another audience, or already expired).
    pub fn open_store(&self) -> Arc<dyn store::Store> {
        let value = |flag: &str| {
            let at = self.store_args.iter().position(|a| a == flag)?;
            self.store_args.get(at + 1).cloned()
        };
        match value("--database-url") {
            Some(url) => Arc::new(
                store_postgres::PostgresStore::open(store_postgres::PostgresConfig::new(
                    url.to_str().unwrap(),
                ))
                .unwrap(),
            ),
            None => {
                let data = value("--data").unwrap();
                Arc::new(
                    store_sqlite::SqliteStore::open(store_sqlite::SqliteConfig::in_dir(Path::new(
                        &data,
                    )))
                    .unwrap(),
                )
            }
        }
    }
}

/// An answer: the status, the headers (lower-case names) and the body.
pub type Answer = (u16, Vec<(String, String)>, String);

/// One request on its own connection, with an administrator's token from `meridian token`.
pub fn send(
    serving: &Serving,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    send_as(
        serving.address,
        Some(&serving.token),
        method,
        path,
        headers,
        body,
    )
}

/// Creates `resource` (POST to its type), which must succeed; answers its new id.
pub fn create(serving: &Serving, resource: &serde_json::Value) -> String {
    let resource_type = resource["resourceType"].as_str().unwrap();
    let (status, _, body) = send(
        serving,
        "POST",
        &format!("/fhir/{resource_type}"),
        &[("content-type", "application/fhir+json")],
        &resource.to_string(),
    );
    assert_eq!(status, 201, "{body}");
    json_of(&body)["id"].as_str().unwrap().to_owned()
}

/// One request on its own connection with `token` (none: no Authorization header).
pub fn send_as(
    address: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(NEVER)).unwrap();
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        text.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    // Chunked bodies (the streamed export file): join the chunks.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut joined = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            joined.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
        joined
    } else {
        body.to_owned()
    };
    (status, headers, body)
}

/// A body that must be JSON.
pub fn json_of(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// One request on its own connection; the status and the whole answer.
pub fn request(address: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(NEVER)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    (status, answer)
}

/// The password of the clinicians [`clinician`] makes.
pub const CLINICIAN_PASSWORD: &str = "a long enough password 1";

/// `PUT`s `resource` at its type and id as the administrator; it must be created or updated.
pub fn put(serving: &Serving, resource: serde_json::Value) {
    let path = format!(
        "/fhir/{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    let (status, _, body) = send(
        serving,
        "PUT",
        &path,
        &[("Content-Type", "application/fhir+json")],
        &resource.to_string(),
    );
    assert!(status == 200 || status == 201, "{path}: {status} {body}");
}

/// A practitioner of `organization` with an account (password [`CLINICIAN_PASSWORD`]), and
/// its access token.
pub fn clinician(serving: &Serving, name: &str, organization: &str) -> String {
    put(
        serving,
        serde_json::json!({"resourceType": "Organization", "id": organization, "name": organization}),
    );
    put(
        serving,
        serde_json::json!({"resourceType": "Practitioner", "id": name}),
    );
    put(
        serving,
        serde_json::json!({"resourceType": "PractitionerRole", "id": name,
            "practitioner": {"reference": format!("Practitioner/{name}")},
            "organization": {"reference": format!("Organization/{organization}")}}),
    );
    serving.meridian(
        &[
            "user",
            "add",
            name,
            "--password-stdin",
            "--practitioner-role",
            &format!("PractitionerRole/{name}"),
        ],
        &format!("{CLINICIAN_PASSWORD}\n"),
    );
    serving
        .meridian(&["token", "--user", name], "")
        .trim()
        .to_owned()
}
