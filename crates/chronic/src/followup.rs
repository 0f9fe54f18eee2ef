//! Follow-ups and due dates of one episode, computed from the record on demand (so the order in
//! which visits and readings arrived never matters). The definitions are in the crate's
//! documentation (`lib.rs`, "Definitions"); this is their one implementation, a pure function
//! of the resources it is given.

use serde_json::Value;

use crate::PROGRAM_SYSTEM;
use crate::dates::{Day, add_months, age_on, day_of};
use crate::parties::{reference_of, typed};
use crate::reading::{Class, classify, reading};
use crate::rules::{Program, Rules, codings};

/// Where an episode stands on the date asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DueState {
    /// The next follow-up was due before the date.
    Overdue,
    /// Due on the date or within the recall window (14 days) after it.
    Due,
    Ok,
}

impl DueState {
    pub fn code(self) -> &'static str {
        match self {
            DueState::Overdue => "overdue",
            DueState::Due => "due",
            DueState::Ok => "ok",
        }
    }
}

/// One follow-up visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// `Encounter/<id>`.
    pub encounter: String,
    pub day: Day,
    /// `period.start` as written, for ordering visits of one day.
    pub start: String,
    /// The worst class of the programme's readings taken at the visit (`NotAssessed` when it
    /// has none).
    pub class: Class,
}

impl FollowUp {
    pub fn uncontrolled(&self) -> bool {
        self.class.out_of_control()
    }
}

/// Why the next follow-up is due when it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueReason {
    /// The regular interval after the last follow-up (or the episode's start).
    Interval,
    /// The last follow-up was out of control.
    UncontrolledFollowUp,
    /// A reading after the last follow-up was out of control.
    UncontrolledReading,
    /// Nothing to count from: due now.
    NoDate,
}

impl DueReason {
    pub fn code(self) -> &'static str {
        match self {
            DueReason::Interval => "interval",
            DueReason::UncontrolledFollowUp => "uncontrolled-follow-up",
            DueReason::UncontrolledReading => "uncontrolled-reading",
            DueReason::NoDate => "no-date",
        }
    }
}

/// An episode's follow-up status on one date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpisodeStatus {
    /// `EpisodeOfCare/<id>`.
    pub episode: String,
    pub program: String,
    /// `Patient/<id>`.
    pub patient: String,
    pub care_manager: Option<String>,
    pub managing_organization: Option<String>,
    pub start: Option<Day>,
    /// Every follow-up counted, oldest first.
    pub follow_ups: Vec<FollowUp>,
    pub next_due: Day,
    pub due_reason: DueReason,
    pub state: DueState,
    /// The last follow-up, or a reading since, was out of control.
    pub uncontrolled: bool,
    /// `Observation/<id>` of the first out-of-control reading after the last follow-up.
    pub uncontrolled_reading: Option<String>,
    /// The last two follow-ups were both out of control.
    pub referral_suggested: bool,
}

impl EpisodeStatus {
    pub fn last_follow_up(&self) -> Option<&FollowUp> {
        self.follow_ups.last()
    }
}

/// The programme code an EpisodeOfCare is of (its `type` in [`PROGRAM_SYSTEM`]).
pub fn program_of<'r>(rules: &'r Rules, episode: &Value) -> Option<&'r Program> {
    episode
        .get("type")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(codings)
        .filter(|(system, _)| *system == PROGRAM_SYSTEM)
        .find_map(|(_, code)| rules.program(code))
}

fn id_of(resource: &Value) -> Option<&str> {
    resource.get("id").and_then(Value::as_str)
}

/// The status on `as_of` of the active `episode`, from the patient's `birth` date (for the
/// age-dependent target), their finished Encounters and their reading Observations. `None`
/// when the episode is not an active episode of a programme.
pub fn evaluate(
    rules: &Rules,
    episode: &Value,
    birth: Option<Day>,
    encounters: &[Value],
    observations: &[Value],
    as_of: Day,
) -> Option<EpisodeStatus> {
    if episode.get("status").and_then(Value::as_str) != Some("active") {
        return None;
    }
    let program = program_of(rules, episode)?;
    let episode_reference = format!("EpisodeOfCare/{}", id_of(episode)?);
    let patient = reference_of(episode.get("patient"))
        .and_then(|r| typed(r, "Patient"))?
        .to_owned();
    let start = episode
        .get("period")
        .and_then(|p| p.get("start"))
        .and_then(Value::as_str)
        .and_then(day_of);

    // The readings of the patient that this programme judges, with their class.
    let age = |day: Option<Day>| birth.zip(day).map(|(b, d)| age_on(b, d));
    let readings: Vec<_> = observations
        .iter()
        .filter_map(|o| reading(rules, o))
        .filter(|r| r.patient == patient)
        .map(|r| {
            let class = classify(rules, program, &r.measurement, age(r.day));
            (r, class)
        })
        .filter(|(_, class)| *class != Class::NotAssessed)
        .collect();

    // The follow-ups.
    let mut follow_ups: Vec<FollowUp> = encounters
        .iter()
        .filter_map(|encounter| {
            if encounter.get("status").and_then(Value::as_str) != Some("finished")
                || reference_of(encounter.get("subject")) != Some(patient.as_str())
            {
                return None;
            }
            let episodes: Vec<&str> = encounter
                .get("episodeOfCare")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| reference_of(Some(r)))
                .collect();
            let names_this = episodes.contains(&episode_reference.as_str());
            let typed_follow_up =
                episodes.is_empty() && rules.is_follow_up_type(encounter.get("type"));
            if !names_this && !typed_follow_up {
                return None;
            }
            let period = encounter.get("period");
            let start_text = period
                .and_then(|p| p.get("start").or_else(|| p.get("end")))
                .and_then(Value::as_str)?;
            let day = day_of(start_text)?;
            if day > as_of || start.is_some_and(|s| day < s) {
                return None;
            }
            let reference = format!("Encounter/{}", id_of(encounter)?);
            let class = readings
                .iter()
                .filter(|(r, _)| r.encounter.as_deref() == Some(reference.as_str()))
                .map(|(_, class)| *class)
                .max()
                .unwrap_or(Class::NotAssessed);
            Some(FollowUp {
                encounter: reference,
                day,
                start: start_text.to_owned(),
                class,
            })
        })
        .collect();
    follow_ups
        .sort_by(|a, b| (a.day, &a.start, &a.encounter).cmp(&(b.day, &b.start, &b.encounter)));
    follow_ups.dedup_by(|a, b| a.encounter == b.encounter);

    let last = follow_ups.last();
    let recall = rules.follow_up.recall_days;
    let mut candidates: Vec<(Day, DueReason)> = Vec::new();
    if let Some(base) = last.map(|f| f.day).or(start) {
        candidates.push((
            add_months(base, rules.follow_up.interval_months),
            DueReason::Interval,
        ));
    }
    if let Some(last) = last.filter(|f| f.uncontrolled()) {
        candidates.push((last.day + recall, DueReason::UncontrolledFollowUp));
    }
    // The first out-of-control reading after the last follow-up (after the start without
    // one), not taken at a follow-up of this episode.
    let visits: Vec<&str> = follow_ups.iter().map(|f| f.encounter.as_str()).collect();
    let first_bad = readings
        .iter()
        .filter(|(r, class)| {
            class.out_of_control()
                && r.day.is_some_and(|day| {
                    day <= as_of
                        && match (last, start) {
                            (Some(last), _) => day > last.day,
                            (None, Some(start)) => day >= start,
                            (None, None) => true,
                        }
                })
                && !r.encounter.as_deref().is_some_and(|e| visits.contains(&e))
        })
        .min_by(|(a, _), (b, _)| (a.day, &a.effective, &a.id).cmp(&(b.day, &b.effective, &b.id)));
    if let Some((reading, _)) = first_bad
        && let Some(day) = reading.day
    {
        candidates.push((day + recall, DueReason::UncontrolledReading));
    }
    let (next_due, due_reason) = candidates
        .iter()
        .copied()
        .min_by_key(|(day, _)| *day)
        .unwrap_or((as_of, DueReason::NoDate));
    let state = if next_due < as_of {
        DueState::Overdue
    } else if next_due <= as_of + recall {
        DueState::Due
    } else {
        DueState::Ok
    };
    let needed = rules.follow_up.referral_after_uncontrolled;
    let referral_suggested = follow_ups.len() >= needed
        && follow_ups[follow_ups.len() - needed..]
            .iter()
            .all(FollowUp::uncontrolled);
    Some(EpisodeStatus {
        episode: episode_reference,
        program: program.code.clone(),
        patient,
        care_manager: reference_of(episode.get("careManager")).map(str::to_owned),
        managing_organization: reference_of(episode.get("managingOrganization")).map(str::to_owned),
        start,
        uncontrolled: last.is_some_and(FollowUp::uncontrolled) || first_bad.is_some(),
        uncontrolled_reading: first_bad.map(|(r, _)| format!("Observation/{}", r.id)),
        follow_ups,
        next_due,
        due_reason,
        state,
        referral_suggested,
    })
}
