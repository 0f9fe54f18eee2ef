//! The primitive scanners against tables of valid and invalid values for every R4 primitive type,
//! and the time spans that dates stand for.

use fhir_model::primitives::{
    self, DatePrecision, DateRange, JsonKind, PartialDateTime, PrimitiveError, PrimitiveType,
    parse_date, parse_date_time, parse_instant, parse_time,
};
use serde_json::{Value, json};

/// For each type: values that must pass and values that must fail, as JSON (so that the JSON kind
/// is part of what is tested).
fn table() -> Vec<(PrimitiveType, Vec<Value>, Vec<Value>)> {
    use PrimitiveType::*;
    vec![
        (
            Boolean,
            vec![json!(true), json!(false)],
            vec![json!("true"), json!(1), json!(0), json!("yes")],
        ),
        (
            Integer,
            vec![
                json!(0),
                json!(-1),
                json!(42),
                json!(2147483647),
                json!(-2147483648),
                json!(-0),
            ],
            vec![
                json!(2147483648i64),
                json!(-2147483649i64),
                json!(1.5),
                json!(1.0),
                json!(1e3),
                json!("1"),
            ],
        ),
        (
            PositiveInt,
            vec![json!(1), json!(2147483647)],
            vec![
                json!(0),
                json!(-1),
                json!(2147483648i64),
                json!(1.0),
                json!("1"),
            ],
        ),
        (
            UnsignedInt,
            vec![json!(0), json!(1), json!(2147483647)],
            vec![json!(-1), json!(2147483648i64), json!(0.5), json!("0")],
        ),
        (
            Decimal,
            vec![
                json!(0),
                json!(-0.5),
                json!(1.5),
                json!(100),
                json!(1e3),
                json!(-1.25e-7),
                json!(12345678901234567890u64),
            ],
            vec![json!("1.5"), json!(true), json!(null)],
        ),
        (
            String,
            vec![
                json!("a"),
                json!(" leading and trailing "),
                json!("tab\there"),
                json!("line\r\nbreak"),
                json!("中文 é"),
            ],
            vec![
                json!(""),
                json!("bell\u{7}"),
                json!("nul\u{0}"),
                json!("esc\u{1b}"),
                json!(1),
                json!(["a"]),
            ],
        ),
        (
            Markdown,
            vec![json!("# Title\n\n*emphasis*"), json!("  indented")],
            vec![json!(""), json!("form\u{c}feed")],
        ),
        (
            Code,
            vec![json!("final"), json!("a b"), json!("mm[Hg]"), json!("a\tb")],
            vec![
                json!(""),
                json!(" final"),
                json!("final "),
                json!("a  b"),
                json!("a \tb"),
                json!("\n"),
                json!(1),
            ],
        ),
        (
            Id,
            vec![
                json!("a"),
                json!("example-1.2"),
                json!("A".repeat(64)),
                json!("0"),
            ],
            vec![
                json!(""),
                json!("a_b"),
                json!("a b"),
                json!("a/b"),
                json!("A".repeat(65)),
                json!("é"),
                json!(1),
            ],
        ),
        (
            Uri,
            vec![
                json!("http://hl7.org/fhir"),
                json!("urn:uuid:x"),
                json!("#local"),
                json!("relative/path"),
            ],
            vec![json!(""), json!("http://a b"), json!("tab\there"), json!(1)],
        ),
        (
            Url,
            vec![json!("https://example.org/a?b=c")],
            vec![json!(""), json!("https://example.org/a b")],
        ),
        (
            Canonical,
            vec![json!(
                "http://hl7.org/fhir/StructureDefinition/Patient|4.0.1"
            )],
            vec![json!(""), json!(" http://x")],
        ),
        (
            Oid,
            vec![
                json!("urn:oid:1.2.3"),
                json!("urn:oid:2.16.840.1.113883"),
                json!("urn:oid:0.0"),
            ],
            vec![
                json!("urn:oid:3.1"),
                json!("urn:oid:1"),
                json!("urn:oid:1.02"),
                json!("urn:oid:1..2"),
                json!("urn:oid:1.2."),
                json!("1.2.3"),
                json!("urn:OID:1.2"),
            ],
        ),
        (
            Uuid,
            vec![json!("urn:uuid:c757873d-ec9a-4326-a141-556f43239520")],
            vec![
                json!("urn:uuid:C757873D-EC9A-4326-A141-556F43239520"),
                json!("c757873d-ec9a-4326-a141-556f43239520"),
                json!("urn:uuid:c757873d-ec9a-4326-a141-556f4323952"),
                json!("urn:uuid:c757873dec9a-4326-a141-556f432395201"),
                json!("urn:uuid:g757873d-ec9a-4326-a141-556f43239520"),
            ],
        ),
        (
            Date,
            vec![
                json!("2020"),
                json!("2020-02"),
                json!("2020-02-29"),
                json!("2000-02-29"),
                json!("0001-01-01"),
                json!("9999-12-31"),
            ],
            vec![
                json!("0000"),
                json!("20"),
                json!("2020-2"),
                json!("2020-13"),
                json!("2020-00"),
                json!("2021-02-29"),
                json!("1900-02-29"),
                json!("2020-04-31"),
                json!("2020-01-01T10:00:00Z"),
                json!("2020-01-01Z"),
                json!("2020/01/01"),
                json!(" 2020"),
                json!(2020),
            ],
        ),
        (
            DateTime,
            vec![
                json!("2020"),
                json!("2020-01"),
                json!("2020-01-31"),
                json!("2020-01-31T23:59:59Z"),
                json!("2020-01-31T23:59:60Z"),
                json!("2020-01-31T10:00:00.123+08:00"),
                json!("2020-01-31T10:00:00.123456789-05:30"),
                json!("2020-01-31T10:00:00+14:00"),
                json!("2020-01-31T10:00:00-13:59"),
            ],
            vec![
                json!("2020-01-31T10:00:00"),
                json!("2020-01-31T10:00Z"),
                json!("2020-01-31T24:00:00Z"),
                json!("2020-01-31T10:60:00Z"),
                json!("2020-01-31T10:00:61Z"),
                json!("2020-01-31T10:00:00.Z"),
                json!("2020-01-31T10:00:00+14:01"),
                json!("2020-01-31T10:00:00+15:00"),
                json!("2020-01-31T10:00:00+0800"),
                json!("2020-01-31 10:00:00Z"),
                json!("2020-01T10:00:00Z"),
                json!("2020-01-32"),
            ],
        ),
        (
            Instant,
            vec![
                json!("2020-01-31T10:00:00Z"),
                json!("2020-01-31T10:00:00.5+01:00"),
            ],
            vec![
                json!("2020-01-31"),
                json!("2020"),
                json!("2020-01-31T10:00:00"),
                json!("2020-01-31T10:00Z"),
            ],
        ),
        (
            Time,
            vec![
                json!("00:00:00"),
                json!("23:59:59"),
                json!("12:30:00.25"),
                json!("23:59:60"),
            ],
            vec![
                json!("24:00:00"),
                json!("12:30"),
                json!("12:30:00Z"),
                json!("12:30:00+01:00"),
                json!("1:30:00"),
                json!("12:30:00."),
            ],
        ),
        (
            Base64Binary,
            vec![
                json!("Zm9v"),
                json!("Zm9vYg=="),
                json!("Zm9vYmE="),
                json!("Zm9v\nYmFy"),
                json!("ab+/"),
            ],
            vec![
                json!("Zm9"),
                json!("Zm9vY==="),
                json!("Zm=v"),
                json!("%%%2@()()"),
                json!("Zm9v-_"),
                json!(""),
                json!("="),
            ],
        ),
        (
            Xhtml,
            vec![
                json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">text</div>"),
                json!(
                    "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>a &amp; b &#169; &#xA9;</p><br/><img src='x.png' alt=\"&lt;\"/></div>"
                ),
                json!(
                    "<div xmlns='http://www.w3.org/1999/xhtml' lang=\"en\"><!-- note --><table><tr><td>1</td></tr></table></div>\n"
                ),
            ],
            vec![
                json!("<p xmlns=\"http://www.w3.org/1999/xhtml\">text</p>"),
                json!("<div>no namespace</div>"),
                json!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>unclosed</div>"),
                json!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><b><i>crossed</b></i></div>"),
                json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">a & b</div>"),
                json!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=unquoted>x</a></div>"),
                json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div><div>second root</div>"),
                json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>trailing"),
                json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">"),
                json!(" <div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"),
                json!("text"),
            ],
        ),
    ]
}

#[test]
fn every_primitive_type_accepts_its_valid_values_and_rejects_its_invalid_ones() {
    let mut failures = Vec::new();
    for (ty, valid, invalid) in table() {
        for value in valid {
            if let Err(e) = primitives::check(ty, &value) {
                failures.push(format!("{} should accept {value}: {e}", ty.as_str()));
            }
        }
        for value in invalid {
            if primitives::check(ty, &value).is_ok() {
                failures.push(format!("{} should reject {value}", ty.as_str()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_table_covers_every_primitive_type_in_the_model() {
    let model = fhir_model::r4();
    let covered: Vec<&str> = table().iter().map(|(ty, _, _)| ty.as_str()).collect();
    for ty in model
        .types()
        .filter(|t| t.kind == fhir_model::TypeKind::Primitive)
    {
        let parsed =
            PrimitiveType::from_code(&ty.name).expect("every model primitive has a scanner");
        assert_eq!(parsed.as_str(), &*ty.name);
        assert!(covered.contains(&&*ty.name), "{} has no table row", ty.name);
    }
}

#[test]
fn a_wrong_json_kind_is_told_apart_from_a_bad_format() {
    assert_eq!(
        primitives::check(PrimitiveType::Decimal, &json!("1.5")),
        Err(PrimitiveError::JsonKind {
            expected: JsonKind::Number
        })
    );
    assert_eq!(
        primitives::check(PrimitiveType::Boolean, &json!("true")),
        Err(PrimitiveError::JsonKind {
            expected: JsonKind::Boolean
        })
    );
    assert_eq!(
        primitives::check(PrimitiveType::Date, &json!({"value": "2020"})),
        Err(PrimitiveError::JsonKind {
            expected: JsonKind::String
        })
    );
    assert!(matches!(
        primitives::check(PrimitiveType::Date, &json!("2020-13")),
        Err(PrimitiveError::Format(_))
    ));
}

#[test]
fn the_string_length_limit_is_a_million_characters_not_bytes() {
    let longest = "é".repeat(primitives::MAX_STRING_CHARS);
    assert!(
        longest.len() > primitives::MAX_STRING_CHARS,
        "two bytes a character"
    );
    assert!(primitives::is_valid_string(&longest));
    let too_long = "a".repeat(primitives::MAX_STRING_CHARS + 1);
    assert!(!primitives::is_valid_string(&too_long));
}

#[test]
fn decimals_keep_their_written_text() {
    // The workspace's serde_json keeps numbers as written, so precision and form survive parsing.
    let value: Value = serde_json::from_str("[1.50, 1e400, 0.1000000000000000000001]").unwrap();
    for item in value.as_array().unwrap() {
        assert_eq!(
            primitives::check(PrimitiveType::Decimal, item),
            Ok(()),
            "{item}"
        );
    }
    assert_eq!(value[0].to_string(), "1.50");
}

const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400 * SECOND;

#[test]
fn partial_dates_stand_for_the_whole_span_they_name() {
    // (text, parser, precision, start, end) with start and end in microseconds since 1970 UTC.
    let year_2020 = 18_262 * DAY; // 2020-01-01
    let cases: Vec<(&str, Option<PartialDateTime>, DatePrecision, i64, i64)> = vec![
        (
            "1970",
            parse_date("1970"),
            DatePrecision::Year,
            0,
            365 * DAY,
        ),
        (
            "2020",
            parse_date_time("2020"),
            DatePrecision::Year,
            year_2020,
            year_2020 + 366 * DAY,
        ),
        (
            "2020-02",
            parse_date("2020-02"),
            DatePrecision::Month,
            year_2020 + 31 * DAY,
            year_2020 + 60 * DAY,
        ),
        (
            "2020-12",
            parse_date("2020-12"),
            DatePrecision::Month,
            year_2020 + 335 * DAY,
            year_2020 + 366 * DAY,
        ),
        (
            "2020-03-01",
            parse_date("2020-03-01"),
            DatePrecision::Day,
            year_2020 + 60 * DAY,
            year_2020 + 61 * DAY,
        ),
        (
            "2020-01-01T00:00:01Z",
            parse_instant("2020-01-01T00:00:01Z"),
            DatePrecision::Second,
            year_2020 + SECOND,
            year_2020 + 2 * SECOND,
        ),
        (
            "2020-01-01T08:00:00+08:00",
            parse_date_time("2020-01-01T08:00:00+08:00"),
            DatePrecision::Second,
            year_2020,
            year_2020 + SECOND,
        ),
        (
            "2020-01-01T00:00:00.5Z",
            parse_date_time("2020-01-01T00:00:00.5Z"),
            DatePrecision::Fraction(1),
            year_2020 + SECOND / 2,
            year_2020 + SECOND / 2 + 100_000,
        ),
        (
            "2020-01-01T00:00:00.123456789Z",
            parse_date_time("2020-01-01T00:00:00.123456789Z"),
            DatePrecision::Fraction(9),
            year_2020 + 123_456,
            year_2020 + 123_457,
        ),
        (
            "1969-12-31",
            parse_date("1969-12-31"),
            DatePrecision::Day,
            -DAY,
            0,
        ),
        (
            "0001-01-01",
            parse_date("0001-01-01"),
            DatePrecision::Day,
            -719_162 * DAY,
            -719_161 * DAY,
        ),
    ];
    for (text, parsed, precision, start, end) in cases {
        let parsed = parsed.unwrap_or_else(|| panic!("{text} parses"));
        assert_eq!(parsed.precision, precision, "{text}");
        assert_eq!(parsed.range(), DateRange { start, end }, "{text}");
    }
}

#[test]
fn dates_without_a_zone_can_be_read_in_the_servers_zone() {
    let day = parse_date("2020-01-01").unwrap();
    let utc = day.range();
    let beijing = day.range_in(8 * 60);
    assert_eq!(beijing.start, utc.start - 8 * 3600 * SECOND);
    assert_eq!(beijing.end - beijing.start, DAY);
    // A value with a zone ignores the default.
    let instant = parse_instant("2020-01-01T00:00:00Z").unwrap();
    assert_eq!(instant.range_in(8 * 60), instant.range());
}

#[test]
fn times_parse_into_their_parts() {
    let t = parse_time("12:30:05.25").unwrap();
    assert_eq!(
        (t.hour, t.minute, t.second, t.nanos, t.fraction_digits),
        (12, 30, 5, 250_000_000, 2)
    );
    assert!(parse_time("12:30:05Z").is_none());
}

#[test]
fn integers_parse_to_their_value_within_32_bits() {
    assert_eq!(primitives::parse_integer("-2147483648"), Some(i32::MIN));
    assert_eq!(primitives::parse_integer("007"), None);
    assert_eq!(primitives::parse_integer("+7"), None);
    assert_eq!(primitives::parse_integer("99999999999"), None);
}
