//! The region's indicators as data: each a FHIR `Measure` (`catalogue/indicators/<id>.json`:
//! its definition in words, scoring, populations, stratifiers and source) and the SQL that
//! computes it over the catalogue's materialised views (`<id>.sql`), which the store keeps as
//! a `Library` of `application/sql` that the Measure names. Result recognition is the one
//! indicator not here: `cds` computes it from the recognition checks it keeps (its Measure is
//! `cds::metrics::measure`).
//!
//! **The SQL's contract.** One query; each row of its answer is one member of the initial
//! population (an encounter, a resident, an order, a task), with the columns the Measure's
//! criteria name (`criteria.language` `application/sql`, `criteria.expression` a column):
//! 0 or 1 for `initial-population` (absent: 1), `denominator` and `numerator`; a number for
//! `measure-observation` (a continuous variable, NULL when the member has none); a value for
//! each stratifier (NULL reads as `unknown`); and `subject`, the member's reference, for
//! subject lists. The query reads `:period_start` and `:period_end` (dates, both days
//! included, compared with the date as recorded: the institution's local date) and
//! `:period_months` (whole months in the period). `age_band(birth_date, date)` gives the
//! band of the catalogue's stratifier (0-14, 15-44, 45-64, 65+).
//!
//! [`report`] turns an answer into a `MeasureReport`: the populations counted, the score
//! (numerator / denominator for a proportion, the median observation for a continuous
//! variable, none for a cohort), every stratifier's strata, and for a subject list the
//! members of each population as contained `List`s.
//!
//! Versions are the content's: an indicator's `version` is a hash of its Measure and SQL, so
//! a store holding another version holds another definition, and is upgraded.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::ViewError;

/// The canonical base of the catalogue's Measures and Libraries.
pub const CANONICAL_BASE: &str = "https://meridian.example/fhir";
/// The content type of a Library's SQL.
pub const SQL_CONTENT_TYPE: &str = "application/sql";
/// The language of a criteria that names a column of the SQL's answer.
pub const SQL_LANGUAGE: &str = "application/sql";
const POPULATION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/measure-population";
const SCORING_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/measure-scoring";

/// (id, Measure JSON, SQL) of every indicator, by id.
const INDICATORS: &[(&str, &str, &str)] = &[
    (
        "chronic-follow-up",
        include_str!("../catalogue/indicators/chronic-follow-up.json"),
        include_str!("../catalogue/indicators/chronic-follow-up.sql"),
    ),
    (
        "diabetes-control",
        include_str!("../catalogue/indicators/diabetes-control.json"),
        include_str!("../catalogue/indicators/diabetes-control.sql"),
    ),
    (
        "diabetes-management",
        include_str!("../catalogue/indicators/diabetes-management.json"),
        include_str!("../catalogue/indicators/diabetes-management.sql"),
    ),
    (
        "duplicate-exam",
        include_str!("../catalogue/indicators/duplicate-exam.json"),
        include_str!("../catalogue/indicators/duplicate-exam.sql"),
    ),
    (
        "grassroots-first-diagnosis",
        include_str!("../catalogue/indicators/grassroots-first-diagnosis.json"),
        include_str!("../catalogue/indicators/grassroots-first-diagnosis.sql"),
    ),
    (
        "health-code-use",
        include_str!("../catalogue/indicators/health-code-use.json"),
        include_str!("../catalogue/indicators/health-code-use.sql"),
    ),
    (
        "hypertension-control",
        include_str!("../catalogue/indicators/hypertension-control.json"),
        include_str!("../catalogue/indicators/hypertension-control.sql"),
    ),
    (
        "hypertension-management",
        include_str!("../catalogue/indicators/hypertension-management.json"),
        include_str!("../catalogue/indicators/hypertension-management.sql"),
    ),
    (
        "in-county-diagnosis",
        include_str!("../catalogue/indicators/in-county-diagnosis.json"),
        include_str!("../catalogue/indicators/in-county-diagnosis.sql"),
    ),
    (
        "record-coverage",
        include_str!("../catalogue/indicators/record-coverage.json"),
        include_str!("../catalogue/indicators/record-coverage.sql"),
    ),
    (
        "referrals",
        include_str!("../catalogue/indicators/referrals.json"),
        include_str!("../catalogue/indicators/referrals.sql"),
    ),
    (
        "remote-consultations",
        include_str!("../catalogue/indicators/remote-consultations.json"),
        include_str!("../catalogue/indicators/remote-consultations.sql"),
    ),
    (
        "remote-reads",
        include_str!("../catalogue/indicators/remote-reads.json"),
        include_str!("../catalogue/indicators/remote-reads.sql"),
    ),
];

/// How an indicator is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// numerator / denominator.
    Proportion,
    /// A count.
    Cohort,
    /// The median of an observation per member (a turnaround).
    ContinuousVariable,
}

/// One population of a Measure's group, and the column that says who is in it.
#[derive(Debug, Clone)]
pub struct Population {
    /// `initial-population`, `denominator`, `numerator` or `measure-observation`.
    pub code: String,
    pub column: String,
}

/// One stratifier: its name and the column that holds each member's stratum.
#[derive(Debug, Clone)]
pub struct Stratifier {
    pub name: String,
    pub column: String,
}

/// A catalogue indicator.
#[derive(Debug, Clone)]
pub struct Indicator {
    pub id: &'static str,
    /// The Measure as the store keeps it (with `url`, `version` and `library` set).
    pub measure: Value,
    /// The Library holding the SQL.
    pub library: Value,
    pub sql: &'static str,
    /// The catalogue views the SQL reads.
    pub views: Vec<String>,
    pub scoring: Scoring,
    pub populations: Vec<Population>,
    pub stratifiers: Vec<Stratifier>,
}

/// The period an indicator is computed for, both days included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// `YYYY-MM-DD`.
    pub start: String,
    /// `YYYY-MM-DD`.
    pub end: String,
}

impl Period {
    /// The period from its ends as dates (`YYYY-MM-DD`), or as months (`YYYY-MM`: from the
    /// first day of the first to the last day of the last), or as years; `None` when an end
    /// is none of these or the end is before the start.
    pub fn parse(start: &str, end: &str) -> Option<Period> {
        let start = day_of(start, false)?;
        let end = day_of(end, true)?;
        (start <= end).then_some(Period { start, end })
    }

    /// The whole months the period spans (a part month counts).
    pub fn months(&self) -> i64 {
        let month = |d: &str| -> i64 {
            d[0..4].parse::<i64>().unwrap_or(0) * 12 + d[5..7].parse::<i64>().unwrap_or(1)
        };
        month(&self.end) - month(&self.start) + 1
    }
}

fn day_of(text: &str, end: bool) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = text.split('-').collect();
    let (year, month, day) = match parts.as_slice() {
        [y] if y.len() == 4 && digits(y) => (*y, if end { 12 } else { 1 }, None),
        [y, m] if y.len() == 4 && m.len() == 2 && digits(y) && digits(m) => {
            (*y, m.parse().ok()?, None)
        }
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            if !(digits(y) && digits(m) && digits(d)) {
                return None;
            }
            (*y, m.parse().ok()?, Some(d.parse::<u32>().ok()?))
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) {
        return None;
    }
    let year_number: u32 = year.parse().ok()?;
    let leap = (year_number.is_multiple_of(4) && !year_number.is_multiple_of(100))
        || year_number.is_multiple_of(400);
    let last = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let day = match day {
        Some(d) if (1..=last).contains(&d) => d,
        Some(_) => return None,
        None if end => last,
        None => 1,
    };
    Some(format!("{year}-{month:02}-{day:02}"))
}

/// Stable across builds and machines: FNV-1a, 64 bits.
fn content_hash(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:08x}", hash >> 32)
}

/// The canonical URL of a catalogue resource.
pub fn canonical(resource_type: &str, id: &str) -> String {
    format!("{CANONICAL_BASE}/{resource_type}/{id}")
}

/// The id of the Library that holds catalogue view `name` in the store.
pub fn view_library_id(name: &str) -> String {
    format!("view-{}", name.replace('_', "-"))
}

/// Every catalogue view as the Library the store keeps it in, with its canonical URL.
pub fn view_libraries() -> Result<Vec<Value>, ViewError> {
    let views = crate::catalogue::views()?;
    Ok(views
        .iter()
        .map(|view| {
            let id = view_library_id(view.name);
            let mut library = crate::stored::library_of_view(&id, &view.json);
            library["url"] = json!(canonical("Library", &id));
            library["version"] = json!(content_hash(&[&view.json.to_string()]));
            if let Some(description) = view.json.get("description") {
                library["description"] = description.clone();
            }
            library
        })
        .collect())
}

/// The SQL a Library holds: its first attachment of `application/sql` (any `dialect`
/// parameter) with base64 data. Refused, naming the element, when there is none or it is not
/// base64 UTF-8.
pub fn sql_of_library(library: &Value) -> Result<String, ViewError> {
    let mut found =
        crate::stored::attachments(library, &[SQL_CONTENT_TYPE], "a query is held by a Library")?;
    match found.next() {
        Some(attachment) => {
            let (place, bytes) = attachment?;
            String::from_utf8(bytes).map_err(|_| ViewError::invalid(&place, "is not UTF-8"))
        }
        None => Err(ViewError::invalid(
            "Library.content",
            format!("holds no query (an attachment of {SQL_CONTENT_TYPE} with data)"),
        )),
    }
}

fn sql_header_views(id: &str, sql: &str) -> Result<Vec<String>, ViewError> {
    let line = sql
        .lines()
        .find_map(|l| l.trim().strip_prefix("-- views:"))
        .ok_or_else(|| ViewError::invalid(id, "its SQL names no views (a `-- views:` line)"))?;
    let known: Vec<&str> = crate::catalogue::names().collect();
    let views: Vec<String> = line
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    if let Some(unknown) = views.iter().find(|v| !known.contains(&v.as_str())) {
        return Err(ViewError::invalid(
            id,
            format!("its SQL reads view '{unknown}', not in the catalogue"),
        ));
    }
    Ok(views)
}

fn code_of(concept: &Value, system: &str) -> Option<String> {
    concept
        .get("coding")?
        .as_array()?
        .iter()
        .find(|c| c.get("system").and_then(Value::as_str) == Some(system))?
        .get("code")?
        .as_str()
        .map(str::to_owned)
}

fn criteria_column(id: &str, at: &str, item: &Value) -> Result<String, ViewError> {
    let criteria = item.get("criteria");
    let language = criteria
        .and_then(|c| c.get("language"))
        .and_then(Value::as_str);
    let expression = criteria
        .and_then(|c| c.get("expression"))
        .and_then(Value::as_str);
    match (language, expression) {
        (Some(SQL_LANGUAGE), Some(column)) => Ok(column.to_owned()),
        _ => Err(ViewError::invalid(
            format!("{id} {at}"),
            format!("its criteria is not a column of the SQL ({SQL_LANGUAGE})"),
        )),
    }
}

fn load(id: &'static str, text: &str, sql: &'static str) -> Result<Indicator, ViewError> {
    let mut measure: Value = serde_json::from_str(text)
        .map_err(|e| ViewError::invalid(id, format!("is not JSON: {e}")))?;
    if measure.get("id").and_then(Value::as_str) != Some(id) {
        return Err(ViewError::invalid(
            id,
            "its Measure's id is not its file's name",
        ));
    }
    let scoring = match measure
        .get("scoring")
        .and_then(|s| code_of(s, SCORING_SYSTEM))
        .as_deref()
    {
        Some("proportion") => Scoring::Proportion,
        Some("cohort") => Scoring::Cohort,
        Some("continuous-variable") => Scoring::ContinuousVariable,
        other => {
            return Err(ViewError::invalid(
                id,
                format!("scoring {other:?} is not proportion, cohort or continuous-variable"),
            ));
        }
    };
    let mut populations = Vec::new();
    let mut stratifiers = Vec::new();
    let groups = measure.get("group").and_then(Value::as_array);
    let Some([group]) = groups.map(Vec::as_slice) else {
        return Err(ViewError::invalid(id, "an indicator has one group"));
    };
    {
        for (at, population) in group
            .get("population")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let code = population
                .get("code")
                .and_then(|c| code_of(c, POPULATION_SYSTEM))
                .ok_or_else(|| ViewError::invalid(id, format!("population {at} has no code")))?;
            let column = criteria_column(id, &format!("population {code}"), population)?;
            populations.push(Population { code, column });
        }
        for stratifier in group
            .get("stratifier")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let column = criteria_column(id, "stratifier", stratifier)?;
            let name = stratifier
                .pointer("/code/text")
                .and_then(Value::as_str)
                .unwrap_or(&column)
                .to_owned();
            stratifiers.push(Stratifier { name, column });
        }
        let has = |code: &str| populations.iter().any(|p| p.code == code);
        let needed: &[&str] = match scoring {
            Scoring::Proportion => &["denominator", "numerator"],
            Scoring::Cohort => &["initial-population"],
            Scoring::ContinuousVariable => &["measure-observation"],
        };
        if let Some(missing) = needed.iter().find(|c| !has(c)) {
            return Err(ViewError::invalid(
                id,
                format!("has no {missing} population"),
            ));
        }
    }
    let version = content_hash(&[text, sql]);
    measure["url"] = json!(canonical("Measure", id));
    measure["version"] = json!(version);
    let views = sql_header_views(id, sql)?;
    measure["library"] = json!([canonical("Library", id)]);
    let library = {
        {
            json!({
                "resourceType": "Library",
                "id": id,
                "url": canonical("Library", id),
                "version": version,
                "name": measure.get("name").cloned().unwrap_or(json!(id)),
                "title": measure.get("title").cloned().unwrap_or(json!(id)),
                "status": "active",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/library-type", "code": "logic-library"}]},
                "description": format!(
                    "The SQL of indicator {id}, over the catalogue's materialised views: one row per member of the initial population."
                ),
                "parameter": [
                    {"name": "period_start", "use": "in", "min": 1, "max": "1", "type": "date"},
                    {"name": "period_end", "use": "in", "min": 1, "max": "1", "type": "date"},
                    {"name": "period_months", "use": "in", "min": 0, "max": "1", "type": "integer"},
                ],
                "relatedArtifact": views.iter().map(|v| json!({
                    "type": "depends-on",
                    "display": v,
                    "resource": canonical("Library", &view_library_id(v)),
                })).collect::<Vec<_>>(),
                "content": [{"contentType": SQL_CONTENT_TYPE, "data": STANDARD.encode(sql)}],
            })
        }
    };
    Ok(Indicator {
        id,
        measure,
        library,
        sql,
        views,
        scoring,
        populations,
        stratifiers,
    })
}

/// Every catalogue indicator, by id, loaded once per process. They are checked when the crate
/// is tested, so an error here is a fault of the build.
pub fn indicators() -> Result<&'static [Indicator], ViewError> {
    static LOADED: OnceLock<Result<Vec<Indicator>, ViewError>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            INDICATORS
                .iter()
                .map(|(id, text, sql)| load(id, text, sql))
                .collect()
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// The indicator with id `id`, or whose canonical URL is `id`.
pub fn indicator(id: &str) -> Option<Indicator> {
    indicators()
        .ok()?
        .iter()
        .find(|i| i.id == id || canonical("Measure", i.id) == id)
        .cloned()
}

/// Why an answer could not be made a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("indicator {indicator}: {message}")]
pub struct ReportError {
    pub indicator: String,
    pub message: String,
}

/// The counts of one population set (the whole group, or one stratum).
#[derive(Default)]
struct Tally {
    counts: BTreeMap<String, u64>,
    observations: Vec<f64>,
    subjects: BTreeMap<String, Vec<String>>,
}

impl Tally {
    fn add(&mut self, member: &[(String, bool)], observation: Option<f64>, subject: Option<&str>) {
        for (code, is_in) in member {
            let count = self.counts.entry(code.clone()).or_default();
            if *is_in {
                *count += 1;
                if let Some(subject) = subject {
                    self.subjects
                        .entry(code.clone())
                        .or_default()
                        .push(subject.to_owned());
                }
            }
        }
        if let Some(value) = observation {
            self.observations.push(value);
        }
    }

    fn score(&mut self, scoring: Scoring) -> Option<Value> {
        match scoring {
            Scoring::Proportion => {
                let denominator = *self.counts.get("denominator").unwrap_or(&0);
                let numerator = *self.counts.get("numerator").unwrap_or(&0);
                (denominator > 0).then(|| json!({"value": round6(numerator as f64 / denominator as f64)}))
            }
            Scoring::Cohort => None,
            Scoring::ContinuousVariable => {
                median(&mut self.observations).map(|m| json!({"value": round6(m), "unit": "min", "system": "http://unitsofmeasure.org", "code": "min"}))
            }
        }
    }
}

fn round6(value: f64) -> f64 {
    (value * 1_000_000.0).round() / 1_000_000.0
}

/// The median (the mean of the middle two of an even count).
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

fn flag(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty() && s != "0",
        _ => false,
    }
}

fn stratum_text(value: &Value) -> String {
    match value {
        Value::Null => "unknown".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An indicator's report in the making: the rows of its SQL's answer counted as they come,
/// so that an answer of millions of rows is never held.
pub struct ReportBuilder<'i> {
    indicator: &'i Indicator,
    /// (population code, the column of its flag; `None`: every row).
    flags: Vec<(String, Option<usize>)>,
    observation: Option<usize>,
    strata_at: Vec<usize>,
    subject_at: Option<usize>,
    whole: Tally,
    strata: Vec<BTreeMap<String, Tally>>,
}

impl<'i> ReportBuilder<'i> {
    /// A report of `indicator` over an answer of `columns`, with the members of each
    /// population listed when `subject_list`. Refused when the answer lacks a column the
    /// Measure names (or `subject`, for a subject list).
    pub fn new(
        indicator: &'i Indicator,
        columns: &[String],
        subject_list: bool,
    ) -> Result<ReportBuilder<'i>, ReportError> {
        let error = |message: String| ReportError {
            indicator: indicator.id.to_owned(),
            message,
        };
        let index = |column: &str| -> Result<usize, ReportError> {
            columns
                .iter()
                .position(|c| c == column)
                .ok_or_else(|| error(format!("its SQL's answer has no column '{column}'")))
        };
        let mut flags: Vec<(String, Option<usize>)> = Vec::new();
        let mut observation = None;
        for population in &indicator.populations {
            if population.code == "measure-observation" {
                observation = Some(index(&population.column)?);
                continue;
            }
            // An initial population not in the answer is every row.
            let at = match index(&population.column) {
                Ok(at) => Some(at),
                Err(_) if population.code == "initial-population" => None,
                Err(e) => return Err(e),
            };
            flags.push((population.code.clone(), at));
        }
        if !flags.iter().any(|(code, _)| code == "initial-population") {
            flags.insert(0, ("initial-population".to_owned(), None));
        }
        let strata_at = indicator
            .stratifiers
            .iter()
            .map(|s| index(&s.column))
            .collect::<Result<_, _>>()?;
        let subject_at = if subject_list {
            Some(index("subject")?)
        } else {
            None
        };
        Ok(ReportBuilder {
            indicator,
            flags,
            observation,
            strata_at,
            subject_at,
            whole: Tally::default(),
            strata: indicator
                .stratifiers
                .iter()
                .map(|_| BTreeMap::new())
                .collect(),
        })
    }

    /// Counts one row of the answer (its values in the answer's column order).
    pub fn add(&mut self, row: &[Value]) {
        let cell = |at: usize| row.get(at).unwrap_or(&Value::Null);
        let member: Vec<(String, bool)> = self
            .flags
            .iter()
            .map(|(code, at)| (code.clone(), at.is_none_or(|at| flag(cell(at)))))
            .collect();
        if !member.first().is_some_and(|(_, is_in)| *is_in) {
            return;
        }
        let observed = self.observation.and_then(|at| cell(at).as_f64());
        let subject = self.subject_at.and_then(|at| cell(at).as_str());
        self.whole.add(&member, observed, subject);
        for (stratifier, at) in self.strata.iter_mut().zip(&self.strata_at) {
            stratifier
                .entry(stratum_text(cell(*at)))
                .or_default()
                .add(&member, observed, None);
        }
    }

    /// The `MeasureReport` for `period`, made at `date` (an instant).
    pub fn finish(mut self, period: &Period, date: &str) -> Value {
        let indicator = self.indicator;
        let subject_list = self.subject_at.is_some();
        let mut contained = Vec::new();
        let mut group = json!({
            "population": self.populations(&self.whole, subject_list.then_some(&mut contained)),
        });
        if let Some(score) = self.whole.score(indicator.scoring) {
            group["measureScore"] = score;
        }
        if !indicator.stratifiers.is_empty() {
            let strata = std::mem::take(&mut self.strata);
            let mut stratifier_json = Vec::new();
            for (stratifier, tallies) in indicator.stratifiers.iter().zip(strata) {
                let mut stratum_json = Vec::new();
                for (value, mut tally) in tallies {
                    let mut stratum = json!({
                        "value": {"text": value},
                        "population": self.populations(&tally, None),
                    });
                    if let Some(score) = tally.score(indicator.scoring) {
                        stratum["measureScore"] = score;
                    }
                    stratum_json.push(stratum);
                }
                // FHIR has no empty arrays: a stratifier nobody falls in has no strata.
                let mut one = json!({"code": [{"text": stratifier.name}]});
                if !stratum_json.is_empty() {
                    one["stratum"] = json!(stratum_json);
                }
                stratifier_json.push(one);
            }
            group["stratifier"] = json!(stratifier_json);
        }
        let measure = &indicator.measure;
        let mut report = json!({
            "resourceType": "MeasureReport",
            "status": "complete",
            "type": if subject_list { "subject-list" } else { "summary" },
            "measure": format!(
                "{}|{}",
                measure["url"].as_str().unwrap_or_default(),
                measure["version"].as_str().unwrap_or_default()
            ),
            "date": date,
            "period": {"start": period.start, "end": period.end},
            "group": [group],
        });
        if let Some(notation) = measure.get("improvementNotation") {
            report["improvementNotation"] = notation.clone();
        }
        if subject_list {
            report["contained"] = json!(contained);
        }
        report
    }

    fn populations(&self, tally: &Tally, mut contained: Option<&mut Vec<Value>>) -> Vec<Value> {
        let code_of = |code: &str| json!({"coding": [{"system": POPULATION_SYSTEM, "code": code}]});
        let mut out = Vec::new();
        for (code, _) in &self.flags {
            let mut population = json!({
                "code": code_of(code),
                "count": tally.counts.get(code).copied().unwrap_or(0),
            });
            if let Some(contained) = contained.as_deref_mut() {
                let list_id = format!("{code}-subjects");
                let subjects = tally.subjects.get(code).map(Vec::as_slice).unwrap_or(&[]);
                let mut list = json!({
                    "resourceType": "List",
                    "id": list_id,
                    "status": "current",
                    "mode": "snapshot",
                    "title": format!("{} {code}", self.indicator.id),
                });
                if !subjects.is_empty() {
                    list["entry"] = subjects
                        .iter()
                        .map(|s| json!({"item": {"reference": s}}))
                        .collect();
                }
                contained.push(list);
                population["subjectResults"] = json!({"reference": format!("#{list_id}")});
            }
            out.push(population);
        }
        if self.observation.is_some() {
            out.push(json!({
                "code": code_of("measure-observation"),
                "count": tally.observations.len(),
            }));
        }
        out
    }
}

/// The answer of an indicator's SQL, whole, as a `MeasureReport` ([`ReportBuilder`] counts
/// it as it comes).
pub fn report(
    indicator: &Indicator,
    columns: &[String],
    rows: &[Vec<Value>],
    period: &Period,
    subject_list: bool,
    date: &str,
) -> Result<Value, ReportError> {
    let mut builder = ReportBuilder::new(indicator, columns, subject_list)?;
    for row in rows {
        builder.add(row);
    }
    Ok(builder.finish(period, date))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_indicator_loads_and_is_named_as_its_files() {
        let indicators = indicators().unwrap();
        assert_eq!(indicators.len(), INDICATORS.len());
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/catalogue/indicators");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        let mut expected: Vec<String> = Vec::new();
        for indicator in indicators {
            expected.push(format!("{}.json", indicator.id));
            expected.push(format!("{}.sql", indicator.id));
            assert!(!indicator.views.is_empty(), "{}", indicator.id);
            for field in ["title", "description", "purpose"] {
                assert!(
                    indicator.measure[field].is_string(),
                    "{} has no {field}",
                    indicator.id
                );
            }
        }
        expected.sort();
        assert_eq!(files, expected);
    }

    #[test]
    fn periods_read_days_months_and_years() {
        let p = Period::parse("2025-07", "2026-06").unwrap();
        assert_eq!(
            (p.start.as_str(), p.end.as_str()),
            ("2025-07-01", "2026-06-30")
        );
        assert_eq!(p.months(), 12);
        let p = Period::parse("2024", "2024-02").unwrap();
        assert_eq!(p.end, "2024-02-29");
        assert_eq!(p.months(), 2);
        assert!(Period::parse("2026-02-30", "2026-03-01").is_none());
        assert!(Period::parse("2026-03", "2026-02").is_none());
        assert!(Period::parse("2026-1", "2026-02").is_none());
        assert!(Period::parse("x", "2026").is_none());
    }

    #[test]
    fn a_proportion_is_counted_scored_and_stratified() {
        let indicator = indicator("in-county-diagnosis").unwrap();
        let columns: Vec<String> = [
            "subject",
            "denominator",
            "numerator",
            "county",
            "month",
            "sex",
            "age_band",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect();
        let row = |s: &str, n: i64, county: &str| {
            vec![
                json!(s),
                json!(1),
                json!(n),
                json!(county),
                json!("2026-01"),
                json!("female"),
                Value::Null,
            ]
        };
        let rows = vec![
            row("Encounter/a", 1, "A"),
            row("Encounter/b", 0, "A"),
            row("Encounter/c", 1, "B"),
        ];
        let period = Period::parse("2026-01", "2026-01").unwrap();
        let report = report(
            &indicator,
            &columns,
            &rows,
            &period,
            true,
            "2026-02-01T00:00:00Z",
        )
        .unwrap();
        let group = &report["group"][0];
        assert_eq!(group["measureScore"]["value"], json!(0.666667));
        let counts: Vec<u64> = group["population"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["count"].as_u64().unwrap())
            .collect();
        assert_eq!(counts, vec![3, 3, 2]);
        let county = &group["stratifier"][0];
        assert_eq!(county["stratum"][0]["value"]["text"], "A");
        assert_eq!(county["stratum"][0]["measureScore"]["value"], json!(0.5));
        let age = group["stratifier"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["code"][0]["text"] == "age band")
            .unwrap();
        assert_eq!(age["stratum"][0]["value"]["text"], "unknown");
        let numerator = report["contained"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == "numerator-subjects")
            .unwrap();
        assert_eq!(numerator["entry"].as_array().unwrap().len(), 2);
        assert_eq!(report["type"], "subject-list");
        // A column the Measure names and the answer lacks is the indicator's fault, named.
        let err = super::report(&indicator, &columns[..3], &rows, &period, false, "x").unwrap_err();
        assert!(err.message.contains("county"), "{err}");
    }

    #[test]
    fn reports_are_valid_measure_reports_empty_or_not() {
        let model = fhir_model::r4();
        let period = Period::parse("2026-01", "2026-01").unwrap();
        for indicator in indicators().unwrap() {
            let mut columns: Vec<String> = vec!["subject".into()];
            columns.extend(indicator.populations.iter().map(|p| p.column.clone()));
            columns.extend(indicator.stratifiers.iter().map(|s| s.column.clone()));
            let row: Vec<Value> = columns
                .iter()
                .map(|c| {
                    if c == "subject" {
                        json!("Patient/p1")
                    } else {
                        json!(1)
                    }
                })
                .collect();
            for rows in [vec![], vec![row]] {
                for subject_list in [false, true] {
                    let report = report(
                        indicator,
                        &columns,
                        &rows,
                        &period,
                        subject_list,
                        "2026-02-01T00:00:00Z",
                    )
                    .unwrap();
                    let issues = fhir_model::validate(model, &report);
                    assert!(issues.is_empty(), "{}: {issues:?}", indicator.id);
                }
            }
        }
    }

    #[test]
    fn a_library_holds_its_query_in_an_sql_attachment() {
        let library = |content: Value| json!({"resourceType": "Library", "content": content});
        let sql = STANDARD.encode("VALUES (1)");
        let with_dialect = library(json!([
            {"contentType": "application/json", "data": STANDARD.encode("{}")},
            {"contentType": "application/sql; dialect=sqlite", "data": sql},
        ]));
        assert_eq!(sql_of_library(&with_dialect).unwrap(), "VALUES (1)");
        let none = library(json!([{"contentType": "text/plain", "data": sql}]));
        assert!(
            sql_of_library(&none)
                .unwrap_err()
                .to_string()
                .contains("holds no query")
        );
        let broken = library(json!([{"contentType": "application/sql", "data": "!!"}]));
        assert!(
            sql_of_library(&broken)
                .unwrap_err()
                .to_string()
                .contains("base64")
        );
        let not_a_library = json!({"resourceType": "Measure"});
        assert!(sql_of_library(&not_a_library).is_err());
        // The catalogue's own Libraries read back as their SQL.
        for indicator in indicators().unwrap() {
            assert_eq!(sql_of_library(&indicator.library).unwrap(), indicator.sql);
        }
    }

    #[test]
    fn a_continuous_variable_scores_the_median() {
        let mut values = vec![5.0, 1.0, 3.0, 10.0];
        assert_eq!(median(&mut values), Some(4.0));
        assert_eq!(median(&mut []), None);
    }
}
