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
