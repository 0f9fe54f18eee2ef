//! Running a search, the same way on every backend: the page query, its cursor, the total and
//! the includes. A backend supplies only a [`SqlRunner`] that executes SQL on its connection.

use std::collections::HashSet;

use search::query::{Cursor, CursorValue, SearchQuery, TotalMode, WalkPosition};

use crate::sql::{self, Dialect, SortValueKind, Sql};
use crate::{SearchPage, StoreError, VersionRecord};

/// How many rounds of `:iterate` includes are followed, and how many resources may be included
/// in all: enough for every reasonable graph, bounded for unreasonable ones.
const MAX_INCLUDE_ROUNDS: usize = 4;
const MAX_INCLUDED: usize = 5_000;

/// Executes SQL on one backend's connection.
pub trait SqlRunner {
    /// A single-column query of integers.
    fn integers(&mut self, sql: &Sql) -> Result<Vec<i64>, StoreError>;

    /// A page query: the row key, then one value per sort key, read as `kinds` says.
    fn page_rows(
        &mut self,
        sql: &Sql,
        kinds: &[SortValueKind],
    ) -> Result<Vec<(i64, Vec<CursorValue>)>, StoreError>;

    /// The current versions of resources by row key, in the order given.
    fn records(&mut self, rows: &[i64]) -> Result<Vec<VersionRecord>, StoreError>;
}

/// Runs `query`: one page of matches, the cursor of the next page, the total if asked, and the
/// included resources.
pub fn search(
    runner: &mut dyn SqlRunner,
    query: &SearchQuery,
    dialect: Dialect,
) -> Result<SearchPage, StoreError> {
    sql::check_sort_cursor(query)?;
    let (mut rows, walked) = if query.count == 0 {
        (Vec::new(), None)
    } else {
        let plan = page_plan(runner, query, dialect)?;
        let walked = match plan {
            sql::PagePlan::Walk(index) | sql::PagePlan::WalkDense(index) => Some(index),
            _ => None,
        };
        let kinds: Vec<SortValueKind> = match walked {
            Some(index) => vec![sql::walk_value_kind(query, index)],
            None => query.sort.iter().map(sql::sort_value_kind).collect(),
        };
        let sql = sql::search_page_with(query, plan, dialect);
        (runner.page_rows(&sql, &kinds)?, walked)
    };
    let next = if rows.len() > query.count {
        rows.truncate(query.count);
        rows.last().map(|(after_row, values)| match walked {
            Some(filter) => Cursor {
                after_row: *after_row,
                sort_values: Vec::new(),
                walk: values.first().map(|value| WalkPosition {
                    filter,
                    value: value.clone(),
                }),
            },
            None => Cursor {
                after_row: *after_row,
                sort_values: values.clone(),
                walk: None,
            },
        })
    } else {
        None
    };
    let row_keys: Vec<i64> = rows.iter().map(|(row, _)| *row).collect();
    let matches = runner.records(&row_keys)?;
    let total = match query.total {
        TotalMode::None => None,
        TotalMode::Estimate | TotalMode::Accurate => {
            let count = runner.integers(&sql::search_count(query, dialect))?;
            Some(count.first().copied().unwrap_or(0).max(0) as u64)
        }
    };
    let included = includes(runner, query, &matches, dialect)?;
    Ok(SearchPage {
        matches,
        included,
        next,
        total,
    })
}

/// Above this many matches a filter is dense: checking the type's resources in order fills a
/// page sooner than reading every match. Below it, reading the matches is cheaper (at 20 a
/// page, scanning costs about 20 x resources / matches rows; reading costs the matches).
const DENSE: usize = 5_000;

/// How to read an unsorted page: from an equality index when the query has one; otherwise the
/// sparse filter as a set, or a scan when the filter is dense (counted up to [`DENSE`]).
fn page_plan(
    runner: &mut dyn SqlRunner,
    query: &SearchQuery,
    dialect: Dialect,
) -> Result<sql::PagePlan, StoreError> {
    if !query.sort.is_empty() {
        return Ok(sql::PagePlan::Scan);
    }
    if let Some(index) = sql::walk_to_take(query)? {
        // A chain with many targets finds them in order instead of reading them all.
        if let Some(count) = sql::estimate_targets(query, index, DENSE, dialect)
            && !counts_fewer_than_dense(runner, &count)?
        {
            return Ok(sql::PagePlan::WalkDense(index));
        }
        return Ok(sql::PagePlan::Walk(index));
    }
    if let Some((rank, index)) = sql::driver(query) {
        // A code or URI index walks every resource with that code (all blood pressures of the
        // region); a reference to one resource under several possible types (`patient=123`)
        // usually names far fewer rows, though not in row order: read it as a set when sparse.
        if rank < 4
            && let Some(reference) = sql::one_target_of_several_types(query)
            && sparse(runner, query, reference, dialect)?
        {
            return Ok(sql::PagePlan::Set(reference));
        }
        return Ok(sql::PagePlan::Drive(index));
    }
    let Some(index) = sql::set_candidate(query) else {
        return Ok(sql::PagePlan::Scan);
    };
    // One patient's record is a small part of any store: no need to count it.
    if matches!(
        query.filters[index],
        search::query::Filter::PatientCompartment { .. }
    ) {
        return Ok(sql::PagePlan::Set(index));
    }
    Ok(if sparse(runner, query, index, dialect)? {
        sql::PagePlan::Set(index)
    } else {
        sql::PagePlan::Scan
    })
}

/// Whether filter `index` matches fewer than [`DENSE`] resources (counted up to that).
fn sparse(
    runner: &mut dyn SqlRunner,
    query: &SearchQuery,
    index: usize,
    dialect: Dialect,
) -> Result<bool, StoreError> {
    counts_fewer_than_dense(runner, &sql::estimate(query, index, DENSE, dialect))
}

/// Whether a count capped at [`DENSE`] came short of it.
fn counts_fewer_than_dense(runner: &mut dyn SqlRunner, count: &Sql) -> Result<bool, StoreError> {
    let counted = runner.integers(count)?;
    Ok(counted.first().copied().unwrap_or(0) < DENSE as i64)
}

fn includes(
    runner: &mut dyn SqlRunner,
    query: &SearchQuery,
    matches: &[VersionRecord],
    dialect: Dialect,
) -> Result<Vec<VersionRecord>, StoreError> {
    if matches.is_empty() || (query.include.is_empty() && query.revinclude.is_empty()) {
        return Ok(Vec::new());
    }
    let mut seen: HashSet<i64> = matches.iter().map(|r| r.row).collect();
    let mut included: Vec<VersionRecord> = Vec::new();
    // Each round follows the includes from the resources the previous round found; the first
    // round starts from the matches and applies every include, later rounds only :iterate ones.
    let mut frontier: Vec<VersionRecord> = matches.to_vec();
    for round in 0..MAX_INCLUDE_ROUNDS {
        let mut found: Vec<i64> = Vec::new();
        let rows: Vec<i64> = frontier.iter().map(|r| r.row).collect();
        let keys: Vec<(&str, &str)> = frontier
            .iter()
            .map(|r| (r.resource_type.as_str(), r.id.as_str()))
            .collect();
        for include in query.include.iter().filter(|i| round == 0 || i.iterate) {
            found.extend(runner.integers(&sql::include_targets(&rows, include, dialect))?);
        }
        for include in query.revinclude.iter().filter(|i| round == 0 || i.iterate) {
            found.extend(runner.integers(&sql::revinclude_sources(&keys, include, dialect))?);
        }
        found.retain(|row| seen.insert(*row));
        found.truncate(MAX_INCLUDED.saturating_sub(included.len()));
        if found.is_empty() {
            break;
        }
        frontier = runner.records(&found)?;
        included.extend(frontier.iter().cloned());
        if included.len() >= MAX_INCLUDED {
            break;
        }
    }
    Ok(included)
}
