//! Storing instances (STOW-RS): each part read, its file kept as a content-addressed object
//! (`dicom/<sha256>`), its attributes beside it (`dicom/<sha256>.json`), then, in one
//! transaction for the whole request, each study's ImagingStudy brought in step and the
//! Patient of each new study found or made. An instance whose SOP Instance UID was stored
//! before with other content replaces it (with a warning); the same content again changes
//! nothing.

use std::sync::Arc;

use blob::{BlobKey, BlobStore};
use caller::Caller;
use repository::{InTransaction, Repository, RepositoryError};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::ecg::{self, Measurements};
use crate::json::text;
use crate::part10::{self, Instance, Refusal};
use crate::study::{self, Put, StoredObject};

/// The identifier system of a DICOM Patient ID, in the namespace of its issuer (Issuer of
/// Patient ID) or, without one, of the institution that stored it.
pub const PATIENT_ID_SYSTEM: &str = "https://meridian.example/sid/dicom-patient-id/";
/// The system of resident ID numbers (GB 11643), which a Patient ID may be.
pub const RESIDENT_ID_SYSTEM: &str = "urn:oid:2.16.156.10011.1.3";

/// An instance read and kept, waiting for its record.
struct Ready {
    /// Its part's place in the request.
    index: usize,
    instance: Instance,
    object: StoredObject,
    /// An ECG's measurements, taken before the transaction.
    ecg: Option<Measurements>,
}

/// The archive: where instances' objects are kept.
pub struct Archive {
    blobs: Arc<dyn BlobStore>,
}

/// What became of one part of a STOW request.
#[derive(Debug, Clone)]
pub enum Outcome {
    Stored {
        sop_class: String,
        sop_instance: String,
        study: String,
        /// `Patient/<id>`: whom the study is about.
        patient: String,
        /// A warning for the sender (an earlier instance replaced).
        warning: Option<String>,
    },
    Failed {
        sop_class: Option<String>,
        sop_instance: Option<String>,
        refusal: Refusal,
    },
}

/// The object key of a stored file, and of its attributes.
pub fn object_key(sha256: &str) -> String {
    format!("dicom/{}/{sha256}", &sha256[..2])
}

fn attributes_key(sha256: &str) -> String {
    format!("dicom/{}/{sha256}.json", &sha256[..2])
}

impl Archive {
    pub fn new(blobs: Arc<dyn BlobStore>) -> Archive {
        Archive { blobs }
    }

    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// Stores the parts of one STOW request as `caller`. `study_in_url` is the study the
    /// request was addressed to (`POST /studies/{study}`): an instance of another study is
    /// refused. `dicomweb_base` is the DICOMweb base URL the studies' Endpoint points at.
    /// Fails as a whole only when the record cannot be written.
    pub fn store(
        &self,
        repository: &Repository,
        caller: &Caller,
        parts: &[&[u8]],
        study_in_url: Option<&str>,
        dicomweb_base: Option<&str>,
    ) -> Result<Vec<Outcome>, RepositoryError> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; parts.len()];
        let mut ready: Vec<Ready> = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            let failed = |refusal: Refusal, instance: Option<&Instance>| Outcome::Failed {
                sop_class: instance.map(|i| i.sop_class.clone()),
                sop_instance: instance.map(|i| i.sop_instance.clone()),
                refusal,
            };
            let instance = match part10::read(part) {
                Ok(instance) => instance,
                Err(refusal) => {
                    outcomes[index] = Some(failed(refusal, None));
                    continue;
                }
            };
            if let Some(expected) = study_in_url
                && expected != instance.study
            {
                let refusal = Refusal {
                    code: part10::DOES_NOT_MATCH_SOP_CLASS,
                    reason: format!(
                        "the instance belongs to study {}, not to study {expected} the request names",
                        instance.study
                    ),
                };
                outcomes[index] = Some(failed(refusal, Some(&instance)));
                continue;
            }
            match self.keep(&instance) {
                Ok(object) => {
                    let ecg = measure_ecg(&instance);
                    ready.push(Ready {
                        index,
                        instance,
                        object,
                        ecg,
                    });
                }
                Err(reason) => {
                    let refusal = Refusal {
                        code: part10::PROCESSING_FAILURE,
                        reason,
                    };
                    outcomes[index] = Some(failed(refusal, Some(&instance)));
                }
            }
        }
        // One transaction for the request; when the record refuses it (an instance whose
        // attributes make an invalid resource), each instance in a transaction of its own, so
        // that one bad instance fails alone.
        let batch = self.write(repository, caller, &ready, dicomweb_base);
        let written: Vec<Result<(String, Put), Refusal>> = match batch {
            Ok(written) => written.into_iter().map(Ok).collect(),
            Err(RepositoryError::Invalid(_) | RepositoryError::Unprocessable(_))
                if ready.len() > 1 =>
            {
                ready
                    .iter()
                    .map(|one| {
                        match self.write(
                            repository,
                            caller,
                            std::slice::from_ref(one),
                            dicomweb_base,
                        ) {
                            Ok(mut written) => Ok(written.remove(0)),
                            Err(
                                error @ (RepositoryError::Invalid(_)
                                | RepositoryError::Unprocessable(_)),
                            ) => Err(refused_by_record(&error)),
                            Err(other) => Err(Refusal {
                                code: part10::PROCESSING_FAILURE,
                                reason: other.to_string(),
                            }),
                        }
                    })
                    .collect()
            }
            Err(error @ (RepositoryError::Invalid(_) | RepositoryError::Unprocessable(_))) => {
                vec![Err(refused_by_record(&error))]
            }
            Err(other) => return Err(other),
        };
        for (
            Ready {
                index, instance, ..
            },
            written,
        ) in ready.into_iter().zip(written)
        {
            outcomes[index] = Some(match written {
                Ok((patient, put)) => Outcome::Stored {
                    sop_class: instance.sop_class,
                    sop_instance: instance.sop_instance.clone(),
                    study: instance.study,
                    patient,
                    warning: (put == Put::Replaced)
                        .then(|| {
                            format!(
                                "an earlier instance stored under SOP Instance UID {} was replaced by this one",
                                instance.sop_instance
                            )
                        })
                        .or(instance.coerced),
                },
                Err(refusal) => Outcome::Failed {
                    sop_class: Some(instance.sop_class),
                    sop_instance: Some(instance.sop_instance),
                    refusal,
                },
            });
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// Brings the studies of `ready` in step in one transaction; answers each instance's
    /// Patient and what became of it.
    fn write(
        &self,
        repository: &Repository,
        caller: &Caller,
        ready: &[Ready],
        dicomweb_base: Option<&str>,
    ) -> Result<Vec<(String, Put)>, RepositoryError> {
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        repository.run_in_transaction(caller, |tx| {
            let endpoint = match dicomweb_base {
                Some(base) => Some(endpoint(tx, base)?),
                None => None,
            };
            let endpoint = endpoint.as_deref();
            let mut written = Vec::with_capacity(ready.len());
            let mut studies: Vec<(String, Value, bool)> = Vec::new();
            // The studies that already hold any of the request's instances, found at once (an
            // instance that moved between studies leaves the one that held it).
            let uids: Vec<&str> = ready
                .iter()
                .map(|r| r.instance.sop_instance.as_str())
                .collect();
            for holder in tx.search(
                "ImagingStudy",
                &[("instance".into(), uids.join(","))],
                8 * ready.len(),
            )? {
                let resource = repository::parse_stored(&holder)?;
                studies.push((holder.id.clone(), resource, false));
            }
            for one in ready {
                let (patient, put) = put(tx, &mut studies, &one.instance, &one.object, endpoint)?;
                if let Some(measurements) = &one.ecg
                    && put != Put::Unchanged
                {
                    record_ecg(tx, &one.instance, &patient, measurements)?;
                }
                written.push((patient, put));
            }
            for (id, mut imaging_study, changed) in studies {
                if !changed {
                    continue;
                }
                study::recount(&mut imaging_study);
                // A study whose every instance moved to another is no longer in the archive.
                if imaging_study["numberOfInstances"] == 0 {
                    tx.delete("ImagingStudy", &id)?;
                } else {
                    tx.update(imaging_study, None)?;
                }
            }
            Ok(written)
        })
    }

    /// Keeps an instance's file and attributes as objects named by the file's SHA-256
    /// (written once: the same file again finds them there).
    fn keep(&self, instance: &Instance) -> Result<StoredObject, String> {
        let sha256: String = Sha256::digest(&instance.file)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let key = |k: String| BlobKey::new(k).map_err(|e| e.to_string());
        let file_key = key(object_key(&sha256))?;
        let size = instance.file.len() as u64;
        let stored = |k: &BlobKey, size: u64| {
            self.blobs
                .size(k)
                .map(|s| s == Some(size))
                .map_err(|e| format!("the archive's storage cannot be read: {e}"))
        };
        if !stored(&file_key, size)? {
            self.blobs
                .put(&file_key, &instance.file)
                .map_err(|e| format!("the archive's storage refused the instance: {e}"))?;
        }
        let attributes = serde_json::to_vec(&instance.dataset).unwrap_or_default();
        let attributes_key = key(attributes_key(&sha256))?;
        // The attributes are made again from the file when they are missing or damaged (after
        // a crash: they are written without waiting for the disk).
        if !stored(&attributes_key, attributes.len() as u64)? {
            self.blobs
                .put_derived(&attributes_key, &attributes)
                .map_err(|e| format!("the archive's storage refused the instance: {e}"))?;
        }
        Ok(StoredObject {
            sha256,
            transfer_syntax: instance.transfer_syntax.clone(),
            size,
        })
    }

    /// Deletes a study, or one of its series, as `caller` (who must see it); answers the
    /// study's Patient. The ImagingStudy goes (or loses the series) in one transaction; the
    /// removed instances' objects are removed from storage after it commits (an instance's
    /// file is its alone: the same bytes are the same SOP Instance UID, kept once).
    pub fn delete(
        &self,
        repository: &Repository,
        caller: &Caller,
        study_uid: &str,
        series: Option<&str>,
    ) -> Result<Option<String>, crate::ImagingError> {
        let (located, patient) = crate::wado::locate(repository, caller, study_uid, series, None)?;
        let id = study::study_id(study_uid);
        repository.run_in_transaction(caller, |tx| {
            let Some((_, mut imaging_study)) = tx.read("ImagingStudy", &id)? else {
                return Ok(());
            };
            for instance in &located {
                study::remove_instance(&mut imaging_study, &instance.instance);
            }
            let left = imaging_study
                .get("series")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            if left {
                study::recount(&mut imaging_study);
                tx.update(imaging_study, None)?;
            } else {
                tx.delete("ImagingStudy", &id)?;
            }
            Ok(())
        })?;
        for instance in &located {
            for key in [
                object_key(&instance.object.sha256),
                attributes_key(&instance.object.sha256),
            ] {
                if let Ok(key) = BlobKey::new(key)
                    && let Err(error) = self.blobs.delete(&key)
                {
                    tracing::warn!(%error, "a deleted instance's object could not be removed");
                }
            }
        }
        Ok(patient)
    }

    /// The attributes of a stored object (DICOM JSON, bulk data by relative reference): the
    /// kept copy, or, when it is missing or damaged, read again from the file and kept again.
    pub fn attributes(&self, object: &StoredObject) -> Result<Map<String, Value>, String> {
        let key = attributes_key(&object.sha256);
        if let Some(bytes) = self.get(&key)?
            && let Ok(attributes) = serde_json::from_slice(&bytes)
        {
            return Ok(attributes);
        }
        let file = self.file(object)?;
        let instance = part10::read(&file).map_err(|r| r.reason)?;
        let bytes = serde_json::to_vec(&instance.dataset).unwrap_or_default();
        if let Ok(key) = BlobKey::new(key)
            && let Err(error) = self.blobs.put_derived(&key, &bytes)
        {
            tracing::warn!(%error, "an object's attributes could not be kept again");
        }
        Ok(instance.dataset)
    }

    /// A stored object's file.
    pub fn file(&self, object: &StoredObject) -> Result<Vec<u8>, String> {
        self.get(&object_key(&object.sha256))?
            .ok_or_else(|| format!("the object {} is missing from storage", object.sha256))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let key = BlobKey::new(key).map_err(|e| e.to_string())?;
        self.blobs.get(&key).map_err(|e| e.to_string())
    }
}

/// The measurements of an ECG waveform instance; `None` for other instances, and for an ECG
/// that cannot be measured (too short, no beats found), which is stored all the same.
fn measure_ecg(instance: &Instance) -> Option<Measurements> {
    if !ecg::is_ecg(&instance.sop_class) {
        return None;
    }
    let measured = ecg::from_dicom(&instance.file)
        .map_err(|e| e.to_string())
        .and_then(|tracing| tracing.measure().map_err(|e| e.to_string()));
    match measured {
        Ok(measurements) => Some(measurements),
        Err(why) => {
            tracing::info!(sop_instance = %instance.sop_instance, %why, "ECG not measured");
            None
        }
    }
}

/// Writes an ECG's measurements as the Observation of its SOP Instance UID, derived from its
/// study, about the study's Patient.
fn record_ecg(
    tx: &mut InTransaction<'_, '_>,
    instance: &Instance,
    patient: &str,
    measurements: &Measurements,
) -> Result<(), RepositoryError> {
    let effective = study::date_time(&instance.dataset, "00080023", "00080033")
        .or_else(|| study::date_time(&instance.dataset, "00080020", "00080030"));
    let observation = ecg::record::observation(
        &ecg::record::measurement_id(&instance.sop_instance),
        patient,
        effective.as_deref(),
        &format!("ImagingStudy/{}", study::study_id(&instance.study)),
        (
            "urn:dicom:uid",
            &format!("urn:oid:{}", instance.sop_instance),
        ),
        measurements,
    );
    tx.update(observation, None)?;
    Ok(())
}

/// The failure of an instance whose record the repository refused.
fn refused_by_record(error: &RepositoryError) -> Refusal {
    Refusal {
        code: part10::PROCESSING_FAILURE,
        reason: format!("the instance's record could not be written: {error}"),
    }
}

/// The Endpoint of the DICOMweb base (`Endpoint/dicomweb-<hash of the base>`), made when
/// new; answers its reference.
fn endpoint(tx: &mut InTransaction<'_, '_>, base: &str) -> Result<String, RepositoryError> {
    let id = format!(
        "dicomweb-{:016x}",
        xxhash_rust::xxh3::xxh3_64(base.as_bytes())
    );
    if tx.read("Endpoint", &id)?.is_none() {
        tx.update(
            json!({
                "resourceType": "Endpoint",
                "id": id,
                "status": "active",
                "connectionType": {
                    "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                    "code": "dicom-wado-rs",
                },
                "name": "Meridian DICOMweb",
                "payloadType": [{"text": "DICOM"}],
                "payloadMimeType": ["application/dicom"],
                "address": base,
            }),
            None,
        )?;
    }
    Ok(format!("Endpoint/{id}"))
}

/// Puts one instance into its study (read once per transaction and kept in `studies`, which
/// holds every study that held one of the request's instances), moving it out of another
/// study that held its SOP Instance UID; answers the study's Patient and what became of the
/// instance.
fn put(
    tx: &mut InTransaction<'_, '_>,
    studies: &mut Vec<(String, Value, bool)>,
    instance: &Instance,
    object: &StoredObject,
    endpoint: Option<&str>,
) -> Result<(String, Put), RepositoryError> {
    let id = study::study_id(&instance.study);
    let mut moved = false;
    for (_, holder, changed) in studies.iter_mut().filter(|(i, _, _)| *i != id) {
        if study::remove_instance(holder, &instance.sop_instance) {
            *changed = true;
            moved = true;
        }
    }
    let at = match studies.iter().position(|(i, _, _)| *i == id) {
        Some(at) => at,
        None => {
            let resource = match tx.read("ImagingStudy", &id)? {
                Some((_, resource)) => resource,
                None => {
                    let patient = patient_of(tx, &instance.dataset)?;
                    study::new_study(&instance.dataset, &patient, endpoint)
                }
            };
            studies.push((id.clone(), resource, false));
            studies.len() - 1
        }
    };
    let (_, imaging_study, changed) = &mut studies[at];
    let put = study::put_instance(imaging_study, &instance.dataset, object);
    if put != Put::Unchanged {
        study::refresh_study_level(imaging_study, &instance.dataset);
        *changed = true;
    }
    let patient = imaging_study
        .pointer("/subject/reference")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok((
        patient,
        if moved && put == Put::Added {
            Put::Replaced
        } else {
            put
        },
    ))
}

/// The Patient carrying the data set's Patient ID in its issuer's namespace (or the storing
/// institution's), made from the data set's patient attributes when there is none; the
/// master patient index matches a new one to the resident like any registration.
fn patient_of(
    tx: &mut InTransaction<'_, '_>,
    dataset: &Map<String, Value>,
) -> Result<String, RepositoryError> {
    let patient_id = text(dataset, "00100020")
        .map(|p| p.trim().to_owned())
        .unwrap_or_default();
    let namespace = text(dataset, "00100021")
        .filter(|i| !i.trim().is_empty())
        .or_else(|| {
            tx.ctx()
                .organization
                .as_deref()
                .map(|o| o.trim_start_matches("Organization/").to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let namespace: String = namespace
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    // Without a Patient ID the study's patient is one of its own.
    let (system, value) = if patient_id.is_empty() {
        (
            format!("{PATIENT_ID_SYSTEM}study"),
            text(dataset, "0020000D").unwrap_or_default(),
        )
    } else {
        (
            format!("{PATIENT_ID_SYSTEM}{namespace}"),
            patient_id.clone(),
        )
    };
    let id = format!(
        "dcm-{:032x}",
        xxhash_rust::xxh3::xxh3_128(format!("{system}|{value}").as_bytes())
    );
    if tx.read("Patient", &id)?.is_some() {
        return Ok(format!("Patient/{id}"));
    }
    let mut identifiers = vec![json!({"system": system, "value": value})];
    let resident = patient_id.to_ascii_uppercase();
    if resident.len() == 18 && resident[..17].bytes().all(|b| b.is_ascii_digit()) {
        identifiers.push(json!({"system": RESIDENT_ID_SYSTEM, "value": resident}));
    }
    let mut patient = json!({"resourceType": "Patient", "id": id, "identifier": identifiers});
    let names = human_names(dataset);
    if !names.is_empty() {
        patient["name"] = Value::Array(names);
    }
    if let Some(birth) = text(dataset, "00100030")
        .filter(|b| b.len() == 8 && b.bytes().all(|c| c.is_ascii_digit()))
        .map(|b| format!("{}-{}-{}", &b[0..4], &b[4..6], &b[6..8]))
        .filter(|b| fhir_model::clock::parse_range(b).is_some())
    {
        patient["birthDate"] = json!(birth);
    }
    if let Some(gender) = match text(dataset, "00100040").as_deref().map(str::trim) {
        Some("M") => Some("male"),
        Some("F") => Some("female"),
        Some("O") => Some("other"),
        _ => None,
    } {
        patient["gender"] = json!(gender);
    }
    tx.update(patient, None)?;
    Ok(format!("Patient/{id}"))
}

/// A DICOM person name's groups as FHIR HumanNames: the alphabetic one by its components
/// (family^given^middle^prefix^suffix), the ideographic one as its text and family/given.
fn human_names(dataset: &Map<String, Value>) -> Vec<Value> {
    let Some(name) = dataset
        .get("00100010")
        .and_then(|a| a.get("Value"))
        .and_then(|v| v.get(0))
    else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for group in ["Alphabetic", "Ideographic", "Phonetic"] {
        // A group in a character set that was not decoded (ISO 2022 escapes) is no name.
        let Some(text) = name
            .get(group)
            .and_then(Value::as_str)
            .filter(|t| !t.chars().any(char::is_control))
        else {
            continue;
        };
        let parts: Vec<&str> = text.split('^').map(str::trim).collect();
        let mut human = Map::new();
        human.insert("use".into(), json!("official"));
        if group == "Ideographic" {
            human.insert(
                "text".into(),
                json!(parts.iter().take(2).copied().collect::<String>()),
            );
        }
        if let Some(family) = parts.first().filter(|f| !f.is_empty()) {
            human.insert("family".into(), json!(family));
        }
        let given: Vec<&str> = parts
            .iter()
            .skip(1)
            .take(2)
            .filter(|g| !g.is_empty())
            .copied()
            .collect();
        if !given.is_empty() {
            human.insert("given".into(), json!(given));
        }
        if human.len() > 1 {
            names.push(Value::Object(human));
        }
    }
    names
}
