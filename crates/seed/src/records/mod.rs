//! A resident's records over the region's window of years: what happened to them (planned as
//! a list of events), then the resources that record it, in an order where every reference
//! points to a resource already written.
//!
//! Rates are per person-year and deliberately a subset of real use (China counts about six
//! outpatient visits a person a year; the shared record sees the ones listed here):
//! - everyday illness at the village clinic, township health centre or county hospital;
//! - hypertension and diabetes diagnosed and managed by the family doctor, with the national
//!   basic public health service's four follow-ups a year and a yearly HbA1c;
//! - self-measurement at the village health kiosk;
//! - the yearly free health check of residents aged 65 and over (about 60% take it up);
//! - hospital pathways with referrals up and back down: pneumonia, ischaemic stroke,
//!   coronary heart disease; chest CT in outpatients over 50; specialist review of diabetes.

mod blocks;
mod hospital;
mod observations;
mod primary_care;
mod remote;

use serde_json::Value;

use crate::calendar::Moment;
use crate::directory::Institution;
use crate::json::{Concept, reference};
use crate::random::{Rng, Stream};
use crate::resident::{Chronic, Resident};
use crate::{Generated, Region, terminology};

/// Something that happens to a resident; each renders to a group of resources.
#[derive(Debug, Clone)]
enum Event {
    Kiosk {
        glucose: bool,
    },
    Minor {
        place: Institution,
        reason: &'static Concept,
        vitals: bool,
    },
    Diagnosis {
        hypertension: bool,
        diabetes: bool,
    },
    FollowUp {
        place: Institution,
        hba1c: bool,
    },
    ElderlyCheck,
    DiabetesReview,
    ChestCt {
        hospital: Institution,
        nodule: bool,
    },
    Pneumonia {
        severe: bool,
    },
    Stroke {
        transfer: Option<Institution>,
    },
    CoronaryDisease {
        hospital: Institution,
    },
}

impl Event {
    /// The hospitals (county level and up) the event takes the resident to.
    fn hospitals(&self, resident: &Resident) -> Vec<Institution> {
        match self {
            Event::Minor { place, .. } if place.is_hospital() => vec![*place],
            Event::DiabetesReview | Event::Pneumonia { .. } => vec![resident.county_hospital()],
            Event::ChestCt { hospital, .. } | Event::CoronaryDisease { hospital } => {
                vec![*hospital]
            }
            Event::Stroke { transfer } => std::iter::once(resident.county_hospital())
                .chain(*transfer)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Writes every resource of one resident into `out`: Patient first, then the chronic problems
/// and their management, then each event in time order.
pub fn resident_records(region: &Region, index: u64, out: &mut Vec<Generated>) {
    let resident = Resident::new(region, index);
    let mut plan_rng = Rng::stream(region.config.seed, Stream::Resident, index, 3);
    let events = plan(region, &resident, &mut plan_rng);

    let mut hospitals: Vec<Institution> = Vec::new();
    for (_, event) in &events {
        for hospital in event.hospitals(&resident) {
            if !hospitals.contains(&hospital) {
                hospitals.push(hospital);
            }
        }
    }
    let mut patient = resident.patient(region, &hospitals);
    hold(&mut patient, &resident.township().id());
    out.push(("Patient", patient));

    let mut chart = Chart {
        region,
        resident: &resident,
        patient: reference("Patient", &resident.id),
        rng: Rng::stream(region.config.seed, Stream::Resident, index, 4),
        flow: Rng::stream(region.config.seed, Stream::Resident, index, 5),
        out,
        counters: [0; ID_KINDS],
        hypertension: None,
        diabetes: None,
    };
    chart.chronic_management();
    for (at, event) in events {
        chart.render(at, event);
    }
}

/// The kinds of resource a chart numbers, and the short names in their ids.
#[derive(Debug, Clone, Copy)]
enum IdKind {
    Condition,
    EpisodeOfCare,
    CarePlan,
    Encounter,
    Observation,
    DiagnosticReport,
    ServiceRequest,
    ImagingStudy,
    Task,
    Ecg,
    EcgReport,
    Consultation,
}
const ID_KINDS: usize = 12;

impl IdKind {
    fn abbreviation(self) -> &'static str {
        match self {
            IdKind::Condition => "cond",
            IdKind::EpisodeOfCare => "eoc",
            IdKind::CarePlan => "cp",
            IdKind::Encounter => "enc",
            IdKind::Observation => "obs",
            IdKind::DiagnosticReport => "dr",
            IdKind::ServiceRequest => "sr",
            IdKind::ImagingStudy => "img",
            IdKind::Task => "task",
            IdKind::Ecg => "ecg",
            IdKind::EcgReport => "ecgdr",
            IdKind::Consultation => "cons",
        }
    }
}

/// A managed chronic problem: its Condition and EpisodeOfCare.
#[derive(Debug, Clone)]
struct Managed {
    condition: String,
    episode: String,
}

/// The writer of one resident's records.
struct Chart<'a> {
    region: &'a Region,
    resident: &'a Resident,
    /// `{"reference": "Patient/<id>"}`
    patient: Value,
    rng: Rng,
    /// The draws of work sent to other institutions (`remote`): a stream of its own, so the
    /// rest of the chart does not depend on them.
    flow: Rng,
    out: &'a mut Vec<Generated>,
    counters: [u32; ID_KINDS],
    hypertension: Option<Managed>,
    diabetes: Option<Managed>,
}

impl Chart<'_> {
    /// The next id of a kind: `<patient id>-<kind><n>`, so ids are unique across the region
    /// and stable for a seed.
    fn next_id(&mut self, kind: IdKind) -> String {
        let counter = &mut self.counters[kind as usize];
        *counter += 1;
        format!("{}-{}{}", self.resident.id, kind.abbreviation(), *counter)
    }

    /// Adds a record, held by the institution it names as its provider or performer, or
    /// else by the resident's township health centre.
    fn push(&mut self, resource_type: &'static str, mut resource: Value) {
        let provider = ["serviceProvider", "performer", "requester", "author"]
            .iter()
            .filter_map(|field| resource.get(*field))
            .flat_map(|value| match value {
                Value::Array(items) => items.iter().collect::<Vec<_>>(),
                one => vec![one],
            })
            .filter_map(|r| r.get("reference").and_then(Value::as_str))
            .find_map(|r| r.strip_prefix("Organization/"))
            .map(str::to_owned);
        let holder = provider.unwrap_or_else(|| self.resident.township().id());
        hold(&mut resource, &holder);
        self.out.push((resource_type, resource));
    }

    fn render(&mut self, at: Moment, event: Event) {
        match event {
            Event::Kiosk { glucose } => self.kiosk(at, glucose),
            Event::Minor {
                place,
                reason,
                vitals,
            } => self.minor_illness(at, place, reason, vitals),
            Event::Diagnosis {
                hypertension,
                diabetes,
            } => self.diagnosis(at, hypertension, diabetes),
            Event::FollowUp { place, hba1c } => self.follow_up(at, place, hba1c),
            Event::ElderlyCheck => self.elderly_check(at),
            Event::DiabetesReview => self.diabetes_review(at),
            Event::ChestCt { hospital, nodule } => self.chest_ct(at, hospital, nodule),
            Event::Pneumonia { severe } => self.pneumonia(at, severe),
            Event::Stroke { transfer } => self.stroke(at, transfer),
            Event::CoronaryDisease { hospital } => self.coronary_disease(at, hospital),
        }
    }
}

/// A clinic-hours moment on `day`.
fn clinic_time(rng: &mut Rng, day: i64) -> Moment {
    Moment::at(day, rng.between(8, 16), rng.between(0, 59))
}

/// The events of a resident's window, in time order.
fn plan(region: &Region, resident: &Resident, rng: &mut Rng) -> Vec<(Moment, Event)> {
    let end = region.as_of_day;
    let start = region.window_start_day.max(resident.birth_day + 1);
    let mut events = Vec::new();
    if start >= end {
        return events;
    }
    let health = &resident.health;
    let village = resident.village();
    let township = resident.township();
    let county = resident.county_hospital();

    // Monthly chances for frequent events.
    let mut month = start;
    while month < end {
        let days = (end - month).min(30);
        let fraction = days as f64 / 365.0;
        let age = resident.age_on(month);
        if rng.chance(minor_illness_rate(age) * fraction) {
            let day = month + rng.between(0, days - 1);
            let place = match rng.unit() {
                r if r < 0.65 => village,
                r if r < 0.90 => township,
                _ => county,
            };
            let reason = minor_reason(rng, age);
            let vitals = age >= 18 && rng.chance(0.3);
            events.push((
                clinic_time(rng, day),
                Event::Minor {
                    place,
                    reason,
                    vitals,
                },
            ));
        }
        if resident.kiosk_readings_per_year > 0.0
            && rng.chance(resident.kiosk_readings_per_year * fraction)
        {
            let day = month + rng.between(0, days - 1);
            let glucose = rng.chance(if health.diabetes.is_present() {
                0.5
            } else {
                0.15
            });
            let at = Moment::at(day, rng.between(7, 10), rng.between(0, 59));
            events.push((at, Event::Kiosk { glucose }));
        }
        month += 30;
    }

    // Diagnosis visits that fall in the window, then quarterly follow-ups from the first
    // diagnosis on (one visit covers both diseases).
    let onsets = [health.hypertension.onset(), health.diabetes.onset()];
    let in_window = |onset: Option<i64>| onset.filter(|&day| day >= start && day < end);
    match (in_window(onsets[0]), in_window(onsets[1])) {
        (Some(a), Some(b)) if a == b => events.push((
            clinic_time(rng, a),
            Event::Diagnosis {
                hypertension: true,
                diabetes: true,
            },
        )),
        (hypertension, diabetes) => {
            for (day, is_hypertension) in [(hypertension, true), (diabetes, false)] {
                if let Some(day) = day {
                    events.push((
                        clinic_time(rng, day),
                        Event::Diagnosis {
                            hypertension: is_hypertension,
                            diabetes: !is_hypertension,
                        },
                    ));
                }
            }
        }
    }
    if let Some(first_onset) = onsets.iter().flatten().min() {
        let diabetic = health.diabetes.onset().is_some();
        // The first follow-up is a quarter after diagnosis, or at some point in the first
        // quarter of the window for those diagnosed before it.
        let mut due = if *first_onset >= start {
            first_onset + 91
        } else {
            start + rng.between(0, 90)
        };
        let mut visits = 0;
        while due < end {
            let day = (due + rng.between(-10, 10)).clamp(start, end - 1);
            // A quarter's visit is sometimes missed.
            if rng.chance(0.85) {
                // Once a year, the diabetic's follow-up is at the township centre, where the
                // lab draws blood for HbA1c.
                let hba1c = diabetic && visits % 4 == 0;
                let place = if hba1c || rng.chance(0.3) {
                    township
                } else {
                    village
                };
                events.push((clinic_time(rng, day), Event::FollowUp { place, hba1c }));
                visits += 1;
            }
            due += 91;
        }
    }

    // Yearly chances, year by year back from the end of the window. Hospital pathways start
    // at least sixty days before the end, so they finish inside the window.
    let mut year_end = end;
    while year_end > start {
        let year_start = (year_end - 365).max(start);
        let days = year_end - year_start;
        let fraction = days as f64 / 365.0;
        let age = resident.age_on(year_start + days / 2);
        let day = year_start + rng.between(0, days - 1);
        let at = clinic_time(rng, day);
        let acute_possible = day + 60 < end;
        if age >= 65 && rng.chance(0.6 * fraction) {
            events.push((at, Event::ElderlyCheck));
        }
        if health.diabetes.onset().is_some_and(|onset| onset < day) && rng.chance(0.3 * fraction) {
            events.push((at.plus_days(3), Event::DiabetesReview));
        }
        if age >= 50 && rng.chance(0.02 * fraction) {
            let hospital = if rng.chance(0.7) {
                county
            } else {
                Institution::City
            };
            let nodule = rng.chance(0.2);
            events.push((at.plus_days(5), Event::ChestCt { hospital, nodule }));
        }
        if acute_possible {
            let pneumonia = match age {
                ..5 => 0.015,
                5..65 => 0.002,
                _ => 0.015,
            };
            if rng.chance(pneumonia * fraction) {
                let severe = rng.chance(0.15);
                events.push((at.plus_days(7), Event::Pneumonia { severe }));
            }
            let stroke = match (health.hypertension, age) {
                (Chronic::Absent, 60..) => 0.002,
                (Chronic::Absent, _) => 0.0,
                (chronic, 50..) if chronic.is_uncontrolled() => 0.009,
                (_, 50..) => 0.006,
                _ => 0.0,
            };
            if rng.chance(stroke * fraction) {
                let transfer = rng.chance(0.4).then(|| {
                    if rng.chance(0.75) {
                        Institution::City
                    } else {
                        Institution::Provincial
                    }
                });
                events.push((at.plus_days(11), Event::Stroke { transfer }));
            }
            let coronary = if age >= 55 {
                let risk = if health.hypertension.is_present() || health.diabetes.is_present() {
                    1.5
                } else {
                    1.0
                };
                0.004 * risk
            } else {
                0.0
            };
            if rng.chance(coronary * fraction) {
                let hospital = if rng.chance(0.7) {
                    Institution::City
                } else {
                    Institution::Provincial
                };
                events.push((at.plus_days(13), Event::CoronaryDisease { hospital }));
            }
        }
        year_end = year_start;
    }

    // Stable, so events of the same minute keep the order they were planned in.
    events.sort_by_key(|(at, _)| *at);
    events.retain(|(at, _)| at.day() < end);
    events
}

/// Everyday visits a person makes in a year, by age: young children and the old most.
fn minor_illness_rate(age: i32) -> f64 {
    match age {
        ..5 => 1.2,
        5..15 => 0.6,
        15..45 => 0.35,
        45..65 => 0.5,
        _ => 0.8,
    }
}

fn minor_reason(rng: &mut Rng, age: i32) -> &'static Concept {
    use terminology::*;
    static CHILD: [Concept; 5] = [
        UPPER_RESPIRATORY_INFECTION,
        UPPER_RESPIRATORY_INFECTION,
        FEVER,
        COUGH,
        PHARYNGITIS,
    ];
    static ADULT: [Concept; 10] = [
        UPPER_RESPIRATORY_INFECTION,
        UPPER_RESPIRATORY_INFECTION,
        ACUTE_BRONCHITIS,
        PHARYNGITIS,
        GASTRITIS,
        LOW_BACK_PAIN,
        HEADACHE,
        DIZZINESS,
        ANKLE_SPRAIN,
        COUGH,
    ];
    if age < 15 {
        rng.pick(&CHILD)
    } else {
        rng.pick(&ADULT)
    }
}

/// Names the institution that holds a record in its `meta.source` (`Organization/<id>`): the
/// custodian the access rules give it when the operator loads the region.
fn hold(resource: &mut Value, organization: &str) {
    if let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
        meta.insert(
            "source".into(),
            Value::String(format!("Organization/{organization}")),
        );
    } else {
        resource["meta"] = serde_json::json!({"source": format!("Organization/{organization}")});
    }
}
