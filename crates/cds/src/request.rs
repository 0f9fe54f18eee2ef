//! A hook request, read and checked. What is malformed (a context of the wrong shape, an id
//! where a reference belongs, a draft order that is not a valid resource) is refused with a
//! message that says where; what is absent is only what the service then cannot check.

use fhir_model::Model;
use serde_json::{Map, Value};

use crate::error::CdsError;
use crate::hook::Hook;

/// The order types whose drafts the rules and recognition look at.
pub const ORDER_TYPES: [&str; 3] = ["ServiceRequest", "MedicationRequest", "NutritionOrder"];

/// Other request resources a client may draft (CDS Hooks 2.0 `order-sign`): accepted, not
/// checked.
const OTHER_REQUEST_TYPES: [&str; 6] = [
    "DeviceRequest",
    "VisionPrescription",
    "CommunicationRequest",
    "Task",
    "ImmunizationRecommendation",
    "SupplyRequest",
];

/// The `fhirAuthorization` of a request: the token to read the record with. Never logged.
#[derive(Clone)]
pub struct FhirAuthorization {
    pub access_token: String,
}

impl std::fmt::Debug for FhirAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FhirAuthorization(..)")
    }
}

#[derive(Debug, Clone)]
pub struct HookRequest {
    pub hook: Hook,
    pub hook_instance: String,
    pub fhir_server: Option<String>,
    pub fhir_authorization: Option<FhirAuthorization>,
    pub user_id: Option<String>,
    pub patient_id: Option<String>,
    pub encounter_id: Option<String>,
    /// `Type/id` of the drafts the user just selected (order-select).
    pub selections: Vec<String>,
    /// The draft orders, as sent.
    pub drafts: Vec<Value>,
    /// Prefetched data by key; `None` where the client sent `null` (could not fetch).
    pub prefetch: Map<String, Value>,
    /// Meridian's request extension `meridian.department`: the ordering department.
    pub department: Option<String>,
}

fn bad(message: impl Into<String>) -> CdsError {
    CdsError::BadRequest(message.into())
}

/// A FHIR id: 1 to 64 of letters, digits, `-` and `.`.
pub fn is_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A relative reference `Type/id`.
pub fn is_reference(text: &str) -> bool {
    text.split_once('/').is_some_and(|(t, id)| {
        !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphabetic()) && is_id(id)
    })
}

impl HookRequest {
    /// Reads the JSON body posted to the service for `hook`, validating draft orders with
    /// the FHIR `model` as every write is.
    pub fn parse(body: &[u8], hook: Hook, model: &Model) -> Result<HookRequest, CdsError> {
        let value = fhir_model::json::parse(body)
            .map_err(|e| bad(format!("the request is not JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(bad("the request must be a JSON object"));
        };
        let text = |key: &str| -> Result<Option<String>, CdsError> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(format!("'{key}' must be a string"))),
            }
        };
        let named = text("hook")?.ok_or_else(|| bad("'hook' is required"))?;
        if named != hook.name() {
            return Err(match Hook::from_name(&named) {
                Some(_) => bad(format!(
                    "this service answers the hook '{}', not '{named}'",
                    hook.name()
                )),
                None => bad(format!("unknown hook '{named}'")),
            });
        }
        let hook_instance = text("hookInstance")?
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .ok_or_else(|| bad("'hookInstance' is required (a UUID of at most 128 characters)"))?;
        let fhir_server = text("fhirServer")?;
        let fhir_authorization = match object.get("fhirAuthorization") {
            None | Some(Value::Null) => None,
            Some(Value::Object(auth)) => {
                let token = auth
                    .get("access_token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| bad("fhirAuthorization.access_token is required"))?;
                if let Some(kind) = auth.get("token_type")
                    && !kind
                        .as_str()
                        .is_some_and(|k| k.eq_ignore_ascii_case("bearer"))
                {
                    return Err(bad("fhirAuthorization.token_type must be 'Bearer'"));
                }
                Some(FhirAuthorization {
                    access_token: token.to_owned(),
                })
            }
            Some(_) => return Err(bad("'fhirAuthorization' must be an object")),
        };
        let context = match object.get("context") {
            Some(Value::Object(context)) => context,
            Some(_) => return Err(bad("'context' must be an object")),
            None => return Err(bad("'context' is required")),
        };
        let context_text = |key: &str| -> Result<Option<String>, CdsError> {
            match context.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(format!("context.{key} must be a string"))),
            }
        };
        let user_id = context_text("userId")?;
        if let Some(user) = &user_id
            && !is_reference(user)
        {
            return Err(bad(format!(
                "context.userId must be a reference such as Practitioner/123, not '{user}'"
            )));
        }
        let id_field = |key: &str| -> Result<Option<String>, CdsError> {
            let value = context_text(key)?;
            if let Some(id) = &value
                && !is_id(id)
            {
                return Err(bad(format!(
                    "context.{key} must be a FHIR id (letters, digits, '-', '.'), not '{id}'"
                )));
            }
            Ok(value)
        };
        let patient_id = id_field("patientId")?;
        let encounter_id = id_field("encounterId")?;
        let drafts = if hook.orders() {
            match context.get("draftOrders") {
                None | Some(Value::Null) => Vec::new(),
                Some(bundle) => draft_orders(bundle, model)?,
            }
        } else {
            Vec::new()
        };
        let mut selections = Vec::new();
        if hook == Hook::OrderSelect {
            match context.get("selections") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for item in items {
                        let reference = item
                            .as_str()
                            .filter(|s| is_reference(s))
                            .ok_or_else(|| {
                                bad("context.selections must list references such as ServiceRequest/123")
                            })?;
                        selections.push(reference.to_owned());
                    }
                }
                Some(_) => return Err(bad("context.selections must be an array")),
            }
        }
        let prefetch = match object.get("prefetch") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(items)) => {
                let mut out = Map::new();
                for (key, item) in items {
                    let item = match item {
                        Value::Null => continue,
                        // CDS Hooks 1.0 wrapped a prefetched resource with its response.
                        Value::Object(o) if !o.contains_key("resourceType") => match o
                            .get("resource")
                        {
                            Some(resource @ Value::Object(_)) => resource,
                            Some(Value::Null) | None if o.contains_key("response") => continue,
                            _ => return Err(bad(format!("prefetch.{key} is not a FHIR resource"))),
                        },
                        Value::Object(_) => item,
                        _ => return Err(bad(format!("prefetch.{key} is not a FHIR resource"))),
                    };
                    if !item.get("resourceType").is_some_and(Value::is_string) {
                        return Err(bad(format!("prefetch.{key} is not a FHIR resource")));
                    }
                    out.insert(key.clone(), item.clone());
                }
                out
            }
            Some(_) => return Err(bad("'prefetch' must be an object")),
        };
        let department = match object.get("extension") {
            None | Some(Value::Null) => None,
            Some(Value::Object(extension)) => match extension.get("meridian.department") {
                None | Some(Value::Null) => None,
                Some(Value::String(d)) if !d.is_empty() && d.len() <= 128 => Some(d.clone()),
                Some(_) => {
                    return Err(bad(
                        "extension.meridian.department must be a name of at most 128 characters",
                    ));
                }
            },
            Some(_) => return Err(bad("'extension' must be an object")),
        };
        Ok(HookRequest {
            hook,
            hook_instance,
            fhir_server,
            fhir_authorization,
            user_id,
            patient_id,
            encounter_id,
            selections,
            drafts,
            prefetch,
            department,
        })
    }

    /// Whether the draft is one to check: at `order-select`, the newly selected ones when the
    /// request names any; otherwise every draft.
    pub fn is_selected(&self, draft: &Value) -> bool {
        if self.hook != Hook::OrderSelect || self.selections.is_empty() {
            return true;
        }
        let reference = crate::rules::reference_of(draft);
        self.selections.contains(&reference)
    }

    /// The patient the request is about: `context.patientId`, or else the subject the draft
    /// orders share.
    pub fn patient(&self) -> Option<String> {
        if let Some(id) = &self.patient_id {
            return Some(id.clone());
        }
        self.drafts.iter().find_map(|draft| {
            let reference = draft
                .get("subject")
                .or_else(|| draft.get("patient"))?
                .get("reference")?
                .as_str()?;
            reference
                .strip_prefix("Patient/")
                .filter(|id| is_id(id))
                .map(str::to_owned)
        })
    }
}

/// The draft orders of a `draftOrders` Bundle, each a valid resource of a request type.
fn draft_orders(bundle: &Value, model: &Model) -> Result<Vec<Value>, CdsError> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(bad("context.draftOrders must be a Bundle"));
    }
    let entries = match bundle.get("entry") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(bad("context.draftOrders.entry must be an array")),
    };
    if entries.len() > 200 {
        return Err(bad("context.draftOrders holds more than 200 orders"));
    }
    let mut drafts = Vec::with_capacity(entries.len());
    for (n, entry) in entries.iter().enumerate() {
        let resource = entry
            .get("resource")
            .filter(|r| r.is_object())
            .ok_or_else(|| bad(format!("context.draftOrders.entry[{n}] has no resource")))?;
        let kind = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !ORDER_TYPES.contains(&kind) && !OTHER_REQUEST_TYPES.contains(&kind) {
            return Err(bad(format!(
                "context.draftOrders.entry[{n}] is a {}, not an order (ServiceRequest, \
                 MedicationRequest, NutritionOrder...)",
                if kind.is_empty() {
                    "resource without resourceType"
                } else {
                    kind
                }
            )));
        }
        if let Some(id) = resource.get("id")
            && !id.as_str().is_some_and(is_id)
        {
            return Err(bad(format!(
                "context.draftOrders.entry[{n}] has an invalid id"
            )));
        }
        let errors: Vec<String> = fhir_model::validate(model, resource)
            .into_iter()
            .filter(|issue| issue.severity == fhir_model::Severity::Error)
            .map(|issue| match &issue.expression {
                Some(at) => format!("{} (at {at})", issue.diagnostics),
                None => issue.diagnostics,
            })
            .collect();
        if let Some(first) = errors.first() {
            return Err(bad(format!(
                "context.draftOrders.entry[{n}] ({kind}) is not valid: {first}{}",
                if errors.len() > 1 {
                    format!(" (and {} more)", errors.len() - 1)
                } else {
                    String::new()
                }
            )));
        }
        drafts.push(resource.clone());
    }
    Ok(drafts)
}
