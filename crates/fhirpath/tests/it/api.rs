//! The public API: what items expose (types, borrowed JSON, typed values), the environment's
//! defaults and hooks, and the errors.

use fhirpath::{CompileOptions, Environment, ParseErrorKind, Resolved, Resolver, Terminology};
use serde_json::{Value, json};

fn eval<'a>(expression: &str, resource: &'a Value) -> fhirpath::Collection<'a> {
    fhirpath::compile(expression)
        .unwrap()
        .evaluate(resource, &Environment::new())
        .unwrap()
}

fn typed(expression: &str, resource: &Value) -> Value {
    eval(expression, resource).to_typed_json()
}

fn observation() -> Value {
    serde_json::from_str(
        r##"{"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": "Patient/example"},
            "performer": [{"reference": "Practitioner/1"}, {"reference": "#p1"}],
            "contained": [{"resourceType": "Practitioner", "id": "p1"}],
            "effectivePeriod": {"start": "2012-04"},
            "valueQuantity": {"value": 1.50, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
            "component": [
              {"code": {"text": "a"}, "valueQuantity": {"value": 120, "code": "mm[Hg]", "system": "http://unitsofmeasure.org"}},
              {"code": {"text": "b"}, "valueString": "x"}]}"##,
    )
    .unwrap()
}

#[test]
fn items_point_into_the_input_and_know_their_fhir_type() {
    let resource = observation();
    let result = eval("Observation.value", &resource);
    let item = result.first().unwrap();
    assert_eq!(item.type_name(), "Quantity");
    assert!(
        std::ptr::eq(item.json().unwrap(), &resource["valueQuantity"]),
        "the item borrows, not copies"
    );
    assert_eq!(
        typed("Observation.effective", &resource),
        json!([{"type": "Period", "value": {"start": "2012-04"}}])
    );
    assert_eq!(
        typed("Observation.effective.start", &resource),
        json!([{"type": "dateTime", "value": "2012-04"}])
    );
    assert_eq!(
        typed("status", &resource),
        json!([{"type": "code", "value": "final"}])
    );
    assert_eq!(
        typed("code.coding.system", &resource),
        json!([{"type": "uri", "value": "http://loinc.org"}])
    );
}

#[test]
fn typed_accessors_keep_written_precision() {
    let resource = observation();
    assert_eq!(
        eval("Observation.value.value", &resource)
            .first()
            .unwrap()
            .decimal_text()
            .unwrap(),
        "1.50"
    );
    let start = eval("Observation.effective.start", &resource)
        .first()
        .unwrap()
        .as_temporal()
        .unwrap();
    assert_eq!(start.precision, fhirpath::Precision::Month);
    assert_eq!(
        typed("@2012-04 + 1 month", &Value::Null),
        json!([{"type": "System.Date", "value": "2012-05"}])
    );
    assert_eq!(
        typed("4.5 'mg'", &Value::Null),
        json!([{"type": "System.Quantity", "value": {"value": 4.5, "unit": "mg"}}])
    );
    assert_eq!(
        typed("1 + 1", &Value::Null),
        json!([{"type": "System.Integer", "value": 2}])
    );
}

#[test]
fn choice_elements_are_found_under_every_type() {
    let resource = observation();
    assert_eq!(
        typed("Observation.component.value", &resource),
        json!([
            {"type": "Quantity", "value": {"value": 120, "code": "mm[Hg]", "system": "http://unitsofmeasure.org"}},
            {"type": "string", "value": "x"}
        ])
    );
    // `as` filters, so the R4 parameter works with several components.
    assert_eq!(
        eval("(Observation.component.value as Quantity)", &resource).len(),
        1
    );
    assert_eq!(
        eval(
            "Observation.component.value.ofType(Quantity) > 15 'kPa'",
            &resource
        )
        .to_json(),
        json!([true])
    );
    let two = fhirpath::compile("Observation.component.value > 1")
        .unwrap()
        .evaluate(&resource, &Environment::new());
    assert!(
        two.is_err(),
        "comparing a collection of two items is an error"
    );
}

#[test]
fn resolve_without_io_types_relative_references_and_finds_contained_ones() {
    let resource = observation();
    assert_eq!(
        eval("Observation.subject.where(resolve() is Patient)", &resource).len(),
        1
    );
    assert_eq!(
        eval("Observation.subject.where(resolve() is Group)", &resource).len(),
        0
    );
    assert_eq!(
        typed("Observation.performer.resolve().id", &resource),
        json!([{"type": "id", "value": "p1"}])
    );
    let placeholder = eval("Observation.performer.first().resolve()", &resource);
    assert_eq!(placeholder.first().unwrap().type_name(), "Practitioner");
    assert!(placeholder.first().unwrap().json().is_none());
}

#[test]
fn resolve_finds_bundle_entries_by_full_url_when_the_resource_is_a_bundle() {
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "a", "gender": "female"}},
        {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Observation", "status": "final",
            "subject": {"reference": "urn:uuid:1"}}}]});
    let observation = &bundle["entry"][1]["resource"];
    let environment = Environment::new().with_resource(&bundle);
    let expression = fhirpath::compile("Observation.subject.resolve().gender").unwrap();
    let result = expression.evaluate(observation, &environment).unwrap();
    assert_eq!(result.to_json(), json!(["female"]));
}

#[test]
fn a_resolver_hook_is_asked_first() {
    struct Everything(Value);
    impl<'a> Resolver<'a> for &'a Everything {
        fn resolve(&self, reference: &str) -> Option<Resolved<'a>> {
            (reference == "Patient/example").then_some(Resolved::Resource(&self.0))
        }
    }
    let store =
        Everything(json!({"resourceType": "Patient", "id": "example", "birthDate": "1974-12-25"}));
    let resolver = &store;
    let resource = observation();
    let environment = Environment::new().with_resolver(&resolver);
    let expression = fhirpath::compile("subject.resolve().birthDate").unwrap();
    assert_eq!(
        expression
            .evaluate(&resource, &environment)
            .unwrap()
            .to_json(),
        json!(["1974-12-25"])
    );
}

#[test]
fn primitive_extensions_are_reachable_and_an_extension_only_value_still_exists() {
    let patient = json!({"resourceType": "Patient",
        "name": [{"given": ["Peter", null], "_given": [null, {"extension": [{"url": "http://x", "valueString": "y"}]}]}],
        "birthDate": "1974-12-25",
        "_birthDate": {"id": "b1", "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]}});
    assert_eq!(eval("Patient.name.given", &patient).len(), 2);
    assert_eq!(
        eval("Patient.name.given.select($this.hasValue())", &patient).to_json(),
        json!([true, false])
    );
    assert_eq!(
        eval(
            "Patient.name.given[1].extension('http://x').value",
            &patient
        )
        .to_json(),
        json!(["y"])
    );
    assert_eq!(
        typed("Patient.birthDate.id", &patient),
        json!([{"type": "string", "value": "b1"}])
    );
    assert_eq!(
        eval(
            "Patient.birthDate.extension(%`ext-patient-birthTime`).value",
            &patient
        )
        .first()
        .unwrap()
        .type_name(),
        "dateTime"
    );
}

#[test]
fn user_variables_and_constants() {
    let patient = json!({"resourceType": "Patient", "gender": "female"});
    let other = json!({"resourceType": "Patient", "gender": "male"});
    let environment = Environment::new()
        .with_string("wanted", "female")
        .with_json("other", &other);
    let expression = fhirpath::compile(
        "gender = %wanted and %other.gender = 'male' and %ucum.startsWith('http')",
    )
    .unwrap();
    assert_eq!(
        expression
            .evaluate(&patient, &environment)
            .unwrap()
            .to_json(),
        json!([true])
    );
    let unknown = fhirpath::compile("%missing")
        .unwrap()
        .evaluate(&patient, &Environment::new());
    assert!(
        unknown.is_err(),
        "an unknown variable is an error, not an empty result"
    );
}

#[test]
fn an_expression_names_the_user_variables_it_needs() {
    let expression = fhirpath::compile(
        "name.where(use = %wanted).family | %resource.id | %other | %wanted | %ucum | %`vs-x`",
    )
    .unwrap();
    assert_eq!(
        expression.variables().collect::<Vec<_>>(),
        ["wanted", "other"],
        "each once, and none of the names FHIRPath and FHIR define"
    );
}

#[test]
fn typed_variables_compare_as_their_fhir_type() {
    let issue = json!({"resourceType": "DetectedIssue", "identifiedDateTime": "2016-11-12"});
    let date_time = json!("2016-11-12");
    let item = fhirpath::Item::of_fhir_type(&date_time, "dateTime").unwrap();
    assert_eq!(item.type_name(), "dateTime");
    let environment = Environment::new()
        .with_variable("typed", fhirpath::Collection::one(item))
        .with_string("untyped", "2016-11-12");
    let typed = fhirpath::compile("identified.ofType(dateTime) = %typed").unwrap();
    assert_eq!(
        typed.evaluate(&issue, &environment).unwrap().to_json(),
        json!([true])
    );
    assert!(fhirpath::Item::of_fhir_type(&date_time, "NoSuchType").is_none());
}

#[test]
fn result_types_are_known_where_the_context_type_is() {
    let types_in = |context: &str, expression: &str| {
        let options = CompileOptions {
            context_type: Some(context.into()),
            strict: false,
        };
        fhirpath::compile_with(expression, &options)
            .unwrap()
            .result_types()
    };
    let types = |expression: &str| types_in("Patient", expression);
    assert_eq!(types("name"), Some(vec!["HumanName"]));
    assert_eq!(types("contact"), Some(vec!["Patient.contact"]));
    assert_eq!(types("gender"), Some(vec!["code"]));
    assert_eq!(types("name.exists()"), Some(vec!["System.Boolean"]));
    assert_eq!(types("getResourceKey()"), Some(vec!["System.String"]));
    assert_eq!(types("Observation.status"), Some(vec![]));
    assert_eq!(fhirpath::compile("name").unwrap().result_types(), None);
    // The types found for a backbone element are context types in their turn.
    let telecom = CompileOptions {
        context_type: Some("Patient.contact".into()),
        strict: false,
    };
    assert!(fhirpath::compile_with("telecom.system", &telecom).is_ok());
    assert!(fhirpath::compile_with("telecm", &telecom).is_err());
    // `ofType(Quantity)` may be a FHIR or a System Quantity; both have a decimal value.
    let types = |expression: &str| types_in("Observation", expression);
    assert_eq!(
        types("value.ofType(Quantity).value"),
        Some(vec!["decimal", "System.Decimal"])
    );
    assert_eq!(
        types("value.ofType(Quantity).unit"),
        Some(vec!["string", "System.String"])
    );
    assert_eq!(types("value.ofType(Quantity).code"), Some(vec!["code"]));
    let quantity = json!({"resourceType": "Observation",
        "valueQuantity": {"value": 120.5, "unit": "mm[Hg]"}});
    assert_eq!(
        eval("value.ofType(Quantity).value", &quantity).to_json(),
        json!([120.5])
    );
}

#[test]
fn member_of_uses_the_vendored_value_sets_or_a_terminology_hook() {
    let patient = json!({"resourceType": "Patient", "gender": "female"});
    let vs = "'http://hl7.org/fhir/ValueSet/administrative-gender'";
    assert_eq!(
        eval(&format!("gender.memberOf({vs})"), &patient).to_json(),
        json!([true])
    );
    struct Nothing;
    impl Terminology for Nothing {
        fn member_of(&self, _: Option<&str>, _: &str, _: &str) -> Option<bool> {
            Some(false)
        }
    }
    let environment = Environment::new().with_terminology(&Nothing);
    let expression = fhirpath::compile(&format!("gender.memberOf({vs})")).unwrap();
    assert_eq!(
        expression
            .evaluate(&patient, &environment)
            .unwrap()
            .to_json(),
        json!([false])
    );
}

#[test]
fn a_context_type_checks_paths_and_drops_branches_for_other_types() {
    let options = CompileOptions {
        context_type: Some("Practitioner".into()),
        strict: false,
    };
    let expression =
        fhirpath::compile_with("Patient.name.family | Practitioner.name.family", &options).unwrap();
    let practitioner = json!({"resourceType": "Practitioner", "name": [{"family": "Lee"}]});
    assert_eq!(
        expression
            .evaluate(&practitioner, &Environment::new())
            .unwrap()
            .to_json(),
        json!(["Lee"])
    );
    let error = fhirpath::compile_with("Practitioner.nmae", &options).unwrap_err();
    assert_eq!(error.kind, ParseErrorKind::Semantic);
    assert_eq!(error.position.column, 14);
    let strict = CompileOptions {
        strict: true,
        ..options
    };
    assert!(fhirpath::compile_with("Patient.name", &strict).is_err());
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let error = fhirpath::compile("name.where(\n  given = 'x' and)").unwrap_err();
    assert_eq!(error.kind, ParseErrorKind::Syntax);
    assert_eq!((error.position.line, error.position.column), (2, 18));
    assert!(error.to_string().contains("line 2, column 18"), "{error}");
}

#[test]
fn an_expression_is_reused_across_resources_and_threads() {
    let expression = fhirpath::compile("name.given.first()").unwrap();
    let handles: Vec<_> = ["Ann", "Bob"]
        .into_iter()
        .map(|given| {
            let expression = expression.clone();
            std::thread::spawn(move || {
                let patient = json!({"resourceType": "Patient", "name": [{"given": [given]}]});
                expression
                    .evaluate(&patient, &Environment::new())
                    .unwrap()
                    .to_json()
            })
        })
        .collect();
    let results: Vec<Value> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results, vec![json!(["Ann"]), json!(["Bob"])]);
}
