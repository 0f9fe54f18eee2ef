//! `meridian serve`: raises the open-file limit, opens the store, builds the repository and
//! serves HTTP under the connection limits until SIGINT or SIGTERM, then lets in-flight
//! requests finish.

use std::sync::Arc;

use anyhow::{Context, Result};
use server::{AppState, ConnectionLimits, ServerConfig};
use tracing_subscriber::EnvFilter;

use crate::config::{BlobSettings, LogFormat, ServeConfig};

pub fn run(config: ServeConfig) -> Result<()> {
    init_logging(&config)?;
    let connections = connection_limits(&config);
    let ctx = crate::operator("start-up");
    let repository = Arc::new(crate::stores::open_repository(&config.store, &ctx)?);
    let identity = crate::identity::open(&config, &repository)?;
    // Dropped when serving ends, which stops the schedule.
    let _learning = match config.identity_model_interval {
        0 => None,
        seconds => Some(crate::identity::schedule_learning(
            Arc::clone(&identity.mpi),
            Arc::clone(&repository),
            std::time::Duration::from_secs(seconds),
            config.identity_model_growth,
        )?),
    };
    let blobs = open_blobs(&config.blobs)?;
    // Dropped when serving ends, which stops the schedule.
    let mut pruning = None;
    let mut viewer_sign_in = None;
    let auth = if config.auth.enabled {
        let audience = config
            .public_base
            .clone()
            .unwrap_or_else(|| access::signin::DEFAULT_AUDIENCE.to_owned());
        let authenticator = crate::sign_in::for_server(
            repository.store(),
            &config.store.data,
            &audience,
            &config.auth,
        )?;
        pruning = Some(crate::sign_in::schedule_pruning(Arc::clone(
            &authenticator,
        ))?);
        viewer_sign_in = Some(Arc::clone(&authenticator));
        server::Auth::Required(authenticator)
    } else {
        tracing::warn!(
            "!!! SIGN-IN IS OFF (--auth off): every request acts as an all-powerful \
             administrator, with no token. For local experiments only; this is allowed on a \
             loopback address alone !!!"
        );
        server::Auth::Off
    };
    keep_recognition_measure(&repository)?;
    keep_indicator_catalogue(&repository)?;
    keep_subscription_topics(&repository)?;
    // Dropped when serving ends, which stops the schedule.
    let _deadlines = schedule_deadlines(Arc::clone(&repository))?;
    // Dropped when serving ends, which stops the schedule.
    let _indicators = match config.indicator_interval {
        0 => None,
        seconds => Some(schedule_indicators(
            Arc::clone(&repository),
            server::views::default_root(&config.store.data),
            std::time::Duration::from_secs(seconds),
        )?),
    };
    let server_config = ServerConfig {
        max_body_bytes: config.max_body_bytes,
        public_base: config.public_base.clone(),
        allowed_hosts: config.allowed_hosts.clone(),
        export_dir: config.store.data.join("exports"),
        views_dir: server::views::default_root(&config.store.data),
        connections,
        work: work_limits(&config),
        jobs: jobs::RunnerConfig {
            workers: config.job_workers,
            ..jobs::RunnerConfig::default()
        },
        auth,
        ledger_origin: config.ledger_origin.clone(),
        witnesses: config.witnesses.clone(),
        workflow: config.store.workflow.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(config.listen))
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    // The imaging viewer signs in at the URLs it is served from, which are known once the
    // server listens. Outside the runtime: the PostgreSQL driver must not block inside it.
    if let Some(authenticator) = &viewer_sign_in {
        let redirect_uris = server::viewer_redirect_uris(&server_config, address);
        let written = server::register_viewer(authenticator, &redirect_uris)
            .map_err(|e| anyhow::anyhow!("registering the imaging viewer: {}", e.description))?;
        if written {
            tracing::info!(
                client_id = server::VIEWER_CLIENT_ID,
                ?redirect_uris,
                "registered the imaging viewer's sign-in"
            );
        }
    }
    let state = AppState::build(repository, server_config, Some(identity), Some(blobs));
    // The last reference to the store must be dropped outside the runtime's async threads:
    // the PostgreSQL driver closes its connections by blocking on a runtime of its own, which
    // tokio refuses (a panic at shutdown) on a thread that is driving async tasks.
    let kept = state.clone();
    let served = runtime.block_on(async move {
        tracing::info!(%address, "Meridian is serving FHIR R4 at http://{address}/fhir");
        if config.public_base.is_none() && !address.ip().is_loopback() {
            tracing::warn!(
                allowed_hosts = ?config.allowed_hosts.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "no public_base is set: only requests naming a loopback host or one of \
                 allowed_hosts are answered, and links follow their Host header; set public_base \
                 to the URL clients use"
            );
        }
        // Notifications: events numbered from the change log, rest-hook deliveries, NATS.
        let _notifications = server::start_notifications(
            &state,
            server::NotifySettings {
                base: config
                    .public_base
                    .clone()
                    .unwrap_or_else(|| format!("http://{address}/fhir")),
                nats: config.nats.clone(),
            },
        )
        .context("starting notifications")?;
        // Chronic-disease registries and alerts, from the change log.
        let _chronic = server::start_chronic(&state).context("starting chronic-disease management")?;
        let _ledger = server::start_ledger_keeper(&state).context("starting the ledger keeper")?;
        // HL7 v2 over MLLP and kiosks' readings over MQTT, when configured.
        let store_key = xxhash_rust::xxh3::xxh3_64(
            config
                .store
                .database_url
                .clone()
                .unwrap_or_else(|| config.store.data.display().to_string())
                .as_bytes(),
        );
        let intake = server::start_intake(
            &state,
            server::IntakeSettings {
                mllp: config.mllp_listen,
                mqtt: config.mqtt.clone(),
                senders: config.store.intake_senders.clone(),
                // Stable for this server on this store (the broker keeps its sessions across
                // restarts), apart from another server's on the same store; the group is the
                // store's.
                mqtt_client_id: format!(
                    "meridian-{}-{store_key:016x}",
                    std::fs::read_to_string("/proc/sys/kernel/hostname")
                        .map(|h| h.trim().to_owned())
                        .unwrap_or_else(|_| "host".into())
                ),
                mqtt_group: format!("meridian-{store_key:016x}"),
            },
        )
        .await
        .context("starting the intake")?;
        // Checkpoints of the verifiable log, handed to the witnesses; stopped with the runtime.
        tokio::spawn(server::publish_checkpoints(
            state.clone(),
            std::time::Duration::from_secs(config.checkpoint_interval),
        ));
        server::serve(listener, state, shutdown_signal())
            .await
            .context("serving HTTP")?;
        drop(intake);
        tracing::info!("stopped");
        Ok(())
    });
    drop(runtime);
    drop(kept);
    drop(pruning);
    served
}

/// The subscription topics, kept as the R4 backport's `Basic` resources (readable by every
/// signed-in caller, as definitions are): written when absent or changed, as the operator.
fn keep_subscription_topics(repository: &repository::Repository) -> Result<()> {
    let operator = caller::Caller::operator("serve");
    for topic in notify::topic::topics() {
        repository
            .update(&operator, "Basic", topic.code, topic.to_basic(), None)
            .with_context(|| format!("keeping the subscription topic {}", topic.code))?;
    }
    Ok(())
}

/// Escalates overdue requests every half minute, as the platform's own deadline keeper (the
/// operator: no client's caller). Several servers on one store may all run it: an escalation
/// is a versioned update, so only one of them makes each.
fn schedule_deadlines(
    repository: Arc<repository::Repository>,
) -> Result<std::sync::mpsc::Sender<()>> {
    let keeper = caller::Caller::operator("workflow-deadlines");
    crate::schedule::every(
        "workflow-deadlines",
        std::time::Duration::from_secs(30),
        crate::schedule::First::AfterInterval,
        move || {
            let now = fhir_model::clock::now_micros();
            match workflow::deadline::escalate(&repository, &keeper, now) {
                Ok(escalated) if escalated.is_empty() => {}
                Ok(escalated) => tracing::info!(?escalated, "escalated overdue requests"),
                Err(error) => tracing::warn!(%error, "escalating overdue requests"),
            }
        },
    )
}

/// Every `interval` (the first time one interval after start), the indicators computed for
/// the month just ended and the month so far and kept as MeasureReports (`server::views::keep_month`).
fn schedule_indicators(
    repository: Arc<repository::Repository>,
    root: std::path::PathBuf,
    interval: std::time::Duration,
) -> Result<std::sync::mpsc::Sender<()>> {
    let keeper = caller::Caller::operator("indicators");
    crate::schedule::every(
        "indicators",
        interval,
        crate::schedule::First::AfterInterval,
        move || {
            let this_month = cds::metrics::month_of(fhir_model::clock::now_micros());
            for month in [previous_month(&this_month), this_month] {
                match server::views::keep_month(&repository, &keeper, &root, &month) {
                    Ok(written) if written.is_empty() => {}
                    Ok(written) => tracing::info!(%month, ?written, "indicator reports kept"),
                    Err(error) => {
                        tracing::warn!(%month, error = format!("{error:#}"), "computing the indicators")
                    }
                }
            }
        },
    )
}

/// The month before `month` (`YYYY-MM`).
fn previous_month(month: &str) -> String {
    let year: i32 = month.get(0..4).and_then(|y| y.parse().ok()).unwrap_or(1970);
    let number: u32 = month.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    if number == 1 {
        format!("{}-12", year - 1)
    } else {
        format!("{year}-{:02}", number - 1)
    }
}

/// File descriptors kept for everything but client connections: the store's files and
/// connections, export files, the runtime's own.
const RESERVED_FILES: u64 = 256;

/// The default connection limit where the open-file limit allows it.
const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;

/// Raising the soft open-file limit stops here even when the hard limit is higher (or
/// unlimited): Linux refuses more than `fs.nr_open`, 1,048,576 by default.
const OPEN_FILES_CEILING: u64 = 1 << 20;

/// The Measure the recognition metrics are evaluated on (`docs/cds.md`), written when the store
/// has none: the server's own configured work, as the operator.
fn keep_recognition_measure(repository: &repository::Repository) -> Result<()> {
    keep(repository, &cds::metrics::measure(), false)
}

/// The indicator catalogue in the store (`analytics::indicators`): each indicator's Measure
/// and the Library of its SQL, and the Library of every catalogue view the SQL reads. Written
/// at the first start, and again when the catalogue's version of one differs from the store's
/// (a catalogue resource's version is a hash of its content), so an upgraded platform serves
/// its own definitions.
fn keep_indicator_catalogue(repository: &repository::Repository) -> Result<()> {
    let views = analytics::indicators::view_libraries().context("the view catalogue")?;
    let indicators = analytics::indicators::indicators().context("the indicator catalogue")?;
    for resource in views
        .iter()
        .chain(indicators.iter().flat_map(|i| [&i.library, &i.measure]))
    {
        keep(repository, resource, true)?;
    }
    Ok(())
}

/// Writes `resource` (as the platform's operator) when the store has none with its id, or,
/// with `upgrade`, one of another `version`.
fn keep(
    repository: &repository::Repository,
    resource: &serde_json::Value,
    upgrade: bool,
) -> Result<()> {
    let operator = caller::Caller::operator("serve");
    let kind = resource["resourceType"].as_str().unwrap_or_default();
    let id = resource["id"].as_str().unwrap_or_default();
    match repository.read(&operator, kind, id) {
        Ok(stored) => {
            let stored: serde_json::Value = repository::parse_stored(&stored)?;
            if !upgrade || stored.get("version") == resource.get("version") {
                return Ok(());
            }
        }
        Err(
            repository::RepositoryError::NotFound(_) | repository::RepositoryError::Gone { .. },
        ) => {}
        Err(error) => return Err(error).with_context(|| format!("reading {kind}/{id}")),
    }
    repository
        .update(&operator, kind, id, resource.clone(), None)
        .with_context(|| format!("writing {kind}/{id}"))?;
    tracing::info!(resource = %format!("{kind}/{id}"), version = ?resource.get("version"), "catalogue resource written");
    Ok(())
}

/// The connection limits, with the connection count derived from the open-file limit (raised
/// first) unless configured.
fn connection_limits(config: &ServeConfig) -> ConnectionLimits {
    let settings = &config.connections;
    let open_files = raise_open_file_limit();
    let fitting = open_files.map(connections_fitting);
    let max_connections = match (settings.max_connections, fitting) {
        (Some(configured), Some(fitting)) if configured as u64 > fitting => {
            tracing::warn!(
                max_connections = configured,
                open_files,
                "max_connections is more than the open-file limit leaves room for: past about \
                 {fitting} connections, accepting may fail for want of file descriptors"
            );
            configured
        }
        (Some(configured), _) => configured,
        (None, fitting) => fitting.unwrap_or(DEFAULT_MAX_CONNECTIONS) as usize,
    };
    tracing::info!(
        max_connections,
        open_files,
        header_read_timeout = ?settings.header_read_timeout,
        body_read_timeout = ?settings.body_read_timeout,
        keep_alive_timeout = ?settings.keep_alive_timeout,
        send_timeout = ?settings.send_timeout,
        "connection limits"
    );
    ConnectionLimits {
        header_read_timeout: settings.header_read_timeout,
        body_read_timeout: settings.body_read_timeout,
        body_min_rate: settings.body_min_rate,
        keep_alive_timeout: settings.keep_alive_timeout,
        send_timeout: settings.send_timeout,
        max_requests_per_connection: settings.max_requests_per_connection,
        max_connections,
    }
}

/// The blob storage configured, checked to answer.
fn open_blobs(settings: &BlobSettings) -> Result<Arc<dyn blob::BlobStore>> {
    let blobs: Arc<dyn blob::BlobStore> = match settings {
        BlobSettings::Files(dir) => Arc::new(
            blob::FileBlobStore::open(dir)
                .with_context(|| format!("opening the blob directory {}", dir.display()))?,
        ),
        BlobSettings::S3(config) => Arc::new(
            blob_s3::S3BlobStore::open(config.clone()).context("opening the S3 blob storage")?,
        ),
    };
    // An unreachable bucket stops start-up with a clear message rather than failing jobs later.
    let probe = blob::BlobKey::new("meridian-start-up-check").expect("a valid key");
    blobs
        .size(&probe)
        .with_context(|| format!("reaching the blob storage {}", blobs.describe()))?;
    tracing::info!(blobs = blobs.describe(), "large files are kept here");
    Ok(blobs)
}

/// The store work admitted at once: as configured, else from the cores.
fn work_limits(config: &ServeConfig) -> server::WorkLimits {
    // On PostgreSQL a write mostly waits on the database: more run at once, within the pool.
    let cores = match config.store.database_url {
        Some(_) => {
            server::WorkLimits::for_a_database_server(store_postgres::DEFAULT_MAX_CONNECTIONS)
        }
        None => server::WorkLimits::for_this_machine(),
    };
    let work = server::WorkLimits {
        reads: config
            .connections
            .max_concurrent_reads
            .unwrap_or(cores.reads),
        writes: config
            .connections
            .max_concurrent_writes
            .unwrap_or(cores.writes),
    };
    tracing::info!(
        reads = work.reads,
        writes = work.writes,
        "store work admitted at once"
    );
    let pool = store_postgres::DEFAULT_MAX_CONNECTIONS;
    if config.store.database_url.is_some()
        && work.reads + work.writes + server::RESERVED_CONNECTIONS > pool
    {
        tracing::warn!(
            reads = work.reads,
            writes = work.writes,
            pool,
            "more store work admitted at once than the database pool serves beside the \
             platform's own work: requests may wait for a connection and fail"
        );
    }
    work
}

/// How many client connections fit under an open-file limit: all but a reserve for the rest
/// of the process, and no more than the default.
fn connections_fitting(open_files: u64) -> u64 {
    let reserve = RESERVED_FILES.min(open_files / 2);
    (open_files - reserve).clamp(1, DEFAULT_MAX_CONNECTIONS)
}

/// Raises the soft open-file limit to the hard one (up to a ceiling), so a busy server is not
/// stopped by a default of 1,024; answers the limit in force, `None` when unlimited or unknown.
#[cfg(unix)]
fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current?;
    let wanted = limit.maximum.unwrap_or(u64::MAX).min(OPEN_FILES_CEILING);
    if wanted <= current {
        return Some(current);
    }
    let raised = Rlimit {
        current: Some(wanted),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::info!(from = current, to = wanted, "raised the open-file limit");
            Some(wanted)
        }
        Err(error) => {
            tracing::warn!(%error, limit = current, "could not raise the open-file limit");
            Some(current)
        }
    }
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> Option<u64> {
    None
}

fn init_logging(config: &ServeConfig) -> Result<()> {
    let filter =
        EnvFilter::try_new(&config.log).with_context(|| format!("log filter '{}'", config.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_leaves_room_for_the_rest_of_the_process() {
        assert_eq!(connections_fitting(1024), 768);
        assert_eq!(connections_fitting(4096), 3840);
        assert_eq!(connections_fitting(20_000), 10_000);
        assert_eq!(connections_fitting(1 << 20), 10_000);
        assert_eq!(connections_fitting(300), 150);
        assert_eq!(connections_fitting(1), 1);
    }
}
