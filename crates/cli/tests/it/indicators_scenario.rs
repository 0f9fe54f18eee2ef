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
        // No strata when nobody falls in the stratifier (FHIR has no empty arrays).
        let by_value: BTreeMap<String, BTreeMap<String, u64>> = stratifier["stratum"]
            .as_array()
            .into_iter()
            .flatten()
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
    // A seeded region sends most first contacts to the grassroots, keeps most care in the
    // county, and most of its residents hold the health code: the rates are those of a
    // plausible region, not 0 or 1.
    for id in [
        "grassroots-first-diagnosis",
        "in-county-diagnosis",
        "health-code-use",
    ] {
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

    over_http(&data, &ndjson, &recomputed);
}

/// The catalogue in the store from the server's first start (and back after a change), and
/// `$evaluate-measure` over HTTP for platform callers only.
fn over_http(data: &Path, ndjson: &Path, recomputed: &Value) {
    let serving = support::serve_in(data, &[]);
    let get = |path: &str| support::send(&serving, "GET", path, &[], "");
    let answer = get("/fhir/Measure/hypertension-control");
    assert_eq!(answer.0, 200, "{}", answer.2);
    let measure = support::json_of(&answer.2);
    let version = measure["version"].as_str().unwrap().to_owned();
    assert_eq!(
        measure["library"][0],
        "https://meridian.example/fhir/Library/hypertension-control"
    );
    let library = support::json_of(&get("/fhir/Library/hypertension-control").2);
    assert_eq!(library["content"][0]["contentType"], "application/sql");
    let views: Vec<&str> = library["relatedArtifact"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["display"].as_str().unwrap())
        .collect();
    assert_eq!(views, ["chronic_programme", "blood_pressure", "patient"]);
    let view = support::json_of(&get("/fhir/Library/view-blood-pressure").2);
    assert_eq!(
        view["url"],
        "https://meridian.example/fhir/Library/view-blood-pressure"
    );
    let answer = get("/fhir/Measure?_summary=count");
    assert_eq!(
        support::json_of(&answer.2)["total"],
        json!(recomputed.as_object().unwrap().len() + 1),
        "every indicator and result recognition"
    );

    let evaluate = format!(
        "/fhir/Measure/hypertension-control/$evaluate-measure?periodStart={}&periodEnd={}",
        PERIOD.0, PERIOD.1
    );
    let answer = get(&evaluate);
    assert_eq!(answer.0, 200, "{}", answer.2);
    let report = support::json_of(&answer.2);
    assert_eq!(
        report["measure"],
        format!("https://meridian.example/fhir/Measure/hypertension-control|{version}")
    );
    let found = counts(&report);
    assert_eq!(
        found["populations"],
        recomputed["hypertension-control"]["populations"]
    );
    assert_eq!(
        found["strata"],
        recomputed["hypertension-control"]["strata"]
    );
    // At the type level, by canonical URL, as a subject list.
    let answer = get(
        "/fhir/Measure/$evaluate-measure?measure=https://meridian.example/fhir/Measure/referrals&periodStart=2025-07&periodEnd=2026-06&reportType=subject-list",
    );
    assert_eq!(answer.0, 200, "{}", answer.2);
    let report = support::json_of(&answer.2);
    assert_eq!(
        counts(&report)["populations"],
        recomputed["referrals"]["populations"]
    );
    assert_eq!(
        report["contained"][0]["entry"].as_array().unwrap().len() as u64,
        recomputed["referrals"]["populations"]["initial-population"]
            .as_u64()
            .unwrap()
    );

    // Six clients at once, each computing another indicator three times, just after a write
    // that every one of them must refresh a view for (a new institution: no figure changes).
    // One refresh at a time; every answer equals the recomputation.
    support::put(
        &serving,
        json!({"resourceType": "Organization", "id": "concurrency-clinic", "name": "新卫生室"}),
    );
    let (address, token) = (serving.address, serving.token.clone());
    std::thread::scope(|scope| {
        let clients: Vec<_> = [
            "grassroots-first-diagnosis",
            "in-county-diagnosis",
            "referrals",
            "duplicate-exam",
            "hypertension-control",
            "remote-reads",
        ]
        .into_iter()
        .map(|id| {
            let token = token.clone();
            scope.spawn(move || {
                for _ in 0..3 {
                    let path = format!(
                        "/fhir/Measure/{id}/$evaluate-measure?periodStart={}&periodEnd={}",
                        PERIOD.0, PERIOD.1
                    );
                    let answer = support::send_as(address, Some(&token), "GET", &path, &[], "");
                    assert_eq!(answer.0, 200, "{id}: {}", answer.2);
                    let found = counts(&support::json_of(&answer.2));
                    assert_eq!(found["populations"], recomputed[id]["populations"], "{id}");
                    assert_eq!(found["strata"], recomputed[id]["strata"], "{id}");
                }
            })
        })
        .collect();
        for client in clients {
            client.join().unwrap();
        }
    });

    // Refused: a period missing or inverted, an unknown report type; an institution's
    // clinician is not the platform.
    for (query, status) in [
        ("periodStart=2026-01", 400),
        ("periodStart=2026-03&periodEnd=2026-01", 400),
        ("periodStart=2026&periodEnd=2026&reportType=individual", 400),
    ] {
        let answer = get(&format!(
            "/fhir/Measure/referrals/$evaluate-measure?{query}"
        ));
        assert_eq!(answer.0, status, "{query}: {}", answer.2);
        assert_eq!(
            support::json_of(&answer.2)["resourceType"],
            "OperationOutcome"
        );
    }
    let token = support::clinician(&serving, "dr-indicators", "thc-indicators");
    let answer = support::send_as(serving.address, Some(&token), "GET", &evaluate, &[], "");
    assert_eq!(answer.0, 403, "{}", answer.2);
    // Each computation is a population read on the trail: 20 answered, 4 refused.
    assert_eq!(audited(&serving, "%24evaluate-measure", 24), 24);

    sql_over_http(&serving, &token, ndjson, recomputed);
    assert!(serving.errors_logged().is_empty());

    // A Measure changed in the store is the catalogue's again at the next start; with the
    // schedule's interval short, every indicator is computed for the month just ended and
    // the month so far and kept as a MeasureReport.
    let mut changed = measure.clone();
    changed["version"] = json!("local");
    changed["title"] = json!("changed here");
    support::put(&serving, changed);
    let config = data.join("indicators.toml");
    std::fs::write(&config, "indicator_interval = 1\n").unwrap();
    let serving = serving.restart(&["--config", config.to_str().unwrap()]);
    let get = |path: &str| support::send(&serving, "GET", path, &[], "");
    let measure = support::json_of(&get("/fhir/Measure/hypertension-control").2);
    assert_eq!(measure["version"], json!(version));
    assert_ne!(measure["title"], "changed here");

    let month = std::process::Command::new("date")
        .args(["-u", "+%Y-%m"])
        .output()
        .unwrap();
    let month = String::from_utf8(month.stdout).unwrap().trim().to_owned();
    let kept = |id: &str| {
        let path = format!("/fhir/MeasureReport/{id}-{month}");
        for _ in 0..300 {
            let answer = get(&path);
            if answer.0 == 200 {
                return support::json_of(&answer.2);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("no {path}");
    };
    let report = kept("record-coverage");
    assert_eq!(report["period"]["start"], format!("{month}-01"));
    let residents = report["group"][0]["population"][1]["count"]
        .as_u64()
        .unwrap();
    assert_eq!(residents, PATIENTS.parse::<u64>().unwrap());
    for id in recomputed.as_object().unwrap().keys() {
        kept(id);
    }
    // A new resident changes the month's figures: the next computation keeps a new version,
    // and the month's report has a history.
    support::put(
        &serving,
        json!({"resourceType": "Patient", "id": "newcomer", "gender": "female",
            "birthDate": "1990-02-03"}),
    );
    let history = format!("/fhir/MeasureReport/record-coverage-{month}/_history");
    let mut versions = 0usize;
    for _ in 0..300 {
        versions = support::json_of(&get(&history).2)["entry"]
            .as_array()
            .map_or(0, Vec::len);
        if versions >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(versions, 2);
    let report = kept("record-coverage");
    assert_eq!(
        report["group"][0]["population"][1]["count"]
            .as_u64()
            .unwrap(),
        residents + 1
    );
    // Kept reports are the platform's: an institution's clinician does not see them.
    let token = support::clinician(&serving, "dr-reports", "thc-reports");
    let answer = support::send_as(
        serving.address,
        Some(&token),
        "GET",
        &format!("/fhir/MeasureReport/record-coverage-{month}"),
        &[],
        "",
    );
    assert!(matches!(answer.0, 403 | 404), "{}", answer.2);
    assert!(serving.errors_logged().is_empty());
}

/// A Library holding `sql`, as `$sqlquery-run` takes it inline.
fn query_library(sql: &str) -> Value {
    use base64::Engine;
    json!({"resourceType": "Library", "status": "active",
        "type": {"coding": [{"system": "https://sql-on-fhir.org/ig/CodeSystem/LibraryTypesCodes", "code": "sql-query"}]},
        "content": [{"contentType": "application/sql",
            "data": base64::engine::general_purpose::STANDARD.encode(sql)}]})
}

/// `$sqlquery-run` over the materialised views: an ad hoc query's answer against a count
/// straight from the NDJSON, an indicator's Library run with the period bound, refusals.
fn sql_over_http(serving: &support::Serving, clinician: &str, ndjson: &Path, recomputed: &Value) {
    let post = |path: &str, body: &Value| {
        support::send(
            serving,
            "POST",
            path,
            &[("Content-Type", "application/fhir+json")],
            &body.to_string(),
        )
    };
    // Visits by the level of the institution that gave them.
    let sql = "SELECT i.level AS level, count(*) AS visits FROM encounter e \
        JOIN institution i ON i.id = e.institution GROUP BY i.level ORDER BY i.level";
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "queryResource", "resource": query_library(sql)}]});
    let answer = post("/fhir/$sqlquery-run", &body);
    assert_eq!(answer.0, 200, "{}", answer.2);
    let rows: Vec<Value> = serde_json::from_str(&answer.2).unwrap();
    let found: BTreeMap<String, u64> = rows
        .iter()
        .map(|r| {
            (
                r["level"].as_str().unwrap().to_owned(),
                r["visits"].as_u64().unwrap(),
            )
        })
        .collect();
    let read = |kind: &str| -> Vec<Value> {
        std::fs::read_to_string(ndjson.join(format!("{kind}.ndjson")))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let level_of: BTreeMap<String, String> = read("Organization")
        .iter()
        .filter_map(|o| {
            let level = o["type"][0]["coding"]
                .as_array()?
                .iter()
                .find(|c| c["system"] == "https://meridian.example/CodeSystem/institution-level")?;
            Some((
                o["id"].as_str()?.to_owned(),
                level["code"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for encounter in read("Encounter") {
        let provider = encounter["serviceProvider"]["reference"].as_str().unwrap();
        let level = &level_of[provider.strip_prefix("Organization/").unwrap()];
        *expected.entry(level.clone()).or_default() += 1;
    }
    assert_eq!(found, expected);

    // An indicator's own Library, with its period bound: a row per member of its population.
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "_format", "valueCode": "csv"},
        {"name": "parameter", "part": [
            {"name": "period_start", "valueDate": PERIOD.0},
            {"name": "period_end", "valueDate": PERIOD.1},
            {"name": "period_months", "valueInteger": 12}]}]});
    let answer = post("/fhir/Library/chronic-follow-up/$sqlquery-run", &body);
    assert_eq!(answer.0, 200, "{}", answer.2);
    let lines: Vec<&str> = answer.2.lines().collect();
    assert!(
        lines[0].starts_with("subject,denominator,numerator,"),
        "{}",
        lines[0]
    );
    assert_eq!(
        (lines.len() - 1) as u64,
        recomputed["chronic-follow-up"]["populations"]["denominator"]
            .as_u64()
            .unwrap()
    );

    // Refused: not a query, a table that is not a view, no query at all, a bad parameter
    // name; and an institution's clinician.
    for (body, status) in [
        (
            json!({"resourceType": "Parameters", "parameter": [
            {"name": "queryResource", "resource": query_library("DROP TABLE encounter")}]}),
            400,
        ),
        (
            json!({"resourceType": "Parameters", "parameter": [
            {"name": "queryResource", "resource": query_library("SELECT * FROM sqlite_master")}]}),
            400,
        ),
        (
            json!({"resourceType": "Parameters", "parameter": [
            {"name": "queryResource", "resource": query_library("SELECT * FROM nowhere")}]}),
            400,
        ),
        (json!({"resourceType": "Parameters", "parameter": []}), 400),
        (
            json!({"resourceType": "Parameters", "parameter": [
            {"name": "queryResource", "resource": query_library("SELECT 1")},
            {"name": "parameter", "part": [{"name": "x; DROP", "valueString": "1"}]}]}),
            400,
        ),
    ] {
        let answer = post("/fhir/$sqlquery-run", &body);
        assert_eq!(answer.0, status, "{body}: {}", answer.2);
        assert_eq!(
            support::json_of(&answer.2)["resourceType"],
            "OperationOutcome"
        );
    }
    let answer = support::send_as(
        serving.address,
        Some(clinician),
        "POST",
        "/fhir/$sqlquery-run",
        &[("Content-Type", "application/fhir+json")],
        &json!({"resourceType": "Parameters", "parameter": [
            {"name": "queryResource", "resource": query_library("SELECT 1")}]})
        .to_string(),
    );
    assert_eq!(answer.0, 403, "{}", answer.2);

    // One AuditEvent for each of the 8 queries asked, answered or refused.
    assert_eq!(audited(serving, "%24sqlquery-run", 8), 8);
}

/// The AuditEvents of `operation` on the server's trail, once there are `expected` of them
/// (the trail is written behind the answers) or the wait runs out.
fn audited(serving: &support::Serving, operation: &str, expected: u64) -> u64 {
    let count = || {
        let path = format!("/fhir/AuditEvent?subtype={operation}&_summary=count");
        let answer = support::send(serving, "GET", &path, &[], "");
        support::json_of(&answer.2)["total"].as_u64().unwrap()
    };
    let mut seen = count();
    for _ in 0..100 {
        if seen >= expected {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        seen = count();
    }
    seen
}
