//! Decoder for DCT-based sequential JPEG, Huffman coded (ITU-T T.81 | ISO/IEC 10918-1):
//! the baseline process (SOF0, 8-bit) and the extended sequential process (SOF1, 8- or
//! 12-bit), 1 to 4 components, interleaved and non-interleaved scans, restart intervals.
//! This is what DICOM transfer syntaxes 1.2.840.10008.1.2.4.50 ("JPEG Baseline, Process 1")
//! and 1.2.840.10008.1.2.4.51 ("JPEG Extended, Process 2 & 4") carry.
//!
//! Progressive, lossless, hierarchical and arithmetic-coded streams are refused with an
//! [`Error`], as are a frame height defined by DNL and entropy-coded data that ends early.
//! Samples are returned as coded, without colour conversion; subsampled components are
//! upsampled to full resolution (triangle filter for 2:1 ratios, else replication). The IDCT
//! is computed in floating point from its definition (A.3.3).
//!
//! Tolerated deviations from T.81, as other decoders tolerate them: Ss/Se/Ah/Al of a
//! sequential scan are ignored; a missing EOI; bytes that are not markers between segments.
//!
//! The decoder is written to be safe on hostile input: no `unsafe`, no panics, every read
//! bounds-checked, work bounded by the input length (each component is decoded by one scan,
//! each block consumes input bits) and the image size capped at [`MAX_SAMPLES`].

#![forbid(unsafe_code)]

use std::fmt;

/// Largest image accepted, counted in output samples (width x height x components).
pub const MAX_SAMPLES: u64 = 32 * 1024 * 1024;

/// Largest total size of the padded component planes (MCU padding of odd sizes).
const MAX_PLANE_SAMPLES: u64 = MAX_SAMPLES + MAX_SAMPLES / 2;

/// Code lengths resolved by one table look-up in the Huffman fast path.
const LOOKUP_BITS: usize = 9;

/// Zig-zag sequence of Figure A.6: `ZIGZAG[k]` is the row-major index of coefficient `k`.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Marker codes (Table B.1).
mod marker {
    pub const SOF0: u8 = 0xC0; // baseline DCT
    pub const SOF1: u8 = 0xC1; // extended sequential DCT, Huffman
    pub const DHT: u8 = 0xC4;
    pub const DAC: u8 = 0xCC;
    pub const RST0: u8 = 0xD0;
    pub const RST7: u8 = 0xD7;
    pub const SOI: u8 = 0xD8;
    pub const EOI: u8 = 0xD9;
    pub const SOS: u8 = 0xDA;
    pub const DQT: u8 = 0xDB;
    pub const DRI: u8 = 0xDD;
    pub const DHP: u8 = 0xDE;
    pub const EXP: u8 = 0xDF;
    pub const TEM: u8 = 0x01;
}

/// A decoded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    /// Number of colour components (1 to 4), as coded in the frame header.
    pub components: u8,
    /// Sample precision in bits: 8 or 12.
    pub precision: u8,
    /// `width * height * components` samples, interleaved per pixel, row-major, in the
    /// frame header's component order, without colour conversion, each in `0..2^precision`.
    pub samples: Vec<u16>,
}

/// Why a stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JPEG decode error: {}", self.0)
    }
}

impl std::error::Error for Error {}

type Result<T> = std::result::Result<T, Error>;

fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}

/// Decodes one JPEG interchange-format codestream (SOI ... EOI) into samples.
pub fn decode(data: &[u8]) -> Result<Image> {
    Decoder::new(data).run()
}

// ---------------------------------------------------------------------------------------
// Marker-segment level (Annex B)
// ---------------------------------------------------------------------------------------

/// Finds the next marker at or after `pos`, skipping fill bytes 0xFF (B.1.1.2) and any
/// other bytes that are not markers. Returns the marker code and the offset just past it.
fn find_marker(data: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    while pos < data.len() {
        if data[pos] != 0xFF {
            pos += 1;
            continue;
        }
        let mut next = pos + 1;
        while data.get(next) == Some(&0xFF) {
            next += 1;
        }
        match data.get(next) {
            None => return None,
            Some(0) => pos = next + 1, // stuffed 0xFF00: entropy data, not a marker
            Some(&code) => return Some((code, next + 1)),
        }
    }
    None
}

fn be16(bytes: &[u8], at: usize) -> Result<u16> {
    match bytes.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => fail("marker segment too short"),
    }
}

/// One component of the frame (B.2.2) with its decoded sample plane.
struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Component dimensions x_i, y_i of A.1.1.
    width: usize,
    height: usize,
    /// Plane row length in samples: a whole number of MCUs (A.2.4).
    stride: usize,
    plane: Vec<u16>,
    coded: bool,
}

/// Frame header parameters (B.2.2) and derived MCU geometry (A.2).
struct Frame {
    precision: u8,
    width: usize,
    height: usize,
    hmax: usize,
    vmax: usize,
    mcux: usize,
    mcuy: usize,
    comps: Vec<Component>,
}

/// One scan component selector with its entropy tables (B.2.3).
struct ScanComp {
    index: usize,
    dc: usize,
    ac: usize,
}

struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    /// Quantization tables in row-major order (B.2.4.1).
    qt: [Option<[u16; 64]>; 4],
    dc: [Option<Box<HuffTable>>; 4],
    ac: [Option<Box<HuffTable>>; 4],
    restart_interval: usize,
    frame: Option<Frame>,
}

impl<'a> Decoder<'a> {
    fn new(data: &'a [u8]) -> Self {
        Decoder {
            data,
            pos: 0,
            qt: [None; 4],
            dc: [None, None, None, None],
            ac: [None, None, None, None],
            restart_interval: 0,
            frame: None,
        }
    }

    /// Decoder control procedure (E.2.1): markers up to EOI, then output.
    fn run(mut self) -> Result<Image> {
        if self.data.get(..2) != Some(&[0xFF, marker::SOI][..]) {
            return fail("missing SOI marker");
        }
        self.pos = 2;
        while let Some((code, after)) = find_marker(self.data, self.pos) {
            self.pos = after;
            if code == marker::EOI {
                break;
            }
            self.marker(code)?;
        }
        self.finish()
    }

    /// Interprets one marker (Table B.1).
    fn marker(&mut self, code: u8) -> Result<()> {
        use marker::*;
        match code {
            SOF0 | SOF1 => {
                let seg = self.segment()?;
                self.frame = Some(parse_frame(seg, code, self.frame.is_some())?);
            }
            0xC2 | 0xC6 => return fail("progressive DCT (SOF2/SOF6) is not supported"),
            0xC3 | 0xC7 => return fail("lossless JPEG (SOF3/SOF7) is not supported here"),
            0xC5 | DHP | EXP => return fail("hierarchical JPEG is not supported"),
            0xC9..=0xCB | 0xCD..=0xCF | DAC => return fail("arithmetic coding is not supported"),
            0xC8 => return fail("reserved JPG marker (0xFFC8)"),
            DHT => {
                let seg = self.segment()?;
                parse_dht(seg, &mut self.dc, &mut self.ac)?;
            }
            DQT => {
                let seg = self.segment()?;
                parse_dqt(seg, &mut self.qt)?;
            }
            DRI => {
                let seg = self.segment()?;
                if seg.len() != 2 {
                    return fail("bad DRI length");
                }
                self.restart_interval = be16(seg, 0)? as usize;
            }
            SOS => self.scan()?,
            SOI => return fail("unexpected SOI marker"),
            RST0..=RST7 | TEM => {} // stand-alone markers without a segment
            _ => {
                // APPn, COM (B.2.4.5, B.2.4.6), JPGn, reserved, and DNL (B.2.5), which can
                // only repeat the height since a height of 0 in the frame header is refused.
                self.segment()?;
            }
        }
        Ok(())
    }

    /// Returns the body of the marker segment at `pos` and moves past it (B.1.1.4).
    fn segment(&mut self) -> Result<&'a [u8]> {
        let len = be16(self.data, self.pos)? as usize;
        if len < 2 {
            return fail("marker segment length below 2");
        }
        let body = self.data.get(self.pos + 2..self.pos + len);
        let body = body.ok_or_else(|| Error("truncated marker segment".into()))?;
        self.pos += len;
        Ok(body)
    }

    /// Scan header (B.2.3) followed by its entropy-coded data.
    fn scan(&mut self) -> Result<()> {
        let seg = self.segment()?;
        let Some(frame) = self.frame.as_mut() else {
            return fail("SOS before SOF");
        };
        let comps = parse_scan_header(seg, frame)?;
        let mut quant = [[0u16; 64]; 4];
        let mut tables = Vec::with_capacity(comps.len());
        for (i, sc) in comps.iter().enumerate() {
            let tq = frame.comps[sc.index].tq;
            quant[i] =
                self.qt[tq].ok_or_else(|| Error(format!("quantization table {tq} not defined")))?;
            let dc = self.dc[sc.dc].as_deref();
            let ac = self.ac[sc.ac].as_deref();
            match (dc, ac) {
                (Some(dc), Some(ac)) => tables.push((dc, ac)),
                _ => return fail("scan uses an undefined Huffman table"),
            }
        }
        let mut scan = ScanDecoder {
            frame,
            comps: &comps,
            tables: &tables,
            quant: &quant,
            bits: BitReader::new(self.data, self.pos),
            restart_interval: self.restart_interval,
            idct: Idct::new(),
        };
        scan.decode()?;
        self.pos = scan.bits.pos;
        for sc in &comps {
            frame.comps[sc.index].coded = true;
        }
        Ok(())
    }

    /// After EOI (or the end of the data): check completeness and assemble the image.
    fn finish(self) -> Result<Image> {
        let Some(frame) = self.frame else {
            return fail("no frame header (SOF0/SOF1) found");
        };
        if let Some(c) = frame.comps.iter().find(|c| !c.coded) {
            return fail(format!("component {} has no scan", c.id));
        }
        Ok(assemble(&frame))
    }
}

/// Frame header (B.2.2) and the component geometry of A.1.1 and A.2.
fn parse_frame(seg: &[u8], code: u8, have_frame: bool) -> Result<Frame> {
    if have_frame {
        return fail("more than one frame header");
    }
    if seg.len() < 6 {
        return fail("frame header too short");
    }
    let precision = seg[0];
    match (code, precision) {
        (marker::SOF0, 8) | (marker::SOF1, 8) | (marker::SOF1, 12) => {}
        _ => {
            return fail(format!(
                "unsupported sample precision {precision} for SOF{}",
                code - 0xC0
            ));
        }
    }
    let height = be16(seg, 1)? as usize;
    let width = be16(seg, 3)? as usize;
    let nf = seg[5] as usize;
    if height == 0 {
        return fail("height 0 (defined by DNL) is not supported");
    }
    if width == 0 {
        return fail("width 0");
    }
    if !(1..=4).contains(&nf) || seg.len() != 6 + 3 * nf {
        return fail(format!("bad frame header for {nf} components"));
    }
    if (width as u64) * (height as u64) * (nf as u64) > MAX_SAMPLES {
        return fail(format!(
            "image {width}x{height}x{nf} exceeds {MAX_SAMPLES} samples"
        ));
    }
    let mut comps = Vec::with_capacity(nf);
    for c in seg[6..].chunks_exact(3) {
        let (id, h, v, tq) = (
            c[0],
            (c[1] >> 4) as usize,
            (c[1] & 15) as usize,
            c[2] as usize,
        );
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
            return fail(format!("sampling factors {h}x{v} out of range 1..=4"));
        }
        if tq > 3 {
            return fail(format!("quantization table selector {tq} out of range"));
        }
        if comps.iter().any(|k: &Component| k.id == id) {
            return fail(format!("duplicate component id {id}"));
        }
        let (stride, plane, coded) = (0, Vec::new(), false);
        comps.push(Component {
            id,
            h,
            v,
            tq,
            width: 0,
            height: 0,
            stride,
            plane,
            coded,
        });
    }
    let mut frame = Frame {
        precision,
        width,
        height,
        hmax: 1,
        vmax: 1,
        mcux: 0,
        mcuy: 0,
        comps,
    };
    frame.hmax = frame.comps.iter().map(|c| c.h).max().unwrap_or(1);
    frame.vmax = frame.comps.iter().map(|c| c.v).max().unwrap_or(1);
    frame.mcux = width.div_ceil(8 * frame.hmax);
    frame.mcuy = height.div_ceil(8 * frame.vmax);
    allocate_planes(&mut frame)?;
    Ok(frame)
}

/// Component dimensions (A.1.1) and sample planes padded to whole MCUs (A.2.4).
fn allocate_planes(frame: &mut Frame) -> Result<()> {
    let (mcux, mcuy, hmax, vmax) = (frame.mcux, frame.mcuy, frame.hmax, frame.vmax);
    let total: u64 = frame
        .comps
        .iter()
        .map(|c| (mcux * c.h * 8 * mcuy * c.v * 8) as u64)
        .sum();
    if total > MAX_PLANE_SAMPLES {
        return fail("padded component planes too large");
    }
    for c in &mut frame.comps {
        c.width = (frame.width * c.h).div_ceil(hmax);
        c.height = (frame.height * c.v).div_ceil(vmax);
        c.stride = mcux * c.h * 8;
        c.plane = vec![0; c.stride * mcuy * c.v * 8];
    }
    Ok(())
}

/// Quantization table-specification segment (B.2.4.1): 8- or 16-bit entries in zig-zag order.
fn parse_dqt(mut seg: &[u8], qt: &mut [Option<[u16; 64]>; 4]) -> Result<()> {
    while let Some((&pq_tq, rest)) = seg.split_first() {
        let (pq, tq) = (pq_tq >> 4, (pq_tq & 15) as usize);
        if pq > 1 || tq > 3 {
            return fail(format!("bad DQT Pq={pq} Tq={tq}"));
        }
        let size = 64 * (pq as usize + 1);
        let Some(entries) = rest.get(..size) else {
            return fail("truncated DQT segment");
        };
        let mut table = [0u16; 64];
        for (k, &natural) in ZIGZAG.iter().enumerate() {
            table[natural as usize] = match pq {
                0 => entries[k] as u16,
                _ => u16::from_be_bytes([entries[2 * k], entries[2 * k + 1]]),
            };
        }
        qt[tq] = Some(table);
        seg = &rest[size..];
    }
    Ok(())
}

/// Huffman table-specification segment (B.2.4.2), possibly holding several tables.
fn parse_dht(
    mut seg: &[u8],
    dc: &mut [Option<Box<HuffTable>>; 4],
    ac: &mut [Option<Box<HuffTable>>; 4],
) -> Result<()> {
    while let Some((&tc_th, rest)) = seg.split_first() {
        let (tc, th) = (tc_th >> 4, (tc_th & 15) as usize);
        if tc > 1 || th > 3 {
            return fail(format!("bad DHT Tc={tc} Th={th}"));
        }
        let Some(lengths) = rest.get(..16) else {
            return fail("truncated DHT segment");
        };
        let total: usize = lengths.iter().map(|&n| n as usize).sum();
        let Some(values) = rest.get(16..16 + total) else {
            return fail("truncated DHT segment");
        };
        let table = Box::new(HuffTable::build(lengths, values)?);
        if tc == 0 {
            dc[th] = Some(table)
        } else {
            ac[th] = Some(table)
        }
        seg = &rest[16 + total..];
    }
    Ok(())
}

/// Scan header (B.2.3): component selectors and table selectors; sequential only.
fn parse_scan_header(seg: &[u8], frame: &Frame) -> Result<Vec<ScanComp>> {
    let ns = *seg.first().unwrap_or(&0) as usize;
    if !(1..=4).contains(&ns) || seg.len() != 4 + 2 * ns {
        return fail("bad scan header");
    }
    let mut comps: Vec<ScanComp> = Vec::with_capacity(ns);
    for sel in seg[1..1 + 2 * ns].chunks_exact(2) {
        let Some(index) = frame.comps.iter().position(|c| c.id == sel[0]) else {
            return fail(format!("scan names unknown component {}", sel[0]));
        };
        if frame.comps[index].coded || comps.iter().any(|c| c.index == index) {
            return fail(format!("component {} coded in more than one scan", sel[0]));
        }
        let (dc, ac) = ((sel[1] >> 4) as usize, (sel[1] & 15) as usize);
        if dc > 3 || ac > 3 {
            return fail("Huffman table selector out of range");
        }
        comps.push(ScanComp { index, dc, ac });
    }
    // Ss, Se, Ah and Al (the last three bytes) are fixed at 0, 63, 0, 0 for the
    // sequential processes (B.2.3) and carry no information: like other decoders, ignore
    // them, because real encoders write other values (DICOM's JPEG-lossy.dcm has Se=0).
    if ns > 1 {
        let blocks: usize = comps
            .iter()
            .map(|c| frame.comps[c.index].h * frame.comps[c.index].v)
            .sum();
        if blocks > 10 {
            return fail("more than 10 blocks per MCU (B.2.3)");
        }
    }
    Ok(comps)
}

// ---------------------------------------------------------------------------------------
// Entropy decoding (Annex C and F.2.2)
// ---------------------------------------------------------------------------------------

/// A Huffman decoding table: a look-up table for short codes plus the MAXCODE / VALPTR /
/// MINCODE procedure of F.2.2.3 (Figure F.15) for the longer ones.
struct HuffTable {
    /// For each `LOOKUP_BITS`-bit prefix: `(code length << 8) | value`, or 0 if the code
    /// is longer than `LOOKUP_BITS`.
    lookup: [u16; 1 << LOOKUP_BITS],
    /// MAXCODE(L), -1 when there are no codes of length L (index 0 unused).
    maxcode: [i32; 17],
    /// VALPTR(L) - MINCODE(L): adding a code of length L gives its index in `values`.
    offset: [i32; 17],
    values: [u8; 256],
}

impl HuffTable {
    /// Generates the code table from BITS and HUFFVAL (C.2, Figures C.1 to C.3), refusing
    /// tables whose codes do not fit in their lengths.
    fn build(lengths: &[u8], huffval: &[u8]) -> Result<HuffTable> {
        let total: usize = lengths.iter().map(|&n| n as usize).sum();
        if total > 256 || total != huffval.len() || lengths.len() != 16 {
            return fail("Huffman table: bad number of codes");
        }
        let mut table = HuffTable {
            lookup: [0; 1 << LOOKUP_BITS],
            maxcode: [-1; 17],
            offset: [0; 17],
            values: [0; 256],
        };
        table.values[..huffval.len()].copy_from_slice(huffval);
        let (mut code, mut k) = (0u32, 0usize);
        for len in 1..=16usize {
            let count = lengths[len - 1] as usize;
            table.offset[len] = k as i32 - code as i32;
            for _ in 0..count {
                if code >= 1 << len {
                    return fail("Huffman code lengths overflow (C.2)");
                }
                if len <= LOOKUP_BITS {
                    let spread = LOOKUP_BITS - len;
                    let first = (code as usize) << spread;
                    let entry = ((len as u16) << 8) | huffval[k] as u16;
                    table.lookup[first..first + (1 << spread)].fill(entry);
                }
                code += 1;
                k += 1;
            }
            if count > 0 {
                table.maxcode[len] = code as i32 - 1;
            }
            code <<= 1;
        }
        Ok(table)
    }
}

/// Reads the entropy-coded segment bit by bit (F.2.2.5, NEXTBIT), removing stuffed zero
/// bytes (B.1.1.5). On reaching a marker, zero bits are supplied for look-ahead only:
/// consuming any of them is reported as a truncated stream.
struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte to read.
    pos: usize,
    /// Bit buffer, most significant bit first.
    acc: u64,
    nbits: u32,
    /// Number of the buffered bits (the last ones) that are padding past the segment end.
    padding: u32,
    at_marker: bool,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader {
            data,
            pos,
            acc: 0,
            nbits: 0,
            padding: 0,
            at_marker: false,
        }
    }

    fn fill(&mut self) {
        while self.nbits <= 56 {
            let byte = self.next_byte();
            self.acc |= (byte as u64) << (56 - self.nbits);
            self.nbits += 8;
        }
    }

    /// Next data byte, with 0xFF00 unstuffed; 0 (counted as padding) at a marker or the end.
    fn next_byte(&mut self) -> u8 {
        if !self.at_marker {
            match self.data.get(self.pos) {
                Some(&0xFF) if self.data.get(self.pos + 1) == Some(&0) => {
                    self.pos += 2;
                    return 0xFF;
                }
                Some(&0xFF) | None => self.at_marker = true,
                Some(&b) => {
                    self.pos += 1;
                    return b;
                }
            }
        }
        self.padding += 8;
        0
    }

    /// The next 16 bits without consuming them.
    fn peek16(&mut self) -> u32 {
        if self.nbits < 16 {
            self.fill();
        }
        (self.acc >> 48) as u32
    }

    fn consume(&mut self, n: u32) -> Result<()> {
        if n + self.padding > self.nbits {
            return fail("entropy-coded data truncated");
        }
        self.acc <<= n;
        self.nbits -= n;
        Ok(())
    }

    /// RECEIVE(SSSS) of F.2.2.4 followed by EXTEND of F.2.2.1 (Figure F.12), for `s <= 16`.
    fn receive_extend(&mut self, s: u32) -> Result<i32> {
        if s == 0 {
            return Ok(0);
        }
        let v = (self.peek16() >> (16 - s)) as i32;
        self.consume(s)?;
        Ok(if v < 1 << (s - 1) {
            v - (1 << s) + 1
        } else {
            v
        })
    }

    /// DECODE of F.2.2.3: one Huffman-coded value.
    fn decode(&mut self, table: &HuffTable) -> Result<u8> {
        let bits = self.peek16();
        let entry = table.lookup[(bits >> (16 - LOOKUP_BITS)) as usize];
        if entry != 0 {
            self.consume((entry >> 8) as u32)?;
            return Ok(entry as u8);
        }
        for len in LOOKUP_BITS + 1..=16 {
            let code = (bits >> (16 - len)) as i32;
            if code <= table.maxcode[len] {
                self.consume(len as u32)?;
                let index = (code + table.offset[len]) as usize;
                return table
                    .values
                    .get(index)
                    .copied()
                    .ok_or_else(|| Error("bad Huffman table".into()));
            }
        }
        fail("invalid Huffman code")
    }

    /// Byte alignment at the end of a restart interval or scan (B.1.1.5, F.1.2.3):
    /// the rest of the current byte is 1-bit padding and is dropped.
    fn align(&mut self) {
        (self.acc, self.nbits, self.padding, self.at_marker) = (0, 0, 0, false);
    }

    /// Restart marker processing (E.2.4, B.2.1): expects RSTn with n = `count` mod 8.
    fn restart(&mut self, count: usize) -> Result<()> {
        self.align();
        let expected = marker::RST0 + (count % 8) as u8;
        match find_marker(self.data, self.pos) {
            Some((code, after)) if code == expected => {
                self.pos = after;
                Ok(())
            }
            Some((code, _)) => fail(format!(
                "expected RST{}, found marker {code:#04X}",
                count % 8
            )),
            None => fail("missing restart marker"),
        }
    }
}

/// Decodes the MCUs of one scan, writing reconstructed samples into the component planes.
struct ScanDecoder<'s, 'a> {
    frame: &'s mut Frame,
    comps: &'s [ScanComp],
    tables: &'s [(&'s HuffTable, &'s HuffTable)],
    quant: &'s [[u16; 64]; 4],
    bits: BitReader<'a>,
    restart_interval: usize,
    idct: Idct,
}

impl ScanDecoder<'_, '_> {
    /// Decoding of a scan (E.2.3) with restart intervals (E.2.4). A non-interleaved scan
    /// has one block per MCU and covers only the component's own blocks (A.2.2);
    /// an interleaved one has H_i x V_i blocks of each component per MCU (A.2.3).
    fn decode(&mut self) -> Result<()> {
        let interleaved = self.comps.len() > 1;
        let (mcux, mcuy) = if interleaved {
            (self.frame.mcux, self.frame.mcuy)
        } else {
            let c = &self.frame.comps[self.comps[0].index];
            (c.width.div_ceil(8), c.height.div_ceil(8))
        };
        let mut pred = [0i32; 4];
        let mut coef = [0f32; 64];
        let mut restarts = 0;
        for m in 0..mcux * mcuy {
            if m > 0 && self.restart_interval > 0 && m % self.restart_interval == 0 {
                self.bits.restart(restarts)?;
                restarts += 1;
                pred = [0; 4]; // F.2.1.3.1: DC predictions reset at each restart
            }
            let (mx, my) = (m % mcux, m / mcux);
            for (i, sc) in self.comps.iter().enumerate() {
                let comp = &self.frame.comps[sc.index];
                let (h, v) = if interleaved {
                    (comp.h, comp.v)
                } else {
                    (1, 1)
                };
                for by in 0..v {
                    for bx in 0..h {
                        self.block(i, &mut pred[i], &mut coef, mx * h + bx, my * v + by)?;
                    }
                }
            }
        }
        self.bits.align();
        Ok(())
    }

    /// One 8x8 block of scan component `i`: entropy decoding (F.2.2.1, F.2.2.2),
    /// dequantization (A.3.4) and the IDCT, into block column `col`, row `row`.
    fn block(
        &mut self,
        i: usize,
        pred: &mut i32,
        coef: &mut [f32; 64],
        col: usize,
        row: usize,
    ) -> Result<()> {
        let (dc_table, ac_table) = self.tables[i];
        let q = &self.quant[i];
        coef.fill(0.0);
        // F.2.2.1: DC difference category, then the difference bits; prediction (F.2.1.3.1).
        let t = self.bits.decode(dc_table)? as u32;
        if t > 15 {
            return fail(format!("DC difference category {t} out of range"));
        }
        *pred = pred.wrapping_add(self.bits.receive_extend(t)?);
        coef[0] = *pred as f32 * q[0] as f32;
        let mut has_ac = false;
        // F.2.2.2 (Figure F.13): run-length coded AC coefficients in zig-zag order.
        let mut k = 1;
        while k < 64 {
            let rs = self.bits.decode(ac_table)?;
            let (r, s) = ((rs >> 4) as usize, (rs & 15) as u32);
            if s == 0 {
                if r != 15 {
                    break; // EOB
                }
                k += 16; // ZRL
                continue;
            }
            k += r;
            if k > 63 {
                return fail("AC coefficient index beyond 63");
            }
            let natural = ZIGZAG[k] as usize;
            coef[natural] = self.bits.receive_extend(s)? as f32 * q[natural] as f32;
            has_ac = true;
            k += 1;
        }
        let comp = &mut self.frame.comps[self.comps[i].index];
        let start = row * 8 * comp.stride + col * 8;
        let precision = self.frame.precision;
        self.idct.block(
            coef,
            has_ac,
            &mut comp.plane[start..],
            comp.stride,
            precision,
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Inverse DCT (A.3.3) and output
// ---------------------------------------------------------------------------------------

/// Separable floating-point 8x8 inverse DCT of A.3.3:
/// s(y,x) = 1/4 sum_u sum_v C(u) C(v) S(v,u) cos((2x+1)u pi/16) cos((2y+1)v pi/16),
/// computed as a 1-D transform of each row, then of each column.
struct Idct {
    /// `basis[u][x] = C(u)/2 * cos((2x+1) u pi / 16)`, with C(0) = 1/sqrt(2), else 1.
    basis: [[f32; 8]; 8],
}

impl Idct {
    fn new() -> Self {
        let mut basis = [[0f32; 8]; 8];
        for (u, row) in basis.iter_mut().enumerate() {
            let c = if u == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            };
            for (x, b) in row.iter_mut().enumerate() {
                let angle = ((2 * x + 1) * u) as f64 * std::f64::consts::PI / 16.0;
                *b = (c / 2.0 * angle.cos()) as f32;
            }
        }
        Idct { basis }
    }

    /// Inverse transform of dequantized coefficients `coef` (row-major, S(v,u) at v*8+u),
    /// level shift by 2^(P-1) and clamp to [0, 2^P - 1] (A.3.1), written with row `stride`.
    fn block(&self, coef: &[f32; 64], has_ac: bool, out: &mut [u16], stride: usize, precision: u8) {
        let shift = (1u32 << (precision - 1)) as f32;
        let max = ((1u32 << precision) - 1) as f32;
        // Clamped first, so truncation after adding 1/2 rounds to nearest.
        let to_sample = |s: f32| ((s + shift).clamp(0.0, max) + 0.5) as u16;
        if !has_ac {
            let value = to_sample(coef[0] / 8.0); // C(0)^2 / 4 = 1/8
            for row in out.chunks_mut(stride).take(8) {
                row[..8].fill(value);
            }
            return;
        }
        // Rows: tmp[v][x] = sum_u S(v,u) basis[u][x]; all-zero rows stay zero.
        let mut tmp = [[0f32; 8]; 8];
        for (t, src) in tmp.iter_mut().zip(coef.chunks_exact(8)) {
            if src.iter().all(|&c| c == 0.0) {
                continue;
            }
            for (&c, b) in src.iter().zip(&self.basis) {
                for x in 0..8 {
                    t[x] += c * b[x];
                }
            }
        }
        // Columns: s(y,x) = sum_v basis[v][y] tmp[v][x].
        for (y, row) in out.chunks_mut(stride).take(8).enumerate() {
            let mut acc = [0f32; 8];
            for (t, b) in tmp.iter().zip(&self.basis) {
                for x in 0..8 {
                    acc[x] += b[y] * t[x];
                }
            }
            for (o, &a) in row[..8].iter_mut().zip(&acc) {
                *o = to_sample(a);
            }
        }
    }
}

/// Interleaves the component planes into pixels, upsampling subsampled components.
fn assemble(frame: &Frame) -> Image {
    let (w, h, n) = (frame.width, frame.height, frame.comps.len());
    let mut samples = vec![0u16; w * h * n];
    let mut row = vec![0u16; w];
    let mut sums = vec![0u32; frame.mcux * frame.hmax * 8];
    for (c, comp) in frame.comps.iter().enumerate() {
        let up = Upsampler::new(frame, comp);
        for (y, out_row) in samples.chunks_exact_mut(w * n).enumerate() {
            up.row(comp, y, &mut sums, &mut row);
            for (px, &v) in out_row.chunks_exact_mut(n).zip(&row) {
                px[c] = v;
            }
        }
    }
    Image {
        width: w as u32,
        height: h as u32,
        components: n as u8,
        precision: frame.precision,
        samples,
    }
}

/// Upsampling of one component to the frame's full resolution. T.81 leaves this to the
/// application (A.1.1 only defines the sampled dimensions). For 2:1 ratios this uses the
/// triangle filter of common JFIF decoders, with chroma sited midway between luma samples:
/// each output sample is 3/4 of the nearest input sample plus 1/4 of the next nearest, per
/// axis, edges replicated; other ratios (3:1, 4:1, non-integer) replicate samples.
struct Upsampler {
    /// Ratio along each axis: 1 (none), 2 (filtered) or 0 (replicate by index mapping).
    rx: usize,
    ry: usize,
    /// Source column for each output column when replicating.
    xmap: Vec<usize>,
    vmax: usize,
}

impl Upsampler {
    fn new(frame: &Frame, comp: &Component) -> Self {
        let ratio = |max: usize, f: usize| match (max % f, max / f) {
            (0, r @ (1 | 2)) => r,
            _ => 0,
        };
        let (rx, ry) = (ratio(frame.hmax, comp.h), ratio(frame.vmax, comp.v));
        let xmap = (0..frame.width).map(|x| x * comp.h / frame.hmax).collect();
        Upsampler {
            rx,
            ry,
            xmap,
            vmax: frame.vmax,
        }
    }

    /// Computes output row `y` of `comp` into `out`, using `sums` as scratch space.
    fn row(&self, comp: &Component, y: usize, sums: &mut [u32], out: &mut [u16]) {
        let cw = comp.width;
        let plane_row = |r: usize| &comp.plane[r * comp.stride..r * comp.stride + cw];
        if (self.rx, self.ry) == (1, 1) {
            out.copy_from_slice(plane_row(y));
            return;
        }
        if self.rx == 0 || self.ry == 0 {
            let src = plane_row(y * comp.v / self.vmax);
            for (o, &sx) in out.iter_mut().zip(&self.xmap) {
                *o = src[sx];
            }
            return;
        }
        // Vertical pass: sums = 3 * nearest row + next nearest row (weight 4), or the row.
        let sums = &mut sums[..cw];
        let vweight = if self.ry == 2 {
            let near = y / 2;
            let far = if y.is_multiple_of(2) {
                near.saturating_sub(1)
            } else {
                (near + 1).min(comp.height - 1)
            };
            for ((s, &a), &b) in sums.iter_mut().zip(plane_row(near)).zip(plane_row(far)) {
                *s = 3 * a as u32 + b as u32;
            }
            4
        } else {
            for (s, &a) in sums.iter_mut().zip(plane_row(y)) {
                *s = a as u32;
            }
            1
        };
        // Horizontal pass; rounding alternates between neighbouring outputs so that the
        // filter has no systematic bias.
        if self.rx == 2 {
            let weight = 4 * vweight;
            let (even_bias, odd_bias) = if vweight == 4 { (8, 7) } else { (1, 2) };
            for (x, o) in out.iter_mut().enumerate() {
                let near = x / 2;
                let far = if x.is_multiple_of(2) {
                    near.saturating_sub(1)
                } else {
                    (near + 1).min(cw - 1)
                };
                let bias = if x.is_multiple_of(2) {
                    even_bias
                } else {
                    odd_bias
                };
                *o = ((3 * sums[near] + sums[far] + bias) / weight) as u16;
            }
        } else {
            let bias = if vweight == 4 { 1 + y as u32 % 2 } else { 0 };
            for (o, &s) in out.iter_mut().zip(sums.iter()) {
                *o = ((s + bias) / vweight) as u16;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-block greyscale stream: every DC difference is category 0 and every block
    /// ends at once, so all samples equal the level shift 2^(P-1).
    fn flat_stream(sof: u8, precision: u8, width: u16, dri: Option<(u16, &[u8])>) -> Vec<u8> {
        let mut s = vec![0xFF, 0xD8, 0xFF, 0xDB, 0, 67, 0x00];
        s.extend([1u8; 64]);
        s.extend([0xFF, sof, 0, 11, precision, 0, 8]);
        s.extend(width.to_be_bytes());
        s.extend([1, 1, 0x11, 0]);
        for class in [0x00, 0x10] {
            s.extend([0xFF, 0xC4, 0, 20, class, 1]); // one code '0' for value 0
            s.extend([0u8; 15]);
            s.push(0);
        }
        let entropy: &[u8] = match dri {
            Some((interval, data)) => {
                s.extend([0xFF, 0xDD, 0, 4]);
                s.extend(interval.to_be_bytes());
                data
            }
            None => &[0x0F], // two blocks: '00' '00', padded with ones
        };
        s.extend([0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0]);
        s.extend(entropy);
        s.extend([0xFF, 0xD9]);
        s
    }

    #[test]
    fn decodes_flat_blocks_with_level_shift() {
        for (sof, p) in [(0xC0, 8u8), (0xC1, 8), (0xC1, 12)] {
            let img = decode(&flat_stream(sof, p, 16, None)).unwrap();
            assert_eq!(
                (img.width, img.height, img.components, img.precision),
                (16, 8, 1, p)
            );
            assert!(img.samples.iter().all(|&v| v == 1 << (p - 1)));
        }
    }

    #[test]
    fn restart_markers_are_checked() {
        let ok = flat_stream(0xC1, 12, 16, Some((1, &[0x3F, 0xFF, 0xD0, 0x3F])));
        assert!(decode(&ok).is_ok());
        let wrong = flat_stream(0xC1, 12, 16, Some((1, &[0x3F, 0xFF, 0xD3, 0x3F])));
        assert!(decode(&wrong).unwrap_err().0.contains("RST0"));
    }

    #[test]
    fn refuses_truncated_entropy_data() {
        let mut s = flat_stream(0xC1, 12, 64, None); // 8 blocks need 16 bits
        s.truncate(s.len() - 2); // no EOI: tolerated
        *s.last_mut().unwrap() = 0x00; // 4 blocks
        assert!(decode(&s).unwrap_err().0.contains("truncated"));
        s.push(0x00);
        assert!(decode(&s).is_ok());
    }

    #[test]
    fn refuses_other_processes() {
        for (sof, word) in [
            (0xC2, "progressive"),
            (0xC3, "lossless"),
            (0xC5, "hierarchical"),
            (0xC9, "arithmetic"),
        ] {
            let s = flat_stream(sof, 8, 8, None);
            assert!(decode(&s).unwrap_err().0.contains(word), "{sof:#x}");
        }
        assert!(decode(&flat_stream(0xC0, 12, 8, None)).is_err()); // baseline is 8-bit only
        assert!(decode(&flat_stream(0xC1, 16, 8, None)).is_err());
    }

    /// The f32 IDCT against the A.3.3 formula evaluated in f64, on pseudo-random 12-bit
    /// blocks (IEEE 1180-style ranges): rounded samples may differ only at ties.
    #[test]
    fn idct_matches_definition() {
        let idct = Idct::new();
        let mut state = 0x1234_5678_9ABC_DEF1u64;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut worst, mut off) = (0i32, 0usize);
        for trial in 0..2000 {
            let range = [256i64, 2048, 16384][trial % 3];
            let mut coef = [0f32; 64];
            for c in coef.iter_mut().take(if trial % 2 == 0 { 64 } else { 10 }) {
                *c = ((rand() % (2 * range as u64 + 1)) as i64 - range) as f32;
            }
            let mut out = [0u16; 64];
            idct.block(&coef, true, &mut out, 8, 12);
            for (i, &o) in out.iter().enumerate() {
                let (y, x) = ((i / 8) as f64, (i % 8) as f64);
                let mut sum = 0f64;
                for (k, &c) in coef.iter().enumerate() {
                    let (v, u) = ((k / 8) as f64, (k % 8) as f64);
                    let cu = if u == 0.0 {
                        std::f64::consts::FRAC_1_SQRT_2
                    } else {
                        1.0
                    };
                    let cv = if v == 0.0 {
                        std::f64::consts::FRAC_1_SQRT_2
                    } else {
                        1.0
                    };
                    let pi = std::f64::consts::PI;
                    sum += cu
                        * cv
                        * c as f64
                        * ((2.0 * x + 1.0) * u * pi / 16.0).cos()
                        * ((2.0 * y + 1.0) * v * pi / 16.0).cos();
                }
                let exact = (sum / 4.0 + 2048.0).round().clamp(0.0, 4095.0) as i32;
                let d = (exact - o as i32).abs();
                worst = worst.max(d);
                off += (d != 0) as usize;
            }
        }
        println!(
            "IDCT vs f64 definition: max {worst}, {off} of {} samples differ",
            2000 * 64
        );
        assert!(
            worst <= 1 && off < 2000 * 64 / 1000,
            "max {worst}, {off} samples differ"
        );
    }

    #[test]
    fn refuses_overflowing_huffman_codes() {
        assert!(
            HuffTable::build(
                &[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                &[1, 2, 3]
            )
            .is_err()
        );
        // One code of each length 1..=15 leaves room for two 16-bit codes, not three.
        let mut lengths = [1u8; 16];
        lengths[15] = 2;
        assert!(HuffTable::build(&lengths, &[7; 17]).is_ok());
        lengths[15] = 3;
        assert!(HuffTable::build(&lengths, &[7; 18]).is_err());
        assert!(HuffTable::build(&lengths, &[7; 17]).is_err()); // fewer values than codes
    }

    #[test]
    fn refuses_oversized_and_malformed_headers() {
        let mut s = flat_stream(0xC1, 12, 8, None);
        s[76..80].copy_from_slice(&[0xFF; 4]); // height 65535 x width 65535
        assert!(decode(&s).unwrap_err().0.contains("exceeds"));
        assert!(decode(&[]).is_err());
        assert!(decode(&[0xFF, 0xD8]).is_err());
        assert!(decode(&[0xFF, 0xD8, 0xFF, 0xC4, 0x00]).is_err());
    }
}
