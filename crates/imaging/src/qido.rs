//! QIDO-RS: studies, series and instances found by the matching rules of PS3.4 C.2.2.2
//! (single value, list of UIDs, wildcards `*` and `?`, date and time ranges, universal
//! matching; person names case-insensitively, and with `fuzzymatching=true` by any name
//! component's beginning), through the caller's read path: what the caller may not see of
//! the record is not found. The indexed keys (study, series and instance UIDs, modality,
//! study date, accession number, SOP class, patient ID) narrow the search in the store first; every key
//! is then matched on the DICOM attributes the ImagingStudy keeps. (The Patient ID narrows
//! through the study's Patient, which carries it as an identifier.)

use caller::Caller;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_dictionary_std::StandardDataDictionary;
use repository::Repository;
use serde_json::{Map, Value, json};

use crate::ImagingError;
use crate::archive::Archive;
use crate::json::{tag_key, texts};
use crate::study::{self, StoredObject};

/// What a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Study,
    Series,
    Instance,
}

/// A parsed QIDO query.
#[derive(Debug, Clone)]
pub struct Query {
    pub level: Level,
    /// The study and series the URL names.
    pub study: Option<String>,
    pub series: Option<String>,
    /// Matching keys: tag and value.
    pub keys: Vec<(String, String)>,
    pub include_all: bool,
    pub include: Vec<String>,
    pub limit: usize,
    pub offset: usize,
    pub fuzzy: bool,
}

/// Results per query at most, when the query names no limit.
pub const DEFAULT_LIMIT: usize = 1_000;
/// ImagingStudies read at most for one query before its keys are matched.
const MAX_CANDIDATES: usize = 100_000;

/// A tag (`00100010`) or keyword (`PatientName`) as the tag key of the DICOM JSON model.
pub fn tag_of(name: &str) -> Option<String> {
    if name.len() == 8 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(name.to_ascii_uppercase());
    }
    StandardDataDictionary
        .by_name(name)
        .map(|entry| tag_key(entry.tag()))
}

fn vr_of(tag: &str) -> &'static str {
    let Ok(group) = u16::from_str_radix(&tag[..4], 16) else {
        return "UN";
    };
    let Ok(element) = u16::from_str_radix(&tag[4..], 16) else {
        return "UN";
    };
    match StandardDataDictionary
        .by_tag(dicom_core::Tag(group, element))
        .map(|e| e.vr())
    {
        Some(VirtualVr::Exact(vr)) => vr.to_string(),
        _ => "UN",
    }
}

impl Query {
    /// Reads a query string's parameters.
    pub fn parse(
        level: Level,
        study: Option<String>,
        series: Option<String>,
        params: &[(String, String)],
    ) -> Result<Query, ImagingError> {
        let mut query = Query {
            level,
            study,
            series,
            keys: Vec::new(),
            include_all: false,
            include: Vec::new(),
            limit: DEFAULT_LIMIT,
            offset: 0,
            fuzzy: false,
        };
        let number = |name: &str, value: &str| {
            value.parse::<usize>().map_err(|_| {
                ImagingError::BadRequest(format!("{name} must be a whole number, not '{value}'"))
            })
        };
        for (name, value) in params {
            match name.as_str() {
                "limit" => query.limit = number(name, value)?.min(DEFAULT_LIMIT * 10),
                "offset" => query.offset = number(name, value)?,
                "fuzzymatching" => query.fuzzy = value == "true",
                "includefield" => {
                    for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                        if field == "all" {
                            query.include_all = true;
                        } else {
                            let tag = tag_of(field).ok_or_else(|| {
                                ImagingError::BadRequest(format!(
                                    "includefield names '{field}', which is no attribute"
                                ))
                            })?;
                            query.include.push(tag);
                        }
                    }
                }
                _ if name.contains('.') => {
                    return Err(ImagingError::BadRequest(format!(
                        "'{name}': matching on attributes inside sequences is not supported"
                    )));
                }
                _ => {
                    let tag = tag_of(name).ok_or_else(|| {
                        ImagingError::BadRequest(format!(
                            "'{name}' is neither a query parameter nor a DICOM attribute"
                        ))
                    })?;
                    if value.len() > 1024 {
                        return Err(ImagingError::BadRequest(format!(
                            "the value for '{name}' is too long"
                        )));
                    }
                    query.keys.push((tag, value.clone()));
                }
            }
        }
        Ok(query)
    }

    fn key(&self, tag: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, v)| v.as_str())
    }

    /// The store search that narrows the candidates (ImagingStudy parameters).
    fn criteria(&self) -> Vec<(String, String)> {
        let mut criteria = Vec::new();
        let uids = |value: &str| -> Vec<String> {
            value
                .split([',', '\\'])
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let plain = |value: &str| !value.contains(['*', '?', ',', '\\']) && !value.is_empty();
        let studies: Vec<String> = match (&self.study, self.key("0020000D")) {
            (Some(study), _) => vec![study.clone()],
            (None, Some(value)) => uids(value),
            _ => Vec::new(),
        };
        if !studies.is_empty() {
            let values: Vec<String> = studies
                .iter()
                .map(|s| format!("{}|urn:oid:{s}", study::DICOM_UID))
                .collect();
            criteria.push(("identifier".into(), values.join(",")));
        }
        let series: Vec<String> = match (&self.series, self.key("0020000E")) {
            (Some(series), _) => vec![series.clone()],
            (None, Some(value)) => uids(value),
            _ => Vec::new(),
        };
        if !series.is_empty() {
            criteria.push(("series".into(), series.join(",")));
        }
        if let Some(value) = self.key("00080018") {
            let values = uids(value);
            if !values.is_empty() {
                criteria.push(("instance".into(), values.join(",")));
            }
        }
        for modality_tag in ["00080061", "00080060"] {
            if let Some(value) = self.key(modality_tag).filter(|v| plain(v)) {
                criteria.push(("modality".into(), format!("{}|{value}", study::DCM)));
            }
        }
        // The study date through `started`, a day wider on each side: `started` is zoned, the
        // DICOM date is local to wherever the study was taken.
        if let Some(value) = self
            .key("00080020")
            .filter(|v| !v.contains(['*', '?', ',', '\\']))
        {
            let (low, high) = value.split_once('-').unwrap_or((value, value));
            if let Some(low) = shifted_day(low.trim(), -1) {
                criteria.push(("started".into(), format!("ge{low}")));
            }
            if let Some(high) = shifted_day(high.trim(), 1) {
                criteria.push(("started".into(), format!("le{high}")));
            }
        }
        // The study's Patient carries the DICOM Patient ID as an identifier (any namespace).
        if let Some(value) = self.key("00100020").filter(|v| plain(v)) {
            criteria.push(("patient.identifier".into(), value.to_owned()));
        }
        if let Some(value) = self.key("00080050").filter(|v| plain(v)) {
            criteria.push(("identifier".into(), value.to_owned()));
        }
        if let Some(value) = self.key("00080016") {
            let values: Vec<String> = uids(value)
                .iter()
                .map(|c| format!("urn:ietf:rfc:3986|urn:oid:{c}"))
                .collect();
            if !values.is_empty() {
                criteria.push(("dicom-class".into(), values.join(",")));
            }
        }
        criteria
    }
}

/// A DICOM date (`YYYYMMDD`) `days` away, as a FHIR date; `None` for anything else.
fn shifted_day(date: &str, days: i64) -> Option<String> {
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, m, d) = (
        date[0..4].parse::<i64>().ok()?,
        date[4..6].parse::<i64>().ok()?,
        date[6..8].parse::<i64>().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (year, month, day) = fhir_model::calendar::civil_from_days(
        fhir_model::calendar::days_from_civil(y, m as u8, d as u8) + days,
    );
    (1..=9999)
        .contains(&year)
        .then(|| format!("{year:04}-{month:02}-{day:02}"))
}

/// A study the caller may see, as found.
pub struct Found {
    pub study: Value,
    /// `Patient/<id>`.
    pub patient: Option<String>,
}

/// The ImagingStudies that may hold matches of `query`, as `caller` may see them.
fn candidates(
    repository: &Repository,
    caller: &Caller,
    query: &Query,
) -> Result<Vec<Found>, ImagingError> {
    // A study query with no keys (a worklist's "latest studies") pages in the store: the
    // newest `offset + limit` studies, no more.
    let paged_in_store = query.level == Level::Study && query.keys.is_empty();
    let mut criteria = query.criteria();
    let count = if paged_in_store {
        criteria.push(("_sort".into(), "-started,_id".into()));
        query.offset.saturating_add(query.limit).min(MAX_CANDIDATES)
    } else {
        MAX_CANDIDATES
    };
    let records = repository
        .reader(caller)
        .find("ImagingStudy", &criteria, count)?;
    let mut found = Vec::with_capacity(records.len());
    for record in &records {
        let study = repository::parse_stored(record)?;
        let patient = study
            .pointer("/subject/reference")
            .and_then(Value::as_str)
            .map(str::to_owned);
        found.push(Found { study, patient });
    }
    if !paged_in_store {
        // Newest studies first, then by id: the order the store pages in.
        found.sort_by(|a, b| {
            let started = |s: &Value| {
                s.get("started")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            started(&b.study)
                .cmp(&started(&a.study))
                .then_with(|| a.study["id"].as_str().cmp(&b.study["id"].as_str()))
        });
    }
    Ok(found)
}

/// The answer to a query: the matches' DICOM JSON objects, and the patients they are about
/// (for the audit trail).
pub struct Answer {
    pub results: Vec<Map<String, Value>>,
    pub patients: Vec<String>,
}

/// Runs `query` as `caller`.
pub fn search(
    repository: &Repository,
    archive: &Archive,
    caller: &Caller,
    query: &Query,
) -> Result<Answer, ImagingError> {
    let mut results = Vec::new();
    let mut patients: Vec<String> = Vec::new();
    let mut skipped = 0;
    'studies: for found in candidates(repository, caller, query)? {
        let study_attributes = study_level(&found.study);
        if query.level == Level::Study {
            if !all_match(query, &study_attributes) {
                continue;
            }
            if skipped < query.offset {
                skipped += 1;
                continue;
            }
            let mut result = study_attributes;
            complete(archive, query, &found.study, None, None, &mut result)?;
            results.push(result);
            note(&mut patients, &found.patient);
            if results.len() >= query.limit {
                break;
            }
            continue;
        }
        for series in found
            .study
            .get("series")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut series_attributes = study_attributes.clone();
            series_attributes.extend(study::attributes_of(series));
            series_attributes.insert(
                "00201209".into(),
                json!({"vr": "IS", "Value": [series.get("instance").and_then(Value::as_array).map_or(0, Vec::len)]}),
            );
            if query.level == Level::Series {
                if !all_match(query, &series_attributes) {
                    continue;
                }
                if skipped < query.offset {
                    skipped += 1;
                    continue;
                }
                let mut result = series_attributes;
                complete(
                    archive,
                    query,
                    &found.study,
                    Some(series),
                    None,
                    &mut result,
                )?;
                results.push(result);
                note(&mut patients, &found.patient);
                if results.len() >= query.limit {
                    break 'studies;
                }
                continue;
            }
            for instance in series
                .get("instance")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let mut attributes = series_attributes.clone();
                attributes.extend(study::attributes_of(instance));
                if !all_match(query, &attributes) {
                    continue;
                }
                if skipped < query.offset {
                    skipped += 1;
                    continue;
                }
                complete(
                    archive,
                    query,
                    &found.study,
                    Some(series),
                    Some(instance),
                    &mut attributes,
                )?;
                results.push(attributes);
                note(&mut patients, &found.patient);
                if results.len() >= query.limit {
                    break 'studies;
                }
            }
        }
    }
    Ok(Answer { results, patients })
}

fn note(patients: &mut Vec<String>, patient: &Option<String>) {
    if let Some(patient) = patient
        && !patients.contains(patient)
    {
        patients.push(patient.clone());
    }
}

/// A study's attributes with the counts and modalities QIDO answers at the study level.
pub fn study_level(study: &Value) -> Map<String, Value> {
    let mut attributes = study::attributes_of(study);
    let modalities: Vec<Value> = study
        .get("modality")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("code").cloned())
        .collect();
    if !modalities.is_empty() {
        attributes.insert("00080061".into(), json!({"vr": "CS", "Value": modalities}));
    }
    for (tag, field) in [
        ("00201206", "numberOfSeries"),
        ("00201208", "numberOfInstances"),
    ] {
        if let Some(n) = study.get(field) {
            attributes.insert(tag.into(), json!({"vr": "IS", "Value": [n]}));
        }
    }
    attributes
}

/// Adds what `includefield` asks beyond the level's own attributes, from the stored
/// attributes of the level's first instance, and leaves out matching keys' attributes that
/// are not there (they are answered empty, as the matching key was sent).
fn complete(
    archive: &Archive,
    query: &Query,
    study: &Value,
    series: Option<&Value>,
    instance: Option<&Value>,
    result: &mut Map<String, Value>,
) -> Result<(), ImagingError> {
    let missing: Vec<&String> = query
        .include
        .iter()
        .filter(|t| !result.contains_key(*t))
        .collect();
    if query.include_all || !missing.is_empty() {
        let first_instance = instance.or_else(|| {
            series
                .or_else(|| study.get("series").and_then(|s| s.get(0)))
                .and_then(|s| s.get("instance"))
                .and_then(|i| i.get(0))
        });
        if let Some(object) = first_instance.and_then(StoredObject::of) {
            let stored = archive.attributes(&object).map_err(ImagingError::Storage)?;
            for (tag, value) in stored {
                let wanted = query.include_all || query.include.contains(&tag);
                let binary =
                    value.get("BulkDataURI").is_some() || value.get("InlineBinary").is_some();
                if wanted && !binary && !result.contains_key(&tag) {
                    result.insert(tag, value);
                }
            }
        }
    }
    for (tag, _) in &query.keys {
        if !result.contains_key(tag) {
            result.insert(tag.clone(), json!({"vr": vr_of(tag)}));
        }
    }
    Ok(())
}

fn all_match(query: &Query, attributes: &Map<String, Value>) -> bool {
    query
        .keys
        .iter()
        .all(|(tag, value)| matches(attributes, tag, value, query.fuzzy))
}

/// Whether `attributes` match key `tag` with `value` (PS3.4 C.2.2.2).
pub fn matches(attributes: &Map<String, Value>, tag: &str, value: &str, fuzzy: bool) -> bool {
    let value = value.trim();
    if value.is_empty() {
        return true;
    }
    let vr = attributes
        .get(tag)
        .and_then(|a| a.get("vr"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| vr_of(tag));
    let stored = texts(attributes, tag);
    if stored.is_empty() {
        return false;
    }
    match vr {
        "UI" => {
            let wanted: Vec<&str> = value.split([',', '\\']).map(str::trim).collect();
            stored.iter().any(|s| wanted.contains(&s.as_str()))
        }
        "DA" | "TM" if value.contains('-') => {
            let (low, high) = value.split_once('-').unwrap_or((value, value));
            let (low, high) = (low.trim(), high.trim());
            stored.iter().any(|s| {
                let s = s.trim();
                // A time is compared at the precision the range's end is written with.
                let head = s.get(..high.len().min(s.len())).unwrap_or(s);
                (low.is_empty() || s >= low) && (high.is_empty() || head <= high)
            })
        }
        "PN" => value.split('\\').any(|wanted| {
            stored.iter().any(|s| {
                s.split('=')
                    .any(|group| person_name_matches(group, wanted, fuzzy))
            })
        }),
        _ => value.split('\\').any(|wanted| {
            stored
                .iter()
                .any(|s| wildcard(s.trim(), wanted.trim(), false))
        }),
    }
}

fn person_name_matches(stored: &str, wanted: &str, fuzzy: bool) -> bool {
    let stored = stored.trim();
    if wildcard(stored, wanted, true) {
        return true;
    }
    // Components written with spaces or carets alike ("ZHANG SAN", "Zhang^San").
    let normal = |s: &str| {
        s.split(['^', ' ', ','])
            .filter(|p| !p.is_empty())
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    let stored_parts = normal(stored);
    if wildcard(&stored_parts.join(" "), &normal(wanted).join(" "), true) {
        return true;
    }
    if fuzzy {
        // Every word of the query begins some component of the name, in any order.
        let wanted = normal(wanted.trim_matches('*'));
        return !wanted.is_empty()
            && wanted
                .iter()
                .all(|w| stored_parts.iter().any(|p| p.starts_with(w.as_str())));
    }
    false
}

/// `*` and `?` matching (`?` one character); case-insensitive when `fold`.
fn wildcard(text: &str, pattern: &str, fold: bool) -> bool {
    let (text, pattern): (Vec<char>, Vec<char>) = if fold {
        (
            text.to_lowercase().chars().collect(),
            pattern.to_lowercase().chars().collect(),
        )
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    // Iterative matching with the last star's position for backtracking.
    let (mut t, mut p) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == '*' {
        p += 1;
    }
    p == pattern.len()
}
