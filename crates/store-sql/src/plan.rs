//! The plan of a search page, chosen in one place: [`choose`] looks at the query (and asks
//! how many rows a filter matches where the choice depends on it) and answers a [`Plan`], which
//! `page` renders exactly. A search flows one way: plan, render, run.
//!
//! Without `_sort` a page is read in an order an index gives, so the read stops when the page
//! is full: *drive* (one selective equality index in row order, the other filters probed per
//! row), *walk* (a name prefix or a date range along its own index in (value, row) order, or a
//! chain along its targets; the cursor carries the value), *set* (a sparse filter's rows, then
//! the page) or *scan* (the type's resources in row order, every filter probed). A next page
//! goes on the way the first was read.

use search::query::{
    CursorValue, Filter, ReferenceTarget, SearchQuery, StringTest, TokenColumn, UriTest,
};
use store::StoreError;

use crate::Dialect;
use crate::conditions::implied_high_bound;
use crate::filters::settable;
use crate::sort::{SortValueKind, sort_value_kind};

/// Above this many matches a filter is dense: checking the type's resources in order fills a
/// page sooner than reading every match. Below it, reading the matches is cheaper (at 20 a
/// page, scanning costs about 20 x resources / matches rows; reading costs the matches).
pub(crate) const DENSE: usize = 5_000;

/// How one page of a search is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// `_count=0`: no page is read (only the total, if asked).
    NoPage,
    /// A sorted page: every match with its sort values, filter `lead` (the most selective kind)
    /// read as a set and every other probed per row.
    Sorted { lead: Option<Lead> },
    /// From the index of filter `.0`, in resource order; every other filter probed per row.
    Drive(usize),
    /// Along the index of filter `.0` (a prefix of names, a range of dates) in the order of its
    /// value, then the resource key; every other filter probed per row. The page costs what its
    /// rows cost, whatever the store's size; the cursor carries the value.
    Walk(usize),
    /// Along chain `chain`'s targets in row order, each with its referrers in row order.
    WalkChain { chain: usize, targets: ChainTargets },
    /// Filter `.0` read as a set of rows (it is sparse), the others probed.
    Set(usize),
    /// The type's resources in order, every filter probed (the filters are dense).
    Scan,
}

/// How a chain's walk finds its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainTargets {
    /// Few: the inner filter read as a set (or written as a condition, when it is no set).
    Read,
    /// Few, on PostgreSQL: their row keys as one sorted array, taken one by one by a recursive
    /// query that stops as soon as the page is full.
    OneByOne,
    /// Many (over [`DENSE`]): found by reading the target type's resources in order, the inner
    /// filter probed on each, not read whole.
    Found,
}

impl Plan {
    /// The filter the page walks along, whose value the cursor carries.
    pub(crate) fn walked(self) -> Option<usize> {
        match self {
            Plan::Walk(index) | Plan::WalkChain { chain: index, .. } => Some(index),
            _ => None,
        }
    }

    /// What kind of value each column after the row key of a page row is.
    pub(crate) fn value_kinds(self, query: &SearchQuery) -> Vec<SortValueKind> {
        match (self, self.walked()) {
            (_, Some(index)) => vec![walk_value_kind(query, index)],
            (Plan::Sorted { .. }, None) => query.sort.iter().map(sort_value_kind).collect(),
            _ => Vec::new(),
        }
    }
}

/// The filter a sorted page or a count reads as a set, every other probed per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lead {
    /// Its position in the query's filters.
    pub index: usize,
    /// Whether the set is read whole before the resources (PostgreSQL, a set bounded by its
    /// count or by one resident's record, found by index lookups alone), rather than joined.
    pub whole: bool,
}

/// Below this many matches a sorted page's or a total's lead set is read whole on PostgreSQL
/// ([`lead`]), each row looked up by key, where a semi-join reads the type's every resource
/// (to hash it with the set) or, on stale statistics, probes the set from each of them.
/// `_total=accurate` of 16,310 heart rates among 10x Synthea's 429,290 Observations: 224-260
/// ms read whole against 750-815 as a semi-join on stale statistics, 72-95 ms either way on
/// fresh ones; a dense set (39,481 dates among 42,929 Observations at 1x) costs twice the
/// hash read whole (82 ms against 40), so it stays a semi-join.
pub(crate) const READ_WHOLE: usize = 20_000;

// Fewer matches than `DENSE` are fewer than `READ_WHOLE` (`execute::search` answers one from
// the other).
const _: () = assert!(DENSE <= READ_WHOLE);

/// What the planner asks of the data: whether a count, capped at [`Question::cap`], comes
/// short of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Question {
    /// Does filter `.0` match fewer than [`DENSE`] resources?
    FewMatches(usize),
    /// Does chain `.0` have fewer than [`DENSE`] targets (its inner filter's matches)?
    FewTargets(usize),
    /// Is filter `.0` few enough to read whole: fewer than [`READ_WHOLE`] resources?
    ReadableWhole(usize),
}

impl Question {
    /// How many rows the question's count reads at most: it is answered yes below that.
    pub(crate) fn cap(self) -> usize {
        match self {
            Question::ReadableWhole(_) => READ_WHOLE,
            Question::FewMatches(_) | Question::FewTargets(_) => DENSE,
        }
    }
}

/// Chooses how to read the page of `query` on `dialect`, asking `few` where the choice depends
/// on how many rows match. `InvalidCursor` when the query's cursor cannot belong to it.
///
/// An equality index drives; else a chain, name prefix or date walks (a chain with many targets
/// finding them in order rather than reading them all); a reference that may name several
/// types, or any other sparse filter, is read as a set; `_has` is counted by its referring
/// resources. One patient's compartment is read as a set uncounted.
pub(crate) fn choose(
    query: &SearchQuery,
    dialect: Dialect,
    few: &mut dyn FnMut(Question) -> Result<bool, StoreError>,
) -> Result<Plan, StoreError> {
    check_sort_cursor(query)?;
    if query.count == 0 {
        return Ok(Plan::NoPage);
    }
    if !query.sort.is_empty() {
        return Ok(Plan::Sorted {
            lead: lead(query, dialect, few)?,
        });
    }
    if let Some(index) = walk_to_take(query)? {
        let Filter::Chain { filter: inner, .. } = &query.filters[index] else {
            return Ok(Plan::Walk(index));
        };
        // (On Citus the targets are read whole, however many: `walk::walk_chain_citus`.)
        let targets = if dialect == Dialect::Citus {
            ChainTargets::Read
        } else if settable(inner) && !few(Question::FewTargets(index))? {
            ChainTargets::Found
        } else if settable(inner) && dialect == Dialect::Postgres {
            ChainTargets::OneByOne
        } else {
            ChainTargets::Read
        };
        return Ok(Plan::WalkChain {
            chain: index,
            targets,
        });
    }
    if let Some((rank, index)) = driver(query) {
        // A compartment (`Patient/X/Observation?code=...`: references to one patient by any of
        // the compartment's parameters) is one resident's record, bounded whatever the store's
        // size; a code drives through every resident's rows (driving by a blood-pressure code
        // took 140 ms for a patient's page at 10x Synthea, growing with the store).
        if rank < 4
            && let Some(compartment) = one_target_by_several_params(query)
        {
            return Ok(Plan::Set(compartment));
        }
        // A code or URI index walks every resource with that code (all blood pressures of the
        // region); a reference to one resource under several possible types (`patient=123`)
        // usually names far fewer rows, though not in row order: read it as a set when sparse.
        if rank < 4
            && let Some(reference) = one_target_of_several_types(query)
            && few(Question::FewMatches(reference))?
        {
            return Ok(Plan::Set(reference));
        }
        return Ok(Plan::Drive(index));
    }
    let Some(index) = set_candidate(query) else {
        return Ok(Plan::Scan);
    };
    // One patient's record is a small part of any store: no need to count it.
    if matches!(query.filters[index], Filter::PatientCompartment { .. }) {
        return Ok(Plan::Set(index));
    }
    Ok(if few(Question::FewMatches(index))? {
        Plan::Set(index)
    } else {
        Plan::Scan
    })
}

/// The column a walk along `filter` reads in order, if it can be walked: a date range along
/// `high` when the predicate bounds it from below (`ge`, `gt`, `eq`, `sa`), else along `low`;
/// a name prefix or part along the normalised names; a chain along its targets' row keys.
pub(crate) fn walk_column(filter: &Filter) -> Option<&'static str> {
    match filter {
        Filter::Chain { .. } => Some("rid"),
        Filter::Date { predicate, .. } if !predicate.any_of.is_empty() => {
            Some(if implied_high_bound(predicate).is_some() {
                "high"
            } else {
                "low"
            })
        }
        Filter::String {
            test: StringTest::Prefix(_) | StringTest::Contains(_),
            ..
        } => Some("normalized"),
        _ => None,
    }
}

/// Whether filter `index` of `query` can carry a walk: what a cursor's walk must name.
fn walkable(query: &SearchQuery, index: usize) -> bool {
    query
        .filters
        .get(index)
        .is_some_and(|f| walk_column(f).is_some())
}

/// The filter to walk a page along when nothing drives it: a chain (its targets are usually
/// few), else a name prefix, a date range, a name part, the first of the best kind. None when
/// an exact name is asked for: those are few, and read as a set.
fn walk_candidate(query: &SearchQuery) -> Option<usize> {
    let rank = |filter: &Filter| match filter {
        Filter::Chain { .. } => 4,
        Filter::String {
            test: StringTest::Prefix(_),
            ..
        } => 3,
        Filter::Date { .. } => 2,
        _ => 1,
    };
    let exact = query.filters.iter().any(|f| {
        matches!(
            f,
            Filter::String {
                test: StringTest::Exact(_),
                ..
            }
        )
    });
    (0..query.filters.len())
        .filter(|i| !exact && walkable(query, *i))
        .max_by_key(|i| (rank(&query.filters[*i]), std::cmp::Reverse(*i)))
}

/// The filter an unsorted page walks along, if any. A next page goes on the way the first was
/// read: along the walk its cursor names, or in row order (a drive, set or scan) when its
/// cursor names none. Without a cursor, a walk is taken when no filter can drive.
/// `InvalidCursor` when the cursor names a filter that cannot be walked, or a value of the
/// wrong kind for it.
fn walk_to_take(query: &SearchQuery) -> Result<Option<usize>, StoreError> {
    match query.cursor.as_ref().map(|cursor| cursor.walk.as_ref()) {
        None => Ok(walk_candidate(query).filter(|_| driver(query).is_none())),
        Some(None) => Ok(None),
        Some(Some(walk)) => {
            let kind = match walk.value {
                CursorValue::Integer(_) => Some(SortValueKind::Integer),
                CursorValue::Text(_) => Some(SortValueKind::Text),
                CursorValue::Float(_) | CursorValue::Null => None,
            };
            if walkable(query, walk.filter) && kind == Some(walk_value_kind(query, walk.filter)) {
                Ok(Some(walk.filter))
            } else {
                Err(StoreError::InvalidCursor)
            }
        }
    }
}

/// `InvalidCursor` when a sorted page's cursor carries more values than the sort has keys, or
/// a value of another kind than its key sorts on: a text where a date's instant belongs made
/// PostgreSQL fail the whole request.
fn check_sort_cursor(query: &SearchQuery) -> Result<(), StoreError> {
    let Some(cursor) = &query.cursor else {
        return Ok(());
    };
    if cursor.sort_values.len() > query.sort.len()
        || (!cursor.sort_values.is_empty() && cursor.walk.is_some())
    {
        return Err(StoreError::InvalidCursor);
    }
    for (value, key) in cursor.sort_values.iter().zip(&query.sort) {
        let fits = match value {
            CursorValue::Null => true,
            CursorValue::Integer(_) => sort_value_kind(key) == SortValueKind::Integer,
            CursorValue::Float(f) => f.is_finite() && sort_value_kind(key) == SortValueKind::Float,
            CursorValue::Text(_) => sort_value_kind(key) == SortValueKind::Text,
        };
        if !fits {
            return Err(StoreError::InvalidCursor);
        }
    }
    Ok(())
}

/// What kind of value a walk's cursor carries.
fn walk_value_kind(query: &SearchQuery, index: usize) -> SortValueKind {
    match query.filters.get(index) {
        Some(Filter::Date { .. } | Filter::Chain { .. }) => SortValueKind::Integer,
        _ => SortValueKind::Text,
    }
}

/// How well a filter drives a page: an equality on an index whose rows come back in resource
/// order, so the page is read in order and the read stops when it is full. Zero: it cannot.
fn drive_rank(filter: &Filter) -> u8 {
    match filter {
        Filter::Reference {
            target: ReferenceTarget::Local { types, .. },
            ..
        } if types.len() == 1 => 4,
        Filter::Reference {
            target: ReferenceTarget::Url { .. },
            ..
        } => 4,
        Filter::Token {
            column: TokenColumn::SystemCode,
            ..
        } => 3,
        Filter::Token {
            column: TokenColumn::Code,
            ..
        } => 2,
        Filter::Uri {
            test: UriTest::Equals(_),
            ..
        } => 2,
        Filter::Composite { .. } => 1,
        _ => 0,
    }
}

/// The top-level filter to drive a page from, preferring the most selective kinds: a
/// reference (one patient's data), then a coded value with its system, then a bare code.
/// Answers its rank (4 for a reference, 3 for a code with its system, 2 for a bare code or URI,
/// 1 for a composite) and its position.
fn driver(query: &SearchQuery) -> Option<(u8, usize)> {
    query
        .filters
        .iter()
        .enumerate()
        .map(|(i, f)| (drive_rank(f), i))
        .filter(|(rank, _)| *rank > 0)
        .max_by_key(|(rank, i)| (*rank, std::cmp::Reverse(*i)))
}

/// A reference to one resource that may be of several types (`patient=123` where the
/// parameter targets Patient and Group): one resource's referrers are usually few, but its
/// index rows are not in row order across types, so it cannot drive a page. Read as a set
/// instead when it is sparse.
fn one_target_of_several_types(query: &SearchQuery) -> Option<usize> {
    query.filters.iter().position(|filter| {
        matches!(
            filter,
            Filter::Reference {
                target: ReferenceTarget::Local { types, .. },
                ..
            } if types.len() != 1
        )
    })
}

/// References to one resource by any of several parameters (a compartment), readable as a set.
fn one_target_by_several_params(query: &SearchQuery) -> Option<usize> {
    query.filters.iter().position(|filter| {
        let Filter::AnyOf(members) = filter else {
            return false;
        };
        let mut ids = members.iter().map(|member| match member {
            Filter::Reference {
                target: ReferenceTarget::Local { id, .. },
                ..
            } => Some(id),
            _ => None,
        });
        let Some(Some(first)) = ids.next() else {
            return false;
        };
        ids.all(|id| id == Some(first)) && settable(filter)
    })
}

/// A filter that can be read as a set of resource rows (for a sparse filter, cheaper than
/// checking every resource of the type).
fn set_candidate(query: &SearchQuery) -> Option<usize> {
    query.filters.iter().position(settable)
}

/// The set a sorted page or a count of `query` reads first, and how ([`lead_set`]).
///
/// On PostgreSQL a set found by index lookups alone is read whole (`rid = ANY(ARRAY(...))`)
/// when it is bounded: one resident's record, or counted under [`READ_WHOLE`]. As a semi-join its plan rests
/// on the set's estimated size: on statistics taken before the load, the 1,631 heart rates of
/// `Observation?code=<heart rate>&_total=accurate` were probed from each of the 42,929
/// Observations (143 ms against 12.5 read whole, `EXPLAIN ANALYZE` on the 1x sample). A dense
/// set stays a semi-join: read whole, its 39,481 rows were looked up one by one where fresh
/// statistics hash them (82 ms against 40 for `date=ge2010&_total=accurate`).
pub(crate) fn lead(
    query: &SearchQuery,
    dialect: Dialect,
    few: &mut dyn FnMut(Question) -> Result<bool, StoreError>,
) -> Result<Option<Lead>, StoreError> {
    let Some(index) = lead_set(query) else {
        return Ok(None);
    };
    let filter = &query.filters[index];
    let whole = bounded_set_read_whole(dialect, filter)
        && (matches!(filter, Filter::PatientCompartment { .. })
            || few(Question::ReadableWhole(index))?);
    Ok(Some(Lead { index, whole }))
}

/// Whether a bounded set of [`settable`] `filter` (counted few, or one resident's record) is
/// read whole first on `dialect` rather than as a semi-join: on PostgreSQL, when index lookups
/// alone find it. A join's set (`_has`, chains) costs several lookups a row read whole (50 ms
/// against 10 for `_has` on Synthea), where the semi-join stops early.
pub(crate) fn bounded_set_read_whole(dialect: Dialect, filter: &Filter) -> bool {
    dialect == Dialect::Postgres && set_reads_no_join(filter)
}

/// Whether `filter`'s set is read by index lookups alone (a compartment's references, a
/// code's tokens, a resident's rows by patient key), not joined through other resources
/// (`_has`, chains).
fn set_reads_no_join(filter: &Filter) -> bool {
    match filter {
        Filter::AnyOf(members) => members.iter().all(set_reads_no_join),
        Filter::Has { .. } | Filter::Chain { .. } => false,
        _ => true,
    }
}

/// The filter a sorted page or a count reads as a set: a reference to one resource (one
/// patient's data), else the best filter to drive a page, else the first that is a set.
fn lead_set(query: &SearchQuery) -> Option<usize> {
    one_target_of_several_types(query)
        .or_else(|| driver(query).map(|(_, index)| index))
        .or_else(|| set_candidate(query))
}
