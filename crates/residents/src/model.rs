//! The Fellegi–Sunter model: for every field and level, m (how often true matches compare at
//! that level) and u (how often non-matches do); a pair's weight is the sum of log2(m/u) over
//! its fields, adjusted by how common the agreeing name is; with the prior it becomes a match
//! probability. Thresholds on the probability and conflicting-evidence rules make the decision.

use std::collections::HashMap;

use crate::compare::{Comparison, FIELD_COUNT, Field, compare};
use crate::gb11643;
use crate::record::Record;

/// Enough room for the field with the most levels, plus level 0.
pub const MAX_LEVELS: usize = 6;

/// m and u probabilities per field and level, and the prior probability that a compared pair
/// (one that blocking brought together) is a match.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub prior: f64,
    pub m: [[f64; MAX_LEVELS]; FIELD_COUNT],
    pub u: [[f64; MAX_LEVELS]; FIELD_COUNT],
    weights: [[f64; MAX_LEVELS]; FIELD_COUNT],
}

/// Probabilities are kept off 0 and 1 so that no single field decides alone.
const FLOOR: f64 = 1e-5;

impl Model {
    pub fn new(
        prior: f64,
        m: [[f64; MAX_LEVELS]; FIELD_COUNT],
        u: [[f64; MAX_LEVELS]; FIELD_COUNT],
    ) -> Model {
        let mut model = Model {
            prior: prior.clamp(1e-12, 0.999),
            m,
            u,
            weights: [[0.0; MAX_LEVELS]; FIELD_COUNT],
        };
        model.refresh();
        model
    }

    /// Recomputes the weights after m or u changed.
    pub fn refresh(&mut self) {
        for field in Field::ALL {
            let f = field as usize;
            for level in 1..=field.levels() {
                let m = self.m[f][level].clamp(FLOOR, 1.0 - FLOOR);
                let u = self.u[f][level].clamp(FLOOR, 1.0 - FLOOR);
                self.weights[f][level] = (m / u).log2();
            }
        }
    }

    /// The weight of a field compared at a level (0 for a missing field).
    pub fn weight(&self, field: Field, level: u8) -> f64 {
        self.weights[field as usize][usize::from(level).min(MAX_LEVELS - 1)]
    }

    /// The model the master patient index starts with: m and u estimated by EM on generated
    /// regional data (`identity-bench train 50000`), made robust (see [`Model::robust`]) because
    /// real registrations err in ways the generator does not (people move between districts).
    pub fn regional() -> Model {
        // Estimated by `identity-bench train` (EM on generated regional data).
        let table: [(&[f64], &[f64]); FIELD_COUNT] = [
            // family
            (
                &[
                    7.237082e-1,
                    2.689738e-1,
                    6.548454e-3,
                    2.150033e-5,
                    7.480288e-4,
                ],
                &[
                    4.167458e-2,
                    3.284967e-3,
                    2.096979e-2,
                    4.854451e-2,
                    8.855261e-1,
                ],
            ),
            // given
            (
                &[
                    6.572628e-1,
                    3.313742e-1,
                    1.062379e-2,
                    2.369904e-5,
                    7.155550e-4,
                ],
                &[
                    7.155338e-4,
                    5.102067e-3,
                    2.100455e-2,
                    5.178806e-2,
                    9.213898e-1,
                ],
            ),
            // birth-date
            (
                &[9.546817e-1, 4.439068e-2, 6.164196e-5, 8.659848e-4],
                &[6.235227e-5, 9.806311e-4, 2.834194e-3, 9.961228e-1],
            ),
            // sex
            (&[9.882786e-1, 1.172138e-2], &[4.999036e-1, 5.000964e-1]),
            // phone
            (
                &[8.831615e-1, 1.468984e-7, 1.168384e-1],
                &[2.634421e-5, 8.781404e-6, 9.999649e-1],
            ),
            // street
            (
                &[8.908023e-1, 1.390485e-3, 1.344634e-2, 9.436087e-2],
                &[2.577503e-4, 4.159556e-3, 7.434763e-2, 9.212351e-1],
            ),
            // locality
            (
                &[9.563484e-1, 2.063301e-7, 4.365142e-2],
                &[9.948361e-2, 8.888020e-6, 9.005075e-1],
            ),
            // postcode
            (
                &[9.563484e-1, 1.716752e-2, 2.648410e-2],
                &[9.948361e-2, 3.576006e-1, 5.429158e-1],
            ),
            // national-id
            (
                &[9.568683e-1, 4.227046e-2, 8.612050e-4],
                &[2.056069e-5, 1.028035e-5, 9.999692e-1],
            ),
            // other-id
            (
                &[9.999970e-1, 1.254097e-6, 1.735457e-6],
                &[1.057261e-5, 1.057261e-5, 9.999789e-1],
            ),
        ];
        let mut m = [[0.0; MAX_LEVELS]; FIELD_COUNT];
        let mut u = [[0.0; MAX_LEVELS]; FIELD_COUNT];
        for (f, (ms, us)) in table.iter().enumerate() {
            m[f][1..=ms.len()].copy_from_slice(ms);
            u[f][1..=us.len()].copy_from_slice(us);
        }
        Model::new(1e-6, m, u).robust(0.005)
    }

    /// Every level's m and u at least `floor`, renormalised: no single field's disagreement
    /// can then outweigh all the others by itself.
    pub fn robust(mut self, floor: f64) -> Model {
        for field in Field::ALL {
            let f = field as usize;
            let n = field.levels();
            for table in [&mut self.m, &mut self.u] {
                let levels = &mut table[f][1..=n];
                for value in levels.iter_mut() {
                    *value = value.max(floor);
                }
                let total: f64 = levels.iter().sum();
                for value in levels.iter_mut() {
                    *value /= total;
                }
            }
        }
        self.refresh();
        self
    }

    /// The model before any data was seen: what agreement at each level usually means for
    /// demographics of this kind. EM refines it on real data; the service starts from the
    /// weights estimated on generated regional data (see docs/decisions/0006).
    pub fn starting_point() -> Model {
        // Per field: m then u, for levels 1..=n (the last is disagreement).
        let table: [(&[f64], &[f64]); FIELD_COUNT] = [
            (
                &[0.85, 0.06, 0.04, 0.02, 0.03],
                &[0.01, 0.005, 0.02, 0.08, 0.885],
            ),
            (
                &[0.80, 0.06, 0.05, 0.04, 0.05],
                &[0.005, 0.003, 0.01, 0.05, 0.932],
            ),
            (&[0.90, 0.06, 0.02, 0.02], &[0.002, 0.003, 0.02, 0.975]),
            (&[0.97, 0.03], &[0.5, 0.5]),
            (&[0.80, 0.05, 0.15], &[0.001, 0.001, 0.998]),
            (&[0.80, 0.08, 0.04, 0.08], &[0.002, 0.005, 0.05, 0.943]),
            (&[0.85, 0.05, 0.10], &[0.02, 0.01, 0.97]),
            (&[0.85, 0.08, 0.07], &[0.02, 0.05, 0.93]),
            (&[0.95, 0.03, 0.02], &[0.00001, 0.0001, 0.99989]),
            (&[0.90, 0.03, 0.07], &[0.0001, 0.0005, 0.9994]),
        ];
        let mut m = [[0.0; MAX_LEVELS]; FIELD_COUNT];
        let mut u = [[0.0; MAX_LEVELS]; FIELD_COUNT];
        for (f, (ms, us)) in table.iter().enumerate() {
            for (level, value) in ms.iter().enumerate() {
                m[f][level + 1] = *value;
            }
            for (level, value) in us.iter().enumerate() {
                u[f][level + 1] = *value;
            }
        }
        Model::new(0.01, m, u)
    }
}

/// How common each romanised family and given name is, for the term-frequency adjustment:
/// agreeing on "wang" (one resident in fourteen) says much less than agreeing on "ouyang".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TermFrequencies {
    family: HashMap<String, u32>,
    given: HashMap<String, u32>,
    total: u32,
    /// The count taken for a name the table does not hold: `None` for no adjustment (a table
    /// of common names only), else how rare a name left out of a counted table is at most.
    unseen: Option<u32>,
}

impl TermFrequencies {
    /// Counts the names of `records` (each record's first name).
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Record>) -> TermFrequencies {
        let mut tf = TermFrequencies::default();
        for record in records {
            tf.add(record);
        }
        tf
    }

    pub fn add(&mut self, record: &Record) {
        if let Some(name) = record.names.first() {
            self.total += 1;
            if !name.family_key.is_empty() {
                *self.family.entry(name.family_key.clone()).or_default() += 1;
            }
            if !name.given_key.is_empty() {
                *self.given.entry(name.given_key.clone()).or_default() += 1;
            }
        }
    }

    /// A table of family-name shares alone (per million residents), as published surname
    /// statistics give them.
    pub fn from_family_shares(shares: &[(&str, u32)]) -> TermFrequencies {
        let mut tf = TermFrequencies {
            total: 1_000_000,
            ..TermFrequencies::default()
        };
        for (key, per_million) in shares {
            tf.family.insert((*key).to_owned(), *per_million);
        }
        tf
    }

    fn frequency(&self, field: Field, key: &str) -> Option<f64> {
        let table = match field {
            Field::Family => &self.family,
            Field::Given => &self.given,
            _ => return None,
        };
        let count = table.get(key).copied().or(self.unseen)?;
        (self.total > 0).then(|| f64::from(count.max(1)) / f64::from(self.total))
    }

    /// The names counted, for keeping: each field's `limit` commonest names with their counts,
    /// one `family` or `given`, name and count a line, after a first line with the total and
    /// the count a name left out is taken to have. A name seen once is left out (it is what
    /// any name not in the table is taken to be), so the table holds only names that recur.
    pub fn to_text(&self, limit: usize) -> String {
        let mut out = String::new();
        let mut lines = Vec::new();
        let mut unseen = 1u32;
        for (label, table) in [("family", &self.family), ("given", &self.given)] {
            let mut names: Vec<(&String, &u32)> = table.iter().filter(|(_, c)| **c >= 2).collect();
            names.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            if names.len() > limit {
                // Names past the limit are as common as the last one kept, at most.
                unseen = unseen.max(*names[limit].1);
                names.truncate(limit);
            }
            lines.extend(
                names
                    .into_iter()
                    .map(|(name, count)| format!("{label}\t{name}\t{count}")),
            );
        }
        out.push_str(&format!("total\t{}\t{unseen}\n", self.total));
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// Reads what [`TermFrequencies::to_text`] wrote; `None` when it is not that.
    pub fn from_text(text: &str) -> Option<TermFrequencies> {
        let mut lines = text.lines();
        let mut first = lines.next()?.split('\t');
        if first.next()? != "total" {
            return None;
        }
        let mut tf = TermFrequencies {
            total: first.next()?.parse().ok()?,
            unseen: Some(first.next()?.parse().ok()?),
            ..TermFrequencies::default()
        };
        for line in lines {
            let mut parts = line.split('\t');
            let (label, name, count) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
            let table = match label {
                "family" => &mut tf.family,
                "given" => &mut tf.given,
                _ => return None,
            };
            table.insert(name.to_owned(), count);
        }
        Some(tf)
    }

    /// Counts names of records, and takes a name it never saw to be as rare as one seen once.
    pub fn counted<'a>(records: impl IntoIterator<Item = &'a Record>) -> TermFrequencies {
        TermFrequencies {
            unseen: Some(1),
            ..TermFrequencies::from_records(records)
        }
    }

    /// How many names were counted.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// How many distinct family and given names the table holds.
    pub fn distinct(&self) -> (usize, usize) {
        (self.family.len(), self.given.len())
    }
}

/// Shares of the most common Chinese surnames (per million), from the 2020 census summary:
/// enough for the term-frequency adjustment where the index has not counted its own.
pub const CHINESE_SURNAME_SHARES: &[(&str, u32)] = &[
    ("wang", 71_500),
    ("li", 74_000),
    ("zhang", 68_500),
    ("liu", 54_000),
    ("chen", 46_000),
    ("yang", 31_000),
    ("huang", 24_500),
    ("zhao", 23_000),
    ("wu", 21_000),
    ("zhou", 19_000),
    ("xu", 17_500),
    ("sun", 15_500),
    ("ma", 15_000),
    ("zhu", 14_500),
    ("hu", 13_500),
    ("guo", 12_000),
    ("he", 12_000),
    ("lin", 11_500),
    ("gao", 11_500),
    ("luo", 11_000),
    ("zheng", 10_500),
    ("liang", 9_000),
    ("xie", 8_000),
    ("song", 7_000),
    ("tang", 7_000),
    ("han", 6_500),
    ("feng", 6_000),
    ("deng", 6_000),
    ("cao", 6_000),
    ("peng", 5_500),
    ("zeng", 5_500),
    ("xiao", 5_500),
    ("tian", 5_000),
    ("dong", 5_000),
    ("pan", 5_000),
    ("yuan", 5_000),
    ("cai", 4_500),
    ("jiang", 8_000),
    ("yu", 9_000),
    ("du", 4_000),
    ("ye", 4_000),
    ("cheng", 4_000),
    ("wei", 4_000),
    ("su", 4_000),
    ("lv", 3_500),
    ("ding", 3_500),
    ("ren", 3_500),
    ("lu", 6_500),
    ("yao", 3_000),
    ("shen", 3_000),
];

/// A pair's score: its comparison, its weight and its match probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub comparison: Comparison,
    pub weight: f64,
    pub probability: f64,
}

/// What to do with a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Link without asking anyone.
    AutoLink,
    /// Ask a person.
    Review,
    /// Different people.
    NoLink,
}

/// Match probabilities at and above which pairs are linked, or reviewed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub auto_link: f64,
    pub review: f64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            auto_link: 0.95,
            review: 0.10,
        }
    }
}

/// Evidence that forbids an automatic link however high the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The same resident ID number on records whose names are wholly different.
    SameIdDifferentName,
    /// The same resident ID number on records whose birth date and sex both differ.
    SameIdDifferentBirthAndSex,
    /// Two different resident ID numbers, each with a right check character.
    DifferentValidIds,
    /// One family name, wholly different given names, birth dates that do not agree (or one
    /// missing) and no identifier in common: relatives at one address (a parent and a child, a
    /// couple where wives take the husband's name) look like this, and a model learned from
    /// data without households (FEBRL has none) weighs the shared address as if it settled the
    /// question.
    SameFamilyDifferentGiven,
}

impl Conflict {
    pub fn describe(self) -> &'static str {
        match self {
            Conflict::SameIdDifferentName => {
                "the same resident ID number, but the names are wholly different"
            }
            Conflict::SameIdDifferentBirthAndSex => {
                "the same resident ID number, but birth date and sex both differ"
            }
            Conflict::DifferentValidIds => "two different valid resident ID numbers",
            Conflict::SameFamilyDifferentGiven => {
                "one family name but wholly different given names (relatives?)"
            }
        }
    }
}

/// A pair's score and what to do with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub score: Score,
    pub decision: Decision,
    pub conflicts: Vec<Conflict>,
}

/// The model, the term frequencies and the thresholds: everything needed to decide a pair.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub model: Model,
    pub frequencies: Option<TermFrequencies>,
    pub thresholds: Thresholds,
}

impl Matcher {
    pub fn new(
        model: Model,
        frequencies: Option<TermFrequencies>,
        thresholds: Thresholds,
    ) -> Matcher {
        Matcher {
            model,
            frequencies,
            thresholds,
        }
    }

    /// Scores a pair of records.
    pub fn score(&self, a: &Record, b: &Record) -> Score {
        self.score_comparison(a, &compare(a, b))
    }

    /// Scores a comparison of `a` with some record. The term-frequency adjustment reads the
    /// agreeing name from `a`.
    pub fn score_comparison(&self, a: &Record, comparison: &Comparison) -> Score {
        let weight: f64 = self.contributions(a, comparison).iter().sum();
        let log_odds = weight + (self.model.prior / (1.0 - self.model.prior)).log2();
        Score {
            comparison: *comparison,
            weight,
            probability: 1.0 / (1.0 + (-log_odds).exp2()),
        }
    }

    /// What each field adds to the weight of a comparison of `a` with some record (its
    /// weight at its level plus the term-frequency adjustment; 0 for a missing field), in the
    /// order of [`Field::ALL`]: the score's explanation.
    pub fn contributions(&self, a: &Record, comparison: &Comparison) -> [f64; FIELD_COUNT] {
        let mut contributions = [0.0; FIELD_COUNT];
        for field in Field::ALL {
            let level = comparison.level(field);
            if level != 0 {
                contributions[field as usize] =
                    self.model.weight(field, level) + self.adjustment(a, comparison, field, level);
            }
        }
        contributions
    }

    /// The term-frequency adjustment of an agreeing name: log2(u of the level / frequency of
    /// the value), bounded so that a misspelt name seen once cannot carry a pair alone.
    fn adjustment(&self, a: &Record, comparison: &Comparison, field: Field, level: u8) -> f64 {
        let (Some(tf), Some((i, _))) = (&self.frequencies, comparison.names) else {
            return 0.0;
        };
        if level > 2 || !matches!(field, Field::Family | Field::Given) {
            return 0.0;
        }
        let Some(name) = a.names.get(usize::from(i)) else {
            return 0.0;
        };
        // A swapped pair agrees on a's family name with b's given name: the value is a's.
        let key = match field {
            Field::Family => &name.family_key,
            _ => &name.given_key,
        };
        let Some(frequency) = tf.frequency(field, key) else {
            return 0.0;
        };
        let u = self.model.u[field as usize][usize::from(level)].max(FLOOR);
        (u / frequency.max(FLOOR)).log2().clamp(-6.0, 4.0)
    }

    /// Scores and decides a pair.
    pub fn decide(&self, a: &Record, b: &Record) -> Verdict {
        let score = self.score(a, b);
        self.decide_score(a, b, score)
    }

    /// Decides an already scored pair.
    pub fn decide_score(&self, a: &Record, b: &Record, score: Score) -> Verdict {
        let conflicts = conflicts(a, b, &score.comparison);
        let mut decision = if score.probability >= self.thresholds.auto_link {
            Decision::AutoLink
        } else if score.probability >= self.thresholds.review {
            Decision::Review
        } else {
            Decision::NoLink
        };
        if !conflicts.is_empty() {
            decision = match decision {
                Decision::AutoLink | Decision::Review => Decision::Review,
                // The same ID number is itself worth a person's look, whatever the rest says.
                Decision::NoLink if score.comparison.level(Field::NationalId) == 1 => {
                    Decision::Review
                }
                Decision::NoLink => Decision::NoLink,
            };
        }
        Verdict {
            score,
            decision,
            conflicts,
        }
    }
}

/// The conflicting-evidence rules.
pub fn conflicts(a: &Record, b: &Record, comparison: &Comparison) -> Vec<Conflict> {
    let mut found = Vec::new();
    let level = |f| comparison.level(f);
    if level(Field::NationalId) == 1 {
        let family = level(Field::Family);
        let given = level(Field::Given);
        if family == Field::Family.levels() as u8 && given >= 4 {
            found.push(Conflict::SameIdDifferentName);
        }
        if level(Field::BirthDate) == Field::BirthDate.levels() as u8 && level(Field::Sex) == 2 {
            found.push(Conflict::SameIdDifferentBirthAndSex);
        }
    }
    if level(Field::Family) == 1
        && level(Field::Given) == Field::Given.levels() as u8
        && !comparison.swapped
        && level(Field::BirthDate) != 1
        && level(Field::NationalId) != 1
        && level(Field::OtherId) != 1
    {
        found.push(Conflict::SameFamilyDifferentGiven);
    }
    if level(Field::NationalId) == Field::NationalId.levels() as u8 {
        let valid = |r: &Record| r.national_ids().any(gb11643::is_valid);
        let shared = a.national_ids().any(|x| b.national_ids().any(|y| x == y));
        if !shared && valid(a) && valid(b) {
            found.push(Conflict::DifferentValidIds);
        }
    }
    found
}
