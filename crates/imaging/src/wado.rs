//! WADO-RS: the stored instances of a study, a series or one instance, found through the
//! caller's read path (a study the caller may not see is not found), and their attributes.

use caller::Caller;
use repository::Repository;
use serde_json::{Map, Value};

use crate::ImagingError;
use crate::study::{self, StoredObject};

/// One stored instance to retrieve.
#[derive(Debug, Clone)]
pub struct Located {
    pub series: String,
    pub instance: String,
    pub object: StoredObject,
}

/// The instances of `study` (of `series`, or the one `instance`), as `caller` may see them,
/// with the study's Patient (`Patient/<id>`).
pub fn locate(
    repository: &Repository,
    caller: &Caller,
    study_uid: &str,
    series: Option<&str>,
    instance: Option<&str>,
) -> Result<(Vec<Located>, Option<String>), ImagingError> {
    let id = study::study_id(study_uid);
    let record = repository
        .reader(caller)
        .current("ImagingStudy", &id)?
        .filter(|record| !record.is_deleted())
        .ok_or_else(|| ImagingError::NotFound(format!("there is no study {study_uid}")))?;
    let resource = repository::parse_stored(&record)?;
    let patient = resource
        .pointer("/subject/reference")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut located = Vec::new();
    for s in resource
        .get("series")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let series_uid = s.get("uid").and_then(Value::as_str).unwrap_or_default();
        if series.is_some_and(|wanted| wanted != series_uid) {
            continue;
        }
        for i in s
            .get("instance")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let instance_uid = i.get("uid").and_then(Value::as_str).unwrap_or_default();
            if instance.is_some_and(|wanted| wanted != instance_uid) {
                continue;
            }
            if let Some(object) = StoredObject::of(i) {
                located.push(Located {
                    series: series_uid.to_owned(),
                    instance: instance_uid.to_owned(),
                    object,
                });
            }
        }
    }
    if located.is_empty() {
        let what = match (series, instance) {
            (_, Some(instance)) => format!("there is no instance {instance} in study {study_uid}"),
            (Some(series), None) => format!("there is no series {series} in study {study_uid}"),
            _ => format!("study {study_uid} holds no instances"),
        };
        return Err(ImagingError::NotFound(what));
    }
    Ok((located, patient))
}

/// `attributes` with every relative bulk data reference made absolute under `base` (the
/// instance's WADO-RS URL, ending with `/`).
pub fn with_bulk_base(mut attributes: Map<String, Value>, base: &str) -> Map<String, Value> {
    fn walk(value: &mut Value, base: &str) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(uri)) = map.get_mut("BulkDataURI")
                    && uri.starts_with(crate::json::BULK_PREFIX)
                {
                    *uri = format!("{base}{uri}");
                }
                for v in map.values_mut() {
                    walk(v, base);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, base)),
            _ => {}
        }
    }
    for value in attributes.values_mut() {
        walk(value, base);
    }
    attributes
}
