//! Concept sets: what a rule's `memberOf('name')` asks about. A coding is a member by its
//! system and code, by a code prefix in a hierarchical system (ICD-10 and its Chinese national
//! edition: `K56` covers `K56.6` and `K56.700x001`), or, when none of a concept's codes is a
//! member, by the words of its `text` or a coding's `display` ("钡餐" is a barium meal even
//! under a local code nobody mapped).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

#[derive(Debug, Default)]
struct ConceptSet {
    codes: HashSet<(String, String)>,
    /// (system, the prefix without dots, upper case)
    prefixes: Vec<(String, String)>,
    /// Lower-case terms, matched as substrings.
    text: Vec<String>,
}

/// The named concept sets of a rule set.
#[derive(Debug, Default)]
pub struct ConceptSets {
    sets: HashMap<String, ConceptSet>,
}

/// The system a prefix is compared under: the editions of ICD-10 (WHO's, the US clinical
/// modification, the Chinese national edition under whatever URI or OID a hospital sends) share
/// the hierarchy the prefixes name, so they are one family here.
fn family(system: &str) -> &str {
    let lower = system.to_ascii_lowercase();
    if lower.contains("icd-10") || lower.contains("icd10") || system == CHINESE_ICD10_OID {
        "icd-10"
    } else {
        system
    }
}

/// GB/T 14396, the Chinese national edition of ICD-10, as national standards name it.
const CHINESE_ICD10_OID: &str = "urn:oid:2.16.156.10011.2.3.3.11";

/// A code compared with prefixes: dots removed, upper case (`k56.7` and `K567` are one).
fn normal_code(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '.')
        .flat_map(char::to_uppercase)
        .collect()
}

impl ConceptSets {
    /// The `conceptSets` object of a rule file.
    pub fn from_json(value: &Value) -> Result<ConceptSets, String> {
        let Some(object) = value.as_object() else {
            return Err("conceptSets must be an object of named sets".into());
        };
        let mut sets = HashMap::new();
        for (name, set) in object {
            let text_of = |v: &Value, what: &str| {
                v.as_str()
                    .filter(|s| !s.trim().is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        format!("concept set '{name}': {what} must be a non-empty string")
                    })
            };
            let list = |key: &str| {
                set.get(key)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            let mut concept = ConceptSet::default();
            for code in list("codes") {
                concept.codes.insert((
                    text_of(&code["system"], "a code's system")?,
                    text_of(&code["code"], "a code's code")?,
                ));
            }
            for prefix in list("prefixes") {
                concept.prefixes.push((
                    text_of(&prefix["system"], "a prefix's system")?,
                    normal_code(&text_of(&prefix["prefix"], "a prefix")?),
                ));
            }
            for term in list("text") {
                concept
                    .text
                    .push(text_of(&term, "a text term")?.to_lowercase());
            }
            if concept.codes.is_empty() && concept.prefixes.is_empty() && concept.text.is_empty() {
                return Err(format!("concept set '{name}' is empty"));
            }
            sets.insert(name.clone(), concept);
        }
        Ok(ConceptSets { sets })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.sets.contains_key(name)
    }

    /// Whether the coding is in the set (`None`: no such set).
    pub fn has_code(&self, name: &str, system: Option<&str>, code: &str) -> Option<bool> {
        let set = self.sets.get(name)?;
        let by_code = match system {
            Some(system) => set.codes.contains(&(system.to_owned(), code.to_owned())),
            None => set.codes.iter().any(|(_, c)| c == code),
        };
        if by_code {
            return Some(true);
        }
        let normal = normal_code(code);
        Some(set.prefixes.iter().any(|(s, prefix)| {
            system.is_none_or(|system| family(system) == family(s))
                && normal.starts_with(prefix.as_str())
        }))
    }

    /// Whether the words name a member of the set (`None`: no such set).
    pub fn has_text(&self, name: &str, text: &str) -> Option<bool> {
        let set = self.sets.get(name)?;
        let text = text.to_lowercase();
        Some(set.text.iter().any(|term| text.contains(term.as_str())))
    }
}

impl fhirpath::Terminology for ConceptSets {
    fn member_of(&self, system: Option<&str>, code: &str, value_set: &str) -> Option<bool> {
        self.has_code(value_set, system, code)
    }

    fn member_of_text(&self, text: &str, value_set: &str) -> Option<bool> {
        self.has_text(value_set, text)
    }
}
