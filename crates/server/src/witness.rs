//! A witness (`meridian ledger witness`): the C2SP `tlog-witness` `add-checkpoint` endpoint over
//! `ledger::witness`. It keeps its Ed25519 key and, per log, the last checkpoint it cosigned in
//! its state directory; checking a request against that state and persisting the new one happen
//! under one lock, and the state is on disk before the cosignature is answered.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ledger::note::{ALG_COSIGNATURE, NoteSigner, VerifierKey};
use ledger::witness::{AddCheckpoint, Witnessed, cosign};
use serde_json::json;

/// A witness: its key, the logs it trusts, and where it keeps what it cosigned.
pub struct WitnessService {
    signer: NoteSigner,
    log_keys: Vec<VerifierKey>,
    state: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

impl WitnessService {
    /// The witness kept in `state`: its key is made there the first time, named `name`.
    pub fn open(
        state: &Path,
        name: &str,
        log_keys: Vec<VerifierKey>,
    ) -> Result<WitnessService, String> {
        std::fs::create_dir_all(state).map_err(|e| format!("{}: {e}", state.display()))?;
        let key_file = state.join("witness-key.json");
        let signer = if key_file.exists() {
            let text = std::fs::read_to_string(&key_file)
                .map_err(|e| format!("{}: {e}", key_file.display()))?;
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", key_file.display()))?;
            let stored_name = value["name"].as_str().unwrap_or_default();
            let seed: [u8; 32] = value["secret"]
                .as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| format!("{}: no secret key", key_file.display()))?;
            NoteSigner::from_seed(stored_name, ALG_COSIGNATURE, seed).map_err(|e| e.0)?
        } else {
            let signer = NoteSigner::generate(name, ALG_COSIGNATURE).map_err(|e| e.0)?;
            let text = json!({"name": name, "secret": STANDARD.encode(signer.seed())}).to_string();
            write_atomically(&key_file, &text)
                .map_err(|e| format!("{}: {e}", key_file.display()))?;
            signer
        };
        if log_keys.is_empty() {
            return Err("a witness needs the key of at least one log (--log-key)".into());
        }
        Ok(WitnessService {
            signer,
            log_keys,
            state: state.to_owned(),
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The key logs and verifiers check this witness's cosignatures with.
    pub fn verifier(&self) -> VerifierKey {
        self.signer.verifier()
    }

    fn state_file(&self, origin: &str) -> PathBuf {
        self.state.join(format!(
            "log-{}.json",
            &ledger::hash::sha256_hex(origin.as_bytes())[..16]
        ))
    }

    fn last(&self, origin: &str) -> Result<Option<Witnessed>, String> {
        let path = self.state_file(origin);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let size = value["size"].as_u64().ok_or("no size")?;
        let root = value["root"]
            .as_str()
            .and_then(ledger::hash::from_base64)
            .ok_or("no root")?;
        Ok(Some(Witnessed { size, root }))
    }

    /// Decides one `add-checkpoint` request: the status and the body to answer.
    async fn add(&self, body: &str) -> (StatusCode, &'static str, String) {
        let request = match AddCheckpoint::parse(body) {
            Ok(request) => request,
            Err(refusal) => {
                return (
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    refusal.message + "\n",
                );
            }
        };
        let origin = ledger::Checkpoint::of_note(&request.checkpoint).map(|c| c.origin);
        let _held = self.lock.lock().await;
        let last = match origin.as_deref().map(|o| self.last(o)).transpose() {
            Ok(last) => last.flatten(),
            Err(error) => {
                tracing::error!(%error, "the witness's state cannot be read");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "state unreadable\n".into(),
                );
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match cosign(&self.signer, &self.log_keys, last.as_ref(), &request, now) {
            Ok((state, line)) => {
                let origin = origin.unwrap_or_default();
                let text = json!({"origin": origin, "size": state.size,
                                  "root": ledger::hash::to_base64(&state.root)})
                .to_string();
                if let Err(error) = write_atomically(&self.state_file(&origin), &text) {
                    tracing::error!(%error, "the witness's state cannot be written");
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        "state unwritable\n".into(),
                    );
                }
                tracing::info!(origin, size = state.size, "cosigned");
                (StatusCode::OK, "text/plain; charset=utf-8", line)
            }
            Err(refusal) => {
                let status =
                    StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
                tracing::warn!(
                    status = refusal.status,
                    reason = refusal.message,
                    "refused a checkpoint"
                );
                match refusal.size {
                    Some(size) => (status, "text/x.tlog.size", format!("{size}\n")),
                    None => (status, "text/plain", refusal.message + "\n"),
                }
            }
        }
    }
}

async fn add_checkpoint(State(witness): State<Arc<WitnessService>>, body: String) -> Response {
    let (status, content_type, body) = witness.add(&body).await;
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Serves the witness on `listener` until `shutdown` completes.
pub async fn serve_witness(
    listener: tokio::net::TcpListener,
    witness: Arc<WitnessService>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(ledger::note::MAX_NOTE + 8 * 1024))
        .with_state(witness);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
