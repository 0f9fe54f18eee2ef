//! Audit records of identity events (links, unlinks, merges, reviews, health codes) as FHIR
//! AuditEvent resources, written in the same transaction as what they record.

use repository::{InTransaction, RepositoryError};
use serde_json::{Value, json};

use super::{MPI_SYSTEM, Mpi};

/// An AuditEvent for `event` about the resources `entities` (references), by whoever the
/// request context names.
pub(crate) fn audit_event(
    ctx: &caller::Caller,
    event: &str,
    entities: &[&str],
    detail: Option<&str>,
) -> Value {
    let recorded = fhir_model::clock::format_instant(fhir_model::clock::now_micros());
    let user = match &ctx.actor {
        caller::Actor::User(reference) => Some(reference.as_str()),
        _ => None,
    };
    let who = match (user, &ctx.organization, &ctx.actor) {
        (Some(user), _, _) => json!({"reference": user}),
        (None, Some(organization), _) => json!({"reference": organization}),
        (None, None, caller::Actor::Client(id)) => json!({"display": format!("client {id}")}),
        (None, None, caller::Actor::Operator) => json!({"display": "Meridian operator"}),
        (None, None, _) => json!({"display": "anonymous"}),
    };
    let mut agent = json!({"who": who, "requestor": true});
    if let (Some(_), Some(organization)) = (user, &ctx.organization) {
        agent["location"] = json!({"display": organization});
    }
    let action = match event {
        "health-code-resolve" | "health-code-refused" => "R",
        "health-code-issue" => "C",
        _ => "U",
    };
    let mut audit = json!({
        "resourceType": "AuditEvent",
        "type": {"system": MPI_SYSTEM, "code": "identity", "display": "Resident identity"},
        "subtype": [{"system": MPI_SYSTEM, "code": event}],
        "action": action,
        "recorded": recorded,
        "outcome": "0",
        "agent": [agent],
        "source": {"observer": {"display": "Meridian master patient index"}},
        "entity": entities.iter().map(|e| json!({"what": {"reference": e}})).collect::<Vec<_>>(),
    });
    if let Some(detail) = detail {
        audit["outcomeDesc"] = json!(detail);
    }
    if !ctx.request_id.is_empty() {
        audit["agent"][0]["extension"] =
            json!([{"url": "urn:meridian:request-id", "valueString": ctx.request_id}]);
    }
    audit
}

impl Mpi {
    pub(crate) fn audit(
        &self,
        tx: &mut InTransaction<'_, '_>,
        event: &str,
        entities: &[&str],
        detail: Option<&str>,
    ) -> Result<(), RepositoryError> {
        self.audit_in(tx, event, entities, detail)
    }

    /// Records an identity event in the transaction.
    pub fn audit_in(
        &self,
        tx: &mut InTransaction<'_, '_>,
        event: &str,
        entities: &[&str],
        detail: Option<&str>,
    ) -> Result<(), RepositoryError> {
        let event = audit_event(tx.ctx(), event, entities, detail);
        tx.create(event)?;
        Ok(())
    }
}
