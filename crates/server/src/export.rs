//! Bulk Data `$export` over HTTP: the asynchronous kick-off (202 and `Content-Location`), status
//! polling with `X-Progress`, the completion manifest, cancellation by DELETE, and the NDJSON
//! files served back. The export itself is the repository's; this module runs it as a job.
//!
//! Jobs live in memory and their files under the export directory; a restart forgets both (the
//! directory is emptied at start-up), so a client whose job vanished starts a new one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use fhir_model::{Issue, IssueCode};
use repository::{ExportError, ExportFile, ExportLevel, ExportRequest, Repository, clock};
use serde_json::json;
use store::RequestContext;

use crate::ApiError;
use crate::request::FhirRequest;
use crate::response::{json_response, outcome_response};

enum JobState {
    Running,
    Complete(Vec<ExportFile>),
    Failed(Vec<Issue>),
}

struct Job {
    dir: PathBuf,
    request_url: String,
    transaction_time: String,
    state: Mutex<JobState>,
    written: AtomicU64,
    cancel: AtomicBool,
}

/// The export jobs of this process.
pub struct Jobs {
    root: PathBuf,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl Jobs {
    /// Jobs writing under `root`, which is emptied: files of a previous process are orphans.
    pub fn new(root: PathBuf) -> Jobs {
        if root.exists()
            && let Err(error) = std::fs::remove_dir_all(&root)
        {
            tracing::warn!(%error, root = %root.display(), "could not empty the export directory");
        }
        Jobs {
            root,
            jobs: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}

/// `GET [base]/$export`, `[base]/Patient/$export`, `[base]/Group/[id]/$export`.
pub async fn kick_off(
    jobs: Arc<Jobs>,
    repository: Arc<Repository>,
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
    let request = ExportRequest::parse(&repository, level, &fhir.criteria())?;
    if let ExportLevel::Group(id) = &request.level {
        // A missing Group is the client's error at kick-off, not a failed job later.
        let ctx = RequestContext::system(fhir.request_id.clone());
        let (repository, id) = (repository.clone(), id.clone());
        tokio::task::spawn_blocking(move || repository.read(&ctx, "Group", &id))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??;
    }
    let id = uuid::Uuid::new_v4().to_string();
    let job = Arc::new(Job {
        dir: jobs.root.join(&id),
        request_url: format!("{}{}", fhir.base.trim_end_matches("/fhir"), path),
        transaction_time: clock::format_instant(clock::now_micros()),
        state: Mutex::new(JobState::Running),
        written: AtomicU64::new(0),
        cancel: AtomicBool::new(false),
    });
    jobs.jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), job.clone());
    let ctx = RequestContext::system(fhir.request_id.clone());
    tokio::task::spawn_blocking(move || {
        let outcome = repository.export(&ctx, &request, &job.dir, &job.written, &job.cancel);
        let state = match outcome {
            Ok(files) => JobState::Complete(files),
            Err(ExportError::Cancelled) => return,
            Err(ExportError::Repository(error)) => JobState::Failed(error.issues(&ctx.request_id)),
            Err(ExportError::Io(error)) => {
                tracing::error!(%error, "export failed writing its files");
                JobState::Failed(vec![Issue::error(
                    IssueCode::Exception,
                    "the export could not write its files",
                )])
            }
        };
        *job.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    if let Ok(location) = HeaderValue::from_str(&format!("{}/$export-status/{id}", fhir.base)) {
        response
            .headers_mut()
            .insert(header::CONTENT_LOCATION, location);
    }
    Ok(response)
}

/// `GET [base]/$export-status/[id]`: 202 with `X-Progress` while running, 200 and the manifest
/// when complete, the failure's OperationOutcome when it failed.
pub fn status(jobs: &Jobs, fhir: &FhirRequest, id: &str) -> Result<Response, ApiError> {
    let job = jobs
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("no export job '{id}'")))?;
    let state = job.state.lock().unwrap_or_else(|p| p.into_inner());
    match &*state {
        JobState::Running => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::ACCEPTED;
            let progress = format!("{} resources written", job.written.load(Ordering::Relaxed));
            if let Ok(value) = HeaderValue::from_str(&progress) {
                response.headers_mut().insert("x-progress", value);
            }
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            Ok(response)
        }
        JobState::Complete(files) => {
            let output: Vec<_> = files
                .iter()
                .map(|file| {
                    json!({
                        "type": file.resource_type,
                        "url": format!("{}/$export-file/{id}/{}.ndjson", fhir.base, file.resource_type),
                        "count": file.count,
                    })
                })
                .collect();
            let manifest = json!({
                "transactionTime": job.transaction_time,
                "request": job.request_url,
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
        JobState::Failed(issues) => Ok(outcome_response(StatusCode::INTERNAL_SERVER_ERROR, issues)),
    }
}

/// `DELETE [base]/$export-status/[id]`: stops the job and removes its files.
pub fn cancel(jobs: &Jobs, id: &str) -> Result<Response, ApiError> {
    let job = jobs
        .jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(id)
        .ok_or_else(|| ApiError::NotFound(format!("no export job '{id}'")))?;
    job.cancel.store(true, Ordering::Relaxed);
    // A running export stops at its next resource; remove what it wrote (again later, if it was
    // still writing: the directory is emptied at start-up anyway).
    let dir = job.dir.clone();
    std::thread::spawn(move || {
        for _ in 0..50 {
            if !matches!(
                *job.state.lock().unwrap_or_else(|p| p.into_inner()),
                JobState::Running
            ) || !dir.exists()
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    Ok(response)
}

/// `GET [base]/$export-file/[id]/[Type].ndjson`: one output file, streamed.
pub async fn file(jobs: &Jobs, id: &str, name: &str) -> Result<Response, ApiError> {
    let job = jobs
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("no export job '{id}'")))?;
    let known = matches!(&*job.state.lock().unwrap_or_else(|p| p.into_inner()),
        JobState::Complete(files) if files.iter().any(|f| f.path.file_name().and_then(|n| n.to_str()) == Some(name)));
    if !known {
        return Err(ApiError::NotFound(format!(
            "export job '{id}' has no file '{name}'"
        )));
    }
    let file = tokio::fs::File::open(job.dir.join(name))
        .await
        .map_err(|e| ApiError::Internal(format!("opening an export file: {e}")))?;
    let mut response = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(file)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+ndjson"),
    );
    Ok(response)
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
