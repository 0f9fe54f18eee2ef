//! The master patient index over a real store: every Patient written is matched before the
//! write returns; link, unlink, merge and reviews keep history and audit.

use std::sync::Arc;

use residents::mpi::ReviewDecision;
use serde_json::json;
use test_support::backend_tests;

use crate::support::*;

const COUNTY: (&str, &str) = ("urn:meridian:institution:county:mrn", "C-1001");
const TOWNSHIP: (&str, &str) = ("urn:meridian:institution:township:mrn", "T-77");
const ZHANG_WEI_ID: &str = "11010519491231002X";

fn reviews(indexed: &Indexed) -> Vec<serde_json::Value> {
    find(
        indexed,
        "Task",
        &[
            ("code", "urn:meridian:mpi|match-review"),
            ("status", "requested"),
        ],
    )
}

fn audits(indexed: &Indexed, event: &str) -> usize {
    find(indexed, "AuditEvent", &[])
        .iter()
        .filter(|a| a["subtype"][0]["code"] == event)
        .count()
}

backend_tests! {
    fn a_first_registration_gets_a_master_record_before_the_write_returns(store) {
        let indexed = indexed(store);
        let patient = create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), COUNTY));
        let persons = persons_of(&indexed, &patient);
        assert_eq!(persons.len(), 1);
        let person = &persons[0];
        assert_eq!(linked_patients(person), vec![patient.clone()]);
        assert_eq!(person["active"], json!(true));
        assert_eq!(person["name"][0]["family"], "张");
        assert_eq!(person["birthDate"], "1949-12-31");
        assert!(person["meta"]["tag"].as_array().is_some_and(|t| t.len() >= 5), "blocking keys as tags");
        // The Patient itself is stored as written.
        assert!(read(&indexed, "Patient", &patient).get("link").is_none());
    }

    fn a_second_institution_registering_the_same_resident_links_to_the_same_person(store) {
        let indexed = indexed(store);
        let first = create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), COUNTY));
        // A homophone and a day/month swap, but the same ID number and phone.
        let second = create(&indexed, patient("张", "玮", "1949-12-31", Some(ZHANG_WEI_ID), TOWNSHIP));
        let persons = persons_of(&indexed, &second);
        assert_eq!(persons.len(), 1);
        let mut expected = vec![first, second];
        expected.sort();
        assert_eq!(linked_patients(&persons[0]), expected);
        assert_eq!(find(&indexed, "Person", &[]).len(), 1, "one resident, one master record");
        assert_eq!(find(&indexed, "Patient", &[]).len(), 2, "Patient searches are not doubled");
        // The master record gathers both institutions' identifiers: any card finds the resident.
        let by_card = find(&indexed, "Person", &[("identifier", &format!("{}|{}", TOWNSHIP.0, TOWNSHIP.1))]);
        assert_eq!(by_card.len(), 1);
        assert_eq!(audits(&indexed, "auto-link"), 1);
    }

    fn different_residents_get_different_persons(store) {
        let indexed = indexed(store);
        create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), COUNTY));
        let mut other = patient("李", "娜", "1992-07-30", None, TOWNSHIP);
        other["telecom"] = json!([{"system": "phone", "value": "13999990000"}]);
        other["address"] = json!([{"line": ["坝黄镇青龙村5组"], "district": "万山区", "postalCode": "554200"}]);
        create(&indexed, other);
        assert_eq!(find(&indexed, "Person", &[]).len(), 2);
        assert!(reviews(&indexed).is_empty());
    }

    fn the_same_id_number_on_a_different_person_goes_to_review(store) {
        let indexed = indexed(store);
        let first = create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), COUNTY));
        let mut other = patient("欧阳", "娜娜", "1992-07-30", Some(ZHANG_WEI_ID), TOWNSHIP);
        other["gender"] = json!("female");
        let second = create(&indexed, other);
        assert_ne!(persons_of(&indexed, &first)[0]["id"], persons_of(&indexed, &second)[0]["id"]);
        let queue = reviews(&indexed);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue[0]["focus"]["reference"], format!("Patient/{second}"));
        assert!(queue[0]["input"][3]["valueString"].as_str().unwrap().contains("conflict"), "{}", queue[0]);
    }

    fn accepting_a_review_links_and_rejecting_leaves_both(store) {
        let indexed = indexed(store);
        let first = create(&indexed, patient("张", "伟", "1949-12-31", None, COUNTY));
        // Same name, birth date and district, but another phone and village and no ID number:
        // likely the same resident, not sure enough to link without a person's look.
        let mut maybe = patient("张", "伟", "1949-12-31", None, TOWNSHIP);
        maybe["telecom"] = json!([{"system": "phone", "value": "13511112222"}]);
        maybe["address"] = json!([{"line": ["坝黄镇青龙村5组"], "district": "碧江区", "postalCode": "554300"}]);
        let second = create(&indexed, maybe.clone());
        let queue = reviews(&indexed);
        assert_eq!(queue.len(), 1, "{:?}", find(&indexed, "Person", &[]));
        let task = queue[0]["id"].as_str().unwrap().to_owned();
        let answered = indexed.mpi.review(&indexed.repository, &ctx(), &task, ReviewDecision::Accept).unwrap();
        assert_eq!(answered["status"], "completed");
        assert_eq!(answered["businessStatus"]["text"], "linked");
        let person = &persons_of(&indexed, &first)[0];
        let mut both = vec![first.clone(), second.clone()];
        both.sort();
        assert_eq!(linked_patients(person), both);
        assert_eq!(find(&indexed, "Person", &[]).iter().filter(|p| p["active"] == true).count(), 1);
        // Answering twice is refused.
        assert!(indexed.mpi.review(&indexed.repository, &ctx(), &task, ReviewDecision::Reject).is_err());

        // A third registration like the second, rejected: it keeps its own Person.
        let mut third = maybe;
        third["identifier"][0]["value"] = json!("T-78");
        third["telecom"] = json!([{"system": "phone", "value": "13700001111"}]);
        third["address"] = json!([{"line": ["滑石乡白岩村1组"], "district": "江口县", "postalCode": "554400"}]);
        third["birthDate"] = json!("1949-12-13");
        let third_id = create(&indexed, third);
        if let Some(task) = reviews(&indexed).first() {
            let task = task["id"].as_str().unwrap().to_owned();
            let answered = indexed.mpi.review(&indexed.repository, &ctx(), &task, ReviewDecision::Reject).unwrap();
            assert_eq!(answered["businessStatus"]["text"], "not-linked");
            assert_eq!(linked_patients(&persons_of(&indexed, &third_id)[0]), vec![third_id.clone()]);
            assert_eq!(audits(&indexed, "review-reject"), 1);
        }
        assert_eq!(audits(&indexed, "review-accept"), 1);
    }

    fn two_registrations_of_one_new_resident_at_once_make_one_person(store) {
        let indexed = Arc::new(indexed(store));
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let indexed = Arc::clone(&indexed);
                std::thread::spawn(move || {
                    let mrn = format!("H-{i}");
                    create(&indexed, patient("王", "芳", "1975-05-20", Some("520602197505200021"), ("urn:meridian:institution:h:mrn", &mrn)))
                })
            })
            .collect();
        let ids: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let persons: Vec<_> = find(&indexed, "Person", &[]).into_iter().filter(|p| p["active"] == true).collect();
        assert_eq!(persons.len(), 1, "one master record");
        let mut ids = ids;
        ids.sort();
        assert_eq!(linked_patients(&persons[0]), ids);
    }

    fn undoing_a_wrong_link_restores_both_persons(store) {
        let indexed = indexed(store);
        let a = create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), COUNTY));
        let mut other = patient("李", "娜", "1992-07-30", None, TOWNSHIP);
        other["telecom"] = json!([{"system": "phone", "value": "13999990000"}]);
        other["address"] = json!([{"line": ["坝黄镇青龙村5组"], "district": "万山区", "postalCode": "554200"}]);
        let b = create(&indexed, other);
        let person_a = persons_of(&indexed, &a)[0].clone();
        let person_b = persons_of(&indexed, &b)[0].clone();
        let (pa, pb) = (person_a["id"].as_str().unwrap(), person_b["id"].as_str().unwrap());

        // The wrong link: b moves into a's Person; b's Person is left inactive, pointing at it.
        indexed.mpi.link(&indexed.repository, &ctx(), pa, &b).unwrap();
        let mut both = vec![a.clone(), b.clone()];
        both.sort();
        assert_eq!(linked_patients(&read(&indexed, "Person", pa)), both);
        let emptied = read(&indexed, "Person", pb);
        assert_eq!(emptied["active"], json!(false));
        assert_eq!(emptied["link"][0]["target"]["reference"], format!("Person/{pa}"));
        assert_eq!(emptied["link"][0]["assurance"], "level4");

        // Undo: both Persons are as they were, with their history kept.
        indexed.mpi.unlink(&indexed.repository, &ctx(), pa, &b).unwrap();
        let restored_a = read(&indexed, "Person", pa);
        let restored_b = read(&indexed, "Person", pb);
        assert_eq!(linked_patients(&restored_a), vec![a.clone()]);
        assert_eq!(linked_patients(&restored_b), vec![b.clone()]);
        assert_eq!(restored_b["active"], json!(true));
        for (before, after) in [(&person_a, &restored_a), (&person_b, &restored_b)] {
            for key in ["name", "identifier", "birthDate", "gender", "telecom", "address"] {
                assert_eq!(before[key], after[key], "{key} restored");
            }
            assert_eq!(before["meta"]["tag"], after["meta"]["tag"], "findable again as before");
        }
        assert_eq!(restored_b["meta"]["versionId"], "3", "created, emptied, restored");
        assert_eq!(audits(&indexed, "link"), 1);
        assert_eq!(audits(&indexed, "unlink"), 1);
        // Unlinking what is not linked is a conflict, not a crash.
        assert!(indexed.mpi.unlink(&indexed.repository, &ctx(), pa, &b).is_err());
        assert!(indexed.mpi.link(&indexed.repository, &ctx(), "no-such-person", &b).is_err());
    }

    fn a_merge_moves_every_patient_and_unlinking_restores_the_merged_person(store) {
        let indexed = indexed(store);
        let a = create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), COUNTY));
        let mut other = patient("李", "娜", "1992-07-30", None, TOWNSHIP);
        other["telecom"] = json!([{"system": "phone", "value": "13999990000"}]);
        other["address"] = json!([{"line": ["坝黄镇青龙村5组"], "district": "万山区", "postalCode": "554200"}]);
        let b = create(&indexed, other);
        let pa = persons_of(&indexed, &a)[0]["id"].as_str().unwrap().to_owned();
        let pb = persons_of(&indexed, &b)[0]["id"].as_str().unwrap().to_owned();
        indexed.mpi.merge(&indexed.repository, &ctx(), &pb, &pa).unwrap();
        assert_eq!(linked_patients(&read(&indexed, "Person", &pa)).len(), 2);
        assert_eq!(read(&indexed, "Person", &pb)["active"], json!(false));
        assert!(indexed.mpi.merge(&indexed.repository, &ctx(), &pb, &pa).is_err(), "inactive Persons do not merge");
        indexed.mpi.unlink(&indexed.repository, &ctx(), &pa, &b).unwrap();
        assert_eq!(linked_patients(&read(&indexed, "Person", &pb)), vec![b]);
        assert_eq!(audits(&indexed, "merge"), 1);
    }

    fn deleting_a_patient_removes_its_link(store) {
        let indexed = indexed(store);
        let a = create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), COUNTY));
        let b = create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), TOWNSHIP));
        let person = persons_of(&indexed, &a)[0]["id"].as_str().unwrap().to_owned();
        indexed.repository.delete(&ctx(), "Patient", &b, None).unwrap();
        assert_eq!(linked_patients(&read(&indexed, "Person", &person)), vec![a]);
    }

    fn an_update_that_changes_no_demographics_leaves_the_person_as_it_is(store) {
        let indexed = indexed(store);
        let a = create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), COUNTY));
        let person = persons_of(&indexed, &a)[0].clone();
        let id = person["id"].as_str().unwrap().to_owned();
        // A flag and a general practitioner: nothing the master record is made of.
        let mut updated = read(&indexed, "Patient", &a);
        updated["active"] = json!(false);
        updated["generalPractitioner"] = json!([{"display": "Dr. Li"}]);
        indexed.repository.update(&ctx(), "Patient", &a, updated.clone(), None).unwrap();
        let after = read(&indexed, "Person", &id);
        assert_eq!(after["meta"]["versionId"], person["meta"]["versionId"], "not rewritten");
        // A new phone number is: the Person follows it.
        updated["telecom"] = json!([{"system": "phone", "value": "13900139000"}]);
        indexed.repository.update(&ctx(), "Patient", &a, updated, None).unwrap();
        let after = read(&indexed, "Person", &id);
        assert_ne!(after["meta"]["versionId"], person["meta"]["versionId"]);
        assert!(after["telecom"].as_array().unwrap().iter().any(|t| t["value"] == "13900139000"));
    }

    fn pix_cross_references_every_identifier_of_the_resident(store) {
        let indexed = indexed(store);
        let a = create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), COUNTY));
        let b = create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), TOWNSHIP));
        let result = indexed.mpi.cross_reference(&indexed.repository, &ctx(), COUNTY.0, COUNTY.1, &[]).unwrap();
        assert!(result.identifiers.contains(&(TOWNSHIP.0.to_owned(), TOWNSHIP.1.to_owned())));
        assert!(result.identifiers.contains(&(ID_SYSTEM.to_owned(), ZHANG_WEI_ID.to_owned())));
        assert!(!result.identifiers.contains(&(COUNTY.0.to_owned(), COUNTY.1.to_owned())), "not the source itself");
        assert_eq!(result.patients, vec![format!("Patient/{b}")]);
        let narrowed = indexed.mpi.cross_reference(&indexed.repository, &ctx(), COUNTY.0, COUNTY.1, &[ID_SYSTEM.to_owned()]).unwrap();
        assert_eq!(narrowed.identifiers, vec![(ID_SYSTEM.to_owned(), ZHANG_WEI_ID.to_owned())]);
        let unknown = indexed.mpi.cross_reference(&indexed.repository, &ctx(), COUNTY.0, "nobody", &[]);
        assert!(matches!(unknown, Err(residents::IdentityError::NotFound(_))));
        let _ = a;
    }

    fn match_finds_the_resident_with_a_grade(store) {
        let indexed = indexed(store);
        let a = create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), COUNTY));
        let query = patient("张", "玮", "1949-12-31", Some(ZHANG_WEI_ID), TOWNSHIP);
        let results = indexed.mpi.find_matches(&indexed.repository, &ctx(), &query, false, 10).unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].grade.code(), "certain");
        assert_eq!(results[0].patients[0].id, a);
        let stranger = json!({"resourceType": "Patient", "name": [{"family": "欧阳", "given": ["娜娜"]}], "birthDate": "2001-01-01"});
        assert!(indexed.mpi.find_matches(&indexed.repository, &ctx(), &stranger, true, 10).unwrap().is_empty());
        let empty = json!({"resourceType": "Patient", "gender": "male"});
        assert!(matches!(indexed.mpi.find_matches(&indexed.repository, &ctx(), &empty, false, 10), Err(residents::IdentityError::Invalid { .. })));
    }
}

backend_tests! {
    fn an_update_that_reveals_a_known_resident_links_the_patient_there(store) {
        let indexed = indexed(store);
        let full = create(&indexed, patient("张", "伟", "1949-12-31", Some(ZHANG_WEI_ID), COUNTY));
        // A village clinic registers "Wei Zhang" with a birth date only: not enough to link.
        let sparse = create(&indexed, json!({
            "resourceType": "Patient",
            "identifier": [{"system": TOWNSHIP.0, "value": TOWNSHIP.1}],
            "name": [{"family": "Wei", "given": ["Zhang"]}],
            "birthDate": "1949-12-31"
        }));
        let own = persons_of(&indexed, &sparse)[0]["id"].as_str().unwrap().to_owned();
        let target = persons_of(&indexed, &full)[0]["id"].as_str().unwrap().to_owned();
        assert_ne!(own, target);
        // Later the clinic adds the resident ID number and phone.
        let mut updated = read(&indexed, "Patient", &sparse);
        updated["identifier"].as_array_mut().unwrap().push(json!({"system": ID_SYSTEM, "value": ZHANG_WEI_ID}));
        updated["telecom"] = json!([{"system": "phone", "value": "13800138000"}]);
        indexed.repository.update(&ctx(), "Patient", &sparse, updated, None).unwrap();
        let mut both = vec![full, sparse.clone()];
        both.sort();
        assert_eq!(linked_patients(&read(&indexed, "Person", &target)), both);
        let left = read(&indexed, "Person", &own);
        assert_eq!(left["active"], json!(false));
        // And unlinking restores the clinic's Person, as after any automatic link.
        indexed.mpi.unlink(&indexed.repository, &ctx(), &target, &sparse).unwrap();
        assert_eq!(linked_patients(&read(&indexed, "Person", &own)), vec![sparse]);
    }
}
