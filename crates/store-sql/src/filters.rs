//! Filters as conditions on a resource row: read as a set of rows (`rid IN (SELECT ...)`),
//! probed per row (`EXISTS (...)`, which reads only the row's own index rows), or correlated
//! (chains, `_has`, a patient's compartment).

use search::query::Filter;

use crate::Dialect;
use crate::builder::{DELETED, SqlBuilder};
use crate::conditions::{RangeColumns, index_condition, index_table_of, render_range};
use crate::tables;

/// Writes the non-empty OR (`AnyOf`) or AND (`AllOf`) of `filters`, each written by `render`.
fn render_junction(
    b: &mut SqlBuilder,
    junction: &Filter,
    filters: &[Filter],
    alias: &str,
    render: fn(&mut SqlBuilder, &Filter, &str),
) {
    let joiner = if matches!(junction, Filter::AnyOf(_)) {
        " OR "
    } else {
        " AND "
    };
    b.push("(");
    for (i, f) in filters.iter().enumerate() {
        if i > 0 {
            b.push(joiner);
        }
        render(b, f, alias);
    }
    b.push(")");
}

/// Writes a boolean condition saying that the resource row `alias` satisfies `filter`.
pub(crate) fn render_filter(b: &mut SqlBuilder, filter: &Filter, alias: &str) {
    match filter {
        Filter::AnyOf(filters) | Filter::AllOf(filters) if filters.is_empty() => {
            // An empty OR is false, an empty AND true.
            b.push(if matches!(filter, Filter::AnyOf(_)) {
                "1 = 0"
            } else {
                "1 = 1"
            });
        }
        Filter::AnyOf(filters) | Filter::AllOf(filters) => {
            render_junction(b, filter, filters, alias, render_filter);
        }
        Filter::Not(inner) => {
            b.push("NOT (");
            render_filter(b, inner, alias);
            b.push(")");
        }
        Filter::Id(ids) => {
            b.push(&format!("{alias}.id IN "));
            b.bind_text_list(ids);
        }
        Filter::LastUpdated(predicate) => {
            render_range(
                b,
                predicate,
                &RangeColumns::same(&format!("{alias}.last_updated")),
            );
        }
        Filter::Token { .. }
        | Filter::String { .. }
        | Filter::Date { .. }
        | Filter::Number { .. }
        | Filter::Quantity { .. }
        | Filter::Reference { .. }
        | Filter::Uri { .. }
        | Filter::Composite { .. } => {
            b.push(&format!("{alias}.rid IN ("));
            render_set(b, filter);
            b.push(")");
        }
        Filter::Missing {
            param,
            table,
            missing,
        } => {
            let keyword = if *missing { "NOT EXISTS" } else { "EXISTS" };
            let table = tables::index_table(*table).name;
            let same = b.same_resource("m", alias);
            b.push(&format!(
                "{keyword} (SELECT 1 FROM {table} m WHERE {same} AND m.param = "
            ));
            // A probe of the row's own index rows, kept one (PostgreSQL otherwise hashed every
            // row of the parameter, over a table without an index that leads with it: 760 ms
            // before the first consent was checked).
            let end = probe_end(b.dialect);
            b.bind_int(param.0).push(end);
        }
        Filter::Chain { .. } | Filter::Has { .. } | Filter::PatientCompartment { .. } => {
            b.push(&format!("{alias}.rid IN ("));
            render_set(b, filter);
            b.push(")");
        }
        Filter::Custodian(custodians) => {
            b.push(&format!("{alias}.custodian IN "));
            b.bind_text_list(custodians);
        }
        Filter::OfType(types) => {
            b.push(&format!("{alias}.type IN "));
            b.bind_text_list(types);
        }
        Filter::Unrestricted => {
            b.push(&format!("{alias}.sensitivity = 0"));
        }
        Filter::CompartmentGrant {
            source_type,
            filter,
            class_param,
            link,
        } => render_compartment_grant(b, source_type, filter, *class_param, *link, alias),
        Filter::ResidentCompartment { id, link } => {
            b.push(&format!("{alias}.patient_key IN (SELECT "));
            b.bind_int(search::PatientKey::of_patient(id).0);
            b.push(" UNION ");
            b.push(
                "SELECT pt.patient_key FROM idx_reference la CROSS JOIN idx_reference lb \
                 CROSS JOIN resource pt WHERE la.param = ",
            );
            b.bind_int(link.0);
            b.push(" AND la.target_type = 'Patient' AND la.target_id = ");
            b.bind_text(id);
            let same = b.same_resource("lb", "la");
            b.push(&format!(" AND {same} AND lb.param = "));
            b.bind_int(link.0);
            b.push(
                " AND lb.target_type = 'Patient' AND pt.type = 'Patient' AND pt.id = lb.target_id \
                 AND pt.patient_key <> 0)",
            );
        }
    }
}

/// [`Filter::CompartmentGrant`] on resource row `alias`: the patient's resources of the source
/// type (`resource_patient_type`) probed one by one, and only when none grants, those of the
/// registrations one Person links with the patient. Each source is probed on its own index
/// rows, the grant's filter first (its actor is the selective part).
fn render_compartment_grant(
    b: &mut SqlBuilder,
    source_type: &str,
    filter: &Filter,
    class_param: search::ParamKey,
    link: Option<search::ParamKey>,
    alias: &str,
) {
    // The conditions on one source row `grant`, after its patient key is stated.
    let grants = |b: &mut SqlBuilder, grant: &str| {
        let class = b.fresh_alias("k");
        b.push(&format!(" AND {grant}.type = "));
        b.bind_text(source_type);
        b.push(&format!(" AND {grant}.method <> {DELETED} AND "));
        render_probe(b, filter, grant);
        let same = b.same_resource(&class, grant);
        b.push(&format!(
            " AND ({alias}.sensitivity & ~{grant}.sensitivity) = 0 \
             AND (NOT EXISTS (SELECT 1 FROM idx_token {class} WHERE {same} AND {class}.param = "
        ));
        b.bind_int(class_param.0);
        b.push(&format!(
            ") OR EXISTS (SELECT 1 FROM idx_token {class} WHERE {same} AND {class}.param = "
        ));
        b.bind_int(class_param.0);
        b.push(&format!(" AND {class}.code = {alias}.type))"));
    };
    let grant = b.fresh_alias("g");
    let (in_compartment, grant_in_compartment) =
        (b.in_compartment(alias), b.in_compartment(&grant));
    b.push(&format!(
        "({in_compartment} AND (EXISTS (SELECT 1 FROM resource {grant} \
         WHERE {grant}.patient_key = {alias}.patient_key AND {grant_in_compartment}"
    ));
    grants(b, &grant);
    b.push(probe_end(b.dialect));
    if let Some(link) = link
        && b.dialect == Dialect::Citus
    {
        let linked = linked_grants(b, source_type, filter, class_param, link);
        let lg = b.fresh_alias("lg");
        b.push(&format!(
            " OR EXISTS (SELECT 1 FROM {linked} {lg} WHERE {lg}.patient_key = {alias}.patient_key \
             AND ({alias}.sensitivity & ~{lg}.sensitivity) = 0 \
             AND (cardinality({lg}.classes) = 0 OR {alias}.type = ANY ({lg}.classes)))"
        ));
    } else if let Some(link) = link {
        // The registrations one Person links with the patient, and their sources. (`<> 0`
        // repeats the partial index's condition, which SQLite does not infer: without it every
        // row a clinician may not see scanned the region's Patients, 2 ms a row.)
        let (own, la, lb, other, grant) = (
            b.fresh_alias("p"),
            b.fresh_alias("la"),
            b.fresh_alias("lb"),
            b.fresh_alias("p"),
            b.fresh_alias("g"),
        );
        b.push(&format!(
            " OR EXISTS (SELECT 1 FROM resource {own} CROSS JOIN idx_reference {la} \
             CROSS JOIN idx_reference {lb} CROSS JOIN resource {other} CROSS JOIN resource {grant} \
             WHERE {own}.patient_key = {alias}.patient_key AND {own}.patient_key <> 0 \
             AND {own}.type = 'Patient' AND {la}.param = "
        ));
        b.bind_int(link.0);
        let same = b.same_resource(&lb, &la);
        b.push(&format!(
            " AND {la}.target_type = 'Patient' AND {la}.target_id = {own}.id \
             AND {same} AND {lb}.param = "
        ));
        b.bind_int(link.0);
        b.push(&format!(
            " AND {lb}.target_type = 'Patient' AND {other}.type = 'Patient' \
             AND {other}.id = {lb}.target_id AND {other}.patient_key <> 0 \
             AND {other}.patient_key <> {alias}.patient_key \
             AND {grant}.patient_key = {other}.patient_key"
        ));
        grants(b, &grant);
        b.push(probe_end(b.dialect));
    }
    b.push("))");
}

/// On Citus, the grants of [`Filter::CompartmentGrant`] that reach a patient through another
/// registration one Person links with it, as statements computed first; answers the name of
/// the last, whose rows are the patient's key, the grant's sensitivities and the classes it is
/// limited to (none: every class). The Person's link rows, the other registration and its
/// grant are each on a shard of their own, which no probe of one shard can reach; each step is
/// one statement over one table's shards, joined to the step before as an intermediate result.
fn linked_grants(
    b: &mut SqlBuilder,
    source_type: &str,
    filter: &Filter,
    class_param: search::ParamKey,
    link: search::ParamKey,
) -> String {
    // Every grant of the source type that holds for the caller, on any patient.
    let grants = b.materialized("grants", |b| {
        let (grant, class) = (b.fresh_alias("g"), b.fresh_alias("k"));
        let same = b.same_resource(&class, &grant);
        b.push(&format!(
            "SELECT {grant}.patient_key, {grant}.sensitivity, ARRAY(SELECT {class}.code \
             FROM idx_token {class} WHERE {same} AND {class}.param = "
        ));
        b.bind_int(class_param.0);
        b.push(&format!(
            ") AS classes FROM resource {grant} WHERE {grant}.patient_key > 0 AND {grant}.type = "
        ));
        b.bind_text(source_type);
        b.push(&format!(" AND {grant}.method <> {DELETED} AND "));
        render_probe(b, filter, &grant);
    });
    // The registrations those grants are on.
    let granting = b.materialized("granting", |b| {
        b.push(&format!(
            "SELECT p.patient_key, p.id FROM resource p WHERE p.type = 'Patient' \
             AND p.patient_key IN (SELECT patient_key FROM {grants})"
        ));
    });
    // The Persons' links from another registration to one of those.
    let links = b.materialized("links", |b| {
        let same = b.same_resource("lb", "la");
        b.push(&format!(
            "SELECT la.target_id AS own_id, lb.target_id AS other_id \
             FROM idx_reference la CROSS JOIN idx_reference lb WHERE {same} AND la.param = "
        ));
        b.bind_int(link.0);
        b.push(" AND la.target_type = 'Patient' AND lb.param = ");
        b.bind_int(link.0);
        b.push(&format!(
            " AND lb.target_type = 'Patient' AND lb.target_id IN (SELECT id FROM {granting})"
        ));
    });
    b.materialized("linked", |b| {
        b.push(&format!(
            "SELECT own.patient_key, g.sensitivity, g.classes FROM {links} l \
             CROSS JOIN resource own CROSS JOIN {granting} o CROSS JOIN {grants} g \
             WHERE own.type = 'Patient' AND own.id = l.own_id AND own.patient_key <> 0 \
             AND o.id = l.other_id AND o.patient_key <> own.patient_key \
             AND g.patient_key = o.patient_key"
        ));
    })
}

/// Whether a filter can be written as a set of resource rows.
pub(crate) fn settable(filter: &Filter) -> bool {
    match filter {
        Filter::AnyOf(inner) => !inner.is_empty() && inner.iter().all(settable),
        Filter::Chain { .. } | Filter::Has { .. } | Filter::PatientCompartment { .. } => true,
        other => index_table_of(other).is_some(),
    }
}

/// Writes a `SELECT` of the resource rows that satisfy a [`settable`] filter.
pub(crate) fn render_set(b: &mut SqlBuilder, filter: &Filter) {
    match filter {
        Filter::AnyOf(inner) => {
            for (i, f) in inner.iter().enumerate() {
                if i > 0 {
                    b.push(" UNION ");
                }
                render_set(b, f);
            }
        }
        // Chains and reverse chains start from the inner filter's (usually few) resources and
        // follow references from there. SQLite keeps a CROSS JOIN's order, so the plan does not
        // depend on statistics; PostgreSQL plans the same text with its own.
        Filter::Chain {
            param,
            target_types,
            filter,
        } => {
            let reference = b.fresh_alias("ref");
            let target = b.fresh_alias("t");
            if b.dialect == Dialect::Citus {
                let targets = chain_targets(b, target_types, filter);
                b.push(&format!(
                    "SELECT {reference}.rid FROM {targets} {target} CROSS JOIN idx_reference {reference} WHERE "
                ));
            } else {
                b.push(&format!(
                    "SELECT {reference}.rid FROM resource {target} CROSS JOIN idx_reference {reference} WHERE "
                ));
                render_filter(b, filter, &target);
                live_of_types(b, &target, target_types);
                b.push(" AND ");
            }
            b.push(&format!("{reference}.param = ")).bind_int(param.0);
            b.push(&format!(
                " AND {reference}.target_id = {target}.id AND {reference}.target_type = {target}.type"
            ));
        }
        Filter::Has {
            source_type,
            param,
            filter,
        } if b.dialect == Dialect::Citus => {
            let targets = has_targets(b, source_type, *param, filter);
            let (pointed, target) = (b.fresh_alias("h"), b.fresh_alias("t"));
            b.push(&format!(
                "SELECT {target}.rid FROM {targets} {pointed} CROSS JOIN resource {target} \
                 WHERE {target}.type = {pointed}.target_type AND {target}.id = {pointed}.target_id \
                 AND {target}.method <> {DELETED}"
            ));
        }
        Filter::Has {
            source_type,
            param,
            filter,
        } => {
            let reference = b.fresh_alias("ref");
            let source = b.fresh_alias("s");
            let target = b.fresh_alias("t");
            if settable(filter) {
                // The referring resources stream from their set, so a count that stops after
                // a few thousand rows reads a few thousand: `s.rid IN (SELECT ...)` would have
                // SQLite materialise the whole set first.
                let inner = b.fresh_alias("src");
                b.push(&format!("SELECT {target}.rid FROM ("));
                render_set(b, filter);
                b.push(&format!(
                    ") {inner} CROSS JOIN resource {source} CROSS JOIN idx_reference {reference} \
                     CROSS JOIN resource {target} WHERE {source}.rid = {inner}.rid"
                ));
            } else {
                b.push(&format!(
                    "SELECT {target}.rid FROM resource {source} CROSS JOIN idx_reference {reference} \
                     CROSS JOIN resource {target} WHERE "
                ));
                render_filter(b, filter, &source);
            }
            b.push(&format!(" AND {source}.type = "))
                .bind_text(source_type);
            b.push(&format!(" AND {source}.method <> {DELETED}"));
            // A referrer the caller may not see must not reveal that it exists.
            b.visible(&source);
            let same = b.same_resource(&reference, &source);
            b.push(&format!(" AND {same} AND {reference}.param = "));
            b.bind_int(param.0);
            b.push(&format!(
                " AND {target}.type = {reference}.target_type AND {target}.id = {reference}.target_id \
                 AND {target}.method <> {DELETED}"
            ));
        }
        Filter::PatientCompartment { id, key, params } => {
            // `patient_key <> 0` repeats the partial index's condition: SQLite uses a partial
            // index only when the query states its condition, and does not infer it from
            // `patient_key = ?` (without it every $everything page scanned the resource table).
            b.push("SELECT rid FROM resource WHERE patient_key = ")
                .bind_int(key.0);
            b.push(" AND patient_key <> 0");
            b.push(" UNION SELECT rid FROM resource WHERE type = 'Patient' AND id = ")
                .bind_text(id);
            b.push(" UNION SELECT rid FROM idx_reference WHERE target_type = 'Patient' AND target_id = ");
            b.bind_text(id);
            b.push(" AND param IN ");
            b.bind_int_list(&params.iter().map(|p| p.0).collect::<Vec<_>>());
        }
        other => {
            let table = index_table_of(other).expect("a settable filter").name;
            b.push(&format!("SELECT x.rid FROM {table} x WHERE "));
            index_condition(b, other, "x", false);
        }
    }
}

/// A chain, `_has` or compartment filter checked against one resource row.
fn render_correlated(b: &mut SqlBuilder, filter: &Filter, alias: &str) {
    match filter {
        Filter::Has {
            source_type,
            param,
            filter,
        } if b.dialect == Dialect::Citus => {
            let targets = has_targets(b, source_type, *param, filter);
            b.push(&format!(
                "({alias}.type, {alias}.id) IN (SELECT target_type, target_id FROM {targets})"
            ));
        }
        Filter::Has {
            source_type,
            param,
            filter,
        } => {
            let reference = b.fresh_alias("ref");
            // (Only when the caller sees every referrer: otherwise its row must be read to ask.)
            if reads_only_index_rows(filter) && b.sees_all() {
                // The referring resource's own row adds nothing: the parameter's key is its
                // type's, and only current, undeleted resources have index rows. Probing the
                // inner filter on the reference's row key halves the lookups per referrer.
                b.push(&format!(
                    "EXISTS (SELECT 1 FROM idx_reference {reference} WHERE {reference}.param = "
                ));
                b.bind_int(param.0);
                b.push(&format!(
                    " AND {reference}.target_type = {alias}.type AND {reference}.target_id = {alias}.id AND "
                ));
                render_probe(b, filter, &reference);
                b.push(probe_end(b.dialect));
                return;
            }
            let source = b.fresh_alias("s");
            let same = b.same_resource(&source, &reference);
            b.push(&format!(
                "EXISTS (SELECT 1 FROM idx_reference {reference} JOIN resource {source} ON {same} \
                 WHERE {reference}.param = "
            ));
            b.bind_int(param.0);
            b.push(&format!(
                " AND {reference}.target_type = {alias}.type AND {reference}.target_id = {alias}.id AND {source}.type = "
            ));
            b.bind_text(source_type);
            b.push(&format!(" AND {source}.method <> {DELETED}"));
            b.visible(&source);
            b.push(" AND ");
            // Probed on each referring resource: as a set (`IN (SELECT ...)`) the inner filter
            // was materialised whole for every search, every heart rate of the region to check
            // a page of twenty patients.
            render_probe(b, filter, &source);
            b.push(probe_end(b.dialect));
        }
        Filter::Chain {
            param,
            target_types,
            filter,
        } => {
            // The row's own references of the parameter, each target probed: as a set the
            // chain was every referrer of every matching target (all observations of every
            // Smith in the region) to check one page.
            let reference = b.fresh_alias("ref");
            let target = b.fresh_alias("t");
            let same = b.same_resource(&reference, alias);
            let targets = match b.dialect {
                Dialect::Citus => chain_targets(b, target_types, filter),
                Dialect::Sqlite | Dialect::Postgres => "resource".to_owned(),
            };
            b.push(&format!(
                "EXISTS (SELECT 1 FROM idx_reference {reference} CROSS JOIN {targets} {target} \
                 WHERE {same} AND {reference}.param = "
            ));
            b.bind_int(param.0);
            b.push(&format!(
                " AND {target}.type = {reference}.target_type AND {target}.id = {reference}.target_id"
            ));
            if b.dialect != Dialect::Citus {
                live_of_types(b, &target, target_types);
                b.push(" AND ");
                render_probe(b, filter, &target);
            }
            b.push(probe_end(b.dialect));
        }
        Filter::PatientCompartment { id, key, params } => {
            b.push(&format!("({alias}.patient_key = "));
            b.bind_int(key.0);
            b.push(&format!(" OR ({alias}.type = 'Patient' AND {alias}.id = "));
            b.bind_text(id);
            b.push(&format!(
                ") OR EXISTS (SELECT 1 FROM idx_reference pc WHERE {} AND pc.target_type = 'Patient' AND pc.target_id = ",
                b.same_resource("pc", alias)
            ));
            b.bind_text(id);
            b.push(" AND pc.param IN ");
            b.bind_int_list(&params.iter().map(|p| p.0).collect::<Vec<_>>());
            b.push("))");
        }
        other => render_filter(b, other, alias),
    }
}

/// Whether `filter`, probed on a row, reads only index rows by the row key (and so can be
/// probed on any table's `rid`, not only a resource row's).
fn reads_only_index_rows(filter: &Filter) -> bool {
    match filter {
        Filter::AnyOf(inner) | Filter::AllOf(inner) => inner.iter().all(reads_only_index_rows),
        Filter::Not(inner) => reads_only_index_rows(inner),
        Filter::Missing { .. } => true,
        other => index_table_of(other).is_some(),
    }
}

/// Writes `filter` as a condition checked row by row against resource row `alias`: index
/// filters look up the resource's own index rows instead of materialising every match.
pub(crate) fn render_probe(b: &mut SqlBuilder, filter: &Filter, alias: &str) {
    match filter {
        Filter::AnyOf(filters) | Filter::AllOf(filters) if !filters.is_empty() => {
            render_junction(b, filter, filters, alias, render_probe);
        }
        Filter::Not(inner) => {
            b.push("NOT (");
            render_probe(b, inner, alias);
            b.push(")");
        }
        _ => match index_table_of(filter).map(|table| table.name) {
            Some(table) => {
                let same = b.same_resource("x", alias);
                b.push(&format!(
                    "EXISTS (SELECT 1 FROM {table} x WHERE {same} AND "
                ));
                index_condition(b, filter, "x", true);
                b.push(probe_end(b.dialect));
            }
            None => render_correlated(b, filter, alias),
        },
    }
}

/// The end of a probe's `EXISTS (...)`, which keeps it a subquery run per row, the plan
/// `execute` chose. PostgreSQL turns an EXISTS into a semi-join and may then hash every row
/// the probe could match (every observation with a code, to check twenty patients: 180 ms
/// for `_has` at 10x Synthea, 8.6 ms with `OFFSET 0`). SQLite (since 3.47) turns it into a
/// join it may place last: a chain walk checked each patient's gender after reading all of
/// its observations (1.5 ms a page at 100x Synthea, 0.02 ms with `LIMIT 1`).
pub(crate) fn probe_end(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => " LIMIT 1)",
        Dialect::Postgres | Dialect::Citus => " OFFSET 0)",
    }
}

/// On Citus, a chain's targets (`rid`, `type`, `id` of every live resource of `target_types`
/// the caller may see that matches `filter`) as a statement computed first; answers its name.
///
/// A chain joins a resident's reference rows to their targets by `(type, id)`, and the target
/// may be any resident's, on any shard; Citus runs no join or correlated probe between shards
/// that is not on the patient key. Computed first, the targets reach every shard as an
/// intermediate result, which joins on any column. The price is reading every target (all of a
/// family name's patients) where one PostgreSQL probes a page's references one by one.
pub(crate) fn chain_targets(
    b: &mut SqlBuilder,
    target_types: &[Box<str>],
    filter: &Filter,
) -> String {
    b.materialized("targets", |b| {
        let target = b.fresh_alias("t");
        b.push(&format!(
            "SELECT {target}.rid, {target}.type, {target}.id FROM resource {target} WHERE "
        ));
        render_filter(b, filter, &target);
        live_of_types(b, &target, target_types);
    })
}

/// On Citus, what a reverse chain's referrers point at (`target_type`, `target_id` of each
/// reference of parameter `param` from a live resource of `source_type` the caller may see that
/// matches `filter`) as a statement computed first; answers its name. As for
/// [`chain_targets`]: the referrers may be any resident's, on any shard.
fn has_targets(
    b: &mut SqlBuilder,
    source_type: &str,
    param: search::ParamKey,
    filter: &Filter,
) -> String {
    b.materialized("pointed", |b| {
        let (source, reference) = (b.fresh_alias("s"), b.fresh_alias("ref"));
        let same = b.same_resource(&reference, &source);
        b.push(&format!(
            "SELECT DISTINCT {reference}.target_type, {reference}.target_id \
             FROM resource {source} CROSS JOIN idx_reference {reference} WHERE {same} \
             AND {reference}.param = "
        ));
        b.bind_int(param.0);
        b.push(&format!(" AND {source}.type = "))
            .bind_text(source_type);
        b.push(&format!(" AND {source}.method <> {DELETED}"));
        b.visible(&source);
        b.push(" AND ");
        render_filter(b, filter, &source);
    })
}

/// ` AND alias.method <> DELETED AND alias.type IN (types)`: a live resource of one of `types`
/// (of any type when there are none) that the statement's caller may see.
pub(crate) fn live_of_types(b: &mut SqlBuilder, alias: &str, types: &[Box<str>]) {
    b.push(&format!(" AND {alias}.method <> {DELETED}"));
    if !types.is_empty() {
        b.push(&format!(" AND {alias}.type IN "))
            .bind_text_list(types);
    }
    // A chain's target the caller may not see matches nothing: no chain reveals it.
    b.visible(alias);
}
