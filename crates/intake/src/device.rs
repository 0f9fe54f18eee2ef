//! Readings from village kiosks and other devices (`docs/intake.md`, "Device intake").
//!
//! An upload is a JSON document signed by the device as a JWS (compact serialisation, HS256,
//! `kid` the `Device` id) with the secret the platform issued it ([`issue_secret`]); the same
//! bytes arrive over MQTT or HTTPS. Each reading becomes one vital-signs `Observation` whose id
//! is derived from the device and the reading's own id, so a reading sent twice (an offline
//! batch sent again, a lost acknowledgement) is found and not written again, whatever the order
//! batches arrive in. The Observation carries the time of measurement, not of upload. A reading
//! that cannot be an Observation (an impossible value, an unknown unit, an unknown resident) is
//! refused with a reason the kiosk can show, and kept for review (`intake/device/refused/...`).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use caller::Caller;
use repository::{InTransaction, Repository, RepositoryError};
use serde_json::{Value, json};

/// The identifier system of a Chinese resident ID number (GB 11643).
pub const RESIDENT_ID_SYSTEM: &str = "urn:oid:2.16.156.10011.1.3";
/// Readings' identifiers: this prefix and the device id.
pub const READING_SYSTEM: &str = "https://meridian.example/sid/device-reading/";
const KEY: &str = "intake/device/key/";
const REFUSED: &str = "intake/device/refused/";
/// Readings per upload at most.
pub const MAX_READINGS: usize = 5_000;

/// Why an upload as a whole is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    #[error("the upload is not a JWS signed by a registered device: {0}")]
    Unauthenticated(String),
    #[error("the upload is malformed: {0}")]
    Malformed(String),
    #[error("the platform cannot check uploads now, send it again later: {0}")]
    Unavailable(String),
}

/// What became of one reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadingStatus {
    /// Written now: the Observation and its patient.
    Accepted {
        observation: String,
        patient: String,
    },
    /// Written before (the same device and reading id).
    Duplicate(String),
    /// Refused, with the reason, and kept for review.
    Refused(String),
}

/// A verified upload: the device and its readings.
#[derive(Debug, Clone)]
pub struct Upload {
    pub device: String,
    pub readings: Vec<Value>,
}

/// A new secret for a device (32 random bytes, base64url), kept for verifying its uploads.
/// Replaces any earlier one.
pub fn issue_secret(repository: &Repository, device: &str) -> Result<String, RepositoryError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| RepositoryError::Internal(format!("no randomness: {e}")))?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut tx = repository.store().begin()?;
    tx.set_checkpoint(
        &format!("{KEY}{device}"),
        Some(&json!({"secret": secret}).to_string()),
    )?;
    tx.commit()?;
    Ok(secret)
}

/// The secret of a device, if one was issued.
pub fn device_secret(
    repository: &Repository,
    device: &str,
) -> Result<Option<Vec<u8>>, RepositoryError> {
    let Some(text) = repository.store().checkpoint(&format!("{KEY}{device}"))? else {
        return Ok(None);
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| RepositoryError::Internal(format!("a device key does not parse: {e}")))?;
    Ok(value.get("secret").and_then(Value::as_str).and_then(|s| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()
    }))
}

/// Answers a device's secret (`None`: it has none).
pub type SecretOf<'a> = &'a dyn Fn(&str) -> Result<Option<Vec<u8>>, RepositoryError>;

/// Verifies an upload's signature and reads it. `secret` answers a device's secret.
pub fn verify(jws: &str, secret: SecretOf<'_>) -> Result<Upload, UploadError> {
    let jws = jws.trim();
    let header = jsonwebtoken::decode_header(jws)
        .map_err(|e| UploadError::Unauthenticated(format!("not a JWS ({e})")))?;
    if header.alg != jsonwebtoken::Algorithm::HS256 {
        return Err(UploadError::Unauthenticated(
            "uploads are signed with HS256".into(),
        ));
    }
    let device = header
        .kid
        .filter(|kid| repository::meta::is_valid_id(kid))
        .ok_or_else(|| {
            UploadError::Unauthenticated("the JWS header names no device (kid)".into())
        })?;
    let key = secret(&device)
        .map_err(|e| {
            UploadError::Unauthenticated(format!("the device's key cannot be read now: {e}"))
        })?
        .ok_or_else(|| {
            UploadError::Unauthenticated(format!("Device/{device} has no credentials"))
        })?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Value>(
        jws,
        &jsonwebtoken::DecodingKey::from_secret(&key),
        &validation,
    )
    .map_err(|e| UploadError::Unauthenticated(format!("the signature does not verify ({e})")))?;
    let payload = data.claims;
    if let Some(named) = payload.get("device").and_then(Value::as_str)
        && named != device
    {
        return Err(UploadError::Malformed(format!(
            "the upload names device '{named}' but is signed by '{device}'"
        )));
    }
    let readings = payload
        .get("readings")
        .and_then(Value::as_array)
        .ok_or_else(|| UploadError::Malformed("'readings' must be an array".into()))?;
    if readings.len() > MAX_READINGS {
        return Err(UploadError::Malformed(format!(
            "an upload carries at most {MAX_READINGS} readings"
        )));
    }
    Ok(Upload {
        device,
        readings: readings.clone(),
    })
}

/// One kind of reading: its LOINC code, its values and their units.
struct Kind {
    name: &'static str,
    code: &'static str,
    display: &'static str,
    text: &'static str,
    /// (value name in the payload, component code and display; `None` for a single value).
    parts: &'static [(&'static str, Option<(&'static str, &'static str)>)],
    /// The UCUM unit written, and the units accepted with their factor and offset to it.
    unit: &'static str,
    units: &'static [(&'static str, f64, f64)],
    /// The plausible range in `unit`: outside it the reading is refused.
    range: (f64, f64),
    places: usize,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "blood-pressure",
        code: "85354-9",
        display: "Blood pressure panel with all children optional",
        text: "血压",
        parts: &[
            ("systolic", Some(("8480-6", "Systolic blood pressure"))),
            ("diastolic", Some(("8462-4", "Diastolic blood pressure"))),
        ],
        unit: "mm[Hg]",
        units: &[
            ("mm[Hg]", 1.0, 0.0),
            ("mmHg", 1.0, 0.0),
            ("kPa", 7.500_617, 0.0),
        ],
        range: (20.0, 300.0),
        places: 0,
    },
    Kind {
        name: "heart-rate",
        code: "8867-4",
        display: "Heart rate",
        text: "心率",
        parts: &[("value", None)],
        unit: "/min",
        units: &[
            ("/min", 1.0, 0.0),
            ("{beats}/min", 1.0, 0.0),
            ("bpm", 1.0, 0.0),
        ],
        range: (20.0, 300.0),
        places: 0,
    },
    Kind {
        name: "spo2",
        code: "59408-5",
        display: "Oxygen saturation in Arterial blood by Pulse oximetry",
        text: "血氧饱和度",
        parts: &[("value", None)],
        unit: "%",
        units: &[("%", 1.0, 0.0)],
        range: (50.0, 100.0),
        places: 0,
    },
    Kind {
        name: "glucose",
        code: "14743-9",
        display: "Glucose [Moles/volume] in Capillary blood by Glucometer",
        text: "指尖血糖",
        parts: &[("value", None)],
        unit: "mmol/L",
        units: &[("mmol/L", 1.0, 0.0), ("mg/dL", 1.0 / 18.016, 0.0)],
        range: (0.6, 40.0),
        places: 1,
    },
    Kind {
        name: "weight",
        code: "29463-7",
        display: "Body weight",
        text: "体重",
        parts: &[("value", None)],
        unit: "kg",
        units: &[
            ("kg", 1.0, 0.0),
            ("g", 0.001, 0.0),
            ("[lb_av]", 0.453_592_37, 0.0),
        ],
        range: (0.5, 400.0),
        places: 1,
    },
    Kind {
        name: "temperature",
        code: "8310-5",
        display: "Body temperature",
        text: "体温",
        parts: &[("value", None)],
        unit: "Cel",
        units: &[("Cel", 1.0, 0.0), ("[degF]", 5.0 / 9.0, -32.0 * 5.0 / 9.0)],
        range: (30.0, 45.0),
        places: 1,
    },
];

/// A reading's patient-independent content: the Observation's code and value(s) and its time
/// of measurement, or the reason it is refused (what the fuzz target `kiosk_reading` checks).
pub fn reading_observation(reading: &Value, now_micros: i64) -> Result<(Value, String), String> {
    let (_, content) = reading_content(reading)?;
    let (text, micros) = measured_instant(reading)?;
    Ok((content, in_the_past(text, micros, now_micros)?))
}

/// A reading's patient-independent content: the Observation's code and value(s).
fn reading_content(reading: &Value) -> Result<(String, Value), String> {
    let kind_name = reading
        .get("type")
        .and_then(Value::as_str)
        .ok_or("the reading has no 'type'")?;
    let kind = KINDS.iter().find(|k| k.name == kind_name).ok_or_else(|| {
        format!(
            "unknown reading type '{kind_name}' (known: {})",
            KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
        )
    })?;
    let unit = reading
        .get("unit")
        .and_then(Value::as_str)
        .unwrap_or(kind.unit);
    let &(_, factor, offset) = kind
        .units
        .iter()
        .find(|(name, _, _)| *name == unit)
        .ok_or_else(|| {
            format!(
                "unknown unit '{unit}' for {kind_name} (accepted: {})",
                kind.units
                    .iter()
                    .map(|u| u.0)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let mut values = Vec::new();
    for (name, _) in kind.parts {
        let raw = reading
            .get(*name)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{kind_name} needs a number '{name}'"))?;
        let value = raw * factor + offset;
        if value < kind.range.0 || value > kind.range.1 {
            return Err(format!(
                "{name} {raw} {unit} is impossible (a {kind_name} lies between {} and {} {})",
                kind.range.0, kind.range.1, kind.unit
            ));
        }
        values.push(value);
    }
    if kind.name == "blood-pressure" && values[0] <= values[1] {
        return Err(format!(
            "systolic {} must be higher than diastolic {}",
            values[0], values[1]
        ));
    }
    let quantity = |value: f64| {
        let text = format!("{value:.prec$}", prec = kind.places);
        json!({"value": text.parse::<serde_json::Number>().map(Value::Number).unwrap_or(Value::Null),
            "unit": kind.unit, "system": "http://unitsofmeasure.org", "code": kind.unit})
    };
    let mut content = json!({
        "code": {"coding": [{"system": "http://loinc.org", "code": kind.code, "display": kind.display}], "text": kind.text},
    });
    if kind.parts[0].1.is_some() {
        content["component"] = kind
            .parts
            .iter()
            .zip(&values)
            .map(|((_, code), value)| {
                let (code, display) = code.unwrap_or(("", ""));
                json!({"code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
                    "valueQuantity": quantity(*value)})
            })
            .collect();
    } else {
        content["valueQuantity"] = quantity(values[0]);
    }
    Ok((kind.name.to_owned(), content))
}

/// The time of measurement as given, and as an instant (microseconds since 1970): a dateTime
/// with a time zone.
fn measured_instant(reading: &Value) -> Result<(&str, i64), String> {
    let text = reading
        .get("measured")
        .and_then(Value::as_str)
        .ok_or("the reading has no 'measured' time")?;
    let zoned = text
        .split_once('T')
        .is_some_and(|(_, time)| time.ends_with('Z') || time.contains('+') || time.contains('-'));
    let micros = fhir_model::clock::parse_instant(text)
        .filter(|_| zoned)
        .ok_or_else(|| {
            format!("'measured' must be a date and time with a time zone, not '{text}'")
        })?;
    Ok((text, micros))
}

/// The time of measurement, unless it lies in the future (beyond a clock's drift).
fn in_the_past(text: &str, micros: i64, now_micros: i64) -> Result<String, String> {
    if micros > now_micros + 10 * 60 * 1_000_000 {
        return Err(format!("'measured' {text} is in the future"));
    }
    Ok(text.to_owned())
}

/// A reading's Observation id: the same for the same kiosk, reading id and time of
/// measurement (so a reading sent again is found, and two servers writing it at once meet at
/// the store's unique id), and in the order of measurement. Ids hashed whole took each row
/// of the store's `(type, id)` index and of the trail's references to it at a random place,
/// a page written per reading; in measurement order, live readings land together at the
/// index's end (BENCHMARKS.md, "Fewer pages per reading").
fn observation_id(device: &str, reading: &str, measured_micros: i64) -> String {
    let millis = (measured_micros.max(0) / 1_000).min(0xffff_ffff_ffff);
    let hash = xxhash_rust::xxh3::xxh3_128(format!("{device}\0{reading}").as_bytes());
    format!("rd-{millis:012x}{:020x}", hash >> 48)
}

/// Resolves a reading's resident to a Patient reference inside the transaction.
pub type ResolveCode<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The intake of device readings. Keeps a cache of resident ID numbers already resolved.
#[derive(Default)]
pub struct Readings {
    residents: Mutex<HashMap<String, String>>,
}

const RESIDENT_CACHE: usize = 1 << 20;

impl Readings {
    pub fn new() -> Readings {
        Readings::default()
    }

    /// Writes the readings of verified uploads, as `caller` (the institution's device that
    /// sent them, built by the edge), in one transaction. `health_code` resolves an
    /// electronic health code to a Patient reference (the residents service, at the edge).
    /// Answers each upload's readings' statuses, in order.
    ///
    /// Each reading is checked and its Observation built, validated and indexed first, on two
    /// threads, away from the transaction (when its resident is already known); the
    /// transaction then only asks which readings were written before and writes the others.
    pub fn write(
        &self,
        repository: &Repository,
        caller: &Caller,
        uploads: &[Upload],
        health_code: ResolveCode<'_>,
    ) -> Result<Vec<Vec<(String, ReadingStatus)>>, RepositoryError> {
        let now = fhir_model::clock::now_micros();
        let issued = fhir_model::clock::format_instant(now);
        let readings: Vec<(&Upload, &Value)> = uploads
            .iter()
            .flat_map(|upload| upload.readings.iter().map(move |reading| (upload, reading)))
            .collect();
        let half = readings.len().div_ceil(2).max(1);
        let plans: Vec<Plan> = std::thread::scope(|scope| {
            let chunks: Vec<_> = readings
                .chunks(half)
                .map(|chunk| {
                    let issued = &issued;
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .map(|(upload, reading)| {
                                self.plan(repository, upload, reading, now, issued)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            chunks
                .into_iter()
                .flat_map(|chunk| chunk.join().unwrap_or_default())
                .collect()
        });
        if plans.len() != readings.len() {
            return Err(RepositoryError::Internal(
                "preparing readings failed on a worker thread".into(),
            ));
        }
        repository.run_in_transaction(caller, |tx| {
            let mut statuses = Vec::with_capacity(plans.len());
            for ((upload, reading), plan) in readings.iter().zip(&plans) {
                let status =
                    self.write_planned(tx, upload, reading, plan, &issued, now, health_code)?;
                statuses.push(status);
            }
            let mut statuses = statuses.into_iter();
            Ok(uploads
                .iter()
                .map(|upload| {
                    upload
                        .readings
                        .iter()
                        .map(|reading| {
                            let id = reading.get("id").and_then(Value::as_str).unwrap_or("");
                            (
                                id.to_owned(),
                                statuses
                                    .next()
                                    .unwrap_or(ReadingStatus::Refused("not written".into())),
                            )
                        })
                        .collect()
                })
                .collect())
        })
    }

    /// What a reading will be, decided outside the transaction.
    fn plan(
        &self,
        repository: &Repository,
        upload: &Upload,
        reading: &Value,
        now: i64,
        issued: &str,
    ) -> Plan {
        let id = reading.get("id").and_then(Value::as_str).unwrap_or("");
        if id.is_empty() || id.len() > 64 {
            return Plan::Refuse("the reading needs an 'id' of 1 to 64 characters".into());
        }
        let (measured_text, measured_micros) = match measured_instant(reading) {
            Ok(measured) => measured,
            // Refused for its content first, as a reading with a time is.
            Err(reason) => return Plan::Refuse(reading_content(reading).err().unwrap_or(reason)),
        };
        let observation_id = observation_id(&upload.device, id, measured_micros);
        let content = match reading_content(reading).and_then(|(_, content)| {
            in_the_past(measured_text, measured_micros, now).map(|m| (content, m))
        }) {
            Ok(content) => content,
            // A reading written before is a duplicate even if it would be refused now (its
            // time was then not yet in the past, say): the transaction looks first.
            Err(reason) => return Plan::Refuse(reason).after_existence(observation_id),
        };
        let known = reading
            .get("resident")
            .and_then(|r| r.get("idNumber"))
            .and_then(Value::as_str)
            .map(|n| n.trim().to_ascii_uppercase())
            .and_then(|n| self.cached(&n));
        let Some(patient) = known else {
            return Plan::Resolve {
                observation_id,
                content: content.0,
                measured: content.1,
            };
        };
        let observation = observation_of(
            upload,
            id,
            &observation_id,
            &patient,
            &content.1,
            issued,
            &content.0,
        );
        match repository.prepare_own(observation) {
            Ok(prepared) => Plan::Ready {
                observation_id,
                patient,
                prepared: Box::new(prepared),
            },
            Err(error) => Plan::Refuse(refusal_of(error)).after_existence(observation_id),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_planned(
        &self,
        tx: &mut InTransaction<'_, '_>,
        upload: &Upload,
        reading: &Value,
        plan: &Plan,
        issued: &str,
        now: i64,
        health_code: ResolveCode<'_>,
    ) -> Result<ReadingStatus, RepositoryError> {
        let refuse = |tx: &mut InTransaction<'_, '_>,
                      reason: String|
         -> Result<ReadingStatus, RepositoryError> {
            let key = format!(
                "{REFUSED}{}/{:032x}",
                upload.device,
                xxhash_rust::xxh3::xxh3_128(reading.to_string().as_bytes())
            );
            let kept =
                json!({"device": upload.device, "reading": reading, "reason": reason, "at": now});
            tx.transaction()
                .set_checkpoint(&key, Some(&kept.to_string()))?;
            Ok(ReadingStatus::Refused(reason))
        };
        let duplicate = |observation_id: &str| {
            ReadingStatus::Duplicate(format!("Observation/{observation_id}"))
        };
        match plan {
            Plan::Refuse(reason) => refuse(tx, reason.clone()),
            Plan::RefuseUnlessWritten {
                observation_id,
                reason,
            } => {
                if tx.read("Observation", observation_id)?.is_some() {
                    return Ok(duplicate(observation_id));
                }
                refuse(tx, reason.clone())
            }
            Plan::Ready {
                observation_id,
                patient,
                prepared,
            } => {
                if tx.create_if_absent(prepared)? {
                    Ok(ReadingStatus::Accepted {
                        observation: format!("Observation/{observation_id}"),
                        patient: patient.clone(),
                    })
                } else {
                    Ok(duplicate(observation_id))
                }
            }
            Plan::Resolve {
                observation_id,
                content,
                measured,
            } => {
                if tx.read("Observation", observation_id)?.is_some() {
                    return Ok(duplicate(observation_id));
                }
                let patient = match self.resident(tx, reading.get("resident"), health_code)? {
                    Ok(patient) => patient,
                    Err(reason) => return refuse(tx, reason),
                };
                let id = reading.get("id").and_then(Value::as_str).unwrap_or("");
                let observation = observation_of(
                    upload,
                    id,
                    observation_id,
                    &patient,
                    measured,
                    issued,
                    content,
                );
                match tx.update(observation, None) {
                    Ok(_) => Ok(ReadingStatus::Accepted {
                        observation: format!("Observation/{observation_id}"),
                        patient,
                    }),
                    Err(
                        error @ (RepositoryError::Invalid(_) | RepositoryError::Unprocessable(_)),
                    ) => refuse(tx, refusal_of(error)),
                    Err(other) => Err(other),
                }
            }
        }
    }

    /// The Patient a reading is about: by resident ID number or electronic health code.
    fn resident(
        &self,
        tx: &mut InTransaction<'_, '_>,
        resident: Option<&Value>,
        health_code: ResolveCode<'_>,
    ) -> Result<Result<String, String>, RepositoryError> {
        let Some(resident) = resident else {
            return Ok(Err("the reading names no resident".into()));
        };
        if let Some(code) = resident.get("healthCode").and_then(Value::as_str) {
            return Ok(health_code(code).ok_or_else(|| {
                "the health code is not valid or has expired: ask the resident to show it again"
                    .to_owned()
            }));
        }
        let Some(number) = resident.get("idNumber").and_then(Value::as_str) else {
            return Ok(Err(
                "the resident needs an 'idNumber' or a 'healthCode'".into()
            ));
        };
        let number = number.trim().to_ascii_uppercase();
        if !valid_resident_id(&number) {
            return Ok(Err(format!("'{number}' is not a valid resident ID number")));
        }
        if let Some(found) = self.cached(&number) {
            return Ok(Ok(found));
        }
        let found = tx.search(
            "Patient",
            &[(
                "identifier".into(),
                format!("{RESIDENT_ID_SYSTEM}|{number}"),
            )],
            8,
        )?;
        let Some(patient) = found.iter().map(|r| r.id.clone()).min() else {
            return Ok(Err(format!(
                "no resident with ID number {number} is registered on the platform"
            )));
        };
        let reference = format!("Patient/{patient}");
        let mut cache = self.residents.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= RESIDENT_CACHE {
            cache.clear();
        }
        cache.insert(number, reference.clone());
        Ok(Ok(reference))
    }

    fn cached(&self, number: &str) -> Option<String> {
        self.residents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(number)
            .cloned()
    }

    /// Readings refused and kept for review, with their device, reason and time.
    pub fn refused(repository: &Repository) -> Result<Vec<Value>, RepositoryError> {
        Ok(repository
            .store()
            .checkpoints_with_prefix(REFUSED)?
            .into_iter()
            .filter_map(|(_, text)| serde_json::from_str(&text).ok())
            .collect())
    }
}

/// What a reading will be, decided before the transaction.
enum Plan {
    /// Refused for good (no id to know it by).
    Refuse(String),
    /// Refused, unless written before (then a duplicate).
    RefuseUnlessWritten {
        observation_id: String,
        reason: String,
    },
    /// Its Observation validated and indexed, to be written unless written before.
    Ready {
        observation_id: String,
        patient: String,
        prepared: Box<repository::NewResource>,
    },
    /// Its resident is to be found in the transaction.
    Resolve {
        observation_id: String,
        content: Value,
        measured: String,
    },
}

impl Plan {
    fn after_existence(self, observation_id: String) -> Plan {
        match self {
            Plan::Refuse(reason) => Plan::RefuseUnlessWritten {
                observation_id,
                reason,
            },
            other => other,
        }
    }
}

/// A reading's Observation.
fn observation_of(
    upload: &Upload,
    id: &str,
    observation_id: &str,
    patient: &str,
    measured: &str,
    issued: &str,
    content: &Value,
) -> Value {
    let mut observation = json!({
        "resourceType": "Observation",
        "id": observation_id,
        "identifier": [{"system": format!("{READING_SYSTEM}{}", upload.device), "value": id}],
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs"}]}],
        "subject": {"reference": patient},
        "effectiveDateTime": measured,
        "issued": issued,
        "performer": [{"reference": patient}],
        "device": {"reference": format!("Device/{}", upload.device)},
    });
    if let (Some(target), Some(source)) = (observation.as_object_mut(), content.as_object()) {
        for (key, value) in source {
            target.insert(key.clone(), value.clone());
        }
    }
    observation
}

/// The reason the model refuses a reading's Observation, for the kiosk.
fn refusal_of(error: RepositoryError) -> String {
    match error {
        RepositoryError::Invalid(issues) | RepositoryError::Unprocessable(issues) => issues
            .first()
            .map(|issue| issue.diagnostics.clone())
            .unwrap_or_else(|| "the reading is not a valid Observation".into()),
        other => other.to_string(),
    }
}

/// GB 11643: 17 digits and an ISO 7064 MOD 11-2 check character (the one check the HL7 v2
/// mapping makes of an identifier typed as a resident ID).
pub fn valid_resident_id(number: &str) -> bool {
    crate::v2::is_resident_id(number)
}
