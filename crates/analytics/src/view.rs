//! Compiling a ViewDefinition: its JSON read and checked once, every FHIRPath expression in it
//! compiled (against the model where the type it runs on is known), its columns listed in
//! output order with their types, and everything the specification calls invalid refused here
//! rather than on the first resource: unknown elements, bad names, columns defined twice,
//! `unionAll` branches whose columns differ, a `%constant` the view does not define, a path
//! that gives a complex value to a column without a type.

use std::collections::HashSet;

use fhirpath::{CompileOptions, Expression};
use serde_json::{Map, Value};

use crate::column::{Column, ColumnType, declared_type, inferred_type};
use crate::constant::{Constant, parse_constants};
use crate::error::ViewError;

/// How deeply `select`s and `unionAll`s may nest. Real views nest a few levels; the limit keeps
/// compiling and evaluating a hostile view within a thread's stack.
pub const MAX_NESTING: usize = 32;

/// How many rows one resource may make unless [`View::with_row_limit`] says otherwise: sibling
/// `forEach`es multiply, and a `repeat` such as `$this` never ends.
pub const DEFAULT_ROW_LIMIT: usize = 100_000;

/// A compiled ViewDefinition: parse it once, then evaluate it on any number of resources with
/// [`View::rows`], from any number of threads.
#[derive(Debug, Clone)]
pub struct View {
    pub(crate) resource: String,
    pub(crate) name: Option<String>,
    pub(crate) constants: Vec<Constant>,
    pub(crate) filters: Vec<Path>,
    pub(crate) root: Select,
    pub(crate) columns: Vec<Column>,
    pub(crate) row_limit: usize,
}

/// A compiled FHIRPath expression and the element of the view it came from.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub at: String,
    pub expression: Expression,
}

/// What a selection iterates over.
#[derive(Debug, Clone)]
pub(crate) enum Iteration {
    /// Its parent's node, once, keeping its parent's `%rowIndex`.
    Focus,
    ForEach(Path),
    ForEachOrNull(Path),
    /// Every node the paths reach, recursively, depth first.
    Repeat(Vec<Path>),
}

#[derive(Debug, Clone)]
pub(crate) struct ColumnPath {
    pub path: Path,
    pub name: String,
    pub collection: bool,
    /// The type every value must have, when one is declared or inferred.
    pub value_type: Option<ColumnType>,
    /// Whether the view declares a type: only then may values be complex.
    pub declared: bool,
}

/// A selection structure (`select[]`, and each `unionAll[]` branch): its columns come first,
/// then its nested selections' columns, then its union's.
#[derive(Debug, Clone)]
pub(crate) struct Select {
    pub iteration: Iteration,
    pub columns: Vec<ColumnPath>,
    pub selects: Vec<Select>,
    pub union_all: Vec<Select>,
    /// The number of columns it fills, its nested selections' and union's included.
    pub width: usize,
    /// What a `forEachOrNull` that finds nothing emits: null in every column, but 0 where the
    /// path is `%rowIndex`, as the specification's algorithm says.
    pub null_row: Vec<Value>,
}

impl View {
    /// Compiles a ViewDefinition (JSON as FHIR writes it), or says what is wrong with it and
    /// where.
    pub fn parse(json: &Value) -> Result<View, ViewError> {
        let Value::Object(fields) = json else {
            return Err(ViewError::invalid(
                "ViewDefinition",
                "must be a JSON object",
            ));
        };
        check_keys(fields, "ViewDefinition", VIEW_ELEMENTS, None)?;
        if let Some(kind) = fields.get("resourceType")
            && kind.as_str() != Some("ViewDefinition")
        {
            return Err(ViewError::invalid(
                "ViewDefinition.resourceType",
                format!("a ViewDefinition, not {kind}"),
            ));
        }
        let name = match fields.get("name") {
            None => None,
            Some(Value::String(name)) if is_sql_name(name) => Some(name.clone()),
            Some(_) => {
                return Err(ViewError::invalid(
                    "ViewDefinition.name",
                    "must be a name: letters, digits and _, starting with a letter",
                ));
            }
        };
        let resource = match fields.get("resource") {
            Some(Value::String(resource)) if fhir_model::r4().is_resource_type(resource) => {
                resource.clone()
            }
            Some(Value::String(resource)) => {
                return Err(ViewError::invalid(
                    "ViewDefinition.resource",
                    format!("{resource} is not an R4 resource type"),
                ));
            }
            Some(_) => {
                return Err(ViewError::invalid(
                    "ViewDefinition.resource",
                    "must be a string",
                ));
            }
            None => {
                return Err(ViewError::invalid(
                    "ViewDefinition",
                    "a view needs the resource type it reads (resource)",
                ));
            }
        };
        let constants = parse_constants(fields.get("constant"))?;
        let compiler = Compiler {
            resource: &resource,
            constants: &constants,
        };
        let filters = compiler.filters(fields.get("where"))?;
        let selects = match fields.get("select") {
            Some(Value::Array(selects)) if !selects.is_empty() => selects,
            Some(_) => {
                return Err(ViewError::invalid(
                    "ViewDefinition.select",
                    "must be a non-empty array",
                ));
            }
            None => {
                return Err(ViewError::invalid(
                    "ViewDefinition",
                    "a view needs at least one select",
                ));
            }
        };
        let (root, columns) = compiler.root(selects)?;
        if columns.is_empty() {
            return Err(ViewError::invalid(
                "ViewDefinition.select",
                "a view needs at least one column",
            ));
        }
        Ok(View {
            resource,
            name,
            constants,
            filters,
            root,
            columns,
            row_limit: DEFAULT_ROW_LIMIT,
        })
    }

    /// The resource type the view reads (`resource`); [`View::rows`] makes no rows from others.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The view's `name`, if it has one: the table's name.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The output columns, in the order each row holds its values.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The most rows one resource may make before [`View::rows`] refuses it.
    pub fn with_row_limit(mut self, limit: usize) -> View {
        self.row_limit = limit;
        self
    }
}

/// The elements of a ViewDefinition: the canonical resource's and the view's own. Anything else
/// is refused, so that a misspelt `wher` does not silently select every resource.
const VIEW_ELEMENTS: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
    "url",
    "identifier",
    "version",
    "versionAlgorithmString",
    "versionAlgorithmCoding",
    "name",
    "title",
    "status",
    "experimental",
    "date",
    "publisher",
    "contact",
    "description",
    "useContext",
    "jurisdiction",
    "purpose",
    "copyright",
    "copyrightLabel",
    "resource",
    "profile",
    "fhirVersion",
    "constant",
    "select",
    "where",
];

const SELECT_ELEMENTS: &[&str] = &[
    "id",
    "extension",
    "column",
    "select",
    "forEach",
    "forEachOrNull",
    "repeat",
    "unionAll",
];

const COLUMN_ELEMENTS: &[&str] = &[
    "id",
    "extension",
    "name",
    "path",
    "description",
    "collection",
    "type",
    "tag",
];

const WHERE_ELEMENTS: &[&str] = &["id", "extension", "path", "description"];

/// Refuses an element that is not in `allowed` (nor a `choice` spelling such as `valueDate`,
/// nor the `_name` sibling that carries a primitive's extensions).
pub(crate) fn check_keys(
    fields: &Map<String, Value>,
    at: &str,
    allowed: &[&str],
    choice: Option<&str>,
) -> Result<(), ViewError> {
    for key in fields.keys() {
        let bare = key.strip_prefix('_').unwrap_or(key);
        let known = allowed.contains(&bare) || choice.is_some_and(|stem| bare.starts_with(stem));
        if !known {
            return Err(ViewError::invalid(at, format!("unknown element {key:?}")));
        }
    }
    Ok(())
}

/// The `sql-name` rule for view, column and constant names: `^[A-Za-z][A-Za-z0-9_]*$`.
pub(crate) fn is_sql_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What compiling the view's expressions needs to know.
struct Compiler<'v> {
    resource: &'v str,
    constants: &'v [Constant],
}

impl Compiler<'_> {
    /// Compiles the string at `at`; `context` is the type it will run on, when known, so that
    /// a misspelt element is refused now.
    fn path(
        &self,
        json: Option<&Value>,
        at: String,
        context: Option<&str>,
    ) -> Result<Path, ViewError> {
        let source = match json {
            Some(Value::String(source)) if !source.trim().is_empty() => source,
            Some(Value::String(_)) => return Err(ViewError::invalid(at, "the path is empty")),
            Some(other) => {
                return Err(ViewError::invalid(
                    at,
                    format!("a FHIRPath expression must be a string, not {other}"),
                ));
            }
            None => return Err(ViewError::invalid(at, "a path is required")),
        };
        let options = CompileOptions {
            context_type: context.map(str::to_string),
            strict: false,
        };
        let expression = fhirpath::compile_with(source, &options)
            .map_err(|error| ViewError::invalid(&at, format!("{source:?}: {error}")))?;
        for variable in expression.variables() {
            let known = variable == "rowIndex" || self.constants.iter().any(|c| c.name == variable);
            if !known {
                return Err(ViewError::invalid(
                    at,
                    format!("%{variable} is not a constant of this view"),
                ));
            }
        }
        Ok(Path { at, expression })
    }

    fn filters(&self, json: Option<&Value>) -> Result<Vec<Path>, ViewError> {
        let Some(json) = json else {
            return Ok(Vec::new());
        };
        let Value::Array(entries) = json else {
            return Err(ViewError::invalid(
                "ViewDefinition.where",
                "must be an array",
            ));
        };
        let mut filters = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("ViewDefinition.where[{i}]");
            let Value::Object(fields) = entry else {
                return Err(ViewError::invalid(at, "must be an object"));
            };
            check_keys(fields, &at, WHERE_ELEMENTS, None)?;
            let path = self.path(
                fields.get("path"),
                format!("{at}.path"),
                Some(self.resource),
            )?;
            // Known not to be a boolean (`name.family`): refused now, not on the first
            // resource that has one.
            if let Some(types) = path.expression.result_types()
                && !types.is_empty()
                && !types
                    .iter()
                    .any(|t| ColumnType::of_type_name(t) == Some(ColumnType::Boolean))
            {
                return Err(ViewError::invalid(
                    path.at,
                    format!(
                        "a where path must give a boolean, not {}",
                        types.join(" or ")
                    ),
                ));
            }
            filters.push(path);
        }
        Ok(filters)
    }

    /// The view's `select` list, as the nested selections of one selection over the resource.
    fn root(&self, selects: &[Value]) -> Result<(Select, Vec<Column>), ViewError> {
        let mut nested = Vec::with_capacity(selects.len());
        let mut columns = Columns::default();
        for (i, json) in selects.iter().enumerate() {
            let at = format!("ViewDefinition.select[{i}]");
            let (select, select_columns) = self.select(json, &at, Some(self.resource), 1)?;
            columns.append(select_columns, &at)?;
            nested.push(select);
        }
        let null_row = nested.iter().flat_map(|s| s.null_row.clone()).collect();
        let root = Select {
            iteration: Iteration::Focus,
            columns: Vec::new(),
            selects: nested,
            union_all: Vec::new(),
            width: columns.list.len(),
            null_row,
        };
        Ok((root, columns.list))
    }

    /// One selection structure at `at`, evaluated on nodes of type `context` (when known),
    /// `depth` levels down; its columns in output order.
    fn select(
        &self,
        json: &Value,
        at: &str,
        context: Option<&str>,
        depth: usize,
    ) -> Result<(Select, Vec<Column>), ViewError> {
        if depth > MAX_NESTING {
            return Err(ViewError::invalid(
                at,
                format!("selections nest more than {MAX_NESTING} levels deep"),
            ));
        }
        let Value::Object(fields) = json else {
            return Err(ViewError::invalid(at, "a selection must be an object"));
        };
        check_keys(fields, at, SELECT_ELEMENTS, None)?;
        let (iteration, inner) = self.iteration(fields, at, context)?;
        let inner = inner.as_deref();

        let mut columns = Columns::default();
        let mut column_paths = Vec::new();
        let mut null_row = Vec::new();
        for (i, json) in array(fields.get("column"), &format!("{at}.column"))?
            .iter()
            .enumerate()
        {
            let column_at = format!("{at}.column[{i}]");
            let (path, column, null) = self.column(json, &column_at, inner)?;
            columns.append(vec![column], &column_at)?;
            column_paths.push(path);
            null_row.push(null);
        }

        let mut selects = Vec::new();
        for (i, json) in array(fields.get("select"), &format!("{at}.select"))?
            .iter()
            .enumerate()
        {
            let nested_at = format!("{at}.select[{i}]");
            let (select, select_columns) = self.select(json, &nested_at, inner, depth + 1)?;
            columns.append(select_columns, at)?;
            null_row.extend(select.null_row.iter().cloned());
            selects.push(select);
        }

        let mut union_all = Vec::new();
        let mut union_columns: Option<Vec<Column>> = None;
        for (i, json) in array(fields.get("unionAll"), &format!("{at}.unionAll"))?
            .iter()
            .enumerate()
        {
            let branch_at = format!("{at}.unionAll[{i}]");
            let (branch, branch_columns) = self.select(json, &branch_at, inner, depth + 1)?;
            union_columns = Some(match union_columns {
                None => {
                    null_row.extend(branch.null_row.iter().cloned());
                    branch_columns
                }
                Some(first) => merge_union(first, branch_columns, &branch_at)?,
            });
            union_all.push(branch);
        }
        if let Some(union_columns) = union_columns {
            columns.append(union_columns, at)?;
        }

        let select = Select {
            iteration,
            columns: column_paths,
            selects,
            union_all,
            width: columns.list.len(),
            null_row,
        };
        Ok((select, columns.list))
    }

    /// The selection's `forEach`, `forEachOrNull` or `repeat` (at most one of them), and the
    /// type of the nodes it yields, when known.
    fn iteration(
        &self,
        fields: &Map<String, Value>,
        at: &str,
        context: Option<&str>,
    ) -> Result<(Iteration, Option<String>), ViewError> {
        let present: Vec<&str> = ["forEach", "forEachOrNull", "repeat"]
            .into_iter()
            .filter(|key| fields.contains_key(*key))
            .collect();
        if present.len() > 1 {
            return Err(ViewError::invalid(
                at,
                format!(
                    "a selection has at most one of forEach, forEachOrNull and repeat, not {}",
                    present.join(" and ")
                ),
            ));
        }
        Ok(match present.first().copied() {
            None => (Iteration::Focus, context.map(str::to_string)),
            Some("repeat") => {
                let repeat_at = format!("{at}.repeat");
                let sources = array(fields.get("repeat"), &repeat_at)?;
                if sources.is_empty() {
                    return Err(ViewError::invalid(repeat_at, "must name at least one path"));
                }
                // Each path runs on the node and then on what it found, of other types: no
                // single context type fits them, so they are not checked against the model.
                let paths = sources
                    .iter()
                    .enumerate()
                    .map(|(i, json)| self.path(Some(json), format!("{repeat_at}[{i}]"), None))
                    .collect::<Result<Vec<_>, _>>()?;
                (Iteration::Repeat(paths), None)
            }
            Some(key) => {
                let path = self.path(fields.get(key), format!("{at}.{key}"), context)?;
                let inner = single_fhir_type(&path.expression);
                let iteration = if key == "forEach" {
                    Iteration::ForEach(path)
                } else {
                    Iteration::ForEachOrNull(path)
                };
                (iteration, inner)
            }
        })
    }

    /// One column: how to fill it, what the view says of it, and its value in a null row.
    fn column(
        &self,
        json: &Value,
        at: &str,
        context: Option<&str>,
    ) -> Result<(ColumnPath, Column, Value), ViewError> {
        let Value::Object(fields) = json else {
            return Err(ViewError::invalid(at, "a column must be an object"));
        };
        check_keys(fields, at, COLUMN_ELEMENTS, None)?;
        let name = match fields.get("name") {
            Some(Value::String(name)) if is_sql_name(name) => name.clone(),
            Some(Value::String(name)) => {
                return Err(ViewError::invalid(
                    format!("{at}.name"),
                    format!(
                        "{name:?} is not a column name: letters, digits and _, starting with a letter"
                    ),
                ));
            }
            Some(_) => return Err(ViewError::invalid(format!("{at}.name"), "must be a string")),
            None => return Err(ViewError::invalid(at, "a column needs a name")),
        };
        let path = self.path(fields.get("path"), format!("{at}.path"), context)?;
        let collection = match fields.get("collection") {
            None => false,
            Some(Value::Bool(collection)) => *collection,
            Some(_) => {
                return Err(ViewError::invalid(
                    format!("{at}.collection"),
                    "must be true or false",
                ));
            }
        };
        let declared = match fields.get("type") {
            None => None,
            Some(Value::String(uri)) => Some(declared_type(uri).ok_or_else(|| {
                ViewError::invalid(
                    format!("{at}.type"),
                    format!("{uri} is not a FHIR type the R4 model knows"),
                )
            })?),
            Some(_) => return Err(ViewError::invalid(format!("{at}.type"), "must be a string")),
        };
        let description = match fields.get("description") {
            None => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                return Err(ViewError::invalid(
                    format!("{at}.description"),
                    "must be a string",
                ));
            }
        };
        let result_types = path.expression.result_types();
        let inferred = inferred_type(result_types.as_deref());
        if declared.is_none() && inferred == Some(ColumnType::Json) {
            return Err(ViewError::invalid(
                format!("{at}.type"),
                format!(
                    "the column {name} holds {}, which is not a primitive: declare its type",
                    result_types.unwrap_or_default().join(" or ")
                ),
            ));
        }
        let value_type = declared.as_ref().map(|(_, ty)| *ty).or(inferred);
        let null = if path.expression.source().trim() == "%rowIndex" {
            Value::from(0)
        } else {
            Value::Null
        };
        let column = Column {
            name: name.clone(),
            fhir_type: declared.as_ref().map(|(fhir_type, _)| fhir_type.clone()),
            column_type: value_type.unwrap_or(ColumnType::String),
            type_known: value_type.is_some(),
            collection,
            description,
        };
        let column_path = ColumnPath {
            path,
            name,
            collection,
            value_type,
            declared: declared.is_some(),
        };
        Ok((column_path, column, null))
    }
}

/// An optional array element (`column`, `select`, `unionAll`, `repeat`).
fn array<'j>(json: Option<&'j Value>, at: &str) -> Result<&'j [Value], ViewError> {
    match json {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(ViewError::invalid(at, "must be an array")),
    }
}

/// The one FHIR type an iteration yields, to check its nested paths against.
fn single_fhir_type(expression: &Expression) -> Option<String> {
    match expression.result_types()?.as_slice() {
        [name] if !name.starts_with("System.") => Some((*name).to_string()),
        _ => None,
    }
}

/// A selection's columns in output order, and their names, to refuse one defined twice
/// ("Column Already Defined" in the specification's algorithm) without rescanning the list.
#[derive(Default)]
struct Columns {
    list: Vec<Column>,
    names: HashSet<String>,
}

impl Columns {
    /// Adds columns after those before them (`more` comes from one selection, whose own
    /// names were already checked).
    fn append(&mut self, more: Vec<Column>, at: &str) -> Result<(), ViewError> {
        if let Some(duplicate) = more.iter().find(|c| self.names.contains(&c.name)) {
            return Err(ViewError::invalid(
                at,
                format!("the column {} is defined twice", duplicate.name),
            ));
        }
        self.names.extend(more.iter().map(|c| c.name.clone()));
        self.list.extend(more);
        Ok(())
    }
}

/// The columns of a `unionAll` once another branch is added: the same names in the same order
/// ("Union Branches Inconsistent" otherwise), no two types that disagree, the same
/// `collection` flags.
fn merge_union(
    first: Vec<Column>,
    branch: Vec<Column>,
    at: &str,
) -> Result<Vec<Column>, ViewError> {
    let names = |columns: &[Column]| {
        columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if first.len() != branch.len() || first.iter().zip(&branch).any(|(a, b)| a.name != b.name) {
        return Err(ViewError::invalid(
            at,
            format!(
                "the branches of a unionAll must have the same columns in the same order: \
                 ({}) here, ({}) in the first",
                names(&branch),
                names(&first)
            ),
        ));
    }
    let mut merged = Vec::with_capacity(first.len());
    for (mut column, other) in first.into_iter().zip(branch) {
        if column.collection != other.collection {
            return Err(ViewError::invalid(
                at,
                format!(
                    "the column {} is a collection in one branch of the unionAll only",
                    column.name
                ),
            ));
        }
        if column.fhir_type.is_some()
            && other.fhir_type.is_some()
            && column.fhir_type != other.fhir_type
        {
            return Err(ViewError::invalid(
                at,
                format!(
                    "the column {} is declared {} here and {} in the first branch",
                    column.name,
                    other.fhir_type.unwrap_or_default(),
                    column.fhir_type.unwrap_or_default()
                ),
            ));
        }
        match (column.type_known, other.type_known) {
            (true, true) if column.column_type != other.column_type => {
                return Err(ViewError::invalid(
                    at,
                    format!(
                        "the column {} holds {} values here and {} values in the first branch",
                        column.name,
                        other.column_type.name(),
                        column.column_type.name()
                    ),
                ));
            }
            (false, true) => {
                column.column_type = other.column_type;
                column.type_known = true;
            }
            _ => {}
        }
        if column.fhir_type.is_none() {
            column.fhir_type = other.fhir_type;
        }
        if column.description.is_none() {
            column.description = other.description;
        }
        merged.push(column);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_names_start_with_a_letter() {
        assert!(is_sql_name("patient_id2"));
        assert!(!is_sql_name("_id"));
        assert!(!is_sql_name("2id"));
        assert!(!is_sql_name("id-2"));
        assert!(!is_sql_name(""));
    }
}
