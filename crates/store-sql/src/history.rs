//! History pages, and the columns every read of a version selects.

use store::{HistoryQuery, HistoryScope};

use crate::Dialect;
use crate::builder::{Sql, SqlBuilder};

/// The columns a [`crate::VersionRecord`] is read from, resource `r` joined with its version `v`.
pub const RECORD_COLUMNS: &str = "r.rid, r.type, r.id, v.version, v.last_updated, v.method, v.content, v.content_hash, v.custodian, v.sensitivity";

/// The join of resources `r` to their current versions `v`, as every read of current versions
/// writes it.
pub fn current_version_join(dialect: Dialect) -> String {
    format!(
        "JOIN version v ON {} AND v.version = r.version",
        crate::builder::same_resource(dialect, "v", "r")
    )
}

/// A page of history, newest first: [`RECORD_COLUMNS`], then the version's sequence number
/// (the cursor), one row more than the page so the caller knows whether there is a next page.
pub fn history(query: &HistoryQuery, dialect: Dialect) -> Sql {
    let mut b = SqlBuilder::seeing(dialect, &query.visibility);
    let same = b.same_resource("r", "v");
    b.push(&format!(
        "SELECT {RECORD_COLUMNS}, v.seq FROM version v JOIN resource r ON {same} WHERE 1 = 1"
    ));
    b.visible("r");
    match &query.scope {
        HistoryScope::System => {}
        HistoryScope::Type(resource_type) => {
            b.push(" AND v.type = ").bind_text(resource_type);
        }
        HistoryScope::Instance(resource_type, id) => {
            b.push(" AND r.type = ").bind_text(resource_type);
            b.push(" AND r.id = ").bind_text(id);
        }
    }
    if let Some(since) = query.since {
        b.push(" AND v.last_updated >= ").bind_int(since);
    }
    if let Some((low, high)) = query.at {
        b.push(" AND v.last_updated <= ").bind_int(high);
        b.push(" AND (v.superseded IS NULL OR v.superseded > ")
            .bind_int(low)
            .push(")");
    }
    if let Some(cursor) = query.cursor {
        b.push(" AND v.seq < ").bind_int(cursor);
    }
    b.push(" ORDER BY v.seq DESC LIMIT ")
        .bind_int(query.count as i64 + 1);
    b.finish()
}

/// Current, undeleted resources in row order after `query.after_row`, those the caller may see:
/// the way through everything, for reindexing and export ([`RECORD_COLUMNS`]).
pub fn scan(query: &store::ScanQuery, dialect: Dialect) -> Sql {
    let mut b = SqlBuilder::seeing(dialect, &query.visibility);
    b.push(&format!(
        "SELECT {RECORD_COLUMNS} FROM resource r {} WHERE r.method <> {} AND r.rid > ",
        current_version_join(dialect),
        crate::builder::DELETED
    ))
    .bind_int(query.after_row);
    b.visible("r");
    if !query.types.is_empty() {
        b.push(" AND r.type IN ").bind_text_list(&query.types);
    }
    if let Some(since) = query.since {
        b.push(" AND r.last_updated >= ").bind_int(since);
    }
    b.push(" ORDER BY r.rid LIMIT ")
        .bind_int(query.limit as i64);
    b.finish()
}
