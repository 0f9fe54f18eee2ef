//! SQL on FHIR v2 views: a ViewDefinition compiled once, then evaluated over FHIR resources
//! into rows of typed columns: the flat tables that analytics reads instead of resources.
//!
//! ```ignore
//! let view = analytics::View::parse(&view_definition)?;
//! for column in view.columns() {
//!     println!("{} {}", column.name(), column.column_type().name());
//! }
//! for resource in &patients {
//!     for row in view.rows(resource)? {
//!         // one JSON value per column, in `view.columns()` order
//!     }
//! }
//! ```
//!
//! - [`View::parse`] reads the ViewDefinition, compiles every FHIRPath expression (paths under
//!   the view's resource type, and under a `forEach` whose type is known, are checked against
//!   the R4 model), and refuses what the specification calls invalid before any resource is
//!   read: a missing or unknown `resource`, unknown elements, names that are not SQL names,
//!   a column defined twice, `unionAll` branches whose columns differ, more than one of
//!   `forEach`/`forEachOrNull`/`repeat`, a `%constant` the view does not define, a complex
//!   value in a column without a `type`.
//! - [`View::rows`] evaluates it on one resource: `where`, `select`, `column`, `forEach`,
//!   `forEachOrNull`, `repeat`, `unionAll` and nested selections (Cartesian products, as the
//!   specification's algorithm says), constants as typed `%name`s, `%rowIndex`, and the
//!   functions SQL on FHIR adds (`getResourceKey()`, `getReferenceKey([type])`, provided by
//!   the `fhirpath` crate). A column that gets several values without `collection: true`,
//!   a `where` that is not a boolean, a value not of its column's type are errors.
//! - [`Column::column_type`] maps the FHIR type a column holds (declared, or inferred from
//!   its path) to a stable [`ColumnType`] that a columnar writer can map to its own.
//! - Errors are values ([`ViewError`], naming the offending element); a hostile view (deep
//!   nesting, rows multiplying without end) is refused, never a panic or a blown stack.
//! - `parquet` (the `parquet` feature, off by default) writes a view's rows as one Parquet
//!   file, its Arrow schema made from the columns' types.
//!
//! [`operations`] declares `$viewdefinition-run`, which the server answers; [`output`] writes
//! rows as NDJSON, CSV or JSON; [`stored`] reads a view kept in the store (a `Library`
//! holding it); [`catalogue`] holds the views the platform materialises (`parquet::dataset`
//! keeps them as Parquet, refreshed from the change log) and [`indicators`] the region's
//! indicators, each a Measure and the SQL over those views that computes it (the SQL runs in
//! the `analytics-sql` adapter; this crate turns its answer into a MeasureReport). Keys are
//! resource ids. The crate knows no storage, HTTP or
//! async runtime; those will come to it, not from it.

pub mod catalogue;
mod column;
mod constant;
mod error;
pub mod indicators;
pub mod operations;
pub mod output;
#[cfg(feature = "parquet")]
pub mod parquet;
mod run;
pub mod stored;
mod view;

pub use column::{Column, ColumnType};
pub use error::ViewError;
pub use run::Row;
pub use view::{DEFAULT_ROW_LIMIT, MAX_NESTING, View};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_is_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<View>();
    }
}
