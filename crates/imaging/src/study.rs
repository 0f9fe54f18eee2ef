//! The FHIR `ImagingStudy` that describes a stored study, kept in step with its instances: one
//! per Study Instance UID (its id derived from the UID), its series and instances, the
//! modalities, the start, the accession number and an endpoint at the DICOMweb base. Each
//! instance names its stored object (the SHA-256 of its file, its transfer syntax and size);
//! the study, each series and each instance carry their DICOM attributes of their level in
//! the DICOM JSON model (extension `dicom-attributes`), which QIDO answers from.

use serde_json::{Map, Value, json};

use crate::json::{text, texts};

/// The extension with an instance's stored object.
pub const OBJECT_EXTENSION: &str = "https://meridian.example/fhir/StructureDefinition/dicom-object";
/// The extension with a level's DICOM attributes (DICOM JSON, as text).
pub const ATTRIBUTES_EXTENSION: &str =
    "https://meridian.example/fhir/StructureDefinition/dicom-attributes";
/// The DICOM code system (modalities).
pub const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// The identifier system of DICOM UIDs (`urn:oid:<uid>` values).
pub const DICOM_UID: &str = "urn:dicom:uid";

/// The ImagingStudy id of a Study Instance UID.
pub fn study_id(study_uid: &str) -> String {
    format!(
        "dcm-{:032x}",
        xxhash_rust::xxh3::xxh3_128(study_uid.as_bytes())
    )
}

/// The attributes QIDO answers at each level (PS3.18 table 10.6.1-5; with the patient's at
/// the study level), by tag.
pub const STUDY_TAGS: &[&str] = &[
    "00080005", "00080020", "00080030", "00080050", "00080051", "00080056", "00080090", "00080201",
    "00081030", "00081032", "00100010", "00100020", "00100021", "00100030", "00100040", "00101010",
    "0020000D", "00200010",
];
pub const SERIES_TAGS: &[&str] = &[
    "00080005", "00080021", "00080031", "00080060", "0008103E", "00081050", "00180015", "0020000E",
    "00200011", "00200060", "00400244", "00400245",
];
pub const INSTANCE_TAGS: &[&str] = &[
    "00080005", "00080016", "00080018", "00080023", "00080033", "00200013", "00280008", "00280010",
    "00280011", "00280100", "00420011", "0040A043", "0040A491", "0040A493",
];

/// The attributes of `dataset` named by `tags` (those it has).
pub fn level_attributes(dataset: &Map<String, Value>, tags: &[&str]) -> Map<String, Value> {
    tags.iter()
        .filter_map(|tag| dataset.get(*tag).map(|v| ((*tag).to_owned(), v.clone())))
        .collect()
}

/// A level's DICOM attributes as kept on the ImagingStudy.
pub fn attributes_of(element: &Value) -> Map<String, Value> {
    extension(element, ATTRIBUTES_EXTENSION)
        .and_then(|e| e.get("valueString"))
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// The extension of `element` (or of a complex extension) with `url`.
fn extension<'v>(element: &'v Value, url: &str) -> Option<&'v Value> {
    element
        .get("extension")?
        .as_array()?
        .iter()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(url))
}

fn attributes_extension(attributes: &Map<String, Value>) -> Value {
    json!({"url": ATTRIBUTES_EXTENSION, "valueString": Value::Object(attributes.clone()).to_string()})
}

/// What an instance's entry on the ImagingStudy says of its stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub sha256: String,
    pub transfer_syntax: String,
    pub size: u64,
}

impl StoredObject {
    pub fn of(instance: &Value) -> Option<StoredObject> {
        let object = extension(instance, OBJECT_EXTENSION)?;
        let part = |name: &str| extension(object, name);
        Some(StoredObject {
            sha256: part("sha256")?.get("valueString")?.as_str()?.to_owned(),
            transfer_syntax: part("transferSyntax")?
                .get("valueOid")?
                .as_str()?
                .trim_start_matches("urn:oid:")
                .to_owned(),
            size: part("size")?.get("valueDecimal")?.as_u64()?,
        })
    }

    fn extension(&self) -> Value {
        json!({"url": OBJECT_EXTENSION, "extension": [
            {"url": "sha256", "valueString": self.sha256},
            {"url": "transferSyntax", "valueOid": format!("urn:oid:{}", self.transfer_syntax)},
            {"url": "size", "valueDecimal": self.size},
        ]})
    }
}

/// What became of an instance put into a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// New to the study.
    Added,
    /// The same object was there already.
    Unchanged,
    /// Another object under the same SOP Instance UID was there, and is replaced.
    Replaced,
}

/// Puts an instance (its data set and stored object) into `study` (an ImagingStudy), adding
/// its series when new.
pub fn put_instance(study: &mut Value, dataset: &Map<String, Value>, object: &StoredObject) -> Put {
    let series_uid = text(dataset, "0020000E").unwrap_or_default();
    let sop_uid = text(dataset, "00080018").unwrap_or_default();
    let series_list = study
        .as_object_mut()
        .expect("an ImagingStudy is an object")
        .entry("series")
        .or_insert_with(|| Value::Array(Vec::new()));
    let series_list = series_list.as_array_mut().expect("series is an array");
    let position = series_list
        .iter()
        .position(|s| s.get("uid").and_then(Value::as_str) == Some(series_uid.as_str()));
    let series = match position {
        Some(position) => &mut series_list[position],
        None => {
            series_list.push(new_series(dataset));
            series_list.last_mut().expect("just pushed")
        }
    };
    let instances = series
        .as_object_mut()
        .expect("a series is an object")
        .entry("instance")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .expect("instance is an array");
    let entry = new_instance(dataset, object);
    match instances
        .iter()
        .position(|i| i.get("uid").and_then(Value::as_str) == Some(sop_uid.as_str()))
    {
        Some(at) if StoredObject::of(&instances[at]).as_ref() == Some(object) => Put::Unchanged,
        Some(at) => {
            instances[at] = entry;
            Put::Replaced
        }
        None => {
            instances.push(entry);
            Put::Added
        }
    }
}

/// Removes the instance `sop_uid` from `study`, with its series when it was the last;
/// answers whether it was there.
pub fn remove_instance(study: &mut Value, sop_uid: &str) -> bool {
    let Some(series_list) = study.get_mut("series").and_then(Value::as_array_mut) else {
        return false;
    };
    let mut removed = false;
    for series in series_list.iter_mut() {
        if let Some(instances) = series.get_mut("instance").and_then(Value::as_array_mut) {
            let before = instances.len();
            instances.retain(|i| i.get("uid").and_then(Value::as_str) != Some(sop_uid));
            removed |= instances.len() != before;
        }
    }
    series_list.retain(|s| {
        s.get("instance")
            .and_then(Value::as_array)
            .is_some_and(|i| !i.is_empty())
    });
    removed
}

fn coding_of_modality(modality: &str) -> Value {
    json!({"system": DCM, "code": modality})
}

fn new_series(dataset: &Map<String, Value>) -> Value {
    let mut series = Map::new();
    series.insert(
        "uid".into(),
        json!(text(dataset, "0020000E").unwrap_or_default()),
    );
    if let Some(number) = text(dataset, "00200011").and_then(|n| n.parse::<u32>().ok()) {
        series.insert("number".into(), json!(number));
    }
    series.insert(
        "modality".into(),
        coding_of_modality(&text(dataset, "00080060").unwrap_or_else(|| "OT".into())),
    );
    if let Some(description) = text(dataset, "0008103E").filter(|d| !d.is_empty()) {
        series.insert("description".into(), json!(description));
    }
    if let Some(body_part) = text(dataset, "00180015").filter(|b| !b.is_empty()) {
        series.insert("bodySite".into(), json!({"display": body_part}));
    }
    if let Some(started) = date_time(dataset, "00080021", "00080031") {
        series.insert("started".into(), json!(started));
    }
    series.insert(
        "extension".into(),
        json!([attributes_extension(&level_attributes(
            dataset,
            SERIES_TAGS
        ))]),
    );
    series.insert("instance".into(), json!([]));
    Value::Object(series)
}

fn new_instance(dataset: &Map<String, Value>, object: &StoredObject) -> Value {
    let mut instance = Map::new();
    instance.insert(
        "extension".into(),
        json!([
            object.extension(),
            attributes_extension(&level_attributes(dataset, INSTANCE_TAGS))
        ]),
    );
    instance.insert(
        "uid".into(),
        json!(text(dataset, "00080018").unwrap_or_default()),
    );
    instance.insert(
        "sopClass".into(),
        json!({"system": "urn:ietf:rfc:3986", "code": format!("urn:oid:{}", text(dataset, "00080016").unwrap_or_default())}),
    );
    if let Some(number) = text(dataset, "00200013").and_then(|n| n.parse::<u32>().ok()) {
        instance.insert("number".into(), json!(number));
    }
    Value::Object(instance)
}

/// A new ImagingStudy for the study of `dataset`, about `patient` (`Patient/<id>`).
pub fn new_study(dataset: &Map<String, Value>, patient: &str, endpoint: Option<&str>) -> Value {
    let uid = text(dataset, "0020000D").unwrap_or_default();
    let mut study = json!({
        "resourceType": "ImagingStudy",
        "id": study_id(&uid),
        "status": "available",
        "identifier": [{"system": DICOM_UID, "value": format!("urn:oid:{uid}")}],
        "subject": {"reference": patient},
    });
    if let Some(endpoint) = endpoint {
        study["endpoint"] = json!([{"reference": endpoint}]);
    }
    refresh_study_level(&mut study, dataset);
    study
}

/// Takes the study-level attributes from `dataset` (the latest instance stored).
pub fn refresh_study_level(study: &mut Value, dataset: &Map<String, Value>) {
    let uid = text(dataset, "0020000D").unwrap_or_default();
    let mut identifiers = vec![json!({"system": DICOM_UID, "value": format!("urn:oid:{uid}")})];
    if let Some(accession) = text(dataset, "00080050").filter(|a| !a.is_empty()) {
        identifiers.push(json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]},
            "value": accession,
        }));
    }
    study["identifier"] = Value::Array(identifiers);
    match date_time(dataset, "00080020", "00080030") {
        Some(started) => study["started"] = json!(started),
        None => {
            if let Some(object) = study.as_object_mut() {
                object.remove("started");
            }
        }
    }
    if let Some(description) = text(dataset, "00081030").filter(|d| !d.is_empty()) {
        study["description"] = json!(description);
    }
    study["extension"] = json!([attributes_extension(&level_attributes(dataset, STUDY_TAGS))]);
}

/// Counts and modalities, after instances were put or removed.
pub fn recount(study: &mut Value) {
    let series = study
        .get("series")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut modalities: Vec<String> = Vec::new();
    let mut instances = 0;
    let mut counted_series = Vec::new();
    for mut s in series {
        let count = s
            .get("instance")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        instances += count;
        s["numberOfInstances"] = json!(count);
        if let Some(code) = s.pointer("/modality/code").and_then(Value::as_str)
            && !modalities.iter().any(|m| m == code)
        {
            modalities.push(code.to_owned());
        }
        counted_series.push(s);
    }
    study["numberOfSeries"] = json!(counted_series.len());
    study["numberOfInstances"] = json!(instances);
    study["series"] = Value::Array(counted_series);
    study["modality"] = Value::Array(modalities.iter().map(|m| coding_of_modality(m)).collect());
}

/// A FHIR date or dateTime from a DICOM date and time (`YYYYMMDD`, `HHMMSS.FFFFFF`): a time
/// needs a zone in FHIR; DICOM's Timezone Offset From UTC when the data set has one, China
/// Standard Time (the region's) otherwise.
pub fn date_time(dataset: &Map<String, Value>, date_tag: &str, time_tag: &str) -> Option<String> {
    let date = text(dataset, date_tag)?;
    let date = date.trim();
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let day = format!("{}-{}-{}", &date[0..4], &date[4..6], &date[6..8]);
    fhir_model::clock::parse_range(&day)?;
    let Some(time) = text(dataset, time_tag) else {
        return Some(day);
    };
    let digits: String = time
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.len() < 4 {
        return Some(day);
    }
    let (h, m) = (&digits[0..2], &digits[2..4]);
    let s = digits.get(4..6).unwrap_or("00");
    if h > "23" || m > "59" || s > "59" {
        return Some(day);
    }
    let zone = texts(dataset, "00080201")
        .first()
        .filter(|z| z.len() == 5 && (z.starts_with('+') || z.starts_with('-')))
        .map(|z| format!("{}:{}", &z[0..3], &z[3..5]))
        .unwrap_or_else(|| "+08:00".into());
    Some(format!("{day}T{h}:{m}:{s}{zone}"))
}
