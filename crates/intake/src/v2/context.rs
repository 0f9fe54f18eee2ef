//! What every segment map shares: the message's segments numbered as ERR-2 numbers them, the
//! sender's profile and time zone, the refusals with their locations, and the transaction
//! Bundle being built.

use hl7v2::{AckCode, AckError, Message, Repetition, Segment};
use serde_json::{Map, Value, json};

use super::datatypes::{self, Offset, Ts};
use super::{Profile, Refusal};

/// The base of every identifier system and local code system this platform mints.
pub(crate) const MERIDIAN: &str = "https://meridian.example";

/// The offset assumed for a time that carries none when MSH-7 carries none either: the
/// region's one time zone, China Standard Time. HL7 says such a time is the sender's local
/// time; MSH-7's own offset, when it has one, says what that is (`Ctx::offset`).
pub(crate) const REGION_OFFSET_MINUTES: i32 = 8 * 60;

impl Refusal {
    /// AE: the message is wrong (codes 100 to 199 of table 0357).
    pub(crate) fn error(code: u16, text: impl Into<String>) -> Refusal {
        Refusal {
            code: AckCode::ApplicationError,
            error: AckError::error(code, text),
        }
    }

    /// AR: the receiver does not take the message (codes 200 and over).
    pub(crate) fn reject(code: u16, text: impl Into<String>) -> Refusal {
        Refusal {
            code: AckCode::ApplicationReject,
            error: AckError::error(code, text),
        }
    }

    pub(crate) fn with_location(mut self, segment: &str, sequence: usize, field: usize) -> Refusal {
        self.error = self.error.at(segment, sequence, field);
        self
    }

    fn located(mut self, segment: &Seg<'_>, field: usize) -> Refusal {
        self.error = self
            .error
            .at(&segment.segment.name, segment.sequence, field);
        self
    }
}

/// One segment with its place: `sequence` is its occurrence among the segments of its name
/// (1-based), as ERR-2 (ERL-2) counts; `index` its position in the message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seg<'m> {
    pub segment: &'m Segment,
    pub sequence: usize,
    pub index: usize,
}

impl<'m> Seg<'m> {
    pub fn name(&self) -> &'m str {
        &self.segment.name
    }

    /// The non-empty repetitions of field `n`.
    pub fn reps(&self, n: usize) -> impl Iterator<Item = &'m Repetition> + 'm {
        self.segment.repetitions(n).iter().filter(|r| !r.is_empty())
    }

    /// The first non-empty repetition of field `n`.
    pub fn rep(&self, n: usize) -> Option<&'m Repetition> {
        self.reps(n).next()
    }

    /// `SEG-n.c` of the first repetition, cleaned (`datatypes::clean`); `None` when empty.
    pub fn text(&self, n: usize, component: usize) -> Option<String> {
        datatypes::clean(self.rep(n)?.component(component)?)
    }

    /// `SEG-n.1` as a code: trimmed, whitespace collapsed (a FHIR `code`), upper-cased, as
    /// v2 tables are written.
    pub fn code(&self, n: usize) -> Option<String> {
        datatypes::code(self.rep(n)?.component(1)?).map(|c| c.to_ascii_uppercase())
    }

    /// AE 101: a field the mapping needs is empty.
    pub fn missing(&self, field: usize, what: &str) -> Refusal {
        Refusal::error(
            101,
            format!("{}-{field} ({what}) is required and empty", self.name()),
        )
        .located(self, field)
    }

    /// AE 102: a field does not hold its data type.
    pub fn wrong(&self, field: usize, why: &str) -> Refusal {
        Refusal::error(102, format!("{}-{field}: {why}", self.name())).located(self, field)
    }

    /// AE 103: a coded field holds a value its table does not have.
    pub fn unknown(&self, field: usize, value: &str, table: &str) -> Refusal {
        Refusal::error(
            103,
            format!(
                "{}-{field}: '{value}' is not a value of {table} this receiver maps",
                self.name()
            ),
        )
        .located(self, field)
    }

    /// Field `n` read as a v2 date/time (DTM/TS/DT, component 1), or AE 102.
    pub fn ts(&self, n: usize) -> Result<Option<Ts>, Refusal> {
        let Some(text) = self.text(n, 1) else {
            return Ok(None);
        };
        Ts::parse(&text)
            .map(Some)
            .map_err(|why| self.wrong(n, &why.0))
    }

    /// Component `c` of field `n` read as a date/time, or AE 102.
    pub fn ts_component(&self, n: usize, c: usize) -> Result<Option<Ts>, Refusal> {
        let Some(text) = self.text(n, c) else {
            return Ok(None);
        };
        Ts::parse(&text)
            .map(Some)
            .map_err(|why| self.wrong(n, &why.0))
    }
}

/// The message being mapped and the sender it came from.
pub(crate) struct Ctx<'m> {
    pub profile: &'m Profile,
    pub segments: Vec<Seg<'m>>,
    /// The offset of a time written without one: MSH-7's, else the region's.
    pub offset: Offset,
    /// MSH-9.2 (or EVN-1 when MSH-9 has no trigger), upper-cased.
    pub trigger: String,
}

impl<'m> Ctx<'m> {
    pub fn new(message: &'m Message, profile: &'m Profile) -> Ctx<'m> {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        let mut segments = Vec::with_capacity(message.segments.len());
        for (index, segment) in message.segments.iter().enumerate() {
            let sequence = match counts.iter_mut().find(|(n, _)| *n == segment.name) {
                Some((_, count)) => {
                    *count += 1;
                    *count
                }
                None => {
                    counts.push((&segment.name, 1));
                    1
                }
            };
            segments.push(Seg {
                segment,
                sequence,
                index,
            });
        }
        let offset = segments
            .first()
            .and_then(|msh| msh.text(7, 1))
            .and_then(|t| Ts::parse(&t).ok())
            .and_then(|t| t.offset)
            .unwrap_or(Offset(REGION_OFFSET_MINUTES));
        Ctx {
            profile,
            segments,
            offset,
            trigger: String::new(),
        }
    }

    /// The first segment named `name`.
    pub fn first(&self, name: &str) -> Option<Seg<'m>> {
        self.segments.iter().find(|s| s.name() == name).copied()
    }

    /// The segments named `name`, in order.
    pub fn all(&self, name: &str) -> Vec<Seg<'m>> {
        self.segments
            .iter()
            .filter(|s| s.name() == name)
            .copied()
            .collect()
    }

    /// The segments after position `index` up to (not including) the next one named in
    /// `stop`.
    pub fn following(&self, index: usize, stop: &[&str]) -> Vec<Seg<'m>> {
        self.segments
            .iter()
            .skip(index + 1)
            .take_while(|s| !stop.contains(&s.name()))
            .copied()
            .collect()
    }

    /// `https://meridian.example/sid/<kind>/<namespace>`: an identifier system of this sender.
    pub fn system(&self, kind: &str) -> String {
        format!("{MERIDIAN}/sid/{kind}/{}", self.profile.namespace)
    }

    /// A reference to the sender's organization, when the profile names one.
    pub fn organization(&self) -> Option<Value> {
        (!self.profile.organization.is_empty())
            .then(|| json!({ "reference": self.profile.organization }))
    }

    /// An identifier of this sender: its system, value and the organization as assigner.
    pub fn identifier(&self, kind: &str, value: &str) -> Value {
        let mut identifier = json!({ "system": self.system(kind), "value": value });
        if let Some(organization) = self.organization() {
            identifier["assigner"] = organization;
        }
        identifier
    }

    pub fn date_time(&self, ts: &Ts) -> String {
        ts.date_time(self.offset)
    }

    pub fn instant(&self, ts: &Ts) -> Option<String> {
        ts.instant(self.offset)
    }
}

/// How an entry is written.
pub(crate) enum Write {
    /// `PUT Type?identifier=system|value`: create or replace the one resource with it.
    Update,
    /// `POST Type` with `ifNoneExist: identifier=system|value`: create only if absent.
    CreateIfAbsent,
}

/// The transaction Bundle being built: entries in order, each with a fresh `urn:uuid:`.
pub(crate) struct Bundle {
    entries: Vec<Value>,
    /// Conditional URLs already written, so that one message never writes one resource
    /// twice (the transaction would refuse it as a whole).
    conditions: Vec<String>,
    source: Option<String>,
}

impl Bundle {
    pub fn new(profile: &Profile) -> Bundle {
        Bundle {
            entries: Vec::new(),
            conditions: Vec::new(),
            source: (!profile.source.is_empty()).then(|| profile.source.clone()),
        }
    }

    /// Adds `resource`, found by `(system, value)`, written as `write` says; returns its full
    /// URL. A message that writes one resource twice is AE 205 (duplicate key).
    pub fn add(
        &mut self,
        mut resource: Value,
        key: (&str, &str),
        write: Write,
    ) -> Result<String, Refusal> {
        let resource_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let criteria = format!(
            "identifier={}|{}",
            query_encode(&token_escape(key.0)),
            query_encode(&token_escape(key.1))
        );
        let condition = format!("{resource_type}?{criteria}");
        if self.conditions.contains(&condition) {
            return Err(Refusal::error(
                205,
                format!(
                    "the message writes the {resource_type} with identifier {}|{} twice",
                    key.0, key.1
                ),
            ));
        }
        self.conditions.push(condition.clone());
        if let Some(source) = &self.source
            && let Some(object) = resource.as_object_mut()
        {
            let mut meta = Map::new();
            meta.insert("source".into(), Value::String(source.clone()));
            object.insert("meta".into(), Value::Object(meta));
        }
        let full_url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let request = match write {
            Write::Update => json!({ "method": "PUT", "url": condition }),
            Write::CreateIfAbsent => {
                json!({ "method": "POST", "url": resource_type, "ifNoneExist": criteria })
            }
        };
        self.entries.push(json!({
            "fullUrl": full_url,
            "resource": resource,
            "request": request,
        }));
        Ok(full_url)
    }

    /// The resource of the entry with full URL `full_url`, to complete it once entries
    /// written after it are known (a merge's two Patients name each other).
    pub fn resource_mut(&mut self, full_url: &str) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|e| e.get("fullUrl").and_then(Value::as_str) == Some(full_url))?
            .get_mut("resource")
    }

    pub fn finish(self) -> Value {
        json!({
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": self.entries,
        })
    }
}

/// A token search value's own separators escaped (`\`, `|`, `,`, `$`), as FHIR search asks.
fn token_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '|' | ',' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Percent-encodes a query value (the repository decodes `application/x-www-form-urlencoded`,
/// where `+` is a space); `:` and `/` stay readable.
fn query_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The full URL of the entry written for a reference (`{"reference": "urn:uuid:..."}`).
pub(crate) fn reference(full_url: &str) -> Value {
    json!({ "reference": full_url })
}

/// Inserts `value` under `key` when it is present.
pub(crate) fn put(object: &mut Value, key: &str, value: Option<Value>) {
    if let (Some(value), Some(map)) = (value, object.as_object_mut()) {
        map.insert(key.to_owned(), value);
    }
}

/// Inserts a list under `key` when it is not empty.
pub(crate) fn put_list(object: &mut Value, key: &str, values: Vec<Value>) {
    if !values.is_empty() {
        put(object, key, Some(Value::Array(values)));
    }
}

/// The NTE segments right after position `index` (NTE-3, each repetition a line), as
/// Annotations.
pub(crate) fn notes(ctx: &Ctx<'_>, index: usize) -> Vec<Value> {
    ctx.segments
        .iter()
        .skip(index + 1)
        .take_while(|s| s.name() == "NTE")
        .filter_map(|nte| {
            let lines: Vec<String> = nte
                .reps(3)
                .filter_map(|r| r.component(1).and_then(datatypes::clean))
                .collect();
            (!lines.is_empty()).then(|| json!({ "text": lines.join("\n") }))
        })
        .collect()
}
