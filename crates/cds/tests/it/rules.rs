//! The shipped rules: they load, there are at least 30 across the issue's categories, and
//! every rule has a case where it fires and a near miss where it does not
//! (`tests/rules/cases.json`). A rule replaced by data takes effect without a rebuild, and a
//! rule that fails never hides another rule's finding.

use std::collections::BTreeSet;

use cds::Hook;
use cds::record::Record;
use cds::rules::RuleSet;
use serde_json::{Value, json};

const NOW: &str = "2026-06-15T09:00:00+08:00";

fn fired(set: &RuleSet, case: &Value) -> BTreeSet<String> {
    let hook = Hook::from_name(case["hook"].as_str().unwrap()).unwrap();
    let drafts = case["drafts"].as_array().cloned().unwrap_or_default();
    let record = Record::from_resources(case["record"].as_array().cloned().unwrap_or_default());
    let evaluation = set.evaluate(hook, &drafts, &record, NOW);
    assert!(
        evaluation.failed.is_empty(),
        "rules failed: {:?}",
        evaluation.failed
    );
    evaluation
        .findings
        .iter()
        .map(|f| f.rule.id.clone())
        .collect()
}

#[test]
fn every_shipped_rule_fires_on_its_case_and_not_on_its_near_miss() {
    let set = RuleSet::parse(cds::rules::SHIPPED).unwrap();
    assert!(set.rules.len() >= 30, "{} rules", set.rules.len());
    let categories: BTreeSet<&str> = set.rules.iter().map(|r| r.category.as_str()).collect();
    for category in [
        "exam-condition",
        "drug-allergy",
        "drug-drug",
        "drug-condition",
        "duplicate-order",
        "record-contradiction",
    ] {
        assert!(categories.contains(category), "no {category} rule");
    }
    let text = std::fs::read_to_string(format!(
        "{}/tests/rules/cases.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    let mut covered = BTreeSet::new();
    for case in &cases {
        let rule = case["rule"].as_str().unwrap();
        assert!(
            set.rules.iter().any(|r| r.id == rule),
            "a case for an unknown rule {rule}"
        );
        // A rule about observations that fires is one whose guard lets them be read.
        let rule_of = set.rules.iter().find(|r| r.id == rule).unwrap();
        if rule_of.when.source().contains("%observations") {
            let fires = &case["fires"];
            let hook = Hook::from_name(fires["hook"].as_str().unwrap()).unwrap();
            let drafts = fires["drafts"].as_array().cloned().unwrap_or_default();
            assert!(
                set.needs_observations(hook, &drafts, &|_| true, NOW),
                "{rule}: its guard would skip the observations it fires on"
            );
        }
        assert!(
            fired(&set, &case["fires"]).contains(rule),
            "{rule} does not fire on its case"
        );
        assert!(
            !fired(&set, &case["quiet"]).contains(rule),
            "{rule} fires on its near miss"
        );
        covered.insert(rule.to_owned());
    }
    for rule in &set.rules {
        assert!(covered.contains(&rule.id), "{} has no cases", rule.id);
    }
}

fn barium_case(condition_text: &str) -> (Vec<Value>, Record) {
    let drafts = vec![
        json!({"resourceType": "ServiceRequest", "id": "d1", "status": "draft", "intent": "order",
        "code": {"coding": [{"system": "urn:oid:1.2.156.1", "code": "FS0021", "display": "上消化道钡餐造影"}]},
        "subject": {"reference": "Patient/p1"}}),
    ];
    let record = Record::from_resources(vec![
        json!({"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1960-01-01"}),
        json!({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "https://meridian.example/fhir/sid/icd-10-cn", "code": "K56.700x001"}], "text": condition_text}}),
    ]);
    (drafts, record)
}

#[test]
fn a_rule_set_given_as_data_replaces_the_shipped_one_and_a_failing_rule_hides_nothing() {
    let source = json!({
        "version": "test",
        "conceptSets": {
            "barium-meal": {"text": ["钡餐", "barium meal"]},
            "intestinal-obstruction": {"prefixes": [{"system": "https://meridian.example/fhir/sid/icd-10-cn", "prefix": "K56"}]}
        },
        "rules": [
            {"id": "barium", "category": "exam-condition", "severity": "critical", "hooks": ["order-sign"],
             "orderTypes": ["ServiceRequest"],
             "when": "%order.code.memberOf('barium-meal') and %conditions.where(code.memberOf('intestinal-obstruction')).exists()",
             "message": {"en": "Intestinal obstruction: use barium meal with caution", "zh": "肠梗阻患者慎用钡餐"}},
            {"id": "broken", "category": "exam-condition", "severity": "warning", "hooks": ["order-sign"],
             "orderTypes": ["ServiceRequest"], "when": "%order.code.single() and (1 | 2).single() = 1",
             "message": {"en": "never", "zh": "从不"}}
        ]
    });
    let set = RuleSet::parse(&source.to_string()).unwrap();
    let (drafts, record) = barium_case("肠梗阻");
    let evaluation = set.evaluate(Hook::OrderSign, &drafts, &record, NOW);
    let fired: Vec<&str> = evaluation
        .findings
        .iter()
        .map(|f| f.rule.id.as_str())
        .collect();
    assert_eq!(fired, ["barium"]);
    assert_eq!(evaluation.failed.len(), 1, "{:?}", evaluation.failed);
    assert_eq!(evaluation.failed[0].0, "broken");
    // A rule naming an unknown concept set, or an expression that does not compile, is refused
    // when the file is loaded, naming the rule.
    let mut unknown = source.clone();
    unknown["rules"][0]["when"] = json!("%order.code.memberOf('no-such-set')");
    assert!(
        RuleSet::parse(&unknown.to_string())
            .unwrap_err()
            .contains("no-such-set")
    );
    let mut broken = source.clone();
    broken["rules"][0]["when"] = json!("%order.code.where(");
    assert!(
        RuleSet::parse(&broken.to_string())
            .unwrap_err()
            .contains("rule 'barium'")
    );
}

#[test]
fn icd10_editions_share_their_hierarchy() {
    let source = json!({
        "conceptSets": {"obstruction": {"prefixes": [{"system": "http://hl7.org/fhir/sid/icd-10", "prefix": "K56"}]}},
        "rules": [{"id": "r", "category": "record-contradiction", "severity": "info", "hooks": ["patient-view"],
            "when": "%conditions.where(code.memberOf('obstruction')).exists()", "message": {"en": "x", "zh": "x"}}]
    });
    let set = RuleSet::parse(&source.to_string()).unwrap();
    for system in [
        "http://hl7.org/fhir/sid/icd-10",
        "http://hl7.org/fhir/sid/icd-10-cm",
        "https://meridian.example/fhir/sid/icd-10-cn",
        "urn:oid:2.16.156.10011.2.3.3.11",
    ] {
        let record = Record::from_resources(vec![json!({"resourceType": "Condition", "id": "c",
            "code": {"coding": [{"system": system, "code": "K56.700x001"}]}, "subject": {"reference": "Patient/p"}})]);
        assert_eq!(
            set.evaluate(Hook::PatientView, &[], &record, NOW)
                .findings
                .len(),
            1,
            "{system}"
        );
    }
    // Another code system's K56 is not ICD-10's.
    let record = Record::from_resources(vec![json!({"resourceType": "Condition", "id": "c",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "K56"}]}, "subject": {"reference": "Patient/p"}})]);
    assert!(
        set.evaluate(Hook::PatientView, &[], &record, NOW)
            .findings
            .is_empty()
    );
}

#[test]
fn observations_are_needed_only_when_a_rule_about_them_can_fire() {
    let set = RuleSet::parse(cds::rules::SHIPPED).unwrap();
    let all = |_: usize| true;
    let drug = |code: &str, text: &str| {
        json!({"resourceType": "MedicationRequest", "id": "m", "status": "draft",
        "intent": "order", "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}], "text": text}})
    };
    // Amoxicillin: no rule that reads observations is about it.
    assert!(!set.needs_observations(Hook::OrderSign, &[drug("723", "amoxicillin")], &all, NOW));
    // Metformin: the eGFR rules are.
    assert!(set.needs_observations(Hook::OrderSign, &[drug("6809", "metformin")], &all, NOW));
    // A CT: the pregnancy rule is.
    let ct = json!({"resourceType": "ServiceRequest", "id": "s", "status": "draft", "intent": "order",
        "subject": {"reference": "Patient/p"}, "code": {"coding": [{"system": "http://loinc.org", "code": "24627-2"}], "text": "CT chest"}});
    assert!(set.needs_observations(Hook::OrderSign, &[ct], &all, NOW));
    // The record's contradictions read them whatever is drafted.
    assert!(set.needs_observations(Hook::PatientView, &[], &all, NOW));
}
