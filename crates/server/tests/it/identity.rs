//! The identity operations over HTTP: $match, PIXm, Person search, link/unlink/merge, the
//! review queue, the health code, and a clear OperationOutcome for every bad input.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const ID_SYSTEM: &str = "urn:oid:2.16.156.10011.1.1";

fn registration(mrn_system: &str, mrn: &str, given: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [
            {"system": mrn_system, "value": mrn},
            {"system": ID_SYSTEM, "value": "11010519491231002X"}
        ],
        "name": [{"family": "张", "given": [given]}],
        "gender": "female",
        "birthDate": "1949-12-31",
        "telecom": [{"system": "phone", "value": "13800138000"}]
    })
}

fn parameters(params: Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": params})
}

async fn register(app: &App, mrn_system: &str, mrn: &str, given: &str) -> String {
    let answer = app
        .post_json("/fhir/Patient", &registration(mrn_system, mrn, given))
        .await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn registrations_link_to_one_person_visible_as_soon_as_the_write_answers() {
    let app = identity_app(test_support::sqlite());
    let a = register(&app, "urn:county:mrn", "C-1", "秀英").await;
    let b = register(&app, "urn:township:mrn", "T-9", "秀瑛").await;
    let persons = app
        .get(&format!("/fhir/Person?link=Patient/{b}"))
        .await
        .json();
    assert_eq!(persons["entry"].as_array().unwrap().len(), 1);
    let person = &persons["entry"][0]["resource"];
    let links: Vec<&str> = person["link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["target"]["reference"].as_str().unwrap())
        .collect();
    assert!(
        links.contains(&format!("Patient/{a}").as_str())
            && links.contains(&format!("Patient/{b}").as_str())
    );
    // Residents are found by ordinary Person search on any card; PDQm is ordinary Patient search.
    let by_card = app
        .get("/fhir/Person?identifier=urn:township:mrn|T-9")
        .await
        .json();
    assert_eq!(by_card["entry"].as_array().unwrap().len(), 1);
    let pdq = app
        .get("/fhir/Patient?family=张&birthdate=1949-12-31")
        .await
        .json();
    assert_eq!(
        pdq["entry"].as_array().unwrap().len(),
        2,
        "Patients are not doubled by Persons"
    );
}

#[tokio::test]
async fn match_returns_scored_patients_with_grades() {
    let app = identity_app(test_support::sqlite());
    let a = register(&app, "urn:county:mrn", "C-1", "秀英").await;
    let query = parameters(json!([
        {"name": "resource", "resource": registration("urn:other:mrn", "X", "秀英")},
        {"name": "count", "valueInteger": 5}
    ]));
    let answer = app.post_json("/fhir/Patient/$match", &query).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let bundle = answer.json();
    assert_eq!(bundle["type"], "searchset");
    let first = &bundle["entry"][0];
    assert_eq!(first["resource"]["id"], a.as_str());
    assert_eq!(first["search"]["mode"], "match");
    assert_eq!(first["search"]["extension"][0]["valueCode"], "certain");
    assert!(first["search"]["score"].as_f64().unwrap() > 0.95);
    assert!(
        first["fullUrl"]
            .as_str()
            .unwrap()
            .starts_with("http://meridian.test/fhir/Patient/")
    );
    assert_eq!(bundle["entry"][1]["search"]["mode"], "include");

    for (body, expression) in [
        (json!({"resourceType": "Patient"}), "resourceType"),
        (parameters(json!([])), "Parameters.parameter"),
        (
            parameters(json!([{"name": "resource", "resource": {"resourceType": "Observation"}}])),
            "Parameters.parameter.resource",
        ),
        (
            parameters(
                json!([{"name": "resource", "resource": registration("a", "b", "c")}, {"name": "count", "valueInteger": 0}]),
            ),
            "Parameters.parameter.valueInteger",
        ),
        (
            parameters(
                json!([{"name": "resource", "resource": registration("a", "b", "c")}, {"name": "onlyCertainMatches", "valueString": "yes"}]),
            ),
            "Parameters.parameter.valueBoolean",
        ),
    ] {
        let answer = app.post_json("/fhir/Patient/$match", &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer.issue().1.as_deref(), Some(expression), "{body}");
    }
    let invalid = parameters(
        json!([{"name": "resource", "resource": {"resourceType": "Patient", "gender": "neither"}}]),
    );
    assert_eq!(
        app.post_json("/fhir/Patient/$match", &invalid).await.status,
        StatusCode::BAD_REQUEST
    );
    let answer = app.get("/fhir/Patient/$match").await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn pix_cross_references_and_answers_404_for_an_unknown_identifier() {
    let app = identity_app(test_support::sqlite());
    register(&app, "urn:county:mrn", "C-1", "秀英").await;
    let b = register(&app, "urn:township:mrn", "T-9", "秀英").await;
    let answer = app
        .get("/fhir/Patient/$ihe-pix?sourceIdentifier=urn:county:mrn|C-1")
        .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let body = answer.json();
    assert_eq!(body["resourceType"], "Parameters");
    let params = body["parameter"].as_array().unwrap();
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "targetIdentifier" && p["valueIdentifier"]["value"] == "T-9")
    );
    assert!(
        params.iter().any(|p| p["name"] == "targetId"
            && p["valueReference"]["reference"] == format!("Patient/{b}"))
    );
    let narrowed = app
        .get(&format!(
            "/fhir/Patient/$ihe-pix?sourceIdentifier=urn:county:mrn|C-1&targetSystem={ID_SYSTEM}"
        ))
        .await
        .json();
    assert_eq!(narrowed["parameter"].as_array().unwrap().len(), 1);

    let unknown = app
        .get("/fhir/Patient/$ihe-pix?sourceIdentifier=urn:county:mrn|nobody")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.issue().0, "not-found");
    for bad in [
        "",
        "?sourceIdentifier=nobar",
        "?sourceIdentifier=|x",
        "?sourceIdentifier=a|b&bogus=1",
    ] {
        let answer = app.get(&format!("/fhir/Patient/$ihe-pix{bad}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(answer.json()["resourceType"], "OperationOutcome");
    }
}

#[tokio::test]
async fn link_unlink_merge_and_the_review_queue_over_http() {
    let app = identity_app(test_support::sqlite());
    let a = register(&app, "urn:county:mrn", "C-1", "秀英").await;
    let mut other = registration("urn:township:mrn", "T-2", "娜");
    other["name"] = json!([{"family": "李", "given": ["娜"]}]);
    other["identifier"] = json!([{"system": "urn:township:mrn", "value": "T-2"}]);
    other["birthDate"] = json!("1990-01-02");
    other["telecom"] = json!([{"system": "phone", "value": "13900000000"}]);
    let b = app.post_json("/fhir/Patient", &other).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let person_of = |id: String| {
        let app = &app;
        async move {
            app.get(&format!("/fhir/Person?link=Patient/{id}"))
                .await
                .json()["entry"][0]["resource"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (pa, pb) = (person_of(a.clone()).await, person_of(b.clone()).await);
    assert_ne!(pa, pb);
    let link = parameters(
        json!([{"name": "patient", "valueReference": {"reference": format!("Patient/{b}")}}]),
    );
    let linked = app
        .post_json(&format!("/fhir/Person/{pa}/$link"), &link)
        .await;
    assert_eq!(
        linked.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&linked.body)
    );
    assert_eq!(linked.json()["link"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.post_json(&format!("/fhir/Person/{pa}/$link"), &link)
            .await
            .status,
        StatusCode::CONFLICT
    );
    let unlinked = app
        .post_json(&format!("/fhir/Person/{pa}/$unlink"), &link)
        .await;
    assert_eq!(unlinked.status, StatusCode::OK);
    assert_eq!(
        app.get(&format!("/fhir/Person/{pb}")).await.json()["active"],
        json!(true),
        "restored"
    );
    let history = app.get(&format!("/fhir/Person/{pb}/_history")).await.json();
    assert_eq!(history["entry"].as_array().unwrap().len(), 3);
    let merge = parameters(json!([
        {"name": "source", "valueReference": {"reference": format!("Person/{pb}")}},
        {"name": "target", "valueReference": {"reference": format!("Person/{pa}")}}
    ]));
    assert_eq!(
        app.post_json("/fhir/Person/$merge", &merge).await.status,
        StatusCode::OK
    );
    let audits = app.get("/fhir/AuditEvent").await.json();
    assert!(audits["entry"].as_array().unwrap().len() >= 3);

    for (uri, body) in [
        (format!("/fhir/Person/{pa}/$link"), parameters(json!([]))),
        (
            format!("/fhir/Person/{pa}/$link"),
            parameters(
                json!([{"name": "patient", "valueReference": {"reference": "Observation/1"}}]),
            ),
        ),
        (
            format!("/fhir/Person/{pa}/$link"),
            json!({"resourceType": "Patient"}),
        ),
        (
            "/fhir/Person/$merge".to_owned(),
            parameters(json!([{"name": "source", "valueString": "x"}])),
        ),
    ] {
        let answer = app.post_json(&uri, &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri} {body}");
    }
    let missing = app.post_json("/fhir/Person/nobody/$link", &link).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The review queue: a conflicting registration (same ID number, another person) waits.
    let mut conflicting = registration("urn:village:mrn", "V-1", "建国");
    conflicting["name"] = json!([{"family": "欧阳", "given": ["建国"]}]);
    conflicting["gender"] = json!("male");
    conflicting["birthDate"] = json!("1970-06-06");
    app.post_json("/fhir/Patient", &conflicting).await;
    let queue = app
        .get("/fhir/Task?code=urn:meridian:mpi|match-review&status=requested")
        .await
        .json();
    let tasks = queue["entry"].as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    let task = tasks[0]["resource"]["id"].as_str().unwrap();
    let rejected = app
        .post_json(&format!("/fhir/Task/{task}/$reject-match"), &json!({}))
        .await;
    assert_eq!(
        rejected.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&rejected.body)
    );
    assert_eq!(rejected.json()["businessStatus"]["text"], "not-linked");
    assert_eq!(
        app.post_json(&format!("/fhir/Task/{task}/$accept-match"), &json!({}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.post_json("/fhir/Task/nothing/$accept-match", &json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_health_code_resolves_and_refusals_say_why_and_nothing_more() {
    let app = identity_app(test_support::sqlite());
    let a = register(&app, "urn:county:mrn", "C-1", "秀英").await;
    let issued = app
        .post_json(&format!("/fhir/Patient/{a}/$health-code"), &json!({}))
        .await;
    assert_eq!(
        issued.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&issued.body)
    );
    let issued = issued.json();
    let get = |name: &str| {
        issued["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    let code = get("code")["valueString"].as_str().unwrap().to_owned();
    assert!(get("expires")["valueInstant"].as_str().is_some());
    assert_eq!(
        get("qr-svg")["valueAttachment"]["contentType"],
        "image/svg+xml"
    );
    assert_eq!(get("qr-png")["valueAttachment"]["contentType"], "image/png");

    let resolve = |code: &str| parameters(json!([{"name": "code", "valueString": code}]));
    let resolved = app
        .post_json("/fhir/Patient/$resolve-health-code", &resolve(&code))
        .await;
    assert_eq!(
        resolved.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&resolved.body)
    );
    let body = resolved.json();
    assert_eq!(body["parameter"][0]["resource"]["resourceType"], "Person");
    assert!(
        body["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "identifier" && p["valueIdentifier"]["value"] == "C-1")
    );

    let mut tampered: Vec<char> = code.chars().collect();
    tampered[10] = if tampered[10] == 'x' { 'y' } else { 'x' };
    let tampered: String = tampered.into_iter().collect();
    for (code, status, expected) in [
        ("garbage".to_owned(), StatusCode::BAD_REQUEST, "malformed"),
        (tampered, StatusCode::BAD_REQUEST, "signature"),
    ] {
        let answer = app
            .post_json("/fhir/Patient/$resolve-health-code", &resolve(&code))
            .await;
        assert_eq!(answer.status, status);
        let text = String::from_utf8_lossy(&answer.body).to_string();
        assert!(text.contains(expected), "{text}");
        assert!(
            !text.contains("张") && !text.contains(&a),
            "nothing about the person: {text}"
        );
    }
    let revoked = app
        .post_json("/fhir/Patient/$revoke-health-code", &resolve(&code))
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let answer = app
        .post_json("/fhir/Patient/$resolve-health-code", &resolve(&code))
        .await;
    assert_eq!(answer.status, StatusCode::GONE);
    assert!(String::from_utf8_lossy(&answer.body).contains("revoked"));

    // A printed code with its PIN.
    let printed = app
        .post_json(
            &format!("/fhir/Patient/{a}/$health-code"),
            &parameters(json!([{"name": "printed", "valueBoolean": true}])),
        )
        .await
        .json();
    let find = |name: &str| {
        printed["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["valueString"].as_str())
            .unwrap()
            .to_owned()
    };
    let (code, pin) = (find("code"), find("pin"));
    let without = app
        .post_json("/fhir/Patient/$resolve-health-code", &resolve(&code))
        .await;
    assert_eq!(without.status, StatusCode::BAD_REQUEST);
    assert_eq!(without.issue().0, "required");
    let with = parameters(
        json!([{"name": "code", "valueString": code}, {"name": "pin", "valueString": pin}]),
    );
    assert_eq!(
        app.post_json("/fhir/Patient/$resolve-health-code", &with)
            .await
            .status,
        StatusCode::OK
    );

    let keys = app.get("/health-code/keys").await;
    assert_eq!(keys.status, StatusCode::OK);
    assert_eq!(keys.json()["keys"][0]["kty"], "OKP");

    for body in [
        json!({"resourceType": "Parameters"}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "code", "valueInteger": 1}]}),
        json!([1, 2]),
    ] {
        let answer = app
            .post_json("/fhir/Patient/$resolve-health-code", &body)
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
    }
    let unknown = app
        .post_json("/fhir/Patient/nobody/$health-code", &json!({}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    // Audit: every issue and resolution.
    let audits = app.get("/fhir/AuditEvent?_count=100").await.json();
    let events: Vec<String> = audits["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["resource"]["subtype"][0]["code"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        events.iter().filter(|e| *e == "health-code-issue").count(),
        2
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "health-code-resolve")
            .count(),
        2
    );
}

#[tokio::test]
async fn the_capability_statement_lists_the_identity_operations() {
    let app = identity_app(test_support::sqlite());
    let statement = app.get("/fhir/metadata").await.json();
    let patient = statement["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()
        .clone();
    let names: Vec<&str> = patient["operation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    for name in ["match", "ihe-pix", "health-code", "resolve-health-code"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let person = statement["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Person")
        .unwrap();
    let names: Vec<&str> = person["operation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    for name in ["link", "unlink", "merge", "model", "estimate-model"] {
        assert!(names.contains(&name), "{names:?}");
    }
}

#[tokio::test]
async fn without_the_identity_services_the_operations_are_404() {
    let app = app(test_support::sqlite());
    let answer = app
        .post_json("/fhir/Patient/$match", &parameters(json!([])))
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.issue().0, "not-found");
}

fn value_of<'a>(parameters: &'a Value, name: &str) -> &'a Value {
    let parameter = parameters["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {parameters}"));
    parameter
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with("value") || *k == "part")
        .unwrap()
        .1
}

#[tokio::test]
async fn the_model_is_reported_and_re_estimated_from_the_registrations_on_demand() {
    let app = identity_app(test_support::sqlite());
    let model = app.get("/fhir/Person/$model").await;
    assert_eq!(model.status, StatusCode::OK);
    let model = model.json();
    assert_eq!(value_of(&model, "origin"), "built-in");
    assert_eq!(value_of(&model, "learning"), "idle");
    let fields = model["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "field")
        .count();
    assert_eq!(fields, 10, "every field with its levels");
    assert_eq!(
        app.post_json("/fhir/Person/$model", &parameters(json!([])))
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // Too little to learn from: answered, not adopted, and why.
    register(&app, "urn:county:mrn", "C-1", "秀英").await;
    let refused = app
        .post_json("/fhir/Person/$estimate-model", &parameters(json!([])))
        .await;
    assert_eq!(refused.status, StatusCode::OK);
    let refused = refused.json();
    assert_eq!(value_of(&refused, "origin"), "built-in");
    let last = value_of(&refused, "last-estimation").as_array().unwrap();
    assert!(
        last.iter()
            .any(|p| p["name"] == "adopted" && p["valueBoolean"] == false)
    );
    assert!(last.iter().any(|p| p["name"] == "refused"));

    // 150 generated residents, each registered twice by two institutions.
    let mut generator = residents::synthetic::Generator::new(5);
    for number in 0..150 {
        let resident = generator.resident(number);
        for copy in 0..2 {
            let patient = generator.registration(&resident, copy, false);
            let answer = app.post_json("/fhir/Patient", &patient).await;
            assert_eq!(answer.status, StatusCode::CREATED);
        }
    }
    let learned = app
        .post_json("/fhir/Person/$estimate-model", &json!({}))
        .await;
    assert_eq!(
        learned.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&learned.body)
    );
    let learned = learned.json();
    assert_eq!(value_of(&learned, "origin"), "estimated");
    assert_eq!(value_of(&learned, "records"), 301);
    let reported = app.get("/fhir/Person/$model").await.json();
    assert_eq!(value_of(&reported, "origin"), "estimated");
    assert_eq!(value_of(&reported, "prior"), value_of(&learned, "prior"));
    // The model is a resource like any other: its history is the model's.
    let kept = app.get("/fhir/Basic/mpi-match-model").await;
    assert_eq!(kept.status, StatusCode::OK);
    assert_eq!(kept.json()["code"]["coding"][0]["code"], "match-model");
}
