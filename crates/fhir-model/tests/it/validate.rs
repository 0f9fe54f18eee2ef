//! Structural validation: hand-written invalid resources, each with the exact issues (code and
//! expression) it must produce, valid resources that must produce none, and the behaviour around
//! the issue cap. The vendored examples and validator cases are in `validate/examples.rs`.

mod examples;
mod invariants;
mod limits;
mod mutations;
mod narrative;

use fhir_model::{IssueCode, Severity, ValidationOptions, r4, validate, validate_with};
use serde_json::{Value, json};

/// The issues of `resource` as (code, expression) pairs, `-` for no expression.
fn found(resource: &Value) -> Vec<(String, String)> {
    validate(r4(), resource)
        .iter()
        .map(|issue| {
            assert_eq!(issue.severity, Severity::Error, "{issue:?}");
            assert!(!issue.diagnostics.is_empty());
            (
                issue.code.as_str().to_owned(),
                issue.expression.clone().unwrap_or_else(|| "-".to_owned()),
            )
        })
        .collect()
}

/// A named resource and the (code, expression) pairs it must produce, in order.
type Case = (&'static str, Value, Vec<(&'static str, &'static str)>);

/// Checks every case and reports all mismatches at once, with the diagnostics of what was found.
fn check_all(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for (name, resource, expected) in cases {
        let actual = found(&resource);
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(c, e)| ((*c).to_owned(), (*e).to_owned()))
            .collect();
        if actual != expected {
            let details: Vec<String> = validate(r4(), &resource)
                .iter()
                .map(|i| {
                    format!(
                        "    {} {:?}: {}",
                        i.code.as_str(),
                        i.expression,
                        i.diagnostics
                    )
                })
                .collect();
            failures.push(format!(
                "{name}: expected {expected:?}\n  found:\n{}",
                details.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const NS: &str = "http://www.w3.org/1999/xhtml";

fn observation(extra: Value) -> Value {
    let mut base = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}
    });
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn patient(extra: Value) -> Value {
    let mut base = json!({"resourceType": "Patient", "id": "p1"});
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[test]
fn resource_type_and_id_rules() {
    check_all(vec![
        (
            "no resourceType",
            json!({"id": "x"}),
            vec![("required", "-")],
        ),
        (
            "unknown resourceType",
            json!({"resourceType": "Patientx"}),
            vec![("structure", "-")],
        ),
        (
            "abstract resourceType",
            json!({"resourceType": "DomainResource"}),
            vec![("structure", "-")],
        ),
        (
            "datatype as resourceType",
            json!({"resourceType": "HumanName"}),
            vec![("structure", "-")],
        ),
        (
            "resourceType not a string",
            json!({"resourceType": 1}),
            vec![("structure", "-")],
        ),
        (
            "resource not an object",
            json!([{"resourceType": "Patient"}]),
            vec![("structure", "-")],
        ),
        (
            "id with underscore",
            patient(json!({"id": "a_b"})),
            vec![("value", "Patient.id")],
        ),
        (
            "id of 65 characters",
            patient(json!({"id": "a".repeat(65)})),
            vec![("value", "Patient.id")],
        ),
        (
            "id not a string",
            patient(json!({"id": 7})),
            vec![("structure", "Patient.id")],
        ),
        (
            "empty id",
            patient(json!({"id": ""})),
            vec![("value", "Patient.id")],
        ),
    ]);
}

#[test]
fn element_names_are_checked_at_every_level() {
    check_all(vec![
        (
            "unknown element",
            patient(json!({"foo": 1})),
            vec![("structure", "Patient.foo")],
        ),
        (
            "unknown element in a datatype",
            patient(json!({"name": [{"family": "X", "foo": "y"}]})),
            vec![("structure", "Patient.name[0].foo")],
        ),
        (
            "unknown element in a backbone element",
            observation(json!({"component": [{"code": {"text": "x"}, "foo": true}]})),
            vec![("structure", "Observation.component[0].foo")],
        ),
        (
            "names are case-sensitive",
            patient(json!({"birthdate": "2000"})),
            vec![("structure", "Patient.birthdate")],
        ),
        (
            "a choice element without its type",
            observation(json!({"value": 5})),
            vec![("structure", "Observation.value")],
        ),
        (
            "a choice element with an unknown type",
            observation(json!({"valueFoo": 5})),
            vec![("structure", "Observation.valueFoo")],
        ),
        (
            "value[x] under two types",
            observation(json!({"valueString": "a", "valueQuantity": {"value": 1}})),
            vec![("structure", "Observation.valueQuantity")],
        ),
        (
            "value[x] under two types, one as a primitive extension",
            observation(
                json!({"valueString": "a", "_valueBoolean": {"extension": [{"url": "http://x", "valueCode": "y"}]}}),
            ),
            vec![("structure", "Observation._valueBoolean")],
        ),
        (
            "resourceType inside a datatype",
            patient(json!({"name": [{"resourceType": "HumanName", "family": "X"}]})),
            vec![("structure", "Patient.name[0].resourceType")],
        ),
        (
            "underscore sibling of nothing",
            patient(json!({"_foo": {"id": "x"}})),
            vec![("structure", "Patient._foo")],
        ),
        (
            "underscore sibling of a complex element",
            patient(json!({"name": [{"family": "X"}], "_name": [{"id": "x"}]})),
            vec![("structure", "Patient._name")],
        ),
        (
            "fhir_comments are not R4 JSON",
            patient(json!({"fhir_comments": ["x"]})),
            vec![("structure", "Patient.fhir_comments")],
        ),
    ]);
}

#[test]
fn json_shapes_follow_the_cardinality() {
    let ext = json!({"url": "http://example.org/x", "valueString": "y"});
    check_all(vec![
        (
            "repeating element not an array",
            patient(json!({"name": {"family": "X"}})),
            vec![("structure", "Patient.name")],
        ),
        (
            "single element as an array",
            patient(json!({"gender": ["male"]})),
            vec![("structure", "Patient.gender")],
        ),
        (
            "empty array",
            patient(json!({"name": []})),
            vec![("structure", "Patient.name")],
        ),
        (
            "null single element",
            patient(json!({"gender": null})),
            vec![("structure", "Patient.gender")],
        ),
        (
            "null in an array of datatypes",
            patient(json!({"name": [null]})),
            vec![("structure", "Patient.name[0]")],
        ),
        (
            "null in a primitive array without a sibling",
            patient(json!({"name": [{"given": ["a", null]}]})),
            vec![("structure", "Patient.name[0].given[1]")],
        ),
        (
            "sibling array shorter than the values",
            patient(json!({"name": [{"given": ["a", "b"], "_given": [null]}]})),
            vec![("structure", "Patient.name[0].given")],
        ),
        (
            "null at the same position in both arrays",
            patient(
                json!({"name": [{"given": [null, "b"], "_given": [null, {"extension": [ext.clone()]}]}]}),
            ),
            vec![("structure", "Patient.name[0].given[0]")],
        ),
        (
            "sibling of a repeating primitive not an array",
            patient(json!({"name": [{"given": ["a"], "_given": {"id": "x"}}]})),
            vec![("structure", "Patient.name[0].given")],
        ),
        (
            "empty object",
            patient(json!({"maritalStatus": {}})),
            vec![("structure", "Patient.maritalStatus")],
        ),
        (
            "object with only an id",
            patient(json!({"maritalStatus": {"id": "a"}})),
            vec![("structure", "Patient.maritalStatus")],
        ),
        (
            "empty primitive sibling",
            patient(json!({"birthDate": "2000", "_birthDate": {}})),
            vec![("structure", "Patient.birthDate")],
        ),
        (
            "primitive sibling with only an id and no value",
            patient(json!({"_birthDate": {"id": "x"}})),
            vec![("structure", "Patient.birthDate")],
        ),
        (
            "primitive sibling with an unknown element",
            patient(json!({"birthDate": "2000", "_birthDate": {"value": "2000"}})),
            vec![("structure", "Patient.birthDate.value")],
        ),
        (
            "primitive sibling not an object",
            patient(json!({"birthDate": "2000", "_birthDate": "x"})),
            vec![("structure", "Patient.birthDate")],
        ),
        (
            "datatype given as a string",
            patient(json!({"maritalStatus": "M"})),
            vec![("structure", "Patient.maritalStatus")],
        ),
        (
            "primitive given as an object",
            patient(json!({"gender": {"value": "male"}})),
            vec![("structure", "Patient.gender")],
        ),
        (
            "empty string",
            patient(json!({"name": [{"family": ""}]})),
            vec![("value", "Patient.name[0].family")],
        ),
        (
            "narrative div cannot carry extensions",
            patient(
                json!({"text": {"status": "generated", "div": format!("<div xmlns=\"{NS}\">x</div>"), "_div": {"extension": [ext]}}}),
            ),
            vec![("structure", "Patient.text.div.extension")],
        ),
    ]);
}

#[test]
fn required_elements_are_checked_at_every_level() {
    check_all(vec![
        (
            "missing status and code",
            json!({"resourceType": "Observation"}),
            vec![
                ("required", "Observation.status"),
                ("required", "Observation.code"),
            ],
        ),
        (
            "missing code inside a backbone element",
            observation(json!({"component": [{"valueString": "x"}]})),
            vec![("required", "Observation.component[0].code")],
        ),
        (
            "missing url inside a datatype",
            patient(json!({"extension": [{"valueString": "x"}]})),
            vec![("required", "Patient.extension[0].url")],
        ),
        (
            "missing choice element",
            json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"}}),
            vec![("required", "MedicationRequest.medication")],
        ),
        (
            "missing element in a primitive extension",
            patient(json!({"_birthDate": {"extension": [{"valueCode": "unknown"}]}})),
            vec![("required", "Patient.birthDate.extension[0].url")],
        ),
        (
            "missing element deep in a Bundle entry",
            json!({"resourceType": "Bundle", "type": "collection", "entry": [
                {"resource": {"resourceType": "Patient"}},
                {"resource": {"resourceType": "Observation", "code": {"text": "x"}}}
            ]}),
            vec![("required", "Bundle.entry[1].resource.status")],
        ),
        (
            "missing Bundle.type",
            json!({"resourceType": "Bundle"}),
            vec![("required", "Bundle.type")],
        ),
    ]);
}

#[test]
fn primitive_formats_are_checked_where_they_occur() {
    let ext =
        |value: Value| patient(json!({"extension": [{"url": "http://example.org/x"}]})).tap(value);
    check_all(vec![
        (
            "boolean as a string",
            patient(json!({"active": "true"})),
            vec![("structure", "Patient.active")],
        ),
        (
            "integer with a fraction",
            observation(json!({"valueInteger": 1.5})),
            vec![("value", "Observation.valueInteger")],
        ),
        (
            "integer past 32 bits",
            observation(json!({"valueInteger": 2147483648i64})),
            vec![("value", "Observation.valueInteger")],
        ),
        (
            "positiveInt of zero",
            ext(json!({"valuePositiveInt": 0})),
            vec![("value", "Patient.extension[0].valuePositiveInt")],
        ),
        (
            "negative unsignedInt",
            ext(json!({"valueUnsignedInt": -1})),
            vec![("value", "Patient.extension[0].valueUnsignedInt")],
        ),
        (
            "decimal as a string",
            observation(json!({"valueQuantity": {"value": "1.5"}})),
            vec![("structure", "Observation.valueQuantity.value")],
        ),
        (
            "impossible date",
            patient(json!({"birthDate": "2021-02-29"})),
            vec![("value", "Patient.birthDate")],
        ),
        (
            "dateTime with a time but no zone",
            observation(json!({"effectiveDateTime": "2020-01-01T10:00:00"})),
            vec![("value", "Observation.effectiveDateTime")],
        ),
        (
            "instant without seconds",
            observation(json!({"issued": "2020-01-01T10:00Z"})),
            vec![("value", "Observation.issued")],
        ),
        (
            "instant of only a date",
            observation(json!({"issued": "2020-01-01"})),
            vec![("value", "Observation.issued")],
        ),
        (
            "time with a zone",
            ext(json!({"valueTime": "10:00:00Z"})),
            vec![("value", "Patient.extension[0].valueTime")],
        ),
        (
            "code with doubled whitespace",
            observation(
                json!({"valueQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "mm  Hg"}}),
            ),
            vec![("value", "Observation.valueQuantity.code")],
        ),
        (
            "uri with a space",
            patient(json!({"identifier": [{"system": "http://a b", "value": "1"}]})),
            vec![("value", "Patient.identifier[0].system")],
        ),
        (
            "upper-case uuid",
            ext(json!({"valueUuid": "urn:uuid:C757873D-EC9A-4326-A141-556F43239520"})),
            vec![("value", "Patient.extension[0].valueUuid")],
        ),
        (
            "oid outside 0-2",
            ext(json!({"valueOid": "urn:oid:3.1"})),
            vec![("value", "Patient.extension[0].valueOid")],
        ),
        (
            "invalid base64",
            patient(json!({"photo": [{"data": "abc"}]})),
            vec![("value", "Patient.photo[0].data")],
        ),
        (
            "narrative not in a div",
            patient(json!({"text": {"status": "generated", "div": "<p>hi</p>"}})),
            vec![("value", "Patient.text.div")],
        ),
        (
            "narrative with unbalanced tags",
            patient(
                json!({"text": {"status": "generated", "div": format!("<div xmlns=\"{NS}\"><p>hi</div>")}}),
            ),
            vec![("value", "Patient.text.div")],
        ),
        (
            "control character in a string",
            patient(json!({"name": [{"family": "a\u{1}b"}]})),
            vec![("value", "Patient.name[0].family")],
        ),
        (
            "invalid versionId",
            patient(json!({"meta": {"versionId": "a b"}})),
            vec![("value", "Patient.meta.versionId")],
        ),
        (
            "lastUpdated not an instant",
            patient(json!({"meta": {"lastUpdated": "2020-01-01"}})),
            vec![("value", "Patient.meta.lastUpdated")],
        ),
        (
            "meta.profile not an array",
            patient(json!({"meta": {"profile": "http://example.org/p"}})),
            vec![("structure", "Patient.meta.profile")],
        ),
        (
            "second given name invalid",
            patient(json!({"name": [{"given": ["Peter", "Ja\u{0}mes"]}]})),
            vec![("value", "Patient.name[0].given[1]")],
        ),
    ]);
}

/// A small helper so a table row can add properties to the first extension of a patient.
trait Tap {
    fn tap(self, extra: Value) -> Value;
}

impl Tap for Value {
    fn tap(mut self, extra: Value) -> Value {
        for (k, v) in extra.as_object().unwrap() {
            self["extension"][0][k] = v.clone();
        }
        self
    }
}

#[test]
fn required_bindings_are_enforced() {
    let clinical = "http://terminology.hl7.org/CodeSystem/condition-clinical";
    let condition = |clinical_status: Value| json!({"resourceType": "Condition", "subject": {"reference": "Patient/1"}, "clinicalStatus": clinical_status});
    check_all(vec![
        (
            "code not in the set",
            patient(json!({"gender": "mail"})),
            vec![("code-invalid", "Patient.gender")],
        ),
        (
            "status not in the set",
            observation(json!({"status": "done"})),
            vec![("code-invalid", "Observation.status")],
        ),
        (
            "repeating code with one bad item",
            json!({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/1"}, "category": ["food", "weather"]}),
            vec![("code-invalid", "AllergyIntolerance.category[1]")],
        ),
        (
            "code deep in a Bundle entry",
            json!({"resourceType": "Bundle", "type": "collection", "entry": [
                {"resource": {"resourceType": "Patient"}},
                {"resource": {"resourceType": "Patient"}},
                {"resource": {"resourceType": "Patient"}},
                {"resource": observation(json!({"status": "done"}))}
            ]}),
            vec![("code-invalid", "Bundle.entry[3].resource.status")],
        ),
        (
            "concept with a wrong code",
            condition(json!({"coding": [{"system": clinical, "code": "gone"}]})),
            vec![("code-invalid", "Condition.clinicalStatus")],
        ),
        (
            "concept with the right code in the wrong system",
            condition(json!({"coding": [{"system": "http://example.org", "code": "active"}]})),
            vec![("code-invalid", "Condition.clinicalStatus")],
        ),
        (
            "concept with only text",
            condition(json!({"text": "active"})),
            vec![("code-invalid", "Condition.clinicalStatus")],
        ),
        (
            "concept with one good coding among others",
            condition(json!({"coding": [
                {"system": "http://example.org", "code": "on"},
                {"system": clinical, "code": "active"}
            ]})),
            vec![],
        ),
        (
            "concept coding without a system matches on code",
            condition(json!({"coding": [{"code": "active"}]})),
            vec![],
        ),
        (
            "sets that cannot be expanded here are not checked",
            patient(
                json!({"photo": [{"contentType": "image/x-anything"}], "communication": [{"language": {"text": "x"}}]}),
            ),
            vec![],
        ),
    ]);
}

#[test]
fn references_name_allowed_target_types() {
    let subject = |reference: &str| observation(json!({"subject": {"reference": reference}}));
    check_all(vec![
        (
            "target not allowed",
            subject("Practitioner/1"),
            vec![("structure", "Observation.subject.reference")],
        ),
        (
            "unknown type",
            subject("Foo/1"),
            vec![("value", "Observation.subject.reference")],
        ),
        (
            "bad id",
            subject("Patient/a_b"),
            vec![("value", "Observation.subject.reference")],
        ),
        (
            "absolute URL to a type not allowed",
            subject("http://example.org/fhir/Medication/1"),
            vec![("structure", "Observation.subject.reference")],
        ),
        (
            "conditional reference to a type not allowed",
            subject("Organization?identifier=x|1"),
            vec![("structure", "Observation.subject.reference")],
        ),
        (
            "target checked in arrays",
            observation(
                json!({"performer": [{"reference": "Patient/1"}, {"reference": "Medication/2"}]}),
            ),
            vec![("structure", "Observation.performer[1].reference")],
        ),
        ("relative", subject("Patient/1"), vec![]),
        ("versioned", subject("Patient/1/_history/2"), vec![]),
        (
            "absolute",
            subject("https://example.org/fhir/Group/g1"),
            vec![],
        ),
        (
            "absolute, not RESTful",
            subject("https://example.org/people/7"),
            vec![],
        ),
        (
            "conditional",
            subject("Patient?identifier=http://x|1"),
            vec![],
        ),
        (
            "urn:uuid",
            subject("urn:uuid:c757873d-ec9a-4326-a141-556f43239520"),
            vec![],
        ),
        (
            "display only",
            observation(json!({"subject": {"display": "someone"}})),
            vec![],
        ),
        (
            "Reference(Any) takes any type",
            json!({"resourceType": "Provenance", "target": [{"reference": "Medication/1"}], "recorded": "2020-01-01T00:00:00Z",
                   "agent": [{"who": {"reference": "Practitioner/1"}}]}),
            vec![],
        ),
        (
            "Reference(Any) still needs a real type",
            json!({"resourceType": "Provenance", "target": [{"reference": "Thing/1"}], "recorded": "2020-01-01T00:00:00Z",
                   "agent": [{"who": {"reference": "Practitioner/1"}}]}),
            vec![("value", "Provenance.target[0].reference")],
        ),
    ]);
}

#[test]
fn extensions_have_a_url_and_either_a_value_or_children() {
    check_all(vec![
        (
            "value and children",
            patient(
                json!({"extension": [{"url": "http://x", "valueString": "a", "extension": [{"url": "y", "valueString": "b"}]}]}),
            ),
            vec![("invariant", "Patient.extension[0]")],
        ),
        (
            "neither value nor children",
            patient(json!({"extension": [{"url": "http://x"}]})),
            vec![("invariant", "Patient.extension[0]")],
        ),
        (
            "modifier extension without url",
            patient(json!({"modifierExtension": [{"valueBoolean": true}]})),
            vec![("required", "Patient.modifierExtension[0].url")],
        ),
        // One fault, one issue: the misnamed value still counts as the extension's value.
        (
            "bare value",
            patient(json!({"extension": [{"url": "http://x", "value": "a"}]})),
            vec![("structure", "Patient.extension[0].value")],
        ),
        (
            "nested extension checked too",
            patient(json!({"extension": [{"url": "http://x", "extension": [{"url": "a"}]}]})),
            vec![("invariant", "Patient.extension[0].extension[0]")],
        ),
        (
            "value with its own primitive extension",
            patient(
                json!({"extension": [{"url": "http://x", "valueString": "a", "_valueString": {"id": "v"}}]}),
            ),
            vec![],
        ),
    ]);
}

#[test]
fn nested_resources_are_validated_as_their_own_type() {
    check_all(vec![
        (
            "contained without resourceType",
            patient(json!({"contained": [{"id": "a"}]})),
            vec![("required", "Patient.contained[0]")],
        ),
        (
            "contained with an unknown element",
            patient(
                json!({"contained": [{"resourceType": "Organization", "id": "o", "foo": 1}], "managingOrganization": {"reference": "#o"}}),
            ),
            vec![("structure", "Patient.contained[0].foo")],
        ),
        (
            "contained inside contained",
            patient(
                json!({"contained": [{"resourceType": "Organization", "id": "o", "contained": [{"resourceType": "Organization", "id": "p"}]}],
                       "managingOrganization": {"reference": "#o"}}),
            ),
            vec![("invariant", "Patient.contained[0].contained")],
        ),
        (
            "contained with a bad id",
            patient(
                json!({"contained": [{"resourceType": "Organization", "id": "o_1"}], "managingOrganization": {"reference": "#o_1"}}),
            ),
            vec![("value", "Patient.contained[0].id")],
        ),
        (
            "Parameters resource",
            json!({"resourceType": "Parameters", "parameter": [{"name": "p", "resource": {"resourceType": "Observation", "status": "final"}}]}),
            vec![("required", "Parameters.parameter[0].resource.code")],
        ),
        (
            "Bundle response outcome",
            json!({"resourceType": "Bundle", "type": "batch-response", "entry": [
                {"response": {"status": "400", "outcome": {"resourceType": "OperationOutcome", "issue": [{"severity": "fatal", "code": "nope"}]}}}
            ]}),
            vec![(
                "code-invalid",
                "Bundle.entry[0].response.outcome.issue[0].code",
            )],
        ),
        (
            "entry resource not an object",
            json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": "Patient/1"}]}),
            vec![("structure", "Bundle.entry[0].resource")],
        ),
    ]);
}

#[test]
fn valid_resources_have_no_issues() {
    let valid = vec![
        ("bare resource", json!({"resourceType": "Patient"})),
        (
            "patient with most features",
            json!({
                "resourceType": "Patient",
                "id": "example.1-a",
                "meta": {"versionId": "2", "lastUpdated": "2020-01-01T00:00:00.000+08:00", "profile": ["http://example.org/p"],
                         "tag": [{"system": "http://example.org", "code": "t"}]},
                "text": {"status": "generated", "div": format!("<div xmlns=\"{NS}\"><p>Peter &amp; <b>James</b></p></div>")},
                "extension": [{"url": "http://example.org/nested", "extension": [{"url": "a", "valueDecimal": 1.50}]}],
                "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
                "active": true,
                "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", null, "James"],
                          "_given": [null, {"extension": [{"url": "http://example.org/absent", "valueCode": "unknown"}]}, {"id": "g3"}]}],
                "gender": "male",
                "birthDate": "1974-12-25",
                "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
                "deceasedBoolean": false,
                "multipleBirthInteger": 2,
                "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}],
                "contact": [{"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}],
                             "name": {"family": "du Marché"}}],
                "managingOrganization": {"reference": "Organization/1"},
                "contained": [{"resourceType": "Organization", "id": "org", "name": "Contained"}],
                "generalPractitioner": [{"reference": "#org"}]
            }),
        ),
        (
            "primitive given only by its extension",
            json!({
                "resourceType": "Observation", "_status": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]},
                "code": {"text": "x"}
            }),
        ),
        (
            "repeating primitive given only by extensions",
            patient(
                json!({"name": [{"_given": [{"extension": [{"url": "http://x", "valueString": "a"}]}]}]}),
            ),
        ),
        (
            "observation with quantity and components",
            observation(json!({
                "effectivePeriod": {"start": "2020-01-01", "end": "2020-01-02T10:00:00Z"},
                "valueQuantity": {"value": 120, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
                "component": [{"code": {"text": "a"}, "valueSampledData": {"origin": {"value": 0}, "period": 1.5, "dimensions": 1, "data": "1 2 E"}}]
            })),
        ),
        (
            "transaction bundle as Synthea writes it",
            json!({
                "resourceType": "Bundle", "type": "transaction", "entry": [{
                    "fullUrl": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
                    "resource": {"resourceType": "Encounter", "status": "finished", "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                                 "subject": {"reference": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"},
                                 "participant": [{"individual": {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999994695"}}]},
                    "request": {"method": "POST", "url": "Encounter"}
                }]
            }),
        ),
    ];
    let mut failures = Vec::new();
    for (name, resource) in valid {
        let issues = validate(r4(), &resource);
        if !issues.is_empty() {
            failures.push(format!("{name}: {issues:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn issues_carry_a_sentence_that_names_the_problem() {
    let issues = validate(r4(), &patient(json!({"gender": "mail", "foo": 1})));
    let text: Vec<&str> = issues.iter().map(|i| i.diagnostics.as_str()).collect();
    assert_eq!(
        text,
        [
            "The code 'mail' is not in the value set http://hl7.org/fhir/ValueSet/administrative-gender, which this element requires.",
            "Unknown element 'foo' in Patient.",
        ]
    );
    let outcome = fhir_model::Issue::operation_outcome(&issues);
    assert_eq!(outcome["issue"][0]["expression"], json!(["Patient.gender"]));
}

#[test]
fn all_issues_are_reported_up_to_the_cap() {
    let mut resource = patient(json!({}));
    for i in 0..150 {
        resource[format!("unknown{i}")] = json!(i);
    }
    let all = validate_with(r4(), &resource, &ValidationOptions { max_issues: 1000 });
    assert_eq!(all.len(), 150);
    let capped = validate(r4(), &resource);
    assert_eq!(
        capped.len(),
        101,
        "100 errors and one note that the list is cut short"
    );
    assert!(capped[..100].iter().all(|i| i.code == IssueCode::Structure));
    assert_eq!(capped[100].code, IssueCode::TooCostly);
    assert_eq!(capped[100].severity, Severity::Information);
}

#[test]
fn every_type_fits_the_validators_per_object_bitset() {
    // The validator tracks which elements an object has in a u64; R4's widest type has 54.
    let widest = r4().types().map(|t| t.elements.len()).max().unwrap();
    assert!(widest <= 64, "{widest} elements");
}
