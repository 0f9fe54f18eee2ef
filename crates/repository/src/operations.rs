//! The operations the repository owns, declared once: the server dispatches them and lists
//! them in its CapabilityStatement from this table. `$validate` and `$everything` are the
//! base specification's; `$export` is Bulk Data's at its three levels, each with its own
//! OperationDefinition, and its status and file URLs are Bulk Data endpoints, not operations
//! (no OperationDefinition describes them; clients follow the URLs the server hands out).

use fhir_model::operation::{Audience, InvokeMethod, Level, OperationDecl, OperationKind};

pub const VALIDATE: OperationDecl = OperationDecl {
    name: "$validate",
    levels: &[Level::Type, Level::Instance],
    resource_types: &[],
    methods: &[InvokeMethod::Post],
    affects_state: false,
    definition: "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    kind: OperationKind::Operation,
    audience: Audience::SignedIn,
};

pub const EVERYTHING: OperationDecl = OperationDecl {
    name: "$everything",
    levels: &[Level::Instance],
    resource_types: &["Patient"],
    methods: &[InvokeMethod::Get, InvokeMethod::Post],
    affects_state: false,
    definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    kind: OperationKind::Operation,
    audience: Audience::SignedIn,
};

pub const EXPORT_SYSTEM: OperationDecl = OperationDecl {
    name: "$export",
    levels: &[Level::System],
    resource_types: &[],
    methods: &[InvokeMethod::Get],
    affects_state: false,
    definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
    kind: OperationKind::Operation,
    audience: Audience::Platform,
};

pub const EXPORT_PATIENT: OperationDecl = OperationDecl {
    name: "$export",
    levels: &[Level::Type],
    resource_types: &["Patient"],
    methods: &[InvokeMethod::Get],
    affects_state: false,
    definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
    kind: OperationKind::Operation,
    audience: Audience::Institutions,
};

pub const EXPORT_GROUP: OperationDecl = OperationDecl {
    name: "$export",
    levels: &[Level::Instance],
    resource_types: &["Group"],
    methods: &[InvokeMethod::Get],
    affects_state: false,
    definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
    kind: OperationKind::Operation,
    audience: Audience::Institutions,
};

/// `[base]/$export-status/[job]`: poll (GET) or cancel (DELETE) an export.
pub const EXPORT_STATUS: OperationDecl = OperationDecl {
    name: "$export-status",
    levels: &[Level::System],
    resource_types: &[],
    methods: &[InvokeMethod::Get, InvokeMethod::Delete],
    affects_state: true,
    definition: "http://hl7.org/fhir/uv/bulkdata/export.html#bulk-data-status-request",
    kind: OperationKind::Endpoint { path_segments: 1 },
    audience: Audience::SignedIn,
};

/// `[base]/$export-file/[job]/[file]`: one output file of a finished export.
pub const EXPORT_FILE: OperationDecl = OperationDecl {
    name: "$export-file",
    levels: &[Level::System],
    resource_types: &[],
    methods: &[InvokeMethod::Get],
    affects_state: false,
    definition: "http://hl7.org/fhir/uv/bulkdata/export.html#file-request",
    kind: OperationKind::Endpoint { path_segments: 2 },
    audience: Audience::SignedIn,
};

/// Every operation (and Bulk Data endpoint) the repository owns.
pub const OPERATIONS: &[OperationDecl] = &[
    VALIDATE,
    EVERYTHING,
    EXPORT_SYSTEM,
    EXPORT_PATIENT,
    EXPORT_GROUP,
    EXPORT_STATUS,
    EXPORT_FILE,
];
