//! One hook call, start to end: the rules, the record they need (prefetched by the client or
//! read here under the caller's rights), the recognition of prior results, the cards, and the
//! recognition records. Also the feedback on cards.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use caller::Caller;
use repository::{Interaction, Repository, RepositoryError};
use serde_json::{Value, json};

use crate::catalogue::{Catalogue, Exam};
use crate::error::CdsError;
use crate::hook::Hook;
use crate::metrics::{CARD_PREFIX, CHECK_PREFIX, Check, FEEDBACK_PREFIX, month_of, stable_uuid};
use crate::record::{Record, clinical_time};
use crate::request::{HookRequest, is_id};
use crate::rules::{Language, RuleSet, Severity, reference_of};

/// The `Library` that replaces the shipped rules.
pub const RULES_LIBRARY_URL: &str = "https://meridian.example/fhir/Library/cds-rules";

/// Where a hook call runs: the repository, the caller whose rights the record is read under,
/// the FHIR base links point at, the card language and the time.
pub struct Context<'a> {
    pub repository: &'a Repository,
    /// Whose rights the record is read under (`fhirAuthorization`'s user, or the client).
    pub caller: &'a Caller,
    /// Who asked: the client that signed the request. Checks count for its institution, and
    /// feedback on its cards is taken only from it.
    pub client: &'a Caller,
    pub base: &'a str,
    pub language: Language,
    pub now: i64,
}

/// What a hook call answers, and what the edge needs for the audit trail.
#[derive(Debug)]
pub struct Answer {
    /// `{"cards": [...]}`.
    pub body: Value,
    /// Rules that failed on this request (logged; their absence does not hide other cards).
    pub failed_rules: Vec<String>,
}

struct Reads<'a> {
    ctx: &'a Context<'a>,
    /// The caller's reads, its visibility decided once for the call.
    reader: repository::Reader<'a>,
    organizations: HashMap<String, Option<Value>>,
}

/// Criteria as the reader takes them.
fn owned(criteria: &[(&str, String)]) -> Vec<(String, String)> {
    criteria
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

impl<'a> Reads<'a> {
    fn new(ctx: &'a Context<'a>) -> Reads<'a> {
        Reads {
            ctx,
            reader: ctx.repository.reader(ctx.caller),
            organizations: HashMap::new(),
        }
    }

    /// Whether the caller may search the type: a type it may not gives nothing (the service
    /// answers with what it may see).
    fn may_search(&self, resource_type: &str) -> Result<bool, CdsError> {
        match self
            .ctx
            .repository
            .permit(self.ctx.caller, Interaction::Search, resource_type)
        {
            Ok(()) => Ok(true),
            Err(RepositoryError::Forbidden(why)) => {
                tracing::debug!(resource_type, %why, "decision support may not read this");
                Ok(false)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Current resources matching `criteria`, under the caller's rights, with their custodians.
    fn find(
        &self,
        resource_type: &str,
        criteria: &[(&str, String)],
        count: usize,
    ) -> Result<Vec<(Value, Option<String>)>, CdsError> {
        if !self.may_search(resource_type)? {
            return Ok(Vec::new());
        }
        self.reader
            .find(resource_type, &owned(criteria), count)?
            .into_iter()
            .filter(|record| !record.is_deleted())
            .map(|record| Ok((repository::parse_stored(&record)?, record.custodian)))
            .collect()
    }

    /// How many resources match that the caller may not see (0 when it may not search them).
    fn hidden(&self, resource_type: &str, criteria: &[(&str, String)]) -> Result<u64, CdsError> {
        if !self.may_search(resource_type)? {
            return Ok(0);
        }
        Ok(self.reader.hidden_count(resource_type, &owned(criteria))?)
    }

    fn organization(&mut self, reference: &str) -> Result<Option<Value>, CdsError> {
        if let Some(found) = self.organizations.get(reference) {
            return Ok(found.clone());
        }
        let found = match reference
            .strip_prefix("Organization/")
            .filter(|id| is_id(id))
        {
            Some(id) => self
                .find("Organization", &[("_id", id.to_owned())], 1)?
                .into_iter()
                .next()
                .map(|(o, _)| o),
            None => None,
        };
        self.organizations
            .insert(reference.to_owned(), found.clone());
        Ok(found)
    }
}

/// The resources of a prefetched value (a resource, or a Bundle's entries).
fn prefetched(value: &Value) -> Vec<Value> {
    if value.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
        value
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("resource").cloned())
            .collect()
    } else {
        vec![value.clone()]
    }
}

/// The rules in force: the active `Library` at [`RULES_LIBRARY_URL`] when there is one the
/// caller can read and it loads, else the shipped set. Compiled once per Library version.
fn rules(reads: &Reads<'_>) -> Result<Arc<RuleSet>, CdsError> {
    static CACHE: Mutex<Option<(String, Arc<RuleSet>)>> = Mutex::new(None);
    let found = reads.find(
        "Library",
        &[
            ("url", RULES_LIBRARY_URL.to_owned()),
            ("status", "active".to_owned()),
        ],
        1,
    )?;
    let Some((library, _)) = found.into_iter().next() else {
        return Ok(RuleSet::shipped());
    };
    let version = format!(
        "{}/{}",
        library.get("id").and_then(Value::as_str).unwrap_or(""),
        library
            .pointer("/meta/versionId")
            .and_then(Value::as_str)
            .unwrap_or("")
    );
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((cached, set)) = cache.as_ref()
        && *cached == version
    {
        return Ok(Arc::clone(set));
    }
    let loaded = library
        .pointer("/content/0/data")
        .and_then(Value::as_str)
        .ok_or_else(|| "the Library has no content[0].data".to_owned())
        .and_then(|data| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| format!("content[0].data is not base64: {e}"))
        })
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "the rules are not UTF-8".into()))
        .and_then(|text| RuleSet::parse(&text));
    match loaded {
        Ok(set) => {
            let set = Arc::new(set);
            *cache = Some((version, Arc::clone(&set)));
            Ok(set)
        }
        Err(error) => {
            tracing::error!(%error, library = %version, "the rules Library does not load; the shipped rules apply");
            Ok(RuleSet::shipped())
        }
    }
}

/// Search parameters and their values.
type Criteria = Vec<(&'static str, String)>;

/// One search of the patient's record, for the prefetch key it stands in for.
struct RecordRead {
    key: &'static str,
    resource_type: &'static str,
    criteria: Criteria,
    count: usize,
}

impl Reads<'_> {
    fn run(&self, read: &RecordRead) -> Result<Vec<Value>, CdsError> {
        Ok(self
            .find(read.resource_type, &read.criteria, read.count)?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }
}

/// The patient's record: what the client prefetched, and the searches for the rest, only of
/// what the rules read (`RuleSet::needs`).
fn record_reads(
    request: &HookRequest,
    patient: Option<&str>,
    rules: &RuleSet,
    now: i64,
) -> (Vec<Value>, Vec<RecordRead>) {
    let mut resources = Vec::new();
    let mut reads = Vec::new();
    let given = |key: &str| request.prefetch.get(key);
    let Some(patient) = patient else {
        for key in crate::hook::PREFETCH.iter().map(|(k, _)| *k) {
            if let Some(value) = given(key) {
                resources.extend(prefetched(value));
            }
        }
        return (resources, reads);
    };
    let needs = &rules.needs;
    let of_patient = |more: &[(&'static str, String)]| {
        let mut criteria = vec![("patient", patient.to_owned())];
        criteria.extend(more.iter().cloned());
        criteria
    };
    // Observations of the last year, newest first: what "the latest eGFR" means at the point
    // of care.
    let year_ago = format!(
        "ge{}",
        fhir_model::clock::format_instant(now - 365 * 86_400_000_000)
    );
    let sort = |by: &str| ("_sort", by.to_owned());
    // (prefetch key, rule variable, type, criteria, count)
    type Search = (&'static str, &'static str, &'static str, Criteria, usize);
    let searches: [Search; 7] = [
        (
            "patient",
            "patient",
            "Patient",
            vec![("_id", patient.to_owned())],
            1,
        ),
        (
            "conditions",
            "conditions",
            "Condition",
            of_patient(&[]),
            500,
        ),
        (
            "allergies",
            "allergies",
            "AllergyIntolerance",
            of_patient(&[]),
            200,
        ),
        (
            "medications",
            "medications",
            "MedicationRequest",
            of_patient(&[("status", "active,on-hold".to_owned())]),
            300,
        ),
        (
            "observations",
            "observations",
            "Observation",
            of_patient(&[("date", year_ago), sort("-date")]),
            200,
        ),
        (
            "reports",
            "results",
            "DiagnosticReport",
            of_patient(&[sort("-date")]),
            100,
        ),
        (
            "orders",
            "orders",
            "ServiceRequest",
            of_patient(&[sort("-authored")]),
            100,
        ),
    ];
    for (key, variable, resource_type, criteria, count) in searches {
        match given(key) {
            Some(value) => resources.extend(prefetched(value)),
            // The patient is read for `%age` and `%patient` alike.
            None if needs.variables.contains(variable)
                || (variable == "patient" && needs.variables.contains("age")) =>
            {
                reads.push(RecordRead {
                    key,
                    resource_type,
                    criteria,
                    count,
                });
            }
            None => {}
        }
    }
    (resources, reads)
}

fn text(language: Language, zh: &str, en: &str) -> String {
    match language {
        Language::Zh => zh.to_owned(),
        Language::En => en.to_owned(),
    }
}

/// At most 140 characters, as CDS Hooks asks of a summary.
fn summary(text: String) -> String {
    if text.chars().count() < 140 {
        return text;
    }
    let mut cut: String = text.chars().take(138).collect();
    cut.push('…');
    cut
}

const RECOGNITION_TOPIC: &str = "https://meridian.example/CodeSystem/cds-topic";
const OVERRIDE_SYSTEM: &str = "https://meridian.example/CodeSystem/cds-override-reason";

fn override_reasons(language: Language) -> Value {
    let reasons = [
        (
            "condition-changed",
            "病情变化，需要重新检查",
            "The patient's condition has changed",
        ),
        (
            "result-inadequate",
            "既往结果不满足本次诊疗需要",
            "The prior result does not answer this question",
        ),
        (
            "different-protocol",
            "需要不同的检查方案或部位",
            "A different protocol or body site is needed",
        ),
        (
            "patient-request",
            "患者要求重新检查",
            "The patient asks for a new exam",
        ),
    ];
    Value::Array(
        reasons
            .iter()
            .map(|(code, zh, en)| {
                json!({"system": OVERRIDE_SYSTEM, "code": code, "display": text(language, zh, en)})
            })
            .collect(),
    )
}

/// A prior result that may stand in for a drafted exam.
struct Prior {
    resource: Value,
    /// `Type/ID`.
    reference: String,
    at: i64,
    organization: Option<Value>,
    organization_reference: String,
}

fn performer_organization(resource: &Value) -> Option<String> {
    let organization = |list: Option<&Value>, inner: Option<&str>| {
        list.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| match inner {
                Some(key) => p.get(key)?.get("reference")?.as_str(),
                None => p.get("reference")?.as_str(),
            })
            .find(|r| r.starts_with("Organization/"))
            .map(str::to_owned)
    };
    // A report's or observation's performer; a study's series' performers.
    organization(resource.get("performer"), None).or_else(|| {
        resource
            .get("series")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|series| organization(series.get("performer"), Some("actor")))
    })
}

/// The concepts a result is known by: a report's or observation's code, a study's procedure
/// codes.
fn result_concepts(resource: &Value) -> Vec<&Value> {
    match resource.get("resourceType").and_then(Value::as_str) {
        Some("ImagingStudy") => resource
            .get("procedureCode")
            .and_then(Value::as_array)
            .map(|list| list.iter().collect())
            .unwrap_or_default(),
        _ => resource.get("code").into_iter().collect(),
    }
}

/// For each drafted exam of the catalogue: the newest equivalent result within its window,
/// from a qualified institution, among what the caller may see.
fn priors(
    reads: &mut Reads<'_>,
    catalogue: &Catalogue,
    patient: &str,
    exams: &[&Exam],
) -> Result<HashMap<String, Prior>, CdsError> {
    let now = reads.ctx.now;
    let widest = exams.iter().map(|e| e.window).max().unwrap_or(0);
    let since = fhir_model::clock::format_instant(now - widest);
    let codes: Vec<String> = exams
        .iter()
        .flat_map(|e| catalogue.equivalent_codes(e))
        .map(|(s, c)| format!("{s}|{c}"))
        .collect();
    let mut candidates = Vec::new();
    candidates.extend(reads.find(
        "DiagnosticReport",
        &[
            ("patient", patient.to_owned()),
            ("date", format!("ge{since}")),
            ("code", codes.join(",")),
        ],
        200,
    )?);
    candidates.extend(reads.find(
        "ImagingStudy",
        &[
            ("patient", patient.to_owned()),
            ("started", format!("ge{since}")),
        ],
        200,
    )?);

    let mut best: HashMap<String, Prior> = HashMap::new();
    for (resource, custodian) in candidates {
        let Some(at) = clinical_time(&resource).and_then(fhir_model::clock::parse_instant) else {
            continue;
        };
        let Some(exam) = result_concepts(&resource)
            .into_iter()
            .find_map(|concept| catalogue.exam_for(concept))
        else {
            continue;
        };
        if !exams.iter().any(|e| e.id == exam.id)
            || at < now - exam.window
            || at > now + 86_400_000_000
        {
            continue;
        }
        if best.get(&exam.id).is_some_and(|prior| prior.at >= at) {
            continue;
        }
        // Where it was done: needed only when the entry asks for a level or qualification.
        let organization_reference = performer_organization(&resource).or(custodian);
        let organization = match &organization_reference {
            Some(reference) => reads.organization(reference)?,
            None => None,
        };
        let qualified = match &organization {
            Some(organization) => Catalogue::qualifies(exam, organization),
            None => !exam.has_requirements(),
        };
        if !qualified {
            continue;
        }
        let organization_reference = organization_reference.unwrap_or_default();
        best.insert(
            exam.id.clone(),
            Prior {
                reference: reference_of(&resource),
                resource,
                at,
                organization,
                organization_reference,
            },
        );
    }
    Ok(best)
}

/// The key values of a result: a report's conclusion (or its results' values), a study's series
/// and instances.
fn key_values(
    reads: &Reads<'_>,
    prior: &Prior,
    language: Language,
) -> Result<Vec<String>, CdsError> {
    let r = &prior.resource;
    let mut lines = Vec::new();
    if let Some(conclusion) = r.get("conclusion").and_then(Value::as_str) {
        lines.push(format!(
            "{}: {conclusion}",
            text(language, "结论", "Conclusion")
        ));
    }
    for code in r
        .get("conclusionCode")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(display) = code
            .get("text")
            .or_else(|| code.pointer("/coding/0/display"))
            .and_then(Value::as_str)
        {
            lines.push(format!("- {display}"));
        }
    }
    if lines.is_empty() {
        let ids: Vec<String> = r
            .get("result")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.get("reference")?.as_str()?.strip_prefix("Observation/"))
            .filter(|id| is_id(id))
            .take(8)
            .map(str::to_owned)
            .collect();
        let observations = if ids.is_empty() {
            Vec::new()
        } else {
            reads.find("Observation", &[("_id", ids.join(","))], 8)?
        };
        for (observation, _) in &observations {
            let name = observation
                .pointer("/code/text")
                .or_else(|| observation.pointer("/code/coding/0/display"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            let value = if let Some(q) = observation.get("valueQuantity") {
                format!(
                    "{} {}",
                    q.get("value").map(Value::to_string).unwrap_or_default(),
                    q.get("unit")
                        .or_else(|| q.get("code"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                )
            } else if let Some(s) = observation.get("valueString").and_then(Value::as_str) {
                s.to_owned()
            } else if let Some(c) = observation.get("valueCodeableConcept") {
                c.get("text")
                    .or_else(|| c.pointer("/coding/0/display"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            } else {
                continue;
            };
            lines.push(format!("- {name}: {}", value.trim()));
        }
    }
    // The images: the study itself, or those of a report the caller may see.
    let study_ids: Vec<String> = studies(prior)
        .iter()
        .filter_map(|s| s.strip_prefix("ImagingStudy/"))
        .filter(|id| is_id(id))
        .take(4)
        .map(str::to_owned)
        .collect();
    let found = if r.get("resourceType").and_then(Value::as_str) == Some("ImagingStudy") {
        vec![(r.clone(), None)]
    } else if study_ids.is_empty() {
        Vec::new()
    } else {
        reads.find("ImagingStudy", &[("_id", study_ids.join(","))], 4)?
    };
    for (study, _) in found {
        let series = study
            .get("numberOfSeries")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let instances = study
            .get("numberOfInstances")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        lines.push(match language {
            Language::Zh => format!("影像：{series} 个序列，{instances} 幅图像"),
            Language::En => format!("Images: {series} series, {instances} instances"),
        });
    }
    Ok(lines)
}

/// The studies a report points at (`DiagnosticReport.imagingStudy`), or the study itself.
fn studies(prior: &Prior) -> Vec<String> {
    if prior.reference.starts_with("ImagingStudy/") {
        return vec![prior.reference.clone()];
    }
    prior
        .resource
        .get("imagingStudy")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("reference").and_then(Value::as_str))
        .filter(|r| r.starts_with("ImagingStudy/"))
        .map(str::to_owned)
        .collect()
}

/// The id of a recognition card's "use the existing result" suggestion.
fn use_existing(card_uuid: &str) -> String {
    stable_uuid(&[card_uuid, "use-existing"])
}

fn recognition_card(
    reads: &Reads<'_>,
    exam: &Exam,
    draft: &str,
    prior: &Prior,
    card_uuid: &str,
) -> Result<Value, CdsError> {
    let language = reads.ctx.language;
    let base = reads.ctx.base;
    let days = (reads.ctx.now - prior.at).max(0) / 86_400_000_000;
    let date = fhir_model::clock::format_instant(prior.at)[..10].to_owned();
    let place = prior
        .organization
        .as_ref()
        .and_then(|o| o.get("name").and_then(Value::as_str))
        .map(str::to_owned)
        .or_else(|| {
            (!prior.organization_reference.is_empty()).then(|| prior.organization_reference.clone())
        })
        .unwrap_or_else(|| text(language, "区域内其他机构", "another institution"));
    let headline = match language {
        Language::Zh => format!(
            "已有可互认的检查结果：{}（{place}，{date}，{days}天前）",
            exam.title
        ),
        Language::En => format!(
            "A recognised result exists: {} at {place} on {date} ({days} days ago)",
            exam.title
        ),
    };
    let mut detail = vec![match language {
        Language::Zh => format!(
            "{} 于 {date} 在 **{place}** 完成（有效期 {}），可在区域内互认，无需重复检查。结果：`{}`",
            exam.title, exam.window_text, prior.reference
        ),
        Language::En => format!(
            "{} was done at **{place}** on {date} (recognised for {}); it can stand in for a repeat. Result: `{}`",
            exam.title, exam.window_text, prior.reference
        ),
    }];
    detail.push(String::new());
    detail.extend(key_values(reads, prior, language)?);
    let mut links = vec![json!({
        "label": text(language, "查看既往报告", "View the prior report"),
        "url": format!("{base}/{}", prior.reference),
        "type": "absolute",
    })];
    for study in studies(prior) {
        links.push(json!({
            "label": text(language, "查看影像", "View the images"),
            "url": format!("{base}/{study}"),
            "type": "absolute",
        }));
    }
    Ok(json!({
        "uuid": card_uuid,
        "summary": summary(headline),
        "detail": detail.join("\n"),
        "indicator": "info",
        "source": {
            "label": text(language, "区域检查检验结果互认", "Meridian mutual recognition of results"),
            "topic": {"system": RECOGNITION_TOPIC, "code": "result-recognition", "display": text(language, "结果互认", "Result recognition")},
        },
        "suggestions": [{
            "label": text(language, "采用已有结果（撤销本次检查申请）", "Use the existing result (remove this order)"),
            "uuid": use_existing(card_uuid),
            "isRecommended": true,
            "actions": [{
                "type": "delete",
                "description": match language {
                    Language::Zh => format!("撤销草稿申请 {draft}，采用 {}", prior.reference),
                    Language::En => format!("Remove the draft order {draft}; use {} instead", prior.reference),
                },
                "resourceId": draft,
            }],
        }],
        "selectionBehavior": "at-most-one",
        "overrideReasons": override_reasons(language),
        "links": links,
    }))
}

/// Whether an equivalent result within the exam's window exists that the caller may not see
/// (another institution's, without the patient's consent): counted, never shown.
fn not_shared(
    reads: &Reads<'_>,
    catalogue: &Catalogue,
    exam: &Exam,
    patient: &str,
) -> Result<bool, CdsError> {
    let since = fhir_model::clock::format_instant(reads.ctx.now - exam.window);
    let codes: Vec<String> = catalogue
        .equivalent_codes(exam)
        .iter()
        .map(|(s, c)| format!("{s}|{c}"))
        .collect();
    let criteria = [
        ("patient", patient.to_owned()),
        ("code", codes.join(",")),
        ("date", format!("ge{since}")),
    ];
    Ok(reads.hidden("DiagnosticReport", &criteria)? > 0)
}

fn not_shared_card(language: Language, exam: &Exam, draft: &str, card_uuid: &str) -> Value {
    json!({
        "uuid": card_uuid,
        "summary": summary(match language {
            Language::Zh => format!("区域内已有近期{}结果，但患者未授权本机构查阅", exam.title),
            Language::En => format!("A recent {} exists elsewhere in the region but is not shared with you", exam.title),
        }),
        "detail": match language {
            Language::Zh => format!("另一机构在有效期内完成了同类检查（{draft}）。患者授权后即可调阅并互认，避免重复检查。"),
            Language::En => format!("Another institution did an equivalent exam within its window ({draft}). With the patient's consent it can be viewed and recognised instead of repeated."),
        },
        "indicator": "info",
        "source": {
            "label": text(language, "区域检查检验结果互认", "Meridian mutual recognition of results"),
            "topic": {"system": RECOGNITION_TOPIC, "code": "result-not-shared", "display": text(language, "结果未授权共享", "Result not shared")},
        },
    })
}

fn rule_card(
    rule: &crate::rules::Rule,
    language: Language,
    card_uuid: &str,
    order: Option<&str>,
) -> Value {
    let mut detail = rule
        .detail
        .as_ref()
        .map(|d| d.get(language).to_owned())
        .unwrap_or_default();
    if let Some(order) = order {
        if !detail.is_empty() {
            detail.push_str("\n\n");
        }
        detail.push_str(&match language {
            Language::Zh => format!("涉及的申请：`{order}`"),
            Language::En => format!("Order: `{order}`"),
        });
    }
    let mut source = json!({
        "label": text(language, "区域临床决策支持", "Meridian decision support"),
        "topic": {"system": RECOGNITION_TOPIC, "code": rule.category, "display": rule.id},
    });
    let mut links = Vec::new();
    if let Some((title, url)) = &rule.reference
        && (url.starts_with("http://") || url.starts_with("https://"))
    {
        source["url"] = json!(url);
        links.push(json!({"label": title, "url": url, "type": "absolute"}));
    }
    let mut card = json!({
        "uuid": card_uuid,
        "summary": summary(rule.message.get(language).to_owned()),
        "indicator": rule.severity.indicator(),
        "source": source,
    });
    if !detail.is_empty() {
        card["detail"] = json!(detail);
    }
    if !links.is_empty() {
        card["links"] = Value::Array(links);
    }
    if rule.severity >= Severity::Warning {
        card["overrideReasons"] = json!([
            {"system": OVERRIDE_SYSTEM, "code": "benefit-outweighs-risk", "display": text(language, "获益大于风险", "The benefit outweighs the risk")},
            {"system": OVERRIDE_SYSTEM, "code": "not-applicable", "display": text(language, "不适用于该患者", "Does not apply to this patient")},
            {"system": OVERRIDE_SYSTEM, "code": "will-monitor", "display": text(language, "已知晓，将密切监测", "Aware; will monitor")},
        ]);
    }
    card
}

/// Who a card was given to: feedback on it is taken only from them.
fn issued_to(caller: &Caller) -> String {
    caller
        .client_id
        .clone()
        .unwrap_or_else(|| format!("{:?}", caller.actor))
}

/// The institution a check counts for.
fn institution(caller: &Caller) -> String {
    caller
        .organization
        .clone()
        .or_else(|| caller.client_id.as_ref().map(|c| format!("client:{c}")))
        .unwrap_or_else(|| "platform".into())
}

/// Answers one hook call.
pub fn answer(ctx: &Context<'_>, request: &HookRequest) -> Result<Answer, CdsError> {
    let patient = request.patient();
    let mut reads = Reads::new(ctx);
    let rules = rules(&reads)?;
    let now_text = fhir_model::clock::format_instant(ctx.now);
    let selected = |n: usize| request.is_selected(&request.drafts[n]);
    let (mut resources, mut record_reads) =
        record_reads(request, patient.as_deref(), &rules, ctx.now);
    // A long-treated patient's observations are the longest read: it runs beside the others
    // and the recognition.
    let observations = record_reads
        .iter()
        .position(|r| r.key == "observations")
        .map(|at| record_reads.remove(at))
        // Not read when no rule that asks about them can fire on these drafts.
        .filter(|_| rules.needs_observations(request.hook, &request.drafts, &selected, &now_text));
    std::thread::scope(|scope| {
        let observations = observations.map(|read| scope.spawn(move || Reads::new(ctx).run(&read)));
        for read in &record_reads {
            resources.extend(reads.run(read)?);
        }
        let mut answer = answer_with(ctx, request, &mut reads, patient.as_deref())?;
        if let Some(observations) = observations {
            let read = observations.join().map_err(|_| {
                CdsError::Repository(RepositoryError::Internal(
                    "reading the observations panicked".into(),
                ))
            })?;
            resources.extend(read?);
        }
        let record = Record::from_resources(resources);
        let evaluation =
            rules.evaluate_selected(request.hook, &request.drafts, &selected, &record, &now_text);
        add_rule_cards(ctx, request, &evaluation, &mut answer);
        answer.finish(ctx)
    })
}

/// What one call found, before it is written and answered.
struct Found {
    cards: Vec<Value>,
    writes: Vec<(String, Value)>,
    checks: Vec<(String, Check)>,
    failed_rules: Vec<String>,
}

/// The recognition part of a call: for each drafted exam of the catalogue, the prior result
/// offered, or the notice that one exists but is not shared.
fn answer_with(
    ctx: &Context<'_>,
    request: &HookRequest,
    reads: &mut Reads<'_>,
    patient: Option<&str>,
) -> Result<Found, CdsError> {
    let mut cards = Vec::new();
    let mut writes: Vec<(String, Value)> = Vec::new();
    let mut checks: Vec<(String, Check)> = Vec::new();
    let to = issued_to(ctx.client);

    if request.hook.orders()
        && let Some(patient) = patient
    {
        let definitions = reads
            .find(
                "ActivityDefinition",
                &[("status", "active".to_owned())],
                1000,
            )?
            .into_iter()
            .map(|(r, _)| r)
            .collect::<Vec<_>>();
        let maps = if definitions.is_empty() {
            Vec::new()
        } else {
            reads
                .find("ConceptMap", &[("status", "active".to_owned())], 500)?
                .into_iter()
                .map(|(r, _)| r)
                .collect()
        };
        let catalogue = Catalogue::load(&definitions, &maps);
        let drafted: Vec<(&Value, &Exam)> = request
            .drafts
            .iter()
            .filter(|d| d.get("resourceType").and_then(Value::as_str) == Some("ServiceRequest"))
            .filter(|d| request.is_selected(d))
            .filter_map(|d| Some((d, catalogue.exam_for(d.get("code")?)?)))
            .collect();
        if !drafted.is_empty() {
            let exams: Vec<&Exam> = drafted.iter().map(|(_, e)| *e).collect();
            let found = priors(reads, &catalogue, patient, &exams)?;
            let month = month_of(ctx.now);
            for (draft, exam) in drafted {
                let draft_ref = reference_of(draft);
                let key = format!(
                    "{CHECK_PREFIX}{month}/{}",
                    stable_uuid(&[&institution(ctx.client), patient, &draft_ref])
                );
                let mut check = Check {
                    month: month.clone(),
                    at: ctx.now,
                    organization: institution(ctx.client),
                    department: request
                        .department
                        .clone()
                        .unwrap_or_else(|| "unspecified".into()),
                    exam: exam.id.clone(),
                    retrieved: false,
                    result: None,
                    price: exam.price.clone(),
                    card: None,
                    outcome: None,
                    repeat_avoided: false,
                    not_shareable: false,
                    reason: None,
                };
                if !found.contains_key(&exam.id) && not_shared(reads, &catalogue, exam, patient)? {
                    check.not_shareable = true;
                    let card_uuid = stable_uuid(&[&key, "not-shared"]);
                    cards.push(not_shared_card(ctx.language, exam, &draft_ref, &card_uuid));
                    writes.push((
                        format!("{CARD_PREFIX}{card_uuid}"),
                        json!({"notice": exam.id, "order": draft_ref, "to": to}),
                    ));
                }
                if let Some(prior) = found.get(&exam.id) {
                    let card_uuid = stable_uuid(&[&key, &prior.reference]);
                    cards.push(recognition_card(
                        reads, exam, &draft_ref, prior, &card_uuid,
                    )?);
                    check.retrieved = true;
                    check.result = Some(prior.reference.clone());
                    check.card = Some(card_uuid.clone());
                    writes.push((
                        format!("{CARD_PREFIX}{card_uuid}"),
                        json!({"check": key, "to": to}),
                    ));
                }
                checks.push((key, check));
            }
        }
    }

    Ok(Found {
        cards,
        writes,
        checks,
        failed_rules: Vec::new(),
    })
}

/// A card for each rule that fired (once per rule and order).
fn add_rule_cards(
    ctx: &Context<'_>,
    request: &HookRequest,
    evaluation: &crate::rules::Evaluation<'_>,
    found: &mut Found,
) {
    let to = issued_to(ctx.client);
    let mut seen = std::collections::HashSet::new();
    for finding in &evaluation.findings {
        if !seen.insert((finding.rule.id.as_str(), finding.order.clone())) {
            continue;
        }
        let card_uuid = stable_uuid(&[
            &request.hook_instance,
            &finding.rule.id,
            finding.order.as_deref().unwrap_or(""),
        ]);
        found.cards.push(rule_card(
            finding.rule,
            ctx.language,
            &card_uuid,
            finding.order.as_deref(),
        ));
        found.writes.push((
            format!("{CARD_PREFIX}{card_uuid}"),
            json!({"rule": finding.rule.id, "order": finding.order, "to": to}),
        ));
    }
    found.failed_rules = evaluation.failed.iter().map(|(id, _)| id.clone()).collect();
}

impl Found {
    /// Writes the recognition records and card index in one transaction, and answers.
    fn finish(mut self, ctx: &Context<'_>) -> Result<Answer, CdsError> {
        let (mut cards, writes, checks) = (
            std::mem::take(&mut self.cards),
            std::mem::take(&mut self.writes),
            std::mem::take(&mut self.checks),
        );
        // The most urgent first.
        cards.sort_by_key(|c| match c["indicator"].as_str() {
            Some("critical") => 0,
            Some("warning") => 1,
            _ => 2,
        });
        if !writes.is_empty() || !checks.is_empty() {
            let store = ctx.repository.store();
            let mut tx = store.begin()?;
            for (key, check) in &checks {
                let merged = match tx.take_checkpoint(key)? {
                    Some(old) => match serde_json::from_str::<Value>(&old)
                        .ok()
                        .as_ref()
                        .and_then(Check::from_json)
                    {
                        Some(mut old) => {
                            if check.retrieved {
                                old.retrieved = true;
                                old.result.clone_from(&check.result);
                                old.card.clone_from(&check.card);
                            }
                            old
                        }
                        None => check.clone(),
                    },
                    None => check.clone(),
                };
                tx.set_checkpoint(key, Some(&merged.to_json().to_string()))?;
            }
            for (key, value) in &writes {
                tx.set_checkpoint(key, Some(&value.to_string()))?;
            }
            tx.commit()?;
        }
        Ok(Answer {
            body: json!({"cards": cards}),
            failed_rules: self.failed_rules,
        })
    }
}

/// One item of a feedback request, checked.
struct Feedback {
    card: String,
    accepted: bool,
    suggestions: Vec<String>,
    reason: Option<Value>,
    at: String,
}

fn read_feedback(body: &[u8]) -> Result<Vec<Feedback>, CdsError> {
    let bad = |m: String| CdsError::BadRequest(m);
    let value =
        fhir_model::json::parse(body).map_err(|e| bad(format!("the feedback is not JSON: {e}")))?;
    let items = value
        .get("feedback")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the body must be an object with a 'feedback' array".into()))?;
    if items.is_empty() || items.len() > 100 {
        return Err(bad("'feedback' must hold 1 to 100 items".into()));
    }
    let mut out = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let text = |k: &str| item.get(k).and_then(Value::as_str);
        let card = text("card")
            .filter(|c| !c.is_empty() && c.len() <= 128)
            .ok_or_else(|| bad(format!("feedback[{n}].card is required")))?;
        let accepted = match text("outcome") {
            Some("accepted") => true,
            Some("overridden") => false,
            _ => {
                return Err(bad(format!(
                    "feedback[{n}].outcome must be 'accepted' or 'overridden'"
                )));
            }
        };
        let at = text("outcomeTimestamp")
            .filter(|t| t.contains('T') && fhir_model::clock::parse_instant(t).is_some())
            .ok_or_else(|| {
                bad(format!(
                    "feedback[{n}].outcomeTimestamp must be an RFC 3339 date-time"
                ))
            })?;
        let suggestions = match item.get("acceptedSuggestions") {
            None | Some(Value::Null) if accepted => {
                return Err(bad(format!(
                    "feedback[{n}].acceptedSuggestions is required when accepted"
                )));
            }
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|s| s.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    bad(format!(
                        "feedback[{n}].acceptedSuggestions items need an 'id'"
                    ))
                })?,
            Some(_) => {
                return Err(bad(format!(
                    "feedback[{n}].acceptedSuggestions must be an array"
                )));
            }
        };
        let reason = match item.get("overrideReason") {
            None | Some(Value::Null) => None,
            Some(Value::Object(reason)) => {
                if let Some(coding) = reason.get("reason")
                    && !coding.get("code").is_some_and(Value::is_string)
                {
                    return Err(bad(format!(
                        "feedback[{n}].overrideReason.reason must be a Coding with a code"
                    )));
                }
                if let Some(comment) = reason.get("userComment")
                    && comment.as_str().is_none_or(|c| c.chars().count() > 2000)
                {
                    return Err(bad(format!(
                        "feedback[{n}].overrideReason.userComment must be text of at most 2000 characters"
                    )));
                }
                Some(Value::Object(reason.clone()))
            }
            Some(_) => {
                return Err(bad(format!(
                    "feedback[{n}].overrideReason must be an object"
                )));
            }
        };
        out.push(Feedback {
            card: card.to_owned(),
            accepted,
            suggestions,
            reason,
            at: at.to_owned(),
        });
    }
    Ok(out)
}

/// Records feedback on cards given to `caller`, all or nothing. Answers how many were
/// recorded. A card the service did not give this caller is refused (400): feedback cannot
/// reach another institution's records.
pub fn feedback(repository: &Repository, caller: &Caller, body: &[u8]) -> Result<usize, CdsError> {
    let items = read_feedback(body)?;
    let to = issued_to(caller);
    let store = repository.store();
    let mut tx = store.begin()?;
    for item in &items {
        let card_key = format!("{CARD_PREFIX}{}", item.card);
        let index = tx
            .take_checkpoint(&card_key)?
            .and_then(|v| serde_json::from_str::<Value>(&v).ok())
            .filter(|v| v.get("to").and_then(Value::as_str) == Some(to.as_str()))
            .ok_or_else(|| {
                CdsError::BadRequest(format!("no card {} was given to this client", item.card))
            })?;
        tx.set_checkpoint(&card_key, Some(&index.to_string()))?;
        let outcome = if item.accepted {
            "accepted"
        } else {
            "overridden"
        };
        if let Some(check_key) = index.get("check").and_then(Value::as_str) {
            let suggestion = use_existing(&item.card);
            if let Some(unknown) = item.suggestions.iter().find(|s| **s != suggestion) {
                return Err(CdsError::BadRequest(format!(
                    "card {} has no suggestion {unknown}",
                    item.card
                )));
            }
            let mut check = tx
                .take_checkpoint(check_key)?
                .and_then(|v| serde_json::from_str::<Value>(&v).ok())
                .as_ref()
                .and_then(Check::from_json)
                .ok_or_else(|| {
                    CdsError::Repository(RepositoryError::Internal(format!(
                        "the record of card {} is missing",
                        item.card
                    )))
                })?;
            check.outcome = Some(outcome.into());
            check.repeat_avoided = item.accepted && item.suggestions.contains(&suggestion);
            check.reason.clone_from(&item.reason);
            tx.set_checkpoint(check_key, Some(&check.to_json().to_string()))?;
        } else {
            let record = json!({
                "rule": index.get("rule"),
                "order": index.get("order"),
                "outcome": outcome,
                "acceptedSuggestions": item.suggestions,
                "overrideReason": item.reason,
                "at": item.at,
            });
            tx.set_checkpoint(
                &format!("{FEEDBACK_PREFIX}{}", item.card),
                Some(&record.to_string()),
            )?;
        }
    }
    tx.commit()?;
    Ok(items.len())
}

/// Whether the hook exists (for the edge's 404).
pub fn service(id: &str) -> Option<Hook> {
    Hook::ALL.into_iter().find(|h| h.service_id() == id)
}
