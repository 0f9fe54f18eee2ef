//! Chronic-disease management of the national basic public health service (国家基本公共卫生
//! 服务规范（第三版）, 2017): hypertension and type 2 diabetes. A domain service over the
//! repository and the store trait; no HTTP, no runtime, no driver, no other domain service.
//!
//! - [`rules`]: the programmes as data (`rules/chronic.json`), each rule citing its source.
//! - [`registry`]: a qualifying Condition enrols its patient (EpisodeOfCare and CarePlan).
//! - [`reading`]: an Observation read as a blood pressure or glucose and classified.
//! - [`alert`]: a critical reading becomes an unacknowledged `Communication`.
//! - [`consumer`]: enrolment and alerts run from the change log (consumer `chronic`).
//! - [`followup`] and [`worklist`]: due dates and worklists, computed on demand from the
//!   record through the caller's read path; [`operations`]: `EpisodeOfCare/$worklist`.
//!
//! # Definitions
//!
//! These are exact, so that anyone can recompute the service's answers from an export.
//!
//! **Dates.** A date is a whole calendar day. A `dateTime`'s date is its first ten characters
//! (`2025-03-03T23:30:00+08:00` is 3 March: the date on the clinic's calendar, in the offset
//! it was written with). Partial dates (`2025`, `2025-03`) are no dates. *n months after* a
//! day is the same day of the month *n* calendar months later, or that month's last day when
//! it is shorter (30 November + 3 months = 28 or 29 February). *n days after* is plain day
//! arithmetic. "Today" is the date in China Standard Time (UTC+8).
//!
//! **Enrolment.** A Condition enrols its patient when its `clinicalStatus` is absent or has a
//! code `active`, `recurrence` or `relapse`, its `verificationStatus` has no code `refuted` or
//! `entered-in-error`, its `subject` is a `Patient/<id>` that exists, and its `code` has a
//! coding of the programme: ICD-10 (any system whose URI contains `icd-10` or `icd10`, or
//! `urn:oid:2.16.156.10011.2.3.3.11`) whose code, upper-cased with dots removed, starts with
//! I10–I15 (hypertension) or E11 (type 2 diabetes); or SNOMED CT 38341003 or 59621000
//! (hypertension), 44054006 (type 2 diabetes). For each programme where the patient has no
//! EpisodeOfCare with `status` active and `type` `PROGRAM_SYSTEM|<programme>`, the service
//! creates one and its CarePlan. The consumer judges a Condition on its current version, and
//! only at the change that wrote that version.
//!
//! **Readings.** An Observation with `status` preliminary, final, amended or corrected, a
//! `subject` `Patient/<id>`, and one of the codes of `rules/chronic.json`: a blood-pressure
//! panel (LOINC 85354-9, 55284-4) with systolic (8480-6) and/or diastolic (8462-4) components,
//! or a lone systolic or diastolic Observation; or a glucose (fasting 1558-6, 14771-0;
//! capillary 14743-9, 41653-7; random 2339-0, 2345-7, 15074-8). Values are `valueQuantity`
//! (components' for a panel) in the unit its `code` names, else its `unit`: pressure in
//! `mm[Hg]`/`mmHg` (no unit means mm[Hg]) or `kPa` (× 7.50062); glucose in `mmol/L` or
//! `mg/dL` (÷ 18); a glucose without a known unit is no reading. A reading's date is that of
//! `effectiveDateTime`, else `effectiveInstant`, else `effectivePeriod.start`.
//!
//! **Classes.** *Critical*: systolic ≥ 180 or diastolic ≥ 110 mmHg; glucose (any kind) ≥ 16.7
//! or ≤ 3.9 mmol/L. Otherwise, for the hypertension programme a blood pressure is
//! *uncontrolled* when systolic ≥ 140 or diastolic ≥ 90 (from the age of 65 on the reading's
//! date, from `Patient.birthDate`: systolic ≥ 150 or diastolic ≥ 90), else *controlled*; for
//! the diabetes programme a fasting or capillary glucose is *uncontrolled* when ≥ 7.0 mmol/L,
//! else *controlled*. A random glucose that is not critical, and any reading of the other
//! programme's measure, is *not assessed* and ignored. *Out of control* = uncontrolled or
//! critical.
//!
//! **Alerts.** Every critical reading of any patient (enrolled or not, of any date) raises one
//! `Communication` (category `ALERT_SYSTEM#critical-reading`, status `in-progress`, priority
//! `urgent`, identifier `https://meridian.example/sid/chronic-alert|<Observation id>`), unless
//! one with that identifier exists. Recipients: the first `Practitioner` in
//! `Patient.generalPractitioner` (or the practitioner of a PractitionerRole there) and the
//! organisation of their active PractitionerRole (smallest role id first); without a family
//! doctor, `Patient.managingOrganization`. `meta.source` is that organisation.
//!
//! **Follow-ups** of an active EpisodeOfCare of a programme, on the date *D* asked about:
//! the patient's Encounters with `status` finished whose `episodeOfCare` names this episode,
//! or that name no episode and have a `type` coded SNOMED CT 390906007 (follow-up encounter);
//! dated by `period.start` (else `period.end`); on or after the episode's `period.start` (when
//! it has one) and on or before *D*. A follow-up is *uncontrolled* when any reading of the
//! programme with `encounter` = that Encounter is out of control, else *controlled* (also when
//! it has no reading). The *last* follow-up is the latest by date, then `period.start` text,
//! then id.
//!
//! **Next due** = the earliest of: (a) the last follow-up's date + 3 months, or, with no
//! follow-up, the episode's start + 3 months; (b) the last follow-up's date + 14 days when it
//! was uncontrolled; (c) the date of the first out-of-control reading of the programme dated
//! after the last follow-up's date (with no follow-up: on or after the episode's start), on or
//! before *D*, and not taken at one of the episode's follow-ups, + 14 days. With none of
//! these (no follow-up and no start), *D*. **State**: *overdue* when next due < *D*; *due*
//! when *D* ≤ next due ≤ *D* + 14 days; else *ok*. **Uncontrolled** when (b) or (c) applies.
//! **Referral suggested** when the last two follow-ups were both uncontrolled.
//!
//! **Worklist** for a practitioner *P* and/or an organisation *O* (a clinician's own when
//! neither is given; everything for a caller who is no clinician): active episodes of a
//! programme whose `careManager` is *P*, or whose `managingOrganization` is *O*, or whose
//! `careManager` is a practitioner with a PractitionerRole at *O*; and the Communications
//! coded `critical-reading` with status `in-progress` whose `recipient` is *P* or *O*. Every
//! one of these reads, and the Patients, Encounters and Observations behind the due dates, is
//! made through the caller's read path: what the caller may not see does not count.

pub mod alert;
pub mod consumer;
pub mod dates;
pub mod followup;
pub mod operations;
pub mod parties;
pub mod reading;
pub mod registry;
pub mod rules;
pub mod worklist;

pub use alert::{ALERT_IDENTIFIER, ALERT_SYSTEM, CRITICAL_READING};
pub use consumer::{CONSUMER, Processed, process, process_all};
pub use followup::{DueState, EpisodeStatus, FollowUp, evaluate};
pub use worklist::{AlertEntry, Worklist, WorklistQuery, worklist};

/// Meridian's code system of the chronic-disease programmes (`hypertension`,
/// `type-2-diabetes`), as the synthetic region writes them on `EpisodeOfCare.type`.
pub const PROGRAM_SYSTEM: &str = "https://meridian.example/CodeSystem/chronic-disease-program";
