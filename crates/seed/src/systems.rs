//! The identifier systems and code systems the region uses. Identifiers that have a national
//! OID use it; the rest live under Meridian's own namespace, `https://meridian.example/`, and
//! are listed (with what their values look like) in `docs/synthetic-region.md`. They are part
//! of the generator's contract: changing one changes every generated record.

/// 居民身份证号码, the 18-character resident ID number of GB 11643. The OID is the one the
/// national shared-document standards (WS/T 500) give to the patient's ID card number;
/// `2.16.156.10011.1.1` in the same arc is the document serial number, not the person.
pub const RESIDENT_ID: &str = "urn:oid:2.16.156.10011.1.3";
/// 社会保障卡 card number (the card's own number; the social-security number itself is the
/// resident ID number).
pub const SOCIAL_SECURITY_CARD: &str = "https://meridian.example/sid/social-security-card";
/// 电子健康卡 (e-health card) ID: 64 hexadecimal characters, as the national card platform
/// issues them.
pub const E_HEALTH_CARD: &str = "https://meridian.example/sid/e-health-card";
/// 居民健康档案编号, the 17-digit resident health-record number of the national basic public
/// health service: county code (6), township (3), village (3), sequence (5).
pub const HEALTH_RECORD_NUMBER: &str = "https://meridian.example/sid/health-record-number";
/// Hospital medical-record numbers: this prefix followed by the Organization id of the
/// hospital that issued it, so every hospital's numbers form their own system.
pub const MEDICAL_RECORD_NUMBER_PREFIX: &str = "https://meridian.example/sid/mrn/";
/// 统一社会信用代码 (GB 32100), the unified social credit code of an institution.
pub const UNIFIED_SOCIAL_CREDIT_CODE: &str = "https://meridian.example/sid/uscc";
/// 执业证书编码, a practitioner's practising-certificate number.
pub const PRACTISING_CERTIFICATE: &str = "https://meridian.example/sid/practising-certificate";
/// A device's serial number.
pub const DEVICE_SERIAL: &str = "https://meridian.example/sid/device-serial";
/// DICOM UIDs, as FHIR R4 writes them (`urn:oid:` values).
pub const DICOM_UID: &str = "urn:dicom:uid";

/// Meridian's code system for the level of an institution in the regional system.
pub const INSTITUTION_LEVEL: &str = "https://meridian.example/CodeSystem/institution-level";
/// Meridian's code system for the direction of a referral (`upward`, `downward`).
pub const REFERRAL_DIRECTION: &str = "https://meridian.example/CodeSystem/referral-direction";
/// The kinds of platform Task (`workflow` crate): consultation, remote-reading, referral, follow-up.
pub const WORKFLOW: &str = "https://meridian.example/CodeSystem/workflow";
/// Meridian's code system for the chronic-disease management programmes of the national
/// basic public health service (`hypertension`, `type-2-diabetes`).
pub const CHRONIC_PROGRAM: &str = "https://meridian.example/CodeSystem/chronic-disease-program";
/// Meridian's code system for Chinese practising qualifications (`physician`,
/// `village-doctor`, `nurse`).
pub const QUALIFICATION: &str = "https://meridian.example/CodeSystem/practitioner-qualification";

pub const SNOMED: &str = "http://snomed.info/sct";
pub const LOINC: &str = "http://loinc.org";
pub const ICD_10: &str = "http://hl7.org/fhir/sid/icd-10";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const DICOM_DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
pub const RFC_3986: &str = "urn:ietf:rfc:3986";
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
pub const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
pub const MARITAL_STATUS: &str = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus";
pub const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
pub const INTERPRETATION: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
pub const DIAGNOSTIC_SERVICE: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
pub const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
pub const CONDITION_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/condition-ver-status";
pub const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
pub const ORGANIZATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";
pub const PRACTITIONER_ROLE: &str = "http://terminology.hl7.org/CodeSystem/practitioner-role";
pub const LOCATION_PHYSICAL_TYPE: &str =
    "http://terminology.hl7.org/CodeSystem/location-physical-type";
pub const ADMIT_SOURCE: &str = "http://terminology.hl7.org/CodeSystem/admit-source";
pub const DISCHARGE_DISPOSITION: &str =
    "http://terminology.hl7.org/CodeSystem/discharge-disposition";
pub const DIAGNOSIS_ROLE: &str = "http://terminology.hl7.org/CodeSystem/diagnosis-role";
/// The ISO 21090 name-representation extension: `IDE` for the name in characters, `ABC` for
/// its alphabetic (pinyin) form. This is FHIR's own way to carry both forms of a CJK name.
pub const NAME_REPRESENTATION: &str =
    "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation";
