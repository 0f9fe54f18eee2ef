//! The events the builders make: BALP's shape, one event per patient, break-glass marked, and
//! every event valid R4 as the repository checks it.

use access::audit::*;
use base64::Engine as _;
use caller::{Actor, Caller};
use serde_json::{Value, json};

fn clinician() -> Caller {
    let mut caller = Caller::anonymous("req-7");
    caller.actor = Actor::User("Practitioner/7".into());
    caller.organization = Some("Organization/county-hospital".into());
    caller.client_id = Some("his".into());
    caller.address = Some("10.1.2.3".parse().unwrap());
    caller
}

fn observer() -> Observer {
    Observer {
        name: "Meridian".into(),
        base: Some("http://meridian.test/fhir".into()),
    }
}

fn codes(values: &Value, path: &str) -> Vec<String> {
    values
        .pointer(path)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str().map(str::to_owned))
        .collect()
}

fn valid(event: &Value) {
    let errors: Vec<_> = fhir_model::validate(fhir_model::r4(), event)
        .into_iter()
        .filter(fhir_model::Issue::is_error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{event:#}");
}

#[test]
fn a_read_names_the_patient_the_resource_and_who_asked() {
    let mut access = RestAccess::new(Interaction::Read, Some("Observation"));
    access.add_resource("Observation/5/_history/2");
    access.add_patient("Patient/12");
    let events = rest_events(&clinician(), &observer(), &access);
    assert_eq!(events.len(), 1);
    let event = &events[0];
    valid(event);
    assert_eq!(event["type"]["code"], "rest");
    assert_eq!(event["subtype"][0]["system"], RESTFUL_INTERACTION);
    assert_eq!(event["subtype"][0]["code"], "read");
    assert_eq!(event["action"], "R");
    assert_eq!(event["outcome"], "0");
    let user = &event["agent"][0];
    assert_eq!(user["who"]["reference"], "Practitioner/7");
    assert_eq!(user["requestor"], true);
    assert_eq!(codes(user, "/type/coding"), ["IRCP"]);
    assert_eq!(codes(user, "/purposeOfUse/0/coding"), ["TREAT"]);
    assert_eq!(
        event["agent"][1]["who"]["reference"],
        "Organization/county-hospital"
    );
    let client = &event["agent"][2];
    assert_eq!(codes(client, "/type/coding"), ["110153"]);
    assert_eq!(client["who"]["identifier"]["value"], "his");
    assert_eq!(client["network"]["address"], "10.1.2.3");
    assert_eq!(client["network"]["type"], "2");
    assert_eq!(codes(&event["agent"][3], "/type/coding"), ["110152"]);
    assert_eq!(event["source"]["observer"]["display"], "Meridian");
    assert_eq!(event["entity"][0]["what"]["reference"], "Patient/12");
    assert_eq!(event["entity"][0]["role"]["code"], "1");
    assert_eq!(
        event["entity"][1]["what"]["reference"],
        "Observation/5/_history/2"
    );
    assert_eq!(event["entity"][2]["what"]["identifier"]["value"], "req-7");
    assert!(event.get("meta").is_none(), "not break-glass");
}

#[test]
fn a_search_is_one_event_per_patient_with_the_query_in_base64() {
    let mut access = RestAccess::new(Interaction::SearchType, Some("Observation"));
    access.query = Some("Observation?code=http://loinc.org|8867-4".into());
    access.add_patient("Patient/1");
    access.add_patient("Patient/2");
    access.add_patient("Patient/1");
    let events = rest_events(&clinician(), &observer(), &access);
    assert_eq!(events.len(), 2);
    for (event, patient) in events.iter().zip(["Patient/1", "Patient/2"]) {
        valid(event);
        assert_eq!(event["action"], "E");
        assert_eq!(event["subtype"][0]["code"], "search-type");
        assert_eq!(event["entity"][0]["what"]["reference"], patient);
        let query = &event["entity"][1];
        assert_eq!(query["role"]["code"], "24");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(query["query"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, b"Observation?code=http://loinc.org|8867-4");
    }
    // Nobody's data: one event, no patient.
    let access = RestAccess::new(Interaction::SearchSystem, None);
    let events = rest_events(&clinician(), &observer(), &access);
    assert_eq!(events.len(), 1);
    valid(&events[0]);
}

#[test]
fn break_glass_carries_the_flag_the_purpose_and_the_reason() {
    let mut caller = clinician();
    caller.purpose = "ETREAT".into();
    caller.break_glass = Some("unconscious in the emergency room".into());
    let mut access = RestAccess::new(Interaction::Read, Some("Patient"));
    access.add_patient("Patient/12");
    access.add_resource("Patient/12/_history/1");
    let event = rest_events(&caller, &observer(), &access).remove(0);
    valid(&event);
    assert_eq!(event["meta"]["security"][0]["system"], ACT_CODE);
    assert_eq!(event["meta"]["security"][0]["code"], "BTG");
    assert_eq!(event["extension"][0]["url"], BREAK_GLASS_REASON);
    assert_eq!(
        event["extension"][0]["valueString"],
        "unconscious in the emergency room"
    );
    assert_eq!(
        codes(&event["agent"][0], "/purposeOfUse/0/coding"),
        ["ETREAT"]
    );
}

#[test]
fn writes_denials_and_failures() {
    let mut access = RestAccess::new(Interaction::Create, Some("Observation"));
    access.add_resource("Observation/9/_history/1");
    access.outcome = EventOutcome::of_status(403, "no permission to write Observation");
    let event = rest_events(&clinician(), &observer(), &access).remove(0);
    valid(&event);
    assert_eq!(event["action"], "C");
    assert_eq!(event["outcome"], "4");
    assert_eq!(event["outcomeDesc"], "no permission to write Observation");
    assert_eq!(codes(&event["agent"][0], "/type/coding"), ["AUT"]);
    assert_eq!(EventOutcome::of_status(503, "x").code(), "8");
    assert_eq!(EventOutcome::of_status(201, "x").code(), "0");
    for (interaction, action) in [
        (Interaction::Update, "U"),
        (Interaction::Patch, "U"),
        (Interaction::Delete, "D"),
        (Interaction::Vread, "R"),
        (Interaction::HistoryInstance, "E"),
        (Interaction::Operation("$everything".into()), "E"),
    ] {
        assert_eq!(interaction.action(), action, "{interaction:?}");
    }
}

#[test]
fn residents_and_clients_acting_alone() {
    let mut resident = Caller::anonymous("req-1");
    resident.actor = Actor::User("Patient/12".into());
    let mut access = RestAccess::new(Interaction::SearchType, Some("AuditEvent"));
    access.add_patient("Patient/12");
    let event = rest_events(&resident, &observer(), &access).remove(0);
    valid(&event);
    assert_eq!(codes(&event["agent"][0], "/type/coding"), ["PAT"]);

    let mut client = Caller::anonymous("req-2");
    client.actor = Actor::Client("lab-system".into());
    client.client_id = Some("lab-system".into());
    let event = rest_events(&client, &observer(), &access).remove(0);
    valid(&event);
    let requestors: Vec<_> = event["agent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["requestor"] == true)
        .collect();
    assert_eq!(requestors.len(), 1);
    assert_eq!(requestors[0]["who"]["identifier"]["value"], "lab-system");
    assert_eq!(codes(requestors[0], "/type/coding"), ["110153"]);
}

#[test]
fn sign_in_and_failed_sign_in() {
    let sign_in = SignIn {
        request_id: "req-3",
        account: "zhang.wei",
        user: Some("Practitioner/7"),
        organization: Some("Organization/county-hospital"),
        client_id: Some("portal"),
        address: Some("192.0.2.4".parse().unwrap()),
    };
    let event = login(&observer(), &sign_in);
    valid(&event);
    assert_eq!(event["type"]["code"], "110114");
    assert_eq!(event["subtype"][0]["code"], "110122");
    assert_eq!(event["outcome"], "0");
    assert_eq!(event["agent"][0]["who"]["reference"], "Practitioner/7");
    assert_eq!(event["agent"][0]["altId"], "zhang.wei");
    let failed = login_failed(
        &observer(),
        &SignIn {
            user: None,
            ..sign_in
        },
        "wrong password",
    );
    valid(&failed);
    assert_eq!(failed["outcome"], "4");
    assert_eq!(failed["outcomeDesc"], "wrong password");
    assert_eq!(failed["agent"][0]["altId"], "zhang.wei");
}

#[test]
fn a_consent_change_is_marked_and_names_its_patient() {
    let mut resident = Caller::anonymous("req-4");
    resident.actor = Actor::User("Patient/12".into());
    let event = consent_change(
        &resident,
        &observer(),
        Interaction::Update,
        "Consent/3/_history/2",
        Some("Patient/12"),
        EventOutcome::Success,
    );
    valid(&event);
    assert_eq!(codes(&event, "/subtype"), ["update", "consent-change"]);
    assert_eq!(event["entity"][0]["what"]["reference"], "Patient/12");
}

#[test]
fn bundles_that_would_touch_the_trail_are_refused_whole() {
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Patient"}, "resource": {"resourceType": "Patient"}},
        {"request": {"method": "GET", "url": "AuditEvent?patient=Patient/1"}},
        {"request": {"method": "DELETE", "url": "AuditEvent/9"}},
    ]});
    assert!(matches!(
        check_bundle_leaves_trail_alone(&bundle),
        Err(AuditError::Immutable { entry: Some(2) })
    ));
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "Basic"}, "resource": {"resourceType": "AuditEvent"}},
    ]});
    assert!(check_bundle_leaves_trail_alone(&bundle).is_err());
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "PUT", "url": "http://x/fhir/AuditEvent?outcome=0"}},
    ]});
    assert!(check_bundle_leaves_trail_alone(&bundle).is_err());
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "PUT", "url": "Patient/1"}, "resource": {"resourceType": "Patient", "id": "1"}},
    ]});
    assert!(check_bundle_leaves_trail_alone(&bundle).is_ok());
}

#[test]
fn which_types_hold_patient_data() {
    assert!(holds_patient_data("Patient"));
    assert!(holds_patient_data("Observation"));
    assert!(holds_patient_data("AuditEvent"));
    assert!(!holds_patient_data("Organization"));
    assert!(!holds_patient_data("ValueSet"));
}
