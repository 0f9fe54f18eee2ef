//! The platform on a Citus cluster, from outside: the real binary serving FHIR over HTTP with
//! an administrator's token, its store on a database of the local cluster (the tables
//! distributed on the patient key, decision 0025). A resident's record written, searched,
//! updated and read back; an Observation filed under the wrong resident moved to the right
//! one; Patients deleted (each deletion makes the master index move its Person to another
//! key); concurrent registrations and deletions; no server error logged.

use serde_json::{Value, json};

use crate::support::*;

fn patient(family: &str, given: &str, birth_date: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": [given]}],
           "gender": "female", "birthDate": birth_date})
}

fn blood_glucose(patient: &str, value: f64) -> Value {
    json!({"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
           "subject": {"reference": format!("Patient/{patient}")},
           "effectiveDateTime": "2026-11-30T09:00:00+08:00",
           "valueQuantity": {"value": value, "unit": "mg/dL",
                             "system": "http://unitsofmeasure.org", "code": "mg/dL"}})
}

/// Updates `resource_type/id` to `resource`; answers the version written.
fn put_version(serving: &Serving, resource_type: &str, id: &str, resource: &Value) -> String {
    let (status, _, body) = send(
        serving,
        "PUT",
        &format!("/fhir/{resource_type}/{id}"),
        &[("Content-Type", "application/fhir+json")],
        &resource.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    json_of(&body)["meta"]["versionId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The ids of a search's matches.
fn found(serving: &Serving, path: &str) -> Vec<String> {
    let (status, _, body) = send(serving, "GET", path, &[], "");
    assert_eq!(status, 200, "{path}: {body}");
    let mut ids: Vec<String> = json_of(&body)["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[test]
fn a_residents_record_is_written_searched_moved_and_deleted_on_citus() {
    let serving = serve_on(Backend::Citus, &[]);
    let wang = create(&serving, &patient("Wang", "Fang", "1958-04-12"));
    let zhao = create(&serving, &patient("Zhao", "Min", "1971-09-30"));
    let mut observations: Vec<String> = [96.0, 142.0, 188.0]
        .iter()
        .map(|&v| create(&serving, &blood_glucose(&wang, v)))
        .collect();
    observations.sort();

    // Reads and searches: by id, by subject, in the compartment, by name across residents.
    let (status, _, body) = send(&serving, "GET", &format!("/fhir/Patient/{wang}"), &[], "");
    assert_eq!(
        (status, json_of(&body)["name"][0]["family"].clone()),
        (200, json!("Wang"))
    );
    assert_eq!(
        found(
            &serving,
            &format!("/fhir/Observation?subject=Patient/{wang}")
        ),
        observations
    );
    assert_eq!(
        found(
            &serving,
            &format!("/fhir/Patient/{wang}/Observation?code=2339-0")
        ),
        observations
    );
    assert_eq!(
        found(&serving, "/fhir/Patient?family=Zhao"),
        vec![zhao.clone()]
    );
    assert_eq!(
        found(&serving, "/fhir/Observation?value-quantity=gt150"),
        vec![
            observations
                .iter()
                .find(|id| {
                    let (_, _, body) =
                        send(&serving, "GET", &format!("/fhir/Observation/{id}"), &[], "");
                    json_of(&body)["valueQuantity"]["value"] == json!(188.0)
                })
                .unwrap()
                .clone()
        ]
    );

    // An update, then a correction: the reading was Zhao's, filed under Wang. It moves to
    // Zhao's record with its history.
    let moved = &observations[0];
    let mut reading = blood_glucose(&wang, 101.0);
    reading["id"] = json!(moved);
    assert_eq!(put_version(&serving, "Observation", moved, &reading), "2");
    reading["subject"]["reference"] = json!(format!("Patient/{zhao}"));
    assert_eq!(put_version(&serving, "Observation", moved, &reading), "3");
    assert_eq!(
        found(&serving, &format!("/fhir/Patient/{zhao}/Observation")),
        vec![moved.clone()]
    );
    assert_eq!(
        found(
            &serving,
            &format!("/fhir/Observation?subject=Patient/{wang}")
        )
        .len(),
        2
    );
    let (status, _, body) = send(
        &serving,
        "GET",
        &format!("/fhir/Observation/{moved}/_history"),
        &[],
        "",
    );
    assert_eq!(status, 200);
    let versions: Vec<Value> = json_of(&body)["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].clone())
        .collect();
    assert_eq!(versions, vec![json!("3"), json!("2"), json!("1")]);

    // A Patient's deletion: gone (410), its Person left without links.
    let (status, _, body) = send(
        &serving,
        "DELETE",
        &format!("/fhir/Patient/{zhao}"),
        &[],
        "",
    );
    assert_eq!(status, 204, "{body}");
    let (status, _, _) = send(&serving, "GET", &format!("/fhir/Patient/{zhao}"), &[], "");
    assert_eq!(status, 410);

    // Registrations and deletions from eight clients at once: every one answered as it would
    // be on one database.
    let (address, token) = (serving.address, serving.token.clone());
    let outcomes: Vec<(u16, u16, u16)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let token = token.as_str();
                scope.spawn(move || {
                    let registration = patient(
                        "Liu",
                        &format!("Client{i}"),
                        &format!("19{}-01-0{}", 60 + i, 1 + i),
                    );
                    let answer = send_as(
                        address,
                        Some(token),
                        "POST",
                        "/fhir/Patient",
                        &[("Content-Type", "application/fhir+json")],
                        &registration.to_string(),
                    );
                    let id = json_of(&answer.2)["id"].as_str().unwrap_or("").to_owned();
                    let path = format!("/fhir/Patient/{id}");
                    let (read, _, _) = send_as(address, Some(token), "GET", &path, &[], "");
                    let (deleted, _, _) = send_as(address, Some(token), "DELETE", &path, &[], "");
                    (answer.0, read, deleted)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outcomes, vec![(201, 200, 204); 8]);
    assert!(
        serving.errors_logged().is_empty(),
        "{:?}",
        serving.errors_logged()
    );
}

/// A worker added to the cluster and the shards rebalanced onto it while four clients write
/// and read (`ops/citus/add-worker.sh`, the operator's script): no request fails, the new worker
/// ends up holding shards, and every record written before, during and after reads back whole.
#[test]
fn a_worker_is_added_and_shards_rebalanced_while_the_platform_serves() {
    // A database of the cluster without its last worker: the one the script adds.
    let database = test_support::TestDatabase::create_on(&test_support::citus_url());
    let mut admin = database.connect();
    let (host, port): (String, i32) = {
        let row = admin
            .query_one(
                "SELECT nodename::text, nodeport FROM pg_dist_node \
                 WHERE noderole = 'primary' AND groupid <> 0 ORDER BY groupid DESC LIMIT 1",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    admin
        .execute("SELECT citus_remove_node($1, $2)", &[&host, &port])
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let serving = serve_with_store(
        &[
            "--database-url",
            &database.url,
            "--data",
            data_dir.to_str().unwrap(),
        ],
        &[],
    );
    let shards_on_new_worker = |admin: &mut postgres::Client| -> i64 {
        admin
            .query_one(
                "SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) \
                 WHERE n.nodename = $1 AND n.nodeport = $2",
                &[&host, &port],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(shards_on_new_worker(&mut admin), 0);

    // A small store: twelve residents with two readings each.
    let residents: Vec<String> = (0..12)
        .map(|i| {
            let id = create(
                &serving,
                &patient(
                    "Sun",
                    &format!("Resident{i}"),
                    &format!("19{}-03-1{}", 50 + i, i % 10),
                ),
            );
            for v in [90.0, 120.0] {
                create(&serving, &blood_glucose(&id, v + i as f64));
            }
            id
        })
        .collect();

    // Four clients write and read until the rebalance has ended, and a little after.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (address, token) = (serving.address, serving.token.clone());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ops/citus/add-worker.sh");
    let (outcomes, script_output) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|client| {
                let (token, residents, stop) = (token.as_str(), &residents, &stop);
                scope.spawn(move || {
                    let mut outcomes: Vec<(String, u16)> = Vec::new();
                    let mut written: Vec<(String, String)> = Vec::new();
                    let mut round = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) || round < 3 {
                        let resident = &residents[(client * 3 + round) % residents.len()];
                        let reading = blood_glucose(resident, 100.0 + round as f64);
                        let (status, _, body) = send_as(
                            address,
                            Some(token),
                            "POST",
                            "/fhir/Observation",
                            &[("Content-Type", "application/fhir+json")],
                            &reading.to_string(),
                        );
                        outcomes.push(("create".into(), status));
                        if let Some(id) = json_of(&body)["id"].as_str() {
                            written.push((resident.clone(), id.to_owned()));
                            let path = format!("/fhir/Observation/{id}");
                            let (status, _, _) =
                                send_as(address, Some(token), "GET", &path, &[], "");
                            outcomes.push(("read".into(), status));
                            let mut updated = reading.clone();
                            updated["id"] = json!(id);
                            updated["status"] = json!("amended");
                            let (status, _, _) = send_as(
                                address,
                                Some(token),
                                "PUT",
                                &path,
                                &[("Content-Type", "application/fhir+json")],
                                &updated.to_string(),
                            );
                            outcomes.push(("update".into(), status));
                        }
                        let search =
                            format!("/fhir/Observation?subject=Patient/{resident}&_count=100");
                        let (status, _, _) = send_as(address, Some(token), "GET", &search, &[], "");
                        outcomes.push(("search".into(), status));
                        round += 1;
                    }
                    (outcomes, written)
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(500));
        // A rebalance that cannot proceed fails the test instead of holding it.
        let output = std::process::Command::new("timeout")
            .args(["300", "bash", script])
            .arg(&database.url)
            .arg(format!("{host}:{port}"))
            .output()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let outcomes: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        (outcomes, output)
    });
    let stdout = String::from_utf8_lossy(&script_output.stdout);
    assert!(
        script_output.status.success(),
        "add-worker.sh: {stdout}\n{}",
        String::from_utf8_lossy(&script_output.stderr)
    );
    assert!(stdout.contains("rebalanced"), "the rebalance ran: {stdout}");
    assert!(shards_on_new_worker(&mut admin) > 0, "{stdout}");

    let requests: usize = outcomes.iter().map(|(o, _)| o.len()).sum();
    let failed: Vec<&(String, u16)> = outcomes
        .iter()
        .flat_map(|(o, _)| o)
        .filter(|(_, status)| !matches!(status, 200 | 201))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {requests} requests failed: {failed:?}",
        failed.len()
    );
    // Every reading written during the rebalance is found under its resident, amended.
    for (resident, id) in outcomes.iter().flat_map(|(_, w)| w) {
        let (status, _, body) = send(&serving, "GET", &format!("/fhir/Observation/{id}"), &[], "");
        assert_eq!(status, 200, "{body}");
        assert_eq!(json_of(&body)["status"], json!("amended"));
        assert!(
            found(
                &serving,
                &format!("/fhir/Observation?subject=Patient/{resident}&_count=500")
            )
            .contains(id)
        );
    }
    // And those written before, each resident's two first readings among theirs.
    for resident in &residents {
        let (status, _, body) = send(
            &serving,
            "GET",
            &format!("/fhir/Patient/{resident}"),
            &[],
            "",
        );
        assert_eq!(status, 200, "{body}");
        assert!(
            found(
                &serving,
                &format!("/fhir/Observation?subject=Patient/{resident}&_count=500")
            )
            .len()
                >= 2
        );
    }
    assert!(
        serving.errors_logged().is_empty(),
        "{:?}",
        serving.errors_logged()
    );
    eprintln!("{requests} requests during the rebalance, none failed:\n{stdout}");
    drop(serving);
}
