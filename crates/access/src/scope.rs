//! SMART on FHIR scopes: what a token lets its bearer do. SMART App Launch 2.0 spells resource
//! scopes `context/Type.cruds[?query]` (`patient/Observation.rs?category=laboratory`,
//! `user/*.cruds`, `system/*.rs`); the v1 spellings (`.read`, `.write`, `.*`) are accepted and
//! mean `rs`, `cud` and `cruds`. Other scopes (`openid`, `fhirUser`, `launch/patient`,
//! `offline_access`, ...) ask for sign-in context rather than data.

use std::fmt;

/// Whose data a resource scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// The patient in context (a resident's own record, or the launch patient).
    Patient,
    /// Whatever the signed-in user may see.
    User,
    /// Whatever the client itself may see (SMART Backend Services).
    System,
}

impl Context {
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        }
    }
}

/// A RESTful interaction, as scopes name them: the repository's, whose policy is asked about
/// each one.
pub use repository::Interaction;

/// The scope letter of an interaction (`cruds`).
pub fn letter(interaction: Interaction) -> char {
    match interaction {
        Interaction::Create => 'c',
        Interaction::Read => 'r',
        Interaction::Update => 'u',
        Interaction::Delete => 'd',
        Interaction::Search => 's',
    }
}

/// The interactions a resource scope permits, in `cruds` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions {
    pub create: bool,
    pub read: bool,
    pub update: bool,
    pub delete: bool,
    pub search: bool,
}

impl Permissions {
    pub const ALL: Permissions = Permissions {
        create: true,
        read: true,
        update: true,
        delete: true,
        search: true,
    };

    pub fn permits(self, interaction: Interaction) -> bool {
        match interaction {
            Interaction::Create => self.create,
            Interaction::Read => self.read,
            Interaction::Update => self.update,
            Interaction::Delete => self.delete,
            Interaction::Search => self.search,
        }
    }

    /// Every interaction of `other` is permitted here too.
    pub fn covers(self, other: Permissions) -> bool {
        (self.create || !other.create)
            && (self.read || !other.read)
            && (self.update || !other.update)
            && (self.delete || !other.delete)
            && (self.search || !other.search)
    }

    /// The v2 letters: `cruds` in that order, a subset of them.
    fn parse_v2(text: &str) -> Option<Permissions> {
        let mut permissions = Permissions::default();
        let mut last = 0;
        for c in text.chars() {
            let (rank, flag) = match c {
                'c' => (1, &mut permissions.create),
                'r' => (2, &mut permissions.read),
                'u' => (3, &mut permissions.update),
                'd' => (4, &mut permissions.delete),
                's' => (5, &mut permissions.search),
                _ => return None,
            };
            // The letters come in `cruds` order, each once.
            if rank <= last {
                return None;
            }
            last = rank;
            *flag = true;
        }
        (last > 0).then_some(permissions)
    }

    fn parse_v1(text: &str) -> Option<Permissions> {
        Some(match text {
            "read" => Permissions {
                read: true,
                search: true,
                ..Permissions::default()
            },
            "write" => Permissions {
                create: true,
                update: true,
                delete: true,
                ..Permissions::default()
            },
            "*" => Permissions::ALL,
            _ => return None,
        })
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (on, letter) in [
            (self.create, 'c'),
            (self.read, 'r'),
            (self.update, 'u'),
            (self.delete, 'd'),
            (self.search, 's'),
        ] {
            if on {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// A scope that grants access to resources.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceScope {
    pub context: Context,
    /// The resource type, or `None` for `*`.
    pub resource_type: Option<String>,
    pub permissions: Permissions,
    /// A granular scope's restriction, as search parameters (`category=laboratory`): only
    /// resources that match all of them. Empty for a plain scope.
    pub query: Vec<(String, String)>,
}

impl ResourceScope {
    /// Whether this scope reaches resources of `resource_type`.
    pub fn names_type(&self, resource_type: &str) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|named| named == resource_type)
    }
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}.{}",
            self.context.as_str(),
            self.resource_type.as_deref().unwrap_or("*"),
            self.permissions
        )?;
        for (i, (name, value)) in self.query.iter().enumerate() {
            write!(f, "{}{name}={value}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

/// One scope of a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Resource(ResourceScope),
    OpenId,
    FhirUser,
    Profile,
    /// `launch`: an EHR launch (its context comes from the launch parameter).
    Launch,
    /// `launch/patient`: a standalone launch asks for a patient to be chosen.
    LaunchPatient,
    /// `launch/encounter`.
    LaunchEncounter,
    OfflineAccess,
    OnlineAccess,
}

/// Why a scope is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{scope}` is not a SMART scope: {reason}")]
pub struct ScopeError {
    pub scope: String,
    pub reason: &'static str,
}

/// Scopes longer than this are refused (a hostile token request is not parsed at length).
const MAX_SCOPE_LENGTH: usize = 512;

impl Scope {
    pub fn parse(text: &str) -> Result<Scope, ScopeError> {
        let error = |reason| ScopeError {
            scope: text.chars().take(80).collect(),
            reason,
        };
        if text.len() > MAX_SCOPE_LENGTH {
            return Err(error("it is too long"));
        }
        match text {
            "openid" => return Ok(Scope::OpenId),
            "fhirUser" => return Ok(Scope::FhirUser),
            "profile" => return Ok(Scope::Profile),
            "launch" => return Ok(Scope::Launch),
            "launch/patient" => return Ok(Scope::LaunchPatient),
            "launch/encounter" => return Ok(Scope::LaunchEncounter),
            "offline_access" => return Ok(Scope::OfflineAccess),
            "online_access" => return Ok(Scope::OnlineAccess),
            _ => {}
        }
        let (context, rest) = text
            .split_once('/')
            .ok_or_else(|| error("it names no context (patient/, user/ or system/)"))?;
        let context = match context {
            "patient" => Context::Patient,
            "user" => Context::User,
            "system" => Context::System,
            _ => return Err(error("its context is not patient, user or system")),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (resource_type, permissions) = rest
            .split_once('.')
            .ok_or_else(|| error("it names no permissions (.cruds)"))?;
        let resource_type = match resource_type {
            "*" => None,
            name if is_type_name(name) => Some(name.to_owned()),
            _ => return Err(error("its resource type is not a FHIR type name")),
        };
        let v2 = Permissions::parse_v2(permissions);
        let permissions = match v2.or_else(|| Permissions::parse_v1(permissions)) {
            Some(permissions) => permissions,
            None => {
                return Err(error(
                    "its permissions are neither cruds letters nor read/write/*",
                ));
            }
        };
        let query = match query {
            None => Vec::new(),
            Some(_) if v2.is_none() => {
                return Err(error("a v1 scope takes no query"));
            }
            Some(query) => {
                parse_query(query).ok_or_else(|| error("its query is not name=value pairs"))?
            }
        };
        Ok(Scope::Resource(ResourceScope {
            context,
            resource_type,
            permissions,
            query,
        }))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self {
            Scope::Resource(scope) => return scope.fmt(f),
            Scope::OpenId => "openid",
            Scope::FhirUser => "fhirUser",
            Scope::Profile => "profile",
            Scope::Launch => "launch",
            Scope::LaunchPatient => "launch/patient",
            Scope::LaunchEncounter => "launch/encounter",
            Scope::OfflineAccess => "offline_access",
            Scope::OnlineAccess => "online_access",
        };
        f.write_str(word)
    }
}

fn is_type_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `a=b&c=d` (percent-decoded), every pair with a name.
fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=')?;
        let name = percent_decode(name)?;
        let value = percent_decode(value)?;
        if name.is_empty() || value.is_empty() {
            return None;
        }
        pairs.push((name, value));
    }
    Some(pairs)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The scopes of a token, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes {
    scopes: Vec<Scope>,
}

impl Scopes {
    /// Every scope of a space-separated list (an OAuth `scope` parameter or claim).
    pub fn parse(list: &str) -> Result<Scopes, ScopeError> {
        Scopes::parse_each(list.split_ascii_whitespace())
    }

    /// Every scope of a list (a caller's).
    pub fn parse_each<'a>(list: impl IntoIterator<Item = &'a str>) -> Result<Scopes, ScopeError> {
        let mut scopes = Vec::new();
        for text in list {
            let scope = Scope::parse(text)?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        Ok(Scopes { scopes })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.scopes.iter()
    }

    pub fn contains(&self, scope: &Scope) -> bool {
        self.scopes.contains(scope)
    }

    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// The resource scopes that permit `interaction` on `resource_type` (several when
    /// granular scopes add up: `Observation.rs?category=laboratory` and
    /// `Observation.rs?category=vital-signs` each allow their own).
    pub fn granting(
        &self,
        resource_type: &str,
        interaction: Interaction,
    ) -> impl Iterator<Item = &ResourceScope> {
        let resource_type = resource_type.to_owned();
        self.scopes.iter().filter_map(move |scope| match scope {
            Scope::Resource(scope)
                if scope.names_type(&resource_type) && scope.permissions.permits(interaction) =>
            {
                Some(scope)
            }
            _ => None,
        })
    }

    /// The resource scopes.
    pub fn resource_scopes(&self) -> impl Iterator<Item = &ResourceScope> {
        self.scopes.iter().filter_map(|scope| match scope {
            Scope::Resource(scope) => Some(scope),
            _ => None,
        })
    }

    /// The scopes as the space-separated v2 spelling.
    pub fn to_v2_string(&self) -> String {
        let mut text = String::new();
        for scope in &self.scopes {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&scope.to_string());
        }
        text
    }

    /// The scopes of `self` that `allowed` also grants: a request for scopes narrowed to what
    /// a client is registered for. A resource scope stays when an allowed one of the same
    /// context covers its type, permissions and query (an allowed scope without a query covers
    /// any query).
    pub fn within(&self, allowed: &Scopes) -> Scopes {
        let scopes = self
            .scopes
            .iter()
            .filter(|scope| match scope {
                Scope::Resource(asked) => allowed.resource_scopes().any(|given| {
                    given.context == asked.context
                        && given
                            .resource_type
                            .as_deref()
                            .is_none_or(|t| asked.resource_type.as_deref() == Some(t))
                        && given.permissions.covers(asked.permissions)
                        && (given.query.is_empty() || given.query == asked.query)
                }),
                other => allowed.contains(other),
            })
            .cloned()
            .collect();
        Scopes { scopes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(text: &str) -> ResourceScope {
        match Scope::parse(text).unwrap() {
            Scope::Resource(scope) => scope,
            other => panic!("{text} parsed as {other:?}"),
        }
    }

    #[test]
    fn v2_scopes_read_as_written() {
        let scope = resource("patient/Observation.rs?category=laboratory");
        assert_eq!(scope.context, Context::Patient);
        assert_eq!(scope.resource_type.as_deref(), Some("Observation"));
        assert!(scope.permissions.read && scope.permissions.search);
        assert!(!scope.permissions.create && !scope.permissions.update);
        assert_eq!(
            scope.query,
            vec![("category".to_owned(), "laboratory".to_owned())]
        );
        assert_eq!(
            scope.to_string(),
            "patient/Observation.rs?category=laboratory"
        );
        let all = resource("user/*.cruds");
        assert_eq!(all.resource_type, None);
        assert_eq!(all.permissions, Permissions::ALL);
        assert_eq!(resource("system/*.rs").context, Context::System);
        // A token-style query value with a system is decoded.
        let coded = resource("patient/Observation.rs?code=http%3A%2F%2Floinc.org%7C2345-7");
        assert_eq!(coded.query[0].1, "http://loinc.org|2345-7");
    }

    #[test]
    fn v1_spellings_mean_their_v2_letters() {
        assert_eq!(
            resource("patient/Observation.read").to_string(),
            "patient/Observation.rs"
        );
        assert_eq!(resource("user/*.write").to_string(), "user/*.cud");
        assert_eq!(resource("system/*.*").to_string(), "system/*.cruds");
    }

    #[test]
    fn malformed_scopes_are_refused() {
        for bad in [
            "",
            "patient",
            "patient/Observation",
            "admin/*.rs",
            "patient/observation.rs",
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.x",
            "patient/Observation.",
            "patient/Observation.read?category=laboratory",
            "patient/Observation.rs?category",
            "patient/Observation.rs?=x",
            "patient/Observation.rs?code=%zz",
            "patient/Obs-ervation.rs",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Scope::parse(&format!("patient/{}.rs", "A".repeat(600))).is_err());
    }

    #[test]
    fn granting_finds_the_scopes_for_an_interaction() {
        let scopes = Scopes::parse(
            "openid fhirUser launch/patient patient/Observation.rs?category=laboratory \
             patient/Observation.rs?category=vital-signs patient/Patient.r",
        )
        .unwrap();
        assert_eq!(
            scopes.granting("Observation", Interaction::Search).count(),
            2
        );
        assert_eq!(
            scopes.granting("Observation", Interaction::Create).count(),
            0
        );
        assert_eq!(scopes.granting("Patient", Interaction::Read).count(), 1);
        assert_eq!(scopes.granting("Patient", Interaction::Search).count(), 0);
        assert_eq!(scopes.granting("Condition", Interaction::Read).count(), 0);
        assert!(scopes.contains(&Scope::LaunchPatient));
    }

    #[test]
    fn within_narrows_a_request_to_what_is_allowed() {
        let allowed = Scopes::parse("system/*.rs system/Patient.cruds").unwrap();
        let asked = Scopes::parse(
            "system/Observation.rs system/Patient.cud system/Observation.c user/*.rs openid",
        )
        .unwrap();
        assert_eq!(
            asked.within(&allowed).to_v2_string(),
            "system/Observation.rs system/Patient.cud"
        );
        let granular = Scopes::parse("patient/Observation.rs?category=laboratory").unwrap();
        let plain = Scopes::parse("patient/Observation.rs").unwrap();
        assert_eq!(granular.within(&plain), granular);
        assert!(plain.within(&granular).is_empty());
    }
}
