//! Counts: every match of a query (`_total`), and the capped counts the planner asks for
//! (how many rows a filter matches, up to a cap, to choose how to page).

use search::query::{Filter, SearchQuery};

use crate::Dialect;
use crate::builder::{Sql, SqlBuilder};
use crate::filters::{render_set, settable};
use crate::page::where_clause;
use crate::plan::{Lead, Question};

/// The statement that counts every match of a query, its conditions those of a sorted page,
/// its set `lead` ([`crate::plan::lead`]).
pub(crate) fn search_count(query: &SearchQuery, lead: Option<Lead>, dialect: Dialect) -> Sql {
    let mut b = SqlBuilder::seeing(dialect, &query.visibility);
    b.push("SELECT COUNT(*) FROM resource r WHERE ");
    where_clause(&mut b, query, lead, "r");
    b.finish()
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
