//! The authorization request (SMART App Launch: standalone and EHR launch, PKCE with S256
//! required), checked once when it arrives and then carried, sealed, through the sign-in pages:
//! credentials, the organisation when a practitioner has roles at several, the approval of the
//! scopes (and the patient, for a practitioner's standalone `launch/patient`). Approval stores
//! a one-time code and answers the redirect that hands it to the client.
//!
//! A request whose client or redirect URI is not registered is never redirected (an open
//! redirector otherwise): it is refused on a page. Every other error goes back to the client's
//! redirect URI with RFC 6749's error code and the state.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::accounts::{AccountKind, SignInFailure};
use super::clients::Client;
use super::grants::{CodeRecord, Form, printable};
use super::kv::{digest, names};
use super::tokens::Grant;
use super::{AuthError, Authenticator, OAuthError, now, random_id, random_token};
use crate::scope::{Context, Scope, Scopes};

const REQUEST_PURPOSE: &str = "authorize/request";
const SIGNED_IN_PURPOSE: &str = "authorize/signed-in";

/// A checked authorization request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: String,
    /// The client's registered name, to show on the pages.
    pub client_name: Option<String>,
    pub redirect_uri: String,
    /// The scopes asked for that the client is registered for, v2 spelling.
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: String,
    /// The patient of an EHR launch's `launch` parameter.
    pub launch_patient: Option<String>,
    /// A practitioner's standalone launch may name the patient in the request (`patient`);
    /// the approval page then need not ask.
    #[serde(default)]
    pub patient_hint: Option<String>,
    pub nonce: Option<String>,
}

/// A request that cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeRefusal {
    /// Say so on a page: the client or its redirect URI is not known.
    Page(String),
    /// Send the user back to the client with an error: this URL.
    Redirect(String),
}

/// Who signed in, for which request, acting for which organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedIn {
    pub request: AuthorizeRequest,
    pub account: String,
    /// The organisation chosen (a practitioner with several).
    pub organization: Option<String>,
}

/// Why a sign-in on the login page failed.
#[derive(Debug)]
pub enum SignInRefusal {
    /// Wrong name or password (never which).
    WrongCredentials,
    /// Too many failed attempts: try again after this many seconds.
    Throttled(i64),
    Error(AuthError),
}

/// `uri` with `params` added to its query.
pub fn redirect_with(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_owned();
    let mut separator = if uri.contains('?') { '&' } else { '?' };
    for (name, value) in params {
        out.push(separator);
        separator = '&';
        out.extend(form_encode(name));
        out.push('=');
        out.extend(form_encode(value));
    }
    out
}

fn form_encode(text: &str) -> impl Iterator<Item = char> + '_ {
    text.bytes().flat_map(|b| {
        let plain = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
        let chars: Vec<char> = if plain {
            vec![b as char]
        } else {
            format!("%{b:02X}").chars().collect()
        };
        chars
    })
}

impl Authenticator {
    /// Checks an authorization request (its query). `fhir_bases` are the FHIR base URLs the
    /// server is reached at, one of which the request's `aud` must name.
    pub fn check_authorize(
        &self,
        params: &[(String, String)],
        fhir_bases: &[String],
    ) -> Result<AuthorizeRequest, AuthorizeRefusal> {
        let form = Form::new(params).map_err(|e| AuthorizeRefusal::Page(e.description))?;
        let client_id = form.get("client_id").ok_or_else(|| {
            AuthorizeRefusal::Page("the request names no client (client_id)".into())
        })?;
        let client = match self.client(client_id) {
            Ok(Some(client)) => client,
            Ok(None) => {
                return Err(AuthorizeRefusal::Page(format!(
                    "the client {} is not registered here",
                    printable(client_id)
                )));
            }
            Err(error) => {
                tracing::error!(%error, "reading a client");
                return Err(AuthorizeRefusal::Page(
                    "the server failed; try again later".into(),
                ));
            }
        };
        let redirect_uri = match form.get("redirect_uri") {
            Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
            Some(_) => {
                return Err(AuthorizeRefusal::Page(
                    "redirect_uri is not one the client registered".into(),
                ));
            }
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => return Err(AuthorizeRefusal::Page("redirect_uri is required".into())),
        };
        let state = form.get("state").map(str::to_owned);
        let back = |error: OAuthError| {
            let mut params = vec![
                ("error", error.code),
                ("error_description", error.description.as_str()),
            ];
            if let Some(state) = &state {
                params.push(("state", state.as_str()));
            }
            AuthorizeRefusal::Redirect(redirect_with(&redirect_uri, &params))
        };
        self.check_request(&form, &client, fhir_bases)
            .map(|(scope, code_challenge, launch_patient)| AuthorizeRequest {
                client_id: client.client_id.clone(),
                client_name: client.client_name.clone(),
                redirect_uri: redirect_uri.clone(),
                scope,
                state: state.clone(),
                code_challenge,
                launch_patient,
                patient_hint: form
                    .get("patient")
                    .filter(|p| p.len() <= 80)
                    .map(str::to_owned),
                nonce: form.get("nonce").map(|n| n.chars().take(256).collect()),
            })
            .map_err(back)
    }

    /// (scope, code challenge, launch patient) of a request from a known client.
    fn check_request(
        &self,
        form: &Form<'_>,
        client: &Client,
        fhir_bases: &[String],
    ) -> Result<(String, String, Option<String>), OAuthError> {
        if form.get("response_type") != Some("code") {
            return Err(OAuthError::new(
                "unsupported_response_type",
                "response_type must be code",
            ));
        }
        if !client.allows_grant("authorization_code") {
            return Err(OAuthError::new(
                "unauthorized_client",
                "the client is not registered for the authorization code grant",
            ));
        }
        let challenge = form.get("code_challenge").ok_or_else(|| {
            OAuthError::invalid_request("PKCE is required: code_challenge is missing")
        })?;
        if form.get("code_challenge_method") != Some("S256") {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            ));
        }
        if challenge.len() != 43
            || !challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(OAuthError::invalid_request(
                "code_challenge is not an S256 challenge",
            ));
        }
        let aud = form.required("aud")?;
        let aud = aud.trim_end_matches('/');
        if aud != self.config.audience.trim_end_matches('/')
            && !fhir_bases
                .iter()
                .any(|base| base.trim_end_matches('/') == aud)
        {
            return Err(OAuthError::invalid_request(
                "aud is not this server's FHIR base URL",
            ));
        }
        let asked = Scopes::parse(form.get("scope").unwrap_or(""))
            .map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
        let allowed = Scopes::parse(&client.scope).unwrap_or_default();
        let scope = asked.within(&allowed);
        if scope.is_empty() {
            return Err(OAuthError::invalid_scope(
                "none of the scopes asked for are ones the client is registered for",
            ));
        }
        let launch_patient = match form.get("launch") {
            Some(launch) if launch.len() <= 128 => {
                let context: Option<LaunchContext> = self
                    .kv
                    .get(&format!("{}{}", names::LAUNCH, digest(launch)))
                    .map_err(OAuthError::from)?;
                match context {
                    Some(context) if context.expires >= now() => Some(context.patient),
                    _ => {
                        return Err(OAuthError::invalid_request(
                            "the launch is unknown or expired",
                        ));
                    }
                }
            }
            Some(_) => {
                return Err(OAuthError::invalid_request(
                    "the launch is unknown or expired",
                ));
            }
            None => None,
        };
        Ok((scope.to_v2_string(), challenge.to_owned(), launch_patient))
    }

    /// The request sealed into the login form.
    pub fn seal_request(&self, request: &AuthorizeRequest) -> Result<String, AuthError> {
        self.seal.seal(REQUEST_PURPOSE, request)
    }

    /// The request the login form carried, if this server sealed it recently.
    pub fn open_request(&self, sealed: &str) -> Option<AuthorizeRequest> {
        self.seal
            .open(REQUEST_PURPOSE, sealed, self.config.form_seconds)
    }

    pub fn seal_signed_in(&self, signed_in: &SignedIn) -> Result<String, AuthError> {
        self.seal.seal(SIGNED_IN_PURPOSE, signed_in)
    }

    pub fn open_signed_in(&self, sealed: &str) -> Option<SignedIn> {
        self.seal
            .open(SIGNED_IN_PURPOSE, sealed, self.config.form_seconds)
    }

    /// Checks the login form's credentials (throttled per account and address).
    pub fn sign_in(
        &self,
        request: AuthorizeRequest,
        name: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<SignedIn, SignInRefusal> {
        match self.check_password(name, password, address) {
            Ok(account) => {
                let organizations = account.organizations();
                Ok(SignedIn {
                    request,
                    organization: (organizations.len() == 1).then(|| organizations[0].clone()),
                    account: account.name,
                })
            }
            Err(SignInFailure::Wrong) => Err(SignInRefusal::WrongCredentials),
            Err(SignInFailure::Throttled(seconds)) => Err(SignInRefusal::Throttled(seconds)),
            Err(SignInFailure::Error(error)) => Err(SignInRefusal::Error(error)),
        }
    }

    /// The organisations a signed-in practitioner may choose from (none to choose when fewer
    /// than two).
    pub fn organizations_of(&self, signed_in: &SignedIn) -> Result<Vec<String>, AuthError> {
        Ok(self
            .account(&signed_in.account)?
            .map(|a| a.organizations())
            .unwrap_or_default())
    }

    /// The scopes the signed-in account would be granted: the request's, less those its kind
    /// of account cannot hold (a resident holds no `user/` or `system/` scopes, a practitioner
    /// no `system/` ones).
    pub fn scopes_for(&self, signed_in: &SignedIn) -> Result<Scopes, AuthError> {
        let account = self
            .account(&signed_in.account)?
            .ok_or_else(|| AuthError::InvalidRequest("the account is gone".into()))?;
        let asked = Scopes::parse(&signed_in.request.scope).unwrap_or_default();
        let kept: Vec<String> = asked
            .iter()
            .filter(|scope| match (scope, &account.kind) {
                (Scope::Resource(r), AccountKind::Resident { .. }) => r.context == Context::Patient,
                (Scope::Resource(r), AccountKind::Practitioner { .. }) => {
                    r.context != Context::System
                }
                _ => true,
            })
            .map(ToString::to_string)
            .collect();
        Ok(Scopes::parse_each(kept.iter().map(String::as_str)).unwrap_or_default())
    }

    /// Whether the approval page must ask which patient: a practitioner's standalone launch
    /// asking for `launch/patient`.
    pub fn needs_patient(&self, signed_in: &SignedIn) -> Result<bool, AuthError> {
        let account = self.account(&signed_in.account)?;
        Ok(signed_in.request.launch_patient.is_none()
            && signed_in.request.patient_hint.is_none()
            && matches!(
                account.map(|a| a.kind),
                Some(AccountKind::Practitioner { .. })
            )
            && self.scopes_for(signed_in)?.contains(&Scope::LaunchPatient))
    }

    /// The user approved: stores a one-time code and answers the redirect to the client.
    /// `patient` is the one a practitioner chose (`Patient/ID` or `ID`).
    pub fn approve(
        &self,
        signed_in: &SignedIn,
        patient: Option<&str>,
    ) -> Result<String, AuthorizeRefusal> {
        let request = &signed_in.request;
        let back = |error: OAuthError| {
            let mut params = vec![
                ("error", error.code),
                ("error_description", error.description.as_str()),
            ];
            if let Some(state) = &request.state {
                params.push(("state", state.as_str()));
            }
            AuthorizeRefusal::Redirect(redirect_with(&request.redirect_uri, &params))
        };
        let failed = |error: AuthError| {
            tracing::error!(%error, "approving an authorization request");
            back(OAuthError::new(
                "server_error",
                "the server failed; try again later",
            ))
        };
        let account = self
            .account(&signed_in.account)
            .map_err(failed)?
            .ok_or_else(|| back(OAuthError::new("access_denied", "the account is gone")))?;
        let context = account
            .context(signed_in.organization.as_deref())
            .map_err(|e| back(OAuthError::new("access_denied", e.to_string())))?;
        let scopes = self.scopes_for(signed_in).map_err(failed)?;
        let patient = match (&account.kind, &request.launch_patient) {
            (AccountKind::Resident { .. }, _) => context.patient.clone(),
            (_, Some(launched)) => Some(launched.clone()),
            _ if scopes.contains(&Scope::LaunchPatient) => {
                let chosen = patient
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .or(request.patient_hint.as_deref())
                    .ok_or_else(|| {
                        AuthorizeRefusal::Page("choose the patient for this app".into())
                    })?;
                let reference = if chosen.starts_with("Patient/") {
                    chosen.to_owned()
                } else {
                    format!("Patient/{chosen}")
                };
                let id = &reference["Patient/".len()..];
                if id.is_empty()
                    || id.len() > 64
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                {
                    return Err(AuthorizeRefusal::Page(
                        "the patient is not Patient/ID".into(),
                    ));
                }
                Some(reference)
            }
            _ => None,
        };
        let code = random_token(32).map_err(failed)?;
        let record = CodeRecord {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            grant: Grant {
                subject: account.name.clone(),
                kind: account.subject_kind(),
                client_id: Some(request.client_id.clone()),
                fhir_user: context.fhir_user,
                patient,
                organization: context.organization,
                scope: scopes.to_v2_string(),
                family: random_id().map_err(failed)?,
            },
            nonce: request.nonce.clone(),
            expires: now() + self.config.code_seconds,
        };
        self.kv
            .put(&format!("{}{}", names::CODE, digest(&code)), &record)
            .map_err(failed)?;
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            params.push(("state", state.as_str()));
        }
        Ok(redirect_with(&request.redirect_uri, &params))
    }

    /// The user declined: the redirect that tells the client.
    pub fn deny(&self, request: &AuthorizeRequest) -> String {
        let mut params = vec![
            ("error", "access_denied"),
            ("error_description", "the user declined"),
        ];
        if let Some(state) = &request.state {
            params.push(("state", state.as_str()));
        }
        redirect_with(&request.redirect_uri, &params)
    }

    /// An EHR launch for `patient`: the `launch` value to hand the app, valid for `seconds`.
    pub fn create_launch(&self, patient: &str, seconds: i64) -> Result<String, AuthError> {
        let launch = random_token(16)?;
        self.kv.put(
            &format!("{}{}", names::LAUNCH, digest(&launch)),
            &LaunchContext {
                patient: patient.to_owned(),
                expires: now() + seconds,
            },
        )?;
        Ok(launch)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LaunchContext {
    patient: String,
    expires: i64,
}
