//! The loaded Synthea sample, and a small supplement for what it lacks, as the brute-force side
//! sees them: every stored resource, read back by id (so both sides look at the same JSON), and
//! what each search parameter's official FHIRPath expression yields on it, evaluated by the
//! `fhirpath` crate alone.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use fhir_model::{SearchParamDef, SearchParamType};
use fhirpath::{Collection, Environment, Expression};
use repository::{BundleOptions, Repository};
use serde_json::Value;

use crate::support::{BASE, ctx, json};
use crate::synthea::{FILES, bundle};

/// One stored resource.
#[derive(Debug)]
pub struct Stored {
    pub resource_type: String,
    pub id: String,
    pub json: Value,
}

/// One item a parameter's expression yields: its FHIR type and its JSON. For a composite
/// parameter, the items of each component, evaluated on this item.
#[derive(Debug, Clone)]
pub struct Item {
    pub type_name: String,
    pub json: Value,
    pub components: Vec<Vec<Item>>,
}

/// A parameter's expression and, for a composite, its components' expressions.
struct Compiled {
    expression: Expression,
    components: Vec<Expression>,
}

/// Compiled expressions by (type, parameter); `None` when the parameter has none.
type ExpressionCache = RefCell<HashMap<(String, String), Option<Rc<Compiled>>>>;
/// What each parameter yields on each resource, by (type, id, parameter): chains and reverse
/// chains ask for the same values again and again.
type ValueCache = RefCell<HashMap<(String, String, String), Rc<Vec<Item>>>>;

pub struct Corpus {
    by_type: BTreeMap<String, Vec<Stored>>,
    positions: HashMap<(String, String), usize>,
    compiled: ExpressionCache,
    values: ValueCache,
}

/// The official definition of a parameter of a resource type.
pub fn param(resource_type: &str, code: &str) -> Option<&'static SearchParamDef> {
    let found = fhir_model::r4()
        .search_parameters_for(resource_type)
        .find(|p| &*p.code == code)?;
    Some(forever(found))
}

/// The same definition, borrowed from the model for good.
fn forever(definition: &SearchParamDef) -> &'static SearchParamDef {
    fhir_model::r4()
        .search_parameters()
        .iter()
        .find(|p| std::ptr::eq(*p, definition))
        .expect("a definition of the model")
}

/// Every parameter of a resource type that has an expression, in code order.
pub fn params_of(resource_type: &str) -> Vec<&'static SearchParamDef> {
    let mut params: Vec<_> = fhir_model::r4()
        .search_parameters_for(resource_type)
        .filter(|p| p.expression.is_some() && p.kind != SearchParamType::Special)
        .map(forever)
        .collect();
    params.sort_by(|a, b| a.code.cmp(&b.code));
    params
}

impl Corpus {
    /// Loads the sample through the repository (batches first, then patient transactions, as
    /// a client would) and reads every written resource back.
    pub fn load(repository: &Repository) -> Corpus {
        let mut keys = Vec::new();
        for name in FILES {
            let response = repository
                .process_bundle(&ctx(), BASE, bundle(name), BundleOptions::default())
                .unwrap_or_else(|e| panic!("{name} loads: {e:?}"));
            for entry in json(&response)["entry"].as_array().expect("entries") {
                let location = entry["response"]["location"].as_str().expect("a location");
                let mut parts = location.split('/');
                let (resource_type, id) = (parts.next().unwrap(), parts.next().unwrap());
                keys.push((resource_type.to_owned(), id.to_owned()));
            }
        }
        keys.extend(supplement(repository));
        let mut by_type: BTreeMap<String, Vec<Stored>> = BTreeMap::new();
        for (resource_type, id) in keys {
            let record = repository
                .read(&ctx(), &resource_type, &id)
                .expect("reads back");
            by_type
                .entry(resource_type.clone())
                .or_default()
                .push(Stored {
                    resource_type,
                    id,
                    json: json(record.content.as_deref().expect("content")),
                });
        }
        // Kept in load order: ids are assigned by the server, so only the order of the bundles
        // is the same from run to run, and the generator's choices must not depend on ids.
        let mut positions = HashMap::new();
        for (resource_type, resources) in &by_type {
            for (i, stored) in resources.iter().enumerate() {
                positions.insert((resource_type.clone(), stored.id.clone()), i);
            }
        }
        Corpus {
            by_type,
            positions,
            compiled: RefCell::default(),
            values: RefCell::default(),
        }
    }

    /// The resources written by [`supplement`].
    pub const SUPPLEMENT: usize =
        PROBABILITIES.len() + QUANTITIES.len() + VALUES.len() + SCHEDULES.len() + PATIENTS.len();

    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.by_type.keys().map(String::as_str)
    }

    pub fn of_type(&self, resource_type: &str) -> &[Stored] {
        self.by_type
            .get(resource_type)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn get(&self, resource_type: &str, id: &str) -> Option<&Stored> {
        let position = self
            .positions
            .get(&(resource_type.to_owned(), id.to_owned()))?;
        Some(&self.by_type[resource_type][*position])
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    fn compiled(&self, resource_type: &str, code: &str) -> Option<Rc<Compiled>> {
        let key = (resource_type.to_owned(), code.to_owned());
        if let Some(found) = self.compiled.borrow().get(&key) {
            return found.clone();
        }
        // Compiled without a context type, unlike the indexer: the whole official expression
        // (`Condition.code | Observation.code | ...`) runs, and only this type's branch can
        // yield anything.
        let compiled = param(resource_type, code).and_then(|definition| {
            let expression = fhirpath::compile(definition.expression.as_deref()?)
                .unwrap_or_else(|e| panic!("{resource_type}.{code} compiles: {e}"));
            let components = definition
                .components
                .iter()
                .map(|c| fhirpath::compile(&c.expression).expect("a component compiles"))
                .collect();
            Some(Rc::new(Compiled {
                expression,
                components,
            }))
        });
        self.compiled.borrow_mut().insert(key, compiled.clone());
        compiled
    }

    /// What the expression of parameter `code` yields on `stored`.
    pub fn values(&self, stored: &Stored, code: &str) -> Rc<Vec<Item>> {
        let key = (
            stored.resource_type.clone(),
            stored.id.clone(),
            code.to_owned(),
        );
        if let Some(found) = self.values.borrow().get(&key) {
            return found.clone();
        }
        let items = match self.compiled(&stored.resource_type, code) {
            None => Vec::new(),
            Some(compiled) => evaluate(&compiled, &stored.json),
        };
        let items = Rc::new(items);
        self.values.borrow_mut().insert(key, items.clone());
        items
    }
}

/// Probabilities as written: integers, decimals at several precisions, an exponent, and
/// values on the edges of one another's implicit ranges (0.15 is where 0.1 ends and 0.2
/// begins).
const PROBABILITIES: [&str; 12] = [
    "0.15", "0.2", "0.1", "0.8", "0.85", "0.333", "1", "0.05", "0.25", "0", "1.5e-1", "0.999",
];

/// Quantities whose human unit is not their code, or that have no code or a system other
/// than UCUM: in the sample every quantity is UCUM with `unit` equal to `code`.
const QUANTITIES: [&str; 6] = [
    r#"{"value": 5.4, "unit": "milligram", "system": "http://unitsofmeasure.org", "code": "mg"}"#,
    r#"{"value": 250, "unit": "mg"}"#,
    r#"{"value": 37.5, "unit": "degrees C", "system": "http://unitsofmeasure.org", "code": "Cel"}"#,
    r#"{"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}"#,
    r#"{"value": 98.6, "unit": "degF"}"#,
    r#"{"value": 3, "unit": "tablets", "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm", "code": "TAB"}"#,
];

/// Observation values of other types: in the sample, no observation has a string or date
/// value, so the composites `code-value-string` and `code-value-date` have nothing to find.
const VALUES: [&str; 4] = [
    r#""code": {"coding": [{"system": "http://loinc.org", "code": "94500-6"}]},
        "valueString": "Detected, by PCR (qualifier)""#,
    r#""code": {"coding": [{"system": "http://loinc.org", "code": "94500-6"}]},
        "valueString": "Not detected""#,
    r#""code": {"coding": [{"system": "http://loinc.org", "code": "11368-8"}]},
        "valueDateTime": "2021-05-06T10:00:00+02:00""#,
    r#""code": {"coding": [{"system": "http://loinc.org", "code": "11368-8"}]},
        "valuePeriod": {"start": "2021-05-06", "end": "2021-05-20T18:30:00+02:00"}"#,
];

/// Care plan activities scheduled by a Timing (events and bounds: only the outer limits count,
/// 3.1.1.4.7) and by a Period open at its end: in the sample, no date is a Timing.
const SCHEDULES: [&str; 2] = [
    r#"{"status": "scheduled", "scheduledTiming": {
        "event": ["2021-03-01T09:00:00Z", "2021-03-15T09:00:00Z"],
        "repeat": {"boundsPeriod": {"start": "2021-02-20", "end": "2021-04-01"}}}}"#,
    r#"{"status": "in-progress", "scheduledPeriod": {"start": "2021-06-01T08:00:00+08:00"}}"#,
];

/// Patients with accents, punctuation and Chinese in their names, and birth dates of year and
/// month precision: every name in the sample is plain ASCII and every birth date a day.
const PATIENTS: [&str; 2] = [
    r#"{"resourceType": "Patient", "gender": "other", "birthDate": "1970",
        "name": [{"family": "Müller-Lüdenscheidt", "given": ["Zoë", "Émile"], "prefix": ["Dr."]}],
        "address": [{"line": ["Straße des 17. Juni 135"], "city": "Bärnau", "country": "DE"}]}"#,
    r#"{"resourceType": "Patient", "gender": "female", "birthDate": "1985-06",
        "name": [{"text": "欧阳·娜娜", "family": "欧阳", "given": ["娜娜"]}],
        "address": [{"line": ["朝阳区三里屯路19号"], "city": "北京", "postalCode": "100027"}]}"#,
];

/// What the sample lacks. No resource type of it has a number parameter: a few risk
/// assessments (`RiskAssessment.prediction.probability` is one) give the number type data,
/// with occurrences of every precision and one versioned reference. A few observations carry
/// the quantities of [`QUANTITIES`] and the values of [`VALUES`], care plans the schedules of
/// [`SCHEDULES`], and [`PATIENTS`] the names.
fn supplement(repository: &Repository) -> Vec<(String, String)> {
    let patient = json(
        &repository
            .search(
                &ctx(),
                BASE,
                &repository::SearchRequest::of_type("Patient", Vec::new()),
            )
            .expect("patients"),
    )["entry"][0]["resource"]["id"]
        .as_str()
        .expect("a patient")
        .to_owned();
    let create = |text: String| {
        let resource: Value = serde_json::from_str(&text).expect("a resource");
        let resource_type = resource["resourceType"]
            .as_str()
            .expect("a type")
            .to_owned();
        let written = repository
            .create(&ctx(), resource, None)
            .unwrap_or_else(|e| panic!("{text}: {e:?}"));
        (resource_type, written.record.expect("a record").id)
    };
    let observations = QUANTITIES.iter().map(|quantity| {
        create(format!(
            r#"{{"resourceType": "Observation", "status": "final", "code": {{"text": "supplement"}},
                "subject": {{"reference": "Patient/{patient}"}}, "valueQuantity": {quantity}}}"#
        ))
    });
    let values = VALUES.iter().map(|value| {
        create(format!(
            r#"{{"resourceType": "Observation", "status": "final",
                "subject": {{"reference": "Patient/{patient}"}}, {value}}}"#
        ))
    });
    let schedules = SCHEDULES.iter().map(|detail| {
        create(format!(
            r#"{{"resourceType": "CarePlan", "status": "active", "intent": "plan",
                "subject": {{"reference": "Patient/{patient}"}},
                "activity": [{{"detail": {detail}}}]}}"#
        ))
    });
    let risks = PROBABILITIES.iter().enumerate().map(|(i, probability)| {
        let second = PROBABILITIES[(i + 5) % PROBABILITIES.len()];
        let predictions = if i % 3 == 0 {
            format!(
                r#"[{{"probabilityDecimal": {probability}}}, {{"probabilityDecimal": {second}}}]"#
            )
        } else {
            format!(r#"[{{"probabilityDecimal": {probability}}}]"#)
        };
        let occurrence = match i % 4 {
            0 => "2021".to_owned(),
            1 => format!("2021-0{}", 1 + i % 9),
            2 => format!("2021-0{}-1{}", 1 + i % 9, i % 10),
            _ => format!("2021-0{}-1{}T08:00:00+02:00", 1 + i % 9, i % 10),
        };
        let version = if i == 2 { "/_history/1" } else { "" };
        let text = format!(
            r#"{{"resourceType": "RiskAssessment", "status": "final",
                    "subject": {{"reference": "Patient/{patient}{version}"}},
                    "occurrenceDateTime": "{occurrence}",
                    "prediction": {predictions}}}"#
        );
        create(text)
    });
    let patients = PATIENTS.iter().map(|text| create(text.to_string()));
    observations
        .chain(values)
        .chain(schedules)
        .chain(risks)
        .chain(patients)
        .collect()
}

fn evaluate(compiled: &Compiled, resource: &Value) -> Vec<Item> {
    let environment = Environment::new().with_resource(resource);
    let items = compiled
        .expression
        .evaluate(resource, &environment)
        .unwrap_or_else(|e| panic!("{:?} evaluates: {e}", compiled.expression));
    items
        .iter()
        .map(|item| {
            let components = compiled
                .components
                .iter()
                .map(|component| {
                    let context: Collection<'_> = std::iter::once(item.clone()).collect();
                    component
                        .evaluate_on(&context, &environment)
                        .expect("a component evaluates")
                        .iter()
                        .map(|part| own(part, Vec::new()))
                        .collect()
                })
                .collect();
            own(item, components)
        })
        .collect()
}

fn own(item: &fhirpath::Item<'_>, components: Vec<Vec<Item>>) -> Item {
    Item {
        type_name: item.type_name().to_owned(),
        json: item.json().cloned().unwrap_or_else(|| item.to_json()),
        components,
    }
}
