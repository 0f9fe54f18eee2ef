//! Care in hospitals, and the referrals that lead there and back: pneumonia (township →
//! county → township), ischaemic stroke (county emergency, sometimes transferred up to the
//! city or provincial hospital, then down to the township for rehabilitation), coronary heart
//! disease (township → city or provincial cardiology → township), outpatient chest CT, and
//! the diabetic's yearly specialist review.

use super::Chart;
use super::blocks::{Direction, Imaging, ProblemKind, Visit};
use super::observations::{Panel, Performer};
use crate::calendar::Moment;
use crate::directory::{Department, Institution};
use crate::terminology as t;

impl Chart<'_> {
    /// The chronic problems on record by `day`, to list as comorbidities of an admission.
    fn comorbidities(&self, day: i64) -> Vec<String> {
        let health = &self.resident.health;
        [
            (&self.hypertension, health.hypertension.onset()),
            (&self.diabetes, health.diabetes.onset()),
        ]
        .into_iter()
        .filter_map(|(managed, onset)| match (managed, onset) {
            (Some(managed), Some(onset)) if onset <= day => Some(managed.condition.clone()),
            _ => None,
        })
        .collect()
    }

    /// A follow-up at the township health centre after a discharge, on a downward referral.
    fn follow_up_after_discharge(&mut self, at: Moment, referral: &str, diagnosis: &str) {
        let township = self.resident.township();
        let doctor = township.any_practitioner(Department::GeneralPractice, &mut self.rng);
        let diagnoses = [diagnosis];
        let mut visit = Visit::outpatient(
            t::FOLLOW_UP_ENCOUNTER,
            "出院后随访",
            township,
            &doctor,
            at,
            20,
        );
        visit.based_on = Some(referral);
        visit.diagnoses = &diagnoses;
        let encounter = self.encounter(&visit);
        if self.resident.age >= 18 {
            self.blood_pressure(
                at.plus_minutes(3),
                Some(&encounter),
                Performer::Practitioner(&doctor),
                None,
            );
        }
    }

    pub(super) fn diabetes_review(&mut self, at: Moment) {
        let Some(diabetes) = self.diabetes.clone() else {
            return;
        };
        let hospital = self.resident.county_hospital();
        let doctor = hospital.any_practitioner(Department::Endocrinology, &mut self.rng);
        let diagnoses = [diabetes.condition.as_str()];
        let mut visit =
            Visit::outpatient(t::CONSULTATION, "内分泌科门诊", hospital, &doctor, at, 15);
        visit.diagnoses = &diagnoses;
        let encounter = self.encounter(&visit);
        self.blood_pressure(
            at.plus_minutes(3),
            Some(&encounter),
            Performer::Practitioner(&doctor),
            None,
        );
        let drawn = at.plus_minutes(30);
        for panel in [Panel::Hba1c, Panel::Renal, Panel::Lipids] {
            self.lab_report(panel, drawn, &encounter, hospital, false);
        }
    }

    pub(super) fn chest_ct(&mut self, at: Moment, hospital: Institution, nodule: bool) {
        let doctor = hospital.any_practitioner(Department::Respiratory, &mut self.rng);
        let mut visit =
            Visit::outpatient(t::CONSULTATION, "呼吸内科门诊", hospital, &doctor, at, 15);
        visit.reason = Some(&t::COUGH);
        let encounter = self.encounter(&visit);
        let finding = if nodule {
            "右肺上叶见一磨玻璃密度结节，直径约6mm，建议12个月后复查。"
        } else {
            "双肺纹理清晰，未见明确实质性病变；纵隔未见肿大淋巴结。"
        };
        self.imaging(
            Imaging::ChestCt,
            at.plus_minutes(20),
            &encounter,
            hospital,
            &doctor,
            None,
            false,
            finding,
        );
    }

    pub(super) fn pneumonia(&mut self, at: Moment, severe: bool) {
        let child = self.resident.age < 15;
        let first_place = if self.rng.chance(0.3) {
            self.resident.village()
        } else {
            self.resident.township()
        };
        let county = self.resident.county_hospital();
        let first_doctor = self.primary_care_doctor(first_place);
        let ward = if child {
            Department::Pediatrics
        } else {
            Department::Respiratory
        };
        let attending = county.any_practitioner(ward, &mut self.rng);
        let admitted = at.plus_minutes(self.rng.between(120, 300));
        let stay = if severe {
            self.rng.between(10, 16)
        } else {
            self.rng.between(5, 10)
        };
        let discharged = Moment::at(
            admitted.day() + stay,
            self.rng.between(9, 11),
            self.rng.between(0, 59),
        );

        let onset = at.plus_days(-self.rng.between(1, 4));
        let pneumonia = self.condition(
            &t::PNEUMONIA,
            ProblemKind::EncounterDiagnosis,
            onset,
            admitted,
            Some(discharged),
            &attending,
        );
        let diagnoses = [pneumonia.as_str()];
        let mut first = Visit::outpatient(
            t::ENCOUNTER_FOR_SYMPTOM,
            "门诊",
            first_place,
            &first_doctor,
            at,
            20,
        );
        first.reason = Some(if self.rng.chance(0.5) {
            &t::FEVER
        } else {
            &t::COUGH
        });
        first.diagnoses = &diagnoses;
        let first = self.encounter(&first);
        let up = self.referral(
            Direction::Upward,
            at.plus_minutes(15),
            &first,
            &first_doctor,
            county,
            &pneumonia,
            true,
            "发热、咳嗽，肺部闻及湿啰音，疑似肺炎，转上级医院进一步诊治。",
        );

        let comorbidities = self.comorbidities(at.day());
        let mut all_diagnoses = vec![pneumonia.as_str()];
        all_diagnoses.extend(comorbidities.iter().map(String::as_str));
        let admission = self.encounter(&Visit {
            class: t::INPATIENT,
            kind: t::HOSPITAL_ADMISSION,
            kind_text: "住院",
            place: county,
            practitioner: &attending,
            start: admitted,
            end: discharged,
            reason: None,
            diagnoses: &all_diagnoses,
            episodes: &[],
            based_on: Some(&up),
            admission: Some(("gp", "home")),
        });
        self.lab_report(
            Panel::BloodCount,
            admitted.plus_minutes(30),
            &admission,
            county,
            true,
        );
        self.imaging(
            Imaging::ChestXray,
            admitted.plus_minutes(60),
            &admission,
            county,
            &attending,
            Some(&pneumonia),
            true,
            "右下肺野见斑片状模糊影，边缘不清，考虑右下肺炎。",
        );
        if severe {
            self.imaging(
                Imaging::ChestCt,
                admitted.plus_days(1),
                &admission,
                county,
                &attending,
                Some(&pneumonia),
                true,
                "右肺下叶见大片实变影，内见支气管充气征，考虑大叶性肺炎。",
            );
        }
        let before_discharge = Moment::at(discharged.day() - 1, 7, self.rng.between(0, 59));
        self.lab_report(
            Panel::BloodCount,
            before_discharge,
            &admission,
            county,
            false,
        );
        let down = self.referral(
            Direction::Downward,
            discharged,
            &admission,
            &attending,
            self.resident.township(),
            &pneumonia,
            false,
            "肺炎治愈出院，转回乡镇卫生院随访。",
        );
        let follow_up = discharged.plus_days(self.rng.between(7, 14));
        self.follow_up_after_discharge(follow_up, &down, &pneumonia);
    }

    pub(super) fn stroke(&mut self, at: Moment, transfer: Option<Institution>) {
        let county = self.resident.county_hospital();
        let emergency_doctor = county.any_practitioner(Department::Emergency, &mut self.rng);
        let emergency_end = at.plus_minutes(self.rng.between(180, 360));
        let onset = at.plus_minutes(-self.rng.between(60, 180));
        let stroke = self.condition(
            &t::ISCHEMIC_STROKE,
            ProblemKind::ProblemList,
            onset,
            at.plus_minutes(40),
            None,
            &emergency_doctor,
        );
        let comorbidities = self.comorbidities(at.day());
        let mut diagnoses = vec![stroke.as_str()];
        diagnoses.extend(comorbidities.iter().map(String::as_str));
        let emergency = self.encounter(&Visit {
            class: t::EMERGENCY,
            kind: t::EMERGENCY_ROOM_ADMISSION,
            kind_text: "急诊",
            place: county,
            practitioner: &emergency_doctor,
            start: at,
            end: emergency_end,
            reason: Some(&t::DIZZINESS),
            diagnoses: &diagnoses,
            episodes: &[],
            based_on: None,
            admission: None,
        });
        let head_ct =
            "左侧基底节区见片状低密度影，边界欠清，考虑急性脑梗死；脑室系统未见明显扩大。";
        self.imaging(
            Imaging::HeadCt,
            at.plus_minutes(25),
            &emergency,
            county,
            &emergency_doctor,
            Some(&stroke),
            true,
            head_ct,
        );
        self.lab_report(
            Panel::BloodCount,
            at.plus_minutes(20),
            &emergency,
            county,
            false,
        );
        if self.flow.chance(super::remote::STROKE_CONSULTATION) {
            let asked = at.plus_minutes(self.flow.between(50, 80));
            self.consult_city(
                asked,
                &emergency,
                &emergency_doctor,
                Department::Neurology,
                &stroke,
                "远程会诊（神经内科）",
                "急性缺血性脑卒中，建议评估溶栓或取栓指征，控制血压，必要时转上级医院卒中中心。",
            );
        }

        let (ward_hospital, based_on, source) = match transfer {
            Some(hospital) => {
                let up = self.referral(
                    Direction::Upward,
                    emergency_end.plus_minutes(-30),
                    &emergency,
                    &emergency_doctor,
                    hospital,
                    &stroke,
                    true,
                    "急性脑梗死，病情较重，转上级医院神经内科进一步治疗。",
                );
                (hospital, Some(up), "hosp-trans")
            }
            None => (county, None, "emd"),
        };
        let admitted = emergency_end.plus_minutes(if transfer.is_some() {
            self.rng.between(60, 180)
        } else {
            10
        });
        let discharged = Moment::at(
            admitted.day() + self.rng.between(10, 16),
            self.rng.between(9, 11),
            self.rng.between(0, 59),
        );
        let neurologist = ward_hospital.any_practitioner(Department::Neurology, &mut self.rng);
        let admission = self.encounter(&Visit {
            class: t::INPATIENT,
            kind: t::HOSPITAL_ADMISSION,
            kind_text: "住院",
            place: ward_hospital,
            practitioner: &neurologist,
            start: admitted,
            end: discharged,
            reason: None,
            diagnoses: &diagnoses,
            episodes: &[],
            based_on: based_on.as_deref(),
            admission: Some((source, "home")),
        });
        // Half the receiving hospitals repeat the head CT the county hospital already made:
        // the repeated examinations mutual recognition of results is meant to avoid.
        if transfer.is_some() && self.rng.chance(0.5) {
            self.imaging(
                Imaging::HeadCt,
                admitted.plus_minutes(90),
                &admission,
                ward_hospital,
                &neurologist,
                Some(&stroke),
                true,
                head_ct,
            );
        }
        let morning = Moment::at(admitted.day() + 1, 7, self.rng.between(0, 59));
        self.lab_report(Panel::Lipids, morning, &admission, ward_hospital, false);
        self.lab_report(Panel::Renal, morning, &admission, ward_hospital, false);
        self.blood_pressure(
            morning.plus_minutes(60),
            Some(&admission),
            Performer::Practitioner(&neurologist),
            None,
        );
        let down = self.referral(
            Direction::Downward,
            discharged,
            &admission,
            &neurologist,
            self.resident.township(),
            &stroke,
            false,
            "病情稳定出院，转回乡镇卫生院康复治疗及二级预防随访。",
        );
        let follow_up = discharged.plus_days(self.rng.between(7, 21));
        self.follow_up_after_discharge(follow_up, &down, &stroke);
    }

    pub(super) fn coronary_disease(&mut self, at: Moment, hospital: Institution) {
        let township = self.resident.township();
        let first_doctor = township.any_practitioner(Department::GeneralPractice, &mut self.rng);
        let cardiologist = hospital.any_practitioner(Department::Cardiology, &mut self.rng);
        let admitted = Moment::at(
            at.day() + self.rng.between(1, 3),
            self.rng.between(9, 15),
            self.rng.between(0, 59),
        );
        let discharged = Moment::at(
            admitted.day() + self.rng.between(5, 9),
            self.rng.between(9, 11),
            self.rng.between(0, 59),
        );
        let onset = at.plus_days(-self.rng.between(7, 60));
        let disease = self.condition(
            &t::CORONARY_HEART_DISEASE,
            ProblemKind::ProblemList,
            onset,
            admitted.plus_days(1),
            None,
            &cardiologist,
        );
        let mut first = Visit::outpatient(
            t::ENCOUNTER_FOR_SYMPTOM,
            "门诊",
            township,
            &first_doctor,
            at,
            20,
        );
        first.reason = Some(&t::CHEST_PAIN);
        let first = self.encounter(&first);
        self.blood_pressure(
            at.plus_minutes(5),
            Some(&first),
            Performer::Practitioner(&first_doctor),
            None,
        );
        if self.flow.chance(super::remote::ECG_AT_CHEST_PAIN) {
            self.ecg_read_remotely(at.plus_minutes(8), &first, township, &first_doctor);
        }
        let urgent = self.rng.chance(0.5);
        let up = self.referral(
            Direction::Upward,
            at.plus_minutes(15),
            &first,
            &first_doctor,
            hospital,
            &disease,
            urgent,
            "活动后胸闷、胸痛，疑似冠心病心绞痛，转上级医院心血管内科进一步检查治疗。",
        );
        let comorbidities = self.comorbidities(at.day());
        let mut diagnoses = vec![disease.as_str()];
        diagnoses.extend(comorbidities.iter().map(String::as_str));
        let admission = self.encounter(&Visit {
            class: t::INPATIENT,
            kind: t::HOSPITAL_ADMISSION,
            kind_text: "住院",
            place: hospital,
            practitioner: &cardiologist,
            start: admitted,
            end: discharged,
            reason: Some(&t::CHEST_PAIN),
            diagnoses: &diagnoses,
            episodes: &[],
            based_on: Some(&up),
            admission: Some(("gp", "home")),
        });
        let morning = Moment::at(admitted.day() + 1, 7, self.rng.between(0, 59));
        self.lab_report(Panel::BloodCount, morning, &admission, hospital, false);
        self.lab_report(Panel::Lipids, morning, &admission, hospital, false);
        self.blood_pressure(
            morning.plus_minutes(60),
            Some(&admission),
            Performer::Practitioner(&cardiologist),
            None,
        );
        let down = self.referral(
            Direction::Downward,
            discharged,
            &admission,
            &cardiologist,
            township,
            &disease,
            false,
            "冠心病病情稳定出院，转回乡镇卫生院长期随访管理。",
        );
        let follow_up = discharged.plus_days(self.rng.between(14, 30));
        self.follow_up_after_discharge(follow_up, &down, &disease);
    }
}
