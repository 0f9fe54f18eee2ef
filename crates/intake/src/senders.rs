//! Who sends HL7 v2 messages, and what each sender may send.
//!
//! A configured sender is matched by its sending facility (MSH-4) and, when configured, its
//! sending application (MSH-3); it speaks for one institution (an `Organization` of the
//! directory), sends only the message types it is configured for, and brings its own
//! translations of local codes. With no sender configured every sender is accepted and its
//! messages are attributed to the sending facility: an Organization whose id is MSH-4's, or,
//! the first time an unknown facility sends, a new Organization named after it (MSH-3 stands
//! in for a system that leaves MSH-4 empty).

use serde::Deserialize;

use crate::v2::{CodeMaps, Coding};

/// The identifier system of an institution first known by its MSH-4.
pub const FACILITY_SYSTEM: &str = "https://meridian.example/sid/hl7v2-facility";

/// One sender as configured (`[[intake.senders]]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
    /// The sender's name in logs, acknowledgements' errors and the dead-letter store.
    pub name: String,
    /// MSH-4's namespace id (HD-1) or universal id (HD-2).
    pub facility: String,
    /// MSH-3's namespace id, when one facility has several systems configured apart.
    #[serde(default)]
    pub application: Option<String>,
    /// The Organization id the sender speaks for.
    pub organization: String,
    /// The message types accepted: `ADT`, `ORU^R01`; empty for every type the platform maps.
    #[serde(default)]
    pub accept: Vec<String>,
    /// The network addresses the sender connects from; empty for any (MLLP has no
    /// authentication of its own: on an open network, name them).
    #[serde(default)]
    pub addresses: Vec<std::net::IpAddr>,
    /// Translations of the sender's local codes.
    #[serde(default)]
    pub codes: Vec<CodeMapping>,
}

/// One local code and the standard coding it means.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CodeMapping {
    /// The coding system as the sender writes it (`L`, `99LAB`; empty when it writes none).
    #[serde(default)]
    pub system: String,
    pub code: String,
    pub to_system: String,
    pub to_code: String,
    #[serde(default)]
    pub display: Option<String>,
}

/// The sender a message was matched to.
#[derive(Debug, Clone)]
pub struct Sender {
    /// Configured name, or `facility:<MSH-4>` for an unconfigured sender.
    pub key: String,
    /// The Organization id it speaks for.
    pub organization: String,
    /// Whether the Organization may need to be created (an unconfigured facility).
    pub facility_name: Option<String>,
    pub accept: Vec<String>,
    /// Where it may connect from (empty: anywhere).
    pub addresses: Vec<std::net::IpAddr>,
    pub code_maps: CodeMaps,
}

impl Sender {
    /// Whether a message of this type (`ADT`, `A01`) is configured to be accepted.
    pub fn accepts(&self, kind: &str, trigger: &str) -> bool {
        self.accept.is_empty()
            || self.accept.iter().any(|accepted| {
                accepted.eq_ignore_ascii_case(kind)
                    || accepted.eq_ignore_ascii_case(&format!("{kind}^{trigger}"))
            })
    }
}

/// The configured senders; none means every sender is accepted.
#[derive(Debug, Clone, Default)]
pub struct Senders {
    configured: Vec<SenderConfig>,
}

/// Why no sender matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownSender {
    #[error("the message names no sending facility (MSH-4) nor application (MSH-3)")]
    NoFacility,
    #[error("the sending facility '{0}' (MSH-4) is not configured to send to this platform")]
    NotConfigured(String),
}

impl Senders {
    pub fn new(configured: Vec<SenderConfig>) -> Senders {
        Senders { configured }
    }

    pub fn is_open(&self) -> bool {
        self.configured.is_empty()
    }

    /// The sender of a message with this MSH-3 (namespace id) and MSH-4 (namespace id,
    /// universal id).
    pub fn match_sender(
        &self,
        application: Option<&str>,
        facility: (Option<&str>, Option<&str>),
    ) -> Result<Sender, UnknownSender> {
        let names: Vec<&str> = [facility.0, facility.1]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .collect();
        if self.is_open() {
            // A system that leaves MSH-4 empty is known by its application (MSH-3).
            let Some(first) = names
                .first()
                .copied()
                .or(application.map(str::trim).filter(|a| !a.is_empty()))
            else {
                return Err(UnknownSender::NoFacility);
            };
            return Ok(Sender {
                key: format!("facility:{first}"),
                organization: facility_organization_id(first),
                facility_name: Some(first.to_owned()),
                accept: Vec::new(),
                addresses: Vec::new(),
                code_maps: CodeMaps::default(),
            });
        }
        let Some(first) = names.first().copied() else {
            return Err(UnknownSender::NoFacility);
        };
        let found = self.configured.iter().find(|sender| {
            names
                .iter()
                .any(|name| sender.facility.eq_ignore_ascii_case(name))
                && sender.application.as_deref().is_none_or(|wanted| {
                    application.is_some_and(|sent| sent.trim().eq_ignore_ascii_case(wanted))
                })
        });
        let Some(config) = found else {
            return Err(UnknownSender::NotConfigured(first.to_owned()));
        };
        let mut code_maps = CodeMaps::default();
        for mapping in &config.codes {
            code_maps.codes.insert(
                (mapping.system.clone(), mapping.code.clone()),
                Coding {
                    system: mapping.to_system.clone(),
                    code: mapping.to_code.clone(),
                    display: mapping.display.clone(),
                },
            );
        }
        Ok(Sender {
            key: config.name.clone(),
            organization: config.organization.clone(),
            facility_name: None,
            accept: config.accept.clone(),
            addresses: config.addresses.clone(),
            code_maps,
        })
    }
}

/// The Organization id of a facility first known by its MSH-4: `hl7-` and a hash of the name,
/// always, so that an unconfigured sender is held apart from every institution of the
/// directory (a sender naming `county-hosp-520621` in MSH-4 does not write as that hospital:
/// only a configured sender speaks for an institution), and every message from the facility
/// lands with the same one.
pub fn facility_organization_id(facility: &str) -> String {
    format!(
        "hl7-{:016x}",
        xxhash_rust::xxh3::xxh3_64(facility.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_platform_attributes_a_message_to_its_facility() {
        let senders = Senders::default();
        let sender = senders
            .match_sender(Some("HIS"), (Some("GOOD HEALTH"), None))
            .expect("open");
        assert_eq!(sender.key, "facility:GOOD HEALTH");
        assert!(sender.organization.starts_with("hl7-"));
        // Naming an institution of the directory is not speaking for it.
        let named = senders
            .match_sender(None, (Some("county-hosp-520621"), None))
            .unwrap();
        assert_ne!(named.organization, "county-hosp-520621");
        assert!(named.organization.starts_with("hl7-"));
        assert_eq!(
            senders.match_sender(None, (Some(" "), None)).err(),
            Some(UnknownSender::NoFacility)
        );
    }

    #[test]
    fn a_configured_platform_takes_only_its_senders_and_their_types() {
        let senders = Senders::new(vec![SenderConfig {
            name: "county-his".into(),
            facility: "CNTY".into(),
            application: Some("HIS".into()),
            organization: "county-hosp-520621".into(),
            accept: vec!["ADT".into(), "ORU^R01".into()],
            addresses: Vec::new(),
            codes: Vec::new(),
        }]);
        let sender = senders
            .match_sender(Some("his"), (Some("cnty"), None))
            .unwrap();
        assert!(sender.accepts("ADT", "A08"));
        assert!(sender.accepts("ORU", "R01"));
        assert!(!sender.accepts("SIU", "S12"));
        assert_eq!(
            senders
                .match_sender(Some("LIS"), (Some("CNTY"), None))
                .err(),
            Some(UnknownSender::NotConfigured("CNTY".into()))
        );
    }
}
