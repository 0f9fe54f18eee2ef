//! Bad input gets a clear OperationOutcome and the right status: never a panic, never a 500,
//! never a half-written change.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;
use server::ServerConfig;

use crate::support::*;

const JSON: (&str, &str) = ("content-type", "application/fhir+json");

#[tokio::test]
async fn malformed_json_is_a_400_that_says_where() {
    let app = app(test_support::sqlite());
    let answer = app
        .send(
            Method::POST,
            "/fhir/Patient",
            &[JSON],
            "{\"resourceType\": \"Patient\",",
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let body = answer.json();
    assert_eq!(body["issue"][0]["code"], json!("structure"));
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{body}"
    );
    for body in [
        "",
        "   ",
        "null",
        "[1,2]",
        "\"text\"",
        "{\"resourceType\": 7}",
    ] {
        let answer = app.send(Method::POST, "/fhir/Patient", &[JSON], body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body:?}");
        answer.issue();
    }
}

store_tests! {
    async fn a_property_named_twice_is_a_400_that_names_it_and_nothing_is_written(app) {
        // Regression: serde_json kept the last `gender`, so the server stored a resource that
        // another reader of the same body would take to say "male".
        let backend = app.backend();
        let body =
            r#"{"resourceType": "Patient", "id": "p1", "gender": "male", "gender": "female"}"#;
        for (method, uri) in [
            (Method::POST, "/fhir/Patient"),
            (Method::PUT, "/fhir/Patient/p1"),
        ] {
            let answer = app.send(method.clone(), uri, &[JSON], body).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{backend} {method}");
            assert_eq!(
                answer.issue(),
                ("structure".to_owned(), Some("Patient.gender".to_owned())),
                "{backend} {method}"
            );
            let diagnostics = answer.json()["issue"][0]["diagnostics"].clone();
            assert!(
                diagnostics
                    .as_str()
                    .unwrap()
                    .contains("'gender' appears twice"),
                "{diagnostics}"
            );
        }
        let transaction = r#"{"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient", "id": "p2"}, "request": {"method": "PUT", "url": "Patient/p2"}},
            {"resource": {"resourceType": "Patient", "active": true, "active": false}, "request": {"method": "POST", "url": "Patient"}}
        ]}"#;
        let answer = app.send(Method::POST, "/fhir", &[JSON], transaction).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{backend}");
        assert_eq!(
            answer.issue().1.as_deref(),
            Some("Bundle.entry[1].resource.active")
        );
        let patch = app
            .send(
                Method::PATCH,
                "/fhir/Patient/p1",
                &[("content-type", "application/json-patch+json")],
                r#"[{"op": "add", "path": "/active", "value": true, "value": false}]"#,
            )
            .await;
        assert_eq!(patch.status, StatusCode::BAD_REQUEST, "{backend}");
        assert_eq!(patch.issue().1.as_deref(), Some("[0].value"));
        assert_eq!(
            app.get("/fhir/Patient").await.json().get("entry"),
            None,
            "{backend}: nothing was written"
        );
    }
}

store_tests! {
    async fn a_body_that_starts_with_a_byte_order_mark_is_read(app) {
        // Regression: a UTF-8 byte-order mark, which FHIR allows and some clients write, was a 400.
        let backend = app.backend();
        let body =
            "\u{feff}{\"resourceType\": \"Patient\", \"id\": \"bom\", \"gender\": \"female\"}";
        let answer = app
            .send(Method::PUT, "/fhir/Patient/bom", &[JSON], body)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{backend}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(
            app.get("/fhir/Patient/bom").await.json()["gender"],
            json!("female"),
            "{backend}"
        );
        // A mark and nothing else is still an empty body.
        let empty = app
            .send(Method::POST, "/fhir/Patient", &[JSON], "\u{feff} ")
            .await;
        assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{backend}");
        assert_eq!(empty.issue().0, "required");
    }
}

#[tokio::test]
async fn deeply_nested_json_is_refused_not_a_stack_overflow() {
    let app = app(test_support::sqlite());
    let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let answer = app.send(Method::POST, "/fhir/Patient", &[JSON], body).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_wrong_content_type_is_a_415() {
    let app = app(test_support::sqlite());
    let body = json!({"resourceType": "Patient"}).to_string();
    for content_type in [
        "application/xml",
        "application/fhir+xml",
        "text/plain",
        "application/x-www-form-urlencoded",
    ] {
        let answer = app
            .send(
                Method::POST,
                "/fhir/Patient",
                &[("content-type", content_type)],
                body.clone(),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
        assert_eq!(answer.issue().0, "not-supported");
    }
    let charset = app
        .send(
            Method::POST,
            "/fhir/Patient",
            &[("content-type", "application/json; charset=utf-8")],
            body,
        )
        .await;
    assert_eq!(charset.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let app = app_with(
        test_support::sqlite(),
        ServerConfig {
            max_body_bytes: 1024,
            ..ServerConfig::default()
        },
    );
    let big = json!({"resourceType": "Patient", "name": [{"text": "x".repeat(2000)}]}).to_string();
    let answer = app.send(Method::POST, "/fhir/Patient", &[JSON], big).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.issue().0, "too-long");
    assert_eq!(app.get("/fhir/Patient").await.json().get("entry"), None);
}

#[tokio::test]
async fn unknown_types_bad_ids_and_mismatches() {
    let app = app(test_support::sqlite());
    assert_eq!(
        app.get("/fhir/Patientt/1").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_json("/fhir/Patientt", &json!({"resourceType": "Patientt"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let bad_id = app
        .put_json(
            "/fhir/Patient/bad_id",
            &json!({"resourceType": "Patient", "id": "bad_id"}),
            &[],
        )
        .await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    let long_id = "x".repeat(65);
    let too_long = app
        .put_json(
            &format!("/fhir/Patient/{long_id}"),
            &json!({"resourceType": "Patient", "id": long_id}),
            &[],
        )
        .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    let mismatch = app
        .post_json("/fhir/Observation", &json!({"resourceType": "Patient"}))
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert_eq!(mismatch.issue().1.as_deref(), Some("resourceType"));
    let id_mismatch = app
        .put_json(
            "/fhir/Patient/a",
            &json!({"resourceType": "Patient", "id": "b"}),
            &[],
        )
        .await;
    assert_eq!(id_mismatch.status, StatusCode::BAD_REQUEST);
    let invalid = app
        .post_json(
            "/fhir/Patient",
            &json!({"resourceType": "Patient", "birthDate": "1980-13-01"}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        invalid.issue(),
        ("value".to_owned(), Some("Patient.birthDate".to_owned()))
    );
    assert_eq!(
        app.get("/fhir/Patient").await.json().get("entry"),
        None,
        "nothing was written"
    );
}

#[tokio::test]
async fn bad_version_headers_and_paths() {
    let app = app(test_support::sqlite());
    let body = json!({"resourceType": "Patient", "id": "p1"});
    let bad_etag = app
        .put_json("/fhir/Patient/p1", &body, &[("if-match", "not-an-etag")])
        .await;
    assert_eq!(bad_etag.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/fhir/Patient/p1/_history/abc").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/fhir/Patient/p1/nonsense/1/2").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/elsewhere").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/fhir/Patient/$everything-else").await.status,
        StatusCode::NOT_FOUND
    );
    let not_allowed = app
        .send(Method::DELETE, "/fhir/metadata", &[], Body::empty())
        .await;
    assert_eq!(not_allowed.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(not_allowed.issue().0, "not-supported");
}

#[tokio::test]
async fn formats_other_than_json_are_not_acceptable() {
    let app = app(test_support::sqlite());
    assert_eq!(
        app.get("/fhir/metadata?_format=xml").await.status,
        StatusCode::NOT_ACCEPTABLE
    );
    let xml = app
        .send(
            Method::GET,
            "/fhir/metadata",
            &[("accept", "application/fhir+xml")],
            Body::empty(),
        )
        .await;
    assert_eq!(xml.status, StatusCode::NOT_ACCEPTABLE);
    let either = app
        .send(
            Method::GET,
            "/fhir/metadata",
            &[(
                "accept",
                "application/fhir+xml, application/fhir+json;q=0.9",
            )],
            Body::empty(),
        )
        .await;
    assert_eq!(either.status, StatusCode::OK);
    assert_eq!(
        app.get("/fhir/metadata?_format=json").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn hostile_query_strings_are_answered_not_obeyed() {
    let app = app(test_support::sqlite());
    app.post_json(
        "/fhir/Patient",
        &json!({"resourceType": "Patient", "gender": "male"}),
    )
    .await;
    for query in [
        "name=%27%3B%20DROP%20TABLE%20resource%3B--",
        "name=%00%01%02",
        "name=%E4%B8%AD%ZZ",
        "gender=male%27%20OR%20%271%27%3D%271",
        "_count=-1",
        "_count=99999999999999999999",
        "identifier=%7C",
        "_id=a,b,c,d",
        "name:nonsense=x",
        "subject:Patient.name=x",
    ] {
        let answer = app.get(&format!("/fhir/Patient?{query}")).await;
        assert!(
            answer.status == StatusCode::OK || answer.status == StatusCode::BAD_REQUEST,
            "{query}: {}",
            answer.status
        );
        let body = answer.json();
        if answer.status == StatusCode::OK {
            assert_eq!(body["resourceType"], json!("Bundle"), "{query}");
        } else {
            assert_eq!(body["resourceType"], json!("OperationOutcome"), "{query}");
        }
    }
    let all = app.get("/fhir/Patient").await.json();
    assert_eq!(
        all["entry"].as_array().unwrap().len(),
        1,
        "the data is intact"
    );
    let injected = app
        .get("/fhir/Patient?gender=male%27%20OR%20%271%27%3D%271")
        .await
        .json();
    assert_eq!(
        injected.get("entry"),
        None,
        "the quote is part of the value"
    );
}

#[tokio::test]
async fn a_plus_in_a_path_segment_is_a_plus_sign() {
    // Regression: path segments were decoded as form values, so `+` became a space.
    let app = app(test_support::sqlite());
    for uri in ["/fhir/Patient/a+b", "/fhir/Patient/a%2Bb"] {
        let answer = app.get(uri).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        assert!(body.contains("'a+b' is not a valid id"), "{uri}: {body}");
    }
}

#[tokio::test]
async fn strict_handling_refuses_unknown_parameters() {
    let app = app(test_support::sqlite());
    let lenient = app.get("/fhir/Patient?no-such-param=1").await;
    assert_eq!(lenient.status, StatusCode::OK);
    let self_link = lenient.json()["link"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !self_link.contains("no-such-param"),
        "the self link shows what was applied: {self_link}"
    );
    let strict = app
        .send(
            Method::GET,
            "/fhir/Patient?no-such-param=1",
            &[("prefer", "handling=strict")],
            Body::empty(),
        )
        .await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST);
    assert_eq!(strict.issue().1.as_deref(), Some("no-such-param"));
}

store_tests! {
    /// Regression: PostgreSQL answered 500 to a NUL byte in a path id or in a string search
    /// value, and to a forged sort cursor whose value had the wrong type; SQLite answered
    /// 4xx or 200. Every input that reaches a store is checked before it does.
    async fn nul_bytes_and_forged_cursors_are_refused_before_a_store_sees_them(app) {
        let created = app
            .post_json("/fhir/Patient", &json!({"resourceType": "Patient", "name": [{"family": "Nul"}]}))
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        for uri in [
            "/fhir/Patient/abc%00def",
            "/fhir/Patient/abc%00def/_history",
            "/fhir/Patient/abc%00def/_history/1",
            "/fhir/Patient/abc%00def/$everything",
            "/fhir/Patient/abc%00def/Observation",
            "/fhir/Patient?family=a%00b",
            "/fhir/Patient?family:exact=a%00b",
            "/fhir/Patient?_id=abc%00",
            "/fhir/Patient?identifier=urn:x%7Ca%00b",
            "/fhir/Observation?subject=Patient/a%00b",
            "/fhir/Patient?family=Nul&_sort=family&_cursor=1~s%00",
            "/fhir/Patient?family=Nul&_sort=birthdate&_cursor=1~sNotAnInstant",
            "/fhir/Patient?family=Nul&_sort=birthdate&_cursor=1~i5~i6",
            "/fhir/Patient?family=Nul&_cursor=not-a-cursor",
            "/fhir/_history?_cursor=1",
        ] {
            let answer = app.get(uri).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}: {}", String::from_utf8_lossy(&answer.body));
            answer.issue();
        }
        for (method, uri) in [(Method::DELETE, "/fhir/Patient/abc%00def"), (Method::PATCH, "/fhir/Patient/abc%00def")] {
            let answer = app
                .send(method.clone(), uri, &[("content-type", "application/json-patch+json")], "[]")
                .await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{method} {uri}");
        }
        // A cursor from a next link works; the same cursor changed by one character does not.
        for i in 0..3 {
            let answer = app
                .post_json("/fhir/Patient", &json!({"resourceType": "Patient", "name": [{"family": format!("Nul{i}")}]}))
                .await;
            assert_eq!(answer.status, StatusCode::CREATED);
        }
        let first = app.get("/fhir/Patient?family=Nul&_count=2&_sort=family").await.json();
        let next = first["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .unwrap()["url"]
            .as_str()
            .unwrap()
            .replace("http://meridian.test", "");
        assert!(!next.contains("nul1"), "the cursor shows no data: {next}");
        assert_eq!(app.get(&next).await.status, StatusCode::OK);
        let (head, cursor) = next.split_once("_cursor=").unwrap();
        let mut forged = cursor.to_owned().into_bytes();
        forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
        let forged = format!("{head}_cursor={}", String::from_utf8(forged).unwrap());
        let answer = app.get(&forged).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.issue().1.as_deref(), Some("_cursor"));
        // A cursor of one search is not one of another.
        let elsewhere = next.replace("/fhir/Patient?", "/fhir/Practitioner?");
        assert_eq!(app.get(&elsewhere).await.status, StatusCode::BAD_REQUEST);
    }
}

store_tests! {
    async fn a_transaction_with_a_repeated_full_url_is_a_400_naming_the_entry(app) {
        // Regression (bdl-7): two entries with one fullUrl were accepted.
        let backend = app.backend();
        let full_url = "urn:uuid:1d6b7c9e-0000-4000-8000-000000000001";
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": full_url, "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": full_url, "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
        ]});
        let answer = app.post_json("/fhir", &bundle).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{backend}");
        assert_eq!(
            answer.issue(),
            (
                "invariant".to_owned(),
                Some("Bundle.entry[1].fullUrl".to_owned())
            ),
            "{backend}"
        );
        assert_eq!(
            app.get("/fhir/Patient").await.json().get("entry"),
            None,
            "{backend}"
        );
    }
}

store_tests! {
    async fn an_unreferenced_contained_resource_is_a_400_and_nothing_is_written(app) {
        // Regression (dom-3): a contained resource nothing referred to, or without an id, was stored.
        let backend = app.backend();
        for contained in [
            json!({"resourceType": "Organization", "id": "o", "name": "Orphan"}),
            json!({"resourceType": "Organization", "name": "Nameless"}),
        ] {
            let patient = json!({"resourceType": "Patient", "contained": [contained]});
            let answer = app.post_json("/fhir/Patient", &patient).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{backend}");
            assert_eq!(
                answer.issue(),
                (
                    "invariant".to_owned(),
                    Some("Patient.contained[0]".to_owned())
                ),
                "{backend}"
            );
        }
        let referred = json!({"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o", "name": "Kept"}],
                              "managingOrganization": {"reference": "#o"}});
        let answer = app.post_json("/fhir/Patient", &referred).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{backend}");
        let all = app.get("/fhir/Patient").await.json();
        assert_eq!(
            all["entry"].as_array().map(Vec::len),
            Some(1),
            "{backend}: only the valid one"
        );
    }
}

store_tests! {
    async fn a_narrative_with_script_is_a_400_and_never_stored(app) {
        // Regression (txt-1): `<script>` in text.div was stored, to run in every viewer that
        // renders narratives.
        let backend = app.backend();
        let xhtml = "http://www.w3.org/1999/xhtml";
        for div in [
            format!(
                "<div xmlns=\"{xhtml}\">Hello<script>fetch('/steal?c='+document.cookie)</script></div>"
            ),
            format!("<div xmlns=\"{xhtml}\"><img src=\"x\" onerror=\"alert(1)\"/></div>"),
            format!("<div xmlns=\"{xhtml}\"><a href=\"javascript:alert(1)\">click</a></div>"),
            format!("<div xmlns=\"{xhtml}\"> </div>"),
        ] {
            let patient = json!({"resourceType": "Patient", "id": "x", "text": {"status": "generated", "div": div}});
            let created = app.post_json("/fhir/Patient", &patient).await;
            assert_eq!(created.status, StatusCode::BAD_REQUEST, "{backend}: {div}");
            assert_eq!(
                created.issue(),
                ("invariant".to_owned(), Some("Patient.text.div".to_owned())),
                "{backend}: {div}"
            );
            let updated = app.put_json("/fhir/Patient/x", &patient, &[]).await;
            assert_eq!(updated.status, StatusCode::BAD_REQUEST, "{backend}: {div}");
            let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
                {"resource": patient, "request": {"method": "PUT", "url": "Patient/x"}}
            ]});
            let answer = app.post_json("/fhir", &transaction).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{backend}: {div}");
            assert_eq!(
                answer.issue().1.as_deref(),
                Some("Bundle.entry[1].resource.text.div")
            );
        }
        assert_eq!(
            app.get("/fhir/Patient").await.json().get("entry"),
            None,
            "{backend}: nothing was written"
        );
        let plain = json!({"resourceType": "Patient", "id": "x", "text": {"status": "generated",
                           "div": format!("<div xmlns=\"{xhtml}\"><p>Peter <b>James</b></p></div>")}});
        assert_eq!(
            app.put_json("/fhir/Patient/x", &plain, &[]).await.status,
            StatusCode::CREATED,
            "{backend}"
        );
    }
}

store_tests! {
    async fn a_resource_over_a_repetition_limit_is_a_422_naming_the_element_and_the_limit(app) {
        // Regression: a valid Patient with 10,000 names was stored, and made searches slow.
        let backend = app.backend();
        let names: Vec<_> = (0..10_000)
            .map(|i| json!({"family": format!("F{i}")}))
            .collect();
        let patient = json!({"resourceType": "Patient", "name": names});
        let answer = app.post_json("/fhir/Patient", &patient).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}");
        assert_eq!(
            answer.issue(),
            ("business-rule".to_owned(), Some("Patient.name".to_owned())),
            "{backend}"
        );
        let diagnostics = answer.json()["issue"][0]["diagnostics"].clone();
        assert!(
            diagnostics
                .as_str()
                .unwrap()
                .contains("name has 10000 items; this server accepts at most 1000"),
            "{diagnostics}"
        );
        assert_eq!(
            app.get("/fhir/Patient").await.json().get("entry"),
            None,
            "{backend}"
        );
    }
}
