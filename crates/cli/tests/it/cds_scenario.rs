//! Issue 16's outside check, done from outside: the real `meridian serve` on both stores, a
//! county hospital that did the exams (a backend client writing its results), a city hospital
//! whose information system calls the CDS Hooks services with its own signed JWTs, residents
//! who consented (or not) to the city hospital seeing the county's records, and the
//! administrator who writes the recognition catalogue through the API.
//!
//! - a CT ordered ten days after a CT at the (consented, qualified) county hospital gets a card
//!   naming that `DiagnosticReport/ID` and a suggestion whose delete action removes the draft;
//!   the same order beyond the window, from an unqualified village clinic, or without the
//!   patient's consent gets no card offering reuse;
//! - a barium meal (a local code, displayed 钡餐) for a patient with intestinal obstruction
//!   gets a critical warning;
//! - accepted and overridden feedback move `$evaluate-measure` by exactly what was sent;
//! - the specification's and the validator's example requests are answered 200 (good) or 400
//!   (bad); bad JWTs are 401, bad requests 400, never a 500;
//! - a client whose keys are at its registered `jwks_uri`, named by `jku`, is verified with
//!   the keys fetched from there; `fhirAuthorization` is used for the reads.

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::{Value, json};
use test_support::signin::{ClientKey, assertion, cds_jwt, ec_key, rsa_key};

use crate::support::*;

const FHIR_JSON: (&str, &str) = ("content-type", "application/fhir+json");
const JSON: (&str, &str) = ("content-type", "application/json");
const LEVEL: &str = "https://meridian.example/CodeSystem/institution-level";
const DAY: i64 = 86_400_000_000;
const CT_CHEST: (&str, &str) = ("http://loinc.org", "24627-2");

#[test]
fn a_hospital_system_gets_recognition_and_warnings_over_cds_hooks_sqlite() {
    scenario(Backend::Sqlite);
}

#[test]
fn a_hospital_system_gets_recognition_and_warnings_over_cds_hooks_postgres() {
    scenario(Backend::Postgres);
}

struct Region {
    serving: Serving,
    origin: String,
    token_url: String,
}

fn instant(days_ago: i64) -> String {
    fhir_model::clock::format_instant(fhir_model::clock::now_micros() - days_ago * DAY)
}

impl Region {
    fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let answer = send_as(self.serving.address, token, method, path, headers, body);
        assert!(answer.0 < 500, "{method} {path}: {} {}", answer.0, answer.2);
        answer
    }

    fn admin_put(&self, resource: Value) {
        let path = format!(
            "/fhir/{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        let (status, _, body) = self.call(
            Some(&self.serving.token),
            "PUT",
            &path,
            &[FHIR_JSON],
            &resource.to_string(),
        );
        assert!(status == 200 || status == 201, "{path}: {body}");
    }

    fn register(&self, metadata: Value) -> String {
        let (status, _, body) = self.call(
            Some(&self.serving.token),
            "POST",
            "/auth/register",
            &[JSON],
            &metadata.to_string(),
        );
        assert_eq!(status, 201, "{body}");
        json_of(&body)["client_id"].as_str().unwrap().to_owned()
    }

    fn backend_client(&self, key: &ClientKey, organization: &str, scope: &str) -> (String, String) {
        let client = self.register(json!({
            "client_name": format!("{organization} information system"),
            "token_endpoint_auth_method": "private_key_jwt",
            "grant_types": ["client_credentials"],
            "jwks": {"keys": [key.jwk]},
            "scope": scope,
            "organization": organization,
        }));
        let signed = assertion(
            key,
            &client,
            &self.token_url,
            &uuid::Uuid::new_v4().to_string(),
            240,
        );
        let form = test_support::signin::form_urlencoded(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &signed),
            ("scope", scope),
        ]);
        let (status, _, body) = self.call(
            None,
            "POST",
            "/auth/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            &form,
        );
        assert_eq!(status, 200, "{body}");
        (
            client,
            json_of(&body)["access_token"].as_str().unwrap().to_owned(),
        )
    }

    fn create(&self, token: &str, resource: Value) -> String {
        let path = format!("/fhir/{}", resource["resourceType"].as_str().unwrap());
        let (status, _, body) = self.call(
            Some(token),
            "POST",
            &path,
            &[FHIR_JSON],
            &resource.to_string(),
        );
        assert_eq!(status, 201, "{path}: {body}");
        json_of(&body)["id"].as_str().unwrap().to_owned()
    }

    /// A hook call signed by `client` with `key`: the status and the answer.
    fn hook(&self, key: &ClientKey, client: &str, service: &str, body: &Value) -> (u16, Value) {
        let aud = format!("{}/cds-services/{service}", self.origin);
        let jwt = cds_jwt(key, client, &aud, &uuid::Uuid::new_v4().to_string(), None);
        let (status, _, text) = self.call(
            Some(&jwt),
            "POST",
            &format!("/cds-services/{service}"),
            &[JSON, ("accept-language", "en")],
            &body.to_string(),
        );
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn feedback(
        &self,
        key: &ClientKey,
        client: &str,
        service: &str,
        body: &Value,
    ) -> (u16, String) {
        let aud = format!("{}/cds-services/{service}/feedback", self.origin);
        let jwt = cds_jwt(key, client, &aud, &uuid::Uuid::new_v4().to_string(), None);
        let (status, _, text) = self.call(
            Some(&jwt),
            "POST",
            &format!("/cds-services/{service}/feedback"),
            &[JSON],
            &body.to_string(),
        );
        (status, text)
    }

    /// The recognition populations of the caller's institution this month, by code.
    fn metrics(&self, token: &str) -> Vec<(String, String)> {
        let (status, _, body) = self.call(
            Some(token),
            "GET",
            "/fhir/Measure/ResultRecognition/$evaluate-measure",
            &[],
            "",
        );
        assert_eq!(status, 200, "{body}");
        let report = json_of(&body);
        assert_eq!(report["resourceType"], "MeasureReport");
        let mut out: Vec<(String, String)> = report["group"][0]["population"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["code"]["coding"][0]["code"].as_str().unwrap().to_owned(),
                    p["count"].to_string(),
                )
            })
            .collect();
        out.push((
            "money-saved".into(),
            report["group"][1]["measureScore"]["value"].to_string(),
        ));
        out
    }
}

/// The populations that changed from `before` to `after`, by how much.
fn moved(before: &[(String, String)], after: &[(String, String)]) -> Vec<(&'static str, f64)> {
    const NAMES: [&str; 7] = [
        "initial-population",
        "denominator",
        "numerator",
        "overridden",
        "repeats-avoided",
        "not-shareable",
        "money-saved",
    ];
    NAMES
        .into_iter()
        .map(|name| (name, value(after, name) - value(before, name)))
        .filter(|(_, delta)| *delta != 0.0)
        .collect()
}

fn value(metrics: &[(String, String)], name: &str) -> f64 {
    metrics
        .iter()
        .find(|(n, _)| n == name)
        .unwrap()
        .1
        .parse()
        .unwrap()
}

fn draft(id: &str, patient: &str, coding: Value, text: &str) -> Value {
    json!({"resourceType": "ServiceRequest", "id": id, "status": "draft", "intent": "order",
        "code": {"coding": [coding], "text": text}, "subject": {"reference": format!("Patient/{patient}")}})
}

fn order_sign(patient: &str, drafts: Vec<Value>) -> Value {
    json!({
        "hook": "order-sign",
        "hookInstance": uuid::Uuid::new_v4().to_string(),
        "fhirServer": "https://his.city.example/fhir",
        "context": {"userId": "Practitioner/dr-li", "patientId": patient, "draftOrders": {
            "resourceType": "Bundle", "type": "collection",
            "entry": drafts.into_iter().map(|d| json!({"resource": d})).collect::<Vec<_>>()
        }},
        "extension": {"meridian.department": "radiology"}
    })
}

fn cards(answer: &Value) -> Vec<Value> {
    answer["cards"]
        .as_array()
        .unwrap_or_else(|| panic!("no cards: {answer}"))
        .clone()
}

fn reuse_cards(answer: &Value) -> Vec<Value> {
    cards(answer)
        .into_iter()
        .filter(|c| {
            c["suggestions"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["actions"][0]["type"] == "delete"))
        })
        .collect()
}

/// A key set served over HTTP, as a hospital publishes its `jwks_uri`.
fn serve_keys(keys: Value) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let body = keys.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}/jwks.json")
}

fn scenario(backend: Backend) {
    let serving = serve_on(backend, &[]);
    let origin = format!("http://{}", serving.address);
    let region = Region {
        token_url: format!("{origin}/auth/token"),
        origin,
        serving,
    };
    let admin = region.serving.token.clone();

    // The discovery lists the three services, with no sign-in needed to read it.
    let (status, _, body) = region.call(None, "GET", "/cds-services", &[], "");
    assert_eq!(status, 200, "{body}");
    let hooks: Vec<String> = json_of(&body)["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hooks, ["patient-view", "order-select", "order-sign"]);

    // A browser-based client's preflight, and the cross-origin answer.
    let (status, headers, _) = region.call(
        None,
        "OPTIONS",
        "/cds-services/order-sign",
        &[
            ("origin", "https://emr.example"),
            ("access-control-request-method", "POST"),
        ],
        "",
    );
    assert_eq!(status, 204);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    assert!(
        header(&headers, "access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );

    // The directory and the catalogue, by the administrator through the API.
    for (id, level) in [
        ("county", "county-hospital"),
        ("village", "village-clinic"),
        ("city", "city-hospital"),
    ] {
        region.admin_put(
            json!({"resourceType": "Organization", "id": id, "name": format!("{id} hospital"),
            "type": [{"coding": [{"system": LEVEL, "code": level}]}]}),
        );
    }
    region.admin_put(json!({
        "resourceType": "ActivityDefinition", "id": "ct-chest", "status": "active", "kind": "ServiceRequest",
        "title": "CT chest",
        "code": {"coding": [{"system": CT_CHEST.0, "code": CT_CHEST.1}, {"system": "urn:oid:1.2.156.1.city", "code": "CT-CH"}]},
        "timingDuration": {"value": 90, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"},
        "extension": [
            {"url": "https://meridian.example/fhir/StructureDefinition/recognition-minimum-level", "valueCoding": {"system": LEVEL, "code": "county-hospital"}},
            {"url": "https://meridian.example/fhir/StructureDefinition/recognition-price", "valueMoney": {"value": 320, "currency": "CNY"}}
        ]
    }));

    // The county hospital's results; the city hospital's CDS client.
    let county_key = rsa_key("county-1");
    let (_, county) = region.backend_client(&county_key, "Organization/county", "system/*.cruds");
    let city_key = ec_key("city-cds-1");
    let (city_client, city_token) =
        region.backend_client(&city_key, "Organization/city", "system/*.rs");
    let patient = |name: &str| {
        region.create(
            &county,
            json!({"resourceType": "Patient", "name": [{"text": name}]}),
        )
    };
    let (recent, old, village, unconsented) = (
        patient("Zhang"),
        patient("Wang"),
        patient("Li"),
        patient("Zhao"),
    );
    let ct = |patient: &str, days_ago: i64, performer: &str| {
        let study = region.create(&county, json!({"resourceType": "ImagingStudy", "status": "available",
            "subject": {"reference": format!("Patient/{patient}")}, "started": instant(days_ago),
            "numberOfSeries": 2, "numberOfInstances": 240,
            "series": [{"uid": "1.2.156.1", "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"},
                "performer": [{"actor": {"reference": format!("Organization/{performer}")}}]}],
            "procedureCode": [{"coding": [{"system": CT_CHEST.0, "code": CT_CHEST.1}]}]}));
        let report = region.create(&county, json!({"resourceType": "DiagnosticReport", "status": "final",
            "code": {"coding": [{"system": CT_CHEST.0, "code": CT_CHEST.1, "display": "CT Chest"}]},
            "subject": {"reference": format!("Patient/{patient}")}, "effectiveDateTime": instant(days_ago),
            "performer": [{"reference": format!("Organization/{performer}")}],
            "imagingStudy": [{"reference": format!("ImagingStudy/{study}")}],
            "conclusion": "Small nodule in the right upper lobe, unchanged."}));
        (report, study)
    };
    let (report, study) = ct(&recent, 10, "county");
    ct(&old, 100, "county");
    ct(&village, 5, "village");
    let (hidden, _) = ct(&unconsented, 10, "county");
    region.create(&county, json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{recent}")},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "K56.6"}], "text": "Intestinal obstruction"}}));
    for patient in [&recent, &old, &village] {
        region.create(&admin, json!({
            "resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": format!("Patient/{patient}")},
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {"type": "permit", "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]}, "reference": {"reference": "Organization/city"}}],
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]}
        }));
    }
    // The Measure the metrics are evaluated on is there to read.
    let (status, _, body) = region.call(
        Some(&city_token),
        "GET",
        "/fhir/Measure/ResultRecognition",
        &[],
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_of(&body)["url"],
        "https://meridian.example/fhir/Measure/ResultRecognition"
    );
    let before = region.metrics(&city_token);

    // A CT ten days after the county's: a card naming the report, and the delete of the draft.
    let ct_draft = |id: &str, patient: &str| {
        draft(
            id,
            patient,
            json!({"system": CT_CHEST.0, "code": CT_CHEST.1}),
            "CT chest",
        )
    };
    let (status, answer) = region.hook(
        &city_key,
        &city_client,
        "order-sign",
        &order_sign(&recent, vec![ct_draft("draft-ct-1", &recent)]),
    );
    assert_eq!(status, 200, "{answer}");
    let offered = reuse_cards(&answer);
    assert_eq!(offered.len(), 1, "{answer}");
    let card = &offered[0];
    let links: Vec<&str> = card["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["url"].as_str().unwrap())
        .collect();
    assert!(
        links
            .iter()
            .any(|l| l.ends_with(&format!("/DiagnosticReport/{report}"))),
        "{card}"
    );
    assert!(
        links
            .iter()
            .any(|l| l.ends_with(&format!("/ImagingStudy/{study}"))),
        "{card}"
    );
    let suggestion = &card["suggestions"][0];
    assert_eq!(suggestion["actions"][0]["type"], "delete");
    assert_eq!(
        suggestion["actions"][0]["resourceId"],
        "ServiceRequest/draft-ct-1"
    );
    assert!(
        card["summary"]
            .as_str()
            .unwrap()
            .contains("county hospital"),
        "{card}"
    );
    assert!(
        card["detail"].as_str().unwrap().contains("240 instances"),
        "{card}"
    );
    for key in ["uuid", "summary", "indicator", "source"] {
        assert!(!card[key].is_null(), "{key} missing: {card}");
    }

    // Beyond the window, from a village clinic, or not shared by the patient: nothing to reuse.
    for (patient, why) in [
        (&old, "beyond 90 days"),
        (&village, "an unqualified institution"),
        (&unconsented, "no consent"),
    ] {
        let (status, answer) = region.hook(
            &city_key,
            &city_client,
            "order-sign",
            &order_sign(patient, vec![ct_draft("draft-ct-x", patient)]),
        );
        assert_eq!(status, 200, "{why}: {answer}");
        assert!(reuse_cards(&answer).is_empty(), "{why}: {answer}");
        if why == "no consent" {
            // Said to exist, never shown: no id of it, no link.
            assert!(!answer.to_string().contains(&hidden), "{answer}");
            let notice = cards(&answer);
            assert_eq!(notice.len(), 1, "{answer}");
            assert_eq!(
                notice[0]["source"]["topic"]["code"], "result-not-shared",
                "{answer}"
            );
        } else {
            assert!(cards(&answer).is_empty(), "{why}: {answer}");
        }
    }
    // The same request with the county's own authorization (fhirAuthorization): the county
    // sees its own result, and the card offers it.
    let mut with_authorization =
        order_sign(&unconsented, vec![ct_draft("draft-ct-y", &unconsented)]);
    with_authorization["fhirServer"] = json!(format!("{}/fhir", region.origin));
    with_authorization["fhirAuthorization"] = json!({"access_token": county, "token_type": "Bearer", "expires_in": 300, "scope": "system/*.rs", "subject": "county-his"});
    // Named for the client's own FHIR server, the token is not for this one: not used.
    let mut theirs = with_authorization.clone();
    theirs["fhirServer"] = json!("https://his.city.example/fhir");
    let (status, answer) = region.hook(&city_key, &city_client, "order-sign", &theirs);
    assert_eq!(status, 200, "{answer}");
    assert!(reuse_cards(&answer).is_empty(), "{answer}");
    let (status, answer) = region.hook(&city_key, &city_client, "order-sign", &with_authorization);
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer
            .to_string()
            .contains(&format!("DiagnosticReport/{hidden}")),
        "{answer}"
    );
    let mut forged = with_authorization.clone();
    forged["fhirAuthorization"]["access_token"] = json!("not-a-token");
    assert_eq!(
        region
            .hook(&city_key, &city_client, "order-sign", &forged)
            .0,
        401
    );

    // A barium meal under a local code, for the patient with intestinal obstruction.
    let barium = draft(
        "draft-barium",
        &recent,
        json!({"system": "urn:oid:1.2.156.1.city", "code": "FS0021", "display": "上消化道钡餐造影"}),
        "钡餐",
    );
    let (status, answer) = region.hook(&city_key, &city_client, "order-select", &{
        let mut request = order_sign(&recent, vec![barium]);
        request["hook"] = json!("order-select");
        request["context"]["selections"] = json!(["ServiceRequest/draft-barium"]);
        request
    });
    assert_eq!(status, 200, "{answer}");
    let critical: Vec<Value> = cards(&answer)
        .into_iter()
        .filter(|c| c["indicator"] == "critical")
        .collect();
    assert!(
        critical.iter().any(|c| c["summary"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("barium")),
        "{answer}"
    );

    // Feedback: one accepted, one overridden; the metrics move by exactly that.
    let (status, answer) = region.hook(
        &city_key,
        &city_client,
        "order-sign",
        &order_sign(&recent, vec![ct_draft("draft-ct-2", &recent)]),
    );
    assert_eq!(status, 200);
    let second = reuse_cards(&answer)[0].clone();
    let checked = region.metrics(&city_token);
    // Six drafted CTs checked for the city (those read under the county's authorization count
    // for the city that asked), three shown a prior result.
    assert_eq!(
        moved(&before, &checked),
        [
            ("initial-population", 6.0),
            ("denominator", 3.0),
            ("not-shareable", 1.0)
        ],
        "{checked:?}"
    );
    let accepted = json!({"feedback": [{"card": card["uuid"], "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion["uuid"]}], "outcomeTimestamp": "2026-12-03T08:00:00Z"}]});
    let (status, body) = region.feedback(&city_key, &city_client, "order-sign", &accepted);
    assert_eq!(status, 200, "{body}");
    let overridden = json!({"feedback": [{"card": second["uuid"], "outcome": "overridden",
        "overrideReason": {"reason": second["overrideReasons"][0], "userComment": "symptoms changed"},
        "outcomeTimestamp": "2026-12-03T08:01:00Z"}]});
    let (status, body) = region.feedback(&city_key, &city_client, "order-sign", &overridden);
    assert_eq!(status, 200, "{body}");
    let after = region.metrics(&city_token);
    // Exactly what was sent, and nothing else.
    assert_eq!(
        moved(&checked, &after),
        [
            ("numerator", 1.0),
            ("overridden", 1.0),
            ("repeats-avoided", 1.0),
            ("money-saved", 320.0)
        ],
        "{after:?}"
    );
    // Asked by POST with a Parameters resource: the same counts.
    let month_start = format!("{}-01", &instant(0)[..7]);
    let parameters = json!({"resourceType": "Parameters", "parameter": [
        {"name": "periodStart", "valueDate": month_start},
        {"name": "periodEnd", "valueDateTime": instant(-1)},
    ]});
    let (status, _, body) = region.call(
        Some(&city_token),
        "POST",
        "/fhir/Measure/ResultRecognition/$evaluate-measure",
        &[FHIR_JSON],
        &parameters.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_of(&body)["group"][0]["population"][2]["count"].to_string(),
        after.iter().find(|(n, _)| n == "numerator").unwrap().1
    );
    // At the type level, naming the Measure by its canonical URL: the same report.
    let (status, _, body) = region.call(
        Some(&city_token),
        "GET",
        "/fhir/Measure/$evaluate-measure?measure=https://meridian.example/fhir/Measure/ResultRecognition",
        &[],
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_of(&body)["group"][0]["population"][2]["count"].to_string(),
        after.iter().find(|(n, _)| n == "numerator").unwrap().1
    );
    let (status, _, _) = region.call(
        Some(&city_token),
        "GET",
        "/fhir/Measure/other/$evaluate-measure",
        &[],
        "",
    );
    assert_eq!(status, 404);
    // The administrator sees every institution; the county, none of the city's checks.
    assert!(
        value(&region.metrics(&admin), "initial-population") >= value(&after, "initial-population")
    );
    assert_eq!(value(&region.metrics(&county), "initial-population"), 0.0);

    bad_requests_are_refused(&region, &city_key, &city_client, &recent);
    the_examples_are_answered(&region, &city_key, &city_client);
    keys_named_by_jku_are_fetched(&region, &recent);
}

fn bad_requests_are_refused(region: &Region, key: &ClientKey, client: &str, patient: &str) {
    let good = order_sign(patient, vec![]);
    let post = |jwt: &str| {
        let path = "/cds-services/order-sign";
        region
            .call(Some(jwt), "POST", path, &[JSON], &good.to_string())
            .0
    };
    // No JWT, a replayed one, one for another service, one by an unregistered key.
    let (status, _, _) = region.call(
        None,
        "POST",
        "/cds-services/order-sign",
        &[JSON],
        &good.to_string(),
    );
    assert_eq!(status, 401);
    let aud = format!("{}/cds-services/order-sign", region.origin);
    let jwt = cds_jwt(key, client, &aud, "replayed-jti", None);
    assert_eq!(post(&jwt), 200);
    assert_eq!(post(&jwt), 401);
    let elsewhere = cds_jwt(
        key,
        client,
        "https://elsewhere.example/cds-services/order-sign",
        "jti-elsewhere",
        None,
    );
    assert_eq!(post(&elsewhere), 401);
    let forged = cds_jwt(&ec_key("city-cds-1"), client, &aud, "jti-forged", None);
    assert_eq!(post(&forged), 401);
    assert_eq!(
        region
            .call(
                Some("a.b.c"),
                "POST",
                "/cds-services/order-sign",
                &[JSON],
                &good.to_string()
            )
            .0,
        401
    );
    // Unknown service: 404. Bad context, unknown hook, malformed drafts, not JSON: 400.
    assert_eq!(region.hook(key, client, "no-such-service", &good).0, 404);
    let mut cases = Vec::new();
    let mut unknown_hook = good.clone();
    unknown_hook["hook"] = json!("medication-wish");
    cases.push((unknown_hook, "unknown hook"));
    let mut bad_context = good.clone();
    bad_context["context"] = json!("Patient/1");
    cases.push((bad_context, "'context' must be an object"));
    let mut bad_draft = good.clone();
    bad_draft["context"]["draftOrders"]["entry"] = json!([{"resource": {"resourceType": "ServiceRequest", "status": "sometimes", "intent": "order", "subject": {"reference": "Patient/x"}}}]);
    cases.push((bad_draft, "is not valid"));
    let mut not_bundle = good.clone();
    not_bundle["context"]["draftOrders"] = json!({"resourceType": "Patient"});
    cases.push((not_bundle, "must be a Bundle"));
    for (body, expected) in cases {
        let (status, answer) = region.hook(key, client, "order-sign", &body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["resourceType"], "OperationOutcome");
        assert!(
            answer.to_string().contains(expected),
            "{answer} (expected {expected})"
        );
    }
    let jwt = cds_jwt(key, client, &aud, "jti-not-json", None);
    assert_eq!(
        region
            .call(
                Some(&jwt),
                "POST",
                "/cds-services/order-sign",
                &[JSON],
                "{\"hook\": "
            )
            .0,
        400
    );
}

fn the_examples_are_answered(region: &Region, key: &ClientKey, client: &str) {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cds/tests/corpus");
    let mut answered = 0;
    for entry in std::fs::read_dir(&corpus).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let body: Value = serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
        let hook = body["hook"].as_str().unwrap().to_owned();
        let (status, answer) = region.hook(key, client, &hook, &body);
        if name.contains("-bad") {
            assert_eq!(status, 400, "{name}: {answer}");
        } else {
            assert_eq!(status, 200, "{name}: {answer}");
            // They name patients unknown here: no cards.
            assert_eq!(answer, json!({"cards": []}), "{name}");
        }
        answered += 1;
    }
    assert_eq!(answered, 12);
}

fn keys_named_by_jku_are_fetched(region: &Region, patient: &str) {
    let key = ec_key("published-1");
    let url = serve_keys(json!({"keys": [key.jwk]}));
    let client = region.register(json!({
        "client_name": "EMR publishing its keys",
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": [],
        "jwks_uri": url,
        "scope": "system/*.rs",
        "organization": "Organization/city",
    }));
    let aud = format!("{}/cds-services/patient-view", region.origin);
    let body = json!({"hook": "patient-view", "hookInstance": "jku-1", "context": {"userId": "Practitioner/dr-li", "patientId": patient}});
    let jwt = cds_jwt(&key, &client, &aud, "jku-jti-1", Some(&url));
    let (status, _, answer) = region.call(
        Some(&jwt),
        "POST",
        "/cds-services/patient-view",
        &[JSON],
        &body.to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    // A jku other than the registered one is refused before anything is fetched.
    let jwt = cds_jwt(
        &key,
        &client,
        &aud,
        "jku-jti-2",
        Some("http://127.0.0.1:9/elsewhere.json"),
    );
    assert_eq!(
        region
            .call(
                Some(&jwt),
                "POST",
                "/cds-services/patient-view",
                &[JSON],
                &body.to_string()
            )
            .0,
        401
    );
}
