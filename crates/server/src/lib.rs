//! The HTTP server: FHIR R4 REST over the repository, plus health endpoints. This is the only
//! crate that knows HTTP. Handlers parse the request, hand the work to the repository on a
//! blocking thread (the store is synchronous), and turn the answer or the error into a response.

mod accept;
mod analytics;
mod audit;
mod auth;
mod capability;
mod cds;
mod chronic;
mod connection;
mod dicomweb;
mod ecg;
mod error;
mod export;
mod fhir;
mod host;
mod identity;
mod intake;
mod keeper;
mod lanes;
mod ledger;
mod operations;
mod pages;
mod request;
mod response;
mod subscriptions;
mod viewer;
pub mod views;
mod witness;
mod workflow;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use repository::Repository;
use tokio::net::TcpListener;

pub use auth::{Auth, PeerAddress, auth_off_caller};
pub use chronic::start as start_chronic;
pub use error::ApiError;
pub use host::AllowedHost;
pub use identity::IdentityServices;
pub use intake::{
    IntakeGuard, IntakeSettings, READINGS_TOPIC, audit_replayed, sender_caller,
    start as start_intake,
};
pub use keeper::KeeperGuard;
pub use lanes::{RESERVED_CONNECTIONS, WorkLimits};
pub use ledger::{WitnessConfig, publish_checkpoints, start_ledger_keeper};
pub use subscriptions::{NotifyGuard, NotifySettings, start as start_notifications};
pub use viewer::{VIEWER_CLIENT_ID, register_viewer, viewer_redirect_uris};
pub use witness::{WitnessService, serve_witness};

/// What the server needs to know beyond the repository.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The largest request body accepted (413 beyond it).
    pub max_body_bytes: usize,
    /// The public FHIR base URL (`https://hie.example.org/fhir`). When unset, links are built
    /// from the request's `Host` header, which must then be a loopback name or in
    /// `allowed_hosts` (421 otherwise).
    pub public_base: Option<String>,
    /// Hosts answered, besides loopback ones, when no public base is set.
    pub allowed_hosts: Vec<AllowedHost>,
    /// Where `$export` jobs write their files when no blob store is given.
    pub export_dir: std::path::PathBuf,
    /// Where the materialised views are kept (`views::default_root`), which indicators are
    /// computed from.
    pub views_dir: std::path::PathBuf,
    /// How the job runner (exports) works.
    pub jobs: jobs::RunnerConfig,
    /// How long clients may take and how many connections are served at once.
    pub connections: ConnectionLimits,
    /// How many reads and writes of the store run at once.
    pub work: WorkLimits,
    /// How requests are authenticated. `Auth::Off` by default, for the router tests that are
    /// not about sign-in; `meridian serve` always sets it (off only with `--auth off` on a
    /// loopback address).
    pub auth: Auth,
    /// The verifiable log's origin line (the name its checkpoints and key carry), used when the
    /// store has no log key yet.
    pub ledger_origin: String,
    /// The witnesses checkpoints are handed to.
    pub witnesses: Vec<WitnessConfig>,
    /// Deadlines and the release of reserved capacity (what `$find` offers when).
    pub workflow: ::workflow::WorkflowConfig,
}

/// What keeps slow, idle or too many clients from holding the server's connections (and file
/// descriptors): every connection ends within a bounded time unless it is being answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request head (request line and headers) not complete this long after the connection
    /// opened, or after its first byte on a kept-alive connection, ends the connection (with
    /// 408 when part of it arrived).
    pub header_read_timeout: Duration,
    /// A request body that brings no bytes for this long gets 408.
    pub body_read_timeout: Duration,
    /// A request body must also average this many bytes a second after its first
    /// `body_read_timeout` (a trickle gets 408); 0 checks only for stalls.
    pub body_min_rate: u64,
    /// A kept-alive connection with no new request for this long is closed.
    pub keep_alive_timeout: Duration,
    /// A client that takes none of its answer's bytes for this long (it stopped reading) has
    /// its connection closed.
    pub send_timeout: Duration,
    /// The answer to this many requests on one connection closes it.
    pub max_requests_per_connection: u64,
    /// Connections served at once; a connection over it gets 503 with `Retry-After` and is
    /// closed, so the process never runs out of file descriptors.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            body_min_rate: 1024,
            keep_alive_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            max_requests_per_connection: 1000,
            max_connections: 10_000,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_body_bytes: 16 * 1024 * 1024,
            public_base: None,
            allowed_hosts: Vec::new(),
            export_dir: std::env::temp_dir()
                .join(format!("meridian-exports-{}", std::process::id())),
            views_dir: std::env::temp_dir().join(format!("meridian-views-{}", std::process::id())),
            connections: ConnectionLimits::default(),
            work: WorkLimits::default(),
            jobs: jobs::RunnerConfig::default(),
            auth: Auth::Off,
            ledger_origin: "meridian.local/ledger".into(),
            witnesses: Vec::new(),
            workflow: ::workflow::WorkflowConfig::default(),
        }
    }
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    repository: Arc<Repository>,
    archive: Arc<imaging::archive::Archive>,
    /// Where every access to patient data is recorded before its answer leaves.
    audit: Arc<access::audit::AuditSink>,
    /// This server as the audit trail names it.
    observer: access::audit::Observer,
    config: ServerConfig,
    exports: Arc<export::Exports>,
    identity: Option<IdentityServices>,
    operations: operations::Registry,
    lanes: Arc<lanes::Lanes>,
    /// The verifiable log; `None` when it could not be opened (its routes answer 503).
    ledger: Option<Arc<::ledger::log::Log>>,
    witnesses: Option<Arc<ledger::Witnesses>>,
    /// Ticks whenever notification events are numbered (the deliverer and the websocket
    /// connections wait on it).
    event_ticks: tokio::sync::watch::Sender<u64>,
    /// Kiosks' uploads, written in batches by a thread of their own.
    readings: Arc<intake::ReadingsWriter>,
}

impl AppState {
    pub fn new(repository: Arc<Repository>, config: ServerConfig) -> AppState {
        AppState::build(repository, config, None, None)
    }

    /// The state with the identity services (master patient index and health codes) exposed.
    /// The caller registers the index's write hook on the repository.
    pub fn with_identity(
        repository: Arc<Repository>,
        config: ServerConfig,
        identity: IdentityServices,
    ) -> AppState {
        AppState::build(repository, config, Some(identity), None)
    }

    /// The state with the services given, and `blobs` for export files (a filesystem store
    /// under `config.export_dir` when `None`). Starts the job runner that runs exports and
    /// reindexing; it stops when the last clone of the state is dropped.
    pub fn build(
        repository: Arc<Repository>,
        config: ServerConfig,
        identity: Option<IdentityServices>,
        blobs: Option<Arc<dyn blob::BlobStore>>,
    ) -> AppState {
        // The server writes its trail as its own operator: no request's caller.
        let audit = Arc::new(access::audit::AuditSink::start(
            Arc::clone(&repository),
            caller::Caller::operator("audit-trail"),
            access::audit::SinkConfig::default(),
        ));
        AppState::build_with_audit(repository, config, identity, blobs, audit)
    }

    /// [`AppState::build`] with the audit trail written through `audit` (a sink over another
    /// store, or one configured otherwise) instead of a sink over `repository`.
    pub fn build_with_audit(
        repository: Arc<Repository>,
        config: ServerConfig,
        identity: Option<IdentityServices>,
        blobs: Option<Arc<dyn blob::BlobStore>>,
        audit: Arc<access::audit::AuditSink>,
    ) -> AppState {
        let blobs =
            blobs.unwrap_or_else(|| Arc::new(blob::FileBlobStore::new(config.export_dir.clone())));
        let runner = jobs::Runner::start(
            Arc::clone(repository.store()),
            vec![
                Arc::new(repository::ExportJob::new(
                    Arc::clone(&repository),
                    Arc::clone(&blobs),
                )),
                Arc::new(repository::ReindexJob::new(Arc::clone(&repository))),
            ],
            config.jobs.clone(),
        );
        let ledger = open_ledger(&repository, &config);
        let lanes = Arc::new(lanes::Lanes::new(config.work));
        let observer = access::audit::Observer {
            name: "Meridian".into(),
            base: config.public_base.clone(),
        };
        let readings = intake::ReadingsWriter::start(intake::WriterContext {
            trail: audit::Trail {
                repository: Arc::clone(&repository),
                sink: Arc::clone(&audit),
                observer: observer.clone(),
            },
            identity: identity.clone(),
            written: Arc::clone(&lanes.written),
        });
        AppState {
            inner: Arc::new(Inner {
                ledger,
                witnesses: ledger::Witnesses::new(&config.witnesses).map(Arc::new),
                event_ticks: tokio::sync::watch::Sender::new(0),
                archive: Arc::new(imaging::archive::Archive::new(Arc::clone(&blobs))),
                exports: Arc::new(export::Exports {
                    repository: Arc::clone(&repository),
                    blobs,
                    runner,
                }),
                lanes,
                readings,
                operations: operations::Registry::build(identity.is_some()),
                observer,
                audit,
                repository,
                config,
                identity,
            }),
        }
    }

    /// Counts this server's writes (the notification consumer wakes on them).
    pub(crate) fn written(&self) -> Arc<lanes::Written> {
        Arc::clone(&self.inner.lanes.written)
    }

    /// The DICOM archive (instances in the same blob storage as export files).
    pub(crate) fn archive(&self) -> Arc<imaging::archive::Archive> {
        Arc::clone(&self.inner.archive)
    }

    pub(crate) fn readings(&self) -> Arc<intake::ReadingsWriter> {
        Arc::clone(&self.inner.readings)
    }

    pub(crate) fn event_ticks(&self) -> &tokio::sync::watch::Sender<u64> {
        &self.inner.event_ticks
    }

    pub(crate) fn identity(&self) -> Option<&IdentityServices> {
        self.inner.identity.as_ref()
    }

    pub(crate) fn operations(&self) -> &operations::Registry {
        &self.inner.operations
    }

    /// The operations this server answers, as their services declare them (what the
    /// CapabilityStatement lists, and the Bulk Data endpoints it does not).
    pub fn registered_operations(&self) -> Vec<fhir_model::operation::OperationDecl> {
        self.inner.operations.operations().copied().collect()
    }

    pub(crate) fn repository(&self) -> &Arc<Repository> {
        &self.inner.repository
    }

    /// The audit trail: every access to patient data is recorded here, and the answer waits
    /// until it is durable. The sign-in endpoints record their events here too.
    pub fn audit_sink(&self) -> &Arc<access::audit::AuditSink> {
        &self.inner.audit
    }

    /// This server as the audit trail names it (`AuditEvent.source`).
    pub fn observer(&self) -> &access::audit::Observer {
        &self.inner.observer
    }

    pub(crate) fn exports(&self) -> Arc<export::Exports> {
        Arc::clone(&self.inner.exports)
    }

    pub(crate) fn lanes(&self) -> Arc<lanes::Lanes> {
        Arc::clone(&self.inner.lanes)
    }

    pub(crate) fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The verifiable log.
    pub fn ledger(&self) -> Option<&Arc<::ledger::log::Log>> {
        self.inner.ledger.as_ref()
    }

    pub(crate) fn witnesses(&self) -> Option<&Arc<ledger::Witnesses>> {
        self.inner.witnesses.as_ref()
    }
}

/// The verifiable log of `repository`'s store, with the witnesses' keys recorded; `None` (its
/// routes answer 503) when it cannot be opened. On a thread of its own: the state may be built
/// inside an async runtime, where the PostgreSQL driver must not block.
fn open_ledger(
    repository: &Arc<Repository>,
    config: &ServerConfig,
) -> Option<Arc<::ledger::log::Log>> {
    let store = Arc::clone(repository.store());
    let opened = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let log = ::ledger::log::Log::open(
                    store,
                    &config.ledger_origin,
                    fhir_model::clock::now_micros() / 1_000_000,
                )?;
                for witness in &config.witnesses {
                    log.register_witness(&witness.key)?;
                }
                Ok::<_, ::ledger::log::LogError>(log)
            })
            .join()
    });
    match opened {
        Ok(Ok(log)) => Some(Arc::new(log)),
        Ok(Err(error)) => {
            tracing::error!(%error, "the ledger could not be opened");
            None
        }
        Err(_) => {
            tracing::error!("opening the ledger panicked");
            None
        }
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    viewer::routes(dicomweb::routes(intake::routes(cds::routes(
        ledger::routes(auth::routes(Router::new())),
    ))))
    .route("/health/live", get(live))
    .route("/health/ready", get(ready))
    .route("/health-code/keys", get(health_code_keys))
    .fallback(fhir::dispatch)
    .with_state(state)
}

/// Serves until `shutdown` completes, then lets in-flight requests finish, under the
/// configuration's connection limits (`accept`, `connection`).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    accept::serve(listener, state, shutdown).await
}

/// The process is up.
async fn live() -> Response {
    (StatusCode::OK, "live\n").into_response()
}

/// The process can serve: the database answers.
async fn ready(State(state): State<AppState>) -> Response {
    let repository = state.repository().clone();
    match tokio::task::spawn_blocking(move || repository.store().ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer\n",
            )
                .into_response()
        }
        Err(error) => {
            tracing::error!(%error, "readiness check panicked");
            (StatusCode::SERVICE_UNAVAILABLE, "readiness check failed\n").into_response()
        }
    }
}

/// The public keys health codes are signed with, as a JSON Web Key Set, for anyone to verify.
async fn health_code_keys(State(state): State<AppState>) -> Response {
    match state.identity() {
        Some(identity) => {
            let body = serde_json::to_vec(&identity.codes.jwks()).unwrap_or_default();
            let mut response = Response::new(axum::body::Body::from(body));
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/jwk-set+json"),
            );
            response
        }
        None => (
            StatusCode::NOT_FOUND,
            "the identity services are not enabled\n",
        )
            .into_response(),
    }
}
