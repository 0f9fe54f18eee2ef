//! Unsupervised training (EM) and pairwise evaluation against known truth, shared by the FEBRL
//! and the generated-data runs.

use std::collections::HashSet;

use residents::compare::Field;
use residents::index::{Index, clusters};
use residents::model::{Decision, Matcher, Model, Thresholds};
use residents::record::{IdentifierSystems, Record};
use residents::synthetic::Generator;

/// Trains a matcher on `index` without labels (`residents::em::train`, the estimation the
/// service runs on its own Patients).
pub fn train(index: &Index, thresholds: Thresholds) -> (Matcher, usize, usize) {
    let training = residents::em::train(index, 2);
    (
        Matcher::new(training.model, Some(training.frequencies), thresholds),
        training.iterations,
        training.blocked_pairs,
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

/// The pairs of `a` that are not in `b`, in order (so explanations print the same every run).
fn sorted_difference(a: &HashSet<(u32, u32)>, b: &HashSet<(u32, u32)>) -> Vec<(u32, u32)> {
    let mut pairs: Vec<(u32, u32)> = a.difference(b).copied().collect();
    pairs.sort_unstable();
    pairs
}

/// Decides every blocked pair of `index` and measures the decisions against `truth`. With
/// `sources` (each record's text as its source wrote it), every missed true pair and every
/// wrong link is explained on standard error, then the margins: the three weakest true links
/// and the three strongest pairs that are not matches.
pub fn evaluate(
    index: &Index,
    matcher: &Matcher,
    truth: &HashSet<(u32, u32)>,
    sources: Option<&[String]>,
) -> Evaluation {
    let blocked: HashSet<(u32, u32)> = index
        .for_each_pair(2, |a, b, _, _| Some((a, b)))
        .into_iter()
        .collect();
    let not_blocked = truth.iter().filter(|p| !blocked.contains(p)).count();
    eprintln!(
        "blocking: {} candidate pairs, {} of {} true pairs ({:.4})",
        blocked.len(),
        truth.len() - not_blocked,
        truth.len(),
        1.0 - not_blocked as f64 / truth.len().max(1) as f64
    );
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
    if let Some(sources) = sources {
        for (a, b) in sorted_difference(truth, &links) {
            let why = if blocked.contains(&(a, b)) {
                "missed, blocked"
            } else {
                "missed, not a blocking candidate"
            };
            explain(index, matcher, sources, why, a, b);
        }
        for (a, b) in sorted_difference(&links, truth) {
            explain(index, matcher, sources, "wrong link", a, b);
        }
        // The margins: the weakest true links and the strongest pairs that are not matches.
        let mut linked_true: Vec<(f64, u32, u32)> = decided
            .iter()
            .filter(|(a, b, d, _)| *d == Decision::AutoLink && truth.contains(&(*a, *b)))
            .map(|(a, b, _, p)| (*p, *a, *b))
            .collect();
        linked_true.sort_by(|x, y| x.0.total_cmp(&y.0));
        for (_, a, b) in linked_true.iter().take(3) {
            explain(index, matcher, sources, "weakest true link", *a, *b);
        }
        let mut false_candidates: Vec<(f64, u32, u32)> = decided
            .iter()
            .filter(|(a, b, _, _)| !truth.contains(&(*a, *b)))
            .map(|(a, b, _, p)| (*p, *a, *b))
            .collect();
        false_candidates.sort_by(|x, y| y.0.total_cmp(&x.0));
        for (_, a, b) in false_candidates.iter().take(3) {
            explain(index, matcher, sources, "strongest non-match", *a, *b);
        }
    }
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
    Evaluation {
        links: Quality::of(&links, truth),
        clusters: Quality::of(&clustered, truth),
        reviews: reviews.len(),
        reviewed_true: reviews.iter().filter(|p| truth.contains(p)).count(),
    }
}

/// Prints one pair on standard error: both records as their source wrote them, then every
/// compared field's level and what it added to the weight, the prior, the match probability,
/// the decision and any conflicting evidence.
fn explain(index: &Index, matcher: &Matcher, sources: &[String], what: &str, a: u32, b: u32) {
    let (record_a, record_b) = (index.record(a), index.record(b));
    let verdict = matcher.decide(record_a, record_b);
    let score = verdict.score;
    let contributions = matcher.contributions(record_a, &score.comparison);
    let fields: Vec<String> = Field::ALL
        .iter()
        .map(|field| {
            let level = score.comparison.level(*field);
            if level == 0 {
                format!("{} missing", field.name())
            } else {
                format!(
                    "{} {} {:+.1}",
                    field.name(),
                    field.level_label(level),
                    contributions[*field as usize]
                )
            }
        })
        .collect();
    let prior = matcher.model.prior;
    let conflicts: Vec<&str> = verdict.conflicts.iter().map(|c| c.describe()).collect();
    eprintln!(
        "{what}: probability {:.4}, {:?}{}{}\n  {}\n  {}\n  levels {:?}: {}; prior {:+.1}",
        score.probability,
        verdict.decision,
        if score.comparison.swapped {
            ", names swapped"
        } else {
            ""
        },
        if conflicts.is_empty() {
            String::new()
        } else {
            format!(", conflict: {}", conflicts.join("; "))
        },
        sources[a as usize],
        sources[b as usize],
        score.comparison.levels,
        fields.join(", "),
        (prior / (1.0 - prior)).log2(),
    );
}

/// Prints the model on standard error: per field and level, m, u and the weight in bits.
pub fn explain_model(model: &Model) {
    for field in Field::ALL {
        let levels: Vec<String> = (1..=field.levels() as u8)
            .map(|level| {
                let (m, u) = (
                    model.m[field as usize][usize::from(level)],
                    model.u[field as usize][usize::from(level)],
                );
                format!(
                    "{} m {m:.2e} u {u:.2e} {:+.1}",
                    field.level_label(level),
                    model.weight(field, level)
                )
            })
            .collect();
        eprintln!("  {}: {}", field.name(), levels.join(" | "));
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
pub fn regional(people: usize, print_model: bool, explain: bool) {
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
        let sources: Option<Vec<String>> = explain.then(|| {
            (0..index.len() as u32)
                .map(|i| format!("{:?}", index.record(i)))
                .collect()
        });
        let evaluation = evaluate(&index, &matcher, &truth, sources.as_deref());
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
    for field in Field::ALL {
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
