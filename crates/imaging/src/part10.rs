//! Reading one DICOM instance as STOW-RS receives it (`application/dicom`: a PS3.10 file) into
//! what the archive keeps: the file to store, its identifying UIDs and its attributes in the
//! DICOM JSON model. A part without the 128-byte preamble, or without a file meta group at
//! all (a bare data set, as some systems write), is read too and stored as a proper PS3.10
//! re-encoding of the same data set (the data set's bytes are kept as they came).

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject, OpenFileOptions};
use serde_json::{Map, Value};

use crate::json;

/// An instance read and ready to store.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The PS3.10 file to store.
    pub file: Vec<u8>,
    pub transfer_syntax: String,
    pub sop_class: String,
    pub sop_instance: String,
    pub study: String,
    pub series: String,
    /// Its attributes in the DICOM JSON model, bulk data by reference.
    pub dataset: Map<String, Value>,
    /// What was changed to store it, for the sender (a data set re-encoded in its syntax).
    pub coerced: Option<String>,
}

/// Why an instance cannot be stored: a STOW-RS failure reason (PS3.18 table 10.5.3-2;
/// PS3.4 annex C) and a message for the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub code: u16,
    pub reason: String,
}

/// Failure: the data set cannot be parsed.
pub const CANNOT_UNDERSTAND: u16 = 0xC000;
/// Failure: the data set lacks what its SOP class requires (here: the identifying UIDs).
pub const DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
/// Failure: the instance could not be stored (storage or the record refused it).
pub const PROCESSING_FAILURE: u16 = 0x0110;
/// Warning: stored, with a change the sender should know of (here: an earlier instance
/// under the same SOP Instance UID was replaced).
pub const COERCION_OF_DATA_ELEMENTS: u16 = 0xB000;

fn refuse(code: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        code,
        reason: reason.into(),
    }
}

/// The transfer syntaxes a data set without a file meta group may be in, as its first bytes
/// tell: explicit VR little endian when a VR follows the first tag, explicit VR big endian
/// when the first group reads as big endian, implicit VR little endian otherwise.
fn bare_data_set_syntax(bytes: &[u8]) -> &'static str {
    let explicit_vr =
        bytes.len() >= 6 && bytes[4].is_ascii_uppercase() && bytes[5].is_ascii_uppercase();
    if bytes.len() >= 2 && bytes[0] == 0 && bytes[1] != 0 {
        "1.2.840.10008.1.2.2"
    } else if explicit_vr {
        "1.2.840.10008.1.2.1"
    } else {
        "1.2.840.10008.1.2"
    }
}

/// Reads one instance.
pub fn read(bytes: &[u8]) -> Result<Instance, Refusal> {
    if bytes.len() < 8 {
        return Err(refuse(
            CANNOT_UNDERSTAND,
            "the part is too short to be a DICOM instance",
        ));
    }
    let with_preamble = bytes.len() >= 132 && &bytes[128..132] == b"DICM";
    let meta_first = !with_preamble && bytes[0] == 0x02 && bytes[1] == 0x00;
    let file: Vec<u8> = if with_preamble {
        bytes.to_vec()
    } else if meta_first {
        // The file meta group without the preamble and its "DICM": put them in front.
        let mut file = Vec::with_capacity(bytes.len() + 132);
        file.extend_from_slice(&[0; 128]);
        file.extend_from_slice(b"DICM");
        file.extend_from_slice(bytes);
        file
    } else {
        // A bare data set: read it under a provisional meta group to learn its UIDs, then
        // give it the real one.
        let syntax = bare_data_set_syntax(bytes);
        let provisional = with_meta(bytes, syntax, "1.2", "1.2")?;
        crate::lengths::check(&provisional).map_err(|why| {
            refuse(
                CANNOT_UNDERSTAND,
                format!("the part is not a readable DICOM instance: {why}"),
            )
        })?;
        let object = parse(&provisional)?;
        let class = uid(&object, tags::SOP_CLASS_UID);
        let instance = uid(&object, tags::SOP_INSTANCE_UID);
        let (Some(class), Some(instance)) = (class, instance) else {
            return Err(refuse(
                DOES_NOT_MATCH_SOP_CLASS,
                "the data set has no file meta information and no SOP Class or SOP Instance UID",
            ));
        };
        with_meta(bytes, syntax, &class, &instance)?
    };
    if let Err(why) = crate::lengths::check(&file) {
        // A data set written in implicit VR under an explicit VR syntax (some writers do):
        // read as what it is and stored re-encoded in its syntax, with a warning.
        if let Some(file) = reencoded_implicit(&file) {
            let mut instance = read(&file)?;
            instance.coerced = Some(
                "the data set was written in implicit VR under an explicit VR transfer syntax; \
                 it is stored re-encoded in explicit VR"
                    .into(),
            );
            return Ok(instance);
        }
        return Err(refuse(
            CANNOT_UNDERSTAND,
            format!("the part is not a readable DICOM instance: {why}"),
        ));
    }
    let object = parse(&file)?;
    let transfer_syntax = object
        .meta()
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_owned();
    let dataset = json::dataset(&object);
    let required = |tag: Tag, name: &str| {
        json::text(&dataset, &json::tag_key(tag))
            .map(|v| v.trim_end_matches(['\0', ' ']).trim_start().to_owned())
            .filter(|v| valid_uid(v))
            .ok_or_else(|| {
            refuse(
                DOES_NOT_MATCH_SOP_CLASS,
                format!("the instance has no valid {name} (at most 64 letters, digits, dots or hyphens)"),
            )
        })
    };
    let sop_instance = required(tags::SOP_INSTANCE_UID, "SOP Instance UID")?;
    let sop_class = required(tags::SOP_CLASS_UID, "SOP Class UID")?;
    let study = required(tags::STUDY_INSTANCE_UID, "Study Instance UID")?;
    let series = required(tags::SERIES_INSTANCE_UID, "Series Instance UID")?;
    // A file meta group naming another SOP Instance UID than its data set (real files do):
    // the data set's is the instance's.
    Ok(Instance {
        file,
        transfer_syntax,
        sop_class,
        sop_instance,
        study,
        series,
        dataset,
        coerced: None,
    })
}

const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

/// `file` (a PS3.10 file whose data set does not read in its explicit VR syntax) re-encoded
/// in that syntax, when its data set reads as implicit VR little endian: its first element has
/// no VR where one belongs, and the whole data set passes the length walk read so.
fn reencoded_implicit(file: &[u8]) -> Option<Vec<u8>> {
    // The meta group's length is its first element's value: (0002,0000) UL 4.
    let header = file.get(132..144)?;
    if header[..4] != [0x02, 0x00, 0x00, 0x00] || &header[4..6] != b"UL" {
        return None;
    }
    let meta_end =
        144usize.checked_add(u32::from_le_bytes(header[8..12].try_into().ok()?) as usize)?;
    let data_set = file.get(meta_end..)?;
    let explicit =
        data_set.len() >= 6 && data_set[4].is_ascii_uppercase() && data_set[5].is_ascii_uppercase();
    let original = parse_meta_syntax(file)?;
    if explicit || original == IMPLICIT_VR_LITTLE_ENDIAN || original == EXPLICIT_VR_BIG_ENDIAN {
        return None;
    }
    let provisional = with_meta(data_set, IMPLICIT_VR_LITTLE_ENDIAN, "1.2", "1.2").ok()?;
    crate::lengths::check(&provisional).ok()?;
    let mut object = parse(&provisional).ok()?;
    let class = uid(&object, tags::SOP_CLASS_UID)?;
    let instance = uid(&object, tags::SOP_INSTANCE_UID)?;
    let meta = object.meta_mut();
    meta.transfer_syntax = original;
    meta.media_storage_sop_class_uid = class;
    meta.media_storage_sop_instance_uid = instance;
    meta.update_information_group_length();
    let mut out = Vec::with_capacity(file.len() + 1024);
    object.write_all(&mut out).ok()?;
    Some(out)
}

/// The transfer syntax a file's meta group names. The group is walked first: its reader
/// allocates each element's declared length before reading it (fuzz finding F12: 2.7 GB for a
/// 400-byte part).
fn parse_meta_syntax(file: &[u8]) -> Option<String> {
    crate::lengths::check_meta(file).ok()?;
    let meta = dicom_object::meta::FileMetaTable::from_reader(file.get(128..)?).ok()?;
    Some(
        meta.transfer_syntax()
            .trim_end_matches(['\0', ' '])
            .to_owned(),
    )
}

/// Parses a PS3.10 file (with its preamble). The reader must not panic on hostile input:
/// a panic inside it is caught and refused like any other unreadable part.
pub(crate) fn parse(file: &[u8]) -> Result<dicom_object::DefaultDicomObject, Refusal> {
    let parsed = std::panic::catch_unwind(|| {
        OpenFileOptions::new()
            .read_preamble(dicom_object::file::ReadPreamble::Always)
            .from_reader(file)
    });
    match parsed {
        Ok(Ok(object)) => Ok(object),
        Ok(Err(error)) => Err(refuse(
            CANNOT_UNDERSTAND,
            format!(
                "the part is not a readable DICOM instance: {}",
                error_chain(&error)
            ),
        )),
        Err(_) => Err(refuse(
            CANNOT_UNDERSTAND,
            "the part is not a readable DICOM instance",
        )),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `data_set` in `syntax`, behind a preamble and a file meta group naming `class` and
/// `instance`.
fn with_meta(
    data_set: &[u8],
    syntax: &str,
    class: &str,
    instance: &str,
) -> Result<Vec<u8>, Refusal> {
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(syntax)
        .media_storage_sop_class_uid(class)
        .media_storage_sop_instance_uid(instance)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name("MERIDIAN")
        .build()
        .map_err(|e| {
            refuse(
                CANNOT_UNDERSTAND,
                format!("no file meta information could be made: {e}"),
            )
        })?;
    let mut file = Vec::with_capacity(data_set.len() + 300);
    file.extend_from_slice(&[0; 128]);
    file.extend_from_slice(b"DICM");
    meta.write(&mut file).map_err(|e| {
        refuse(
            CANNOT_UNDERSTAND,
            format!("no file meta information could be made: {e}"),
        )
    })?;
    file.extend_from_slice(data_set);
    Ok(file)
}

/// The implementation class UID Meridian writes in the file meta groups it makes (a UID under
/// the UUID-derived root `2.25`).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.216154359312452931262542313411298316545";

/// A UID attribute's value, when it is a valid UID.
fn uid(object: &InMemDicomObject, tag: Tag) -> Option<String> {
    let value = object.get(tag)?.to_str().ok()?;
    let value = value.trim_end_matches(['\0', ' ']).trim_start();
    valid_uid(value).then(|| value.to_owned())
}

/// A UID the archive can keep and address: at most 64 characters that a URL path segment and
/// a FHIR `id` both take as they are (letters, digits, `.` and `-`). PS3.5 9.1 allows digits
/// and dots only; real systems send others (hexadecimal, leading zeros), and those are kept as
/// sent rather than refused.
pub fn valid_uid(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}
