//! `meridian serve`, run as a real process: the connection limits and the host policy from its
//! configuration are in force on its socket, SIGTERM stops it cleanly, and an export job outlives
//! the process that accepted it.

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

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

#[test]
fn an_export_job_outlives_the_server_that_accepted_it() {
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    // The first server only accepts jobs: it runs none, as an API node beside workers would.
    let mut first = serve_in(&store, &["--job-workers", "0"]);
    for family in ["Li", "Wang", "Zhang"] {
        let body = format!(r#"{{"resourceType":"Patient","name":[{{"family":"{family}"}}]}}"#);
        let (status, _, answer) = send(
            &first,
            "POST",
            "/fhir/Patient",
            &[("content-type", "application/fhir+json")],
            &body,
        );
        assert_eq!(status, 201, "{answer}");
    }
    let accept = [
        ("accept", "application/fhir+json"),
        ("prefer", "respond-async"),
    ];
    let (status, headers, answer) = send(
        &first,
        "GET",
        "/fhir/Patient/$export?_type=Patient",
        &accept,
        "",
    );
    assert_eq!(status, 202, "{answer}");
    let location = header(&headers, "content-location").unwrap().to_owned();
    let status_path = location
        .split_once(&first.address.to_string())
        .unwrap()
        .1
        .to_owned();
    let (status, headers, _) = send(&first, "GET", &status_path, &[], "");
    assert_eq!(status, 202);
    assert_eq!(header(&headers, "x-progress"), Some("queued"));
    first.stop();

    // The next server, with workers, runs the job the first one accepted.
    let second = serve_in(&store, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let manifest = loop {
        let (status, _, body) = send(&second, "GET", &status_path, &[], "");
        if status == 200 {
            break body;
        }
        assert_eq!(status, 202, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "the export did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let output = manifest["output"].as_array().unwrap();
    assert_eq!(output.len(), 1, "{manifest}");
    assert_eq!(output[0]["type"], "Patient");
    assert_eq!(output[0]["count"], 3);
    let file_url = output[0]["url"].as_str().unwrap();
    let file_path = file_url
        .split_once(&second.address.to_string())
        .unwrap()
        .1
        .to_owned();
    let (status, headers, ndjson) = send(
        &second,
        "GET",
        &file_path,
        &[("accept", "application/fhir+ndjson")],
        "",
    );
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/fhir+ndjson")
    );
    assert_eq!(ndjson.lines().count(), 3, "{ndjson}");
    for family in ["Li", "Wang", "Zhang"] {
        assert!(ndjson.contains(family), "{ndjson}");
    }
    drop(second);

    // A finished export and its files outlive a restart too.
    let third = serve_in(&store, &[]);
    let (status, _, body) = send(&third, "GET", &status_path, &[], "");
    assert_eq!(status, 200, "{body}");
    let (status, _, again) = send(&third, "GET", &file_path, &[], "");
    assert_eq!((status, again.lines().count()), (200, 3));
}

#[test]
fn reindex_runs_as_a_job_and_a_new_search_parameter_then_finds_earlier_resources() {
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let meridian = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .args(args)
            .arg("--data")
            .arg(&store)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let patients = data.path().join("patients.ndjson");
    std::fs::write(
        &patients,
        r#"{"resourceType":"Patient","id":"p1","name":[{"family":"Li","given":["Wei"]},{"use":"nickname","given":["Xiaowei"]}]}
{"resourceType":"Patient","id":"p2","name":[{"family":"Wang","given":["Fang"]}]}
"#,
    )
    .unwrap();
    let parameter = data.path().join("parameter.json");
    std::fs::write(
        &parameter,
        r#"{"resourceType":"SearchParameter","id":"patient-nickname","url":"http://meridian.example/SearchParameter/patient-nickname","name":"nickname","status":"active","description":"A patient's nickname","code":"nickname","base":["Patient"],"type":"string","expression":"Patient.name.where(use='nickname').given"}"#,
    )
    .unwrap();
    meridian(&["import", patients.to_str().unwrap()]);
    meridian(&["import", parameter.to_str().unwrap()]);
    let search = |serving: &Serving| {
        let (status, _, body) = send(serving, "GET", "/fhir/Patient?nickname=xiaowei", &[], "");
        assert_eq!(status, 200, "{body}");
        let bundle: serde_json::Value = serde_json::from_str(&body).unwrap();
        bundle["entry"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    // The parameter is in force, but the Patients were indexed before it.
    let mut before = serve_in(&store, &[]);
    assert_eq!(search(&before), Vec::<String>::new());
    before.stop();
    let log = meridian(&["reindex"]);
    assert!(log.contains("done"), "{log}");
    let after = serve_in(&store, &[]);
    assert_eq!(search(&after), ["p1"]);
}

#[test]
fn sign_in_is_on_by_default_and_tokens_and_accounts_from_the_command_line_work_at_once() {
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let serving = serve_in(&store, &[]);
    // The first start made the administrator and said where its password is.
    let password_file = store.join("admin-password");
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&password_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);
    assert!(
        std::fs::read_to_string(&password_file)
            .unwrap()
            .trim()
            .len()
            >= 20
    );
    assert!(
        serving
            .start_up
            .iter()
            .any(|line| line.contains("admin-password")),
        "{:#?}",
        serving.start_up
    );

    // Without a token: 401 with WWW-Authenticate; metadata and discovery stay public.
    let (status, headers, body) = send_as(serving.address, None, "GET", "/fhir/Patient", &[], "");
    assert_eq!(status, 401, "{body}");
    assert!(
        header(&headers, "www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(
        send_as(serving.address, None, "GET", "/fhir/metadata", &[], "").0,
        200
    );
    let (status, _, discovery) = send_as(
        serving.address,
        None,
        "GET",
        "/.well-known/smart-configuration",
        &[],
        "",
    );
    assert_eq!(status, 200);
    assert!(
        discovery.contains("\"code_challenge_methods_supported\":[\"S256\"]"),
        "{discovery}"
    );

    // The administrator's token from `meridian token` works.
    let (status, _, body) = send(
        &serving,
        "PUT",
        "/fhir/Patient/p1",
        &[("content-type", "application/fhir+json")],
        r#"{"resourceType":"Patient","id":"p1","name":[{"family":"Li"}]}"#,
    );
    assert!(status == 201 || status == 200, "{status} {body}");

    // An account added while the server runs signs in at once, through a token of its own.
    let added = meridian_with_input(
        &store,
        &[
            "user",
            "add",
            "zhao",
            "--password-stdin",
            "--patient",
            "Patient/p1",
        ],
        "a-long-password\n",
    );
    assert!(added.contains("resident"), "{added}");
    let token = meridian_in(&store, &["token", "--user", "zhao", "--ttl", "120"]);
    let (status, _, body) = send_as(
        serving.address,
        Some(&token),
        "GET",
        "/fhir/Patient/p1",
        &[],
        "",
    );
    assert_eq!(status, 200, "{body}");
    // A practitioner, through the PractitionerRole that names their organisation.
    for (path, body) in [
        (
            "/fhir/Organization/hospital-a",
            r#"{"resourceType":"Organization","id":"hospital-a","name":"County Hospital"}"#,
        ),
        (
            "/fhir/Practitioner/li",
            r#"{"resourceType":"Practitioner","id":"li"}"#,
        ),
        (
            "/fhir/PractitionerRole/li-a",
            r#"{"resourceType":"PractitionerRole","id":"li-a","practitioner":{"reference":"Practitioner/li"},"organization":{"reference":"Organization/hospital-a"}}"#,
        ),
    ] {
        let (status, _, answer) = send(
            &serving,
            "PUT",
            path,
            &[("content-type", "application/fhir+json")],
            body,
        );
        assert!(status == 201 || status == 200, "{path}: {status} {answer}");
    }
    let added = meridian_with_input(
        &store,
        &[
            "user",
            "add",
            "li",
            "--password-stdin",
            "--practitioner-role",
            "PractitionerRole/li-a",
        ],
        "another-password\n",
    );
    assert!(
        added.contains("Practitioner/li at Organization/hospital-a"),
        "{added}"
    );
    let token = meridian_in(&store, &["token", "--user", "li", "--scope", "user/*.rs"]);
    // The directory is for every signed-in caller (the patient, held by no institution, is not
    // hospital A's to see).
    let (status, _, body) = send_as(
        serving.address,
        Some(&token),
        "GET",
        "/fhir/Organization/hospital-a",
        &[],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let listed = meridian_in(&store, &["user", "list"]);
    assert!(
        listed.contains("admin\tadministrator") && listed.contains("zhao\tresident\tPatient/p1"),
        "{listed}"
    );
    // A second start makes no second administrator.
    drop(serving);
    let again = serve_in(&store, &[]);
    assert!(
        !again
            .start_up
            .iter()
            .any(|line| line.contains("admin-password"))
    );
}

#[test]
fn auth_off_is_refused_off_loopback() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["serve", "--listen", "0.0.0.0:0", "--auth", "off", "--data"])
        .arg(data.path())
        .env_clear()
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}
