//! Care across levels (`docs/workflow.md`): a township's consultation request answered by a
//! county expert, a family doctor's referral into a hospital's reserved slots and the patient
//! sent back with a follow-up plan, a resident's booking and check-in. A domain service over
//! the repository: no HTTP, runtime or driver, and no other domain service.
//!
//! - [`task`]: the `Task` state machine, enforced on every version written (a `PUT` with or
//!   without `If-Match`, a `PATCH`, a Bundle entry, an operation), and who may make each move;
//!   each Task's clock (requested, accepted, completed, due) in the store's key-value table.
//! - [`booking`]: a `Slot` is taken in the same transaction as the `Appointment` that books it
//!   (no double booking on either store), freed when the appointment is cancelled; reserved
//!   capacity for referrals and its release; `$find`, `$book` and check-in.
//! - [`followup`]: a discharge `CarePlan`'s activities become Tasks on the worklist of the
//!   team that performs them.
//! - [`deadline`]: due times by priority, the escalation of what is overdue (at an instant the
//!   caller gives, so tests control the clock), and turnaround figures per institution and
//!   month.
//! - [`hook`]: the write hook that runs all of it inside each write's transaction.

pub mod booking;
pub mod config;
pub mod deadline;
pub mod followup;
pub mod hook;
pub mod operations;
pub mod task;

pub use config::WorkflowConfig;
pub use hook::WorkflowHook;

/// Meridian's own extensions and code systems for the workflows.
pub mod vocabulary {
    /// On a `Slot`: `valueCode` `referral` reserves it for referred patients.
    pub const RESERVED_FOR: &str = "https://meridian.example/fhir/StructureDefinition/reserved-for";
    /// `Task.code` and `Task.businessStatus` codings.
    pub const WORKFLOW_CODES: &str = "https://meridian.example/CodeSystem/workflow";
    /// The identifier system of the Task made for a care plan's activity.
    pub const FOLLOW_UP: &str = "https://meridian.example/fhir/follow-up";
}
