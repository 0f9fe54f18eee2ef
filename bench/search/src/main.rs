//! Search latency on the Synthea sample and on copies of it: `load` fills a store with the
//! sample N times over (every copy's ids made distinct), `run` measures the first page of
//! typical searches, chains, `_has` and `$everything`, through the repository (parse, SQL,
//! Bundle), after one unmeasured pass over the same parameters, and prints p50/p99 per query.
//!
//! ```text
//! search-bench load (--data DIR | --database-url URL) --copies N [--organization ORG] SYNTHEA_DIR...
//! search-bench consents (--data DIR | --database-url URL) --count N --organization ORG
//! search-bench run  (--data DIR | --database-url URL) [--iterations N] [--label L] [--as ORG]
//! search-bench plans (--data DIR | --database-url URL) --out FILE [--label L] [--stale-statistics]
//! ```
//!
//! `plans` runs the plan-regression matrix (`plans.rs`). `--stale-statistics` (PostgreSQL) keeps
//! the planner's statistics as they are: `load` analyses the empty store first and not after,
//! and neither `load` nor `plans` lets the store refresh them, so the plans measured are those
//! of statistics taken before the data was written.
//!
//! Every command runs under the access rules. `load --organization` makes that institution the
//! custodian of what is loaded; `consents` writes N patient-privacy Consents spread over the
//! patients, each patient's first permitting ORG and the rest other institutions; `run --as
//! ORG` measures as that institution's client (what it holds, or what consents let it see)
//! instead of as the operator, who sees everything.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use caller::Caller;
use repository::{ImportOptions, ImportUnit, Repository, SearchRequest, SearchScope};
use serde_json::Value;
use store::Store;

mod plans;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let stale = args.iter().any(|a| a == "--stale-statistics");
    let store = open(flag("--data"), flag("--database-url"), stale)?;
    let repository = Repository::new(store);
    repository.set_access_policy(Arc::new(access::policy::Policy::new()));
    match args.first().map(String::as_str) {
        Some("load") => {
            let copies: usize = flag("--copies").unwrap_or_else(|| "1".into()).parse()?;
            let dirs: Vec<PathBuf> = args
                .iter()
                .skip(1)
                .enumerate()
                .filter(|(i, a)| !a.starts_with("--") && !args[*i].starts_with("--"))
                .map(|(_, a)| PathBuf::from(a))
                .collect();
            let mut loader = ctx();
            loader.organization = flag("--organization");
            if stale {
                // Statistics of the empty store, as an early ANALYZE leaves them.
                repository.store().refresh_statistics()?;
            }
            load(&repository, &loader, copies, &dirs, !stale)
        }
        Some("consents") => {
            let count: usize = flag("--count").unwrap_or_else(|| "10000".into()).parse()?;
            let organization = flag("--organization").context("--organization ORG")?;
            consents(&repository, count, &organization)
        }
        Some("run") => {
            let iterations: usize = flag("--iterations")
                .unwrap_or_else(|| "300".into())
                .parse()?;
            let label = flag("--label").unwrap_or_default();
            let sample = sample(&repository)?;
            if let Some(organization) = flag("--as") {
                let mut client = Caller::anonymous("search-bench");
                client.actor = caller::Actor::Client("search-bench".into());
                client.organization = Some(organization);
                client.scopes = vec!["system/*.rs".into()];
                MEASURED.set(client).expect("set once");
            }
            run(&repository, sample, iterations, &label)
        }
        Some("plans") => {
            let label = flag("--label").unwrap_or_default();
            let out = flag("--out").context("--out FILE")?;
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&out)
                .with_context(|| format!("opening {out}"))?;
            let sample = sample(&repository)?;
            plans::run(&repository, &sample, &label, &mut out)
        }
        _ => bail!(
            "usage: search-bench (load --copies N DIR... | run [--iterations N]) (--data DIR | --database-url URL)"
        ),
    }
}

fn open(data: Option<String>, url: Option<String>, stale: bool) -> Result<Arc<dyn Store>> {
    Ok(match (data, url) {
        (_, Some(url)) => {
            let mut config = store_postgres::PostgresConfig::new(url);
            config.keep_statistics = !stale;
            Arc::new(store_postgres::PostgresStore::open(config)?)
        }
        (Some(dir), None) => {
            std::fs::create_dir_all(&dir)?;
            let mut config = store_sqlite::SqliteConfig::in_dir(Path::new(&dir));
            config.durability = store_sqlite::Durability::Normal;
            Arc::new(store_sqlite::SqliteStore::open(config)?)
        }
        (None, None) => bail!("--data DIR or --database-url URL"),
    })
}

/// Who the measured searches run as, when not the operator (`run --as`).
static MEASURED: OnceLock<Caller> = OnceLock::new();

fn ctx() -> Caller {
    MEASURED
        .get()
        .cloned()
        .unwrap_or_else(|| Caller::operator("search-bench"))
}

/// `count` Consents over the patients, round robin: each patient's first permits
/// `organization` for treatment, the rest other institutions.
fn consents(repository: &Repository, count: usize, organization: &str) -> Result<()> {
    let mut patients = Vec::new();
    let mut params = vec![
        ("_count".to_owned(), "1000".to_owned()),
        ("_elements".to_owned(), "id".to_owned()),
    ];
    loop {
        let request = SearchRequest {
            scope: SearchScope::Type("Patient".into()),
            params: params.clone(),
            handling: search::Handling::Strict,
        };
        let page: Value =
            serde_json::from_slice(&repository.search(&ctx(), "http://bench/fhir", &request)?)?;
        patients.extend(ids(&page));
        match next_page(&page) {
            Some(next) => params = next,
            None => break,
        }
    }
    if patients.is_empty() {
        bail!("the store holds no patients: load it first");
    }
    let started = Instant::now();
    let units = (0..count).map(|i| {
        let patient = &patients[i % patients.len()];
        let actor = if i < patients.len() {
            organization.to_owned()
        } else {
            format!("Organization/other-{}", i / patients.len())
        };
        let consent = serde_json::json!({
            "resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": format!("Patient/{patient}")},
            "provision": {"type": "permit",
                "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                           "reference": {"reference": actor}}],
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]}
        });
        ImportUnit {
            source: format!("consent {i}"),
            json: consent.to_string().into_bytes(),
        }
    });
    let report = repository.import(&ctx(), units, ImportOptions::default(), &|_| {});
    eprintln!(
        "wrote {} consents over {} patients in {:.1} s; {} failed",
        report.counts.created,
        patients.len(),
        started.elapsed().as_secs_f64(),
        report.counts.failed
    );
    repository.store().refresh_statistics()?;
    Ok(())
}

/// Copy `k` of a bundle: every UUID gets the suffix `-k`, except those after a `|` (the
/// identifiers that conditional references to the shared practitioners and organisations use).
fn copy_of(text: &str, k: usize) -> String {
    if k == 0 {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + text.len() / 20);
    let mut i = 0;
    while i < bytes.len() {
        if is_uuid(&bytes[i..]) && (i == 0 || bytes[i - 1] != b'|') {
            out.push_str(&text[i..i + 36]);
            out.push_str(&format!("-{k}"));
            i += 36;
        } else {
            let c = text[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn is_uuid(bytes: &[u8]) -> bool {
    bytes.len() >= 36
        && bytes[..36].iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
        && bytes
            .get(36)
            .is_none_or(|b| !b.is_ascii_hexdigit() && *b != b'-')
}

fn load(
    repository: &Repository,
    loader: &Caller,
    copies: usize,
    dirs: &[PathBuf],
    refresh_statistics: bool,
) -> Result<()> {
    let mut files = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    let (shared, patients): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("0-"))
    });
    let started = Instant::now();
    let units = shared
        .iter()
        .map(|p| (p.clone(), 0))
        .chain((0..copies).flat_map(|k| patients.iter().map(move |p| (p.clone(), k))))
        .map(|(path, k)| {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            ImportUnit {
                source: format!("{}#{k}", path.display()),
                json: copy_of(&text, k).into_bytes(),
            }
        });
    // As `meridian import` loads: into an empty SQLite store the search indexes come last.
    repository.store().begin_bulk_load()?;
    let options = ImportOptions {
        refresh_statistics,
        ..ImportOptions::default()
    };
    let report = repository.import(loader, units, options, &|_| {});
    repository.store().end_bulk_load()?;
    eprintln!(
        "\nloaded {} resources ({} created) in {:.1} s; {} failed",
        report.counts.resources(),
        report.counts.created,
        started.elapsed().as_secs_f64(),
        report.counts.failed
    );
    for failure in report.failures.iter().take(5) {
        eprintln!(
            "  {}: {:?}",
            failure.source,
            failure.issues.first().map(|i| &i.diagnostics)
        );
    }
    Ok(())
}

fn search(repository: &Repository, scope: SearchScope, query: &str) -> Result<Value> {
    let request = SearchRequest {
        scope,
        params: repository::parse_query(query),
        handling: search::Handling::Strict,
    };
    let bytes = repository
        .search(&ctx(), "http://bench/fhir", &request)
        .map_err(|e| anyhow::anyhow!("{query}: {e}"))?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// The parameters of a Bundle's next page, if it has one.
fn next_page(bundle: &Value) -> Option<Vec<(String, String)>> {
    bundle["link"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .and_then(|url| url.split_once('?'))
        .map(|(_, query)| repository::parse_query(query))
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

struct Sample {
    patients: Vec<String>,
    families: Vec<String>,
    largest: String,
}

fn sample(repository: &Repository) -> Result<Sample> {
    let page = search(
        repository,
        SearchScope::Type("Patient".into()),
        "_count=200",
    )?;
    let patients = ids(&page);
    let families = page["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            e["resource"]["name"][0]["family"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let mut largest = (0, String::new());
    for id in &patients {
        let counted = search(
            repository,
            SearchScope::Type("Observation".into()),
            &format!("subject=Patient/{id}&_summary=count"),
        )?;
        let n = counted["total"].as_u64().unwrap_or(0);
        if n > largest.0 {
            largest = (n, id.clone());
        }
    }
    if patients.is_empty() {
        bail!("the store holds no patients: load it first");
    }
    Ok(Sample {
        patients,
        families,
        largest: largest.1,
    })
}

const CODES: [&str; 6] = ["8867-4", "29463-7", "8302-2", "2339-0", "72514-3", "6690-2"];

fn run(repository: &Repository, sample: Sample, iterations: usize, label: &str) -> Result<()> {
    let pick = |list: &[String], i: usize| list[i % list.len()].clone();
    type Query = Box<dyn Fn(usize) -> (SearchScope, String)>;
    let patients = sample.patients.clone();
    let families = sample.families.clone();
    let queries: Vec<(&str, Query)> = vec![
        (
            "token system|code",
            Box::new(|i| {
                (
                    SearchScope::Type("Observation".into()),
                    format!("code=http://loinc.org|{}", CODES[i % CODES.len()]),
                )
            }),
        ),
        (
            "token code",
            Box::new(|i| {
                (
                    SearchScope::Type("Condition".into()),
                    format!(
                        "code={}",
                        ["44054006", "38341003", "15777000", "40055000"][i % 4]
                    ),
                )
            }),
        ),
        (
            "date ge",
            Box::new(|i| {
                (
                    SearchScope::Type("Observation".into()),
                    format!("date=ge{}-01-01", 2000 + i % 20),
                )
            }),
        ),
        (
            "date eq year",
            Box::new(|i| {
                (
                    SearchScope::Type("Encounter".into()),
                    format!("date={}", 2000 + i % 20),
                )
            }),
        ),
        ("reference", {
            let p = patients.clone();
            Box::new(move |i| {
                (
                    SearchScope::Type("Observation".into()),
                    format!("subject=Patient/{}", pick(&p, i)),
                )
            })
        }),
        ("string prefix", {
            let f = families.clone();
            Box::new(move |i| {
                let prefix: String = pick(&f, i).chars().take(3).collect();
                (
                    SearchScope::Type("Patient".into()),
                    format!("family={prefix}"),
                )
            })
        }),
        // Every Synthea resident lives in Massachusetts: a name-like search that fills every
        // page, whatever the store's size.
        (
            "string prefix, every patient",
            Box::new(|i| {
                (
                    SearchScope::Type("Patient".into()),
                    format!("address-state={}", ["M", "Ma", "MA"][i % 3]),
                )
            }),
        ),
        ("patient+code+date", {
            let p = patients.clone();
            Box::new(move |i| {
                let query = format!(
                    "patient={}&code={}&date=ge2010",
                    pick(&p, i),
                    CODES[i % CODES.len()]
                );
                (SearchScope::Type("Observation".into()), query)
            })
        }),
        ("chain", {
            let f = families.clone();
            Box::new(move |i| {
                (
                    SearchScope::Type("Observation".into()),
                    format!("subject:Patient.family={}", pick(&f, i)),
                )
            })
        }),
        (
            "chain, half the patients",
            Box::new(|i| {
                (
                    SearchScope::Type("Observation".into()),
                    format!("subject:Patient.gender={}", ["female", "male"][i % 2]),
                )
            }),
        ),
        (
            "_has",
            Box::new(|i| {
                (
                    SearchScope::Type("Patient".into()),
                    format!("_has:Observation:patient:code={}", CODES[i % CODES.len()]),
                )
            }),
        ),
    ];
    println!("| {label} query | p50 ms | p99 ms | mean matches |");
    println!("|---|---|---|---|");
    // SEARCH_BENCH_ONLY=NAME runs the queries whose name contains NAME (and not $everything);
    // SEARCH_BENCH_SLOWEST=N lists each query's N slowest runs, to find what a p99 is made of.
    let only = std::env::var("SEARCH_BENCH_ONLY").ok();
    let slowest: usize = std::env::var("SEARCH_BENCH_SLOWEST")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for (name, query) in &queries {
        if only
            .as_ref()
            .is_some_and(|only| !name.contains(only.as_str()))
        {
            continue;
        }
        // One unmeasured pass over the same parameters first: the figures are of a store in
        // use, not of pages another store's run pushed out of the cache.
        for i in 0..iterations {
            let (scope, text) = query(i);
            search(repository, scope, &text)?;
        }
        let mut latencies = Vec::with_capacity(iterations);
        let mut runs = Vec::new();
        let mut matches = 0usize;
        for i in 0..iterations {
            let (scope, text) = query(i);
            let started = Instant::now();
            let bundle = search(repository, scope, &text)?;
            latencies.push(started.elapsed());
            matches += ids(&bundle).len();
            if slowest > 0 {
                runs.push((started.elapsed(), text));
            }
        }
        report(name, &mut latencies, matches as f64 / iterations as f64);
        runs.sort_by_key(|run| std::cmp::Reverse(run.0));
        for (took, text) in runs.iter().take(slowest) {
            eprintln!("    {:.2} ms  {text}", took.as_secs_f64() * 1e3);
        }
    }
    if only.is_some() {
        return Ok(());
    }
    // The whole record of the patient with the most observations, every page of it.
    let mut latencies = Vec::new();
    let mut size = 0;
    // The first run is the warm-up.
    for run in 0..=iterations.min(50) {
        let started = Instant::now();
        let mut params = vec![("_count".to_owned(), "1000".to_owned())];
        size = 0;
        loop {
            let bundle = repository
                .everything(&ctx(), "http://bench/fhir", &sample.largest, &params)
                .map_err(|e| anyhow::anyhow!("$everything: {e}"))?;
            // Read the next link and count entries from the text: parsing a Bundle of a
            // thousand resources would cost more than the server's work being measured.
            let text = std::str::from_utf8(&bundle)?;
            size += text.matches("\"fullUrl\":").count();
            let next = text
                .split_once("\"relation\":\"next\",\"url\":\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .and_then(|(url, _)| url.split_once('?'));
            match next {
                Some((_, query)) => params = repository::parse_query(query),
                None => break,
            }
        }
        if run > 0 {
            latencies.push(started.elapsed());
        }
    }
    report(
        "$everything (largest sampled patient, all pages of 1000)",
        &mut latencies,
        size as f64,
    );
    Ok(())
}

fn report(name: &str, latencies: &mut [Duration], matches: f64) {
    latencies.sort();
    let at = |q: f64| {
        latencies[((latencies.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3
    };
    println!(
        "| {name} | {:.2} | {:.2} | {matches:.0} |",
        at(0.5),
        at(0.99)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_change_every_uuid_but_identifiers_in_conditional_references() {
        let text = r#"{"fullUrl":"urn:uuid:8a4c9c04-1524-9f1c-d65b-9b17e4520fef","ref":"Practitioner?identifier=http://x|0000016f-57cb-cdaa-0000-000000000028"}"#;
        assert_eq!(copy_of(text, 0), text);
        assert_eq!(
            copy_of(text, 3),
            r#"{"fullUrl":"urn:uuid:8a4c9c04-1524-9f1c-d65b-9b17e4520fef-3","ref":"Practitioner?identifier=http://x|0000016f-57cb-cdaa-0000-000000000028"}"#
        );
    }
}
