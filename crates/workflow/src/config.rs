//! What a health commission configures about its workflows.

/// Microseconds in a minute.
pub const MINUTE: i64 = 60_000_000;

/// Deadlines by priority and the release of reserved capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowConfig {
    /// How long a request of each priority (`stat`, `asap`, `urgent`, `routine`) may stay
    /// unanswered, in microseconds. A Task's own `restriction.period.end` wins.
    pub stat: i64,
    pub asap: i64,
    pub urgent: i64,
    pub routine: i64,
    /// A slot reserved for referrals that is still free this long before it starts is open
    /// to everyone (microseconds).
    pub release_before: i64,
}

impl Default for WorkflowConfig {
    fn default() -> WorkflowConfig {
        WorkflowConfig {
            stat: 30 * MINUTE,
            asap: 60 * MINUTE,
            urgent: 120 * MINUTE,
            routine: 24 * 60 * MINUTE,
            release_before: 48 * 60 * MINUTE,
        }
    }
}

impl WorkflowConfig {
    /// The time allowed for a request of `priority` (routine when absent or unknown).
    pub fn allowed(&self, priority: Option<&str>) -> i64 {
        match priority {
            Some("stat") => self.stat,
            Some("asap") => self.asap,
            Some("urgent") => self.urgent,
            _ => self.routine,
        }
    }
}
