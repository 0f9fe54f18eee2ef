//! The indicator catalogue on a generated region: every indicator computed from the views by
//! `meridian measure evaluate` equals a recomputation written straight from the region's
//! NDJSON files (`indicators_check.py`: the resources' elements read with plain Python, no
//! view, no SQL): the populations, every stratum of every stratifier, the median turnaround,
//! and the members a subject list names.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::support;
use crate::view_command::meridian;

const PATIENTS: &str = "600";
const SEED: &str = "4";
const PERIOD: (&str, &str) = ("2025-07-01", "2026-06-30");

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// The population code of a report's population.
fn code(population: &Value) -> String {
    population["code"]["coding"][0]["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A report's counts in the recomputation's shape: populations, then every stratum's.
fn counts(report: &Value) -> Value {
    let group = &report["group"][0];
    let populations = |list: &Value| -> BTreeMap<String, u64> {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|p| code(p) != "measure-observation")
            .map(|p| (code(p), p["count"].as_u64().unwrap()))
            .collect()
    };
    let mut strata = BTreeMap::new();
    for stratifier in group["stratifier"].as_array().into_iter().flatten() {
        let name = stratifier["code"][0]["text"].as_str().unwrap().to_owned();
        let by_value: BTreeMap<String, BTreeMap<String, u64>> = stratifier["stratum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["value"]["text"].as_str().unwrap().to_owned(),
                    populations(&s["population"]),
                )
            })
            .collect();
        strata.insert(name, by_value);
    }
    json!({"populations": populations(&group["population"]), "strata": strata})
}

#[test]
fn every_indicator_equals_a_recomputation_from_the_ndjson() {
    // The standard library is all the recomputation needs.
    let python = std::path::PathBuf::from("python3");
    let temp = tempfile::tempdir().unwrap();
    let ndjson = temp.path().join("ndjson");
    let data = temp.path().join("store");
    let seed = ["seed", "--patients", PATIENTS, "--seed", SEED];
    let (code, _, err) = meridian(&[&seed[..], &["--out", &path(&ndjson)]].concat());
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = meridian(&[&seed[..], &["--data", &path(&data)]].concat());
    assert_eq!(code, 0, "{err}");

    let recomputed: Value = serde_json::from_str(&support::python_check(
        &python,
        "indicators_check.py",
        &[path(&ndjson), PERIOD.0.into(), PERIOD.1.into()],
    ))
    .unwrap();

    let (code, listed, err) = meridian(&["measure", "list"]);
    assert_eq!(code, 0, "{err}");
    let from_views: Vec<&str> = listed
        .lines()
        .map(|line| line.split('\t').next().unwrap())
        .collect();
    assert_eq!(
        from_views.len(),
        recomputed.as_object().unwrap().len(),
        "every indicator from the views is recomputed: {listed}"
    );

    let evaluate = |id: &str, extra: &[&str]| -> Value {
        let (code, out, err) = meridian(
            &[
                &[
                    "measure",
                    "evaluate",
                    id,
                    "--period-start",
                    PERIOD.0,
                    "--period-end",
                    PERIOD.1,
                    "--data",
                    &path(&data),
                ][..],
                extra,
            ]
            .concat(),
        );
        assert_eq!(code, 0, "{id}: {err}");
        serde_json::from_str(&out).unwrap()
    };
    let mut nonzero = Vec::new();
    for id in from_views {
        let report = evaluate(id, &[]);
        assert_eq!(report["resourceType"], "MeasureReport", "{id}");
        assert_eq!(
            report["period"],
            json!({"start": PERIOD.0, "end": PERIOD.1})
        );
        let expected = &recomputed[id];
        let found = counts(&report);
        assert_eq!(found["populations"], expected["populations"], "{id}");
        assert_eq!(found["strata"], expected["strata"], "{id}");
        let group = &report["group"][0];
        let count = |code: &str| {
            group["population"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| self::code(p) == code)
                .map(|p| p["count"].as_u64().unwrap())
        };
        match (count("denominator"), count("numerator")) {
            (Some(d), Some(n)) if d > 0 => {
                let score = group["measureScore"]["value"].as_f64().unwrap();
                assert!((score - n as f64 / d as f64).abs() < 1e-6, "{id}: {score}");
            }
            _ => {}
        }
        if let Some(median) = expected.get("median").filter(|m| !m.is_null()) {
            let score = group["measureScore"]["value"].as_f64().unwrap();
            assert!((score - median.as_f64().unwrap()).abs() < 1e-6, "{id}");
        }
        if count("initial-population").unwrap() > 0 {
            nonzero.push(id.to_owned());
        }
    }
    // The generated region exercises the indicators it has data for.
    for id in [
        "grassroots-first-diagnosis",
        "in-county-diagnosis",
        "referrals",
        "hypertension-management",
        "hypertension-control",
        "diabetes-management",
        "chronic-follow-up",
        "record-coverage",
        "health-code-use",
        "duplicate-exam",
    ] {
        assert!(
            nonzero.contains(&id.to_owned()),
            "{id} counts nobody: {nonzero:?}"
        );
    }
    // A seeded region sends most first contacts to the grassroots and keeps most care in the
    // county: the rates are those of a plausible region, not 0 or 1.
    for id in ["grassroots-first-diagnosis", "in-county-diagnosis"] {
        let report = evaluate(id, &[]);
        let score = report["group"][0]["measureScore"]["value"]
            .as_f64()
            .unwrap();
        assert!(score > 0.5 && score < 1.0, "{id}: {score}");
    }

    // A subject list names the numerator's members, as the recomputation finds them.
    let report = evaluate("hypertension-control", &["--subject-list"]);
    assert_eq!(report["type"], "subject-list");
    let numerator = report["contained"]
        .as_array()
        .unwrap()
        .iter()
        .find(|list| list["id"] == "numerator-subjects")
        .unwrap();
    let mut members: Vec<&str> = numerator["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["item"]["reference"].as_str().unwrap())
        .collect();
    members.sort();
    assert_eq!(
        json!(members),
        recomputed["hypertension-control"]["members"]
    );

    // Refused: an unknown indicator, a period that is not one.
    let (code, _, err) = meridian(&[
        "measure",
        "evaluate",
        "no-such",
        "--period-start",
        "2026",
        "--period-end",
        "2026",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = meridian(&[
        "measure",
        "evaluate",
        "referrals",
        "--period-start",
        "2026-07",
        "--period-end",
        "2026-02",
        "--data",
        &path(&data),
    ]);
    assert_eq!(code, 2, "{err}");
}
