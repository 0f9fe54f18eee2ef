//! Acknowledgements. The original mode answers every message with AA (applied), AE (an error
//! in the message: nothing applied) or AR (refused: unsupported type, version, processing id,
//! or the receiver could not process it). The enhanced mode (MSH-15 and MSH-16 filled) separates
//! the commit acknowledgement (CA/CE/CR: the message is safely received) from the application
//! acknowledgement, each sent as MSH-15 and MSH-16 ask (`AL` always, `NE` never, `ER` only on
//! error, `SU` only on success). ERR segments carry each error: from v2.5 in ERR-2 (location),
//! ERR-3 (HL7 table 0357 code), ERR-4 (severity) and ERR-8 (the text for the user); before,
//! in ERR-1.

use crate::{Field, Message, Segment};

/// MSA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    ApplicationAccept,
    ApplicationError,
    ApplicationReject,
    CommitAccept,
    CommitError,
    CommitReject,
}

impl AckCode {
    pub fn code(self) -> &'static str {
        match self {
            AckCode::ApplicationAccept => "AA",
            AckCode::ApplicationError => "AE",
            AckCode::ApplicationReject => "AR",
            AckCode::CommitAccept => "CA",
            AckCode::CommitError => "CE",
            AckCode::CommitReject => "CR",
        }
    }

    fn is_success(self) -> bool {
        matches!(self, AckCode::ApplicationAccept | AckCode::CommitAccept)
    }
}

/// One error reported in an ERR segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckError {
    /// HL7 table 0357: 100 segment sequence, 101 required field missing, 102 data type,
    /// 103 table value not found, 200 unsupported message type, 201 unsupported event,
    /// 202 unsupported processing id, 203 unsupported version, 204 unknown key, 205 duplicate
    /// key, 206 record locked, 207 application internal error.
    pub code: u16,
    /// `E`, `W` or `I`.
    pub severity: char,
    /// Segment name, its sequence in the message (1-based) and the field, when known.
    pub location: Option<(String, usize, usize)>,
    /// What the sender's staff should read.
    pub text: String,
}

impl AckError {
    pub fn error(code: u16, text: impl Into<String>) -> AckError {
        AckError {
            code,
            severity: 'E',
            location: None,
            text: text.into(),
        }
    }

    pub fn at(mut self, segment: &str, sequence: usize, field: usize) -> AckError {
        self.location = Some((segment.to_owned(), sequence, field));
        self
    }

    fn code_name(&self) -> &'static str {
        match self.code {
            0 => "Message accepted",
            100 => "Segment sequence error",
            101 => "Required field missing",
            102 => "Data type error",
            103 => "Table value not found",
            200 => "Unsupported message type",
            201 => "Unsupported event code",
            202 => "Unsupported processing id",
            203 => "Unsupported version id",
            204 => "Unknown key identifier",
            205 => "Duplicate key identifier",
            206 => "Application record locked",
            _ => "Application internal error",
        }
    }
}

/// When MSH-15 or MSH-16 asks for an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCondition {
    Always,
    Never,
    OnError,
    OnSuccess,
}

impl AckCondition {
    fn parse(value: Option<&str>) -> Option<AckCondition> {
        match value? {
            "AL" => Some(AckCondition::Always),
            "NE" => Some(AckCondition::Never),
            "ER" => Some(AckCondition::OnError),
            "SU" => Some(AckCondition::OnSuccess),
            _ => None,
        }
    }

    /// Whether an acknowledgement with `code` is sent under this condition.
    pub fn wants(self, code: AckCode) -> bool {
        match self {
            AckCondition::Always => true,
            AckCondition::Never => false,
            AckCondition::OnError => !code.is_success(),
            AckCondition::OnSuccess => code.is_success(),
        }
    }
}

/// How a message asks to be acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// One application acknowledgement (AA/AE/AR).
    Original,
    /// A commit acknowledgement and an application one, each when its condition holds (an
    /// absent condition is `Always`).
    Enhanced {
        accept: AckCondition,
        application: AckCondition,
    },
}

impl Message {
    /// MSH-15 and MSH-16: enhanced mode when either is filled.
    pub fn ack_mode(&self) -> AckMode {
        let header = self.header();
        let accept = AckCondition::parse(header.value(15, 1));
        let application = AckCondition::parse(header.value(16, 1));
        if accept.is_none() && application.is_none() {
            return AckMode::Original;
        }
        AckMode::Enhanced {
            accept: accept.unwrap_or(AckCondition::Always),
            application: application.unwrap_or(AckCondition::Always),
        }
    }
}

/// Whether the version (MSH-12) lays ERR out as v2.5 and later do.
fn modern_err(version: Option<&str>) -> bool {
    let Some(version) = version else {
        return true;
    };
    let mut parts = version.split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(2);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(5);
    (major, minor) >= (2, 5)
}

/// The acknowledgement of `message` with `code`, its own control id `control_id` and time
/// `timestamp` (`YYYYMMDDHHMMSS+ZZZZ`), naming `errors`.
pub fn ack(
    message: &Message,
    code: AckCode,
    errors: &[AckError],
    control_id: &str,
    timestamp: &str,
) -> Message {
    let original = message.header();
    let copy = |n: usize| original.field(n).cloned().unwrap_or_default();
    let mut header = Segment {
        name: "MSH".into(),
        fields: vec![
            Field::text(&message.delimiters.field.to_string()),
            Field::text(&message.delimiters.encoding_characters()),
        ],
    };
    header.set(3, copy(5));
    header.set(4, copy(6));
    header.set(5, copy(3));
    header.set(6, copy(4));
    header.set(7, Field::text(timestamp));
    let trigger = message.message_type().1.unwrap_or("");
    header.set(9, Field::components(&["ACK", trigger, "ACK"]));
    header.set(10, Field::text(control_id));
    header.set(11, copy(11));
    header.set(12, copy(12));
    if let Some(charset) = original.field(18).filter(|f| !f.is_empty()) {
        header.set(18, charset.clone());
    }
    let modern = modern_err(message.version());
    let mut msa = Segment {
        name: "MSA".into(),
        fields: Vec::new(),
    };
    msa.set(1, Field::text(code.code()));
    msa.set(2, Field::text(message.control_id().unwrap_or("")));
    if !modern && let Some(first) = errors.first() {
        msa.set(3, Field::text(&first.text));
    }
    let mut segments = vec![header, msa];
    for error in errors {
        let mut err = Segment {
            name: "ERR".into(),
            fields: Vec::new(),
        };
        let location: Vec<String> = match &error.location {
            Some((segment, sequence, field)) => {
                vec![segment.clone(), sequence.to_string(), field.to_string()]
            }
            None => Vec::new(),
        };
        let code = error.code.to_string();
        if modern {
            if !location.is_empty() {
                let parts: Vec<&str> = location.iter().map(String::as_str).collect();
                err.set(2, Field::components(&parts));
            }
            err.set(3, Field::components(&[&code, error.code_name(), "HL70357"]));
            err.set(4, Field::text(&error.severity.to_string()));
            err.set(8, Field::text(&error.text));
        } else {
            // ERR-1: segment^sequence^field^code&text&HL70357, the text in MSA-3.
            let mut components: Vec<crate::Component> = location
                .iter()
                .map(|part| crate::Component {
                    subcomponents: vec![part.clone()],
                })
                .collect();
            components.resize(
                3,
                crate::Component {
                    subcomponents: vec![String::new()],
                },
            );
            components.push(crate::Component {
                subcomponents: vec![code, error.code_name().into(), "HL70357".into()],
            });
            err.set(
                1,
                Field {
                    repetitions: vec![crate::Repetition { components }],
                },
            );
        }
        segments.push(err);
    }
    Message {
        delimiters: message.delimiters,
        charset: message.charset,
        segments,
    }
}
