//! Parsing searches into the intermediate form: what a parameter means, checked on the filters
//! it becomes. Each test here is named after a behaviour that once was wrong.

use std::sync::OnceLock;

use search::keys::ParamKey;
use search::query::{
    Bound, CompositeTest, Filter, IndexTable, QuantityUnits, ReferenceTarget, TokenColumn,
};
use search::{Handling, ParsedSearch, Registry, SearchTarget, parse_search};

const BASE: &str = "http://example.org/fhir";

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::r4(fhir_model::r4()))
}

fn parse(resource_type: &str, params: &[(&str, &str)]) -> ParsedSearch {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    parse_search(
        registry(),
        Some(BASE),
        SearchTarget::Type(resource_type),
        &params,
        Handling::Strict,
    )
    .unwrap()
}

#[test]
fn an_empty_parameter_is_ignored_not_an_error() {
    // search.html 3.1.1.3: "Empty parameters are not an error - they are just ignored".
    let parsed = parse(
        "Patient",
        &[("name", ""), ("gender", "female"), ("_id", "")],
    );
    assert_eq!(parsed.query.filters.len(), 1);
    assert!(matches!(parsed.query.filters[0], Filter::Token { .. }));
    assert_eq!(parsed.applied, [("gender".to_owned(), "female".to_owned())]);
}

#[test]
fn a_reference_by_an_absolute_url_under_the_base_finds_the_relative_reference() {
    // search.html 3.1.1.4.12: with base http://example.org/fhir, subject=Patient/123 and
    // subject=http://example.org/fhir/Patient/123 both match either form of the reference.
    let parsed = parse(
        "Observation",
        &[("subject", "http://example.org/fhir/Patient/123")],
    );
    let Filter::AnyOf(forms) = &parsed.query.filters[0] else {
        panic!("{:?}", parsed.query.filters);
    };
    assert!(forms.iter().any(|f| matches!(f,
        Filter::Reference { target: ReferenceTarget::Local { types, id }, .. }
            if **id == *"123" && types.iter().map(|t| &**t).eq(["Patient"]))));
    assert!(forms.iter().any(|f| matches!(f,
        Filter::Reference { target: ReferenceTarget::Url { url, .. }, .. }
            if **url == *"http://example.org/fhir/Patient/123")));
    let elsewhere = parse(
        "Observation",
        &[("subject", "http://elsewhere.org/fhir/Patient/123")],
    );
    assert!(matches!(
        &elsewhere.query.filters[0],
        Filter::Reference {
            target: ReferenceTarget::Url { .. },
            ..
        }
    ));
}

#[test]
fn missing_counts_a_logical_reference_as_a_value() {
    // PractitionerRole.practitioner = {"identifier": {...}} has a value, though no literal
    // reference: the identifier is indexed under the derived `:identifier` key, which
    // `:missing` must look at too.
    let logical = ParamKey::derived("PractitionerRole", "practitioner", "identifier");
    let literal = ParamKey::new("PractitionerRole", "practitioner");
    let is_missing = |filter: &Filter, key: ParamKey, table: IndexTable, value: bool| {
        matches!(filter, Filter::Missing { param, table: t, missing }
            if *param == key && *t == table && *missing == value)
    };
    let present = parse("PractitionerRole", &[("practitioner:missing", "false")]);
    let Filter::AnyOf(either) = &present.query.filters[0] else {
        panic!("{:?}", present.query.filters);
    };
    assert!(
        either
            .iter()
            .any(|f| is_missing(f, literal, IndexTable::Reference, false))
    );
    assert!(
        either
            .iter()
            .any(|f| is_missing(f, logical, IndexTable::Token, false))
    );
    let absent = parse("PractitionerRole", &[("practitioner:missing", "true")]);
    let Filter::AllOf(both) = &absent.query.filters[0] else {
        panic!("{:?}", absent.query.filters);
    };
    assert!(
        both.iter()
            .any(|f| is_missing(f, literal, IndexTable::Reference, true))
    );
    assert!(
        both.iter()
            .any(|f| is_missing(f, logical, IndexTable::Token, true))
    );
}

#[test]
fn missing_is_accepted_on_id_and_last_updated() {
    // search.html 3.1.1.4.4 defines `:missing` "for all parameters". Every resource has an
    // id and a lastUpdated: `true` finds nothing (an empty OR), `false` everything (an empty
    // AND).
    for name in ["_id:missing", "_lastUpdated:missing"] {
        let none = parse("Patient", &[(name, "true")]);
        assert!(
            matches!(&none.query.filters[0], Filter::AnyOf(f) if f.is_empty()),
            "{name}"
        );
        let all = parse("Patient", &[(name, "false")]);
        assert!(
            matches!(&all.query.filters[0], Filter::AllOf(f) if f.is_empty()),
            "{name}"
        );
    }
}

#[test]
fn composite_quantity_units_are_not_ignored() {
    // `$ge16|http://unitsofmeasure.org|kPa` is 16 kPa, about 120 mm[Hg]: it must not be
    // compared as 16 with a systolic pressure written in mm[Hg].
    let parsed = parse(
        "Observation",
        &[(
            "component-code-value-quantity",
            "http://loinc.org|8480-6$ge16|http://unitsofmeasure.org|kPa",
        )],
    );
    let key = ParamKey::new("Observation", "component-code-value-quantity");
    let Filter::AnyOf(alternatives) = &parsed.query.filters[0] else {
        panic!("{:?}", parsed.query.filters);
    };
    let unit_hash = |unit: &str| key.system_code_hash("http://unitsofmeasure.org", unit);
    let bound_in = |unit: &str| {
        alternatives.iter().find_map(|f| match f {
            Filter::Composite {
                second:
                    CompositeTest::Quantity {
                        unit: (TokenColumn::SystemCode, hash),
                        predicate,
                    },
                ..
            } if *hash == unit_hash(unit) => match predicate.any_of.as_slice() {
                [group] => match group.as_slice() {
                    [(_, _, Bound::Float(bound))] => Some(*bound),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
    };
    assert_eq!(bound_in("kPa"), Some(16.0));
    let in_mm_hg = bound_in("mm[Hg]").expect("the same amount in mm[Hg]");
    assert!((in_mm_hg - 16_000.0 / 133.322).abs() < 1e-9);
    assert!(
        alternatives.iter().all(|f| !matches!(
            f,
            Filter::Composite {
                second: CompositeTest::Range(_),
                ..
            }
        )),
        "no test without a unit"
    );
}

#[test]
fn the_same_amount_in_another_unit_is_equal_not_an_ulp_apart() {
    // 146.42 mg/dL is 1.4642 g/L, and so is 1464.20 mg/L; in f64, 146.42 * 0.01 and
    // 1464.2 * 0.001 differ in the last bit, and `lt1464.20|...|mg/L` found the 146.42 mg/dL.
    let indexer = search::Indexer::new(std::sync::Arc::new(Registry::r4(fhir_model::r4())));
    let observation = serde_json::json!({
        "resourceType": "Observation", "status": "final", "code": {"text": "glucose"},
        "valueQuantity": {"value": 146.42, "unit": "mg/dL",
                          "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    });
    let entries = indexer.extract("Observation", "o", &observation).unwrap();
    let key = ParamKey::new("Observation", "value-quantity");
    let indexed = entries.quantities.iter().find(|q| q.param == key).unwrap();
    let (_, canonical) = indexed.canonical.clone().unwrap();
    let parsed = parse(
        "Observation",
        &[("value-quantity", "lt1464.20|http://unitsofmeasure.org|mg/L")],
    );
    let Filter::Quantity { predicate, .. } = &parsed.query.filters[0] else {
        panic!("{:?}", parsed.query.filters);
    };
    let [(_, _, Bound::Float(bound))] = predicate.any_of[0].as_slice() else {
        panic!("{predicate:?}");
    };
    assert_eq!(canonical, *bound);
}

#[test]
fn a_unit_without_a_system_is_also_matched_as_written() {
    // `250||mg` must find {"value": 250, "unit": "mg"}, which has no system and so no
    // canonical value: the search compares canonical values and the unit as written.
    let parsed = parse("Observation", &[("value-quantity", "250||mg")]);
    let Filter::AnyOf(forms) = &parsed.query.filters[0] else {
        panic!("{:?}", parsed.query.filters);
    };
    assert!(forms.iter().any(|f| matches!(f,
        Filter::Quantity { units: QuantityUnits::Canonical(unit), .. } if **unit == *"g")));
    assert!(forms.iter().any(|f| matches!(f,
        Filter::Quantity { units: QuantityUnits::SystemCode(None, code), .. } if **code == *"mg")));
    let with_system = parse(
        "Observation",
        &[("value-quantity", "250|http://unitsofmeasure.org|mg")],
    );
    assert!(matches!(
        &with_system.query.filters[0],
        Filter::Quantity {
            units: QuantityUnits::Canonical(_),
            ..
        }
    ));
}

#[test]
fn conditional_criteria_that_share_an_equality_share_a_lock() {
    // Regression: concurrent conditional creates with one identifier each found nothing and
    // each created a Patient on PostgreSQL. They now lock the criteria's equalities first.
    let locks = |params: &[(&str, &str)]| parse("Patient", params).query.criteria_locks();
    let one = locks(&[("identifier", "urn:mrn|7")]);
    assert_eq!(one.len(), 1);
    // The same criteria in another order, or with more conditions, take the same lock.
    let more = locks(&[("birthdate", "2000-01-01"), ("identifier", "urn:mrn|7")]);
    assert_eq!(more, one);
    let with_name = locks(&[("identifier", "urn:mrn|7"), ("family", "Li")]);
    assert!(with_name.contains(&one[0]), "{with_name:?}");
    // A comma list locks every alternative.
    let either = locks(&[("identifier", "urn:mrn|6,urn:mrn|7")]);
    assert_eq!(either.len(), 2);
    assert!(either.contains(&one[0]));
    // Another identifier, or the same value on another type, is another lock.
    assert_ne!(locks(&[("identifier", "urn:mrn|8")]), one);
    assert_ne!(
        parse("Practitioner", &[("identifier", "urn:mrn|7")])
            .query
            .criteria_locks(),
        one
    );
    // Criteria with no equality lock the type as a whole.
    let by_date = locks(&[("birthdate", "ge2000")]);
    assert_eq!(by_date, locks(&[("family", "Li")]));
    assert_eq!(by_date.len(), 1);
    // The keys come sorted: the order a transaction takes them in.
    assert!(with_name.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_combined_parameter_is_searched_through_its_two_parts() {
    // `combo-code` is `Observation.code | Observation.component.code`: it has no rows of its
    // own (they would repeat `code`'s and `component-code`'s), so it matches either part.
    let key = |code: &str| ParamKey::new("Observation", code);
    let token_params = |filters: &[Filter]| -> Vec<ParamKey> {
        filters
            .iter()
            .map(|f| match f {
                Filter::Token { param, .. } => *param,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let parsed = parse("Observation", &[("combo-code", "http://loinc.org|8480-6")]);
    let Filter::AnyOf(parts) = &parsed.query.filters[0] else {
        panic!("{:?}", parsed.query.filters);
    };
    assert_eq!(token_params(parts), [key("code"), key("component-code")]);
    assert!(parts.iter().any(
        |f| matches!(f, Filter::Token { column: TokenColumn::SystemCode, hash, .. }
        if *hash == key("component-code").system_code_hash("http://loinc.org", "8480-6"))
    ));

    // `:not`: neither part has the code (not "one part lacks it").
    let parsed = parse("Observation", &[("combo-code:not", "8480-6")]);
    let Filter::Not(inner) = &parsed.query.filters[0] else {
        panic!("{:?}", parsed.query.filters);
    };
    let Filter::AnyOf(parts) = &**inner else {
        panic!("{inner:?}");
    };
    assert_eq!(token_params(parts), [key("code"), key("component-code")]);

    // `:missing=true`: both parts missing; `false`: either present.
    for (value, both) in [("true", true), ("false", false)] {
        let parsed = parse("Observation", &[("combo-value-quantity:missing", value)]);
        let parts = match (&parsed.query.filters[0], both) {
            (Filter::AllOf(parts), true) | (Filter::AnyOf(parts), false) => parts,
            (other, _) => panic!("{value}: {other:?}"),
        };
        let params: Vec<ParamKey> = parts
            .iter()
            .map(|f| match f {
                Filter::Missing {
                    param,
                    table: IndexTable::Quantity,
                    missing,
                } if *missing == both => *param,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            params,
            [key("value-quantity"), key("component-value-quantity")]
        );
    }

    // A composite: each part's composite rows, under its own key.
    let parsed = parse(
        "Observation",
        &[("combo-code-value-quantity", "8480-6$gt140")],
    );
    let Filter::AnyOf(parts) = &parsed.query.filters[0] else {
        panic!("{:?}", parsed.query.filters);
    };
    let params: Vec<ParamKey> = parts
        .iter()
        .map(|f| match f {
            Filter::Composite { param, .. } => *param,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        params,
        [
            key("code-value-quantity"),
            key("component-code-value-quantity")
        ]
    );

    // Sorting on one sorts on the smallest value of either part's rows.
    let parsed = parse("Observation", &[("_sort", "combo-value-quantity")]);
    assert!(matches!(&parsed.query.sort[0].by,
        search::query::SortBy::Param { params, table: IndexTable::Quantity }
            if *params == [key("value-quantity"), key("component-value-quantity")]));

    // A modifier a part refuses is refused as before.
    let error = parse_search(
        registry(),
        Some(BASE),
        SearchTarget::Type("Observation"),
        &[("combo-value-quantity:not".to_owned(), "5".to_owned())],
        Handling::Strict,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("':not' is not supported"),
        "{error}"
    );
}
