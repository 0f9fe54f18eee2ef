//! `meridian serve`, run as a real process: the connection limits and the host policy from its
//! configuration are in force on its socket, and SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Long enough that only a connection the server never closes reaches it.
const NEVER: Duration = Duration::from_secs(10);

struct Serving {
    child: Child,
    address: SocketAddr,
    log: mpsc::Receiver<String>,
    /// The log up to the line that says where it listens.
    start_up: Vec<String>,
    _data: tempfile::TempDir,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Serving {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data.path().join("store"))
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
    Serving {
        child,
        address,
        log,
        start_up,
        _data: data,
    }
}

/// One request on its own connection; the status and the whole answer.
fn request(address: SocketAddr, host: &str, path: &str) -> (u16, String) {
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

#[test]
fn serve_applies_its_connection_and_host_settings_and_stops_on_sigterm() {
    let mut serving = serve(&["--header-read-timeout", "0.2", "--max-connections", "7"]);

    // A client that says nothing is closed after the configured header timeout.
    let mut silent = TcpStream::connect(serving.address).unwrap();
    silent.set_read_timeout(Some(NEVER)).unwrap();
    let mut received = Vec::new();
    let read = silent.read_to_end(&mut received);
    assert!(
        matches!(read, Ok(0)),
        "closed without a word: {read:?} {received:?}"
    );

    // With no public base, a foreign Host is refused and a loopback one answered.
    let (status, answer) = request(serving.address, "evil.example", "/fhir/metadata");
    assert_eq!(status, 421, "{answer}");
    assert!(answer.contains("public_base"), "{answer}");
    let host = serving.address.to_string();
    assert_eq!(request(serving.address, &host, "/fhir/metadata").0, 200);

    let pid = serving.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = serving.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut log = std::mem::take(&mut serving.start_up);
    log.extend(serving.log.try_iter());
    let limits = log
        .iter()
        .find(|line| line.contains("connection limits"))
        .unwrap_or_else(|| panic!("{log:#?}"));
    assert!(limits.contains("max_connections=7"), "{limits}");
    assert!(log.iter().any(|line| line.contains("stopped")), "{log:#?}");
}
