//! The FHIR REST surface under `/fhir`: one dispatcher that reads the path segments and the
//! method and calls the repository for the RESTful interactions, or the operation registry
//! (`operations`) for a `$`-name. Everything the repository does runs on a blocking thread.

use access::audit::Interaction;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use fhir_model::{Issue, IssueCode};
use repository::{
    BundleOptions, HistoryRequest, Repository, SearchRequest, SearchScope, WriteStatus, Written,
};
use search::Handling;
use store::HistoryScope;

use crate::operations::Call;
use crate::request::{BodyKind, FhirRequest, Produces, Return, read_form, read_json};
use crate::response::{deleted_response, json_response, version_response};
use crate::{ApiError, AppState};

/// Routes every request under `/fhir`.
pub async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let segments = fhir_segments(&path);
    // Only the Bulk Data output files are not FHIR JSON; what the client accepts is checked
    // against what this endpoint answers with.
    let produces = segments
        .as_deref()
        .and_then(Call::parse)
        .and_then(|call| state.operations().find(&call))
        .map_or(Produces::FhirJson, |operation| operation.produces);
    let address = parts.extensions.get::<crate::PeerAddress>().map(|p| p.0);
    // A request refused before it is read (malformed, or without a valid token) is still an
    // attempt on what its URL names: recorded as a denial, from nobody known.
    let refused = |request_id: String, error: ApiError| {
        let response = error.into_response(&request_id);
        let mut caller = caller::Caller::anonymous(request_id);
        caller.address = address;
        let state = state.clone();
        let method = method.clone();
        let segments = segments.clone();
        async move {
            let note = crate::audit::AuditNote::default();
            crate::audit::settle(
                &state,
                &caller,
                &note,
                &method,
                segments.as_deref(),
                response,
            )
            .await
        }
    };
    let mut fhir =
        match FhirRequest::new(parts.headers, parts.uri.query(), state.config(), produces) {
            Ok(fhir) => fhir,
            Err((request_id, error)) => return refused(request_id, error).await,
        };
    let request_id = fhir.request_id.clone();
    // Who asks: every request but the CapabilityStatement's carries a valid bearer token.
    let public = segments.as_deref().is_some_and(|s| s == ["metadata"]);
    if public {
        fhir.caller.address = address;
    } else {
        match crate::auth::caller(&state, &fhir.headers, address, &request_id).await {
            Ok(caller) => fhir.caller = caller,
            Err(error) => return refused(request_id, error).await,
        }
    }
    let caller = fhir.caller.clone();
    let note = fhir.audit.clone();
    // Reads and writes queue for the store separately (`lanes`): a read flood does not make
    // writes wait behind it.
    let lane = match method {
        Method::GET | Method::HEAD => crate::lanes::Lane::Read,
        _ => crate::lanes::Lane::Write,
    };
    let segments_seen = segments.clone();
    let request = handle(&state, &method, &path, segments, fhir, body);
    let response = match crate::lanes::within(state.lanes(), lane, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(&request_id),
    };
    // Nothing about patient data leaves before its audit record is durable; a denial is
    // recorded even when it came before the handler said what the request was.
    let response = crate::audit::settle(
        &state,
        &caller,
        &note,
        &method,
        segments_seen.as_deref(),
        response,
    )
    .await;
    tracing::info!(
        request_id,
        %method,
        path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

use crate::lanes::blocking;

/// The percent-decoded path segments under `/fhir`; `None` for a path outside it.
fn fhir_segments(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix("/fhir")?;
    Some(
        rest.split('/')
            .filter(|s| !s.is_empty())
            // A path segment is not a form value: `+` is a plus sign, not a space.
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect(),
    )
}

async fn handle(
    state: &AppState,
    method: &Method,
    path: &str,
    segments: Option<Vec<String>>,
    fhir: FhirRequest,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(segments) = segments else {
        return Err(ApiError::NotFound(format!(
            "no endpoint at {path}; the FHIR base is /fhir"
        )));
    };
    let repository = state.repository().clone();
    if let Some(call) = Call::parse(&segments) {
        if let Some(resource_type) = call.resource_type {
            known_type(&repository, resource_type)?;
        }
        return state
            .operations()
            .invoke(call, state, method, path, fhir, body)
            .await;
    }
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let limit = state.config().max_body_bytes;
    let not_allowed = |allowed: &[&'static str]| Err(ApiError::method_not_allowed(method, allowed));

    match segments.as_slice() {
        [] => match *method {
            Method::GET => search(repository, fhir, SearchScope::System, None).await,
            Method::POST => {
                let bundle = read_json(&fhir.headers, body, limit, BodyKind::Resource).await?;
                let note = fhir.audit.clone();
                // The Bundle as a whole (a refusal or failure of all of it is recorded so);
                // each entry is noted once it is done.
                note.begin(
                    match bundle.get("type").and_then(|t| t.as_str()) {
                        Some("transaction") => Interaction::Transaction,
                        _ => Interaction::Batch,
                    },
                    None,
                );
                // The trail is the server's to write: a Bundle that would touch it is refused
                // whole, before any of it is written.
                access::audit::check_bundle_leaves_trail_alone(&bundle)?;
                let request = bundle.clone();
                let options = BundleOptions {
                    return_representation: fhir.prefer_return() == Return::Representation,
                };
                let ctx = fhir.caller.clone();
                let base = fhir.base.clone();
                let response = blocking(move || {
                    let response = repository.process_bundle(&ctx, &base, bundle, options)?;
                    crate::audit::bundle_entries(&note, &repository, &request, &response);
                    Ok(response)
                })
                .await?;
                Ok(json_response(StatusCode::OK, response, fhir.pretty))
            }
            _ => not_allowed(&["GET", "POST"]),
        },
        ["_search"] => match *method {
            Method::POST => {
                let form = read_form(&fhir.headers, body, limit).await?;
                search(repository, fhir, SearchScope::System, Some(form)).await
            }
            _ => not_allowed(&["POST"]),
        },
        ["metadata"] => match *method {
            Method::GET => {
                // Built on each request: SearchParameters written to the server change it.
                let state = state.clone();
                let security = matches!(state.config().auth, crate::Auth::Required(_))
                    .then(|| fhir.base.clone());
                let statement = blocking(move || {
                    Ok(crate::capability::capability_statement(
                        &repository,
                        state.operations(),
                        security.as_deref(),
                    ))
                })
                .await?;
                Ok(json_response(StatusCode::OK, statement, fhir.pretty))
            }
            _ => not_allowed(&["GET"]),
        },
        ["_history"] => match *method {
            Method::GET => history(repository, fhir, HistoryScope::System).await,
            _ => not_allowed(&["GET"]),
        },
        [resource_type, rest @ ..] => {
            known_type(&repository, resource_type)?;
            let resource_type = resource_type.to_string();
            // The audit trail is written by the server only: never created, changed or
            // deleted through the API. The attempt itself is recorded.
            if resource_type == "AuditEvent"
                && !matches!(*method, Method::GET | Method::HEAD)
                && rest != ["_search"]
            {
                let interaction = match *method {
                    Method::POST => Interaction::Create,
                    Method::PATCH => Interaction::Patch,
                    Method::DELETE => Interaction::Delete,
                    _ => Interaction::Update,
                };
                fhir.audit.begin(interaction, Some("AuditEvent"));
                return Err(ApiError::method_not_allowed(method, &["GET"]));
            }
            match rest {
                [] => match *method {
                    Method::GET => {
                        search(repository, fhir, SearchScope::Type(resource_type), None).await
                    }
                    Method::POST => create(repository, fhir, body, limit, resource_type).await,
                    Method::PUT => {
                        conditional_update(repository, fhir, body, limit, resource_type).await
                    }
                    Method::DELETE => conditional_delete(repository, fhir, resource_type).await,
                    _ => not_allowed(&["GET", "POST", "PUT", "DELETE"]),
                },
                ["_search"] => match *method {
                    Method::POST => {
                        let form = read_form(&fhir.headers, body, limit).await?;
                        search(
                            repository,
                            fhir,
                            SearchScope::Type(resource_type),
                            Some(form),
                        )
                        .await
                    }
                    _ => not_allowed(&["POST"]),
                },
                ["_history"] => match *method {
                    Method::GET => {
                        history(repository, fhir, HistoryScope::Type(resource_type)).await
                    }
                    _ => not_allowed(&["GET"]),
                },
                [id] => {
                    let id = id.to_string();
                    match *method {
                        Method::GET => read(repository, fhir, resource_type, id).await,
                        Method::PUT => {
                            update(repository, fhir, body, limit, resource_type, id).await
                        }
                        Method::PATCH => {
                            patch(repository, fhir, body, limit, resource_type, id).await
                        }
                        Method::DELETE => delete(repository, fhir, resource_type, id).await,
                        _ => not_allowed(&["GET", "PUT", "PATCH", "DELETE"]),
                    }
                }
                [id, "_history"] => match *method {
                    Method::GET => {
                        history(
                            repository,
                            fhir,
                            HistoryScope::Instance(resource_type, id.to_string()),
                        )
                        .await
                    }
                    _ => not_allowed(&["GET"]),
                },
                [id, "_history", version] => match *method {
                    Method::GET => {
                        vread(
                            repository,
                            fhir,
                            resource_type,
                            id.to_string(),
                            version.to_string(),
                        )
                        .await
                    }
                    _ => not_allowed(&["GET"]),
                },
                [id, compartment_type] if repository.knows_type(compartment_type) => {
                    match *method {
                        Method::GET => {
                            let scope = SearchScope::Compartment {
                                compartment: resource_type,
                                id: id.to_string(),
                                resource_type: compartment_type.to_string(),
                            };
                            search(repository, fhir, scope, None).await
                        }
                        _ => not_allowed(&["GET"]),
                    }
                }
                _ => Err(ApiError::NotFound(format!("no FHIR endpoint at {path}"))),
            }
        }
    }
}

type Repo = std::sync::Arc<Repository>;

/// 404 for a type R4 does not define.
fn known_type(repository: &Repository, resource_type: &str) -> Result<(), ApiError> {
    if repository.knows_type(resource_type) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "'{resource_type}' is not a FHIR R4 resource type"
        )))
    }
}

async fn read(
    repository: Repo,
    fhir: FhirRequest,
    resource_type: String,
    id: String,
) -> Result<Response, ApiError> {
    let ctx = fhir.caller.clone();
    let note = fhir.audit.clone();
    note.begin_instance(Interaction::Read, &resource_type, &id);
    let record = blocking(move || {
        let record = repository.read(&ctx, &resource_type, &id)?;
        note.version(&repository, &record);
        Ok(record)
    })
    .await?;
    Ok(version_response(
        &fhir,
        StatusCode::OK,
        &record,
        false,
        Return::Representation,
    ))
}

async fn vread(
    repository: Repo,
    fhir: FhirRequest,
    resource_type: String,
    id: String,
    version: String,
) -> Result<Response, ApiError> {
    let ctx = fhir.caller.clone();
    let note = fhir.audit.clone();
    note.begin_instance(Interaction::Vread, &resource_type, &id);
    let record = blocking(move || {
        let record = repository.vread(&ctx, &resource_type, &id, &version)?;
        note.version(&repository, &record);
        Ok(record)
    })
    .await?;
    Ok(version_response(
        &fhir,
        StatusCode::OK,
        &record,
        false,
        Return::Representation,
    ))
}

async fn create(
    repository: Repo,
    fhir: FhirRequest,
    body: Body,
    limit: usize,
    resource_type: String,
) -> Result<Response, ApiError> {
    let note = fhir.audit.clone();
    note.begin(Interaction::Create, Some(&resource_type));
    let resource = read_json(&fhir.headers, body, limit, BodyKind::Resource).await?;
    check_body_type(&resource, &resource_type)?;
    let ctx = fhir.caller.clone();
    let if_none_exist = fhir.if_none_exist();
    let written = blocking(move || {
        let written = repository.create(&ctx, resource, if_none_exist.as_deref())?;
        note.written(&repository, &written);
        Ok(written)
    })
    .await?;
    Ok(written_response(&fhir, &written))
}

async fn update(
    repository: Repo,
    fhir: FhirRequest,
    body: Body,
    limit: usize,
    resource_type: String,
    id: String,
) -> Result<Response, ApiError> {
    let note = fhir.audit.clone();
    note.begin_instance(Interaction::Update, &resource_type, &id);
    let resource = read_json(&fhir.headers, body, limit, BodyKind::Resource).await?;
    let if_match = fhir.if_match()?;
    let ctx = fhir.caller.clone();
    let written = blocking(move || {
        let written = repository.update(&ctx, &resource_type, &id, resource, if_match)?;
        note.written(&repository, &written);
        Ok(written)
    })
    .await?;
    Ok(written_response(&fhir, &written))
}

async fn conditional_update(
    repository: Repo,
    fhir: FhirRequest,
    body: Body,
    limit: usize,
    resource_type: String,
) -> Result<Response, ApiError> {
    let note = fhir.audit.clone();
    note.begin(Interaction::Update, Some(&resource_type));
    let resource = read_json(&fhir.headers, body, limit, BodyKind::Resource).await?;
    let if_match = fhir.if_match()?;
    let criteria = fhir.criteria();
    note.query(format!(
        "{resource_type}?{}",
        repository::encode_query(&criteria)
    ));
    let ctx = fhir.caller.clone();
    let written = blocking(move || {
        let written =
            repository.conditional_update(&ctx, &resource_type, &criteria, resource, if_match)?;
        note.written(&repository, &written);
        Ok(written)
    })
    .await?;
    Ok(written_response(&fhir, &written))
}

async fn patch(
    repository: Repo,
    fhir: FhirRequest,
    body: Body,
    limit: usize,
    resource_type: String,
    id: String,
) -> Result<Response, ApiError> {
    let note = fhir.audit.clone();
    note.begin_instance(Interaction::Patch, &resource_type, &id);
    let document = read_json(&fhir.headers, body, limit, BodyKind::JsonPatch).await?;
    let if_match = fhir.if_match()?;
    let ctx = fhir.caller.clone();
    let written = blocking(move || {
        let written = repository.patch(&ctx, &resource_type, &id, &document, if_match)?;
        note.written(&repository, &written);
        Ok(written)
    })
    .await?;
    Ok(written_response(&fhir, &written))
}

async fn delete(
    repository: Repo,
    fhir: FhirRequest,
    resource_type: String,
    id: String,
) -> Result<Response, ApiError> {
    let note = fhir.audit.clone();
    note.begin_instance(Interaction::Delete, &resource_type, &id);
    let if_match = fhir.if_match()?;
    let ctx = fhir.caller.clone();
    let written = blocking(move || {
        // A deletion leaves no content to say whose it was: the version it ends says.
        note.before_delete(&repository, &ctx, &resource_type, &id);
        let written = repository.delete(&ctx, &resource_type, &id, if_match)?;
        note.written(&repository, &written);
        Ok(written)
    })
    .await?;
    Ok(deleted_response(written.record.as_ref()))
}

async fn conditional_delete(
    repository: Repo,
    fhir: FhirRequest,
    resource_type: String,
) -> Result<Response, ApiError> {
    let note = fhir.audit.clone();
    note.begin(Interaction::Delete, Some(&resource_type));
    let criteria = fhir.criteria();
    note.query(format!(
        "{resource_type}?{}",
        repository::encode_query(&criteria)
    ));
    let ctx = fhir.caller.clone();
    let written = blocking(move || {
        let written = repository.conditional_delete(&ctx, &resource_type, &criteria)?;
        note.written(&repository, &written);
        Ok(written)
    })
    .await?;
    Ok(deleted_response(written.record.as_ref()))
}

async fn history(
    repository: Repo,
    fhir: FhirRequest,
    scope: HistoryScope,
) -> Result<Response, ApiError> {
    let ctx = fhir.caller.clone();
    let base = fhir.base.clone();
    let note = fhir.audit.clone();
    let path = match &scope {
        HistoryScope::Instance(resource_type, id) => {
            note.begin_instance(Interaction::HistoryInstance, resource_type, id);
            format!("{resource_type}/{id}/_history")
        }
        HistoryScope::Type(resource_type) => {
            note.begin(Interaction::HistoryType, Some(resource_type));
            format!("{resource_type}/_history")
        }
        HistoryScope::System => {
            note.begin(Interaction::HistorySystem, None);
            "_history".to_owned()
        }
    };
    let request = HistoryRequest {
        scope,
        params: fhir.criteria(),
    };
    note.query(format!(
        "{path}?{}",
        repository::encode_query(&request.params)
    ));
    let bundle = blocking(move || {
        let bundle = repository.history(&ctx, &base, &request)?;
        note.bundle(&repository, &bundle);
        Ok(bundle)
    })
    .await?;
    Ok(json_response(StatusCode::OK, bundle, fhir.pretty))
}

async fn search(
    repository: Repo,
    fhir: FhirRequest,
    scope: SearchScope,
    form: Option<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let ctx = fhir.caller.clone();
    let base = fhir.base.clone();
    let mut params = fhir.criteria();
    params.extend(form.unwrap_or_default());
    let handling = if fhir.strict_handling() {
        Handling::Strict
    } else {
        Handling::Lenient
    };
    let note = fhir.audit.clone();
    let path = match &scope {
        SearchScope::Type(resource_type) => {
            note.begin(Interaction::SearchType, Some(resource_type));
            note.patients(crate::audit::patients_named(Some(resource_type), &params));
            resource_type.clone()
        }
        SearchScope::System => {
            note.begin(Interaction::SearchSystem, None);
            note.patients(crate::audit::patients_named(None, &params));
            String::new()
        }
        SearchScope::Compartment {
            compartment,
            id,
            resource_type,
        } => {
            note.begin(Interaction::SearchType, Some(resource_type));
            if compartment == "Patient" {
                note.patients(crate::audit::patient_reference(id));
            }
            note.patients(crate::audit::patients_named(Some(resource_type), &params));
            format!("{compartment}/{id}/{resource_type}")
        }
    };
    note.query(format!("{path}?{}", repository::encode_query(&params)));
    let request = SearchRequest {
        scope,
        params,
        handling,
    };
    let bundle = blocking(move || {
        let bundle = repository.search(&ctx, &base, &request)?;
        note.bundle(&repository, &bundle);
        Ok(bundle)
    })
    .await?;
    Ok(json_response(StatusCode::OK, bundle, fhir.pretty))
}

fn check_body_type(resource: &serde_json::Value, resource_type: &str) -> Result<(), ApiError> {
    match resource.get("resourceType").and_then(|t| t.as_str()) {
        Some(t) if t == resource_type => Ok(()),
        Some(t) => Err(ApiError::BadRequest(
            Issue::error(
                IssueCode::Invalid,
                format!("the body is a {t}, but the URL is for {resource_type}"),
            )
            .at("resourceType"),
        )),
        None => Err(ApiError::BadRequest(Issue::error(
            IssueCode::Required,
            "the resource has no resourceType",
        ))),
    }
}

pub(crate) fn written_response(fhir: &FhirRequest, written: &Written) -> Response {
    let Some(record) = &written.record else {
        return deleted_response(None);
    };
    let (status, location) = match written.status {
        WriteStatus::Created => (StatusCode::CREATED, true),
        WriteStatus::Updated | WriteStatus::Unchanged | WriteStatus::Existing => {
            (StatusCode::OK, false)
        }
        WriteStatus::Deleted | WriteStatus::NothingToDelete => {
            return deleted_response(Some(record));
        }
    };
    version_response(fhir, status, record, location, fhir.prefer_return())
}
