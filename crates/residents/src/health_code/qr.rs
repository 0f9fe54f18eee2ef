//! The QR image of a health code, as SVG and as PNG. The matrix comes from the `qrcode` crate;
//! the two renderings are small enough to write here, which keeps an image library (and its
//! codecs) out of the build. The PNG is 1-bit greyscale, compressed with stored deflate blocks:
//! a few kilobytes, which every decoder reads.

use qrcode::{Color, EcLevel, QrCode};

/// Quiet zone around the symbol, in modules, as the QR standard asks.
const QUIET: usize = 4;
/// Pixels per module in the PNG.
const SCALE: usize = 6;

/// The dark/light matrix of `text`, row by row, and its width.
pub fn matrix(text: &str) -> Option<(Vec<bool>, usize)> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    Some((
        colors.into_iter().map(|c| c == Color::Dark).collect(),
        width,
    ))
}

/// An SVG of the symbol: one path of unit squares, scaled by the viewer.
pub fn svg(text: &str) -> Option<String> {
    let (dark, width) = matrix(text)?;
    let size = width + 2 * QUIET;
    let mut path = String::with_capacity(dark.len() * 4);
    for y in 0..width {
        for x in 0..width {
            if dark[y * width + x] {
                path.push_str(&format!("M{} {}h1v1h-1z", x + QUIET, y + QUIET));
            }
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    ))
}

/// A PNG of the symbol.
pub fn png(text: &str) -> Option<Vec<u8>> {
    let (dark, width) = matrix(text)?;
    let pixels = (width + 2 * QUIET) * SCALE;
    let row_bytes = pixels.div_ceil(8);
    let mut raw = Vec::with_capacity((row_bytes + 1) * pixels);
    for py in 0..pixels {
        raw.push(0); // filter: none
        let mut row = vec![0xFFu8; row_bytes];
        let my = py / SCALE;
        for px in 0..pixels {
            let mx = px / SCALE;
            let is_dark = my >= QUIET
                && mx >= QUIET
                && my < QUIET + width
                && mx < QUIET + width
                && dark[(my - QUIET) * width + (mx - QUIET)];
            if is_dark {
                row[px / 8] &= !(0x80 >> (px % 8));
            }
        }
        raw.extend_from_slice(&row);
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&(pixels as u32).to_be_bytes());
    header.extend_from_slice(&(pixels as u32).to_be_bytes());
    header.extend_from_slice(&[1, 0, 0, 0, 0]); // 1 bit, greyscale, deflate, no filter set, no interlace
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    Some(out)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(65_535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
