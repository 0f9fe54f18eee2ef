//! The DICOM JSON model (PS3.18 Annex F) of a data set: every attribute by its tag, with its VR
//! and values; person names split into their alphabetic, ideographic and phonetic groups;
//! numbers as JSON numbers; large binary values (pixel data, waveforms, LUTs) left in the
//! stored instance and named by a `BulkDataURI` relative to the instance
//! (`bulkdata/<tag>[/<item>/<tag>...]`), which the edge completes with its own base URL.

use base64::Engine;
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value as DicomValue};
use dicom_core::{Tag, VR};
use dicom_object::InMemDicomObject;
use serde_json::{Map, Value, json};

/// Binary values up to this size are written inline (base64); larger ones by reference.
const INLINE_BINARY_MAX: usize = 256;

/// The prefix of every bulk data reference this module writes.
pub const BULK_PREFIX: &str = "bulkdata/";

/// Pixel data (of any kind) and waveform samples are always by reference, however small:
/// viewers fetch them as bulk data or frames.
fn always_bulk(uri: &str) -> bool {
    ["7FE00008", "7FE00009", "7FE00010", "54001010"]
        .iter()
        .any(|tag| uri.ends_with(tag))
}

/// The DICOM JSON object of `object`'s attributes (group 0002, the file meta, excluded).
pub fn dataset(object: &InMemDicomObject) -> Map<String, Value> {
    let mut out = Map::new();
    write_dataset(object, BULK_PREFIX, &mut out);
    out
}

fn write_dataset(object: &InMemDicomObject, path: &str, out: &mut Map<String, Value>) {
    for element in object.iter() {
        let tag = element.tag();
        if tag.group() == 0x0002 || tag.element() == 0x0000 {
            continue;
        }
        let key = tag_key(tag);
        let vr = element.vr();
        let mut attribute = Map::new();
        attribute.insert("vr".into(), Value::String(vr.to_string().to_owned()));
        match element.value() {
            DicomValue::Sequence(sequence) => {
                let items: Vec<Value> = sequence
                    .items()
                    .iter()
                    .enumerate()
                    .map(|(n, item)| {
                        let mut nested = Map::new();
                        write_dataset(item, &format!("{path}{key}/{n}/"), &mut nested);
                        Value::Object(nested)
                    })
                    .collect();
                if !items.is_empty() {
                    attribute.insert("Value".into(), Value::Array(items));
                }
            }
            DicomValue::PixelSequence(_) => {
                attribute.insert("BulkDataURI".into(), Value::String(format!("{path}{key}")));
            }
            DicomValue::Primitive(value) => {
                let uri = format!("{path}{key}");
                match known_vr_of_unknown(tag, vr, value) {
                    // An element sent as UN whose VR the dictionary knows (explicit VR
                    // writers that do not know the attribute): written as what it is.
                    Some((known, value)) => {
                        attribute.insert("vr".into(), Value::String(known.to_string().to_owned()));
                        write_primitive(known, &value, &uri, &mut attribute);
                    }
                    None => write_primitive(vr, value, &uri, &mut attribute),
                }
            }
        }
        out.insert(key, Value::Object(attribute));
    }
}

/// The dictionary's VR and the value read as it, for a UN element of a standard attribute
/// whose VR is text or a binary number (the bytes are little endian: explicit VR little
/// endian is the only syntax that writes UN with a known VR in practice).
fn known_vr_of_unknown(tag: Tag, vr: VR, value: &PrimitiveValue) -> Option<(VR, PrimitiveValue)> {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
    if vr != VR::UN || !tag.group().is_multiple_of(2) {
        return None;
    }
    let VirtualVr::Exact(known) = dicom_dictionary_std::StandardDataDictionary
        .by_tag(tag)?
        .vr()
    else {
        return None;
    };
    let bytes = value.to_bytes();
    let numbers = |size: usize| bytes.len().is_multiple_of(size) && !bytes.is_empty();
    let value = match known {
        VR::AE
        | VR::AS
        | VR::CS
        | VR::DA
        | VR::DS
        | VR::DT
        | VR::IS
        | VR::LO
        | VR::LT
        | VR::PN
        | VR::SH
        | VR::ST
        | VR::TM
        | VR::UC
        | VR::UI
        | VR::UR
        | VR::UT => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            PrimitiveValue::Strs(text.split('\\').map(str::to_owned).collect())
        }
        VR::US if numbers(2) => PrimitiveValue::U16(
            bytes
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        VR::SS if numbers(2) => PrimitiveValue::I16(
            bytes
                .chunks(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        VR::UL if numbers(4) => PrimitiveValue::U32(
            bytes
                .chunks(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        VR::SL if numbers(4) => PrimitiveValue::I32(
            bytes
                .chunks(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        VR::FL if numbers(4) => PrimitiveValue::F32(
            bytes
                .chunks(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        VR::FD if numbers(8) => PrimitiveValue::F64(
            bytes
                .chunks(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        _ => return None,
    };
    Some((known, value))
}

fn write_primitive(vr: VR, value: &PrimitiveValue, uri: &str, out: &mut Map<String, Value>) {
    if matches!(value, PrimitiveValue::Empty) {
        return;
    }
    match vr {
        VR::OB | VR::OW | VR::OD | VR::OF | VR::OL | VR::OV | VR::UN => {
            let bytes = value.to_bytes();
            if bytes.len() > INLINE_BINARY_MAX || always_bulk(uri) {
                out.insert("BulkDataURI".into(), Value::String(uri.to_owned()));
            } else {
                out.insert(
                    "InlineBinary".into(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes)),
                );
            }
        }
        VR::PN => {
            let names: Vec<Value> = strings(value)
                .into_iter()
                .map(|name| person_name(&name))
                .collect();
            // An empty name is written as an empty object; a value of empty names is none.
            if names
                .iter()
                .any(|n| n.as_object().is_some_and(|o| !o.is_empty()))
            {
                out.insert("Value".into(), Value::Array(names));
            }
        }
        VR::AT => {
            if let PrimitiveValue::Tags(tags) = value {
                let tags: Vec<Value> = tags.iter().map(|t| Value::String(tag_key(*t))).collect();
                out.insert("Value".into(), Value::Array(tags));
            }
        }
        VR::IS | VR::DS => {
            let numbers: Vec<Value> = strings(value)
                .into_iter()
                .map(|text| number_of_text(&text, vr == VR::IS))
                .collect();
            if !numbers.is_empty() {
                out.insert("Value".into(), Value::Array(numbers));
            }
        }
        VR::US | VR::SS | VR::UL | VR::SL | VR::UV | VR::SV | VR::FL | VR::FD => {
            out.insert("Value".into(), Value::Array(numbers(value)));
        }
        VR::SQ => {}
        _ => {
            let texts: Vec<Value> = strings(value)
                .into_iter()
                .map(|text| {
                    if text.is_empty() {
                        Value::Null
                    } else {
                        Value::String(text)
                    }
                })
                .collect();
            if !texts.is_empty() && texts.iter().any(|t| !t.is_null()) {
                out.insert("Value".into(), Value::Array(texts));
            }
        }
    }
}

/// The values of a text element, each without its padding.
fn strings(value: &PrimitiveValue) -> Vec<String> {
    let values: Vec<String> = match value {
        PrimitiveValue::Str(text) => text.split('\\').map(str::to_owned).collect(),
        PrimitiveValue::Strs(texts) => texts
            .iter()
            .flat_map(|t| t.split('\\').map(str::to_owned).collect::<Vec<_>>())
            .collect(),
        other => other.to_multi_str().into_owned(),
    };
    values
        .into_iter()
        .map(|v| {
            v.trim_end_matches([' ', '\0'])
                .trim_start_matches(' ')
                .to_owned()
        })
        .collect()
}

/// A number written as text (IS, DS) as a JSON number; text that is no number stays text,
/// as it was sent (the model has no other place for it).
fn number_of_text(text: &str, integer: bool) -> Value {
    let text = text.trim();
    if text.is_empty() {
        return Value::Null;
    }
    if integer && let Ok(n) = text.parse::<i64>() {
        return json!(n);
    }
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                json!(n as i64)
            } else {
                json!(n)
            }
        }
        _ => Value::String(text.to_owned()),
    }
}

fn numbers(value: &PrimitiveValue) -> Vec<Value> {
    match value {
        PrimitiveValue::U8(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::I16(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::U16(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::I32(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::U32(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::I64(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::U64(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::F32(v) => v.iter().map(|n| float(f64::from(*n))).collect(),
        PrimitiveValue::F64(v) => v.iter().map(|n| float(*n)).collect(),
        other => strings(other)
            .into_iter()
            .map(|t| number_of_text(&t, false))
            .collect(),
    }
}

/// A float as JSON: NaN and the infinities have no JSON number, so they are null.
fn float(n: f64) -> Value {
    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// A person name's component groups (`alphabetic=ideographic=phonetic`).
pub fn person_name(name: &str) -> Value {
    let mut out = Map::new();
    for (group, key) in name
        .split('=')
        .zip(["Alphabetic", "Ideographic", "Phonetic"])
    {
        let group = group.trim_end_matches([' ', '^']);
        if !group.is_empty() {
            out.insert(key.into(), Value::String(group.to_owned()));
        }
    }
    Value::Object(out)
}

/// `GGGGEEEE`, upper-case hexadecimal: a tag as the model writes it.
pub fn tag_key(tag: Tag) -> String {
    format!("{:04X}{:04X}", tag.group(), tag.element())
}

/// The first value of attribute `key` as text (a person name's alphabetic group, then its
/// ideographic one), or `None`.
pub fn text(dataset: &Map<String, Value>, key: &str) -> Option<String> {
    let value = dataset.get(key)?.get("Value")?.get(0)?;
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(name) => name
            .get("Alphabetic")
            .or_else(|| name.get("Ideographic"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// Every value of attribute `key`, as text (person names as written, with their groups).
pub fn texts(dataset: &Map<String, Value>, key: &str) -> Vec<String> {
    let Some(values) = dataset
        .get(key)
        .and_then(|a| a.get("Value"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    values
        .iter()
        .filter_map(|value| match value {
            Value::String(text) => Some(text.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Object(name) => Some(
                ["Alphabetic", "Ideographic", "Phonetic"]
                    .iter()
                    .filter_map(|k| name.get(*k).and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("="),
            ),
            _ => None,
        })
        .collect()
}
