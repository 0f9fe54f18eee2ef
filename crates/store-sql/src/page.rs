//! A search page rendered as its [`Plan`] says: rows of `rid`, then the values a next-page
//! cursor carries (a walk's value, or one per sort key), one more than the page size so the
//! caller knows whether there is a next page.
//!
//! Without `_sort` the order is the resource row key (or a walk's value, then the row key), so
//! a filter backed by an index is read in index order and stops after the page: page 1,000
//! costs what page 1 costs. With `_sort`, rows without a value for a sort key come last,
//! whatever the direction.

use search::query::{Filter, SearchQuery};

use crate::Dialect;
use crate::builder::{DELETED, Sql, SqlBuilder};
use crate::conditions::{index_condition, index_table_of};
use crate::filters::{render_filter, render_probe, render_set, settable};
use crate::plan::{Lead, Plan, bounded_set_read_whole};
use crate::sort::{cursor_condition, sort_expression};
use crate::walk::{walk_chain, walk_page};

/// The statement that reads one page of `query` as `plan` says; none for [`Plan::NoPage`].
pub(crate) fn render(query: &SearchQuery, plan: Plan, dialect: Dialect) -> Option<Sql> {
    let mut b = SqlBuilder::seeing(dialect, &query.visibility);
    match plan {
        Plan::NoPage => return None,
        Plan::Sorted { lead } => sorted_page(&mut b, query, lead),
        Plan::Drive(index) => drive_page(&mut b, query, index),
        Plan::Walk(index) => walk_page(&mut b, query, index),
        Plan::WalkChain { chain, targets } => walk_chain(&mut b, query, chain, targets),
        Plan::Set(_) | Plan::Scan => {
            let set = match plan {
                Plan::Set(index) => Some(index),
                _ => None,
            };
            resource_page(&mut b, query, set);
        }
    }
    Some(b.finish())
}

/// A page read from filter `index`'s index in resource order.
///
/// On PostgreSQL each index row's resource is probed (`EXISTS ... OFFSET 0`, a subplan per row
/// that cannot become a join), so the page reads the driving index in order and stops when it
/// is full, on any statistics. As a join, on statistics taken before the load, the planner
/// merged the index rows with the type's resources walked from its first row, every other
/// filter probed on each of those resources rather than on the matches:
/// `Observation?code=<heart rate>&date=ge2015` read 22,430 Observations for a deep page of 100
/// (182 ms against 1.0 ms probed, `EXPLAIN ANALYZE` on the 1x sample, stale). Citus keeps the
/// join: its shards are joined on the distribution key, not probed by a correlated subquery.
fn drive_page(b: &mut SqlBuilder, query: &SearchQuery, index: usize) {
    let filter = &query.filters[index];
    let table = index_table_of(filter).expect("a driving filter reads one index");
    let probed = b.dialect == Dialect::Postgres;
    if probed {
        b.push(&format!(
            "SELECT DISTINCT d.rid FROM {} d WHERE ",
            table.name
        ));
        index_condition(b, filter, "d", false);
        b.push(" AND EXISTS (SELECT 1 FROM resource r WHERE r.rid = d.rid");
        page_conditions(b, query, Some(index), true);
        b.push(" OFFSET 0)");
    } else {
        let same = b.same_resource("r", "d");
        b.push(&format!(
            "SELECT DISTINCT d.rid FROM {} d JOIN resource r ON {same} WHERE ",
            table.name
        ));
        index_condition(b, filter, "d", false);
        page_conditions(b, query, Some(index), true);
    }
    if let Some(cursor) = &query.cursor {
        b.push(" AND d.rid > ").bind_int(cursor.after_row);
    }
    b.push(" ORDER BY d.rid LIMIT ")
        .bind_int(query.count as i64 + 1);
}

/// A page read from the resources in row order: filter `set` (if any) read as a set, every
/// other probed.
fn resource_page(b: &mut SqlBuilder, query: &SearchQuery, set: Option<usize>) {
    b.push(&format!(
        "SELECT r.rid FROM resource r WHERE r.method <> {DELETED}"
    ));
    b.visible("r");
    if !query.types.is_empty() {
        b.push(" AND r.type IN ").bind_text_list(&query.types);
    }
    for (i, filter) in query.filters.iter().enumerate() {
        b.push(" AND ");
        if set == Some(i) {
            // One set of row keys, whatever the filter: a compartment (references by any of
            // several parameters) as one UNION, not an OR of sets, which both planners answered
            // by reading the type's every resource (138 ms for a resident's page at 10x).
            //
            // PostgreSQL reads a set found by index lookups whole first (`= ANY(ARRAY(...))`: an init
            // plan, then the resources by row key for those keys only, stopping after the
            // page). As a semi-join its plan rested on the set's estimated size: the region's
            // largest record estimated at 216 rows (2,265 read) had it merge the set with the
            // resource table walked from its first row, 39,000 rows before the resident's
            // first (48 ms for a page of ten, against 3.5). A set is only read as one when it
            // is bounded (counted sparse, or one resident's record), so reading it whole is
            // too.
            let whole = bounded_set_read_whole(b.dialect, filter);
            render_set_of(b, filter, "r", whole);
        } else {
            render_probe(b, filter, "r");
        }
    }
    if let Some(cursor) = &query.cursor {
        b.push(" AND r.rid > ").bind_int(cursor.after_row);
    }
    b.push(" ORDER BY r.rid LIMIT ")
        .bind_int(query.count as i64 + 1);
}

/// A sorted page: every match with its sort values, ordered, after the cursor.
fn sorted_page(b: &mut SqlBuilder, query: &SearchQuery, lead: Option<Lead>) {
    b.push("SELECT q.rid");
    for i in 0..query.sort.len() {
        b.push(&format!(", q.s{i}"));
    }
    b.push(" FROM (SELECT r.rid AS rid");
    for (i, key) in query.sort.iter().enumerate() {
        b.push(", ");
        sort_expression(b, key);
        b.push(&format!(" AS s{i}"));
    }
    b.push(" FROM resource r WHERE ");
    where_clause(b, query, lead, "r");
    b.push(") q");
    if let Some(cursor) = &query.cursor {
        b.push(" WHERE ");
        cursor_condition(b, &query.sort, cursor);
    }
    b.push(" ORDER BY ");
    for (i, key) in query.sort.iter().enumerate() {
        let direction = if key.descending { "DESC" } else { "ASC" };
        b.push(&format!(
            "(CASE WHEN q.s{i} IS NULL THEN 1 ELSE 0 END), q.s{i} {direction}, "
        ));
    }
    b.push("q.rid LIMIT ").bind_int(query.count as i64 + 1);
}

/// The conditions every unsorted page states on its resource row `r`: not deleted, visible to
/// the caller, of the query's types if `typed`, and every filter but `skip` (the one the page
/// is read from) probed per row.
///
/// A walk leaves the type out: its filter is one parameter's, and a parameter's key is its
/// resource type's (the rows of `Encounter.date` are Encounters'). PostgreSQL counts a type as
/// a filter that keeps few rows (one type among twenty), then expects fewer matches than a
/// page and sorts them all instead of reading a page in index order: 2.6 ms instead of 0.26
/// for `Encounter?date=2015` on Synthea.
pub(crate) fn page_conditions(
    b: &mut SqlBuilder,
    query: &SearchQuery,
    skip: Option<usize>,
    typed: bool,
) {
    b.push(&format!(" AND r.method <> {DELETED}"));
    b.visible("r");
    if typed && !query.types.is_empty() {
        b.push(" AND r.type IN ").bind_text_list(&query.types);
    }
    for (i, other) in query.filters.iter().enumerate() {
        if Some(i) != skip {
            b.push(" AND ");
            render_probe(b, other, "r");
        }
    }
}

/// The conditions of a sorted page and of a count: one filter, the most selective kind, read
/// as a set (`rid IN (...)`), every other probed per row. SQLite (3.5x) answers two `rid IN`
/// sets on one row by looking up every pair of their rows: a patient's 2,122 observations
/// times the region's 29,206 laboratory results for `patient=X&category=laboratory&_sort=date`
/// (14 s on Synthea, 3 ms with the category probed).
pub(crate) fn where_clause(
    b: &mut SqlBuilder,
    query: &SearchQuery,
    lead: Option<Lead>,
    alias: &str,
) {
    b.push(&format!("{alias}.method <> {DELETED}"));
    b.visible(alias);
    if !query.types.is_empty() {
        b.push(&format!(" AND {alias}.type IN "));
        b.bind_text_list(&query.types);
    }
    for (i, filter) in query.filters.iter().enumerate() {
        b.push(" AND ");
        match lead {
            Some(Lead { index, whole: true }) if index == i => {
                render_set_of(b, filter, alias, true);
            }
            Some(Lead { index, .. }) if index == i => render_filter(b, filter, alias),
            _ if !settable(filter) => render_filter(b, filter, alias),
            _ => render_probe(b, filter, alias),
        }
    }
}

/// `alias.rid` in the set of [`settable`] `filter`: read `whole` first on PostgreSQL (`= ANY(ARRAY(...))`:
/// an init plan, then the resources by row key for those keys only), else as a semi-join.
fn render_set_of(b: &mut SqlBuilder, filter: &Filter, alias: &str, whole: bool) {
    b.push(&format!("{alias}.rid "));
    b.push(if whole { "= ANY(ARRAY(" } else { "IN (" });
    render_set(b, filter);
    b.push(if whole { "))" } else { ")" });
}
