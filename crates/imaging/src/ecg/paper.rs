//! A tracing on standard ECG paper: 25 mm/s and 10 mm/mV, 1 mm and 5 mm grid, a 1 mV
//! calibration pulse at the start of each row. A standard 12-lead recording is laid out in
//! three rows of four 2.5 s columns (I, II, III | aVR, aVL, aVF | V1–V3 | V4–V6) with lead II
//! as a 10 s rhythm strip beneath; any other recording has each lead as a strip of its own.
//! One layout ([`Sheet`]) is written as SVG (millimetres as user units) or drawn as PNG.

use std::fmt::Write as _;

use dicom_pixeldata::image::{DynamicImage, Rgb, RgbImage};

use super::{Measurements, STANDARD_LEADS, Tracing};
use crate::ImagingError;

/// Paper speed, mm/s.
pub const MM_PER_SECOND: f64 = 25.0;
/// Gain, mm/mV.
pub const MM_PER_MILLIVOLT: f64 = 10.0;
/// At most this much of a recording is drawn, in seconds (a standard page).
pub const PAGE_SECONDS: f64 = 10.0;

const LEFT: f64 = 10.0;
const RIGHT: f64 = 5.0;
const HEADER: f64 = 14.0;
const ROW: f64 = 30.0;
const BOTTOM: f64 = 4.0;
/// Traces are drawn with a point every this many millimetres (its smallest and largest
/// sample, so no peak is lost).
const BIN_MM: f64 = 0.2;

/// One strip of a lead on the sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct Strip {
    pub lead: usize,
    /// Samples `[from, to)` of the lead.
    pub from: usize,
    pub to: usize,
    /// Where the strip starts, mm from the left.
    pub x: f64,
    /// Its baseline (0 mV), mm from the top.
    pub y: f64,
}

/// The tracing laid out on a sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    pub width: f64,
    pub height: f64,
    pub strips: Vec<Strip>,
    /// The baselines of the rows, each with a calibration pulse.
    pub rows: Vec<f64>,
}

/// Lays `tracing` out: the 12-lead layout when it has the twelve standard leads, else one
/// strip per lead.
pub fn layout(tracing: &Tracing) -> Sheet {
    let samples = tracing.samples();
    let shown = samples.min((PAGE_SECONDS * tracing.sample_rate) as usize);
    let width_mm = shown as f64 / tracing.sample_rate * MM_PER_SECOND;
    let row_y = |row: usize| HEADER + ROW * (row as f64 + 0.5);
    let index = |name: &str| tracing.leads.iter().position(|l| l.name == name);
    let standard: Option<Vec<usize>> = STANDARD_LEADS.iter().map(|n| index(n)).collect();
    let mut strips = Vec::new();
    let rows = match standard {
        Some(leads) => {
            let column = shown / 4;
            for (at, lead) in leads.into_iter().enumerate() {
                let (col, row) = (at / 3, at % 3);
                strips.push(Strip {
                    lead,
                    from: col * column,
                    to: (col + 1) * column,
                    x: LEFT + (col * column) as f64 / tracing.sample_rate * MM_PER_SECOND,
                    y: row_y(row),
                });
            }
            let rhythm = index("II").unwrap_or(0);
            strips.push(Strip {
                lead: rhythm,
                from: 0,
                to: shown,
                x: LEFT,
                y: row_y(3),
            });
            4
        }
        None => {
            for lead in 0..tracing.leads.len() {
                strips.push(Strip {
                    lead,
                    from: 0,
                    to: shown,
                    x: LEFT,
                    y: row_y(lead),
                });
            }
            tracing.leads.len()
        }
    };
    Sheet {
        width: LEFT + width_mm + RIGHT,
        height: HEADER + ROW * rows as f64 + BOTTOM,
        strips,
        rows: (0..rows).map(row_y).collect(),
    }
}

/// A strip's points in mm: per [`BIN_MM`] of paper, the bin's samples in time order reduced
/// to their smallest and largest.
fn points(tracing: &Tracing, strip: &Strip) -> Vec<(f64, f64)> {
    let values = &tracing.leads[strip.lead].microvolts[strip.from..strip.to];
    let mm_per_sample = MM_PER_SECOND / tracing.sample_rate;
    let per_bin = ((BIN_MM / mm_per_sample).floor() as usize).max(1);
    let y = |uv: f64| strip.y - uv / 1000.0 * MM_PER_MILLIVOLT;
    let x = |i: usize| strip.x + i as f64 * mm_per_sample;
    let mut out = Vec::with_capacity(2 * values.len() / per_bin + 2);
    for (bin, chunk) in values.chunks(per_bin).enumerate() {
        let start = bin * per_bin;
        if per_bin <= 2 {
            out.extend(chunk.iter().enumerate().map(|(i, v)| (x(start + i), y(*v))));
            continue;
        }
        let (mut low, mut high) = (0, 0);
        for (i, v) in chunk.iter().enumerate() {
            if *v < chunk[low] {
                low = i;
            }
            if *v > chunk[high] {
                high = i;
            }
        }
        let (first, second) = if low <= high {
            (low, high)
        } else {
            (high, low)
        };
        out.push((x(start + first), y(chunk[first])));
        if second != first {
            out.push((x(start + second), y(chunk[second])));
        }
    }
    out
}

/// The measurements printed above the tracing.
pub fn caption(measurements: Option<&Measurements>) -> String {
    let speed = format!("{MM_PER_SECOND} mm/s  {MM_PER_MILLIVOLT} mm/mV");
    let Some(m) = measurements else {
        return speed;
    };
    let pr = m
        .pr_ms
        .map_or_else(|| "PR —".to_owned(), |pr| format!("PR {pr:.0} ms"));
    format!(
        "HR {:.0}/min  RR {:.0} ms  {pr}  QRS {:.0} ms  QT {:.0} ms  QTcB {:.0} ms  QTcF {:.0} ms   {speed}",
        m.heart_rate_bpm, m.rr_ms, m.qrs_ms, m.qt_ms, m.qtc_bazett_ms, m.qtc_fridericia_ms
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The tracing as an SVG document, its size in millimetres; the measurements are in the
/// caption and as `data-` attributes of the root for programs.
pub fn svg(tracing: &Tracing, measurements: Option<&Measurements>, title: &str) -> String {
    let sheet = layout(tracing);
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.1}mm" height="{h:.1}mm" viewBox="0 0 {w:.1} {h:.1}" font-family="sans-serif" data-mm-per-second="{MM_PER_SECOND}" data-mm-per-millivolt="{MM_PER_MILLIVOLT}""#,
        w = sheet.width,
        h = sheet.height
    );
    if let Some(m) = measurements {
        let _ = write!(
            out,
            r#" data-heart-rate="{:.0}" data-rr="{:.0}" data-qrs="{:.0}" data-qt="{:.0}" data-qtc-bazett="{:.0}" data-qtc-fridericia="{:.0}""#,
            m.heart_rate_bpm, m.rr_ms, m.qrs_ms, m.qt_ms, m.qtc_bazett_ms, m.qtc_fridericia_ms
        );
        if let Some(pr) = m.pr_ms {
            let _ = write!(out, r#" data-pr="{pr:.0}""#);
        }
    }
    out.push('>');
    let _ = write!(out, "<title>{}</title>", escape(title));
    out.push_str(concat!(
        r##"<defs><pattern id="minor" width="1" height="1" patternUnits="userSpaceOnUse">"##,
        r##"<path d="M1,0V1H0" fill="none" stroke="#f4c2c2" stroke-width="0.05"/></pattern>"##,
        r##"<pattern id="major" width="5" height="5" patternUnits="userSpaceOnUse">"##,
        r##"<rect width="5" height="5" fill="url(#minor)"/>"##,
        r##"<path d="M5,0V5H0" fill="none" stroke="#e08080" stroke-width="0.15"/></pattern></defs>"##
    ));
    let _ = write!(
        out,
        r##"<rect width="100%" height="100%" fill="#fff8f8"/><rect x="0" y="{HEADER}" width="{:.1}" height="{:.1}" fill="url(#major)"/>"##,
        sheet.width,
        sheet.height - HEADER
    );
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="5" font-size="3.5">{}</text><text x="{LEFT}" y="10.5" font-size="3.2">{}</text>"#,
        escape(title),
        escape(&caption(measurements))
    );
    for y in &sheet.rows {
        let _ = write!(
            out,
            r#"<path d="M2,{y:.2}h1v-10h5v10h1" fill="none" stroke="black" stroke-width="0.25"/>"#
        );
    }
    for strip in &sheet.strips {
        let name = &tracing.leads[strip.lead].name;
        let _ = write!(
            out,
            r#"<text x="{:.2}" y="{:.2}" font-size="3.5" class="lead">{}</text>"#,
            strip.x + 1.0,
            strip.y - 9.0,
            escape(name)
        );
        if strip.x > LEFT {
            let _ = write!(
                out,
                r#"<path d="M{:.2},{:.2}v6" stroke="black" stroke-width="0.25"/>"#,
                strip.x,
                strip.y - 3.0
            );
        }
        out.push_str(
            r#"<path fill="none" stroke="black" stroke-width="0.25" stroke-linejoin="round" d=""#,
        );
        for (i, (x, y)) in points(tracing, strip).into_iter().enumerate() {
            let _ = write!(out, "{}{x:.2},{y:.2}", if i == 0 { "M" } else { "L" });
        }
        out.push_str(r#""/>"#);
    }
    out.push_str("</svg>");
    out
}

/// The tracing drawn as a PNG at `pixels_per_mm`, as [`raster`].
pub fn png(
    tracing: &Tracing,
    measurements: Option<&Measurements>,
    pixels_per_mm: f64,
) -> Result<Vec<u8>, ImagingError> {
    let mut out = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(raster(tracing, measurements, pixels_per_mm))
        .write_to(&mut out, dicom_pixeldata::image::ImageFormat::Png)
        .map_err(|e| {
            ImagingError::Unrenderable(format!("the tracing could not be encoded: {e}"))
        })?;
    Ok(out.into_inner())
}

/// The tracing drawn at `pixels_per_mm` (4 to 20), with the lead names and the caption in a
/// small bitmap font.
pub fn raster(
    tracing: &Tracing,
    measurements: Option<&Measurements>,
    pixels_per_mm: f64,
) -> RgbImage {
    let scale = pixels_per_mm.clamp(4.0, 20.0);
    let sheet = layout(tracing);
    let width = (sheet.width * scale).ceil() as u32;
    let height = (sheet.height * scale).ceil() as u32;
    let mut image = RgbImage::from_pixel(width, height, Rgb([255, 248, 248]));
    let top = (HEADER * scale) as u32;
    for mm in 0..=(sheet.width as u32) {
        let colour = if mm % 5 == 0 { MAJOR } else { MINOR };
        let x = (f64::from(mm) * scale) as u32;
        for y in top..height {
            put(&mut image, x, y, colour);
        }
    }
    for mm in 0..=((sheet.height - HEADER) as u32) {
        let colour = if mm % 5 == 0 { MAJOR } else { MINOR };
        let y = top + (f64::from(mm) * scale) as u32;
        for x in 0..width {
            put(&mut image, x, y, colour);
        }
    }
    let px = |mm: f64| mm * scale;
    for y in &sheet.rows {
        let pulse = [
            (2.0, *y),
            (3.0, *y),
            (3.0, y - 10.0),
            (8.0, y - 10.0),
            (8.0, *y),
            (9.0, *y),
        ];
        polyline(&mut image, &pulse, scale);
    }
    let glyph = (scale / 4.0).round().max(1.0) as u32;
    for strip in &sheet.strips {
        let name = &tracing.leads[strip.lead].name;
        text(
            &mut image,
            px(strip.x + 1.0) as u32,
            px(strip.y - 12.0) as u32,
            name,
            glyph,
        );
        polyline(&mut image, &points(tracing, strip), scale);
    }
    text(
        &mut image,
        px(LEFT) as u32,
        px(4.0) as u32,
        &caption(measurements),
        glyph,
    );
    image
}

const MINOR: Rgb<u8> = Rgb([244, 200, 200]);
const MAJOR: Rgb<u8> = Rgb([224, 128, 128]);
const INK: Rgb<u8> = Rgb([0, 0, 0]);

fn put(image: &mut RgbImage, x: u32, y: u32, colour: Rgb<u8>) {
    if x < image.width() && y < image.height() {
        image.put_pixel(x, y, colour);
    }
}

/// Joins `points` (in mm) with lines, at `scale` pixels a millimetre.
fn polyline(image: &mut RgbImage, points: &[(f64, f64)], scale: f64) {
    for pair in points.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        line(
            image,
            from.0 * scale,
            from.1 * scale,
            to.0 * scale,
            to.1 * scale,
        );
    }
}

/// A line two pixels wide (Bresenham's, with the pixel beneath each), clipped to the image
/// first: a trace far off the paper (a hostile recording's kilovolts) was walked pixel by
/// pixel, a million steps a segment and minutes a page (fuzz finding F13).
fn line(image: &mut RgbImage, x0: f64, y0: f64, x1: f64, y1: f64) {
    let (width, height) = (f64::from(image.width()), f64::from(image.height()));
    let Some((x0, y0, x1, y1)) = clip((x0, y0), (x1, y1), width, height) else {
        return;
    };
    let round = |v: f64| v.round() as i64;
    let (mut x, mut y, x1, y1) = (round(x0), round(y0), round(x1), round(y1));
    let dx = (x1 - x).abs();
    let dy = -(y1 - y).abs();
    let (sx, sy) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
    let mut error = dx + dy;
    loop {
        if x >= 0 && y >= 0 {
            put(image, x as u32, y as u32, INK);
            put(image, x as u32, y as u32 + 1, INK);
        }
        if x == x1 && y == y1 {
            break;
        }
        let doubled = 2 * error;
        if doubled >= dy {
            error += dy;
            x += sx;
        }
        if doubled <= dx {
            error += dx;
            y += sy;
        }
    }
}

/// The part of the segment from `a` to `b` inside -1..=`width`, -1..=`height` (Liang and
/// Barsky's clipping), its ends unchanged where they are inside; none when it misses the image
/// or is not a number. Ends are first bounded to ±1e9, so that infinite ones clip too.
fn clip(a: (f64, f64), b: (f64, f64), width: f64, height: f64) -> Option<(f64, f64, f64, f64)> {
    let bound = |v: f64| v.clamp(-1e9, 1e9);
    let ((x0, y0), (x1, y1)) = ((bound(a.0), bound(a.1)), (bound(b.0), bound(b.1)));
    if [x0, y0, x1, y1].iter().any(|v| v.is_nan()) {
        return None;
    }
    let (dx, dy) = (x1 - x0, y1 - y0);
    let (mut enter, mut leave) = (0.0_f64, 1.0_f64);
    for (p, q) in [
        (-dx, x0 + 1.0),
        (dx, width - x0),
        (-dy, y0 + 1.0),
        (dy, height - y0),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else if p < 0.0 {
            enter = enter.max(q / p);
        } else {
            leave = leave.min(q / p);
        }
    }
    if enter > leave {
        return None;
    }
    let at = |t: f64| (x0 + t * dx, y0 + t * dy);
    let (start, end) = (
        if enter > 0.0 { at(enter) } else { (x0, y0) },
        if leave < 1.0 { at(leave) } else { (x1, y1) },
    );
    Some((start.0, start.1, end.0, end.1))
}

/// `text` in a 5 × 7 bitmap font, `size` pixels a dot; characters it has no glyph for are
/// left as spaces.
fn text(image: &mut RgbImage, x: u32, y: u32, text: &str, size: u32) {
    for (at, c) in text.chars().enumerate() {
        let Some(rows) = glyph(c) else { continue };
        let left = x + at as u32 * 6 * size;
        for (row, bits) in rows.iter().enumerate() {
            for column in 0..5 {
                if bits & (0x10 >> column) != 0 {
                    for dy in 0..size {
                        for dx in 0..size {
                            put(
                                image,
                                left + column * size + dx,
                                y + row as u32 * size + dy,
                                INK,
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The 5 × 7 glyphs of the characters the captions and lead names use; each row's five
/// pixels are its low five bits, the leftmost highest.
fn glyph(c: char) -> Option<[u8; 7]> {
    Some(match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '—' | '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'a' => [0, 0, 0x0E, 0x01, 0x0F, 0x11, 0x0F],
        'c' => [0, 0, 0x0E, 0x10, 0x10, 0x11, 0x0E],
        'i' => [0x04, 0, 0x0C, 0x04, 0x04, 0x04, 0x0E],
        'm' => [0, 0, 0x1A, 0x15, 0x15, 0x11, 0x11],
        'n' => [0, 0, 0x16, 0x19, 0x11, 0x11, 0x11],
        's' => [0, 0, 0x0E, 0x10, 0x0E, 0x01, 0x1E],
        _ => return None,
    })
}
