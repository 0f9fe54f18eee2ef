//! Recognition on a real store of each backend: the newest equivalent result within its
//! window from a qualified institution is offered (by LOINC, by a local code the catalogue
//! lists, by a local code a ConceptMap maps); an old one, an unqualified institution's, or a
//! catalogue entry made inactive offers nothing; feedback moves the metrics by exactly what
//! was sent; feedback on a card never given to the caller is refused and changes nothing.

use std::sync::Arc;

use caller::{Actor, Caller};
use cds::rules::Language;
use cds::service::{Context, answer, feedback};
use cds::{Hook, HookRequest};
use repository::Repository;
use serde_json::{Value, json};
use test_support::TestStore;

const DAY: i64 = 86_400_000_000;
const BASE: &str = "http://cds.test/fhir";
const LEVEL: &str = "https://meridian.example/CodeSystem/institution-level";

fn caller(organization: &str, client: &str) -> Caller {
    let mut caller = Caller::operator("cds-test");
    caller.actor = Actor::Client(client.into());
    caller.organization = Some(organization.into());
    caller.client_id = Some(client.into());
    caller
}

fn put(repository: &Repository, by: &Caller, resource: Value) {
    let (t, id) = (
        resource["resourceType"].as_str().unwrap().to_owned(),
        resource["id"].as_str().unwrap().to_owned(),
    );
    repository
        .update(by, &t, &id, resource, None)
        .unwrap_or_else(|e| panic!("{t}/{id}: {e}"));
}

fn instant(micros: i64) -> String {
    fhir_model::clock::format_instant(micros)
}

fn organization(id: &str, level: &str) -> Value {
    json!({"resourceType": "Organization", "id": id, "name": format!("{id} hospital"),
        "type": [{"coding": [{"system": LEVEL, "code": level}]}]})
}

fn ct_chest_definition(status: &str) -> Value {
    json!({
        "resourceType": "ActivityDefinition", "id": "ct-chest", "status": status,
        "kind": "ServiceRequest", "title": "CT chest",
        "code": {"coding": [
            {"system": "http://loinc.org", "code": "24627-2"},
            {"system": "urn:oid:1.2.156.9.1", "code": "CT0101"}
        ]},
        "timingDuration": {"value": 90, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"},
        "extension": [
            {"url": "https://meridian.example/fhir/StructureDefinition/recognition-minimum-level",
             "valueCoding": {"system": LEVEL, "code": "county-hospital"}},
            {"url": "https://meridian.example/fhir/StructureDefinition/recognition-price",
             "valueMoney": {"value": 320, "currency": "CNY"}}
        ]
    })
}

fn report(
    id: &str,
    patient: &str,
    days_ago: i64,
    performer: &str,
    code: (&str, &str),
    now: i64,
) -> Value {
    json!({
        "resourceType": "DiagnosticReport", "id": id, "status": "final",
        "code": {"coding": [{"system": code.0, "code": code.1}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": instant(now - days_ago * DAY),
        "performer": [{"reference": format!("Organization/{performer}")}],
        "imagingStudy": [{"reference": format!("ImagingStudy/{id}-images")}],
        "conclusion": "No focal consolidation."
    })
}

fn order_sign(patient: &str, draft: &str, code: (&str, &str)) -> HookRequest {
    let body = json!({
        "hook": "order-sign",
        "hookInstance": format!("instance-{draft}"),
        "context": {"userId": "Practitioner/doc", "patientId": patient, "draftOrders": {
            "resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
                "resourceType": "ServiceRequest", "id": draft, "status": "draft", "intent": "order",
                "code": {"coding": [{"system": code.0, "code": code.1}]},
                "subject": {"reference": format!("Patient/{patient}")}
            }}]}},
        "extension": {"meridian.department": "respiratory"}
    });
    HookRequest::parse(
        body.to_string().as_bytes(),
        Hook::OrderSign,
        fhir_model::r4(),
    )
    .unwrap()
}

fn cards(repository: &Repository, by: &Caller, request: &HookRequest, now: i64) -> Vec<Value> {
    let ctx = Context {
        repository,
        caller: by,
        client: by,
        base: BASE,
        language: Language::En,
        now,
    };
    let answered = answer(&ctx, request).unwrap();
    assert!(
        answered.failed_rules.is_empty(),
        "{:?}",
        answered.failed_rules
    );
    answered.body["cards"].as_array().unwrap().clone()
}

fn recognition_cards(cards: &[Value]) -> Vec<&Value> {
    cards
        .iter()
        .filter(|c| c["source"]["topic"]["code"] == "result-recognition")
        .collect()
}

/// The counts of the report's first group, by population code.
fn counts(repository: &Repository, now: i64) -> Vec<(String, u64)> {
    let request = cds::metrics::ReportRequest {
        start: now - 40 * DAY,
        end: now + DAY,
        period_text: (instant(now - 40 * DAY), instant(now + DAY)),
        organization: None,
    };
    let checks = cds::metrics::checks_in(&**repository.store(), &request).unwrap();
    let report = cds::metrics::measure_report(&checks, &request, now);
    let invalid = errors(&report);
    assert!(invalid.is_empty(), "{invalid:?} in {report}");
    let mut out: Vec<(String, u64)> = report["group"][0]["population"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["code"]["coding"][0]["code"].as_str().unwrap().to_owned(),
                p["count"].as_u64().unwrap(),
            )
        })
        .collect();
    out.push(("money-saved".into(), {
        let text = report["group"][1]["measureScore"]["value"].to_string();
        (text.parse::<f64>().unwrap() * 100.0).round() as u64
    }));
    out
}

/// The counts that changed from `before` to `after`, by how much.
fn moved<'a>(before: &[(String, u64)], after: &'a [(String, u64)]) -> Vec<(&'a str, i64)> {
    after
        .iter()
        .zip(before)
        .map(|((name, a), (_, b))| (name.as_str(), *a as i64 - *b as i64))
        .filter(|(_, delta)| *delta != 0)
        .collect()
}

fn scenario(store: &TestStore) {
    let repository = Repository::new(Arc::clone(&store.store));
    let now = fhir_model::clock::now_micros();
    let county = caller("Organization/county", "county-his");
    let ordering = caller("Organization/city", "city-his");
    let admin = Caller::operator("cds-test-admin");
    put(
        &repository,
        &admin,
        organization("county", "county-hospital"),
    );
    put(
        &repository,
        &admin,
        organization("village", "village-clinic"),
    );
    put(&repository, &admin, organization("city", "city-hospital"));
    put(&repository, &admin, ct_chest_definition("active"));
    put(
        &repository,
        &admin,
        json!({
            "resourceType": "ConceptMap", "id": "county-local", "status": "active",
            "group": [{"source": "urn:oid:1.2.156.9.2", "target": "http://loinc.org",
                "element": [{"code": "XCT-CHEST", "target": [{"code": "24627-2", "equivalence": "equivalent"}]}]}]
        }),
    );
    for patient in ["p-recent", "p-old", "p-village", "p-local"] {
        put(
            &repository,
            &county,
            json!({"resourceType": "Patient", "id": patient}),
        );
    }
    let loinc = ("http://loinc.org", "24627-2");
    for (id, patient, days_ago, performer) in [
        ("r-recent", "p-recent", 10, "county"),
        ("r-older", "p-recent", 40, "county"),
        ("r-old", "p-old", 100, "county"),
        ("r-village", "p-village", 5, "village"),
    ] {
        let result = report(id, patient, days_ago, performer, loinc, now);
        put(&repository, &county, result);
    }
    // Coded locally at the county; the ConceptMap says it is the LOINC code.
    put(
        &repository,
        &county,
        report(
            "r-local",
            "p-local",
            3,
            "county",
            ("urn:oid:1.2.156.9.2", "XCT-CHEST"),
            now,
        ),
    );

    let before = counts(&repository, now);

    // Ordered by LOINC: the newest of the two is offered, with a delete of the draft.
    let request = order_sign("p-recent", "draft-1", loinc);
    let shown = cards(&repository, &ordering, &request, now);
    let offered = recognition_cards(&shown);
    assert_eq!(offered.len(), 1, "{shown:?}");
    let card = offered[0];
    assert_eq!(
        card["links"][0]["url"],
        format!("{BASE}/DiagnosticReport/r-recent"),
        "{card}"
    );
    assert_eq!(
        card["links"][1]["url"],
        format!("{BASE}/ImagingStudy/r-recent-images"),
        "{card}"
    );
    assert!(
        card["summary"].as_str().unwrap().contains("10 days ago"),
        "{card}"
    );
    assert!(
        card["detail"]
            .as_str()
            .unwrap()
            .contains("No focal consolidation"),
        "{card}"
    );
    let suggestion = &card["suggestions"][0];
    assert_eq!(suggestion["actions"][0]["type"], "delete");
    assert_eq!(
        suggestion["actions"][0]["resourceId"],
        "ServiceRequest/draft-1"
    );
    assert_eq!(card["selectionBehavior"], "at-most-one");
    assert!(
        card["overrideReasons"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["display"].is_string())
    );
    // Asked again (order-select, then order-sign of the same draft): the same card, one check.
    let again = cards(&repository, &ordering, &request, now);
    assert_eq!(recognition_cards(&again)[0]["uuid"], card["uuid"]);

    // Ordered by the catalogue's local code: the same result.
    let local = cards(
        &repository,
        &ordering,
        &order_sign("p-recent", "draft-2", ("urn:oid:1.2.156.9.1", "CT0101")),
        now,
    );
    assert_eq!(
        recognition_cards(&local)[0]["links"][0]["url"],
        format!("{BASE}/DiagnosticReport/r-recent")
    );
    // A result coded locally, mapped by the ConceptMap.
    let mapped = cards(
        &repository,
        &ordering,
        &order_sign("p-local", "draft-3", loinc),
        now,
    );
    assert_eq!(
        recognition_cards(&mapped)[0]["links"][0]["url"],
        format!("{BASE}/DiagnosticReport/r-local")
    );
    // Beyond the window, or from a village clinic: nothing offered.
    assert!(
        recognition_cards(&cards(
            &repository,
            &ordering,
            &order_sign("p-old", "draft-4", loinc),
            now
        ))
        .is_empty()
    );
    assert!(
        recognition_cards(&cards(
            &repository,
            &ordering,
            &order_sign("p-village", "draft-5", loinc),
            now
        ))
        .is_empty()
    );

    let after_checks = counts(&repository, now);
    assert_eq!(
        moved(&before, &after_checks),
        [("initial-population", 5), ("denominator", 3)]
    );

    // Feedback on a card never given to this client: refused, nothing changes.
    let uuid = card["uuid"].as_str().unwrap();
    let accepted = json!({"feedback": [{"card": uuid, "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion["uuid"]}], "outcomeTimestamp": "2026-12-03T08:00:00Z"}]});
    let stranger = caller("Organization/village", "village-his");
    assert!(feedback(&repository, &stranger, accepted.to_string().as_bytes()).is_err());
    assert_eq!(counts(&repository, now), after_checks);
    // Accepted: one recognition, one repeat avoided, 320 saved.
    assert_eq!(
        feedback(&repository, &ordering, accepted.to_string().as_bytes()).unwrap(),
        1
    );
    let after_accept = counts(&repository, now);
    assert_eq!(
        moved(&after_checks, &after_accept),
        [
            ("numerator", 1),
            ("repeats-avoided", 1),
            ("money-saved", 32_000)
        ]
    );
    // Overridden with a reason: counted as such, no recognition.
    let mapped_uuid = recognition_cards(&mapped)[0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let overridden = json!({"feedback": [{"card": mapped_uuid, "outcome": "overridden",
        "overrideReason": {"reason": {"system": "https://meridian.example/CodeSystem/cds-override-reason", "code": "condition-changed"}, "userComment": "new symptoms"},
        "outcomeTimestamp": "2026-12-03T08:01:00Z"}]});
    feedback(&repository, &ordering, overridden.to_string().as_bytes()).unwrap();
    let after_override = counts(&repository, now);
    assert_eq!(moved(&after_accept, &after_override), [("overridden", 1)]);
    // Malformed feedback changes nothing.
    for bad in [
        json!({"feedback": [{"card": uuid, "outcome": "maybe", "outcomeTimestamp": "2026-12-03T08:00:00Z"}]}),
        json!({"feedback": [{"card": uuid, "outcome": "accepted", "outcomeTimestamp": "2026-12-03T08:00:00Z"}]}),
        json!({"feedback": [{"card": uuid, "outcome": "overridden", "outcomeTimestamp": "yesterday"}]}),
        json!({"feedback": []}),
        json!({"feedback": [{"card": uuid, "outcome": "accepted", "acceptedSuggestions": [{"id": "not-a-suggestion"}], "outcomeTimestamp": "2026-12-03T08:00:00Z"}]}),
    ] {
        assert!(
            feedback(&repository, &ordering, bad.to_string().as_bytes()).is_err(),
            "{bad}"
        );
    }
    assert_eq!(counts(&repository, now), after_override);

    // At order-select, the newly selected draft is the one checked.
    let two = json!({
        "hook": "order-select", "hookInstance": "selected",
        "context": {"userId": "Practitioner/doc", "patientId": "p-recent",
            "selections": ["ServiceRequest/draft-8"],
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [
                {"resource": {"resourceType": "ServiceRequest", "id": "draft-7", "status": "draft", "intent": "order",
                    "code": {"coding": [{"system": loinc.0, "code": loinc.1}]}, "subject": {"reference": "Patient/p-recent"}}},
                {"resource": {"resourceType": "ServiceRequest", "id": "draft-8", "status": "draft", "intent": "order",
                    "code": {"coding": [{"system": loinc.0, "code": loinc.1}]}, "subject": {"reference": "Patient/p-recent"}}}
            ]}}
    });
    let select = HookRequest::parse(
        two.to_string().as_bytes(),
        Hook::OrderSelect,
        fhir_model::r4(),
    )
    .unwrap();
    let selected = cards(&repository, &ordering, &select, now);
    let offered = recognition_cards(&selected);
    assert_eq!(offered.len(), 1, "{selected:?}");
    assert_eq!(
        offered[0]["suggestions"][0]["actions"][0]["resourceId"],
        "ServiceRequest/draft-8"
    );

    // An entry that asks nothing of the performing institution: a result whose institution is
    // unknown (no performer, written by the platform) is offered too.
    put(
        &repository,
        &admin,
        json!({
            "resourceType": "ActivityDefinition", "id": "xr-chest", "status": "active", "kind": "ServiceRequest",
            "title": "Chest X-ray", "code": {"coding": [{"system": "http://loinc.org", "code": "36643-5"}]},
            "timingDuration": {"value": 30, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}
        }),
    );
    put(
        &repository,
        &admin,
        json!({"resourceType": "Patient", "id": "p-anon"}),
    );
    put(
        &repository,
        &admin,
        json!({"resourceType": "DiagnosticReport", "id": "r-anon", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "36643-5"}]},
        "subject": {"reference": "Patient/p-anon"}, "effectiveDateTime": instant(now - 2 * DAY)}),
    );
    let anonymous = cards(
        &repository,
        &ordering,
        &order_sign("p-anon", "draft-9", ("http://loinc.org", "36643-5")),
        now,
    );
    let offered = recognition_cards(&anonymous);
    assert_eq!(offered.len(), 1, "{anonymous:?}");
    assert!(
        offered[0]["summary"]
            .as_str()
            .unwrap()
            .contains("another institution"),
        "{anonymous:?}"
    );

    // What the client prefetched is used as sent: a condition only its own record holds.
    let mut body = json!({
        "hook": "order-sign", "hookInstance": "prefetched",
        "context": {"userId": "Practitioner/doc", "patientId": "p-recent", "draftOrders": {
            "resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
                "resourceType": "ServiceRequest", "id": "draft-barium", "status": "draft", "intent": "order",
                "code": {"text": "钡餐"}, "subject": {"reference": "Patient/p-recent"}}}]}},
        "prefetch": {"conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
            "resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p-recent"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "K56.6"}]}}}]}}
    });
    let parse = |body: &Value| {
        HookRequest::parse(
            body.to_string().as_bytes(),
            Hook::OrderSign,
            fhir_model::r4(),
        )
        .unwrap()
    };
    let warned = cards(&repository, &ordering, &parse(&body), now);
    assert!(
        warned.iter().any(|c| c["indicator"] == "critical"),
        "{warned:?}"
    );
    // Without it, the store's record (no obstruction) is read: no warning.
    body["prefetch"] = json!({});
    let quiet = cards(&repository, &ordering, &parse(&body), now);
    assert!(
        quiet.iter().all(|c| c["indicator"] != "critical"),
        "{quiet:?}"
    );

    // The entry made inactive: it takes effect at once.
    put(&repository, &admin, ct_chest_definition("retired"));
    assert!(
        recognition_cards(&cards(
            &repository,
            &ordering,
            &order_sign("p-recent", "draft-6", loinc),
            now
        ))
        .is_empty()
    );
}

#[test]
fn recognition_and_its_metrics_sqlite() {
    scenario(&test_support::sqlite());
}

#[test]
fn recognition_and_its_metrics_postgres() {
    scenario(&test_support::postgres());
}

#[test]
fn the_measure_is_a_valid_resource() {
    let issues = errors(&cds::metrics::measure());
    assert!(issues.is_empty(), "{issues:?}");
}

/// The model validator's errors about a resource.
fn errors(resource: &Value) -> Vec<String> {
    fhir_model::validate(fhir_model::r4(), resource)
        .into_iter()
        .filter(|i| i.severity == fhir_model::Severity::Error)
        .map(|i| i.diagnostics)
        .collect()
}
