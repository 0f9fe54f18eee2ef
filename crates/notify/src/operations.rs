//! The FHIR operations the notification service owns, declared once: the server dispatches
//! them and lists them in its CapabilityStatement from this table.

use fhir_model::operation::{Audience, InvokeMethod, Level, OperationDecl, OperationKind};

/// `Subscription/ID/$status`: the subscription's status and event count.
pub const STATUS: OperationDecl = OperationDecl {
    name: "$status",
    levels: &[Level::Instance],
    resource_types: &["Subscription"],
    methods: &[InvokeMethod::Get, InvokeMethod::Post],
    affects_state: false,
    definition: "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status",
    kind: OperationKind::Operation,
    audience: Audience::SignedIn,
};

/// `Subscription/ID/$events`: kept events by number, for a client that missed some.
pub const EVENTS: OperationDecl = OperationDecl {
    name: "$events",
    levels: &[Level::Instance],
    resource_types: &["Subscription"],
    methods: &[InvokeMethod::Get, InvokeMethod::Post],
    affects_state: false,
    definition: "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events",
    kind: OperationKind::Operation,
    audience: Audience::SignedIn,
};

/// `Subscription/ID/$get-ws-binding-token`: a token a websocket client binds with (POST: it
/// makes the token).
pub const GET_WS_BINDING_TOKEN: OperationDecl = OperationDecl {
    name: "$get-ws-binding-token",
    levels: &[Level::Instance],
    resource_types: &["Subscription"],
    methods: &[InvokeMethod::Post],
    affects_state: true,
    definition: "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-get-ws-binding-token",
    kind: OperationKind::Operation,
    audience: Audience::SignedIn,
};

/// Every operation the notification service owns.
pub const OPERATIONS: &[OperationDecl] = &[STATUS, EVENTS, GET_WS_BINDING_TOKEN];
