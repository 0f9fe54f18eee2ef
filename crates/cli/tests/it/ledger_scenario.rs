//! Issue 15's outside check, done from outside: the real `meridian serve` on each store with a
//! real `meridian ledger witness` process; results, a consent and the audit trail written and
//! read over HTTP; a verifier written from RFC 9162, RFC 8032 and the C2SP specifications alone
//! (`ledger_verifier.py`, Python's standard library, no Meridian code) checks the checkpoint's
//! signature and cosignature, inclusion proofs of the results and of an audit event, a
//! consistency proof between checkpoints fetched at two times, and the whole tree from its
//! entries; the witness refuses a fork; bad proof requests are 400 OperationOutcomes; then
//! `meridian ledger verify` passes on the untouched store, and names the result whose stored
//! bytes were changed directly in SQLite or PostgreSQL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::support::*;

#[test]
fn results_and_audit_events_are_provably_logged_and_tampering_is_named_sqlite() {
    scenario(Backend::Sqlite);
}

#[test]
fn results_and_audit_events_are_provably_logged_and_tampering_is_named_postgres() {
    scenario(Backend::Postgres);
}

#[test]
fn results_and_audit_events_are_provably_logged_and_tampering_is_named_citus() {
    scenario(Backend::Citus);
}

struct Witness(Child);

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A witness process trusting `log_key`: it and its verifier key (its first line of output).
fn start_witness(state: &std::path::Path, log_key: &str) -> (Witness, String, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args([
            "ledger",
            "witness",
            "--listen",
            &listen,
            "--name",
            "witness.test/w1",
        ])
        .arg("--state")
        .arg(state)
        .args(["--log-key", log_key])
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut key = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut key)
        .unwrap();
    assert!(
        key.starts_with("witness.test/w1+"),
        "the witness printed {key:?}"
    );
    // It prints its key before it listens: wait until it answers.
    for _ in 0..100 {
        if std::net::TcpStream::connect(&listen).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (
        Witness(child),
        format!("http://{listen}"),
        key.trim().to_owned(),
    )
}

fn lab(value: f64) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "valueQuantity": {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
    })
}

/// Runs the independent verifier; every check it prints must pass.
fn verifier(serving: &Serving, args: &[&str]) -> Vec<Value> {
    let base = format!("http://{}", serving.address);
    let mut arguments = vec![
        "--base",
        &base,
        "--fhir-prefix",
        "/fhir",
        "--token",
        &serving.token,
        "--witness-keys-required",
    ];
    arguments.extend_from_slice(args);
    let stdout = python_check(
        std::path::Path::new("python3"),
        "ledger_verifier.py",
        &arguments,
    );
    let checks: Vec<Value> = stdout.lines().map(json_of).collect();
    assert!(
        !checks.is_empty() && checks.iter().all(|c| c["ok"] == true),
        "{stdout}"
    );
    checks
}

fn make_checkpoint(serving: &Serving) -> String {
    let (status, headers, body) = send(serving, "POST", "/ledger/checkpoint", &[], "");
    assert_eq!(status, 200, "{body}");
    assert!(
        header(&headers, "content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    body
}

fn scenario(backend: Backend) {
    // The first start makes the log's key; the witness is given it, and the log the witness's.
    let serving = serve_on(backend, &[]);
    let (status, _, keys) = send_as(serving.address, None, "GET", "/ledger/keys", &[], "");
    assert_eq!(status, 200, "{keys}");
    let log_key = json_of(&keys)["log"][0].as_str().unwrap().to_owned();
    assert!(log_key.starts_with("meridian.local/ledger+"), "{log_key}");
    let state = tempfile::tempdir().unwrap();
    let (_witness, witness_url, witness_key) = start_witness(state.path(), &log_key);
    let serving = serving.restart(&[
        "--witness",
        &format!("{witness_url}={witness_key}"),
        "--checkpoint-interval",
        "3600",
    ]);

    // Results, a consent, reads that the audit trail records.
    let patient = create(
        &serving,
        &json!({"resourceType": "Patient", "gender": "female"}),
    );
    let subject = json!({"reference": format!("Patient/{patient}")});
    let mut glucose = lab(6.1);
    glucose["subject"] = subject.clone();
    let glucose = create(&serving, &glucose);
    let report = create(
        &serving,
        &json!({"resourceType": "DiagnosticReport", "status": "final", "subject": subject,
               "code": {"text": "basic metabolic panel"},
               "result": [{"reference": format!("Observation/{glucose}")}]}),
    );
    let consent = create(
        &serving,
        &json!({"resourceType": "Consent", "status": "active",
               "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
               "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
               "patient": subject, "dateTime": "2026-12-01T10:00:00+08:00",
               "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
               "provision": {"type": "permit"}}),
    );
    let (status, _, _) = send(
        &serving,
        "GET",
        &format!("/fhir/Observation/{glucose}"),
        &[],
        "",
    );
    assert_eq!(status, 200);
    let (status, _, events) = send(
        &serving,
        "GET",
        &format!("/fhir/AuditEvent?entity=Observation/{glucose}&_count=1"),
        &[],
        "",
    );
    assert_eq!(status, 200, "{events}");
    let event = json_of(&events)["entry"][0]["resource"]["id"]
        .as_str()
        .expect("the read is on the audit trail")
        .to_owned();
    // A vital sign is not a result: it has no leaf.
    let mut pulse = lab(72.0);
    pulse["category"][0]["coding"][0]["code"] = json!("vital-signs");
    let pulse = create(&serving, &pulse);

    // The checkpoint, signed by the log and cosigned by the witness.
    let first = make_checkpoint(&serving);
    assert!(first.contains("\n— witness.test/w1 "), "{first}");
    let old = tempfile::NamedTempFile::new().unwrap();
    let old_path = old.path().to_str().unwrap();
    verifier(&serving, &["checkpoint", "--save", old_path]);
    let resources = [
        format!("Observation/{glucose}/_history/1"),
        format!("DiagnosticReport/{report}/_history/1"),
        format!("Consent/{consent}/_history/1"),
        format!("AuditEvent/{event}/_history/1"),
    ];
    let mut args = vec!["inclusion"];
    args.extend(resources.iter().map(String::as_str));
    args.extend(["--checkpoint", old_path]);
    let checks = verifier(&serving, &args);
    assert!(
        checks.iter().filter(|c| c["check"] == "inclusion").count() >= 4,
        "{checks:?}"
    );
    let (status, _, body) = send(
        &serving,
        "GET",
        &format!("/ledger/leaf?resource=Observation/{pulse}/_history/1"),
        &[],
        "",
    );
    assert_eq!(status, 404, "a vital sign is not logged: {body}");

    // The log grows; the later checkpoint is consistent with the earlier one.
    let mut corrected = lab(6.3);
    corrected["id"] = json!(glucose);
    corrected["subject"] = subject.clone();
    let (status, _, body) = send(
        &serving,
        "PUT",
        &format!("/fhir/Observation/{glucose}"),
        &[("content-type", "application/fhir+json")],
        &corrected.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let second = make_checkpoint(&serving);
    assert_ne!(first, second);
    verifier(&serving, &["consistency", old_path]);
    verifier(
        &serving,
        &["inclusion", &format!("Observation/{glucose}/_history/2")],
    );
    verifier(&serving, &["entries"]);

    bad_requests(&serving, &glucose);
    the_witness_refuses_a_fork(&serving, &witness_url, &second);

    // `meridian ledger prove`: the proof and the checkpoint for a third party.
    let proof = json_of(&serving.meridian(
        &[
            "ledger",
            "prove",
            &format!("Observation/{glucose}/_history/1"),
        ],
        "",
    ));
    let leaf = ledger::leaf_hash(proof["leaf_input"].as_str().unwrap().as_bytes());
    let path: Vec<ledger::Hash> = proof["audit_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| ledger::hash::from_base64(h.as_str().unwrap()).unwrap())
        .collect();
    let root = ledger::hash::from_base64(proof["root_hash"].as_str().unwrap()).unwrap();
    assert!(ledger::tree::verify_inclusion(
        proof["leaf_index"].as_u64().unwrap(),
        proof["tree_size"].as_u64().unwrap(),
        &leaf,
        &path,
        &root
    ));

    // The untouched store verifies; one result's stored bytes changed behind the server's
    // back is found and named.
    let mut serving = serving;
    serving.stop();
    let (verified, out, err) = serving.meridian_status(&["ledger", "verify"]);
    assert!(verified, "an untouched store must verify:\n{out}\n{err}");
    assert!(
        err.contains("verified") && err.contains("1 witness cosignatures"),
        "{err}"
    );
    // First the version's bytes replaced by another version's, which read back as valid JSON
    // that is not what was logged; then one byte flipped, which may not read back at all.
    for edit in [Edit::OtherVersionsBytes, Edit::FlippedByte] {
        tamper(&serving, backend, &glucose, edit);
        let (verified, out, err) = serving.meridian_status(&["ledger", "verify"]);
        assert!(
            !verified && err.contains("problems"),
            "{edit:?}: a changed result must fail verification, naming it:\n{out}\n{err}"
        );
        assert!(
            out.contains(&format!("Observation/{glucose}/_history/1")),
            "{edit:?}: the changed version is named:\n{out}"
        );
        assert!(
            !out.contains(&format!("Observation/{glucose}/_history/2")),
            "{edit:?}: {out}"
        );
    }
}

fn bad_requests(serving: &Serving, glucose: &str) {
    let size: u64 = {
        let (_, _, note) = send_as(serving.address, None, "GET", "/ledger/checkpoint", &[], "");
        note.lines().nth(1).unwrap().parse().unwrap()
    };
    for path in [
        format!("/ledger/proof/inclusion?index={size}&tree_size={size}"),
        format!(
            "/ledger/proof/inclusion?index={}&tree_size={}",
            size + 1_000_000,
            size + 1_000_001
        ),
        format!(
            "/ledger/proof/inclusion?index=0&tree_size={}",
            size + 1_000_000
        ),
        "/ledger/proof/inclusion?index=-1&tree_size=3".to_owned(),
        "/ledger/proof/inclusion?index=abc&tree_size=3".to_owned(),
        "/ledger/proof/inclusion?tree_size=3".to_owned(),
        "/ledger/proof/inclusion?index=1&index=2&tree_size=3".to_owned(),
        "/ledger/proof/consistency?first=5&second=2".to_owned(),
        format!(
            "/ledger/proof/consistency?first=1&second={}",
            size + 1_000_000
        ),
        "/ledger/proof/consistency?first=1&second=18446744073709551616".to_owned(),
        "/ledger/entries?start=9&end=2".to_owned(),
        format!(
            "/ledger/entries?start={}&end={}",
            size + 1_000_000,
            size + 1_000_009
        ),
        "/ledger/leaf?resource=Observation".to_owned(),
        format!("/ledger/leaf?resource=Observation/{glucose}/_history/zero"),
        "/ledger/leaf?resource=%ZZ".to_owned(),
    ] {
        let (status, _, body) = send(serving, "GET", &path, &[], "");
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(
            json_of(&body)["resourceType"],
            "OperationOutcome",
            "{path}: {body}"
        );
    }
    // The leaf is for callers who may read the version: no token, no leaf.
    let (status, headers, _) = send_as(
        serving.address,
        None,
        "GET",
        &format!("/ledger/leaf?resource=Observation/{glucose}/_history/1"),
        &[],
        "",
    );
    assert_eq!(status, 401);
    assert!(header(&headers, "www-authenticate").is_some());
    // A checkpoint on demand is for administrators: not for a caller without a token.
    let (status, _, _) = send_as(serving.address, None, "POST", "/ledger/checkpoint", &[], "");
    assert_eq!(status, 401);
    // Both refusals are on the audit trail, as failed attempts by nobody known.
    for operation in ["%24ledger-leaf", "%24ledger-checkpoint"] {
        let (status, _, body) = send(
            serving,
            "GET",
            &format!("/fhir/AuditEvent?subtype={operation}"),
            &[],
            "",
        );
        assert_eq!(status, 200, "{body}");
        let events = json_of(&body);
        let refused = events["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["resource"]["outcome"] != "0")
            .count();
        assert!(refused >= 1, "{operation}: {body}");
    }
    // The proofs themselves are public.
    let (status, _, body) = send_as(
        serving.address,
        None,
        "GET",
        &format!("/ledger/proof/inclusion?index=0&tree_size={size}"),
        &[],
        "",
    );
    assert_eq!(status, 200, "{body}");
}

/// A checkpoint of the same size with another root, signed with the log's own key (as an
/// operator who rewrote the history would sign it): the witness refuses it, and refuses a
/// larger one whose proof does not join it to what it cosigned.
fn the_witness_refuses_a_fork(serving: &Serving, witness_url: &str, published: &str) {
    let store = serving.open_store();
    let ring: Value =
        serde_json::from_str(&store.checkpoint("ledger/keys").unwrap().unwrap()).unwrap();
    let keys = ledger::keys::LogKeys::from_json(&ring).unwrap();
    let cosigned =
        ledger::Checkpoint::parse(&ledger::Note::parse(published).unwrap().text).unwrap();
    let sign = |size: u64, root: ledger::Hash| {
        let text = ledger::Checkpoint {
            origin: cosigned.origin.clone(),
            size,
            root,
        }
        .text();
        ledger::Note {
            signatures: vec![keys.signer().sign(&text, 0)],
            text,
        }
        .to_string()
    };
    let post = |body: String| {
        let address = witness_url.trim_start_matches("http://").parse().unwrap();
        send_as(address, None, "POST", "/add-checkpoint", &[], &body)
    };
    let forged_root = ledger::leaf_hash(b"another history");
    let same_size = ledger::witness::AddCheckpoint {
        old: cosigned.size,
        proof: vec![],
        checkpoint: sign(cosigned.size, forged_root),
    };
    let (status, _, body) = post(same_size.body());
    assert_eq!(status, 409, "{body}");
    let larger = ledger::witness::AddCheckpoint {
        old: cosigned.size,
        proof: vec![forged_root; 3],
        checkpoint: sign(cosigned.size + 5, forged_root),
    };
    let (status, _, body) = post(larger.body());
    assert_eq!(status, 422, "{body}");
    // A stale old size: 409 with the size the witness holds.
    let stale = ledger::witness::AddCheckpoint {
        old: 1,
        proof: vec![],
        checkpoint: sign(cosigned.size + 5, forged_root),
    };
    let (status, headers, body) = post(stale.body());
    assert_eq!(
        (status, body.trim()),
        (409, cosigned.size.to_string().as_str())
    );
    assert_eq!(header(&headers, "content-type"), Some("text/x.tlog.size"));
    let (status, _, _) = post("garbage".into());
    assert_eq!(status, 400);
}

#[derive(Debug, Clone, Copy)]
enum Edit {
    /// The stored bytes of version 2 put in place of version 1's.
    OtherVersionsBytes,
    /// One byte in the middle of version 1's stored bytes flipped.
    FlippedByte,
}

/// Changes the first version of the Observation's stored content, directly in the database.
fn tamper(serving: &Serving, backend: Backend, id: &str, edit: Edit) {
    let args = serving.store_args();
    let value = |flag: &str| {
        let at = args.iter().position(|a| a == flag)?;
        args.get(at + 1).map(|v| v.to_str().unwrap().to_owned())
    };
    // (Joined on the patient key too: on Citus a join must state it to run shard by shard.)
    let select = "SELECT v.seq, v.content FROM version v \
                  JOIN resource r ON r.rid = v.rid AND r.patient_key = v.patient_key \
                  WHERE r.type = 'Observation' AND r.id = $1 AND v.version = $2";
    let changed = |first: Vec<u8>, second: Vec<u8>| match edit {
        Edit::OtherVersionsBytes => second,
        Edit::FlippedByte => {
            let mut bytes = first;
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x20;
            bytes
        }
    };
    match backend {
        Backend::Sqlite => {
            let path = std::path::Path::new(&value("--data").unwrap()).join("meridian.db");
            let connection = rusqlite::Connection::open(path).unwrap();
            let read = |version: i64| -> (i64, Vec<u8>) {
                connection
                    .query_row(
                        &select.replace("$1", "?1").replace("$2", "?2"),
                        rusqlite::params![id, version],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .unwrap()
            };
            let ((seq, first), (_, second)) = (read(1), read(2));
            connection
                .execute(
                    "UPDATE version SET content = ?1 WHERE seq = ?2",
                    rusqlite::params![changed(first, second), seq],
                )
                .unwrap();
        }
        Backend::Postgres | Backend::Citus => {
            let mut client =
                postgres::Client::connect(&value("--database-url").unwrap(), postgres::NoTls)
                    .unwrap();
            let mut read = |version: i64| -> (i64, Vec<u8>) {
                let row = client.query_one(select, &[&id, &version]).unwrap();
                (row.get(0), row.get(1))
            };
            let ((seq, first), (_, second)) = (read(1), read(2));
            client
                .execute(
                    "UPDATE version SET content = $1 WHERE seq = $2",
                    &[&changed(first, second), &seq],
                )
                .unwrap();
        }
    }
}

/// The independent verifier's own tests (RFC 8032 vectors, every proof of trees up to 40
/// leaves and their tampered forms, signed notes, a stand-in server that lies): the checker the
/// scenario relies on is itself checked.
#[test]
fn the_independent_verifier_passes_its_own_tests() {
    let no_args: [&str; 0] = [];
    python_check(
        std::path::Path::new("python3"),
        "ledger_verifier_selftest.py",
        &no_args,
    );
}

/// Two servers on one PostgreSQL database, written to at once: one log, numbered without a gap
/// or a repeat, every result in it once, and the store verifies.
#[test]
fn two_servers_on_one_postgresql_make_one_tree() {
    let first = serve_on(Backend::Postgres, &["--checkpoint-interval", "1"]);
    let args: Vec<String> = first
        .store_args()
        .iter()
        .map(|a| a.to_str().unwrap().to_owned())
        .collect();
    let database = args[args.iter().position(|a| a == "--database-url").unwrap() + 1].clone();
    let data = tempfile::tempdir().unwrap();
    let second = start_beside(&database, data.path());
    let writers: Vec<_> = [first.address, second.address]
        .into_iter()
        .flat_map(|address| (0..3).map(move |w| (address, w)))
        .map(|(address, w)| {
            let token = first.token.clone();
            std::thread::spawn(move || {
                for n in 0..15 {
                    let (status, _, body) = send_as(
                        address,
                        Some(&token),
                        "POST",
                        "/fhir/Observation",
                        &[("content-type", "application/fhir+json")],
                        &lab(f64::from(w * 100 + n)).to_string(),
                    );
                    assert_eq!(status, 201, "{body}");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let store = first.open_store();
    // The servers' keepers append the leaves from the change log, each after its own writes:
    // wait (at most a minute) until both have come to the last of them.
    let results_logged = || {
        let size = store.ledger_size().unwrap();
        let leaves = store.ledger_leaves(0, size).unwrap();
        let results = leaves
            .iter()
            .filter(|l| l.resource_type == "Observation")
            .count();
        (size, leaves, results)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while results_logged().2 < 90 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (size, leaves, _) = results_logged();
    assert_eq!(leaves.len() as u64, size, "no gap");
    assert!(leaves.iter().enumerate().all(|(i, l)| l.index == i as u64));
    let results = leaves
        .iter()
        .filter(|l| l.resource_type == "Observation")
        .count();
    assert_eq!(results, 90, "every result once");
    drop(second);
    let mut first = first;
    first.stop();
    let (verified, out, err) = first.meridian_status(&["ledger", "verify"]);
    assert!(verified, "{out}\n{err}");
}

/// A second `meridian serve` on the PostgreSQL database at `url`.
fn start_beside(url: &str, data: &std::path::Path) -> Serving {
    serve_with_store(
        &["--database-url", url, "--data", data.to_str().unwrap()],
        &["--checkpoint-interval", "1"],
    )
}
