//! Issue 14's outside check, done from outside: the real `meridian serve` over real HTTP on
//! both stores, hospitals A and B as backend-services clients registered through RFC 7591
//! with their own RS384 and ES384 keys, a resident signed in through the authorization-code
//! flow with PKCE driven through the login and approval pages, and the administrator's
//! `meridian token`. B sees none of A's records for the patient (reads, vreads, history,
//! searches and their totals, includes, chains, `_has`, `$everything`, conditional reads) until
//! the resident consents; then sees them but the restricted one; after the consent is
//! revoked (made inactive, or deleted) sees none again at the very next request; break-glass
//! with a stated reason sees them; B changes nothing of A's and writes no consent; every
//! forged token is 401 with `WWW-Authenticate`, never a 500; the break-glass read is on the
//! resident's own access list; and Python's `fhirclient` works with the tokens.
//!
//! This file holds the story and the callers; what is checked at each step is in the
//! submodules.

mod audit;
mod fhirclient;
mod forged;
mod visibility;

use std::collections::BTreeSet;

use access::{AuthConfig, Authenticator};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use test_support::signin::{ClientKey, assertion, ec_key, form_urlencoded, pkce, rsa_key};

use crate::support::*;

const REDIRECT: &str = "https://resident-app.example.org/callback";
const RESIDENT_SCOPE: &str = "openid fhirUser launch/patient patient/*.cruds offline_access";
/// The system of hospital A's result identifiers.
const LAB_IDENTIFIERS: &str = "urn:oid:1.2.156.112604.1.2";
const FHIR_JSON: (&str, &str) = ("content-type", "application/fhir+json");

#[test]
fn hospital_b_sees_a_patients_records_at_hospital_a_only_under_consent_or_break_glass_sqlite() {
    scenario(Backend::Sqlite);
}

#[test]
fn hospital_b_sees_a_patients_records_at_hospital_a_only_under_consent_or_break_glass_postgres() {
    scenario(Backend::Postgres);
}

/// The same on a Citus cluster: the rules' probes (consent beside each record, a resident's
/// linked registrations) run shard by shard.
#[test]
fn hospital_b_sees_a_patients_records_at_hospital_a_only_under_consent_or_break_glass_citus() {
    scenario(Backend::Citus);
}

/// The running server, the endpoints its discovery names, and the callers' tokens.
struct Region {
    serving: Serving,
    origin: String,
    /// The token endpoint's URL (the audience of client assertions) and its path.
    token_url: String,
    token_path: String,
}

/// A sign-in's access token, and the token request that exchanged its code.
struct SignIn {
    access_token: String,
    exchange: Vec<(String, String)>,
}

/// What hospital A wrote about the resident.
struct Records {
    patient: String,
    laboratory: String,
    vital_signs: String,
    restricted: String,
    encounter: String,
}

impl Records {
    /// Every record, as `Type/id`.
    fn all(&self) -> Vec<String> {
        vec![
            format!("Patient/{}", self.patient),
            format!("Observation/{}", self.laboratory),
            format!("Observation/{}", self.vital_signs),
            format!("Observation/{}", self.restricted),
            format!("Encounter/{}", self.encounter),
        ]
    }

    /// Every record a consent without restricted classes opens.
    fn unrestricted(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = self.all().into_iter().collect();
        all.remove(&format!("Observation/{}", self.restricted));
        all
    }
}

fn scenario(backend: Backend) {
    let region = Region::start(backend);
    let admin = region.serving.token.clone();

    region.directory();
    let key_a = ec_key("hospital-a-1");
    let key_b = rsa_key("hospital-b-1");
    let client_a = region.register_backend_client(&key_a, "Organization/A");
    let client_b = region.register_backend_client(&key_b, "Organization/B");
    assert_ne!(client_a, client_b);
    let a = region.client_credentials(&key_a, &client_a);
    let b = region.client_credentials(&key_b, &client_b);

    let records = region.hospital_a_writes_records(&a);
    // A sees what it holds, the restricted record included.
    for record in records.all() {
        let (status, _, body) = region.get(&a, &format!("/fhir/{record}"));
        assert_eq!(status, 200, "{record}: {body}");
    }

    // The resident's account, added at the command line while the server runs, and her
    // sign-in through the pages.
    let added = region.serving.meridian(
        &[
            "user",
            "add",
            "zhao",
            "--password-stdin",
            "--patient",
            &format!("Patient/{}", records.patient),
        ],
        "zhao-long-password\n",
    );
    assert!(added.contains("resident"), "{added}");
    let first = region.resident_signs_in("zhao", "zhao-long-password", &records.patient);
    let own = format!("/fhir/Patient/{}", records.patient);
    assert_eq!(region.get(&first.access_token, &own).0, 200);
    // Her code, exchanged again: refused, and what it gave is revoked (RFC 6749 4.1.2).
    let exchange: Vec<(&str, &str)> = first
        .exchange
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let (status, _, body) = region.form(&region.token_path, &exchange, &[]);
    assert_eq!(
        (status, json_of(&body)["error"].clone()),
        (400, json!("invalid_grant")),
        "{body}"
    );
    let (status, headers, _) = region.get(&first.access_token, &own);
    assert_eq!(status, 401);
    assert!(
        header(&headers, "www-authenticate")
            .unwrap()
            .contains("revoked")
    );
    let resident = region
        .resident_signs_in("zhao", "zhao-long-password", &records.patient)
        .access_token;
    // She sees every record of hers, the restricted one too.
    for record in records.all() {
        let (status, headers, body) = region.get(&resident, &format!("/fhir/{record}"));
        assert_eq!(status, 200, "{record}: {headers:?} {body}");
    }

    // Before any consent: nothing of A's about her, by any path.
    region.sees_none(&b, &records, "before any consent");
    region.b_changes_nothing_of_a_and_writes_no_consent(&b, &records);

    // She consents to B for treatment.
    let consent = consent_body(None, "active", &records.patient);
    let (status, _, body) = region.call(&resident, "POST", "/fhir/Consent", &[FHIR_JSON], &consent);
    assert_eq!(status, 201, "{body}");
    let consent_id = json_of(&body)["id"].as_str().unwrap().to_owned();
    region.sees_unrestricted(&b, &records, "under consent");
    // For another purpose than the consent's, nothing.
    let (status, _, body) = region.call(
        &b,
        "GET",
        &format!("/fhir/Observation/{}", records.laboratory),
        &[("x-purpose-of-use", "HPAYMT")],
        "",
    );
    assert_eq!(
        status, 404,
        "a treatment consent is not for payment: {body}"
    );

    // Revoked by an update to inactive: hidden at the very next request.
    let inactive = consent_body(Some(&consent_id), "inactive", &records.patient);
    let (status, _, body) = region.call(
        &resident,
        "PUT",
        &format!("/fhir/Consent/{consent_id}"),
        &[FHIR_JSON],
        &inactive,
    );
    assert_eq!(status, 200, "{body}");
    region.sees_none(&b, &records, "after the consent was made inactive");

    // Granted again, then revoked by a delete.
    let active = consent_body(Some(&consent_id), "active", &records.patient);
    let (status, _, body) = region.call(
        &resident,
        "PUT",
        &format!("/fhir/Consent/{consent_id}"),
        &[FHIR_JSON],
        &active,
    );
    assert_eq!(status, 200, "{body}");
    region.sees_unrestricted(&b, &records, "under the consent made active again");
    let (status, _, body) = region.call(
        &resident,
        "DELETE",
        &format!("/fhir/Consent/{consent_id}"),
        &[],
        "",
    );
    assert!(status == 200 || status == 204, "{status} {body}");
    region.sees_none(&b, &records, "after the consent was deleted");

    // Break-glass: with a stated reason, B reads and searches them all.
    let reason = "unconscious in the emergency room, allergies unknown";
    let glass = [
        ("x-purpose-of-use", "ETREAT"),
        ("x-break-glass-reason", reason),
    ];
    for record in records.all() {
        let (status, _, body) = region.call(&b, "GET", &format!("/fhir/{record}"), &glass, "");
        assert_eq!(status, 200, "break-glass read of {record}: {body}");
    }
    let (ids, total) = region.search(
        &b,
        &format!(
            "/fhir/Observation?patient=Patient/{}&_total=accurate",
            records.patient
        ),
        &glass,
    );
    assert_eq!((ids.len(), total), (3, 3), "{ids:?}");
    // The purpose without the reason is no break-glass: still hidden.
    for record in records.all() {
        let (status, _, body) = region.call(
            &b,
            "GET",
            &format!("/fhir/{record}"),
            &[("x-purpose-of-use", "ETREAT")],
            "",
        );
        assert_eq!(status, 404, "ETREAT without a reason, {record}: {body}");
    }
    // A reason without the purpose ETREAT is no break-glass either.
    let (status, _, body) = region.call(
        &b,
        "GET",
        &format!("/fhir/Observation/{}", records.laboratory),
        &[("x-break-glass-reason", reason)],
        "",
    );
    assert_eq!(status, 404, "a reason for treatment: {body}");
    region.sees_none(&b, &records, "after break-glass");
    region.break_glass_is_on_the_residents_access_list(&resident, &records, reason);
    region.the_trail_cannot_be_changed_through_the_api(&[&admin, &resident, &b], &records);

    region.forged_tokens_are_refused(&b);
}

impl Region {
    fn start(backend: Backend) -> Region {
        let serving = serve_on(backend, &[]);
        let origin = format!("http://{}", serving.address);
        let (status, _, body) = send_as(
            serving.address,
            None,
            "GET",
            "/fhir/.well-known/smart-configuration",
            &[],
            "",
        );
        assert_eq!(status, 200, "{body}");
        let discovery = json_of(&body);
        let token_url = discovery["token_endpoint"].as_str().unwrap().to_owned();
        let token_path = path_of(&token_url, &origin);
        // The CapabilityStatement names the same endpoint.
        let (status, _, metadata) =
            send_as(serving.address, None, "GET", "/fhir/metadata", &[], "");
        assert_eq!(status, 200);
        assert!(metadata.contains(&token_url), "{metadata}");
        // What the conditional-read probes below expect of a visible record.
        assert!(
            metadata.contains("\"conditionalRead\":\"not-supported\""),
            "{metadata}"
        );
        Region {
            serving,
            origin,
            token_url,
            token_path,
        }
    }

    /// The path of an endpoint the discovery document names.
    fn endpoint(&self, name: &str) -> String {
        let (_, _, body) = send_as(
            self.serving.address,
            None,
            "GET",
            "/fhir/.well-known/smart-configuration",
            &[],
            "",
        );
        let url = json_of(&body)[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {body}"))
            .to_owned();
        path_of(&url, &self.origin)
    }

    fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let answer = send_as(
            self.serving.address,
            Some(token),
            method,
            path,
            headers,
            body,
        );
        assert!(answer.0 < 500, "{method} {path}: {} {}", answer.0, answer.2);
        answer
    }

    fn get(&self, token: &str, path: &str) -> Answer {
        self.call(token, "GET", path, &[], "")
    }

    /// A search's entries (as `Type/id`, matches and includes alike) and its total.
    fn search(&self, token: &str, path: &str, headers: &[(&str, &str)]) -> (Vec<String>, u64) {
        let (status, _, body) = self.call(token, "GET", path, headers, "");
        assert_eq!(status, 200, "{path}: {body}");
        let bundle = json_of(&body);
        (
            entries(&bundle),
            bundle["total"].as_u64().unwrap_or(u64::MAX),
        )
    }

    fn form(&self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Answer {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        let answer = send_as(
            self.serving.address,
            None,
            "POST",
            path,
            &all,
            &form_urlencoded(fields),
        );
        assert!(answer.0 < 500, "POST {path}: {} {}", answer.0, answer.2);
        answer
    }

    /// An institution's backend-services client, registered through RFC 7591 at the endpoint
    /// the discovery names, with the administrator's token; its client id.
    fn register_backend_client(&self, key: &ClientKey, organization: &str) -> String {
        let metadata = json!({
            "client_name": format!("{organization} hospital information system"),
            "token_endpoint_auth_method": "private_key_jwt",
            "grant_types": ["client_credentials"],
            "jwks": {"keys": [key.jwk]},
            "scope": "system/*.cruds",
            "organization": organization,
        });
        let (status, _, body) = self.call(
            &self.serving.token,
            "POST",
            &self.endpoint("registration_endpoint"),
            &[("content-type", "application/json")],
            &metadata.to_string(),
        );
        assert_eq!(status, 201, "{body}");
        let registered = json_of(&body);
        assert_eq!(registered["organization"], organization, "{registered}");
        registered["client_id"].as_str().unwrap().to_owned()
    }

    /// A backend client's access token: client credentials with a `private_key_jwt` assertion.
    fn client_credentials(&self, key: &ClientKey, client_id: &str) -> String {
        let signed = assertion(
            key,
            client_id,
            &self.token_url,
            &uuid::Uuid::new_v4().to_string(),
            240,
        );
        let (status, headers, body) = self.form(
            &self.token_path,
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &signed),
                ("scope", "system/*.cruds"),
            ],
            &[],
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(header(&headers, "cache-control"), Some("no-store"));
        let answer = json_of(&body);
        assert_eq!(answer["token_type"], "Bearer", "{answer}");
        answer["access_token"].as_str().unwrap().to_owned()
    }

    /// Hospital A's records of a new patient: a laboratory result (performed by A), a vital
    /// sign, a restricted result (confidentiality R) and an encounter.
    fn hospital_a_writes_records(&self, a: &str) -> Records {
        let create = |resource: Value| {
            let resource_type = resource["resourceType"].as_str().unwrap().to_owned();
            let (status, _, body) = self.call(
                a,
                "POST",
                &format!("/fhir/{resource_type}"),
                &[FHIR_JSON],
                &resource.to_string(),
            );
            assert_eq!(status, 201, "{resource_type}: {body}");
            json_of(&body)["id"].as_str().unwrap().to_owned()
        };
        let patient = create(json!({
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.2.23.1.1", "value": "A-MRN-70001"}],
            "name": [{"family": "Zhaoqiansun", "given": ["Lan"]}],
            "gender": "female", "birthDate": "1961-04-12"
        }));
        let subject = json!({"reference": format!("Patient/{patient}")});
        let observation = |category: &str, code: &str, security: Option<&str>| {
            let mut observation = json!({
                "resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": subject,
                "performer": [{"reference": "Organization/A"}],
                "identifier": [{"system": LAB_IDENTIFIERS, "value": format!("A-{code}")}],
                "effectiveDateTime": "2026-11-30T08:00:00+08:00",
                "valueQuantity": {"value": 6.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
            });
            if let Some(code) = security {
                observation["meta"] = json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": code}]});
            }
            observation
        };
        Records {
            laboratory: create(observation("laboratory", "2345-7", None)),
            vital_signs: create(observation("vital-signs", "8867-4", None)),
            restricted: create(observation("laboratory", "75622-1", Some("R"))),
            encounter: create(json!({
                "resourceType": "Encounter", "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": subject,
                "serviceProvider": {"reference": "Organization/A"}
            })),
            patient,
        }
    }

    /// Organizations A and B, in the directory.
    fn directory(&self) {
        for (id, name) in [("A", "County Hospital A"), ("B", "City Hospital B")] {
            let (status, _, body) = self.call(
                &self.serving.token,
                "PUT",
                &format!("/fhir/Organization/{id}"),
                &[FHIR_JSON],
                &json!({"resourceType": "Organization", "id": id, "name": name}).to_string(),
            );
            assert_eq!(status, 201, "Organization/{id}: {body}");
        }
    }

    /// The resident's app, a public client registered through RFC 7591: its client id.
    fn register_app(&self) -> String {
        let app = json!({
            "client_name": "Resident health app",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": RESIDENT_SCOPE,
        });
        let (status, _, body) = self.call(
            &self.serving.token,
            "POST",
            &self.endpoint("registration_endpoint"),
            &[("content-type", "application/json")],
            &app.to_string(),
        );
        assert_eq!(status, 201, "{body}");
        json_of(&body)["client_id"].as_str().unwrap().to_owned()
    }

    /// The resident's access token, from the authorization-code flow with PKCE driven as a
    /// browser would: GET authorize, the login form, the approval, the redirect, the token.
    fn resident_signs_in(&self, username: &str, password: &str, patient: &str) -> SignIn {
        let client_id = self.register_app();

        let (verifier, challenge) = pkce();
        let aud = format!("{}/fhir", self.origin);
        let authorize = self.endpoint("authorization_endpoint");
        let query = form_urlencoded(&[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
            ("scope", RESIDENT_SCOPE),
            ("state", "state-8a1f"),
            ("aud", &aud),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        let (status, headers, login) = send_as(
            self.serving.address,
            None,
            "GET",
            &format!("{authorize}?{query}"),
            &[("accept-language", "en")],
            "",
        );
        assert_eq!(status, 200, "{login}");
        assert!(
            header(&headers, "content-type")
                .unwrap()
                .starts_with("text/html")
        );
        let (action, fields) = form_of(&login, "password");
        assert_eq!(action, authorize, "the login form posts back to authorize");
        let mut filled: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        filled.push(("username", username));
        filled.push(("password", password));
        let (status, _, approval) = self.form(&action, &filled, &[("accept-language", "en")]);
        assert_eq!(status, 200, "{approval}");
        assert!(approval.contains("patient/*.cruds"), "{approval}");
        let (action, fields) = form_of(&approval, "decision");
        let mut filled: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .filter(|(n, _)| *n != "decision")
            .collect();
        filled.push(("decision", "allow"));
        let (status, headers, body) = self.form(&action, &filled, &[]);
        assert_eq!(status, 303, "{body}");
        let location = header(&headers, "location").unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(param(location, "state").as_deref(), Some("state-8a1f"));
        let code = param(location, "code").unwrap();

        let (status, headers, body) = self.form(
            &self.token_path,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
                ("client_id", &client_id),
            ],
            &[],
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(header(&headers, "cache-control"), Some("no-store"));
        let tokens = json_of(&body);
        assert_eq!(tokens["patient"], patient, "{tokens}");
        assert!(tokens["id_token"].is_string(), "{tokens}");
        assert!(tokens["refresh_token"].is_string(), "{tokens}");
        let granted: BTreeSet<&str> = tokens["scope"].as_str().unwrap().split(' ').collect();
        assert!(granted.contains("patient/*.cruds"), "{tokens}");
        SignIn {
            access_token: tokens["access_token"].as_str().unwrap().to_owned(),
            exchange: vec![
                ("grant_type".into(), "authorization_code".into()),
                ("code".into(), code),
                ("redirect_uri".into(), REDIRECT.into()),
                ("code_verifier".into(), verifier),
                ("client_id".into(), client_id),
            ],
        }
    }

    /// Every page of a search, following its `next` links: the resources.
    fn search_all(&self, token: &str, path: &str) -> Vec<Value> {
        let mut resources = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(path) = next.take() {
            let (status, _, body) = self.get(token, &path);
            assert_eq!(status, 200, "{path}: {body}");
            let bundle = json_of(&body);
            resources.extend(
                bundle["entry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|entry| entry["resource"].clone()),
            );
            next = bundle["link"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|link| link["relation"] == "next")
                .map(|link| path_of(link["url"].as_str().unwrap(), &self.origin));
        }
        resources
    }
}

/// An R4 patient-privacy Consent permitting Organization/B for treatment.
fn consent_body(id: Option<&str>, status: &str, patient: &str) -> String {
    let mut consent = json!({
        "resourceType": "Consent",
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "dateTime": "2026-12-01T10:00:00+08:00",
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {
            "type": "permit",
            "actor": [{
                "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                "reference": {"reference": "Organization/B"}
            }],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]
        }
    });
    if let Some(id) = id {
        consent["id"] = json!(id);
    }
    consent.to_string()
}

/// A Bundle's entries as `Type/id`.
fn entries(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let resource = &entry["resource"];
            Some(format!(
                "{}/{}",
                resource["resourceType"].as_str()?,
                resource["id"].as_str()?
            ))
        })
        .collect()
}

/// The path (and query) of `url`, an address on the server at `origin`.
fn path_of(url: &str, origin: &str) -> String {
    url.strip_prefix(origin)
        .unwrap_or_else(|| panic!("{url} is not on {origin}"))
        .to_owned()
}

/// A redirect location's query parameter.
fn param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    repository::parse_query(query)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// The page's form that has a control named `control` (not the language switch), as a browser
/// submits it: its action and its hidden fields.
fn form_of(page: &str, control: &str) -> (String, Vec<(String, String)>) {
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let marker = format!("{name}=\"");
        let start = tag.find(&marker)? + marker.len();
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    };
    let form = page
        .split("<form")
        .skip(1)
        .map(|form| &form[..form.find("</form>").unwrap()])
        .find(|form| form.contains(&format!("name=\"{control}\"")))
        .unwrap_or_else(|| panic!("no form with {control} in {page}"));
    let action = attribute(&form[..form.find('>').unwrap()], "action").unwrap();
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap()];
        if attribute(tag, "type").as_deref() == Some("hidden")
            && let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value"))
        {
            fields.push((name, value));
        }
    }
    (action, fields)
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
