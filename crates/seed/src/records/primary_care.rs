//! Care in the village and the township: chronic-disease management (Condition,
//! EpisodeOfCare, CarePlan and the follow-ups), kiosk readings, everyday illness and the
//! yearly health check of the old.

use serde_json::json;

use super::blocks::{ProblemKind, Visit};
use super::observations::{Panel, Performer};
use super::{Chart, IdKind, Managed, clinic_time};
use crate::calendar::{Date, Moment};
use crate::directory::{Department, Institution, kiosk_id};
use crate::json::{Code, Concept, meta, reference};
use crate::systems;
use crate::terminology as t;

/// One of the two managed chronic diseases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Program {
    Hypertension,
    Diabetes,
}

impl Chart<'_> {
    /// A doctor who sees the resident at `place`: their family doctor at their own village
    /// clinic, otherwise a general practitioner there.
    pub(super) fn primary_care_doctor(&mut self, place: Institution) -> String {
        match &self.resident.family_doctor {
            Some(doctor) if place == self.resident.village() => doctor.clone(),
            _ => place.any_practitioner(Department::GeneralPractice, &mut self.rng),
        }
    }

    /// The managed problems diagnosed by `day`, as (conditions, episodes).
    fn managed_on(&self, day: i64) -> (Vec<String>, Vec<String>) {
        let health = &self.resident.health;
        let mut conditions = Vec::new();
        let mut episodes = Vec::new();
        for (managed, chronic) in [
            (&self.hypertension, health.hypertension),
            (&self.diabetes, health.diabetes),
        ] {
            if let (Some(managed), Some(onset)) = (managed, chronic.onset())
                && onset <= day
            {
                conditions.push(managed.condition.clone());
                episodes.push(managed.episode.clone());
            }
        }
        (conditions, episodes)
    }

    /// The Condition, EpisodeOfCare and CarePlan of each diagnosed chronic disease, written
    /// right after the Patient.
    pub(super) fn chronic_management(&mut self) {
        let health = &self.resident.health;
        if let Some(onset) = health.hypertension.onset() {
            self.hypertension = Some(self.manage(Program::Hypertension, onset));
        }
        if let Some(onset) = health.diabetes.onset() {
            self.diabetes = Some(self.manage(Program::Diabetes, onset));
        }
    }

    fn manage(&mut self, program: Program, onset_day: i64) -> Managed {
        let (concept, program_code, program_name, plan_category, plan_title): (
            &Concept,
            _,
            _,
            Code,
            _,
        ) = match program {
            Program::Hypertension => (
                &t::HYPERTENSION,
                "hypertension",
                "高血压患者健康管理",
                t::HYPERTENSION_CARE_PLAN,
                "高血压患者健康管理服务",
            ),
            Program::Diabetes => (
                &t::TYPE_2_DIABETES,
                "type-2-diabetes",
                "2型糖尿病患者健康管理",
                t::DIABETES_CARE_PLAN,
                "2型糖尿病患者健康管理服务",
            ),
        };
        let township = self.resident.township();
        let diagnosed_at = clinic_time(&mut self.rng, onset_day);
        let diagnosing_doctor =
            township.any_practitioner(Department::GeneralPractice, &mut self.rng);
        let condition = self.condition(
            concept,
            ProblemKind::ProblemList,
            diagnosed_at,
            diagnosed_at,
            None,
            &diagnosing_doctor,
        );
        let manager = self
            .resident
            .family_doctor
            .clone()
            .unwrap_or_else(|| diagnosing_doctor.clone());
        let start = Date::from_days(onset_day).fhir();

        let episode = self.next_id(IdKind::EpisodeOfCare);
        self.push(
            "EpisodeOfCare",
            json!({
                "resourceType": "EpisodeOfCare",
                "id": episode,
                "meta": meta(),
                "status": "active",
                "type": [Code::new(systems::CHRONIC_PROGRAM, program_code, program_name).concept_with_text(program_name)],
                "diagnosis": [{"condition": reference("Condition", &condition), "rank": 1}],
                "patient": self.patient,
                "managingOrganization": reference("Organization", &township.id()),
                "period": {"start": start},
                "careManager": reference("Practitioner", &manager),
            }),
        );

        let plan = self.next_id(IdKind::CarePlan);
        self.push(
            "CarePlan",
            json!({
                "resourceType": "CarePlan",
                "id": plan,
                "meta": meta(),
                "status": "active",
                "intent": "plan",
                "category": [plan_category.concept()],
                "title": plan_title,
                "description": "每年至少4次面对面随访，测量血压、血糖，评估用药与生活方式，每年1次健康体检。",
                "subject": self.patient,
                "period": {"start": start},
                "created": diagnosed_at.fhir(),
                "author": reference("Practitioner", &manager),
                "addresses": [reference("Condition", &condition)],
                "activity": [{"detail": {
                    "kind": "Appointment",
                    "code": {"text": "慢病随访"},
                    "status": "in-progress",
                    "scheduledTiming": {"repeat": {"frequency": 1, "period": 3, "periodUnit": "mo"}},
                    "location": reference("Location", &township.id()),
                    "performer": [reference("Practitioner", &manager)],
                }}],
            }),
        );
        Managed { condition, episode }
    }

    /// A self-measurement at the village health kiosk.
    pub(super) fn kiosk(&mut self, at: Moment, glucose: bool) {
        let home = self.resident.home;
        let kiosk = kiosk_id(home.county, home.township, home.village);
        self.blood_pressure(at, None, Performer::Patient, Some(&kiosk));
        if glucose {
            self.capillary_glucose(at.plus_minutes(3), None, Performer::Patient, Some(&kiosk));
        }
    }

    pub(super) fn minor_illness(
        &mut self,
        at: Moment,
        place: Institution,
        reason: &'static Concept,
        vitals: bool,
    ) {
        let is = |concept: &Concept| concept.snomed.code == reason.snomed.code;
        let doctor = if place.is_hospital() {
            let department = if self.resident.age < 15 {
                Department::Pediatrics
            } else if std::ptr::eq(reason, &t::HEADACHE) || std::ptr::eq(reason, &t::DIZZINESS) {
                Department::Neurology
            } else if is(&t::LOW_BACK_PAIN) || is(&t::ANKLE_SPRAIN) {
                Department::Surgery
            } else if is(&t::GASTRITIS) {
                Department::Emergency
            } else {
                Department::Respiratory
            };
            place.any_practitioner(department, &mut self.rng)
        } else {
            self.primary_care_doctor(place)
        };
        let minutes = self.rng.between(8, 25);
        let mut visit = Visit::outpatient(
            t::ENCOUNTER_FOR_SYMPTOM,
            "门诊",
            place,
            &doctor,
            at,
            minutes,
        );
        visit.reason = Some(reason);
        let encounter = self.encounter(&visit);
        if vitals {
            self.blood_pressure(
                at.plus_minutes(2),
                Some(&encounter),
                Performer::Practitioner(&doctor),
                None,
            );
        }
    }

    /// The visit at the township health centre where a chronic disease is first diagnosed.
    pub(super) fn diagnosis(&mut self, at: Moment, hypertension: bool, diabetes: bool) {
        let township = self.resident.township();
        let doctor = township.any_practitioner(Department::GeneralPractice, &mut self.rng);
        let (conditions, episodes) = self.managed_on(at.day());
        let conditions: Vec<&str> = conditions.iter().map(String::as_str).collect();
        let episodes: Vec<&str> = episodes.iter().map(String::as_str).collect();
        let mut visit = Visit::outpatient(
            t::ENCOUNTER_FOR_PROBLEM,
            "慢病初诊",
            township,
            &doctor,
            at,
            20,
        );
        visit.diagnoses = &conditions;
        visit.episodes = &episodes;
        let encounter = self.encounter(&visit);
        let performer = Performer::Practitioner(&doctor);
        if hypertension || self.resident.health.hypertension.is_present() {
            self.blood_pressure(at.plus_minutes(3), Some(&encounter), performer, None);
        }
        if diabetes {
            let drawn = at.plus_minutes(10);
            self.lab_report(Panel::FastingGlucose, drawn, &encounter, township, false);
            self.lab_report(Panel::Hba1c, drawn, &encounter, township, false);
        }
    }

    /// A quarterly follow-up of the managed chronic diseases.
    pub(super) fn follow_up(&mut self, at: Moment, place: Institution, hba1c: bool) {
        let (conditions, episodes) = self.managed_on(at.day());
        if conditions.is_empty() {
            return;
        }
        let doctor = self.primary_care_doctor(place);
        let conditions: Vec<&str> = conditions.iter().map(String::as_str).collect();
        let episodes: Vec<&str> = episodes.iter().map(String::as_str).collect();
        let minutes = self.rng.between(10, 20);
        let mut visit = Visit::outpatient(
            t::FOLLOW_UP_ENCOUNTER,
            "慢病随访",
            place,
            &doctor,
            at,
            minutes,
        );
        visit.diagnoses = &conditions;
        visit.episodes = &episodes;
        let encounter = self.encounter(&visit);
        let performer = Performer::Practitioner(&doctor);
        // Blood pressure is measured at every follow-up, diabetic or not.
        self.blood_pressure(at.plus_minutes(2), Some(&encounter), performer, None);
        let diabetic = self
            .resident
            .health
            .diabetes
            .onset()
            .is_some_and(|onset| onset <= at.day());
        if diabetic {
            if hba1c {
                let drawn = at.plus_minutes(5);
                self.lab_report(Panel::FastingGlucose, drawn, &encounter, place, false);
                self.lab_report(Panel::Hba1c, drawn, &encounter, place, false);
            } else {
                self.capillary_glucose(at.plus_minutes(4), Some(&encounter), performer, None);
            }
        }
    }

    /// The free yearly health check of residents aged 65 and over, at the township health
    /// centre: blood pressure, blood count, lipids, renal function, fasting glucose.
    pub(super) fn elderly_check(&mut self, at: Moment) {
        let township = self.resident.township();
        let doctor = township.any_practitioner(Department::GeneralPractice, &mut self.rng);
        let encounter = self.encounter(&Visit::outpatient(
            t::GENERAL_EXAMINATION,
            "老年人健康体检",
            township,
            &doctor,
            at,
            60,
        ));
        self.blood_pressure(
            at.plus_minutes(5),
            Some(&encounter),
            Performer::Practitioner(&doctor),
            None,
        );
        if self.flow.chance(super::remote::ECG_AT_HEALTH_CHECK) {
            self.ecg_read_remotely(at.plus_minutes(10), &encounter, township, &doctor);
        }
        let drawn = at.plus_minutes(15);
        for panel in [
            Panel::BloodCount,
            Panel::Lipids,
            Panel::Renal,
            Panel::FastingGlucose,
        ] {
            self.lab_report(panel, drawn, &encounter, township, false);
        }
    }
}
