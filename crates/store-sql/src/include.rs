//! `_include` and `_revinclude`: the resources a page's matches point at, or that point at them,
//! followed round by round for `:iterate`.

use std::collections::HashSet;

use search::query::{Include, SearchQuery};
use store::{StoreError, VersionRecord};

use crate::Dialect;
use crate::builder::{DELETED, Sql, SqlBuilder};
use crate::execute::SqlRunner;

/// How many rounds of `:iterate` includes are followed, and how many resources may be included
/// in all: enough for every reasonable graph, bounded for unreasonable ones.
const MAX_INCLUDE_ROUNDS: usize = 4;
const MAX_INCLUDED: usize = 5_000;

/// Resources that `rows` point at through the include's parameters.
fn include_targets(rows: &[i64], include: &Include, query: &SearchQuery, dialect: Dialect) -> Sql {
    let mut b = SqlBuilder::seeing(dialect, &query.visibility);
    match dialect {
        // On Citus the references are read first: their targets may be any resident's, or
        // none's, on any shard, and a join between shards that is not on the patient key runs
        // only without the probes the caller's rules put on the target.
        Dialect::Citus => {
            let pointed = b.materialized("pointed", |b| {
                b.push("SELECT DISTINCT ref.target_type, ref.target_id FROM idx_reference ref WHERE ref.rid IN ");
                b.bind_int_list(rows);
                if !include.params.is_empty() {
                    b.push(" AND ref.param IN ");
                    b.bind_int_list(&include.params.iter().map(|p| p.0).collect::<Vec<_>>());
                }
            });
            b.push(&format!(
                "SELECT t.rid FROM {pointed} ref CROSS JOIN resource t \
                 WHERE t.type = ref.target_type AND t.id = ref.target_id AND t.method <> {DELETED}"
            ));
            b.visible("t");
            if let Some(target_type) = &include.target_type {
                b.push(" AND t.type = ").bind_text(target_type);
            }
            return b.finish();
        }
        Dialect::Sqlite => b.push(
            "SELECT DISTINCT t.rid FROM idx_reference ref \
             JOIN resource t ON t.type = ref.target_type AND t.id = ref.target_id \
             WHERE ref.rid IN ",
        ),
        // PostgreSQL estimates the reference rows of a thousand row keys at twenty times what
        // they are and hashes the whole resource table (175 ms a page of `$everything` at 10x
        // Synthea). The OFFSET keeps the lookup a subquery, so each target is found by its
        // (type, id) index: 5 ms. (A LIMIT 1 did too until the access rule put a costly
        // condition on the target: then the planner costed the subquery by its first row and
        // read the resource table from the start for every target, 36 s a page.)
        Dialect::Postgres => b.push(
            "SELECT DISTINCT t.rid FROM idx_reference ref CROSS JOIN LATERAL \
             (SELECT t.* FROM resource t \
             WHERE t.type = ref.target_type AND t.id = ref.target_id OFFSET 0) t \
             WHERE ref.rid IN ",
        ),
    };
    b.bind_int_list(rows);
    // No parameters means every reference of the rows (`$everything`).
    if !include.params.is_empty() {
        b.push(" AND ref.param IN ");
        b.bind_int_list(&include.params.iter().map(|p| p.0).collect::<Vec<_>>());
    }
    b.push(&format!(" AND t.method <> {DELETED}"));
    b.visible("t");
    if let Some(target_type) = &include.target_type {
        b.push(" AND t.type = ").bind_text(target_type);
    }
    b.finish()
}

/// Resources that point at `targets` (`(type, id)`) through the include's parameters.
fn revinclude_sources(
    targets: &[(&str, &str)],
    include: &Include,
    query: &SearchQuery,
    dialect: Dialect,
) -> Sql {
    let mut b = SqlBuilder::seeing(dialect, &query.visibility);
    if b.sees_all() {
        // Index rows exist only for current resources: the source's own row adds nothing.
        b.push("SELECT DISTINCT ref.rid FROM idx_reference ref WHERE 1 = 1");
    } else {
        let same = b.same_resource("s", "ref");
        b.push(&format!(
            "SELECT DISTINCT ref.rid FROM idx_reference ref JOIN resource s ON {same} WHERE 1 = 1"
        ));
        b.visible("s");
    }
    b.push(" AND ref.param IN ");
    b.bind_int_list(&include.params.iter().map(|p| p.0).collect::<Vec<_>>());
    let mut by_type: Vec<(&str, Vec<&str>)> = Vec::new();
    for (resource_type, id) in targets {
        match by_type.iter_mut().find(|(t, _)| t == resource_type) {
            Some((_, ids)) => ids.push(id),
            None => by_type.push((resource_type, vec![id])),
        }
    }
    if let Some(target_type) = &include.target_type {
        by_type.retain(|(t, _)| *t == &**target_type);
    }
    b.push(" AND (");
    if by_type.is_empty() {
        b.push("1 = 0");
    }
    for (i, (resource_type, ids)) in by_type.iter().enumerate() {
        if i > 0 {
            b.push(" OR ");
        }
        b.push("(ref.target_type = ").bind_text(resource_type);
        b.push(" AND ref.target_id IN ").bind_text_list(ids);
        b.push(")");
    }
    b.push(")");
    b.finish()
}

/// The resources the includes of `query` bring in from `matches`, each once and none of the
/// matches, at most [`MAX_INCLUDED`].
pub(crate) fn includes(
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
            found.extend(runner.integers(&include_targets(&rows, include, query, dialect))?);
        }
        for include in query.revinclude.iter().filter(|i| round == 0 || i.iterate) {
            found.extend(runner.integers(&revinclude_sources(&keys, include, query, dialect))?);
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
