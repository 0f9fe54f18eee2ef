//! The FHIR operation the decision-support service owns, declared once: the server dispatches
//! it and lists it in its CapabilityStatement from this table.

use fhir_model::operation::{Audience, InvokeMethod, Level, OperationDecl, OperationKind};

/// `Measure/ResultRecognition/$evaluate-measure` (or `Measure/$evaluate-measure?measure=`): the
/// recognition metrics, counted from the feedback records. An institution sees its own checks;
/// the platform sees all.
pub const EVALUATE_MEASURE: OperationDecl = OperationDecl {
    name: "$evaluate-measure",
    levels: &[Level::Type, Level::Instance],
    resource_types: &["Measure"],
    methods: &[InvokeMethod::Get, InvokeMethod::Post],
    affects_state: false,
    definition: "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure",
    kind: OperationKind::Operation,
    audience: Audience::Institutions,
};

/// Every operation the decision-support service owns.
pub const OPERATIONS: &[OperationDecl] = &[EVALUATE_MEASURE];
