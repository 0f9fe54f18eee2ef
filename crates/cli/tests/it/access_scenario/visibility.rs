//! What B sees of A's records for the resident, by every read path, and what it may write.

use super::*;

impl Region {
    /// `token` sees none of the records, by any path: reads, vreads, history, searches and
    /// their totals, includes and revincludes, chains, `_has`, `$everything`, conditional reads.
    pub(super) fn sees_none(&self, token: &str, records: &Records, when: &str) {
        let never = "never-written-9f2c";
        // Reads and vreads: 404, as for a record that never existed.
        for record in records.all() {
            let resource_type = record.split('/').next().unwrap();
            for path in [
                format!("/fhir/{record}"),
                format!("/fhir/{record}/_history/1"),
            ] {
                let (status, _, body) = self.get(token, &path);
                assert_eq!(status, 404, "{when}: {path}: {body}");
                let (absent, _, _) = self.get(
                    token,
                    &path.replace(record.split('/').nth(1).unwrap(), never),
                );
                assert_eq!(
                    status, absent,
                    "{when}: {path} answers as for an absent record"
                );
            }
            // An instance's history answers as one that never existed.
            let history = format!("/fhir/{record}/_history");
            let (status, _, body) = self.get(token, &history);
            let (absent, _, absent_body) =
                self.get(token, &format!("/fhir/{resource_type}/{never}/_history"));
            assert_eq!(status, absent, "{when}: {history}: {body} / {absent_body}");
            if status == 200 {
                assert_eq!(
                    entries(&json_of(&body)),
                    Vec::<String>::new(),
                    "{when}: {history}"
                );
            }
            // Conditional reads: no 304 for what it may not see.
            for (name, value) in [
                ("if-none-match", "W/\"1\""),
                ("if-modified-since", "Sat, 01 Jan 2000 00:00:00 GMT"),
            ] {
                let (status, _, body) = self.call(
                    token,
                    "GET",
                    &format!("/fhir/{record}"),
                    &[(name, value)],
                    "",
                );
                assert_eq!(status, 404, "{when}: {name} on {record}: {body}");
            }
        }
        // Type and system history show none of them.
        for path in ["/fhir/Observation/_history", "/fhir/_history"] {
            let (status, _, body) = self.get(token, path);
            assert_eq!(status, 200, "{when}: {path}: {body}");
            let shown = entries(&json_of(&body));
            for record in records.all() {
                assert!(!shown.contains(&record), "{when}: {path} shows {record}");
            }
        }
        let patient = &records.patient;
        for path in [
            format!("/fhir/Observation?patient=Patient/{patient}&_total=accurate"),
            format!("/fhir/Observation?subject=Patient/{patient}&_total=accurate"),
            format!("/fhir/Observation?patient=Patient/{patient}&_summary=count"),
            format!(
                "/fhir/Observation?patient=Patient/{patient}&category=laboratory&_total=accurate"
            ),
            format!("/fhir/Encounter?patient=Patient/{patient}&_total=accurate"),
            format!("/fhir/Patient?_id={patient}&_total=accurate"),
            "/fhir/Patient?family=Zhaoqiansun&_total=accurate".into(),
            "/fhir/Patient?identifier=A-MRN-70001&_total=accurate".into(),
            format!(
                "/fhir/Observation?patient=Patient/{patient}&_include=Observation:subject&_total=accurate"
            ),
            format!(
                "/fhir/Encounter?subject=Patient/{patient}&_include=Encounter:subject&_total=accurate"
            ),
            "/fhir/Observation?subject:Patient.family=Zhaoqiansun&_total=accurate".into(),
            "/fhir/Observation?patient.identifier=A-MRN-70001&_total=accurate".into(),
            "/fhir/Patient?_has:Observation:patient:code=2345-7&_total=accurate".into(),
            "/fhir/Observation?code=2345-7,8867-4,75622-1&_total=accurate".into(),
        ] {
            let (ids, total) = self.search(token, &path, &[]);
            assert_eq!((ids, total), (vec![], 0), "{when}: {path}");
        }
        // The directory stays visible; what points at it from A's hidden records does not.
        let (ids, total) = self.search(
            token,
            "/fhir/Organization?_id=A&_has:Observation:performer:code=2345-7&_total=accurate",
            &[],
        );
        assert_eq!(
            (ids, total),
            (vec![], 0),
            "{when}: _has through a hidden record"
        );
        let (ids, total) = self.search(
            token,
            "/fhir/Organization?_id=A&_revinclude=Observation:performer&_revinclude=Encounter:service-provider&_total=accurate",
            &[],
        );
        assert_eq!(
            (ids, total),
            (vec!["Organization/A".to_owned()], 1),
            "{when}: _revinclude"
        );
        // Nor through a batch.
        let batch = json!({
            "resourceType": "Bundle", "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": format!("Observation/{}", records.laboratory)}},
                {"request": {"method": "GET", "url": format!("Patient/{patient}")}},
                {"request": {"method": "GET", "url": format!("Observation?patient=Patient/{patient}&_total=accurate")}},
            ]
        });
        let (status, _, body) = self.call(token, "POST", "/fhir", &[FHIR_JSON], &batch.to_string());
        assert_eq!(status, 200, "{when}: batch: {body}");
        let answer = json_of(&body);
        for entry in 0..2 {
            let status = answer["entry"][entry]["response"]["status"]
                .as_str()
                .unwrap_or_default();
            assert!(
                status.starts_with("404"),
                "{when}: batch entry {entry}: {answer}"
            );
            assert!(
                answer["entry"][entry].get("resource").is_none(),
                "{when}: {answer}"
            );
        }
        let searched = &answer["entry"][2]["resource"];
        assert_eq!(
            (entries(searched), searched["total"].as_u64()),
            (vec![], Some(0)),
            "{when}: batch search: {answer}"
        );
        // $everything of a patient it may not see is as of one that does not exist.
        let (status, _, body) = self.get(token, &format!("/fhir/Patient/{patient}/$everything"));
        let (absent, _, _) = self.get(token, &format!("/fhir/Patient/{never}/$everything"));
        assert_eq!(status, absent, "{when}: $everything: {body}");
        if status == 200 {
            assert_eq!(
                entries(&json_of(&body)),
                Vec::<String>::new(),
                "{when}: $everything"
            );
        } else {
            assert_eq!(status, 404, "{when}: $everything: {body}");
        }
    }

    /// `token` sees every unrestricted record by every path, and the restricted one by none.
    pub(super) fn sees_unrestricted(&self, token: &str, records: &Records, when: &str) {
        let visible = records.unrestricted();
        for record in records.all() {
            let expected = if visible.contains(&record) { 200 } else { 404 };
            for path in [
                format!("/fhir/{record}"),
                format!("/fhir/{record}/_history/1"),
            ] {
                let (status, _, body) = self.get(token, &path);
                assert_eq!(status, expected, "{when}: {path}: {body}");
            }
            // Conditional reads are declared not supported (`Region::start`): the header is
            // ignored, and the answer is the read's.
            let (status, _, body) = self.call(
                token,
                "GET",
                &format!("/fhir/{record}"),
                &[("if-none-match", "W/\"1\"")],
                "",
            );
            let expected = if visible.contains(&record) { 200 } else { 404 };
            assert_eq!(
                status, expected,
                "{when}: conditional read of {record}: {body}"
            );
        }
        let patient = &records.patient;
        let laboratory = format!("Observation/{}", records.laboratory);
        let vital_signs = format!("Observation/{}", records.vital_signs);
        let encounter = format!("Encounter/{}", records.encounter);
        let subject = format!("Patient/{patient}");
        for (path, expected, total) in [
            (
                format!("/fhir/Observation?patient=Patient/{patient}&_total=accurate"),
                vec![&laboratory, &vital_signs],
                2,
            ),
            (
                format!(
                    "/fhir/Observation?patient=Patient/{patient}&category=laboratory&_total=accurate"
                ),
                vec![&laboratory],
                1,
            ),
            (
                format!("/fhir/Encounter?patient=Patient/{patient}&_total=accurate"),
                vec![&encounter],
                1,
            ),
            (
                format!("/fhir/Patient?_id={patient}&_total=accurate"),
                vec![&subject],
                1,
            ),
            (
                "/fhir/Patient?family=Zhaoqiansun&_total=accurate".into(),
                vec![&subject],
                1,
            ),
            (
                format!(
                    "/fhir/Observation?patient=Patient/{patient}&_include=Observation:subject&_total=accurate"
                ),
                vec![&laboratory, &vital_signs, &subject],
                2,
            ),
            (
                "/fhir/Observation?subject:Patient.family=Zhaoqiansun&_total=accurate".into(),
                vec![&laboratory, &vital_signs],
                2,
            ),
            (
                "/fhir/Patient?_has:Observation:patient:code=2345-7&_total=accurate".into(),
                vec![&subject],
                1,
            ),
            (
                "/fhir/Patient?_has:Observation:patient:code=75622-1&_total=accurate".into(),
                vec![],
                0,
            ),
        ] {
            let (ids, found) = self.search(token, &path, &[]);
            let ids: BTreeSet<&String> = ids.iter().collect();
            let expected: BTreeSet<&String> = expected.into_iter().collect();
            assert_eq!((ids, found), (expected, total), "{when}: {path}");
        }
        let (ids, total) = self.search(
            token,
            "/fhir/Organization?_id=A&_has:Observation:performer:code=2345-7&_total=accurate",
            &[],
        );
        assert_eq!(
            (ids, total),
            (vec!["Organization/A".to_owned()], 1),
            "{when}: _has"
        );
        let batch = json!({
            "resourceType": "Bundle", "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": format!("Observation/{}", records.laboratory)}},
                {"request": {"method": "GET", "url": format!("Observation/{}", records.restricted)}},
            ]
        });
        let (status, _, body) = self.call(token, "POST", "/fhir", &[FHIR_JSON], &batch.to_string());
        assert_eq!(status, 200, "{when}: batch: {body}");
        let answer = json_of(&body);
        assert_eq!(
            answer["entry"][0]["response"]["status"]
                .as_str()
                .map(|s| &s[..3]),
            Some("200"),
            "{when}: {answer}"
        );
        assert_eq!(
            answer["entry"][0]["resource"]["id"],
            records.laboratory.as_str(),
            "{when}: {answer}"
        );
        assert_eq!(
            answer["entry"][1]["response"]["status"]
                .as_str()
                .map(|s| &s[..3]),
            Some("404"),
            "{when}: {answer}"
        );
        let (status, _, body) = self.get(token, &format!("/fhir/Patient/{patient}/$everything"));
        assert_eq!(status, 200, "{when}: $everything: {body}");
        let shown: BTreeSet<String> = entries(&json_of(&body))
            .into_iter()
            .filter(|e| records.all().contains(e))
            .collect();
        assert_eq!(shown, visible, "{when}: $everything");
    }

    /// B changes nothing A holds and writes no consent, with 403s that say why.
    pub(super) fn b_changes_nothing_of_a_and_writes_no_consent(&self, b: &str, records: &Records) {
        let path = format!("/fhir/Observation/{}", records.laboratory);
        let (_, _, original) = self.get(&self.serving.token, &path);
        let mut changed = json_of(&original);
        changed["status"] = json!("entered-in-error");
        changed.as_object_mut().unwrap().remove("meta");
        let (status, _, body) = self.call(b, "PUT", &path, &[FHIR_JSON], &changed.to_string());
        assert_eq!(status, 403, "{body}");
        let outcome = json_of(&body);
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
        assert_eq!(outcome["issue"][0]["code"], "forbidden", "{outcome}");
        let why = outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default();
        assert!(why.contains("custodian"), "the outcome says why: {outcome}");
        let (status, _, body) = self.call(b, "DELETE", &path, &[], "");
        assert_eq!(status, 403, "B deletes nothing of A's: {body}");
        assert_eq!(json_of(&body)["issue"][0]["code"], "forbidden", "{body}");
        // Nothing was written.
        let (_, _, after) = self.get(&self.serving.token, &path);
        assert_eq!(json_of(&after)["meta"]["versionId"], "1", "{after}");
        assert_eq!(json_of(&after)["status"], "final");

        // Conditional writes match only what B may see: a create with A's identifier creates
        // B's own record, and the conditional update and delete by it touch only that one.
        let criteria = format!("identifier={LAB_IDENTIFIERS}|A-2345-7");
        let own = json!({
            "resourceType": "Observation", "status": "preliminary",
            "identifier": [{"system": LAB_IDENTIFIERS, "value": "A-2345-7"}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": format!("Patient/{}", records.patient)}
        });
        let (status, _, body) = self.call(
            b,
            "POST",
            "/fhir/Observation",
            &[FHIR_JSON, ("if-none-exist", &criteria)],
            &own.to_string(),
        );
        assert_eq!(status, 201, "A's hidden record is no match: {body}");
        let created = json_of(&body)["id"].as_str().unwrap().to_owned();
        assert_ne!(created, records.laboratory);
        let mut updated = own.clone();
        updated["status"] = json!("final");
        let (status, _, body) = self.call(
            b,
            "PUT",
            &format!("/fhir/Observation?{criteria}"),
            &[FHIR_JSON],
            &updated.to_string(),
        );
        assert_eq!(status, 200, "B's own record is the one match: {body}");
        assert_eq!(json_of(&body)["id"], created.as_str());
        let (status, _, body) = self.call(
            b,
            "DELETE",
            &format!("/fhir/Observation?{criteria}"),
            &[],
            "",
        );
        assert!(status == 200 || status == 204, "{status} {body}");
        let (status, _, _) = self.get(&self.serving.token, &format!("/fhir/Observation/{created}"));
        assert_eq!(status, 410, "B's own record is the one deleted");
        let (_, _, after) = self.get(&self.serving.token, &path);
        assert_eq!(json_of(&after)["meta"]["versionId"], "1", "{after}");

        let consent = consent_body(None, "active", &records.patient);
        let (status, _, body) = self.call(b, "POST", "/fhir/Consent", &[FHIR_JSON], &consent);
        assert_eq!(status, 403, "{body}");
        let outcome = json_of(&body);
        assert_eq!(outcome["issue"][0]["code"], "forbidden", "{outcome}");
        assert!(
            outcome["issue"][0]["diagnostics"]
                .as_str()
                .unwrap_or_default()
                .contains("resident"),
            "{outcome}"
        );
        let (ids, total) = self.search(
            &self.serving.token,
            &format!(
                "/fhir/Consent?patient=Patient/{}&_total=accurate",
                records.patient
            ),
            &[],
        );
        assert_eq!((ids, total), (vec![], 0), "B's consent was not written");
    }
}
