//! Evaluating a compiled view on one resource, as the specification's processing algorithm
//! does: the `where` filters, then each selection's nodes (`forEach`, `forEachOrNull`,
//! `repeat`, or its parent's node), each node's partial rows (its columns, each nested
//! selection's rows, its union's rows) and their Cartesian product. Nothing recurses deeper
//! than the view nests (at most [`crate::MAX_NESTING`]); `repeat` walks with a stack of its
//! own, and every way rows multiply is counted against the view's row limit.

use fhirpath::{Collection, Environment, Item};
use serde_json::Value;

use crate::constant;
use crate::error::ViewError;
use crate::view::{ColumnPath, Iteration, Path, Select, View};

/// One output row: a value for each of the view's columns, in [`View::columns`] order. A value
/// is JSON: `null` when the path found nothing, an array for a collection column.
pub type Row = Vec<Value>;

impl View {
    /// The rows the view makes of one resource. A resource of another type than the view's
    /// makes none, as does one that a `where` filters out.
    pub fn rows(&self, resource: &Value) -> Result<Vec<Row>, ViewError> {
        if resource.get("resourceType").and_then(Value::as_str) != Some(self.resource.as_str()) {
            return Ok(Vec::new());
        }
        let run = Run {
            view: self,
            resource,
            variables: constant::variables(&self.constants),
        };
        let focus = Item::resource(resource);
        if !run.passes_filters(&focus)? {
            return Ok(Vec::new());
        }
        run.select(&self.root, &focus, 0)
    }
}

/// One resource's evaluation.
struct Run<'a> {
    view: &'a View,
    resource: &'a Value,
    /// The view's constants, as FHIRPath variables.
    variables: Vec<(&'a str, Collection<'a>)>,
}

impl<'a> Run<'a> {
    /// What FHIRPath sees at one `%rowIndex`: the constants, `%rowIndex`, and the resource as
    /// `%resource` (also inside a `forEach`, where the context is an element of it).
    fn environment(&self, row_index: usize) -> Environment<'a> {
        let mut environment = Environment::new().with_resource(self.resource);
        for (name, items) in &self.variables {
            environment = environment.with_variable(name, items.clone());
        }
        let index = i64::try_from(row_index).unwrap_or(i64::MAX);
        environment.with_variable("rowIndex", Collection::one(Item::integer(index)))
    }

    fn evaluate(
        &self,
        path: &Path,
        focus: &Item<'a>,
        environment: &Environment<'a>,
    ) -> Result<Collection<'a>, ViewError> {
        path.expression
            .evaluate_on(&Collection::one(focus.clone()), environment)
            .map_err(|error| self.error(&path.at, error.to_string()))
    }

    fn error(&self, at: &str, message: String) -> ViewError {
        ViewError::Evaluation {
            at: at.to_string(),
            resource: self.label(),
            message,
        }
    }

    /// `Patient/pt1`, or `Patient` for a resource without an id.
    fn label(&self) -> String {
        match self.resource.get("id").and_then(Value::as_str) {
            Some(id) => format!("{}/{id}", self.view.resource),
            None => self.view.resource.clone(),
        }
    }

    fn too_many_rows(&self) -> ViewError {
        ViewError::TooManyRows {
            resource: self.label(),
            limit: self.view.row_limit,
        }
    }

    /// Every `where` must give true; an empty result is false, anything but one boolean an
    /// error.
    fn passes_filters(&self, focus: &Item<'a>) -> Result<bool, ViewError> {
        if self.view.filters.is_empty() {
            return Ok(true);
        }
        let environment = self.environment(0);
        for filter in &self.view.filters {
            let result = self.evaluate(filter, focus, &environment)?;
            let passes = match result.as_slice() {
                [] => false,
                [item] => match item.as_bool() {
                    Some(value) => value,
                    // A boolean element with only an extension has no value.
                    None if item.json().is_none() && item.is_fhir_type() => false,
                    None => {
                        return Err(self.error(
                            &filter.at,
                            format!(
                                "a where path must give a boolean, and this one gives a {}",
                                item.type_name()
                            ),
                        ));
                    }
                },
                items => {
                    return Err(self.error(
                        &filter.at,
                        format!(
                            "a where path must give one boolean, and this one gives {} items",
                            items.len()
                        ),
                    ));
                }
            };
            if !passes {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The rows of one selection on `focus`, each `select.width` values wide.
    fn select(
        &self,
        select: &Select,
        focus: &Item<'a>,
        row_index: usize,
    ) -> Result<Vec<Row>, ViewError> {
        let foci: Vec<(Item<'a>, usize)> = match &select.iteration {
            Iteration::Focus => vec![(focus.clone(), row_index)],
            Iteration::ForEach(path) | Iteration::ForEachOrNull(path) => self
                .evaluate(path, focus, &self.environment(row_index))?
                .into_iter()
                .zip(0..)
                .collect(),
            Iteration::Repeat(paths) => self
                .repeat(paths, focus, row_index)?
                .into_iter()
                .zip(0..)
                .collect(),
        };
        if foci.is_empty() {
            return Ok(match select.iteration {
                Iteration::ForEachOrNull(_) => vec![select.null_row.clone()],
                _ => Vec::new(),
            });
        }
        let mut rows = Vec::new();
        for (node, index) in &foci {
            let environment = self.environment(*index);
            let mut parts: Vec<Vec<Row>> = Vec::with_capacity(select.selects.len() + 2);
            if !select.columns.is_empty() {
                let values = select
                    .columns
                    .iter()
                    .map(|column| self.column(column, node, &environment))
                    .collect::<Result<Row, _>>()?;
                parts.push(vec![values]);
            }
            for nested in &select.selects {
                parts.push(self.select(nested, node, *index)?);
            }
            if !select.union_all.is_empty() {
                let mut union = Vec::new();
                for branch in &select.union_all {
                    union.extend(self.select(branch, node, *index)?);
                    if union.len() > self.view.row_limit {
                        return Err(self.too_many_rows());
                    }
                }
                parts.push(union);
            }
            self.product(&parts, select.width, &mut rows)?;
        }
        Ok(rows)
    }

    /// Every combination of one partial row from each part, concatenated in order, appended
    /// to `rows`; refused before it is built when it would pass the row limit.
    fn product(
        &self,
        parts: &[Vec<Row>],
        width: usize,
        rows: &mut Vec<Row>,
    ) -> Result<(), ViewError> {
        let count = parts
            .iter()
            .try_fold(1_usize, |count, part| count.checked_mul(part.len()));
        let count = match count {
            Some(0) => return Ok(()),
            Some(count) if count <= self.view.row_limit.saturating_sub(rows.len()) => count,
            _ => return Err(self.too_many_rows()),
        };
        rows.reserve(count);
        let mut choice = vec![0_usize; parts.len()];
        loop {
            let mut row = Vec::with_capacity(width);
            for (part, &i) in parts.iter().zip(&choice) {
                row.extend_from_slice(&part[i]);
            }
            rows.push(row);
            // The next combination, the last part turning fastest.
            let mut k = parts.len();
            loop {
                if k == 0 {
                    return Ok(());
                }
                k -= 1;
                choice[k] += 1;
                if choice[k] < parts[k].len() {
                    break;
                }
                choice[k] = 0;
            }
        }
    }

    /// The nodes `repeat` reaches from `focus` (not `focus` itself), depth first in document
    /// order: each node, then what each path finds under it, in the order of the paths.
    fn repeat(
        &self,
        paths: &[Path],
        focus: &Item<'a>,
        row_index: usize,
    ) -> Result<Vec<Item<'a>>, ViewError> {
        let environment = self.environment(row_index);
        let children = |node: &Item<'a>| -> Result<Vec<Item<'a>>, ViewError> {
            let mut found = Vec::new();
            for path in paths {
                found.extend(self.evaluate(path, node, &environment)?);
            }
            Ok(found)
        };
        let mut reached = Vec::new();
        let mut pending: Vec<Item<'a>> = children(focus)?.into_iter().rev().collect();
        while let Some(node) = pending.pop() {
            let below = children(&node)?;
            reached.push(node);
            if reached.len() + pending.len() + below.len() > self.view.row_limit {
                return Err(self.too_many_rows());
            }
            pending.extend(below.into_iter().rev());
        }
        Ok(reached)
    }

    /// A column's value on one node: null for nothing, the value for one, an error for more
    /// unless the column is a collection (then always an array).
    fn column(
        &self,
        column: &ColumnPath,
        node: &Item<'a>,
        environment: &Environment<'a>,
    ) -> Result<Value, ViewError> {
        let items = self.evaluate(&column.path, node, environment)?;
        let mut values = Vec::with_capacity(items.len());
        for item in &items {
            if let Some(value) = item_value(item) {
                self.check_value(column, item, &value)?;
                values.push(value);
            }
        }
        if column.collection {
            return Ok(Value::Array(values));
        }
        match values.len() {
            0 => Ok(Value::Null),
            1 => Ok(values.pop().unwrap_or(Value::Null)),
            n => Err(self.error(
                &column.path.at,
                format!(
                    "the column {} gets {n} values; a column that may hold several needs \
                     collection: true",
                    column.name
                ),
            )),
        }
    }

    /// A value must be of its column's type, when that is known, and may be complex only when
    /// the view declares the type, as the specification asks.
    fn check_value(
        &self,
        column: &ColumnPath,
        item: &Item<'a>,
        value: &Value,
    ) -> Result<(), ViewError> {
        if value.is_object() && !column.declared {
            return Err(self.error(
                &column.path.at,
                format!(
                    "the column {} gets a {}, which is not a primitive: declare its type",
                    column.name,
                    item.type_name()
                ),
            ));
        }
        match column.value_type {
            Some(expected) if !expected.admits(value) => Err(self.error(
                &column.path.at,
                format!(
                    "the column {} is of type {} but gets a {} ({value})",
                    column.name,
                    expected.name(),
                    item.type_name()
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// An item's value in a row: an element's own JSON, a computed value's JSON; nothing for a
/// primitive that has only an extension, or for the typed placeholder `resolve()` makes.
fn item_value(item: &Item<'_>) -> Option<Value> {
    match item.json() {
        Some(json) => Some(json.clone()),
        None if item.is_fhir_type() || item.primitive_extension().is_some() => None,
        None => Some(item.to_json()),
    }
}
