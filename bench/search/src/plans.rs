//! The plan-regression matrix (`search-bench plans`): every query shape the search benchmark and
//! the search tests use, each at `_count` 10, 100 and 1,000, its first page and a deep page (the
//! tenth, or the last there is), timed through the repository as `run` times it. One line of
//! JSON per measurement goes to `--out`, for `plans_report.py` to set the stores side by side.
//!
//! A shape's parameters come from the loaded data (the patient with the most observations, a
//! family name, an identifier), so every store of the same sample answers the same query.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use repository::{Repository, SearchRequest, SearchScope};
use serde_json::{Value, json};

use crate::{Sample, ctx, ids, next_page, search};

/// Page sizes measured.
const COUNTS: [usize; 3] = [10, 100, 1000];
/// The deep page: this one, or the last one when there are fewer.
const DEEP_PAGE: usize = 10;
/// Timed runs of each page (after one unmeasured); the median is reported.
const RUNS: usize = 3;

/// What a shape's parameters are drawn from.
struct Values {
    patient: String,
    family: String,
    identifier: String,
    observation: String,
    encounter: String,
}

fn values(repository: &Repository, sample: &Sample) -> Result<Values> {
    let first = |scope: &str, query: &str| -> Result<Value> {
        let page = search(repository, SearchScope::Type(scope.into()), query)?;
        page["entry"][0]["resource"]
            .as_object()
            .map(|o| Value::Object(o.clone()))
            .with_context(|| format!("no {scope} matches {query}"))
    };
    let patient = first("Patient", &format!("_id={}", sample.largest))?;
    let identifier = patient["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|i| {
            Some(format!(
                "{}|{}",
                i["system"].as_str()?,
                i["value"].as_str()?
            ))
        })
        .context("the sampled patient has no identifier")?;
    let family = patient["name"][0]["family"]
        .as_str()
        .context("the sampled patient has no family name")?
        .to_owned();
    let observation = first(
        "Observation",
        &format!("subject=Patient/{}", sample.largest),
    )?;
    let encounter = first("Encounter", &format!("subject=Patient/{}", sample.largest))?;
    Ok(Values {
        patient: sample.largest.clone(),
        family,
        identifier,
        observation: observation["id"].as_str().unwrap_or_default().to_owned(),
        encounter: encounter["id"].as_str().unwrap_or_default().to_owned(),
    })
}

/// Every shape: a name, the scope, and its query without `_count`.
fn shapes(v: &Values) -> Vec<(&'static str, SearchScope, String)> {
    let t = |name: &str| SearchScope::Type(name.into());
    let p = &v.patient;
    let bp = "http://loinc.org|85354-9";
    vec![
        ("type, no parameters", t("Observation"), String::new()),
        ("_id", t("Observation"), format!("_id={}", v.observation)),
        ("_lastUpdated ge", t("Observation"), "_lastUpdated=ge2000-01-01".into()),
        ("token system|code", t("Observation"), "code=http://loinc.org|8867-4".into()),
        ("token code", t("Condition"), "code=44054006".into()),
        ("token code, rare", t("Condition"), "code=15777000".into()),
        ("token OR list", t("Observation"), "code=8867-4,8302-2,29463-7".into()),
        ("token :not", t("Observation"), "status:not=final".into()),
        ("token category", t("Observation"), "category=vital-signs".into()),
        ("token identifier", t("Patient"), format!("identifier={}", v.identifier)),
        ("token gender (half)", t("Patient"), "gender=female".into()),
        ("date ge", t("Observation"), "date=ge2015-01-01".into()),
        ("date lt", t("Observation"), "date=lt2020".into()),
        ("date ge 2010", t("Observation"), "date=ge2010".into()),
        ("date eq year", t("Encounter"), "date=2015".into()),
        ("date range", t("Observation"), "date=ge2015-01-01&date=lt2016-01-01".into()),
        ("date sa", t("Encounter"), "date=sa2019-06-01".into()),
        ("reference", t("Observation"), format!("subject=Patient/{p}")),
        ("reference, patient", t("Observation"), format!("patient={p}")),
        ("reference, encounter", t("Observation"), format!("encounter=Encounter/{}", v.encounter)),
        ("string prefix", t("Patient"), format!("family={}", &v.family[..v.family.len().min(3)])),
        ("string :exact", t("Patient"), format!("family:exact={}", v.family)),
        ("string :contains", t("Patient"), "family:contains=an".into()),
        ("string, every patient", t("Patient"), "address-state=MA".into()),
        ("string name", t("Patient"), "name=Mar".into()),
        ("quantity gt", t("Observation"), "value-quantity=gt100".into()),
        ("quantity with unit", t("Observation"), "value-quantity=lt5|http://unitsofmeasure.org|mmol/L".into()),
        ("quantity eq", t("Observation"), "value-quantity=70".into()),
        ("composite code-value", t("Observation"), "code-value-quantity=http://loinc.org|8867-4$gt80".into()),
        ("composite component", t("Observation"), "component-code-value-quantity=http://loinc.org|8480-6$gt140".into()),
        (":missing true", t("Observation"), "value-quantity:missing=true".into()),
        (":missing false", t("Observation"), "value-quantity:missing=false".into()),
        ("patient+code+date", t("Observation"), format!("patient={p}&code=8867-4&date=ge2010")),
        ("code+date", t("Observation"), "code=http://loinc.org|8867-4&date=ge2015".into()),
        ("compartment", SearchScope::Compartment { compartment: "Patient".into(), id: p.clone(), resource_type: "Observation".into() }, String::new()),
        ("compartment+code", SearchScope::Compartment { compartment: "Patient".into(), id: p.clone(), resource_type: "Observation".into() }, format!("code={bp}")),
        ("chain", t("Observation"), format!("subject:Patient.family={}", v.family)),
        ("chain (half)", t("Observation"), "subject:Patient.gender=female".into()),
        ("chain, encounter class", t("Observation"), "encounter.class=AMB".into()),
        ("_has", t("Patient"), "_has:Observation:patient:code=8867-4".into()),
        ("_has, rare", t("Patient"), "_has:Condition:patient:code=15777000".into()),
        ("_include", t("Observation"), "code=http://loinc.org|8867-4&_include=Observation:subject".into()),
        ("_include:iterate", t("MedicationRequest"), "status=active&_include=MedicationRequest:encounter&_include:iterate=Encounter:service-provider".into()),
        ("_revinclude", t("Patient"), "gender=female&_revinclude=Condition:subject".into()),
        ("sort -date", t("Observation"), "code=http://loinc.org|8867-4&_sort=-date".into()),
        ("sort family", t("Patient"), "_sort=family".into()),
        ("sort date, whole type", t("Encounter"), "_sort=date".into()),
        ("sort _lastUpdated", t("Observation"), "_sort=-_lastUpdated".into()),
        ("sort two keys", t("Patient"), "_sort=family,-birthdate".into()),
        ("_total accurate", t("Observation"), "code=http://loinc.org|8867-4&_total=accurate".into()),
        ("_total accurate, dense", t("Observation"), "date=ge2010&_total=accurate".into()),
        ("_summary count", t("Observation"), "category=laboratory&_summary=count".into()),
        ("_elements", t("Observation"), "category=laboratory&_elements=code,subject".into()),
        ("system, _type", SearchScope::System, format!("_type=Observation,Condition&patient={p}")),
    ]
}

/// A search's parameters, as `repository::parse_query` gives them.
type Params = Vec<(String, String)>;

/// One page, timed: the median of [`RUNS`] after one unmeasured, what it answered (its
/// resources' ids in order, and its total if it has one) and the parameters of its next page.
fn time_page(
    repository: &Repository,
    scope: &SearchScope,
    params: &[(String, String)],
) -> Result<(Duration, Value, Option<Params>)> {
    let request = SearchRequest {
        scope: scope.clone(),
        params: params.to_vec(),
        handling: search::Handling::Strict,
    };
    let run = || {
        repository
            .search(&ctx(), "http://bench/fhir", &request)
            .map_err(|e| anyhow::anyhow!("{params:?}: {e}"))
    };
    let started = Instant::now();
    let bytes = run()?;
    // A page slower than a second is timed once more, not three times: a cliff's figure is
    // its order of magnitude.
    let runs = if started.elapsed() > Duration::from_secs(1) {
        1
    } else {
        RUNS
    };
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        run()?;
        times.push(started.elapsed());
    }
    times.sort();
    let bundle: Value = serde_json::from_slice(&bytes)?;
    let answer = json!({"ids": ids(&bundle), "total": bundle["total"]});
    Ok((times[runs / 2], answer, next_page(&bundle)))
}

/// Runs the matrix and writes one JSON line per shape and page size to `out`.
pub fn run(
    repository: &Repository,
    sample: &Sample,
    label: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let values = values(repository, sample)?;
    let only = std::env::var("SEARCH_BENCH_ONLY").ok();
    println!("| {label} shape | _count | first ms | deep ms (page) | entries |");
    println!("|---|---|---|---|---|");
    for (name, scope, query) in shapes(&values) {
        if only
            .as_ref()
            .is_some_and(|only| !name.contains(only.as_str()))
        {
            continue;
        }
        for count in COUNTS {
            let mut params = repository::parse_query(&query);
            params.push(("_count".into(), count.to_string()));
            let (first, first_answer, mut next) = match time_page(repository, &scope, &params) {
                Ok(timed) => timed,
                Err(error) => {
                    println!("| {name} | {count} | error: {error} | | |");
                    writeln!(
                        out,
                        "{}",
                        json!({"label": label, "shape": name, "query": query, "count": count, "error": error.to_string()})
                    )?;
                    continue;
                }
            };
            // Walk to the deep page without timing the pages between.
            let mut page = 1;
            let mut deep_params = None;
            while let Some(params) = next.take() {
                page += 1;
                let request = SearchRequest {
                    scope: scope.clone(),
                    params: params.clone(),
                    handling: search::Handling::Strict,
                };
                let bytes = repository
                    .search(&ctx(), "http://bench/fhir", &request)
                    .map_err(|e| anyhow::anyhow!("{name} page {page}: {e}"))?;
                let text = std::str::from_utf8(&bytes)?;
                next = text
                    .split_once("\"relation\":\"next\",\"url\":\"")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .and_then(|(url, _)| url.split_once('?'))
                    .map(|(_, query)| repository::parse_query(query));
                deep_params = Some(params);
                if page == DEEP_PAGE {
                    break;
                }
            }
            let (deep, deep_answer) = match &deep_params {
                Some(params) => {
                    let (time, answer, _) = time_page(repository, &scope, params)?;
                    (Some(time), answer)
                }
                None => (None, Value::Null),
            };
            let entries = first_answer["ids"].as_array().map_or(0, Vec::len);
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!(
                "| {name} | {count} | {:.2} | {} | {entries} |",
                ms(first),
                deep.map_or("-".to_owned(), |d| format!("{:.2} ({page})", ms(d)))
            );
            writeln!(
                out,
                "{}",
                json!({"label": label, "shape": name, "query": query, "count": count,
                       "first_ms": ms(first), "entries": entries,
                       "deep_ms": deep.map(ms), "deep_page": deep.map(|_| page),
                       "first": first_answer, "deep": deep_answer})
            )?;
        }
    }
    Ok(())
}
