//! The job queue on SQLite: every change goes through the writer connection, so claims are
//! serialised by the database's single writer and two workers never take one job.

use rusqlite::{Connection, OptionalExtension, Row, params};
use store::{Heartbeat, JobOutcome, JobQueue, JobRecord, JobState, NewJob, StoreError};

use crate::{SqliteStore, map_error};

const COLUMNS: &str = "id, kind, state, params, progress, result, error, attempts, max_attempts, \
    run_after, lease_owner, lease_until, cancel_requested, created, updated";

fn record(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    let state: i64 = row.get(2)?;
    Ok(JobRecord {
        id: row.get(0)?,
        kind: row.get(1)?,
        state: JobState::from_code(state).unwrap_or(JobState::Failed),
        params: row.get(3)?,
        progress: row.get(4)?,
        result: row.get(5)?,
        error: row.get(6)?,
        attempts: row.get(7)?,
        max_attempts: row.get(8)?,
        run_after: row.get(9)?,
        lease_owner: row.get(10)?,
        lease_until: row.get(11)?,
        cancel_requested: row.get(12)?,
        created: row.get(13)?,
        updated: row.get(14)?,
    })
}

fn get(connection: &Connection, id: &str) -> Result<Option<JobRecord>, StoreError> {
    connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM job WHERE id = ?1"))
        .map_err(map_error)?
        .query_row([id], record)
        .optional()
        .map_err(map_error)
}

/// Runs `work` in a transaction on the writer, as a store transaction runs (`group`): rolled
/// back if it fails, answered once its group is committed.
fn write<T>(
    store: &SqliteStore,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let member = store.writers.begin()?;
    let value = work(member.connection())?;
    member.commit()?;
    Ok(value)
}

impl JobQueue for SqliteStore {
    fn enqueue(&self, job: &NewJob) -> Result<JobRecord, StoreError> {
        write(self, |connection| {
            connection
                .execute(
                    "INSERT INTO job (id, kind, state, params, attempts, max_attempts, run_after, \
                     cancel_requested, created, updated) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, 0, ?7, ?7)",
                    params![
                        job.id,
                        job.kind,
                        JobState::Queued.code(),
                        job.params,
                        job.max_attempts,
                        job.run_after,
                        job.created
                    ],
                )
                .map_err(map_error)?;
            get(connection, &job.id)?
                .ok_or_else(|| StoreError::Internal("an enqueued job vanished".into()))
        })
    }

    fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let reader = self.reader()?;
        get(&reader, id)
    }

    fn claim(
        &self,
        kinds: &[&str],
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<JobRecord>, StoreError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        write(self, |connection| {
            let marks = (0..kinds.len())
                .map(|i| format!("?{}", i + 4))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT id FROM job WHERE ((state = ?1 AND run_after <= ?3) OR (state = ?2 AND lease_until < ?3)) \
                 AND kind IN ({marks}) ORDER BY run_after, created LIMIT 1"
            );
            let mut values: Vec<rusqlite::types::Value> = vec![
                JobState::Queued.code().into(),
                JobState::Running.code().into(),
                now.into(),
            ];
            values.extend(
                kinds
                    .iter()
                    .map(|k| rusqlite::types::Value::Text((*k).to_owned())),
            );
            let id: Option<String> = connection
                .prepare_cached(&sql)
                .map_err(map_error)?
                .query_row(rusqlite::params_from_iter(values), |row| row.get(0))
                .optional()
                .map_err(map_error)?;
            let Some(id) = id else { return Ok(None) };
            connection
                .execute(
                    "UPDATE job SET state = ?2, lease_owner = ?3, lease_until = ?4, \
                     attempts = attempts + 1, updated = ?5 WHERE id = ?1",
                    params![id, JobState::Running.code(), owner, lease_until, now],
                )
                .map_err(map_error)?;
            get(connection, &id)
        })
    }

    fn heartbeat(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        lease_until: i64,
        progress: Option<&str>,
    ) -> Result<Heartbeat, StoreError> {
        write(self, |connection| {
            let held = connection
                .execute(
                    "UPDATE job SET lease_until = ?3, progress = COALESCE(?4, progress), updated = ?5 \
                     WHERE id = ?1 AND lease_owner = ?2 AND state = ?6",
                    params![id, owner, lease_until, progress, now, JobState::Running.code()],
                )
                .map_err(map_error)?
                == 1;
            let cancel_requested = get(connection, id)?.is_some_and(|job| job.cancel_requested);
            Ok(Heartbeat {
                held,
                cancel_requested,
            })
        })
    }

    fn finish(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        outcome: &JobOutcome,
    ) -> Result<bool, StoreError> {
        let (state, result, error, run_after) = outcome.columns();
        write(self, |connection| {
            let updated = connection
                .execute(
                    "UPDATE job SET state = ?3, result = COALESCE(?4, result), error = ?5, \
                     run_after = COALESCE(?6, run_after), lease_owner = NULL, lease_until = NULL, \
                     updated = ?7 WHERE id = ?1 AND lease_owner = ?2 AND state = ?8",
                    params![
                        id,
                        owner,
                        state.code(),
                        result,
                        error,
                        run_after,
                        now,
                        JobState::Running.code()
                    ],
                )
                .map_err(map_error)?;
            Ok(updated == 1)
        })
    }

    fn cancel(&self, id: &str, now: i64) -> Result<Option<JobRecord>, StoreError> {
        write(self, |connection| {
            connection
                .execute(
                    "UPDATE job SET cancel_requested = 1, \
                     state = CASE WHEN state = ?2 THEN ?3 ELSE state END, updated = ?4 \
                     WHERE id = ?1 AND state IN (?2, ?5)",
                    params![
                        id,
                        JobState::Queued.code(),
                        JobState::Cancelled.code(),
                        now,
                        JobState::Running.code()
                    ],
                )
                .map_err(map_error)?;
            get(connection, id)
        })
    }

    fn remove(&self, id: &str) -> Result<bool, StoreError> {
        write(self, |connection| {
            Ok(connection
                .execute("DELETE FROM job WHERE id = ?1", [id])
                .map_err(map_error)?
                == 1)
        })
    }
}
