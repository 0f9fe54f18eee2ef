//! The intake end to end, with real clients over the real protocols: every corpus HL7 v2
//! message sent over MLLP by python-hl7's client (both stores), and 100 simulated kiosks
//! publishing 10,000 readings over MQTT with paho-mqtt to the Mosquitto on this machine.

use std::process::Command;
use std::time::Duration;

use crate::support::{self, Backend, Serving};

fn intake_python() -> std::path::PathBuf {
    support::python_with(
        "intake",
        &["hl7==0.4.5", "paho-mqtt==2.1.0"],
        "import hl7, hl7.client, paho.mqtt.client",
    )
}

/// The MLLP listener's address, from the server's log.
fn mllp_address(serving: &Serving) -> String {
    loop {
        let line = serving
            .log
            .recv_timeout(Duration::from_secs(30))
            .expect("the server says where it takes MLLP");
        if line.contains("over MLLP")
            && let Some(address) = line.split("address=").nth(1)
        {
            return address.split_whitespace().next().unwrap().to_owned();
        }
    }
}

#[test]
fn every_corpus_message_over_mllp_is_acknowledged_applied_once_or_refused_with_its_reason() {
    let python = intake_python();
    let corpus = format!("{}/../hl7v2/tests/corpus", env!("CARGO_MANIFEST_DIR"));
    let expected = format!(
        "{}/../intake/tests/it/v2_expected.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let serving = support::serve_on(backend, &["--mllp-listen", "127.0.0.1:0"]);
        let mllp = mllp_address(&serving);
        let out = support::python_check(
            &python,
            "intake_mllp_check.py",
            &[
                "--mllp".into(),
                mllp,
                "--base".into(),
                format!("http://{}/fhir", serving.address),
                "--token".into(),
                serving.token.clone(),
                "--corpus".into(),
                corpus.clone(),
                "--expected".into(),
                expected.clone(),
            ],
        );
        assert!(out.contains("acknowledgements: AA="), "{backend:?}: {out}");
        // The refused messages are kept, each with its reason; replaying them without a fix
        // keeps them (and says so).
        let kept = serving.meridian(&["intake", "dead-letters"], "");
        let kept: Vec<serde_json::Value> = kept
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(!kept.is_empty(), "{backend:?}");
        assert!(
            kept.iter()
                .all(|k| k["error"].as_str().is_some_and(|e| !e.is_empty())),
            "{backend:?}: {kept:?}"
        );
        let (all_applied, replayed, _) = serving.meridian_status(&["intake", "replay"]);
        assert!(
            !all_applied,
            "{backend:?}: nothing was fixed, so they stay kept"
        );
        assert_eq!(
            replayed.lines().filter(|l| l.contains("\"kept\"")).count(),
            kept.len(),
            "{backend:?}: {replayed}"
        );
        eprintln!("{backend:?}: {out}kept {}", kept.len());
    }
}

#[test]
fn kiosks_readings_over_mqtt_are_observations_once_refused_with_reasons_and_raise_alerts() {
    let python = intake_python();
    if std::net::TcpStream::connect("127.0.0.1:1883").is_err() {
        let started = Command::new("mosquitto")
            .args(["-d", "-c", "/etc/mosquitto/mosquitto.conf"])
            .status();
        assert!(
            started.is_ok_and(|s| s.success()),
            "Mosquitto is needed on 127.0.0.1:1883"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    support::meridian_in(&store, &["seed", "--patients", "1500", "--seed", "5"]);
    let serving = support::serve_in(&store, &["--mqtt", "127.0.0.1:1883"]);
    let out = support::python_check(
        &python,
        "intake_mqtt_check.py",
        &[
            "--broker".into(),
            "127.0.0.1:1883".into(),
            "--base".into(),
            format!("http://{}/fhir", serving.address),
            "--token".into(),
            serving.token.clone(),
        ],
    );
    let refused: usize = out
        .split("refused=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the check counts the refused readings");
    assert!(refused > 0, "{out}");
    let kept = serving.meridian(&["intake", "refused-readings"], "");
    assert_eq!(
        kept.lines().count(),
        refused,
        "every refused reading is kept: {out}"
    );
    eprintln!("{out}");
}

/// An ADT^A04 registering patient `n` (its own medical-record number and control id).
fn registration(n: usize) -> Vec<u8> {
    format!(
        "MSH|^~\\&|HIS|LOADHOSP|MERIDIAN|TONGREN|20260601083000+0800||ADT^A04^ADT_A01|LOAD-{n}|P|2.5\r\
         EVN|A04|20260601083000+0800\r\
         PID|1||LOAD-MRN-{n}^^^^MR||测试^{n}||19700101|F\r\
         PV1|1|O|CLINIC||||||||||||||||LOAD-V-{n}\r"
    )
    .into_bytes()
}

/// A plain MLLP client: sends frames, reads acknowledgements as they come.
struct Mllp {
    stream: std::net::TcpStream,
    buffer: Vec<u8>,
}

impl Mllp {
    fn connect(address: &str) -> Mllp {
        let stream = std::net::TcpStream::connect(address).expect("the MLLP listener answers");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Mllp {
            stream,
            buffer: Vec::new(),
        }
    }

    fn send(&mut self, message: &[u8]) {
        use std::io::Write;
        let mut frame = vec![0x0b];
        frame.extend_from_slice(message);
        frame.extend_from_slice(&[0x1c, 0x0d]);
        self.stream.write_all(&frame).unwrap();
    }

    /// The next acknowledgement's MSA-1 and MSA-2 (None when the connection closed).
    fn ack(&mut self) -> Option<(String, String)> {
        use std::io::Read;
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == [0x1c, 0x0d]) {
                let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&frame[1..end]).into_owned();
                let msa = text.split('\r').find(|s| s.starts_with("MSA|"))?;
                let fields: Vec<&str> = msa.split('|').collect();
                return Some((
                    fields[1].to_owned(),
                    fields.get(2).unwrap_or(&"").to_string(),
                ));
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

fn patients_with_mrn_prefix(serving: &Serving) -> Vec<serde_json::Value> {
    // family=测试, the family name every registration above carries.
    let (status, _, body) = support::send(
        serving,
        "GET",
        "/fhir/Patient?family=%E6%B5%8B%E8%AF%95&_count=1000",
        &[],
        "",
    );
    assert_eq!(status, 200, "{body}");
    support::json_of(&body)["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_same_message_on_many_connections_at_once_is_applied_once() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let serving = support::serve_on(backend, &["--mllp-listen", "127.0.0.1:0"]);
        let mllp = mllp_address(&serving);
        // 8 connections each send messages 0..40, all at once: every message 8 times.
        let acks: Vec<Vec<(String, String)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let mllp = mllp.clone();
                    scope.spawn(move || {
                        let mut client = Mllp::connect(&mllp);
                        (0..40)
                            .map(|n| {
                                client.send(&registration(n));
                                client.ack().expect("every message is answered")
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(
            acks.iter().flatten().all(|(code, _)| code == "AA"),
            "{backend:?}: {acks:?}"
        );
        let patients = patients_with_mrn_prefix(&serving);
        assert_eq!(patients.len(), 40, "{backend:?}: one Patient per message");
        assert!(
            patients
                .iter()
                .all(|p| p["resource"]["meta"]["versionId"] == "1"),
            "{backend:?}: none written twice"
        );
    }
}

#[test]
fn a_stream_cut_by_a_stop_loses_nothing_and_applies_nothing_twice() {
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let serving = support::serve_in(&store, &["--mllp-listen", "127.0.0.1:0"]);
    let mllp = mllp_address(&serving);
    // A sender streams 300 messages without waiting; the server is stopped mid-stream.
    let mut client = Mllp::connect(&mllp);
    let writer = {
        let mut stream = client.stream.try_clone().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            for n in 0..300 {
                let mut frame = vec![0x0b];
                frame.extend_from_slice(&registration(n));
                frame.extend_from_slice(&[0x1c, 0x0d]);
                if stream.write_all(&frame).is_err() {
                    break;
                }
            }
        })
    };
    let mut acknowledged = std::collections::BTreeSet::new();
    let mut serving = serving;
    while let Some((code, control)) = client.ack() {
        assert_eq!(code, "AA", "{control}");
        acknowledged.insert(control);
        if acknowledged.len() == 60 {
            serving.stop();
        }
    }
    let _ = writer.join();
    assert!(
        (60..300).contains(&acknowledged.len()),
        "the stop cut the stream: {} acknowledged",
        acknowledged.len()
    );
    // The sender, reconnected, sends again everything it did not see acknowledged, and, to
    // be sure, the acknowledged ones too.
    let serving = support::serve_in(&store, &["--mllp-listen", "127.0.0.1:0"]);
    let mut client = Mllp::connect(&mllp_address(&serving));
    for n in 0..300 {
        client.send(&registration(n));
        let (code, control) = client.ack().expect("answered");
        assert_eq!(code, "AA", "{control}");
    }
    let patients = patients_with_mrn_prefix(&serving);
    assert_eq!(patients.len(), 300, "every message applied");
    assert!(
        patients
            .iter()
            .all(|p| p["resource"]["meta"]["versionId"] == "1"),
        "none applied twice"
    );
}
