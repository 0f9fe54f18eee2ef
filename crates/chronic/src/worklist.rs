//! Worklists: the episodes a family doctor or an institution looks after, each with its last
//! follow-up, when the next is due and whether it is out of control, and the alerts nobody has
//! acknowledged yet. Everything is read through the caller's read path
//! (`Repository::reader`), so a clinician's worklist holds only what the access rules let
//! their institution see; what is hidden is absent, not counted.
//!
//! The FHIR form is a `Parameters` resource (see [`Worklist::to_fhir`]): a worklist is an
//! operation's answer, not a set of stored resources, and each entry pairs references with
//! computed values (dates, states, flags) that no resource type carries.

use std::collections::BTreeMap;

use caller::{Actor, Caller};
use repository::{Reader, Repository, RepositoryError};
use serde_json::{Value, json};
use store::VersionRecord;

use crate::PROGRAM_SYSTEM;
use crate::alert::{ALERT_SYSTEM, CRITICAL_READING};
use crate::dates::{Day, day_of, format_day};
use crate::followup::{EpisodeStatus, evaluate, program_of};
use crate::parties::reference_of;
use crate::rules::rules;

/// Whose worklist, on which date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorklistQuery {
    /// A practitioner (`id` or `Practitioner/id`): the episodes they manage, the alerts to them.
    pub practitioner: Option<String>,
    /// An institution (`id` or `Organization/id`): the episodes it keeps or whose care
    /// manager works there, the alerts to it.
    pub organization: Option<String>,
    pub as_of: Day,
}

/// An alert not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEntry {
    /// `Communication/<id>`.
    pub communication: String,
    pub patient: Option<String>,
    /// `Observation/<id>`.
    pub observation: Option<String>,
    pub sent: Option<String>,
    pub text: Option<String>,
    pub recipients: Vec<String>,
}

/// A worklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worklist {
    pub as_of: Day,
    /// `Practitioner/<id>` it was made for, if any.
    pub practitioner: Option<String>,
    /// `Organization/<id>` it was made for, if any.
    pub organization: Option<String>,
    /// Overdue first, then due, then the rest; soonest due first within each.
    pub episodes: Vec<EpisodeStatus>,
    /// Oldest first.
    pub alerts: Vec<AlertEntry>,
}

/// Page size of the worklist's searches.
const PAGE: usize = 200;
/// A bound on the pages one search may take (200,000 resources), so a runaway query ends.
const MAX_PAGES: usize = 1000;
/// Care managers asked about in one search (`care-manager=a,b,...`).
const MANAGERS_PER_SEARCH: usize = 50;

fn qualified(value: &str, resource_type: &str) -> String {
    let value = value.trim();
    if value.starts_with(&format!("{resource_type}/")) {
        value.to_owned()
    } else {
        format!("{resource_type}/{value}")
    }
}

/// Every current resource matching `criteria` that the reader's caller may see.
fn find_all(
    reader: &Reader<'_>,
    resource_type: &str,
    criteria: &[(String, String)],
) -> Result<Vec<Value>, RepositoryError> {
    let mut query = reader.criteria(resource_type, criteria, PAGE)?;
    let mut found = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = reader.page(&query)?;
        for record in &page.matches {
            found.push(repository::parse_stored(record)?);
        }
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok(found),
        }
    }
    tracing::warn!(
        resource_type,
        "chronic: a worklist search was cut at its page limit"
    );
    Ok(found)
}

fn params(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// The worklist of `query` as `caller` may see it. Without a practitioner and an
/// organization, a clinician gets their own (their practitioner and their organisation);
/// a caller who is neither (the operator, an administrator) gets every episode and alert.
pub fn worklist(
    repository: &Repository,
    caller: &Caller,
    query: WorklistQuery,
) -> Result<Worklist, RepositoryError> {
    let rules = rules()?;
    let mut practitioner = query
        .practitioner
        .as_deref()
        .map(|p| qualified(p, "Practitioner"));
    let mut organization = query
        .organization
        .as_deref()
        .map(|o| qualified(o, "Organization"));
    if practitioner.is_none() && organization.is_none() {
        if let Actor::User(user) = &caller.actor
            && user.starts_with("Practitioner/")
        {
            practitioner = Some(user.clone());
        }
        organization = caller.organization.clone();
    }
    let reader = repository.reader(caller);
    let active = ("status", "active".to_owned());

    // The episodes, by id.
    let mut episodes: BTreeMap<String, Value> = BTreeMap::new();
    let mut add = |found: Vec<Value>| {
        for episode in found {
            if let Some(id) = episode.get("id").and_then(Value::as_str) {
                episodes.insert(id.to_owned(), episode);
            }
        }
    };
    let programs = rules
        .programs
        .iter()
        .map(|p| format!("{PROGRAM_SYSTEM}|{}", p.code))
        .collect::<Vec<_>>()
        .join(",");
    let of_programs = ("type", programs);
    if let Some(practitioner) = &practitioner {
        add(find_all(
            &reader,
            "EpisodeOfCare",
            &params(&[
                ("care-manager", practitioner.clone()),
                active.clone(),
                of_programs.clone(),
            ]),
        )?);
    }
    if let Some(organization) = &organization {
        add(find_all(
            &reader,
            "EpisodeOfCare",
            &params(&[
                ("organization", organization.clone()),
                active.clone(),
                of_programs.clone(),
            ]),
        )?);
        let roles = find_all(
            &reader,
            "PractitionerRole",
            &params(&[("organization", organization.clone())]),
        )?;
        let mut managers: Vec<String> = roles
            .iter()
            .filter_map(|role| reference_of(role.get("practitioner")))
            .filter(|r| r.starts_with("Practitioner/"))
            .map(str::to_owned)
            .collect();
        managers.sort();
        managers.dedup();
        for chunk in managers.chunks(MANAGERS_PER_SEARCH) {
            add(find_all(
                &reader,
                "EpisodeOfCare",
                &params(&[
                    ("care-manager", chunk.join(",")),
                    active.clone(),
                    of_programs.clone(),
                ]),
            )?);
        }
    }
    if practitioner.is_none() && organization.is_none() {
        add(find_all(
            &reader,
            "EpisodeOfCare",
            &params(&[active, of_programs]),
        )?);
    }

    // Per patient: birth date, finished encounters, readings; read once for all their episodes.
    let mut by_patient: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for episode in episodes.values() {
        if program_of(rules, episode).is_none() {
            continue;
        }
        if let Some(patient) = reference_of(episode.get("patient")) {
            by_patient
                .entry(patient.to_owned())
                .or_default()
                .push(episode);
        }
    }
    let reading_codes = rules.reading_tokens().join(",");
    let mut statuses = Vec::new();
    for (patient, patient_episodes) in by_patient {
        let Some(patient_id) = patient.strip_prefix("Patient/") else {
            continue;
        };
        let birth = visible(&reader, "Patient", patient_id)?
            .and_then(|p| p.get("birthDate").and_then(Value::as_str).and_then(day_of));
        let encounters = find_all(
            &reader,
            "Encounter",
            &params(&[("patient", patient.clone()), ("status", "finished".into())]),
        )?;
        let observations = find_all(
            &reader,
            "Observation",
            &params(&[
                ("patient", patient.clone()),
                ("code", reading_codes.clone()),
            ]),
        )?;
        for episode in patient_episodes {
            if let Some(status) = evaluate(
                rules,
                episode,
                birth,
                &encounters,
                &observations,
                query.as_of,
            ) {
                statuses.push(status);
            }
        }
    }
    statuses
        .sort_by(|a, b| (a.state, a.next_due, &a.episode).cmp(&(b.state, b.next_due, &b.episode)));

    // The alerts nobody has acknowledged.
    let mut alerts: BTreeMap<String, AlertEntry> = BTreeMap::new();
    let alert_criteria = |recipient: Option<&String>| {
        let mut criteria = params(&[
            ("category", format!("{ALERT_SYSTEM}|{CRITICAL_READING}")),
            ("status", "in-progress".into()),
        ]);
        if let Some(recipient) = recipient {
            criteria.push(("recipient".into(), recipient.clone()));
        }
        criteria
    };
    let mut alert_searches = Vec::new();
    if let Some(practitioner) = &practitioner {
        alert_searches.push(alert_criteria(Some(practitioner)));
    }
    if let Some(organization) = &organization {
        alert_searches.push(alert_criteria(Some(organization)));
    }
    if alert_searches.is_empty() {
        alert_searches.push(alert_criteria(None));
    }
    for criteria in alert_searches {
        for communication in find_all(&reader, "Communication", &criteria)? {
            if let Some(entry) = alert_entry(&communication) {
                alerts.insert(entry.communication.clone(), entry);
            }
        }
    }
    let mut alerts: Vec<AlertEntry> = alerts.into_values().collect();
    alerts.sort_by(|a, b| (&a.sent, &a.communication).cmp(&(&b.sent, &b.communication)));

    Ok(Worklist {
        as_of: query.as_of,
        practitioner,
        organization,
        episodes: statuses,
        alerts,
    })
}

/// The current content of a resource if the caller may see it.
fn visible(
    reader: &Reader<'_>,
    resource_type: &str,
    id: &str,
) -> Result<Option<Value>, RepositoryError> {
    match reader.current(resource_type, id)? {
        Some(record) if !record.is_deleted() => Ok(Some(parse(&record)?)),
        _ => Ok(None),
    }
}

fn parse(record: &VersionRecord) -> Result<Value, RepositoryError> {
    repository::parse_stored(record)
}

fn alert_entry(communication: &Value) -> Option<AlertEntry> {
    let id = communication.get("id").and_then(Value::as_str)?;
    Some(AlertEntry {
        communication: format!("Communication/{id}"),
        patient: reference_of(communication.get("subject")).map(str::to_owned),
        observation: communication
            .get("about")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| reference_of(Some(r)))
            .find(|r| r.starts_with("Observation/"))
            .map(str::to_owned),
        sent: communication
            .get("sent")
            .and_then(Value::as_str)
            .map(str::to_owned),
        text: communication
            .get("payload")
            .and_then(Value::as_array)
            .and_then(|p| p.first())
            .and_then(|p| p.get("contentString"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        recipients: communication
            .get("recipient")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| reference_of(Some(r)).map(str::to_owned))
            .collect(),
    })
}

fn reference(value: &str) -> Value {
    json!({"reference": value})
}

impl Worklist {
    /// The worklist as a FHIR `Parameters` resource:
    ///
    /// - `date` (valueDate): the date it was computed for; `practitioner`, `organization`
    ///   (valueReference) when it was made for one;
    /// - one `episode` per episode, with parts `episodeOfCare`, `patient` (valueReference),
    ///   `program` (valueCoding in the programme system), `careManager` and
    ///   `managingOrganization` (valueReference, when known), `lastFollowUp` (valueReference to
    ///   the Encounter) and `lastFollowUpDate` (valueDate) when there was one, `followUps`
    ///   (valueInteger, how many were counted), `nextDue` (valueDate), `dueReason` and
    ///   `state` (valueCode: `overdue` | `due` | `ok`), `uncontrolled` and
    ///   `referralSuggested` (valueBoolean), `uncontrolledReading` (valueReference) when a
    ///   reading since the last follow-up was out of control;
    /// - one `alert` per unacknowledged alert, with parts `communication`, `patient`,
    ///   `observation` (valueReference), `sent` (valueDateTime) and `text` (valueString).
    pub fn to_fhir(&self) -> Value {
        let mut parameters = vec![json!({"name": "date", "valueDate": format_day(self.as_of)})];
        if let Some(practitioner) = &self.practitioner {
            parameters
                .push(json!({"name": "practitioner", "valueReference": reference(practitioner)}));
        }
        if let Some(organization) = &self.organization {
            parameters
                .push(json!({"name": "organization", "valueReference": reference(organization)}));
        }
        for status in &self.episodes {
            let mut parts = vec![
                json!({"name": "episodeOfCare", "valueReference": reference(&status.episode)}),
                json!({"name": "patient", "valueReference": reference(&status.patient)}),
                json!({"name": "program", "valueCoding": {"system": PROGRAM_SYSTEM, "code": status.program}}),
            ];
            if let Some(manager) = &status.care_manager {
                parts.push(json!({"name": "careManager", "valueReference": reference(manager)}));
            }
            if let Some(organization) = &status.managing_organization {
                parts.push(json!({"name": "managingOrganization", "valueReference": reference(organization)}));
            }
            if let Some(last) = status.last_follow_up() {
                parts.push(
                    json!({"name": "lastFollowUp", "valueReference": reference(&last.encounter)}),
                );
                parts.push(json!({"name": "lastFollowUpDate", "valueDate": format_day(last.day)}));
            }
            parts.push(json!({"name": "followUps", "valueInteger": status.follow_ups.len()}));
            parts.push(json!({"name": "nextDue", "valueDate": format_day(status.next_due)}));
            parts.push(json!({"name": "dueReason", "valueCode": status.due_reason.code()}));
            parts.push(json!({"name": "state", "valueCode": status.state.code()}));
            parts.push(json!({"name": "uncontrolled", "valueBoolean": status.uncontrolled}));
            if let Some(reading) = &status.uncontrolled_reading {
                parts.push(
                    json!({"name": "uncontrolledReading", "valueReference": reference(reading)}),
                );
            }
            parts.push(
                json!({"name": "referralSuggested", "valueBoolean": status.referral_suggested}),
            );
            parameters.push(json!({"name": "episode", "part": parts}));
        }
        for alert in &self.alerts {
            let mut parts = vec![
                json!({"name": "communication", "valueReference": reference(&alert.communication)}),
            ];
            if let Some(patient) = &alert.patient {
                parts.push(json!({"name": "patient", "valueReference": reference(patient)}));
            }
            if let Some(observation) = &alert.observation {
                parts
                    .push(json!({"name": "observation", "valueReference": reference(observation)}));
            }
            if let Some(sent) = &alert.sent {
                parts.push(json!({"name": "sent", "valueDateTime": sent}));
            }
            if let Some(text) = &alert.text {
                parts.push(json!({"name": "text", "valueString": text}));
            }
            parameters.push(json!({"name": "alert", "part": parts}));
        }
        json!({"resourceType": "Parameters", "parameter": parameters})
    }
}
