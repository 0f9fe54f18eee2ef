//! The subscription topics the platform offers, as data: each is a resource trigger (the
//! resource types, the interactions, and a FHIRPath criterion over `%previous` and `%current`,
//! as R5's `SubscriptionTopic.resourceTrigger.fhirPathCriteria`) and the filters a subscriber
//! may narrow it by (`canFilterBy`, each a FHIRPath expression whose values a filter's value
//! must equal). Readable in R4 as the Subscriptions Backport IG represents topics: `Basic`
//! resources carrying the R5 elements as cross-version extensions.

use std::sync::OnceLock;

use fhirpath::{Collection, Environment, Expression};
use serde_json::{Value, json};

/// Topic URLs start with this.
pub const TOPIC_BASE: &str = "https://meridian.example/fhir/SubscriptionTopic/";

/// The backport IG's extension on `CapabilityStatement.rest.resource` (Subscription) naming a
/// supported topic.
pub const CAPABILITY_TOPIC: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical";

/// One way a resource's change raises the topic.
#[derive(Debug)]
pub struct Trigger {
    pub resource: &'static str,
    /// `create`, `update`, `delete`.
    pub interactions: &'static [&'static str],
    pub criteria: &'static str,
    compiled: Expression,
}

/// A filter a subscriber may give: `Type?name=value`.
#[derive(Debug)]
pub struct FilterBy {
    pub resource: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub expression: &'static str,
    compiled: Expression,
}

#[derive(Debug)]
pub struct Topic {
    /// The last segment of its URL, and its NATS subject's.
    pub code: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub triggers: Vec<Trigger>,
    pub filters: Vec<FilterBy>,
}

impl Topic {
    pub fn url(&self) -> String {
        format!("{TOPIC_BASE}{}", self.code)
    }

    /// Whether the change from `previous` to `current` (either absent: a create, a delete)
    /// of a `resource_type` resource by `interaction` raises this topic.
    pub fn raised_by(
        &self,
        resource_type: &str,
        interaction: &str,
        previous: Option<&Value>,
        current: Option<&Value>,
    ) -> bool {
        self.triggers.iter().any(|trigger| {
            trigger.resource == resource_type
                && trigger.interactions.contains(&interaction)
                && holds(&trigger.compiled, previous, current)
        })
    }

    /// Whether `resource` passes the filters (`(name, values)`: each name must match one of
    /// its values).
    pub fn passes(&self, resource: &Value, filters: &[(String, Vec<String>)]) -> bool {
        let resource_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("");
        filters.iter().all(|(name, wanted)| {
            let Some(filter) = self
                .filters
                .iter()
                .find(|f| f.resource == resource_type && f.name == name)
            else {
                // A filter on another of the topic's resource types says nothing of this one.
                return self.filters.iter().any(|f| f.name == name);
            };
            let values = filter_values(&filter.compiled, resource);
            wanted.iter().any(|w| {
                values
                    .iter()
                    .any(|v| v == w || v.rsplit('/').next() == Some(w.as_str()))
            })
        })
    }

    /// The topic as the backport IG's R4 `Basic` resource.
    pub fn to_basic(&self) -> Value {
        const EXT: &str = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic";
        let mut extensions = vec![
            json!({"url": format!("{EXT}.url"), "valueUri": self.url()}),
            json!({"url": format!("{EXT}.version"), "valueString": "1"}),
            json!({"url": format!("{EXT}.name"), "valueString": self.code}),
            json!({"url": format!("{EXT}.title"), "valueString": self.title}),
            json!({"url": format!("{EXT}.status"), "valueCode": "active"}),
            json!({"url": format!("{EXT}.description"), "valueMarkdown": self.description}),
        ];
        for trigger in &self.triggers {
            let mut parts = vec![
                json!({"url": "description", "valueMarkdown": format!("{} {}", trigger.resource, trigger.interactions.join("/"))}),
                json!({"url": "resource", "valueUri": format!("http://hl7.org/fhir/StructureDefinition/{}", trigger.resource)}),
            ];
            for interaction in trigger.interactions {
                parts.push(json!({"url": "supportedInteraction", "valueCode": interaction}));
            }
            parts.push(json!({"url": "fhirPathCriteria", "valueString": trigger.criteria}));
            extensions.push(json!({"url": format!("{EXT}.resourceTrigger"), "extension": parts}));
        }
        for filter in &self.filters {
            extensions.push(json!({"url": format!("{EXT}.canFilterBy"), "extension": [
                {"url": "description", "valueMarkdown": filter.description},
                {"url": "resource", "valueUri": filter.resource},
                {"url": "filterParameter", "valueString": filter.name},
            ]}));
        }
        extensions.push(
            json!({"url": format!("{EXT}.notificationShape"), "extension": [
                {"url": "resource", "valueUri": self.triggers.first().map_or("", |t| t.resource)},
            ]}),
        );
        json!({
            "resourceType": "Basic",
            "id": self.code,
            "meta": {"profile": ["http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-topic"]},
            "extension": extensions,
            "modifierExtension": [
                {"url": format!("{EXT}.status"), "valueCode": "active"}
            ],
            "code": {"coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]},
        })
    }
}

fn holds(expression: &Expression, previous: Option<&Value>, current: Option<&Value>) -> bool {
    let previous = previous.cloned().unwrap_or(Value::Null);
    let current = current.cloned().unwrap_or(Value::Null);
    let env = Environment::new()
        .with_json("previous", &previous)
        .with_json("current", &current);
    match expression.evaluate(&Value::Null, &env) {
        Ok(result) => {
            let items: Vec<_> = result.into_iter().collect();
            matches!(items.as_slice(), [item] if item.as_bool() == Some(true))
        }
        Err(error) => {
            tracing::warn!(%error, "a topic's criterion failed to evaluate; it does not fire");
            false
        }
    }
}

fn filter_values(expression: &Expression, resource: &Value) -> Vec<String> {
    let env = Environment::new();
    match expression.evaluate_on(&Collection::of_resource(resource), &env) {
        Ok(result) => result
            .into_iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn compile(source: &'static str) -> Expression {
    fhirpath::compile(source)
        .unwrap_or_else(|e| panic!("a shipped topic's FHIRPath ({source}): {e}"))
}

fn trigger(
    resource: &'static str,
    interactions: &'static [&'static str],
    criteria: &'static str,
) -> Trigger {
    Trigger {
        resource,
        interactions,
        criteria,
        compiled: compile(criteria),
    }
}

fn filter(
    resource: &'static str,
    name: &'static str,
    description: &'static str,
    expression: &'static str,
) -> FilterBy {
    FilterBy {
        resource,
        name,
        description,
        expression,
        compiled: compile(expression),
    }
}

fn task_filters() -> Vec<FilterBy> {
    vec![
        filter(
            "Task",
            "party",
            "An institution the request is addressed to (Organization/ID)",
            "(restriction.recipient | owner).reference",
        ),
        filter(
            "Task",
            "requester",
            "Who asked (Practitioner/ID, PractitionerRole/ID, Organization/ID)",
            "requester.reference",
        ),
        filter(
            "Task",
            "patient",
            "The patient (Patient/ID)",
            "for.reference",
        ),
        filter(
            "Task",
            "code",
            "The kind of request (consultation, remote-reading, referral, follow-up)",
            "code.coding.code",
        ),
    ]
}

fn appointment_filters() -> Vec<FilterBy> {
    vec![
        filter(
            "Appointment",
            "patient",
            "The patient (Patient/ID)",
            "participant.actor.reference.where(startsWith('Patient/'))",
        ),
        filter(
            "Appointment",
            "actor",
            "A participant (HealthcareService/ID, Practitioner/ID, ...)",
            "participant.actor.reference",
        ),
    ]
}

fn task_topic(
    code: &'static str,
    title: &'static str,
    description: &'static str,
    criteria: &'static str,
) -> Topic {
    Topic {
        code,
        title,
        description,
        triggers: vec![trigger("Task", &["create", "update"], criteria)],
        filters: task_filters(),
    }
}

/// The topics, compiled once.
pub fn topics() -> &'static [Topic] {
    static TOPICS: OnceLock<Vec<Topic>> = OnceLock::new();
    TOPICS.get_or_init(|| {
        let patient_filter = |resource| filter(resource, "patient", "The patient (Patient/ID)", "subject.reference");
        vec![
            task_topic(
                "task-requested",
                "Request received",
                "A consultation, remote reading, referral or follow-up is requested of an institution.",
                "%current.status = 'requested' and (%previous.empty() or %previous.status != 'requested')",
            ),
            task_topic(
                "task-received",
                "Request acknowledged",
                "The institution a request is addressed to has received it.",
                "%current.status = 'received' and %previous.status != 'received'",
            ),
            task_topic(
                "task-accepted",
                "Request accepted",
                "An expert or team has accepted a request.",
                "%current.status = 'accepted' and %previous.status != 'accepted'",
            ),
            task_topic(
                "task-answered",
                "Request answered",
                "A request is completed: its answer is in Task.output.",
                "%current.status = 'completed' and %previous.status != 'completed'",
            ),
            task_topic(
                "task-declined",
                "Request declined",
                "A request is rejected, cancelled or failed, with its reason.",
                "%current.status in ('rejected' | 'cancelled' | 'failed') and %previous.status != %current.status",
            ),
            task_topic(
                "task-overdue",
                "Request overdue",
                "A request passed its deadline and was escalated.",
                "%current.businessStatus.coding.where(system = 'https://meridian.example/CodeSystem/workflow' and code = 'overdue').exists() and %previous.businessStatus.coding.where(system = 'https://meridian.example/CodeSystem/workflow' and code = 'overdue').empty()",
            ),
            Topic {
                code: "appointment-booked",
                title: "Appointment booked",
                description: "An appointment is booked into a slot.",
                triggers: vec![trigger(
                    "Appointment",
                    &["create", "update"],
                    "%current.status = 'booked' and (%previous.empty() or %previous.status != 'booked')",
                )],
                filters: appointment_filters(),
            },
            Topic {
                code: "appointment-cancelled",
                title: "Appointment cancelled",
                description: "A booked appointment is cancelled; its slot is free again.",
                triggers: vec![trigger(
                    "Appointment",
                    &["update"],
                    "%current.status = 'cancelled' and %previous.status != 'cancelled'",
                )],
                filters: appointment_filters(),
            },
            Topic {
                code: "new-result",
                title: "New result",
                description: "A report or a result is final (or amended) for a patient.",
                triggers: vec![
                    trigger(
                        "DiagnosticReport",
                        &["create", "update"],
                        "%current.status in ('final' | 'amended' | 'corrected') and (%previous.empty() or %previous.status != %current.status)",
                    ),
                    trigger(
                        "Observation",
                        &["create", "update"],
                        "%current.status in ('final' | 'amended' | 'corrected') and (%previous.empty() or %previous.status != %current.status)",
                    ),
                ],
                filters: vec![
                    patient_filter("DiagnosticReport"),
                    patient_filter("Observation"),
                    filter("Observation", "code", "The result's code", "code.coding.code"),
                    filter("DiagnosticReport", "code", "The report's code", "code.coding.code"),
                ],
            },
            Topic {
                code: "abnormal-value",
                title: "Abnormal value",
                description: "An observation is interpreted as abnormal (high, low, critical).",
                triggers: vec![trigger(
                    "Observation",
                    &["create", "update"],
                    "%current.interpretation.coding.where(code in ('A' | 'AA' | 'H' | 'HH' | 'HU' | 'L' | 'LL' | 'LU')).exists() and %previous.interpretation.coding.where(code in ('A' | 'AA' | 'H' | 'HH' | 'HU' | 'L' | 'LL' | 'LU')).empty()",
                )],
                filters: vec![
                    patient_filter("Observation"),
                    filter("Observation", "code", "The observation's code", "code.coding.code"),
                ],
            },
            Topic {
                code: "chronic-alert",
                title: "Critical reading",
                description: "A managed resident's reading is critical (blood pressure from 180/110, glucose from 16.7 or at most 3.9 mmol/L): an alert to their family doctor (docs/chronic.md).",
                triggers: vec![trigger(
                    "Communication",
                    &["create"],
                    "%current.category.coding.where(system = 'https://meridian.example/CodeSystem/chronic-alert').exists()",
                )],
                filters: vec![
                    patient_filter("Communication"),
                    filter("Communication", "recipient", "The doctor or institution alerted (Practitioner/ID, Organization/ID)", "recipient.reference"),
                ],
            },
        ]
    })
}

/// The topic with this canonical URL (a `|version` suffix is ignored).
pub fn by_url(url: &str) -> Option<&'static Topic> {
    let url = url.split('|').next().unwrap_or(url);
    topics().iter().find(|t| t.url() == url)
}

/// Whether any topic watches this resource type.
pub fn watched(resource_type: &str) -> bool {
    topics()
        .iter()
        .any(|t| t.triggers.iter().any(|tr| tr.resource == resource_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKFLOW: &str = "https://meridian.example/CodeSystem/workflow";

    #[test]
    fn every_topic_compiles_and_fires_on_its_own_change_only() {
        let task =
            |status: &str| json!({"resourceType": "Task", "status": status, "intent": "order"});
        let accepted = by_url(&format!("{TOPIC_BASE}task-accepted")).unwrap();
        assert!(accepted.raised_by(
            "Task",
            "update",
            Some(&task("received")),
            Some(&task("accepted"))
        ));
        assert!(!accepted.raised_by(
            "Task",
            "update",
            Some(&task("accepted")),
            Some(&task("accepted"))
        ));
        assert!(!accepted.raised_by(
            "Task",
            "update",
            Some(&task("accepted")),
            Some(&task("in-progress"))
        ));
        let requested = by_url(&format!("{TOPIC_BASE}task-requested")).unwrap();
        assert!(requested.raised_by("Task", "create", None, Some(&task("requested"))));
        let mut overdue = task("requested");
        overdue["businessStatus"] = json!({"coding": [{"system": WORKFLOW, "code": "overdue"}]});
        let topic = by_url(&format!("{TOPIC_BASE}task-overdue")).unwrap();
        assert!(topic.raised_by("Task", "update", Some(&task("requested")), Some(&overdue)));
        assert!(!topic.raised_by("Task", "update", Some(&overdue), Some(&overdue)));
        let abnormal = by_url(&format!("{TOPIC_BASE}abnormal-value")).unwrap();
        let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "glucose"},
            "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}]});
        assert!(abnormal.raised_by("Observation", "create", None, Some(&obs)));
        for topic in topics() {
            assert!(topic.to_basic()["extension"].as_array().unwrap().len() > 6);
        }
    }

    #[test]
    fn filters_match_references_and_codes() {
        let topic = by_url(&format!("{TOPIC_BASE}task-accepted")).unwrap();
        let task = json!({"resourceType": "Task", "status": "accepted", "intent": "order",
            "restriction": {"recipient": [{"reference": "Organization/county"}]},
            "for": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": WORKFLOW, "code": "consultation"}]}});
        let f = |name: &str, value: &str| vec![(name.to_owned(), vec![value.to_owned()])];
        assert!(topic.passes(&task, &f("party", "Organization/county")));
        assert!(topic.passes(&task, &f("party", "county")));
        assert!(!topic.passes(&task, &f("party", "Organization/city")));
        assert!(topic.passes(&task, &f("patient", "Patient/p1")));
        assert!(topic.passes(&task, &f("code", "consultation")));
        assert!(topic.passes(&task, &[]));
    }
}
