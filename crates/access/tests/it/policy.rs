//! The access decision on every read path, on both stores: hospital B sees none of what
//! hospital A holds about a patient (reads, searches, totals, includes, chains, `_has`,
//! `$everything`) until the resident consents; then sees what the consent names, for its
//! purpose; after revocation sees none again. Break-glass, restricted labels, writes and
//! scopes are checked the same way.

use std::sync::Arc;

use access::policy::Policy;
use caller::{Actor, Caller};
use repository::{Repository, RepositoryError, SearchRequest, SearchScope};
use serde_json::{Value, json};
use test_support::backend_tests;

const BASE: &str = "http://test.example/fhir";

fn institution(organization: &str) -> Caller {
    let mut caller = Caller::anonymous("access-test");
    caller.actor = Actor::Client(format!("client-{organization}"));
    caller.organization = Some(format!("Organization/{organization}"));
    caller.scopes = vec!["system/*.cruds".into()];
    caller
}

fn clinician(organization: &str) -> Caller {
    let mut caller = Caller::anonymous("access-test");
    caller.actor = Actor::User(format!("Practitioner/doctor-{organization}"));
    caller.organization = Some(format!("Organization/{organization}"));
    caller.scopes = vec!["user/*.cruds".into()];
    caller
}

fn resident(patient: &str) -> Caller {
    let mut caller = Caller::anonymous("access-test");
    caller.actor = Actor::User(format!("Patient/{patient}"));
    caller.patient = Some(format!("Patient/{patient}"));
    caller.scopes = vec!["patient/*.cruds".into()];
    caller
}

fn create(repository: &Repository, caller: &Caller, resource: Value) -> String {
    repository
        .create(caller, resource, None)
        .expect("created")
        .record
        .expect("a record")
        .id
}

fn observation(patient: &str, category: &str, security: Option<&str>) -> Value {
    let mut observation = json!({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": format!("Patient/{patient}")}
    });
    if let Some(code) = security {
        observation["meta"] = json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": code}]});
    }
    observation
}

fn consent(patient: &str, organization: Option<&str>, extra: Value) -> Value {
    let mut provision = json!({"type": "permit"});
    if let Some(organization) = organization {
        provision["actor"] = json!([{
            "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
            "reference": {"reference": format!("Organization/{organization}")}
        }]);
    }
    for (key, value) in extra.as_object().into_iter().flatten() {
        provision[key] = value.clone();
    }
    json!({
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "provision": provision
    })
}

/// A search's match ids and its total.
fn search(
    repository: &Repository,
    caller: &Caller,
    resource_type: &str,
    params: &[(&str, &str)],
) -> (Vec<String>, u64) {
    let mut params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    params.push(("_total".into(), "accurate".into()));
    let request = SearchRequest {
        scope: SearchScope::Type(resource_type.into()),
        params,
        handling: search::Handling::Strict,
    };
    let bundle: Value =
        serde_json::from_slice(&repository.search(caller, BASE, &request).expect("searched"))
            .unwrap();
    let ids = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect();
    (ids, bundle["total"].as_u64().unwrap())
}

fn everything(repository: &Repository, caller: &Caller, patient: &str) -> Vec<String> {
    match repository.everything(caller, BASE, patient, &[]) {
        Ok(bytes) => {
            let bundle: Value = serde_json::from_slice(&bytes).unwrap();
            bundle["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["resource"]["resourceType"].as_str().unwrap(),
                        e["resource"]["id"].as_str().unwrap()
                    )
                })
                .collect()
        }
        Err(RepositoryError::NotFound(_)) => Vec::new(),
        Err(other) => panic!("$everything failed: {other}"),
    }
}

/// Hospital A's patient with a laboratory result, a vital sign and a restricted result; a
/// patient of B's own; the two hospitals in the directory.
struct Region {
    repository: Repository,
    patient: String,
    lab: String,
    vital: String,
    restricted: String,
    own: String,
}

fn region(store: &test_support::TestStore) -> Region {
    let repository = Repository::new(Arc::clone(&store.store));
    repository.set_access_policy(Arc::new(Policy::new()));
    let operator = Caller::operator("access-test");
    for organization in ["A", "B"] {
        repository
            .update(&operator, "Organization", organization, json!({"resourceType": "Organization", "id": organization, "name": format!("Hospital {organization}")}), None)
            .unwrap();
    }
    let a = institution("A");
    let patient = create(
        &repository,
        &a,
        json!({"resourceType": "Patient", "name": [{"family": "Zhang", "given": ["Wei"]}], "managingOrganization": {"reference": "Organization/A"}}),
    );
    let lab = create(&repository, &a, observation(&patient, "laboratory", None));
    let vital = create(&repository, &a, observation(&patient, "vital-signs", None));
    let restricted = create(
        &repository,
        &a,
        observation(&patient, "laboratory", Some("R")),
    );
    let own = create(
        &repository,
        &institution("B"),
        json!({"resourceType": "Patient", "name": [{"family": "Li"}]}),
    );
    Region {
        repository,
        patient,
        lab,
        vital,
        restricted,
        own,
    }
}

/// What `caller` sees of the patient's records, through every read path; each path must agree.
fn seen(region: &Region, caller: &Caller) -> Vec<String> {
    let r = &region.repository;
    let patient_ref = format!("Patient/{}", region.patient);
    let (mut by_patient, total) = search(r, caller, "Observation", &[("patient", &patient_ref)]);
    assert_eq!(
        total as usize,
        by_patient.len(),
        "the total counts what is seen"
    );
    let (by_chain, _) = search(
        r,
        caller,
        "Observation",
        &[("subject:Patient.family", "Zhang")],
    );
    let (by_code, code_total) = search(r, caller, "Observation", &[("code", "2345-7")]);
    assert_eq!(code_total as usize, by_code.len());
    let (patients, _) = search(r, caller, "Patient", &[("family", "Zhang")]);
    // A chain reaches what a plain search finds through a patient that is seen, and nothing
    // through one that is not.
    if patients.is_empty() {
        assert_eq!(
            by_chain,
            Vec::<String>::new(),
            "a chain reveals a hidden patient"
        );
    } else {
        assert_eq!(
            by_code, by_chain,
            "a chain reaches what a plain search finds"
        );
    }
    let (has, _) = search(
        r,
        caller,
        "Patient",
        &[("_has:Observation:subject:code", "2345-7")],
    );
    // `_has` may only name the patient when the patient and a result it reaches are both seen.
    if !has.is_empty() {
        assert_eq!(has, patients);
    }
    let (included, _) = search(
        r,
        caller,
        "Observation",
        &[("_id", &region.lab), ("_include", "Observation:subject")],
    );
    let read = r.read(caller, "Patient", &region.patient).is_ok();
    assert_eq!(read, !patients.is_empty(), "a read agrees with a search");
    if read {
        assert!(
            by_patient.is_empty() || included.contains(&patient_ref),
            "an included patient that is seen is included"
        );
    } else {
        assert!(
            !included.contains(&patient_ref),
            "an include does not reveal a hidden patient"
        );
    }
    let mut all = everything(r, caller, &region.patient);
    all.retain(|reference| reference.starts_with("Observation/"));
    all.sort();
    by_patient.sort();
    if read {
        assert_eq!(all, by_patient, "$everything shows what searches show");
    } else {
        assert_eq!(
            all,
            Vec::<String>::new(),
            "$everything of a hidden patient is not found"
        );
    }
    if read {
        by_patient.push(patient_ref);
    }
    by_patient
}

fn names(region: &Region, ids: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = ids.iter().map(|id| format!("Observation/{id}")).collect();
    names.sort();
    let _ = region;
    names
}

backend_tests! {
    fn another_institution_sees_a_patients_records_only_under_their_consent(store) {
        let region = region(store);
        let r = &region.repository;
        let a = institution("A");
        let b = institution("B");
        let patient = &region.patient;
        // A sees everything it holds; B nothing of it, but its own patient and the directory.
        let mut a_sees = seen(&region, &a);
        a_sees.retain(|s| s.starts_with("Observation/"));
        assert_eq!(a_sees, names(&region, &[&region.lab, &region.vital, &region.restricted]));
        assert_eq!(seen(&region, &b), Vec::<String>::new());
        assert!(r.read(&b, "Patient", &region.own).is_ok());
        assert!(r.read(&b, "Organization", "A").is_ok());

        // The resident consents: B sees the unrestricted records and the patient.
        let me = resident(patient);
        let treatment = json!({"purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]});
        let granted = create(r, &me, consent(patient, Some("B"), treatment.clone()));
        let mut expected = names(&region, &[&region.lab, &region.vital]);
        expected.push(format!("Patient/{patient}"));
        let mut got = seen(&region, &b);
        got.sort();
        expected.sort();
        assert_eq!(got, expected);
        // Not for another purpose of use.
        let mut paying = b.clone();
        paying.purpose = "HPAYMT".into();
        assert_eq!(seen(&region, &paying), Vec::<String>::new());
        // And not for a third institution.
        assert_eq!(seen(&region, &institution("C")), Vec::<String>::new());

        // Revoked: an update to inactive takes effect on the very next request.
        let mut revoked = consent(patient, Some("B"), treatment);
        revoked["id"] = json!(granted);
        revoked["status"] = json!("inactive");
        r.update(&me, "Consent", &granted, revoked, None).unwrap();
        assert_eq!(seen(&region, &b), Vec::<String>::new());

        // A consent that names the restricted label shows the restricted result too; one
        // limited to laboratory results' class shows no Patient resource... but Observations.
        let labelled = create(r, &me, consent(patient, Some("B"), json!({
            "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
            "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}]
        })));
        let got = seen(&region, &b);
        assert_eq!(got, names(&region, &[&region.lab, &region.vital, &region.restricted]));
        r.delete(&me, "Consent", &labelled, None).unwrap();
        assert_eq!(seen(&region, &b), Vec::<String>::new());

        // A consent for every member institution (no actor), over a period that has ended.
        create(r, &me, consent(patient, None, json!({"period": {"start": "2001-01-01", "end": "2002-01-01"}})));
        assert_eq!(seen(&region, &b), Vec::<String>::new());
        create(r, &me, consent(patient, None, json!({"period": {"start": "2001-01-01"}})));
        assert_eq!(seen(&region, &b).len(), 3);
    }

    fn break_glass_sees_everything_for_the_request(store) {
        let region = region(store);
        let mut emergency = clinician("B");
        emergency.purpose = "ETREAT".into();
        emergency.break_glass = Some("unconscious in the emergency room".into());
        assert_eq!(seen(&region, &emergency).len(), 4);
        // Without a reason it is not break-glass.
        emergency.break_glass = None;
        assert_eq!(seen(&region, &emergency), Vec::<String>::new());
    }

    fn writes_are_checked_against_the_custodian_and_the_resident(store) {
        let region = region(store);
        let r = &region.repository;
        let b = clinician("B");
        let patient = &region.patient;
        // B cannot overwrite or delete what A holds, even when it may see it.
        create(r, &resident(patient), consent(patient, Some("B"), json!({})));
        let mut changed = observation(patient, "laboratory", None);
        changed["id"] = json!(region.lab);
        let denied = r.update(&b, "Observation", &region.lab, changed, None).unwrap_err();
        assert!(matches!(denied, RepositoryError::Forbidden(_)), "{denied}");
        assert!(matches!(r.delete(&b, "Observation", &region.lab, None), Err(RepositoryError::Forbidden(_))));
        // Nor write a consent for the patient.
        assert!(matches!(r.create(&b, consent(patient, Some("B"), json!({})), None), Err(RepositoryError::Forbidden(_))));
        // A resident writes consents about themselves only.
        assert!(matches!(r.create(&resident(&region.own), consent(patient, Some("C"), json!({})), None), Err(RepositoryError::Forbidden(_))));
        // Nobody writes audit records through the API.
        let audit = json!({"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-01-01T00:00:00Z",
            "agent": [{"requestor": true}], "source": {"observer": {"display": "x"}}});
        assert!(matches!(r.create(&Caller::operator("t"), audit, None), Err(RepositoryError::Forbidden(_))));
        // What B writes is B's.
        let written = r.create(&b, observation(&region.own, "laboratory", None), None).unwrap().record.unwrap();
        assert_eq!(written.custodian.as_deref(), Some("Organization/B"));
    }

    fn scopes_bound_interactions_and_what_is_seen(store) {
        let region = region(store);
        let r = &region.repository;
        let mut a = clinician("A");
        a.scopes = vec!["user/Observation.rs?category=laboratory".into()];
        let (found, _) = search(r, &a, "Observation", &[("patient", &format!("Patient/{}", region.patient))]);
        let mut expected = names(&region, &[&region.lab, &region.restricted]);
        let mut found = found;
        found.sort();
        expected.sort();
        assert_eq!(found, expected);
        let denied = r.read(&a, "Patient", &region.patient).unwrap_err();
        match denied {
            RepositoryError::Forbidden(message) => assert!(message.contains("user/Patient.r"), "{message}"),
            other => panic!("{other}"),
        }
        assert!(matches!(r.create(&a, observation(&region.patient, "laboratory", None), None), Err(RepositoryError::Forbidden(_))));
        // A resident sees their own compartment, not another patient's.
        let me = resident(&region.patient);
        assert_eq!(seen(&region, &me).len(), 4);
        assert!(matches!(r.read(&me, "Patient", &region.own), Err(RepositoryError::NotFound(_))));
    }
}

backend_tests! {
    fn a_resident_is_every_registration_the_master_index_links(store) {
        let region = region(store);
        let r = &region.repository;
        // B registered the same resident; the master patient index links the two.
        let at_b = create(r, &institution("B"), json!({"resourceType": "Patient", "name": [{"family": "Zhang", "given": ["Wei"]}]}));
        r.create(&Caller::operator("access-test"), json!({"resourceType": "Person", "link": [
            {"target": {"reference": format!("Patient/{}", region.patient)}, "assurance": "level3"},
            {"target": {"reference": format!("Patient/{at_b}")}, "assurance": "level3"}
        ]}), None).unwrap();
        // Signed in through B's registration, the resident sees what A holds too.
        let me = resident(&at_b);
        let read = r.read(&me, "Observation", &region.lab);
        assert!(read.is_ok(), "{:?}", read.err());
        assert!(r.read(&me, "Patient", &region.patient).is_ok());
        assert!(matches!(r.read(&me, "Patient", &region.own), Err(RepositoryError::NotFound(_))));
        // A consent written on B's registration lets B see A's records about the resident.
        let b = institution("B");
        assert!(matches!(r.read(&b, "Observation", &region.lab), Err(RepositoryError::NotFound(_))));
        create(r, &me, consent(&at_b, Some("B"), json!({})));
        assert!(r.read(&b, "Observation", &region.lab).is_ok());
        assert!(matches!(r.read(&b, "Observation", &region.restricted), Err(RepositoryError::NotFound(_))));
        let (found, total) = search(r, &b, "Observation", &[("patient", &format!("Patient/{}", region.patient))]);
        assert_eq!((found.len(), total), (2, 2));
        // A search by one registration returns that registration's records only.
        let (found, _) = search(r, &b, "Observation", &[("patient", &format!("Patient/{at_b}"))]);
        assert_eq!(found, Vec::<String>::new());
    }
}

#[test]
fn operations_are_for_their_audience() {
    use access::policy::may_invoke;
    use residents::operations as identity;
    let admin = {
        let mut caller = Caller::anonymous("t");
        caller.actor = Actor::Administrator("admin".into());
        caller
    };
    let platform_client = {
        let mut caller = institution("X");
        caller.organization = None;
        caller
    };
    let me = resident("p1");
    let nobody = Caller::anonymous("t");
    // Master-record stewardship is for administrators.
    for operation in [
        identity::LINK,
        identity::UNLINK,
        identity::MERGE,
        identity::ACCEPT_MATCH,
    ] {
        assert!(may_invoke(&admin, &operation, None).is_ok());
        for caller in [
            &clinician("A"),
            &institution("A"),
            &me,
            &platform_client,
            &nobody,
        ] {
            let denied = may_invoke(caller, &operation, None).unwrap_err();
            assert!(denied.0.contains("administrators"), "{}", denied.0);
        }
    }
    // Health codes are resolved by institutions, issued to the resident or by an institution.
    assert!(may_invoke(&clinician("A"), &identity::RESOLVE_HEALTH_CODE, None).is_ok());
    assert!(may_invoke(&me, &identity::RESOLVE_HEALTH_CODE, None).is_err());
    assert!(may_invoke(&me, &identity::HEALTH_CODE, Some("Patient/p1")).is_ok());
    assert!(may_invoke(&me, &identity::HEALTH_CODE, Some("Patient/p2")).is_err());
    assert!(may_invoke(&clinician("A"), &identity::HEALTH_CODE, Some("Patient/p2")).is_ok());
    // The whole system's export is for platform clients.
    let export = repository::operations::EXPORT_SYSTEM;
    assert!(may_invoke(&platform_client, &export, None).is_ok());
    assert!(may_invoke(&institution("A"), &export, None).is_err());
    assert!(
        may_invoke(
            &institution("A"),
            &repository::operations::EXPORT_PATIENT,
            None
        )
        .is_ok()
    );
    // Nobody signed in invokes nothing.
    assert!(
        may_invoke(
            &nobody,
            &repository::operations::EVERYTHING,
            Some("Patient/p1")
        )
        .is_err()
    );
}
