//! The patient's record as decision support reads it: what the rules' variables hold, sorted
//! into kinds, without what the record itself says is not true (refuted, entered in error,
//! resolved), newest first where time matters.

use serde_json::Value;

/// The parts of a patient's record the rules and recognition look at. Each list is a JSON
/// array, ready to become a FHIRPath variable.
#[derive(Debug, Clone)]
pub struct Record {
    /// The Patient, or `null`.
    pub patient: Value,
    pub conditions: Value,
    pub allergies: Value,
    pub medications: Value,
    pub observations: Value,
    /// DiagnosticReports.
    pub results: Value,
    /// ServiceRequests on the record (not this request's drafts).
    pub orders: Value,
    pub imaging: Value,
}

impl Default for Record {
    fn default() -> Record {
        let empty = || Value::Array(Vec::new());
        Record {
            patient: Value::Null,
            conditions: empty(),
            allergies: empty(),
            medications: empty(),
            observations: empty(),
            results: empty(),
            orders: empty(),
            imaging: empty(),
        }
    }
}

fn code_of<'v>(resource: &'v Value, element: &str) -> Option<&'v str> {
    resource
        .get(element)?
        .get("coding")?
        .as_array()?
        .iter()
        .find_map(|c| c.get("code").and_then(Value::as_str))
}

fn status(resource: &Value) -> Option<&str> {
    resource.get("status").and_then(Value::as_str)
}

/// The clinical time of a resource, as text that sorts by time when the zones agree (the
/// rules' order is "newest first"; an exact instant is not needed for that).
pub fn clinical_time(resource: &Value) -> Option<&str> {
    let get = |key: &str| resource.get(key).and_then(Value::as_str);
    let period_start = |key: &str| resource.get(key)?.get("start")?.as_str();
    match resource.get("resourceType").and_then(Value::as_str)? {
        "Observation" | "DiagnosticReport" => get("effectiveDateTime")
            .or_else(|| get("effectiveInstant"))
            .or_else(|| period_start("effectivePeriod"))
            .or_else(|| get("issued")),
        "ServiceRequest" => get("authoredOn").or_else(|| get("occurrenceDateTime")),
        "ImagingStudy" => get("started"),
        "Condition" => get("recordedDate").or_else(|| get("onsetDateTime")),
        "MedicationRequest" => get("authoredOn"),
        _ => None,
    }
}

fn newest_first(list: &mut [Value]) {
    list.sort_by(|a, b| clinical_time(b).cmp(&clinical_time(a)));
}

impl Record {
    /// Sorts resources into the record, dropping what does not hold.
    pub fn from_resources(resources: impl IntoIterator<Item = Value>) -> Record {
        let mut record = Record::default();
        let mut lists: [Vec<Value>; 7] = Default::default();
        for resource in resources {
            let kind = resource
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or("");
            let slot = match kind {
                "Patient" => {
                    if record.patient.is_null() {
                        record.patient = resource;
                    }
                    continue;
                }
                "Condition" => {
                    let clinical = code_of(&resource, "clinicalStatus");
                    let verification = code_of(&resource, "verificationStatus");
                    if matches!(clinical, Some("resolved" | "inactive" | "remission"))
                        || matches!(verification, Some("refuted" | "entered-in-error"))
                    {
                        continue;
                    }
                    0
                }
                "AllergyIntolerance" => {
                    let clinical = code_of(&resource, "clinicalStatus");
                    let verification = code_of(&resource, "verificationStatus");
                    if matches!(clinical, Some("resolved" | "inactive"))
                        || matches!(verification, Some("refuted" | "entered-in-error"))
                    {
                        continue;
                    }
                    1
                }
                "MedicationRequest" => {
                    if !matches!(status(&resource), Some("active" | "on-hold" | "draft")) {
                        continue;
                    }
                    2
                }
                "MedicationStatement" => {
                    if !matches!(status(&resource), Some("active" | "intended")) {
                        continue;
                    }
                    2
                }
                "Observation" => {
                    if !matches!(
                        status(&resource),
                        Some("final" | "amended" | "corrected" | "preliminary")
                    ) {
                        continue;
                    }
                    3
                }
                "DiagnosticReport" => {
                    if matches!(status(&resource), Some("entered-in-error" | "cancelled")) {
                        continue;
                    }
                    4
                }
                "ServiceRequest" => {
                    if !matches!(status(&resource), Some("active" | "on-hold" | "completed")) {
                        continue;
                    }
                    5
                }
                "ImagingStudy" => {
                    if matches!(status(&resource), Some("entered-in-error" | "cancelled")) {
                        continue;
                    }
                    6
                }
                _ => continue,
            };
            lists[slot].push(resource);
        }
        for list in &mut lists {
            newest_first(list);
        }
        let [
            conditions,
            allergies,
            medications,
            observations,
            results,
            orders,
            imaging,
        ] = lists;
        record.conditions = Value::Array(conditions);
        record.allergies = Value::Array(allergies);
        record.medications = Value::Array(medications);
        record.observations = Value::Array(observations);
        record.results = Value::Array(results);
        record.orders = Value::Array(orders);
        record.imaging = Value::Array(imaging);
        record
    }

    /// The patient's age in whole years at `today` (`YYYY-MM-DD`), if the birth date is known.
    pub fn age_on(&self, today: &str) -> Option<i64> {
        let birth = self.patient.get("birthDate")?.as_str()?;
        let parts = |text: &str| -> Option<(i64, i64, i64)> {
            let mut it = text.splitn(3, '-');
            let year = it.next()?.parse().ok()?;
            let month = it.next().map_or(Some(1), |m| m.parse().ok())?;
            let day = it
                .next()
                .map_or(Some(1), |d| d.get(..2).unwrap_or(d).parse().ok())?;
            Some((year, month, day))
        };
        let (by, bm, bd) = parts(birth)?;
        let (ty, tm, td) = parts(today)?;
        let mut age = ty - by;
        if (tm, td) < (bm, bd) {
            age -= 1;
        }
        (age >= 0).then_some(age)
    }
}
