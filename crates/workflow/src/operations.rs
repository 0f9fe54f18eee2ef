//! The FHIR operations the workflow service owns, declared once: the server dispatches them
//! and lists them in its CapabilityStatement from this table.

use fhir_model::operation::{Audience, InvokeMethod, Level, OperationDecl, OperationKind};

const fn declared(
    name: &'static str,
    resource_types: &'static [&'static str],
    methods: &'static [InvokeMethod],
    affects_state: bool,
    definition: &'static str,
    audience: Audience,
) -> OperationDecl {
    OperationDecl {
        name,
        levels: &[Level::Type],
        resource_types,
        methods,
        affects_state,
        definition,
        kind: OperationKind::Operation,
        audience,
    }
}

/// `Slot/$find` (the free slots the caller may book now) and `Appointment/$find` (the same,
/// as proposed appointments).
pub const FIND: OperationDecl = declared(
    "$find",
    &["Slot", "Appointment"],
    &[InvokeMethod::Get, InvokeMethod::Post],
    false,
    "https://meridian.example/fhir/OperationDefinition/Appointment-find",
    Audience::SignedIn,
);

/// `Appointment/$book`: an appointment completed from its slot and created; the slot is
/// taken in the same transaction.
pub const BOOK: OperationDecl = declared(
    "$book",
    &["Appointment"],
    &[InvokeMethod::Post],
    true,
    "https://meridian.example/fhir/OperationDefinition/Appointment-book",
    Audience::ResidentsAndInstitutions,
);

/// `Appointment/$check-in`: the resident an electronic health code names is checked in for
/// today's appointment at the caller's institution.
pub const CHECK_IN: OperationDecl = declared(
    "$check-in",
    &["Appointment"],
    &[InvokeMethod::Post],
    true,
    "https://meridian.example/fhir/OperationDefinition/Appointment-check-in",
    Audience::Institutions,
);

/// `Task/$worklist`: the open Tasks addressed to the caller's institution, soonest due first.
pub const WORKLIST: OperationDecl = declared(
    "$worklist",
    &["Task"],
    &[InvokeMethod::Get],
    false,
    "https://meridian.example/fhir/OperationDefinition/Task-worklist",
    Audience::Institutions,
);

/// `Task/$escalate`: escalates what is overdue at `now` (the present when not given).
pub const ESCALATE: OperationDecl = declared(
    "$escalate",
    &["Task"],
    &[InvokeMethod::Post],
    true,
    "https://meridian.example/fhir/OperationDefinition/Task-escalate",
    Audience::Administrators,
);

/// `Task/$turnaround`: turnaround figures per institution for a month.
pub const TURNAROUND: OperationDecl = declared(
    "$turnaround",
    &["Task"],
    &[InvokeMethod::Get],
    false,
    "https://meridian.example/fhir/OperationDefinition/Task-turnaround",
    Audience::Institutions,
);

/// Every operation the workflow service owns.
pub const OPERATIONS: &[OperationDecl] = &[FIND, BOOK, CHECK_IN, WORKLIST, ESCALATE, TURNAROUND];
