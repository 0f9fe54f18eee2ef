//! The planner's statistics, kept fresh by the store itself. PostgreSQL plans from the row
//! counts and value distributions `ANALYZE` last saw; autovacuum refreshes them, but it may be
//! off (it is on these machines) and lags behind write bursts. Statistics taken when the tables
//! were nearly empty make every plan a guess: on the Synthea sample written through the API
//! after an `ANALYZE` of the empty store, a read by id walked 43,000 Observations (the index on
//! type and row key instead of the unique one on type and id) and took 160 ms instead of 2,
//! and the load itself ran at 843 resources/s instead of 2,118.
//!
//! A thread of the store's own, on a connection of its own, looks every few seconds at
//! PostgreSQL's own counters (`pg_stat_user_tables`, which count every writer's rows, this
//! process's or another's) and applies autovacuum's rules, whether or not autovacuum runs: it
//! analyses each of the store's tables changed by more than `MIN_CHANGES` rows plus `SCALE` of
//! its rows at the last analysis (an analysis samples a bounded number of rows, 300 × the
//! statistics target, so it costs about the same at any size), and vacuums each with more dead
//! rows than `VACUUM_MIN_DEAD`, or more rows inserted since its last vacuum than
//! `VACUUM_MIN_INSERTED`, plus `VACUUM_SCALE` of its rows. A vacuum marks the pages it finds
//! all visible, which is what keeps an index-only scan from reading each row's heap page too:
//! on the Synthea sample written through the API, a count of 12,002 laboratory results read
//! 1,973 heap pages in 27.5 ms before the vacuum and none in 6.0 ms after; the probes of
//! `:not`, `_has` and drive pages are index-only scans of the same kind. It reads only the
//! pages not yet marked, and the indexes where it removes dead rows. A table another session
//! holds (an autovacuum worker) is left for the next look.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::NoTls;

/// Rows changed that make a table's statistics stale, besides `SCALE` of its rows.
pub(crate) const MIN_CHANGES: f64 = 500.0;
/// The share of a table's rows (at its last analysis) that, changed, makes its statistics stale.
pub(crate) const SCALE: f64 = 0.1;
/// Dead rows that call for a vacuum, besides `VACUUM_SCALE` of the table's rows.
pub(crate) const VACUUM_MIN_DEAD: f64 = 50.0;
/// Rows inserted since the last vacuum that call for one, besides `VACUUM_SCALE` of the rows.
pub(crate) const VACUUM_MIN_INSERTED: f64 = 1000.0;
/// The share of a table's rows that, dead or newly inserted, calls for a vacuum.
pub(crate) const VACUUM_SCALE: f64 = 0.2;

/// The thread that keeps the statistics fresh; stopped when dropped.
pub(crate) struct Keeper {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Keeper {
    /// Starts looking every `every`, connecting with `config` when it first needs to.
    pub(crate) fn start(config: postgres::Config, every: Duration) -> Keeper {
        let (stop, stopped) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("postgres-statistics".into())
            .spawn(move || keep(&config, every, &stopped))
            .ok();
        if thread.is_none() {
            tracing::warn!(
                "could not start the statistics keeper: statistics refresh only by autovacuum"
            );
        }
        Keeper {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread, which ends after any analysis under way.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn keep(config: &postgres::Config, every: Duration, stopped: &Receiver<()>) {
    let mut client: Option<postgres::Client> = None;
    loop {
        match stopped.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if client.as_ref().is_none_or(postgres::Client::is_closed) {
            client = match config.connect(NoTls) {
                Ok(client) => Some(client),
                Err(error) => {
                    tracing::debug!(%error, "statistics keeper: no connection this time");
                    continue;
                }
            };
        }
        let Some(connection) = client.as_mut() else {
            continue;
        };
        match refresh_stale(connection) {
            Ok(refreshed) if refreshed.is_empty() => {}
            Ok(refreshed) => tracing::debug!(?refreshed, "tables analysed or vacuumed"),
            Err(error) => tracing::warn!(%error, "refreshing the planner statistics"),
        }
    }
}

/// Analyses every table of the store's schema whose statistics are stale, and vacuums every
/// one due a vacuum (with an analysis, if it is due one too); answers their names.
pub(crate) fn refresh_stale(client: &mut postgres::Client) -> Result<Vec<String>, postgres::Error> {
    let rows = client.query(
        "SELECT t.name, t.vacuum, t.analyse FROM (\
           SELECT s.relname::text AS name, \
             s.n_mod_since_analyze > $1::float8 + $2::float8 * greatest(c.reltuples, 0) \
               AS analyse, \
             s.n_dead_tup > $3::float8 + $5::float8 * greatest(c.reltuples, 0) \
               OR s.n_ins_since_vacuum > $4::float8 + $5::float8 * greatest(c.reltuples, 0) \
               AS vacuum, \
             s.n_mod_since_analyze + s.n_dead_tup AS changed \
           FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
           WHERE s.schemaname = current_schema()) t \
         WHERE t.vacuum OR t.analyse ORDER BY t.changed DESC",
        &[
            &MIN_CHANGES,
            &SCALE,
            &VACUUM_MIN_DEAD,
            &VACUUM_MIN_INSERTED,
            &VACUUM_SCALE,
        ],
    )?;
    let mut refreshed = Vec::with_capacity(rows.len());
    for row in rows {
        let table: String = row.get(0);
        let command = match (row.get::<_, bool>(1), row.get::<_, bool>(2)) {
            (true, true) => "VACUUM (ANALYZE, SKIP_LOCKED)",
            (true, false) => "VACUUM (SKIP_LOCKED)",
            _ => "ANALYZE (SKIP_LOCKED)",
        };
        // A name from the catalogue, quoted as an identifier.
        client.batch_execute(&format!("{command} \"{}\"", table.replace('"', "\"\"")))?;
        refreshed.push(table);
    }
    Ok(refreshed)
}
