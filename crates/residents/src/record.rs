//! What matching compares: a person's demographics, folded and romanised once when the record
//! is built, so that comparing two records does no allocation-heavy normalisation. Built from a
//! FHIR Patient or Person, or directly (benchmarks, generated data).

use serde_json::Value;

use crate::chinese::{has_han, romanise, split_han_name};
use crate::gb11643;
use crate::text::{digits, fold};

/// One name: folded text and romanised keys of the family and given parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Name {
    pub family: String,
    pub given: String,
    /// Toneless pinyin or Latin letters: "zhang".
    pub family_key: String,
    pub given_key: String,
}

impl Name {
    pub fn new(family: &str, given: &str) -> Name {
        let family = fold(family).replace(' ', "");
        let given = fold(given);
        // Han given names are written without spaces; Latin ones keep theirs for display only.
        let given = if has_han(&given) {
            given.replace(' ', "")
        } else {
            given
        };
        Name {
            family_key: romanise(&family, true),
            given_key: romanise(&given, false),
            family,
            given,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.family_key.is_empty() && self.given_key.is_empty()
    }
}

/// A calendar date; any part may be what the source wrote even if unlikely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// `YYYY-MM-DD` or `YYYYMMDD`; partial dates are not enough to match on.
    pub fn parse(text: &str) -> Option<Date> {
        let digits = digits(text.get(..10.min(text.len()))?);
        if digits.len() != 8 {
            return None;
        }
        let date = Date {
            year: digits[..4].parse().ok()?,
            month: digits[4..6].parse().ok()?,
            day: digits[6..8].parse().ok()?,
        };
        (date.month >= 1 && date.month <= 12 && date.day >= 1 && date.day <= 31).then_some(date)
    }

    /// The eight digits YYYYMMDD.
    pub fn digits(&self) -> [u8; 8] {
        // Called for every compared pair: no formatting, no allocation.
        let y = self.year % 10_000;
        [
            (y / 1000) as u8,
            (y / 100 % 10) as u8,
            (y / 10 % 10) as u8,
            (y % 10) as u8,
            self.month / 10 % 10,
            self.month % 10,
            self.day / 10 % 10,
            self.day % 10,
        ]
    }

    pub fn to_fhir(self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

pub fn days_in_month(year: u16, month: u8) -> u8 {
    fhir_model::calendar::days_in_month(i64::from(year), month)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    Male,
    Female,
}

/// An address reduced to what discriminates people: street (number and street words),
/// locality (suburb, town, village or district) and postcode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub street: String,
    pub locality: String,
    pub postcode: String,
}

/// How an identifier is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierKind {
    /// The resident ID number (GB 11643), normalised to 18 characters.
    National,
    /// Any other: social security, e-health card, hospital numbers; compared within a system.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    pub kind: IdentifierKind,
    pub system: String,
    pub value: String,
    /// Issued to the person for use everywhere (social security, health card), not by one
    /// institution (a medical record number): worth finding despite a typo.
    pub wide: bool,
}

/// The demographics of one person as one source knows them. Every field may hold several
/// values (a Person gathers those of all its Patients); comparisons take the best pair.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub names: Vec<Name>,
    pub birth_dates: Vec<Date>,
    pub sex: Option<Sex>,
    /// Digits only, without a +86 / 0086 country prefix.
    pub phones: Vec<String>,
    pub addresses: Vec<Address>,
    pub identifiers: Vec<Identifier>,
}

/// The identifier systems of resident ID numbers.
#[derive(Debug, Clone)]
pub struct IdentifierSystems {
    pub national: Vec<String>,
    /// Systems of person-wide numbers other than the resident ID (social security cards,
    /// e-health cards). Identifiers typed SS, SB, JHN, NH or HC count as such too.
    pub wide: Vec<String>,
}

impl Default for IdentifierSystems {
    fn default() -> IdentifierSystems {
        IdentifierSystems {
            national: vec![
                // The OID the platform's institutions use for the resident identity card.
                "urn:oid:2.16.156.10011.1.1".into(),
                "urn:oid:1.2.156.112604.1.2.1".into(),
            ],
            wide: vec!["urn:oid:2.16.156.10011.1.15".into()],
        }
    }
}

impl Record {
    /// Reads the demographics of a Patient or Person resource. Unreadable parts are skipped:
    /// matching works with what is there.
    pub fn from_fhir(resource: &Value, systems: &IdentifierSystems) -> Record {
        let mut record = Record::default();
        for name in array(resource, "name") {
            let family = name.get("family").and_then(Value::as_str).unwrap_or("");
            let given: Vec<&str> = array(name, "given").filter_map(Value::as_str).collect();
            let text = name.get("text").and_then(Value::as_str).unwrap_or("");
            let parsed = if family.is_empty() && given.is_empty() {
                match split_han_name(text) {
                    Some((family, given)) => Name::new(&family, &given),
                    None => {
                        // "Wei Zhang": last word taken as the family name.
                        let words: Vec<&str> = text.split_whitespace().collect();
                        match words.split_last() {
                            Some((last, rest)) => Name::new(last, &rest.join(" ")),
                            None => continue,
                        }
                    }
                }
            } else {
                Name::new(family, &given.join(" "))
            };
            if !parsed.is_empty() && !record.names.contains(&parsed) {
                record.names.push(parsed);
            }
        }
        if let Some(date) = resource
            .get("birthDate")
            .and_then(Value::as_str)
            .and_then(Date::parse)
        {
            record.birth_dates.push(date);
        }
        record.sex = match resource.get("gender").and_then(Value::as_str) {
            Some("male") => Some(Sex::Male),
            Some("female") => Some(Sex::Female),
            _ => None,
        };
        for telecom in array(resource, "telecom") {
            if telecom.get("system").and_then(Value::as_str) == Some("phone")
                && let Some(value) = telecom.get("value").and_then(Value::as_str)
            {
                record.add_phone(value);
            }
        }
        for address in array(resource, "address") {
            let lines: Vec<&str> = array(address, "line").filter_map(Value::as_str).collect();
            let locality = [
                address.get("district").and_then(Value::as_str),
                address.get("city").and_then(Value::as_str),
            ]
            .into_iter()
            .flatten()
            .find(|s| !s.trim().is_empty())
            .unwrap_or("");
            let postcode = address
                .get("postalCode")
                .and_then(Value::as_str)
                .unwrap_or("");
            record.add_address(&lines.join(" "), locality, postcode);
        }
        for identifier in array(resource, "identifier") {
            let (Some(system), Some(value)) = (
                identifier.get("system").and_then(Value::as_str),
                identifier.get("value").and_then(Value::as_str),
            ) else {
                continue;
            };
            let type_code = array(identifier.get("type").unwrap_or(&Value::Null), "coding")
                .find_map(|c| c.get("code").and_then(Value::as_str));
            let national =
                type_code == Some("NNCHN") || systems.national.iter().any(|s| s == system);
            record.add_identifier(system, value, national);
            let wide = matches!(type_code, Some("SS" | "SB" | "JHN" | "NH" | "HC"))
                || systems.wide.iter().any(|s| s == system);
            if wide
                && !national
                && let Some(last) = record.identifiers.last_mut()
            {
                last.wide = true;
            }
        }
        record
    }

    pub fn add_phone(&mut self, value: &str) {
        let mut phone = digits(value);
        for prefix in ["0086", "86"] {
            // A mainland mobile is 11 digits starting with 1: strip a country code before it.
            if phone.len() == 11 + prefix.len() && phone.starts_with(prefix) {
                phone = phone[prefix.len()..].to_owned();
            }
        }
        if phone.len() >= 5 && !self.phones.contains(&phone) {
            self.phones.push(phone);
        }
    }

    pub fn add_address(&mut self, street: &str, locality: &str, postcode: &str) {
        let address = Address {
            street: fold(street),
            locality: fold(locality),
            postcode: digits(postcode),
        };
        if address != Address::default() && !self.addresses.contains(&address) {
            self.addresses.push(address);
        }
    }

    /// Adds an identifier; a resident ID number is normalised and kept only if it has the form
    /// of one (a bad check character is kept: a typo still says much).
    pub fn add_identifier(&mut self, system: &str, value: &str, national: bool) {
        let identifier = if national {
            match gb11643::normalise(value) {
                Some(number) => Identifier {
                    kind: IdentifierKind::National,
                    system: system.to_owned(),
                    value: number,
                    wide: true,
                },
                None => return,
            }
        } else {
            let value = value.trim();
            if value.is_empty() {
                return;
            }
            Identifier {
                kind: IdentifierKind::Other,
                system: system.to_owned(),
                value: value.to_owned(),
                wide: false,
            }
        };
        if !self.identifiers.iter().any(|i| {
            i.kind == identifier.kind
                && i.value == identifier.value
                && i.system == identifier.system
        }) {
            self.identifiers.push(identifier);
        }
    }

    /// Adds a person-wide identifier (see [`Identifier::wide`]).
    pub fn add_wide_identifier(&mut self, system: &str, value: &str) {
        let before = self.identifiers.len();
        self.add_identifier(system, value, false);
        if self.identifiers.len() > before
            && let Some(last) = self.identifiers.last_mut()
        {
            last.wide = true;
        }
    }

    pub fn national_ids(&self) -> impl Iterator<Item = &str> {
        self.identifiers
            .iter()
            .filter(|i| i.kind == IdentifierKind::National)
            .map(|i| i.value.as_str())
    }

    /// Merges another record's values into this one (a Person over its Patients).
    pub fn absorb(&mut self, other: &Record) {
        for name in &other.names {
            if !self.names.contains(name) {
                self.names.push(name.clone());
            }
        }
        for date in &other.birth_dates {
            if !self.birth_dates.contains(date) {
                self.birth_dates.push(*date);
            }
        }
        if self.sex.is_none() {
            self.sex = other.sex;
        }
        for phone in &other.phones {
            if !self.phones.contains(phone) {
                self.phones.push(phone.clone());
            }
        }
        for address in &other.addresses {
            if !self.addresses.contains(address) {
                self.addresses.push(address.clone());
            }
        }
        for identifier in &other.identifiers {
            if !self.identifiers.contains(identifier) {
                self.identifiers.push(identifier.clone());
            }
        }
    }
}

fn array<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter())
        .into_iter()
        .flatten()
}
