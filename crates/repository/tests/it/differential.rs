//! A differential test of search: the Synthea sample is loaded (with a small supplement for
//! what it lacks, see `differential/corpus.rs`), a broad set of searches is generated from its
//! data (every parameter type with its modifiers and prefixes, chains, reverse chains, ORs,
//! ANDs, `:missing`), and each answer of the repository, all pages of it, is compared with a
//! brute-force evaluation over the stored resources that uses the FHIRPath engine and the
//! specification's matching rules written afresh (`differential/oracle.rs`, which also lists
//! the choices R4 leaves to the server).

mod corpus;
mod generate;
mod oracle;
mod values;

use std::collections::{BTreeMap, BTreeSet};

use repository::{Repository, SearchRequest, SearchScope};
use test_support::backend_tests;

use crate::support::*;
use corpus::Corpus;
use generate::{Query, generate};
use oracle::Oracle;

/// The generator's seed. Any value works; a fixed one keeps the choices of the generator the
/// same from run to run (the ids and instants in the queries are the server's, and change).
const SEED: u64 = 0x4d45_5249_4449_414e;

/// Floors that keep the test from silently becoming trivial: enough queries, most of them
/// matching something, and every kind of search among them.
const MIN_QUERIES: usize = 1000;
const MIN_NON_EMPTY_PERCENT: usize = 60;
const MIN_PER_KIND: usize = 20;
const KINDS: [&str; 14] = [
    "token",
    "string",
    "reference",
    "date",
    "number",
    "quantity",
    "uri",
    "composite",
    "missing",
    "_id",
    "_lastUpdated",
    "chain",
    "_has",
    "and",
];

backend_tests! {
    fn generated_searches_agree_with_a_brute_force_evaluation(store) {
        let repository = repository(store);
        // Loaded as a bulk load: on SQLite the search indexes are built after the load, so the
        // queries below check the indexes a bulk load builds.
        store.begin_bulk_load().unwrap();
        let corpus = Corpus::load(&repository);
        store.end_bulk_load().unwrap();
        assert_eq!(
            corpus.len(),
            388 + 390 + 66 + 134 + 146 + Corpus::SUPPLEMENT,
            "the whole sample loaded"
        );
        let queries = generate(&corpus, SEED);
        let oracle = Oracle::new(&corpus);

        // kind -> (queries, queries expected to match something)
        let mut tally: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut failures = Vec::new();
        for query in &queries {
            let expected = oracle.expected(&query.resource_type, &query.params);
            let counts = tally.entry(query.kind.clone()).or_default();
            counts.0 += 1;
            counts.1 += usize::from(!expected.is_empty());
            match run(&repository, query) {
                Ok(actual) if actual == expected => {}
                Ok(actual) => failures.push(describe(&corpus, query, &expected, &actual)),
                Err(error) => failures.push(format!("{}\n  failed: {error}", text_of(query))),
            }
        }

        let total: usize = tally.values().map(|c| c.0).sum();
        let non_empty: usize = tally.values().map(|c| c.1).sum();
        println!("{total} queries, {non_empty} expected to match something:");
        for (kind, (count, matched)) in &tally {
            println!("  {kind:<14} {count:>5} queries, {matched:>5} non-empty");
        }
        assert!(
            failures.is_empty(),
            "{} of {total} searches disagree with the brute-force evaluation:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
        assert!(total >= MIN_QUERIES, "only {total} queries were generated");
        for kind in KINDS {
            let (count, matched) = tally.get(kind).copied().unwrap_or_default();
            assert!(
                count >= MIN_PER_KIND && matched > 0,
                "{kind}: {count} queries, {matched} matching anything"
            );
        }
        assert!(
            non_empty * 100 >= total * MIN_NON_EMPTY_PERCENT,
            "only {non_empty} of {total} queries match anything"
        );
    }
}

/// Runs a search through the repository and follows every next link: the ids of all matches.
/// A match on two pages is an error.
fn run(repository: &Repository, query: &Query) -> Result<BTreeSet<String>, String> {
    let mut params = query.params.clone();
    params.push(("_count".into(), "50".into()));
    let mut ids = BTreeSet::new();
    for _page in 0..100 {
        let request = SearchRequest {
            scope: SearchScope::Type(query.resource_type.clone()),
            params,
            handling: search::Handling::Strict,
        };
        let bundle = json(
            &repository
                .search(&ctx(), BASE, &request)
                .map_err(|e| e.to_string())?,
        );
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            if entry["search"]["mode"] == "match" {
                let id = entry["resource"]["id"].as_str().expect("an id").to_owned();
                if !ids.insert(id.clone()) {
                    return Err(format!("{id} came back twice"));
                }
            }
        }
        let next = bundle["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|link| link["relation"] == "next");
        let Some(next) = next else {
            return Ok(ids);
        };
        params = query_params(next["url"].as_str().expect("a next url"));
    }
    Err("more than 100 pages".into())
}

/// The parameters of a link, as a client reads them back.
fn query_params(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("links carry UTF-8")
}

fn text_of(query: &Query) -> String {
    let params: Vec<String> = query
        .params
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!("{}?{}", query.resource_type, params.join("&"))
}

/// A disagreement: the query, the ids only one side has, and what the parameters' expressions
/// yield on those resources.
fn describe(
    corpus: &Corpus,
    query: &Query,
    expected: &BTreeSet<String>,
    actual: &BTreeSet<String>,
) -> String {
    let missing: Vec<&String> = expected.difference(actual).collect();
    let extra: Vec<&String> = actual.difference(expected).collect();
    let few = |ids: &[&String]| {
        let shown: Vec<&str> = ids.iter().take(5).map(|id| id.as_str()).collect();
        let more = ids.len().saturating_sub(shown.len());
        if more > 0 {
            format!("{shown:?} and {more} more")
        } else {
            format!("{shown:?}")
        }
    };
    let mut out = format!(
        "{}\n  expected {} matches, got {}\n  missing: {}\n  extra: {}",
        text_of(query),
        expected.len(),
        actual.len(),
        few(&missing),
        few(&extra)
    );
    for id in missing.iter().chain(&extra).take(3) {
        let Some(stored) = corpus.get(&query.resource_type, id) else {
            continue;
        };
        out.push_str(&format!("\n  {}/{id}:", query.resource_type));
        for (name, _) in &query.params {
            let code = name.split([':', '.']).next().unwrap_or(name);
            let shown = if code.starts_with('_') {
                let mut text = stored.json.to_string();
                text.truncate(400);
                text
            } else {
                let values: Vec<_> = corpus
                    .values(stored, code)
                    .iter()
                    .map(|item| format!("{} {}", item.type_name, item.json))
                    .collect();
                let mut text = values.join(", ");
                text.truncate(600);
                text
            };
            out.push_str(&format!("\n    {code}: {shown}"));
        }
    }
    out
}

/// The brute-force side is only as good as its primitives: these are the specification's own
/// examples.
#[test]
fn the_brute_force_primitives_follow_the_specification_examples() {
    use values::{Decimal, date_range, normalize, split_unescaped, unescape};
    let day = values::MICROS_PER_DAY;
    let (low, high) = date_range("2013-01-14").unwrap();
    assert_eq!(high - low, day - 1);
    assert_eq!(
        date_range("2013-01-14T10:00Z").unwrap().0,
        low + 10 * 3_600_000_000
    );
    assert_eq!(
        date_range("2013-01-14T12:00+02:00").unwrap(),
        date_range("2013-01-14T10:00:00Z")
            .map(|(l, _)| (l, l + 60_000_000 - 1))
            .unwrap()
    );
    let (year_low, year_high) = date_range("2000").unwrap();
    assert_eq!((year_high + 1 - year_low) / day, 366, "2000 is a leap year");
    assert_eq!(
        date_range("2000-02").map(|(l, h)| (h + 1 - l) / day),
        Some(29)
    );
    assert_eq!(
        date_range("2021-04-03T08:03:00.113+02:00").map(|(l, h)| h - l),
        Some(999)
    );
    let at = date_range("2021-04-03T08:03:00.113+02:00").unwrap().0;
    assert_eq!(
        values::format_date(at, values::DatePrecision::Millisecond, Some(120)),
        "2021-04-03T08:03:00.113+02:00"
    );
    assert_eq!(Decimal::half_step("100"), Decimal::parse("0.5"));
    assert_eq!(Decimal::half_step("100.00"), Decimal::parse("0.005"));
    assert_eq!(Decimal::half_step("1e2"), Decimal::parse("50"));
    assert_eq!(Decimal::half_step("5.40e-3"), Decimal::parse("0.000005"));
    assert_eq!(Decimal::parse("5.40e-3"), Decimal::parse("0.00540"));
    assert!(
        Decimal::parse("0.0054").unwrap()
            == Decimal::parse("5.4")
                .unwrap()
                .mul(Decimal::parse("0.001").unwrap())
    );
    assert_eq!(
        Decimal::parse("120")
            .unwrap()
            .mul(Decimal::parse("133.3220").unwrap())
            .divide_exactly(Decimal::parse("1000").unwrap())
            .map(Decimal::text),
        Some("15.99864".to_owned())
    );
    assert_eq!(normalize("  Zandra428  O'Hára248 "), "zandra428 ohara248");
    assert_eq!(split_unescaped("a,b\\,c", ','), ["a", "b\\,c"]);
    assert_eq!(unescape("b\\,c\\|d\\\\"), "b,c|d\\");
}
