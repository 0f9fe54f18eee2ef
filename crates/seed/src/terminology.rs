//! The clinical codes the region's records use: SNOMED CT and ICD-10 for problems, LOINC for
//! observations, reports and imaging procedures, UCUM units, DICOM modalities. Displays are the
//! code systems' own (English); the Chinese text a clinician reads goes in `text`.

use crate::json::{Code, Concept};
use crate::systems::{ACT_CODE, DICOM_DCM, ICD_10, LOINC, RFC_3986, SNOMED};

const fn sct(code: &'static str, display: &'static str) -> Code {
    Code::new(SNOMED, code, display)
}

const fn icd(code: &'static str, display: &'static str) -> Code {
    Code::new(ICD_10, code, display)
}

const fn loinc(code: &'static str, display: &'static str) -> Code {
    Code::new(LOINC, code, display)
}

// Problems managed over years.
pub const HYPERTENSION: Concept = Concept {
    snomed: sct("59621000", "Essential hypertension (disorder)"),
    icd10: icd("I10", "Essential (primary) hypertension"),
    text: "原发性高血压",
};
pub const TYPE_2_DIABETES: Concept = Concept {
    snomed: sct("44054006", "Diabetes mellitus type 2 (disorder)"),
    icd10: icd("E11.9", "Type 2 diabetes mellitus without complications"),
    text: "2型糖尿病",
};
pub const CORONARY_HEART_DISEASE: Concept = Concept {
    snomed: sct("53741008", "Coronary arteriosclerosis (disorder)"),
    icd10: icd("I25.1", "Atherosclerotic heart disease"),
    text: "冠状动脉粥样硬化性心脏病",
};

// Acute problems that end in hospital.
pub const PNEUMONIA: Concept = Concept {
    snomed: sct("233604007", "Pneumonia (disorder)"),
    icd10: icd("J18.9", "Pneumonia, unspecified"),
    text: "肺炎",
};
pub const ISCHEMIC_STROKE: Concept = Concept {
    snomed: sct("422504002", "Ischemic stroke (disorder)"),
    icd10: icd("I63.9", "Cerebral infarction, unspecified"),
    text: "脑梗死",
};

// Reasons for everyday visits.
pub const UPPER_RESPIRATORY_INFECTION: Concept = Concept {
    snomed: sct("54150009", "Upper respiratory infection (disorder)"),
    icd10: icd("J06.9", "Acute upper respiratory infection, unspecified"),
    text: "急性上呼吸道感染",
};
pub const ACUTE_BRONCHITIS: Concept = Concept {
    snomed: sct("10509002", "Acute bronchitis (disorder)"),
    icd10: icd("J20.9", "Acute bronchitis, unspecified"),
    text: "急性支气管炎",
};
pub const PHARYNGITIS: Concept = Concept {
    snomed: sct("195662009", "Acute viral pharyngitis (disorder)"),
    icd10: icd("J02.9", "Acute pharyngitis, unspecified"),
    text: "急性咽炎",
};
pub const GASTRITIS: Concept = Concept {
    snomed: sct("4556007", "Gastritis (disorder)"),
    icd10: icd("K29.7", "Gastritis, unspecified"),
    text: "胃炎",
};
pub const LOW_BACK_PAIN: Concept = Concept {
    snomed: sct("279039007", "Low back pain (finding)"),
    icd10: icd("M54.5", "Low back pain"),
    text: "腰痛",
};
pub const HEADACHE: Concept = Concept {
    snomed: sct("25064002", "Headache (finding)"),
    icd10: icd("R51", "Headache"),
    text: "头痛",
};
pub const DIZZINESS: Concept = Concept {
    snomed: sct("404640003", "Dizziness (finding)"),
    icd10: icd("R42", "Dizziness and giddiness"),
    text: "头晕",
};
pub const ANKLE_SPRAIN: Concept = Concept {
    snomed: sct("44465007", "Sprain of ankle (disorder)"),
    icd10: icd("S93.4", "Sprain and strain of ankle"),
    text: "踝关节扭伤",
};
pub const FEVER: Concept = Concept {
    snomed: sct("386661006", "Fever (finding)"),
    icd10: icd("R50.9", "Fever, unspecified"),
    text: "发热",
};
pub const COUGH: Concept = Concept {
    snomed: sct("49727002", "Cough (finding)"),
    icd10: icd("R05", "Cough"),
    text: "咳嗽",
};
pub const CHEST_PAIN: Concept = Concept {
    snomed: sct("29857009", "Chest pain (finding)"),
    icd10: icd("R07.4", "Chest pain, unspecified"),
    text: "胸痛",
};

// Kinds of encounter (Encounter.type).
pub const ENCOUNTER_FOR_SYMPTOM: Code = sct("185345009", "Encounter for symptom (procedure)");
pub const ENCOUNTER_FOR_PROBLEM: Code = sct("185347001", "Encounter for problem (procedure)");
pub const FOLLOW_UP_ENCOUNTER: Code = sct("390906007", "Follow-up encounter (procedure)");
pub const GENERAL_EXAMINATION: Code =
    sct("162673000", "General examination of patient (procedure)");
pub const CONSULTATION: Code = sct("11429006", "Consultation (procedure)");
pub const EMERGENCY_ROOM_ADMISSION: Code = sct("50849002", "Emergency room admission (procedure)");
pub const HOSPITAL_ADMISSION: Code = sct("32485007", "Hospital admission (procedure)");

// Encounter classes (v3 ActCode).
pub const AMBULATORY: Code = Code::new(ACT_CODE, "AMB", "ambulatory");
pub const INPATIENT: Code = Code::new(ACT_CODE, "IMP", "inpatient encounter");
pub const EMERGENCY: Code = Code::new(ACT_CODE, "EMER", "emergency");

// Orders and plans.
pub const PATIENT_REFERRAL: Code = sct("3457005", "Patient referral (procedure)");
pub const REFERRAL_TO_SERVICE: Code = sct("306206005", "Referral to service (procedure)");
pub const IMAGING: Code = sct("363679005", "Imaging (procedure)");
pub const HYPERTENSION_CARE_PLAN: Code = sct(
    "443402002",
    "Lifestyle education regarding hypertension (procedure)",
);
pub const DIABETES_CARE_PLAN: Code = sct(
    "698360004",
    "Diabetes self management plan (record artifact)",
);

// Vital signs.
pub const BLOOD_PRESSURE_PANEL: Code =
    loinc("85354-9", "Blood pressure panel with all children optional");
pub const SYSTOLIC: Code = loinc("8480-6", "Systolic blood pressure");
pub const DIASTOLIC: Code = loinc("8462-4", "Diastolic blood pressure");

// Laboratory.
pub const CAPILLARY_GLUCOSE: Code = loinc(
    "14743-9",
    "Glucose [Moles/volume] in Capillary blood by Glucometer",
);
pub const FASTING_GLUCOSE: Code = loinc(
    "14771-0",
    "Fasting glucose [Moles/volume] in Serum or Plasma",
);
pub const HBA1C: Code = loinc("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood");
pub const CBC_PANEL: Code = loinc("58410-2", "CBC panel - Blood by Automated count");
pub const LEUKOCYTES: Code = loinc(
    "6690-2",
    "Leukocytes [#/volume] in Blood by Automated count",
);
pub const ERYTHROCYTES: Code = loinc(
    "789-8",
    "Erythrocytes [#/volume] in Blood by Automated count",
);
pub const HEMOGLOBIN: Code = loinc("718-7", "Hemoglobin [Mass/volume] in Blood");
pub const PLATELETS: Code = loinc("777-3", "Platelets [#/volume] in Blood by Automated count");
pub const LIPID_PANEL: Code = loinc("24331-1", "Lipid 1996 panel - Serum or Plasma");
pub const CHOLESTEROL: Code = loinc("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma");
pub const TRIGLYCERIDE: Code = loinc("14927-8", "Triglyceride [Moles/volume] in Serum or Plasma");
pub const HDL: Code = loinc(
    "14646-4",
    "Cholesterol in HDL [Moles/volume] in Serum or Plasma",
);
pub const LDL: Code = loinc(
    "22748-8",
    "Cholesterol in LDL [Moles/volume] in Serum or Plasma",
);
pub const RENAL_PANEL: Code = loinc("24362-6", "Renal function 2000 panel - Serum or Plasma");
pub const CREATININE: Code = loinc("14682-9", "Creatinine [Moles/volume] in Serum or Plasma");
pub const POTASSIUM: Code = loinc("2823-3", "Potassium [Moles/volume] in Serum or Plasma");

// Imaging procedures (LOINC/RSNA playbook codes) and what they show.
pub const XR_CHEST: Code = loinc("36643-5", "XR Chest 2 Views");
pub const CT_CHEST: Code = loinc("24627-2", "CT Chest");
pub const CT_HEAD: Code = loinc("24725-4", "CT Head");
pub const THORAX: Code = sct("51185008", "Thoracic structure (body structure)");
pub const HEAD: Code = sct("69536005", "Head structure (body structure)");
pub const DIGITAL_RADIOGRAPHY: Code = Code::new(DICOM_DCM, "DX", "Digital Radiography");
pub const COMPUTED_TOMOGRAPHY: Code = Code::new(DICOM_DCM, "CT", "Computed Tomography");
/// DICOM SOP classes of the instances.
pub const DX_IMAGE_STORAGE: Code = Code::new(
    RFC_3986,
    "urn:oid:1.2.840.10008.5.1.4.1.1.1.1",
    "Digital X-Ray Image Storage - For Presentation",
);
pub const CT_IMAGE_STORAGE: Code = Code::new(
    RFC_3986,
    "urn:oid:1.2.840.10008.5.1.4.1.1.2",
    "CT Image Storage",
);

// Remote reading.
pub const ECG_12_LEAD: Code = loinc("11524-6", "EKG study");
pub const ECG_REPORT_CATEGORY: Code = Code::new(
    "http://terminology.hl7.org/CodeSystem/v2-0074",
    "EC",
    "Electrocardiac (e.g., EKG, EEC, Holter)",
);
