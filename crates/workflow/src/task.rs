//! The `Task` state machine: which moves are legal, who may make them, and what each needs.
//!
//! ```text
//! draft ─► requested ─► received ─► accepted ─► in-progress ─► completed
//!              │            │           │  ╲          │   ▲
//!              │            │           │   ready ────┘   │ on-hold
//!              └────────────┴─► rejected     (failed, cancelled from any open state)
//! ```
//!
//! The requester (the institution that holds the Task) submits, edits and cancels; the
//! institution it is addressed to (its parties) receives, accepts, rejects, works, completes
//! or fails it; the platform may make any legal move. Rejected, cancelled and failed need a
//! reason (`statusReason`); an acceptance names its owner, and a Task accepted by one owner is
//! not accepted again by another (409). Every terminal state may still be marked
//! `entered-in-error` by its requester. The check runs on every version written, so it holds
//! for a `PUT` with or without `If-Match`, a `PATCH`, a Bundle entry and an operation alike;
//! two experts accepting at once are two writes of one resource, and the store lets one of
//! them commit first: the other is checked again against it.

use caller::{Actor, Caller};
use fhir_model::IssueCode;
use repository::RepositoryError;
use serde_json::Value;

/// The states of a Task (R4 `task-status`).
const STATES: &[&str] = &[
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "ready",
    "cancelled",
    "in-progress",
    "on-hold",
    "failed",
    "completed",
    "entered-in-error",
];

/// The legal moves, from each state.
fn next_states(from: &str) -> &'static [&'static str] {
    match from {
        "draft" => &["requested", "cancelled", "entered-in-error"],
        "requested" => &[
            "received",
            "accepted",
            "rejected",
            "cancelled",
            "entered-in-error",
        ],
        "received" => &["accepted", "rejected", "cancelled", "entered-in-error"],
        "accepted" => &[
            "ready",
            "in-progress",
            "on-hold",
            "failed",
            "cancelled",
            "entered-in-error",
        ],
        "ready" => &["in-progress", "failed", "cancelled", "entered-in-error"],
        "in-progress" => &[
            "completed",
            "on-hold",
            "failed",
            "cancelled",
            "entered-in-error",
        ],
        "on-hold" => &["in-progress", "failed", "cancelled", "entered-in-error"],
        "completed" | "rejected" | "cancelled" | "failed" => &["entered-in-error"],
        _ => &[],
    }
}

/// The states a Task may be created in.
const INITIAL: &[&str] = &["draft", "requested"];

/// The moves only the requester makes; every other move is the addressee's.
const REQUESTER_MOVES: &[&str] = &["draft", "requested", "cancelled", "entered-in-error"];

/// States in which the Task has been taken on by its owner.
const TAKEN: &[&str] = &["accepted", "ready", "in-progress", "on-hold", "completed"];

/// States that need a reason.
const NEED_REASON: &[&str] = &["rejected", "cancelled", "failed"];

/// What the addressee may change besides the status: the rest is the requester's request.
const ADDRESSEE_FIELDS: &[&str] = &[
    "id",
    "meta",
    "text",
    "status",
    "statusReason",
    "businessStatus",
    "owner",
    "output",
    "note",
    "executionPeriod",
    "lastModified",
];

/// Which side of a Task the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The institution that holds it (made the request).
    Requester,
    /// An institution it is addressed to.
    Addressee,
    /// Both (a request within one institution).
    Both,
    /// The operator, an administrator or a platform-wide client.
    Platform,
}

impl Side {
    /// The side of `caller` on a Task held by `custodian` with these `parties`.
    pub fn of(caller: &Caller, custodian: Option<&str>, parties: &[String]) -> Side {
        let organization = match (&caller.actor, &caller.organization) {
            (Actor::Operator | Actor::Administrator(_), _) => return Side::Platform,
            (_, None) => return Side::Platform,
            (_, Some(organization)) => organization.as_str(),
        };
        let requester = custodian.is_none_or(|c| c == organization);
        let addressee = parties.iter().any(|p| p == organization);
        match (requester, addressee) {
            (true, true) => Side::Both,
            (false, true) => Side::Addressee,
            _ => Side::Requester,
        }
    }

    fn may_make(self, to: &str) -> bool {
        match self {
            Side::Platform | Side::Both => true,
            Side::Requester => REQUESTER_MOVES.contains(&to),
            Side::Addressee => !REQUESTER_MOVES.contains(&to),
        }
    }
}

pub fn status_of(task: &Value) -> Option<&str> {
    task.get("status").and_then(Value::as_str)
}

fn owner_of(task: &Value) -> Option<&str> {
    task.get("owner")
        .and_then(|o| o.get("reference"))
        .and_then(Value::as_str)
}

fn has_reason(task: &Value) -> bool {
    task.get("statusReason").is_some_and(|reason| {
        reason
            .get("text")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.trim().is_empty())
            || reason
                .get("coding")
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty())
    })
}

fn conflict(message: String) -> RepositoryError {
    RepositoryError::Conflict(message)
}

fn unprocessable(message: impl Into<String>, expression: &str) -> RepositoryError {
    RepositoryError::Unprocessable(vec![
        fhir_model::Issue::error(IssueCode::BusinessRule, message).at(expression),
    ])
}

/// Checks a Task version about to commit against the one it replaces (`None` for a create),
/// written by a caller on `side`.
pub fn check(
    id: &str,
    side: Side,
    previous: Option<&Value>,
    next: &Value,
    parties: &[String],
) -> Result<(), RepositoryError> {
    let to = status_of(next).unwrap_or_default();
    if !STATES.contains(&to) {
        return Err(unprocessable(
            format!("'{to}' is not a Task status"),
            "Task.status",
        ));
    }
    let Some(previous) = previous else {
        if !INITIAL.contains(&to) && side != Side::Platform {
            return Err(unprocessable(
                format!("a Task is created as draft or requested, not {to}"),
                "Task.status",
            ));
        }
        if to == "requested" && parties.is_empty() {
            return Err(unprocessable(
                "a request names the institution it is addressed to (an Organization in Task.restriction.recipient or Task.owner)",
                "Task.restriction.recipient",
            ));
        }
        return Ok(());
    };
    let from = status_of(previous).unwrap_or_default();
    if side == Side::Addressee {
        for (key, value) in next.as_object().into_iter().flatten() {
            if !ADDRESSEE_FIELDS.contains(&key.as_str()) && previous.get(key) != Some(value) {
                return Err(RepositoryError::Forbidden(format!(
                    "the institution Task/{id} is addressed to changes its status, owner, notes and output, not {key}"
                )));
            }
        }
        for key in previous.as_object().map(|o| o.keys()).into_iter().flatten() {
            if !ADDRESSEE_FIELDS.contains(&key.as_str()) && next.get(key).is_none() {
                return Err(RepositoryError::Forbidden(format!(
                    "the institution Task/{id} is addressed to changes its status, owner, notes and output, not {key}"
                )));
            }
        }
    }
    if from != to {
        if !next_states(from).contains(&to) {
            return Err(conflict(format!(
                "Task/{id} is {from}: it cannot become {to} (from {from} it may become {})",
                match next_states(from) {
                    [] => "nothing else".to_owned(),
                    states => states.join(", "),
                }
            )));
        }
        if !side.may_make(to) {
            return Err(RepositoryError::Forbidden(match side {
                Side::Requester => format!(
                    "only the institution Task/{id} is addressed to makes it {to}; its requester submits, cancels or withdraws it"
                ),
                _ => format!("only the requester of Task/{id} makes it {to}"),
            }));
        }
        if NEED_REASON.contains(&to) && !has_reason(next) {
            return Err(unprocessable(
                format!("a Task that becomes {to} says why in statusReason"),
                "Task.statusReason",
            ));
        }
    }
    if TAKEN.contains(&to) {
        let Some(owner) = owner_of(next) else {
            return Err(unprocessable(
                format!("a Task that is {to} names its owner"),
                "Task.owner",
            ));
        };
        if TAKEN.contains(&from)
            && let Some(holder) = owner_of(previous)
            && holder != owner
        {
            return Err(conflict(format!(
                "Task/{id} was already accepted by {holder}: it cannot be accepted by {owner} too"
            )));
        }
    }
    Ok(())
}

/// Whether the Task is still to be acted on by its addressee.
pub fn is_open(status: &str) -> bool {
    search::registry::OPEN_TASK_STATES.contains(&status)
}

/// What kind of request a Task is (`Task.code` in Meridian's workflow codes): consultation,
/// remote-reading, referral, follow-up; `request` otherwise.
pub fn kind_of(task: &Value) -> &str {
    task.get("code")
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| {
            c.get("system").and_then(Value::as_str) == Some(crate::vocabulary::WORKFLOW_CODES)
        })
        .and_then(|c| c.get("code").and_then(Value::as_str))
        .unwrap_or("request")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(status: &str, owner: Option<&str>) -> Value {
        let mut t = json!({"resourceType": "Task", "status": status, "intent": "order",
            "restriction": {"recipient": [{"reference": "Organization/county"}]}});
        if let Some(owner) = owner {
            t["owner"] = json!({"reference": owner});
        }
        t
    }

    fn parties() -> Vec<String> {
        vec!["Organization/county".into()]
    }

    #[test]
    fn the_legal_path_passes_and_shortcuts_do_not() {
        let p = parties();
        let a = Side::Addressee;
        check("1", Side::Requester, None, &task("requested", None), &p).unwrap();
        let requested = task("requested", None);
        let received = task("received", None);
        let accepted = task("accepted", Some("Practitioner/e1"));
        let working = task("in-progress", Some("Practitioner/e1"));
        let done = task("completed", Some("Practitioner/e1"));
        check("1", a, Some(&requested), &received, &p).unwrap();
        check("1", a, Some(&received), &accepted, &p).unwrap();
        check("1", a, Some(&accepted), &working, &p).unwrap();
        check("1", a, Some(&working), &done, &p).unwrap();
        let error = check("1", a, Some(&requested), &done, &p).unwrap_err();
        assert!(matches!(error, RepositoryError::Conflict(_)), "{error}");
        let error = check("1", a, Some(&done), &working, &p).unwrap_err();
        assert!(matches!(error, RepositoryError::Conflict(_)), "{error}");
    }

    #[test]
    fn sides_make_only_their_own_moves() {
        let p = parties();
        let requested = task("requested", None);
        let accepted = task("accepted", Some("Practitioner/e1"));
        let error = check("1", Side::Requester, Some(&requested), &accepted, &p).unwrap_err();
        assert!(matches!(error, RepositoryError::Forbidden(_)), "{error}");
        let mut cancelled = task("cancelled", None);
        let error = check("1", Side::Addressee, Some(&requested), &cancelled, &p).unwrap_err();
        assert!(matches!(error, RepositoryError::Forbidden(_)), "{error}");
        // A reason is needed.
        let error = check("1", Side::Requester, Some(&requested), &cancelled, &p).unwrap_err();
        assert!(
            matches!(error, RepositoryError::Unprocessable(_)),
            "{error}"
        );
        cancelled["statusReason"] = json!({"text": "patient recovered"});
        check("1", Side::Requester, Some(&requested), &cancelled, &p).unwrap();
        // The addressee does not rewrite the request.
        let mut rewritten = task("received", None);
        rewritten["for"] = json!({"reference": "Patient/other"});
        let error = check("1", Side::Addressee, Some(&requested), &rewritten, &p).unwrap_err();
        assert!(matches!(error, RepositoryError::Forbidden(_)), "{error}");
    }

    #[test]
    fn a_second_owner_cannot_accept() {
        let p = parties();
        let accepted = task("accepted", Some("Practitioner/e1"));
        let other = task("accepted", Some("Practitioner/e2"));
        let error = check("1", Side::Addressee, Some(&accepted), &other, &p).unwrap_err();
        assert!(matches!(error, RepositoryError::Conflict(_)), "{error}");
        let unowned = task("accepted", None);
        let requested = task("requested", None);
        let error = check("1", Side::Addressee, Some(&requested), &unowned, &p).unwrap_err();
        assert!(
            matches!(error, RepositoryError::Unprocessable(_)),
            "{error}"
        );
    }

    #[test]
    fn a_request_names_its_addressee() {
        let mut t = task("requested", None);
        t.as_object_mut().unwrap().remove("restriction");
        let error = check("1", Side::Requester, None, &t, &[]).unwrap_err();
        assert!(
            matches!(error, RepositoryError::Unprocessable(_)),
            "{error}"
        );
        let error = check(
            "1",
            Side::Requester,
            None,
            &task("accepted", Some("Practitioner/x")),
            &parties(),
        )
        .unwrap_err();
        assert!(
            matches!(error, RepositoryError::Unprocessable(_)),
            "{error}"
        );
    }
}
