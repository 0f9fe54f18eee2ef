//! A Subscription as the platform keeps it: read from the resource (the backport IG's R4
//! profile: the topic in `criteria`, filters in `_criteria`'s `backport-filter-criteria`, the
//! payload content, heartbeat period, timeout and batch size as channel extensions) and
//! checked when written, with the caller that wrote it, whose rules decide what its
//! notifications may show.
//!
//! The store's key-value table keeps, per subscription, three records written by three
//! writers that never overwrite each other: `notify/sub/<id>` (the configuration and the
//! owner, by the Subscription's write), `notify/count/<id>` (events numbered so far, by the
//! change-log consumer) and `notify/delivery/<id>` (what was delivered and when to try again,
//! by the deliverer), and each event as `notify/event/<id>/<n>`.

use caller::Caller;
use fhir_model::IssueCode;
use repository::RepositoryError;
use serde_json::{Value, json};

use crate::topic::{self, Topic};

const BACKPORT: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/";

pub(crate) const SUB_PREFIX: &str = "notify/sub/";
pub(crate) const COUNT_PREFIX: &str = "notify/count/";
pub(crate) const DELIVERY_PREFIX: &str = "notify/delivery/";
pub(crate) const EVENT_PREFIX: &str = "notify/event/";

/// How a subscription's notifications travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    RestHook,
    Websocket,
}

/// What a notification carries of each event's focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Empty,
    IdOnly,
    FullResource,
}

impl Content {
    pub fn parse(code: &str) -> Option<Content> {
        match code {
            "empty" => Some(Content::Empty),
            "id-only" => Some(Content::IdOnly),
            "full-resource" => Some(Content::FullResource),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Content::Empty => "empty",
            Content::IdOnly => "id-only",
            Content::FullResource => "full-resource",
        }
    }
}

/// Where plain-HTTP endpoints are allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// Hosts (`name` or `name:port`) an administrator allows plain HTTP to, besides loopback.
    pub allowed_http_hosts: Vec<String>,
}

impl EndpointPolicy {
    /// Whether notifications may be posted to `endpoint`: HTTPS anywhere, plain HTTP only to
    /// a loopback address or an allowed host.
    pub fn check(&self, endpoint: &str) -> Result<(), String> {
        let (scheme, rest) = endpoint
            .split_once("://")
            .ok_or_else(|| format!("'{endpoint}' is not an absolute URL"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        if authority.is_empty() {
            return Err(format!("'{endpoint}' names no host"));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "https" => Ok(()),
            "http" => {
                let host = if let Some(v6) = authority.strip_prefix('[') {
                    v6.split(']').next().unwrap_or("")
                } else {
                    authority.split(':').next().unwrap_or("")
                };
                let loopback = host.eq_ignore_ascii_case("localhost")
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if loopback
                    || self.allowed_http_hosts.iter().any(|allowed| {
                        allowed.eq_ignore_ascii_case(authority)
                            || allowed.eq_ignore_ascii_case(host)
                    })
                {
                    Ok(())
                } else {
                    Err(format!(
                        "notifications go over HTTPS: plain HTTP is allowed to loopback addresses and the hosts an administrator lists, not to '{host}'"
                    ))
                }
            }
            other => Err(format!(
                "notifications are posted over https (or http to loopback), not {other}"
            )),
        }
    }
}

/// A subscription's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub id: String,
    pub topic: String,
    /// `(parameter, values)`: each must match one of its values.
    pub filters: Vec<(String, Vec<String>)>,
    pub channel: Channel,
    pub endpoint: Option<String>,
    /// `Name: value` headers sent with each rest-hook post.
    pub headers: Vec<String>,
    pub content: Content,
    /// Seconds between heartbeats when nothing else was sent (0: none).
    pub heartbeat: u64,
    /// Seconds a rest-hook post may take.
    pub timeout: u64,
    /// Events per notification at most.
    pub max_count: u64,
    /// `requested`, `active`, `error` or `off`, as the resource says.
    pub status: String,
    /// Whose rules decide what the notifications show.
    pub owner: Caller,
    /// When it was written (events before it are not its own).
    pub since: i64,
}

fn invalid(message: impl Into<String>, expression: &str) -> RepositoryError {
    RepositoryError::Unprocessable(vec![
        fhir_model::Issue::error(IssueCode::BusinessRule, message).at(expression),
    ])
}

fn extensions<'v>(value: Option<&'v Value>, name: &str) -> impl Iterator<Item = &'v Value> {
    let url = format!("{BACKPORT}{name}");
    value
        .and_then(|v| v.get("extension"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |e| e.get("url").and_then(Value::as_str) == Some(url.as_str()))
}

fn unsigned(value: Option<&Value>, name: &str) -> Option<u64> {
    extensions(value, name).find_map(|e| {
        ["valueUnsignedInt", "valuePositiveInt", "valueInteger"]
            .iter()
            .find_map(|k| e.get(*k).and_then(Value::as_u64))
    })
}

/// Parses a filter criterion `Type?name=value[,value]&...` against the topic.
fn parse_filter(topic: &Topic, text: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let (resource_type, query) = text.split_once('?').unwrap_or(("", text));
    if !resource_type.is_empty() && !topic.triggers.iter().any(|t| t.resource == resource_type) {
        return Err(format!(
            "the topic {} is about {}, not {resource_type}",
            topic.url(),
            topic
                .triggers
                .iter()
                .map(|t| t.resource)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut filters = Vec::new();
    for (name, value) in repository::parse_query(query) {
        if !topic
            .filters
            .iter()
            .any(|f| f.name == name && (resource_type.is_empty() || f.resource == resource_type))
        {
            return Err(format!(
                "the topic {} cannot be filtered by '{name}' (it can by {})",
                topic.url(),
                topic
                    .filters
                    .iter()
                    .map(|f| format!("{}?{}", f.resource, f.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let values: Vec<String> = value
            .split(',')
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        if values.is_empty() {
            return Err(format!("the filter '{name}' has no value"));
        }
        filters.push((name, values));
    }
    Ok(filters)
}

impl Subscriber {
    /// Reads and checks a Subscription written by `owner` at `since`.
    pub fn from_resource(
        resource: &Value,
        owner: &Caller,
        since: i64,
        endpoints: &EndpointPolicy,
    ) -> Result<Subscriber, RepositoryError> {
        let id = resource
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let criteria = resource
            .get("criteria")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(topic) = topic::by_url(criteria) else {
            return Err(invalid(
                format!(
                    "'{criteria}' is not a topic of this server; its topics are {}",
                    topic::topics()
                        .iter()
                        .map(Topic::url)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "Subscription.criteria",
            ));
        };
        let mut filters = Vec::new();
        for e in extensions(resource.get("_criteria"), "backport-filter-criteria") {
            let text = e.get("valueString").and_then(Value::as_str).unwrap_or("");
            filters.extend(
                parse_filter(topic, text).map_err(|m| invalid(m, "Subscription.criteria"))?,
            );
        }
        let channel_value = resource.get("channel");
        let channel = match channel_value
            .and_then(|c| c.get("type"))
            .and_then(Value::as_str)
        {
            Some("rest-hook") => Channel::RestHook,
            Some("websocket") => Channel::Websocket,
            other => {
                return Err(invalid(
                    format!(
                        "the channel '{}' is not offered: rest-hook or websocket",
                        other.unwrap_or("")
                    ),
                    "Subscription.channel.type",
                ));
            }
        };
        let endpoint = channel_value
            .and_then(|c| c.get("endpoint"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if channel == Channel::RestHook {
            let Some(endpoint) = &endpoint else {
                return Err(invalid(
                    "a rest-hook subscription names its endpoint",
                    "Subscription.channel.endpoint",
                ));
            };
            endpoints
                .check(endpoint)
                .map_err(|m| invalid(m, "Subscription.channel.endpoint"))?;
        }
        if let Some(payload) = channel_value
            .and_then(|c| c.get("payload"))
            .and_then(Value::as_str)
            && !matches!(payload, "application/fhir+json" | "application/json")
        {
            return Err(invalid(
                format!("notifications are FHIR JSON, not {payload}"),
                "Subscription.channel.payload",
            ));
        }
        let content = match extensions(
            channel_value.and_then(|c| c.get("_payload")),
            "backport-payload-content",
        )
        .find_map(|e| e.get("valueCode").and_then(Value::as_str))
        {
            None => Content::IdOnly,
            Some(code) => Content::parse(code).ok_or_else(|| {
                invalid(
                    format!("'{code}' is not a payload content: empty, id-only or full-resource"),
                    "Subscription.channel.payload",
                )
            })?,
        };
        let headers: Vec<String> = channel_value
            .and_then(|c| c.get("header"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_str().map(str::to_owned))
            .collect();
        if headers
            .iter()
            .any(|h| !h.contains(':') || h.contains(['\r', '\n']))
        {
            return Err(invalid(
                "each channel header is 'Name: value' on one line",
                "Subscription.channel.header",
            ));
        }
        Ok(Subscriber {
            id,
            topic: topic.url(),
            filters,
            channel,
            endpoint,
            headers,
            content,
            heartbeat: unsigned(channel_value, "backport-heartbeat-period").unwrap_or(0),
            timeout: unsigned(channel_value, "backport-timeout")
                .unwrap_or(10)
                .clamp(1, 120),
            max_count: unsigned(channel_value, "backport-max-count")
                .unwrap_or(20)
                .clamp(1, 500),
            status: resource
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("requested")
                .to_owned(),
            owner: owner.clone(),
            since,
        })
    }

    pub fn topic(&self) -> Option<&'static Topic> {
        topic::by_url(&self.topic)
    }

    /// Whether a heartbeat is due at `now` when anything was last sent at `last_sent`
    /// (microseconds): never when the subscription asked for none.
    pub fn heartbeat_due(&self, last_sent: i64, now: i64) -> bool {
        self.heartbeat > 0 && now - last_sent >= self.heartbeat as i64 * 1_000_000
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id, "topic": self.topic,
            "filters": self.filters.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
            "channel": match self.channel { Channel::RestHook => "rest-hook", Channel::Websocket => "websocket" },
            "endpoint": self.endpoint, "headers": self.headers, "content": self.content.code(),
            "heartbeat": self.heartbeat, "timeout": self.timeout, "maxCount": self.max_count,
            "status": self.status, "owner": self.owner.to_json(), "since": self.since,
        })
    }

    pub(crate) fn from_json(value: &Value) -> Option<Subscriber> {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Subscriber {
            id: text("id")?,
            topic: text("topic")?,
            filters: value
                .get("filters")?
                .as_array()?
                .iter()
                .filter_map(|f| {
                    let name = f.get(0)?.as_str()?.to_owned();
                    let values = f
                        .get(1)?
                        .as_array()?
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    Some((name, values))
                })
                .collect(),
            channel: match value.get("channel")?.as_str()? {
                "rest-hook" => Channel::RestHook,
                _ => Channel::Websocket,
            },
            endpoint: text("endpoint"),
            headers: value
                .get("headers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|h| h.as_str().map(str::to_owned))
                .collect(),
            content: Content::parse(value.get("content")?.as_str()?)?,
            heartbeat: value.get("heartbeat")?.as_u64()?,
            timeout: value.get("timeout")?.as_u64()?,
            max_count: value.get("maxCount")?.as_u64()?,
            status: text("status")?,
            owner: Caller::from_json(value.get("owner")?)?,
            since: value.get("since")?.as_i64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_or_the_allow_list() {
        let policy = EndpointPolicy {
            allowed_http_hosts: vec!["his.county.local".into()],
        };
        assert!(policy.check("https://his.example.org/hook").is_ok());
        assert!(policy.check("http://127.0.0.1:9000/hook").is_ok());
        assert!(policy.check("http://localhost/hook").is_ok());
        assert!(policy.check("http://[::1]:8000/hook").is_ok());
        assert!(policy.check("http://his.county.local:8080/hook").is_ok());
        assert!(policy.check("http://example.org/hook").is_err());
        assert!(policy.check("http://127.0.0.1.evil.org/hook").is_err());
        assert!(policy.check("ftp://127.0.0.1/hook").is_err());
        assert!(policy.check("not a url").is_err());
    }

    #[test]
    fn filters_are_checked_against_the_topic() {
        let topic = topic::by_url(&format!("{}task-accepted", topic::TOPIC_BASE)).unwrap();
        assert_eq!(
            parse_filter(
                topic,
                "Task?party=Organization/county&patient=Patient/p1,Patient/p2"
            )
            .unwrap(),
            vec![
                ("party".to_owned(), vec!["Organization/county".to_owned()]),
                (
                    "patient".to_owned(),
                    vec!["Patient/p1".to_owned(), "Patient/p2".to_owned()]
                ),
            ]
        );
        assert!(parse_filter(topic, "Observation?patient=Patient/p1").is_err());
        assert!(parse_filter(topic, "Task?colour=red").is_err());
        assert!(parse_filter(topic, "Task?party=").is_err());
        // Values are percent-decoded; a malformed escape is kept as written.
        assert_eq!(
            parse_filter(topic, "Task?party=Organization%2Fcounty%zz").unwrap(),
            vec![(
                "party".to_owned(),
                vec!["Organization/county%zz".to_owned()]
            )]
        );
    }
}
