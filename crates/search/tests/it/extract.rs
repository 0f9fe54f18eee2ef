//! Index extraction through the official R4 expressions: each parameter type lands in the
//! right table with the right values.

use std::sync::{Arc, OnceLock};

use search::index::CompositeSecond;
use search::keys::{ParamKey, PatientKey};
use search::{IndexEntries, Indexer, Registry};
use serde_json::{Value, json};

fn indexer() -> &'static Indexer {
    static INDEXER: OnceLock<Indexer> = OnceLock::new();
    INDEXER.get_or_init(|| Indexer::new(Arc::new(Registry::r4(fhir_model::r4()))))
}

fn extract(resource: Value) -> IndexEntries {
    let resource_type = resource["resourceType"].as_str().unwrap().to_owned();
    let id = resource["id"].as_str().unwrap_or("x").to_owned();
    indexer().extract(&resource_type, &id, &resource).unwrap()
}

fn tokens(entries: &IndexEntries, resource_type: &str, code: &str) -> Vec<String> {
    let key = ParamKey::new(resource_type, code);
    let mut found: Vec<String> = entries
        .tokens
        .iter()
        .filter(|t| t.param == key)
        .map(|t| format!("{}|{}", t.system.as_deref().unwrap_or(""), t.code))
        .collect();
    found.sort();
    found
}

fn date_ranges(entries: &IndexEntries, resource_type: &str, code: &str) -> Vec<(i64, i64)> {
    let key = ParamKey::new(resource_type, code);
    entries
        .dates
        .iter()
        .filter(|d| d.param == key)
        .map(|d| (d.low, d.high))
        .collect()
}

fn observation() -> Value {
    json!({
        "resourceType": "Observation", "id": "bp",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}], "text": "BP"},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "effectiveDateTime": "2024-05-01",
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": 120.5, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": {"value": 80, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
        ]
    })
}

#[test]
fn tokens_come_from_codes_codings_and_codeable_concepts() {
    let entries = extract(observation());
    assert_eq!(
        tokens(&entries, "Observation", "code"),
        ["http://loinc.org|85354-9"]
    );
    assert_eq!(tokens(&entries, "Observation", "status"), ["|final"]);
    assert_eq!(
        tokens(&entries, "Observation", "component-code"),
        ["http://loinc.org|8462-4", "http://loinc.org|8480-6"]
    );
    let text_key = ParamKey::derived("Observation", "code", "text");
    let mut texts: Vec<&str> = entries
        .strings
        .iter()
        .filter(|s| s.param == text_key)
        .map(|s| &*s.normalized)
        .collect();
    texts.sort();
    assert_eq!(texts, ["blood pressure panel", "bp"]);
}

#[test]
fn references_and_the_patient_compartment_key() {
    let entries = extract(observation());
    let subject = ParamKey::new("Observation", "subject");
    let patient = ParamKey::new("Observation", "patient");
    let targets: Vec<(ParamKey, Option<&str>, Option<&str>)> = entries
        .references
        .iter()
        .filter(|r| r.param == subject || r.param == patient)
        .map(|r| (r.param, r.target_type.as_deref(), r.target_id.as_deref()))
        .collect();
    assert!(targets.contains(&(subject, Some("Patient"), Some("p1"))));
    assert!(
        targets.contains(&(patient, Some("Patient"), Some("p1"))),
        "patient = subject.where(resolve() is Patient)"
    );
    assert_eq!(entries.patient_key, PatientKey::of_patient("p1"));
    // An Observation about a Group is not in any patient's compartment.
    let mut about_group = observation();
    about_group["subject"] = json!({"reference": "Group/g1"});
    assert_eq!(extract(about_group).patient_key, PatientKey::NONE);
}

#[test]
fn dates_are_ranges_at_their_precision() {
    let ranges = date_ranges(&extract(observation()), "Observation", "date");
    let day_start = 1_714_521_600_000_000;
    assert_eq!(ranges, [(day_start, day_start + 86_400_000_000 - 1)]);
}

#[test]
fn a_period_that_ends_before_it_starts_is_indexed_as_the_span_between() {
    // Search SQL relies on low <= high for every date row (store-sql: `implied_high_bound`).
    let mut observation = observation();
    let object = observation.as_object_mut().unwrap();
    object.remove("effectiveDateTime");
    object.insert(
        "effectivePeriod".into(),
        json!({"start": "2024-05-02", "end": "2024-05-01"}),
    );
    let ranges = date_ranges(&extract(observation), "Observation", "date");
    let may_1 = 1_714_521_600_000_000;
    let may_2 = may_1 + 86_400_000_000;
    assert_eq!(ranges, [(may_1 + 86_400_000_000 - 1, may_2)]);
}

#[test]
fn quantities_keep_their_precision_and_a_canonical_value() {
    let entries = extract(observation());
    let key = ParamKey::new("Observation", "component-value-quantity");
    let systolic = entries
        .quantities
        .iter()
        .find(|q| q.param == key && q.value == 120.5)
        .unwrap();
    assert!((systolic.low - 120.45).abs() < 1e-9 && (systolic.high - 120.55).abs() < 1e-9);
    let (unit, value) = systolic.canonical.as_ref().unwrap();
    assert_eq!(&**unit, "Pa");
    assert!((value - 120.5 * 133.322).abs() < 1e-6);
}

#[test]
fn a_quantity_is_found_by_its_human_unit_too() {
    // `5.4||milligram` must find {"unit": "milligram", "code": "mg"}: R4 matches `||[code]`
    // on "either the code or the stated human unit". The unit gets a row without a system.
    let entries = extract(json!({
        "resourceType": "Observation", "status": "final", "code": {"text": "dose"},
        "valueQuantity": {"value": 5.4, "unit": "milligram",
                          "system": "http://unitsofmeasure.org", "code": "mg"}
    }));
    let key = ParamKey::new("Observation", "value-quantity");
    let mut units: Vec<(Option<&str>, Option<&str>, bool)> = entries
        .quantities
        .iter()
        .filter(|q| q.param == key)
        .map(|q| {
            (
                q.system.as_deref(),
                q.code.as_deref(),
                q.canonical.is_some(),
            )
        })
        .collect();
    units.sort();
    assert_eq!(
        units,
        [
            (None, Some("milligram"), false),
            (Some("http://unitsofmeasure.org"), Some("mg"), true)
        ]
    );
}

#[test]
fn composites_pair_components_of_the_same_element() {
    let entries = extract(observation());
    let key = ParamKey::new("Observation", "component-code-value-quantity");
    let pairs: Vec<(String, f64)> = entries
        .composites
        .iter()
        .filter(|c| c.param == key)
        .map(|c| match &c.second {
            CompositeSecond::Range { low, high, .. } => {
                (c.first.code.to_string(), (low + high) / 2.0)
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        pairs,
        [("8480-6".to_owned(), 120.5), ("8462-4".to_owned(), 80.0)],
        "never 8480-6 with 80"
    );
}

#[test]
fn names_identifiers_and_contact_points_of_a_patient() {
    let entries = extract(json!({
        "resourceType": "Patient", "id": "p1",
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "11010519491231002X",
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}]}}],
        "name": [{"family": "张", "given": ["伟"], "text": "张伟"}, {"family": "Zhang", "given": ["Wei"]}],
        "telecom": [{"system": "phone", "value": "13800138000"}],
        "gender": "male",
        "birthDate": "1949-12-31",
        "active": true
    }));
    assert_eq!(
        tokens(&entries, "Patient", "identifier"),
        ["urn:oid:2.16.156.10011.1.1|11010519491231002X"]
    );
    let of_type = ParamKey::derived("Patient", "identifier", "identifier");
    assert!(entries.tokens.iter().any(|t| t.param == of_type
        && t.system.as_deref() == Some("http://terminology.hl7.org/CodeSystem/v2-0203|NI")
        && &*t.code == "11010519491231002X"));
    assert_eq!(tokens(&entries, "Patient", "phone"), ["phone|13800138000"]);
    assert_eq!(tokens(&entries, "Patient", "active"), ["|true"]);
    let name = ParamKey::new("Patient", "name");
    let mut names: Vec<&str> = entries
        .strings
        .iter()
        .filter(|s| s.param == name)
        .map(|s| &*s.normalized)
        .collect();
    names.sort();
    assert_eq!(names, ["wei", "zhang", "伟", "张", "张伟"]);
    assert_eq!(entries.patient_key, PatientKey::of_patient("p1"));
}

#[test]
fn combined_parameters_have_no_rows_of_their_own() {
    // Every `combo-` parameter of Observation is the union of two others by its R4 definition:
    // the registry finds the two, and the indexer writes rows for them only.
    let registry = Registry::r4(fhir_model::r4());
    for (combined, parts) in [
        ("combo-code", ["code", "component-code"]),
        (
            "combo-data-absent-reason",
            ["data-absent-reason", "component-data-absent-reason"],
        ),
        (
            "combo-value-concept",
            ["value-concept", "component-value-concept"],
        ),
        (
            "combo-value-quantity",
            ["value-quantity", "component-value-quantity"],
        ),
        (
            "combo-code-value-concept",
            ["code-value-concept", "component-code-value-concept"],
        ),
        (
            "combo-code-value-quantity",
            ["code-value-quantity", "component-code-value-quantity"],
        ),
    ] {
        let param = registry.get("Observation", combined).unwrap();
        let found = registry.union_parts(param).map(|p| p.map(|p| &*p.code));
        assert_eq!(found, Some(parts), "{combined}");
    }
    // Parameters that are not unions, though their expressions share terms.
    for code in [
        "code",
        "component-code",
        "value-quantity",
        "code-value-quantity",
    ] {
        let param = registry.get("Observation", code).unwrap();
        assert!(registry.union_parts(param).is_none(), "{code}");
    }

    let entries = extract(observation());
    assert_eq!(
        tokens(&entries, "Observation", "combo-code"),
        Vec::<String>::new()
    );
    let combined: Vec<ParamKey> = [
        "combo-code",
        "combo-value-quantity",
        "combo-code-value-quantity",
    ]
    .iter()
    .map(|code| ParamKey::new("Observation", code))
    .chain([ParamKey::derived("Observation", "combo-code", "text")])
    .collect();
    assert!(!entries.tokens.iter().any(|t| combined.contains(&t.param)));
    assert!(!entries.strings.iter().any(|s| combined.contains(&s.param)));
    assert!(
        !entries
            .quantities
            .iter()
            .any(|q| combined.contains(&q.param))
    );
    assert!(
        !entries
            .composites
            .iter()
            .any(|c| combined.contains(&c.param))
    );
    // The parts still have theirs.
    assert_eq!(
        entries
            .quantities
            .iter()
            .filter(|q| q.param == ParamKey::new("Observation", "component-value-quantity"))
            .count(),
        2
    );
}

#[test]
fn a_combined_parameter_redefined_differently_has_rows_again() {
    // A stored SearchParameter that gives `combo-code` another expression makes it a parameter
    // of its own: no longer searched through `code` and `component-code`, so indexed.
    let mut registry = Registry::r4(fhir_model::r4());
    let mut definition = (*registry
        .get("Observation", "combo-code")
        .unwrap()
        .definition)
        .clone();
    definition.expression = Some("Observation.code".into());
    registry.add(fhir_model::r4(), "Observation", Arc::new(definition));
    assert!(
        registry
            .union_parts(registry.get("Observation", "combo-code").unwrap())
            .is_none()
    );
    let indexer = Indexer::new(Arc::new(registry));
    let entries = indexer
        .extract("Observation", "bp", &observation())
        .unwrap();
    assert_eq!(
        tokens(&entries, "Observation", "combo-code"),
        ["http://loinc.org|85354-9"]
    );
}

#[test]
fn a_parameter_is_single_when_its_path_never_repeats() {
    let registry = Registry::r4(fhir_model::r4());
    let single =
        |resource_type: &str, code: &str| registry.get(resource_type, code).unwrap().single;
    // One element, a choice, the casts of one choice, a backbone that does not repeat.
    assert!(single("Observation", "date"));
    assert!(single("Encounter", "date"));
    assert!(single("Condition", "onset-date"));
    assert!(single("Observation", "value-date"));
    assert!(single("Patient", "birthdate"));
    assert!(single("Specimen", "collected"));
    assert!(single("AuditEvent", "date"));
    // A repeating element anywhere on the path.
    assert!(!single("MedicationRequest", "date"));
    assert!(!single("Encounter", "location-period"));
    assert!(!single("Goal", "target-date"));
    assert!(!single("Patient", "name"));
    // A redefinition with two paths, or a function, is not known to be single.
    let mut registry = registry;
    let mut definition = (*registry.get("Observation", "date").unwrap().definition).clone();
    definition.expression = Some("Observation.effective | Observation.issued".into());
    registry.add(
        fhir_model::r4(),
        "Observation",
        Arc::new(definition.clone()),
    );
    assert!(!registry.get("Observation", "date").unwrap().single);
    definition.expression = Some("Observation.effective.where(true)".into());
    registry.add(fhir_model::r4(), "Observation", Arc::new(definition));
    assert!(!registry.get("Observation", "date").unwrap().single);
}
