//! The building blocks of a chart: problems (Condition), visits (Encounter), orders and
//! referrals (ServiceRequest), and imaging (ImagingStudy with its report).

use serde_json::{Value, json};

use super::{Chart, IdKind};
use crate::calendar::Moment;
use crate::directory::{Department, Institution};
use crate::json::{Code, Concept, identifier, meta, reference};
use crate::systems;
use crate::terminology as t;

/// Whether a problem is on the problem list (chronic) or a diagnosis of one episode.
#[derive(Debug, Clone, Copy)]
pub(super) enum ProblemKind {
    ProblemList,
    EncounterDiagnosis,
}

/// The shape of one Encounter.
pub(super) struct Visit<'a> {
    pub class: Code,
    pub kind: Code,
    pub kind_text: &'a str,
    pub place: Institution,
    pub practitioner: &'a str,
    pub start: Moment,
    pub end: Moment,
    pub reason: Option<&'a Concept>,
    pub diagnoses: &'a [&'a str],
    pub episodes: &'a [&'a str],
    pub based_on: Option<&'a str>,
    /// For admissions: where the patient came from and where they went (admit-source and
    /// discharge-disposition codes).
    pub admission: Option<(&'static str, &'static str)>,
}

impl Visit<'_> {
    /// An outpatient visit of `minutes` at `place`.
    pub fn outpatient<'a>(
        kind: Code,
        kind_text: &'a str,
        place: Institution,
        practitioner: &'a str,
        start: Moment,
        minutes: i64,
    ) -> Visit<'a> {
        Visit {
            class: t::AMBULATORY,
            kind,
            kind_text,
            place,
            practitioner,
            start,
            end: start.plus_minutes(minutes),
            reason: None,
            diagnoses: &[],
            episodes: &[],
            based_on: None,
            admission: None,
        }
    }
}

/// A referral between levels, or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    Upward,
    Downward,
}

/// An imaging examination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Imaging {
    ChestXray,
    ChestCt,
    HeadCt,
}

impl Chart<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn condition(
        &mut self,
        concept: &Concept,
        kind: ProblemKind,
        onset: Moment,
        recorded: Moment,
        abatement: Option<Moment>,
        recorder: &str,
    ) -> String {
        let id = self.next_id(IdKind::Condition);
        let clinical = if abatement.is_some() {
            ("resolved", "Resolved")
        } else {
            ("active", "Active")
        };
        let category = match kind {
            ProblemKind::ProblemList => ("problem-list-item", "Problem List Item"),
            ProblemKind::EncounterDiagnosis => ("encounter-diagnosis", "Encounter Diagnosis"),
        };
        let mut condition = json!({
            "resourceType": "Condition",
            "id": id,
            "meta": meta(),
            "clinicalStatus": Code::new(systems::CONDITION_CLINICAL, clinical.0, clinical.1).concept(),
            "verificationStatus": Code::new(systems::CONDITION_VERIFICATION, "confirmed", "Confirmed").concept(),
            "category": [Code::new(systems::CONDITION_CATEGORY, category.0, category.1).concept()],
            "code": concept.codeable(),
            "subject": self.patient,
            "onsetDateTime": onset.fhir(),
        });
        if let Some(abatement) = abatement {
            condition["abatementDateTime"] = json!(abatement.fhir());
        }
        condition["recordedDate"] = json!(recorded.fhir());
        condition["recorder"] = reference("Practitioner", recorder);
        self.push("Condition", condition);
        id
    }

    pub(super) fn encounter(&mut self, visit: &Visit) -> String {
        let id = self.next_id(IdKind::Encounter);
        let place = visit.place.id();
        let mut encounter = json!({
            "resourceType": "Encounter",
            "id": id,
            "meta": meta(),
            "status": "finished",
            "class": visit.class.coding(),
            "type": [visit.kind.concept_with_text(visit.kind_text)],
            "subject": self.patient,
        });
        if !visit.episodes.is_empty() {
            encounter["episodeOfCare"] = visit
                .episodes
                .iter()
                .map(|e| reference("EpisodeOfCare", e))
                .collect();
        }
        if let Some(based_on) = visit.based_on {
            encounter["basedOn"] = json!([reference("ServiceRequest", based_on)]);
        }
        encounter["participant"] = json!([{
            "type": [Code::new(systems::PARTICIPATION_TYPE, "ATND", "attender").concept()],
            "individual": reference("Practitioner", visit.practitioner),
        }]);
        encounter["period"] = json!({"start": visit.start.fhir(), "end": visit.end.fhir()});
        if let Some(reason) = visit.reason {
            encounter["reasonCode"] = json!([reason.codeable()]);
        }
        if !visit.diagnoses.is_empty() {
            encounter["diagnosis"] = visit
                .diagnoses
                .iter()
                .enumerate()
                .map(|(rank, condition)| {
                    json!({"condition": reference("Condition", condition), "rank": rank + 1})
                })
                .collect();
        }
        if let Some((source, disposition)) = visit.admission {
            encounter["hospitalization"] = json!({
                "admitSource": {"coding": [{"system": systems::ADMIT_SOURCE, "code": source}]},
                "dischargeDisposition": {"coding": [{"system": systems::DISCHARGE_DISPOSITION, "code": disposition}]},
            });
        }
        encounter["location"] = json!([{"location": reference("Location", &place)}]);
        encounter["serviceProvider"] = reference("Organization", &place);
        self.push("Encounter", encounter);
        id
    }

    /// A referral from `requester` (at the institution of `encounter`) to `to`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn referral(
        &mut self,
        direction: Direction,
        at: Moment,
        encounter: &str,
        requester: &str,
        to: Institution,
        reason: &str,
        urgent: bool,
        note: &str,
    ) -> String {
        let id = self.next_id(IdKind::ServiceRequest);
        let (code, display, verb) = match direction {
            Direction::Upward => ("upward", "Upward referral", "上转"),
            Direction::Downward => ("downward", "Downward referral", "下转"),
        };
        let text = format!("{verb}至{}", to.name(self.region.config.seed));
        let request = json!({
            "resourceType": "ServiceRequest",
            "id": id,
            "meta": meta(),
            "status": "completed",
            "intent": "order",
            "category": [
                t::PATIENT_REFERRAL.concept(),
                Code::new(systems::REFERRAL_DIRECTION, code, display).concept_with_text(verb),
            ],
            "priority": if urgent { "urgent" } else { "routine" },
            "code": t::REFERRAL_TO_SERVICE.concept_with_text(&text),
            "subject": self.patient,
            "encounter": reference("Encounter", encounter),
            "authoredOn": at.fhir(),
            "requester": reference("Practitioner", requester),
            "performer": [reference("Organization", &to.id())],
            "reasonReference": [reference("Condition", reason)],
            "note": [{"text": note}],
        });
        self.push("ServiceRequest", request);
        id
    }

    /// An imaging examination at `hospital`: the order, the study and the radiologist's
    /// report. `finding` is the report's conclusion.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn imaging(
        &mut self,
        kind: Imaging,
        at: Moment,
        encounter: &str,
        hospital: Institution,
        requester: &str,
        reason: Option<&str>,
        urgent: bool,
        finding: &str,
    ) {
        let (code, text, modality, sop_class, body_site, series_count, images) = match kind {
            Imaging::ChestXray => (
                t::XR_CHEST,
                "胸部X线摄影（正侧位）",
                t::DIGITAL_RADIOGRAPHY,
                t::DX_IMAGE_STORAGE,
                t::THORAX,
                1,
                (2, 2),
            ),
            Imaging::ChestCt => (
                t::CT_CHEST,
                "胸部CT平扫",
                t::COMPUTED_TOMOGRAPHY,
                t::CT_IMAGE_STORAGE,
                t::THORAX,
                2,
                (180, 320),
            ),
            Imaging::HeadCt => (
                t::CT_HEAD,
                "头颅CT平扫",
                t::COMPUTED_TOMOGRAPHY,
                t::CT_IMAGE_STORAGE,
                t::HEAD,
                2,
                (24, 40),
            ),
        };
        let hospital_id = hospital.id();
        let reason_reference = reason.map(|r| json!([reference("Condition", r)]));

        let order = self.next_id(IdKind::ServiceRequest);
        let mut request = json!({
            "resourceType": "ServiceRequest",
            "id": order,
            "meta": meta(),
            "status": "completed",
            "intent": "order",
            "category": [t::IMAGING.concept()],
            "priority": if urgent { "urgent" } else { "routine" },
            "code": code.concept_with_text(text),
            "subject": self.patient,
            "encounter": reference("Encounter", encounter),
            "authoredOn": at.fhir(),
            "requester": reference("Practitioner", requester),
            "performer": [reference("Organization", &hospital_id)],
        });
        if let Some(reason) = &reason_reference {
            request["reasonReference"] = reason.clone();
        }
        self.push("ServiceRequest", request);

        let started = at.plus_minutes(self.rng.between(20, 90));
        let local_radiologist = hospital.any_practitioner(Department::Radiology, &mut self.rng);
        // A share of a county hospital's studies are read by the city hospital's radiologists.
        let remote_reader = self.remote_reader(hospital);
        let radiologist = remote_reader.clone().unwrap_or(local_radiologist);
        let mut series = Vec::with_capacity(series_count);
        let mut total = 0;
        for number in 1..=series_count {
            let instances = self.rng.between(images.0, images.1) as usize / series_count;
            total += instances;
            let mut one = json!({
                "uid": self.dicom_uid(),
                "number": number,
                "modality": modality.coding(),
                "description": text,
                "numberOfInstances": instances,
                "bodySite": body_site.coding(),
                "started": started.fhir(),
            });
            // Radiographs list their few images; a CT series' hundreds are left to DICOMweb.
            if kind == Imaging::ChestXray {
                one["instance"] = (1..=instances)
                    .map(|n| {
                        json!({"uid": self.dicom_uid(), "sopClass": sop_class.coding(), "number": n})
                    })
                    .collect();
            }
            series.push(one);
        }
        let study = self.next_id(IdKind::ImagingStudy);
        let study_uid = self.dicom_uid();
        let mut imaging_study = json!({
            "resourceType": "ImagingStudy",
            "id": study,
            "meta": meta(),
            "identifier": [identifier(systems::DICOM_UID, &format!("urn:oid:{study_uid}"))],
            "status": "available",
            "modality": [modality.coding()],
            "subject": self.patient,
            "encounter": reference("Encounter", encounter),
            "started": started.fhir(),
            "basedOn": [reference("ServiceRequest", &order)],
            "referrer": reference("Practitioner", requester),
            "interpreter": [reference("Practitioner", &radiologist)],
            "numberOfSeries": series_count,
            "numberOfInstances": total,
            "procedureCode": [code.concept_with_text(text)],
            "location": reference("Location", &hospital_id),
        });
        if let Some(reason) = &reason_reference {
            imaging_study["reasonReference"] = reason.clone();
        }
        imaging_study["series"] = Value::Array(series);
        self.push("ImagingStudy", imaging_study);

        let issued = started.plus_minutes(self.rng.between(30, 240));
        let report = self.next_id(IdKind::DiagnosticReport);
        let mut performers = vec![reference("Organization", &hospital_id)];
        if remote_reader.is_some() {
            performers.push(reference("Organization", &Institution::City.id()));
        }
        self.push(
            "DiagnosticReport",
            json!({
                "resourceType": "DiagnosticReport",
                "id": report,
                "meta": meta(),
                "basedOn": [reference("ServiceRequest", &order)],
                "status": "final",
                "category": [Code::new(systems::DIAGNOSTIC_SERVICE, "RAD", "Radiology").concept()],
                "code": code.concept_with_text(text),
                "subject": self.patient,
                "encounter": reference("Encounter", encounter),
                "effectiveDateTime": started.fhir(),
                "issued": issued.fhir(),
                "performer": performers,
                "resultsInterpreter": [reference("Practitioner", &radiologist)],
                "imagingStudy": [reference("ImagingStudy", &study)],
                "conclusion": finding,
            }),
        );
        if remote_reader.is_some() {
            let asked = started.plus_minutes(self.flow.between(10, 30));
            self.task(super::remote::Asked {
                kind: "remote-reading",
                text: "远程影像诊断",
                focus: format!("ServiceRequest/{order}"),
                encounter,
                requester,
                from: hospital,
                to: Institution::City,
                asked,
                done: issued,
                urgent,
                inputs: vec![reference("ImagingStudy", &study)],
                output: reference("DiagnosticReport", &report),
            });
        }
    }

    /// A DICOM UID under the `2.25` arc (a 128-bit number, as UUID-derived UIDs are).
    fn dicom_uid(&mut self) -> String {
        let value = (u128::from(self.rng.next_u64()) << 64) | u128::from(self.rng.next_u64());
        format!("2.25.{}", value.max(1))
    }
}
