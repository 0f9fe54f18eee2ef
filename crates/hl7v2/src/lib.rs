//! HL7 version 2 messages as hospital information systems send them.
//!
//! - [`parse`] reads one message: the delimiters from its MSH segment, the character set from
//!   MSH-18 (UTF-8 or GB18030; the bytes are decoded before anything is split), segments ended
//!   by CR (LF and CRLF accepted), fields, repetitions, components and sub-components, escape
//!   sequences resolved. Every segment is kept, Z-segments included; versions 2.3 to 2.8 read
//!   alike (MSH-12 says which).
//! - [`parse_batch`] reads batch (BHS ... BTS) and file (FHS ... FTS) envelopes around messages.
//! - [`Message::encode`] writes a message back with the delimiters and escapes it was read with.
//! - [`ack`] builds the acknowledgement of a message: original (AA/AE/AR) or enhanced (commit
//!   CA/CE/CR, or application), with MSA and ERR segments as the message's version lays them
//!   out.
//! - [`mllp`] is the Minimal Lower Layer Protocol's framing.

pub mod ack;
pub mod mllp;
mod parse;

pub use ack::{AckCode, AckError, ack};
pub use parse::{Batch, parse, parse_batch};

/// What went wrong reading a message, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message is empty")]
    Empty,
    #[error("the message does not start with an MSH segment (it starts with '{0}')")]
    NoHeader(String),
    #[error(
        "MSH does not declare its delimiters (MSH-1 and MSH-2 are short or repeat a character)"
    )]
    BadDelimiters,
    #[error(
        "the character set '{0}' (MSH-18) is not supported: UTF-8 (UNICODE UTF-8), GB 18030-2000, ASCII or 8859/1"
    )]
    Charset(String),
    #[error("the bytes are not valid {0}")]
    Encoding(&'static str),
    #[error("segment {index} ('{name}') has no valid segment name (three letters or digits)")]
    SegmentName { index: usize, name: String },
    #[error("the envelope is malformed: {0}")]
    Envelope(String),
    #[error("the message is larger than {0} bytes")]
    TooLarge(usize),
}

/// The largest message read (16 MiB): a document (MDM) with an embedded PDF fits.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// The separators a message declares in MSH-1 and MSH-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub field: char,
    pub component: char,
    pub repetition: char,
    pub escape: Option<char>,
    pub subcomponent: char,
    /// The truncation character of v2.7 and later (MSH-2's fifth character), if declared.
    pub truncation: Option<char>,
}

impl Default for Delimiters {
    fn default() -> Delimiters {
        Delimiters {
            field: '|',
            component: '^',
            repetition: '~',
            escape: Some('\\'),
            subcomponent: '&',
            truncation: None,
        }
    }
}

impl Delimiters {
    /// MSH-2 as written.
    pub fn encoding_characters(&self) -> String {
        let mut text = String::new();
        text.push(self.component);
        text.push(self.repetition);
        if let Some(escape) = self.escape {
            text.push(escape);
        }
        text.push(self.subcomponent);
        if let Some(truncation) = self.truncation {
            text.push(truncation);
        }
        text
    }
}

/// The character set a message was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Gb18030,
}

/// One message: its delimiters and character set, and its segments in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub delimiters: Delimiters,
    pub charset: Charset,
    pub segments: Vec<Segment>,
}

/// One segment: its name and fields. `fields[0]` is field 1 (for MSH, MSH-1, the field
/// separator itself; MSH-2 is the encoding characters, kept as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub fields: Vec<Field>,
}

/// A field: its repetitions (one when the field does not repeat; none when it is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Field {
    pub repetitions: Vec<Repetition>,
}

/// One repetition of a field: its components.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repetition {
    pub components: Vec<Component>,
}

/// One component: its sub-components, each text with escapes resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Component {
    pub subcomponents: Vec<String>,
}

impl Field {
    /// A field of one plain value.
    pub fn text(value: &str) -> Field {
        if value.is_empty() {
            return Field::default();
        }
        Field {
            repetitions: vec![Repetition {
                components: vec![Component {
                    subcomponents: vec![value.to_owned()],
                }],
            }],
        }
    }

    /// A field of one repetition with these components.
    pub fn components(values: &[&str]) -> Field {
        Field {
            repetitions: vec![Repetition {
                components: values
                    .iter()
                    .map(|v| Component {
                        subcomponents: vec![(*v).to_owned()],
                    })
                    .collect(),
            }],
        }
    }

    /// Component `component` (1-based) of the first repetition, its first sub-component;
    /// `None` when absent or empty.
    pub fn component(&self, component: usize) -> Option<&str> {
        self.repetitions.first()?.component(component)
    }

    pub fn is_empty(&self) -> bool {
        self.repetitions.iter().all(Repetition::is_empty)
    }
}

impl Repetition {
    /// Component `component` (1-based), its first sub-component; `None` when absent or empty.
    pub fn component(&self, component: usize) -> Option<&str> {
        self.subcomponent(component, 1)
    }

    /// Sub-component `sub` (1-based) of component `component` (1-based).
    pub fn subcomponent(&self, component: usize, sub: usize) -> Option<&str> {
        let value = self
            .components
            .get(component.checked_sub(1)?)?
            .subcomponents
            .get(sub.checked_sub(1)?)?;
        (!value.is_empty()).then_some(value.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.components
            .iter()
            .all(|c| c.subcomponents.iter().all(String::is_empty))
    }
}

impl Segment {
    /// Field `n` (1-based, as HL7 numbers them: `PID-3` is `field(3)`).
    pub fn field(&self, n: usize) -> Option<&Field> {
        self.fields.get(n.checked_sub(1)?)
    }

    /// `SEG-n.c`: component `c` of the first repetition of field `n`, or `None` when empty.
    pub fn value(&self, n: usize, component: usize) -> Option<&str> {
        self.field(n)?.component(component)
    }

    /// Every repetition of field `n`.
    pub fn repetitions(&self, n: usize) -> &[Repetition] {
        self.field(n).map_or(&[], |f| f.repetitions.as_slice())
    }

    /// Sets field `n` (1-based), adding empty fields before it as needed.
    pub fn set(&mut self, n: usize, field: Field) {
        if n == 0 {
            return;
        }
        if self.fields.len() < n {
            self.fields.resize(n, Field::default());
        }
        self.fields[n - 1] = field;
    }
}

impl Message {
    /// The header (always the first segment of a parsed message).
    pub fn header(&self) -> &Segment {
        &self.segments[0]
    }

    /// The segments named `name`, in order.
    pub fn segments_named<'m>(&'m self, name: &'m str) -> impl Iterator<Item = &'m Segment> + 'm {
        self.segments.iter().filter(move |s| s.name == name)
    }

    /// The first segment named `name`.
    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name == name)
    }

    /// MSH-9: the message type, trigger event and structure (`ORU`, `R01`, `ORU_R01`).
    pub fn message_type(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        let header = self.header();
        (header.value(9, 1), header.value(9, 2), header.value(9, 3))
    }

    /// MSH-10, the message control id.
    pub fn control_id(&self) -> Option<&str> {
        self.header().value(10, 1)
    }

    /// MSH-12, the version (`2.5.1`).
    pub fn version(&self) -> Option<&str> {
        self.header().value(12, 1)
    }

    /// MSH-4, the sending facility (its first component, or its universal id when that is
    /// all there is).
    pub fn sending_facility(&self) -> Option<&str> {
        let header = self.header();
        header.value(4, 1).or_else(|| header.value(4, 2))
    }

    /// The message as HL7 text: segments ended by CR, values escaped with its delimiters.
    pub fn encode(&self) -> String {
        parse::encode(self)
    }

    /// The encoded message in its character set.
    pub fn encode_bytes(&self) -> Vec<u8> {
        let text = self.encode();
        match self.charset {
            Charset::Utf8 => text.into_bytes(),
            Charset::Gb18030 => encoding_rs::GB18030.encode(&text).0.into_owned(),
        }
    }
}
