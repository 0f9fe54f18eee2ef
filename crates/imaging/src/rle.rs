//! RLE Lossless frames (PS3.5 annex G) decoded here rather than by dicom-rs, whose decoder
//! panics or allocates at will on a damaged frame (a segment count of 4 billion, a segment that
//! decodes short: fuzz finding F7). Every offset and length is checked against the fragment;
//! a frame decodes to exactly rows × columns pixels or is refused.

/// The native little-endian bytes of one RLE frame, samples interleaved (colour by pixel); a
/// 1-bit frame is one segment of its bits packed into bytes, first pixel in the lowest bit.
pub fn decode_frame(
    fragment: &[u8],
    rows: usize,
    columns: usize,
    samples: usize,
    bits_allocated: usize,
) -> Result<Vec<u8>, String> {
    let ones = bits_allocated == 1 && samples == 1;
    if !(ones || matches!(bits_allocated, 8 | 16 | 32)) || !(1..=4).contains(&samples) {
        return Err(format!(
            "RLE of {samples} samples of {bits_allocated} bits is not decoded"
        ));
    }
    let bytes_per_sample = bits_allocated.div_ceil(8);
    let segments = samples * bytes_per_sample;
    if fragment.len() < 64 {
        return Err("an RLE frame is shorter than its 64-byte header".into());
    }
    let word = |at: usize| {
        u32::from_le_bytes([
            fragment[at],
            fragment[at + 1],
            fragment[at + 2],
            fragment[at + 3],
        ]) as usize
    };
    if word(0) != segments {
        return Err(format!(
            "the RLE header names {} segments where the image needs {segments}",
            word(0)
        ));
    }
    let mut offsets: Vec<usize> = (0..segments).map(|i| word(4 + 4 * i)).collect();
    offsets.push(fragment.len());
    if offsets[0] != 64 || offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err("the RLE segment offsets are not in order within the frame".into());
    }
    let pixels = rows.checked_mul(columns).ok_or("the image is too large")?;
    if ones {
        return pack_bits(&fragment[offsets[0]..offsets[1]], pixels.div_ceil(8));
    }
    let stride = segments;
    let mut out = vec![0u8; pixels.checked_mul(stride).ok_or("the image is too large")?];
    for sample in 0..samples {
        for byte in 0..bytes_per_sample {
            // Segments run most significant byte first; the native bytes are little endian.
            let segment = sample * bytes_per_sample + byte;
            let decoded = pack_bits(&fragment[offsets[segment]..offsets[segment + 1]], pixels)?;
            let position = sample * bytes_per_sample + (bytes_per_sample - 1 - byte);
            for (pixel, value) in decoded.into_iter().enumerate() {
                out[pixel * stride + position] = value;
            }
        }
    }
    Ok(out)
}

/// A PackBits segment decoded to exactly `length` bytes (what follows is padding).
fn pack_bits(segment: &[u8], length: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(length);
    let mut at = 0;
    while out.len() < length {
        let Some(&header) = segment.get(at) else {
            return Err(format!(
                "an RLE segment decodes to {} of its {length} bytes",
                out.len()
            ));
        };
        at += 1;
        let header = header as i8;
        if header >= 0 {
            let count = header as usize + 1;
            let literal = segment
                .get(at..at + count)
                .ok_or("an RLE segment ends inside a literal run")?;
            out.extend_from_slice(literal);
            at += count;
        } else if header != -128 {
            let count = 1 - header as isize;
            let value = *segment
                .get(at)
                .ok_or("an RLE segment ends inside a repeat run")?;
            out.extend(std::iter::repeat_n(value, count as usize));
            at += 1;
        }
    }
    out.truncate(length);
    Ok(out)
}
