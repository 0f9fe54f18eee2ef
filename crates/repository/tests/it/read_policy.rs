//! The read policy holds on every read path: a policy that hides everything leaves nothing to
//! read, count, include, reach through a chain or `_has`, export or find; a policy that hides
//! some resources hides exactly those everywhere. On every backend.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use caller::Caller;
use repository::{
    AccessPolicy, ExportLevel, ExportRequest, HistoryRequest, Repository, RepositoryError,
    SearchRequest, SearchScope,
};
use search::query::{Filter, TokenColumn, Visibility};
use serde_json::{Value, json};
use store::{HistoryScope, ScanQuery};
use test_support::backend_tests;

use crate::support::*;

/// Hides everything.
struct SeeNothing;

impl AccessPolicy for SeeNothing {
    fn visibility(&self, _: &Caller) -> Visibility {
        Visibility::Nothing
    }
}

/// Hides the resources tagged `urn:test:label|secret`.
struct HideSecrets;

impl AccessPolicy for HideSecrets {
    fn visibility(&self, _: &Caller) -> Visibility {
        let tag = search::keys::ParamKey::new("Resource", "_tag");
        // `_tag` is indexed under every type's own key; hide by each type's.
        let types = ["Patient", "Observation", "Encounter", "Organization"];
        Visibility::Where(Filter::Not(Box::new(Filter::AnyOf(
            types
                .iter()
                .map(|t| {
                    let param = search::keys::ParamKey::new(t, "_tag");
                    Filter::Token {
                        param,
                        column: TokenColumn::SystemCode,
                        hash: param.system_code_hash("urn:test:label", "secret"),
                    }
                })
                .chain(std::iter::once(Filter::Token {
                    param: tag,
                    column: TokenColumn::SystemCode,
                    hash: tag.system_code_hash("urn:test:label", "secret"),
                }))
                .collect(),
        ))))
    }
}

fn create(repository: &Repository, resource: Value) -> String {
    repository
        .create(&ctx(), resource, None)
        .unwrap()
        .record
        .unwrap()
        .id
}

fn secret() -> Value {
    json!({"tag": [{"system": "urn:test:label", "code": "secret"}]})
}

/// Two patients, one of them secret, each with an encounter and an observation at one
/// organisation; the secret patient's observation is secret too.
fn load(repository: &Repository) -> (String, String, String) {
    let organization = create(
        repository,
        json!({"resourceType": "Organization", "name": "County hospital"}),
    );
    let open = create(
        repository,
        json!({"resourceType": "Patient", "name": [{"family": "Open"}],
        "managingOrganization": {"reference": format!("Organization/{organization}")}}),
    );
    let hidden = create(
        repository,
        json!({"resourceType": "Patient", "meta": secret(), "name": [{"family": "Hidden"}],
        "managingOrganization": {"reference": format!("Organization/{organization}")}}),
    );
    for (patient, meta) in [(&open, None), (&hidden, Some(secret()))] {
        create(
            repository,
            json!({"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{patient}")}}),
        );
        let mut observation = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": format!("Patient/{patient}")}});
        if let Some(meta) = meta {
            observation["meta"] = meta;
        }
        create(repository, observation);
    }
    (organization, open, hidden)
}

/// A search's match ids, its total and its included ids.
fn searched(
    repository: &Repository,
    resource_type: &str,
    params: &[(&str, &str)],
) -> (Vec<String>, u64, Vec<String>) {
    let mut params = params.to_vec();
    params.push(("_total", "accurate"));
    let request = SearchRequest {
        scope: SearchScope::Type(resource_type.into()),
        params: criteria(&params),
        handling: search::Handling::Strict,
    };
    let bundle = json(&repository.search(&ctx(), BASE, &request).unwrap());
    let ids = |mode: &str| -> Vec<String> {
        bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["search"]["mode"] == mode)
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    (
        ids("match"),
        bundle["total"].as_u64().unwrap(),
        ids("include"),
    )
}

fn history_count(repository: &Repository, scope: HistoryScope) -> Result<usize, RepositoryError> {
    let bundle = repository.history(
        &ctx(),
        BASE,
        &HistoryRequest {
            scope,
            params: Vec::new(),
        },
    )?;
    Ok(json(&bundle)["entry"].as_array().map_or(0, Vec::len))
}

fn exported(repository: &Repository) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let blobs = blob::FileBlobStore::open(dir.path()).unwrap();
    let request = ExportRequest::parse(repository, ExportLevel::System, &[]).unwrap();
    repository
        .export(
            &ctx(),
            &request,
            &blobs,
            &blob::BlobKey::new("x").unwrap(),
            &AtomicU64::new(0),
            &|| false,
        )
        .unwrap()
        .iter()
        .map(|f| f.count)
        .sum()
}

backend_tests! {
    fn a_policy_that_hides_everything_leaves_nothing_on_any_read_path(store) {
        let repository = repository(store);
        let (organization, open, _) = load(&repository);
        // Everything is there for a policy that sees it.
        assert_eq!(searched(&repository, "Patient", &[]).1, 2);
        assert_eq!(exported(&repository), 7);

        repository.set_access_policy(Arc::new(SeeNothing));
        assert!(matches!(repository.read(&ctx(), "Patient", &open), Err(RepositoryError::NotFound(_))));
        assert!(matches!(repository.vread(&ctx(), "Patient", &open, "1"), Err(RepositoryError::NotFound(_))));
        assert!(matches!(history_count(&repository, HistoryScope::Instance("Patient".into(), open.clone())), Err(RepositoryError::NotFound(_))));
        assert_eq!(history_count(&repository, HistoryScope::Type("Patient".into())).unwrap(), 0);
        assert_eq!(history_count(&repository, HistoryScope::System).unwrap(), 0);
        for (resource_type, params) in [
            ("Patient", vec![]),
            ("Patient", vec![("family", "Open")]),
            ("Patient", vec![("_sort", "family")]),
            ("Observation", vec![("_include", "Observation:subject")]),
            ("Observation", vec![("subject.family", "Open")]),
            ("Patient", vec![("_has:Observation:subject:code", "8867-4")]),
            ("Patient", vec![("organization", &format!("Organization/{organization}"))]),
            ("Organization", vec![("_revinclude", "Patient:organization")]),
        ] {
            let (matches, total, included) = searched(&repository, resource_type, &params);
            assert_eq!((matches.len(), total, included.len()), (0, 0, 0), "{resource_type}?{params:?}");
        }
        assert!(matches!(
            repository.everything(&ctx(), BASE, &open, &[]),
            Err(RepositoryError::NotFound(_))
        ));
        assert_eq!(exported(&repository), 0);
        assert_eq!(repository.find(&ctx(), "Patient", &criteria(&[("family", "Open")]), 10).unwrap(), []);
        let scanned = repository
            .reader(&ctx())
            .scan(&ScanQuery { limit: 100, ..ScanQuery::default() })
            .unwrap();
        assert_eq!(scanned, []);
        // A conditional create sees no match, as the caller sees none.
        let written = repository
            .create(&ctx(), json!({"resourceType": "Patient", "name": [{"family": "Open"}]}), Some(&criteria(&[("family", "Open")])))
            .unwrap();
        assert_eq!(written.status, repository::WriteStatus::Created);
    }

    fn a_policy_that_hides_some_resources_hides_exactly_those_everywhere(store) {
        let repository = repository(store);
        let (organization, open, hidden) = load(&repository);
        repository.set_access_policy(Arc::new(HideSecrets));
        assert!(repository.read(&ctx(), "Patient", &open).is_ok());
        assert!(matches!(repository.read(&ctx(), "Patient", &hidden), Err(RepositoryError::NotFound(_))));
        // Matches and totals.
        assert_eq!(searched(&repository, "Patient", &[]), (vec![open.clone()], 1, vec![]));
        assert_eq!(searched(&repository, "Patient", &[("_sort", "family")]).1, 1);
        assert_eq!(searched(&repository, "Observation", &[]).1, 1);
        // A chain through a hidden patient finds nothing; `_has` does not count a hidden
        // referrer; an include does not bring a hidden target in.
        assert_eq!(searched(&repository, "Encounter", &[("subject.family", "Hidden")]).1, 0);
        assert_eq!(searched(&repository, "Encounter", &[("subject.family", "Open")]).1, 1);
        let (with_observations, _, _) = searched(&repository, "Patient", &[("_has:Observation:subject:code", "8867-4")]);
        assert_eq!(with_observations, [open.as_str()]);
        let (encounters, total, included) = searched(&repository, "Encounter", &[("_include", "Encounter:subject")]);
        assert_eq!((encounters.len(), total), (2, 2), "the encounters themselves are not secret");
        assert_eq!(included, [open.as_str()]);
        let (_, _, referrers) = searched(&repository, "Organization", &[("_revinclude", "Patient:organization")]);
        assert_eq!(referrers, [open.as_str()]);
        assert_eq!(searched(&repository, "Patient", &[("organization", &format!("Organization/{organization}"))]).1, 1);
        // History, `$everything`, export, services' finds.
        assert_eq!(history_count(&repository, HistoryScope::Type("Patient".into())).unwrap(), 1);
        assert!(matches!(repository.everything(&ctx(), BASE, &hidden, &[]), Err(RepositoryError::NotFound(_))));
        let everything = json(&repository.everything(&ctx(), BASE, &open, &[]).unwrap());
        let ids: Vec<&str> = everything["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap()).collect();
        assert!(!ids.contains(&hidden.as_str()));
        assert_eq!(ids.len(), 4, "the patient, its encounter and observation, its organisation: {ids:?}");
        assert_eq!(exported(&repository), 5);
        assert_eq!(repository.find(&ctx(), "Patient", &criteria(&[("family", "Hidden")]), 10).unwrap(), []);
    }
}
