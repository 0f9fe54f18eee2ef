//! Unsupervised training (EM) and pairwise evaluation against known truth, shared by the FEBRL
//! and the generated-data runs.

use std::collections::HashSet;

use identity::compare::compare;
use identity::em::{PatternCounts, comparison_space, estimate_m, estimate_u};
use identity::index::{Index, clusters};
use identity::model::{Decision, Matcher, Model, TermFrequencies, Thresholds};
use identity::record::{IdentifierSystems, Record};
use identity::synthetic::{Generator, Rng};

/// Trains a matcher on `index` without labels: u from random pairs, m and the prior by EM on
/// the blocked pairs, term frequencies from the records.
pub fn train(index: &Index, thresholds: Thresholds) -> (Matcher, usize, usize) {
    let mut rng = Rng::new(7);
    let mut random = PatternCounts::default();
    let n = index.len() as u64;
    for _ in 0..200_000.min(n * n / 2) {
        let (a, b) = (rng.below(n) as u32, rng.below(n) as u32);
        if a != b {
            random.add(&compare(index.record(a), index.record(b)));
        }
    }
    let blocked_counts = index.for_each_pair(2, |_, _, a, b| Some(compare(a, b).pattern()));
    let mut blocked = PatternCounts::default();
    for pattern in &blocked_counts {
        let levels = identity::compare::Comparison::from_pattern(*pattern);
        blocked.add(&identity::compare::Comparison {
            levels,
            names: None,
            swapped: false,
        });
    }
    let mut start = Model::starting_point();
    start.u = estimate_u(&random);
    start.prior = 1.0 / index.len() as f64;
    start.refresh();
    let space = comparison_space(&blocked, &random, index.len());
    let estimate = estimate_m(&start, &space, 200);
    let frequencies =
        TermFrequencies::from_records((0..index.len() as u32).map(|i| index.record(i)));
    (
        Matcher::new(estimate.model, Some(frequencies), thresholds),
        estimate.iterations,
        blocked_counts.len(),
    )
}

/// Precision, recall and F1.
#[derive(Debug, Clone, Copy)]
pub struct Quality {
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
}

impl Quality {
    pub fn of(predicted: &HashSet<(u32, u32)>, truth: &HashSet<(u32, u32)>) -> Quality {
        let true_positives = predicted.intersection(truth).count();
        Quality {
            true_positives,
            false_positives: predicted.len() - true_positives,
            false_negatives: truth.len() - true_positives,
        }
    }
    pub fn precision(&self) -> f64 {
        self.true_positives as f64 / (self.true_positives + self.false_positives).max(1) as f64
    }
    pub fn recall(&self) -> f64 {
        self.true_positives as f64 / (self.true_positives + self.false_negatives).max(1) as f64
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// Every pair of records of the same person.
pub fn truth_pairs(people: &[u32]) -> HashSet<(u32, u32)> {
    let mut by_person: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    for (i, person) in people.iter().enumerate() {
        by_person.entry(*person).or_default().push(i as u32);
    }
    let mut pairs = HashSet::new();
    for members in by_person.values() {
        for (x, a) in members.iter().enumerate() {
            for b in &members[x + 1..] {
                pairs.insert(((*a).max(*b), (*a).min(*b)));
            }
        }
    }
    pairs
}

/// What one evaluation found.
pub struct Evaluation {
    /// Pairs the matcher linked automatically.
    pub links: Quality,
    /// Pairs in the same cluster once automatic links are followed (what master records show).
    pub clusters: Quality,
    /// Pairs sent to review.
    pub reviews: usize,
    pub reviewed_true: usize,
}

pub fn evaluate(index: &Index, matcher: &Matcher, truth: &HashSet<(u32, u32)>) -> Evaluation {
    let blocked: HashSet<(u32, u32)> = index
        .for_each_pair(2, |a, b, _, _| Some((a, b)))
        .into_iter()
        .collect();
    let missed: Vec<&(u32, u32)> = truth.iter().filter(|p| !blocked.contains(p)).collect();
    eprintln!(
        "blocking: {} candidate pairs, {} of {} true pairs ({:.4})",
        blocked.len(),
        truth.len() - missed.len(),
        truth.len(),
        1.0 - missed.len() as f64 / truth.len().max(1) as f64
    );
    if std::env::var_os("SHOW_MISSES").is_some() {
        for (a, b) in missed.iter().take(5) {
            eprintln!(
                "  not blocked:\n    {:?}\n    {:?}",
                index.record(*a),
                index.record(*b)
            );
        }
    }
    let decided = index.link_pairs(matcher, 2);
    let links: HashSet<(u32, u32)> = decided
        .iter()
        .filter(|(_, _, d, _)| *d == Decision::AutoLink)
        .map(|(a, b, _, _)| (*a, *b))
        .collect();
    let reviews: Vec<(u32, u32)> = decided
        .iter()
        .filter(|(_, _, d, _)| *d == Decision::Review)
        .map(|(a, b, _, _)| (*a, *b))
        .collect();
    let cluster_of = clusters(index.len(), links.iter().copied());
    let mut members: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    for (i, c) in cluster_of.iter().enumerate() {
        members.entry(*c).or_default().push(i as u32);
    }
    let mut clustered = HashSet::new();
    for group in members.values() {
        for (x, a) in group.iter().enumerate() {
            for b in &group[x + 1..] {
                clustered.insert(((*a).max(*b), (*a).min(*b)));
            }
        }
    }
    if std::env::var_os("SHOW_MISSES").is_some() {
        for (a, b) in truth
            .iter()
            .filter(|p| blocked.contains(p) && !links.contains(p))
            .take(8)
        {
            let score = matcher.score(index.record(*a), index.record(*b));
            eprintln!(
                "  not linked ({:.3} {:?}):\n    {:?}\n    {:?}",
                score.probability,
                score.comparison.levels,
                index.record(*a),
                index.record(*b)
            );
        }
        for (a, b) in links.iter().filter(|p| !truth.contains(p)).take(5) {
            let score = matcher.score(index.record(*a), index.record(*b));
            eprintln!(
                "  wrongly linked ({:.3} {:?}):\n    {:?}\n    {:?}",
                score.probability,
                score.comparison.levels,
                index.record(*a),
                index.record(*b)
            );
        }
    }
    Evaluation {
        links: Quality::of(&links, truth),
        clusters: Quality::of(&clustered, truth),
        reviews: reviews.len(),
        reviewed_true: reviews.iter().filter(|p| truth.contains(p)).count(),
    }
}

/// Prints one evaluation as a table row.
pub fn row(name: &str, evaluation: &Evaluation) {
    let q = &evaluation.links;
    let c = &evaluation.clusters;
    println!(
        "| {name} | {:.4} | {:.4} | **{:.4}** | {:.4} | {} / {} / {} | {} ({} true) |",
        q.precision(),
        q.recall(),
        q.f1(),
        c.f1(),
        q.true_positives,
        q.false_positives,
        q.false_negatives,
        evaluation.reviews,
        evaluation.reviewed_true,
    );
}

pub fn header() {
    println!(
        "| data | precision | recall | F1 (auto links) | F1 (clusters) | TP / FP / FN | review queue |"
    );
    println!("|---|---|---|---|---|---|---|");
}

/// Generated regional data: `people` residents, each registered 1 to 4 times.
pub fn regional(people: usize, print_model: bool) {
    let mut generator = Generator::new(20_261_123);
    let systems = IdentifierSystems::default();
    let mut records = Vec::new();
    let mut owners = Vec::new();
    for number in 0..people as u32 {
        let resident = generator.resident(number);
        let copies = match generator.rng().below(100) {
            0..=49 => 1,
            50..=79 => 2,
            80..=94 => 3,
            _ => 4,
        };
        for copy in 0..copies {
            let patient = generator.registration(&resident, copy, false);
            records.push(Record::from_fhir(&patient, &systems));
            owners.push(number);
        }
    }
    let truth = truth_pairs(&owners);
    println!(
        "generated: {people} residents, {} registrations, {} true pairs",
        records.len(),
        truth.len()
    );
    let without_ids: Vec<Record> = records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.identifiers.clear();
            r
        })
        .collect();
    header();
    for (name, records) in [
        ("regional, with identifiers", records),
        ("regional, without identifiers", without_ids),
    ] {
        let started = std::time::Instant::now();
        let index = Index::build(records, 2);
        let (matcher, iterations, pairs) = train(&index, Thresholds::default());
        if print_model {
            if name.ends_with("with identifiers") {
                print_table(&matcher.model);
            }
            continue;
        }
        let evaluation = evaluate(&index, &matcher, &truth);
        row(name, &evaluation);
        eprintln!(
            "{name}: {pairs} blocked pairs, EM {iterations} iterations, prior {:.4}, {:.1} s",
            matcher.model.prior,
            started.elapsed().as_secs_f64()
        );
    }
}

/// The model as the Rust table of `Model::regional`.
fn print_table(model: &Model) {
    println!("        // Estimated by `identity-bench train` (EM on generated regional data).");
    println!("        let table: [(&[f64], &[f64]); FIELD_COUNT] = [");
    for field in identity::compare::Field::ALL {
        let f = field as usize;
        let n = field.levels();
        let fmt = |values: &[f64]| {
            values
                .iter()
                .map(|v| format!("{v:.6e}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("            // {}", field.name());
        println!(
            "            (&[{}], &[{}]),",
            fmt(&model.m[f][1..=n]),
            fmt(&model.u[f][1..=n])
        );
    }
    println!("        ];");
}
