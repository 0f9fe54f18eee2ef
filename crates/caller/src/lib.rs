//! The caller: the security principal of every request. Who acts (a signed-in user, a client,
//! the operator at the command line, or nobody yet), for which organisation, with which client
//! and scopes, for which patient, for what purpose, and whether by break-glass. It is built
//! once at each edge (the HTTP server from a request, the command line for its commands) and
//! passed to every repository and service call, so that access decisions and audit records are
//! made from it wherever they are needed. Services never make one up: work that runs later (a
//! durable job) carries the caller that asked for it.

use std::net::IpAddr;

use serde_json::{Value, json};

/// Who is asking, for whom, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// A unique id for the request, for logs and audit (`X-Request-Id`).
    pub request_id: String,
    pub actor: Actor,
    /// The organisation the actor acts for (`Organization/123`).
    pub organization: Option<String>,
    /// The OAuth client the request came through.
    pub client_id: Option<String>,
    /// The scopes granted (SMART v2 spellings).
    pub scopes: Vec<String>,
    /// The patient in context (`Patient/123`): a resident's own record, or a launch context.
    pub patient: Option<String>,
    /// The purpose of use (v3 PurposeOfUse: `TREAT`, `ETREAT`, `HPAYMT`, `PUBHLTH`...).
    pub purpose: String,
    /// Emergency access outside consent, with its stated reason; always audited.
    pub break_glass: Option<String>,
    /// Where the request came from.
    pub address: Option<IpAddr>,
}

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Nobody has signed in.
    Anonymous,
    /// The operator of the platform at its command line (import, seed, reindex), or the
    /// server's own scheduled maintenance started by its configuration.
    Operator,
    /// A signed-in clinician or resident, by the resource that represents them
    /// (`Practitioner/7`, `Patient/12`).
    User(String),
    /// A client acting on its own behalf (SMART Backend Services).
    Client(String),
    /// A platform administrator (or identity steward), by account name.
    Administrator(String),
}

/// The purpose of use when a request names none: treatment.
pub const DEFAULT_PURPOSE: &str = "TREAT";

impl Caller {
    /// A request from nobody in particular (before sign-in, or on a public endpoint).
    pub fn anonymous(request_id: impl Into<String>) -> Caller {
        Caller::with_actor(request_id, Actor::Anonymous)
    }

    /// The operator at the command line, or the server's own configured maintenance.
    pub fn operator(request_id: impl Into<String>) -> Caller {
        Caller::with_actor(request_id, Actor::Operator)
    }

    fn with_actor(request_id: impl Into<String>, actor: Actor) -> Caller {
        Caller {
            request_id: request_id.into(),
            actor,
            organization: None,
            client_id: None,
            scopes: Vec::new(),
            patient: None,
            purpose: DEFAULT_PURPOSE.to_owned(),
            break_glass: None,
            address: None,
        }
    }

    /// The caller as JSON, for work that runs later on its behalf (a durable job).
    pub fn to_json(&self) -> Value {
        let actor = match &self.actor {
            Actor::Anonymous => json!({"kind": "anonymous"}),
            Actor::Operator => json!({"kind": "operator"}),
            Actor::User(reference) => json!({"kind": "user", "reference": reference}),
            Actor::Client(id) => json!({"kind": "client", "id": id}),
            Actor::Administrator(name) => json!({"kind": "administrator", "name": name}),
        };
        json!({
            "requestId": self.request_id,
            "actor": actor,
            "organization": self.organization,
            "clientId": self.client_id,
            "scopes": self.scopes,
            "patient": self.patient,
            "purpose": self.purpose,
            "breakGlass": self.break_glass,
            "address": self.address.map(|a| a.to_string()),
        })
    }

    /// The caller back from [`Caller::to_json`]; `None` when it is not one.
    pub fn from_json(value: &Value) -> Option<Caller> {
        let text = |name: &str| -> Option<Option<String>> {
            match value.get(name) {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(s)) => Some(Some(s.clone())),
                Some(_) => None,
            }
        };
        let actor = value.get("actor")?;
        let actor = match actor.get("kind")?.as_str()? {
            "anonymous" => Actor::Anonymous,
            "operator" => Actor::Operator,
            "user" => Actor::User(actor.get("reference")?.as_str()?.to_owned()),
            "client" => Actor::Client(actor.get("id")?.as_str()?.to_owned()),
            "administrator" => Actor::Administrator(actor.get("name")?.as_str()?.to_owned()),
            _ => return None,
        };
        Some(Caller {
            request_id: value.get("requestId")?.as_str()?.to_owned(),
            actor,
            organization: text("organization")?,
            client_id: text("clientId")?,
            scopes: value
                .get("scopes")?
                .as_array()?
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<_>>()?,
            patient: text("patient")?,
            purpose: value.get("purpose")?.as_str()?.to_owned(),
            break_glass: text("breakGlass")?,
            address: match text("address")? {
                Some(address) => Some(address.parse().ok()?),
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_survives_its_json_form() {
        let mut caller = Caller::operator("req-1");
        assert_eq!(Caller::from_json(&caller.to_json()), Some(caller.clone()));
        caller.actor = Actor::User("Practitioner/7".into());
        caller.organization = Some("Organization/county-hospital".into());
        caller.client_id = Some("his".into());
        caller.scopes = vec!["user/*.rs".into(), "launch/patient".into()];
        caller.patient = Some("Patient/12".into());
        caller.purpose = "ETREAT".into();
        caller.break_glass = Some("unconscious in the emergency room".into());
        caller.address = Some("10.1.2.3".parse().unwrap());
        assert_eq!(Caller::from_json(&caller.to_json()), Some(caller.clone()));
        caller.actor = Actor::Administrator("admin".into());
        assert_eq!(Caller::from_json(&caller.to_json()), Some(caller));
        assert_eq!(Caller::from_json(&json!({"requestId": 7})), None);
    }
}
