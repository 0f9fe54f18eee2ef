//! The model: symmetric scores, EM that finds the matches in generated data without labels,
//! the conflicting-evidence rules, and the in-memory index.

use residents::compare::{Comparison, FIELD_COUNT, Field, compare};
use residents::em::{
    PatternCounts, comparison_space, estimate_m, estimate_u, estimate_u_among_non_matches,
};
use residents::index::{Index, clusters};
use residents::model::{Conflict, Decision, Matcher, Model, TermFrequencies, Thresholds};
use residents::record::{IdentifierSystems, Record};
use residents::synthetic::{Generator, NATIONAL_ID_SYSTEM, Rng};
use serde_json::json;

/// Generated registrations: (records, the resident each belongs to).
fn generated(residents: u32, seed: u64) -> (Vec<Record>, Vec<u32>) {
    let mut generator = Generator::new(seed);
    let systems = IdentifierSystems::default();
    let mut records = Vec::new();
    let mut owners = Vec::new();
    for number in 0..residents {
        let resident = generator.resident(number);
        let copies = 1 + generator.rng().below(3) as u32;
        for copy in 0..copies {
            records.push(Record::from_fhir(
                &generator.registration(&resident, copy, copy == 0),
                &systems,
            ));
            owners.push(number);
        }
    }
    (records, owners)
}

#[test]
fn scores_are_symmetric() {
    let (records, _) = generated(300, 1);
    let matcher = Matcher::new(Model::starting_point(), None, Thresholds::default());
    let mut rng = Rng::new(2);
    for _ in 0..2_000 {
        let a = &records[rng.below(records.len() as u64) as usize];
        let b = &records[rng.below(records.len() as u64) as usize];
        let (ab, ba) = (matcher.score(a, b), matcher.score(b, a));
        assert_eq!(ab.comparison.levels, ba.comparison.levels);
        assert!((ab.weight - ba.weight).abs() < 1e-9, "{a:?}\n{b:?}");
    }
}

#[test]
fn em_without_labels_links_generated_registrations_accurately() {
    let (records, owners) = generated(1_500, 3);
    let index = Index::build(records, 2);
    let mut rng = Rng::new(4);
    let mut random = PatternCounts::default();
    let n = index.len() as u64;
    for _ in 0..50_000 {
        let (a, b) = (rng.below(n) as u32, rng.below(n) as u32);
        if a != b {
            random.add(&compare(index.record(a), index.record(b)));
        }
    }
    let mut blocked = PatternCounts::default();
    for pattern in index.for_each_pair(2, |_, _, a, b| Some(compare(a, b).pattern())) {
        blocked.add_pattern(pattern, 1.0);
    }
    let mut start = Model::starting_point();
    start.u = estimate_u(&random);
    start.prior = 1.0 / n as f64;
    start.refresh();
    let estimate = estimate_m(
        &start,
        &comparison_space(&blocked, &random, index.len()),
        200,
    );
    assert!(estimate.converged, "EM converges");
    let frequencies =
        TermFrequencies::from_records((0..index.len() as u32).map(|i| index.record(i)));
    let matcher = Matcher::new(estimate.model, Some(frequencies), Thresholds::default());
    let links: Vec<(u32, u32)> = index
        .link_pairs(&matcher, 2)
        .into_iter()
        .filter(|(_, _, d, _)| *d == Decision::AutoLink)
        .map(|(a, b, _, _)| (a, b))
        .collect();
    let wrong = links
        .iter()
        .filter(|(a, b)| owners[*a as usize] != owners[*b as usize])
        .count();
    let cluster = clusters(index.len(), links.iter().copied());
    let true_pairs: usize = {
        let mut count = std::collections::HashMap::<u32, usize>::new();
        for o in &owners {
            *count.entry(*o).or_default() += 1;
        }
        count.values().map(|c| c * (c - 1) / 2).sum()
    };
    let mut found = 0;
    for i in 0..owners.len() {
        for j in 0..i {
            if owners[i] == owners[j] && cluster[i] == cluster[j] {
                found += 1;
            }
        }
    }
    let precision = 1.0 - wrong as f64 / links.len().max(1) as f64;
    let recall = found as f64 / true_pairs as f64;
    assert!(precision >= 0.99, "precision {precision}");
    assert!(recall >= 0.95, "recall {recall}");
}

fn from(patient: serde_json::Value) -> Record {
    Record::from_fhir(&patient, &IdentifierSystems::default())
}

#[test]
fn the_same_id_number_with_other_demographics_goes_to_review_never_to_a_link() {
    let matcher = Matcher::new(Model::starting_point(), None, Thresholds::default());
    let a = from(
        json!({"name": [{"family": "张", "given": ["伟"]}], "gender": "male", "birthDate": "1980-02-11",
        "identifier": [{"system": NATIONAL_ID_SYSTEM, "value": "11010519491231002X"}]}),
    );
    let b = from(
        json!({"name": [{"family": "欧阳", "given": ["娜娜"]}], "gender": "female", "birthDate": "1992-07-30",
        "identifier": [{"system": NATIONAL_ID_SYSTEM, "value": "11010519491231002X"}]}),
    );
    let verdict = matcher.decide(&a, &b);
    assert_eq!(verdict.decision, Decision::Review, "{verdict:?}");
    assert!(verdict.conflicts.contains(&Conflict::SameIdDifferentName));
}

#[test]
fn two_different_valid_id_numbers_are_never_linked_automatically() {
    let matcher = Matcher::new(Model::starting_point(), None, Thresholds::default());
    let twin = |id: &str| {
        from(
            json!({"name": [{"family": "张", "given": ["伟"]}], "gender": "male", "birthDate": "1949-12-31",
        "telecom": [{"system": "phone", "value": "13800138000"}],
        "identifier": [{"system": NATIONAL_ID_SYSTEM, "value": id}]}),
        )
    };
    // 11010519491231002X and 110105194912310037: both with right check characters.
    let second = format!("1101051949123100{}", "3");
    let check = residents::gb11643::check_character(&second).unwrap();
    let verdict = matcher.decide(
        &twin("11010519491231002X"),
        &twin(&format!("{second}{check}")),
    );
    assert_ne!(verdict.decision, Decision::AutoLink);
    assert!(verdict.conflicts.contains(&Conflict::DifferentValidIds));
}

#[test]
fn relatives_at_one_address_are_a_review_whatever_the_model_weighs_the_address() {
    // A model that takes one street as settling it, as one learned from FEBRL (no households)
    // does: the pair would be linked without the rule.
    let mut model = Model::starting_point();
    for f in [Field::Street, Field::Locality, Field::Postcode] {
        model.m[f as usize][1] = 0.95;
        model.u[f as usize][1] = 1e-5;
    }
    model.refresh();
    let matcher = Matcher::new(model, None, Thresholds::default());
    let at_home = |given: &str, birth: Option<&str>, card: Option<&str>| {
        let mut patient = json!({"name": [{"family": "menzies", "given": [given]}],
            "address": [{"line": ["21 woralul street"], "city": "orford", "postalCode": "2615"}]});
        if let Some(birth) = birth {
            patient["birthDate"] = json!(birth);
        }
        if let Some(card) = card {
            patient["identifier"] =
                json!([{"system": "urn:oid:2.16.156.10011.1.15", "value": card}]);
        }
        from(patient)
    };
    let relatives = [
        (at_home("kirra", None, None), at_home("bronson", None, None)),
        (
            at_home("kirra", Some("1994-09-15"), None),
            at_home("bronson", Some("1961-02-03"), None),
        ),
    ];
    for (a, b) in &relatives {
        let verdict = matcher.decide(a, b);
        assert!(
            verdict
                .conflicts
                .contains(&Conflict::SameFamilyDifferentGiven),
            "{verdict:?}"
        );
        assert_eq!(verdict.decision, Decision::Review, "{verdict:?}");
    }
    // A given name replaced but the same birth date, or the same card: one person still.
    let same_birth = matcher.decide(
        &at_home("kirra", Some("1994-09-15"), None),
        &at_home("bronson", Some("1994-09-15"), None),
    );
    let same_card = matcher.decide(
        &at_home("kirra", None, Some("7364009")),
        &at_home("bronson", None, Some("7364009")),
    );
    for verdict in [same_birth, same_card] {
        assert!(verdict.conflicts.is_empty(), "{verdict:?}");
        assert_eq!(verdict.decision, Decision::AutoLink, "{verdict:?}");
    }
}

#[test]
fn homophones_and_romanised_names_still_link() {
    let matcher = Matcher::new(Model::starting_point(), None, Thresholds::default());
    let base = json!({"name": [{"family": "张", "given": ["伟"]}], "gender": "male", "birthDate": "1980-02-11",
        "telecom": [{"system": "phone", "value": "13800138000"}]});
    let mut homophone = base.clone();
    homophone["name"] = json!([{"family": "张", "given": ["玮"]}]);
    let mut romanised = base.clone();
    romanised["name"] = json!([{"family": "Wei", "given": ["Zhang"]}]);
    romanised["birthDate"] = json!("1980-11-02");
    for other in [homophone, romanised] {
        let verdict = matcher.decide(&from(base.clone()), &from(other.clone()));
        assert_eq!(verdict.decision, Decision::AutoLink, "{other} {verdict:?}");
    }
}

#[test]
fn u_leaves_out_the_matches_a_random_sample_holds() {
    // 100,000 random pairs that disagree on everything, and 50 true matches drawn with them
    // that agree on everything.
    let at = |level: fn(Field) -> u8| Comparison {
        levels: std::array::from_fn::<u8, FIELD_COUNT, _>(|f| level(Field::ALL[f])),
        names: None,
        swapped: false,
    };
    let mut random = PatternCounts::default();
    random.add_pattern(at(|f| f.levels() as u8).pattern(), 100_000.0);
    random.add_pattern(at(|_| 1).pattern(), 50.0);
    let mut model = Model::starting_point();
    model.prior = 1e-3;
    model.refresh();
    let same_id =
        |u: [[f64; residents::model::MAX_LEVELS]; FIELD_COUNT]| u[Field::OtherId as usize][1];
    let counted = same_id(estimate_u(&random));
    let corrected = same_id(estimate_u_among_non_matches(&random, &model));
    // One pseudo-count and the matches, against the pseudo-count alone.
    assert!((counted - 51.0 / 100_053.0).abs() < 1e-6, "{counted}");
    assert!(corrected < 1.1 / 100_053.0, "{corrected}");
}

#[test]
fn a_mistyped_street_still_finds_the_household() {
    let record = |given: &str, street: &str, locality: &str, postcode: &str, born: &str| {
        let mut r = Record::default();
        r.names.push(residents::record::Name::new("son", given));
        r.birth_dates.extend(residents::record::Date::parse(born));
        r.add_address(street, locality, postcode);
        r
    };
    // Given name, birth date, locality and postcode all differ: only the household is left.
    let filed = record(
        "bayden",
        "4290 warrambool close",
        "blacksone",
        "2848",
        "1928-10-12",
    );
    let index = Index::build(
        vec![
            filed,
            record(
                "bayden",
                "4291 warrambool close",
                "blacksone",
                "2848",
                "1928-10-12",
            ),
        ],
        1,
    );
    let query = record(
        "bayde",
        "4290 warramboolfclose",
        "blackstone",
        "2488",
        "1939-03-28",
    );
    assert_eq!(index.candidates(&query, u32::MAX), vec![0]);
}
