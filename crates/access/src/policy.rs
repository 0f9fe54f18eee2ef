//! The access decision: what each caller may see, which interactions they may use, and who
//! holds what they write. The repository asks it (as its [`AccessPolicy`]) on every read,
//! every interaction and every version written; what it answers for reads is a filter the
//! store applies inside every query, so the rules hold for searches, totals, includes, chains,
//! `_has`, `$everything`, exports and conditional operations alike.
//!
//! The rules:
//! - Every version records its custodian: the organisation of the caller that wrote it (for
//!   the operator's loads: its `--organization`, or the resource's `meta.source` when that names
//!   an `Organization`). A resident's own writes (their consents) belong to no institution.
//! - A clinician, or an institution's client, sees what their organisation holds, the
//!   directory, and what other institutions hold about a patient under an active consent of
//!   that patient that permits their organisation (or every member institution, when it names
//!   no actor) for the request's purpose of use, for the data classes and period it names.
//!   Restricted resources (confidentiality `R`/`V`, or a sensitive category) need a consent that
//!   names their labels. Break-glass (purpose `ETREAT` with a reason) sees everything its scopes
//!   allow, for that request, audited.
//! - A workflow resource (a consultation or referral `Task`, a `ServiceRequest`, a
//!   `Communication`, a `CarePlan`) is shared with the institutions it names as its parties
//!   (`search::registry::WORKFLOW_PARTIES`): they see it, and the institution a Task is
//!   addressed to may move it (the workflow service decides which moves are legal). An
//!   institution also sees the appointments booked into its slots; while a Task addressed to
//!   it is open, what the Task shares (the patient, the focus, the attached case), unless
//!   restricted; and, always, what answers the Tasks it holds.
//! - A resident sees their own compartment and the directory, and writes their own consents.
//! - Administrators and the operator see everything; a client registered without an
//!   organisation acts platform-wide, within its scopes.
//! - Scopes bound everything: an interaction no scope grants is refused (403, naming the scope
//!   that would grant it); granular scopes and `patient/` scopes narrow what is seen.
//! - AuditEvents are written by the platform only: no caller creates, changes or deletes one.

use std::sync::Arc;

use caller::{Actor, Caller};
use fhir_model::clock;
use repository::{AccessPolicy, Forbidden, Interaction, ResourceFacts, Stewardship, WriteFacts};
use search::query::{
    Bound, Comparison, Filter, IndexTable, RangeColumn, RangePredicate, TokenColumn, Visibility,
};
use search::{Handling, ParamKey, Registry, SearchTarget, parse_search};
use serde_json::Value;

use crate::scope::{Context, ResourceScope, Scopes};

/// Resource types every signed-in caller may read: the directory of the region and the
/// definitions the platform runs on.
pub const DIRECTORY_TYPES: &[&str] = &[
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Location",
    "HealthcareService",
    "Endpoint",
    "Device",
    "CapabilityStatement",
    "StructureDefinition",
    "SearchParameter",
    "OperationDefinition",
    "ValueSet",
    "CodeSystem",
    "ConceptMap",
    "Questionnaire",
    "PlanDefinition",
    "ActivityDefinition",
    "Measure",
    "Library",
    // Published capacity: whoever may book must be able to find it.
    "Schedule",
    "Slot",
];

/// The purpose of use that, with a stated reason, is break-glass.
pub const EMERGENCY_PURPOSE: &str = "ETREAT";

/// The restricted sensitivities, each a bit of a version's `sensitivity`: confidentiality
/// (`v3-Confidentiality`) and the sensitive-information categories (`v3-ActCode`) that need a
/// consent naming them.
const SENSITIVITIES: &[(&str, &str)] = &[
    (CONFIDENTIALITY, "R"),
    (CONFIDENTIALITY, "V"),
    (ACT_CODE, "HIV"),
    (ACT_CODE, "PSY"),
    (ACT_CODE, "MH"),
    (ACT_CODE, "BH"),
    (ACT_CODE, "ETH"),
    (ACT_CODE, "SUD"),
    (ACT_CODE, "SDV"),
    (ACT_CODE, "SEX"),
    (ACT_CODE, "STD"),
];
const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// The sensitivity bits of a list of codings (`meta.security`, a consent's
/// `provision.securityLabel`). A coding without a system counts by its code.
pub fn sensitivity_of(codings: Option<&Value>) -> i64 {
    let mut bits = 0;
    for coding in codings.and_then(Value::as_array).into_iter().flatten() {
        let code = coding.get("code").and_then(Value::as_str);
        let system = coding.get("system").and_then(Value::as_str);
        for (bit, (known_system, known_code)) in SENSITIVITIES.iter().enumerate() {
            if code == Some(*known_code) && system.is_none_or(|s| s == *known_system) {
                bits |= 1 << bit;
            }
        }
    }
    bits
}

/// The access rules, as the repository's policy.
pub struct Policy {
    registry: Arc<Registry>,
    consent: ConsentKeys,
    /// `Person.link`: the master patient index's links between one resident's registrations.
    person_link: ParamKey,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::new()
    }
}

/// The index keys of the Consent parameters the rules read.
struct ConsentKeys {
    status: ParamKey,
    scope: ParamKey,
    provision_type: ParamKey,
    actor: ParamKey,
    purpose: ParamKey,
    period: ParamKey,
    class: ParamKey,
}

impl Policy {
    /// The rules, reading granular scopes with the official parameters and the platform's own.
    pub fn new() -> Policy {
        let key = |code| ParamKey::new("Consent", code);
        Policy {
            registry: Arc::new(Registry::r4(fhir_model::r4())),
            consent: ConsentKeys {
                status: key("status"),
                scope: key("scope"),
                provision_type: key("provision-type"),
                actor: key("actor"),
                purpose: key("purpose"),
                period: key("period"),
                class: key("provision-class"),
            },
            person_link: ParamKey::new("Person", "link"),
        }
    }

    /// The consents that let `organization` see a patient's records for `purpose`, now.
    fn consent_filter(&self, organization: &str, purpose: &str) -> Filter {
        let k = &self.consent;
        let token = |param: ParamKey, code: &str| code_in(param, &[code]);
        let missing = |param: ParamKey, table: IndexTable| Filter::Missing {
            param,
            table,
            missing: true,
        };
        let now = clock::now_micros();
        // The actor first: it is what sets one institution's consents apart.
        Filter::AllOf(vec![
            Filter::AnyOf(vec![
                points_at(k.actor, "Organization", organization),
                missing(k.actor, IndexTable::Reference),
            ]),
            token(k.status, "active"),
            token(k.scope, "patient-privacy"),
            token(k.provision_type, "permit"),
            Filter::AnyOf(vec![
                token(k.purpose, purpose),
                missing(k.purpose, IndexTable::Token),
            ]),
            Filter::AnyOf(vec![
                Filter::Date {
                    param: k.period,
                    predicate: RangePredicate {
                        any_of: vec![vec![
                            (RangeColumn::Low, Comparison::Le, Bound::Integer(now)),
                            (RangeColumn::High, Comparison::Ge, Bound::Integer(now)),
                        ]],
                    },
                    single: false,
                },
                missing(k.period, IndexTable::Date),
            ]),
        ])
    }

    /// What the workflows share with `organization`: the workflow resources that name it as
    /// a party, the appointments in its slots and the patients booked into them, what an open
    /// Task addressed to it shares (unless restricted), and what answers the Tasks it holds.
    fn workflow_shared(&self, organization: &str) -> Vec<Filter> {
        let party = |resource_type: &str| {
            points_at(
                ParamKey::new(resource_type, "party"),
                "Organization",
                organization,
            )
        };
        let in_my_slots = Filter::Chain {
            param: ParamKey::new("Appointment", "slot"),
            target_types: vec!["Slot".into()],
            filter: Box::new(Filter::Custodian(vec![organization.into()])),
        };
        let booked = code_in(
            ParamKey::new("Appointment", "status"),
            &["pending", "booked", "arrived", "checked-in"],
        );
        let open = code_in(
            ParamKey::new("Task", "status"),
            search::registry::OPEN_TASK_STATES,
        );
        vec![
            Filter::AnyOf(
                search::registry::WORKFLOW_PARTIES
                    .iter()
                    .map(|(resource_type, _)| party(resource_type))
                    .collect(),
            ),
            in_my_slots.clone(),
            // The patients booked into them (who is coming, and the check-in).
            Filter::Has {
                source_type: "Appointment".into(),
                param: ParamKey::new("Appointment", "patient"),
                filter: Box::new(Filter::AllOf(vec![booked, in_my_slots])),
            },
            Filter::AllOf(vec![
                Filter::Unrestricted,
                Filter::Has {
                    source_type: "Task".into(),
                    param: ParamKey::new("Task", "shares"),
                    filter: Box::new(Filter::AllOf(vec![party("Task"), open])),
                },
            ]),
            Filter::Has {
                source_type: "Task".into(),
                param: ParamKey::new("Task", "answer"),
                filter: Box::new(Filter::Custodian(vec![organization.into()])),
            },
        ]
    }

    /// What a clinician or an institution's client at `organization` sees, before scopes.
    fn institution_sees(&self, caller: &Caller, organization: &str) -> Filter {
        // Cheapest and commonest first: a row an earlier alternative admits is not probed by
        // the later ones (records read by consent far outnumber those shared by a workflow).
        let mut alternatives = vec![
            Filter::Custodian(vec![organization.into()]),
            directory(),
            Filter::CompartmentGrant {
                source_type: "Consent".into(),
                filter: Box::new(self.consent_filter(organization, &caller.purpose)),
                class_param: self.consent.class,
                link: Some(self.person_link),
            },
        ];
        alternatives.extend(self.workflow_shared(organization));
        Filter::AnyOf(alternatives)
    }

    /// What the scopes let through: for each type they let the caller read or search, that
    /// type, narrowed by a granular scope's query and by a `patient/` scope's patient. `None`
    /// when they let everything through.
    fn scope_filter(&self, caller: &Caller, scopes: &Scopes) -> Option<Filter> {
        let mut alternatives = Vec::new();
        for scope in scopes.resource_scopes() {
            if !(scope.permissions.read || scope.permissions.search) {
                continue;
            }
            let mut all = Vec::new();
            if let Some(resource_type) = &scope.resource_type {
                all.push(Filter::OfType(vec![resource_type.as_str().into()]));
                if !scope.query.is_empty() {
                    match self.granular(resource_type, scope) {
                        Some(filters) => all.extend(filters),
                        // A query the server cannot read grants nothing.
                        None => continue,
                    }
                }
            }
            if scope.context == Context::Patient {
                match &caller.patient {
                    // The patient's records, and the directory (no patient's data: what the
                    // records name, and the capacity a resident books).
                    Some(patient) => all.push(Filter::AnyOf(vec![
                        self.registrations_of(patient),
                        directory(),
                    ])),
                    None => continue,
                }
            }
            if all.is_empty() {
                return None;
            }
            alternatives.push(if all.len() == 1 {
                all.pop().expect("one")
            } else {
                Filter::AllOf(all)
            });
        }
        Some(Filter::AnyOf(alternatives))
    }

    /// The compartments of `patient` and of every registration the master patient index
    /// links with it: one resident's records at every institution.
    fn registrations_of(&self, patient: &str) -> Filter {
        Filter::AnyOf(vec![
            Filter::ResidentCompartment {
                id: patient.strip_prefix("Patient/").unwrap_or(patient).into(),
                link: self.person_link,
            },
            // The patient's own compartment also holds what points at it without being keyed
            // to it (the compartment definition's other parameters).
            compartment_of(patient),
            // Tasks are in no R4 compartment: the consultations and referrals made for the
            // patient are theirs to follow.
            points_at(ParamKey::new("Task", "subject"), "Patient", patient),
        ])
    }

    /// A granular scope's query as filters on its type.
    fn granular(&self, resource_type: &str, scope: &ResourceScope) -> Option<Vec<Filter>> {
        let parsed = parse_search(
            &self.registry,
            None,
            SearchTarget::Type(resource_type),
            &scope.query,
            Handling::Strict,
        )
        .ok()?;
        Some(parsed.query.filters)
    }
}

/// A reference row of `param` pointing at `reference` (`Type/id`, or a bare id) of
/// `target_type`.
fn points_at(param: ParamKey, target_type: &str, reference: &str) -> Filter {
    let prefix = format!("{target_type}/");
    Filter::Reference {
        param,
        target: search::query::ReferenceTarget::Local {
            types: vec![target_type.into()],
            id: reference.strip_prefix(&prefix).unwrap_or(reference).into(),
        },
    }
}

/// A token row of `param` whose code is one of `codes` (one code: that row alone).
fn code_in(param: ParamKey, codes: &[&str]) -> Filter {
    let token = |code: &&str| Filter::Token {
        param,
        column: TokenColumn::Code,
        hash: param.code_hash(code),
    };
    match codes {
        [one] => token(one),
        _ => Filter::AnyOf(codes.iter().map(token).collect()),
    }
}

/// The stored content of the version a write replaces (`None` for a deletion or content that
/// does not parse).
fn stored(previous: &store::VersionRecord) -> Option<Value> {
    repository::parse_stored(previous)
        .ok()
        .filter(|stored| !stored.is_null())
}

/// The directory and definitions: readable by every signed-in caller. The subscription topics
/// are definitions too (R4 keeps them as `Basic` resources coded `SubscriptionTopic`).
fn directory() -> Filter {
    let basic_code = ParamKey::new("Basic", "code");
    Filter::AnyOf(vec![
        Filter::OfType(DIRECTORY_TYPES.iter().map(|t| (*t).into()).collect()),
        Filter::AllOf(vec![
            Filter::OfType(vec!["Basic".into()]),
            Filter::Token {
                param: basic_code,
                column: TokenColumn::SystemCode,
                hash: basic_code
                    .system_code_hash("http://hl7.org/fhir/fhir-types", "SubscriptionTopic"),
            },
        ]),
    ])
}

/// The compartment of `Patient/id` (the patient and every resource in its compartment).
fn compartment_of(patient: &str) -> Filter {
    search::parse::patient_compartment(patient.strip_prefix("Patient/").unwrap_or(patient))
}

/// Who the caller is, for the rules.
enum Role<'c> {
    Nobody,
    /// The operator or an administrator: everything.
    Platform,
    /// A client registered without an organisation: everything its scopes allow.
    PlatformClient,
    /// A clinician or an institution's client, at this organisation.
    Institution(&'c str),
    /// A resident, by their Patient reference.
    Resident(&'c str),
}

fn role(caller: &Caller) -> Role<'_> {
    match &caller.actor {
        Actor::Anonymous => Role::Nobody,
        Actor::Operator | Actor::Administrator(_) => Role::Platform,
        Actor::Client(_) => match &caller.organization {
            Some(organization) => Role::Institution(organization),
            None => Role::PlatformClient,
        },
        Actor::User(reference) if reference.starts_with("Patient/") => Role::Resident(reference),
        Actor::User(_) => match &caller.organization {
            Some(organization) => Role::Institution(organization),
            None => Role::Nobody,
        },
    }
}

/// Break-glass: an emergency purpose with a stated reason.
pub fn is_break_glass(caller: &Caller) -> bool {
    caller.purpose == EMERGENCY_PURPOSE
        && caller
            .break_glass
            .as_deref()
            .is_some_and(|r| !r.trim().is_empty())
}

/// The caller's scopes; unreadable ones grant nothing (they were checked when granted).
fn scopes_of(caller: &Caller) -> Scopes {
    Scopes::parse_each(caller.scopes.iter().map(String::as_str)).unwrap_or_default()
}

impl AccessPolicy for Policy {
    fn visibility(&self, caller: &Caller) -> Visibility {
        let base = match role(caller) {
            Role::Nobody => return Visibility::Nothing,
            Role::Platform => return Visibility::All,
            Role::PlatformClient => None,
            Role::Institution(_) if is_break_glass(caller) => None,
            Role::Institution(organization) => Some(self.institution_sees(caller, organization)),
            Role::Resident(patient) => Some(Filter::AnyOf(vec![
                self.registrations_of(patient),
                directory(),
            ])),
        };
        let scopes = self.scope_filter(caller, &scopes_of(caller));
        match (base, scopes) {
            (None, None) => Visibility::All,
            (Some(filter), None) | (None, Some(filter)) => Visibility::Where(filter),
            (Some(base), Some(scopes)) => Visibility::Where(Filter::AllOf(vec![base, scopes])),
        }
    }

    fn permits(
        &self,
        caller: &Caller,
        interaction: Interaction,
        resource_type: &str,
    ) -> Result<(), Forbidden> {
        let writes = !matches!(interaction, Interaction::Read | Interaction::Search);
        if writes && resource_type == "AuditEvent" {
            return Err(Forbidden(
                "audit records are written by the platform only: they cannot be created, changed or deleted through the API".into(),
            ));
        }
        match role(caller) {
            Role::Nobody => {
                return Err(Forbidden("the request is not signed in".into()));
            }
            Role::Platform => return Ok(()),
            _ => {}
        }
        let wanted = interaction;
        let scopes = scopes_of(caller);
        let granted = if resource_type == "*" {
            scopes
                .resource_scopes()
                .any(|s| s.resource_type.is_none() && s.permissions.permits(wanted))
        } else {
            scopes.granting(resource_type, wanted).next().is_some()
        };
        if granted {
            return Ok(());
        }
        let context = match role(caller) {
            Role::Resident(_) => "patient",
            Role::PlatformClient => "system",
            Role::Institution(_) if matches!(caller.actor, Actor::Client(_)) => "system",
            _ => "user",
        };
        Err(Forbidden(format!(
            "the token's scopes do not allow this: it needs {context}/{resource_type}.{}",
            crate::scope::letter(wanted)
        )))
    }

    fn facts(&self, resource_type: &str, resource: &Value) -> ResourceFacts {
        let reference = |value: Option<&Value>| {
            value
                .and_then(|r| r.get("reference"))
                .and_then(Value::as_str)
                .filter(|r| r.starts_with("Patient/"))
                .map(str::to_owned)
        };
        let meta = resource.get("meta");
        let source = meta
            .and_then(|m| m.get("source"))
            .and_then(Value::as_str)
            .and_then(|source| {
                let at = source.rfind("Organization/")?;
                let reference = &source[at..];
                let id = &reference["Organization/".len()..];
                (!id.is_empty()
                    && id.len() <= 64
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
                .then(|| reference.to_owned())
            });
        if resource_type == "Consent" {
            let provision = resource.get("provision");
            return ResourceFacts {
                sensitivity: sensitivity_of(provision.and_then(|p| p.get("securityLabel"))),
                patient: reference(resource.get("patient")),
                source,
                terms: None,
            };
        }
        ResourceFacts {
            sensitivity: sensitivity_of(meta.and_then(|m| m.get("security"))),
            patient: match resource_type {
                "Patient" => None,
                // An appointment names its patient among its participants.
                "Appointment" => resource
                    .get("participant")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find_map(|p| reference(p.get("actor"))),
                "Task" => reference(resource.get("for")),
                _ => reference(resource.get("patient"))
                    .or_else(|| reference(resource.get("subject"))),
            },
            source,
            terms: None,
        }
    }

    fn admit_write(
        &self,
        caller: &Caller,
        write: &WriteFacts<'_>,
    ) -> Result<Stewardship, Forbidden> {
        let sensitivity = write.resource.map_or(0, |facts| facts.sensitivity);
        let previous_custodian = write.previous.and_then(|p| p.custodian.clone());
        let role = role(caller);
        if write.by_service {
            return Ok(Stewardship {
                custodian: previous_custodian.or_else(|| caller.organization.clone()),
                sensitivity,
            });
        }
        let name = || format!("{}/{}", write.resource_type, write.id);
        match role {
            Role::Nobody => Err(Forbidden("the request is not signed in".into())),
            Role::Platform | Role::PlatformClient => Ok(Stewardship {
                custodian: caller
                    .organization
                    .clone()
                    .or_else(|| write.resource.and_then(|f| f.source.clone()))
                    .or(previous_custodian),
                sensitivity,
            }),
            Role::Institution(organization) => {
                if write.resource_type == "Consent" {
                    return Err(Forbidden(
                        "a consent is written by the resident it belongs to".into(),
                    ));
                }
                if let Some(previous) = write.previous.filter(|p| !p.is_deleted())
                    && previous.custodian.as_deref() != Some(organization)
                {
                    // The institution a Task is addressed to moves it (the workflow service
                    // judges the move); its requester keeps holding it.
                    if write.resource_type == "Task"
                        && write.resource.is_some()
                        && stored(previous).is_some_and(|stored| {
                            search::registry::parties_of("Task", &stored)
                                .iter()
                                .any(|p| p == organization)
                        })
                    {
                        return Ok(Stewardship {
                            custodian: previous.custodian.clone(),
                            sensitivity,
                        });
                    }
                    // Which institution holds it is not said: the caller may not see it.
                    return Err(Forbidden(format!(
                        "{} is held by another institution: only its custodian changes it",
                        name()
                    )));
                }
                Ok(Stewardship {
                    custodian: Some(organization.to_owned()),
                    sensitivity,
                })
            }
            Role::Resident(patient) => {
                let about = write.resource.and_then(|f| f.patient.as_deref());
                // What the current version is about, read from its stored content.
                let previous_about = write.previous.filter(|p| !p.is_deleted()).map(|p| {
                    stored(p).and_then(|stored| self.facts(write.resource_type, &stored).patient)
                });
                let own_previous = match &previous_about {
                    None => true,
                    Some(about) => {
                        about.as_deref() == Some(patient)
                            && write.previous.is_some_and(|p| p.custodian.is_none())
                    }
                };
                let own_new = write.resource.is_none() || about == Some(patient);
                let may = if write.resource_type == "Consent" {
                    own_previous && own_new
                } else {
                    // Their own additions (readings from home); what an institution holds is
                    // the institution's to change.
                    previous_about.is_none() && write.resource.is_some() && own_new
                };
                if may {
                    return Ok(Stewardship {
                        custodian: None,
                        sensitivity,
                    });
                }
                if write.resource_type == "Consent" {
                    return Err(Forbidden(format!(
                        "a resident writes consents about their own record ({patient}) only"
                    )));
                }
                Err(Forbidden(format!(
                    "a resident may add records about themselves ({patient}) but not change {}",
                    name()
                )))
            }
        }
    }
}

/// Whether `caller` may invoke `operation` (on the resource `target`, `Patient/12`, at the
/// instance level). What the operation then reads and writes is limited by the ordinary rules.
pub fn may_invoke(
    caller: &Caller,
    operation: &fhir_model::operation::OperationDecl,
    target: Option<&str>,
) -> Result<(), Forbidden> {
    use fhir_model::operation::Audience;
    let role = role(caller);
    let allowed = match (operation.audience, &role) {
        (_, Role::Nobody) => false,
        (_, Role::Platform) => true,
        (Audience::SignedIn, _) => true,
        (Audience::Institutions, Role::Institution(_) | Role::PlatformClient) => true,
        (Audience::ResidentsAndInstitutions, Role::Institution(_) | Role::PlatformClient) => true,
        // A resident acts on their own record only.
        (Audience::ResidentsAndInstitutions, Role::Resident(patient)) => {
            target.is_none_or(|target| target == *patient)
        }
        (Audience::Platform, Role::PlatformClient) => true,
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    let who = match operation.audience {
        Audience::SignedIn => "signed-in callers",
        Audience::Institutions => "institutions",
        Audience::ResidentsAndInstitutions => "the resident it is about and institutions",
        Audience::Administrators => "administrators",
        Audience::Platform => "platform-wide clients and administrators",
    };
    Err(Forbidden(format!("{} is for {who} only", operation.name)))
}
