//! Behaviour the official suite does not cover: the views refused and why, the errors a
//! resource can cause, hostile views, column types and the values rows keep.

use analytics::{ColumnType, View, ViewError};
use expect_test::{Expect, expect};
use serde_json::{Value, json};

/// A one-column Patient view with `select` replaced.
fn patient_view(select: Value) -> Value {
    json!({"resource": "Patient", "select": select})
}

/// Each case's error from compiling, one line each: `name: message`.
fn check_refused(cases: &[(&str, Value)], expected: Expect) {
    let mut lines = String::new();
    for (name, view) in cases {
        let line = match View::parse(view) {
            Ok(_) => "ACCEPTED".to_string(),
            Err(error @ ViewError::Invalid { .. }) => error.to_string(),
            Err(other) => format!("not an Invalid error: {other:?}"),
        };
        lines.push_str(&format!("{name}: {line}\n"));
    }
    expected.assert_eq(&lines);
}

#[test]
fn views_the_specification_calls_invalid_are_refused_when_compiled() {
    let id = json!({"name": "id", "path": "id"});
    check_refused(
        &[
            ("not an object", json!([])),
            (
                "unknown element",
                json!({"resource": "Patient", "select": [{"column": [id]}], "wher": []}),
            ),
            (
                "not a resource type",
                json!({"resource": "Patinet", "select": [{"column": [id]}]}),
            ),
            ("no select", json!({"resource": "Patient", "select": []})),
            ("no column at all", patient_view(json!([{"select": [{}]}]))),
            (
                "column name",
                patient_view(json!([{"column": [{"name": "first-name", "path": "id"}]}])),
            ),
            (
                "column defined twice",
                patient_view(json!([{"column": [id]}, {"select": [{"column": [id]}]}])),
            ),
            (
                "forEach and repeat",
                patient_view(json!([{"forEach": "name", "repeat": ["name"], "column": [id]}])),
            ),
            (
                "misspelt path",
                patient_view(json!([{"column": [{"name": "family", "path": "nmae.family"}]}])),
            ),
            (
                "misspelt path under a forEach",
                patient_view(json!([{"forEach": "contact",
                    "column": [{"name": "system", "path": "telecm.system"}]}])),
            ),
            (
                "complex value without a type",
                patient_view(json!([{"column": [{"name": "name", "path": "name.first()"}]}])),
            ),
            (
                "unknown type",
                patient_view(json!([{"column": [{"name": "id", "path": "id", "type": "strin"}]}])),
            ),
            (
                "collection not a boolean",
                patient_view(
                    json!([{"column": [{"name": "id", "path": "id", "collection": "yes"}]}]),
                ),
            ),
            (
                "undefined constant",
                patient_view(
                    json!([{"column": [{"name": "x", "path": "name.where(use = %usage)"}]}]),
                ),
            ),
            (
                "constant with two values",
                json!({"resource": "Patient", "select": [{"column": [id]}],
                    "constant": [{"name": "c", "valueString": "a", "valueCode": "b"}]}),
            ),
            (
                "constant not of its type",
                json!({"resource": "Patient", "select": [{"column": [id]}],
                    "constant": [{"name": "c", "valueDate": "12 March 1978"}]}),
            ),
            (
                "constant that could never be read",
                json!({"resource": "Patient", "select": [{"column": [id]}],
                    "constant": [{"name": "rowIndex", "valueInteger": 1}]}),
            ),
            (
                "union branches of other types",
                patient_view(json!([{"unionAll": [
                    {"column": [{"name": "v", "path": "birthDate"}]},
                    {"column": [{"name": "v", "path": "active"}]}]}])),
            ),
            (
                "where that is not a boolean",
                json!({"resource": "Patient", "select": [{"column": [id]}],
                    "where": [{"path": "name.family"}]}),
            ),
        ],
        expect![[r#"
            not an object: invalid ViewDefinition at ViewDefinition: must be a JSON object
            unknown element: invalid ViewDefinition at ViewDefinition: unknown element "wher"
            not a resource type: invalid ViewDefinition at ViewDefinition.resource: Patinet is not an R4 resource type
            no select: invalid ViewDefinition at ViewDefinition.select: must be a non-empty array
            no column at all: invalid ViewDefinition at ViewDefinition.select: a view needs at least one column
            column name: invalid ViewDefinition at ViewDefinition.select[0].column[0].name: "first-name" is not a column name: letters, digits and _, starting with a letter
            column defined twice: invalid ViewDefinition at ViewDefinition.select[1]: the column id is defined twice
            forEach and repeat: invalid ViewDefinition at ViewDefinition.select[0]: a selection has at most one of forEach, forEachOrNull and repeat, not forEach and repeat
            misspelt path: invalid ViewDefinition at ViewDefinition.select[0].column[0].path: "nmae.family": semantic error at line 1, column 1: Patient has no element nmae
            misspelt path under a forEach: invalid ViewDefinition at ViewDefinition.select[0].column[0].path: "telecm.system": semantic error at line 1, column 1: Patient.contact has no element telecm
            complex value without a type: invalid ViewDefinition at ViewDefinition.select[0].column[0].type: the column name holds HumanName, which is not a primitive: declare its type
            unknown type: invalid ViewDefinition at ViewDefinition.select[0].column[0].type: strin is not a FHIR type the R4 model knows
            collection not a boolean: invalid ViewDefinition at ViewDefinition.select[0].column[0].collection: must be true or false
            undefined constant: invalid ViewDefinition at ViewDefinition.select[0].column[0].path: %usage is not a constant of this view
            constant with two values: invalid ViewDefinition at ViewDefinition.constant[0]: the constant c has more than one value[x]
            constant not of its type: invalid ViewDefinition at ViewDefinition.constant[0].valueDate: a date is YYYY, YYYY-MM or YYYY-MM-DD, and a real calendar date
            constant that could never be read: invalid ViewDefinition at ViewDefinition.constant[0].name: %rowIndex already has a meaning in FHIRPath or SQL on FHIR
            union branches of other types: invalid ViewDefinition at ViewDefinition.select[0].unionAll[1]: the column v holds boolean values here and date values in the first branch
            where that is not a boolean: invalid ViewDefinition at ViewDefinition.where[0].path: a where path must give a boolean, not string
        "#]],
    );
}

/// A view that nests `depth` selections, each inside the last.
fn nested_view(depth: usize) -> Value {
    let mut select = json!({"column": [{"name": "id", "path": "id"}]});
    for _ in 1..depth {
        // Moved in, not serialized as `json!` would (recursively) do with a variable.
        let mut outer = serde_json::Map::new();
        outer.insert("select".into(), Value::Array(vec![select]));
        select = Value::Object(outer);
    }
    let mut view = patient_view(json!([]));
    view["select"] = Value::Array(vec![select]);
    view
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let fine = View::parse(&nested_view(analytics::MAX_NESTING)).unwrap();
    let patient = json!({"resourceType": "Patient", "id": "p1"});
    assert_eq!(fine.rows(&patient).unwrap(), [[json!("p1")]]);
    let error = View::parse(&nested_view(analytics::MAX_NESTING + 1)).unwrap_err();
    assert!(error.to_string().contains("nest more than"), "{error}");
    // Deep enough to overflow a test thread's stack if compiling recursed all the way down.
    assert!(View::parse(&nested_view(1_000)).is_err());
}

#[test]
fn a_huge_union_is_evaluated_and_bounded_by_the_row_limit() {
    let branches: Vec<Value> = (0..2_000)
        .map(|i| json!({"column": [{"name": "n", "path": format!("{i}")}]}))
        .collect();
    let view = View::parse(&patient_view(json!([{"unionAll": branches}]))).unwrap();
    let patient = json!({"resourceType": "Patient", "id": "p1"});
    assert_eq!(view.rows(&patient).unwrap().len(), 2_000);
    let limited = view.with_row_limit(1_000);
    assert_eq!(
        limited.rows(&patient).unwrap_err(),
        ViewError::TooManyRows {
            resource: "Patient/p1".into(),
            limit: 1_000
        }
    );
}

#[test]
fn rows_that_multiply_past_the_limit_are_refused_before_they_are_built() {
    // Four sibling forEach over 100 names: 10^8 rows, refused without allocating them.
    let names: Vec<Value> = (0..100)
        .map(|i| json!({"family": format!("F{i}")}))
        .collect();
    let patient = json!({"resourceType": "Patient", "id": "p1", "name": names});
    let siblings: Vec<Value> = (0..4)
        .map(
            |i| json!({"forEach": "name", "column": [{"name": format!("f{i}"), "path": "family"}]}),
        )
        .collect();
    let view = View::parse(&patient_view(json!(siblings))).unwrap();
    assert!(matches!(
        view.rows(&patient),
        Err(ViewError::TooManyRows {
            limit: analytics::DEFAULT_ROW_LIMIT,
            ..
        })
    ));
}

#[test]
fn a_repeat_that_never_ends_is_stopped() {
    let view = View::parse(&json!({"resource": "QuestionnaireResponse", "select": [
        {"repeat": ["$this"], "column": [{"name": "id", "path": "%resource.id"}]}]}))
    .unwrap()
    .with_row_limit(500);
    let response =
        json!({"resourceType": "QuestionnaireResponse", "id": "q1", "status": "completed"});
    assert!(matches!(
        view.rows(&response),
        Err(ViewError::TooManyRows { limit: 500, .. })
    ));
}

#[test]
fn evaluation_errors_name_the_element_and_the_resource() {
    let patient = json!({"resourceType": "Patient", "id": "p1", "active": true,
        "name": [{"family": "A"}, {"family": "B"}]});
    let several = View::parse(&patient_view(json!([
        {"column": [{"name": "family", "path": "name.family"}]}])))
    .unwrap();
    expect![[r#"ViewDefinition.select[0].column[0].path on Patient/p1: the column family gets 2 values; a column that may hold several needs collection: true"#]]
        .assert_eq(&several.rows(&patient).unwrap_err().to_string());
    let mistyped = View::parse(&patient_view(json!([
        {"column": [{"name": "active", "path": "active", "type": "string"}]}])))
    .unwrap();
    expect![[r#"ViewDefinition.select[0].column[0].path on Patient/p1: the column active is of type string but gets a boolean (true)"#]]
        .assert_eq(&mistyped.rows(&patient).unwrap_err().to_string());
    // Of unknown type at compile time (a choice), complex at run time.
    let observation = json!({"resourceType": "Observation", "id": "o1", "status": "final",
        "code": {"text": "x"}, "valueQuantity": {"value": 1}});
    let choice = View::parse(&json!({"resource": "Observation",
        "select": [{"column": [{"name": "v", "path": "value"}]}]}))
    .unwrap();
    let error = choice.rows(&observation).unwrap_err();
    assert_eq!(error.at(), Some("ViewDefinition.select[0].column[0].path"));
    expect![[r#"ViewDefinition.select[0].column[0].path on Observation/o1: the column v gets a Quantity, which is not a primitive: declare its type"#]]
        .assert_eq(&error.to_string());
    let boolean_or_not = View::parse(&json!({"resource": "Patient",
        "select": [{"column": [{"name": "id", "path": "id"}]}],
        "where": [{"path": "name.family.first().exists() and %resource"}]}));
    assert!(
        boolean_or_not.is_ok(),
        "of unknown type: checked per resource"
    );
}

#[test]
fn columns_report_their_declared_or_inferred_types_in_output_order() {
    let view = View::parse(&json!({"resource": "Patient", "select": [
        {"column": [
            {"name": "id", "path": "getResourceKey()"},
            {"name": "born", "path": "birthDate"},
            {"name": "active", "path": "active"},
            {"name": "named", "path": "name.exists()"},
            {"name": "given", "path": "name.given", "collection": true},
            {"name": "position", "path": "%rowIndex"},
            {"name": "position_typed", "path": "%rowIndex", "type": "integer"},
            {"name": "names", "path": "name", "type": "HumanName", "collection": true}]},
        {"forEach": "contact", "column": [
            {"name": "contact_system", "path": "telecom.system.first()"}]}]}))
    .unwrap();
    let described: Vec<String> = view
        .columns()
        .iter()
        .map(|c| {
            format!(
                "{} {}{}{}{}",
                c.name(),
                c.column_type().name(),
                if c.is_type_known() { "" } else { " (default)" },
                if c.is_collection() { " collection" } else { "" },
                c.fhir_type()
                    .map(|t| format!(" declared {t}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    expect![[r#"
        id string
        born date
        active boolean
        named boolean
        given string collection
        position string (default)
        position_typed integer declared integer
        names json collection declared HumanName
        contact_system string"#]]
    .assert_eq(&described.join("\n"));
    assert_eq!(view.resource(), "Patient");
    assert_eq!(view.columns()[1].column_type(), ColumnType::Date);

    // A Quantity's value, whichever Quantity `ofType` keeps, is a decimal; its unit a string.
    let observation = View::parse(&json!({"resource": "Observation", "select": [{"column": [
        {"name": "value", "path": "value.ofType(Quantity).value"},
        {"name": "unit", "path": "value.ofType(Quantity).unit"},
        {"name": "either", "path": "value"}]}]}));
    let types: Vec<(ColumnType, bool)> = observation
        .unwrap()
        .columns()
        .iter()
        .map(|c| (c.column_type(), c.is_type_known()))
        .collect();
    assert_eq!(
        types,
        [
            (ColumnType::Decimal, true),
            (ColumnType::String, true),
            (ColumnType::String, false)
        ]
    );
}

#[test]
fn values_keep_their_written_precision_and_extension_only_primitives_are_null() {
    let view = View::parse(&json!({"resource": "Observation", "select": [{"column": [
        {"name": "value", "path": "value.ofType(Quantity).value"},
        {"name": "issued", "path": "issued"},
        {"name": "notes", "path": "note.text", "collection": true}]}]}))
    .unwrap();
    let observation: Value = fhir_model::json::parse(
        br#"{"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "valueQuantity": {"value": 1.50},
            "_issued": {"extension": [{"url": "http://example.org/why-absent", "valueCode": "masked"}]},
            "note": [{"text": "a"}, {"_text": {"id": "t"}}, {"text": "c"}]}"#,
    )
    .unwrap();
    let rows = view.rows(&observation).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0].to_string(), "1.50", "1.50 stays 1.50");
    assert_eq!(rows[0][1], Value::Null, "an extension is not a value");
    assert_eq!(rows[0][2], json!(["a", "c"]));
}

#[test]
fn a_view_reads_only_its_resource_type_and_what_passes_its_filters() {
    let view = View::parse(&json!({"resource": "Patient",
        "select": [{"column": [{"name": "id", "path": "id"}]}],
        "where": [{"path": "active"}]}))
    .unwrap();
    let observation = json!({"resourceType": "Observation", "id": "o1"});
    assert!(view.rows(&observation).unwrap().is_empty());
    let inactive = json!({"resourceType": "Patient", "id": "p1", "active": false});
    assert!(view.rows(&inactive).unwrap().is_empty());
    let unknown = json!({"resourceType": "Patient", "id": "p2"});
    assert!(view.rows(&unknown).unwrap().is_empty(), "empty is false");
    let active = json!({"resourceType": "Patient", "id": "p3", "active": true});
    assert_eq!(view.rows(&active).unwrap(), [[json!("p3")]]);
}

#[test]
fn the_resource_is_percent_resource_inside_a_for_each() {
    let view = View::parse(&patient_view(json!([{"forEach": "name", "column": [
        {"name": "patient", "path": "%resource.id"},
        {"name": "family", "path": "family"},
        {"name": "key", "path": "%resource.getResourceKey()"}]}])))
    .unwrap();
    let patient = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "A"}]});
    assert_eq!(
        view.rows(&patient).unwrap(),
        [[json!("p1"), json!("A"), json!("p1")]]
    );
}
