//! The registry: a resident with a qualifying diagnosis is enrolled in the programme it
//! belongs to, as an active `EpisodeOfCare` of the programme (managed by the institution that
//! keeps their health record, with their family doctor as care manager) and the `CarePlan` of
//! quarterly follow-ups. A resident already enrolled (by this service, or by whoever wrote the
//! episode, as the synthetic region does) is not enrolled twice.

use repository::{InTransaction, RepositoryError};
use serde_json::{Value, json};

use crate::PROGRAM_SYSTEM;
use crate::dates::{day_of, format_day, today};
use crate::parties::{
    CareParties, care_parties, derived_meta, organization_of_practitioner, reference_of, typed,
};
use crate::rules::{Program, Rules, codings};

/// Clinical statuses of a problem that is there (a Condition without one counts too: R4 leaves
/// it out only when the Condition is entered-in-error, which the verification status says).
const PRESENT: &[&str] = &["active", "recurrence", "relapse"];
/// Verification statuses that say the diagnosis does not hold.
const DOES_NOT_HOLD: &[&str] = &["refuted", "entered-in-error"];

fn status_codes(concept: Option<&Value>) -> Vec<&str> {
    concept
        .map(|c| codings(c).into_iter().map(|(_, code)| code).collect())
        .unwrap_or_default()
}

/// Whether a Condition states a present, not disproved problem.
pub fn qualifies(condition: &Value) -> bool {
    let clinical = status_codes(condition.get("clinicalStatus"));
    let verification = status_codes(condition.get("verificationStatus"));
    (clinical.is_empty() || clinical.iter().any(|c| PRESENT.contains(c)))
        && !verification.iter().any(|c| DOES_NOT_HOLD.contains(c))
}

/// The programmes a Condition enrols its patient in (none when it does not qualify).
pub fn programs_of<'r>(rules: &'r Rules, condition: &Value) -> Vec<&'r Program> {
    if condition.get("resourceType").and_then(Value::as_str) != Some("Condition")
        || !qualifies(condition)
    {
        return Vec::new();
    }
    match condition.get("code") {
        Some(code) => rules.programs_for_code(code),
        None => Vec::new(),
    }
}

/// What enrolling did for one programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolment {
    /// A new EpisodeOfCare and CarePlan.
    Registered { episode: String, care_plan: String },
    /// The resident already had an active episode of the programme.
    AlreadyEnrolled { episode: String },
}

/// Enrols the patient of `condition` in each programme it belongs to, inside the consumer's
/// transaction. Nothing happens for a Condition that does not qualify or whose patient does not
/// exist.
pub fn enrol(
    tx: &mut InTransaction<'_, '_>,
    rules: &Rules,
    condition: &Value,
) -> Result<Vec<(String, Enrolment)>, RepositoryError> {
    let programs = programs_of(rules, condition);
    if programs.is_empty() {
        return Ok(Vec::new());
    }
    let Some(patient_reference) =
        reference_of(condition.get("subject")).and_then(|r| typed(r, "Patient"))
    else {
        return Ok(Vec::new());
    };
    let patient_id = &patient_reference["Patient/".len()..];
    let Some((_, patient)) = tx.read("Patient", patient_id)? else {
        return Ok(Vec::new());
    };
    let mut parties: Option<CareParties> = None;
    let mut done = Vec::new();
    for program in programs {
        let existing = tx.search(
            "EpisodeOfCare",
            &[
                ("patient".into(), patient_reference.into()),
                ("type".into(), format!("{PROGRAM_SYSTEM}|{}", program.code)),
                ("status".into(), "active".into()),
            ],
            1,
        )?;
        if let Some(record) = existing.first() {
            done.push((
                program.code.clone(),
                Enrolment::AlreadyEnrolled {
                    episode: record.id.clone(),
                },
            ));
            continue;
        }
        if parties.is_none() {
            parties = Some(care_parties(tx, &patient)?);
        }
        let parties = parties.clone().unwrap_or_default();
        let enrolment = register(tx, rules, program, condition, patient_reference, &parties)?;
        done.push((program.code.clone(), enrolment));
    }
    Ok(done)
}

/// The date the programme starts: the onset's date, else when the problem was recorded, else
/// today (a diagnosis with neither is being managed from now on).
fn start_date(condition: &Value) -> String {
    let day = condition
        .get("onsetDateTime")
        .or_else(|| condition.get("onsetPeriod").and_then(|p| p.get("start")))
        .and_then(Value::as_str)
        .and_then(day_of)
        .or_else(|| {
            condition
                .get("recordedDate")
                .and_then(Value::as_str)
                .and_then(day_of)
        })
        .unwrap_or_else(today);
    format_day(day)
}

fn register(
    tx: &mut InTransaction<'_, '_>,
    rules: &Rules,
    program: &Program,
    condition: &Value,
    patient: &str,
    parties: &CareParties,
) -> Result<Enrolment, RepositoryError> {
    let condition_id = condition
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let condition_reference = json!({"reference": format!("Condition/{condition_id}")});
    let manager = parties.family_doctor.clone();
    // The care manager's institution: their role's; for a doctor named without a role, none.
    let manager_organization = match (&manager, &parties.doctor_organization) {
        (Some(_), Some(organization)) => Some(organization.clone()),
        (Some(doctor), None) => organization_of_practitioner(tx, doctor)?,
        (None, _) => None,
    };
    let holder = parties
        .managing_organization
        .clone()
        .or_else(|| manager_organization.clone());
    let start = start_date(condition);
    let program_concept = json!({
        "coding": [{"system": PROGRAM_SYSTEM, "code": program.code, "display": program.display}],
        "text": program.display,
    });

    let mut episode = json!({
        "resourceType": "EpisodeOfCare",
        "meta": derived_meta(condition, holder.as_deref()),
        "status": "active",
        "type": [program_concept],
        "diagnosis": [{"condition": condition_reference, "rank": 1}],
        "patient": {"reference": patient},
    });
    if let Some(organization) = &parties.managing_organization {
        episode["managingOrganization"] = json!({"reference": organization});
    }
    episode["period"] = json!({"start": start});
    if let Some(manager) = &manager {
        episode["careManager"] = json!({"reference": manager});
    }
    let episode_id = tx.create(episode)?.id;

    // The parties of the plan: the care manager and their institution, so the institution sees
    // and answers for the plan (the access rules share a CarePlan with the institutions it
    // names); without a family doctor, the record-keeping institution.
    let institution = manager_organization.clone().or_else(|| holder.clone());
    let mut performers = Vec::new();
    if let Some(manager) = &manager {
        performers.push(json!({"reference": manager}));
    }
    if let Some(institution) = &institution {
        performers.push(json!({"reference": institution}));
    }
    let category = &program.plan_category;
    let mut plan = json!({
        "resourceType": "CarePlan",
        "meta": derived_meta(condition, holder.as_deref()),
        "status": "active",
        "intent": "plan",
        "category": [{"coding": [{"system": category.system, "code": category.code, "display": category.display}]}],
        "title": program.plan_title,
        "description": "每年至少4次面对面随访，测量血压、血糖，评估用药与生活方式，每年1次健康体检。At least four face-to-face follow-ups a year.",
        "subject": {"reference": patient},
        "period": {"start": start},
        "created": fhir_model::clock::format_instant(fhir_model::clock::now_micros()),
    });
    match (&manager, &institution) {
        (Some(manager), Some(institution)) => {
            plan["author"] = json!({"reference": manager});
            plan["contributor"] = json!([{"reference": institution}]);
        }
        (Some(manager), None) => plan["author"] = json!({"reference": manager}),
        (None, Some(institution)) => plan["author"] = json!({"reference": institution}),
        (None, None) => {}
    }
    plan["addresses"] = json!([condition_reference]);
    let mut detail = json!({
        "kind": "Appointment",
        "code": {"text": "慢病随访 chronic disease follow-up"},
        "status": "in-progress",
        "scheduledTiming": {"repeat": {"frequency": 1, "period": rules.follow_up.interval_months, "periodUnit": "mo"}},
    });
    if !performers.is_empty() {
        detail["performer"] = Value::Array(performers);
    }
    plan["activity"] = json!([{"detail": detail}]);
    let plan_id = tx.create(plan)?.id;
    tracing::info!(
        episode = %episode_id, care_plan = %plan_id, program = %program.code, patient,
        "chronic: resident enrolled"
    );
    Ok(Enrolment::Registered {
        episode: episode_id,
        care_plan: plan_id,
    })
}
