//! The invariants the validator enforces on resources as wholes: a Bundle's full URLs (bdl-7)
//! and the rules for contained resources (dom-2 to dom-5).

use fhir_model::{IssueCode, bundle_invariants};
use serde_json::{Value, json};

use super::{check_all, patient};

fn entry(full_url: &str, resource: Value) -> Value {
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}})
}

fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

const A: &str = "urn:uuid:6f1c2a9e-0000-4000-8000-00000000000a";
const B: &str = "urn:uuid:6f1c2a9e-0000-4000-8000-00000000000b";

#[test]
fn full_urls_are_unique_in_a_bundle_bdl_7() {
    let versioned = |v: &str| json!({"resourceType": "Patient", "meta": {"versionId": v}});
    let plain = json!({"resourceType": "Patient"});
    check_all(vec![
        (
            "two entries with one fullUrl",
            bundle(
                "transaction",
                vec![entry(A, plain.clone()), entry(A, plain.clone())],
            ),
            vec![("invariant", "Bundle.entry[1].fullUrl")],
        ),
        (
            "the repeat is reported where it repeats, once per repeat",
            bundle(
                "batch",
                vec![
                    entry(A, plain.clone()),
                    entry(B, plain.clone()),
                    entry(A, plain.clone()),
                    entry(A, plain.clone()),
                ],
            ),
            vec![
                ("invariant", "Bundle.entry[2].fullUrl"),
                ("invariant", "Bundle.entry[3].fullUrl"),
            ],
        ),
        (
            "in a Bundle inside a Bundle",
            bundle(
                "collection",
                vec![json!({"fullUrl": B, "resource": bundle("collection", vec![
                    json!({"fullUrl": A, "resource": plain.clone()}),
                    json!({"fullUrl": A, "resource": plain.clone()}),
                ])})],
            ),
            vec![("invariant", "Bundle.entry[0].resource.entry[1].fullUrl")],
        ),
        (
            "different versions of one resource may share it",
            bundle(
                "collection",
                vec![
                    json!({"fullUrl": A, "resource": versioned("1")}),
                    json!({"fullUrl": A, "resource": versioned("2")}),
                    json!({"fullUrl": A, "resource": plain.clone()}),
                ],
            ),
            vec![],
        ),
        (
            "the same version twice may not",
            bundle(
                "collection",
                vec![
                    json!({"fullUrl": A, "resource": versioned("1")}),
                    json!({"fullUrl": A, "resource": versioned("1")}),
                ],
            ),
            vec![("invariant", "Bundle.entry[1].fullUrl")],
        ),
        (
            "a history holds many versions under one fullUrl",
            json!({"resourceType": "Bundle", "type": "history", "entry": [
                {"fullUrl": A, "resource": plain.clone(), "request": {"method": "PUT", "url": "Patient/a"}, "response": {"status": "200"}},
                {"fullUrl": A, "resource": plain.clone(), "request": {"method": "PUT", "url": "Patient/a"}, "response": {"status": "200"}}
            ]}),
            vec![],
        ),
        (
            "entries without a fullUrl",
            bundle(
                "transaction",
                vec![
                    json!({"resource": plain.clone(), "request": {"method": "POST", "url": "Patient"}});
                    2
                ],
            ),
            vec![],
        ),
    ]);
}

#[test]
fn the_bundle_invariants_alone_name_the_entry() {
    let plain = json!({"resourceType": "Patient"});
    let issues = bundle_invariants(&bundle(
        "transaction",
        vec![
            entry(A, plain.clone()),
            entry(B, plain.clone()),
            entry(B, plain),
        ],
    ));
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].code, IssueCode::Invariant);
    assert_eq!(
        issues[0].expression.as_deref(),
        Some("Bundle.entry[2].fullUrl")
    );
    assert!(
        issues[0]
            .diagnostics
            .contains(&format!("Entry 2 has the fullUrl '{B}' of entry 1")),
        "{}",
        issues[0].diagnostics
    );
    assert!(bundle_invariants(&json!({"resourceType": "Bundle", "type": "batch"})).is_empty());
    assert!(bundle_invariants(&json!([1, 2])).is_empty());
}

#[test]
fn contained_resources_are_referred_to_dom_3() {
    let organization = |id: &str| json!({"resourceType": "Organization", "id": id, "name": "X"});
    check_all(vec![
        (
            "referred to by nothing",
            patient(json!({"contained": [organization("o")]})),
            vec![("invariant", "Patient.contained[0]")],
        ),
        (
            "without an id",
            patient(
                json!({"contained": [{"resourceType": "Organization", "name": "X"}],
                           "managingOrganization": {"reference": "#"}}),
            ),
            vec![("invariant", "Patient.contained[0]")],
        ),
        (
            "referred to by another id",
            patient(json!({"contained": [organization("o"), organization("p")],
                           "managingOrganization": {"reference": "#p"}})),
            vec![("invariant", "Patient.contained[0]")],
        ),
        (
            "referred to from a reference",
            patient(
                json!({"contained": [organization("o")], "managingOrganization": {"reference": "#o"}}),
            ),
            vec![],
        ),
        (
            "referred to from another contained resource that is referred to",
            json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                   "subject": {"reference": "Patient/1"},
                   "contained": [
                       {"resourceType": "Medication", "id": "med", "code": {"text": "x"}},
                       {"resourceType": "Organization", "id": "maker", "name": "M"}
                   ],
                   "medicationReference": {"reference": "#med"},
                   "_intent": {"extension": [{"url": "http://example.org/made-by", "valueReference": {"reference": "#maker"}}]}}),
            vec![],
        ),
        (
            "referring to the resource that contains it",
            patient(
                json!({"contained": [{"resourceType": "Provenance", "id": "prov",
                                          "target": [{"reference": "#"}], "recorded": "2020-01-01T00:00:00Z",
                                          "agent": [{"who": {"display": "x"}}]}]}),
            ),
            vec![],
        ),
        (
            "referred to from a canonical",
            json!({"resourceType": "Questionnaire", "status": "draft",
                   "contained": [{"resourceType": "ValueSet", "id": "vs", "status": "draft"}],
                   "item": [{"linkId": "1", "type": "choice", "answerValueSet": "#vs"}]}),
            vec![],
        ),
        (
            "referred to only from a text, which does not count",
            patient(json!({"contained": [organization("o")], "name": [{"text": "#o"}]})),
            vec![("invariant", "Patient.contained[0]")],
        ),
        (
            "in a Bundle entry, referred to from another entry, which does not count",
            bundle(
                "collection",
                vec![
                    json!({"fullUrl": A, "resource": patient(json!({"contained": [organization("o")]}))}),
                    json!({"fullUrl": B, "resource": patient(json!({"managingOrganization": {"reference": "#o"}}))}),
                ],
            ),
            vec![("invariant", "Bundle.entry[0].resource.contained[0]")],
        ),
        (
            "a contained resource that is not a resource is reported once",
            patient(json!({"contained": [{"id": "x"}]})),
            vec![("required", "Patient.contained[0]")],
        ),
    ]);
}

#[test]
fn contained_resources_have_no_version_or_labels_of_their_own_dom_4_dom_5() {
    let contained = |meta: Value| {
        patient(
            json!({"contained": [{"resourceType": "Organization", "id": "o", "meta": meta}],
                       "managingOrganization": {"reference": "#o"}}),
        )
    };
    check_all(vec![
        (
            "a version",
            contained(json!({"versionId": "1"})),
            vec![("invariant", "Patient.contained[0].meta.versionId")],
        ),
        (
            "an update time",
            contained(json!({"lastUpdated": "2020-01-01T00:00:00Z"})),
            vec![("invariant", "Patient.contained[0].meta.lastUpdated")],
        ),
        (
            "a security label",
            contained(
                json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}),
            ),
            vec![("invariant", "Patient.contained[0].meta.security")],
        ),
        (
            "a profile and tags are fine",
            contained(
                json!({"profile": ["http://example.org/p"], "tag": [{"system": "http://example.org", "code": "t"}]}),
            ),
            vec![],
        ),
        (
            "the container may have all three",
            patient(
                json!({"meta": {"versionId": "3", "lastUpdated": "2020-01-01T00:00:00Z",
                                    "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}}),
            ),
            vec![],
        ),
    ]);
}
