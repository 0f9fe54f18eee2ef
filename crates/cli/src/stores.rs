//! Opening the configured store, for every command that touches data.

use std::sync::Arc;

use anyhow::{Context, Result};
use caller::Caller;
use repository::Repository;
use store::Store;
use store_postgres::{PostgresConfig, PostgresStore};
use store_sqlite::{SqliteConfig, SqliteStore};

use crate::config::StoreConfig;

/// Opens the store the configuration names, applying schema migrations.
pub fn open_store(config: &StoreConfig) -> Result<Arc<dyn Store>> {
    match &config.database_url {
        Some(url) => {
            let store = PostgresStore::open(PostgresConfig::new(url)).context(
                "opening the PostgreSQL store (is the server running and the URL right?)",
            )?;
            tracing::info!("PostgreSQL store open");
            Ok(Arc::new(store))
        }
        None => {
            std::fs::create_dir_all(&config.data).with_context(|| {
                format!("creating the data directory {}", config.data.display())
            })?;
            let store = SqliteStore::open(SqliteConfig {
                durability: config.sqlite_durability,
                ..SqliteConfig::in_dir(&config.data)
            })
            .with_context(|| format!("opening the embedded store in {}", config.data.display()))?;
            tracing::info!(
                data = %config.data.display(),
                durability = ?config.sqlite_durability,
                "embedded store open"
            );
            Ok(Arc::new(store))
        }
    }
}

/// The repository over the configured store, with the SearchParameters stored in it in force.
pub fn open_repository(config: &StoreConfig, ctx: &Caller) -> Result<Repository> {
    let repository = Repository::new(open_store(config)?);
    // Every command reads and writes under the access rules (the operator sees everything,
    // and what it loads gets its custodian by them).
    repository.set_access_policy(Arc::new(access::policy::Policy::new()));
    // Every command's writes keep the workflows' rules (the Task state machine, atomic
    // booking, follow-ups, each request's clock): an import as much as a PUT.
    repository.add_write_hook(Arc::new(workflow::WorkflowHook::new(
        config.workflow.clone(),
    )));
    // Subscriptions are checked and kept for the notifier, whoever writes them.
    repository.add_write_hook(Arc::new(notify::SubscriptionHook::new(
        config.endpoints.clone(),
    )));
    let loaded = repository
        .load_search_parameters(ctx)
        .context("loading the stored SearchParameter resources")?;
    if loaded > 0 {
        tracing::info!(loaded, "stored search parameters in force");
    }
    Ok(repository)
}
