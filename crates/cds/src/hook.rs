//! The hooks this service answers, and its discovery document.

use serde_json::{Value, json};

/// A CDS Hooks 2.0 hook this service answers. Each is one service, whose id is the hook's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    PatientView,
    OrderSelect,
    OrderSign,
}

impl Hook {
    pub const ALL: [Hook; 3] = [Hook::PatientView, Hook::OrderSelect, Hook::OrderSign];

    pub fn name(self) -> &'static str {
        match self {
            Hook::PatientView => "patient-view",
            Hook::OrderSelect => "order-select",
            Hook::OrderSign => "order-sign",
        }
    }

    pub fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }

    /// Whether the hook carries draft orders.
    pub fn orders(self) -> bool {
        matches!(self, Hook::OrderSelect | Hook::OrderSign)
    }

    /// The service's id (its path below `/cds-services/`).
    pub fn service_id(self) -> &'static str {
        self.name()
    }

    fn title(self) -> &'static str {
        match self {
            Hook::PatientView => "Meridian record check",
            Hook::OrderSelect => "Meridian prior results and order checks",
            Hook::OrderSign => "Meridian order checks before signing",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Hook::PatientView => {
                "Contradictions in the patient's record (a diagnosis its results contradict, \
                 sex- or age-specific codes on the wrong patient)."
            }
            Hook::OrderSelect | Hook::OrderSign => {
                "Mutual recognition: a recent equivalent result from a qualified institution \
                 anywhere in the region, offered instead of a repeat; and decision-support rules \
                 on the draft orders (contraindications, allergies, interactions, duplicates)."
            }
        }
    }
}

/// Prefetch keys and templates. Whatever the client does not send, the service reads itself
/// under the caller's access rights.
pub const PREFETCH: [(&str, &str); 7] = [
    ("patient", "Patient/{{context.patientId}}"),
    ("conditions", "Condition?patient={{context.patientId}}"),
    (
        "allergies",
        "AllergyIntolerance?patient={{context.patientId}}",
    ),
    (
        "medications",
        "MedicationRequest?patient={{context.patientId}}&status=active",
    ),
    (
        "observations",
        "Observation?patient={{context.patientId}}&_sort=-date&_count=200",
    ),
    (
        "reports",
        "DiagnosticReport?patient={{context.patientId}}&_sort=-date&_count=100",
    ),
    (
        "orders",
        "ServiceRequest?patient={{context.patientId}}&_sort=-authored&_count=100",
    ),
];

/// `GET /cds-services`.
pub fn discovery() -> Value {
    let prefetch: serde_json::Map<String, Value> = PREFETCH
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    json!({
        "services": Hook::ALL.iter().map(|hook| json!({
            "hook": hook.name(),
            "id": hook.service_id(),
            "title": hook.title(),
            "description": hook.description(),
            "prefetch": prefetch,
            "usageRequirements": "Sign the request with a JWT of a client registered at \
                /auth/register (RS384 or ES384, kid, jti; keys registered as jwks or named by a \
                registered jwks_uri in jku). Results of other institutions are read under the \
                access rights of fhirAuthorization, or of the client.",
        })).collect::<Vec<_>>()
    })
}
