//! A walk over a PS3.10 file's element headers before it is parsed, checking that every
//! declared length fits in the bytes that follow it. The reader allocates an element's
//! declared length before reading it: without this walk a 40-byte part claiming a 4 GiB
//! value would make the server allocate 4 GiB. Sequences are followed to any depth up to
//! [`MAX_DEPTH`]; a data set compressed with deflate is bounded by its own size limit instead.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

/// Sequences nested deeper than this are refused.
pub const MAX_DEPTH: u32 = 32;

const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Checks the file (preamble and "DICM" included); answers why it cannot be read.
pub fn check(file: &[u8]) -> Result<(), String> {
    let mut walker = Walker {
        data: file,
        pos: 132,
        explicit: true,
        big: false,
    };
    // The file meta group: explicit VR little endian, group 0002, then the data set in the
    // syntax the meta group names.
    let syntax = walker.meta_group()?;
    match syntax.as_str() {
        // Deflated: the data set is walked inflated (explicit VR little endian), inflated at
        // most to a bound, so that neither the walk nor the reader inflates without end.
        "1.2.840.10008.1.2.1.99" => {
            let inflated = inflate(&file[walker.pos..])?;
            let mut inner = Walker {
                data: &inflated,
                pos: 0,
                explicit: true,
                big: false,
            };
            return inner.elements(None, 0);
        }
        "1.2.840.10008.1.2" => walker.explicit = false,
        "1.2.840.10008.1.2.2" => walker.big = true,
        _ => {}
    }
    walker.elements(None, 0)
}

/// Checks the file meta group alone, for what reads only the meta group (dicom-object's
/// `FileMetaTable`, which also allocates an element's declared length before reading it:
/// fuzz finding F12).
pub fn check_meta(file: &[u8]) -> Result<(), String> {
    let mut walker = Walker {
        data: file,
        pos: 132,
        explicit: true,
        big: false,
    };
    walker.meta_group().map(|_| ())
}

/// An element header: tag (group, element), VR when known, declared length.
type Header = ((u16, u16), Option<VR>, u32);

/// A deflated data set inflates to at most this many bytes.
pub const MAX_INFLATED: u64 = 1 << 29;

fn inflate(deflated: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut inflated = Vec::new();
    flate2::read::DeflateDecoder::new(deflated)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| format!("the deflated data set cannot be inflated: {e}"))?;
    if inflated.len() as u64 > MAX_INFLATED {
        return Err(format!(
            "the deflated data set inflates beyond {MAX_INFLATED} bytes"
        ));
    }
    Ok(inflated)
}

struct Walker<'a> {
    data: &'a [u8],
    pos: usize,
    explicit: bool,
    big: bool,
}

impl Walker<'_> {
    /// Walks the file meta group (group 0002, explicit VR little endian) from `pos`; answers
    /// the transfer syntax it names.
    fn meta_group(&mut self) -> Result<String, String> {
        let mut syntax = String::new();
        let mut group_end = None;
        while self.pos + 4 <= self.data.len() && self.peek_group() == 0x0002 {
            let (tag, _, length) = self.header()?;
            self.fits(length)?;
            if tag == (0x0002, 0x0000) && length == 4 {
                group_end = Some(self.pos + 4 + self.u32_at(self.pos) as usize);
            }
            if tag == (0x0002, 0x0010) {
                syntax = String::from_utf8_lossy(&self.data[self.pos..self.pos + length as usize])
                    .trim_end_matches(['\0', ' '])
                    .to_owned();
            }
            self.pos += length as usize;
        }
        // The reader starts the data set where the group length says the meta group ends: a
        // length that says otherwise would have it read other bytes than these (fuzz finding
        // F11).
        if let Some(end) = group_end
            && end != self.pos
        {
            return Err(format!(
                "the file meta group's length says it ends at byte {end}, its elements end at byte {}",
                self.pos
            ));
        }
        Ok(syntax)
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = [self.data[at], self.data[at + 1]];
        if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = [
            self.data[at],
            self.data[at + 1],
            self.data[at + 2],
            self.data[at + 3],
        ];
        if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn peek_group(&self) -> u16 {
        u16::from_le_bytes([self.data[self.pos], self.data[self.pos + 1]])
    }

    fn need(&self, bytes: usize) -> Result<(), String> {
        if self.remaining() < bytes {
            return Err(format!(
                "the data ends inside an element header at byte {}",
                self.pos
            ));
        }
        Ok(())
    }

    fn fits(&self, length: u32) -> Result<(), String> {
        if length != UNDEFINED && length as usize > self.remaining() {
            return Err(format!(
                "an element at byte {} declares {length} bytes but only {} follow",
                self.pos,
                self.remaining()
            ));
        }
        Ok(())
    }

    /// Reads an element header: its tag, its VR (explicit, or the dictionary's), its length.
    fn header(&mut self) -> Result<Header, String> {
        self.need(8)?;
        let tag = (self.u16_at(self.pos), self.u16_at(self.pos + 2));
        if tag.0 == 0xFFFE || !self.explicit {
            let length = self.u32_at(self.pos + 4);
            self.pos += 8;
            let vr = if tag.0 == 0xFFFE {
                None
            } else {
                dictionary_vr(tag)
            };
            return Ok((tag, vr, length));
        }
        let vr_bytes = [self.data[self.pos + 4], self.data[self.pos + 5]];
        let vr = VR::from_binary(vr_bytes);
        if vr.is_none() && !vr_bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(format!(
                "the element at byte {} has no value representation, as its transfer syntax (explicit VR) requires: is the data set written with implicit VR under an explicit VR syntax?",
                self.pos
            ));
        }
        // A VR the reader does not know it reads as UN, with the long length form (PS3.5
        // 7.1.2 has future VRs take it): so does the walk (fuzz finding F9).
        let vr = vr.or(Some(VR::UN));
        let long = matches!(
            vr,
            Some(
                VR::OB
                    | VR::OD
                    | VR::OF
                    | VR::OL
                    | VR::OV
                    | VR::OW
                    | VR::SQ
                    | VR::UC
                    | VR::UR
                    | VR::UT
                    | VR::UN
                    | VR::SV
                    | VR::UV
            )
        );
        if long {
            self.need(12)?;
            let length = self.u32_at(self.pos + 8);
            self.pos += 12;
            Ok((tag, vr, length))
        } else {
            let length = u32::from(self.u16_at(self.pos + 6));
            self.pos += 8;
            Ok((tag, vr, length))
        }
    }

    /// The elements of a data set or item: up to `end`, or to an item delimiter when `end`
    /// is none (the data set's own end at depth 0).
    fn elements(&mut self, end: Option<usize>, depth: u32) -> Result<(), String> {
        loop {
            match end {
                Some(end) if self.pos >= end => return Ok(()),
                None if self.remaining() == 0 && depth == 0 => return Ok(()),
                _ => {}
            }
            let (tag, vr, length) = self.header()?;
            if tag == ITEM_END && end.is_none() && depth > 0 {
                return Ok(());
            }
            if tag.0 == 0xFFFE {
                // A stray delimiter at the data set's level (some writers leave one after a
                // sequence): its length must still fit.
                self.fits(length)?;
                if length != UNDEFINED {
                    self.pos += length as usize;
                }
                continue;
            }
            self.fits(length)?;
            let sequence = vr == Some(VR::SQ) || (length == UNDEFINED && tag != (0x7FE0, 0x0010));
            if length == UNDEFINED {
                if vr == Some(VR::UN) {
                    // A sequence sent as UN of undefined length: its items are implicit VR
                    // (PS3.5 6.2.2), which the reader does not follow; read as explicit they
                    // make it allocate whatever their bytes say. Refused here, before it.
                    return Err(format!(
                        "the element ({:04X},{:04X}) at byte {} is an undefined-length value of unknown VR (a sequence sent as UN), which is not supported",
                        tag.0,
                        tag.1,
                        self.pos - 12
                    ));
                }
                if sequence {
                    self.items(None, depth + 1)?;
                } else {
                    self.fragments()?;
                }
            } else if sequence && length > 0 {
                let end = self.pos + length as usize;
                self.items(Some(end), depth + 1)?;
                self.pos = end;
            } else {
                self.pos += length as usize;
            }
        }
    }

    fn items(&mut self, end: Option<usize>, depth: u32) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("sequences are nested more than {MAX_DEPTH} deep"));
        }
        loop {
            if let Some(end) = end
                && self.pos >= end
            {
                return Ok(());
            }
            self.need(8)?;
            let tag = (self.u16_at(self.pos), self.u16_at(self.pos + 2));
            let length = self.u32_at(self.pos + 4);
            self.pos += 8;
            match tag {
                SEQUENCE_END => return Ok(()),
                ITEM if length == UNDEFINED => self.elements(None, depth)?,
                ITEM => {
                    self.fits(length)?;
                    let item_end = self.pos + length as usize;
                    self.elements(Some(item_end), depth)?;
                    self.pos = item_end;
                }
                _ => {
                    return Err(format!(
                        "a sequence holds ({:04X},{:04X}) at byte {} where an item belongs",
                        tag.0,
                        tag.1,
                        self.pos - 8
                    ));
                }
            }
        }
    }

    /// Encapsulated pixel data: items of defined length up to the sequence delimiter.
    fn fragments(&mut self) -> Result<(), String> {
        loop {
            self.need(8)?;
            let tag = (self.u16_at(self.pos), self.u16_at(self.pos + 2));
            let length = self.u32_at(self.pos + 4);
            self.pos += 8;
            match tag {
                SEQUENCE_END => return Ok(()),
                ITEM if length != UNDEFINED => {
                    self.fits(length)?;
                    self.pos += length as usize;
                }
                _ => {
                    return Err(format!(
                        "encapsulated pixel data holds ({:04X},{:04X}) at byte {} where a fragment belongs",
                        tag.0,
                        tag.1,
                        self.pos - 8
                    ));
                }
            }
        }
    }
}

/// The VR the standard dictionary gives a tag (implicit VR data sets carry none).
fn dictionary_vr(tag: (u16, u16)) -> Option<VR> {
    match StandardDataDictionary.by_tag(Tag(tag.0, tag.1))?.vr() {
        VirtualVr::Exact(vr) => Some(vr),
        _ => None,
    }
}
