//! SearchParameter resources written to the server take effect for new writes; reindexing
//! brings existing resources up to date, in batches that resume after an interruption.

use std::sync::Arc;

use repository::{Repository, SearchRequest, SearchScope};
use search::Handling;
use serde_json::{Value, json};
use test_support::backend_tests;

use crate::support::*;

fn nickname_parameter() -> Value {
    json!({
        "resourceType": "SearchParameter",
        "url": "http://meridian.example/SearchParameter/patient-nickname",
        "name": "nickname",
        "status": "active",
        "description": "A patient's nickname",
        "code": "nickname",
        "base": ["Patient"],
        "type": "string",
        "expression": "Patient.name.where(use = 'nickname').given"
    })
}

fn patient(nickname: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": "Wang", "given": ["Xiaoming"]}, {"use": "nickname", "given": [nickname]}]})
}

fn strict_ids(repository: &Repository, query: &str) -> Result<Vec<String>, u16> {
    let request = SearchRequest {
        scope: SearchScope::Type("Patient".into()),
        params: repository::parse_query(query),
        handling: Handling::Strict,
    };
    let bundle = json(
        &repository
            .search(&ctx(), BASE, &request)
            .map_err(|e| e.http_status())?,
    );
    Ok(bundle["entry"].as_array().map_or(Vec::new(), |entries| {
        entries
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect()
    }))
}

backend_tests! {
    fn a_stored_search_parameter_indexes_new_writes_and_reindex_catches_up_the_old(store) {
        let repository = repository(store);
        let before = repository.create(&ctx(), patient("Tiger"), None).unwrap().record.unwrap().id;
        assert_eq!(strict_ids(&repository, "nickname=tiger"), Err(400), "unknown before the parameter exists");

        repository.create(&ctx(), nickname_parameter(), None).unwrap();
        let after = repository.create(&ctx(), patient("Tiger"), None).unwrap().record.unwrap().id;
        assert_eq!(strict_ids(&repository, "nickname=tiger").unwrap(), std::slice::from_ref(&after), "only the new write is indexed");

        let mut progress = repository.reindex_batch(&ctx(), 1).unwrap();
        let mut rounds = 1;
        while !progress.done {
            progress = repository.reindex_batch(&ctx(), 1).unwrap();
            rounds += 1;
        }
        assert!(rounds >= 3, "one resource per batch: {rounds} rounds");
        let mut found = strict_ids(&repository, "nickname=tiger").unwrap();
        found.sort();
        let mut expected = vec![before, after];
        expected.sort();
        assert_eq!(found, expected);
    }

    fn an_interrupted_reindex_resumes_where_it_stopped(store) {
        let repository = repository(store);
        for name in ["A", "B", "C", "D"] {
            repository.create(&ctx(), patient(name), None).unwrap();
        }
        repository.create(&ctx(), nickname_parameter(), None).unwrap();
        let first = repository.reindex_batch(&ctx(), 2).unwrap();
        assert!(!first.done);
        // A new process over the same database: the stored parameter is loaded at start-up.
        let restarted = Repository::new(Arc::clone(&store.store));
        assert_eq!(restarted.load_search_parameters(&ctx()).unwrap(), 1);
        let resumed = restarted.reindex_batch(&ctx(), 100).unwrap();
        assert!(resumed.after_row > first.after_row, "it went on from the checkpoint");
        assert!(restarted.reindex_batch(&ctx(), 100).unwrap().done);
        assert_eq!(strict_ids(&restarted, "nickname=a,b,c,d").unwrap().len(), 4);
    }

    fn an_unusable_search_parameter_is_refused(store) {
        let repository = repository(store);
        let mut broken = nickname_parameter();
        broken["expression"] = json!("Patient.name.where(");
        let error = repository.create(&ctx(), broken, None).unwrap_err();
        assert_eq!(error.http_status(), 422);
        assert_eq!(error.issues("r")[0].expression.as_deref(), Some("SearchParameter.expression"));
        // An unknown base type breaks the base specification's binding: the validator refuses it.
        let mut no_base = nickname_parameter();
        no_base["base"] = json!(["NotAType"]);
        assert_eq!(repository.create(&ctx(), no_base, None).unwrap_err().http_status(), 400);
        let mut no_expression = nickname_parameter();
        no_expression.as_object_mut().unwrap().remove("expression");
        let error = repository.create(&ctx(), no_expression, None).unwrap_err();
        assert_eq!(error.issues("r")[0].expression.as_deref(), Some("SearchParameter.expression"));
    }

    fn deleting_or_retiring_a_search_parameter_withdraws_it(store) {
        let repository = repository(store);
        let id = repository.create(&ctx(), nickname_parameter(), None).unwrap().record.unwrap().id;
        repository.create(&ctx(), patient("Tiger"), None).unwrap();
        assert_eq!(strict_ids(&repository, "nickname=tiger").unwrap().len(), 1);
        let mut retired = nickname_parameter();
        retired["id"] = json!(id);
        retired["status"] = json!("retired");
        repository.update(&ctx(), "SearchParameter", &id, retired, None).unwrap();
        assert_eq!(strict_ids(&repository, "nickname=tiger"), Err(400));
        let mut active = nickname_parameter();
        active["id"] = json!(id);
        repository.update(&ctx(), "SearchParameter", &id, active, None).unwrap();
        repository.delete(&ctx(), "SearchParameter", &id, None).unwrap();
        assert_eq!(strict_ids(&repository, "nickname=tiger"), Err(400));
    }
}
