//! The audit trail: what every access to patient data becomes, as IHE Basic Audit Log Patterns
//! (BALP) `AuditEvent`s, and the sink that makes them durable ([`sink`]).
//!
//! This module builds events from facts and knows no HTTP: the edge that served a request says
//! what it did ([`RestAccess`]: the interaction, the patients named and shown, the resources
//! touched, the outcome) and who asked (the [`Caller`]); [`rest_events`] turns that into one
//! event per patient, as BALP asks, so that each resident's `AuditEvent?patient=` lists every
//! access to their record. Sign-in ([`login`], [`login_failed`]), consent changes and Bulk
//! Data exports have builders of their own.
//!
//! Every event carries the caller as agents (the user with `requestor` and the purpose of use,
//! the organisation they act for, the client with the network address, this server as the
//! destination), the request id as an entity, and, for break-glass, the purpose `ETREAT`, the
//! security label `BTG` in `meta.security` (so `AuditEvent?_security=...|BTG` finds every one
//! for review) and the stated reason in an extension.

pub mod sink;

use base64::Engine as _;
use caller::{Actor, Caller};
use serde_json::{Map, Value, json};

pub use sink::{AuditError, AuditSink, PreparedEvents, SinkConfig, SinkStats};

/// `AuditEvent.type` of a RESTful interaction.
pub const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
/// `AuditEvent.subtype` of a RESTful interaction: `read`, `search-type`, `create`, ...
pub const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
/// DICOM's codes: agent roles, and the user-authentication event.
pub const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// Meridian's own subtypes, where neither FHIR nor BALP names the event (consent changes,
/// exports, export files).
pub const MERIDIAN_AUDIT: &str = "urn:meridian:audit";
/// The v3 purposes of use (`TREAT`, `ETREAT`, ...).
pub const PURPOSE_OF_USE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
/// The security label of a break-glass access (`BTG`), in `meta.security`.
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// The extension that carries a break-glass access's stated reason.
pub const BREAK_GLASS_REASON: &str = "urn:meridian:break-glass-reason";
/// The identifier system of OAuth clients and of accounts without a FHIR resource.
pub const CLIENT_SYSTEM: &str = "urn:meridian:client";
pub const ACCOUNT_SYSTEM: &str = "urn:meridian:account";

const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const ROLE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleClass";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const BALP_ENTITY_TYPE: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";

/// The server that observes and records the events (`AuditEvent.source`, and the destination
/// agent of every RESTful event).
#[derive(Debug, Clone)]
pub struct Observer {
    /// How the server names itself (`Meridian`).
    pub name: String,
    /// Its FHIR base URL, when known (the destination's network address).
    pub base: Option<String>,
}

impl Default for Observer {
    fn default() -> Observer {
        Observer {
            name: "Meridian".into(),
            base: None,
        }
    }
}

/// A RESTful interaction, as `http://hl7.org/fhir/restful-interaction` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    Read,
    Vread,
    HistoryInstance,
    HistoryType,
    HistorySystem,
    /// A search of one type, also in a compartment (`Patient/1/Observation`).
    SearchType,
    SearchSystem,
    Create,
    Update,
    Patch,
    Delete,
    /// A transaction or batch Bundle as a whole (its entries are interactions of their own).
    Transaction,
    Batch,
    /// An operation (`$everything`, `$export`, `$match`, ...), by its name with the `$`.
    Operation(String),
}

impl Interaction {
    /// The `restful-interaction` code.
    pub fn code(&self) -> &'static str {
        match self {
            Interaction::Read => "read",
            Interaction::Vread => "vread",
            Interaction::HistoryInstance => "history-instance",
            Interaction::HistoryType => "history-type",
            Interaction::HistorySystem => "history-system",
            Interaction::SearchType => "search-type",
            Interaction::SearchSystem => "search-system",
            Interaction::Create => "create",
            Interaction::Update => "update",
            Interaction::Patch => "patch",
            Interaction::Delete => "delete",
            Interaction::Transaction => "transaction",
            Interaction::Batch => "batch",
            Interaction::Operation(_) => "operation",
        }
    }

    /// `AuditEvent.action`: C, R, U, D, or E for queries and operations (as BALP's Query
    /// pattern has it).
    pub fn action(&self) -> &'static str {
        match self {
            Interaction::Read | Interaction::Vread => "R",
            Interaction::Create => "C",
            Interaction::Update | Interaction::Patch => "U",
            Interaction::Delete => "D",
            Interaction::HistoryInstance
            | Interaction::HistoryType
            | Interaction::HistorySystem
            | Interaction::SearchType
            | Interaction::SearchSystem
            | Interaction::Transaction
            | Interaction::Batch
            | Interaction::Operation(_) => "E",
        }
    }

    fn writes(&self) -> bool {
        matches!(self.action(), "C" | "U" | "D")
    }
}

/// How the access ended (`AuditEvent.outcome`, with its description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// `0`: done.
    Success,
    /// `4`: refused or not possible as asked (a denial, a bad request, nothing found).
    MinorFailure(String),
    /// `8`: the server failed.
    SeriousFailure(String),
}

impl EventOutcome {
    /// The outcome of an HTTP answer: 2xx and 3xx succeeded, 4xx were refused, 5xx failed.
    pub fn of_status(status: u16, description: impl Into<String>) -> EventOutcome {
        match status {
            0..=399 => EventOutcome::Success,
            400..=499 => EventOutcome::MinorFailure(description.into()),
            _ => EventOutcome::SeriousFailure(description.into()),
        }
    }

    /// `AuditEvent.outcome`: `0`, `4` or `8`.
    pub fn code(&self) -> &'static str {
        match self {
            EventOutcome::Success => "0",
            EventOutcome::MinorFailure(_) => "4",
            EventOutcome::SeriousFailure(_) => "8",
        }
    }

    fn description(&self) -> Option<&str> {
        match self {
            EventOutcome::Success => None,
            EventOutcome::MinorFailure(d) | EventOutcome::SeriousFailure(d) => Some(d),
        }
    }
}

/// What one RESTful request did, as the edge that served it saw it.
#[derive(Debug, Clone)]
pub struct RestAccess {
    pub interaction: Interaction,
    /// The type the request was about (none at the system level).
    pub resource_type: Option<String>,
    /// For searches, history and operations: the request as sent (`Observation?code=...`),
    /// recorded base64-encoded in the query entity.
    pub query: Option<String>,
    /// The patients named by the request or shown by its answer (`Patient/12`), each once.
    pub patients: Vec<String>,
    /// The resources read or written (`Observation/5/_history/2`); for searches, none (the
    /// query stands for them).
    pub resources: Vec<String>,
    pub outcome: EventOutcome,
    /// More subtypes (`urn:meridian:audit|consent-change`, `|export`, ...).
    pub extra_subtypes: Vec<Value>,
    /// `(patient, Task/ID)`: the open consultations and referrals addressed to the caller's
    /// institution about a patient of this access, under which it reads what they share
    /// (the event of that patient names them as its policy).
    pub grants: Vec<(String, String)>,
}

impl RestAccess {
    pub fn new(interaction: Interaction, resource_type: Option<&str>) -> RestAccess {
        RestAccess {
            interaction,
            resource_type: resource_type.map(str::to_owned),
            query: None,
            patients: Vec::new(),
            resources: Vec::new(),
            outcome: EventOutcome::Success,
            extra_subtypes: Vec::new(),
            grants: Vec::new(),
        }
    }

    /// Names a patient, once.
    pub fn add_patient(&mut self, patient: impl Into<String>) {
        let patient = patient.into();
        if !self.patients.contains(&patient) {
            self.patients.push(patient);
        }
    }

    /// Names a resource touched, once.
    pub fn add_resource(&mut self, reference: impl Into<String>) {
        let reference = reference.into();
        if !self.resources.contains(&reference) {
            self.resources.push(reference);
        }
    }
}

/// The AuditEvents of one RESTful request: one per patient it named or showed (BALP: each
/// patient's own trail must show the access), or one naming no patient.
pub fn rest_events(caller: &Caller, observer: &Observer, access: &RestAccess) -> Vec<Value> {
    let mut subtype =
        vec![json!({"system": RESTFUL_INTERACTION, "code": access.interaction.code()})];
    if let Interaction::Operation(name) = &access.interaction {
        subtype.push(json!({"system": MERIDIAN_AUDIT, "code": name}));
    }
    subtype.extend(access.extra_subtypes.iter().cloned());
    let base = Event {
        kind: json!({"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "Restful Operation"}),
        subtype,
        action: access.interaction.action(),
        outcome: &access.outcome,
    };
    let user_type = if access.interaction.writes() {
        json!({"coding": [{"system": PARTICIPATION, "code": "AUT", "display": "author (originator)"}]})
    } else {
        json!({"coding": [{"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}]})
    };
    let mut data_entities: Vec<Value> = access
        .resources
        .iter()
        .map(|reference| {
            json!({
                "what": {"reference": reference},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            })
        })
        .collect();
    if let Some(query) = &access.query {
        let mut entity = json!({
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
            "query": base64::engine::general_purpose::STANDARD.encode(query),
        });
        if let Some(resource_type) = &access.resource_type {
            entity["description"] = json!(resource_type);
        }
        data_entities.push(entity);
    }
    let who = Principal::of(caller);
    let patients: Vec<Option<&str>> = if access.patients.is_empty() {
        vec![None]
    } else {
        access.patients.iter().map(|p| Some(p.as_str())).collect()
    };
    patients
        .into_iter()
        .map(|patient| {
            let mut entities = Vec::new();
            if let Some(patient) = patient {
                entities.push(patient_entity(patient));
            }
            entities.extend(data_entities.iter().cloned());
            let grants: Vec<&str> = access
                .grants
                .iter()
                .filter(|(p, _)| Some(p.as_str()) == patient)
                .map(|(_, task)| task.as_str())
                .collect();
            if grants.is_empty() {
                return base.build(&who, observer, user_type.clone(), entities);
            }
            // Under an open consultation or referral: recorded as such.
            for task in &grants {
                entities.push(json!({
                    "what": {"reference": task},
                    "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                    "role": {"system": OBJECT_ROLE, "code": "20", "display": "Job"},
                    "description": "the open request addressed to the institution, which shares this patient's records with it",
                }));
            }
            let mut event = Event {
                kind: base.kind.clone(),
                subtype: base.subtype.clone(),
                action: base.action,
                outcome: base.outcome,
            };
            event.subtype.push(json!({"system": MERIDIAN_AUDIT, "code": "workflow-access",
                "display": "under an open consultation or referral"}));
            let mut built = event.build(&who, observer, user_type.clone(), entities);
            if let Some(requestor) = built["agent"]
                .as_array_mut()
                .and_then(|agents| agents.iter_mut().find(|a| a["requestor"] == true))
            {
                requestor["policy"] = json!(grants);
            }
            built
        })
        .collect()
}

/// A consent given, changed or revoked: the RESTful event of the write (`create`, `update`,
/// `patch` or `delete` of a Consent) marked `urn:meridian:audit|consent-change`, naming the
/// patient whose consent it is.
pub fn consent_change(
    caller: &Caller,
    observer: &Observer,
    interaction: Interaction,
    consent: &str,
    patient: Option<&str>,
    outcome: EventOutcome,
) -> Value {
    let mut access = RestAccess::new(interaction, Some("Consent"));
    access.add_resource(consent);
    if let Some(patient) = patient {
        access.add_patient(patient);
    }
    access.outcome = outcome;
    access.extra_subtypes.push(consent_change_subtype());
    rest_events(caller, observer, &access).remove(0)
}

/// The subtype that marks a consent change among RESTful events.
pub fn consent_change_subtype() -> Value {
    json!({"system": MERIDIAN_AUDIT, "code": "consent-change", "display": "Consent changed"})
}

/// A sign-in attempt, for [`login`] and [`login_failed`].
#[derive(Debug, Clone, Default)]
pub struct SignIn<'a> {
    /// The request's id (`X-Request-Id`), to join the event to the server's log.
    pub request_id: &'a str,
    /// The account name given.
    pub account: &'a str,
    /// The FHIR resource the account stands for (`Practitioner/7`, `Patient/12`), when known.
    pub user: Option<&'a str>,
    /// The organisation chosen at sign-in (`Organization/3`).
    pub organization: Option<&'a str>,
    /// The OAuth client the sign-in was for.
    pub client_id: Option<&'a str>,
    /// Where the attempt came from.
    pub address: Option<std::net::IpAddr>,
}

/// A successful sign-in (DICOM `110114` User Authentication, subtype `110122` Login): for the
/// authorization server to record when it issues a user's tokens, through the audit sink.
pub fn login(observer: &Observer, sign_in: &SignIn<'_>) -> Value {
    authentication(observer, sign_in, EventOutcome::Success)
}

/// A refused sign-in (wrong password, unknown account, throttled, bad client assertion):
/// outcome `4` with `why` (never the password). A resident's failed sign-ins are listed under
/// their patient when the account is known.
pub fn login_failed(observer: &Observer, sign_in: &SignIn<'_>, why: &str) -> Value {
    authentication(
        observer,
        sign_in,
        EventOutcome::MinorFailure(why.to_owned()),
    )
}

fn authentication(observer: &Observer, sign_in: &SignIn<'_>, outcome: EventOutcome) -> Value {
    // Nobody is signed in yet: the event names who tried, as the attempt described them.
    let who = Principal {
        request_id: sign_in.request_id,
        actor: match sign_in.user {
            Some(user) => Actor::User(user.to_owned()),
            None => Actor::Administrator(sign_in.account.to_owned()),
        },
        organization: sign_in.organization,
        client_id: sign_in.client_id,
        purpose: caller::DEFAULT_PURPOSE,
        break_glass: None,
        address: sign_in.address,
    };
    let event = Event {
        kind: json!({"system": DCM, "code": "110114", "display": "User Authentication"}),
        subtype: vec![json!({"system": DCM, "code": "110122", "display": "Login"})],
        action: "E",
        outcome: &outcome,
    };
    let mut entities = Vec::new();
    if let Some(patient) = sign_in.user.filter(|u| u.starts_with("Patient/")) {
        entities.push(patient_entity(patient));
    }
    let mut audit = event.build(
        &who,
        observer,
        json!({"coding": [{"system": ROLE_CLASS, "code": "AGNT", "display": "agent"}]}),
        entities,
    );
    // The account name as the user's alternative id: a failed sign-in may have no resource.
    if let Some(user) = audit["agent"][0].as_object_mut() {
        user.insert("altId".into(), json!(sign_in.account));
    }
    audit
}

/// Who an event's agents are: the request's caller, or for a sign-in, who tried.
struct Principal<'a> {
    request_id: &'a str,
    actor: Actor,
    organization: Option<&'a str>,
    client_id: Option<&'a str>,
    purpose: &'a str,
    break_glass: Option<&'a str>,
    address: Option<std::net::IpAddr>,
}

impl<'a> Principal<'a> {
    fn of(caller: &'a Caller) -> Principal<'a> {
        Principal {
            request_id: &caller.request_id,
            actor: caller.actor.clone(),
            organization: caller.organization.as_deref(),
            client_id: caller.client_id.as_deref(),
            purpose: &caller.purpose,
            break_glass: caller.break_glass.as_deref(),
            address: caller.address,
        }
    }
}

/// The parts every event shares.
struct Event<'a> {
    kind: Value,
    subtype: Vec<Value>,
    action: &'static str,
    outcome: &'a EventOutcome,
}

impl Event<'_> {
    fn build(
        &self,
        who: &Principal<'_>,
        observer: &Observer,
        user_type: Value,
        mut entities: Vec<Value>,
    ) -> Value {
        let recorded = fhir_model::clock::format_instant(fhir_model::clock::now_micros());
        if !who.request_id.is_empty() {
            entities.push(json!({
                "what": {"identifier": {"value": who.request_id}},
                "type": {"system": BALP_ENTITY_TYPE, "code": "XrequestId", "display": "X-Request-Id"},
            }));
        }
        let mut audit = Map::new();
        audit.insert("resourceType".into(), json!("AuditEvent"));
        if let Some(reason) = who.break_glass {
            audit.insert(
                "meta".into(),
                json!({"security": [{"system": ACT_CODE, "code": "BTG", "display": "break the glass"}]}),
            );
            audit.insert(
                "extension".into(),
                json!([{"url": BREAK_GLASS_REASON, "valueString": reason}]),
            );
        }
        audit.insert("type".into(), self.kind.clone());
        audit.insert("subtype".into(), json!(self.subtype));
        audit.insert("action".into(), json!(self.action));
        audit.insert("recorded".into(), json!(recorded));
        audit.insert("outcome".into(), json!(self.outcome.code()));
        if let Some(description) = self.outcome.description() {
            audit.insert("outcomeDesc".into(), json!(description));
        }
        audit.insert(
            "agent".into(),
            Value::Array(agents(who, observer, user_type)),
        );
        audit.insert(
            "source".into(),
            json!({
                "observer": {"display": observer.name},
                "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
            }),
        );
        if !entities.is_empty() {
            audit.insert("entity".into(), Value::Array(entities));
        }
        Value::Object(audit)
    }
}

/// The agents of an event: the user (or the client acting on its own), the organisation they
/// act for, the client the request came through (with the address) and this server.
fn agents(who: &Principal<'_>, observer: &Observer, user_type: Value) -> Vec<Value> {
    let mut purpose = vec![json!({"coding": [{"system": PURPOSE_OF_USE, "code": who.purpose}]})];
    if who.break_glass.is_some() && who.purpose != "ETREAT" {
        purpose.push(json!({"coding": [{"system": PURPOSE_OF_USE, "code": "ETREAT"}]}));
    }
    let client_who = who.client_id.map(|id| {
        json!({"identifier": {"system": CLIENT_SYSTEM, "value": id}, "display": format!("client {id}")})
    });
    let network = who
        .address
        .map(|address| json!({"address": address.to_string(), "type": "2"}));
    let mut agents = Vec::new();
    let user_who = match &who.actor {
        Actor::User(reference) => Some(json!({"reference": reference})),
        Actor::Administrator(name) => {
            Some(json!({"identifier": {"system": ACCOUNT_SYSTEM, "value": name}, "display": name}))
        }
        Actor::Operator => Some(json!({"display": "operator"})),
        Actor::Anonymous => Some(json!({"display": "anonymous"})),
        // A client acting on its own is the requestor itself (below).
        Actor::Client(_) => None,
    };
    let user_type = match &who.actor {
        Actor::User(reference) if reference.starts_with("Patient/") => {
            json!({"coding": [{"system": ROLE_CLASS, "code": "PAT", "display": "patient"}]})
        }
        _ => user_type,
    };
    if let Some(who) = user_who {
        agents.push(json!({
            "type": user_type,
            "who": who,
            "requestor": true,
            "purposeOfUse": purpose,
        }));
    }
    if let Some(organization) = who.organization {
        agents.push(json!({
            "type": {"coding": [{"system": ROLE_CLASS, "code": "PROV", "display": "healthcare provider"}]},
            "who": {"reference": organization},
            "requestor": false,
        }));
    }
    let mut client = json!({
        "type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
        "who": match (&who.actor, client_who) {
            (Actor::Client(id), _) => json!({"identifier": {"system": CLIENT_SYSTEM, "value": id}, "display": format!("client {id}")}),
            (_, Some(who)) => who,
            (_, None) => json!({"display": "unidentified client"}),
        },
        "requestor": matches!(who.actor, Actor::Client(_)),
    });
    if matches!(who.actor, Actor::Client(_)) {
        client["purposeOfUse"] = json!(purpose);
    }
    if let Some(network) = network {
        client["network"] = network;
    }
    agents.push(client);
    let mut server = json!({
        "type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
        "who": {"display": observer.name},
        "requestor": false,
    });
    if let Some(base) = &observer.base {
        server["network"] = json!({"address": base, "type": "5"});
    }
    agents.push(server);
    agents
}

fn patient_entity(patient: &str) -> Value {
    json!({
        "what": {"reference": patient},
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    })
}

/// The patients a resource belongs to (its Patient compartment), for an answer that shows it.
pub fn patients_of(indexer: &search::Indexer, resource: &Value) -> Vec<String> {
    match resource.get("resourceType").and_then(Value::as_str) {
        Some(resource_type) => indexer.compartment_patients(resource_type, resource),
        None => Vec::new(),
    }
}

/// The patients of every resource in a Bundle the server built (a searchset, a history, a
/// transaction response with representations), each once, in order.
pub fn patients_in_bundle(indexer: &search::Indexer, bundle: &Value) -> Vec<String> {
    let mut patients: Vec<String> = Vec::new();
    for entry in bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(resource) = entry.get("resource") {
            for patient in patients_of(indexer, resource) {
                if !patients.contains(&patient) {
                    patients.push(patient);
                }
            }
        }
    }
    patients
}

/// Whether resources of `resource_type` hold patient data: a Patient, or a type in the Patient
/// compartment. A request about other types (the directory, conformance resources) is audited
/// only when its answer shows patient data anyway (`_include`, `_revinclude`).
pub fn holds_patient_data(resource_type: &str) -> bool {
    resource_type == "Patient"
        || !fhir_model::r4()
            .compartment_params("Patient", resource_type)
            .is_empty()
}

/// Refuses a batch or transaction Bundle any entry of which would create, change or delete an
/// AuditEvent (by its URL or its resource), before anything of it is written: the trail is
/// written by the server only.
pub fn check_bundle_leaves_trail_alone(bundle: &Value) -> Result<(), AuditError> {
    let entries = bundle.get("entry").and_then(Value::as_array);
    for (i, entry) in entries.into_iter().flatten().enumerate() {
        let request = entry.get("request");
        let method = request
            .and_then(|r| r.get("method"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if matches!(method, "GET" | "HEAD") {
            continue;
        }
        let url = request
            .and_then(|r| r.get("url"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let path = url.split('?').next().unwrap_or("");
        let names_trail = path.split('/').any(|segment| segment == "AuditEvent");
        let carries_event = entry
            .get("resource")
            .and_then(|r| r.get("resourceType"))
            .and_then(Value::as_str)
            == Some("AuditEvent");
        if names_trail || carries_event {
            return Err(AuditError::Immutable { entry: Some(i) });
        }
    }
    Ok(())
}
