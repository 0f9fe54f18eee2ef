//! The master patient index over the repository: every Patient written is matched, inside its
//! own transaction, against the master records (`Person` resources), and linked to one, queued
//! for review, or given a master record of its own. Link, unlink, merge and the review queue are
//! operations here; `$match` and PIXm queries are in `query`. The index learns its model from
//! the Patients it holds (`learning`) and keeps it in the store (`kept_model`).

mod audit;
mod hook;
mod kept_model;
mod learning;
mod operations;
mod person;
mod query;

use std::sync::{Arc, Mutex, RwLock};

use repository::WriteHook;

use crate::model::{CHINESE_SURNAME_SHARES, Matcher, Model, TermFrequencies, Thresholds};
use crate::record::IdentifierSystems;

pub use kept_model::{Estimated, MODEL_ID, ModelOrigin};
pub use learning::{LearningOutcome, MIN_RECORDS};
pub use operations::{LinkOutcome, ReviewDecision};
pub(crate) use person::PersonState;
pub use query::{MatchGrade, MatchResult, PixResult};

/// The code systems and extensions the index writes.
pub const BLOCKING_TAG_SYSTEM: &str = "urn:meridian:mpi:blocking-key";
pub const MPI_SYSTEM: &str = "urn:meridian:mpi";
/// On a Person merged into another: each Patient it held, so that unlinking one restores it.
pub const FORMER_LINK_EXTENSION: &str = "urn:meridian:mpi:former-link";
/// On a Person's link: the match probability the link was made at.
pub const MATCH_SCORE_EXTENSION: &str = "urn:meridian:mpi:match-score";

/// How the index decides.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub thresholds: Thresholds,
    pub systems: IdentifierSystems,
    /// The number of residents the platform serves: the prior that two records are one person
    /// is about one in this many, so that the evidence needed grows with the population.
    pub population: u64,
    /// How many candidate Persons blocking may bring to one match.
    pub max_candidates: usize,
}

impl Default for IdentityConfig {
    fn default() -> IdentityConfig {
        IdentityConfig {
            thresholds: Thresholds::default(),
            systems: IdentifierSystems::default(),
            population: 1_000_000,
            max_candidates: 100,
        }
    }
}

/// The master patient index.
pub struct Mpi {
    /// The matcher every match uses; replaced whole when the model is re-estimated (a match
    /// takes its own reference first, so it never sees half of one model and half of another).
    matcher: RwLock<(Arc<Matcher>, ModelOrigin)>,
    pub(crate) config: IdentityConfig,
    /// Held while the model is re-estimated: one estimation at a time.
    learning: Mutex<()>,
    /// What the last re-estimation did, for the model report.
    last_learning: Mutex<Option<LearningOutcome>>,
    /// Patients written since then, for the schedule.
    changes: Mutex<learning::ChangeCount>,
}

impl Mpi {
    pub fn new(config: IdentityConfig) -> Arc<Mpi> {
        Arc::new(Mpi {
            matcher: RwLock::new((Arc::new(Mpi::built_in(&config)), ModelOrigin::BuiltIn)),
            config,
            learning: Mutex::new(()),
            last_learning: Mutex::new(None),
            changes: Mutex::new(learning::ChangeCount::default()),
        })
    }

    /// The matcher the index starts with, before it has learned from its own data: the
    /// regional model with the prior one in the population.
    fn built_in(config: &IdentityConfig) -> Matcher {
        let mut model = Model::regional();
        model.prior = 1.0 / config.population.max(2) as f64;
        model.refresh();
        Matcher::new(
            model,
            Some(TermFrequencies::from_family_shares(CHINESE_SURNAME_SHARES)),
            config.thresholds,
        )
    }

    /// The hook to register on the repository: it matches every Patient written.
    pub fn hook(self: &Arc<Mpi>) -> Arc<dyn WriteHook> {
        Arc::new(hook::MatchOnWrite(Arc::clone(self)))
    }

    /// The matcher in use now.
    pub fn matcher(&self) -> Arc<Matcher> {
        Arc::clone(&self.matcher.read().unwrap_or_else(|p| p.into_inner()).0)
    }

    /// Where the matcher in use came from.
    pub fn model_origin(&self) -> ModelOrigin {
        self.matcher
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    pub(crate) fn replace_matcher(&self, matcher: Matcher, origin: ModelOrigin) {
        *self.matcher.write().unwrap_or_else(|p| p.into_inner()) = (Arc::new(matcher), origin);
    }
}
