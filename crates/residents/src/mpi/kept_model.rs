//! The learned model kept in the store, as one `Basic` resource with a fixed id: every
//! re-estimation is a new version of it (the history shows how the model changed and when), it
//! is written and read through the repository like any resource, so both store backends keep it
//! and a restart finds it, and it leaves with a backup or an export like the rest of the data.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use caller::Caller;
use repository::{InTransaction, Repository, RepositoryError};
use serde_json::{Value, json};

use super::{MPI_SYSTEM, Mpi};
use crate::IdentityError;
use crate::compare::{FIELD_COUNT, Field};
use crate::model::{MAX_LEVELS, Matcher, Model, TermFrequencies};

/// The id of the `Basic` resource that holds the model.
pub const MODEL_ID: &str = "mpi-match-model";
/// The extension that carries the model.
pub const MODEL_EXTENSION: &str = "urn:meridian:mpi:match-model";
/// At most this many family and given names each are kept with their counts: the rest are
/// taken to be as rare as the last kept.
const KEPT_NAMES: usize = 20_000;

/// Where the model in use came from.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelOrigin {
    /// The regional model the service ships with, with the prior one in the population.
    BuiltIn,
    /// Estimated from the index's own Patients.
    Estimated(Estimated),
}

/// What an estimation saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimated {
    /// When (microseconds since the epoch).
    pub at: i64,
    pub records: usize,
    pub blocked_pairs: usize,
    pub iterations: usize,
    pub converged: bool,
    /// Pairs of the records the model takes to be one person.
    pub expected_matches: f64,
}

/// The `Basic` resource holding `matcher`'s model and name counts.
pub(crate) fn to_resource(matcher: &Matcher, estimated: &Estimated) -> Value {
    let model = &matcher.model;
    let mut parts = vec![
        json!({"url": "estimated", "valueInstant": fhir_model::clock::format_instant(estimated.at)}),
        json!({"url": "records", "valueInteger": estimated.records}),
        json!({"url": "blocked-pairs", "valueInteger": estimated.blocked_pairs.min(i32::MAX as usize)}),
        json!({"url": "iterations", "valueInteger": estimated.iterations}),
        json!({"url": "converged", "valueBoolean": estimated.converged}),
        json!({"url": "expected-matches", "valueDecimal": rounded(estimated.expected_matches)}),
        json!({"url": "prior", "valueDecimal": model.prior}),
    ];
    for field in Field::ALL {
        let f = field as usize;
        let mut field_parts = vec![json!({"url": "name", "valueCode": field.name()})];
        for level in 1..=field.levels() {
            field_parts.push(json!({"url": "level", "extension": [
                {"url": "level", "valueInteger": level},
                {"url": "m", "valueDecimal": model.m[f][level]},
                {"url": "u", "valueDecimal": model.u[f][level]},
            ]}));
        }
        parts.push(json!({"url": "field", "extension": field_parts}));
    }
    if let Some(frequencies) = &matcher.frequencies {
        parts.push(json!({"url": "name-frequencies", "valueAttachment": {
            "contentType": "text/tab-separated-values",
            "data": STANDARD.encode(frequencies.to_text(KEPT_NAMES)),
        }}));
    }
    json!({
        "resourceType": "Basic",
        "id": MODEL_ID,
        "code": {"coding": [{"system": MPI_SYSTEM, "code": "match-model", "display": "Record-matching model of the master patient index"}]},
        "created": fhir_model::clock::format_instant(estimated.at)[..10],
        "extension": [{"url": MODEL_EXTENSION, "extension": parts}],
    })
}

fn rounded(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The model, name counts and facts a `Basic` resource written by [`to_resource`] holds;
/// `None` when it holds something else.
pub(crate) fn from_resource(resource: &Value) -> Option<(Model, TermFrequencies, Estimated)> {
    let parts = resource["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == MODEL_EXTENSION)?["extension"]
        .as_array()?;
    let part = |name: &str| parts.iter().find(|p| p["url"] == name);
    let number = |name: &str, key: &str| part(name).and_then(|p| p[key].as_f64());
    let estimated = Estimated {
        at: fhir_model::clock::parse_instant(part("estimated")?["valueInstant"].as_str()?)?,
        records: number("records", "valueInteger")? as usize,
        blocked_pairs: number("blocked-pairs", "valueInteger")? as usize,
        iterations: number("iterations", "valueInteger")? as usize,
        converged: part("converged")?["valueBoolean"].as_bool()?,
        expected_matches: number("expected-matches", "valueDecimal")?,
    };
    let mut m = [[0.0; MAX_LEVELS]; FIELD_COUNT];
    let mut u = [[0.0; MAX_LEVELS]; FIELD_COUNT];
    let mut seen = [false; FIELD_COUNT];
    for field_part in parts.iter().filter(|p| p["url"] == "field") {
        let inner = field_part["extension"].as_array()?;
        let name = inner.iter().find(|p| p["url"] == "name")?["valueCode"].as_str()?;
        let field = Field::ALL.into_iter().find(|f| f.name() == name)?;
        let f = field as usize;
        for level_part in inner.iter().filter(|p| p["url"] == "level") {
            let values = level_part["extension"].as_array()?;
            let get = |key: &str, value: &str| {
                values
                    .iter()
                    .find(|v| v["url"] == key)
                    .and_then(|v| v[value].as_f64())
            };
            let level = get("level", "valueInteger")? as usize;
            if level == 0 || level > field.levels() {
                return None;
            }
            m[f][level] = get("m", "valueDecimal")?;
            u[f][level] = get("u", "valueDecimal")?;
        }
        seen[f] = true;
    }
    if seen.contains(&false) {
        return None;
    }
    let frequencies = match part("name-frequencies") {
        Some(p) => {
            let bytes = STANDARD
                .decode(p["valueAttachment"]["data"].as_str()?)
                .ok()?;
            TermFrequencies::from_text(std::str::from_utf8(&bytes).ok()?)?
        }
        None => TermFrequencies::default(),
    };
    let prior = number("prior", "valueDecimal")?;
    Some((Model::new(prior, m, u), frequencies, estimated))
}

impl Mpi {
    /// Takes up the model kept in the store, if there is one (at start-up). Answers whether
    /// there was; a kept model that cannot be read is an error, not silently the built-in one.
    /// What the last re-estimation did (one refused too) is taken up with it.
    pub fn load_model(&self, repository: &Repository, ctx: &Caller) -> Result<bool, IdentityError> {
        self.load_last_learning(repository)?;
        let Some(record) = repository.reader(ctx).current("Basic", MODEL_ID)? else {
            return Ok(false);
        };
        let Some(content) = record.content.as_deref() else {
            return Ok(false);
        };
        let resource: Value = serde_json::from_slice(content)
            .map_err(|e| IdentityError::Internal(format!("stored Basic/{MODEL_ID}: {e}")))?;
        let (model, frequencies, estimated) = from_resource(&resource).ok_or_else(|| {
            IdentityError::Internal(format!(
                "Basic/{MODEL_ID} does not hold a matching model the index can read"
            ))
        })?;
        self.replace_matcher(
            Matcher::new(model, Some(frequencies), self.config.thresholds),
            ModelOrigin::Estimated(estimated),
        );
        Ok(true)
    }

    /// Writes the model to the store in `tx`.
    pub(crate) fn keep_model(
        &self,
        tx: &mut InTransaction<'_, '_>,
        matcher: &Matcher,
        estimated: &Estimated,
    ) -> Result<(), RepositoryError> {
        tx.update(to_resource(matcher, estimated), None)?;
        Ok(())
    }
}
