//! `GET /fhir/metadata`: a CapabilityStatement that says exactly what this server implements,
//! built from the same tables the server runs on (the model, the search parameters, the
//! operation registry), so it cannot drift from the code.

use fhir_model::clock;
use fhir_model::operation::{Level, OperationDecl};
use repository::Repository;
use serde_json::{Value, json};

use crate::operations::Registry;

const INTERACTIONS: [&str; 9] = [
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

/// The statement; `security_base` is the FHIR base of this request when sign-in is on (the
/// SMART security service and its OAuth endpoints are declared then).
pub fn capability_statement(
    repository: &Repository,
    operations: &Registry,
    security_base: Option<&str>,
) -> Vec<u8> {
    let indexer = repository.indexer();
    let resources: Vec<Value> = repository
        .model()
        .resource_types()
        .iter()
        .map(|resource_type| {
            let mut params: Vec<Value> = indexer
                .registry()
                .params_of(resource_type)
                .filter(|p| search::supports(p.kind))
                .map(|p| {
                    json!({
                        "name": &*p.code,
                        "definition": &*p.definition.url,
                        "type": p.kind.as_str(),
                    })
                })
                .collect();
            params.push(json!({
                "name": "_id",
                "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
                "type": "token",
            }));
            params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            params.dedup_by(|a, b| a["name"] == b["name"]);
            let interactions: Vec<Value> = INTERACTIONS
                .iter()
                .map(|code| json!({"code": code}))
                .collect();
            let mut resource = json!({
                "type": &**resource_type,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{resource_type}"),
                "interaction": interactions,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-supported",
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "referencePolicy": ["literal", "local"],
                "searchParam": params,
            });
            if &**resource_type == "Subscription" {
                // The topics subscriptions may name (Subscriptions R4 Backport).
                resource["extension"] = Value::Array(
                    notify::topic::topics()
                        .iter()
                        .map(|topic| {
                            json!({"url": notify::topic::CAPABILITY_TOPIC, "valueCanonical": topic.url()})
                        })
                        .collect(),
                );
                resource["supportedProfile"] = json!([
                    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"
                ]);
            }
            let operations = resource_operations(operations, resource_type);
            if !operations.is_empty() {
                resource["operation"] = Value::Array(operations);
            }
            resource
        })
        .collect();
    let mut statement = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": clock::format_instant(clock::now_micros()),
        "publisher": "Meridian",
        "kind": "instance",
        "software": {"name": "Meridian", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Meridian regional health information platform"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [
                {"code": "transaction"},
                {"code": "batch"},
                {"code": "history-system"},
                {"code": "search-system"},
            ],
        }],
    });
    if let Some(base) = security_base {
        statement["rest"][0]["security"] = crate::auth::capability_security(base);
    }
    let system = system_operations(operations);
    if !system.is_empty() {
        statement["rest"][0]["operation"] = Value::Array(system);
    }
    serde_json::to_vec(&statement).expect("a JSON value always serialises")
}

/// The operations the registry holds that apply to `resource_type` at the type or instance
/// level, each once.
fn resource_operations(operations: &Registry, resource_type: &str) -> Vec<Value> {
    let mut listed: Vec<Value> = Vec::new();
    for decl in operations.operations().filter(|d| d.is_listed()) {
        let applies = [Level::Type, Level::Instance]
            .into_iter()
            .any(|level| decl.applies(level, Some(resource_type)));
        let entry = operation(decl);
        if applies && !listed.contains(&entry) {
            listed.push(entry);
        }
    }
    listed
}

/// The system-level operations the registry holds.
fn system_operations(operations: &Registry) -> Vec<Value> {
    operations
        .operations()
        .filter(|d| d.is_listed() && d.applies(Level::System, None))
        .map(operation)
        .collect()
}

fn operation(decl: &OperationDecl) -> Value {
    json!({"name": decl.code(), "definition": decl.definition})
}
