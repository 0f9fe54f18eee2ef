//! The change log on PostgreSQL. A trigger on `version` writes a `change` row for every version
//! in the writing transaction, so a change exists exactly when its version committed. Version
//! numbers (`seq`) are taken at insert, and concurrent transactions commit in another order, so
//! they cannot be the log's order: a reader that had passed `seq` 7 would never see a
//! transaction holding `seq` 6 that committed after. Instead the log's reader numbers the
//! changes it finds committed and not yet numbered, one reader at a time (an advisory lock),
//! after every number given before; a change numbered is never renumbered. Positions are
//! therefore the order in which changes became visible to the log, and every committed change
//! gets exactly one.

use store::{Change, Method, StoreError};

use crate::map_error;
use crate::pool::Connection;

/// The advisory lock key under which changes are numbered ("change l" in ASCII).
const SEQUENCER_LOCK: i64 = 0x6368_616e_6765_206c;

/// How many changes one numbering pass takes: bounded, so a backlog (a bulk load) is numbered
/// in several short transactions rather than one that holds the lock for minutes.
const SEQUENCE_BATCH: i64 = 10_000;

pub(crate) fn changes(
    connection: &mut Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<Change>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut found = read(connection, after, limit)?;
    // Number what has committed since, until the page is full or nothing waits. A pass that
    // found changes waiting and numbered none met another reader numbering them (it waited
    // for that reader's lock, so they are numbered and committed now): they are read all the
    // same. Stopping there, a reader catching up after a write (a checkpoint asked for) missed
    // the write the ledger keeper was numbering at that moment.
    while (found.len() as i64) < limit {
        let Some(numbered) = sequence(connection)? else {
            break;
        };
        let last = found.last().map_or(after, |change| change.position);
        let more = read(connection, last, limit - found.len() as i64)?;
        if numbered == 0 && more.is_empty() {
            break;
        }
        found.extend(more);
    }
    Ok(found)
}

fn read(connection: &mut Connection, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
    if connection.distributed {
        return read_distributed(connection, after, limit);
    }
    // The position as a subquery's value, which no plan can see: planned for it, every
    // read was planned afresh (its estimate always beat the generic plan's), 0.24 ms of
    // planning a read, with a read after every write at one client; now the generic plan
    // (the same walk of the position's index) is taken after the first five. Each change's
    // version and resource are looked up by key in a subquery kept apart (`OFFSET 0`): a
    // generic plan made while the tables were small joined them by hashing, reading both
    // tables whole at every read until their next analysis.
    let statement = connection.prepare_cached(
        "SELECT c.position, x.rid, x.type, x.id, x.version, x.method, x.last_updated \
         FROM (SELECT seq, position FROM change WHERE position > (SELECT $1::bigint) \
               ORDER BY position LIMIT $2) c \
         CROSS JOIN LATERAL (SELECT v.rid, v.type, r.id, v.version, v.method, v.last_updated \
               FROM version v JOIN resource r ON r.rid = v.rid WHERE v.seq = c.seq OFFSET 0) x \
         ORDER BY c.position",
    )?;
    let rows = connection
        .client
        .query(&statement, &[&after, &limit])
        .map_err(map_error)?;
    Ok(rows.iter().map(|row| change(row.get(0), row)).collect())
}

/// The change at `position` of the version in `row` (its row key, type, id, version, method
/// and time in columns 1 to 6).
fn change(position: i64, row: &postgres::Row) -> Change {
    let method: i16 = row.get(5);
    Change {
        position,
        row: row.get(1),
        resource_type: row.get(2),
        id: row.get(3),
        version: row.get(4),
        method: Method::from_code(i64::from(method)).unwrap_or(Method::Update),
        last_updated: row.get(6),
    }
}

/// The same on a distributed store: the log's rows (on the coordinator) carry what a change
/// is, written by the flush; those written before they did (a store distributed by an earlier
/// release) are completed from their versions and resources, joined on the key as well.
fn read_distributed(
    connection: &mut Connection,
    after: i64,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    let log = connection.prepare_cached(
        "SELECT seq, rid, type, id, version, method, last_updated, position FROM change \
         WHERE position > $1 ORDER BY position LIMIT $2",
    )?;
    let logged = connection
        .client
        .query(&log, &[&after, &limit])
        .map_err(map_error)?;
    let bare: Vec<i64> = logged
        .iter()
        .filter(|row| row.get::<_, Option<i64>>(1).is_none())
        .map(|row| row.get(0))
        .collect();
    let mut by_seq: std::collections::HashMap<i64, postgres::Row> = if bare.is_empty() {
        std::collections::HashMap::new()
    } else {
        let versions = connection.prepare_cached(&format!(
            "SELECT v.seq, v.rid, v.type, r.id, v.version, v.method, v.last_updated \
             FROM version v JOIN resource r ON {} WHERE v.seq = ANY($1)",
            store_sql::same_resource(connection.dialect(), "r", "v")
        ))?;
        connection
            .client
            .query(&versions, &[&bare])
            .map_err(map_error)?
            .into_iter()
            .map(|row| (row.get(0), row))
            .collect()
    };
    Ok(logged
        .iter()
        .filter_map(|log| {
            let position = log.get(7);
            if log.get::<_, Option<i64>>(1).is_some() {
                return Some(change(position, log));
            }
            let row = by_seq.remove(&log.get::<_, i64>(0))?;
            Some(change(position, &row))
        })
        .collect())
}

/// Numbers up to [`SEQUENCE_BATCH`] committed, unnumbered changes in `seq` order after the
/// highest number given, and answers how many it numbered, or `None` when none was waiting.
/// Under READ COMMITTED the update sees whatever committed before it started, including the
/// numbers of the pass before it, which the lock kept from running at the same time.
fn sequence(connection: &mut Connection) -> Result<Option<u64>, StoreError> {
    // Prepared once per connection: every consumer's every read of the log runs the check.
    // In the order of the unnumbered changes' index, which makes reading it the only plan:
    // without, a plan made while the table was small read it whole at every check.
    let check = connection
        .prepare_cached("SELECT 1 FROM change WHERE position IS NULL ORDER BY seq LIMIT 1")?;
    let pending = connection
        .client
        .query_opt(&check, &[])
        .map_err(map_error)?;
    if pending.is_none() {
        return Ok(None);
    }
    let number = connection.prepare_cached(
        "WITH top AS (SELECT coalesce(max(position), 0) AS position FROM change), \
         next AS (SELECT seq, row_number() OVER (ORDER BY seq) AS n FROM change \
                  WHERE position IS NULL ORDER BY seq LIMIT $1) \
         UPDATE change SET position = top.position + next.n FROM top, next \
         WHERE change.seq = next.seq",
    )?;
    let mut transaction = connection.client.transaction().map_err(map_error)?;
    // The lock and, in the same message, a plan that finds the changes to number by key: one
    // made while the table was small hashed the whole table at every pass.
    transaction
        .batch_execute(&format!(
            "SELECT pg_advisory_xact_lock({SEQUENCER_LOCK}); SET LOCAL enable_seqscan = off"
        ))
        .map_err(map_error)?;
    let numbered = transaction
        .execute(&number, &[&SEQUENCE_BATCH])
        .map_err(map_error)?;
    transaction.commit().map_err(map_error)?;
    Ok(Some(numbered))
}
