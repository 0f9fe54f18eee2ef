//! The server's part of the audit trail. Each handler notes what its request did on the
//! request's [`AuditNote`] (the interaction, the patients the request named and the answer
//! showed, the resources touched); once the answer is ready, the dispatcher has
//! `access::audit` build the AuditEvents and waits for the sink to commit them before the
//! answer leaves. When the trail cannot be written the answer is replaced by a 503: no data
//! leaves unrecorded (fail closed).

use std::sync::{Arc, Mutex};

use access::audit::{self, EventOutcome, Interaction, RestAccess};
use axum::response::Response;
use caller::Caller;
use repository::{Repository, Written};
use serde_json::Value;
use store::VersionRecord;

use crate::{ApiError, AppState};

/// What one request did, noted by its handler for the audit trail. Cheap to clone: clones
/// share the note, so work on a blocking thread can add to it.
#[derive(Clone, Default)]
pub(crate) struct AuditNote(Arc<Mutex<Vec<Noted>>>);

impl std::fmt::Debug for AuditNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let accesses: Vec<RestAccess> = self.lock().iter().map(|n| n.access.clone()).collect();
        f.debug_tuple("AuditNote").field(&accesses).finish()
    }
}

struct Noted {
    access: RestAccess,
    /// The request is about patient data whatever its answer shows (a type that holds it, or
    /// the whole system); otherwise it is audited only when its answer shows a patient's data.
    about_patient_data: bool,
}

impl AuditNote {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Noted>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the note of an interaction (a request may note several: a Bundle's entries).
    pub fn begin(&self, interaction: Interaction, resource_type: Option<&str>) {
        let about_patient_data = resource_type.is_none_or(audit::holds_patient_data);
        let mut access = RestAccess::new(interaction, resource_type);
        if resource_type == Some("Consent")
            && matches!(access.interaction.action(), "C" | "U" | "D")
        {
            access.extra_subtypes.push(audit::consent_change_subtype());
        }
        self.lock().push(Noted {
            access,
            about_patient_data,
        });
    }

    /// Starts the note of an interaction on one resource; a Patient names itself.
    pub fn begin_instance(&self, interaction: Interaction, resource_type: &str, id: &str) {
        self.begin(interaction, Some(resource_type));
        if resource_type == "Patient" {
            self.patients(patient_reference(id));
        }
    }

    /// The note of a write: the version now current (for a deletion, the deleting version).
    pub fn written(&self, repository: &Repository, written: &Written) {
        if let Some(record) = &written.record {
            self.version(repository, record);
        }
    }

    /// Before a deletion: the patients of the version it will end (a deletion carries no
    /// content). What the caller may not read names no one.
    pub fn before_delete(
        &self,
        repository: &Repository,
        ctx: &Caller,
        resource_type: &str,
        id: &str,
    ) {
        if let Ok(record) = repository.read(ctx, resource_type, id) {
            self.patients(patients_of_record(repository, &record));
        }
    }

    /// Adds to the interaction begun last.
    pub fn with(&self, add: impl FnOnce(&mut RestAccess)) {
        if let Some(noted) = self.lock().last_mut() {
            add(&mut noted.access);
        }
    }

    /// Marks the interaction begun last as about patient data though it is invoked on a type
    /// that holds none: an operation on a Measure or Library that computes over residents'
    /// records (a population read) is audited whatever its answer names.
    pub fn about_patient_data(&self) {
        if let Some(noted) = self.lock().last_mut() {
            noted.about_patient_data = true;
        }
    }

    /// Names patients of the interaction begun last.
    pub fn patients(&self, patients: impl IntoIterator<Item = String>) {
        self.with(|access| patients.into_iter().for_each(|p| access.add_patient(p)));
    }

    /// The request as sent (for searches, history and operations).
    pub fn query(&self, query: String) {
        self.with(|access| access.query = Some(query));
    }

    fn take(&self) -> Vec<Noted> {
        std::mem::take(&mut *self.lock())
    }

    /// The note of a read or write: the version's reference, and the patients its content
    /// belongs to (parsed from the stored bytes).
    pub fn version(&self, repository: &Repository, record: &VersionRecord) {
        let reference = format!(
            "{}/{}/_history/{}",
            record.resource_type, record.id, record.version
        );
        let patients = patients_of_record(repository, record);
        self.with(|access| {
            access.add_resource(reference);
            patients.into_iter().for_each(|p| access.add_patient(p));
        });
    }

    /// The patients every resource of a Bundle the server built belongs to.
    pub fn bundle(&self, repository: &Repository, bundle: &[u8]) {
        // The server's own output, not input from outside.
        if let Ok(bundle) = serde_json::from_slice::<Value>(bundle) {
            self.patients(audit::patients_in_bundle(&repository.indexer(), &bundle));
        }
    }
}

/// The patients a stored version belongs to; none when it has no content (a deletion) or it
/// cannot be read.
pub(crate) fn patients_of_record(repository: &Repository, record: &VersionRecord) -> Vec<String> {
    if !named_in_content(record) {
        return patients_of_parsed(repository, record, &Value::Null);
    }
    match repository::parse_stored(record) {
        Ok(resource) => patients_of_parsed(repository, record, &resource),
        Err(_) => Vec::new(),
    }
}

/// The same, of a record whose content the caller parsed already (`resource`).
pub(crate) fn patients_of_parsed(
    repository: &Repository,
    record: &VersionRecord,
    resource: &Value,
) -> Vec<String> {
    if record.resource_type == "Patient" {
        return vec![format!("Patient/{}", record.id)];
    }
    if !named_in_content(record) {
        return Vec::new();
    }
    audit::patients_of(&repository.indexer(), resource)
}

/// Whether a record's patients are named in its content: patient data other than a Patient,
/// not a deletion.
fn named_in_content(record: &VersionRecord) -> bool {
    record.resource_type != "Patient"
        && audit::holds_patient_data(&record.resource_type)
        && record.content.is_some()
}

/// The patients a search's parameters name: `patient`, `subject` and `beneficiary` values
/// (`Patient/1` or a bare id for `patient`), and `_id` in a search of Patients.
pub(crate) fn patients_named(
    resource_type: Option<&str>,
    params: &[(String, String)],
) -> Vec<String> {
    let mut patients = Vec::new();
    for (name, value) in params {
        let name = name.split(':').next().unwrap_or("");
        for value in value.split(',').filter(|v| !v.is_empty()) {
            let patient = match name {
                "patient" | "subject" | "beneficiary" if value.starts_with("Patient/") => {
                    patient_reference(&value["Patient/".len()..])
                }
                "patient" if !value.contains('/') => patient_reference(value),
                "_id" if resource_type == Some("Patient") => patient_reference(value),
                _ => None,
            };
            if let Some(patient) = patient
                && !patients.contains(&patient)
            {
                patients.push(patient);
            }
        }
    }
    patients
}

/// The patients a Parameters or Bundle of an operation names: its `Patient/{id}` references
/// and the Patients it carries, each once.
pub(crate) fn patients_mentioned(value: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                let patient = match (map.get("resourceType"), map.get("reference")) {
                    (Some(Value::String(t)), _) if t == "Patient" => map
                        .get("id")
                        .and_then(Value::as_str)
                        .and_then(patient_reference),
                    (_, Some(Value::String(reference))) => reference
                        .strip_prefix("Patient/")
                        .and_then(|rest| patient_reference(rest.split('/').next().unwrap_or(""))),
                    _ => None,
                };
                if let Some(patient) = patient
                    && !out.contains(&patient)
                {
                    out.push(patient);
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut out);
    out
}

/// `Patient/{id}` for an id a Patient can have; a malformed id from a URL names no one (the
/// request fails as bad input, and the event records the attempt without it).
pub(crate) fn patient_reference(id: &str) -> Option<String> {
    repository::meta::is_valid_id(id).then(|| format!("Patient/{id}"))
}

/// Records what `note` says the request did, with its outcome, and answers `response` once
/// it is durable (a 503 instead when the trail cannot be written). A denial (401, 403) of a
/// request no handler noted is recorded as what its method and path name: every refused
/// attempt is on the trail.
pub(crate) async fn settle(
    state: &AppState,
    caller: &Caller,
    note: &AuditNote,
    method: &axum::http::Method,
    segments: Option<&[String]>,
    response: Response,
) -> Response {
    let denied = matches!(response.status().as_u16(), 401 | 403);
    let unnoted = note.lock().is_empty();
    if denied
        && unnoted
        && let Some(segments) = segments
    {
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let (interaction, resource_type) = interaction_of(method, &segments);
        let resource_type = resource_type.filter(|t| fhir_model::r4().is_resource_type(t));
        note.begin(interaction, resource_type);
        if let ["Patient", id, ..] = segments.as_slice() {
            note.patients(patient_reference(id));
        }
    }
    settle_noted(state, caller, note, response).await
}

/// The interaction a method and a path under `/fhir` name, and the type they are about.
fn interaction_of<'a>(
    method: &axum::http::Method,
    segments: &[&'a str],
) -> (Interaction, Option<&'a str>) {
    use axum::http::Method;
    let operation = segments.iter().find(|s| s.starts_with('$'));
    let first = segments
        .first()
        .copied()
        .filter(|s| !s.starts_with(['$', '_']));
    if let Some(name) = operation {
        return (Interaction::Operation((*name).to_owned()), first);
    }
    let interaction = match (method, segments) {
        (&Method::GET, [] | ["_search"]) => Interaction::SearchSystem,
        (&Method::GET, ["_history"]) => Interaction::HistorySystem,
        (&Method::GET, [_] | [_, "_search"]) => Interaction::SearchType,
        (&Method::GET, [_, "_history"]) => Interaction::HistoryType,
        (&Method::GET, [_, _]) => Interaction::Read,
        (&Method::GET, [_, _, "_history"]) => Interaction::HistoryInstance,
        (&Method::GET, [_, _, "_history", _]) => Interaction::Vread,
        (&Method::GET, [_, _, compartment_type]) => {
            return (Interaction::SearchType, Some(compartment_type));
        }
        (&Method::POST, []) => Interaction::Batch,
        (&Method::POST, [.., "_search"]) => Interaction::SearchType,
        (&Method::POST, _) => Interaction::Create,
        (&Method::PATCH, _) => Interaction::Patch,
        (&Method::DELETE, _) => Interaction::Delete,
        _ => Interaction::Update,
    };
    (interaction, first)
}

/// [`settle`] for what the note holds.
pub(crate) async fn settle_noted(
    state: &AppState,
    caller: &Caller,
    note: &AuditNote,
    response: Response,
) -> Response {
    let noted = note.take();
    let status = response.status();
    let description = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut accesses = Vec::new();
    for Noted {
        mut access,
        about_patient_data,
    } in noted
    {
        if !about_patient_data && access.patients.is_empty() {
            continue;
        }
        if access.outcome == EventOutcome::Success {
            access.outcome = EventOutcome::of_status(status.as_u16(), description.clone());
        }
        accesses.push(access);
    }
    if accesses.is_empty() {
        return response;
    }
    // Building, validating and indexing the events is CPU work (a search showing a thousand
    // patients makes a thousand events): on a blocking thread, outside the request's lane,
    // which it has left. The wait for the commit then holds no thread.
    let sink = Arc::clone(state.audit_sink());
    let (who, observer) = (caller.clone(), state.observer().clone());
    let repository = Arc::clone(state.repository());
    let prepared = tokio::task::spawn_blocking(move || {
        if let Some(organization) = &who.organization {
            for access in &mut accesses {
                access.grants = workflow_grants(&repository, organization, &access.patients);
            }
        }
        let events = accesses
            .iter()
            .flat_map(|access| audit::rest_events(&who, &observer, access))
            .collect();
        sink.prepare(events)
    })
    .await
    .map_err(|error| audit::AuditError::Invalid(format!("preparing audit events: {error}")));
    let result = match prepared {
        Ok(Ok(events)) => submit(state, events).await,
        Ok(Err(error)) | Err(error) => Err(error),
    };
    match result {
        Ok(()) => response,
        Err(error) => ApiError::from(error).into_response(&caller.request_id),
    }
}

/// The open consultations and referrals addressed to `organization` about any of `patients`
/// (`(patient, Task/ID)`): what the institution reads of those patients, it reads under them.
/// Looked up by the trail itself, as the platform; nothing of it reaches the client.
fn workflow_grants(
    repository: &Repository,
    organization: &str,
    patients: &[String],
) -> Vec<(String, String)> {
    if patients.is_empty() {
        return Vec::new();
    }
    let trail = Caller::operator("audit-trail");
    let criteria = [
        ("party".to_owned(), organization.to_owned()),
        ("subject".to_owned(), patients.join(",")),
        (
            "status".to_owned(),
            search::registry::OPEN_TASK_STATES.join(","),
        ),
    ];
    let found = match repository.find(&trail, "Task", &criteria, 100) {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, "finding the requests an access was made under");
            return Vec::new();
        }
    };
    let mut grants = Vec::new();
    for record in found {
        let Ok(task) = repository::parse_stored(&record) else {
            continue;
        };
        if let Some(patient) = task
            .get("for")
            .and_then(|f| f.get("reference"))
            .and_then(Value::as_str)
            .filter(|p| patients.iter().any(|q| q == p))
        {
            grants.push((patient.to_owned(), format!("Task/{}", record.id)));
        }
    }
    grants
}

/// Records a notification that carries resources (a `full-resource` payload) as the
/// subscription owner's access to what it shows, before it is sent: pushed data is on the trail
/// like data read. Fails when the trail cannot be written (the notification then waits).
pub(crate) async fn record_notification(
    state: &AppState,
    owner: &Caller,
    subscription: &str,
    notification: &Value,
) -> Result<(), audit::AuditError> {
    let entries = notification
        .get("entry")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if entries <= 1 {
        // The status alone: no resource is shown.
        return Ok(());
    }
    let mut access = RestAccess::new(
        Interaction::Operation("$subscription-notification".into()),
        Some("Subscription"),
    );
    access.add_resource(format!("Subscription/{subscription}"));
    for entry in notification["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .skip(1)
    {
        if let Some(url) = entry
            .get("request")
            .and_then(|r| r.get("url"))
            .and_then(Value::as_str)
        {
            access.add_resource(url.to_owned());
        }
    }
    let repository = Arc::clone(state.repository());
    let sink = Arc::clone(state.audit_sink());
    let (who, observer) = (owner.clone(), state.observer().clone());
    let notification = notification.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        // The patients of what it shows: their compartments, and the patients it names (a
        // Task's `for` is in no compartment).
        for patient in audit::patients_in_bundle(&repository.indexer(), &notification)
            .into_iter()
            .chain(patients_mentioned(&notification))
        {
            access.add_patient(patient);
        }
        sink.prepare(audit::rest_events(&who, &observer, &access))
    })
    .await
    .map_err(|error| audit::AuditError::Invalid(format!("preparing audit events: {error}")))??;
    submit(state, prepared).await
}

/// What a thread of its own needs to write the trail (without holding the server's state).
#[derive(Clone)]
pub(crate) struct Trail {
    pub(crate) repository: Arc<Repository>,
    pub(crate) sink: Arc<audit::AuditSink>,
    pub(crate) observer: audit::Observer,
}

impl Trail {
    pub(crate) fn of(state: &AppState) -> Trail {
        Trail {
            repository: Arc::clone(state.repository()),
            sink: Arc::clone(state.audit_sink()),
            observer: state.observer().clone(),
        }
    }
}

/// Records an edge's access that is not an HTTP request (an HL7 v2 message, a kiosk's
/// upload) as `who`: the resources it wrote and their patients, from the transaction-response
/// Bundle or the references given. Answers once the events are durable. Blocks: for a
/// blocking thread (a writer of its own, or `spawn_blocking`).
pub(crate) fn record_intake(
    trail: &Trail,
    who: &Caller,
    mut access: RestAccess,
    response: Option<&[u8]>,
) -> Result<(), audit::AuditError> {
    record_intakes(trail, vec![(who, &mut access, response)])
}

/// [`record_intake`] for several accesses at once, each by its own caller (a batch of
/// uploads: one access per device and patient, naming that patient's resources), made
/// durable together.
pub(crate) fn record_intakes(
    trail: &Trail,
    accesses: Vec<(&Caller, &mut RestAccess, Option<&[u8]>)>,
) -> Result<(), audit::AuditError> {
    let mut events = Vec::new();
    for (who, access, response) in accesses {
        events.extend(intake_events(trail, who, access, response));
    }
    let prepared = trail.sink.prepare(events)?;
    let (sender, receiver) = std::sync::mpsc::channel();
    trail.sink.submit(prepared, move |result| {
        let _ = sender.send(result);
    });
    receiver.recv().unwrap_or(Err(audit::AuditError::Closed))
}

fn intake_events(
    trail: &Trail,
    who: &Caller,
    access: &mut RestAccess,
    response: Option<&[u8]>,
) -> Vec<Value> {
    let repository = &trail.repository;
    if let Some(bundle) = response.and_then(|b| serde_json::from_slice::<Value>(b).ok()) {
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            if let Some(location) = entry["response"]["location"].as_str() {
                let reference = location.split("/_history/").next().unwrap_or(location);
                access.add_resource(reference.to_owned());
            }
        }
        for patient in audit::patients_in_bundle(&repository.indexer(), &bundle) {
            access.add_patient(patient);
        }
    }
    audit::rest_events(who, &trail.observer, access)
}

/// Hands prepared events to the sink and waits on a oneshot until they are committed.
async fn submit(state: &AppState, events: audit::PreparedEvents) -> Result<(), audit::AuditError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    state.audit_sink().submit(events, move |result| {
        let _ = sender.send(result);
    });
    receiver.await.unwrap_or(Err(audit::AuditError::Closed))
}

/// The note of a batch or transaction: one interaction per entry, with the entry's own outcome
/// (its response status), the version it wrote or read, and the patients of what it carried or
/// returned. References between entries (`urn:uuid:` full URLs) are followed to the resources
/// they became, so an Observation created with its new Patient names that Patient.
pub(crate) fn bundle_entries(
    note: &AuditNote,
    repository: &Repository,
    request: &Value,
    response: &[u8],
) {
    let Ok(response) = serde_json::from_slice::<Value>(response) else {
        return;
    };
    let entries = |bundle: &Value| -> Vec<Value> {
        bundle
            .get("entry")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (requested, answered) = (entries(request), entries(&response));
    // Full URLs of the request to the `Type/id` each became.
    let became: std::collections::HashMap<String, String> = requested
        .iter()
        .zip(&answered)
        .filter_map(|(entry, answer)| {
            let full_url = entry.get("fullUrl")?.as_str()?;
            let location = answer.pointer("/response/location")?.as_str()?;
            let mut parts = location.split('/');
            let (resource_type, id) = (parts.next()?, parts.next()?);
            Some((full_url.to_owned(), format!("{resource_type}/{id}")))
        })
        .collect();
    let indexer = repository.indexer();
    for (entry, answer) in requested.iter().zip(&answered) {
        let method = entry
            .pointer("/request/method")
            .and_then(Value::as_str)
            .unwrap_or("");
        let url = entry
            .pointer("/request/url")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (path, query) = url
            .split_once('?')
            .map_or((url, None), |(p, q)| (p, Some(q)));
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let resource_type = segments
            .first()
            .copied()
            .filter(|t| repository.knows_type(t));
        let interaction = match (method, segments.len(), query) {
            ("GET", 1, _) => Interaction::SearchType,
            ("GET", 2, _) => Interaction::Read,
            ("GET", 3, _) => Interaction::HistoryInstance,
            ("GET", 4, _) => Interaction::Vread,
            ("GET", _, _) => Interaction::SearchSystem,
            ("POST", _, _) => Interaction::Create,
            ("PUT", _, _) => Interaction::Update,
            ("PATCH", _, _) => Interaction::Patch,
            ("DELETE", _, _) => Interaction::Delete,
            _ => continue,
        };
        note.begin(interaction, resource_type);
        if resource_type == Some("Patient")
            && let Some(id) = segments.get(1)
        {
            note.patients(patient_reference(id));
        }
        if query.is_some() {
            note.query(url.to_owned());
        }
        let status = answer
            .pointer("/response/status")
            .and_then(Value::as_str)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(200);
        if let Some(location) = answer.pointer("/response/location").and_then(Value::as_str) {
            note.with(|access| access.add_resource(location));
            if location.starts_with("Patient/") {
                note.patients(patient_reference(location.split('/').nth(1).unwrap_or("")));
            }
        }
        if let Some(resource) = entry.get("resource") {
            let mut resource = resource.clone();
            follow_full_urls(&mut resource, &became);
            note.patients(audit::patients_of(&indexer, &resource));
        }
        if let Some(resource) = answer.get("resource") {
            if resource.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
                note.patients(audit::patients_in_bundle(&indexer, resource));
            } else {
                note.patients(audit::patients_of(&indexer, resource));
            }
        }
        note.with(|access| {
            access.outcome = EventOutcome::of_status(status, format!("entry status {status}"));
        });
    }
}

/// Replaces references to the full URLs of a Bundle's entries by what they became.
fn follow_full_urls(value: &mut Value, became: &std::collections::HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "reference"
                    && let Value::String(reference) = value
                    && let Some(target) = became.get(reference.as_str())
                {
                    *reference = target.clone();
                } else {
                    follow_full_urls(value, became);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| follow_full_urls(item, became)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    #[test]
    fn a_denied_request_is_recorded_as_what_its_url_names() {
        let cases: &[(Method, &str, Interaction, Option<&str>)] = &[
            (Method::GET, "Patient/1", Interaction::Read, Some("Patient")),
            (
                Method::GET,
                "Patient/1/_history/2",
                Interaction::Vread,
                Some("Patient"),
            ),
            (
                Method::GET,
                "Patient/1/_history",
                Interaction::HistoryInstance,
                Some("Patient"),
            ),
            (
                Method::GET,
                "Observation",
                Interaction::SearchType,
                Some("Observation"),
            ),
            (
                Method::GET,
                "Patient/1/Observation",
                Interaction::SearchType,
                Some("Observation"),
            ),
            (Method::GET, "", Interaction::SearchSystem, None),
            (Method::GET, "_history", Interaction::HistorySystem, None),
            (Method::POST, "", Interaction::Batch, None),
            (
                Method::POST,
                "Observation",
                Interaction::Create,
                Some("Observation"),
            ),
            (
                Method::POST,
                "Observation/_search",
                Interaction::SearchType,
                Some("Observation"),
            ),
            (
                Method::PUT,
                "Observation/1",
                Interaction::Update,
                Some("Observation"),
            ),
            (
                Method::PATCH,
                "Observation/1",
                Interaction::Patch,
                Some("Observation"),
            ),
            (
                Method::DELETE,
                "Observation/1",
                Interaction::Delete,
                Some("Observation"),
            ),
            (
                Method::GET,
                "Patient/1/$everything",
                Interaction::Operation("$everything".into()),
                Some("Patient"),
            ),
            (
                Method::GET,
                "$export",
                Interaction::Operation("$export".into()),
                None,
            ),
        ];
        for (method, path, interaction, resource_type) in cases {
            let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            assert_eq!(
                interaction_of(method, &segments),
                (interaction.clone(), *resource_type),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn operations_name_the_patients_they_carry_and_reference() {
        let answer = serde_json::json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Patient", "id": "a"}},
            {"resource": {"resourceType": "Observation", "subject": {"reference": "Patient/b/_history/1"}}},
            {"resource": {"resourceType": "Observation", "subject": {"reference": "Patient/a"}}},
            {"resource": {"resourceType": "Observation", "subject": {"reference": "Patient/bad id"}}},
        ]});
        assert_eq!(patients_mentioned(&answer), ["Patient/a", "Patient/b"]);
        let params = [
            ("patient".to_owned(), "Patient/1,2".to_owned()),
            ("subject:Patient".to_owned(), "Patient/3".to_owned()),
            ("subject".to_owned(), "Group/4".to_owned()),
        ];
        assert_eq!(
            patients_named(Some("Observation"), &params),
            ["Patient/1", "Patient/2", "Patient/3"]
        );
        let ids = [("_id".to_owned(), "9".to_owned())];
        assert_eq!(patients_named(Some("Patient"), &ids), ["Patient/9"]);
        assert!(patients_named(Some("Observation"), &ids).is_empty());
    }
}
