//! Speed at scale: matching one record against an index of N people, and deduplicating N
//! records in one batch, on generated regional data.

use std::time::Instant;

use residents::index::{Index, clusters};
use residents::model::{Decision, Matcher, Model, TermFrequencies, Thresholds};
use residents::record::{IdentifierSystems, Record};
use residents::synthetic::Generator;

fn matcher_for(index: &Index) -> Matcher {
    let mut model = Model::regional();
    model.prior = 1.0 / index.len().max(2) as f64;
    model.refresh();
    let frequencies =
        TermFrequencies::from_records((0..index.len() as u32).map(|i| index.record(i)));
    Matcher::new(model, Some(frequencies), Thresholds::default())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// An index of `people` residents (one registration each), then `queries` new registrations:
/// half of residents already in the index (with registration errors), half of new ones.
pub fn index(people: usize, queries: usize) {
    let systems = IdentifierSystems::default();
    let mut generator = Generator::new(1);
    let started = Instant::now();
    let mut residents = Vec::with_capacity(people);
    let mut records = Vec::with_capacity(people);
    for number in 0..people as u32 {
        let resident = generator.resident(number);
        records.push(Record::from_fhir(
            &generator.registration(&resident, 0, false),
            &systems,
        ));
        if number % 2 == 0 || residents.len() < queries {
            residents.push(resident);
        }
    }
    eprintln!(
        "generated {people} registrations in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let index = Index::build(records, 2);
    let build = started.elapsed().as_secs_f64();
    let matcher = matcher_for(&index);
    let mut query_records = Vec::with_capacity(queries);
    for q in 0..queries {
        let resident = if q % 2 == 0 {
            residents[generator.rng().below(residents.len() as u64) as usize].clone()
        } else {
            generator.resident(people as u32 + q as u32)
        };
        query_records.push((
            q % 2 == 0,
            resident.number,
            Record::from_fhir(&generator.registration(&resident, 1, false), &systems),
        ));
    }
    let mut times = Vec::with_capacity(queries);
    let mut candidates = Vec::with_capacity(queries);
    let (mut found, mut wrong) = (0usize, 0usize);
    for (known, number, record) in &query_records {
        let started = Instant::now();
        let results = index.search(&matcher, record);
        times.push(started.elapsed().as_secs_f64() * 1e3);
        candidates.push(results.len() as f64);
        if let Some(best) = results
            .first()
            .filter(|c| c.verdict.decision == Decision::AutoLink)
        {
            if *known && best.record == *number {
                found += 1;
            } else {
                wrong += 1;
            }
        }
    }
    times.sort_by(f64::total_cmp);
    candidates.sort_by(f64::total_cmp);
    println!(
        "| index size | build | queries | p50 | p99 | max | candidates p50 / p99 | known found (auto-link) | wrong links |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {people} | {build:.1} s | {queries} | {:.3} ms | {:.3} ms | {:.3} ms | {} / {} | {} of {} | {} |",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or(0.0),
        percentile(&candidates, 0.5),
        percentile(&candidates, 0.99),
        found,
        queries.div_ceil(2),
        wrong
    );
}

/// Deduplicates `total` registrations of fewer residents in one batch.
pub fn dedup(total: usize) {
    let systems = IdentifierSystems::default();
    let mut generator = Generator::new(2);
    let started = Instant::now();
    let mut records = Vec::with_capacity(total);
    let mut owners = Vec::with_capacity(total);
    let mut number = 0u32;
    while records.len() < total {
        let resident = generator.resident(number);
        let copies = 1 + generator.rng().below(3) as u32;
        for copy in 0..copies {
            if records.len() == total {
                break;
            }
            records.push(Record::from_fhir(
                &generator.registration(&resident, copy, false),
                &systems,
            ));
            owners.push(number);
        }
        number += 1;
    }
    eprintln!(
        "generated {total} registrations of {number} residents in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let index = Index::build(records, 2);
    let built = started.elapsed().as_secs_f64();
    let matcher = matcher_for(&index);
    if std::env::var_os("COUNT_PAIRS").is_some() {
        let t = Instant::now();
        let pairs = index.for_each_pair(2, |_, _, _, _| Some(())).len();
        eprintln!(
            "{pairs} blocked pairs, enumerated in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let mut blocks: std::collections::HashMap<(String, u64), u64> = Default::default();
        for i in 0..index.len() as u32 {
            for key in residents::blocking::blocking_keys(index.record(i)) {
                *blocks
                    .entry((residents::blocking::kind_of(key).to_string(), key))
                    .or_default() += 1;
            }
        }
        let mut by_kind: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for ((kind, _), n) in blocks {
            let entry = by_kind.entry(kind).or_default();
            entry.0 += n.min(500) * (n.min(500) - 1) / 2;
            entry.1 = entry.1.max(n);
        }
        eprintln!("pairs by key kind (capped), largest block: {by_kind:?}");
    }
    let scored = Instant::now();
    let links = index.link_pairs(&matcher, 2);
    let auto: Vec<(u32, u32)> = links
        .iter()
        .filter(|(_, _, d, _)| *d == Decision::AutoLink)
        .map(|(a, b, _, _)| (*a, *b))
        .collect();
    let cluster = clusters(index.len(), auto.iter().copied());
    let elapsed = started.elapsed().as_secs_f64();
    let scoring = scored.elapsed().as_secs_f64();
    let people = {
        let mut roots = cluster.clone();
        roots.sort_unstable();
        roots.dedup();
        roots.len()
    };
    let wrong = auto
        .iter()
        .filter(|(a, b)| owners[*a as usize] != owners[*b as usize])
        .count();
    let reviews = links.len() - auto.len();
    println!(
        "| records | residents (truth) | master records found | index build | pairs scored + clustering | total | auto links (wrong) | reviews |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {total} | {number} | {people} | {built:.1} s | {scoring:.1} s | **{elapsed:.1} s** | {} ({wrong}) | {reviews} |",
        auto.len()
    );
}
