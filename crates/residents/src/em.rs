//! Estimating the model from data, without labels: u from random pairs (almost all of which
//! are non-matches), then m and the prior by expectation–maximisation over the pairs blocking
//! brings together, holding u fixed (the approach Splink takes, for the same reason: with u
//! free, EM on blocked pairs drifts towards explaining the blocking rather than the matches).

use std::collections::HashMap;

use crate::compare::{Comparison, FIELD_COUNT, Field, compare};
use crate::index::Index;
use crate::model::{MAX_LEVELS, Model, TermFrequencies};
use crate::random::Rng;

/// Counts of comparison patterns: a pattern is a comparison vector packed into an integer.
#[derive(Debug, Clone, Default)]
pub struct PatternCounts {
    counts: HashMap<u64, f64>,
}

impl PatternCounts {
    pub fn add(&mut self, comparison: &Comparison) {
        self.add_pattern(comparison.pattern(), 1.0);
    }

    /// Counts a packed pattern `weight` times.
    pub fn add_pattern(&mut self, pattern: u64, weight: f64) {
        *self.counts.entry(pattern).or_default() += weight;
    }

    /// Adds another set of counts, each multiplied by `weight`.
    pub fn merge(&mut self, other: &PatternCounts, weight: f64) {
        for (pattern, count) in &other.counts {
            *self.counts.entry(*pattern).or_default() += count * weight;
        }
    }

    pub fn total(&self) -> f64 {
        self.counts.values().sum()
    }

    fn iter(&self) -> impl Iterator<Item = ([u8; FIELD_COUNT], f64)> + '_ {
        self.counts
            .iter()
            .map(|(p, c)| (Comparison::from_pattern(*p), *c))
    }
}

/// What the estimation did.
#[derive(Debug, Clone)]
pub struct Estimate {
    pub model: Model,
    pub iterations: usize,
    pub converged: bool,
}

/// u per field and level from pairs drawn at random. Each level gets one pseudo-count so that
/// a level never seen among non-matches is rare, not impossible.
pub fn estimate_u(random_pairs: &PatternCounts) -> [[f64; MAX_LEVELS]; FIELD_COUNT] {
    u_from_weighted(random_pairs, |_| 1.0)
}

/// u from pairs drawn at random, each counted by how likely `model` (a first estimate) holds it
/// to be a non-match. A random sample holds a few true matches (one pair in 1,900 on FEBRL3),
/// and for a level that non-matches almost never reach, such as the same social security
/// number, those few are most of the count: u said that level was dozens of times more common
/// among non-matches than it is, and its weight was 11 bits on FEBRL3 instead of 16.
pub fn estimate_u_among_non_matches(
    random_pairs: &PatternCounts,
    model: &Model,
) -> [[f64; MAX_LEVELS]; FIELD_COUNT] {
    u_from_weighted(random_pairs, |levels| {
        1.0 - match_probability(model, levels)
    })
}

fn u_from_weighted(
    random_pairs: &PatternCounts,
    non_match: impl Fn(&[u8; FIELD_COUNT]) -> f64,
) -> [[f64; MAX_LEVELS]; FIELD_COUNT] {
    let mut u = [[0.0; MAX_LEVELS]; FIELD_COUNT];
    let weighted: Vec<([u8; FIELD_COUNT], f64)> = random_pairs
        .iter()
        .map(|(levels, count)| (levels, count * non_match(&levels)))
        .collect();
    for field in Field::ALL {
        let f = field as usize;
        let mut counts = [1.0f64; MAX_LEVELS];
        for (levels, count) in &weighted {
            let level = usize::from(levels[f]);
            if level != 0 {
                counts[level] += count;
            }
        }
        let total: f64 = counts[1..=field.levels()].iter().sum();
        for level in 1..=field.levels() {
            u[f][level] = counts[level] / total;
        }
    }
    u
}

/// The probability that a pair compared at `levels` is a match, by the model's m, u and prior
/// (in log space for stability).
fn match_probability(model: &Model, levels: &[u8; FIELD_COUNT]) -> f64 {
    let mut log_m = model.prior.ln();
    let mut log_u = (1.0 - model.prior).ln();
    for field in Field::ALL {
        let level = usize::from(levels[field as usize]);
        if level != 0 {
            log_m += model.m[field as usize][level].max(1e-12).ln();
            log_u += model.u[field as usize][level].max(1e-12).ln();
        }
    }
    1.0 / (1.0 + (log_u - log_m).exp())
}

/// The pairs EM runs over: every pair of the data set, represented by the pairs blocking
/// brought together (each counted once) and a random sample standing for all the others.
/// Running EM over the whole space rather than the blocked pairs alone keeps the prior what it
/// means — the chance that two records picked at random are one person — instead of the share
/// of matches among blocked pairs, which depends on how tight the blocking is.
pub fn comparison_space(
    blocked: &PatternCounts,
    random: &PatternCounts,
    records: usize,
) -> PatternCounts {
    let all_pairs = records as f64 * (records as f64 - 1.0) / 2.0;
    let rest = (all_pairs - blocked.total()).max(0.0);
    let mut space = blocked.clone();
    if random.total() > 0.0 {
        space.merge(random, rest / random.total());
    }
    space
}

/// m and the prior by EM over `pairs` (see [`comparison_space`]), starting from `start` and
/// holding its u.
pub fn estimate_m(start: &Model, pairs: &PatternCounts, max_iterations: usize) -> Estimate {
    let mut model = start.clone();
    let patterns: Vec<([u8; FIELD_COUNT], f64)> = pairs.iter().collect();
    let total: f64 = patterns.iter().map(|(_, c)| c).sum();
    if total == 0.0 {
        return Estimate {
            model,
            iterations: 0,
            converged: false,
        };
    }
    for iteration in 1..=max_iterations {
        let mut m_counts = [[0.0f64; MAX_LEVELS]; FIELD_COUNT];
        let mut matches = 0.0;
        for (levels, count) in &patterns {
            // E: the probability that this pattern is a match.
            let p = match_probability(&model, levels);
            matches += p * count;
            for field in Field::ALL {
                let level = usize::from(levels[field as usize]);
                if level != 0 {
                    m_counts[field as usize][level] += p * count;
                }
            }
        }
        // M: new m per field from the expected matches, with a small pseudo-count.
        let mut change = 0.0f64;
        for field in Field::ALL {
            let f = field as usize;
            let n = field.levels();
            let total_f: f64 = m_counts[f][1..=n].iter().sum::<f64>() + 0.01 * n as f64;
            for (count, m_old) in m_counts[f][1..=n].iter().zip(&mut model.m[f][1..=n]) {
                let m = (count + 0.01) / total_f;
                change = change.max((m - *m_old).abs());
                *m_old = m;
            }
        }
        let prior = (matches / total).clamp(1e-12, 0.999);
        change = change.max((prior - model.prior).abs() / model.prior.max(1e-12) * 1e-3);
        model.prior = prior;
        model.refresh();
        if change < 1e-6 {
            return Estimate {
                model,
                iterations: iteration,
                converged: true,
            };
        }
    }
    Estimate {
        model,
        iterations: max_iterations,
        converged: false,
    }
}

/// A model estimated from a set of records, with what the estimation saw.
#[derive(Debug, Clone)]
pub struct Training {
    pub model: Model,
    pub frequencies: TermFrequencies,
    pub records: usize,
    /// Pairs blocking brought together.
    pub blocked_pairs: usize,
    pub iterations: usize,
    pub converged: bool,
    /// How many pairs of the records the model takes to be matches (prior times all pairs).
    pub expected_matches: f64,
}

/// How many random pairs u is counted from.
const RANDOM_PAIRS: u64 = 200_000;

/// Estimates a model from the records of `index`, without labels: u from random pairs; m and
/// the prior by EM over the whole comparison space (see [`comparison_space`]); u once more from
/// the random pairs that estimate holds to be non-matches (see
/// [`estimate_u_among_non_matches`]) and m and the prior again; term frequencies of names from
/// the records. Deterministic: the random pairs come from a fixed seed.
pub fn train(index: &Index, threads: usize) -> Training {
    let n = index.len() as u64;
    let mut rng = Rng::new(7);
    let mut random = PatternCounts::default();
    if n >= 2 {
        for _ in 0..RANDOM_PAIRS.min(n * (n - 1) / 2) {
            let (a, b) = (rng.below(n) as u32, rng.below(n) as u32);
            if a != b {
                random.add(&compare(index.record(a), index.record(b)));
            }
        }
    }
    let mut blocked = PatternCounts::default();
    let patterns = index.for_each_pair(threads, |_, _, a, b| Some(compare(a, b).pattern()));
    for pattern in &patterns {
        blocked.add_pattern(*pattern, 1.0);
    }
    let mut start = Model::starting_point();
    start.u = estimate_u(&random);
    start.prior = 1.0 / n.max(2) as f64;
    start.refresh();
    let space = comparison_space(&blocked, &random, index.len());
    let first = estimate_m(&start, &space, 200);
    let mut corrected = first.model.clone();
    corrected.u = estimate_u_among_non_matches(&random, &first.model);
    corrected.refresh();
    let estimate = estimate_m(&corrected, &space, 200);
    let all_pairs = n as f64 * (n as f64 - 1.0) / 2.0;
    Training {
        expected_matches: estimate.model.prior * all_pairs,
        frequencies: TermFrequencies::counted((0..index.len() as u32).map(|i| index.record(i))),
        model: estimate.model,
        records: index.len(),
        blocked_pairs: patterns.len(),
        iterations: first.iterations + estimate.iterations,
        converged: first.converged && estimate.converged,
    }
}
