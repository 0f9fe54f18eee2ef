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

/// Whether the workflow governs `task`: every Task but those another Meridian service codes as
/// its own work item (a `code` in a Meridian code system other than the workflow's, such as
/// the master index's match reviews for the identity stewards, `urn:meridian:mpi`), which
/// follow that service's rules: they are addressed to no institution and move as the service
/// moves them.
fn governed(task: Option<&Value>) -> bool {
    let codings: Vec<&str> = task
        .and_then(|t| t.pointer("/code/coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("system").and_then(Value::as_str))
        .collect();
    let meridian = |system: &&str| {
        system.starts_with("urn:meridian:") || system.starts_with("https://meridian.example/")
    };
    let another_service = codings
        .iter()
        .any(|s| meridian(s) && *s != crate::vocabulary::WORKFLOW_CODES);
    let ours = codings.contains(&crate::vocabulary::WORKFLOW_CODES);
    ours || !another_service
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
            // Another service's work item is that service's to govern.
            "Task" if !governed(next.as_ref().or(before.as_ref())) => Ok(()),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::governed;

    #[test]
    fn the_workflow_governs_every_task_but_another_services_own() {
        let coded = |system: &str| json!({"resourceType": "Task", "code": {"coding": [{"system": system, "code": "x"}]}});
        assert!(governed(Some(&json!({"resourceType": "Task"}))));
        assert!(governed(Some(&coded(crate::vocabulary::WORKFLOW_CODES))));
        assert!(governed(Some(&coded("http://loinc.org"))));
        assert!(!governed(Some(&coded("urn:meridian:mpi"))));
        assert!(!governed(Some(&coded(
            "https://meridian.example/CodeSystem/other-service"
        ))));
    }
}
