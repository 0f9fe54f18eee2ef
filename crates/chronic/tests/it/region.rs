//! A generated region (300 residents of the synthetic region) loaded through the import, with
//! the episodes of every other resident left out, then the consumer run to the end of the log:
//! every resident with a qualifying diagnosis is enrolled once per programme (the generator's
//! episodes reused, the missing ones made), and every critical reading has exactly one alert.
//! The expectations are computed here from the generated resources, independently of the crate.

use std::collections::{BTreeMap, BTreeSet};

use chronic::{ALERT_IDENTIFIER, PROGRAM_SYSTEM, process_all};
use repository::{ImportOptions, ImportUnit};
use serde_json::Value;

use crate::common::*;

const RESIDENTS: u64 = 300;

fn codes(concept: &Value) -> Vec<(String, String)> {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["system"].as_str().unwrap_or_default().to_owned(),
                c["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The programme of a diagnosis, by the generator's codes.
fn program(condition: &Value) -> Option<&'static str> {
    if condition["clinicalStatus"]["coding"][0]["code"] != "active" {
        return None;
    }
    for (system, code) in codes(&condition["code"]) {
        match (system.as_str(), code.as_str()) {
            ("http://snomed.info/sct", "59621000" | "38341003") => return Some("hypertension"),
            ("http://snomed.info/sct", "44054006") => return Some("type-2-diabetes"),
            ("http://hl7.org/fhir/sid/icd-10", c)
                if c.starts_with("I1") && c.len() >= 3 && ("I10".."I16").contains(&&c[..3]) =>
            {
                return Some("hypertension");
            }
            ("http://hl7.org/fhir/sid/icd-10", c) if c.starts_with("E11") => {
                return Some("type-2-diabetes");
            }
            _ => {}
        }
    }
    None
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

/// Whether a generated Observation is a critical reading.
fn critical(observation: &Value) -> bool {
    let code = codes(&observation["code"]);
    let is = |c: &str| code.iter().any(|(s, k)| s == "http://loinc.org" && k == c);
    if is("85354-9") {
        return observation["component"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|component| {
                let value = number(&component["valueQuantity"]["value"]);
                let component_code = codes(&component["code"]);
                (component_code.iter().any(|(_, c)| c == "8480-6") && value >= 180.0)
                    || (component_code.iter().any(|(_, c)| c == "8462-4") && value >= 110.0)
            });
    }
    if is("14743-9") || is("14771-0") {
        assert_eq!(observation["valueQuantity"]["code"], "mmol/L");
        let value = number(&observation["valueQuantity"]["value"]);
        return value >= 16.7 || value <= 3.9;
    }
    false
}

test_support::backend_tests! {
    fn a_generated_region_is_enrolled_once_and_alerted_once_per_critical_reading(store) {
        let repository = repository(store);
        let region = seed::Region::new(seed::Config::new(RESIDENTS, 7)).unwrap();
        let mut resident = 0u64;
        let mut units = Vec::new();
        let mut pairs: BTreeSet<(String, &str)> = BTreeSet::new();
        let mut left_out: BTreeSet<(String, &str)> = BTreeSet::new();
        let mut critical_readings: BTreeSet<String> = BTreeSet::new();
        for (resource_type, mut resource) in region.resources() {
            if resource_type == "Patient" {
                resident += 1;
            }
            // Every other resident arrives without the generator's episodes and plans.
            let without_episodes = resident.is_multiple_of(2);
            match resource_type {
                "EpisodeOfCare" | "CarePlan" if without_episodes => continue,
                "Encounter" if without_episodes => {
                    if let Some(object) = resource.as_object_mut() {
                        object.remove("episodeOfCare");
                    }
                }
                "Condition" => {
                    if let Some(program) = program(&resource) {
                        let patient = resource["subject"]["reference"].as_str().unwrap().to_owned();
                        if without_episodes {
                            left_out.insert((patient.clone(), program));
                        }
                        pairs.insert((patient, program));
                    }
                }
                "Observation" if critical(&resource) => {
                    critical_readings.insert(resource["id"].as_str().unwrap().to_owned());
                }
                _ => {}
            }
            units.push(ImportUnit {
                source: format!("seed {resource_type}"),
                json: serde_json::to_vec(&resource).unwrap(),
            });
        }
        assert_eq!(resident, RESIDENTS);
        assert!(pairs.len() > 20 && !left_out.is_empty(), "{} pairs", pairs.len());
        assert!(!critical_readings.is_empty());
        let options = ImportOptions { workers: 2, batch_resources: 1000, ..ImportOptions::default() };
        let report = repository.import(&operator(), units.into_iter(), options, &|_| {});
        assert!(report.failures.is_empty(), "{:?}", report.failures.first());

        let done = process_all(&repository, &operator(), 500).unwrap();
        assert_eq!(done.registrations, left_out.len());
        assert_eq!(done.alerts, critical_readings.len());
        // Nothing more on a second run.
        assert_eq!(process_all(&repository, &operator(), 500).unwrap().changes, 0);

        let mut enrolled: BTreeMap<(String, String), usize> = BTreeMap::new();
        for episode in all(&repository, "EpisodeOfCare", &[("status", "active")]) {
            let program = episode["type"][0]["coding"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["system"] == PROGRAM_SYSTEM)
                .unwrap()["code"]
                .as_str()
                .unwrap()
                .to_owned();
            let patient = episode["patient"]["reference"].as_str().unwrap().to_owned();
            *enrolled.entry((patient, program)).or_default() += 1;
        }
        assert!(enrolled.values().all(|n| *n == 1), "an episode twice");
        let expected: BTreeSet<(String, String)> =
            pairs.iter().map(|(p, c)| (p.clone(), (*c).to_owned())).collect();
        assert_eq!(enrolled.keys().cloned().collect::<BTreeSet<_>>(), expected);

        let alerted: Vec<String> = all(&repository, "Communication", &[])
            .iter()
            .map(|c| {
                assert_eq!(c["identifier"][0]["system"], ALERT_IDENTIFIER);
                c["identifier"][0]["value"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(alerted.len(), critical_readings.len());
        assert_eq!(alerted.into_iter().collect::<BTreeSet<_>>(), critical_readings);

        // The platform's worklist on the generator's last day lists every episode.
        let list = chronic::worklist(&repository, &operator(), chronic::WorklistQuery {
            practitioner: None,
            organization: None,
            as_of: chronic::dates::day_of("2026-06-30").unwrap(),
        }).unwrap();
        assert_eq!(list.episodes.len(), expected.len());
        assert_eq!(list.alerts.len(), critical_readings.len());
    }
}
