//! This server's limit on repetitions (policy/repetition-limits.txt): refused with a
//! business-rule issue naming the element, generous where repeating is what the element is for.

use fhir_model::{IssueCode, r4, validate};
use serde_json::{Value, json};

use super::{check_all, patient};

fn names(count: usize) -> Value {
    Value::Array(
        (0..count)
            .map(|i| json!({"family": format!("F{i}")}))
            .collect(),
    )
}

#[test]
fn an_element_may_repeat_a_thousand_times_in_one_place() {
    // Regression: a valid Patient with 10,000 names was stored, and made searches slow.
    check_all(vec![
        (
            "10,000 names",
            patient(json!({"name": names(10_000)})),
            vec![("business-rule", "Patient.name")],
        ),
        (
            "1,001 names",
            patient(json!({"name": names(1_001)})),
            vec![("business-rule", "Patient.name")],
        ),
        (
            "1,000 names",
            patient(json!({"name": names(1_000)})),
            vec![],
        ),
        (
            "1,001 given names in one name",
            patient(json!({"name": [{"given": vec!["G"; 1_001]}]})),
            vec![("business-rule", "Patient.name[0].given")],
        ),
        (
            "counted once for a primitive and its extensions",
            patient(
                json!({"name": [{"given": vec!["G"; 1_001], "_given": vec![json!({"id": "g"}); 1_001]}]}),
            ),
            vec![("business-rule", "Patient.name[0].given")],
        ),
        (
            "extensions only, over the limit",
            patient(
                json!({"name": [{"_given": vec![json!({"id": "g", "extension": [{"url": "http://x", "valueString": "y"}]}); 1_001]}]}),
            ),
            vec![("business-rule", "Patient.name[0].given")],
        ),
        (
            "1,001 codings",
            patient(
                json!({"maritalStatus": {"coding": vec![json!({"system": "http://x", "code": "M"}); 1_001]}}),
            ),
            vec![("business-rule", "Patient.maritalStatus.coding")],
        ),
    ]);
}

#[test]
fn repetition_is_generous_where_it_is_legitimate() {
    let extension = json!({"url": "http://example.org/e", "valueString": "x"});
    check_all(vec![
        (
            "5,000 extensions",
            patient(json!({"extension": vec![extension.clone(); 5_000]})),
            vec![],
        ),
        (
            "10,001 extensions",
            patient(json!({"extension": vec![extension; 10_001]})),
            vec![("business-rule", "Patient.extension")],
        ),
        (
            "5,000 observation components",
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "component": vec![json!({"code": {"text": "c"}, "valueString": "v"}); 5_000]}),
            vec![],
        ),
        (
            "20,000 group members",
            json!({"resourceType": "Group", "type": "person", "actual": true,
                   "member": vec![json!({"entity": {"reference": "Patient/1"}}); 20_000]}),
            vec![],
        ),
        (
            "20,000 list entries",
            json!({"resourceType": "List", "status": "current", "mode": "working",
                   "entry": vec![json!({"item": {"reference": "Patient/1"}}); 20_000]}),
            vec![],
        ),
        (
            "20,000 bundle entries",
            json!({"resourceType": "Bundle", "type": "collection",
                   "entry": vec![json!({"resource": {"resourceType": "Basic", "code": {"text": "b"}}}); 20_000]}),
            vec![],
        ),
        (
            "a limit inside a bundle entry",
            json!({"resourceType": "Bundle", "type": "collection",
                   "entry": [{"resource": patient(json!({"name": names(1_001)}))}]}),
            vec![("business-rule", "Bundle.entry[0].resource.name")],
        ),
    ]);
}

#[test]
fn the_refusal_names_the_element_the_count_and_the_limit() {
    let issues = validate(
        r4(),
        &patient(json!({"identifier": vec![json!({"value": "1"}); 1_500]})),
    );
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].code, IssueCode::BusinessRule);
    assert_eq!(issues[0].expression.as_deref(), Some("Patient.identifier"));
    let text = &issues[0].diagnostics;
    assert!(
        text.starts_with(
            "identifier has 1500 items; this server accepts at most 1000 in one place."
        ),
        "{text}"
    );
    assert!(
        text.contains("Bundle.entry, Group.member, List.entry"),
        "{text}"
    );
}
