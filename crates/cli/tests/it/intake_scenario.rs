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

fn run_check(python: &std::path::Path, script: &str, args: &[String]) -> String {
    let output = Command::new(python)
        .arg(format!("{}/tests/it/{script}", env!("CARGO_MANIFEST_DIR")))
        .args(args)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
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
        let out = run_check(
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
    let out = run_check(
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
