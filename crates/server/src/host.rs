//! Which `Host` the server answers for. With no public base URL configured, links (`Location`,
//! Bundle links, export manifests) are built from the request's `Host`, so a request naming
//! another host would have the server hand out links to it. Only loopback names and the
//! configured `allowed_hosts` are answered then; anything else is refused with 421. Proxy
//! headers (`X-Forwarded-*`, `Forwarded`) are never read: behind a proxy, configure
//! `public_base`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use axum::http::{HeaderMap, header};
use fhir_model::IssueCode;

use crate::{ApiError, ServerConfig};

/// A host the server answers for when no public base is set: `hie.example.org` (any port),
/// `10.0.0.5:8080` (that port only) or `[2001:db8::1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// Lower-cased; an IPv6 address keeps its brackets.
    name: String,
    port: Option<u16>,
}

impl AllowedHost {
    pub fn parse(text: &str) -> Result<AllowedHost, String> {
        let (name, port) = split_host(text).ok_or_else(|| {
            format!(
                "'{text}' is not a host name or address with an optional port \
                 (such as hie.example.org, 10.0.0.5:8080 or [2001:db8::1])"
            )
        })?;
        Ok(AllowedHost { name, port })
    }

    /// The host as a browser names it in `Host` when the server listens on `listening_port`
    /// (its own port when it has one).
    pub(crate) fn authority(&self, listening_port: u16) -> String {
        crate::viewer::authority(&self.name, self.port.unwrap_or(listening_port))
    }

    fn admits(&self, name: &str, port: Option<u16>) -> bool {
        self.name == name && self.port.is_none_or(|wanted| port == Some(wanted))
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The FHIR base URL links in the answer to this request start with.
pub(crate) fn link_base(headers: &HeaderMap, config: &ServerConfig) -> Result<String, ApiError> {
    if let Some(base) = &config.public_base {
        return Ok(base.trim_end_matches('/').to_owned());
    }
    // HTTP/1.0 clients may send no Host; a link to localhost points nowhere else.
    let Some(host) = headers.get(header::HOST) else {
        return Ok("http://localhost/fhir".to_owned());
    };
    let Some((text, (name, port))) = host
        .to_str()
        .ok()
        .and_then(|text| Some((text, split_host(text)?)))
    else {
        return Err(ApiError::bad_request(
            IssueCode::Invalid,
            "the Host header is not a host name or address with an optional port",
        ));
    };
    if is_loopback(&name)
        || config
            .allowed_hosts
            .iter()
            .any(|allowed| allowed.admits(&name, port))
    {
        Ok(format!("http://{text}/fhir"))
    } else {
        Err(ApiError::MisdirectedRequest(format!(
            "this server does not answer for host '{text}': with no public_base configured it \
             answers only loopback hosts and those in allowed_hosts. Operators: set public_base \
             to the FHIR base URL clients use, or add the host to allowed_hosts"
        )))
    }
}

/// A `Host` value split into its lower-cased name and its port; `None` when it is not one.
fn split_host(text: &str) -> Option<(String, Option<u16>)> {
    let (name, port) = match text.strip_prefix('[') {
        Some(bracketed) => {
            let (address, after) = bracketed.split_once(']')?;
            address.parse::<Ipv6Addr>().ok()?;
            let port = if after.is_empty() {
                None
            } else {
                Some(after.strip_prefix(':')?)
            };
            (format!("[{address}]"), port)
        }
        None => {
            let (name, port) = match text.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (text, None),
            };
            let is_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
            if !is_name {
                return None;
            }
            (name.to_owned(), port)
        }
    };
    let port = match port {
        None => None,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((name.to_ascii_lowercase(), port))
}

/// `localhost`, an address in 127.0.0.0/8, or `[::1]` (also as an IPv4-mapped address).
fn is_loopback(name: &str) -> bool {
    if name == "localhost" {
        return true;
    }
    if let Some(address) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return address.parse::<Ipv6Addr>().is_ok_and(|address| {
            address.is_loopback() || address.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        });
    }
    name.parse::<Ipv4Addr>()
        .is_ok_and(|address| address.is_loopback())
}
