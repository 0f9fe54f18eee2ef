//! The operation registry: every operation the server answers (`$everything`, `$export`,
//! `$match`, ...), as the service that owns it declares it (`repository::operations`,
//! `residents::operations`), bound to the thin handler that turns the HTTP request into the
//! service call. The dispatcher finds operations here and nowhere else, and the
//! CapabilityStatement lists exactly what is here, so the two cannot drift (a test in
//! `tests/it/operations.rs` holds them equal).

use std::future::Future;
use std::pin::Pin;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use fhir_model::operation::{InvokeMethod, Level, OperationDecl};
use fhir_model::{Issue, IssueCode};
use repository::ExportLevel;
use repository::operations as repository_ops;

use crate::lanes::blocking;
use crate::request::{BodyKind, FhirRequest, Produces, read_form, read_json};
use crate::response::{json_response, outcome_response};
use crate::{ApiError, AppState};

/// One invocation of an operation, as the dispatcher found it.
pub(crate) struct Invocation {
    pub state: AppState,
    pub method: Method,
    /// The request's path, for the URLs an operation hands back.
    pub path: String,
    pub fhir: FhirRequest,
    pub body: Body,
    /// At the type and instance levels.
    pub resource_type: Option<String>,
    /// At the instance level.
    pub id: Option<String>,
    /// The path segments after the name: as many as the declaration's `path_segments`.
    pub segments: Vec<String>,
}

impl Invocation {
    /// The resource's id: the registry invokes instance-level operations only with one.
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// The resource type: the registry invokes type- and instance-level operations only with
    /// one.
    pub fn resource_type(&self) -> &str {
        self.resource_type.as_deref().unwrap_or_default()
    }
}

pub(crate) type Handled = Pin<Box<dyn Future<Output = Result<Response, ApiError>> + Send>>;
pub(crate) type Handler = fn(Invocation) -> Handled;

/// An operation and what answers it.
#[derive(Clone, Copy)]
pub(crate) struct Registered {
    pub decl: OperationDecl,
    pub handler: Handler,
    /// What the answer is (the Bulk Data output files are NDJSON; the rest FHIR JSON).
    pub produces: Produces,
}

/// The repository's operations, each with its handler.
const REPOSITORY: &[Registered] = &[
    fhir_json(repository_ops::VALIDATE, validate),
    fhir_json(repository_ops::EVERYTHING, everything),
    fhir_json(repository_ops::EXPORT_SYSTEM, export_system),
    fhir_json(repository_ops::EXPORT_PATIENT, export_patient),
    fhir_json(repository_ops::EXPORT_GROUP, export_group),
    fhir_json(repository_ops::EXPORT_STATUS, export_status),
    Registered {
        decl: repository_ops::EXPORT_FILE,
        handler: export_file,
        produces: Produces::Ndjson,
    },
];

pub(crate) const fn fhir_json(decl: OperationDecl, handler: Handler) -> Registered {
    Registered {
        decl,
        handler,
        produces: Produces::FhirJson,
    }
}

/// Where a path under `/fhir` names an operation: its level, type, id, name and the segments
/// after the name.
pub(crate) struct Call<'a> {
    pub level: Level,
    pub resource_type: Option<&'a str>,
    pub id: Option<&'a str>,
    pub name: &'a str,
    pub rest: &'a [String],
}

impl Call<'_> {
    /// `[base]/$op[/...]`, `[base]/[type]/$op` or `[base]/[type]/[id]/$op`; `None` for
    /// anything else (a REST interaction).
    pub fn parse(segments: &[String]) -> Option<Call<'_>> {
        let is_operation = |s: &String| s.starts_with('$');
        match segments {
            [name, rest @ ..] if is_operation(name) => Some(Call {
                level: Level::System,
                resource_type: None,
                id: None,
                name,
                rest,
            }),
            [resource_type, name] if is_operation(name) => Some(Call {
                level: Level::Type,
                resource_type: Some(resource_type),
                id: None,
                name,
                rest: &[],
            }),
            [resource_type, id, name] if is_operation(name) => Some(Call {
                level: Level::Instance,
                resource_type: Some(resource_type),
                id: Some(id),
                name,
                rest: &[],
            }),
            _ => None,
        }
    }
}

/// The operations this server answers.
pub(crate) struct Registry {
    operations: Vec<Registered>,
}

impl Registry {
    /// The repository's operations, and the identity service's when it is enabled.
    pub fn build(identity: bool) -> Registry {
        let mut operations = REPOSITORY.to_vec();
        let mut declared = repository_ops::OPERATIONS.to_vec();
        operations.push(fhir_json(
            ::cds::operations::EVALUATE_MEASURE,
            crate::cds::evaluate_measure,
        ));
        declared.extend_from_slice(::cds::operations::OPERATIONS);
        operations.extend_from_slice(crate::workflow::OPERATIONS);
        operations.extend_from_slice(crate::subscriptions::OPERATIONS);
        declared.extend_from_slice(::notify::operations::OPERATIONS);
        declared.extend_from_slice(::workflow::operations::OPERATIONS);
        operations.extend_from_slice(crate::chronic::OPERATIONS);
        operations.extend_from_slice(crate::intake::OPERATIONS);
        declared.extend_from_slice(::intake::operations::OPERATIONS);
        declared.extend_from_slice(::chronic::operations::OPERATIONS);
        operations.extend_from_slice(crate::ecg::OPERATIONS);
        operations.extend_from_slice(crate::analytics::OPERATIONS);
        declared.extend_from_slice(::analytics::operations::OPERATIONS);
        declared.extend_from_slice(imaging::operations::OPERATIONS);
        if identity {
            operations.extend_from_slice(crate::identity::OPERATIONS);
            declared.extend_from_slice(residents::operations::OPERATIONS);
        }
        Registry::check(&operations, &declared);
        Registry { operations }
    }

    /// The handlers bound are exactly the operations the services declare, and no two
    /// operations answer the same URL. A broken table is a bug found by every test that starts
    /// a server.
    fn check(operations: &[Registered], declared: &[OperationDecl]) {
        for decl in declared {
            assert!(
                operations.iter().any(|o| o.decl == *decl),
                "{} ({}) is declared but the server has no handler for it",
                decl.name,
                decl.definition
            );
        }
        for operation in operations {
            assert!(
                declared.contains(&operation.decl),
                "the server has a handler for {} ({}) that no service declares",
                operation.decl.name,
                operation.decl.definition
            );
        }
        for (i, a) in operations.iter().enumerate() {
            for b in &operations[i + 1..] {
                let overlap = a.decl.name == b.decl.name
                    && a.decl.levels.iter().any(|level| {
                        b.decl.levels.contains(level)
                            && (*level == Level::System
                                || a.decl.resource_types.is_empty()
                                || b.decl.resource_types.is_empty()
                                || a.decl
                                    .resource_types
                                    .iter()
                                    .any(|t| b.decl.resource_types.contains(t)))
                    });
                assert!(!overlap, "two operations answer {}", a.decl.name);
            }
        }
    }

    pub fn operations(&self) -> impl Iterator<Item = &OperationDecl> {
        self.operations.iter().map(|o| &o.decl)
    }

    pub fn find(&self, call: &Call) -> Option<&Registered> {
        self.operations.iter().find(|o| {
            o.decl.name == call.name
                && o.decl.applies(call.level, call.resource_type)
                && o.decl.path_segments() == call.rest.len()
        })
    }

    /// Invokes the operation `call` names, or answers 404 (no such operation here) or 405
    /// (not with this method, with the methods it takes).
    pub async fn invoke(
        &self,
        call: Call<'_>,
        state: &AppState,
        method: &Method,
        path: &str,
        fhir: FhirRequest,
        body: Body,
    ) -> Result<Response, ApiError> {
        let Some(registered) = self.find(&call) else {
            return Err(ApiError::NotFound(if call.rest.is_empty() {
                format!("the operation {} is not supported", call.name)
            } else {
                format!("no FHIR endpoint at {path}")
            }));
        };
        let invoked_with = match *method {
            Method::GET => Some(InvokeMethod::Get),
            Method::POST => Some(InvokeMethod::Post),
            Method::DELETE => Some(InvokeMethod::Delete),
            _ => None,
        };
        if !invoked_with.is_some_and(|m| registered.decl.methods.contains(&m)) {
            let allowed: Vec<&str> = registered.decl.methods.iter().map(|m| m.as_str()).collect();
            return Err(ApiError::method_not_allowed(method, &allowed));
        }
        // Every operation that reads or writes stored data is audited; `$validate` touches
        // none, and an export's status says nothing of its content.
        if !matches!(call.name, "$validate" | "$export-status") {
            let note = &fhir.audit;
            note.begin(
                access::audit::Interaction::Operation(call.name.to_owned()),
                call.resource_type,
            );
            if let (Some("Patient"), Some(id)) = (call.resource_type, call.id) {
                note.patients(crate::audit::patient_reference(id));
            }
            let query = repository::encode_query(&fhir.criteria());
            note.query(if query.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{query}")
            });
        }
        let target = match (call.resource_type, call.id) {
            (Some(resource_type), Some(id)) => Some(format!("{resource_type}/{id}")),
            _ => None,
        };
        access::policy::may_invoke(&fhir.caller, &registered.decl, target.as_deref())
            .map_err(|denied| ApiError::from(repository::RepositoryError::Forbidden(denied.0)))?;
        let invocation = Invocation {
            state: state.clone(),
            method: method.clone(),
            path: path.to_owned(),
            fhir,
            body,
            resource_type: call.resource_type.map(str::to_owned),
            id: call.id.map(str::to_owned),
            segments: call.rest.to_vec(),
        };
        (registered.handler)(invocation).await
    }
}

/// `$everything` on a Patient: its compartment and what it references, as a searchset.
fn everything(call: Invocation) -> Handled {
    Box::pin(async move {
        let repository = call.state.repository().clone();
        let fhir = call.fhir;
        let mut params = fhir.criteria();
        if call.method == Method::POST {
            let limit = call.state.config().max_body_bytes;
            params.extend(read_form(&fhir.headers, call.body, limit).await?);
        }
        let ctx = fhir.caller.clone();
        let base = fhir.base.clone();
        let id = call.id.unwrap_or_default();
        let note = fhir.audit.clone();
        let bundle = blocking(move || {
            let bundle = repository.everything(&ctx, &base, &id, &params)?;
            note.bundle(&repository, &bundle);
            Ok(bundle)
        })
        .await?;
        Ok(json_response(StatusCode::OK, bundle, fhir.pretty))
    })
}

/// `$validate`: the resource in the body (bare, or as the `resource` parameter of a
/// Parameters), checked as a write would check it. Always 200 with the OperationOutcome, unless
/// the body itself cannot be read.
fn validate(call: Invocation) -> Handled {
    Box::pin(async move {
        let repository = call.state.repository().clone();
        let limit = call.state.config().max_body_bytes;
        let resource_type = call.resource_type().to_owned();
        let fhir = call.fhir;
        let body = read_json(&fhir.headers, call.body, limit, BodyKind::Resource).await?;
        let resource = if body.get("resourceType").and_then(|t| t.as_str()) == Some("Parameters")
            && resource_type != "Parameters"
        {
            body.get("parameter")
                .and_then(|p| p.as_array())
                .and_then(|params| {
                    params
                        .iter()
                        .find(|p| p.get("name").and_then(|n| n.as_str()) == Some("resource"))
                })
                .and_then(|p| p.get("resource"))
                .cloned()
                .ok_or_else(|| {
                    ApiError::bad_request(
                        IssueCode::Required,
                        "the Parameters carry no 'resource' parameter",
                    )
                })?
        } else {
            body
        };
        let mut issues = Vec::new();
        match resource.get("resourceType").and_then(|t| t.as_str()) {
            Some(t) if t == resource_type => {}
            other => issues.push(
                Issue::error(
                    IssueCode::Invalid,
                    format!(
                        "the resource is a {}, not a {resource_type}",
                        other.unwrap_or("resource without a type")
                    ),
                )
                .at("resourceType"),
            ),
        }
        if let Some(id) = &call.id
            && resource.get("id").and_then(|v| v.as_str()) != Some(id)
        {
            issues.push(
                Issue::error(
                    IssueCode::Invalid,
                    format!("the resource's id is not '{id}'"),
                )
                .at("id"),
            );
        }
        issues.extend(blocking(move || Ok(repository.validate(&resource))).await?);
        Ok(outcome_response(StatusCode::OK, &issues))
    })
}

fn export_system(call: Invocation) -> Handled {
    export(call, |_| ExportLevel::System)
}

fn export_patient(call: Invocation) -> Handled {
    export(call, |_| ExportLevel::Patient)
}

fn export_group(call: Invocation) -> Handled {
    export(call, |call| ExportLevel::Group(call.id().to_owned()))
}

/// Bulk Data kick-off at the level `level` gives.
fn export(call: Invocation, level: fn(&Invocation) -> ExportLevel) -> Handled {
    Box::pin(async move {
        let level = level(&call);
        crate::export::kick_off(call.state.exports(), &call.fhir, level, &call.path).await
    })
}

/// `$export-status/[job]`: GET polls, DELETE cancels.
fn export_status(call: Invocation) -> Handled {
    Box::pin(async move {
        let exports = call.state.exports();
        let job = &call.segments[0];
        if call.method == Method::DELETE {
            crate::export::cancel(&exports, job).await
        } else {
            crate::export::status(&exports, &call.fhir, job).await
        }
    })
}

/// `$export-file/[job]/[file]`.
fn export_file(call: Invocation) -> Handled {
    Box::pin(async move {
        crate::export::file(&call.state.exports(), &call.segments[0], &call.segments[1]).await
    })
}
