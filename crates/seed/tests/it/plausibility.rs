//! The region looks like a Chinese county's: its people, their names, their diseases, their
//! readings, and how care moves between levels. Bounds are wide: they catch a broken table
//! or a swapped sign, not a rate off by a point.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::support;

fn share(part: usize, whole: usize) -> f64 {
    part as f64 / whole as f64
}

fn age(patient: &Value) -> i32 {
    let birth: i32 = patient["birthDate"].as_str().unwrap()[..4].parse().unwrap();
    2026 - birth
}

#[test]
fn age_sex_and_chronic_disease_follow_the_population() {
    let resources = support::all(4_000, 5);
    let patients: Vec<&Value> = support::of_type(&resources, "Patient").collect();
    let men = patients.iter().filter(|p| p["gender"] == "male").count();
    assert!(
        (0.48..0.55).contains(&share(men, patients.len())),
        "{men} men"
    );
    let old = patients.iter().filter(|p| age(p) >= 65).count();
    assert!(
        (0.10..0.19).contains(&share(old, patients.len())),
        "{old} aged 65+"
    );
    let children = patients.iter().filter(|p| age(p) < 15).count();
    assert!(
        (0.14..0.23).contains(&share(children, patients.len())),
        "{children} children"
    );
    let adults = patients.iter().filter(|p| age(p) >= 18).count();

    let diagnosed = |icd10: &str| {
        support::of_type(&resources, "Condition")
            .filter(|c| c["code"]["coding"][1]["code"] == icd10)
            .count()
    };
    let hypertension = share(diagnosed("I10"), adults);
    let diabetes = share(diagnosed("E11.9"), adults);
    assert!(
        (0.07..0.17).contains(&hypertension),
        "hypertension {hypertension}"
    );
    assert!((0.025..0.08).contains(&diabetes), "diabetes {diabetes}");
}

#[test]
fn names_are_chinese_with_pinyin_and_common_surnames_lead() {
    let resources = support::all(4_000, 6);
    let mut surnames: HashMap<String, usize> = HashMap::new();
    let mut two_character = 0;
    let mut one_character = 0;
    for patient in support::of_type(&resources, "Patient") {
        let chinese = &patient["name"][0];
        let pinyin = &patient["name"][1];
        assert_eq!(chinese["extension"][0]["valueCode"], "IDE");
        assert_eq!(pinyin["extension"][0]["valueCode"], "ABC");
        let family = chinese["family"].as_str().unwrap();
        let given = chinese["given"][0].as_str().unwrap();
        assert_eq!(chinese["text"], format!("{family}{given}"));
        let (family_pinyin, given_pinyin) = (
            pinyin["family"].as_str().unwrap(),
            pinyin["given"][0].as_str().unwrap(),
        );
        assert_eq!(pinyin["text"], format!("{family_pinyin} {given_pinyin}"));
        assert!(pinyin["text"].as_str().unwrap().is_ascii());
        // Every character is one pinyin syllable, and every syllable has one vowel group
        // (y and w count as consonants; apostrophes would mark an ambiguous boundary).
        for (characters, latin) in [(family, family_pinyin), (given, given_pinyin)] {
            assert_eq!(
                characters.chars().count(),
                vowel_groups(latin),
                "{characters} / {latin}"
            );
        }
        match given.chars().count() {
            1 => one_character += 1,
            2 => two_character += 1,
            n => panic!("a given name of {n} characters"),
        }
        *surnames.entry(family.to_owned()).or_default() += 1;
    }
    let mut ranked: Vec<_> = surnames.into_iter().collect();
    ranked.sort_by_key(|&(_, count)| std::cmp::Reverse(count));
    for (surname, _) in &ranked[..3] {
        assert!(
            ["王", "李", "张", "刘"].contains(&surname.as_str()),
            "{ranked:?}"
        );
    }
    let two = share(two_character, two_character + one_character);
    assert!(
        (0.6..0.95).contains(&two),
        "two-character given names: {two}"
    );
}

fn vowel_groups(latin: &str) -> usize {
    let mut groups = 0;
    let mut in_vowels = false;
    for c in latin.to_ascii_lowercase().chars() {
        let vowel = "aeiouü".contains(c);
        if vowel && !in_vowels {
            groups += 1;
        }
        in_vowels = vowel;
    }
    groups
}

#[test]
fn kiosk_readings_run_high_for_hypertensives_and_show_abnormal_values() {
    let resources = support::all(4_000, 7);
    let hypertensive: std::collections::HashSet<&str> = support::of_type(&resources, "Condition")
        .filter(|c| c["code"]["coding"][1]["code"] == "I10")
        .map(|c| c["subject"]["reference"].as_str().unwrap())
        .collect();
    let mut systolic: BTreeMap<bool, (f64, usize)> = BTreeMap::new();
    let mut flags: BTreeMap<String, usize> = BTreeMap::new();
    for observation in support::of_type(&resources, "Observation") {
        if observation["code"]["coding"][0]["code"] == "85354-9" {
            let value = observation["component"][0]["valueQuantity"]["value"]
                .as_f64()
                .unwrap();
            let subject = observation["subject"]["reference"].as_str().unwrap();
            let entry = systolic.entry(hypertensive.contains(subject)).or_default();
            entry.0 += value;
            entry.1 += 1;
            if observation.get("device").is_some() {
                assert_eq!(observation["performer"][0]["reference"], subject);
            }
        }
        if let Some(flag) = observation["interpretation"][0]["coding"][0]["code"].as_str() {
            *flags.entry(flag.to_owned()).or_default() += 1;
        }
    }
    let mean = |key| systolic[&key].0 / systolic[&key].1 as f64;
    assert!(
        mean(true) > mean(false) + 10.0,
        "systolic {} with hypertension, {} without",
        mean(true),
        mean(false)
    );
    for flag in ["N", "H", "L", "HH"] {
        assert!(
            flags.get(flag).is_some_and(|&n| n > 0),
            "no {flag} readings: {flags:?}"
        );
    }
    assert!(flags["N"] > flags["H"] / 2, "{flags:?}");
}

/// The level of an institution from its id: village 0 ... province 4.
fn level(reference: &str) -> u8 {
    let id = reference.split('/').nth(1).unwrap();
    match id.split('-').next().unwrap() {
        "vc" => 0,
        "thc" => 1,
        "county" => 2,
        "city" => 3,
        "prov" => 4,
        other => panic!("unknown institution {other}"),
    }
}

#[test]
fn referrals_go_up_and_come_back_down_and_admissions_are_in_hospitals() {
    let resources = support::all(6_000, 8);
    let providers: HashMap<String, &str> = support::of_type(&resources, "Encounter")
        .map(|e| {
            (
                format!("Encounter/{}", e["id"].as_str().unwrap()),
                e["serviceProvider"]["reference"].as_str().unwrap(),
            )
        })
        .collect();
    let mut directions: BTreeMap<String, usize> = BTreeMap::new();
    for request in support::of_type(&resources, "ServiceRequest") {
        let Some(direction) = request["category"][1]["coding"][0]["code"].as_str() else {
            continue;
        };
        let from = level(providers[request["encounter"]["reference"].as_str().unwrap()]);
        let to = level(request["performer"][0]["reference"].as_str().unwrap());
        match direction {
            "upward" => assert!(to > from, "upward from {from} to {to}"),
            "downward" => assert!(to < from, "downward from {from} to {to}"),
            other => panic!("direction {other}"),
        }
        *directions.entry(direction.to_owned()).or_default() += 1;
    }
    assert!(
        directions.get("upward").is_some_and(|&n| n >= 10),
        "{directions:?}"
    );
    assert!(
        directions.get("downward").is_some_and(|&n| n >= 10),
        "{directions:?}"
    );
    for encounter in support::of_type(&resources, "Encounter") {
        if encounter["class"]["code"] == "IMP" {
            assert!(level(encounter["serviceProvider"]["reference"].as_str().unwrap()) >= 2);
        }
    }
    let studies = support::of_type(&resources, "ImagingStudy").count();
    assert!(studies > 20, "{studies} imaging studies");
}
