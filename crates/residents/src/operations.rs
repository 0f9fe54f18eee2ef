//! The operations the identity service owns, declared once: the server dispatches them and
//! lists them in its CapabilityStatement from this table. Those without an official
//! OperationDefinition point at this server's own canonical.

use fhir_model::operation::{Audience, InvokeMethod, Level, OperationDecl, OperationKind};

const fn operation(
    name: &'static str,
    levels: &'static [Level],
    resource_types: &'static [&'static str],
    methods: &'static [InvokeMethod],
    affects_state: bool,
    definition: &'static str,
    audience: Audience,
) -> OperationDecl {
    OperationDecl {
        name,
        levels,
        resource_types,
        methods,
        affects_state,
        definition,
        kind: OperationKind::Operation,
        audience,
    }
}

const PATIENT: &[&str] = &["Patient"];
const PERSON: &[&str] = &["Person"];
const TASK: &[&str] = &["Task"];
use InvokeMethod::{Get, Post};
use Level::{Instance, Type};

/// `Patient/$match`: the residents a Patient may be, scored.
pub const MATCH: OperationDecl = operation(
    "$match",
    &[Type],
    PATIENT,
    &[Post],
    false,
    "http://hl7.org/fhir/OperationDefinition/Patient-match",
    Audience::Institutions,
);
/// PIXm (ITI-83): a Patient's identifiers at the other institutions.
pub const IHE_PIX: OperationDecl = operation(
    "$ihe-pix",
    &[Type],
    PATIENT,
    &[Get],
    false,
    "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix",
    Audience::Institutions,
);
/// Issues a health code for a Patient's resident (a printed one voids the last).
pub const HEALTH_CODE: OperationDecl = operation(
    "$health-code",
    &[Instance],
    PATIENT,
    &[Post],
    true,
    "urn:meridian:operation:health-code",
    Audience::ResidentsAndInstitutions,
);
/// Resolves a health code to its resident (and audits the look-up).
pub const RESOLVE_HEALTH_CODE: OperationDecl = operation(
    "$resolve-health-code",
    &[Type],
    PATIENT,
    &[Post],
    true,
    "urn:meridian:operation:resolve-health-code",
    Audience::Institutions,
);
pub const REVOKE_HEALTH_CODE: OperationDecl = operation(
    "$revoke-health-code",
    &[Type],
    PATIENT,
    &[Post],
    true,
    "urn:meridian:operation:revoke-health-code",
    Audience::ResidentsAndInstitutions,
);
pub const LINK: OperationDecl = operation(
    "$link",
    &[Instance],
    PERSON,
    &[Post],
    true,
    "urn:meridian:operation:person-link",
    Audience::Administrators,
);
pub const UNLINK: OperationDecl = operation(
    "$unlink",
    &[Instance],
    PERSON,
    &[Post],
    true,
    "urn:meridian:operation:person-unlink",
    Audience::Administrators,
);
pub const MERGE: OperationDecl = operation(
    "$merge",
    &[Type],
    PERSON,
    &[Post],
    true,
    "urn:meridian:operation:person-merge",
    Audience::Administrators,
);
/// The matching model in use.
pub const MODEL: OperationDecl = operation(
    "$model",
    &[Type],
    PERSON,
    &[Get],
    false,
    "urn:meridian:operation:person-model",
    Audience::Administrators,
);
/// Re-estimates the matching model from the Patients held, and acts on what it finds.
pub const ESTIMATE_MODEL: OperationDecl = operation(
    "$estimate-model",
    &[Type],
    PERSON,
    &[Post],
    true,
    "urn:meridian:operation:person-estimate-model",
    Audience::Administrators,
);
pub const ACCEPT_MATCH: OperationDecl = operation(
    "$accept-match",
    &[Instance],
    TASK,
    &[Post],
    true,
    "urn:meridian:operation:accept-match",
    Audience::Administrators,
);
pub const REJECT_MATCH: OperationDecl = operation(
    "$reject-match",
    &[Instance],
    TASK,
    &[Post],
    true,
    "urn:meridian:operation:reject-match",
    Audience::Administrators,
);

/// Every operation the identity service owns.
pub const OPERATIONS: &[OperationDecl] = &[
    MATCH,
    IHE_PIX,
    HEALTH_CODE,
    RESOLVE_HEALTH_CODE,
    REVOKE_HEALTH_CODE,
    LINK,
    UNLINK,
    MERGE,
    MODEL,
    ESTIMATE_MODEL,
    ACCEPT_MATCH,
    REJECT_MATCH,
];
