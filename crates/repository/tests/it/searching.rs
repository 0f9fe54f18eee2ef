//! Search through the repository on the Synthea sample: the query language end to end, from
//! query string to Bundle, on every backend.

use repository::{BundleOptions, Repository, SearchRequest, SearchScope};
use search::Handling;
use serde_json::{Value, json};
use test_support::backend_tests;

use crate::support::*;

fn load(repository: &Repository) {
    for name in crate::synthea::FILES {
        repository
            .process_bundle(
                &ctx(),
                BASE,
                crate::synthea::bundle(name),
                BundleOptions::default(),
            )
            .unwrap();
    }
}

fn bundle(repository: &Repository, scope: SearchScope, query: &str) -> Value {
    let request = SearchRequest {
        scope,
        params: repository::parse_query(query),
        handling: Handling::Strict,
    };
    json(
        &repository
            .search(&ctx(), BASE, &request)
            .unwrap_or_else(|e| panic!("{query}: {e:?}")),
    )
}

fn count(repository: &Repository, resource_type: &str, query: &str) -> usize {
    matches(repository, resource_type, query).len()
}

/// Every resource that matches, across the pages.
fn matches(repository: &Repository, resource_type: &str, query: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut query = format!("{query}&_count=200");
    loop {
        let page = bundle(repository, SearchScope::Type(resource_type.into()), &query);
        found.extend(
            page["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| e["resource"].clone()),
        );
        match page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
        {
            Some(next) => {
                query = next["url"]
                    .as_str()
                    .unwrap()
                    .split_once('?')
                    .unwrap()
                    .1
                    .to_owned()
            }
            None => return found,
        }
    }
}

fn ids(resources: &[Value]) -> std::collections::BTreeSet<String> {
    resources
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The sample's Observations as sent, read straight from its files.
fn sent_observations() -> Vec<Value> {
    crate::synthea::FILES
        .iter()
        .flat_map(|name| {
            crate::synthea::bundle(name)["entry"]
                .as_array()
                .unwrap()
                .clone()
        })
        .map(|entry| entry["resource"].clone())
        .filter(|resource| resource["resourceType"] == "Observation")
        .collect()
}

/// An Observation's own part and its components: what a `combo-` parameter looks at.
fn own_and_components(observation: &Value) -> Vec<&Value> {
    std::iter::once(observation)
        .chain(observation["component"].as_array().into_iter().flatten())
        .collect()
}

fn has_loinc(part: &Value, code: &str) -> bool {
    part["code"]["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|coding| coding["system"] == "http://loinc.org" && coding["code"] == code)
}

backend_tests! {
    fn the_sample_answers_searches_of_every_kind(store) {
        let repository = repository(store);
        load(&repository);
        assert_eq!(count(&repository, "Patient", "gender=male") + count(&repository, "Patient", "gender=female"), 3);
        let observations = count(&repository, "Observation", "");
        assert!(observations > 100, "{observations}");
        // Partitions: every observation is before, in or after 2015 exactly once.
        let before = count(&repository, "Observation", "date=lt2015");
        let during = count(&repository, "Observation", "date=eq2015");
        let after = count(&repository, "Observation", "date=gt2015");
        assert_eq!(before + during + after, observations);
        assert_eq!(count(&repository, "Observation", "date=ge2015"), during + after);
        let vital = count(&repository, "Observation", "category=vital-signs");
        let not_vital = count(&repository, "Observation", "category:not=vital-signs");
        assert_eq!(vital + not_vital, observations);
        assert!(vital > 0);
        // A chain and its reverse agree.
        let men = count(&repository, "Observation", "subject:Patient.gender=male");
        let mut of_men = 0;
        for page in [bundle(&repository, SearchScope::Type("Patient".into()), "gender=male&_count=100")] {
            for entry in page["entry"].as_array().unwrap() {
                let id = entry["resource"]["id"].as_str().unwrap();
                of_men += count(&repository, "Observation", &format!("subject=Patient/{id}"));
            }
        }
        assert_eq!(men, of_men);
        let with_heights = count(&repository, "Patient", "_has:Observation:patient:code=8302-2");
        assert!(with_heights >= 1);
        // Quantities compare in canonical units: 0.07 kg is 70 g.
        let heavy_kg = count(&repository, "Observation", "value-quantity=gt50|http://unitsofmeasure.org|kg");
        let heavy_g = count(&repository, "Observation", "value-quantity=gt50000|http://unitsofmeasure.org|g");
        assert_eq!(heavy_kg, heavy_g);
        assert!(heavy_kg > 0);
    }

    fn includes_sort_summary_and_elements_shape_the_bundle(store) {
        let repository = repository(store);
        load(&repository);
        let page = bundle(&repository, SearchScope::Type("Encounter".into()), "_include=Encounter:subject&_count=5&_sort=-date");
        let entries = page["entry"].as_array().unwrap();
        let modes: Vec<&str> = entries.iter().map(|e| e["search"]["mode"].as_str().unwrap()).collect();
        assert_eq!(modes.iter().filter(|m| **m == "match").count(), 5);
        assert!(modes.contains(&"include"));
        assert!(entries.iter().filter(|e| e["search"]["mode"] == "include").all(|e| e["resource"]["resourceType"] == "Patient"));
        let starts: Vec<&str> = entries
            .iter()
            .filter(|e| e["search"]["mode"] == "match")
            .map(|e| e["resource"]["period"]["start"].as_str().unwrap())
            .collect();
        let mut sorted = starts.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(starts, sorted, "newest first");

        let counted = bundle(&repository, SearchScope::Type("Patient".into()), "_summary=count");
        assert_eq!(counted["total"], json!(3));
        assert!(counted.get("entry").is_none());
        let summary = bundle(&repository, SearchScope::Type("Patient".into()), "_summary=true&_count=1");
        let patient = &summary["entry"][0]["resource"];
        assert!(patient.get("text").is_none() && patient.get("extension").is_none());
        assert!(patient.get("birthDate").is_some());
        assert!(patient["meta"]["tag"].as_array().unwrap().iter().any(|t| t["code"] == "SUBSETTED"));
        let elements = bundle(&repository, SearchScope::Type("Patient".into()), "_elements=gender&_count=1");
        let keys: Vec<&str> = elements["entry"][0]["resource"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["resourceType", "id", "meta", "gender"]);
    }

    fn system_compartment_and_everything(store) {
        let repository = repository(store);
        load(&repository);
        let system = bundle(&repository, SearchScope::System, "_type=Patient,Practitioner&_count=1000");
        let types: std::collections::BTreeSet<&str> =
            system["entry"].as_array().unwrap().iter().map(|e| e["resource"]["resourceType"].as_str().unwrap()).collect();
        assert_eq!(types.into_iter().collect::<Vec<_>>(), ["Patient", "Practitioner"]);
        let patients = bundle(&repository, SearchScope::Type("Patient".into()), "_count=3");
        let id = patients["entry"][0]["resource"]["id"].as_str().unwrap().to_owned();
        let in_compartment = bundle(
            &repository,
            SearchScope::Compartment { compartment: "Patient".into(), id: id.clone(), resource_type: "Observation".into() },
            "_count=1000",
        );
        let compartment_count = in_compartment["entry"].as_array().map_or(0, Vec::len);
        assert_eq!(compartment_count, count(&repository, "Observation", &format!("subject=Patient/{id}")));

        let everything = json(&repository.everything(&ctx(), BASE, &id, &[]).unwrap());
        let entries = everything["entry"].as_array().unwrap();
        let matches: Vec<&Value> = entries.iter().filter(|e| e["search"]["mode"] == "match").collect();
        assert!(matches.iter().any(|e| e["resource"]["resourceType"] == "Patient" && e["resource"]["id"] == json!(id)));
        assert!(matches.iter().filter(|e| e["resource"]["resourceType"] == "Observation").count() == compartment_count);
        for other in &patients["entry"].as_array().unwrap()[1..] {
            let other_id = &other["resource"]["id"];
            assert!(!matches.iter().any(|e| e["resource"]["id"] == *other_id), "another patient leaked in");
        }
        assert!(
            entries.iter().any(|e| e["search"]["mode"] == "include" && e["resource"]["resourceType"] == "Practitioner"),
            "the practitioners the record points at are included"
        );
        let only_encounters = json(&repository.everything(&ctx(), BASE, &id, &criteria(&[("_type", "Encounter")])).unwrap());
        let matched: Vec<&Value> =
            only_encounters["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "match").collect();
        assert_eq!(matched.len(), count(&repository, "Encounter", &format!("patient={id}")));
        assert!(matched.iter().all(|e| e["resource"]["resourceType"] == "Encounter"));
        assert_eq!(repository.everything(&ctx(), BASE, "nobody", &[]).unwrap_err().http_status(), 404);

        // Who looked at the record is not part of it: the audit trail stays out of $everything.
        repository.create(&ctx(), json!({"resourceType": "AuditEvent",
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
            "recorded": "2026-12-02T10:00:00Z", "agent": [{"requestor": true, "who": {"display": "a clinician"}}],
            "source": {"observer": {"display": "Meridian"}},
            "entity": [{"what": {"reference": format!("Patient/{id}")}}]}), None).unwrap();
        assert_eq!(count(&repository, "AuditEvent", &format!("patient={id}")), 1);
        let everything = json(&repository.everything(&ctx(), BASE, &id, &[]).unwrap());
        assert!(!everything["entry"].as_array().unwrap().iter().any(|e| e["resource"]["resourceType"] == "AuditEvent"));
    }

    fn malformed_searches_name_the_parameter(store) {
        let repository = repository(store);
        for (resource_type, query, param) in [
            ("Observation", "date=2020-13-45", "date"),
            ("Observation", "date=xx2020", "date"),
            ("Patient", "name:sounds-like=x", "name:sounds-like"),
            ("Observation", "_sort=nonsense", "_sort"),
            ("Observation", "_count=many", "_count"),
            ("Observation", "_include=Nope:subject", "_include"),
            ("Observation", "subject:Patient.nope=x", "subject:Patient.nope"),
            ("Patient", "_has:Observation:nope:code=x", "_has:Observation:nope:code"),
            ("Observation", "value-quantity=abc", "value-quantity"),
            ("Observation", "code-value-quantity=abc", "code-value-quantity"),
            ("Observation", "_cursor=garbage", "_cursor"),
            // Well-formed cursors of a walk this search does not take (the store refuses them).
            ("Patient", "name=sm&_cursor=1~w3~ssmith", "_cursor"),
            ("Patient", "name=sm&_cursor=1~w0~i17", "_cursor"),
            ("Observation", "date=ge2020&_cursor=1~w0~ssmith", "_cursor"),
            ("Observation", "no-such-parameter=1", "no-such-parameter"),
        ] {
            let request = SearchRequest {
                scope: SearchScope::Type(resource_type.into()),
                params: repository::parse_query(query),
                handling: Handling::Strict,
            };
            let error = repository.search(&ctx(), BASE, &request).unwrap_err();
            assert_eq!(error.http_status(), 400, "{query}");
            let issues = error.issues("r");
            assert_eq!(issues[0].expression.as_deref(), Some(param), "{query}: {issues:?}");
        }
    }

    fn combined_parameters_match_what_either_part_matches(store) {
        // `combo-` parameters have no rows of their own: they are searched through their two
        // parts. Checked against the sample's files read directly, and against the parts.
        let repository = repository(store);
        load(&repository);
        let sent = sent_observations();
        let stored = matches(&repository, "Observation", "");
        assert_eq!(stored.len(), sent.len());

        let systolic = |o: &Value| own_and_components(o).iter().any(|part| has_loinc(part, "8480-6"));
        let expected = sent.iter().filter(|o| systolic(o)).count();
        assert!(expected > 5, "{expected}");
        let found = matches(&repository, "Observation", "combo-code=http://loinc.org|8480-6");
        assert_eq!(found.len(), expected);
        assert!(found.iter().all(systolic));
        // The blood-pressure panels have it in a component; a panel's code is another.
        assert!(found.iter().any(|o| !has_loinc(o, "8480-6")));
        assert_eq!(count(&repository, "Observation", "combo-code:not=8480-6"), sent.len() - expected);

        let no_concept = |o: &&Value| own_and_components(o).iter().all(|part| part.get("valueCodeableConcept").is_none());
        assert_eq!(
            count(&repository, "Observation", "combo-value-concept:missing=true"),
            sent.iter().filter(no_concept).count()
        );
        assert_eq!(
            count(&repository, "Observation", "combo-value-concept:missing=false"),
            sent.iter().filter(|o| !no_concept(o)).count()
        );

        for (combined, parts) in [
            ("combo-code:text=systolic", ["code:text=systolic", "component-code:text=systolic"]),
            (
                "combo-value-quantity=gt100|http://unitsofmeasure.org|mm[Hg]",
                ["value-quantity=gt100|http://unitsofmeasure.org|mm[Hg]", "component-value-quantity=gt100|http://unitsofmeasure.org|mm[Hg]"],
            ),
            (
                "combo-code-value-quantity=http://loinc.org|8480-6$gt100",
                ["code-value-quantity=http://loinc.org|8480-6$gt100", "component-code-value-quantity=http://loinc.org|8480-6$gt100"],
            ),
        ] {
            let union: std::collections::BTreeSet<String> =
                parts.iter().flat_map(|part| ids(&matches(&repository, "Observation", part))).collect();
            assert!(!union.is_empty(), "{combined}");
            assert_eq!(ids(&matches(&repository, "Observation", combined)), union, "{combined}");
        }

        // Sorted by the smallest value of either part.
        let sorted = bundle(&repository, SearchScope::Type("Observation".into()),
            "combo-code=8480-6,29463-7&_sort=combo-value-quantity&_count=1000");
        let smallest: Vec<f64> = sorted["entry"].as_array().unwrap().iter()
            .map(|e| own_and_components(&e["resource"]).iter()
                .filter_map(|part| part["valueQuantity"]["value"].as_f64())
                .fold(f64::INFINITY, f64::min))
            .collect();
        assert!(smallest.len() > expected, "{}", smallest.len());
        assert!(smallest.windows(2).all(|w| w[0] <= w[1]), "{smallest:?}");
    }
}
