//! The vendored definitions load and say what the R4 specification says.

use fhir_model::{SearchParamType, TypeKind, r4};

#[test]
fn vendored_definitions_load_with_every_resource_type() {
    let model = r4();
    assert_eq!(model.resource_types().len(), 146);
    assert!(model.is_resource_type("Patient"));
    assert!(
        !model.is_resource_type("DomainResource"),
        "abstract types are not concrete resources"
    );
    assert!(!model.is_resource_type("HumanName"));
}

#[test]
fn choice_elements_resolve_from_their_json_names() {
    let observation = r4().type_def("Observation").unwrap();
    let value = observation.property("valueQuantity").unwrap();
    assert_eq!(&*value.element.name, "value");
    assert_eq!(value.type_code, "Quantity");
    assert_eq!(
        observation.property("valueDateTime").unwrap().type_code,
        "dateTime"
    );
    assert!(
        observation.property("value").is_none(),
        "a choice element is never written bare"
    );
    assert!(observation.property("valueFoo").is_none());
}

#[test]
fn backbone_elements_are_types_named_by_path() {
    let model = r4();
    let component = model
        .type_def("Observation")
        .unwrap()
        .property("component")
        .unwrap();
    assert_eq!(component.type_code, "Observation.component");
    assert!(component.element.is_array());
    let backbone = model.type_def("Observation.component").unwrap();
    assert_eq!(backbone.kind, TypeKind::Backbone);
    assert_eq!(backbone.element("code").unwrap().min, 1);
    // A recursive element points back at its own backbone type.
    let item = model.type_def("Questionnaire.item").unwrap();
    assert_eq!(
        item.property("item").unwrap().type_code,
        "Questionnaire.item"
    );
}

#[test]
fn subtypes_follow_the_base_chain() {
    let model = r4();
    assert!(model.is_subtype("Age", "Quantity"));
    assert!(model.is_subtype("Patient", "Resource"));
    assert!(model.is_subtype("code", "string"));
    assert!(!model.is_subtype("Quantity", "Age"));
}

#[test]
fn required_bindings_expand_to_their_codes() {
    let model = r4();
    let status = model
        .type_def("Observation")
        .unwrap()
        .element("status")
        .unwrap();
    let vs = model.value_set(status.binding.as_deref().unwrap()).unwrap();
    assert_eq!(vs.contains_code("final"), Some(true));
    assert_eq!(vs.contains_code("finished"), Some(false));
    let mime = model
        .value_set("http://hl7.org/fhir/ValueSet/mimetypes")
        .unwrap();
    assert_eq!(
        mime.contains_code("text/plain"),
        None,
        "MIME types cannot be checked from the vendored files"
    );
}

#[test]
fn search_parameters_and_compartments_are_vendored() {
    let model = r4();
    assert_eq!(model.search_parameters().len(), 1375);
    let params: Vec<_> = model.search_parameters_for("Observation").collect();
    assert!(
        params
            .iter()
            .any(|p| &*p.code == "_id" && p.kind == SearchParamType::Token)
    );
    assert!(
        params.iter().any(|p| &*p.code == "_text"),
        "DomainResource parameters apply"
    );
    let composite = params
        .iter()
        .find(|p| &*p.code == "code-value-quantity")
        .unwrap();
    let codes: Vec<&str> = composite.components.iter().map(|c| &*c.code).collect();
    assert_eq!(codes, ["code", "value-quantity"]);
    let observation_in_patient: Vec<&str> = model
        .compartment_params("Patient", "Observation")
        .iter()
        .map(|p| &**p)
        .collect();
    assert_eq!(observation_in_patient, ["subject", "performer"]);
    assert!(
        model
            .compartment_params("Patient", "Organization")
            .is_empty()
    );
}

#[test]
fn repetition_limits_come_from_the_policy_most_specific_first() {
    let model = r4();
    let limit = |owner: &str, element: &str| {
        model
            .type_def(owner)
            .unwrap()
            .element(element)
            .unwrap_or_else(|| panic!("{owner}.{element}"))
            .repetition_limit
    };
    assert_eq!(limit("Patient", "name"), Some(1000), "the general cap");
    assert_eq!(limit("HumanName", "given"), Some(1000));
    assert_eq!(limit("Patient", "extension"), Some(10_000), "*.extension");
    assert_eq!(limit("string", "extension"), Some(10_000));
    assert_eq!(limit("Patient", "contained"), Some(10_000));
    assert_eq!(limit("Questionnaire.item", "item"), Some(10_000), "*.item");
    assert_eq!(limit("Observation", "component"), Some(10_000));
    assert_eq!(limit("Bundle", "entry"), None, "a list by nature");
    assert_eq!(limit("Group", "member"), None);
    assert_eq!(limit("ValueSet.compose.include", "concept"), None);
    assert_eq!(
        limit("Patient", "gender"),
        None,
        "not repeating: max 1 says it all"
    );
}
