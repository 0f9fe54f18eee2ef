//! Bad input never panics: random token sequences either fail to compile or evaluate to a
//! result or an error, and pathological nesting is refused instead of exhausting the stack.

use fhirpath::{CompileOptions, Environment};
use serde_json::Value;

const VOCABULARY: &[&str] = &[
    "name",
    "given",
    "family",
    "birthDate",
    "telecom",
    "value",
    "extension",
    "Patient",
    "Observation",
    ".",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "+",
    "-",
    "*",
    "/",
    "|",
    "&",
    "=",
    "!=",
    "~",
    "<",
    ">=",
    "and",
    "or",
    "xor",
    "implies",
    "is",
    "as",
    "in",
    "contains",
    "div",
    "mod",
    "where",
    "select",
    "exists",
    "first",
    "last",
    "count",
    "substring",
    "iif",
    "repeat",
    "aggregate",
    "ofType",
    "resolve",
    "children",
    "descendants",
    "toString",
    "toInteger",
    "lowBoundary",
    "power",
    "sort",
    "$this",
    "$index",
    "$total",
    "%resource",
    "%context",
    "1",
    "0",
    "-1",
    "2147483647",
    "9223372036854775807",
    "1.5",
    "0.0001",
    "'a'",
    "''",
    "'\\u00e9t\\u00e9'",
    "@2012",
    "@2012-04-15",
    "@2012-04-15T10:00:00Z",
    "@T10:30",
    "4 'mg'",
    "7 days",
    "1 'mo'",
    "true",
    "false",
    "String",
    "Integer",
];

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn patient() -> Value {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/conformance/input/patient-example.json"),
    )
    .expect("the patient example is vendored");
    serde_json::from_str(&text).expect("it is JSON")
}

#[test]
fn random_token_sequences_never_panic() {
    let resource = patient();
    let environment = Environment::new();
    let options = CompileOptions {
        context_type: Some("Patient".into()),
        strict: false,
    };
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut compiled = 0;
    for _ in 0..20_000 {
        let length = 1 + random.next() % 12;
        let source: Vec<&str> = (0..length)
            .map(|_| VOCABULARY[(random.next() % VOCABULARY.len() as u64) as usize])
            .collect();
        let source = source.join(" ");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for options in [&CompileOptions::default(), &options] {
                if let Ok(expression) = fhirpath::compile_with(&source, options) {
                    let _ = expression.evaluate(&resource, &environment);
                    return true;
                }
            }
            false
        }));
        match outcome {
            Ok(true) => compiled += 1,
            Ok(false) => {}
            Err(_) => panic!("`{source}` panicked"),
        }
    }
    // Enough of the sequences are valid expressions for this to exercise the evaluator.
    assert!(
        compiled > 1_000,
        "only {compiled} random expressions compiled"
    );
}

#[test]
fn deep_nesting_and_huge_expressions_are_refused() {
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(fhirpath::compile(&deep).is_err());
    let long = vec!["1"; 5_000].join(" + ");
    assert!(fhirpath::compile(&long).is_err());
    let deep_chain = vec!["1"; 300].join(" + ");
    assert!(
        fhirpath::compile(&deep_chain).is_err(),
        "300 levels is past the depth limit"
    );
    let fine = vec!["1"; 120].join(" + ");
    let result = fhirpath::compile(&fine)
        .unwrap()
        .evaluate(&Value::Null, &Environment::new())
        .unwrap();
    assert_eq!(result.to_json(), serde_json::json!([120]));
}

#[test]
fn arithmetic_at_the_edges_is_empty_or_an_error_not_a_panic() {
    for source in [
        "9223372036854775807 + 1",
        "(-9223372036854775807 - 1).abs()",
        "-(-9223372036854775807 - 1)",
        "1.0000000000000000000000000001 / 3.0000000000000000000000000003",
        "99999999999999999999999999999999999.9 * 99999999999999999999999999999999.9",
        "@2012-01-01 + 9223372036854775807 days",
        "@2012-01-01T00:00:00Z + 9000000000000000 hours",
        "2.power(1000)",
        "1e400",
    ] {
        let outcome = std::panic::catch_unwind(|| {
            if let Ok(expression) = fhirpath::compile(source) {
                let _ = expression.evaluate(&Value::Null, &Environment::new());
            }
        });
        assert!(outcome.is_ok(), "`{source}` panicked");
    }
}

/// Evaluates `source` against no input, as JSON.
fn evaluate_alone(source: &str) -> Result<Value, fhirpath::EvalError> {
    let expression = fhirpath::compile(source).expect("the expression compiles");
    Ok(expression
        .evaluate(&Value::Null, &Environment::new())?
        .to_json())
}

// Found by the fuzz target `fhirpath` (fuzz/RUNS.md): `2 'l511' | 01 | 01.6` compared a
// quantity in litres to the 511th power, whose dimension exponents overflowed.
#[test]
fn unit_powers_past_the_dimension_range_are_not_comparable() {
    assert_eq!(
        evaluate_alone("2 'l511' = 2 'm'").unwrap(),
        serde_json::json!([])
    );
    assert_eq!(
        evaluate_alone("2 'l511' | 01 | 01.6")
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        evaluate_alone("1 '/(m)-99' = 1 'm'").unwrap(),
        serde_json::json!([])
    );
}

// A dimensionless unit raised to a huge power was multiplied out one factor at a time (two
// billion multiplications). Exponents beyond what a unit can mean are refused.
#[test]
fn huge_unit_exponents_are_refused_not_multiplied_out() {
    assert_eq!(
        evaluate_alone("1 '({a})2000000000' = 1 '1'").unwrap(),
        serde_json::json!([])
    );
    assert_eq!(
        evaluate_alone("1 '1^2000000000' = 1 '1'").unwrap(),
        serde_json::json!([])
    );
    // Exponents that units do use still work.
    assert_eq!(
        evaluate_alone("1 'm3' = 1000 'L'").unwrap(),
        serde_json::json!([true])
    );
}

// Expressions that never finish or double at every step are stopped by the evaluation's budget
// with an error that says so, instead of hanging the thread or exhausting the memory.
#[test]
fn endless_and_exploding_evaluations_are_too_costly() {
    for source in [
        // An endless loop: every step yields a new number.
        "1.repeat($this + 1)",
        // A string that doubles at every step: the budget counts the bytes built.
        "'a'.repeat($this + $this)",
        "'ab'.repeat($this.replace('a', 'aa'))",
        "'x'.repeat($this & $this)",
        // A collection that doubles at every step of an aggregate.
        "(1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 17 | 18 | 19 | 20 \
         | 21 | 22 | 23 | 24 | 25 | 26 | 27 | 28 | 29 | 30).aggregate($total.combine($total), 1 | 2)",
    ] {
        match evaluate_alone(source) {
            Err(error @ fhirpath::EvalError::TooCostly { .. }) => {
                assert!(error.to_string().contains("too costly"), "{error}")
            }
            other => panic!("`{source}` gave {other:?}"),
        }
    }
}

#[test]
fn large_resources_stay_within_the_evaluation_budget() {
    let entries: Vec<Value> = (0..20_000)
        .map(|i| {
            serde_json::json!({"resource": {"resourceType": "Patient", "id": format!("p{i}"),
                "name": [{"family": "Smith", "given": ["Ann", "Lee"]}]}})
        })
        .collect();
    let bundle =
        serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": entries});
    let environment = Environment::new();
    for (source, expected) in [
        ("Bundle.entry.resource.id.count()", 20_000),
        ("Bundle.entry.resource.descendants().count()", 20_000 * 5),
        ("Bundle.entry.resource.name.given.distinct().count()", 2),
        (
            "Bundle.entry.select(resource.name.family + ', ' + resource.name.given.first()).count()",
            20_000,
        ),
    ] {
        let result = fhirpath::compile(source)
            .unwrap()
            .evaluate(&bundle, &environment)
            .unwrap_or_else(|e| panic!("`{source}`: {e}"));
        assert_eq!(result.to_json(), serde_json::json!([expected]), "{source}");
    }
}
