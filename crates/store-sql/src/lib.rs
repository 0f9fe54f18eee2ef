//! The SQL the two database backends share, and nothing else uses: the schema's declaration
//! (`tables`) and what follows from it (the schema's text, the rows index entries become), and
//! a search as SQL, planned once (`plan`), rendered exactly as planned (`page`, `walk`,
//! `filters`, `conditions`, `sort`, `count`, `include`) and run through a backend's
//! [`SqlRunner`] (`execute`); history pages too. The two databases share one schema shape, so
//! a search renders the same way on both; a [`Dialect`] covers the differences.

mod builder;
mod conditions;
mod count;
pub mod ddl;
mod execute;
mod filters;
mod history;
mod include;
pub mod index_rows;
mod page;
mod plan;
mod sort;
pub mod tables;
mod walk;

#[cfg(test)]
mod golden_sql;

pub use builder::{Dialect, Sql, SqlValue, same_resource};
pub use execute::{SqlRunner, search};
pub use history::{RECORD_COLUMNS, current_version_join, history, scan};
pub use sort::SortValueKind;
