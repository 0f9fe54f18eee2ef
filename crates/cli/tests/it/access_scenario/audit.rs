//! The audit trail as the resident sees it, and that nobody changes it through the API.

use super::*;

impl Region {
    /// The resident's own `AuditEvent?patient=` list shows B's break-glass reads, marked as
    /// break-glass (purpose `ETREAT`, label `BTG`) with the stated reason, and B as the
    /// institution; every event on it is about her.
    pub(super) fn break_glass_is_on_the_residents_access_list(
        &self,
        resident: &str,
        records: &Records,
        reason: &str,
    ) {
        let patient = format!("Patient/{}", records.patient);
        let events = self.search_all(
            resident,
            &format!("/fhir/AuditEvent?patient={patient}&_count=100"),
        );
        assert!(!events.is_empty(), "her access list is empty");
        for event in &events {
            assert_eq!(event["resourceType"], "AuditEvent", "{event}");
            let about: Vec<&str> = event["entity"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|entity| entity["what"]["reference"].as_str())
                .collect();
            assert!(about.contains(&patient.as_str()), "not about her: {event}");
        }
        let break_glass: Vec<&Value> = events
            .iter()
            .filter(|event| {
                event["meta"]["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|label| label["code"] == "BTG")
            })
            .collect();
        // One break-glass read of each record, and the search.
        for record in records.all() {
            let read = break_glass
                .iter()
                .find(|event| {
                    event["entity"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|entity| {
                            entity["what"]["reference"].as_str().is_some_and(|r| {
                                r == record || r.starts_with(&format!("{record}/"))
                            })
                        })
                })
                .unwrap_or_else(|| {
                    panic!("no break-glass event for {record} on her list: {break_glass:#?}")
                });
            let text = read.to_string();
            assert!(
                read["extension"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|extension| { extension["valueString"] == reason }),
                "the reason is on the event: {read}"
            );
            assert!(text.contains("\"ETREAT\""), "purpose ETREAT: {read}");
            let agents = read["agent"].as_array().unwrap();
            assert!(
                agents
                    .iter()
                    .any(|agent| agent["who"]["reference"] == "Organization/B"),
                "B is named as the institution: {read}"
            );
            assert_eq!(read["outcome"], "0", "{read}");
        }
        // Her consent changes are on it too.
        assert!(
            events
                .iter()
                .any(|event| event.to_string().contains("consent-change")),
            "her consent changes are on her list"
        );
        // The access list of another patient is not hers to read.
        let (status, _, body) = self.get(resident, "/fhir/AuditEvent?patient=Patient/someone-else");
        let shown = if status == 200 {
            entries(&json_of(&body))
        } else {
            vec![]
        };
        assert!(shown.is_empty(), "{status} {body}");
    }

    /// No caller changes or deletes an AuditEvent through the API, nor writes one.
    pub(super) fn the_trail_cannot_be_changed_through_the_api(
        &self,
        callers: &[&str],
        records: &Records,
    ) {
        let patient = format!("Patient/{}", records.patient);
        let (_, _, body) = self.get(
            &self.serving.token,
            &format!("/fhir/AuditEvent?patient={patient}&_count=1"),
        );
        let event = json_of(&body)["entry"][0]["resource"].clone();
        let id = event["id"].as_str().expect("an AuditEvent").to_owned();
        let path = format!("/fhir/AuditEvent/{id}");
        let mut changed = event.clone();
        changed["outcome"] = json!("8");
        changed.as_object_mut().unwrap().remove("meta");
        let mut forged = changed.clone();
        forged.as_object_mut().unwrap().remove("id");
        for token in callers {
            for (method, target, body) in [
                ("PUT", path.clone(), changed.to_string()),
                ("DELETE", path.clone(), String::new()),
                ("PATCH", path.clone(), "[]".to_owned()),
                ("POST", "/fhir/AuditEvent".to_owned(), forged.to_string()),
            ] {
                let content_type = if method == "PATCH" {
                    ("content-type", "application/json-patch+json")
                } else {
                    FHIR_JSON
                };
                let (status, _, answer) = self.call(token, method, &target, &[content_type], &body);
                assert!(
                    status == 403 || status == 405,
                    "{method} {target}: {status} {answer}"
                );
                assert_eq!(
                    json_of(&answer)["resourceType"],
                    "OperationOutcome",
                    "{answer}"
                );
            }
        }
        // Nor inside a transaction.
        let transaction = json!({
            "resourceType": "Bundle", "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": format!("AuditEvent/{id}")}}]
        });
        let (status, _, answer) = self.call(
            &self.serving.token,
            "POST",
            "/fhir",
            &[FHIR_JSON],
            &transaction.to_string(),
        );
        assert!(status == 403 || status == 405, "{status} {answer}");
        // It is as it was.
        let (status, _, after) = self.get(&self.serving.token, &path);
        assert_eq!(status, 200, "{after}");
        let after = json_of(&after);
        assert_eq!(after["meta"]["versionId"], "1", "{after}");
        assert_eq!(after["outcome"], event["outcome"], "{after}");
    }
}
