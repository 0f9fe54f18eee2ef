//! The operations the analytics service answers over FHIR, declared here and bound by the
//! server (which lists them in its CapabilityStatement).

use fhir_model::operation::{Audience, InvokeMethod, Level, OperationDecl, OperationKind};

/// `POST [base]/$viewdefinition-run`: a ViewDefinition given in the Parameters
/// (`viewResource`), or one kept in the store (`viewReference` to the `Library` holding it,
/// see [`crate::stored`]), evaluated over the resources given with it (`resource`), or over the
/// server's current resources of its type that the caller may read; the rows as NDJSON
/// (the default), CSV (`header` says whether with a header row) or a JSON array (`_format`),
/// at most `_limit` of them. SQL on FHIR v2's operation, at the system level as its R4 mode
/// has it. Administrators and platform-wide clients (a health commission's analytics) only:
/// a view reads across institutions and residents, and what it reads is still only what the
/// caller's read rules let it see, each resident on the caller's trail.
pub const VIEWDEFINITION_RUN: OperationDecl = OperationDecl {
    name: "$viewdefinition-run",
    levels: &[Level::System],
    resource_types: &[],
    methods: &[InvokeMethod::Post],
    affects_state: false,
    definition: "http://sql-on-fhir.org/OperationDefinition/$viewdefinition-run",
    kind: OperationKind::Operation,
    audience: Audience::Platform,
};

/// `POST [base]/$sqlquery-run` (the query a `Library` given in the Parameters, `queryResource`,
/// or named by `queryReference`) and `POST [base]/Library/[id]/$sqlquery-run` (the query that
/// Library holds, such as an indicator's): SQL on FHIR v2.1's operation. The query reads the
/// materialised catalogue views as tables (`docs/analytics.md`); `parameter` binds values to
/// its named parameters (`:name`); the answer as a JSON array (the default), NDJSON or CSV.
/// Administrators and platform-wide clients only, like `$viewdefinition-run`; each query is
/// the request's one AuditEvent.
pub const SQLQUERY_RUN: OperationDecl = OperationDecl {
    name: "$sqlquery-run",
    levels: &[Level::System, Level::Instance],
    resource_types: &["Library"],
    methods: &[InvokeMethod::Post],
    affects_state: false,
    definition: "http://sql-on-fhir.org/OperationDefinition/$sqlquery-run",
    kind: OperationKind::Operation,
    audience: Audience::Platform,
};

pub const OPERATIONS: &[OperationDecl] = &[VIEWDEFINITION_RUN, SQLQUERY_RUN];
