//! Frames dicom-pixeldata does not show, drawn by our own code from native little-endian
//! samples: 1-bit frames (segmentations, bit-packed and not byte-aligned between frames), 32-bit
//! samples (RT dose, 32-bit secondary captures) and YBR_FULL_422 native frames (two luminance
//! samples sharing one pair of chrominance samples). Monochrome frames get the modality rescale
//! and a linear window (the one asked for, else the instance's, else the frame's range);
//! colour frames are scaled to 8 bits and converted to RGB.

use dicom_pixeldata::image::{DynamicImage, GrayImage, RgbImage};

/// What a native frame is, as its data set declares it.
#[derive(Debug, Clone)]
pub struct Layout {
    pub rows: usize,
    pub columns: usize,
    pub samples: usize,
    pub allocated: usize,
    pub stored: usize,
    pub signed: bool,
    pub photometric: String,
    /// Planar configuration 1: all of a frame's first sample, then its second...
    pub planar: bool,
    pub slope: f64,
    pub intercept: f64,
    /// The instance's own window (centre, width), when it has one.
    pub window: Option<(f64, f64)>,
}

/// Whether a native frame of this kind is drawn here rather than by dicom-pixeldata.
pub fn drawn_here(allocated: usize, photometric: &str) -> bool {
    allocated == 1 || allocated == 32 || photometric == "YBR_FULL_422"
}

/// Frame `index` (from 0) of the native pixel data `data`, drawn with `window` over the
/// instance's own.
pub fn image(
    layout: &Layout,
    data: &[u8],
    index: usize,
    window: Option<(f64, f64)>,
) -> Result<DynamicImage, String> {
    let values = samples(layout, data, index)?;
    let (rows, columns) = (layout.rows as u32, layout.columns as u32);
    if layout.samples == 1 {
        let rescaled: Vec<f64> = values
            .iter()
            .map(|v| v * layout.slope + layout.intercept)
            .collect();
        let (low, high) = match window.or(layout.window) {
            Some((centre, width)) if width > 0.0 => (
                centre - 0.5 - (width - 1.0) / 2.0,
                centre - 0.5 + (width - 1.0) / 2.0,
            ),
            _ => range(&rescaled),
        };
        let span = (high - low).max(f64::EPSILON);
        let inverted = layout.photometric == "MONOCHROME1";
        let grey: Vec<u8> = rescaled
            .iter()
            .map(|v| {
                let level = ((v - low) / span).clamp(0.0, 1.0) * 255.0;
                let level = level.round() as u8;
                if inverted { 255 - level } else { level }
            })
            .collect();
        return GrayImage::from_raw(columns, rows, grey)
            .map(DynamicImage::ImageLuma8)
            .ok_or_else(|| "the frame does not fill its image".into());
    }
    // Colour: to 8 bits by the stored range, then YBR to RGB.
    let top = if layout.allocated == 8 && layout.photometric != "YBR_FULL_422" {
        255.0
    } else {
        ((1u64 << layout.stored.min(32)) - 1) as f64
    };
    let scaled: Vec<f64> = values
        .iter()
        .map(|v| (v / top * 255.0).clamp(0.0, 255.0))
        .collect();
    let ybr = layout.photometric.starts_with("YBR_FULL");
    let rgb: Vec<u8> = scaled
        .chunks_exact(3)
        .flat_map(|p| {
            if ybr {
                // PS3.3 C.7.6.3.1.2: full-range YCbCr.
                let (y, cb, cr) = (p[0], p[1] - 128.0, p[2] - 128.0);
                [
                    y + 1.402 * cr,
                    y - 0.344_136 * cb - 0.714_136 * cr,
                    y + 1.772 * cb,
                ]
            } else {
                [p[0], p[1], p[2]]
            }
        })
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    RgbImage::from_raw(columns, rows, rgb)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| "the frame does not fill its image".into())
}

/// The smallest and largest of `values`.
fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| {
            (low.min(*v), high.max(*v))
        })
}

/// A frame's samples, interleaved by pixel, as stored values (sign-extended when signed).
fn samples(layout: &Layout, data: &[u8], index: usize) -> Result<Vec<f64>, String> {
    let pixels = layout
        .rows
        .checked_mul(layout.columns)
        .ok_or("the frame is too large")?;
    let count = pixels * layout.samples;
    if !matches!(layout.samples, 1 | 3) || !matches!(layout.allocated, 1 | 8 | 16 | 32) {
        return Err(format!(
            "frames of {} samples of {} bits are not drawn",
            layout.samples, layout.allocated
        ));
    }
    if layout.allocated == 1 {
        // Bit-packed, first pixel in the lowest bit, frames one after another with no padding.
        let first = index * count;
        let last = first + count;
        if last.div_ceil(8) > data.len() {
            return Err(format!("the pixel data ends before frame {}", index + 1));
        }
        return Ok((first..last)
            .map(|bit| f64::from((data[bit / 8] >> (bit % 8)) & 1))
            .collect());
    }
    if layout.photometric == "YBR_FULL_422" {
        if layout.allocated != 8 || layout.samples != 3 || !layout.columns.is_multiple_of(2) {
            return Err(
                "YBR_FULL_422 frames of other than 8 bits and even columns are not drawn".into(),
            );
        }
        let size = pixels * 2;
        let frame = data
            .get(index * size..(index + 1) * size)
            .ok_or_else(|| format!("the pixel data ends before frame {}", index + 1))?;
        // Y1 Y2 Cb Cr for each pair of pixels.
        return Ok(frame
            .chunks_exact(4)
            .flat_map(|q| [q[0], q[2], q[3], q[1], q[2], q[3]])
            .map(f64::from)
            .collect());
    }
    let width = layout.allocated / 8;
    let size = count * width;
    let frame = data
        .get(index * size..(index + 1) * size)
        .ok_or_else(|| format!("the pixel data ends before frame {}", index + 1))?;
    let stored = layout.stored.clamp(1, layout.allocated) as u32;
    let mask = if stored == 64 {
        u64::MAX
    } else {
        (1u64 << stored) - 1
    };
    let mut values: Vec<f64> = frame
        .chunks_exact(width)
        .map(|bytes| {
            let mut raw = [0u8; 8];
            raw[..width].copy_from_slice(bytes);
            let value = u64::from_le_bytes(raw) & mask;
            if layout.signed && value >> (stored - 1) & 1 == 1 {
                (value as i64 - (1i64 << stored)) as f64
            } else {
                value as f64
            }
        })
        .collect();
    if layout.planar && layout.samples == 3 {
        let planes = values.clone();
        for pixel in 0..pixels {
            for sample in 0..3 {
                values[pixel * 3 + sample] = planes[sample * pixels + pixel];
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(allocated: usize, samples: usize, photometric: &str) -> Layout {
        Layout {
            rows: 2,
            columns: 2,
            samples,
            allocated,
            stored: allocated,
            signed: false,
            photometric: photometric.into(),
            planar: false,
            slope: 1.0,
            intercept: 0.0,
            window: None,
        }
    }

    #[test]
    fn one_bit_frames_are_read_across_byte_boundaries() {
        // Two 2×2 frames in one byte: 0b1001_0110 → frame 1 is 0,1,1,0; frame 2 is 1,0,0,1.
        let data = [0b1001_0110];
        let first = image(&layout(1, 1, "MONOCHROME2"), &data, 0, None).unwrap();
        assert_eq!(first.to_luma8().into_raw(), [0, 255, 255, 0]);
        let second = image(&layout(1, 1, "MONOCHROME2"), &data, 1, None).unwrap();
        assert_eq!(second.to_luma8().into_raw(), [255, 0, 0, 255]);
        assert!(image(&layout(1, 1, "MONOCHROME2"), &data, 2, None).is_err());
    }

    #[test]
    fn thirty_two_bit_samples_are_windowed_and_signed_ones_extended() {
        let mut signed = layout(32, 1, "MONOCHROME2");
        signed.signed = true;
        let data: Vec<u8> = [-100i32, 0, 100, 200]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let grey = image(&signed, &data, 0, None)
            .unwrap()
            .to_luma8()
            .into_raw();
        assert_eq!(grey, [0, 85, 170, 255]);
        let windowed = image(&signed, &data, 0, Some((50.5, 101.0))).unwrap();
        assert_eq!(windowed.to_luma8().into_raw(), [0, 0, 255, 255]);
    }

    #[test]
    fn ybr_full_422_pairs_share_their_chrominance() {
        // Grey (Cb = Cr = 128): luminance alone.
        let data = [10, 200, 128, 128, 50, 60, 128, 128];
        let rgb = image(&layout(8, 3, "YBR_FULL_422"), &data, 0, None).unwrap();
        assert_eq!(
            rgb.to_rgb8().into_raw(),
            [10, 10, 10, 200, 200, 200, 50, 50, 50, 60, 60, 60]
        );
    }
}
