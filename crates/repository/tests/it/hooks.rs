//! Write hooks: run inside the write's transaction, see every version written, and their
//! writes commit or roll back with it.

use std::sync::Arc;

use repository::{InTransaction, RepositoryError, WriteHook};
use serde_json::{Value, json};
use store::VersionRecord;
use test_support::backend_tests;

use crate::support::*;

/// For every Patient written, writes a Basic resource naming it, and fails the write of a
/// Patient whose family name is "Refused".
struct Shadow;

impl WriteHook for Shadow {
    fn wants(&self, resource_type: &str) -> bool {
        resource_type == "Patient"
    }

    fn after_write(
        &self,
        tx: &mut InTransaction<'_, '_>,
        record: &VersionRecord,
        _previous: Option<&VersionRecord>,
    ) -> Result<(), RepositoryError> {
        let patient: Value = serde_json::from_slice(record.content.as_deref().unwrap_or(b"{}"))
            .expect("the hook sees the stored JSON");
        if patient["name"][0]["family"] == "Refused" {
            return Err(RepositoryError::Conflict("refused by the hook".into()));
        }
        // Read-your-writes: the version just written is visible inside the transaction.
        let (seen, _) = tx
            .read("Patient", &record.id)?
            .expect("the hook sees the write");
        assert_eq!(seen.version, record.version);
        tx.create(json!({
            "resourceType": "Basic",
            "code": {"text": "shadow"},
            "subject": {"reference": format!("Patient/{}", record.id)}
        }))?;
        Ok(())
    }
}

fn shadows(repository: &repository::Repository, patient: &str) -> usize {
    repository
        .find(
            &ctx(),
            "Basic",
            &criteria(&[("subject", &format!("Patient/{patient}"))]),
            10,
        )
        .unwrap()
        .len()
}

backend_tests! {
    fn a_hook_writes_in_the_same_transaction_as_each_version(store) {
        let repository = repository(store);
        repository.add_write_hook(Arc::new(Shadow));
        let written = repository
            .create(&ctx(), json!({"resourceType": "Patient", "name": [{"family": "Li"}]}), None)
            .unwrap();
        let id = written.record.unwrap().id;
        assert_eq!(shadows(&repository, &id), 1);
        repository
            .update(&ctx(), "Patient", &id, json!({"resourceType": "Patient", "id": id, "gender": "male"}), None)
            .unwrap();
        assert_eq!(shadows(&repository, &id), 2, "one shadow per version");
        // Other types do not reach the hook.
        repository.create(&ctx(), json!({"resourceType": "Organization", "name": "x"}), None).unwrap();
        assert_eq!(repository.find(&ctx(), "Basic", &[], 10).unwrap().len(), 2);
    }

    fn a_failing_hook_rolls_the_write_back(store) {
        let repository = repository(store);
        repository.add_write_hook(Arc::new(Shadow));
        let error = repository
            .create(&ctx(), json!({"resourceType": "Patient", "name": [{"family": "Refused"}]}), None)
            .unwrap_err();
        assert!(matches!(error, RepositoryError::Conflict(_)), "{error}");
        assert!(repository.find(&ctx(), "Patient", &[], 10).unwrap().is_empty());
        assert!(repository.find(&ctx(), "Basic", &[], 10).unwrap().is_empty());
    }

    fn a_transaction_bundle_runs_the_hook_for_every_patient(store) {
        let repository = repository(store);
        repository.add_write_hook(Arc::new(Shadow));
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient", "name": [{"family": "A"}]}, "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "name": [{"family": "B"}]}, "request": {"method": "POST", "url": "Patient"}}
        ]});
        repository.process_bundle(&ctx(), BASE, bundle, Default::default()).unwrap();
        assert_eq!(repository.find(&ctx(), "Basic", &[], 10).unwrap().len(), 2);
    }

    fn run_in_transaction_is_all_or_nothing(store) {
        let repository = repository(store);
        let result: Result<(), RepositoryError> = repository.run_in_transaction(&ctx(), |tx| {
            tx.create(json!({"resourceType": "Organization", "name": "kept?"}))?;
            Err(RepositoryError::Conflict("changed my mind".into()))
        });
        assert!(result.is_err());
        assert!(repository.find(&ctx(), "Organization", &[], 10).unwrap().is_empty());
    }
}
