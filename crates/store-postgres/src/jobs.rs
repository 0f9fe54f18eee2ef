//! The job queue on PostgreSQL: each operation one statement; a claim takes the oldest due job
//! with `FOR UPDATE SKIP LOCKED`, so workers on any number of servers never take one job twice
//! and never wait for each other.

use postgres::Row;
use store::{Heartbeat, JobOutcome, JobQueue, JobRecord, JobState, NewJob, StoreError};

use crate::{PostgresStore, map_error};

const COLUMNS: &str = "id, kind, state, params, progress, result, error, attempts, max_attempts, \
    run_after, lease_owner, lease_until, cancel_requested, created, updated";

fn record(row: &Row) -> JobRecord {
    let state: i16 = row.get(2);
    let attempts: i32 = row.get(7);
    let max_attempts: i32 = row.get(8);
    JobRecord {
        id: row.get(0),
        kind: row.get(1),
        state: JobState::from_code(i64::from(state)).unwrap_or(JobState::Failed),
        params: row.get(3),
        progress: row.get(4),
        result: row.get(5),
        error: row.get(6),
        attempts: i64::from(attempts),
        max_attempts: i64::from(max_attempts),
        run_after: row.get(9),
        lease_owner: row.get(10),
        lease_until: row.get(11),
        cancel_requested: row.get(12),
        created: row.get(13),
        updated: row.get(14),
    }
}

fn code(state: JobState) -> i16 {
    state.code() as i16
}

impl JobQueue for PostgresStore {
    fn enqueue(&self, job: &NewJob) -> Result<JobRecord, StoreError> {
        let max_attempts = i32::try_from(job.max_attempts).unwrap_or(i32::MAX);
        self.read_with(|connection| {
            let row = connection
                .client
                .query_one(
                    &format!(
                        "INSERT INTO job (id, kind, state, params, attempts, max_attempts, run_after, \
                         cancel_requested, created, updated) VALUES ($1, $2, $3, $4, 0, $5, $6, false, $7, $7) \
                         RETURNING {COLUMNS}"
                    ),
                    &[
                        &job.id,
                        &job.kind,
                        &code(JobState::Queued),
                        &job.params,
                        &max_attempts,
                        &job.run_after,
                        &job.created,
                    ],
                )
                .map_err(map_error)?;
            Ok(record(&row))
        })
    }

    fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.read_with(|connection| {
            let row = connection
                .client
                .query_opt(&format!("SELECT {COLUMNS} FROM job WHERE id = $1"), &[&id])
                .map_err(map_error)?;
            Ok(row.as_ref().map(record))
        })
    }

    fn claim(
        &self,
        kinds: &[&str],
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<JobRecord>, StoreError> {
        let kinds: Vec<&str> = kinds.to_vec();
        self.read_with(|connection| {
            let row = connection
                .client
                .query_opt(
                    &format!(
                        "UPDATE job SET state = $2, lease_owner = $3, lease_until = $4, \
                         attempts = attempts + 1, updated = $5 \
                         WHERE id = (SELECT id FROM job WHERE ((state = $1 AND run_after <= $5) \
                         OR (state = $2 AND lease_until < $5)) AND kind = ANY($6) \
                         ORDER BY run_after, created LIMIT 1 FOR UPDATE SKIP LOCKED) \
                         RETURNING {COLUMNS}"
                    ),
                    &[
                        &code(JobState::Queued),
                        &code(JobState::Running),
                        &owner,
                        &lease_until,
                        &now,
                        &kinds,
                    ],
                )
                .map_err(map_error)?;
            Ok(row.as_ref().map(record))
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
        self.read_with(|connection| {
            let renewed = connection
                .client
                .query_opt(
                    "UPDATE job SET lease_until = $3, progress = COALESCE($4, progress), updated = $5 \
                     WHERE id = $1 AND lease_owner = $2 AND state = $6 RETURNING cancel_requested",
                    &[&id, &owner, &lease_until, &progress, &now, &code(JobState::Running)],
                )
                .map_err(map_error)?;
            if let Some(row) = renewed {
                return Ok(Heartbeat {
                    held: true,
                    cancel_requested: row.get(0),
                });
            }
            let cancel_requested = connection
                .client
                .query_opt("SELECT cancel_requested FROM job WHERE id = $1", &[&id])
                .map_err(map_error)?
                .is_some_and(|row| row.get(0));
            Ok(Heartbeat {
                held: false,
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
        self.read_with(|connection| {
            let updated = connection
                .client
                .execute(
                    "UPDATE job SET state = $3, result = COALESCE($4, result), error = $5, \
                     run_after = COALESCE($6, run_after), lease_owner = NULL, lease_until = NULL, \
                     updated = $7 WHERE id = $1 AND lease_owner = $2 AND state = $8",
                    &[
                        &id,
                        &owner,
                        &code(state),
                        &result,
                        &error,
                        &run_after,
                        &now,
                        &code(JobState::Running),
                    ],
                )
                .map_err(map_error)?;
            Ok(updated == 1)
        })
    }

    fn cancel(&self, id: &str, now: i64) -> Result<Option<JobRecord>, StoreError> {
        self.read_with(|connection| {
            connection
                .client
                .execute(
                    "UPDATE job SET cancel_requested = true, \
                     state = CASE WHEN state = $2 THEN $3 ELSE state END, updated = $4 \
                     WHERE id = $1 AND state IN ($2, $5)",
                    &[
                        &id,
                        &code(JobState::Queued),
                        &code(JobState::Cancelled),
                        &now,
                        &code(JobState::Running),
                    ],
                )
                .map_err(map_error)?;
            let row = connection
                .client
                .query_opt(&format!("SELECT {COLUMNS} FROM job WHERE id = $1"), &[&id])
                .map_err(map_error)?;
            Ok(row.as_ref().map(record))
        })
    }

    fn remove(&self, id: &str) -> Result<bool, StoreError> {
        self.read_with(|connection| {
            Ok(connection
                .client
                .execute("DELETE FROM job WHERE id = $1", &[&id])
                .map_err(map_error)?
                == 1)
        })
    }
}
