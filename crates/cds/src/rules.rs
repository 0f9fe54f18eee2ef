//! Decision-support rules as data (the format is `rules/README.md`): concept sets and FHIRPath
//! conditions, compiled once per rule set, evaluated per draft order against the patient's
//! record. A rule that fails on a request is skipped and named; the others still answer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use fhirpath::{Collection, Environment, Expression, Item};
use serde_json::Value;

use crate::hook::Hook;
use crate::record::Record;
use crate::terminology::ConceptSets;

/// The rule set Meridian ships.
pub const SHIPPED: &str = include_str!("../rules/catalogue.json");

/// A card's urgency (CDS Hooks `indicator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn indicator(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Text in the two languages of the platform.
#[derive(Debug, Clone)]
pub struct Text {
    pub en: String,
    pub zh: String,
}

impl Text {
    pub fn get(&self, language: Language) -> &str {
        match language {
            Language::En => &self.en,
            Language::Zh => &self.zh,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Zh,
    En,
}

impl Language {
    /// From an `Accept-Language` value: English when it prefers English, else Chinese.
    pub fn from_accept(header: Option<&str>) -> Language {
        match header {
            Some(h) if h.trim_start().to_ascii_lowercase().starts_with("en") => Language::En,
            _ => Language::Zh,
        }
    }
}

#[derive(Debug)]
pub struct Rule {
    pub id: String,
    pub category: String,
    pub severity: Severity,
    pub hooks: Vec<Hook>,
    pub order_types: Vec<String>,
    pub when: Expression,
    /// The conjuncts of `when` about the order alone (no record variable), when it is a plain
    /// conjunction: while they are not true the rule cannot fire, whatever the record holds.
    pub order_guard: Option<Expression>,
    pub message: Text,
    pub detail: Option<Text>,
    pub reference: Option<(String, String)>,
}

/// A compiled rule set.
#[derive(Debug)]
pub struct RuleSet {
    pub version: String,
    pub concepts: ConceptSets,
    pub rules: Vec<Rule>,
    /// What the record must hold for these rules.
    pub needs: Needs,
}

/// The record variables the rules read (`conditions`, `observations`...): the service reads
/// nothing else of the patient's record.
#[derive(Debug, Default)]
pub struct Needs {
    pub variables: std::collections::BTreeSet<String>,
}

/// The record variables a rule may read.
const RECORD_VARIABLES: [&str; 9] = [
    "patient",
    "conditions",
    "allergies",
    "medications",
    "observations",
    "results",
    "orders",
    "imaging",
    "age",
];

fn needs_of(rules: &[Rule]) -> Needs {
    let mut needs = Needs::default();
    for rule in rules {
        let source = rule.when.source();
        for variable in RECORD_VARIABLES {
            let mentioned = source
                .match_indices(&format!("%{variable}"))
                .any(|(at, m)| {
                    !source[at + m.len()..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
            if mentioned {
                needs.variables.insert(variable.to_owned());
            }
        }
    }
    needs
}

/// A rule that fired: on which draft order (`Type/id`; `None` for a record rule).
#[derive(Debug)]
pub struct Finding<'r> {
    pub rule: &'r Rule,
    pub order: Option<String>,
}

/// What one evaluation found, and which rules failed to evaluate.
#[derive(Debug, Default)]
pub struct Evaluation<'r> {
    pub findings: Vec<Finding<'r>>,
    pub failed: Vec<(String, String)>,
}

fn text(value: &Value, what: &str) -> Result<Text, String> {
    let get = |lang: &str| {
        value
            .get(lang)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("{what} needs '{lang}' text"))
    };
    Ok(Text {
        en: get("en")?,
        zh: get("zh")?,
    })
}

/// `Type/id` of a resource.
pub fn reference_of(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        resource.get("id").and_then(Value::as_str).unwrap_or("?")
    )
}

impl RuleSet {
    /// The rules Meridian ships (checked by the test suite, so this cannot fail in a build
    /// that passed it).
    pub fn shipped() -> Arc<RuleSet> {
        static SET: OnceLock<Arc<RuleSet>> = OnceLock::new();
        Arc::clone(SET.get_or_init(|| {
            Arc::new(RuleSet::parse(SHIPPED).unwrap_or_else(|e| {
                tracing::error!(error = %e, "the shipped rule set does not load");
                RuleSet {
                    version: "none".into(),
                    concepts: ConceptSets::default(),
                    rules: Vec::new(),
                    needs: Needs::default(),
                }
            }))
        }))
    }

    /// Reads and compiles a rule file; the error names the rule or set at fault.
    pub fn parse(source: &str) -> Result<RuleSet, String> {
        let file: Value =
            serde_json::from_str(source).map_err(|e| format!("the rule file is not JSON: {e}"))?;
        let version = file
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or("unversioned")
            .to_owned();
        let concepts = ConceptSets::from_json(file.get("conceptSets").unwrap_or(&Value::Null))?;
        let list = file
            .get("rules")
            .and_then(Value::as_array)
            .ok_or("the rule file needs a 'rules' array")?;
        let mut rules = Vec::with_capacity(list.len());
        for rule in list {
            let id = rule
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or("a rule has no id")?
                .to_owned();
            if rules.iter().any(|r: &Rule| r.id == id) {
                return Err(format!("rule '{id}' is given twice"));
            }
            let field = |key: &str| rule.get(key).and_then(Value::as_str);
            let severity = match field("severity") {
                Some("info") => Severity::Info,
                Some("warning") => Severity::Warning,
                Some("critical") => Severity::Critical,
                other => {
                    return Err(format!(
                        "rule '{id}': severity {other:?} is not info, warning or critical"
                    ));
                }
            };
            let mut hooks = Vec::new();
            for hook in rule
                .get("hooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                hooks.push(
                    hook.as_str()
                        .and_then(Hook::from_name)
                        .ok_or_else(|| format!("rule '{id}': unknown hook {hook}"))?,
                );
            }
            if hooks.is_empty() {
                return Err(format!("rule '{id}' names no hook"));
            }
            let order_types: Vec<String> = rule
                .get("orderTypes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            if hooks.iter().any(|h| h.orders()) && order_types.is_empty() {
                return Err(format!(
                    "rule '{id}' runs on orders but names no orderTypes"
                ));
            }
            let source = field("when").ok_or_else(|| format!("rule '{id}' has no 'when'"))?;
            let when = fhirpath::compile(source)
                .map_err(|e| format!("rule '{id}': its expression does not compile: {e}"))?;
            for name in member_of_names(source) {
                if !concepts.contains(&name) {
                    return Err(format!(
                        "rule '{id}' asks about the unknown concept set '{name}'"
                    ));
                }
            }
            let reference = rule.get("reference").and_then(|r| {
                Some((
                    r.get("title")?.as_str()?.to_owned(),
                    r.get("url")?.as_str()?.to_owned(),
                ))
            });
            let order_guard = order_guard(source);
            rules.push(Rule {
                category: field("category").unwrap_or("other").to_owned(),
                severity,
                hooks,
                order_types,
                when,
                order_guard,
                message: text(
                    rule.get("message").unwrap_or(&Value::Null),
                    &format!("rule '{id}': message"),
                )?,
                detail: rule
                    .get("detail")
                    .filter(|d| !d.is_null())
                    .map(|d| text(d, &format!("rule '{id}': detail")))
                    .transpose()?,
                reference,
                id,
            });
        }
        let needs = needs_of(&rules);
        Ok(RuleSet {
            version,
            concepts,
            rules,
            needs,
        })
    }

    /// Runs the rules of `hook` on the drafts (for order hooks) or the record (patient-view).
    /// `now` is a FHIR dateTime.
    pub fn evaluate<'r>(
        &'r self,
        hook: Hook,
        drafts: &[Value],
        record: &Record,
        now: &str,
    ) -> Evaluation<'r> {
        self.evaluate_selected(hook, drafts, &|_| true, record, now)
    }

    /// [`RuleSet::evaluate`] on the drafts `selected` picks (by position): `order-select`'s
    /// newly selected orders, the other drafts still seen as `%otherDrafts`.
    pub fn evaluate_selected<'r>(
        &'r self,
        hook: Hook,
        drafts: &[Value],
        selected: &dyn Fn(usize) -> bool,
        record: &Record,
        now: &str,
    ) -> Evaluation<'r> {
        let mut out = Evaluation::default();
        let today = now.get(..10).unwrap_or(now);
        let drafts_json = Value::Array(drafts.to_vec());
        let age = record.age_on(today);
        let others = other_drafts(drafts);
        // `today()` and `now()` are the request's time (a malformed `now` leaves the clock).
        let base = || {
            Environment::new()
                .with_now(now)
                .unwrap_or_default()
                .with_json("patient", &record.patient)
                .with_json("conditions", &record.conditions)
                .with_json("allergies", &record.allergies)
                .with_json("medications", &record.medications)
                .with_json("observations", &record.observations)
                .with_json("results", &record.results)
                .with_json("orders", &record.orders)
                .with_json("imaging", &record.imaging)
                .with_json("drafts", &drafts_json)
                .with_variable(
                    "age",
                    age.map(|a| Collection::one(Item::integer(a)))
                        .unwrap_or_default(),
                )
                .with_terminology(&self.concepts)
        };
        for rule in self.rules.iter().filter(|r| r.hooks.contains(&hook)) {
            if !hook.orders() {
                let env = base().with_variable("order", Collection::new());
                run(rule, &env, None, &mut out);
                continue;
            }
            for (n, draft) in drafts.iter().enumerate() {
                if !selected(n) {
                    continue;
                }
                let kind = draft
                    .get("resourceType")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !rule.order_types.iter().any(|t| t == kind) {
                    continue;
                }
                let env = base()
                    .with_json("order", draft)
                    .with_json("otherDrafts", &others[n]);
                run(rule, &env, Some(reference_of(draft)), &mut out);
            }
        }
        out
    }
}

fn run<'r>(rule: &'r Rule, env: &Environment<'_>, order: Option<String>, out: &mut Evaluation<'r>) {
    let answer = catch_unwind(AssertUnwindSafe(|| {
        rule.when
            .evaluate(&Value::Null, env)
            .map(|result| result.len() == 1 && result.first().and_then(Item::as_bool) == Some(true))
            .map_err(|e| e.to_string())
    }));
    match answer {
        Ok(Ok(true)) => out.findings.push(Finding { rule, order }),
        Ok(Ok(false)) => {}
        Ok(Err(error)) => {
            tracing::warn!(rule = %rule.id, %error, "a decision-support rule failed");
            out.failed.push((rule.id.clone(), error));
        }
        Err(_) => {
            tracing::error!(rule = %rule.id, "a decision-support rule panicked");
            out.failed
                .push((rule.id.clone(), "the rule panicked".into()));
        }
    }
}

/// The names in `memberOf('...')` calls of an expression.
fn member_of_names(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("memberOf(") {
        rest = &rest[at + "memberOf(".len()..];
        let trimmed = rest.trim_start();
        if let Some(quoted) = trimmed.strip_prefix('\'')
            && let Some(end) = quoted.find('\'')
        {
            names.push(quoted[..end].to_owned());
        }
    }
    names
}

/// For each draft, the others (its `%otherDrafts`).
fn other_drafts(drafts: &[Value]) -> Vec<Value> {
    (0..drafts.len())
        .map(|n| {
            Value::Array(
                drafts
                    .iter()
                    .enumerate()
                    .filter(|(m, _)| *m != n)
                    .map(|(_, d)| d.clone())
                    .collect(),
            )
        })
        .collect()
}

/// The parts of `source` joined at its top level (outside parentheses and strings) by the
/// operator `word`, or `None` when it has none at the top level.
fn split_top<'s>(source: &'s str, word: &str) -> Option<Vec<&'s str>> {
    let bytes = source.as_bytes();
    let (mut depth, mut quoted, mut start, mut at) = (0i32, false, 0, 0);
    let mut parts = Vec::new();
    while at < bytes.len() {
        match bytes[at] {
            b'\\' if quoted => at += 1,
            b'\'' => quoted = !quoted,
            b'(' | b'[' | b'{' if !quoted => depth += 1,
            b')' | b']' | b'}' if !quoted => depth -= 1,
            _ if !quoted
                && depth == 0
                && source[at..].starts_with(word)
                && (at == 0 || !bytes[at - 1].is_ascii_alphanumeric())
                && bytes
                    .get(at + word.len())
                    .is_none_or(|b| !b.is_ascii_alphanumeric()) =>
            {
                parts.push(source[start..at].trim());
                start = at + word.len();
                at = start;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    if parts.is_empty() {
        return None;
    }
    parts.push(source[start..].trim());
    Some(parts)
}

/// `source` without one pair of parentheses around the whole of it.
fn unwrap_parentheses(source: &str) -> Option<&str> {
    let inner = source.strip_prefix('(')?.strip_suffix(')')?;
    // Only if the first parenthesis closes at the very end.
    let mut depth = 0i32;
    let mut quoted = false;
    for (at, byte) in source.bytes().enumerate() {
        match byte {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => {
                depth -= 1;
                if depth == 0 && at != source.len() - 1 {
                    return None;
                }
            }
            _ => {}
        }
    }
    Some(inner)
}

/// A condition about the order alone that `source` implies (true whenever `source` is), built
/// from its parts that name no record variable; `None` when nothing can be said.
fn implied_about_order(source: &str) -> Option<String> {
    let source = source.trim();
    if let Some(inner) = unwrap_parentheses(source) {
        return implied_about_order(inner);
    }
    if split_top(source, "implies").is_some() || split_top(source, "xor").is_some() {
        return None;
    }
    if let Some(parts) = split_top(source, "or") {
        let guards = parts
            .into_iter()
            .map(implied_about_order)
            .collect::<Option<Vec<String>>>()?;
        return Some(format!("({})", guards.join(" or ")));
    }
    if let Some(parts) = split_top(source, "and") {
        let guards: Vec<String> = parts.into_iter().filter_map(implied_about_order).collect();
        return (!guards.is_empty()).then(|| format!("({})", guards.join(" and ")));
    }
    let names_record = RECORD_VARIABLES
        .iter()
        .any(|variable| source.contains(&format!("%{variable}")));
    (!names_record).then(|| format!("({source})"))
}

/// A rule's order guard, compiled.
fn order_guard(source: &str) -> Option<Expression> {
    fhirpath::compile(&implied_about_order(source)?).ok()
}

impl RuleSet {
    /// Whether any rule of `hook` that reads `%observations` may fire on the selected drafts:
    /// when none can (their order guards are not true), the patient's observations need not be
    /// read.
    pub fn needs_observations(
        &self,
        hook: Hook,
        drafts: &[Value],
        selected: &dyn Fn(usize) -> bool,
        now: &str,
    ) -> bool {
        let drafts_json = Value::Array(drafts.to_vec());
        let others = other_drafts(drafts);
        self.rules
            .iter()
            .filter(|rule| {
                rule.hooks.contains(&hook) && rule.when.source().contains("%observations")
            })
            .any(|rule| {
                let Some(guard) = &rule.order_guard else {
                    return true;
                };
                if !hook.orders() {
                    return true;
                }
                drafts.iter().enumerate().any(|(n, draft)| {
                    let kind = draft
                        .get("resourceType")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if !selected(n) || !rule.order_types.iter().any(|t| t == kind) {
                        return false;
                    }
                    let env = Environment::new()
                        .with_now(now)
                        .unwrap_or_default()
                        .with_json("order", draft)
                        .with_json("otherDrafts", &others[n])
                        .with_json("drafts", &drafts_json)
                        .with_terminology(&self.concepts);
                    // A guard that fails to evaluate decides nothing: read.
                    match guard.evaluate(&Value::Null, &env) {
                        Ok(result) => result.first().and_then(Item::as_bool) == Some(true),
                        Err(_) => true,
                    }
                })
            })
    }
}
