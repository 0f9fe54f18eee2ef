//! The master patient index over the repository: every Patient written is matched, inside its
//! own transaction, against the master records (`Person` resources), and linked to one, queued
//! for review, or given a master record of its own. Link, unlink, merge and the review queue are
//! operations here; `$match` and PIXm queries are in `query`.

mod audit;
mod hook;
mod operations;
mod person;
mod query;

use std::sync::Arc;

use repository::WriteHook;

use crate::model::{CHINESE_SURNAME_SHARES, Matcher, Model, TermFrequencies, Thresholds};
use crate::record::IdentifierSystems;

pub use operations::{LinkOutcome, ReviewDecision};
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
    pub(crate) matcher: Matcher,
    pub(crate) config: IdentityConfig,
}

impl Mpi {
    pub fn new(config: IdentityConfig) -> Arc<Mpi> {
        let mut model = Model::regional();
        model.prior = 1.0 / config.population.max(2) as f64;
        model.refresh();
        Arc::new(Mpi {
            matcher: Matcher::new(
                model,
                Some(TermFrequencies::from_family_shares(CHINESE_SURNAME_SHARES)),
                config.thresholds,
            ),
            config,
        })
    }

    /// The hook to register on the repository: it matches every Patient written.
    pub fn hook(self: &Arc<Mpi>) -> Arc<dyn WriteHook> {
        Arc::new(hook::MatchOnWrite(Arc::clone(self)))
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }
}
