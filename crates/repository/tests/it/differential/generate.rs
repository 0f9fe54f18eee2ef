//! The queries: generated from the loaded data with a fixed seed, so most of them match
//! something and some deliberately match nothing. Every parameter of every type the sample has
//! data for gets plain, modified and prefixed searches; then chains, reverse chains, `_id`,
//! `_lastUpdated`, ORs, ANDs and `:missing` on top.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use fhir_model::{SearchParamDef, SearchParamType};

use super::corpus::{Corpus, Item, Stored, param, params_of};
use super::oracle::{Target, item_range, quantity_of, strings, target, token_pairs, token_texts};
use super::values::{
    DatePrecision, Decimal, date_range, escape, format_date, is_punctuation, normalize,
    same_dimension, ucum,
};
use crate::support::BASE;

/// One generated search on one resource type.
#[derive(Debug, Clone)]
pub struct Query {
    pub resource_type: String,
    pub params: Vec<(String, String)>,
    /// What it exercises, for the report: a parameter type, `chain`, `_has`, `and`...
    pub kind: String,
}

/// xorshift64*: small, fast and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Resources with values for one parameter, and the values.
type Holders<'c> = Vec<(&'c Stored, Rc<Vec<Item>>)>;

/// Who points at a resource: (source type, parameter, source), by target.
type Incoming<'c> = HashMap<*const Stored, Vec<(String, String, &'c Stored)>>;

struct Generator<'c> {
    corpus: &'c Corpus,
    rng: Rng,
    queries: Vec<Query>,
    seen: HashSet<(String, Vec<(String, String)>)>,
    incoming: Incoming<'c>,
}

/// Generates the queries for the loaded sample.
pub fn generate(corpus: &Corpus, seed: u64) -> Vec<Query> {
    let types: Vec<String> = corpus.types().map(str::to_owned).collect();
    let mut generator = Generator {
        corpus,
        rng: Rng(seed),
        queries: Vec::new(),
        seen: HashSet::new(),
        incoming: HashMap::new(),
    };
    for source_type in &types {
        for definition in params_of(source_type) {
            if definition.kind != SearchParamType::Reference {
                continue;
            }
            for (source, target) in generator.local_links(source_type, &definition.code) {
                generator
                    .incoming
                    .entry(target as *const Stored)
                    .or_default()
                    .push((source_type.clone(), definition.code.to_string(), source));
            }
        }
    }
    for resource_type in &types {
        generator.specials(resource_type);
        for definition in params_of(resource_type) {
            generator.plain(resource_type, definition);
        }
        generator.chains(resource_type);
        generator.reverse_chains(resource_type);
        generator.conjunctions(resource_type);
    }
    generator.queries
}

const PREFIXES: [&str; 10] = ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"];

/// A value that matches nothing in the sample.
const NOTHING: &str = "no-such-value";

impl<'c> Generator<'c> {
    fn push(&mut self, resource_type: &str, kind: &str, params: Vec<(String, String)>) {
        // A query asked twice adds nothing but count.
        if !self.seen.insert((resource_type.to_owned(), params.clone())) {
            return;
        }
        self.queries.push(Query {
            resource_type: resource_type.to_owned(),
            params,
            kind: kind.to_owned(),
        });
    }

    fn holders(&self, resource_type: &str, code: &str) -> Holders<'c> {
        self.corpus
            .of_type(resource_type)
            .iter()
            .map(|stored| (stored, self.corpus.values(stored, code)))
            .map(|(stored, items)| {
                // A composite's expression is often the resource itself (`Observation`): only
                // items with every component make a tuple to search for.
                if items.iter().all(|item| item.components.is_empty()) {
                    return (stored, items);
                }
                let complete = items
                    .iter()
                    .filter(|item| item.components.iter().all(|c| !c.is_empty()))
                    .cloned()
                    .collect();
                (stored, Rc::new(complete))
            })
            .filter(|(_, items)| !items.is_empty())
            .collect()
    }

    /// `_id` and `_lastUpdated`.
    fn specials(&mut self, resource_type: &str) {
        let resources = self.corpus.of_type(resource_type);
        for _ in 0..3 {
            let count = 1 + self.rng.below(3);
            let mut ids: Vec<String> = (0..count)
                .map(|_| self.rng.pick(resources).id.clone())
                .collect();
            if self.rng.chance(25) {
                ids.push(NOTHING.into());
            }
            self.push(resource_type, "_id", vec![("_id".into(), ids.join(","))]);
        }
        for _ in 0..4 {
            let stored = self.rng.pick(resources);
            let at = stored.json["meta"]["lastUpdated"]
                .as_str()
                .and_then(date_range)
                .expect("meta.lastUpdated")
                .0;
            let precision = *self.rng.pick(&[
                DatePrecision::Day,
                DatePrecision::Second,
                DatePrecision::Millisecond,
                DatePrecision::Millisecond,
            ]);
            let offset = *self.rng.pick(&[None, Some(480), Some(-300)]);
            let prefix = *self.rng.pick(&PREFIXES);
            let value = format!("{prefix}{}", format_date(at, precision, offset));
            self.push(
                resource_type,
                "_lastUpdated",
                vec![("_lastUpdated".into(), value)],
            );
        }
    }

    /// Searches on one parameter of the type itself.
    fn plain(&mut self, resource_type: &str, definition: &'static SearchParamDef) {
        let code = &*definition.code;
        let holders = self.holders(resource_type, code);
        let missing = |rng: &mut Rng| {
            (
                format!("{code}:missing"),
                if rng.chance(50) { "true" } else { "false" }.to_owned(),
            )
        };
        if holders.is_empty() {
            // Parameters without data still answer :missing; a sample of them is enough.
            if self.rng.chance(20) {
                let query = missing(&mut self.rng);
                self.push(resource_type, "missing", vec![query]);
            }
            return;
        }
        let query = missing(&mut self.rng);
        self.push(resource_type, "missing", vec![query]);
        // More where a type's rules have more cases (prefixes, precisions, units) or where the
        // sample has few parameters of the type.
        let count = match definition.kind {
            SearchParamType::Token => 7,
            SearchParamType::String => 7,
            SearchParamType::Reference => 5,
            SearchParamType::Date => 12,
            SearchParamType::Number => 40,
            SearchParamType::Quantity => 40,
            SearchParamType::Uri => 6,
            SearchParamType::Composite => 25,
            SearchParamType::Special => 0,
        };
        for _ in 0..count {
            if let Some(leaf) = self.leaf(resource_type, definition, &holders) {
                self.push(resource_type, definition.kind.as_str(), vec![leaf]);
            }
        }
        match definition.kind {
            SearchParamType::Quantity => self.human_units(resource_type, code, &holders),
            SearchParamType::Token => self.typed_identifiers(resource_type, code, &holders),
            _ => {}
        }
    }

    /// A human unit other than the code is rare (the supplement's own): search by it, and by
    /// the code, on purpose.
    fn human_units(&mut self, resource_type: &str, code: &str, holders: &Holders<'_>) {
        let odd: Vec<Item> = holders
            .iter()
            .flat_map(|(_, items)| items.iter())
            .filter(|item| quantity_of(item).is_some_and(|q| q.unit.is_some() && q.unit != q.code))
            .cloned()
            .collect();
        for item in &odd {
            let quantity = quantity_of(item).expect("a quantity");
            let value = quantity.value.text();
            let unit = escape(quantity.unit.as_deref().unwrap_or_default());
            let prefix = *self.rng.pick(&PREFIXES);
            let mut values = vec![
                format!("{value}||{unit}"),
                format!("{prefix}{value}||{unit}"),
            ];
            if let (Some(system), Some(quantity_code)) = (&quantity.system, &quantity.code) {
                values.push(format!(
                    "{value}|{}|{}",
                    escape(system),
                    escape(quantity_code)
                ));
                values.push(format!("{value}|{}|{unit}", escape(system)));
            }
            for value in values {
                self.push(resource_type, "quantity", vec![(code.to_owned(), value)]);
            }
        }
    }

    /// Typed identifiers are rare (the patients' own): ask for them by type on purpose.
    fn typed_identifiers(&mut self, resource_type: &str, code: &str, holders: &Holders<'_>) {
        let typed: Vec<(String, String, String)> = holders
            .iter()
            .flat_map(|(_, items)| items.iter())
            .filter(|item| item.type_name == "Identifier")
            .filter_map(|item| {
                let coding = item.json["type"]["coding"].get(0)?;
                Some((
                    coding["system"].as_str()?.to_owned(),
                    coding["code"].as_str()?.to_owned(),
                    item.json["value"].as_str()?.to_owned(),
                ))
            })
            .collect();
        for _ in 0..typed.len().min(4) {
            let (system, type_code, value) = self.rng.pick(&typed).clone();
            let value = if self.rng.chance(25) {
                NOTHING.to_owned()
            } else {
                value
            };
            self.push(
                resource_type,
                "token",
                vec![(
                    format!("{code}:of-type"),
                    format!(
                        "{}|{}|{}",
                        escape(&system),
                        escape(&type_code),
                        escape(&value)
                    ),
                )],
            );
        }
    }

    /// One `name=value` on parameter `definition`, from the values of `holders`.
    fn leaf(
        &mut self,
        resource_type: &str,
        definition: &SearchParamDef,
        holders: &Holders<'_>,
    ) -> Option<(String, String)> {
        let code = &*definition.code;
        let (_, items) = self.rng.pick(holders);
        let item = self.rng.pick(items).clone();
        let (modifier, value) = match definition.kind {
            SearchParamType::Token => self.token(&item)?,
            SearchParamType::String => self.string(&item)?,
            SearchParamType::Reference => self.reference(&item)?,
            SearchParamType::Date => (String::new(), self.date(&item)?),
            SearchParamType::Number => (String::new(), self.number(&item)?),
            SearchParamType::Quantity => (String::new(), self.quantity(&item)?),
            SearchParamType::Uri => self.uri(&item)?,
            SearchParamType::Composite => (
                String::new(),
                self.composite(resource_type, definition, &item)?,
            ),
            SearchParamType::Special => return None,
        };
        // Now and then, OR in a second value of the same kind from another resource.
        let mut value = value;
        if self.rng.chance(15) && definition.kind != SearchParamType::Composite {
            let (_, items) = self.rng.pick(holders);
            let other = self.rng.pick(items).clone();
            let second = match definition.kind {
                SearchParamType::Token => self.token(&other),
                SearchParamType::String => self.string(&other),
                SearchParamType::Reference => self.reference(&other),
                SearchParamType::Date => self.date(&other).map(|v| (String::new(), v)),
                SearchParamType::Quantity => self.quantity(&other).map(|v| (String::new(), v)),
                _ => None,
            };
            if let Some((second_modifier, second)) = second
                && second_modifier == modifier
            {
                value = format!("{value},{second}");
            }
        }
        Some((format!("{code}{modifier}"), value))
    }

    fn token(&mut self, item: &Item) -> Option<(String, String)> {
        let pairs = token_pairs(item);
        let texts = token_texts(item);
        if pairs.is_empty() {
            if texts.is_empty() {
                return None;
            }
            let text = self.rng.pick(&texts).clone();
            return Some((":text".into(), escape(&self.prefix_of(&text))));
        }
        let (system, code, _) = self.rng.pick(&pairs).clone();
        // Only codings and identifiers have a system; ContactPoint, boolean, uri and code take
        // `[parameter]=[code]` alone (3.1.1.4.10).
        let coded = matches!(
            item.type_name.as_str(),
            "Coding" | "CodeableConcept" | "Identifier"
        );
        let system = system.filter(|_| coded);
        let type_coding = item.json["type"]["coding"]
            .as_array()
            .and_then(|codings| codings.first().cloned())
            .filter(|_| item.type_name == "Identifier");
        Some(match self.rng.below(10) {
            2 | 3 if system.is_some() => (
                String::new(),
                format!("{}|{}", escape(system.as_deref().unwrap()), escape(&code)),
            ),
            4 if coded => (String::new(), format!("|{}", escape(&code))),
            5 if system.is_some() => (
                String::new(),
                format!("{}|", escape(system.as_deref().unwrap())),
            ),
            6 => match system {
                Some(system) if self.rng.chance(50) => (
                    ":not".into(),
                    format!("{}|{}", escape(&system), escape(&code)),
                ),
                _ => (":not".into(), escape(&code)),
            },
            7 if !texts.is_empty() => {
                let text = self.rng.pick(&texts).clone();
                (":text".into(), escape(&self.prefix_of(&text)))
            }
            8 if type_coding.is_some() => {
                let coding = type_coding.unwrap();
                (
                    ":of-type".into(),
                    format!(
                        "{}|{}|{}",
                        escape(coding["system"].as_str().unwrap_or_default()),
                        escape(coding["code"].as_str().unwrap_or_default()),
                        escape(&code)
                    ),
                )
            }
            9 => (String::new(), NOTHING.into()),
            _ => (String::new(), escape(&code)),
        })
    }

    /// The start of a text, cut anywhere, in a random case.
    fn prefix_of(&mut self, text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        if chars.is_empty() {
            return String::new();
        }
        let length = 1 + self.rng.below(chars.len());
        let prefix: String = chars[..length].iter().collect();
        match self.rng.below(3) {
            0 => prefix.to_lowercase(),
            1 => prefix.to_uppercase(),
            _ => prefix,
        }
    }

    fn string(&mut self, item: &Item) -> Option<(String, String)> {
        let mut texts = strings(item);
        texts.retain(|text| !text.is_empty());
        if texts.is_empty() {
            return None;
        }
        let text = self.rng.pick(&texts).clone();
        let chars: Vec<char> = text.chars().collect();
        Some(match self.rng.below(9) {
            0..=2 => (String::new(), escape(&self.prefix_of(&text))),
            3 => (":exact".into(), escape(&text)),
            4 => (":exact".into(), escape(&text.to_lowercase())),
            5 => {
                let start = self.rng.below(chars.len());
                let end = start + 1 + self.rng.below(chars.len() - start);
                let part: String = chars[start..end].iter().collect();
                (":contains".into(), escape(&part.to_uppercase()))
            }
            // Punctuation, case and accents are ignored: the text without them is found too.
            6 => {
                let bare = if self.rng.chance(50) {
                    text.chars().filter(|c| !is_punctuation(*c)).collect()
                } else {
                    normalize(&text)
                };
                (String::new(), escape(&self.prefix_of(&bare)))
            }
            7 => (String::new(), escape(&text.to_uppercase())),
            _ => (String::new(), NOTHING.into()),
        })
    }

    fn reference(&mut self, item: &Item) -> Option<(String, String)> {
        if let Some(identifier) = item.json.get("identifier")
            && (item.json.get("reference").is_none() || self.rng.chance(30))
        {
            let system = identifier["system"].as_str().unwrap_or_default();
            let value = identifier["value"].as_str()?;
            return Some((
                ":identifier".into(),
                if system.is_empty() || self.rng.chance(30) {
                    escape(value)
                } else {
                    format!("{}|{}", escape(system), escape(value))
                },
            ));
        }
        Some(match target(item)? {
            Target::Local(resource_type, id) => match self.rng.below(6) {
                0 => (String::new(), id),
                1 => (String::new(), format!("{resource_type}/{id}")),
                2 => (format!(":{resource_type}"), id),
                3 => (String::new(), format!("{BASE}/{resource_type}/{id}")),
                4 => (String::new(), format!("{resource_type}/{NOTHING}")),
                _ => (String::new(), id),
            },
            Target::Url(url, version) => (
                String::new(),
                match version {
                    Some(version) if self.rng.chance(50) => format!("{url}|{version}"),
                    _ => url,
                },
            ),
        })
    }

    fn date(&mut self, item: &Item) -> Option<String> {
        let (low, high) = item_range(item)?;
        let anchor = match (low, high) {
            (i64::MIN, high) => high,
            (low, i64::MAX) => low,
            (low, high) => {
                if self.rng.chance(50) {
                    low
                } else {
                    high
                }
            }
        };
        let precision = *self.rng.pick(&[
            DatePrecision::Year,
            DatePrecision::Month,
            DatePrecision::Day,
            DatePrecision::Day,
            DatePrecision::Minute,
            DatePrecision::Second,
            DatePrecision::Second,
        ]);
        let offset = match precision {
            DatePrecision::Year | DatePrecision::Month | DatePrecision::Day => None,
            _ => *self.rng.pick(&[None, Some(120), Some(-300), Some(480)]),
        };
        let prefix = *self.rng.pick(&PREFIXES);
        Some(format!(
            "{prefix}{}",
            format_date(anchor, precision, offset)
        ))
    }

    /// A number near `value`: as written, at a coarser precision, or one step of the last
    /// digit away, so that the edges of implicit ranges are crossed.
    fn number_near(&mut self, value: Decimal) -> String {
        let text = value.text();
        // One digit less: the stored value lies inside the implicit range, or on its edge when
        // the dropped digit is a 5 (and then, one step up, on the other edge of the next one).
        let shorter = match text.split_once('.') {
            Some((whole, fraction)) if fraction.len() > 1 => {
                format!("{whole}.{}", &fraction[..fraction.len() - 1])
            }
            Some((whole, _)) => whole.to_owned(),
            None => text.clone(),
        };
        match self.rng.below(5) {
            0 => shorter,
            4 => {
                let shorter_value = Decimal::parse(&shorter).expect("a decimal");
                let step = Decimal::half_step(&shorter).expect("a decimal");
                let up = shorter_value.add(step).add(step).text();
                // Keep the precision: 146.4 + 0.1 is written 146.5, not 146.50.
                match (shorter.split_once('.'), up.split_once('.')) {
                    (Some((_, f)), Some((w, uf))) if uf.len() > f.len() => {
                        format!("{w}.{}", &uf[..f.len()])
                    }
                    _ => up,
                }
            }
            1 => {
                let step = Decimal::half_step(&text).expect("a decimal");
                value.add(step).add(step).text()
            }
            2 => format!("{text}0"),
            _ => text,
        }
    }

    fn number(&mut self, item: &Item) -> Option<String> {
        let value = Decimal::parse(&item.json.to_string())?;
        let prefix = *self.rng.pick(&PREFIXES);
        Some(format!("{prefix}{}", self.number_near(value)))
    }

    fn quantity(&mut self, item: &Item) -> Option<String> {
        let quantity = quantity_of(item)?;
        let prefix = *self.rng.pick(&PREFIXES);
        let number = self.number_near(quantity.value);
        let system = quantity.system.clone().unwrap_or_default();
        let unit = quantity.unit.clone().unwrap_or_default();
        let code = quantity.code.clone().unwrap_or_else(|| unit.clone());
        if code.is_empty() {
            return Some(format!("{prefix}{number}"));
        }
        Some(match self.rng.below(6) {
            0 => format!("{prefix}{number}"),
            1 => format!("{prefix}{number}|{}|{}", escape(&system), escape(&code)),
            2 => format!("{prefix}{number}||{}", escape(&code)),
            3 => format!(
                "{prefix}{number}||{}",
                escape(quantity.unit.as_deref().unwrap_or(&code))
            ),
            // The same amount in another unit of the same dimension.
            _ => {
                let others = same_dimension(&code);
                if others.is_empty() {
                    return Some(format!(
                        "{prefix}{number}|{}|{}",
                        escape(&system),
                        escape(&code)
                    ));
                }
                let other = *self.rng.pick(&others);
                let (_, from) = ucum(&code).expect("a unit of the table");
                let (_, to) = ucum(other).expect("a unit of the table");
                let Some(converted) = Decimal::parse(&number)
                    .expect("a decimal")
                    .mul(from)
                    .divide_exactly(to)
                else {
                    return Some(format!("{prefix}{number}"));
                };
                format!(
                    "{prefix}{}|http://unitsofmeasure.org|{other}",
                    converted.text()
                )
            }
        })
    }

    fn uri(&mut self, item: &Item) -> Option<(String, String)> {
        let uri = item.json.as_str()?.to_owned();
        Some(match self.rng.below(6) {
            0 | 1 => (String::new(), escape(&uri)),
            2 => {
                let cut = uri.rfind('/').map_or(uri.len(), |i| i + 1);
                let cut = self.rng.below(cut).max(cut / 2);
                (":below".into(), escape(&uri[..cut.min(uri.len())]))
            }
            3 => (":below".into(), escape(&uri)),
            4 => (":above".into(), escape(&format!("{uri}/child/_history/1"))),
            _ => (":above".into(), escape(&uri)),
        })
    }

    fn composite(
        &mut self,
        resource_type: &str,
        definition: &SearchParamDef,
        item: &Item,
    ) -> Option<String> {
        let mut parts = Vec::new();
        for (component, items) in definition.components.iter().zip(&item.components) {
            let kind = param(resource_type, &component.code)?.kind;
            if items.is_empty() {
                return None;
            }
            let part = self.rng.pick(items).clone();
            parts.push(match kind {
                SearchParamType::Token => {
                    let pairs = token_pairs(&part);
                    if pairs.is_empty() {
                        return None;
                    }
                    let (system, code, _) = self.rng.pick(&pairs).clone();
                    match system {
                        Some(system) if self.rng.chance(70) => {
                            format!("{}|{}", escape(&system), escape(&code))
                        }
                        _ => escape(&code),
                    }
                }
                SearchParamType::Quantity => self.quantity(&part)?,
                SearchParamType::Date => self.date(&part)?,
                SearchParamType::String => escape(&self.prefix_of(strings(&part).first()?)),
                _ => return None,
            });
        }
        Some(parts.join("$"))
    }

    /// Chained parameters: `subject:Patient.name=...`, and two deep.
    fn chains(&mut self, resource_type: &str) {
        for definition in params_of(resource_type) {
            if definition.kind != SearchParamType::Reference {
                continue;
            }
            let links = self.local_links(resource_type, &definition.code);
            if links.is_empty() {
                continue;
            }
            for _ in 0..3 {
                let (_, target) = *self.rng.pick(&links);
                let mut name = format!("{}:{}", definition.code, target.resource_type);
                if definition.targets.len() == 1 && self.rng.chance(50) {
                    name = definition.code.to_string();
                }
                let mut end = target;
                if self.rng.chance(40)
                    && let Some((code, next)) = self.random_link_from(end)
                {
                    name = format!("{name}.{code}:{}", next.resource_type);
                    end = next;
                }
                if let Some((leaf_name, value)) = self.leaf_on(end) {
                    self.push(
                        resource_type,
                        "chain",
                        vec![(format!("{name}.{leaf_name}"), value)],
                    );
                }
            }
        }
    }

    /// Reverse chains: `_has:Observation:patient:code=...`, nested, and with a chain inside.
    fn reverse_chains(&mut self, resource_type: &str) {
        let mut sources = Vec::new();
        for source_type in self.corpus.types() {
            for definition in params_of(source_type) {
                if definition.kind != SearchParamType::Reference
                    || !definition.targets.iter().any(|t| &**t == resource_type)
                {
                    continue;
                }
                let links: Vec<_> = self
                    .local_links(source_type, &definition.code)
                    .into_iter()
                    .filter(|(_, target)| target.resource_type == resource_type)
                    .collect();
                if !links.is_empty() {
                    sources.push((source_type.to_owned(), definition.code.to_string(), links));
                }
            }
        }
        if sources.is_empty() {
            return;
        }
        for _ in 0..(4 * sources.len()).min(24) {
            let (source_type, code, links) = self.rng.pick(&sources);
            let (source, _) = *self.rng.pick(links);
            let mut name = format!("_has:{source_type}:{code}");
            let mut end = source;
            match self.rng.below(4) {
                // Nested: something that points at the source.
                0 => {
                    if let Some((outer_type, outer_code, outer)) = self.random_link_to(source) {
                        name = format!("{name}:_has:{outer_type}:{outer_code}");
                        end = outer;
                    }
                }
                // A chain from the source.
                1 => {
                    if let Some((chain_code, next)) = self.random_link_from(source) {
                        name = format!("{name}:{chain_code}:{}", next.resource_type);
                        if let Some((leaf_name, value)) = self.leaf_on(next) {
                            self.push(
                                resource_type,
                                "_has",
                                vec![(format!("{name}.{leaf_name}"), value)],
                            );
                        }
                        continue;
                    }
                }
                _ => {}
            }
            if let Some((leaf_name, value)) = self.leaf_on(end) {
                self.push(
                    resource_type,
                    "_has",
                    vec![(format!("{name}:{leaf_name}"), value)],
                );
            }
        }
    }

    /// Two parameters together (AND), a range from two dates, and an empty parameter.
    fn conjunctions(&mut self, resource_type: &str) {
        let with_data: Vec<&'static SearchParamDef> = params_of(resource_type)
            .into_iter()
            .filter(|d| !self.holders(resource_type, &d.code).is_empty())
            .collect();
        if with_data.is_empty() {
            return;
        }
        for _ in 0..8 {
            let first = *self.rng.pick(&with_data);
            let second = if self.rng.chance(30) {
                first
            } else {
                *self.rng.pick(&with_data)
            };
            let mut params = Vec::new();
            for definition in [first, second] {
                let holders = self.holders(resource_type, &definition.code);
                if let Some(leaf) = self.leaf(resource_type, definition, &holders) {
                    params.push(leaf);
                }
            }
            if self.rng.chance(20) {
                params.push((first.code.to_string(), String::new()));
            }
            if !params.is_empty() {
                self.push(resource_type, "and", params);
            }
        }
    }

    /// A random leaf on one resource's own values, for the end of a chain.
    fn leaf_on(&mut self, stored: &'c Stored) -> Option<(String, String)> {
        let candidates: Vec<&'static SearchParamDef> = params_of(&stored.resource_type)
            .into_iter()
            .filter(|d| {
                matches!(
                    d.kind,
                    SearchParamType::Token
                        | SearchParamType::String
                        | SearchParamType::Date
                        | SearchParamType::Quantity
                        | SearchParamType::Uri
                ) && !self.corpus.values(stored, &d.code).is_empty()
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let definition = *self.rng.pick(&candidates);
        let holders: Holders<'c> = vec![(stored, self.corpus.values(stored, &definition.code))];
        self.leaf(&stored.resource_type, definition, &holders)
    }

    /// Every (resource, local target in the sample) pair of a reference parameter.
    fn local_links(&self, resource_type: &str, code: &str) -> Vec<(&'c Stored, &'c Stored)> {
        let mut links = Vec::new();
        for stored in self.corpus.of_type(resource_type) {
            for item in self.corpus.values(stored, code).iter() {
                if let Some(Target::Local(t, id)) = target(item)
                    && let Some(found) = self.corpus.get(&t, &id)
                {
                    links.push((stored, found));
                }
            }
        }
        links
    }

    /// A reference parameter of `stored` with a local target, and the target.
    fn random_link_from(&mut self, stored: &'c Stored) -> Option<(String, &'c Stored)> {
        let mut found = Vec::new();
        for definition in params_of(&stored.resource_type) {
            if definition.kind != SearchParamType::Reference {
                continue;
            }
            for item in self.corpus.values(stored, &definition.code).iter() {
                if let Some(Target::Local(t, id)) = target(item)
                    && let Some(next) = self.corpus.get(&t, &id)
                {
                    found.push((definition.code.to_string(), next));
                }
            }
        }
        (!found.is_empty()).then(|| self.rng.pick(&found).clone())
    }

    /// A resource that points at `stored`, with its type and the parameter it points through.
    fn random_link_to(&mut self, stored: &'c Stored) -> Option<(String, String, &'c Stored)> {
        let found = self.incoming.get(&(stored as *const Stored))?.clone();
        Some(self.rng.pick(&found).clone())
    }
}
