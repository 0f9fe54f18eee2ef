//! Each request's clock: when it was requested, accepted and closed, and when it is due, kept
//! in the store's key-value table beside the Task (`workflow/open/<id>` while the Task is
//! open, `workflow/closed/<YYYY-MM>/<id>` once closed), written in the Task's own transaction.
//! The escalation reads the open clocks, not the Tasks; the turnaround figures read a month's
//! closed ones.

use caller::Caller;
use fhir_model::clock;
use repository::{InTransaction, Repository, RepositoryError};
use serde_json::{Value, json};
use store::{Store, VersionRecord};

use crate::WorkflowConfig;
use crate::task::{is_open, kind_of, status_of};
use crate::vocabulary::WORKFLOW_CODES;

const OPEN_PREFIX: &str = "workflow/open/";
const CLOSED_PREFIX: &str = "workflow/closed/";

/// One request's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Clock {
    pub task: String,
    pub kind: String,
    pub priority: String,
    /// The institution that made the request.
    pub requester: Option<String>,
    /// The institutions it is addressed to.
    pub addressees: Vec<String>,
    pub requested: i64,
    pub due: i64,
    pub accepted: Option<i64>,
    /// When it was closed, and in which state.
    pub closed: Option<i64>,
    pub state: String,
    /// When it was escalated for being overdue.
    pub escalated: Option<i64>,
}

impl Clock {
    fn to_json(&self) -> Value {
        json!({
            "task": self.task, "kind": self.kind, "priority": self.priority,
            "requester": self.requester, "addressees": self.addressees,
            "requested": self.requested, "due": self.due, "accepted": self.accepted,
            "closed": self.closed, "state": self.state, "escalated": self.escalated,
        })
    }

    fn from_json(value: &Value) -> Option<Clock> {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        let time = |k: &str| value.get(k).and_then(Value::as_i64);
        Some(Clock {
            task: text("task")?,
            kind: text("kind")?,
            priority: text("priority")?,
            requester: text("requester"),
            addressees: value
                .get("addressees")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            requested: time("requested")?,
            due: time("due")?,
            accepted: time("accepted"),
            closed: time("closed"),
            state: text("state")?,
            escalated: time("escalated"),
        })
    }

    fn parse(text: &str) -> Option<Clock> {
        serde_json::from_str::<Value>(text)
            .ok()
            .as_ref()
            .and_then(Clock::from_json)
    }
}

fn month_of(micros: i64) -> String {
    clock::format_instant(micros)[..7].to_owned()
}

/// When a Task is due: its own `restriction.period.end`, or the time its priority allows from
/// `requested`.
pub fn due_of(task: &Value, requested: i64, config: &WorkflowConfig) -> i64 {
    task.get("restriction")
        .and_then(|r| r.get("period"))
        .and_then(|p| p.get("end"))
        .and_then(Value::as_str)
        .and_then(clock::parse_range)
        .map(|(_, high)| high)
        .unwrap_or_else(|| requested + config.allowed(task.get("priority").and_then(Value::as_str)))
}

fn is_overdue_marked(task: &Value) -> bool {
    task.get("businessStatus")
        .and_then(|b| b.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("system").and_then(Value::as_str) == Some(WORKFLOW_CODES)
                && c.get("code").and_then(Value::as_str) == Some("overdue")
        })
}

/// Keeps the clock of the Task `record` wrote (`next`, `None` when deleted), inside its
/// transaction.
pub(crate) fn track(
    tx: &mut InTransaction<'_, '_>,
    config: &WorkflowConfig,
    record: &VersionRecord,
    next: Option<&Value>,
) -> Result<(), RepositoryError> {
    let open_key = format!("{OPEN_PREFIX}{}", record.id);
    let now = record.last_updated;
    let existing = tx
        .transaction()
        .take_checkpoint(&open_key)?
        .as_deref()
        .and_then(Clock::parse);
    let status = next.and_then(status_of).unwrap_or("entered-in-error");
    if !is_open(status) {
        if let Some(mut clock) = existing {
            clock.closed = Some(now);
            clock.state = status.to_owned();
            let key = format!("{CLOSED_PREFIX}{}/{}", month_of(now), record.id);
            tx.transaction()
                .set_checkpoint(&key, Some(&clock.to_json().to_string()))?;
        }
        return Ok(());
    }
    let next = next.expect("an open status comes from a written Task");
    let requested = existing.as_ref().map_or(now, |c| c.requested);
    let mut clock = existing.unwrap_or_else(|| Clock {
        task: record.id.clone(),
        kind: String::new(),
        priority: String::new(),
        requester: record.custodian.clone(),
        addressees: Vec::new(),
        requested,
        due: 0,
        accepted: None,
        closed: None,
        state: String::new(),
        escalated: None,
    });
    clock.kind = kind_of(next).to_owned();
    clock.priority = next
        .get("priority")
        .and_then(Value::as_str)
        .unwrap_or("routine")
        .to_owned();
    clock.addressees = search::registry::parties_of("Task", next)
        .into_iter()
        .filter(|p| Some(p) != clock.requester.as_ref())
        .collect();
    clock.due = due_of(next, requested, config);
    if status == "accepted" && clock.accepted.is_none() {
        clock.accepted = Some(now);
    }
    if clock.escalated.is_none() && is_overdue_marked(next) {
        clock.escalated = Some(now);
    }
    clock.state = status.to_owned();
    tx.transaction()
        .set_checkpoint(&open_key, Some(&clock.to_json().to_string()))?;
    Ok(())
}

/// The open requests' clocks.
pub fn open_clocks(store: &dyn Store) -> Result<Vec<Clock>, RepositoryError> {
    Ok(store
        .checkpoints_with_prefix(OPEN_PREFIX)?
        .iter()
        .filter_map(|(_, value)| Clock::parse(value))
        .collect())
}

/// Escalates every open request that is overdue at `now` and not escalated yet: its Task is
/// marked `overdue` (`businessStatus`), and the institution above the one it is addressed to
/// (`Organization.partOf`: the hospital above a department, the city above a county) is
/// added to its addressees, so a supervisor sees it and can act. Runs as `caller` (the
/// platform's deadline keeper, or an administrator asking as of an instant). Returns the
/// Tasks escalated.
pub fn escalate(
    repository: &Repository,
    caller: &Caller,
    now: i64,
) -> Result<Vec<String>, RepositoryError> {
    let mut escalated = Vec::new();
    for clock in open_clocks(&**repository.store())? {
        if clock.escalated.is_some() || clock.due >= now {
            continue;
        }
        let done = repository.run_in_transaction(caller, |tx| {
            let Some((record, mut task)) = tx.read("Task", &clock.task)? else {
                return Ok(false);
            };
            if !status_of(&task).is_some_and(is_open) || is_overdue_marked(&task) {
                return Ok(false);
            }
            task["businessStatus"] = json!({
                "coding": [{"system": WORKFLOW_CODES, "code": "overdue", "display": "Overdue"}],
                "text": format!("overdue since {}", clock::format_instant(clock.due)),
            });
            // The institution above each addressee joins them, once.
            let mut parties = search::registry::parties_of("Task", &task);
            let mut above = Vec::new();
            for addressee in parties.clone() {
                let id = addressee.trim_start_matches("Organization/");
                if let Some((_, organization)) = tx.read("Organization", id)?
                    && let Some(parent) = organization
                        .get("partOf")
                        .and_then(|p| p.get("reference"))
                        .and_then(Value::as_str)
                    && parent.starts_with("Organization/")
                    && Some(parent) != clock.requester.as_deref()
                    && !parties.iter().any(|p| p == parent)
                {
                    parties.push(parent.to_owned());
                    above.push(json!({"reference": parent}));
                }
            }
            if !above.is_empty() {
                let mut recipients = task["restriction"]["recipient"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                recipients.extend(above);
                task["restriction"]["recipient"] = Value::Array(recipients);
            }
            tx.update(task, Some(record.version))?;
            Ok(true)
        })?;
        if done {
            escalated.push(clock.task);
        }
    }
    Ok(escalated)
}

/// Turnaround figures of the requests closed in `month` (`YYYY-MM`), per institution they
/// were addressed to, as a `Parameters` resource; only `organization`'s when given (as
/// addressee or requester).
pub fn turnaround(
    store: &dyn Store,
    month: &str,
    organization: Option<&str>,
) -> Result<Value, RepositoryError> {
    let mut by_institution: std::collections::BTreeMap<String, Vec<Clock>> = Default::default();
    for (_, value) in store.checkpoints_with_prefix(&format!("{CLOSED_PREFIX}{month}/"))? {
        let Some(clock) = Clock::parse(&value) else {
            continue;
        };
        if let Some(organization) = organization
            && clock.requester.as_deref() != Some(organization)
            && !clock.addressees.iter().any(|a| a == organization)
        {
            continue;
        }
        for addressee in &clock.addressees {
            by_institution
                .entry(addressee.clone())
                .or_default()
                .push(clock.clone());
        }
    }
    let minutes = |micros: i64| micros as f64 / 60_000_000.0;
    let percentile = |values: &mut Vec<f64>, p: f64| -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
        Some(values[rank - 1])
    };
    let decimal =
        |v: f64| Value::Number(serde_json::Number::from_string_unchecked(format!("{v:.1}")));
    let mut parameters = Vec::new();
    for (institution, clocks) in by_institution {
        let count = |state: &str| clocks.iter().filter(|c| c.state == state).count();
        let mut to_complete: Vec<f64> = clocks
            .iter()
            .filter(|c| c.state == "completed")
            .filter_map(|c| c.closed.map(|closed| minutes(closed - c.requested)))
            .collect();
        let mut to_accept: Vec<f64> = clocks
            .iter()
            .filter_map(|c| c.accepted.map(|a| minutes(a - c.requested)))
            .collect();
        let late = clocks
            .iter()
            .filter(|c| c.escalated.is_some() || c.closed.is_some_and(|closed| closed > c.due))
            .count();
        let mut part = vec![
            json!({"name": "institution", "valueReference": {"reference": institution}}),
            json!({"name": "closed", "valueInteger": clocks.len()}),
            json!({"name": "completed", "valueInteger": count("completed")}),
            json!({"name": "rejected", "valueInteger": count("rejected")}),
            json!({"name": "cancelled", "valueInteger": count("cancelled")}),
            json!({"name": "failed", "valueInteger": count("failed")}),
            json!({"name": "late", "valueInteger": late}),
        ];
        for (name, values, p) in [
            ("minutes-to-accept-median", &mut to_accept.clone(), 0.5),
            ("minutes-to-accept-p90", &mut to_accept, 0.9),
            ("minutes-to-complete-median", &mut to_complete.clone(), 0.5),
            ("minutes-to-complete-p90", &mut to_complete, 0.9),
        ] {
            if let Some(value) = percentile(values, p) {
                part.push(json!({"name": name, "valueDecimal": decimal(value)}));
            }
        }
        parameters.push(json!({"name": "institution", "part": part}));
    }
    Ok(json!({
        "resourceType": "Parameters",
        "parameter": std::iter::once(json!({"name": "month", "valueString": month}))
            .chain(parameters)
            .collect::<Vec<_>>(),
    }))
}
