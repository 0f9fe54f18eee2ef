//! Running a search, the same way on every backend: plan, render, run. A backend supplies only
//! a [`SqlRunner`] that executes SQL on its connection; the page query, its cursor, the total
//! and the includes are the same on both.

use std::collections::HashMap;

use search::query::{Cursor, CursorValue, SearchQuery, TotalMode, WalkPosition};
use store::{SearchPage, StoreError, VersionRecord};

use crate::builder::{Dialect, Sql};
use crate::count::{estimate, search_count};
use crate::include::includes;
use crate::plan::{self, Plan, Question};
use crate::sort::SortValueKind;

/// Executes SQL on one backend's connection.
pub trait SqlRunner {
    /// A single-column query of integers.
    fn integers(&mut self, sql: &Sql) -> Result<Vec<i64>, StoreError>;

    /// A `COUNT(*)` over a whole set of matches (a search's total), which costs what reading
    /// the set costs and so is worth planning for its values at every run. A backend that
    /// keeps its statements' plans (PostgreSQL's plan cache turns a statement generic after
    /// five runs, its costs guessed without the values) should not keep this one's.
    fn total(&mut self, sql: &Sql) -> Result<i64, StoreError> {
        Ok(self.integers(sql)?.first().copied().unwrap_or(0))
    }

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
    // Each question is asked once: a sorted page and its total read the same lead set. A
    // filter with fewer matches than the page plan's cap has fewer than the whole read's (a
    // set page's total would else count its set again, up to the larger cap).
    let mut answers: HashMap<Question, bool> = HashMap::new();
    let mut few = |question: Question| -> Result<bool, StoreError> {
        if let Some(answer) = answers.get(&question) {
            return Ok(*answer);
        }
        if let Question::ReadableWhole(index) = question
            && answers.get(&Question::FewMatches(index)) == Some(&true)
        {
            return Ok(true);
        }
        let counted = runner.integers(&estimate(query, question, dialect))?;
        let answer = counted.first().copied().unwrap_or(0) < question.cap() as i64;
        answers.insert(question, answer);
        Ok(answer)
    };
    let plan = plan::choose(query, dialect, &mut few)?;
    let count_lead = match (query.total, plan) {
        (TotalMode::None, _) => None,
        (_, Plan::Sorted { lead }) => lead,
        _ => plan::lead(query, dialect, &mut few)?,
    };
    let mut rows = match crate::page::render(query, plan, dialect) {
        Some(page) => runner.page_rows(&page, &plan.value_kinds(query))?,
        None => Vec::new(),
    };
    let next = if rows.len() > query.count {
        rows.truncate(query.count);
        rows.last().map(|(after_row, values)| match plan.walked() {
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
            let count = runner.total(&search_count(query, count_lead, dialect))?;
            Some(count.max(0) as u64)
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
