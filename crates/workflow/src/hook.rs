//! The write hook: every version of a Task, Appointment or CarePlan, whoever writes it and
//! however, is checked and followed up inside its own transaction.

use repository::{InTransaction, RepositoryError, WriteHook};
use serde_json::Value;
use store::VersionRecord;

use crate::WorkflowConfig;
use crate::task::{Side, check};

pub struct WorkflowHook {
    config: WorkflowConfig,
}

impl WorkflowHook {
    pub fn new(config: WorkflowConfig) -> WorkflowHook {
        WorkflowHook { config }
    }
}

fn content(record: Option<&VersionRecord>) -> Result<Option<Value>, RepositoryError> {
    match record.filter(|r| !r.is_deleted()) {
        Some(record) => repository::parse_stored(record).map(Some),
        None => Ok(None),
    }
}

impl WriteHook for WorkflowHook {
    fn wants(&self, resource_type: &str) -> bool {
        matches!(resource_type, "Task" | "Appointment" | "CarePlan")
    }

    fn after_write(
        &self,
        tx: &mut InTransaction<'_, '_>,
        record: &VersionRecord,
        previous: Option<&VersionRecord>,
    ) -> Result<(), RepositoryError> {
        let next = content(Some(record))?;
        let before = content(previous)?;
        match record.resource_type.as_str() {
            "Task" => {
                if let Some(next) = &next {
                    // The side is judged on the Task as it stood: who held it, whom it was
                    // addressed to.
                    let parties =
                        search::registry::parties_of("Task", before.as_ref().unwrap_or(next));
                    let custodian = previous
                        .filter(|p| !p.is_deleted())
                        .map_or(record.custodian.as_deref(), |p| p.custodian.as_deref());
                    let side = Side::of(tx.ctx(), custodian, &parties);
                    let now_parties = search::registry::parties_of("Task", next);
                    check(&record.id, side, before.as_ref(), next, &now_parties)?;
                }
                crate::deadline::track(tx, &self.config, record, next.as_ref())
            }
            "Appointment" => crate::booking::appointment_written(
                tx,
                &self.config,
                record,
                before.as_ref(),
                next.as_ref(),
            ),
            "CarePlan" => crate::followup::care_plan_written(tx, record, next.as_ref()),
            _ => Ok(()),
        }
    }
}
