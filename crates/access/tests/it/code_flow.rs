//! The authorization code flow at the service's level (the server's tests drive the same over
//! HTTP): PKCE, exact redirect URIs, one-time codes, refresh rotation with reuse detection, the
//! organisation choice and the patient context.

use access::signin::{AuthorizeRefusal, SignInRefusal, SignedIn};
use access::{AuthError, Authenticator};
use caller::Actor;
use serde_json::{Value, json};
use test_support::backend_tests;

use crate::support::*;

const REDIRECT: &str = "https://app.example.org/callback";

fn public_client(auth: &Authenticator) -> String {
    auth.register_client(&json!({
        "client_name": "Health app",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid fhirUser launch launch/patient patient/*.rs user/*.rs offline_access",
    }))
    .unwrap()
    .client_id
}

fn request(client_id: &str, challenge: &str, scope: &str) -> Vec<(String, String)> {
    form(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st&ate"),
        ("aud", AUDIENCE),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ])
}

fn code_of(location: &str) -> String {
    let query = location.split_once('?').unwrap().1;
    let pairs = repository::parse_query(query);
    assert!(
        pairs.contains(&("state".into(), "st&ate".into())),
        "{location}"
    );
    pairs.into_iter().find(|(n, _)| n == "code").unwrap().1
}

fn exchange(
    auth: &Authenticator,
    client_id: &str,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> Result<Value, access::OAuthError> {
    auth.token(
        &form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
            ("client_id", client_id),
        ]),
        &[],
    )
}

/// Signs in through the flow and answers the code.
fn sign_in(
    auth: &Authenticator,
    client_id: &str,
    user: &str,
    password: &str,
    scope: &str,
    organization: Option<&str>,
    patient: Option<&str>,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let checked = auth
        .check_authorize(&request(client_id, &challenge, scope), &[])
        .unwrap();
    // The request travels sealed through the pages.
    let checked = auth
        .open_request(&auth.seal_request(&checked).unwrap())
        .unwrap();
    let mut signed: SignedIn = auth.sign_in(checked, user, password, None).unwrap();
    if let Some(organization) = organization {
        signed.organization = Some(organization.into());
    }
    let signed = auth
        .open_signed_in(&auth.seal_signed_in(&signed).unwrap())
        .unwrap();
    let location = auth.approve(&signed, patient).unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    (code_of(&location), verifier)
}

backend_tests! {
    fn a_resident_signs_in_and_the_app_gets_her_record_as_context(store) {
        let auth = authenticator(store);
        accounts(&auth);
        let client = public_client(&auth);
        let (code, verifier) = sign_in(&auth, &client, "resident-zhao", "zhao-secret", "openid fhirUser launch/patient patient/*.rs user/*.rs offline_access", None, None);
        let answer = exchange(&auth, &client, &code, &verifier, REDIRECT).unwrap();
        assert_eq!(answer["patient"], "zhao");
        assert_eq!(answer["scope"], "openid fhirUser launch/patient patient/*.rs offline_access", "a resident holds no user/ scopes");
        assert!(answer["refresh_token"].is_string());
        let id_token = answer["id_token"].as_str().unwrap();
        let id_claims: Value = {
            use base64::Engine;
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(id_token.split('.').nth(1).unwrap()).unwrap()).unwrap()
        };
        assert_eq!(id_claims["fhirUser"], "Patient/zhao");
        assert_eq!(id_claims["aud"], client.as_str());
        let caller = auth.authenticate(answer["access_token"].as_str().unwrap(), None, None, None, "r").unwrap();
        assert_eq!(caller.actor, Actor::User("Patient/zhao".into()));
        assert_eq!(caller.patient.as_deref(), Some("Patient/zhao"));
        assert_eq!(caller.client_id.as_deref(), Some(client.as_str()));
    }

    fn a_practitioner_at_two_hospitals_acts_for_the_one_chosen_and_names_the_patient(store) {
        let auth = authenticator(store);
        accounts(&auth);
        let client = public_client(&auth);
        let (verifier, challenge) = pkce();
        let checked = auth.check_authorize(&request(&client, &challenge, "launch/patient user/*.rs"), &[]).unwrap();
        let signed = auth.sign_in(checked, "dr-li", "li-secret", None).unwrap();
        assert_eq!(signed.organization, None, "two organisations: a choice to make");
        assert_eq!(auth.organizations_of(&signed).unwrap(), ["Organization/hospital-a", "Organization/hospital-b"]);
        let mut chosen = signed.clone();
        chosen.organization = Some("Organization/hospital-b".into());
        assert!(auth.needs_patient(&chosen).unwrap());
        assert!(matches!(auth.approve(&chosen, None), Err(AuthorizeRefusal::Page(_))));
        let location = auth.approve(&chosen, Some("Patient/zhao")).unwrap();
        let answer = exchange(&auth, &client, &code_of(&location), &verifier, REDIRECT).unwrap();
        assert_eq!(answer["patient"], "zhao");
        let caller = auth.authenticate(answer["access_token"].as_str().unwrap(), None, None, None, "r").unwrap();
        assert_eq!(caller.actor, Actor::User("Practitioner/li".into()));
        assert_eq!(caller.organization.as_deref(), Some("Organization/hospital-b"));
        // An organisation the practitioner has no role at is refused.
        let mut forged = signed;
        forged.organization = Some("Organization/hospital-c".into());
        assert!(matches!(auth.approve(&forged, Some("Patient/zhao")), Err(AuthorizeRefusal::Redirect(l)) if l.contains("access_denied")));

        // Named in the request instead: nothing to ask.
        let mut params = request(&client, &challenge, "launch/patient user/*.rs");
        params.push(("patient".into(), "Patient/zhao".into()));
        let checked = auth.check_authorize(&params, &[]).unwrap();
        let signed = auth.sign_in(checked, "dr-wang", "wang-secret", None).unwrap();
        assert!(!auth.needs_patient(&signed).unwrap());
        let answer = exchange(&auth, &client, &code_of(&auth.approve(&signed, None).unwrap()), &verifier, REDIRECT).unwrap();
        assert_eq!(answer["patient"], "zhao");
    }

    fn an_ehr_launch_carries_its_patient(store) {
        let auth = authenticator(store);
        accounts(&auth);
        let client = public_client(&auth);
        let launch = auth.create_launch("Patient/zhao", 300).unwrap();
        let (verifier, challenge) = pkce();
        let mut params = request(&client, &challenge, "launch user/*.rs");
        params.push(("launch".into(), launch));
        let checked = auth.check_authorize(&params, &[]).unwrap();
        assert_eq!(checked.launch_patient.as_deref(), Some("Patient/zhao"));
        let signed = auth.sign_in(checked, "dr-wang", "wang-secret", None).unwrap();
        let answer = exchange(&auth, &client, &code_of(&auth.approve(&signed, None).unwrap()), &verifier, REDIRECT).unwrap();
        assert_eq!(answer["patient"], "zhao");
        let mut unknown = request(&client, &challenge, "launch user/*.rs");
        unknown.push(("launch".into(), "made-up".into()));
        assert!(matches!(auth.check_authorize(&unknown, &[]), Err(AuthorizeRefusal::Redirect(l)) if l.contains("invalid_request")));
    }

    fn pkce_and_redirect_mismatches_and_code_reuse_are_refused(store) {
        let auth = authenticator(store);
        accounts(&auth);
        let client = public_client(&auth);
        let scope = "user/*.rs offline_access";
        let (code, verifier) = sign_in(&auth, &client, "dr-wang", "wang-secret", scope, None, None);
        let wrong_verifier = format!("{}y", &verifier[..verifier.len() - 1]);
        assert_eq!(exchange(&auth, &client, &code, &wrong_verifier, REDIRECT).unwrap_err().code, "invalid_grant");
        // The failed attempt used the code up.
        assert_eq!(exchange(&auth, &client, &code, &verifier, REDIRECT).unwrap_err().code, "invalid_grant");

        let (code, verifier) = sign_in(&auth, &client, "dr-wang", "wang-secret", scope, None, None);
        assert_eq!(exchange(&auth, &client, &code, &verifier, "https://app.example.org/callback/").unwrap_err().code, "invalid_grant");

        // Used once, then again: the second use revokes what the first got.
        let (code, verifier) = sign_in(&auth, &client, "dr-wang", "wang-secret", scope, None, None);
        let answer = exchange(&auth, &client, &code, &verifier, REDIRECT).unwrap();
        let access = answer["access_token"].as_str().unwrap();
        assert!(auth.authenticate(access, None, None, None, "r").is_ok());
        assert_eq!(exchange(&auth, &client, &code, &verifier, REDIRECT).unwrap_err().code, "invalid_grant");
        assert!(matches!(auth.authenticate(access, None, None, None, "r"), Err(AuthError::InvalidToken(_))));
        let refresh = answer["refresh_token"].as_str().unwrap();
        let refreshed = auth.token(&form(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", &client)]), &[]);
        assert_eq!(refreshed.unwrap_err().code, "invalid_grant");

        // Requests the server refuses before sign-in.
        let (_, challenge) = pkce();
        let check = |params: Vec<(String, String)>| auth.check_authorize(&params, &[]);
        let without = |name: &str| request(&client, &challenge, scope).into_iter().filter(|(n, _)| n != name).collect::<Vec<_>>();
        let with = |name: &str, value: &str| {
            let mut params = without(name);
            params.push((name.to_owned(), value.to_owned()));
            params
        };
        assert!(matches!(check(with("redirect_uri", "https://evil.example.org/cb")), Err(AuthorizeRefusal::Page(_))), "never redirected to an unregistered URI");
        assert!(matches!(check(with("client_id", "nobody")), Err(AuthorizeRefusal::Page(_))));
        for (params, error) in [
            (without("code_challenge"), "invalid_request"),
            (with("code_challenge_method", "plain"), "invalid_request"),
            (with("code_challenge", "short"), "invalid_request"),
            (with("response_type", "token"), "unsupported_response_type"),
            (with("aud", "https://elsewhere.example.org/fhir"), "invalid_request"),
            (with("scope", "system/*.rs"), "invalid_scope"),
            (with("scope", "bogus//"), "invalid_scope"),
        ] {
            match check(params) {
                Err(AuthorizeRefusal::Redirect(location)) => {
                    assert!(location.starts_with(REDIRECT) && location.contains(&format!("error={error}")) && location.contains("state=st%26ate"), "{location}");
                }
                other => panic!("{error}: {other:?}"),
            }
        }
    }

    fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family(store) {
        let auth = authenticator(store);
        accounts(&auth);
        let client = public_client(&auth);
        let (code, verifier) = sign_in(&auth, &client, "dr-wang", "wang-secret", "user/*.rs offline_access", None, None);
        let first = exchange(&auth, &client, &code, &verifier, REDIRECT).unwrap();
        let refresh = |token: &str| auth.token(&form(&[("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", &client)]), &[]);
        let second = refresh(first["refresh_token"].as_str().unwrap()).unwrap();
        assert_ne!(second["refresh_token"], first["refresh_token"]);
        assert_eq!(auth.introspect(second["refresh_token"].as_str().unwrap()).unwrap()["active"], true);
        let third = refresh(second["refresh_token"].as_str().unwrap()).unwrap();
        let live = third["access_token"].as_str().unwrap();
        assert!(auth.authenticate(live, None, None, None, "r").is_ok());
        // The second refresh token again (stolen and used after its owner): the family dies.
        assert_eq!(refresh(second["refresh_token"].as_str().unwrap()).unwrap_err().code, "invalid_grant");
        assert!(matches!(auth.authenticate(live, None, None, None, "r"), Err(AuthError::InvalidToken(_))));
        assert!(matches!(auth.authenticate(first["access_token"].as_str().unwrap(), None, None, None, "r"), Err(AuthError::InvalidToken(_))));
        assert_eq!(refresh(third["refresh_token"].as_str().unwrap()).unwrap_err().code, "invalid_grant");

        // Revoking a refresh token stops its family too; narrowing scope on refresh works.
        let (code, verifier) = sign_in(&auth, &client, "dr-wang", "wang-secret", "user/*.rs offline_access", None, None);
        let answer = exchange(&auth, &client, &code, &verifier, REDIRECT).unwrap();
        let narrowed = auth.token(&form(&[("grant_type", "refresh_token"), ("refresh_token", answer["refresh_token"].as_str().unwrap()), ("client_id", &client), ("scope", "user/Patient.rs")]), &[]).unwrap();
        assert_eq!(narrowed["scope"], "user/Patient.rs");
        auth.revoke(narrowed["refresh_token"].as_str().unwrap()).unwrap();
        assert!(matches!(auth.authenticate(narrowed["access_token"].as_str().unwrap(), None, None, None, "r"), Err(AuthError::InvalidToken(_))));
        // Another client cannot use it.
        let other = public_client(&auth);
        let (code, verifier) = sign_in(&auth, &client, "dr-wang", "wang-secret", "user/*.rs offline_access", None, None);
        let answer = exchange(&auth, &client, &code, &verifier, REDIRECT).unwrap();
        let stolen = auth.token(&form(&[("grant_type", "refresh_token"), ("refresh_token", answer["refresh_token"].as_str().unwrap()), ("client_id", &other)]), &[]);
        assert_eq!(stolen.unwrap_err().code, "invalid_grant");
    }

    fn failed_sign_ins_are_throttled(store) {
        let auth = authenticator(store);
        accounts(&auth);
        let client = public_client(&auth);
        let (_, challenge) = pkce();
        let checked = auth.check_authorize(&request(&client, &challenge, "user/*.rs"), &[]).unwrap();
        let address = Some("192.0.2.7".parse().unwrap());
        for _ in 0..5 {
            assert!(matches!(auth.sign_in(checked.clone(), "dr-wang", "wrong", address), Err(SignInRefusal::WrongCredentials)));
        }
        assert!(matches!(auth.sign_in(checked.clone(), "dr-wang", "wang-secret", address), Err(SignInRefusal::Throttled(s)) if s > 0));
        // An unknown name and a wrong password read the same.
        assert!(matches!(auth.sign_in(checked.clone(), "nobody", "x", None), Err(SignInRefusal::WrongCredentials)));
        assert!(auth.sign_in(checked, "dr-li", "li-secret", address).is_ok(), "another account from the same address");
    }
}
