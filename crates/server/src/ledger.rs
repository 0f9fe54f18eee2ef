//! The verifiable log over HTTP (`ledger::log`): the latest checkpoint as a signed note, the
//! verifier keys, a version's leaf, inclusion and consistency proofs, and the leaves. These
//! routes are public: the log reveals hashes and the names of versions, never their content.
//! The leaf of a version is answered only to a caller who may read that version, through the
//! one read path, and is on the audit trail as a read of it. Making a checkpoint on demand is
//! for administrators. Malformed or out-of-range requests are 400 with an OperationOutcome.

use std::sync::Arc;

use access::audit::Interaction;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use fhir_model::IssueCode;
use fhir_model::operation::{Audience, InvokeMethod, Level, OperationDecl, OperationKind};
use ledger::hash::to_base64;
use ledger::log::Log;
use repository::RepositoryError;
use serde_json::{Value, json};

use crate::audit::AuditNote;
use crate::{ApiError, AppState};

/// Making a checkpoint now, as the access decision knows it: administrators only.
const MAKE_CHECKPOINT: OperationDecl = OperationDecl {
    name: "$ledger-checkpoint",
    levels: &[Level::System],
    resource_types: &[],
    methods: &[InvokeMethod::Post],
    affects_state: true,
    definition: "",
    kind: OperationKind::Endpoint { path_segments: 0 },
    audience: Audience::Administrators,
};

pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/ledger/checkpoint", get(checkpoint).post(make_checkpoint))
        .route("/ledger/keys", get(keys))
        .route("/ledger/leaf", get(leaf))
        .route("/ledger/proof/inclusion", get(inclusion))
        .route("/ledger/proof/consistency", get(consistency))
        .route("/ledger/entries", get(entries))
}

fn the_log(state: &AppState) -> Result<Arc<Log>, ApiError> {
    state.ledger().cloned().ok_or_else(|| {
        ApiError::Service(Box::new(RepositoryError::Store(
            store::StoreError::Unavailable("the ledger could not be opened".into()),
        )))
    })
}

/// The request's query parameters, percent-decoded; a parameter given twice is refused.
fn params(request: &Request) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| ApiError::bad_request(IssueCode::Invalid, "a parameter is not UTF-8"))
        };
        let (name, value) = (decode(name)?, decode(value)?);
        if out.iter().any(|(n, _)| *n == name) {
            return Err(ApiError::bad_request(
                IssueCode::Invalid,
                format!("the parameter '{name}' is given twice"),
            ));
        }
        out.push((name, value));
    }
    Ok(out)
}

fn number(params: &[(String, String)], name: &str) -> Result<u64, ApiError> {
    let value = params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| {
            ApiError::bad_request(
                IssueCode::Required,
                format!("the parameter '{name}' is required"),
            )
        })?;
    value
        .parse::<u64>()
        .ok()
        .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            ApiError::bad_request(
                IssueCode::Value,
                format!("'{name}' must be a whole number, not '{value}'"),
            )
        })
}

fn json_response(value: &Value) -> Response {
    let mut response = Response::new(axum::body::Body::from(value.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A signed note, as C2SP serves checkpoints: plain text.
fn note_response(note: String) -> Response {
    let mut response = Response::new(axum::body::Body::from(note));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn hashes(path: &[ledger::Hash]) -> Vec<String> {
    path.iter().map(to_base64).collect()
}

/// Runs `work` on a blocking thread and answers its JSON, or its error as an OperationOutcome.
async fn answer(
    request_id: &str,
    work: impl FnOnce() -> Result<Response, ApiError> + Send + 'static,
) -> Response {
    match crate::lanes::blocking(work).await {
        Ok(response) => response,
        Err(error) => error.into_response(request_id),
    }
}

fn request_id(request: &Request) -> String {
    crate::request::request_id(request.headers())
}

async fn checkpoint(State(state): State<AppState>, request: Request) -> Response {
    let id = request_id(&request);
    answer(&id, move || {
        let log = the_log(&state)?;
        let note = match log.latest()? {
            Some(note) => note,
            None => log.publish()?.0,
        };
        Ok(note_response(note))
    })
    .await
}

/// A public route: its query's parameters and the log to `work`, its JSON answer (or error as
/// an OperationOutcome) back, on a blocking thread.
async fn public(
    state: AppState,
    request: Request,
    work: impl FnOnce(&Log, &[(String, String)]) -> Result<Value, ApiError> + Send + 'static,
) -> Response {
    let id = request_id(&request);
    let params = params(&request);
    answer(&id, move || {
        let params = params?;
        Ok(json_response(&work(&*the_log(&state)?, &params)?))
    })
    .await
}

async fn keys(State(state): State<AppState>, request: Request) -> Response {
    public(state, request, |log, _| {
        let witnesses = log.witnesses()?;
        Ok(json!({
            "origin": log.origin(),
            "log": log.verifiers().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "witnesses": witnesses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }))
    })
    .await
}

async fn inclusion(State(state): State<AppState>, request: Request) -> Response {
    public(state, request, |log, params| {
        let (index, size) = (number(params, "index")?, number(params, "tree_size")?);
        let path = log.inclusion(index, size)?;
        Ok(json!({"leaf_index": index, "tree_size": size, "audit_path": hashes(&path)}))
    })
    .await
}

async fn consistency(State(state): State<AppState>, request: Request) -> Response {
    public(state, request, |log, params| {
        let (first, second) = (number(params, "first")?, number(params, "second")?);
        let path = log.consistency(first, second)?;
        Ok(json!({"first": first, "second": second, "consistency_path": hashes(&path)}))
    })
    .await
}

fn leaf_json(leaf: &store::LedgerLeaf) -> Value {
    json!({
        "index": leaf.index,
        // ASCII JSON text: the exact bytes hashed.
        "leaf_input": String::from_utf8_lossy(&leaf.input),
    })
}

async fn entries(State(state): State<AppState>, request: Request) -> Response {
    public(state, request, |log, params| {
        let (start, end) = (number(params, "start")?, number(params, "end")?);
        let leaves = log.entries(start, end)?;
        Ok(json!({"entries": leaves.iter().map(leaf_json).collect::<Vec<_>>()}))
    })
    .await
}

/// `TYPE/ID/_history/VERSION`.
fn parse_resource(text: &str) -> Result<(String, String, i64), ApiError> {
    let bad = || {
        ApiError::bad_request(
            IssueCode::Value,
            format!("'resource' is TYPE/ID/_history/VERSION, not '{text}'"),
        )
    };
    match text.split('/').collect::<Vec<_>>().as_slice() {
        [resource_type, id, "_history", version] => {
            let version = version
                .parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(bad)?;
            Ok(((*resource_type).to_owned(), (*id).to_owned(), version))
        }
        _ => Err(bad()),
    }
}

/// The caller of a route that needs sign-in, from its bearer token. A refusal (401) is
/// answered once it is on the audit trail, as an attempt at `what` by nobody known.
fn signed_in<'a>(
    state: &'a AppState,
    request: &Request,
    id: &'a str,
    what: &'a str,
) -> impl Future<Output = Result<caller::Caller, Response>> + Send + 'a {
    // The request itself is not held across the wait (its body is not `Sync`).
    let address = request
        .extensions()
        .get::<crate::PeerAddress>()
        .map(|p| p.0);
    signed_in_with(state, request.headers().clone(), address, id, what)
}

async fn signed_in_with(
    state: &AppState,
    headers: axum::http::HeaderMap,
    address: Option<std::net::IpAddr>,
    id: &str,
    what: &str,
) -> Result<caller::Caller, Response> {
    match crate::auth::caller(state, &headers, address, id).await {
        Ok(caller) => Ok(caller),
        Err(error) => {
            let mut nobody = caller::Caller::anonymous(id);
            nobody.address = address;
            let note = AuditNote::default();
            note.begin(Interaction::Operation(what.into()), None);
            Err(crate::audit::settle_noted(state, &nobody, &note, error.into_response(id)).await)
        }
    }
}

/// The leaf of one version, for a caller who may read it.
async fn leaf(State(state): State<AppState>, request: Request) -> Response {
    let id = request_id(&request);
    let caller = match signed_in(&state, &request, &id, "$ledger-leaf").await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let note = AuditNote::default();
    let params = params(&request);
    let response = {
        let (state, caller, note) = (state.clone(), caller.clone(), note.clone());
        answer(&id, move || {
            let params = params?;
            let resource = params
                .iter()
                .find(|(n, _)| n == "resource")
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        IssueCode::Required,
                        "the parameter 'resource' is required",
                    )
                })?;
            let (resource_type, resource_id, version) = parse_resource(&resource)?;
            let repository = state.repository();
            repository.check_resource(&resource_type, &resource_id)?;
            note.begin_instance(Interaction::Vread, &resource_type, &resource_id);
            // The caller sees the leaf of what they may read (a deletion has nothing to hide).
            match repository.vread(&caller, &resource_type, &resource_id, &version.to_string()) {
                Ok(record) => note.version(repository, &record),
                Err(RepositoryError::Gone { .. }) => {}
                Err(error) => return Err(error.into()),
            }
            let log = the_log(&state)?;
            let leaf = match log.leaf_of(&resource_type, &resource_id, version)? {
                Some(leaf) => leaf,
                // Written a moment ago, its leaf may not be appended yet.
                None => {
                    catch_up(&state)?;
                    log.leaf_of(&resource_type, &resource_id, version)?
                        .ok_or_else(|| {
                            ApiError::NotFound(format!("{resource} is not in the ledger"))
                        })?
                }
            };
            Ok(json_response(&leaf_json(&leaf)))
        })
        .await
    };
    crate::audit::settle_noted(&state, &caller, &note, response).await
}

/// The operator caller of the platform's ledger keeper.
const KEEPER: &str = "ledger";

/// Starts the thread that appends committed versions to the log (`repository::ledgering`).
pub fn start_ledger_keeper(state: &AppState) -> std::io::Result<crate::KeeperGuard> {
    let pace = crate::keeper::Pace {
        batch: 2_000,
        // Nearly every batch has versions to log (each request's audit event): at most a few
        // appends a second while writes come in, each a batch of them.
        settle: std::time::Duration::from_millis(250),
    };
    crate::keeper::start(state, KEEPER, pace, |repository, keeper, cursor, batch| {
        Ok(repository.log_committed(keeper, cursor, batch)?.changes)
    })
}

/// Appends the leaves of every version committed before the call, for a leaf or a checkpoint
/// asked for now (the keeper's thread may not have come to them yet).
fn catch_up(state: &AppState) -> Result<(), ApiError> {
    Ok(state
        .repository()
        .catch_up_ledger(&caller::Caller::operator(KEEPER))?)
}

/// Publishes a checkpoint after catching up, so that every version committed before it is in
/// its tree, as when each write appended its own leaf: a checkpoint is what a witness holds
/// the log to. Answers the note and whether it is new.
fn publish_caught_up(state: &AppState, log: &Log) -> Result<(String, bool), ApiError> {
    catch_up(state)?;
    Ok(log.publish()?)
}

/// `POST /ledger/checkpoint`: a checkpoint of the tree as it is now, published and handed to
/// the witnesses.
async fn make_checkpoint(State(state): State<AppState>, request: Request) -> Response {
    let id = request_id(&request);
    let caller = match signed_in(&state, &request, &id, MAKE_CHECKPOINT.name).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let note = AuditNote::default();
    note.begin(Interaction::Operation(MAKE_CHECKPOINT.name.into()), None);
    let response = match access::policy::may_invoke(&caller, &MAKE_CHECKPOINT, None) {
        Err(denied) => ApiError::from(RepositoryError::Forbidden(denied.0)).into_response(&id),
        Ok(()) => {
            let state = state.clone();
            let log = match the_log(&state) {
                Ok(log) => log,
                Err(error) => return error.into_response(&id),
            };
            let published = {
                let log = Arc::clone(&log);
                let state = state.clone();
                crate::lanes::blocking(move || publish_caught_up(&state, &log)).await
            };
            match published {
                Ok((checkpoint, _)) => {
                    let checkpoint = match state.witnesses() {
                        Some(witnesses) => witnesses.submit(&log).await.unwrap_or(checkpoint),
                        None => checkpoint,
                    };
                    note_response(checkpoint)
                }
                Err(error) => error.into_response(&id),
            }
        }
    };
    crate::audit::settle_noted(&state, &caller, &note, response).await
}

/// A witness the log hands its checkpoints to (`serve --witness URL=KEY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessConfig {
    /// The witness's submission prefix: `add-checkpoint` is under it.
    pub url: String,
    pub key: ledger::VerifierKey,
}

/// The witnesses, with the size each last cosigned as far as this server knows.
pub(crate) struct Witnesses {
    client: reqwest::Client,
    /// Each witness and the size it last cosigned (`None` before it was first asked).
    witnesses: Vec<(WitnessConfig, tokio::sync::Mutex<Option<u64>>)>,
}

impl Witnesses {
    pub(crate) fn new(witnesses: &[WitnessConfig]) -> Option<Witnesses> {
        if witnesses.is_empty() {
            return None;
        }
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .ok()?;
        Some(Witnesses {
            client,
            witnesses: witnesses
                .iter()
                .map(|w| (w.clone(), tokio::sync::Mutex::new(None)))
                .collect(),
        })
    }

    /// Hands the published checkpoint to every witness, with a consistency proof from the size
    /// it last cosigned, and keeps the cosignatures that verify. Answers the checkpoint as
    /// published then.
    pub(crate) async fn submit(&self, log: &Arc<Log>) -> Option<String> {
        let latest = {
            let log = Arc::clone(log);
            crate::lanes::blocking(move || Ok(log.latest()?))
                .await
                .ok()??
        };
        let size = ledger::Checkpoint::of_note(&latest)?.size;
        for (witness, known) in &self.witnesses {
            let mut known = known.lock().await;
            if *known == Some(size) {
                continue;
            }
            // A witness that has seen a larger tree (another server's checkpoint) has nothing to
            // add for this one; one that answers with the size it holds is asked again from it.
            let mut old = known.unwrap_or(0);
            for _ in 0..2 {
                if old > size {
                    break;
                }
                let proof = {
                    let log = Arc::clone(log);
                    match crate::lanes::blocking(move || Ok(log.consistency(old, size)?)).await {
                        Ok(proof) => proof,
                        Err(_) => break,
                    }
                };
                let body = ledger::witness::AddCheckpoint {
                    old,
                    proof,
                    checkpoint: latest.clone(),
                }
                .body();
                let url = format!("{}/add-checkpoint", witness.url.trim_end_matches('/'));
                let answer = match self.client.post(&url).body(body).send().await {
                    Ok(answer) => answer,
                    Err(error) => {
                        tracing::warn!(witness = %witness.key.name, %error, "the witness does not answer");
                        break;
                    }
                };
                let status = answer.status().as_u16();
                let text = answer.text().await.unwrap_or_default();
                match status {
                    200 => {
                        let (log, key) = (Arc::clone(log), witness.key.clone());
                        let added =
                            crate::lanes::blocking(move || Ok(log.add_cosignatures(&key, &text)?))
                                .await;
                        if matches!(added, Ok(true)) {
                            *known = Some(size);
                        } else {
                            tracing::warn!(witness = %witness.key.name, "the witness's cosignature does not verify");
                        }
                        break;
                    }
                    409 => match text.trim().parse::<u64>() {
                        Ok(held) if held != old => old = held,
                        _ => {
                            tracing::error!(witness = %witness.key.name, "the witness refuses the checkpoint: it holds another tree of this size");
                            break;
                        }
                    },
                    _ => {
                        tracing::error!(witness = %witness.key.name, status, answer = %text.trim(), "the witness refuses the checkpoint");
                        break;
                    }
                }
            }
        }
        let log = Arc::clone(log);
        crate::lanes::blocking(move || Ok(log.latest()?))
            .await
            .ok()?
    }
}

/// Publishes a checkpoint every `interval` (when the tree grew) and hands it to the witnesses,
/// until the server stops, each covering every version committed before it. A crash between a
/// write and its checkpoint loses nothing: the next checkpoint covers it.
pub async fn publish_checkpoints(state: AppState, interval: std::time::Duration) {
    let Some(log) = state.ledger().cloned() else {
        return;
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let published = {
            let (log, state) = (Arc::clone(&log), state.clone());
            crate::lanes::blocking(move || publish_caught_up(&state, &log)).await
        };
        match published {
            Ok(_) => {
                // Every tick, not only for a new checkpoint: a witness that was down catches up.
                if let Some(witnesses) = state.witnesses() {
                    witnesses.submit(&log).await;
                }
            }
            Err(error) => tracing::warn!(?error, "publishing a ledger checkpoint failed"),
        }
    }
}
