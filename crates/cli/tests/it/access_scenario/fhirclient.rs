//! An unchanged standard SMART client library, Python's `fhirclient`, against the real server.

use super::*;

/// Python's `fhirclient` 4.x, unchanged, signs the resident in (PKCE, the endpoints from the
/// CapabilityStatement, the login form followed as a browser would) and reads her Patient and
/// an Observation with its models, on each store. Its virtual environment is made once under
/// the target directory; when PyPI cannot be reached the test fails and says so.
#[test]
fn python_fhirclient_signs_the_resident_in_and_reads_her_records_with_its_models() {
    let python = fhirclient_python();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let region = Region::start(backend);
        region.directory();
        let key = ec_key("hospital-a-1");
        let client = region.register_backend_client(&key, "Organization/A");
        let a = region.client_credentials(&key, &client);
        let records = region.hospital_a_writes_records(&a);
        region.serving.meridian(
            &[
                "user",
                "add",
                "zhao",
                "--password-stdin",
                "--patient",
                &format!("Patient/{}", records.patient),
            ],
            "zhao-long-password\n",
        );
        let app = region.register_app();
        let output = std::process::Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/it/fhirclient_check.py"
            ))
            .args([
                &format!("{}/fhir", region.origin),
                &app,
                REDIRECT,
                "zhao",
                "zhao-long-password",
                &records.patient,
                &records.laboratory,
            ])
            // Straight to the server, whatever proxy the environment names.
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY")
            .env("NO_PROXY", "*")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{backend:?}: fhirclient_check.py failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let read = json_of(String::from_utf8_lossy(&output.stdout).trim());
        let mut expected_found = vec![
            records.laboratory.clone(),
            records.vital_signs.clone(),
            records.restricted.clone(),
        ];
        expected_found.sort();
        assert_eq!(
            read,
            json!({
                "patient": records.patient,
                "family": "Zhaoqiansun",
                "birthDate": "1961-04-12",
                "observation": records.laboratory,
                "code": "2345-7",
                "value": 6.1,
                "found": expected_found,
            }),
            "{backend:?}"
        );
    }
}

/// The Python of a virtual environment with `fhirclient` 4.x.
fn fhirclient_python() -> std::path::PathBuf {
    python_with(
        "fhirclient",
        &["fhirclient==4.*"],
        "import fhirclient, requests",
    )
}
