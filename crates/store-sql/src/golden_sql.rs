//! Golden SQL: what each kind of search becomes on each backend, from a real query string
//! through the real parser and the planner. A change to the rendering shows up here as a
//! reviewable diff (`UPDATE_EXPECT=1 cargo test -p store-sql` rewrites the snapshots).

use expect_test::{Expect, expect};
use search::query::{Filter, SearchQuery, Visibility};
use search::{Handling, Registry, SearchTarget, parse_search};

use crate::plan::{self, Question};
use crate::{Dialect, Sql, SqlValue};

fn registry() -> &'static Registry {
    static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| Registry::r4(fhir_model::r4()))
}

/// The page statement of `query` as planned in a store where every filter the planner counts
/// matches many resources and every chain has few targets.
fn page(query: &SearchQuery, dialect: Dialect) -> Sql {
    let plan = plan::choose(query, dialect, &mut |question| {
        Ok(matches!(question, Question::FewTargets(_)))
    })
    .unwrap();
    crate::page::render(query, plan, dialect).expect("a page is read")
}

/// Renders the search on both dialects, with bound values listed after the statement.
fn check(resource_type: &str, query: &str, expected: Expect) {
    check_target(SearchTarget::Type(resource_type), query, expected);
}

fn check_target(target: SearchTarget<'_>, query: &str, expected: Expect) {
    check_on(
        target,
        query,
        &[Dialect::Sqlite, Dialect::Postgres],
        expected,
    );
}

fn check_on(target: SearchTarget<'_>, query: &str, dialects: &[Dialect], expected: Expect) {
    let params: Vec<(String, String)> = query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let parsed = parse_search(registry(), None, target, &params, Handling::Strict).unwrap();
    let mut out = String::new();
    for &dialect in dialects {
        let sql = page(&parsed.query, dialect);
        out.push_str(&format!("{dialect:?}: {}\n", sql.text));
        let values: Vec<String> = sql
            .params
            .iter()
            .map(|v| match v {
                SqlValue::Integer(i) => format!("{i}"),
                SqlValue::Float(f) => format!("{f:?}"),
                SqlValue::Text(t) => format!("{t:?}"),
            })
            .collect();
        out.push_str(&format!("  values: {}\n", values.join(", ")));
    }
    expected.assert_eq(&out);
}

#[test]
fn token_by_code_and_by_system_and_code() {
    check(
        "Observation",
        "code=8480-6",
        expect![[r#"
            Sqlite: SELECT DISTINCT d.rid FROM idx_token d JOIN resource r ON r.rid = d.rid WHERE d.h_code = ?1 AND r.method <> 2 AND r.type IN (?2) ORDER BY d.rid LIMIT ?3
              values: -6386153366964937566, "Observation", 21
            Postgres: SELECT DISTINCT d.rid FROM idx_token d WHERE d.h_code = $1 AND EXISTS (SELECT 1 FROM resource r WHERE r.rid = d.rid AND r.method <> 2 AND r.type IN ($2) OFFSET 0) ORDER BY d.rid LIMIT $3
              values: -6386153366964937566, "Observation", 21
        "#]],
    );
    check(
        "Observation",
        "code=http://loinc.org|8480-6,http://loinc.org|8462-4",
        expect![[r#"
            Sqlite: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN (?1) AND (EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = r.rid AND +x.h_system_code = ?2 LIMIT 1) OR EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = r.rid AND +x.h_system_code = ?3 LIMIT 1)) ORDER BY r.rid LIMIT ?4
              values: "Observation", 8077817995020697894, -6862245598615564380, 21
            Postgres: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND (EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = r.rid AND x.h_system_code = $2 OFFSET 0) OR EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = r.rid AND x.h_system_code = $3 OFFSET 0)) ORDER BY r.rid LIMIT $4
              values: "Observation", 8077817995020697894, -6862245598615564380, 21
        "#]],
    );
}

#[test]
fn token_not_and_missing() {
    check(
        "Observation",
        "status:not=final",
        expect![[r#"
            Sqlite: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN (?1) AND NOT (EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = r.rid AND +x.h_code = ?2 LIMIT 1)) ORDER BY r.rid LIMIT ?3
              values: "Observation", -5763315090812079724, 21
            Postgres: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND NOT (EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = r.rid AND x.h_code = $2 OFFSET 0)) ORDER BY r.rid LIMIT $3
              values: "Observation", -5763315090812079724, 21
        "#]],
    );
    check(
        "Observation",
        "category:missing=true",
        expect![[r#"
            Sqlite: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN (?1) AND NOT EXISTS (SELECT 1 FROM idx_token m WHERE m.rid = r.rid AND m.param = ?2 LIMIT 1) ORDER BY r.rid LIMIT ?3
              values: "Observation", -4802618124123386591, 21
            Postgres: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND NOT EXISTS (SELECT 1 FROM idx_token m WHERE m.rid = r.rid AND m.param = $2 OFFSET 0) ORDER BY r.rid LIMIT $3
              values: "Observation", -4802618124123386591, 21
        "#]],
    );
}

#[test]
fn string_prefix_exact_and_contains() {
    check(
        "Patient",
        "name=Zh",
        expect![[r#"
            Sqlite: SELECT DISTINCT d.rid, d.normalized FROM idx_string d JOIN resource r ON r.rid = d.rid WHERE d.param = ?1 AND d.normalized >= ?2 AND d.normalized < ?3 AND r.method <> 2 AND NOT EXISTS (SELECT 1 FROM idx_string y WHERE y.rid = d.rid AND y.param = ?4 AND y.normalized >= ?5 AND y.normalized < ?6 AND y.normalized < d.normalized LIMIT 1) ORDER BY d.normalized, d.rid LIMIT ?7
              values: -792611874817700214, "zh", "zh\u{10ffff}", -792611874817700214, "zh", "zh\u{10ffff}", 21
            Postgres: SELECT DISTINCT d.rid, d.normalized FROM idx_string d JOIN resource r ON r.rid = d.rid WHERE d.param = $1 AND d.normalized >= $2 AND d.normalized < $3 AND r.method <> 2 AND NOT EXISTS (SELECT 1 FROM idx_string y WHERE y.rid = d.rid AND y.param = $4 AND y.normalized >= $5 AND y.normalized < $6 AND y.normalized < d.normalized OFFSET 0) ORDER BY d.normalized, d.rid LIMIT $7
              values: -792611874817700214, "zh", "zh\u{10ffff}", -792611874817700214, "zh", "zh\u{10ffff}", 21
        "#]],
    );
    check(
        "Patient",
        "family:exact=张&given:contains=伟",
        expect![[r#"
            Sqlite: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN (?1) AND EXISTS (SELECT 1 FROM idx_string x WHERE x.rid = r.rid AND +x.param = ?2 AND +x.exact = ?3 LIMIT 1) AND EXISTS (SELECT 1 FROM idx_string x WHERE x.rid = r.rid AND +x.param = ?4 AND +x.normalized LIKE ?5 ESCAPE '\' LIMIT 1) ORDER BY r.rid LIMIT ?6
              values: "Patient", 886905893442837563, "张", 332288233657440839, "%伟%", 21
            Postgres: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND EXISTS (SELECT 1 FROM idx_string x WHERE x.rid = r.rid AND +x.param = $2 AND x.exact = $3 OFFSET 0) AND EXISTS (SELECT 1 FROM idx_string x WHERE x.rid = r.rid AND +x.param = $4 AND x.normalized LIKE $5 ESCAPE '\' OFFSET 0) ORDER BY r.rid LIMIT $6
              values: "Patient", 886905893442837563, "张", 332288233657440839, "%伟%", 21
        "#]],
    );
}

#[test]
fn date_prefixes_become_range_comparisons() {
    check(
        "Observation",
        "date=ge2020-01&date=lt2021",
        expect![[r#"
            Sqlite: SELECT rid, high FROM (SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = ?1 AND d.high >= ?2 AND ((d.high > ?3) OR (d.low >= ?4 AND d.high <= ?5)) AND d.high <= ?6 AND r.method <> 2 AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND +x.param = ?7 AND ((+x.low < ?8)) LIMIT 1) AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND y.param = ?9 AND ((+y.high > ?10) OR (+y.low >= ?11 AND +y.high <= ?12)) AND +y.high < d.high LIMIT 1) ORDER BY d.high, d.rid LIMIT ?13) n UNION ALL SELECT rid, high FROM (SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = ?14 AND d.high >= ?15 AND ((d.high > ?16) OR (d.low >= ?17 AND d.high <= ?18)) AND d.high > ?19 AND d.low < d.high - 86400000000 AND r.method <> 2 AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND +x.param = ?20 AND ((+x.low < ?21)) LIMIT 1) AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND y.param = ?22 AND ((+y.high > ?23) OR (+y.low >= ?24 AND +y.high <= ?25)) AND +y.high < d.high LIMIT 1) ORDER BY d.high, d.rid LIMIT ?26) w ORDER BY 2, 1 LIMIT ?27
              values: 4969876855152706044, 1577836800000000, 1580515199999999, 1577836800000000, 1580515199999999, 1609545600000000, 4969876855152706044, 1609459200000000, 4969876855152706044, 1580515199999999, 1577836800000000, 1580515199999999, 21, 4969876855152706044, 1577836800000000, 1580515199999999, 1577836800000000, 1580515199999999, 1609545600000000, 4969876855152706044, 1609459200000000, 4969876855152706044, 1580515199999999, 1577836800000000, 1580515199999999, 21, 21
            Postgres: SELECT rid, high FROM (SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = $1 AND d.high >= $2 AND ((d.high > $3) OR (d.low >= $4 AND d.high <= $5)) AND (d.param, d.high) <= ($6, $7) AND r.method <> 2 AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND +x.param = $8 AND ((x.low < $9)) OFFSET 0) AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND +y.param = $10 AND ((y.high > $11) OR (y.low >= $12 AND y.high <= $13)) AND y.high < d.high OFFSET 0) ORDER BY d.high, d.rid LIMIT $14) n UNION ALL SELECT rid, high FROM (SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = $15 AND d.high >= $16 AND ((d.high > $17) OR (d.low >= $18 AND d.high <= $19)) AND d.high > $20 AND d.low < d.high - 86400000000 AND r.method <> 2 AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND +x.param = $21 AND ((x.low < $22)) OFFSET 0) AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND +y.param = $23 AND ((y.high > $24) OR (y.low >= $25 AND y.high <= $26)) AND y.high < d.high OFFSET 0) ORDER BY d.high, d.rid LIMIT $27) w ORDER BY 2, 1 LIMIT $28
              values: 4969876855152706044, 1577836800000000, 1580515199999999, 1577836800000000, 1580515199999999, 4969876855152706044, 1609545600000000, 4969876855152706044, 1609459200000000, 4969876855152706044, 1580515199999999, 1577836800000000, 1580515199999999, 21, 4969876855152706044, 1577836800000000, 1580515199999999, 1577836800000000, 1580515199999999, 1609545600000000, 4969876855152706044, 1609459200000000, 4969876855152706044, 1580515199999999, 1577836800000000, 1580515199999999, 21, 21
        "#]],
    );
    check(
        "Observation",
        "date=2020-05-01",
        expect![[r#"
            Sqlite: SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = ?1 AND d.high >= ?2 AND ((d.low >= ?3 AND d.high <= ?4)) AND r.method <> 2 AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND y.param = ?5 AND ((+y.low >= ?6 AND +y.high <= ?7)) AND +y.high < d.high LIMIT 1) ORDER BY d.high, d.rid LIMIT ?8
              values: 4969876855152706044, 1588291200000000, 1588291200000000, 1588377599999999, 4969876855152706044, 1588291200000000, 1588377599999999, 21
            Postgres: SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = $1 AND d.high >= $2 AND ((d.low >= $3 AND d.high <= $4)) AND r.method <> 2 AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND +y.param = $5 AND ((y.low >= $6 AND y.high <= $7)) AND y.high < d.high OFFSET 0) ORDER BY d.high, d.rid LIMIT $8
              values: 4969876855152706044, 1588291200000000, 1588291200000000, 1588377599999999, 4969876855152706044, 1588291200000000, 1588377599999999, 21
        "#]],
    );
}

#[test]
fn numbers_and_quantities() {
    check(
        "RiskAssessment",
        "probability=gt0.8",
        expect![[r#"
            Sqlite: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN (?1) AND EXISTS (SELECT 1 FROM idx_number x WHERE x.rid = r.rid AND +x.param = ?2 AND ((+x.value > ?3)) LIMIT 1) ORDER BY r.rid LIMIT ?4
              values: "RiskAssessment", -8984342525732544363, 0.8, 21
            Postgres: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND EXISTS (SELECT 1 FROM idx_number x WHERE x.rid = r.rid AND +x.param = $2 AND ((x.value > $3)) OFFSET 0) ORDER BY r.rid LIMIT $4
              values: "RiskAssessment", -8984342525732544363, 0.8, 21
        "#]],
    );
    check(
        "Observation",
        "value-quantity=120|http://unitsofmeasure.org|mm[Hg]",
        expect![[r#"
            Sqlite: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN (?1) AND EXISTS (SELECT 1 FROM idx_quantity x WHERE x.rid = r.rid AND +x.param = ?2 AND +x.canonical_code = ?3 AND ((+x.canonical_value >= ?4 AND +x.canonical_value < ?5)) LIMIT 1) ORDER BY r.rid LIMIT ?6
              values: "Observation", -1217335416430534585, "Pa", 15931.979, 16065.301, 21
            Postgres: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND EXISTS (SELECT 1 FROM idx_quantity x WHERE x.rid = r.rid AND +x.param = $2 AND x.canonical_code = $3 AND ((x.canonical_value >= $4 AND x.canonical_value < $5)) OFFSET 0) ORDER BY r.rid LIMIT $6
              values: "Observation", -1217335416430534585, "Pa", 15931.979, 16065.301, 21
        "#]],
    );
}

#[test]
fn references_chains_and_reverse_chains() {
    check(
        "Observation",
        "subject=Patient/123",
        expect![[r#"
            Sqlite: SELECT DISTINCT d.rid FROM idx_reference d JOIN resource r ON r.rid = d.rid WHERE d.param = ?1 AND d.target_id = ?2 AND d.target_type IN (?3) AND r.method <> 2 AND r.type IN (?4) ORDER BY d.rid LIMIT ?5
              values: 4003414119979122754, "123", "Patient", "Observation", 21
            Postgres: SELECT DISTINCT d.rid FROM idx_reference d WHERE d.param = $1 AND d.target_id = $2 AND d.target_type IN ($3) AND EXISTS (SELECT 1 FROM resource r WHERE r.rid = d.rid AND r.method <> 2 AND r.type IN ($4) OFFSET 0) ORDER BY d.rid LIMIT $5
              values: 4003414119979122754, "123", "Patient", "Observation", 21
        "#]],
    );
    check(
        "Observation",
        "subject:Patient.name=peter",
        expect![[r#"
            Sqlite: SELECT d.rid, t.rid FROM resource t CROSS JOIN idx_reference d CROSS JOIN resource r WHERE r.rid = d.rid AND t.rid IN (SELECT x.rid FROM idx_string x WHERE x.param = ?1 AND x.normalized >= ?2 AND x.normalized < ?3) AND t.method <> 2 AND t.type IN (?4) AND d.param = ?5 AND d.target_id = t.id AND d.target_type = t.type AND r.method <> 2 AND NOT EXISTS (SELECT 1 FROM idx_reference y CROSS JOIN resource u WHERE y.rid = d.rid AND y.param = d.param AND u.type = y.target_type AND u.id = y.target_id AND (u.rid < t.rid OR (u.rid = t.rid AND y.seq < d.seq)) AND u.method <> 2 AND u.type IN (?6) AND EXISTS (SELECT 1 FROM idx_string x WHERE x.rid = u.rid AND +x.param = ?7 AND +x.normalized >= ?8 AND +x.normalized < ?9 LIMIT 1) LIMIT 1) ORDER BY t.rid, d.rid LIMIT ?10
              values: -792611874817700214, "peter", "peter\u{10ffff}", "Patient", 4003414119979122754, "Patient", -792611874817700214, "peter", "peter\u{10ffff}", 21
            Postgres: WITH RECURSIVE ts AS MATERIALIZED (SELECT array_agg(DISTINCT s.rid ORDER BY s.rid) AS rids FROM (SELECT x.rid FROM idx_string x WHERE x.param = $1 AND x.normalized >= $2 AND x.normalized < $3) s), walk AS (SELECT 0 AS n, 0::bigint AS total, NULL::bigint AS target, NULL::bigint[] AS rids UNION ALL SELECT walk.n + 1, walk.total + coalesce(cardinality(w.rids), 0), t.rid, w.rids FROM walk CROSS JOIN ts LEFT JOIN LATERAL (SELECT t.rid, t.type, t.id FROM resource t WHERE t.rid = ts.rids[walk.n + 1] AND 1 = 1 AND t.method <> 2 AND t.type IN ($4)) t ON true LEFT JOIN LATERAL (SELECT array_agg(p.rid ORDER BY p.rid) AS rids FROM (SELECT d.rid FROM idx_reference d JOIN resource r ON r.rid = d.rid WHERE 1 = 1 AND d.param = $5 AND d.target_id = t.id AND d.target_type = t.type AND r.method <> 2 AND NOT EXISTS (SELECT 1 FROM idx_reference y CROSS JOIN resource u WHERE y.rid = d.rid AND y.param = d.param AND u.type = y.target_type AND u.id = y.target_id AND (u.rid < t.rid OR (u.rid = t.rid AND y.seq < d.seq)) AND u.method <> 2 AND u.type IN ($6) AND EXISTS (SELECT 1 FROM idx_string x WHERE x.rid = u.rid AND +x.param = $7 AND x.normalized >= $8 AND x.normalized < $9 OFFSET 0) OFFSET 0) ORDER BY d.rid LIMIT $10) p) w ON true WHERE walk.total < $11 AND walk.n < coalesce(cardinality(ts.rids), 0)) SELECT u.rid, walk.target FROM walk CROSS JOIN LATERAL unnest(walk.rids) WITH ORDINALITY AS u(rid, k) ORDER BY walk.target, u.k LIMIT $12
              values: -792611874817700214, "peter", "peter\u{10ffff}", "Patient", 4003414119979122754, "Patient", -792611874817700214, "peter", "peter\u{10ffff}", 21, 21, 21
        "#]],
    );
    check(
        "Patient",
        "_has:Observation:patient:code=1234",
        expect![[r#"
            Sqlite: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN (?1) AND EXISTS (SELECT 1 FROM idx_reference ref1 WHERE ref1.param = ?2 AND ref1.target_type = r.type AND ref1.target_id = r.id AND EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = ref1.rid AND +x.h_code = ?3 LIMIT 1) LIMIT 1) ORDER BY r.rid LIMIT ?4
              values: "Patient", -6265059807760257961, 3037997742258124008, 21
            Postgres: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND EXISTS (SELECT 1 FROM idx_reference ref1 WHERE ref1.param = $2 AND ref1.target_type = r.type AND ref1.target_id = r.id AND EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = ref1.rid AND x.h_code = $3 OFFSET 0) OFFSET 0) ORDER BY r.rid LIMIT $4
              values: "Patient", -6265059807760257961, 3037997742258124008, 21
        "#]],
    );
}

#[test]
fn uri_composite_and_id() {
    check(
        "ValueSet",
        "url:below=http://hl7.org/fhir",
        expect![[r#"
            Sqlite: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN (?1) AND EXISTS (SELECT 1 FROM idx_uri x WHERE x.rid = r.rid AND +x.param = ?2 AND +x.uri >= ?3 AND +x.uri < ?4 LIMIT 1) ORDER BY r.rid LIMIT ?5
              values: "ValueSet", -3082414243898680816, "http://hl7.org/fhir", "http://hl7.org/fhir\u{10ffff}", 21
            Postgres: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND EXISTS (SELECT 1 FROM idx_uri x WHERE x.rid = r.rid AND +x.param = $2 AND x.uri >= $3 AND x.uri < $4 OFFSET 0) ORDER BY r.rid LIMIT $5
              values: "ValueSet", -3082414243898680816, "http://hl7.org/fhir", "http://hl7.org/fhir\u{10ffff}", 21
        "#]],
    );
    check(
        "Observation",
        "code-value-quantity=http://loinc.org|8480-6$gt100",
        expect![[r#"
            Sqlite: SELECT DISTINCT d.rid FROM idx_composite d JOIN resource r ON r.rid = d.rid WHERE d.first_h_system_code = ?1 AND ((d.second_value > ?2)) AND r.method <> 2 AND r.type IN (?3) ORDER BY d.rid LIMIT ?4
              values: 1498937393135006621, 100.0, "Observation", 21
            Postgres: SELECT DISTINCT d.rid FROM idx_composite d WHERE d.first_h_system_code = $1 AND ((d.second_value > $2)) AND EXISTS (SELECT 1 FROM resource r WHERE r.rid = d.rid AND r.method <> 2 AND r.type IN ($3) OFFSET 0) ORDER BY d.rid LIMIT $4
              values: 1498937393135006621, 100.0, "Observation", 21
        "#]],
    );
    check(
        "Patient",
        "_id=a,b&_lastUpdated=gt2024-01-01",
        expect![[r#"
        Sqlite: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN (?1) AND r.id IN (?2, ?3) AND ((r.last_updated > ?4)) ORDER BY r.rid LIMIT ?5
          values: "Patient", "a", "b", 1704153599999999, 21
        Postgres: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND r.id IN ($2, $3) AND ((r.last_updated > $4)) ORDER BY r.rid LIMIT $5
          values: "Patient", "a", "b", 1704153599999999, 21
    "#]],
    );
}

#[test]
fn sorted_pages_carry_their_sort_values() {
    check(
        "Observation",
        "code=8480-6&_sort=-date,_id&_count=10",
        expect![[r#"
            Sqlite: SELECT q.rid, q.s0, q.s1 FROM (SELECT r.rid AS rid, (SELECT MAX(x.high) FROM idx_date x WHERE x.rid = r.rid AND +x.param = ?1) AS s0, r.id AS s1 FROM resource r WHERE r.method <> 2 AND r.type IN (?2) AND r.rid IN (SELECT x.rid FROM idx_token x WHERE x.h_code = ?3)) q ORDER BY (CASE WHEN q.s0 IS NULL THEN 1 ELSE 0 END), q.s0 DESC, (CASE WHEN q.s1 IS NULL THEN 1 ELSE 0 END), q.s1 ASC, q.rid LIMIT ?4
              values: 4969876855152706044, "Observation", -6386153366964937566, 11
            Postgres: SELECT q.rid, q.s0, q.s1 FROM (SELECT r.rid AS rid, (SELECT MAX(x.high) FROM idx_date x WHERE x.rid = r.rid AND +x.param = $1) AS s0, r.id AS s1 FROM resource r WHERE r.method <> 2 AND r.type IN ($2) AND r.rid IN (SELECT x.rid FROM idx_token x WHERE x.h_code = $3)) q ORDER BY (CASE WHEN q.s0 IS NULL THEN 1 ELSE 0 END), q.s0 DESC, (CASE WHEN q.s1 IS NULL THEN 1 ELSE 0 END), q.s1 ASC, q.rid LIMIT $4
              values: 4969876855152706044, "Observation", -6386153366964937566, 11
        "#]],
    );
}

/// A sorted page and the total of a code the planner counted sparse: PostgreSQL reads the code's
/// rows whole first (`= ANY(ARRAY(...))`), SQLite keeps the semi-join; the total reads the
/// same set the same way.
#[test]
fn a_sparse_lead_is_read_whole_on_postgres() {
    let params = [
        ("code".to_owned(), "8480-6".to_owned()),
        ("status".to_owned(), "final".to_owned()),
        ("_sort".to_owned(), "-date".to_owned()),
    ];
    let parsed = parse_search(
        registry(),
        None,
        SearchTarget::Type("Observation"),
        &params,
        Handling::Strict,
    )
    .unwrap();
    let mut out = String::new();
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let mut sparse = |question| {
            Ok(matches!(
                question,
                Question::FewMatches(0) | Question::ReadableWhole(0)
            ))
        };
        let plan = plan::choose(&parsed.query, dialect, &mut sparse).unwrap();
        let page = crate::page::render(&parsed.query, plan, dialect).unwrap();
        out.push_str(&format!("{dialect:?} page: {}\n", page.text));
        let lead = plan::lead(&parsed.query, dialect, &mut sparse).unwrap();
        let count = crate::count::search_count(&parsed.query, lead, dialect);
        out.push_str(&format!("{dialect:?} total: {}\n", count.text));
    }
    expect![[r#"
        Sqlite page: SELECT q.rid, q.s0 FROM (SELECT r.rid AS rid, (SELECT MAX(x.high) FROM idx_date x WHERE x.rid = r.rid AND +x.param = ?1) AS s0 FROM resource r WHERE r.method <> 2 AND r.type IN (?2) AND r.rid IN (SELECT x.rid FROM idx_token x WHERE x.h_code = ?3) AND EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = r.rid AND +x.h_code = ?4 LIMIT 1)) q ORDER BY (CASE WHEN q.s0 IS NULL THEN 1 ELSE 0 END), q.s0 DESC, q.rid LIMIT ?5
        Sqlite total: SELECT COUNT(*) FROM resource r WHERE r.method <> 2 AND r.type IN (?1) AND r.rid IN (SELECT x.rid FROM idx_token x WHERE x.h_code = ?2) AND EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = r.rid AND +x.h_code = ?3 LIMIT 1)
        Postgres page: SELECT q.rid, q.s0 FROM (SELECT r.rid AS rid, (SELECT MAX(x.high) FROM idx_date x WHERE x.rid = r.rid AND +x.param = $1) AS s0 FROM resource r WHERE r.method <> 2 AND r.type IN ($2) AND r.rid = ANY(ARRAY(SELECT x.rid FROM idx_token x WHERE x.h_code = $3)) AND EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = r.rid AND x.h_code = $4 OFFSET 0)) q ORDER BY (CASE WHEN q.s0 IS NULL THEN 1 ELSE 0 END), q.s0 DESC, q.rid LIMIT $5
        Postgres total: SELECT COUNT(*) FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND r.rid = ANY(ARRAY(SELECT x.rid FROM idx_token x WHERE x.h_code = $2)) AND EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = r.rid AND x.h_code = $3 OFFSET 0)
    "#]].assert_eq(&out);
}

/// A total of one filter of one type, for a caller who sees everything, counts its index rows
/// alone; with a second filter, or under a policy, the resources are read.
#[test]
fn a_lone_filter_is_counted_from_its_index_rows() {
    let mut out = String::new();
    for (params, visibility) in [
        (vec![("date", "ge2010")], Visibility::All),
        (vec![("code", "8480-6,8462-4")], Visibility::All),
        (
            vec![("date", "ge2010"), ("status", "final")],
            Visibility::All,
        ),
        (
            vec![("date", "ge2010")],
            Visibility::Where(Filter::Unrestricted),
        ),
    ] {
        let params: Vec<(String, String)> = params
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut query = parse_search(
            registry(),
            None,
            SearchTarget::Type("Observation"),
            &params,
            Handling::Strict,
        )
        .unwrap()
        .query;
        query.visibility = visibility;
        for dialect in [Dialect::Postgres, Dialect::Citus] {
            let lead = plan::lead(&query, dialect, &mut |_| Ok(false)).unwrap();
            let count = crate::count::search_count(&query, lead, dialect);
            out.push_str(&format!("{dialect:?}: {}\n", count.text));
        }
    }
    expect![[r#"
        Postgres: SELECT COUNT(*) FROM (SELECT x.rid FROM idx_date x WHERE x.param = $1 AND x.high >= $2 AND ((x.high > $3) OR (x.low >= $4 AND x.high <= $5))) s
        Citus: SELECT COUNT(*) FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND r.rid IN (SELECT x.rid FROM idx_date x WHERE x.param = $2 AND x.high >= $3 AND ((x.high > $4) OR (x.low >= $5 AND x.high <= $6)))
        Postgres: SELECT COUNT(*) FROM (SELECT DISTINCT s.rid FROM (SELECT x.rid FROM idx_token x WHERE x.h_code = $1 UNION SELECT x.rid FROM idx_token x WHERE x.h_code = $2) s) c
        Citus: SELECT COUNT(*) FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND (r.rid IN (SELECT x.rid FROM idx_token x WHERE x.h_code = $2) OR r.rid IN (SELECT x.rid FROM idx_token x WHERE x.h_code = $3))
        Postgres: SELECT COUNT(*) FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND +x.param = $2 AND ((x.high > $3) OR (x.low >= $4 AND x.high <= $5)) OFFSET 0) AND r.rid IN (SELECT x.rid FROM idx_token x WHERE x.h_code = $6)
        Citus: SELECT COUNT(*) FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND x.patient_key = r.patient_key AND +x.param = $2 AND ((x.high > $3) OR (x.low >= $4 AND x.high <= $5)) OFFSET 0) AND r.rid IN (SELECT x.rid FROM idx_token x WHERE x.h_code = $6)
        Postgres: SELECT COUNT(*) FROM resource r WHERE r.method <> 2 AND r.sensitivity = 0 AND r.type IN ($1) AND r.rid IN (SELECT x.rid FROM idx_date x WHERE x.param = $2 AND x.high >= $3 AND ((x.high > $4) OR (x.low >= $5 AND x.high <= $6)))
        Citus: SELECT COUNT(*) FROM resource r WHERE r.method <> 2 AND r.sensitivity = 0 AND r.type IN ($1) AND r.rid IN (SELECT x.rid FROM idx_date x WHERE x.param = $2 AND x.high >= $3 AND ((x.high > $4) OR (x.low >= $5 AND x.high <= $6)))
    "#]].assert_eq(&out);
}

#[test]
fn hostile_values_stay_bound_values() {
    check(
        "Patient",
        "name=x') OR 1=1 --&gender=male' OR '1'='1",
        expect![[r#"
            Sqlite: SELECT DISTINCT d.rid FROM idx_token d JOIN resource r ON r.rid = d.rid WHERE d.h_code = ?1 AND r.method <> 2 AND r.type IN (?2) AND EXISTS (SELECT 1 FROM idx_string x WHERE x.rid = r.rid AND +x.param = ?3 AND +x.normalized >= ?4 AND +x.normalized < ?5 LIMIT 1) ORDER BY d.rid LIMIT ?6
              values: 6784578640696447699, "Patient", -792611874817700214, "x or 11", "x or 11\u{10ffff}", 21
            Postgres: SELECT DISTINCT d.rid FROM idx_token d WHERE d.h_code = $1 AND EXISTS (SELECT 1 FROM resource r WHERE r.rid = d.rid AND r.method <> 2 AND r.type IN ($2) AND EXISTS (SELECT 1 FROM idx_string x WHERE x.rid = r.rid AND +x.param = $3 AND x.normalized >= $4 AND x.normalized < $5 OFFSET 0) OFFSET 0) ORDER BY d.rid LIMIT $6
              values: 6784578640696447699, "Patient", -792611874817700214, "x or 11", "x or 11\u{10ffff}", 21
        "#]],
    );
}

/// The density count of a filter (`count::estimate`) on both dialects.
fn check_estimate(resource_type: &str, query: &str, expected: Expect) {
    let (name, value) = query.split_once('=').unwrap();
    let parsed = parse_search(
        registry(),
        None,
        SearchTarget::Type(resource_type),
        &[(name.to_owned(), value.to_owned())],
        Handling::Strict,
    )
    .unwrap();
    let mut out = String::new();
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let sql = crate::count::estimate(&parsed.query, Question::FewMatches(0), dialect);
        out.push_str(&format!("{dialect:?}: {}\n", sql.text));
    }
    expected.assert_eq(&out);
}

#[test]
fn a_date_set_states_the_bound_on_high_its_predicate_implies() {
    // ge: every match has high >= the start of 2019, so the (param, high) index bounds the read.
    check_estimate(
        "Observation",
        "date=ge2019-01-01",
        expect![[r#"
        Sqlite: SELECT COUNT(*) FROM (SELECT x.rid FROM idx_date x WHERE x.param = ?1 AND x.high >= ?2 AND ((x.high > ?3) OR (x.low >= ?4 AND x.high <= ?5)) LIMIT ?6) c
        Postgres: SELECT COUNT(*) FROM (SELECT x.rid FROM idx_date x WHERE x.param = $1 AND x.high >= $2 AND ((x.high > $3) OR (x.low >= $4 AND x.high <= $5)) LIMIT $6) c
    "#]],
    );
    // lt leaves high unbounded below: nothing to add.
    check_estimate(
        "Observation",
        "date=lt2019-01-01",
        expect![[r#"
        Sqlite: SELECT COUNT(*) FROM (SELECT x.rid FROM idx_date x WHERE x.param = ?1 AND ((x.low < ?2)) LIMIT ?3) c
        Postgres: SELECT COUNT(*) FROM (SELECT x.rid FROM idx_date x WHERE x.param = $1 AND ((x.low < $2)) LIMIT $3) c
    "#]],
    );
}

#[test]
fn walks_go_on_from_their_cursor() {
    check(
        "Encounter",
        "date=2015&_cursor=42~w0~i1420070400000000",
        expect![[r#"
            Sqlite: SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = ?1 AND d.high >= ?2 AND ((d.low >= ?3 AND d.high <= ?4)) AND r.method <> 2 AND d.high >= ?5 AND (d.high > ?6 OR (d.high = ?7 AND d.rid > ?8)) AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND y.param = ?9 AND ((+y.low >= ?10 AND +y.high <= ?11)) AND +y.high < d.high LIMIT 1) ORDER BY d.high, d.rid LIMIT ?12
              values: 5268677857013443589, 1420070400000000, 1420070400000000, 1451606399999999, 1420070400000000, 1420070400000000, 1420070400000000, 42, 5268677857013443589, 1420070400000000, 1451606399999999, 21
            Postgres: SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = $1 AND d.high >= $2 AND ((d.low >= $3 AND d.high <= $4)) AND r.method <> 2 AND d.high >= $5 AND (d.high > $6 OR (d.high = $7 AND d.rid > $8)) AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND +y.param = $9 AND ((y.low >= $10 AND y.high <= $11)) AND y.high < d.high OFFSET 0) ORDER BY d.high, d.rid LIMIT $12
              values: 5268677857013443589, 1420070400000000, 1420070400000000, 1451606399999999, 1420070400000000, 1420070400000000, 1420070400000000, 42, 5268677857013443589, 1420070400000000, 1451606399999999, 21
        "#]],
    );
    check(
        "Observation",
        "subject:Patient.family=smith&_cursor=42~w0~i7",
        expect![[r#"
            Sqlite: SELECT d.rid, t.rid FROM resource t CROSS JOIN idx_reference d CROSS JOIN resource r WHERE r.rid = d.rid AND t.rid IN (SELECT x.rid FROM idx_string x WHERE x.param = ?1 AND x.normalized >= ?2 AND x.normalized < ?3) AND t.method <> 2 AND t.type IN (?4) AND d.param = ?5 AND d.target_id = t.id AND d.target_type = t.type AND r.method <> 2 AND NOT EXISTS (SELECT 1 FROM idx_reference y CROSS JOIN resource u WHERE y.rid = d.rid AND y.param = d.param AND u.type = y.target_type AND u.id = y.target_id AND (u.rid < t.rid OR (u.rid = t.rid AND y.seq < d.seq)) AND u.method <> 2 AND u.type IN (?6) AND EXISTS (SELECT 1 FROM idx_string x WHERE x.rid = u.rid AND +x.param = ?7 AND +x.normalized >= ?8 AND +x.normalized < ?9 LIMIT 1) LIMIT 1) AND t.rid >= ?10 AND (t.rid > ?11 OR (t.rid = ?12 AND d.rid > ?13)) ORDER BY t.rid, d.rid LIMIT ?14
              values: 886905893442837563, "smith", "smith\u{10ffff}", "Patient", 4003414119979122754, "Patient", 886905893442837563, "smith", "smith\u{10ffff}", 7, 7, 7, 42, 21
            Postgres: WITH RECURSIVE ts AS MATERIALIZED (SELECT array_agg(DISTINCT s.rid ORDER BY s.rid) AS rids FROM (SELECT x.rid FROM idx_string x WHERE x.param = $1 AND x.normalized >= $2 AND x.normalized < $3) s WHERE s.rid >= $4), walk AS (SELECT 0 AS n, 0::bigint AS total, NULL::bigint AS target, NULL::bigint[] AS rids UNION ALL SELECT walk.n + 1, walk.total + coalesce(cardinality(w.rids), 0), t.rid, w.rids FROM walk CROSS JOIN ts LEFT JOIN LATERAL (SELECT t.rid, t.type, t.id FROM resource t WHERE t.rid = ts.rids[walk.n + 1] AND 1 = 1 AND t.method <> 2 AND t.type IN ($5)) t ON true LEFT JOIN LATERAL (SELECT array_agg(p.rid ORDER BY p.rid) AS rids FROM (SELECT d.rid FROM idx_reference d JOIN resource r ON r.rid = d.rid WHERE 1 = 1 AND d.param = $6 AND d.target_id = t.id AND d.target_type = t.type AND r.method <> 2 AND NOT EXISTS (SELECT 1 FROM idx_reference y CROSS JOIN resource u WHERE y.rid = d.rid AND y.param = d.param AND u.type = y.target_type AND u.id = y.target_id AND (u.rid < t.rid OR (u.rid = t.rid AND y.seq < d.seq)) AND u.method <> 2 AND u.type IN ($7) AND EXISTS (SELECT 1 FROM idx_string x WHERE x.rid = u.rid AND +x.param = $8 AND x.normalized >= $9 AND x.normalized < $10 OFFSET 0) OFFSET 0) AND (t.rid > $11 OR d.rid > $12) ORDER BY d.rid LIMIT $13) p) w ON true WHERE walk.total < $14 AND walk.n < coalesce(cardinality(ts.rids), 0)) SELECT u.rid, walk.target FROM walk CROSS JOIN LATERAL unnest(walk.rids) WITH ORDINALITY AS u(rid, k) ORDER BY walk.target, u.k LIMIT $15
              values: 886905893442837563, "smith", "smith\u{10ffff}", 7, "Patient", 4003414119979122754, "Patient", 886905893442837563, "smith", "smith\u{10ffff}", 7, 42, 21, 21, 21
        "#]],
    );
}

#[test]
fn a_chain_beside_a_driving_code_is_probed_per_row() {
    check(
        "Observation",
        "code=8480-6&subject:Patient.name=peter",
        expect![[r#"
            Sqlite: SELECT DISTINCT d.rid FROM idx_token d JOIN resource r ON r.rid = d.rid WHERE d.h_code = ?1 AND r.method <> 2 AND r.type IN (?2) AND EXISTS (SELECT 1 FROM idx_reference ref1 CROSS JOIN resource t2 WHERE ref1.rid = r.rid AND ref1.param = ?3 AND t2.type = ref1.target_type AND t2.id = ref1.target_id AND t2.method <> 2 AND t2.type IN (?4) AND EXISTS (SELECT 1 FROM idx_string x WHERE x.rid = t2.rid AND +x.param = ?5 AND +x.normalized >= ?6 AND +x.normalized < ?7 LIMIT 1) LIMIT 1) ORDER BY d.rid LIMIT ?8
              values: -6386153366964937566, "Observation", 4003414119979122754, "Patient", -792611874817700214, "peter", "peter\u{10ffff}", 21
            Postgres: SELECT DISTINCT d.rid FROM idx_token d WHERE d.h_code = $1 AND EXISTS (SELECT 1 FROM resource r WHERE r.rid = d.rid AND r.method <> 2 AND r.type IN ($2) AND EXISTS (SELECT 1 FROM idx_reference ref1 CROSS JOIN resource t2 WHERE ref1.rid = r.rid AND ref1.param = $3 AND t2.type = ref1.target_type AND t2.id = ref1.target_id AND t2.method <> 2 AND t2.type IN ($4) AND EXISTS (SELECT 1 FROM idx_string x WHERE x.rid = t2.rid AND +x.param = $5 AND x.normalized >= $6 AND x.normalized < $7 OFFSET 0) OFFSET 0) OFFSET 0) ORDER BY d.rid LIMIT $8
              values: -6386153366964937566, "Observation", 4003414119979122754, "Patient", -792611874817700214, "peter", "peter\u{10ffff}", 21
        "#]],
    );
}

#[test]
fn a_compartment_is_read_as_a_set_before_a_code_drives() {
    // One resident's record is bounded whatever the store's size; the code's rows are not.
    check_target(
        SearchTarget::Compartment {
            compartment: "Patient",
            id: "p1",
            resource_type: "Observation",
        },
        "code=http://loinc.org|85354-9",
        expect![[r#"
            Sqlite: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN (?1) AND r.rid IN (SELECT x.rid FROM idx_reference x WHERE x.param = ?2 AND x.target_id = ?3 AND x.target_type IN (?4) UNION SELECT x.rid FROM idx_reference x WHERE x.param = ?5 AND x.target_id = ?6 AND x.target_type IN (?7)) AND EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = r.rid AND +x.h_system_code = ?8 LIMIT 1) ORDER BY r.rid LIMIT ?9
              values: "Observation", 4003414119979122754, "p1", "Patient", -7326621425880532343, "p1", "Patient", -3743010289009566236, 21
            Postgres: SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND r.rid = ANY(ARRAY(SELECT x.rid FROM idx_reference x WHERE x.param = $2 AND x.target_id = $3 AND x.target_type IN ($4) UNION SELECT x.rid FROM idx_reference x WHERE x.param = $5 AND x.target_id = $6 AND x.target_type IN ($7))) AND EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = r.rid AND x.h_system_code = $8 OFFSET 0) ORDER BY r.rid LIMIT $9
              values: "Observation", 4003414119979122754, "p1", "Patient", -7326621425880532343, "p1", "Patient", -3743010289009566236, 21
        "#]],
    );
}

/// On Citus a chain's targets, and what a reverse chain's referrers point at, are computed
/// first, as statements of their own: the walk along a chain's targets, a chain probed beside a
/// driving filter, `_has` read as a set and probed, and a chain inside a chain.
#[test]
fn citus_chains_compute_their_targets_first() {
    let citus = |query: &str, expected: Expect| {
        check_on(
            SearchTarget::Type("Observation"),
            query,
            &[Dialect::Citus],
            expected,
        )
    };
    citus(
        "subject:Patient.name=peter",
        expect![[r#"
            Citus: WITH targets1 AS MATERIALIZED (SELECT t2.rid, t2.type, t2.id FROM resource t2 WHERE t2.rid IN (SELECT x.rid FROM idx_string x WHERE x.param = $1 AND x.normalized >= $2 AND x.normalized < $3) AND t2.method <> 2 AND t2.type IN ($4)) SELECT d.rid, d.target FROM (SELECT d.rid, min(t.rid) AS target FROM targets1 t CROSS JOIN idx_reference d CROSS JOIN resource r WHERE r.rid = d.rid AND r.patient_key = d.patient_key AND d.param = $5 AND d.target_id = t.id AND d.target_type = t.type AND r.method <> 2 GROUP BY d.patient_key, d.rid) d WHERE 1 = 1 ORDER BY d.target, d.rid LIMIT $6
              values: -792611874817700214, "peter", "peter\u{10ffff}", "Patient", 4003414119979122754, 21
        "#]],
    );
    citus(
        "code=8867-4&subject:Patient.name=peter",
        expect![[r#"
        Citus: WITH targets3 AS MATERIALIZED (SELECT t4.rid, t4.type, t4.id FROM resource t4 WHERE t4.rid IN (SELECT x.rid FROM idx_string x WHERE x.param = $3 AND x.normalized >= $4 AND x.normalized < $5) AND t4.method <> 2 AND t4.type IN ($6)) SELECT DISTINCT d.rid FROM idx_token d JOIN resource r ON r.rid = d.rid AND r.patient_key = d.patient_key WHERE d.h_code = $1 AND r.method <> 2 AND r.type IN ($2) AND EXISTS (SELECT 1 FROM idx_reference ref1 CROSS JOIN targets3 t2 WHERE ref1.rid = r.rid AND ref1.patient_key = r.patient_key AND ref1.param = $7 AND t2.type = ref1.target_type AND t2.id = ref1.target_id OFFSET 0) ORDER BY d.rid LIMIT $8
          values: 8596506061935190866, "Observation", -792611874817700214, "peter", "peter\u{10ffff}", "Patient", 4003414119979122754, 21
    "#]],
    );
    let patients = |query: &str, expected: Expect| {
        check_on(
            SearchTarget::Type("Patient"),
            query,
            &[Dialect::Citus],
            expected,
        )
    };
    patients(
        "_has:Observation:subject:code=8867-4",
        expect![[r#"
        Citus: WITH pointed1 AS MATERIALIZED (SELECT DISTINCT ref3.target_type, ref3.target_id FROM resource s2 CROSS JOIN idx_reference ref3 WHERE ref3.rid = s2.rid AND ref3.patient_key = s2.patient_key AND ref3.param = $2 AND s2.type = $3 AND s2.method <> 2 AND s2.rid IN (SELECT x.rid FROM idx_token x WHERE x.h_code = $4)) SELECT r.rid FROM resource r WHERE r.method <> 2 AND r.type IN ($1) AND (r.type, r.id) IN (SELECT target_type, target_id FROM pointed1) ORDER BY r.rid LIMIT $5
          values: "Patient", 4003414119979122754, "Observation", 8596506061935190866, 21
    "#]],
    );
    patients(
        "gender=female&_has:Observation:subject:code=8867-4",
        expect![[r#"
        Citus: WITH pointed1 AS MATERIALIZED (SELECT DISTINCT ref3.target_type, ref3.target_id FROM resource s2 CROSS JOIN idx_reference ref3 WHERE ref3.rid = s2.rid AND ref3.patient_key = s2.patient_key AND ref3.param = $3 AND s2.type = $4 AND s2.method <> 2 AND s2.rid IN (SELECT x.rid FROM idx_token x WHERE x.h_code = $5)) SELECT DISTINCT d.rid FROM idx_token d JOIN resource r ON r.rid = d.rid AND r.patient_key = d.patient_key WHERE d.h_code = $1 AND r.method <> 2 AND r.type IN ($2) AND (r.type, r.id) IN (SELECT target_type, target_id FROM pointed1) ORDER BY d.rid LIMIT $6
          values: -11573849790898400, "Patient", 4003414119979122754, "Observation", 8596506061935190866, 21
    "#]],
    );
    citus(
        "encounter.service-provider.name=general",
        expect![[r#"
            Citus: WITH targets5 AS MATERIALIZED (SELECT t6.rid, t6.type, t6.id FROM resource t6 WHERE t6.rid IN (SELECT x.rid FROM idx_string x WHERE x.param = $1 AND x.normalized >= $2 AND x.normalized < $3) AND t6.method <> 2 AND t6.type IN ($4)), targets1 AS MATERIALIZED (SELECT t2.rid, t2.type, t2.id FROM resource t2 WHERE t2.rid IN (SELECT ref3.rid FROM targets5 t4 CROSS JOIN idx_reference ref3 WHERE ref3.param = $5 AND ref3.target_id = t4.id AND ref3.target_type = t4.type) AND t2.method <> 2 AND t2.type IN ($6)) SELECT d.rid, d.target FROM (SELECT d.rid, min(t.rid) AS target FROM targets1 t CROSS JOIN idx_reference d CROSS JOIN resource r WHERE r.rid = d.rid AND r.patient_key = d.patient_key AND d.param = $7 AND d.target_id = t.id AND d.target_type = t.type AND r.method <> 2 GROUP BY d.patient_key, d.rid) d WHERE 1 = 1 ORDER BY d.target, d.rid LIMIT $8
              values: -3726936123986275820, "general", "general\u{10ffff}", "Organization", 5345226499368125181, "Encounter", -643032128854072888, 21
        "#]],
    );
}

/// `date=ge2015&date=lt2016` on a single-valued parameter: rows spanning at most a day are
/// walked only up to the start bound plus a day, the wide rows along their own partial index
/// (whose condition the statement states exactly as the index does), and the two merged.
#[test]
fn a_date_walk_bounded_by_a_single_valued_parameter_reads_wide_rows_apart() {
    assert_eq!(
        crate::tables::WIDE_DATE,
        format!("low < high - {}", crate::tables::NARROW_DATE_SPAN)
    );
    check(
        "Observation",
        "date=ge2015-01-01&date=lt2016-01-01",
        expect![[r#"
            Sqlite: SELECT rid, high FROM (SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = ?1 AND d.high >= ?2 AND ((d.high > ?3) OR (d.low >= ?4 AND d.high <= ?5)) AND d.high <= ?6 AND r.method <> 2 AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND +x.param = ?7 AND ((+x.low < ?8)) LIMIT 1) AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND y.param = ?9 AND ((+y.high > ?10) OR (+y.low >= ?11 AND +y.high <= ?12)) AND +y.high < d.high LIMIT 1) ORDER BY d.high, d.rid LIMIT ?13) n UNION ALL SELECT rid, high FROM (SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = ?14 AND d.high >= ?15 AND ((d.high > ?16) OR (d.low >= ?17 AND d.high <= ?18)) AND d.high > ?19 AND d.low < d.high - 86400000000 AND r.method <> 2 AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND +x.param = ?20 AND ((+x.low < ?21)) LIMIT 1) AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND y.param = ?22 AND ((+y.high > ?23) OR (+y.low >= ?24 AND +y.high <= ?25)) AND +y.high < d.high LIMIT 1) ORDER BY d.high, d.rid LIMIT ?26) w ORDER BY 2, 1 LIMIT ?27
              values: 4969876855152706044, 1420070400000000, 1420156799999999, 1420070400000000, 1420156799999999, 1451692800000000, 4969876855152706044, 1451606400000000, 4969876855152706044, 1420156799999999, 1420070400000000, 1420156799999999, 21, 4969876855152706044, 1420070400000000, 1420156799999999, 1420070400000000, 1420156799999999, 1451692800000000, 4969876855152706044, 1451606400000000, 4969876855152706044, 1420156799999999, 1420070400000000, 1420156799999999, 21, 21
            Postgres: SELECT rid, high FROM (SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = $1 AND d.high >= $2 AND ((d.high > $3) OR (d.low >= $4 AND d.high <= $5)) AND (d.param, d.high) <= ($6, $7) AND r.method <> 2 AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND +x.param = $8 AND ((x.low < $9)) OFFSET 0) AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND +y.param = $10 AND ((y.high > $11) OR (y.low >= $12 AND y.high <= $13)) AND y.high < d.high OFFSET 0) ORDER BY d.high, d.rid LIMIT $14) n UNION ALL SELECT rid, high FROM (SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = $15 AND d.high >= $16 AND ((d.high > $17) OR (d.low >= $18 AND d.high <= $19)) AND d.high > $20 AND d.low < d.high - 86400000000 AND r.method <> 2 AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND +x.param = $21 AND ((x.low < $22)) OFFSET 0) AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND +y.param = $23 AND ((y.high > $24) OR (y.low >= $25 AND y.high <= $26)) AND y.high < d.high OFFSET 0) ORDER BY d.high, d.rid LIMIT $27) w ORDER BY 2, 1 LIMIT $28
              values: 4969876855152706044, 1420070400000000, 1420156799999999, 1420070400000000, 1420156799999999, 4969876855152706044, 1451692800000000, 4969876855152706044, 1451606400000000, 4969876855152706044, 1420156799999999, 1420070400000000, 1420156799999999, 21, 4969876855152706044, 1420070400000000, 1420156799999999, 1420070400000000, 1420156799999999, 1451692800000000, 4969876855152706044, 1451606400000000, 4969876855152706044, 1420156799999999, 1420070400000000, 1420156799999999, 21, 21
        "#]],
    );
    // A parameter with many values per resource keeps the one walk: another value may start
    // before the bound.
    check(
        "MedicationRequest",
        "date=ge2015-01-01&date=lt2016-01-01",
        expect![[r#"
            Sqlite: SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = ?1 AND d.high >= ?2 AND ((d.high > ?3) OR (d.low >= ?4 AND d.high <= ?5)) AND r.method <> 2 AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND +x.param = ?6 AND ((+x.low < ?7)) LIMIT 1) AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND y.param = ?8 AND ((+y.high > ?9) OR (+y.low >= ?10 AND +y.high <= ?11)) AND +y.high < d.high LIMIT 1) ORDER BY d.high, d.rid LIMIT ?12
              values: -6823516504492756523, 1420070400000000, 1420156799999999, 1420070400000000, 1420156799999999, -6823516504492756523, 1451606400000000, -6823516504492756523, 1420156799999999, 1420070400000000, 1420156799999999, 21
            Postgres: SELECT DISTINCT d.rid, d.high FROM idx_date d JOIN resource r ON r.rid = d.rid WHERE d.param = $1 AND d.high >= $2 AND ((d.high > $3) OR (d.low >= $4 AND d.high <= $5)) AND r.method <> 2 AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND +x.param = $6 AND ((x.low < $7)) OFFSET 0) AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = d.rid AND +y.param = $8 AND ((y.high > $9) OR (y.low >= $10 AND y.high <= $11)) AND y.high < d.high OFFSET 0) ORDER BY d.high, d.rid LIMIT $12
              values: -6823516504492756523, 1420070400000000, 1420156799999999, 1420070400000000, 1420156799999999, -6823516504492756523, 1451606400000000, -6823516504492756523, 1420156799999999, 1420070400000000, 1420156799999999, 21
        "#]],
    );
}
