use imaging::qido::{Level, Query, matches, tag_of};
use serde_json::{Map, Value, json};

fn attributes() -> Map<String, Value> {
    let value = json!({
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小东"}]},
        "00100020": {"vr": "LO", "Value": ["X2EXAMPLE"]},
        "00080020": {"vr": "DA", "Value": ["20130125"]},
        "00080030": {"vr": "TM", "Value": ["101530.25"]},
        "00080061": {"vr": "CS", "Value": ["CT", "SR"]},
        "0020000D": {"vr": "UI", "Value": ["1.2.3.4"]},
        "00080050": {"vr": "SH"},
    });
    value.as_object().unwrap().clone()
}

#[test]
fn the_matching_rules_of_ps3_4() {
    let a = attributes();
    let yes = |tag: &str, value: &str| assert!(matches(&a, tag, value, false), "{tag}={value}");
    let no = |tag: &str, value: &str| assert!(!matches(&a, tag, value, false), "{tag}={value}");
    // Single values and wildcards.
    yes("00100020", "X2EXAMPLE");
    no("00100020", "X2EXAMPL");
    yes("00100020", "X2*");
    yes("00100020", "X?EXAMPLE");
    no("00100020", "x2example");
    // Universal matching.
    yes("00100020", "");
    // UID lists, by comma or backslash.
    yes("0020000D", "9.9,1.2.3.4");
    yes("0020000D", "9.9\\1.2.3.4");
    no("0020000D", "1.2.3");
    // Date and time ranges.
    yes("00080020", "20130101-20131231");
    yes("00080020", "-20130125");
    yes("00080020", "20130125-");
    no("00080020", "20130126-");
    yes("00080030", "1000-1100");
    no("00080030", "1100-");
    // Multi-valued attributes match by any value.
    yes("00080061", "SR");
    no("00080061", "MR");
    // An empty attribute matches no value.
    no("00080050", "A1");
    // Person names, case-insensitively, in any group, with wildcards.
    yes("00100010", "wang^xiaodong");
    yes("00100010", "WANG*");
    yes("00100010", "王*");
    yes("00100010", "王^小东");
    no("00100010", "Xiao*");
}

#[test]
fn fuzzy_matching_finds_a_name_by_any_component_beginning() {
    let a = attributes();
    assert!(matches(&a, "00100010", "xiao", true));
    assert!(matches(&a, "00100010", "xiaodong wang", true));
    assert!(matches(&a, "00100010", "小东", true));
    assert!(!matches(&a, "00100010", "li", true));
}

#[test]
fn keys_are_tags_or_keywords_and_unknown_ones_are_refused() {
    assert_eq!(tag_of("PatientName").as_deref(), Some("00100010"));
    assert_eq!(tag_of("0020000d").as_deref(), Some("0020000D"));
    assert_eq!(tag_of("NoSuchKeyword"), None);
    let params = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let query = Query::parse(
        Level::Study,
        None,
        None,
        &params(&[
            ("PatientID", "X*"),
            ("includefield", "00081030,StudyDescription"),
            ("limit", "5"),
        ]),
    )
    .unwrap();
    assert_eq!(query.keys, vec![("00100020".to_owned(), "X*".to_owned())]);
    assert_eq!(query.include, vec!["00081030", "00081030"]);
    assert_eq!(query.limit, 5);
    for bad in [
        params(&[("NoSuchKeyword", "1")]),
        params(&[("limit", "-1")]),
        params(&[("includefield", "Nope")]),
        params(&[("00081032.00080100", "1")]),
    ] {
        assert!(
            Query::parse(Level::Study, None, None, &bad).is_err(),
            "{bad:?}"
        );
    }
}
