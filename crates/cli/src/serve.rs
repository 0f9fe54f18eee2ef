//! `meridian serve`: opens the store, builds the repository and serves HTTP until SIGINT or
//! SIGTERM, then lets in-flight requests finish.

use std::sync::Arc;

use anyhow::{Context, Result};
use server::{AppState, ServerConfig};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, ServeConfig};

pub fn run(config: ServeConfig) -> Result<()> {
    init_logging(&config)?;
    let ctx = store::RequestContext::system("start-up");
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
    let state = AppState::with_identity(
        repository,
        ServerConfig {
            max_body_bytes: config.max_body_bytes,
            public_base: config.public_base.clone(),
            export_dir: config.store.data.join("exports"),
        },
        identity,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // The last reference to the store must be dropped outside the runtime's async threads:
    // the PostgreSQL driver closes its connections by blocking on a runtime of its own, which
    // tokio refuses (a panic at shutdown) on a thread that is driving async tasks.
    let kept = state.clone();
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, "Meridian is serving FHIR R4 at http://{address}/fhir");
        server::serve(listener, state, shutdown_signal())
            .await
            .context("serving HTTP")?;
        tracing::info!("stopped");
        Ok(())
    });
    drop(runtime);
    drop(kept);
    served
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
