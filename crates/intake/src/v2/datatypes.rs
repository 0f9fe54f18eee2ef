//! The v2 data types as FHIR data types (the v2-to-FHIR implementation guide's datatype maps):
//! DTM/TS/DT → dateTime/instant/date, NM → decimal, CX → Identifier, XPN → HumanName,
//! XAD → Address, XTN → ContactPoint, CWE/CE/CNE → CodeableConcept, XCN → an identifier-only
//! Reference, ED → Attachment, and the coding systems of HL7 table 0396 as URIs.
//!
//! Nothing here panics on input: what does not read is an `Invalid` the caller turns into an
//! AE 102 at the field it came from.

use base64::Engine;
use hl7v2::Repetition;
use serde_json::{Number, Value, json};

use super::Profile;
use super::context::MERIDIAN;

/// Why a value does not read as its data type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid(pub String);

/// A value as FHIR strings hold it: trimmed, control characters other than line breaks and
/// tabs dropped (FHIR forbids them), `None` when nothing is left. HL7's null `""` ("delete
/// the value") is nothing too: a conditional update that leaves the element out deletes it.
pub(crate) fn clean(text: &str) -> Option<String> {
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        .collect();
    let trimmed = kept.trim();
    (!trimmed.is_empty() && trimmed != "\"\"").then(|| trimmed.to_owned())
}

/// A value as a FHIR `code`: no leading, trailing or repeated whitespace. Control characters
/// go first, then the whitespace is collapsed: the other way round, a control character
/// between two spaces left two spaces (fuzz finding F6, `fuzz/RUNS.md`).
pub(crate) fn code(text: &str) -> Option<String> {
    let cleaned = clean(text)?;
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    clean(&words.join(" "))
}

/// Component `c` of a repetition, cleaned.
pub(crate) fn part(rep: &Repetition, c: usize) -> Option<String> {
    clean(rep.component(c)?)
}

/// Sub-component `s` of component `c`, cleaned.
pub(crate) fn sub(rep: &Repetition, c: usize, s: usize) -> Option<String> {
    clean(rep.subcomponent(c, s)?)
}

// ---------------------------------------------------------------------------------------
// Dates and times.

/// A UTC offset in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offset(pub i32);

impl Offset {
    fn text(self) -> String {
        let sign = if self.0 < 0 { '-' } else { '+' };
        let minutes = self.0.abs();
        format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

/// A v2 DTM (and TS's first component, and DT): `YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ]`,
/// with its precision kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ts {
    pub year: i64,
    pub month: Option<u8>,
    pub day: Option<u8>,
    pub hour: Option<u8>,
    pub minute: Option<u8>,
    pub second: Option<u8>,
    /// The fraction's digits, as written.
    pub fraction: Option<String>,
    pub offset: Option<Offset>,
}

impl Ts {
    pub fn parse(text: &str) -> Result<Ts, Invalid> {
        let invalid = || {
            Invalid(format!(
                "'{text}' is not a v2 date/time (YYYYMMDDHHMMSS+ZZZZ)"
            ))
        };
        let (body, offset) = match text.find(['+', '-']) {
            Some(at) => {
                let zone = &text[at + 1..];
                if zone.len() != 4 || !zone.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid());
                }
                let hours: i32 = zone[..2].parse().map_err(|_| invalid())?;
                let minutes: i32 = zone[2..].parse().map_err(|_| invalid())?;
                if hours > 14 || minutes > 59 {
                    return Err(invalid());
                }
                let sign = if text[at..].starts_with('-') { -1 } else { 1 };
                (&text[..at], Some(Offset(sign * (hours * 60 + minutes))))
            }
            None => (text, None),
        };
        let (digits, fraction) = match body.split_once('.') {
            Some((digits, fraction)) => {
                if fraction.is_empty()
                    || fraction.len() > 4
                    || !fraction.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(invalid());
                }
                (digits, Some(fraction.to_owned()))
            }
            None => (body, None),
        };
        if !digits.bytes().all(|b| b.is_ascii_digit())
            || !matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14)
            || (fraction.is_some() && digits.len() != 14)
        {
            return Err(invalid());
        }
        let pair = |at: usize| -> Option<u8> { digits.get(at..at + 2)?.parse().ok() };
        let ts = Ts {
            year: digits[..4].parse().map_err(|_| invalid())?,
            month: pair(4),
            day: pair(6),
            hour: pair(8),
            minute: pair(10),
            second: pair(12),
            fraction,
            offset,
        };
        let month_ok = ts.month.is_none_or(|m| (1..=12).contains(&m));
        let day_ok = match (ts.month, ts.day) {
            (Some(m), Some(d)) if month_ok => {
                d >= 1 && d <= fhir_model::calendar::days_in_month(ts.year, m)
            }
            _ => true,
        };
        if ts.year < 1
            || !month_ok
            || !day_ok
            || ts.hour.is_some_and(|h| h > 23)
            || ts.minute.is_some_and(|m| m > 59)
            || ts.second.is_some_and(|s| s > 59)
        {
            return Err(invalid());
        }
        Ok(ts)
    }

    /// The date part, at the precision given: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        match (self.month, self.day) {
            (Some(m), Some(d)) => format!("{:04}-{m:02}-{d:02}", self.year),
            (Some(m), None) => format!("{:04}-{m:02}", self.year),
            _ => format!("{:04}", self.year),
        }
    }

    /// A FHIR dateTime: the date alone when no time is given; with a time, seconds are
    /// filled with zeros (FHIR has no minute precision) and the offset is the value's own or
    /// `default` (FHIR requires one with a time).
    pub fn date_time(&self, default: Offset) -> String {
        let Some(hour) = self.hour else {
            return self.date();
        };
        let fraction = self
            .fraction
            .as_ref()
            .map(|f| format!(".{f}"))
            .unwrap_or_default();
        format!(
            "{}T{hour:02}:{:02}:{:02}{fraction}{}",
            self.date(),
            self.minute.unwrap_or(0),
            self.second.unwrap_or(0),
            self.offset.unwrap_or(default).text()
        )
    }

    /// A FHIR instant, when the value is precise to the minute at least (an instant of a
    /// date alone would invent a time).
    pub fn instant(&self, default: Offset) -> Option<String> {
        self.minute.is_some().then(|| self.date_time(default))
    }

    /// This time `minutes` later, in the same offset (minute precision at least; `None`
    /// for a date alone).
    pub fn plus_minutes(&self, minutes: i64, default: Offset) -> Option<Ts> {
        let (month, day, hour, minute) = (self.month?, self.day?, self.hour?, self.minute?);
        let days = fhir_model::calendar::days_from_civil(self.year, month, day);
        let total = days
            .checked_mul(1440)?
            .checked_add(i64::from(hour) * 60 + i64::from(minute))?
            .checked_add(minutes)?;
        let (year, month, day) = fhir_model::calendar::civil_from_days(total.div_euclid(1440));
        if !(1..=9999).contains(&year) {
            return None;
        }
        let in_day = total.rem_euclid(1440);
        Some(Ts {
            year,
            month: Some(month),
            day: Some(day),
            hour: u8::try_from(in_day / 60).ok(),
            minute: u8::try_from(in_day % 60).ok(),
            second: Some(self.second.unwrap_or(0)),
            fraction: self.fraction.clone(),
            offset: Some(self.offset.unwrap_or(default)),
        })
    }
}

/// A v2 TM (`HH[MM[SS[.S]]]`) as a FHIR time `hh:mm:ss`.
pub(crate) fn time(text: &str) -> Result<String, Invalid> {
    let invalid = || Invalid(format!("'{text}' is not a v2 time (HHMMSS)"));
    let body = text.split(['+', '-']).next().unwrap_or_default();
    let (digits, fraction) = body.split_once('.').unwrap_or((body, ""));
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(digits.len(), 2 | 4 | 6)
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    let pair = |at: usize| -> u8 {
        digits
            .get(at..at + 2)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    };
    let (h, m, s) = (pair(0), pair(2), pair(4));
    if h > 23 || m > 59 || s > 59 {
        return Err(invalid());
    }
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    Ok(format!("{h:02}:{m:02}:{s:02}{fraction}"))
}

// ---------------------------------------------------------------------------------------
// Numbers.

/// A v2 NM (`[+|-]digits[.digits]`, leading zeros and a bare point allowed) as a FHIR decimal
/// with its written precision kept (`4.10` stays `4.10`).
pub(crate) fn decimal(text: &str) -> Result<Number, Invalid> {
    let invalid = || Invalid(format!("'{text}' is not a number"));
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if (whole.is_empty() && fraction.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || whole.len() + fraction.len() > 40
    {
        return Err(invalid());
    }
    let whole = whole.trim_start_matches('0');
    let mut out = String::new();
    let zero = whole.is_empty() && fraction.bytes().all(|b| b == b'0');
    if negative && !zero {
        out.push('-');
    }
    out.push_str(if whole.is_empty() { "0" } else { whole });
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    out.parse::<Number>().map_err(|_| invalid())
}

// ---------------------------------------------------------------------------------------
// Coding systems (HL7 table 0396) and CodeableConcepts.

/// The URI of a coding system named as table 0396 names it, for the systems this platform
/// knows. `ICD10CN` (China's national clinical edition of ICD-10, which adds codes below
/// WHO's) gets a platform URI rather than WHO's, since its codes are not all WHO codes.
/// `I10C` is ICD-10-CM in table 0396, so it maps to ICD-10-CM's URI.
pub(crate) fn coding_system(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    let uri = match upper.as_str() {
        "LN" | "LOINC" => "http://loinc.org",
        "SCT" | "SNM" | "SNM3" | "SNOMED" | "SNOMEDCT" | "SNOMED-CT" => "http://snomed.info/sct",
        "I10" | "ICD10" | "ICD-10" => "http://hl7.org/fhir/sid/icd-10",
        "I10C" | "ICD10CM" => "http://hl7.org/fhir/sid/icd-10-cm",
        "ICD10CN" => "https://meridian.example/CodeSystem/icd-10-cn",
        "I9" | "I9C" | "I9CM" | "I9M" => "http://hl7.org/fhir/sid/icd-9-cm",
        "CVX" => "http://hl7.org/fhir/sid/cvx",
        "MVX" => "http://hl7.org/fhir/sid/mvx",
        "NDC" => "http://hl7.org/fhir/sid/ndc",
        "UCUM" => "http://unitsofmeasure.org",
        "RXNORM" | "RXN" => "http://www.nlm.nih.gov/research/umls/rxnorm",
        "C4" | "CPT" | "CPT4" => "http://www.ama-assn.org/go/cpt",
        "NCIT" => "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
        "DCM" => "http://dicom.nema.org/resources/ontology/DCM",
        "ATC" | "WHOATC" => "http://www.whocc.no/atc",
        _ => {
            let table = upper.strip_prefix("HL7")?;
            if table.len() == 4 && table.bytes().all(|b| b.is_ascii_digit()) {
                return Some(format!("http://terminology.hl7.org/CodeSystem/v2-{table}"));
            }
            return None;
        }
    };
    Some(uri.to_owned())
}

/// The system of a sender's local code: `https://meridian.example/CodeSystem/local/<ns>`
/// for codes marked local (`L`, `99zzz`) or unmarked, and `.../local/<ns>/<name>` for a
/// named system this platform does not know, so that two of a sender's code systems never
/// share one.
pub(crate) fn local_system(profile: &Profile, name: Option<&str>) -> String {
    let base = format!("{MERIDIAN}/CodeSystem/local/{}", profile.namespace);
    match name {
        None => base,
        Some(n) if n.eq_ignore_ascii_case("L") || n.starts_with("99") => base,
        Some(n) => format!("{base}/{}", path_segment(n)),
    }
}

/// Text safe as one URL path segment: letters, digits, `-`, `.`, `_`; anything else `_`.
pub(crate) fn path_segment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One coding from a CWE triplet (code, text, system name), with the sender's code map
/// applied: a mapped code gives the standard coding first and keeps the local one after it.
fn codings(
    profile: &Profile,
    code_text: Option<String>,
    display: Option<String>,
    system_name: Option<String>,
    default_system: Option<&str>,
) -> Vec<Value> {
    let Some(code_text) = code_text.as_deref().and_then(code) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let key = (system_name.clone().unwrap_or_default(), code_text.clone());
    if let Some(mapped) = profile.code_maps.codes.get(&key) {
        let mut coding = json!({ "system": mapped.system, "code": mapped.code });
        if let Some(display) = &mapped.display {
            coding["display"] = json!(display);
        }
        out.push(coding);
    }
    let system = match system_name.as_deref() {
        Some(name) => coding_system(name).unwrap_or_else(|| local_system(profile, Some(name))),
        None => default_system
            .and_then(coding_system)
            .unwrap_or_else(|| local_system(profile, None)),
    };
    let mut coding = json!({ "system": system, "code": code_text });
    if let Some(display) = display {
        coding["display"] = json!(display);
    }
    out.push(coding);
    out
}

/// A CWE/CE/CNE as a CodeableConcept: the identifier triplet and the alternate one as
/// codings, CWE-9 (or the text of a code-less value) as text. `default_system` names the
/// table (`HL70078`) a code without a system is from.
pub(crate) fn codeable(
    profile: &Profile,
    rep: &Repetition,
    default_system: Option<&str>,
) -> Option<Value> {
    let mut coding = codings(
        profile,
        part(rep, 1),
        part(rep, 2),
        part(rep, 3),
        default_system,
    );
    coding.extend(codings(
        profile,
        part(rep, 4),
        part(rep, 5),
        part(rep, 6),
        default_system,
    ));
    let text = part(rep, 9).or_else(|| {
        coding
            .is_empty()
            .then(|| part(rep, 2).or_else(|| part(rep, 1)))
            .flatten()
    });
    let mut concept = json!({});
    if !coding.is_empty() {
        concept["coding"] = Value::Array(coding);
    }
    if let Some(text) = text {
        concept["text"] = json!(text);
    }
    (concept.as_object().is_some_and(|o| !o.is_empty())).then_some(concept)
}

/// A code of an HL7 table as a CodeableConcept of that table's code system.
pub(crate) fn table_concept(table: &str, code_value: &str, display: Option<&str>) -> Value {
    let mut coding = json!({
        "system": format!("http://terminology.hl7.org/CodeSystem/v2-{table}"),
        "code": code_value,
    });
    if let Some(display) = display {
        coding["display"] = json!(display);
    }
    json!({ "coding": [coding] })
}

// ---------------------------------------------------------------------------------------
// Identifiers and names.

/// Whether `text` is an ISO object identifier (`1.2.840...`).
pub(crate) fn is_oid(text: &str) -> bool {
    let mut arcs = text.split('.');
    let first_ok = arcs.next().is_some_and(|a| matches!(a, "0" | "1" | "2"));
    let mut count = 1;
    let rest_ok = arcs.all(|a| {
        count += 1;
        !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) && (a == "0" || !a.starts_with('0'))
    });
    first_ok && rest_ok && count >= 2
}

/// Whether `text` is an absolute URI FHIR takes as a system (a scheme, no whitespace).
fn is_uri(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("urn:"))
        && !text.chars().any(char::is_whitespace)
}

/// The system an HD (namespace id, universal id, universal id type) names, when it names a
/// global one: an ISO OID as `urn:oid:`, a URI as itself, a UUID as `urn:uuid:`. A local
/// namespace name gives `None`: the sender's own namespace applies.
pub(crate) fn hd_system(
    namespace: Option<&str>,
    universal: Option<&str>,
    kind: Option<&str>,
) -> Option<String> {
    if let Some(universal) = universal {
        let kind = kind.unwrap_or_default().to_ascii_uppercase();
        let bare = universal.strip_prefix("urn:oid:").unwrap_or(universal);
        if (kind == "ISO" || kind.is_empty()) && is_oid(bare) {
            return Some(format!("urn:oid:{bare}"));
        }
        if (kind == "URI" || kind == "URL" || kind.is_empty()) && is_uri(universal) {
            return Some(universal.to_owned());
        }
        if kind == "UUID" && uuid::Uuid::parse_str(universal).is_ok() {
            return Some(format!("urn:uuid:{}", universal.to_ascii_lowercase()));
        }
    }
    let namespace = namespace?;
    if let Some(oid) = namespace.strip_prefix("urn:oid:")
        && is_oid(oid)
    {
        return Some(namespace.to_owned());
    }
    is_uri(namespace).then(|| namespace.to_owned())
}

/// The system of China's resident identity card numbers (GB 11643).
pub(crate) const RESIDENT_ID_SYSTEM: &str = "urn:oid:2.16.156.10011.1.3";

/// Whether `text` is an 18-character citizen identification number of GB 11643-1999: 17
/// digits and an ISO 7064 MOD 11-2 check character (a digit or `X`).
pub(crate) fn is_resident_id(text: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [u8; 11] = *b"10X98765432";
    let bytes = text.as_bytes();
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = bytes[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    CHECK.get((sum % 11) as usize) == Some(&bytes[17].to_ascii_uppercase())
}

/// A CJK ideograph: such names are written family name first, without a space.
fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2FA1F}')
}

/// XPN → HumanName. Family from XPN-1.1, given from XPN-2 and XPN-3, suffix XPN-4 and XPN-6
/// (degree), prefix XPN-5, use from XPN-7 (table 0200). A Chinese name gets `text` written
/// as it is read (family then given, no space).
pub(crate) fn human_name(rep: &Repetition) -> Option<Value> {
    human_name_at(rep, 1)
}

/// A name laid out as XPN from component `first` on (XCN's name starts at component 2).
fn human_name_at(rep: &Repetition, first: usize) -> Option<Value> {
    let at = |n: usize| first + n - 1;
    let family = sub(rep, at(1), 1);
    let given: Vec<String> = [part(rep, at(2)), part(rep, at(3))]
        .into_iter()
        .flatten()
        .collect();
    let mut name = json!({});
    if first == 1
        && let Some(use_) = part(rep, 7).and_then(|t| name_use(&t))
    {
        name["use"] = json!(use_);
    }
    let cjk = family
        .iter()
        .chain(given.iter())
        .any(|p| p.chars().any(is_cjk));
    if cjk {
        let text: String = family.iter().chain(given.iter()).cloned().collect();
        name["text"] = json!(text);
    }
    if let Some(family) = family {
        name["family"] = json!(family);
    }
    if !given.is_empty() {
        name["given"] = json!(given);
    }
    let prefix = part(rep, at(5));
    let suffix: Vec<String> = [
        part(rep, at(4)),
        if first == 1 { part(rep, 6) } else { None },
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(prefix) = prefix {
        name["prefix"] = json!([prefix]);
    }
    if !suffix.is_empty() {
        name["suffix"] = json!(suffix);
    }
    (name
        .as_object()
        .is_some_and(|o| o.keys().any(|k| k != "use")))
    .then_some(name)
}

/// Table 0200 (name type) → HumanName.use; codes FHIR has no use for give none.
fn name_use(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_uppercase().as_str() {
        "L" => "official",
        "D" | "A" => "usual",
        "M" | "B" => "maiden",
        "N" => "nickname",
        "S" => "anonymous",
        "T" | "TEMP" => "temp",
        "NOUSE" | "BAD" => "old",
        _ => return None,
    })
}

/// The display of a person named in an XCN/XPN: "given family", or family then given
/// without a space for a Chinese name.
pub(crate) fn display_name(name: &Value) -> Option<String> {
    if let Some(text) = name.get("text").and_then(Value::as_str) {
        return Some(text.to_owned());
    }
    let mut parts: Vec<&str> = Vec::new();
    for key in ["prefix", "given"] {
        if let Some(list) = name.get(key).and_then(Value::as_array) {
            parts.extend(list.iter().filter_map(Value::as_str));
        }
    }
    if let Some(family) = name.get("family").and_then(Value::as_str) {
        parts.push(family);
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// XCN → a Reference that names the practitioner by identifier and display only: this
/// platform never creates Practitioners from messages (the practitioner registry owns them).
/// The identifier's system is XCN-9's when global, else the sender's practitioner namespace.
pub(crate) fn practitioner(profile: &Profile, rep: &Repetition) -> Option<Value> {
    let id = part(rep, 1);
    let name = human_name_at(rep, 2);
    let display = name.as_ref().and_then(display_name);
    if id.is_none() && display.is_none() {
        return None;
    }
    let mut reference = json!({ "type": "Practitioner" });
    if let Some(id) = id {
        let system = hd_system(
            sub(rep, 9, 1).as_deref(),
            sub(rep, 9, 2).as_deref(),
            sub(rep, 9, 3).as_deref(),
        )
        .unwrap_or_else(|| format!("{MERIDIAN}/sid/practitioner/{}", profile.namespace));
        reference["identifier"] = json!({ "system": system, "value": id });
    }
    if let Some(display) = display {
        reference["display"] = json!(display);
    }
    Some(reference)
}

// ---------------------------------------------------------------------------------------
// Addresses and telecoms.

/// XAD → Address: line from XAD-1 (its sub-components, street then name then dwelling) and
/// XAD-2, city 3, state 4, postal code 5, country 6, type from XAD-7 (table 0190), district
/// from XAD-9.
pub(crate) fn address(rep: &Repetition) -> Option<Value> {
    let street: Vec<String> = (1..=3).filter_map(|s| sub(rep, 1, s)).collect();
    let mut lines = Vec::new();
    if !street.is_empty() {
        lines.push(street.join(" "));
    }
    if let Some(other) = part(rep, 2) {
        lines.push(other);
    }
    let mut address = json!({});
    if let Some(kind) = part(rep, 7) {
        match kind.to_ascii_uppercase().as_str() {
            "H" | "P" => address["use"] = json!("home"),
            "B" | "O" => address["use"] = json!("work"),
            "C" | "V" | "VH" => address["use"] = json!("temp"),
            "BA" | "BDL" => address["use"] = json!("old"),
            "BI" => address["use"] = json!("billing"),
            "M" => address["type"] = json!("postal"),
            _ => {}
        }
    }
    if !lines.is_empty() {
        address["line"] = json!(lines);
    }
    for (component, key) in [
        (3, "city"),
        (9, "district"),
        (4, "state"),
        (5, "postalCode"),
        (6, "country"),
    ] {
        if let Some(value) = part(rep, component) {
            address[key] = json!(value);
        }
    }
    let filled = address
        .as_object()
        .is_some_and(|o| o.keys().any(|k| k != "use" && k != "type"));
    filled.then_some(address)
}

/// XTN → ContactPoint. The system from XTN-3 (table 0202: Internet and X.400 are email, FX
/// fax, BP beeper, CP a mobile phone), the use from XTN-2 (table 0201) or `default_use`, the
/// value from XTN-4 for email, else XTN-12, XTN-1, or the number composed from XTN-5 to 8.
pub(crate) fn contact_point(rep: &Repetition, default_use: Option<&str>) -> Option<Value> {
    let equipment = part(rep, 3).map(|t| t.to_ascii_uppercase());
    let use_code = part(rep, 2).map(|t| t.to_ascii_uppercase());
    let (system, mobile) = match equipment.as_deref() {
        Some("INTERNET" | "X.400") => ("email", false),
        Some("FX") => ("fax", false),
        Some("BP") => ("pager", false),
        Some("CP") => ("phone", true),
        Some("MD" | "TDD" | "TTY") => ("other", false),
        _ if use_code.as_deref() == Some("NET") => ("email", false),
        _ if use_code.as_deref() == Some("BPN") => ("pager", false),
        _ => ("phone", false),
    };
    let value = if system == "email" {
        part(rep, 4).or_else(|| part(rep, 1))
    } else {
        part(rep, 12).or_else(|| part(rep, 1)).or_else(|| {
            let local = part(rep, 7)?;
            let mut number = String::new();
            if let Some(country) = part(rep, 5) {
                number.push_str(&format!("+{country} "));
            }
            if let Some(area) = part(rep, 6) {
                number.push_str(&format!("({area}) "));
            }
            number.push_str(&local);
            if let Some(extension) = part(rep, 8) {
                number.push_str(&format!(" ext. {extension}"));
            }
            Some(number)
        })
    }?;
    let use_ = if mobile {
        Some("mobile")
    } else {
        match use_code.as_deref() {
            Some("PRN" | "ORN") => Some("home"),
            Some("WPN") => Some("work"),
            Some("VHN") => Some("temp"),
            Some("PRS") => Some("mobile"),
            _ => default_use,
        }
    };
    let mut point = json!({ "system": system, "value": value });
    if let Some(use_) = use_ {
        point["use"] = json!(use_);
    }
    Some(point)
}

// ---------------------------------------------------------------------------------------
// Units and quantities.

/// A unit as sent (OBX-6, RXA-7) → its UCUM code, when the unit is UCUM already or one of the
/// common spellings of a UCUM unit (`mmHg` is `mm[Hg]`, `beats/min` is `/min`).
pub(crate) fn ucum(unit: &str) -> Option<&'static str> {
    const SAME: &[&str] = &[
        "%",
        "g",
        "mg",
        "ug",
        "ng",
        "pg",
        "kg",
        "L",
        "mL",
        "dL",
        "uL",
        "fL",
        "m",
        "cm",
        "mm",
        "s",
        "min",
        "h",
        "d",
        "wk",
        "mo",
        "a",
        "mmol/L",
        "umol/L",
        "nmol/L",
        "pmol/L",
        "mol/L",
        "g/L",
        "g/dL",
        "mg/dL",
        "mg/L",
        "ug/L",
        "ug/dL",
        "ng/mL",
        "pg/mL",
        "U/L",
        "U/mL",
        "mU/L",
        "[IU]/L",
        "[iU]/L",
        "m[IU]/L",
        "10*3/uL",
        "10*6/uL",
        "10*9/L",
        "10*12/L",
        "/uL",
        "/min",
        "mm[Hg]",
        "Cel",
        "[degF]",
        "kg/m2",
        "mL/min",
        "mm/h",
        "meq/L",
        "mosm/kg",
        "/[HPF]",
        "/[LPF]",
        "[lb_av]",
        "[in_i]",
        "{ratio}",
        "1",
        "%{saturation}",
        "g/24.h",
        "mg/24.h",
    ];
    if let Some(same) = SAME.iter().find(|u| **u == unit) {
        return Some(same);
    }
    Some(match unit.to_ascii_lowercase().as_str() {
        "mmhg" | "mm hg" => "mm[Hg]",
        "beats/min" | "bpm" | "/min" | "breaths/min" | "{beats}/min" => "/min",
        "mg/dl" => "mg/dL",
        "g/dl" => "g/dL",
        "mmol/l" => "mmol/L",
        "umol/l" | "µmol/l" | "μmol/l" => "umol/L",
        "mol/l" => "mol/L",
        "g/l" => "g/L",
        "mg/l" => "mg/L",
        "ng/ml" => "ng/mL",
        "pg/ml" => "pg/mL",
        "u/l" | "iu/l" => "U/L",
        "meq/l" => "meq/L",
        "ml" => "mL",
        "l" => "L",
        "dl" => "dL",
        "fl" => "fL",
        "degc" | "°c" | "cel" | "c" => "Cel",
        "degf" | "°f" | "f" => "[degF]",
        "lb" | "lbs" => "[lb_av]",
        "in" | "inch" => "[in_i]",
        "kg/m^2" | "kg/m2" => "kg/m2",
        "10^3/ul" | "k/ul" | "10*3/ul" | "x10e3/ul" => "10*3/uL",
        "10^6/ul" | "m/ul" | "10*6/ul" | "x10e6/ul" => "10*6/uL",
        "10^9/l" | "giga.l-1" | "10*9/l" => "10*9/L",
        "10^12/l" | "tera.l-1" | "10*12/l" => "10*12/L",
        "sec" | "secs" => "s",
        "hr" | "hrs" => "h",
        "mins" => "min",
        "days" | "day" => "d",
        "years" | "yr" | "yrs" => "a",
        "months" => "mo",
        "weeks" => "wk",
        _ => return None,
    })
}

/// A Quantity of `value` in the unit a CWE names (`unit`: OBX-6 or RXA-7): `unit` as sent,
/// UCUM system and code when the unit is a UCUM one (by its system or by its spelling).
pub(crate) fn quantity(value: Number, unit: Option<&Repetition>) -> Value {
    let mut quantity = json!({ "value": Value::Number(value) });
    let Some(unit) = unit else {
        return quantity;
    };
    let code_text = part(unit, 1);
    let text = part(unit, 2);
    let system = part(unit, 3).map(|s| s.to_ascii_uppercase());
    let shown = code_text.clone().or_else(|| text.clone());
    if let Some(shown) = &shown {
        quantity["unit"] = json!(shown);
    }
    let ucum_code = match (system.as_deref(), code_text.as_deref()) {
        (Some("UCUM"), Some(c)) => ucum(c).map(str::to_owned).or_else(|| code(c)),
        (_, Some(c)) => ucum(c).map(str::to_owned),
        (_, None) => text.as_deref().and_then(ucum).map(str::to_owned),
    };
    if let Some(ucum_code) = ucum_code {
        quantity["system"] = json!("http://unitsofmeasure.org");
        quantity["code"] = json!(ucum_code);
    }
    quantity
}

// ---------------------------------------------------------------------------------------
// Encapsulated data.

/// ED (source, type of data, subtype, encoding, data) → Attachment. The MIME type is ED-2/3
/// (table 0191's codes read as MIME top-level types); `Base64` data is checked and kept,
/// `A` (none) text is encoded; `Hex` is decoded and encoded.
pub(crate) fn attachment(rep: &Repetition) -> Result<Value, Invalid> {
    let top = part(rep, 2).map(|t| t.to_ascii_lowercase());
    let top = match top.as_deref() {
        Some("ap" | "application") | None => "application",
        Some("im" | "image") => "image",
        Some("au" | "audio") => "audio",
        Some("text" | "tx") => "text",
        Some("video") => "video",
        Some("multipart") => "multipart",
        Some(_) => "application",
    };
    let subtype = part(rep, 3)
        .map(|s| path_segment(&s.to_ascii_lowercase()))
        .unwrap_or_else(|| {
            if top == "text" {
                "plain".into()
            } else {
                "octet-stream".into()
            }
        });
    let content_type = if top == "text" {
        format!("{top}/{subtype}; charset=utf-8")
    } else {
        format!("{top}/{subtype}")
    };
    let mut attachment = json!({ "contentType": content_type });
    let data = rep
        .component(5)
        .map(|d| d.chars().filter(|c| !c.is_whitespace()).collect::<String>())
        .filter(|d| !d.is_empty());
    if let Some(data) = data {
        let encoding = part(rep, 4).map(|e| e.to_ascii_uppercase());
        let engine = base64::engine::general_purpose::STANDARD;
        let encoded = match encoding.as_deref() {
            Some("BASE64") => {
                engine
                    .decode(&data)
                    .map_err(|_| Invalid("the ED data is not valid Base64".into()))?;
                data
            }
            Some("HEX") => {
                let bytes = hex(&data).ok_or_else(|| Invalid("the ED data is not hex".into()))?;
                engine.encode(bytes)
            }
            _ => engine.encode(rep.component(5).unwrap_or_default().as_bytes()),
        };
        attachment["data"] = json!(encoded);
    }
    Ok(attachment)
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Text as a plain-text attachment (UTF-8, Base64).
pub(crate) fn text_attachment(text: &str, title: Option<&str>) -> Value {
    let mut attachment = json!({
        "contentType": "text/plain; charset=utf-8",
        "data": base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
    });
    if let Some(title) = title {
        attachment["title"] = json!(title);
    }
    attachment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_keep_their_precision_and_take_an_offset_with_a_time() {
        let zone = Offset(480);
        let read = |t: &str| Ts::parse(t).unwrap();
        assert_eq!(read("2021").date_time(zone), "2021");
        assert_eq!(read("202108").date_time(zone), "2021-08");
        assert_eq!(read("20210818").date_time(zone), "2021-08-18");
        assert_eq!(
            read("202108181126").date_time(zone),
            "2021-08-18T11:26:00+08:00"
        );
        assert_eq!(
            read("20210817151943.4+0200").date_time(zone),
            "2021-08-17T15:19:43.4+02:00"
        );
        assert_eq!(
            read("20141006092900-0700").date_time(zone),
            "2014-10-06T09:29:00-07:00"
        );
        assert_eq!(read("20210818").instant(zone), None);
        for bad in [
            "196203520",
            "20211301",
            "20210230",
            "2021-08-18",
            "",
            "2021081812+99",
        ] {
            assert!(Ts::parse(bad).is_err(), "{bad}");
        }
        let end = read("202012312350+0100").plus_minutes(20, zone).unwrap();
        assert_eq!(end.date_time(zone), "2021-01-01T00:10:00+01:00");
    }

    #[test]
    fn numbers_keep_their_written_precision() {
        assert_eq!(decimal("4.10").unwrap().to_string(), "4.10");
        assert_eq!(decimal("+007").unwrap().to_string(), "7");
        assert_eq!(decimal(".5").unwrap().to_string(), "0.5");
        assert_eq!(decimal("-0.0").unwrap().to_string(), "0.0");
        for bad in ["", ".", "1e5", "12a", "--1", "1.2.3"] {
            assert!(decimal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resident_ids_are_checked() {
        assert!(is_resident_id("11010519491231002X"));
        assert!(!is_resident_id("110105194912310021"));
        assert!(!is_resident_id("1101051949123100"));
    }

    #[test]
    fn a_code_has_no_repeated_whitespace_once_its_control_characters_are_gone() {
        assert_eq!(
            code("ADMITTED AS \u{1} INPATIENT").as_deref(),
            Some("ADMITTED AS INPATIENT")
        );
        assert_eq!(code(" \u{1} "), None);
    }

    #[test]
    fn coding_systems_of_table_0396() {
        assert_eq!(coding_system("LN").unwrap(), "http://loinc.org");
        assert_eq!(
            coding_system("HL70078").unwrap(),
            "http://terminology.hl7.org/CodeSystem/v2-0078"
        );
        assert_eq!(coding_system("HL7nnnn"), None);
        assert_eq!(coding_system("99LAB"), None);
    }
}
