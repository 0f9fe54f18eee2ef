//! Frames in their stored transfer syntax (WADO-RS `frames`, PS3.18 8.3.4.6): an
//! uncompressed frame is its slice of the pixel data; an encapsulated one is its fragment, or
//! its fragments as the basic offset table groups them (a single frame is all of them).

use dicom_core::value::Value as DicomValue;
use dicom_dictionary_std::tags;

use crate::ImagingError;
use crate::part10;

/// The bytes of frame `number` (from 1) of a stored file.
pub fn frame(file: &[u8], number: u32) -> Result<Vec<u8>, ImagingError> {
    frames(file, &[number]).map(|mut frames| frames.remove(0))
}

/// The bytes of each of frames `numbers` (from 1) of a stored file, the file read once.
pub fn frames(file: &[u8], numbers: &[u32]) -> Result<Vec<Vec<u8>>, ImagingError> {
    let object = part10::parse(file).map_err(|r| ImagingError::BadRequest(r.reason))?;
    numbers
        .iter()
        .map(|number| frame_of(&object, *number))
        .collect()
}

pub(crate) fn frame_of(
    object: &dicom_object::DefaultDicomObject,
    number: u32,
) -> Result<Vec<u8>, ImagingError> {
    let int = |tag| object.get(tag).and_then(|e| e.to_int::<u64>().ok());
    let frames = int(tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    if number == 0 || u64::from(number) > frames {
        return Err(ImagingError::NotFound(format!(
            "the instance has frames 1 to {frames}, not {number}"
        )));
    }
    let pixels = object
        .get(tags::PIXEL_DATA)
        .or_else(|| object.get(tags::FLOAT_PIXEL_DATA))
        .or_else(|| object.get(tags::DOUBLE_FLOAT_PIXEL_DATA))
        .ok_or_else(|| ImagingError::NotFound("the instance has no pixel data".into()))?;
    let index = (number - 1) as usize;
    match pixels.value() {
        DicomValue::PixelSequence(sequence) => {
            let fragments = sequence.fragments();
            let table = sequence.offset_table();
            if frames == 1 {
                return Ok(fragments.concat());
            }
            if fragments.len() as u64 == frames {
                return Ok(fragments[index].clone());
            }
            // Fragments grouped by the offset table: a frame's start is the byte offset of
            // its first fragment's item (counting each item's 8-byte header).
            if table.len() as u64 != frames {
                return Err(ImagingError::Unrenderable(
                    "the frames of its encapsulated pixel data cannot be told apart".into(),
                ));
            }
            let mut starts = Vec::with_capacity(fragments.len());
            let mut at = 0u64;
            for fragment in fragments {
                starts.push(at);
                at += 8 + fragment.len() as u64;
            }
            let begin = u64::from(table[index]);
            let end = table.get(index + 1).map_or(u64::MAX, |e| u64::from(*e));
            Ok(fragments
                .iter()
                .zip(&starts)
                .filter(|(_, start)| **start >= begin && **start < end)
                .flat_map(|(f, _)| f.iter().copied())
                .collect())
        }
        DicomValue::Primitive(value) => {
            let bytes = value.to_bytes();
            let rows = int(tags::ROWS).unwrap_or(0);
            let columns = int(tags::COLUMNS).unwrap_or(0);
            let samples = int(tags::SAMPLES_PER_PIXEL).unwrap_or(1);
            let bits = int(tags::BITS_ALLOCATED).unwrap_or(8);
            // The sizes are the file's word (Rows as UL 0xFFFFFFFF): checked (fuzz finding F15).
            let frame_bits = [columns, samples, bits]
                .into_iter()
                .try_fold(rows, u64::checked_mul)
                .filter(|&frame_bits| frame_bits > 0)
                .ok_or_else(|| {
                    ImagingError::Unrenderable(
                        "the instance's image has no size it can have".into(),
                    )
                })?;
            // 1-bit frames need not start on a byte: the bytes that hold the frame's bits.
            let bit = |frame: u64| frame_bits.saturating_mul(frame);
            let start = (bit(index as u64) / 8) as usize;
            let end = bit(index as u64 + 1).div_ceil(8) as usize;
            bytes
                .get(start..end.min(bytes.len()))
                .filter(|slice| !slice.is_empty())
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    ImagingError::NotFound(format!("frame {number} is not in the pixel data"))
                })
        }
        DicomValue::Sequence(_) => Err(ImagingError::Unrenderable(
            "the pixel data is a sequence".into(),
        )),
    }
}

/// The value of the bulk data element a `BulkDataURI` names (`<tag>[/<item>/<tag>...]`, as
/// `json` writes them): its bytes, little endian; top-level pixel data is its frames (each
/// in the stored syntax, as `frames` cuts them). Answers the parts with whether they are
/// encapsulated frames.
pub fn bulk(file: &[u8], path: &str) -> Result<(Vec<Vec<u8>>, bool), ImagingError> {
    let object = part10::parse(file).map_err(|r| ImagingError::BadRequest(r.reason))?;
    let not_found = || ImagingError::NotFound(format!("the instance has no bulk data {path}"));
    let steps: Vec<&str> = path.split('/').collect();
    if steps.len().is_multiple_of(2) || steps.len() > 2 * 32 + 1 {
        return Err(not_found());
    }
    let tag_of = |key: &str| {
        (key.len() == 8)
            .then(|| u32::from_str_radix(key, 16).ok())
            .flatten()
            .map(|t| dicom_core::Tag((t >> 16) as u16, t as u16))
            .ok_or_else(not_found)
    };
    let last = tag_of(steps[steps.len() - 1])?;
    if steps.len() == 1
        && [
            tags::PIXEL_DATA,
            tags::FLOAT_PIXEL_DATA,
            tags::DOUBLE_FLOAT_PIXEL_DATA,
        ]
        .contains(&last)
    {
        let frames = object
            .get(tags::NUMBER_OF_FRAMES)
            .and_then(|e| e.to_int::<u32>().ok())
            .unwrap_or(1)
            .max(1);
        let encapsulated = matches!(
            object.get(last).map(|e| e.value()),
            Some(DicomValue::PixelSequence(_))
        );
        let parts = (1..=frames)
            .map(|n| frame_of(&object, n))
            .collect::<Result<_, _>>()?;
        return Ok((parts, encapsulated));
    }
    // Down the sequences: tag, item, tag, item, ..., tag.
    let mut item: &dicom_object::InMemDicomObject = &object;
    for pair in steps[..steps.len() - 1].chunks(2) {
        let index: usize = pair[1].parse().map_err(|_| not_found())?;
        item = item
            .get(tag_of(pair[0])?)
            .and_then(|e| e.items())
            .and_then(|items| items.get(index))
            .ok_or_else(not_found)?;
    }
    match item.get(last).map(|e| e.value()) {
        Some(DicomValue::Primitive(value)) => Ok((vec![value.to_bytes().into_owned()], false)),
        Some(DicomValue::PixelSequence(sequence)) => {
            Ok((vec![sequence.fragments().concat()], true))
        }
        _ => Err(not_found()),
    }
}
