//! Downward referral: the discharging hospital's follow-up `CarePlan` names, for each activity,
//! the team that performs it (`activity.detail.performer`, the patient's township health
//! centre or village clinic). Each such activity becomes a `Task` addressed to that team, due
//! when the activity is scheduled, made in the CarePlan's own transaction, once (its
//! identifier names the plan and the activity): the follow-ups due appear on the team's
//! worklist, and the team moves them like any Task.

use fhir_model::clock;
use repository::{InTransaction, RepositoryError};
use serde_json::{Value, json};
use store::VersionRecord;

use crate::vocabulary::{FOLLOW_UP, WORKFLOW_CODES};

const DONE: &[&str] = &["completed", "cancelled", "stopped", "entered-in-error"];

/// When an activity is due: the end of its scheduled period, else its start, else its
/// timing's first event.
fn due_of(detail: &Value) -> Option<&str> {
    let period = detail.get("scheduledPeriod");
    period
        .and_then(|p| p.get("end"))
        .or_else(|| period.and_then(|p| p.get("start")))
        .or_else(|| {
            detail
                .get("scheduledTiming")
                .and_then(|t| t.get("event"))
                .and_then(|e| e.get(0))
        })
        .and_then(Value::as_str)
}

pub(crate) fn care_plan_written(
    tx: &mut InTransaction<'_, '_>,
    record: &VersionRecord,
    plan: Option<&Value>,
) -> Result<(), RepositoryError> {
    let Some(plan) = plan else {
        return Ok(());
    };
    if plan.get("status").and_then(Value::as_str) != Some("active") {
        return Ok(());
    }
    let activities = plan
        .get("activity")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (index, activity) in activities.iter().enumerate() {
        let Some(detail) = activity.get("detail") else {
            continue;
        };
        if detail
            .get("status")
            .and_then(Value::as_str)
            .is_some_and(|s| DONE.contains(&s))
        {
            continue;
        }
        let performers: Vec<Value> = detail
            .get("performer")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| {
                p.get("reference")
                    .and_then(Value::as_str)
                    .is_some_and(|r| r.starts_with("Organization/"))
            })
            .cloned()
            .collect();
        if performers.is_empty() {
            continue;
        }
        let value = format!("CarePlan/{}/activity/{index}", record.id);
        let identifier = format!("{FOLLOW_UP}|{value}");
        if !tx
            .search("Task", &[("identifier".into(), identifier)], 1)?
            .is_empty()
        {
            continue;
        }
        let what = detail
            .get("description")
            .and_then(Value::as_str)
            .or_else(|| {
                detail
                    .get("code")
                    .and_then(|c| c.get("text"))
                    .and_then(Value::as_str)
            })
            .unwrap_or("follow-up");
        let mut task = json!({
            "resourceType": "Task",
            "identifier": [{"system": FOLLOW_UP, "value": value}],
            "basedOn": [{"reference": format!("CarePlan/{}", record.id)}],
            "status": "requested",
            "intent": "plan",
            "priority": "routine",
            "code": {
                "coding": [{"system": WORKFLOW_CODES, "code": "follow-up", "display": "Follow-up"}],
                "text": what,
            },
            "description": what,
            "focus": {"reference": format!("CarePlan/{}", record.id)},
            "authoredOn": clock::format_instant(record.last_updated),
            "restriction": {"recipient": performers},
        });
        if let Some(subject) = plan.get("subject") {
            task["for"] = subject.clone();
        }
        if let Some(encounter) = plan.get("encounter") {
            task["encounter"] = encounter.clone();
        }
        if let Some(author) = plan.get("author").filter(|a| {
            a.get("reference")
                .and_then(Value::as_str)
                .is_some_and(|r| !r.starts_with("CareTeam/"))
        }) {
            task["requester"] = author.clone();
        }
        if let Some(due) = due_of(detail) {
            task["restriction"]["period"] = json!({"end": due});
        }
        tx.create(task)?;
    }
    Ok(())
}
