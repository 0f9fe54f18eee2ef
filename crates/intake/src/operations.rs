//! The FHIR operations the intake owns, declared once (the server dispatches them and lists
//! them in its CapabilityStatement from this table).

use fhir_model::operation::{Audience, InvokeMethod, Level, OperationDecl, OperationKind};

/// `POST Device/[id]/$issue-secret`: a new secret for the device to sign its uploads with,
/// answered once (the earlier one stops working within a minute). Administrators only: a
/// device's credentials are the platform's to give.
pub const ISSUE_SECRET: OperationDecl = OperationDecl {
    name: "$issue-secret",
    levels: &[Level::Instance],
    resource_types: &["Device"],
    methods: &[InvokeMethod::Post],
    affects_state: true,
    definition: "https://meridian.example/fhir/OperationDefinition/Device-issue-secret",
    kind: OperationKind::Operation,
    audience: Audience::Administrators,
};

/// Every operation the intake owns.
pub const OPERATIONS: &[OperationDecl] = &[ISSUE_SECRET];
