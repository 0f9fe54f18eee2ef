//! Wiring the identity services for `meridian serve`: the master patient index as a write hook
//! on the repository, with the matching model it learned (kept in the store) and the schedule
//! that re-estimates it on a thread of its own, and the health-code key ring, kept in a file in
//! the data directory (created on first start, its signing key replaced when older than the
//! configured period).

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::{Context, Result};
use repository::Repository;
use residents::health_code::{HealthCodeConfig, HealthCodes, KeyRing};
use residents::mpi::{IdentityConfig, Mpi};
use server::IdentityServices;

use crate::config::ServeConfig;

const KEY_FILE: &str = "health-code-keys.json";

pub fn open(config: &ServeConfig, repository: &Arc<Repository>) -> Result<IdentityServices> {
    let mpi = Mpi::new(IdentityConfig {
        population: config.identity_population,
        ..IdentityConfig::default()
    });
    repository.add_write_hook(mpi.hook());
    let ctx = crate::operator("start-up");
    if mpi
        .load_model(repository, &ctx)
        .context("reading the matching model kept in the store")?
    {
        tracing::info!("matching model: the one estimated from this store's Patients");
    }
    std::fs::create_dir_all(&config.store.data)
        .with_context(|| format!("creating {}", config.store.data.display()))?;
    let ring = key_ring(
        &config.store.data.join(KEY_FILE),
        config.health_code_key_rotation_days as i64 * 86_400,
    )?;
    let codes = HealthCodes::new(
        ring,
        HealthCodeConfig {
            validity: config.health_code_validity as i64,
            ..HealthCodeConfig::default()
        },
    );
    Ok(IdentityServices {
        mpi,
        codes: Arc::new(codes),
    })
}

/// Re-estimates the matching model on a thread of its own whenever enough Patients were written
/// since the last estimation, checking every `interval`; stops when the answered `Sender` is
/// dropped (an estimation under way finishes first: each of its writes is a transaction of its
/// own, so stopping the process in the middle leaves nothing half-done either).
pub fn schedule_learning(
    mpi: Arc<Mpi>,
    repository: Arc<Repository>,
    interval: Duration,
    growth_percent: u64,
) -> Result<Sender<()>> {
    let ctx = crate::operator("identity-model-schedule");
    crate::schedule::every(
        "identity-model",
        interval,
        crate::schedule::First::AfterInterval,
        move || learn_when_due(&mpi, &repository, &ctx, growth_percent),
    )
}

fn learn_when_due(mpi: &Mpi, repository: &Repository, ctx: &caller::Caller, growth_percent: u64) {
    let due = match mpi.learning_due(repository, ctx, growth_percent as f64 / 100.0) {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(%error, "checking whether the matching model is due");
            return;
        }
    };
    if !due {
        return;
    }
    match mpi.learn(repository, ctx) {
        Ok(outcome) => tracing::info!(
            records = outcome.records,
            adopted = outcome.adopted,
            refused = outcome.refused.as_deref().unwrap_or(""),
            persons_merged = outcome.persons_merged,
            reviews_queued = outcome.reviews_queued,
            reviews_closed = outcome.reviews_closed,
            "matching model re-estimated on schedule"
        ),
        // Someone asked for one through the API meanwhile.
        Err(residents::IdentityError::Conflict(_)) => {}
        Err(error) => tracing::warn!(%error, "re-estimating the matching model"),
    }
}

/// Loads the key ring, rotating when due, and writes it back when it changed.
fn key_ring(path: &Path, max_age: i64) -> Result<KeyRing> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (mut ring, mut changed) = if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the health-code keys {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("the health-code keys {} are not JSON", path.display()))?;
        (KeyRing::from_json(&value)?, false)
    } else {
        (KeyRing::generate(now)?, true)
    };
    if ring.rotate_if_older(now, max_age)? {
        tracing::info!("health-code signing key rotated");
        changed = true;
    }
    if changed {
        write_secret(path, &serde_json::to_vec_pretty(&ring.to_json())?)
            .with_context(|| format!("writing the health-code keys {}", path.display()))?;
    }
    Ok(ring)
}

/// Writes a file only its owner can read, replacing it atomically.
fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("json.new");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_ring_is_created_kept_and_rotated_when_due() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let first = key_ring(&path, 86_400).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "only the owner reads the secrets");
        }
        let again = key_ring(&path, 86_400).unwrap();
        assert_eq!(first.jwks(), again.jwks(), "kept across restarts");
        let rotated = key_ring(&path, -1).unwrap();
        assert_eq!(
            rotated.jwks()["keys"].as_array().unwrap().len(),
            2,
            "old key kept to verify"
        );
        std::fs::write(&path, "not json").unwrap();
        assert!(
            key_ring(&path, 86_400).is_err(),
            "a damaged key file stops start-up"
        );
    }
}
