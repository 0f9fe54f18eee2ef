//! Walks: a page read along one filter's index in the order of its value and then the resource
//! key (names, dates), or along a chain's targets, so it ends after its first matches however
//! many there are.

use search::keys::ParamKey;
use search::query::{CursorValue, Filter, SearchQuery};

use crate::Dialect;
use crate::builder::SqlBuilder;
use crate::conditions::{
    RangeColumns, implied_low_ceiling, index_condition, index_table_of, render_range,
};
use crate::filters::{
    chain_targets, live_of_types, probe_end, render_filter, render_probe, render_set,
};
use crate::page::page_conditions;
use crate::plan::{ChainTargets, walk_column};
use crate::sort::bind_cursor_value;
use crate::tables::NARROW_DATE_SPAN;

/// A page read along filter `index`'s index in the order of its value and then the resource
/// key, so it ends after the first rows that match, however many match in all: rows of
/// `rid`, then the value the cursor carries. A resource with several matching index rows is
/// returned once, at the smallest of their values (the `NOT EXISTS`).
///
/// A walk along dates' ends (`high`) has no end of its own: `date=ge2015&date=lt2016` may match
/// a period that began before 2016 and ends at any time, so the last page read every date of
/// the parameter from 2015 on (170 ms for a page of 1,000 on the Synthea sample). When another
/// filter of a single-valued parameter bounds the one row's start (`lt2016`: `low < 2016`), a
/// row spanning at most a day ends by that bound plus a day; the rows that span more are read
/// apart, along their own small index, and the two merged ([`Span`]). Not on Citus, whose
/// walk stays one statement across the shards.
pub(crate) fn walk_page(b: &mut SqlBuilder, query: &SearchQuery, index: usize) {
    let Some(ends_by) = walk_ends_by(query, index, b.dialect) else {
        return walk_rows(b, query, index, Span::Any);
    };
    // Bounded only along `high` (`walk_ends_by`).
    b.push("SELECT rid, high FROM (");
    walk_rows(b, query, index, Span::Narrow(ends_by));
    b.push(") n UNION ALL SELECT rid, high FROM (");
    walk_rows(b, query, index, Span::Wide(ends_by));
    b.push(") w ORDER BY 2, 1 LIMIT ")
        .bind_int(query.count as i64 + 1);
}

/// Which rows of a walk along dates one statement reads.
#[derive(Clone, Copy)]
enum Span {
    Any,
    /// Rows ending by this instant: every row of at most a day that can match.
    Narrow(i64),
    /// Rows ending after it, which can match only if they span more than a day.
    Wide(i64),
}

/// The instant a narrow row of walk `index` must end by to match: the least start bound
/// another filter of the same single-valued parameter sets (`lt`, `le`, `eb`, `eq`), plus a
/// day. None when the walk is not along `high`, or nothing bounds it so.
fn walk_ends_by(query: &SearchQuery, index: usize, dialect: Dialect) -> Option<i64> {
    let walked = &query.filters[index];
    let Filter::Date { param, .. } = walked else {
        return None;
    };
    if dialect == Dialect::Citus || walk_column(walked) != Some("high") {
        return None;
    }
    query
        .filters
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
        .filter_map(|(_, other)| match other {
            Filter::Date {
                param: other,
                predicate,
                single: true,
            } if other == param => implied_low_ceiling(predicate),
            _ => None,
        })
        .min()?
        .checked_add(NARROW_DATE_SPAN)
}

fn walk_rows(b: &mut SqlBuilder, query: &SearchQuery, index: usize, span: Span) {
    let filter = &query.filters[index];
    let (Some(table), Some(column)) = (index_table_of(filter), walk_column(filter)) else {
        unreachable!("a walk is planned only along a walkable filter")
    };
    let table = table.name;
    let same = b.same_resource("r", "d");
    b.push(&format!(
        "SELECT DISTINCT d.rid, d.{column} FROM {table} d JOIN resource r ON {same} WHERE "
    ));
    index_condition(b, filter, "d", false);
    match span {
        Span::Any => {}
        // On PostgreSQL a row comparison: a generic plan estimates `high >= a AND high <= b`
        // at half a percent of the parameter's rows, whatever a and b are, and sorted all of
        // a year's 2,219 rows for a page of ten instead of walking eleven (16 ms against
        // 0.3 ms). A row comparison is estimated by its first column, and bounds the index
        // scan all the same.
        Span::Narrow(ends_by) => match b.dialect {
            Dialect::Sqlite => {
                b.push(&format!(" AND d.{column} <= ")).bind_int(ends_by);
            }
            Dialect::Postgres | Dialect::Citus => {
                let Filter::Date { param, .. } = filter else {
                    unreachable!("only a date walk is bounded")
                };
                b.push(&format!(" AND (d.param, d.{column}) <= ("))
                    .bind_int(param.0)
                    .push(", ")
                    .bind_int(ends_by)
                    .push(")");
            }
        },
        Span::Wide(ends_by) => {
            b.push(&format!(" AND d.{column} > "))
                .bind_int(ends_by)
                .push(&format!(" AND d.low < d.high - {NARROW_DATE_SPAN}"));
        }
    }
    page_conditions(b, query, Some(index), false);
    if let Some(cursor) = &query.cursor
        && let Some(walk) = &cursor.walk
    {
        after_walk_position(b, &format!("d.{column}"), &walk.value, cursor.after_row);
    }
    // The probe states the filter's own columns as index terms (no `+`): the table's key is
    // (rid, param, value, ...), so the probe seeks to the resource's first matching value and
    // looks at one row. Probed by the resource key alone it read every matching row of the
    // resource for each of them: a Patient with 10,000 names made `family=` take 30 s.
    let same = b.same_resource("y", "d");
    b.push(&format!(
        " AND NOT EXISTS (SELECT 1 FROM {table} y WHERE {same} AND "
    ));
    match filter {
        Filter::String { .. } => {
            index_condition(b, filter, "y", false);
            b.push(&format!(" AND y.{column} < d.{column}"));
        }
        // A resource has few dates of one parameter: read them by (rid, param). Stated as
        // index terms, the date bounds would lead SQLite to the (param, high) index instead.
        // PostgreSQL's value indexes lead with `param` instead: marked there, it keeps them
        // out of the probe (`SqlBuilder::probe_mark`).
        Filter::Date {
            param, predicate, ..
        } => {
            let plus = b.probe_mark("high");
            let param_mark = match b.dialect {
                Dialect::Postgres | Dialect::Citus => b.probe_mark("param"),
                Dialect::Sqlite => "",
            };
            b.push(&format!("{param_mark}y.param = "))
                .bind_int(param.0)
                .push(" AND ");
            render_range(
                b,
                predicate,
                &RangeColumns::new(
                    &format!("{plus}y.low"),
                    &format!("{plus}y.high"),
                    &format!("{plus}y.value"),
                ),
            );
            b.push(&format!(" AND {plus}y.{column} < d.{column}"));
        }
        _ => unreachable!("a walk's own probe is over names or dates"),
    }
    b.push(probe_end(b.dialect));
    b.push(&format!(" ORDER BY d.{column}, d.rid LIMIT "))
        .bind_int(query.count as i64 + 1);
}

/// ` AND (value_column, d.rid) > (value, row)`, spelt out: the rows after a walk's cursor, when
/// the page is ordered by `value_column` and then the walked row `d.rid`.
fn after_walk_position(b: &mut SqlBuilder, value_column: &str, value: &CursorValue, row: i64) {
    // The bound `>=` first, an index term on its own: the OR after it is not one, and a
    // planner with statistics of an empty store read the walk's index from its start for
    // every next page (72 ms for the tenth page of ten at 1x Synthea).
    b.push(&format!(" AND {value_column} >= "));
    bind_cursor_value(b, value);
    b.push(&format!(" AND ({value_column} > "));
    bind_cursor_value(b, value);
    b.push(&format!(" OR ({value_column} = "));
    bind_cursor_value(b, value);
    b.push(" AND d.rid > ").bind_int(row).push("))");
}

/// A chain walked along its targets: the targets the inner filter finds, in row order, and for
/// each the resources pointing at it, in row order; the page ends once it is full, however
/// many targets there are. A resource pointing at several targets comes with the first.
///
/// SQLite keeps the `CROSS JOIN` order and reads both loops in row order, so the `ORDER BY` is
/// answered without sorting. PostgreSQL sorts a join's output rather than trust the loop
/// order (every referrer of 1,200 targets, 412 ms, for one page at 10x Synthea): it reads a
/// page per target instead, and stops after as many targets as the page has rows.
///
/// The targets are read as a set when few, or, when many ([`ChainTargets::Found`]), found by reading the target type's
/// resources in order and probing the inner filter on each: half the region's patients need
/// not be read to find the first with observations.
pub(crate) fn walk_chain(b: &mut SqlBuilder, query: &SearchQuery, index: usize, how: ChainTargets) {
    let (param, target_types, inner) = chain_at(query, index);
    let dense = how == ChainTargets::Found;
    let after = query.cursor.as_ref().and_then(|cursor| {
        cursor
            .walk
            .as_ref()
            .map(|walk| (walk.value.clone(), cursor.after_row))
    });
    let targets = |b: &mut SqlBuilder| {
        if dense {
            render_probe(b, inner, "t");
        } else {
            render_filter(b, inner, "t");
        }
        live_of_types(b, "t", target_types);
    };
    // The target row's own conditions, its inner filter known to hold.
    let targets_of_row = |b: &mut SqlBuilder| {
        b.push("1 = 1");
        live_of_types(b, "t", target_types);
    };
    let referrers = |b: &mut SqlBuilder| {
        b.push(" AND d.param = ").bind_int(param.0);
        b.push(" AND d.target_id = t.id AND d.target_type = t.type");
        page_conditions(b, query, Some(index), false);
        // Each resource once, at its first reference to a matching target: none to a target
        // of a smaller key, none earlier to the same one. (`DISTINCT` would do the second, but
        // costs SQLite a sort of every match.)
        let same = b.same_resource("y", "d");
        b.push(&format!(
            " AND NOT EXISTS (SELECT 1 FROM idx_reference y CROSS JOIN resource u \
             WHERE {same} AND y.param = d.param AND u.type = y.target_type \
             AND u.id = y.target_id AND (u.rid < t.rid OR (u.rid = t.rid AND y.seq < d.seq))"
        ));
        live_of_types(b, "u", target_types);
        b.push(" AND ");
        render_probe(b, inner, "u");
        b.push(probe_end(b.dialect));
    };
    let limit = query.count as i64 + 1;
    match b.dialect {
        Dialect::Citus => walk_chain_citus(b, query, index, after, limit),
        Dialect::Sqlite => {
            let same = b.same_resource("r", "d");
            b.push(&format!(
                "SELECT d.rid, t.rid FROM resource t CROSS JOIN idx_reference d \
                 CROSS JOIN resource r WHERE {same} AND "
            ));
            targets(b);
            referrers(b);
            if let Some((value, row)) = &after {
                after_walk_position(b, "t.rid", value, *row);
            }
            b.push(" ORDER BY t.rid, d.rid LIMIT ").bind_int(limit);
        }
        Dialect::Postgres => {
            if how == ChainTargets::OneByOne {
                return walk_few_targets_postgres(
                    b,
                    inner,
                    after,
                    limit,
                    &targets_of_row,
                    &referrers,
                );
            }
            // Each target's first referrers as one ordered array, the first targets that have
            // any (a page needs no more targets than rows), then those arrays in order: the
            // final sort is of at most (page + 1)² rows, and nothing sorts every referrer.
            // Few targets are read and sorted first, in a subquery, so that only the page's
            // first ones are joined (beside the LIMIT, the planner, expecting one target,
            // joined all 300 of a family name at 100x and sorted after: 37 ms). Many targets
            // sit beside the LIMIT, so they are read in order (in a subquery, the planner read
            // and sorted all 1,200 patients of a gender at 10x: 4 ms).
            let targets_where = |b: &mut SqlBuilder| {
                targets(b);
                if let Some((value, _)) = &after {
                    b.push(" AND t.rid >= ");
                    bind_cursor_value(b, value);
                }
            };
            b.push("SELECT u.rid, q.target FROM (SELECT t.rid AS target, w.rids FROM ");
            if dense {
                b.push("resource t");
            } else {
                b.push("(SELECT t.rid, t.type, t.id FROM resource t WHERE ");
                targets_where(b);
                b.push(" ORDER BY t.rid) t");
            }
            b.push(" CROSS JOIN LATERAL ");
            first_referrers(b, &after, limit, &referrers);
            b.push(" w WHERE ");
            if dense {
                targets_where(b);
                b.push(" AND ");
            }
            b.push("w.rids IS NOT NULL ORDER BY t.rid LIMIT ")
                .bind_int(limit);
            b.push(
                ") q CROSS JOIN LATERAL unnest(q.rids) WITH ORDINALITY AS u(rid, k) \
                 ORDER BY q.target, u.k LIMIT ",
            )
            .bind_int(limit);
        }
    }
}

/// The parameter, target types and inner filter of chain `index`, which a walk goes along.
fn chain_at(query: &SearchQuery, index: usize) -> (ParamKey, &[Box<str>], &Filter) {
    let Filter::Chain {
        param,
        target_types,
        filter,
    } = &query.filters[index]
    else {
        unreachable!("a chain's walk is planned along a chain")
    };
    (*param, target_types, filter)
}

/// A chain's walk on Citus: its targets computed first ([`chain_targets`]: they may be any
/// resident's, on any shard), joined to their referrers, each referrer once at its first target
/// (`min`, grouped by the referrer and its key, so each shard groups its own rows), then the
/// page in the order the other dialects give. The targets are read whole, however many, and so
/// are their referrers: the page is the first of them all. (Kept at its first target by a probe
/// of the targets per referrer instead, as the other dialects do, a chain to 4,769 Encounters
/// read the targets' intermediate result once per referrer: 5.0 s a page at 1x Synthea, 108 ms
/// grouped.)
fn walk_chain_citus(
    b: &mut SqlBuilder,
    query: &SearchQuery,
    index: usize,
    after: Option<(CursorValue, i64)>,
    limit: i64,
) {
    let (param, target_types, inner) = chain_at(query, index);
    let targets = chain_targets(b, target_types, inner);
    let same = b.same_resource("r", "d");
    b.push(&format!(
        "SELECT d.rid, d.target FROM (SELECT d.rid, min(t.rid) AS target FROM {targets} t \
         CROSS JOIN idx_reference d CROSS JOIN resource r WHERE {same} AND d.param = "
    ));
    b.bind_int(param.0);
    b.push(" AND d.target_id = t.id AND d.target_type = t.type");
    page_conditions(b, query, Some(index), false);
    b.push(" GROUP BY d.patient_key, d.rid) d WHERE 1 = 1");
    if let Some((value, row)) = &after {
        after_walk_position(b, "d.target", value, *row);
    }
    b.push(" ORDER BY d.target, d.rid LIMIT ").bind_int(limit);
}

/// Target `t`'s first `limit` referrers after the cursor, as one ordered array `rids` (PostgreSQL;
/// both ways of walking a chain's targets join it per target).
fn first_referrers(
    b: &mut SqlBuilder,
    after: &Option<(CursorValue, i64)>,
    limit: i64,
    referrers: &dyn Fn(&mut SqlBuilder),
) {
    b.push(
        "(SELECT array_agg(p.rid ORDER BY p.rid) AS rids \
         FROM (SELECT d.rid FROM idx_reference d JOIN resource r ON r.rid = d.rid WHERE 1 = 1",
    );
    referrers(b);
    if let Some((value, row)) = after {
        b.push(" AND (t.rid > ");
        bind_cursor_value(b, value);
        b.push(" OR d.rid > ").bind_int(*row).push(")");
    }
    b.push(" ORDER BY d.rid LIMIT ").bind_int(limit);
    b.push(") p)");
}

/// A chain's walk on PostgreSQL over few targets: their row keys as one sorted array, then a
/// recursive query that takes them one by one, each with its first referrers, and stops as soon
/// as the page is full. The page costs what its first targets cost, however many match: 0.49 ms
/// for a family name's 300 targets at 100x Synthea, 0.43 ms for its 3 at 1x (joining the first
/// page-size of targets took 3.5 ms at 100x, 0.8 at 1x). A target the array names but that is
/// deleted or of another type contributes nothing and the walk goes on.
fn walk_few_targets_postgres(
    b: &mut SqlBuilder,
    inner: &Filter,
    after: Option<(CursorValue, i64)>,
    limit: i64,
    targets_of_row: &dyn Fn(&mut SqlBuilder),
    referrers: &dyn Fn(&mut SqlBuilder),
) {
    b.push("WITH RECURSIVE ts AS MATERIALIZED (SELECT array_agg(DISTINCT s.rid ORDER BY s.rid) AS rids FROM (");
    render_set(b, inner);
    b.push(") s");
    if let Some((value, _)) = &after {
        b.push(" WHERE s.rid >= ");
        bind_cursor_value(b, value);
    }
    b.push(
        "), walk AS (SELECT 0 AS n, 0::bigint AS total, NULL::bigint AS target, NULL::bigint[] AS rids \
         UNION ALL SELECT walk.n + 1, walk.total + coalesce(cardinality(w.rids), 0), t.rid, w.rids \
         FROM walk CROSS JOIN ts LEFT JOIN LATERAL (SELECT t.rid, t.type, t.id FROM resource t \
         WHERE t.rid = ts.rids[walk.n + 1] AND ",
    );
    targets_of_row(b);
    b.push(") t ON true LEFT JOIN LATERAL ");
    first_referrers(b, &after, limit, referrers);
    b.push(" w ON true WHERE walk.total < ").bind_int(limit);
    b.push(
        " AND walk.n < coalesce(cardinality(ts.rids), 0)) \
         SELECT u.rid, walk.target FROM walk CROSS JOIN LATERAL unnest(walk.rids) WITH ORDINALITY AS u(rid, k) \
         ORDER BY walk.target, u.k LIMIT ",
    )
    .bind_int(limit);
}
