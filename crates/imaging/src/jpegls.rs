//! A self-contained JPEG-LS decoder (ITU-T T.87 | ISO/IEC 14495-1).
//!
//! It decodes the JPEG-LS codestreams found in DICOM pixel data (transfer
//! syntaxes 1.2.840.10008.1.2.4.80 lossless and .81 near-lossless):
//!
//! * precision 2..=16 bits, 1..=4 components;
//! * interleave modes 0 (one scan per component), 1 (line) and 2 (sample);
//! * lossless (NEAR = 0) and near-lossless (NEAR > 0) coding;
//! * preset coding parameters (LSE type 1), with the default thresholds of
//!   C.2.4.1.1 computed for any MAXVAL and NEAR.
//!
//! Refused with an [`Error`]: mapping tables and other LSE types, restart
//! intervals, DNL-defined heights, subsampled components and colour
//! transforms (APP8 "mrfx").
//!
//! Section numbers in comments ("A.4.1" etc.) refer to ITU-T T.87 (06/1998).
//!
//! Robustness: the decoder never panics on malformed input and all of its
//! loops are bounded by the image size, so hostile input yields an `Error`
//! (or, for damage that the format cannot detect, a wrong image), never a
//! crash or a hang.

use std::fmt;

/// A decoded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub components: u8,
    pub bits_per_sample: u8,
    /// Samples interleaved per pixel (R,G,B,R,G,B... for 3 components), row-major.
    pub samples: Vec<u16>,
}

/// A decoding error with a human-readable description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JPEG-LS decoding failed: {}", self.0)
    }
}

impl std::error::Error for Error {}

type Result<T> = std::result::Result<T, Error>;

fn err<T>(message: impl Into<String>) -> Result<T> {
    Err(Error(message.into()))
}

/// Largest image accepted, in samples (width * height * components).
pub const MAX_SAMPLES: u64 = 32 * 1024 * 1024;

/// Decodes a complete JPEG-LS codestream (SOI ... EOI).
pub fn decode(codestream: &[u8]) -> Result<Image> {
    Parser::new(codestream).parse()
}

// ---------------------------------------------------------------------------
// Markers (T.87 Table C.1, plus the T.81 markers that may appear).
// ---------------------------------------------------------------------------

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DNL: u8 = 0xDC;
const DRI: u8 = 0xDD;
const SOF55: u8 = 0xF7;
const LSE: u8 = 0xF8;
const APP0: u8 = 0xE0;
const APP8: u8 = 0xE8;
const APP15: u8 = 0xEF;
const COM: u8 = 0xFE;

fn be16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

// ---------------------------------------------------------------------------
// Marker segment parsing (Annex C).
// ---------------------------------------------------------------------------

/// Frame header (C.2.2).
#[derive(Clone)]
struct Frame {
    width: usize,
    height: usize,
    precision: u8,
    /// Component identifiers, in frame order.
    ids: Vec<u8>,
}

/// Preset coding parameters from an LSE segment (C.2.4.1.1); 0 = default.
#[derive(Clone, Copy, Default)]
struct Preset {
    maxval: u16,
    t1: u16,
    t2: u16,
    t3: u16,
    reset: u16,
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    frame: Option<Frame>,
    preset: Preset,
    samples: Vec<u16>,
    /// Which frame components have been decoded by a scan.
    decoded: Vec<bool>,
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8]) -> Self {
        Parser {
            data,
            pos: 0,
            frame: None,
            preset: Preset::default(),
            samples: Vec::new(),
            decoded: Vec::new(),
        }
    }

    fn parse(mut self) -> Result<Image> {
        if !self.data.starts_with(&[0xFF, SOI]) {
            return err("missing SOI marker");
        }
        self.pos = 2;
        while let Some(marker) = self.next_marker()? {
            match marker {
                EOI => break,
                SOF55 => self.read_frame()?,
                LSE => self.read_preset()?,
                SOS => self.read_scan()?,
                APP0..=APP15 => self.read_app(marker)?,
                COM => {
                    self.segment()?;
                }
                DRI => self.read_restart_interval()?,
                DNL => return err("DNL marker is not supported"),
                0xC0..=0xCF => {
                    return err(format!(
                        "marker 0xFF{marker:02X} belongs to another JPEG process, not JPEG-LS"
                    ));
                }
                _ => return err(format!("unexpected marker 0xFF{marker:02X}")),
            }
        }
        self.finish()
    }

    /// Builds the image once every component has been decoded. A missing
    /// EOI after complete scans is tolerated.
    fn finish(self) -> Result<Image> {
        let Some(frame) = self.frame else {
            return err("no SOF55 frame header");
        };
        if self.decoded.iter().any(|&done| !done) {
            return err("not every component was present in a scan");
        }
        Ok(Image {
            width: frame.width as u32,
            height: frame.height as u32,
            components: frame.ids.len() as u8,
            bits_per_sample: frame.precision,
            samples: self.samples,
        })
    }

    /// The unread part of the data.
    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    /// Returns the next marker code, skipping fill bytes, or None at the end of the data.
    fn next_marker(&mut self) -> Result<Option<u8>> {
        let rest = self.rest();
        if rest.is_empty() {
            return Ok(None);
        }
        if rest[0] != 0xFF {
            return err(format!("expected a marker at offset {}", self.pos));
        }
        let fill = rest.iter().take_while(|&&b| b == 0xFF).count();
        match rest.get(fill) {
            Some(&code) => {
                self.pos += fill + 1;
                Ok(Some(code))
            }
            None => err("truncated marker at end of data"),
        }
    }

    /// Reads a marker segment's length field and returns its payload.
    fn segment(&mut self) -> Result<&'a [u8]> {
        let rest = self.rest();
        let Some(len_bytes) = rest.get(0..2) else {
            return err("truncated marker segment length");
        };
        let len = be16(len_bytes) as usize;
        if len < 2 {
            return err("invalid marker segment length");
        }
        let Some(payload) = rest.get(2..len) else {
            return err("marker segment runs past the end of the data");
        };
        self.pos += len;
        Ok(payload)
    }

    /// SOF55 frame header (C.2.2).
    fn read_frame(&mut self) -> Result<()> {
        if self.frame.is_some() {
            return err("more than one frame header");
        }
        let s = self.segment()?;
        if s.len() < 6 {
            return err("frame header too short");
        }
        let precision = s[0];
        let height = be16(&s[1..3]) as usize;
        let width = be16(&s[3..5]) as usize;
        let count = s[5] as usize;
        if !(2..=16).contains(&precision) {
            return err(format!("unsupported sample precision {precision}"));
        }
        if height == 0 {
            return err("image height defined by DNL is not supported");
        }
        if width == 0 {
            return err("image width is zero");
        }
        if !(1..=4).contains(&count) {
            return err(format!("unsupported number of components {count}"));
        }
        if s.len() != 6 + 3 * count {
            return err("frame header length does not match its component count");
        }
        let mut ids = Vec::with_capacity(count);
        let sampling = s[7];
        for spec in s[6..].chunks_exact(3) {
            if ids.contains(&spec[0]) {
                return err("duplicate component identifier");
            }
            // Equal sampling factors for all components mean full resolution.
            if spec[1] != sampling || spec[1] >> 4 == 0 || spec[1] & 0x0F == 0 {
                return err("subsampled components are not supported");
            }
            ids.push(spec[0]);
        }
        let total = width as u64 * height as u64 * count as u64;
        if total > MAX_SAMPLES {
            return err(format!(
                "image of {total} samples exceeds the limit of {MAX_SAMPLES}"
            ));
        }
        self.samples = vec![0; total as usize];
        self.decoded = vec![false; count];
        self.frame = Some(Frame {
            width,
            height,
            precision,
            ids,
        });
        Ok(())
    }

    /// LSE segment (C.2.4.1); only preset coding parameters (ID 1) are supported.
    fn read_preset(&mut self) -> Result<()> {
        let s = self.segment()?;
        match s.first() {
            Some(1) => {}
            Some(id) => {
                return err(format!(
                    "LSE segment type {id} (mapping table / oversize image) is not supported"
                ));
            }
            None => return err("empty LSE segment"),
        }
        if s.len() != 11 {
            return err("invalid LSE preset parameters length");
        }
        self.preset = Preset {
            maxval: be16(&s[1..3]),
            t1: be16(&s[3..5]),
            t2: be16(&s[5..7]),
            t3: be16(&s[7..9]),
            reset: be16(&s[9..11]),
        };
        Ok(())
    }

    /// APPn segments are skipped, except that a colour transform is refused.
    fn read_app(&mut self, marker: u8) -> Result<()> {
        let s = self.segment()?;
        if marker == APP8 && s.starts_with(b"mrfx") && s.get(4) != Some(&0) {
            return err("colour transforms (APP8 \"mrfx\") are not supported");
        }
        Ok(())
    }

    /// DRI: only a zero restart interval (i.e. none) is accepted.
    fn read_restart_interval(&mut self) -> Result<()> {
        let s = self.segment()?;
        if s.iter().any(|&b| b != 0) {
            return err("restart intervals are not supported");
        }
        Ok(())
    }

    /// SOS scan header (C.2.3) followed by the entropy-coded segment.
    fn read_scan(&mut self) -> Result<()> {
        let s = self.segment()?;
        let Some(frame) = self.frame.clone() else {
            return err("scan header before frame header");
        };
        let count = *s.first().unwrap_or(&0) as usize;
        if !(1..=4).contains(&count) || s.len() != 1 + 2 * count + 3 {
            return err("invalid scan header");
        }
        let mut components = Vec::with_capacity(count);
        for spec in s[1..1 + 2 * count].chunks_exact(2) {
            let Some(index) = frame.ids.iter().position(|&id| id == spec[0]) else {
                return err("scan refers to an unknown component");
            };
            if self.decoded[index] || components.contains(&index) {
                return err("component coded in more than one scan");
            }
            if spec[1] != 0 {
                return err("mapping tables are not supported");
            }
            components.push(index);
        }
        let near = s[1 + 2 * count];
        // The point transform byte (s[3 + 2 * count]) has no meaning in JPEG-LS.
        let interleave = match (count, s[2 + 2 * count]) {
            (1, _) => Interleave::None,
            (_, 1) => Interleave::Line,
            (_, 2) => Interleave::Sample,
            (_, 0) => return err("interleave mode 0 with more than one component in a scan"),
            (_, mode) => return err(format!("invalid interleave mode {mode}")),
        };
        let params = Params::new(frame.precision, self.preset, near)?;

        let rest = self.rest();
        let ecs = &rest[..entropy_segment_length(rest)];
        let scan = Scan {
            frame: &frame,
            components: &components,
            interleave,
            params,
        };
        scan.decode(ecs, &mut self.samples)?;
        for &index in &components {
            self.decoded[index] = true;
        }
        self.pos += ecs.len();
        Ok(())
    }
}

/// Length of the entropy-coded segment at the start of `data`: it ends at
/// the first marker, 0xFF followed by a byte with its high bit set (a byte
/// after a data 0xFF has its high bit stuffed to 0), or at the end of data.
fn entropy_segment_length(data: &[u8]) -> usize {
    data.windows(2)
        .position(|w| w[0] == 0xFF && w[1] >= 0x80)
        .unwrap_or(data.len())
}

// ---------------------------------------------------------------------------
// Coding parameters (C.2.4.1, A.2.1).
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interleave {
    None,
    Line,
    Sample,
}

/// Parameters that are fixed for one scan.
#[derive(Clone, Copy, Debug)]
struct Params {
    maxval: i32,
    near: i32,
    range: i32,
    qbpp: u32,
    limit: u32,
    t1: i32,
    t2: i32,
    t3: i32,
    reset: i32,
}

/// Smallest k with 2^k >= n.
fn ceil_log2(n: i32) -> u32 {
    let mut k = 0;
    while (1i64 << k) < n as i64 {
        k += 1;
    }
    k
}

/// Default gradient thresholds (C.2.4.1.1.1).
fn default_thresholds(maxval: i32, near: i32) -> (i32, i32, i32) {
    const BASIC_T1: i32 = 3;
    const BASIC_T2: i32 = 7;
    const BASIC_T3: i32 = 21;
    let clamp = |i: i32, j: i32| if i > maxval || i < j { j } else { i };
    if maxval >= 128 {
        let factor = (maxval.min(4095) + 128) / 256;
        let t1 = clamp(factor * (BASIC_T1 - 2) + 2 + 3 * near, near + 1);
        let t2 = clamp(factor * (BASIC_T2 - 3) + 3 + 5 * near, t1);
        let t3 = clamp(factor * (BASIC_T3 - 4) + 4 + 7 * near, t2);
        (t1, t2, t3)
    } else {
        let factor = 256 / (maxval + 1);
        let t1 = clamp((BASIC_T1 / factor + 3 * near).max(2), near + 1);
        let t2 = clamp((BASIC_T2 / factor + 5 * near).max(3), t1);
        let t3 = clamp((BASIC_T3 / factor + 7 * near).max(4), t2);
        (t1, t2, t3)
    }
}

impl Params {
    fn new(precision: u8, preset: Preset, near: u8) -> Result<Params> {
        let full = (1i32 << precision) - 1;
        let maxval = if preset.maxval == 0 {
            full
        } else {
            preset.maxval as i32
        };
        if maxval > full {
            return err(format!("MAXVAL {maxval} does not fit in {precision} bits"));
        }
        let near = near as i32;
        if near > maxval / 2 {
            return err(format!("NEAR {near} is too large for MAXVAL {maxval}"));
        }
        // A.2.1: RANGE, qbpp, bpp and LIMIT.
        let range = (maxval + 2 * near) / (2 * near + 1) + 1;
        let qbpp = ceil_log2(range);
        let bpp = ceil_log2(maxval + 1).max(2);
        let limit = 2 * (bpp + bpp.max(8));

        let (d1, d2, d3) = default_thresholds(maxval, near);
        let pick = |given: u16, default: i32| if given == 0 { default } else { given as i32 };
        let (t1, t2, t3) = (
            pick(preset.t1, d1),
            pick(preset.t2, d2),
            pick(preset.t3, d3),
        );
        if !(near < t1 && t1 <= t2 && t2 <= t3 && t3 <= maxval) {
            return err(format!("invalid thresholds T1={t1} T2={t2} T3={t3}"));
        }
        let reset = pick(preset.reset, 64);
        if !(3..=maxval.max(255)).contains(&reset) {
            return err(format!("invalid RESET {reset}"));
        }
        Ok(Params {
            maxval,
            near,
            range,
            qbpp,
            limit,
            t1,
            t2,
            t3,
            reset,
        })
    }

    /// A.3.3: quantization of a local gradient into -4..=4.
    fn quantize(&self, d: i32) -> i32 {
        if d <= -self.t3 {
            -4
        } else if d <= -self.t2 {
            -3
        } else if d <= -self.t1 {
            -2
        } else if d < -self.near {
            -1
        } else if d <= self.near {
            0
        } else if d < self.t1 {
            1
        } else if d < self.t2 {
            2
        } else if d < self.t3 {
            3
        } else {
            4
        }
    }

    /// A.3.1: run mode is selected when all gradients are within NEAR.
    fn is_flat(&self, d1: i32, d2: i32, d3: i32) -> bool {
        d1.abs() <= self.near && d2.abs() <= self.near && d3.abs() <= self.near
    }

    /// Reconstructed value from a prediction and a signed quantized error:
    /// undo the modulo reduction (A.4.4 / A.5.1) and clamp to 0..=MAXVAL.
    fn reconstruct(&self, prediction: i32, error: i32) -> i32 {
        let step = 2 * self.near + 1;
        let mut value = prediction + error * step;
        if value < -self.near {
            value += self.range * step;
        } else if value > self.maxval + self.near {
            value -= self.range * step;
        }
        value.clamp(0, self.maxval)
    }

    /// Upper bound on a mapped error value. Conforming streams never exceed
    /// RANGE; the looser bound only keeps arithmetic small on corrupt data.
    fn max_mapped_error(&self) -> u64 {
        2u64 << self.qbpp
    }
}

// ---------------------------------------------------------------------------
// Context variables (A.2.1, A.6, A.7.2).
// ---------------------------------------------------------------------------

/// Run-length order J[RUNindex] (A.7.1.1).
const J: [u32; 32] = [
    0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13,
    14, 15,
];

/// Number of regular-mode contexts (A.3.4).
const REGULAR_CONTEXTS: usize = 365;

#[derive(Clone, Copy)]
struct RegularContext {
    a: i64,
    b: i32,
    c: i32,
    n: i32,
}

#[derive(Clone, Copy)]
struct RunContext {
    a: i64,
    n: i32,
    nn: i32,
}

/// Golomb parameter k: the smallest k with N * 2^k >= A (A.5.1, A.7.2).
fn golomb_k(n: i32, a: i64) -> u32 {
    let mut k = 0;
    while k < 40 && ((n as i64) << k) < a {
        k += 1;
    }
    k
}

// ---------------------------------------------------------------------------
// Bit input with marker stuffing (A.1, C.1.3 / 9.1).
// ---------------------------------------------------------------------------

/// MSB-first bit reader over one entropy-coded segment. After a 0xFF byte
/// the next byte carries only 7 bits (its stuffed high bit is dropped).
/// Past the end it supplies zero bits and records how many, so that a
/// truncated stream is detected without any read failing mid-sample.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Pending bits, left-aligned; bits below the `bits` valid ones are 0.
    acc: u64,
    bits: u32,
    after_ff: bool,
    /// Zero bits supplied beyond the end of the data.
    padding: u64,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            acc: 0,
            bits: 0,
            after_ff: false,
            padding: 0,
        }
    }

    /// Tops up the accumulator to at least 57 bits.
    fn refill(&mut self) {
        while self.bits <= 56 {
            let (value, width) = match self.data.get(self.pos) {
                Some(&byte) => {
                    self.pos += 1;
                    let stuffed = self.after_ff;
                    self.after_ff = byte == 0xFF;
                    if stuffed { (byte & 0x7F, 7) } else { (byte, 8) }
                }
                None => {
                    self.padding += 8;
                    (0, 8)
                }
            };
            self.acc |= (value as u64) << (64 - self.bits - width);
            self.bits += width;
        }
    }

    /// True once bits beyond the end of the data have been consumed.
    fn overrun(&self) -> bool {
        self.padding > self.bits as u64
    }

    fn consume(&mut self, n: u32) {
        self.acc = if n >= 64 { 0 } else { self.acc << n };
        self.bits -= n;
    }

    fn read_bit(&mut self) -> bool {
        if self.bits == 0 {
            self.refill();
        }
        let bit = self.acc >> 63 == 1;
        self.consume(1);
        bit
    }

    /// Reads `n` (at most 56) bits as an unsigned number.
    fn read_bits(&mut self, n: u32) -> u64 {
        debug_assert!(n <= 56);
        if n == 0 {
            return 0;
        }
        if self.bits < n {
            self.refill();
        }
        let value = self.acc >> (64 - n);
        self.consume(n);
        value
    }

    /// Counts zero bits up to and including the terminating 1 bit; more
    /// than `max_zeros` zeros is an error.
    fn read_unary(&mut self, max_zeros: u32) -> Result<u32> {
        let mut zeros = 0;
        loop {
            if self.bits == 0 {
                self.refill();
            }
            let leading = self.acc.leading_zeros();
            if leading < self.bits {
                zeros += leading;
                self.consume(leading + 1);
                break;
            }
            zeros += self.bits;
            self.consume(self.bits);
            if zeros > max_zeros {
                break;
            }
        }
        if zeros > max_zeros {
            return err("invalid Golomb code (prefix too long)");
        }
        Ok(zeros)
    }

    /// Limited-length Golomb code LG(k, limit) (A.5.3): a unary prefix,
    /// then k low bits, or after the escape prefix the value - 1 in qbpp bits.
    fn read_golomb(&mut self, k: u32, limit: u32, qbpp: u32, max_value: u64) -> Result<i32> {
        let escape = limit.saturating_sub(qbpp + 1);
        let prefix = self.read_unary(escape)?;
        let value = if prefix < escape {
            ((prefix as u64) << k) | self.read_bits(k)
        } else {
            self.read_bits(qbpp) + 1
        };
        if value > max_value {
            return err("invalid Golomb code (value out of range)");
        }
        Ok(value as i32)
    }
}

// ---------------------------------------------------------------------------
// Scan decoding (Annex A for one component, Annex B for interleaving).
// ---------------------------------------------------------------------------

/// Two reconstructed lines of one component, each with one extra sample on
/// both sides: sample x lives at index x + 1.
struct Lines {
    prev: Vec<i32>,
    cur: Vec<i32>,
    /// RUNindex (A.7.1.1); per component in line-interleaved mode.
    run_index: usize,
}

impl Lines {
    fn new(width: usize) -> Self {
        Lines {
            prev: vec![0; width + 2],
            cur: vec![0; width + 2],
            run_index: 0,
        }
    }

    /// Edge neighbours (A.2.1, Figure A.1 notes): the sample left of the
    /// first column equals the one above it (so Ra = Rb there and Rc is the
    /// previous line's Ra), and the one right of the last column equals Rb.
    fn start_line(&mut self, width: usize) {
        self.cur[0] = self.prev[1];
        self.prev[width + 1] = self.prev[width];
    }

    fn end_line(&mut self) {
        std::mem::swap(&mut self.prev, &mut self.cur);
    }

    /// Causal neighbours (Ra, Rb, Rc, Rd) of sample x (A.2.1, Figure A.2).
    fn neighbours(&self, x: usize) -> (i32, i32, i32, i32) {
        (
            self.cur[x],
            self.prev[x + 1],
            self.prev[x],
            self.prev[x + 2],
        )
    }

    /// Copies the current line into the interleaved output row.
    fn store(&self, row: &mut [u16], component: usize, stride: usize) {
        let width = self.cur.len() - 2;
        for (out, &value) in row[component..]
            .iter_mut()
            .step_by(stride)
            .zip(&self.cur[1..=width])
        {
            *out = value as u16; // always within 0..=MAXVAL
        }
    }
}

/// One scan: which components it codes and how.
struct Scan<'f> {
    frame: &'f Frame,
    components: &'f [usize],
    interleave: Interleave,
    params: Params,
}

impl Scan<'_> {
    fn decode(&self, ecs: &[u8], samples: &mut [u16]) -> Result<()> {
        let width = self.frame.width;
        let stride = self.frame.ids.len();
        let mut decoder = ScanDecoder::new(ecs, self.params, width);
        let mut lines: Vec<Lines> = self.components.iter().map(|_| Lines::new(width)).collect();
        let mut sample_run_index = 0;

        for row in samples
            .chunks_exact_mut(width * stride)
            .take(self.frame.height)
        {
            for component in lines.iter_mut() {
                component.start_line(width);
            }
            match self.interleave {
                // B.3: all components of a pixel in turn, sharing one RUNindex.
                Interleave::Sample => {
                    decoder.decode_pixel_line(&mut lines, &mut sample_run_index)?
                }
                // A single component, or (B.2) one line of each component in turn.
                Interleave::None | Interleave::Line => {
                    for component in lines.iter_mut() {
                        decoder.decode_line(component)?;
                    }
                }
            }
            if decoder.bits.overrun() {
                return err("entropy-coded data ends before the image is complete");
            }
            for (component, &index) in lines.iter_mut().zip(self.components) {
                component.store(row, index, stride);
                component.end_line();
            }
        }
        Ok(())
    }
}

/// The state of the decoding process within one scan. Context variables are
/// shared by all components of the scan.
struct ScanDecoder<'a> {
    bits: BitReader<'a>,
    p: Params,
    regular: [RegularContext; REGULAR_CONTEXTS],
    run: [RunContext; 2],
    width: usize,
}

impl<'a> ScanDecoder<'a> {
    /// A.2.1: initialisation of the context variables.
    fn new(ecs: &'a [u8], p: Params, width: usize) -> Self {
        let a = ((p.range + 32) / 64).max(2) as i64;
        ScanDecoder {
            bits: BitReader::new(ecs),
            p,
            regular: [RegularContext {
                a,
                b: 0,
                c: 0,
                n: 1,
            }; REGULAR_CONTEXTS],
            run: [RunContext { a, n: 1, nn: 0 }; 2],
            width,
        }
    }

    /// Decodes one line of a single component.
    fn decode_line(&mut self, lines: &mut Lines) -> Result<()> {
        let mut x = 0;
        while x < self.width {
            let (ra, rb, rc, rd) = lines.neighbours(x);
            if self.p.is_flat(rd - rb, rb - rc, rc - ra) {
                x = self.decode_run(lines, x)?;
            } else {
                lines.cur[x + 1] = self.decode_regular(ra, rb, rc, rd)?;
                x += 1;
            }
        }
        Ok(())
    }

    /// Decodes one line of a sample-interleaved scan (B.3): run mode is used
    /// only when every component is flat, and a run covers whole pixels.
    fn decode_pixel_line(&mut self, lines: &mut [Lines], run_index: &mut usize) -> Result<()> {
        let mut x = 0;
        while x < self.width {
            let flat = lines.iter().all(|l| {
                let (ra, rb, rc, rd) = l.neighbours(x);
                self.p.is_flat(rd - rb, rb - rc, rc - ra)
            });
            if flat {
                let (length, interrupted) = self.decode_run_length(run_index, self.width - x)?;
                for l in lines.iter_mut() {
                    let ra = l.cur[x];
                    l.cur[x + 1..=x + length].fill(ra);
                }
                x += length;
                if interrupted {
                    // Each component's interruption sample uses RItype 0.
                    for l in lines.iter_mut() {
                        let (ra, rb) = (l.cur[x], l.prev[x + 1]);
                        l.cur[x + 1] = self.decode_run_interruption(ra, rb, 0, *run_index)?;
                    }
                    *run_index = run_index.saturating_sub(1);
                    x += 1;
                }
            } else {
                for l in lines.iter_mut() {
                    let (ra, rb, rc, rd) = l.neighbours(x);
                    l.cur[x + 1] = self.decode_regular(ra, rb, rc, rd)?;
                }
                x += 1;
            }
        }
        Ok(())
    }

    /// Regular mode for one sample (A.3 to A.6).
    fn decode_regular(&mut self, ra: i32, rb: i32, rc: i32, rd: i32) -> Result<i32> {
        let p = &self.p;
        // A.3.3, A.3.4: quantized gradients give the context and its sign.
        let q = 81 * p.quantize(rd - rb) + 9 * p.quantize(rb - rc) + p.quantize(rc - ra);
        let (sign, index) = if q < 0 {
            (-1, (-q) as usize)
        } else {
            (1, q as usize)
        };
        let ctx = &mut self.regular[index];

        // A.4.1 edge-detecting predictor, A.4.2 prediction correction.
        let prediction = (med(ra, rb, rc) + sign * ctx.c).clamp(0, p.maxval);

        // A.5.1 Golomb parameter, A.5.3 code, A.5.2 inverse error mapping.
        let k = golomb_k(ctx.n, ctx.a);
        let mapped = self
            .bits
            .read_golomb(k, p.limit, p.qbpp, p.max_mapped_error())?;
        let mut error = if mapped & 1 == 0 {
            mapped >> 1
        } else {
            -((mapped + 1) >> 1)
        };
        if p.near == 0 && k == 0 && 2 * ctx.b <= -ctx.n {
            error = -(error + 1);
        }

        update_regular(ctx, error, p);
        Ok(p.reconstruct(prediction, sign * error))
    }

    /// Run mode (A.7): decodes a run starting at x and, unless it reaches
    /// the end of the line, the interruption sample. Returns the next x.
    fn decode_run(&mut self, lines: &mut Lines, x: usize) -> Result<usize> {
        let ra = lines.cur[x];
        let (length, interrupted) = self.decode_run_length(&mut lines.run_index, self.width - x)?;
        lines.cur[x + 1..=x + length].fill(ra);
        let x = x + length;
        if !interrupted {
            return Ok(x);
        }
        let rb = lines.prev[x + 1];
        let ri_type = usize::from((ra - rb).abs() <= self.p.near);
        lines.cur[x + 1] = self.decode_run_interruption(ra, rb, ri_type, lines.run_index)?;
        lines.run_index = lines.run_index.saturating_sub(1);
        Ok(x + 1)
    }

    /// A.7.1: run length in a line with `remaining` samples left. Returns the
    /// length and whether the run ends with an interruption sample.
    fn decode_run_length(
        &mut self,
        run_index: &mut usize,
        remaining: usize,
    ) -> Result<(usize, bool)> {
        let mut length = 0;
        loop {
            let order = J[*run_index];
            if self.bits.read_bit() {
                // A full segment of 2^J samples, or the rest of the line.
                let segment = 1usize << order;
                let taken = segment.min(remaining - length);
                length += taken;
                if taken == segment && *run_index < J.len() - 1 {
                    *run_index += 1;
                }
                if length == remaining {
                    return Ok((length, false));
                }
            } else {
                // The run ends before the line does: J more bits of length.
                length += self.bits.read_bits(order) as usize;
                if length >= remaining {
                    return err("run extends past the end of the line");
                }
                return Ok((length, true));
            }
        }
    }

    /// A.7.2: the sample that interrupts a run.
    fn decode_run_interruption(
        &mut self,
        ra: i32,
        rb: i32,
        ri_type: usize,
        run_index: usize,
    ) -> Result<i32> {
        let p = &self.p;
        let ctx = &mut self.run[ri_type];
        let temp = if ri_type == 1 {
            ctx.a + (ctx.n >> 1) as i64
        } else {
            ctx.a
        };
        let k = golomb_k(ctx.n, temp);
        let glimit = p.limit - J[run_index] - 1;
        let mapped = self
            .bits
            .read_golomb(k, glimit, p.qbpp, p.max_mapped_error())?;

        // Inverse of EMErrval = 2|Errval| - RItype - map.
        let t = mapped + ri_type as i32;
        let map = t & 1 == 1;
        let magnitude = (t + i32::from(map)) >> 1;
        let positive = map == (k == 0 && 2 * ctx.nn < ctx.n);
        let error = if positive { magnitude } else { -magnitude };

        // A.7.2.2 context update.
        if error < 0 {
            ctx.nn += 1;
        }
        ctx.a += ((mapped + 1 - ri_type as i32) >> 1) as i64;
        if ctx.n == p.reset {
            ctx.a >>= 1;
            ctx.n >>= 1;
            ctx.nn >>= 1;
        }
        ctx.n += 1;

        let (prediction, sign) = if ri_type == 1 {
            (ra, 1)
        } else {
            (rb, if ra > rb { -1 } else { 1 })
        };
        Ok(p.reconstruct(prediction, sign * error))
    }
}

/// A.4.1: median edge-detecting predictor.
fn med(ra: i32, rb: i32, rc: i32) -> i32 {
    if rc >= ra.max(rb) {
        ra.min(rb)
    } else if rc <= ra.min(rb) {
        ra.max(rb)
    } else {
        ra + rb - rc
    }
}

/// A.6.1 update of A, B, N and A.6.2 bias correction of C.
fn update_regular(ctx: &mut RegularContext, error: i32, p: &Params) {
    ctx.b += error * (2 * p.near + 1);
    ctx.a += error.abs() as i64;
    if ctx.n == p.reset {
        ctx.a >>= 1;
        ctx.b = if ctx.b >= 0 {
            ctx.b >> 1
        } else {
            -((1 - ctx.b) >> 1)
        };
        ctx.n >>= 1;
    }
    ctx.n += 1;

    if ctx.b <= -ctx.n {
        ctx.b += ctx.n;
        if ctx.c > -128 {
            ctx.c -= 1;
        }
        if ctx.b <= -ctx.n {
            ctx.b = -ctx.n + 1;
        }
    } else if ctx.b > 0 {
        ctx.b -= ctx.n;
        if ctx.c < 127 {
            ctx.c += 1;
        }
        if ctx.b > 0 {
            ctx.b = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_thresholds_match_the_standard() {
        // Table C.3 values for 8 and 16 bits, lossless.
        assert_eq!(default_thresholds(255, 0), (3, 7, 21));
        assert_eq!(default_thresholds(65535, 0), (18, 67, 276));
        // Near-lossless adds 3, 5, 7 times NEAR.
        assert_eq!(default_thresholds(65535, 2), (24, 77, 290));
        // Small MAXVAL (7 bits) scales the basic thresholds down.
        assert_eq!(default_thresholds(127, 0), (2, 3, 10));
        // Thresholds are clamped to MAXVAL.
        assert_eq!(default_thresholds(3, 1), (3, 3, 3));
    }

    #[test]
    fn default_parameters_are_always_valid() {
        // Every MAXVAL with a spread of NEAR values up to the allowed maximum.
        for maxval in 1..=65535u16 {
            let max_near = (maxval / 2).min(255);
            for near in [
                0,
                1,
                2,
                3,
                max_near / 2,
                max_near.saturating_sub(1),
                max_near,
            ] {
                if near > max_near {
                    continue;
                }
                let preset = Preset {
                    maxval,
                    ..Preset::default()
                };
                let p = Params::new(16, preset, near as u8);
                assert!(p.is_ok(), "MAXVAL {maxval} NEAR {near}: {:?}", p.err());
            }
        }
    }

    #[test]
    fn bit_reader_drops_stuffed_bits() {
        // 0xFF then 0x7F: 8 ones, then 7 ones from the stuffed byte.
        let mut r = BitReader::new(&[0xFF, 0x7F, 0x80]);
        assert_eq!(r.read_bits(15), 0x7FFF);
        assert!(r.read_bit());
        assert!(!r.overrun());
        r.read_bits(7);
        assert!(!r.overrun());
        r.read_bit();
        assert!(r.overrun());
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[0xFF, 0xD8]).is_err());
        assert!(decode(&[0xFF, 0xD8, 0xFF, 0xD9]).is_err());
        assert!(decode(&[0xFF, 0xD8, 0xFF, 0xF7, 0x00]).is_err());
    }

    #[test]
    fn refuses_oversized_images() {
        // 65535 x 65535 x 3 samples.
        let data = [
            0xFF, 0xD8, 0xFF, 0xF7, 0x00, 0x11, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x03, 1, 0x11, 0, 2,
            0x11, 0, 3, 0x11, 0,
        ];
        let e = decode(&data).unwrap_err();
        assert!(e.0.contains("exceeds"), "{e}");
    }
}
