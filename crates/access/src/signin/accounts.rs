//! Accounts: who may sign in. A practitioner is linked to their `PractitionerRole`s (each
//! naming its `Practitioner` and `Organization`, read when the account is made), a resident to
//! their `Patient`, an administrator to nothing. Passwords are kept as argon2id hashes.

use std::net::IpAddr;

use caller::Caller;
use repository::Repository;
use serde::{Deserialize, Serialize};

use super::kv::names;
use super::password::{self, MAX_PASSWORD_BYTES};
use super::tokens::SubjectKind;
use super::{AuthError, Authenticator, now};

/// One of a practitioner's roles, with what it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleLink {
    /// `PractitionerRole/ID`.
    pub role: String,
    /// `Organization/ID`, the role's `organization`.
    pub organization: Option<String>,
    /// `Practitioner/ID`, the role's `practitioner`.
    pub practitioner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountKind {
    Practitioner { roles: Vec<RoleLink> },
    Resident { patient: String },
    Administrator,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub kind: AccountKind,
    /// argon2id, PHC string; `None` for an account that signs in only through an external
    /// provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// The `sub` of this person at the external OpenID Connect provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_subject: Option<String>,
    pub created: i64,
}

impl Account {
    pub(crate) fn subject_kind(&self) -> SubjectKind {
        match self.kind {
            AccountKind::Practitioner { .. } => SubjectKind::Practitioner,
            AccountKind::Resident { .. } => SubjectKind::Resident,
            AccountKind::Administrator => SubjectKind::Administrator,
        }
    }

    /// The scopes a token for this account carries when none are asked for: an
    /// administrator's full access, a practitioner's everything they may see, a resident's
    /// own record.
    pub(crate) fn default_scope(&self) -> &'static str {
        match self.kind {
            AccountKind::Administrator => "system/*.cruds",
            AccountKind::Practitioner { .. } => "user/*.cruds",
            AccountKind::Resident { .. } => "patient/*.cruds",
        }
    }

    /// The `fhirUser` of this account: the practitioner or the resident's patient.
    pub fn fhir_user(&self) -> Option<String> {
        match &self.kind {
            AccountKind::Practitioner { roles } => {
                roles.iter().find_map(|role| role.practitioner.clone())
            }
            AccountKind::Resident { patient } => Some(patient.clone()),
            AccountKind::Administrator => None,
        }
    }

    /// The distinct organisations of a practitioner's roles, in the roles' order.
    pub fn organizations(&self) -> Vec<String> {
        let mut organizations: Vec<String> = Vec::new();
        if let AccountKind::Practitioner { roles } = &self.kind {
            for organization in roles.iter().filter_map(|r| r.organization.clone()) {
                if !organizations.contains(&organization) {
                    organizations.push(organization);
                }
            }
        }
        organizations
    }

    /// The context of a token for this account acting for `chosen` (one of its
    /// organisations; the first when `None`).
    pub(crate) fn context(&self, chosen: Option<&str>) -> Result<TokenContext, AuthError> {
        match &self.kind {
            AccountKind::Practitioner { .. } => {
                let organizations = self.organizations();
                let organization = match chosen {
                    Some(chosen) if organizations.iter().any(|o| o == chosen) => {
                        Some(chosen.to_owned())
                    }
                    Some(chosen) => {
                        return Err(AuthError::InvalidRequest(format!(
                            "{} has no role at {chosen}",
                            self.name
                        )));
                    }
                    None => organizations.first().cloned(),
                };
                Ok(TokenContext {
                    organization,
                    fhir_user: self.fhir_user(),
                    patient: None,
                })
            }
            AccountKind::Resident { patient } => Ok(TokenContext {
                organization: None,
                fhir_user: Some(patient.clone()),
                patient: Some(patient.clone()),
            }),
            AccountKind::Administrator => Ok(TokenContext::default()),
        }
    }
}

/// What a token for an account says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TokenContext {
    pub organization: Option<String>,
    pub fhir_user: Option<String>,
    pub patient: Option<String>,
}

/// Account names: letters, digits, `.`, `_`, `@`, `-`, at most 64.
pub(crate) fn is_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_@".contains(&b))
}

/// `Type/id` with the type named and a FHIR id.
fn is_reference(reference: &str, resource_type: &str) -> bool {
    reference
        .strip_prefix(resource_type)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
}

impl Authenticator {
    /// Adds (or replaces) an account, hashing its password at the configured cost.
    pub fn add_account(
        &self,
        name: &str,
        kind: AccountKind,
        password: Option<&str>,
    ) -> Result<Account, AuthError> {
        let invalid = |m: String| Err(AuthError::InvalidRequest(m));
        if !is_account_name(name) {
            return invalid(format!(
                "'{name}' is not an account name (letters, digits, . _ @ -, at most 64)"
            ));
        }
        match &kind {
            AccountKind::Resident { patient } if !is_reference(patient, "Patient") => {
                return invalid(format!("'{patient}' is not Patient/ID"));
            }
            AccountKind::Practitioner { roles } if roles.is_empty() => {
                return invalid("a practitioner needs at least one PractitionerRole".into());
            }
            _ => {}
        }
        let password_hash = match password {
            Some(password) if password.is_empty() || password.len() > MAX_PASSWORD_BYTES => {
                return invalid(format!("a password has 1 to {MAX_PASSWORD_BYTES} bytes"));
            }
            Some(password) => Some(password::hash(password, self.config.password)?),
            None => None,
        };
        let account = Account {
            name: name.to_owned(),
            kind,
            password_hash,
            external_subject: None,
            created: now(),
        };
        self.kv
            .put(&format!("{}{name}", names::ACCOUNT), &account)?;
        Ok(account)
    }

    /// Sets the external provider's subject of an account.
    pub fn link_external_subject(&self, name: &str, subject: &str) -> Result<(), AuthError> {
        let mut account = self
            .account(name)?
            .ok_or_else(|| AuthError::InvalidRequest(format!("there is no account {name}")))?;
        account.external_subject = Some(subject.to_owned());
        self.kv.put(&format!("{}{name}", names::ACCOUNT), &account)
    }

    /// Removes an account; its tokens live on until they expire.
    pub fn remove_account(&self, name: &str) -> Result<bool, AuthError> {
        let existed = self.account(name)?.is_some();
        if existed {
            self.kv.delete(&format!("{}{name}", names::ACCOUNT))?;
        }
        Ok(existed)
    }

    /// Adds the first administrator when no account exists yet, with a random password that
    /// is answered once; `None` when there already are accounts.
    pub fn bootstrap_administrator(&self, name: &str) -> Result<Option<String>, AuthError> {
        if !self
            .kv
            .store()
            .checkpoints_with_prefix(names::ACCOUNT)?
            .is_empty()
        {
            return Ok(None);
        }
        let password = super::random_token(18)?;
        let account = Account {
            name: name.to_owned(),
            kind: AccountKind::Administrator,
            password_hash: Some(password::hash(&password, self.config.password)?),
            external_subject: None,
            created: now(),
        };
        // Two servers starting together: only one makes it.
        if self
            .kv
            .insert_if_absent(&format!("{}{name}", names::ACCOUNT), &account)?
        {
            Ok(Some(password))
        } else {
            Ok(None)
        }
    }

    /// The account whose password this is, throttled per account and per address. Unknown
    /// accounts cost a hash too, so timing does not tell which names exist.
    pub(crate) fn check_password(
        &self,
        name: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<Account, SignInFailure> {
        let now = now();
        if let Some(wait) = self.throttle.blocked(name, address, now) {
            tracing::warn!(
                account = name,
                ?address,
                "sign-in refused: too many failed attempts"
            );
            return Err(SignInFailure::Throttled(wait.max(1)));
        }
        let account = if is_account_name(name) {
            self.account(name).map_err(SignInFailure::Error)?
        } else {
            None
        };
        let hash = account.as_ref().and_then(|a| a.password_hash.as_deref());
        let matches = match hash {
            Some(hash) => password::verify(password, hash),
            None => {
                let _ = password::verify(password, &self.dummy_hash());
                false
            }
        };
        match (matches, account) {
            (true, Some(account)) => {
                self.throttle.succeeded(name);
                tracing::info!(account = name, ?address, "signed in");
                Ok(account)
            }
            _ => {
                self.throttle.failed(name, address, now);
                tracing::warn!(
                    account = name,
                    ?address,
                    "sign-in failed: wrong name or password"
                );
                Err(SignInFailure::Wrong)
            }
        }
    }

    /// A hash of nothing at the configured cost, made once, that unknown names are checked
    /// against.
    fn dummy_hash(&self) -> String {
        self.dummy_hash
            .get_or_init(|| {
                password::hash("no such account", self.config.password).unwrap_or_default()
            })
            .clone()
    }

    /// Resolves `PractitionerRole/ID` through the repository, as `ctx` (the command line's
    /// operator): its practitioner and organisation.
    pub fn resolve_role(
        repository: &Repository,
        ctx: &Caller,
        role: &str,
    ) -> Result<RoleLink, AuthError> {
        if !is_reference(role, "PractitionerRole") {
            return Err(AuthError::InvalidRequest(format!(
                "'{role}' is not PractitionerRole/ID"
            )));
        }
        let id = &role["PractitionerRole/".len()..];
        let record = repository
            .read(ctx, "PractitionerRole", id)
            .map_err(|e| AuthError::InvalidRequest(format!("reading {role}: {e}")))?;
        let resource =
            repository::parse_stored(&record).map_err(|e| AuthError::Internal(e.to_string()))?;
        let reference = |field: &str| {
            resource
                .get(field)
                .and_then(|r| r.get("reference"))
                .and_then(|r| r.as_str())
                .map(str::to_owned)
        };
        Ok(RoleLink {
            role: role.to_owned(),
            organization: reference("organization"),
            practitioner: reference("practitioner"),
        })
    }
}

/// Why a password sign-in failed.
#[derive(Debug)]
pub(crate) enum SignInFailure {
    /// Wrong name or password (never which).
    Wrong,
    /// Too many failures: seconds to wait.
    Throttled(i64),
    Error(AuthError),
}
