//! Hook requests: the examples of the specification and of the HL7 validator, and malformed
//! requests, each refused with a message that says where.

use cds::{CdsError, Hook, HookRequest};
use serde_json::{Value, json};

fn corpus(name: &str) -> (Hook, Vec<u8>) {
    let path = format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    (
        Hook::from_name(value["hook"].as_str().unwrap()).unwrap(),
        bytes,
    )
}

fn parse(hook: Hook, body: &Value) -> Result<HookRequest, String> {
    HookRequest::parse(body.to_string().as_bytes(), hook, fhir_model::r4()).map_err(|e| match e {
        CdsError::BadRequest(message) => message,
        other => panic!("not a bad request: {other}"),
    })
}

#[test]
fn the_good_examples_and_the_spec_examples_are_read() {
    for name in [
        "cdshooks-request-order-select-good.json",
        "cdshooks-request-order-select-extensions.json",
        "cdshooks-request-order-sign-good.json",
        "cdshooks-request-patient-view-good.json",
        "cdshooks-request-pv-good.json",
        "spec-example-order-select.json",
        "spec-example-order-sign-1.0.json",
        "spec-example-patient-view-extension.json",
    ] {
        let (hook, bytes) = corpus(name);
        let request = HookRequest::parse(&bytes, hook, fhir_model::r4())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(request.hook, hook, "{name}");
        assert!(!request.hook_instance.is_empty(), "{name}");
    }
    let (hook, bytes) = corpus("cdshooks-request-order-sign-good.json");
    let request = HookRequest::parse(&bytes, hook, fhir_model::r4()).unwrap();
    assert_eq!(request.drafts.len(), 1);
    assert_eq!(request.drafts[0]["resourceType"], "MedicationRequest");
    assert_eq!(
        request.patient().as_deref(),
        Some("example-rec-02-careplan-revisited")
    );
    assert_eq!(
        request.prefetch.len(),
        2,
        "both prefetched resources are kept"
    );
    let (hook, bytes) = corpus("cdshooks-request-pv-good.json");
    let request = HookRequest::parse(&bytes, hook, fhir_model::r4()).unwrap();
    assert!(request.fhir_authorization.is_some());
    // The token is never printed.
    let printed = format!("{request:?}");
    let token =
        serde_json::from_slice::<Value>(&bytes).unwrap()["fhirAuthorization"]["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(!printed.contains(&token), "{printed}");
}

#[test]
fn the_bad_examples_are_refused_saying_why() {
    for (name, expected) in [
        (
            "cdshooks-request-order-select-bad.json",
            "context.patientId must be a FHIR id",
        ),
        (
            "cdshooks-request-order-sign-bad-1.json",
            "context.patientId must be a FHIR id",
        ),
        (
            "cdshooks-request-order-sign-bad-2.json",
            "context.patientId must be a FHIR id",
        ),
        (
            "cdshooks-request-patient-view-bad.json",
            "context.patientId must be a FHIR id",
        ),
    ] {
        let (hook, bytes) = corpus(name);
        let error = HookRequest::parse(&bytes, hook, fhir_model::r4()).unwrap_err();
        assert!(error.to_string().contains(expected), "{name}: {error}");
    }
    // bad-1's draft order is invalid in itself (status 'Xactive'), which is refused too.
    let (hook, bytes) = corpus("cdshooks-request-order-sign-bad-1.json");
    let mut body: Value = serde_json::from_slice(&bytes).unwrap();
    body["context"]["patientId"] = json!("example-rec-01-true-make-recommendations");
    let error = parse(hook, &body).unwrap_err();
    assert!(
        error.contains("draftOrders.entry[0] (MedicationRequest) is not valid"),
        "{error}"
    );
    assert!(error.contains("Xactive"), "{error}");
}

fn minimal(hook: &str) -> Value {
    json!({
        "hook": hook,
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {
            "userId": "Practitioner/1",
            "patientId": "p1",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
                "resourceType": "ServiceRequest", "id": "sr1", "status": "draft", "intent": "order",
                "code": {"text": "CT chest"}, "subject": {"reference": "Patient/p1"}
            }}]}
        }
    })
}

#[test]
fn malformed_requests_are_refused_saying_where() {
    assert!(parse(Hook::OrderSign, &minimal("order-sign")).is_ok());
    let cases: Vec<(Value, &str)> = vec![
        (json!([1, 2]), "must be a JSON object"),
        (
            json!({"hookInstance": "x", "context": {}}),
            "'hook' is required",
        ),
        (
            minimal("order-select"),
            "answers the hook 'order-sign', not 'order-select'",
        ),
        (minimal("no-such-hook"), "unknown hook 'no-such-hook'"),
        (
            json!({"hook": "order-sign", "context": {}}),
            "'hookInstance' is required",
        ),
        (
            json!({"hook": "order-sign", "hookInstance": "x"}),
            "'context' is required",
        ),
        (
            json!({"hook": "order-sign", "hookInstance": "x", "context": "p1"}),
            "'context' must be an object",
        ),
        (
            json!({"hook": "order-sign", "hookInstance": "x", "context": {"patientId": 7}}),
            "context.patientId must be a string",
        ),
        (
            json!({"hook": "order-sign", "hookInstance": "x", "context": {"userId": "someone"}}),
            "context.userId must be a reference",
        ),
        (
            json!({"hook": "order-sign", "hookInstance": "x", "context": {"draftOrders": []}}),
            "context.draftOrders must be a Bundle",
        ),
        (
            json!({"hook": "order-sign", "hookInstance": "x", "context": {"draftOrders": {"resourceType": "Bundle", "entry": {}}}}),
            "entry must be an array",
        ),
        (
            json!({"hook": "order-sign", "hookInstance": "x", "context": {"draftOrders": {"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]}}}),
            "entry[0] has no resource",
        ),
        (
            json!({"hook": "order-sign", "hookInstance": "x", "context": {"draftOrders": {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]}}}),
            "is a Patient, not an order",
        ),
        (
            json!({"hook": "order-sign", "hookInstance": "x", "context": {"draftOrders": {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "ServiceRequest", "status": "draft", "intent": "order"}}]}}}),
            "(ServiceRequest) is not valid",
        ),
        (
            json!({"hook": "order-select", "hookInstance": "x", "context": {"selections": "ServiceRequest/1"}}),
            "context.selections must be an array",
        ),
        (
            json!({"hook": "order-select", "hookInstance": "x", "context": {"selections": ["1"]}}),
            "context.selections must list references",
        ),
        (
            json!({"hook": "order-sign", "hookInstance": "x", "context": {}, "prefetch": {"patient": 3}}),
            "prefetch.patient is not a FHIR resource",
        ),
        (
            json!({"hook": "order-sign", "hookInstance": "x", "context": {}, "fhirAuthorization": {"token_type": "Bearer"}}),
            "fhirAuthorization.access_token is required",
        ),
        (
            json!({"hook": "order-sign", "hookInstance": "x", "context": {}, "extension": {"meridian.department": 5}}),
            "extension.meridian.department",
        ),
    ];
    for (body, expected) in cases {
        let hook = match body["hook"].as_str() {
            Some("order-select") if expected.contains("selections") => Hook::OrderSelect,
            _ => Hook::OrderSign,
        };
        let error = parse(hook, &body).unwrap_err();
        assert!(
            error.contains(expected),
            "{body}: {error} (expected '{expected}')"
        );
    }
    let not_json =
        HookRequest::parse(b"{\"hook\": ", Hook::OrderSign, fhir_model::r4()).unwrap_err();
    assert!(not_json.to_string().contains("not JSON"), "{not_json}");
}

#[test]
fn the_discovery_names_each_hook_with_its_prefetch() {
    let discovery = cds::hook::discovery();
    let services = discovery["services"].as_array().unwrap();
    let hooks: Vec<&str> = services
        .iter()
        .map(|s| s["hook"].as_str().unwrap())
        .collect();
    assert_eq!(hooks, ["patient-view", "order-select", "order-sign"]);
    for service in services {
        assert!(service["id"].is_string() && service["description"].is_string());
        assert_eq!(
            service["prefetch"]["patient"],
            "Patient/{{context.patientId}}"
        );
    }
}
