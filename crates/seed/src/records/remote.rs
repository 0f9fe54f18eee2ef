//! Work one institution asks of another over the platform (docs/workflow.md), as the
//! platform's `Task`s record it once done: a county hospital's imaging read by the city
//! hospital's imaging centre (远程影像诊断), a township centre's ECG read by its county
//! hospital (远程心电诊断), and a county hospital's emergency consultation with the city
//! hospital (远程会诊). Every decision and draw here comes from the chart's own `flow` stream,
//! so the rest of a chart is the same whether or not its work went remote.

use serde_json::{Value, json};

use super::{Chart, IdKind};
use crate::calendar::Moment;
use crate::directory::{Department, Institution};
use crate::json::{Code, meta, reference};
use crate::systems;
use crate::terminology as t;

/// The share of a county hospital's imaging read by the city hospital.
pub(super) const REMOTE_IMAGING: f64 = 0.35;
/// The share of yearly health checks of the old that include an ECG read by the county
/// hospital.
pub(super) const ECG_AT_HEALTH_CHECK: f64 = 0.3;
/// The share of township chest-pain visits whose ECG the county hospital reads.
pub(super) const ECG_AT_CHEST_PAIN: f64 = 0.9;
/// The share of strokes at a county emergency room on which the city hospital is consulted.
pub(super) const STROKE_CONSULTATION: f64 = 0.5;

const ECG_CONCLUSIONS: &[&str] = &[
    "窦性心律，正常心电图。",
    "窦性心律，ST-T改变。",
    "窦性心动过缓。",
    "窦性心律，房性早搏。",
    "窦性心律，左心室高电压。",
];

/// One piece of work asked of another institution, done.
pub(super) struct Asked<'a> {
    /// `consultation` or `remote-reading` (the workflow code system).
    pub kind: &'static str,
    pub text: &'a str,
    /// What is asked: the order, or the ECG itself.
    pub focus: String,
    pub encounter: &'a str,
    /// The practitioner who asked.
    pub requester: &'a str,
    pub from: Institution,
    pub to: Institution,
    pub asked: Moment,
    pub done: Moment,
    pub urgent: bool,
    /// The case: references sent with the task.
    pub inputs: Vec<Value>,
    pub output: Value,
}

impl Chart<'_> {
    /// Adds a resource held by `holder` (not the institution it names as performer).
    fn push_held(&mut self, resource_type: &'static str, resource: Value, holder: Institution) {
        self.push(resource_type, resource);
        if let Some((_, last)) = self.out.last_mut() {
            super::hold(last, &holder.id());
        }
    }

    /// The completed Task of `asked`, held by the institution that asked.
    pub(super) fn task(&mut self, asked: Asked<'_>) -> String {
        let id = self.next_id(IdKind::Task);
        let to = reference("Organization", &asked.to.id());
        let mut output = json!({"type": {"text": "answer"}});
        match &asked.output {
            Value::String(text) => output["valueString"] = json!(text),
            reference => output["valueReference"] = reference.clone(),
        }
        let task = json!({
            "resourceType": "Task",
            "id": id,
            "meta": meta(),
            "status": "completed",
            "intent": "order",
            "priority": if asked.urgent { "urgent" } else { "routine" },
            "code": {
                "coding": [{"system": systems::WORKFLOW, "code": asked.kind}],
                "text": asked.text,
            },
            "focus": {"reference": asked.focus},
            "for": self.patient,
            "encounter": reference("Encounter", asked.encounter),
            "executionPeriod": {"start": asked.asked.fhir(), "end": asked.done.fhir()},
            "authoredOn": asked.asked.fhir(),
            "lastModified": asked.done.fhir(),
            "requester": reference("PractitionerRole", asked.requester),
            "owner": to,
            "restriction": {"recipient": [to]},
            "input": asked.inputs.iter().map(|r| json!({"type": {"text": "case"}, "valueReference": r})).collect::<Vec<_>>(),
            "output": [output],
        });
        self.push_held("Task", task, asked.from);
        id
    }

    /// Whether a study at `hospital` is read remotely, and by whom: a radiologist of the city
    /// hospital for a share of a county hospital's studies.
    pub(super) fn remote_reader(&mut self, hospital: Institution) -> Option<String> {
        (matches!(hospital, Institution::County(_)) && self.flow.chance(REMOTE_IMAGING))
            .then(|| Institution::City.any_practitioner(Department::Radiology, &mut self.flow))
    }

    /// A 12-lead ECG taken at `place` (a township centre) during `encounter`, sent to the
    /// county hospital and read there: the Observation, the county's report and the Task.
    pub(super) fn ecg_read_remotely(
        &mut self,
        at: Moment,
        encounter: &str,
        place: Institution,
        doctor: &str,
    ) {
        let county = self.resident.county_hospital();
        let ecg = self.next_id(IdKind::Ecg);
        self.push(
            "Observation",
            json!({
                "resourceType": "Observation",
                "id": ecg,
                "meta": meta(),
                "status": "final",
                "category": [Code::new("http://terminology.hl7.org/CodeSystem/observation-category", "procedure", "Procedure").concept()],
                "code": t::ECG_12_LEAD.concept_with_text("十二导联心电图"),
                "subject": self.patient,
                "encounter": reference("Encounter", encounter),
                "effectiveDateTime": at.fhir(),
                "performer": [reference("Organization", &place.id())],
            }),
        );
        let asked = at.plus_minutes(self.flow.between(3, 15));
        let done = asked.plus_minutes(self.flow.between(8, 120));
        let reader = county.any_practitioner(Department::Cardiology, &mut self.flow);
        let conclusion = ECG_CONCLUSIONS[self.flow.below(ECG_CONCLUSIONS.len() as u64) as usize];
        let report = self.next_id(IdKind::EcgReport);
        self.push(
            "DiagnosticReport",
            json!({
                "resourceType": "DiagnosticReport",
                "id": report,
                "meta": meta(),
                "status": "final",
                "category": [t::ECG_REPORT_CATEGORY.concept()],
                "code": t::ECG_12_LEAD.concept_with_text("心电图诊断报告"),
                "subject": self.patient,
                "encounter": reference("Encounter", encounter),
                "effectiveDateTime": at.fhir(),
                "issued": done.fhir(),
                "performer": [reference("Organization", &county.id())],
                "resultsInterpreter": [reference("Practitioner", &reader)],
                "result": [reference("Observation", &ecg)],
                "conclusion": conclusion,
            }),
        );
        self.task(Asked {
            kind: "remote-reading",
            text: "远程心电诊断",
            focus: format!("Observation/{ecg}"),
            encounter,
            requester: doctor,
            from: place,
            to: county,
            asked,
            done,
            urgent: false,
            inputs: vec![reference("Observation", &ecg)],
            output: reference("DiagnosticReport", &report),
        });
    }

    /// A county emergency room's consultation with the city hospital's `department` about
    /// `condition`: the request and its Task, answered in words.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn consult_city(
        &mut self,
        at: Moment,
        encounter: &str,
        doctor: &str,
        department: Department,
        condition: &str,
        text: &str,
        opinion: &str,
    ) {
        let county = self.resident.county_hospital();
        let city = Institution::City;
        let asked = at;
        let done = asked.plus_minutes(self.flow.between(15, 90));
        let consultant = city.any_practitioner(department, &mut self.flow);
        let request = self.next_id(IdKind::Consultation);
        self.push_held(
            "ServiceRequest",
            json!({
                "resourceType": "ServiceRequest",
                "id": request,
                "meta": meta(),
                "status": "completed",
                "intent": "order",
                "priority": "urgent",
                "code": t::CONSULTATION.concept_with_text(text),
                "subject": self.patient,
                "encounter": reference("Encounter", encounter),
                "authoredOn": asked.fhir(),
                "requester": reference("Practitioner", doctor),
                "performer": [reference("Organization", &city.id()), reference("Practitioner", &consultant)],
                "reasonReference": [reference("Condition", condition)],
            }),
            county,
        );
        self.task(Asked {
            kind: "consultation",
            text,
            focus: format!("ServiceRequest/{request}"),
            encounter,
            requester: doctor,
            from: county,
            to: city,
            asked,
            done,
            urgent: true,
            inputs: vec![
                reference("Encounter", encounter),
                reference("Condition", condition),
            ],
            output: json!(opinion),
        });
    }
}
