//! Reading and writing the HL7 v2 encoding ("ER7"): bytes to segments, fields, repetitions,
//! components and sub-components, and back.

use crate::{
    Charset, Component, Delimiters, Field, MAX_MESSAGE_BYTES, Message, ParseError, Repetition,
    Segment,
};

/// Batch and file envelopes around messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// FHS, when the input is a file.
    pub file_header: Option<Segment>,
    /// Each BHS, in order.
    pub batch_headers: Vec<Segment>,
    pub messages: Vec<Message>,
}

/// Reads one message (MSH first).
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    let (text, delimiters, charset) = decode(bytes)?;
    if !text.starts_with("MSH") {
        return Err(ParseError::NoHeader(text.chars().take(3).collect()));
    }
    let segments = segments(&text, &delimiters, charset)?;
    if let Some(envelope) = segments
        .iter()
        .find(|s| matches!(s.name.as_str(), "FHS" | "FTS" | "BHS" | "BTS"))
    {
        return Err(ParseError::Envelope(format!(
            "a {} segment inside a message (a batch or file is read as one)",
            envelope.name
        )));
    }
    if let Some(second) = segments.iter().skip(1).find(|s| s.name == "MSH") {
        return Err(ParseError::Envelope(format!(
            "a second {} segment: several messages are a batch",
            second.name
        )));
    }
    Ok(Message {
        delimiters,
        charset,
        segments,
    })
}

/// Reads a batch (BHS ... BTS), a file (FHS ... FTS) or bare messages. Headers and trailers
/// may be missing, as senders leave them out; a segment before the first MSH, a batch opened
/// inside an open one, a second FHS or anything after FTS is refused.
pub fn parse_batch(bytes: &[u8]) -> Result<Batch, ParseError> {
    let (text, delimiters, charset) = decode(bytes)?;
    let all = segments(&text, &delimiters, charset)?;
    let mut batch = Batch {
        file_header: None,
        batch_headers: Vec::new(),
        messages: Vec::new(),
    };
    let mut file_closed = false;
    let mut batch_open = false;
    let mut current: Option<Vec<Segment>> = None;
    let finish = |current: &mut Option<Vec<Segment>>, messages: &mut Vec<Message>| {
        if let Some(segments) = current.take() {
            messages.push(Message {
                delimiters,
                charset,
                segments,
            });
        }
    };
    for (index, segment) in all.into_iter().enumerate() {
        if file_closed {
            return Err(ParseError::Envelope(format!(
                "segment {} ({}) after the file's FTS",
                index + 1,
                segment.name
            )));
        }
        match segment.name.as_str() {
            "FHS" => {
                if index > 0 {
                    return Err(ParseError::Envelope(
                        "FHS is not the first segment (a file inside a file?)".into(),
                    ));
                }
                batch.file_header = Some(segment);
            }
            // The trailers, and the headers of a file with one batch, may be left out (as
            // senders do); what cannot be is a batch opened inside an open batch.
            "FTS" => {
                finish(&mut current, &mut batch.messages);
                batch_open = false;
                file_closed = true;
            }
            "BHS" => {
                if batch_open {
                    return Err(ParseError::Envelope(
                        "BHS inside an open batch (its BTS is missing)".into(),
                    ));
                }
                finish(&mut current, &mut batch.messages);
                batch_open = true;
                batch.batch_headers.push(segment);
            }
            "BTS" => {
                finish(&mut current, &mut batch.messages);
                batch_open = false;
            }
            "MSH" => {
                // One input, one character set: every message declares the one it was read in.
                let declared = segment.value(18, 1).unwrap_or("");
                if charset_named(declared)? != charset {
                    return Err(ParseError::Envelope(format!(
                        "segment {} (MSH) declares the character set '{declared}', not the one the input is written in",
                        index + 1
                    )));
                }
                finish(&mut current, &mut batch.messages);
                current = Some(vec![segment]);
            }
            _ => match &mut current {
                Some(segments) => segments.push(segment),
                None => {
                    return Err(ParseError::Envelope(format!(
                        "segment {} ({}) belongs to no message (no MSH before it)",
                        index + 1,
                        segment.name
                    )));
                }
            },
        }
    }
    finish(&mut current, &mut batch.messages);
    if batch.messages.is_empty() && batch.file_header.is_none() && batch.batch_headers.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(batch)
}

/// The text of the input with its delimiters and character set, from the first header
/// (MSH, BHS or FHS; for the character set, MSH-18 of the first MSH).
fn decode(bytes: &[u8]) -> Result<(String, Delimiters, Charset), ParseError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge(MAX_MESSAGE_BYTES));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(ParseError::Empty)?;
    let bytes = &bytes[start..];
    let name = &bytes[..bytes.len().min(3)];
    if !matches!(name, b"MSH" | b"BHS" | b"FHS") {
        return Err(ParseError::NoHeader(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    let delimiters = delimiters_of(bytes)?;
    let charset = charset_of(bytes, &delimiters)?;
    let text = match charset {
        Charset::Utf8 => match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            // Declared (or taken for) UTF-8 but not: systems that declare nothing and write
            // GB18030 are common; a byte sequence that is neither is refused.
            Err(_) => decode_gb18030(bytes).ok_or(ParseError::Encoding("UTF-8"))?,
        },
        Charset::Gb18030 => decode_gb18030(bytes).ok_or(ParseError::Encoding("GB18030"))?,
    };
    Ok((text, delimiters, charset))
}

fn decode_gb18030(bytes: &[u8]) -> Option<String> {
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    (!had_errors).then(|| text.into_owned())
}

/// MSH-1 (the byte after the segment name) and MSH-2 (up to the next field separator).
fn delimiters_of(bytes: &[u8]) -> Result<Delimiters, ParseError> {
    let field = *bytes.get(3).ok_or(ParseError::BadDelimiters)?;
    let usable = |b: u8| b.is_ascii_graphic() && !b.is_ascii_alphanumeric();
    if !usable(field) {
        return Err(ParseError::BadDelimiters);
    }
    let rest = &bytes[4..];
    let end = rest
        .iter()
        .position(|b| *b == field || *b == b'\r' || *b == b'\n')
        .unwrap_or(rest.len());
    let encoding = &rest[..end];
    if !(4..=5).contains(&encoding.len()) || !encoding.iter().all(|b| usable(*b)) {
        return Err(ParseError::BadDelimiters);
    }
    let mut seen = vec![field];
    for b in encoding {
        if seen.contains(b) {
            return Err(ParseError::BadDelimiters);
        }
        seen.push(*b);
    }
    Ok(Delimiters {
        field: field as char,
        component: encoding[0] as char,
        repetition: encoding[1] as char,
        escape: Some(encoding[2] as char),
        subcomponent: encoding[3] as char,
        truncation: encoding.get(4).map(|b| *b as char),
    })
}

/// MSH-18's first component (of the first MSH), as a character set.
fn charset_of(bytes: &[u8], delimiters: &Delimiters) -> Result<Charset, ParseError> {
    let msh = bytes
        .split(|b| *b == b'\r' || *b == b'\n')
        .find(|line| line.starts_with(b"MSH"));
    let Some(msh) = msh else {
        return Ok(Charset::Utf8);
    };
    let fields: Vec<&[u8]> = msh.split(|b| *b == delimiters.field as u8).collect();
    // fields[0] is "MSH", fields[1] is MSH-2: MSH-n is fields[n - 1].
    let Some(declared) = fields.get(17) else {
        return Ok(Charset::Utf8);
    };
    let first = declared
        .split(|b| *b == delimiters.repetition as u8)
        .next()
        .unwrap_or_default();
    let first = first
        .split(|b| *b == delimiters.component as u8)
        .next()
        .unwrap_or_default();
    // Its first sub-component, as `Segment::value` reads it.
    let first = first
        .split(|b| *b == delimiters.subcomponent as u8)
        .next()
        .unwrap_or_default();
    charset_named(&String::from_utf8_lossy(first))
}

/// The character set an MSH-18 value names.
fn charset_named(declared: &str) -> Result<Charset, ParseError> {
    let name: String = declared
        .trim()
        .to_ascii_uppercase()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '_')
        .collect();
    match name.as_str() {
        "" | "ASCII" | "UNICODEUTF8" | "UTF8" | "UNICODE" => Ok(Charset::Utf8),
        "GB18030" | "GB180302000" | "GB180302005" | "GBK" | "GB2312" => Ok(Charset::Gb18030),
        _ => Err(ParseError::Charset(declared.trim().to_owned())),
    }
}

/// The segments of decoded text.
fn segments(
    text: &str,
    delimiters: &Delimiters,
    charset: Charset,
) -> Result<Vec<Segment>, ParseError> {
    let mut segments = Vec::new();
    for (index, line) in text
        .split(['\r', '\n'])
        .filter(|l| !l.trim().is_empty())
        .enumerate()
    {
        segments.push(segment(line, index, delimiters, charset)?);
    }
    if segments.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(segments)
}

fn segment(
    line: &str,
    index: usize,
    delimiters: &Delimiters,
    charset: Charset,
) -> Result<Segment, ParseError> {
    let (name, rest) = match line.split_once(delimiters.field) {
        Some((name, rest)) => (name, Some(rest)),
        None => (line, None),
    };
    if name.len() != 3 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ParseError::SegmentName {
            index: index + 1,
            name: name.chars().take(16).collect(),
        });
    }
    let mut fields = Vec::new();
    let header = matches!(name, "MSH" | "BHS" | "FHS");
    let mut rest = rest.unwrap_or("");
    if header {
        // Field 1 is the field separator, field 2 the encoding characters, as written.
        fields.push(Field::text(&delimiters.field.to_string()));
        let (encoding, after) = match rest.split_once(delimiters.field) {
            Some((encoding, after)) => (encoding, Some(after)),
            None => (rest, None),
        };
        // Every header of a batch declares the delimiters its first one did.
        if encoding != delimiters.encoding_characters() {
            return Err(ParseError::Envelope(format!(
                "segment {} ({name}) declares the encoding characters '{}', not the '{}' the input started with",
                index + 1,
                encoding.chars().take(8).collect::<String>(),
                delimiters.encoding_characters()
            )));
        }
        fields.push(Field::text(encoding));
        match after {
            Some(after) => rest = after,
            None => {
                return Ok(Segment {
                    name: name.to_owned(),
                    fields,
                });
            }
        }
    } else if line.len() == 3 {
        return Ok(Segment {
            name: name.to_owned(),
            fields,
        });
    }
    for text in rest.split(delimiters.field) {
        fields.push(field(text, delimiters, charset));
    }
    Ok(Segment {
        name: name.to_owned(),
        fields,
    })
}

fn field(text: &str, delimiters: &Delimiters, charset: Charset) -> Field {
    if text.is_empty() {
        return Field::default();
    }
    let field = Field {
        repetitions: text
            .split(delimiters.repetition)
            .map(|repetition| Repetition {
                components: repetition
                    .split(delimiters.component)
                    .map(|component| Component {
                        subcomponents: component
                            .split(delimiters.subcomponent)
                            .map(|value| unescape(value, delimiters, charset))
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    };
    // One value that its escapes made empty (`\H\`) is an empty field, as it is written back.
    match field.repetitions.as_slice() {
        [only] if only.components.len() == 1 && only.components[0].subcomponents == [""] => {
            Field::default()
        }
        _ => field,
    }
}

/// Resolves escape sequences: the delimiters (`\F\ \S\ \T\ \R\ \E\`, `\P\` for truncation),
/// hexadecimal data (`\Xhh..\`, in the message's character set) and line breaks (`\.br\`,
/// `\.sp\`); highlighting and character-set switches are dropped; anything else, and an escape
/// that is never closed, is kept as written.
fn unescape(value: &str, delimiters: &Delimiters, charset: Charset) -> String {
    let Some(escape) = delimiters.escape else {
        return value.to_owned();
    };
    if !value.contains(escape) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find(escape) {
        out.push_str(&rest[..at]);
        let after = &rest[at + escape.len_utf8()..];
        let Some(end) = after.find(escape) else {
            out.push_str(&rest[at..]);
            return out;
        };
        let sequence = &after[..end];
        match sequence {
            "F" => out.push(delimiters.field),
            "S" => out.push(delimiters.component),
            "T" => out.push(delimiters.subcomponent),
            "R" => out.push(delimiters.repetition),
            "E" => out.push(escape),
            "P" if delimiters.truncation.is_some() => {
                out.push(delimiters.truncation.unwrap_or('#'))
            }
            ".br" | ".sp" => out.push('\n'),
            "H" | "N" => {}
            _ if sequence.starts_with('X') && sequence.len() > 1 => {
                match hex_text(&sequence[1..], charset) {
                    Some(text) => out.push_str(&text),
                    None => {
                        out.push(escape);
                        out.push_str(sequence);
                        out.push(escape);
                    }
                }
            }
            _ if sequence.starts_with('C')
                || sequence.starts_with('M')
                || sequence.starts_with('Z')
                || sequence.starts_with('.') => {}
            _ => {
                out.push(escape);
                out.push_str(sequence);
                out.push(escape);
            }
        }
        rest = &after[end + escape.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// `\Xhhhh\` data as text in the message's character set.
fn hex_text(hex: &str, charset: Charset) -> Option<String> {
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    match charset {
        Charset::Utf8 => String::from_utf8(bytes).ok(),
        Charset::Gb18030 => decode_gb18030(&bytes),
    }
}

/// Escapes a value for writing with `delimiters`.
fn escape(value: &str, delimiters: &Delimiters) -> String {
    let Some(escape) = delimiters.escape else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let code = if c == escape {
            Some("E")
        } else if c == delimiters.field {
            Some("F")
        } else if c == delimiters.component {
            Some("S")
        } else if c == delimiters.subcomponent {
            Some("T")
        } else if c == delimiters.repetition {
            Some("R")
        } else if Some(c) == delimiters.truncation {
            Some("P")
        } else if c == '\n' {
            Some(".br")
        } else if c == '\r' {
            Some("X0D")
        } else {
            None
        };
        match code {
            Some(code) => {
                out.push(escape);
                out.push_str(code);
                out.push(escape);
            }
            None => out.push(c),
        }
    }
    out
}

pub(crate) fn encode(message: &Message) -> String {
    let d = &message.delimiters;
    let mut out = String::new();
    for segment in &message.segments {
        out.push_str(&segment.name);
        let header = matches!(segment.name.as_str(), "MSH" | "BHS" | "FHS");
        for (index, field) in segment.fields.iter().enumerate() {
            // A header's first two fields are written as they were read (or made).
            if header && index == 0 {
                out.push(d.field);
                continue;
            }
            if header && index == 1 {
                let raw = field
                    .component(1)
                    .map_or_else(|| d.encoding_characters(), str::to_owned);
                out.push_str(&raw);
                continue;
            }
            out.push(d.field);
            for (r, repetition) in field.repetitions.iter().enumerate() {
                if r > 0 {
                    out.push(d.repetition);
                }
                for (c, component) in repetition.components.iter().enumerate() {
                    if c > 0 {
                        out.push(d.component);
                    }
                    for (s, sub) in component.subcomponents.iter().enumerate() {
                        if s > 0 {
                            out.push(d.subcomponent);
                        }
                        out.push_str(&escape(sub, d));
                    }
                }
            }
        }
        out.push('\r');
    }
    out
}
