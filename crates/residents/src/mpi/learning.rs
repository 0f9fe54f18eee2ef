//! Learning from the index's own data. The index starts from a fixed model; once it holds
//! enough Patients it estimates m, u, the prior and the name frequencies from them without
//! labels (`em::train`, the estimation the offline benchmarks run), keeps the model in the store
//! (`kept_model`) and takes it up. Then it looks again at what the old model decided: every pair
//! of Patients blocking brings together that now scores as an automatic link, while the two sit
//! under different Persons, has its Persons merged; a pair that now scores for review gets a
//! review Task unless one was already asked. Nothing is split, and nothing a person decided is
//! undone: a rejected review keeps its pair apart, and a Person with a link a person made is
//! only ever proposed for review.
//!
//! This runs off the write path: the caller (the command line's schedule, or an operation)
//! calls [`Mpi::learn`] on a thread of its own. It reads committed data and writes in short
//! transactions of its own, so Patient writes go on meanwhile.

use std::collections::{HashMap, HashSet};

use caller::Caller;
use repository::{Repository, RepositoryError, parse_stored};
use serde_json::{Value, json};
use store::{ScanQuery, VersionRecord};

use super::Mpi;
use super::hook::Candidate;
use super::kept_model::{Estimated, ModelOrigin};
use super::person::{Link, PersonState, lock_keys, tag_keys};
use crate::IdentityError;
use crate::compare::Field;
use crate::em::{Training, train};
use crate::index::Index;
use crate::model::{Decision, Matcher, Model, TermFrequencies};
use crate::record::Record;

/// The store checkpoint that keeps what the last re-estimation did (JSON: `at`, `records`,
/// `adopted`, `refused`).
const LAST_LEARNING: &str = "mpi:last-learning";
/// Fewer Patients than this say too little to estimate a model from.
pub const MIN_RECORDS: usize = 200;
/// An estimate that finds fewer matching pairs than this among the records found nothing to
/// learn m from (a single institution's records, each person once): it is not adopted.
const MIN_EXPECTED_MATCHES: f64 = 20.0;
/// Threads the estimation and the re-evaluation compute on. One, to leave the requests served
/// meanwhile a core, was measured on the two-core machine and did not make their latency
/// better: it only made the estimation last longer (BENCHMARKS.md).
const THREADS: usize = 2;
/// Review Tasks and stale-review completions written per transaction.
const BATCH: usize = 200;

/// What one re-estimation did.
#[derive(Debug, Clone, PartialEq)]
pub struct LearningOutcome {
    /// When it started (microseconds since the epoch).
    pub at: i64,
    /// The Patients it estimated from.
    pub records: usize,
    /// Whether the new model was adopted.
    pub adopted: bool,
    /// Why not, when it was not.
    pub refused: Option<String>,
    /// Persons merged into others because the new model links their Patients.
    pub persons_merged: usize,
    /// Pairs sent to review.
    pub reviews_queued: usize,
    /// Open reviews completed because their pair is now linked.
    pub reviews_closed: usize,
}

/// The Patients written since the model's base (its estimation or the last attempt), counted
/// check by check.
#[derive(Debug, Default)]
pub(crate) struct ChangeCount {
    base: Option<i64>,
    checked_until: Option<i64>,
    counted: usize,
}

/// One match-review Task as the re-evaluation needs it.
struct Review {
    id: String,
    version: i64,
    open: bool,
    rejected: bool,
    patient: String,
    candidate: String,
}

impl Mpi {
    /// Whether a re-estimation is running now.
    pub fn learning_running(&self) -> bool {
        self.learning.try_lock().is_err()
    }

    /// What the last re-estimation since start-up did.
    pub fn last_learning(&self) -> Option<LearningOutcome> {
        self.last_learning
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the Patients written since the model was last estimated (or since the last
    /// attempt) are at least `growth` (a fraction) of those it was estimated from, and at least
    /// [`MIN_RECORDS`] when nothing was estimated yet. Each call reads only the Patients written
    /// since the call before, so a check costs what was written meanwhile.
    pub fn learning_due(
        &self,
        repository: &Repository,
        ctx: &Caller,
        growth: f64,
    ) -> Result<bool, IdentityError> {
        let mut base: Option<(i64, usize)> = match self.model_origin() {
            ModelOrigin::Estimated(e) => Some((e.at, e.records)),
            ModelOrigin::BuiltIn => None,
        };
        if let Some(last) = self.last_learning()
            && base.is_none_or(|(at, _)| last.at > at)
        {
            base = Some((last.at, last.records));
        }
        let needed = match base {
            Some((_, records)) => ((records as f64 * growth).ceil() as usize).max(MIN_RECORDS / 4),
            None => MIN_RECORDS,
        };
        let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let base_at = base.map(|(at, _)| at);
        if changes.base != base_at {
            *changes = ChangeCount {
                base: base_at,
                checked_until: base_at,
                counted: 0,
            };
        }
        let now = fhir_model::clock::now_micros();
        let mut after_row = 0;
        loop {
            let page = repository.reader(ctx).scan(&ScanQuery {
                types: vec!["Patient".into()],
                since: changes.checked_until,
                after_row,
                limit: 1000,
                visibility: Default::default(),
            })?;
            let Some(last) = page.last() else {
                break;
            };
            after_row = last.row;
            changes.counted += page.len();
        }
        changes.checked_until = Some(now);
        Ok(changes.counted >= needed)
    }

    /// Re-estimates the model from every Patient in the store; adopts it (kept in the store,
    /// used by every match from then on) unless it found nothing to learn from; then
    /// re-evaluates what the old model decided (see the module). One at a time: a call while
    /// another runs is refused with a conflict.
    pub fn learn(
        &self,
        repository: &Repository,
        ctx: &Caller,
    ) -> Result<LearningOutcome, IdentityError> {
        let Ok(_running) = self.learning.try_lock() else {
            return Err(IdentityError::Conflict(
                "the model is being re-estimated already".into(),
            ));
        };
        // Whole milliseconds, as the kept model's instant says it.
        let at = fhir_model::clock::now_micros() / 1000 * 1000;
        let outcome = self.learn_now(repository, ctx, at);
        let recorded = match &outcome {
            Ok(outcome) => outcome.clone(),
            Err(error) => LearningOutcome {
                at,
                records: 0,
                adopted: false,
                refused: Some(format!("failed: {error}")),
                persons_merged: 0,
                reviews_queued: 0,
                reviews_closed: 0,
            },
        };
        // Kept, so that a restart does not estimate again what it just refused (a store whose
        // Patients teach nothing was re-estimated at every start's first scheduled check).
        let kept = json!({"at": recorded.at, "records": recorded.records,
            "adopted": recorded.adopted, "refused": recorded.refused});
        if let Err(error) = repository.run_in_transaction(ctx, |tx| {
            Ok(tx
                .transaction()
                .set_checkpoint(LAST_LEARNING, Some(&kept.to_string()))?)
        }) {
            tracing::warn!(%error, "keeping what the re-estimation did");
        }
        *self.last_learning.lock().unwrap_or_else(|p| p.into_inner()) = Some(recorded);
        outcome
    }

    /// Takes up what the last re-estimation did, as kept in the store (at start-up, with
    /// [`Mpi::load_model`]): the schedule counts new Patients from then.
    pub(crate) fn load_last_learning(&self, repository: &Repository) -> Result<(), IdentityError> {
        let Some(kept) = repository.store().checkpoint(LAST_LEARNING)? else {
            return Ok(());
        };
        let Ok(kept) = serde_json::from_str::<Value>(&kept) else {
            tracing::warn!("the last re-estimation kept in the store cannot be read; ignored");
            return Ok(());
        };
        let outcome = LearningOutcome {
            at: kept["at"].as_i64().unwrap_or(0),
            records: kept["records"].as_u64().unwrap_or(0) as usize,
            adopted: kept["adopted"].as_bool().unwrap_or(false),
            refused: kept["refused"].as_str().map(str::to_owned),
            persons_merged: 0,
            reviews_queued: 0,
            reviews_closed: 0,
        };
        *self.last_learning.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        Ok(())
    }

    fn learn_now(
        &self,
        repository: &Repository,
        ctx: &Caller,
        at: i64,
    ) -> Result<LearningOutcome, IdentityError> {
        let mut ids = Vec::new();
        let mut records = Vec::new();
        for record in scan_all(repository, ctx, "Patient")? {
            let patient = parse_stored(&record)?;
            ids.push(record.id);
            records.push(Record::from_fhir(&patient, &self.config.systems));
        }
        let mut outcome = LearningOutcome {
            at,
            records: records.len(),
            adopted: false,
            refused: None,
            persons_merged: 0,
            reviews_queued: 0,
            reviews_closed: 0,
        };
        if records.len() < MIN_RECORDS {
            outcome.refused = Some(format!(
                "{} Patients; at least {MIN_RECORDS} are needed to learn from",
                records.len()
            ));
            return Ok(outcome);
        }
        let index = Index::build(records, THREADS);
        let training = train(&index, THREADS);
        if let Some(reason) = unusable(&training) {
            tracing::info!(records = index.len(), %reason, "re-estimated model not adopted");
            outcome.refused = Some(reason);
            return Ok(outcome);
        }
        // The name counts as the store keeps them, so that the model in use is the one a
        // restart reads back.
        let frequencies = TermFrequencies::from_text(&training.frequencies.to_text(20_000))
            .unwrap_or_else(|| training.frequencies.clone());
        let matcher = Matcher::new(
            training.model.clone(),
            Some(frequencies),
            self.config.thresholds,
        );
        let estimated = Estimated {
            at,
            records: training.records,
            blocked_pairs: training.blocked_pairs,
            iterations: training.iterations,
            converged: training.converged,
            // As the kept model says it.
            expected_matches: (training.expected_matches * 100.0).round() / 100.0,
        };
        repository.run_in_transaction(ctx, |tx| self.keep_model(tx, &matcher, &estimated))?;
        self.replace_matcher(matcher.clone(), ModelOrigin::Estimated(estimated));
        outcome.adopted = true;
        tracing::info!(
            records = index.len(),
            prior = training.model.prior,
            expected_matches = training.expected_matches,
            "model re-estimated from the index's Patients"
        );
        self.reevaluate(repository, ctx, &index, &ids, &matcher, &mut outcome)?;
        Ok(outcome)
    }

    /// Merges the Persons of pairs the new model links, queues reviews for pairs it is unsure
    /// of, and completes open reviews whose pair is now linked.
    fn reevaluate(
        &self,
        repository: &Repository,
        ctx: &Caller,
        index: &Index,
        ids: &[String],
        matcher: &Matcher,
        outcome: &mut LearningOutcome,
    ) -> Result<(), IdentityError> {
        // Every Person: who holds which Patient, where merged ones went.
        let mut persons: Vec<PersonState> = Vec::new();
        let mut keys: Vec<Vec<u64>> = Vec::new();
        for record in scan_all(repository, ctx, "Person")? {
            let person = parse_stored(&record)?;
            keys.push(tag_keys(&person));
            persons.push(PersonState::from_resource(
                &record.id,
                record.version,
                &person,
            ));
        }
        let number: HashMap<String, usize> = persons
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let mut owner: HashMap<&str, usize> = HashMap::new();
        for (i, person) in persons.iter().enumerate().filter(|(_, p)| p.active) {
            for link in &person.links {
                owner.insert(link.patient.as_str(), i);
            }
        }
        // A Person merged away stands for the one it went to.
        let current = |mut i: usize| {
            for _ in 0..16 {
                match persons[i]
                    .merged_into
                    .as_ref()
                    .and_then(|id| number.get(id))
                {
                    Some(next) if !persons[i].active => i = *next,
                    _ => break,
                }
            }
            i
        };
        let curated: Vec<bool> = persons
            .iter()
            .map(|p| p.links.iter().any(|l| l.assurance == "level4"))
            .collect();
        let reviews = match_reviews(repository, ctx)?;
        // Pairs of Persons a review already asked about; those a person said are different.
        let mut asked: HashSet<(usize, usize)> = HashSet::new();
        let mut rejected: HashSet<(usize, usize)> = HashSet::new();
        for review in &reviews {
            let (Some(&a), Some(&b)) = (
                owner.get(review.patient.as_str()),
                number.get(&review.candidate),
            ) else {
                continue;
            };
            let pair = ordered(a, current(b));
            asked.insert(pair);
            if review.rejected {
                rejected.insert(pair);
            }
        }
        let decided = index.link_pairs(matcher, THREADS);
        let mut groups = UnionFind::new(persons.len());
        let mut best: HashMap<usize, f64> = HashMap::new();
        let mut unsure: Vec<(u32, u32, f64)> = Vec::new();
        for (a, b, decision, probability) in &decided {
            let (Some(&pa), Some(&pb)) = (
                owner.get(ids[*a as usize].as_str()),
                owner.get(ids[*b as usize].as_str()),
            ) else {
                continue;
            };
            if pa == pb {
                continue;
            }
            let blocked = rejected.contains(&ordered(pa, pb)) || curated[pa] || curated[pb];
            if *decision == Decision::AutoLink && !blocked {
                groups.union(pa, pb);
                for p in [pa, pb] {
                    let entry = best.entry(p).or_insert(0.0);
                    *entry = entry.max(*probability);
                }
            } else if !rejected.contains(&ordered(pa, pb)) {
                unsure.push((*a, *b, *probability));
            }
        }
        // A group that would join a pair a person kept apart is left whole for people.
        let mut vetoed: HashSet<usize> = HashSet::new();
        for (a, b) in &rejected {
            if groups.find(*a) == groups.find(*b) {
                vetoed.insert(groups.find(*a));
            }
        }
        let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
        for (p, person) in persons.iter().enumerate() {
            let root = groups.find(p);
            if !vetoed.contains(&root) && person.active {
                members.entry(root).or_default().push(p);
            }
        }
        // Where each Person's Patients are once the merges are written.
        let mut survivor: Vec<usize> = (0..persons.len()).collect();
        let mut roots: Vec<usize> = members.keys().copied().collect();
        roots.sort_unstable();
        for root in roots {
            let group = &members[&root];
            if group.len() < 2 {
                continue;
            }
            let target = *group
                .iter()
                .max_by_key(|p| (persons[**p].links.len(), std::cmp::Reverse(**p)))
                .expect("a group has members");
            let probability = group
                .iter()
                .filter_map(|p| best.get(p))
                .fold(0.0, |x: f64, y| x.max(*y));
            let states: Vec<&PersonState> = group.iter().map(|p| &persons[*p]).collect();
            let group_keys: Vec<u64> = group
                .iter()
                .flat_map(|p| keys[*p].iter().copied())
                .collect();
            if self.merge_group(
                repository,
                ctx,
                &persons[target],
                &states,
                &group_keys,
                probability,
            )? {
                outcome.persons_merged += group.len() - 1;
                for p in group {
                    survivor[*p] = target;
                }
            }
        }
        // Reviews for the pairs still apart that the new model is unsure of, one per pair of
        // Persons, the later registration asked about against the earlier one's Person.
        let mut queued: HashMap<(usize, usize), (u32, u32, f64)> = HashMap::new();
        for (a, b, probability) in unsure {
            let (pa, pb) = (
                owner[ids[a as usize].as_str()],
                owner[ids[b as usize].as_str()],
            );
            let (sa, sb) = (survivor[pa], survivor[pb]);
            if sa == sb || asked.contains(&ordered(pa, pb)) || asked.contains(&ordered(sa, sb)) {
                continue;
            }
            let entry = queued.entry(ordered(sa, sb)).or_insert((a, b, probability));
            if probability > entry.2 {
                *entry = (a, b, probability);
            }
        }
        let mut to_queue: Vec<(u32, u32)> = queued.values().map(|(a, b, _)| (*a, *b)).collect();
        to_queue.sort_unstable();
        for chunk in to_queue.chunks(BATCH) {
            repository.run_in_transaction(ctx, |tx| {
                for (a, b) in chunk {
                    // The later registration (scanned later) is the one asked about.
                    let (later, earlier) = if a > b { (*a, *b) } else { (*b, *a) };
                    let (own, other) = (
                        survivor[owner[ids[later as usize].as_str()]],
                        survivor[owner[ids[earlier as usize].as_str()]],
                    );
                    let verdict = matcher.decide(index.record(later), index.record(earlier));
                    let candidate = Candidate {
                        person: persons[other].clone(),
                        verdict,
                    };
                    self.queue_review(tx, &ids[later as usize], &persons[own].id, &candidate)?;
                }
                Ok(())
            })?;
            outcome.reviews_queued += chunk.len();
        }
        // Open reviews whose Patient and candidate are now one Person's: completed.
        let stale: Vec<&Review> = reviews
            .iter()
            .filter(|r| r.open)
            .filter(
                |r| match (owner.get(r.patient.as_str()), number.get(&r.candidate)) {
                    (Some(&a), Some(&b)) => survivor[a] == survivor[current(b)],
                    _ => false,
                },
            )
            .collect();
        for chunk in stale.chunks(BATCH) {
            let closed = repository.run_in_transaction(ctx, |tx| {
                let mut closed = 0;
                for review in chunk {
                    let Some((record, mut task)) = tx.read("Task", &review.id)? else {
                        continue;
                    };
                    if record.version != review.version || task["status"] != "requested" {
                        continue;
                    }
                    task["status"] = json!("completed");
                    task["businessStatus"] =
                        json!({"text": "linked automatically after the model was re-estimated"});
                    task["lastModified"] = json!(fhir_model::clock::format_instant(
                        fhir_model::clock::now_micros()
                    ));
                    tx.update(task, Some(record.version))?;
                    closed += 1;
                }
                Ok(closed)
            })?;
            outcome.reviews_closed += closed;
        }
        Ok(())
    }

    /// Merges `group` into `target` in one transaction, if every one of them is still as the
    /// re-evaluation read it (a write since then means the pair is looked at next time).
    /// `keys` are the group's blocking keys, locked first.
    fn merge_group(
        &self,
        repository: &Repository,
        ctx: &Caller,
        target: &PersonState,
        group: &[&PersonState],
        keys: &[u64],
        probability: f64,
    ) -> Result<bool, IdentityError> {
        let merged = repository.run_in_transaction(ctx, |tx| {
            // The locks a registration takes before it reads its candidates: one that found a
            // Person of the group either finished before (and the version check below sees
            // it) or waits until the merge is committed (and finds the Person inactive).
            lock_keys(tx, keys.to_vec())?;
            for person in group {
                match self.read_person(tx, &person.id)? {
                    Some(now) if now.active && now.version == person.version => {}
                    _ => return Ok(false),
                }
            }
            let mut into = target.clone();
            let mut sources = Vec::new();
            for person in group.iter().filter(|p| p.id != target.id) {
                let mut from = (*person).clone();
                from.former = from.links.iter().map(|l| l.patient.clone()).collect();
                into.links
                    .extend(from.links.drain(..).map(|l| match l.score {
                        // The founding record of a Person is linked here by the new model.
                        None => Link::automatic(&l.patient, probability),
                        Some(_) => l,
                    }));
                from.active = false;
                from.merged_into = Some(into.id.clone());
                self.write_person(tx, &from)?;
                sources.push(format!("Person/{}", from.id));
            }
            self.write_person(tx, &into)?;
            let mut entities = vec![format!("Person/{}", into.id)];
            entities.extend(sources);
            let entities: Vec<&str> = entities.iter().map(String::as_str).collect();
            self.audit(
                tx,
                "auto-merge",
                &entities,
                Some(&format!(
                    "the model was re-estimated; match probability {probability:.4}"
                )),
            )?;
            Ok(true)
        })?;
        Ok(merged)
    }
}

/// Why an estimate must not replace the model in use, if it must not: it found too few
/// matches to have learned m from, or it learned that agreeing says less than disagreeing.
fn unusable(training: &Training) -> Option<String> {
    if training.expected_matches < MIN_EXPECTED_MATCHES {
        return Some(format!(
            "the estimate finds {:.1} matching pairs among {} Patients; at least {MIN_EXPECTED_MATCHES} are needed to learn from",
            training.expected_matches, training.records
        ));
    }
    let model: &Model = &training.model;
    for field in [Field::Family, Field::Given, Field::BirthDate] {
        let last = field.levels() as u8;
        if model.weight(field, 1) <= model.weight(field, last) {
            return Some(format!(
                "the estimate weighs agreement on {} no more than disagreement",
                field.name()
            ));
        }
    }
    None
}

fn ordered(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

/// Every current resource of a type, in row order.
fn scan_all(
    repository: &Repository,
    ctx: &Caller,
    resource_type: &str,
) -> Result<Vec<VersionRecord>, RepositoryError> {
    let mut out = Vec::new();
    let mut after_row = 0;
    loop {
        let page = repository.reader(ctx).scan(&ScanQuery {
            types: vec![resource_type.to_owned()],
            since: None,
            after_row,
            limit: 1000,
            visibility: Default::default(),
        })?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after_row = last.row;
        out.extend(page);
    }
}

/// Every match-review Task, open or answered.
fn match_reviews(repository: &Repository, ctx: &Caller) -> Result<Vec<Review>, IdentityError> {
    let mut out = Vec::new();
    for record in scan_all(repository, ctx, "Task")? {
        let task = parse_stored(&record)?;
        if !super::operations::is_match_review(&task) {
            continue;
        }
        let candidate = task["input"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i.pointer("/type/text").and_then(Value::as_str) == Some("candidate"))
            .and_then(|i| i.pointer("/valueReference/reference"))
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("Person/"));
        let patient = task
            .pointer("/focus/reference")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("Patient/"));
        let (Some(candidate), Some(patient)) = (candidate, patient) else {
            continue;
        };
        out.push(Review {
            id: record.id.clone(),
            version: record.version,
            open: task["status"] == "requested",
            rejected: task["status"] == "completed"
                && task.pointer("/businessStatus/text").and_then(Value::as_str)
                    == Some("not-linked"),
            patient: patient.to_owned(),
            candidate: candidate.to_owned(),
        });
    }
    Ok(out)
}

/// Union–find over Person numbers.
struct UnionFind(Vec<usize>);

impl UnionFind {
    fn new(n: usize) -> UnionFind {
        UnionFind((0..n).collect())
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
}
