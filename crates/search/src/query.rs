//! The intermediate form of a search: what to find, in terms of index rows. The `search` crate
//! fills it from a FHIR query string; a store renders it as SQL for its backend. The meaning of
//! prefixes, modifiers and chains is decided here, once, so both stores behave the same.

use crate::keys::ParamKey;

/// A parsed search, ready for a store to run.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The resource types searched: one for a type search; several, or none for all, for a
    /// system search.
    pub types: Vec<Box<str>>,
    /// Every filter must hold.
    pub filters: Vec<Filter>,
    pub sort: Vec<SortKey>,
    /// Page size.
    pub count: usize,
    /// Where the page starts (from a next link).
    pub cursor: Option<Cursor>,
    pub total: TotalMode,
    pub include: Vec<Include>,
    pub revinclude: Vec<Include>,
    /// Which resources the caller may see: every resource the search touches (its matches,
    /// what it includes, a chain's targets, `_has`'s referrers, what it counts) must be visible.
    pub visibility: Visibility,
}

/// Which resources a read may see, as the read policy decides for a caller. A store applies it
/// inside every query, to every resource row the query reads, so that nothing hidden is
/// returned, counted, included, or reached through a chain.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Visibility {
    /// Every resource.
    #[default]
    All,
    /// None.
    Nothing,
    /// The resources that satisfy this filter (checked against each resource row).
    Where(Filter),
}

impl SearchQuery {
    pub fn of_type(resource_type: &str) -> SearchQuery {
        SearchQuery {
            types: vec![resource_type.into()],
            filters: Vec::new(),
            sort: Vec::new(),
            count: 20,
            cursor: None,
            total: TotalMode::None,
            include: Vec::new(),
            revinclude: Vec::new(),
            visibility: Visibility::All,
        }
    }
}

impl SearchQuery {
    /// The keys under which conditional operations (conditional create, update and delete,
    /// `ifNoneExist`, conditional references) with these criteria take their lock before they
    /// search, so that two of them deciding about the same resource run one after the other:
    /// one key per equality the criteria require (a token, an id, an exact string, a reference,
    /// a uri), each alternative of a comma list included. Two criteria that share any such
    /// value are serialised; criteria without one lock their resource types as a whole. The
    /// keys are sorted, the order in which a transaction must take them.
    pub fn criteria_locks(&self) -> Vec<i64> {
        let mut keys = Vec::new();
        for filter in &self.filters {
            equality_locks(filter, &self.types, &mut keys);
        }
        if keys.is_empty() {
            for resource_type in &self.types {
                keys.push(lock_key(&[b"type", resource_type.as_bytes()]));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

fn lock_key(parts: &[&[u8]]) -> i64 {
    let mut buffer = b"criteria-lock".to_vec();
    for part in parts {
        buffer.push(0);
        buffer.extend_from_slice(part);
    }
    xxhash_rust::xxh3::xxh3_64(&buffer) as i64
}

/// The lock keys of the equalities `filter` requires (see [`SearchQuery::criteria_locks`]).
fn equality_locks(filter: &Filter, types: &[Box<str>], keys: &mut Vec<i64>) {
    match filter {
        Filter::AnyOf(alternatives) | Filter::AllOf(alternatives) => {
            for alternative in alternatives {
                equality_locks(alternative, types, keys);
            }
        }
        // The token hash already names the parameter (and so the resource type).
        Filter::Token { column, hash, .. } => {
            let column = match column {
                TokenColumn::Code => b"c",
                TokenColumn::SystemCode => b"s",
                TokenColumn::System => b"y",
            };
            keys.push(lock_key(&[b"token", column, &hash.to_le_bytes()]));
        }
        Filter::Id(ids) => {
            for resource_type in types {
                for id in ids {
                    keys.push(lock_key(&[b"id", resource_type.as_bytes(), id.as_bytes()]));
                }
            }
        }
        Filter::String {
            param,
            test: StringTest::Exact(value),
        } => keys.push(lock_key(&[
            b"string",
            &param.0.to_le_bytes(),
            value.as_bytes(),
        ])),
        Filter::Reference {
            param,
            target: ReferenceTarget::Local { id, .. },
        } => keys.push(lock_key(&[
            b"reference",
            &param.0.to_le_bytes(),
            id.as_bytes(),
        ])),
        Filter::Reference {
            param,
            target: ReferenceTarget::Url { url, .. },
        } => keys.push(lock_key(&[b"url", &param.0.to_le_bytes(), url.as_bytes()])),
        Filter::Uri {
            param,
            test: UriTest::Equals(uri),
        } => keys.push(lock_key(&[b"uri", &param.0.to_le_bytes(), uri.as_bytes()])),
        _ => {}
    }
}

/// A condition on a resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// At least one holds (comma-separated values of one parameter).
    AnyOf(Vec<Filter>),
    /// All hold.
    AllOf(Vec<Filter>),
    /// Does not hold (`:not`, `ne`).
    Not(Box<Filter>),
    /// The logical id is one of these.
    Id(Vec<Box<str>>),
    /// `_lastUpdated`, as a predicate on the version's instant (microseconds).
    LastUpdated(RangePredicate),
    /// A token row of `param` has this hash in this column.
    Token {
        param: ParamKey,
        column: TokenColumn,
        hash: i64,
    },
    /// A string row of `param` matches.
    String { param: ParamKey, test: StringTest },
    /// A date row of `param` (microsecond range) satisfies the predicate. `single`: a resource
    /// has at most one row of `param` (`registry::Param::single`).
    Date {
        param: ParamKey,
        predicate: RangePredicate,
        single: bool,
    },
    /// A number row of `param` satisfies the predicate.
    Number {
        param: ParamKey,
        predicate: RangePredicate,
    },
    /// A quantity row of `param` satisfies the predicate, in the given units.
    Quantity {
        param: ParamKey,
        predicate: RangePredicate,
        units: QuantityUnits,
    },
    /// A reference row of `param` points at the target.
    Reference {
        param: ParamKey,
        target: ReferenceTarget,
    },
    /// A uri row of `param` matches.
    Uri { param: ParamKey, test: UriTest },
    /// A composite row of `param` matches both components.
    Composite {
        param: ParamKey,
        first: (TokenColumn, i64),
        second: CompositeTest,
    },
    /// The resource has (`missing == false`) or lacks rows of `param` in `table`.
    Missing {
        param: ParamKey,
        table: IndexTable,
        missing: bool,
    },
    /// A reference row of `param` points at a resource of one of `target_types` that matches
    /// `filter` (a chained parameter: `subject:Patient.name=...`).
    Chain {
        param: ParamKey,
        target_types: Vec<Box<str>>,
        filter: Box<Filter>,
    },
    /// Some resource of `source_type` matching `filter` points at this one through its
    /// reference parameter `param` (`_has:Observation:patient:code=...`).
    Has {
        source_type: Box<str>,
        param: ParamKey,
        filter: Box<Filter>,
    },
    /// In the compartment of patient `id`: the patient itself, every resource whose
    /// patient-compartment key is the patient's, and every resource that points at the patient
    /// through one of `params` (the compartment definition's parameters).
    PatientCompartment {
        id: Box<str>,
        key: crate::keys::PatientKey,
        params: Vec<ParamKey>,
    },
    /// The organisation that holds the resource (its custodian) is one of these
    /// (`Organization/7`). Access rules only: no search parameter makes it.
    Custodian(Vec<Box<str>>),
    /// The resource is of one of these types. Access rules only.
    OfType(Vec<Box<str>>),
    /// The resource carries none of the restricted sensitivities. Access rules only.
    Unrestricted,
    /// A live resource of `source_type` in the same patient's compartment (the same patient
    /// key) matches `filter`, permits every restricted sensitivity this resource carries, and
    /// either has no rows of the token parameter `class_param` or has one whose code is this
    /// resource's type: the resident's consent beside each of their records. Access rules
    /// only; the source resource is read whatever the caller may see (it is the rule).
    CompartmentGrant {
        source_type: Box<str>,
        filter: Box<Filter>,
        class_param: ParamKey,
        /// When given, the source may also be in the compartment of any Patient linked with
        /// this resource's patient through this reference parameter of one `Person` (the
        /// master patient index's `Person.link`): one resident's every registration.
        link: Option<ParamKey>,
    },
    /// In the compartment of Patient `id`, or of any Patient linked with it through the
    /// reference parameter `link` of one `Person`: a resident's every registration. Access
    /// rules only.
    ResidentCompartment { id: Box<str>, link: ParamKey },
}

/// The index tables, one per parameter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexTable {
    Token,
    String,
    Date,
    Number,
    Quantity,
    Reference,
    Uri,
    Composite,
}

impl IndexTable {
    /// The table that holds a parameter type's rows; none for `special` parameters.
    pub fn of(kind: fhir_model::SearchParamType) -> Option<IndexTable> {
        use fhir_model::SearchParamType as T;
        Some(match kind {
            T::Token => IndexTable::Token,
            T::String => IndexTable::String,
            T::Date => IndexTable::Date,
            T::Number => IndexTable::Number,
            T::Quantity => IndexTable::Quantity,
            T::Reference => IndexTable::Reference,
            T::Uri => IndexTable::Uri,
            T::Composite => IndexTable::Composite,
            T::Special => return None,
        })
    }
}

/// Which token hash a filter compares (see [`ParamKey::code_hash`] and siblings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenColumn {
    Code,
    SystemCode,
    System,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StringTest {
    /// The normalised value starts with this (normalised) text.
    Prefix(Box<str>),
    /// The value is exactly this.
    Exact(Box<str>),
    /// The normalised value contains this (normalised) text.
    Contains(Box<str>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum UriTest {
    Equals(Box<str>),
    /// The stored uri starts with this one (`:below`).
    Below(Box<str>),
    /// The stored uri is a prefix of this one (`:above`): the candidates are listed.
    Above(Vec<Box<str>>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReferenceTarget {
    /// `Type/id`, or a bare id with the types it may be (the parameter's targets).
    Local { types: Vec<Box<str>>, id: Box<str> },
    /// An absolute URL or a canonical (optionally `|version`).
    Url {
        url: Box<str>,
        version: Option<Box<str>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum QuantityUnits {
    /// No unit given: any row, compared on its written value.
    Any,
    /// `system|code` (or `|code` with an empty system).
    SystemCode(Option<Box<str>>, Box<str>),
    /// Converted to canonical UCUM units: compared on the canonical value.
    Canonical(Box<str>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum CompositeTest {
    Token(TokenColumn, i64),
    /// A number, date, or quantity in any unit.
    Range(RangePredicate),
    /// A quantity in one unit: the unit's token hash (as the index keeps it) and the range in
    /// that unit.
    Quantity {
        unit: (TokenColumn, i64),
        predicate: RangePredicate,
    },
    /// A string part starts with this normalised text (a string parameter's default search).
    String(Box<str>),
}

/// The columns of an indexed range: its two ends, and (for numbers and quantities) the value
/// as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeColumn {
    Low,
    High,
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Integer(i64),
    Float(f64),
}

/// A predicate on a row's range, in disjunctive normal form: any of the groups holds when all
/// of its comparisons hold. This is where search prefixes (`eq`, `ge`, `sa`...) land.
#[derive(Debug, Clone, PartialEq)]
pub struct RangePredicate {
    pub any_of: Vec<Vec<(RangeColumn, Comparison, Bound)>>,
}

/// A sort key: a parameter, or `_lastUpdated` / `_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub by: SortBy,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SortBy {
    Id,
    LastUpdated,
    /// The smallest (largest, descending) value of the resource's rows of `params`: one
    /// parameter, or the two a union parameter is searched through.
    Param {
        params: Vec<ParamKey>,
        table: IndexTable,
    },
}

/// An opaque position in a result set, from a next link: the sort values and the resource
/// key of the last row of the previous page.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub after_row: i64,
    pub sort_values: Vec<CursorValue>,
    /// Set when an unsorted search is read along one filter's index, in the order of its
    /// value and then the resource key (the store's "walk"): the next page goes on along it.
    pub walk: Option<WalkPosition>,
}

/// Where a walk along filter `filter`'s index stopped: the index value of the last row.
#[derive(Debug, Clone, PartialEq)]
pub struct WalkPosition {
    pub filter: usize,
    pub value: CursorValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CursorValue {
    Null,
    Integer(i64),
    Float(f64),
    Text(Box<str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TotalMode {
    #[default]
    None,
    Estimate,
    Accurate,
}

/// `_include` / `_revinclude`: follow the reference parameters `params` (of resources of the
/// source type; `*` lists them all) to resources of `target_type` if given.
#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    pub params: Vec<ParamKey>,
    pub target_type: Option<Box<str>>,
    /// Also follow from resources that were themselves included (`:iterate`).
    pub iterate: bool,
}

impl Cursor {
    /// The text form used in next links: the row key, then a walk's filter (`w` and its
    /// position) and value if the page was walked, then each sort value; every value tagged
    /// with its kind (`n` null, `i` integer, `f` float, `s` text), parts separated by `~`.
    pub fn encode(&self) -> String {
        fn value(out: &mut String, value: &CursorValue) {
            out.push('~');
            match value {
                CursorValue::Null => out.push('n'),
                CursorValue::Integer(i) => out.push_str(&format!("i{i}")),
                CursorValue::Float(f) => out.push_str(&format!("f{f:?}")),
                CursorValue::Text(t) => {
                    out.push('s');
                    for c in t.chars() {
                        match c {
                            '%' => out.push_str("%25"),
                            '~' => out.push_str("%7E"),
                            other => out.push(other),
                        }
                    }
                }
            }
        }
        let mut out = self.after_row.to_string();
        if let Some(walk) = &self.walk {
            out.push_str(&format!("~w{}", walk.filter));
            value(&mut out, &walk.value);
        }
        for sort_value in &self.sort_values {
            value(&mut out, sort_value);
        }
        out
    }

    /// Reads a cursor back; `None` when the text is not one.
    pub fn decode(text: &str) -> Option<Cursor> {
        fn value(part: &str) -> Option<CursorValue> {
            let (tag, rest) = part.split_at_checked(1)?;
            Some(match tag {
                "n" if rest.is_empty() => CursorValue::Null,
                "i" => CursorValue::Integer(rest.parse().ok()?),
                "f" => CursorValue::Float(rest.parse().ok()?),
                "s" => CursorValue::Text(rest.replace("%7E", "~").replace("%25", "%").into()),
                _ => return None,
            })
        }
        let mut parts = text.split('~').peekable();
        let after_row = parts.next()?.parse().ok()?;
        let walk = match parts.next_if(|p| p.starts_with('w')) {
            Some(part) => Some(WalkPosition {
                filter: part[1..].parse().ok()?,
                value: value(parts.next()?)?,
            }),
            None => None,
        };
        let sort_values = parts.map(value).collect::<Option<Vec<_>>>()?;
        Some(Cursor {
            after_row,
            sort_values,
            walk,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_survive_their_text_form() {
        let cursor = Cursor {
            after_row: 42,
            sort_values: vec![
                CursorValue::Null,
                CursorValue::Integer(-7),
                CursorValue::Float(1.5e-3),
                CursorValue::Text("a~b%c 张".into()),
            ],
            walk: None,
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        let walked = Cursor {
            after_row: 9,
            sort_values: Vec::new(),
            walk: Some(WalkPosition {
                filter: 2,
                value: CursorValue::Text("sm~ith".into()),
            }),
        };
        assert_eq!(walked.encode(), "9~w2~ssm%7Eith");
        assert_eq!(Cursor::decode(&walked.encode()), Some(walked));
        assert_eq!(Cursor::decode("9~w2"), None, "a walk without its value");
        assert_eq!(Cursor::decode("9~wx~i1"), None);
        assert_eq!(Cursor::decode("x"), None);
        assert_eq!(Cursor::decode("1~q"), None);
        assert_eq!(Cursor::decode("1~i"), None);
    }
}
