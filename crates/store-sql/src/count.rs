//! Counts: every match of a query (`_total`), and the capped counts the planner asks for
//! (how many rows a filter matches, up to a cap, to choose how to page).

use search::query::{Filter, SearchQuery};

use crate::Dialect;
use crate::builder::{Sql, SqlBuilder};
use crate::conditions::index_table_of;
use crate::filters::{render_set, settable};
use crate::page::where_clause;
use crate::plan::{Lead, Question};

/// The statement that counts every match of a query, its conditions those of a sorted page,
/// its set `lead` ([`crate::plan::lead`]).
///
/// A query of one type with one filter on its index rows, by a caller who sees everything,
/// is counted from those rows alone: they are the current versions' (a resource's are
/// replaced when it changes and removed when it is deleted) and its parameter is of that type.
/// Its count then has no join whose plan turns on the statistics: over stale ones PostgreSQL
/// probed the resources of `date=ge2010`'s 39,481 rows one by one (133-280 ms) where it hashes
/// them on fresh ones (40-80 ms); the index rows alone, 20-55 ms on either. (On Citus the
/// rows of one resource are on one shard, but Citus does not know it of the row key, and a
/// distinct count would be gathered on the coordinator.)
pub(crate) fn search_count(query: &SearchQuery, lead: Option<Lead>, dialect: Dialect) -> Sql {
    let mut b = SqlBuilder::seeing(dialect, &query.visibility);
    if let Some(filter) = counted_from_index_rows(query, &b) {
        if matches!(filter, Filter::Date { single: true, .. }) {
            // One row a resource: no distinct to hash (at 10x, 394,810 rows hashed in 21
            // batches spilled to disk, 750 ms).
            b.push("SELECT COUNT(*) FROM (");
            render_set(&mut b, filter);
            b.push(") s");
        } else {
            b.push("SELECT COUNT(*) FROM (SELECT DISTINCT s.rid FROM (");
            render_set(&mut b, filter);
            b.push(") s) c");
        }
        return b.finish();
    }
    b.push("SELECT COUNT(*) FROM resource r WHERE ");
    where_clause(&mut b, query, lead, "r");
    b.finish()
}

/// The filter whose index rows alone count `query`'s matches, if there is one: see
/// [`search_count`].
fn counted_from_index_rows<'q>(query: &'q SearchQuery, b: &SqlBuilder) -> Option<&'q Filter> {
    fn of_index_rows(filter: &Filter) -> bool {
        match filter {
            Filter::AnyOf(inner) => !inner.is_empty() && inner.iter().all(of_index_rows),
            other => index_table_of(other).is_some(),
        }
    }
    if b.dialect == Dialect::Citus || !b.sees_all() || query.types.len() != 1 {
        return None;
    }
    match query.filters.as_slice() {
        [filter] if of_index_rows(filter) => Some(filter),
        _ => None,
    }
}

/// The count that answers `question`, capped at [`Question::cap`].
///
/// For `_has` the referring resources are counted instead of the join to their targets: a
/// count that reaches the cap costs what reading the rows costs, four lookups a row for the
/// join (18 ms of a 19 ms `_has` search at 10x Synthea), one for the referring set. A chain's
/// targets are its inner filter's matches.
pub(crate) fn estimate(query: &SearchQuery, question: Question, dialect: Dialect) -> Sql {
    let counted = match question {
        Question::FewMatches(index) | Question::ReadableWhole(index) => {
            match &query.filters[index] {
                Filter::Has { filter, .. } if settable(filter) => filter,
                other => other,
            }
        }
        Question::FewTargets(index) => match &query.filters[index] {
            Filter::Chain { filter, .. } => filter,
            _ => unreachable!("targets are asked of chains"),
        },
    };
    count_up_to(counted, question.cap(), dialect)
}

/// `SELECT COUNT(*)` of a [`settable`] filter's set, reading at most `cap` rows of it.
fn count_up_to(filter: &Filter, cap: usize, dialect: Dialect) -> Sql {
    let mut b = SqlBuilder::new(dialect);
    b.push("SELECT COUNT(*) FROM (");
    render_set(&mut b, filter);
    b.push(" LIMIT ").bind_int(cap as i64).push(") c");
    b.finish()
}
