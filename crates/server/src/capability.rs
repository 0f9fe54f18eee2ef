//! `GET /fhir/metadata`: a CapabilityStatement that says exactly what this server implements,
//! built from the same tables the server runs on, so it cannot drift from the code.

use fhir_model::clock;
use repository::Repository;
use serde_json::{Value, json};

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

pub fn capability_statement(repository: &Repository) -> Vec<u8> {
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
            json!({
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
                "operation": operations(resource_type),
            })
        })
        .collect();
    let statement = json!({
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
            "operation": [{
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
            }],
        }],
    });
    serde_json::to_vec(&statement).expect("a JSON value always serialises")
}

fn operations(resource_type: &str) -> Vec<Value> {
    let mut operations = vec![json!({
        "name": "validate",
        "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    })];
    if resource_type == "Patient" {
        operations.push(json!({
            "name": "everything",
            "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
        }));
    }
    if resource_type == "Patient" || resource_type == "Group" {
        operations.push(json!({
            "name": "export",
            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
        }));
    }
    // The identity operations (crates/server/src/identity.rs). Those without an official
    // definition point at the server's own canonical.
    let identity: &[(&str, &str, &str)] = &[
        (
            "Patient",
            "match",
            "http://hl7.org/fhir/OperationDefinition/Patient-match",
        ),
        (
            "Patient",
            "ihe-pix",
            "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix",
        ),
        (
            "Patient",
            "health-code",
            "urn:meridian:operation:health-code",
        ),
        (
            "Patient",
            "resolve-health-code",
            "urn:meridian:operation:resolve-health-code",
        ),
        (
            "Patient",
            "revoke-health-code",
            "urn:meridian:operation:revoke-health-code",
        ),
        ("Person", "link", "urn:meridian:operation:person-link"),
        ("Person", "unlink", "urn:meridian:operation:person-unlink"),
        ("Person", "merge", "urn:meridian:operation:person-merge"),
        ("Person", "model", "urn:meridian:operation:person-model"),
        (
            "Person",
            "estimate-model",
            "urn:meridian:operation:person-estimate-model",
        ),
        (
            "Task",
            "accept-match",
            "urn:meridian:operation:accept-match",
        ),
        (
            "Task",
            "reject-match",
            "urn:meridian:operation:reject-match",
        ),
    ];
    for (on, name, definition) in identity {
        if *on == resource_type {
            operations.push(json!({"name": name, "definition": definition}));
        }
    }
    operations
}
