//! Bulk Data `$export` over HTTP: the asynchronous kick-off (202 and `Content-Location`), status
//! polling with `X-Progress`, the completion manifest, cancellation by DELETE, and the NDJSON
//! files served back. The export runs as a durable job (`repository::ExportJob` on the job
//! runner) and writes its files to blob storage, so a job and its files outlive a restart: the
//! status URL a client holds keeps working.

use fhir_model::clock;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use blob::{BlobKey, BlobStore};
use fhir_model::{Issue, IssueCode};
use repository::{EXPORT_JOB, ExportLevel, ExportRequest, ExportResult, Repository, export_prefix};
use serde_json::json;
use store::{JobRecord, JobState};

use crate::ApiError;
use crate::lanes::blocking;
use crate::request::FhirRequest;
use crate::response::{json_response, outcome_response};

/// What the export endpoints share: the repository, the blob storage its files are in, and the
/// job runner to wake after a kick-off.
pub struct Exports {
    pub(crate) repository: Arc<Repository>,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) runner: jobs::Runner,
}

/// How many times an export is tried before it is reported failed.
const MAX_ATTEMPTS: i64 = 3;

/// `GET [base]/$export`, `[base]/Patient/$export`, `[base]/Group/[id]/$export`.
pub async fn kick_off(
    exports: Arc<Exports>,
    fhir: &FhirRequest,
    level: ExportLevel,
    path: &str,
) -> Result<Response, ApiError> {
    let respond_async = fhir
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split([',', ';']).any(|p| p.trim() == "respond-async"));
    if !respond_async {
        return Err(ApiError::bad_request(
            IssueCode::Required,
            "$export runs asynchronously: send Prefer: respond-async",
        ));
    }
    let request = ExportRequest::parse(&exports.repository, level, &fhir.criteria())?;
    let request_url = format!("{}{}", fhir.base.trim_end_matches("/fhir"), path);
    let ctx = fhir.caller.clone();
    let store_exports = Arc::clone(&exports);
    let job = blocking(move || {
        if let ExportLevel::Group(id) = &request.level {
            // A missing Group is the client's error at kick-off, not a failed job later.
            store_exports.repository.read(&ctx, "Group", id)?;
        }
        // The job runs later, for this caller.
        let params = request.to_job_params(
            &request_url,
            &clock::format_instant(clock::now_micros()),
            &ctx,
        );
        let store = store_exports.repository.store();
        Ok(
            jobs::enqueue(store.jobs(), EXPORT_JOB, params, MAX_ATTEMPTS)
                .map_err(repository::RepositoryError::from)?,
        )
    })
    .await?;
    exports.runner.wake();
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    if let Ok(location) = HeaderValue::from_str(&format!("{}/$export-status/{}", fhir.base, job.id))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_LOCATION, location);
    }
    Ok(response)
}

/// The export job `id`, or a 404.
async fn export_job(exports: &Arc<Exports>, id: &str) -> Result<JobRecord, ApiError> {
    let (exports, wanted) = (Arc::clone(exports), id.to_owned());
    let job = blocking(move || {
        Ok(exports
            .repository
            .store()
            .jobs()
            .get(&wanted)
            .map_err(repository::RepositoryError::from)?)
    })
    .await?;
    match job {
        Some(job) if job.kind == EXPORT_JOB && job.state != JobState::Cancelled => Ok(job),
        _ => Err(ApiError::NotFound(format!("no export job '{id}'"))),
    }
}

/// `GET [base]/$export-status/[id]`: 202 with `X-Progress` while queued or running, 200 and
/// the manifest when complete, the failure's OperationOutcome when it failed.
pub async fn status(
    exports: &Arc<Exports>,
    fhir: &FhirRequest,
    id: &str,
) -> Result<Response, ApiError> {
    let job = export_job(exports, id).await?;
    match job.state {
        JobState::Queued | JobState::Running => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::ACCEPTED;
            let written = job
                .progress
                .as_deref()
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                .and_then(|p| p.get("written").and_then(serde_json::Value::as_u64))
                .unwrap_or(0);
            let progress = if job.state == JobState::Queued {
                "queued".to_owned()
            } else {
                format!("{written} resources written")
            };
            if let Ok(value) = HeaderValue::from_str(&progress) {
                response.headers_mut().insert("x-progress", value);
            }
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            Ok(response)
        }
        JobState::Succeeded => {
            let result = job
                .result
                .as_deref()
                .and_then(ExportResult::from_json)
                .ok_or_else(|| {
                    ApiError::Internal(format!("export job {id} has no readable result"))
                })?;
            let output: Vec<_> = result
                .files
                .iter()
                .map(|file| {
                    json!({
                        "type": file.resource_type,
                        "url": format!("{}/$export-file/{id}/{}", fhir.base, file.key.name()),
                        "count": file.count,
                    })
                })
                .collect();
            let manifest = json!({
                "transactionTime": result.transaction_time,
                "request": result.request_url,
                "requiresAccessToken": false,
                "output": output,
                "error": [],
            });
            Ok(json_response(
                StatusCode::OK,
                serde_json::to_vec(&manifest).expect("JSON serialises"),
                fhir.pretty,
            )
            .with_content_type("application/json"))
        }
        JobState::Failed | JobState::Cancelled => {
            let reason = job.error.unwrap_or_else(|| "the export failed".into());
            tracing::warn!(job = id, reason, "export failed");
            Ok(outcome_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &[Issue::error(IssueCode::Exception, reason)],
            ))
        }
    }
}

/// `DELETE [base]/$export-status/[id]`: stops the job (or forgets a finished one) and removes
/// its files; its status is 404 from then on.
pub async fn cancel(exports: &Arc<Exports>, id: &str) -> Result<Response, ApiError> {
    let job = export_job(exports, id).await?;
    let (exports, id) = (Arc::clone(exports), id.to_owned());
    blocking(move || {
        let store = exports.repository.store();
        let jobs = store.jobs();
        // A job that finished meanwhile is forgotten rather than cancelled.
        let still_running = !job.state.is_final()
            && jobs
                .cancel(&id, clock::now_micros())
                .map_err(repository::RepositoryError::from)?
                .is_some_and(|now| !now.state.is_final() || now.state == JobState::Cancelled);
        if !still_running {
            jobs.remove(&id)
                .map_err(repository::RepositoryError::from)?;
        }
        // A running export removes what it wrote when it sees the cancellation; what it had
        // finished goes now.
        if let Ok(prefix) = export_prefix(&id)
            && let Err(error) = exports.blobs.delete_prefix(&prefix)
        {
            tracing::warn!(%error, job = id, "removing a cancelled export's files");
        }
        Ok(())
    })
    .await?;
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    Ok(response)
}

/// `GET [base]/$export-file/[id]/[Type].ndjson`: one output file, streamed from blob storage.
pub async fn file(exports: &Arc<Exports>, id: &str, name: &str) -> Result<Response, ApiError> {
    let job = export_job(exports, id).await?;
    let missing = || ApiError::NotFound(format!("export job '{id}' has no file '{name}'"));
    let key: BlobKey = job
        .result
        .as_deref()
        .and_then(ExportResult::from_json)
        .and_then(|result| result.files.into_iter().find(|f| f.key.name() == name))
        .map(|f| f.key)
        .ok_or_else(missing)?;
    let blobs = Arc::clone(&exports.blobs);
    let reader = blocking(move || {
        blobs
            .open(&key)
            .map_err(|e| ApiError::Internal(format!("opening an export file: {e}")))
    })
    .await?
    .ok_or_else(missing)?;
    // The blob is read on a blocking thread and handed over in chunks.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        loop {
            let mut chunk = vec![0u8; 256 * 1024];
            match std::io::Read::read(&mut reader, &mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    chunk.truncate(n);
                    if sender.blocking_send(Ok(chunk)).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let _ = sender.blocking_send(Err(error));
                    return;
                }
            }
        }
    });
    let stream = tokio_stream_from(receiver);
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+ndjson"),
    );
    Ok(response)
}

/// A stream of the chunks a channel receives.
fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |context| receiver.poll_recv(context))
}

trait WithContentType {
    fn with_content_type(self, content_type: &'static str) -> Self;
}

impl WithContentType for Response {
    fn with_content_type(mut self, content_type: &'static str) -> Response {
        self.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        self
    }
}
