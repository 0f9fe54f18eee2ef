//! Rendered frames (WADO-RS `rendered` and `thumbnail`, PS3.18 8.3.5 and 9.5): one frame of a
//! stored instance decoded from its transfer syntax (uncompressed, deflate, RLE, JPEG baseline,
//! extended and lossless, JPEG 2000), put through the modality rescale and a window (the one
//! asked for, or the instance's own, or the frame's range), and encoded as JPEG or PNG, at
//! its own size or fitted into a viewport. The decoder runs under `catch_unwind`: a codec
//! that panics on a damaged frame answers with a refusal, not a dead worker.

use std::io::Cursor;

use dicom_core::value::Value as DicomValue;
use dicom_pixeldata::image::codecs::jpeg::JpegEncoder;
use dicom_pixeldata::image::{DynamicImage, ImageFormat, imageops::FilterType};
use dicom_pixeldata::{ConvertOptions, PixelDecoder, VoiLutOption, WindowLevel};

use crate::ImagingError;
use crate::{ecg, native, part10};

/// What to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendering {
    /// From 1.
    pub frame: u32,
    /// Window centre and width, over the instance's own.
    pub window: Option<(f64, f64)>,
    pub format: Format,
    /// Fit into (columns, rows), keeping the aspect.
    pub viewport: Option<(u32, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg {
        quality: u8,
    },
    Png,
    /// Only for ECG waveforms: the tracing as a drawing.
    Svg,
}

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Jpeg { .. } => "image/jpeg",
            Format::Png => "image/png",
            Format::Svg => "image/svg+xml",
        }
    }
}

/// The edge of a thumbnail's viewport when none is asked for.
pub const THUMBNAIL: u32 = 128;
/// Frames of more samples than this (rows × columns × samples per pixel) are not rendered.
const MAX_PIXELS: u64 = 32 * 1024 * 1024;
/// Rendered images are at most this many pixels a side.
const MAX_SIDE: u32 = 8192;

/// Reads the query parameters of a rendered resource (`window=center,width,function`,
/// `quality`, `viewport=columns,rows`) with the media type the client accepts.
pub fn parse(
    params: &[(String, String)],
    accept: &str,
    frame: u32,
) -> Result<Rendering, ImagingError> {
    let bad = |what: String| ImagingError::BadRequest(what);
    let mut rendering = Rendering {
        frame,
        window: None,
        format: Format::Jpeg { quality: 90 },
        viewport: None,
    };
    let accepts = |kind: &str| accept.split(',').any(|a| a.trim().starts_with(kind));
    if accepts("image/svg+xml") && !accepts("image/jpeg") && !accepts("image/png") {
        rendering.format = Format::Svg;
    } else if accepts("image/png") && !accepts("image/jpeg") {
        rendering.format = Format::Png;
    }
    for (name, value) in params {
        match name.as_str() {
            "window" => {
                let parts: Vec<&str> = value.split(',').map(str::trim).collect();
                let number = |s: &str| s.parse::<f64>().ok().filter(|n| n.is_finite());
                match parts.as_slice() {
                    [center, width] | [center, width, _] => {
                        let (Some(center), Some(width)) = (number(center), number(width)) else {
                            return Err(bad(format!("window '{value}' is not centre,width")));
                        };
                        if width <= 0.0 {
                            return Err(bad("a window's width must be above 0".into()));
                        }
                        rendering.window = Some((center, width));
                    }
                    _ => {
                        return Err(bad(format!(
                            "window '{value}' is not centre,width[,function]"
                        )));
                    }
                }
            }
            "quality" => {
                let quality: u8 = value
                    .parse()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| bad(format!("quality '{value}' is not 1 to 100")))?;
                if let Format::Jpeg { .. } = rendering.format {
                    rendering.format = Format::Jpeg { quality };
                }
            }
            "viewport" => {
                let parts: Vec<u32> = value
                    .split(',')
                    .map(|p| p.trim().parse::<u32>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| bad(format!("viewport '{value}' is not columns,rows")))?;
                match parts.as_slice() {
                    [columns, rows] if *columns > 0 && *rows > 0 => {
                        rendering.viewport =
                            Some(((*columns).min(MAX_SIDE), (*rows).min(MAX_SIDE)));
                    }
                    _ => return Err(bad(format!("viewport '{value}' is not columns,rows"))),
                }
            }
            "annotation" | "charset" => {}
            other => {
                return Err(bad(format!(
                    "'{other}' is not a parameter of a rendered resource"
                )));
            }
        }
    }
    Ok(rendering)
}

/// Renders a frame of a stored file; an ECG waveform is drawn as its tracing on ECG paper.
pub fn render(file: &[u8], rendering: &Rendering) -> Result<Vec<u8>, ImagingError> {
    let object = part10::parse(file).map_err(|r| ImagingError::BadRequest(r.reason))?;
    let unrenderable = |why: String| ImagingError::Unrenderable(why);
    let class = object.meta().media_storage_sop_class_uid();
    if ecg::is_ecg(class.trim_end_matches('\0')) {
        return tracing(&object, rendering);
    }
    if rendering.format == Format::Svg {
        return Err(unrenderable(
            "an image is rendered as JPEG or PNG; SVG is for ECG tracings".into(),
        ));
    }
    let frames = object
        .get(dicom_dictionary_std::tags::NUMBER_OF_FRAMES)
        .and_then(|e| e.to_int::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    if rendering.frame == 0 || rendering.frame > frames {
        return Err(ImagingError::NotFound(format!(
            "the instance has frames 1 to {frames}, not {}",
            rendering.frame
        )));
    }
    // A frame's size is declared before its bytes are decoded: a hostile instance declaring
    // 65535 × 65535 would have the decoder allocate gigabytes.
    let dimension = |tag| {
        object
            .get(tag)
            .and_then(|e| e.to_int::<u64>().ok())
            .unwrap_or(0)
    };
    // Saturating: the sizes are the file's word, Rows as UL 0xFFFFFFFF (fuzz finding F15).
    let pixels = dimension(dicom_dictionary_std::tags::ROWS)
        .saturating_mul(dimension(dicom_dictionary_std::tags::COLUMNS))
        .saturating_mul(dimension(dicom_dictionary_std::tags::SAMPLES_PER_PIXEL).max(1));
    if pixels == 0 || pixels > MAX_PIXELS {
        return Err(unrenderable(format!(
            "a frame of {pixels} samples is not rendered (at most {MAX_PIXELS})"
        )));
    }
    // What the decoder and its lookup tables take (they panic or overflow on other values:
    // fuzz finding F10, BitsStored beyond what a shift holds).
    let allocated = dimension(dicom_dictionary_std::tags::BITS_ALLOCATED);
    let stored = dimension(dicom_dictionary_std::tags::BITS_STORED);
    let high = dimension(dicom_dictionary_std::tags::HIGH_BIT);
    let samples = dimension(dicom_dictionary_std::tags::SAMPLES_PER_PIXEL).max(1);
    let representation = dimension(dicom_dictionary_std::tags::PIXEL_REPRESENTATION);
    if !matches!(allocated, 1 | 8 | 16 | 32)
        || stored == 0
        || stored > allocated
        || high >= allocated
        || !matches!(samples, 1 | 3)
        || representation > 1
    {
        return Err(unrenderable(format!(
            "frames of {samples} samples of {stored} bits stored in {allocated} are not rendered"
        )));
    }
    // RLE and JPEG-LS are decoded here (`rle`, `jpegls`), into a native copy of the object
    // holding just that frame.
    let syntax = object
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_owned();
    let (object, frame_index) = if decoded_here(&syntax, stored as u32) {
        (native_frame(&object, rendering.frame, &syntax)?, 0)
    } else {
        (object, rendering.frame - 1)
    };
    let photometric = object
        .get(dicom_dictionary_std::tags::PHOTOMETRIC_INTERPRETATION)
        .and_then(|e| e.to_str().ok())
        .map(|p| p.trim_matches(['\0', ' ']).to_owned())
        .unwrap_or_default();
    let encapsulated = matches!(
        object
            .get(dicom_dictionary_std::tags::PIXEL_DATA)
            .map(|e| e.value()),
        Some(DicomValue::PixelSequence(_))
    );
    let image = if native::drawn_here(allocated as usize, &photometric) && !encapsulated {
        own_drawing(&object, frame_index, rendering.window, photometric)?
    } else if allocated == 1 {
        one_bit_decoded(&object, frame_index, rendering.window, photometric)?
    } else {
        decoded_image(&object, frame_index, rendering.window)?
    };
    let image = match rendering.viewport {
        Some((columns, rows)) => image.resize(columns, rows, FilterType::Triangle),
        None => image,
    };
    encode(image, rendering.format)
}

/// Frame `frame_index` of a native `object` drawn by [`native`].
fn own_drawing(
    object: &dicom_object::DefaultDicomObject,
    frame_index: u32,
    window: Option<(f64, f64)>,
    photometric: String,
) -> Result<DynamicImage, ImagingError> {
    use dicom_dictionary_std::tags;
    let unrenderable = |why: String| ImagingError::Unrenderable(why);
    let Some(DicomValue::Primitive(data)) = object.get(tags::PIXEL_DATA).map(|e| e.value()) else {
        return Err(unrenderable(
            "its pixel data is compressed in a syntax drawn only by its decoder".into(),
        ));
    };
    let layout = layout_of(object, photometric);
    native::image(&layout, &data.to_bytes(), frame_index as usize, window)
        .map_err(|why| unrenderable(format!("its pixel data cannot be shown: {why}")))
}

/// What a native frame of `object` is, as its data set declares it.
fn layout_of(object: &dicom_object::DefaultDicomObject, photometric: String) -> native::Layout {
    use dicom_dictionary_std::tags;
    let int = |tag| {
        object
            .get(tag)
            .and_then(|e| e.to_int::<usize>().ok())
            .unwrap_or(0)
    };
    let float = |tag| {
        object
            .get(tag)
            .and_then(|e| e.to_multi_float64().ok())
            .and_then(|v| v.first().copied())
            .filter(|v| v.is_finite())
    };
    native::Layout {
        rows: int(tags::ROWS),
        columns: int(tags::COLUMNS),
        samples: int(tags::SAMPLES_PER_PIXEL).max(1),
        allocated: int(tags::BITS_ALLOCATED),
        stored: int(tags::BITS_STORED),
        signed: int(tags::PIXEL_REPRESENTATION) == 1,
        photometric,
        planar: int(tags::PLANAR_CONFIGURATION) == 1,
        slope: float(tags::RESCALE_SLOPE).unwrap_or(1.0),
        intercept: float(tags::RESCALE_INTERCEPT).unwrap_or(0.0),
        window: float(tags::WINDOW_CENTER).zip(float(tags::WINDOW_WIDTH)),
    }
}

/// A 1-bit frame in a compressed syntax (JPEG 2000 segmentations): decoded by dicom-pixeldata
/// as if allocated in 8 bits (its codestream says one bit a sample; the decoder allocates by
/// the data set), then drawn by [`native`].
fn one_bit_decoded(
    object: &dicom_object::DefaultDicomObject,
    frame_index: u32,
    window: Option<(f64, f64)>,
    photometric: String,
) -> Result<DynamicImage, ImagingError> {
    use dicom_core::{DataElement, VR, value::PrimitiveValue};
    use dicom_dictionary_std::tags;
    let unrenderable = |why: String| ImagingError::Unrenderable(why);
    let mut widened = object.clone();
    widened.put(DataElement::new(
        tags::BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(8_u16),
    ));
    let bytes = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        widened
            .decode_pixel_data_frame(frame_index)
            .map(|decoded| decoded.data().to_vec())
            .map_err(|e| unrenderable(format!("its pixel data cannot be decoded: {e}")))
    }))
    .map_err(|_| unrenderable("its pixel data cannot be decoded".into()))??;
    // Decoded, each sample is a byte holding 0 or 1, shown as it is.
    let layout = native::Layout {
        samples: 1,
        allocated: 8,
        stored: 1,
        signed: false,
        planar: false,
        slope: 1.0,
        intercept: 0.0,
        window: None,
        ..layout_of(object, photometric)
    };
    native::image(&layout, &bytes, 0, window)
        .map_err(|why| unrenderable(format!("its pixel data cannot be shown: {why}")))
}

/// Frame `frame_index` of `object` decoded by dicom-pixeldata, windowed and made 8-bit.
fn decoded_image(
    object: &dicom_object::DefaultDicomObject,
    frame_index: u32,
    window: Option<(f64, f64)>,
) -> Result<DynamicImage, ImagingError> {
    let unrenderable = |why: String| ImagingError::Unrenderable(why);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let decoded = object
            .decode_pixel_data_frame(frame_index)
            .map_err(|e| unrenderable(format!("its pixel data cannot be decoded: {e}")))?;
        let voi = match window {
            Some((center, width)) => VoiLutOption::Custom(WindowLevel { width, center }),
            None => VoiLutOption::Default,
        };
        let options = ConvertOptions::new().with_voi_lut(voi).force_8bit();
        decoded
            .to_dynamic_image_with_options(0, &options)
            .map_err(|e| unrenderable(format!("its pixel data cannot be shown: {e}")))
    }))
    .map_err(|_| unrenderable("its pixel data cannot be decoded".into()))?
}

/// Whether frames of `syntax` (of `stored` bits) are decoded by our own decoders (RLE,
/// JPEG-LS, deflated frames, and 12-bit lossy JPEG, which the JPEG decoder dicom-pixeldata
/// uses refuses) into a native frame, rather than by dicom-pixeldata.
fn decoded_here(syntax: &str, stored: u32) -> bool {
    [
        RLE_LOSSLESS,
        JPEG_LS_LOSSLESS,
        JPEG_LS_NEAR_LOSSLESS,
        DEFLATED_FRAMES,
    ]
    .contains(&syntax)
        || (syntax == JPEG_EXTENDED && stored > 8)
}

/// Explicit VR little endian, the syntax frames are transcoded to (PS3.18's default).
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

/// Frames `numbers` (from 1) of a stored file as native little-endian samples, the bytes a
/// frame has in explicit VR little endian (WADO-RS frames transcoded, PS3.18 8.7.3.5): an
/// uncompressed frame as it is, a compressed one decoded by the decoders `render` uses. A
/// colour frame a JPEG decoder converted is RGB, whatever the instance's photometric
/// interpretation says.
pub fn native_frames(file: &[u8], numbers: &[u32]) -> Result<Vec<Vec<u8>>, ImagingError> {
    let object = part10::parse(file).map_err(|r| ImagingError::BadRequest(r.reason))?;
    let syntax = object
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_owned();
    let encapsulated = matches!(
        object
            .get(dicom_dictionary_std::tags::PIXEL_DATA)
            .map(|e| e.value()),
        Some(DicomValue::PixelSequence(_))
    );
    if !encapsulated {
        return crate::frames::frames(file, numbers);
    }
    let stored = object
        .get(dicom_dictionary_std::tags::BITS_STORED)
        .and_then(|e| e.to_int::<u32>().ok())
        .unwrap_or(8);
    let ours = decoded_here(&syntax, stored);
    numbers
        .iter()
        .map(|number| {
            let frames = object
                .get(dicom_dictionary_std::tags::NUMBER_OF_FRAMES)
                .and_then(|e| e.to_int::<u32>().ok())
                .unwrap_or(1)
                .max(1);
            if *number == 0 || *number > frames {
                return Err(ImagingError::NotFound(format!(
                    "the instance has frames 1 to {frames}, not {number}"
                )));
            }
            if ours {
                let native = native_frame(&object, *number, &syntax)?;
                return crate::frames::frame_of(&native, 1);
            }
            let index = number - 1;
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                object
                    .decode_pixel_data_frame(index)
                    .map(|decoded| decoded.data().to_vec())
                    .map_err(|e| {
                        ImagingError::Unrenderable(format!(
                            "frame {number} cannot be decoded to transcode it: {e}"
                        ))
                    })
            }))
            .map_err(|_| ImagingError::Unrenderable(format!("frame {number} cannot be decoded")))?
        })
        .collect()
}

/// An ECG instance's tracing on ECG paper, with its measurements in the caption; frame 1 is
/// the whole page, and a viewport is not applied (the paper's scale is the point).
fn tracing(
    object: &dicom_object::DefaultDicomObject,
    rendering: &Rendering,
) -> Result<Vec<u8>, ImagingError> {
    if rendering.frame != 1 {
        return Err(ImagingError::NotFound(
            "an ECG has one rendered page, frame 1".into(),
        ));
    }
    let tracing = ecg::from_object(object)?;
    let measurements = tracing.measure().ok();
    let text = |tag| {
        object
            .get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|t| t.trim_matches(['\0', ' ']).replace('^', " "))
            .unwrap_or_default()
    };
    let title = [
        text(dicom_dictionary_std::tags::PATIENT_NAME),
        text(dicom_dictionary_std::tags::PATIENT_ID),
        text(dicom_dictionary_std::tags::ACQUISITION_DATE_TIME),
    ]
    .into_iter()
    .filter(|t| !t.trim().is_empty())
    .collect::<Vec<_>>()
    .join("  ");
    match rendering.format {
        Format::Svg => Ok(ecg::paper::svg(&tracing, measurements.as_ref(), &title).into_bytes()),
        format => encode(
            DynamicImage::ImageRgb8(ecg::paper::raster(&tracing, measurements.as_ref(), 5.0)),
            format,
        ),
    }
}

const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";
const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
const JPEG_LS_NEAR_LOSSLESS: &str = "1.2.840.10008.1.2.4.81";
/// Deflated Image Frame Compression (PS3.5 A.4.11, 2023): each frame a deflate stream.
const DEFLATED_FRAMES: &str = "1.2.840.10008.1.2.8.1";

/// A deflated frame of `samples` samples of `bits` allocated inflated, refused when it inflates
/// to more or fewer bytes than the frame holds (a deflate bomb stops at the frame's size).
fn inflated_frame(fragment: &[u8], samples: usize, bits: usize) -> Result<Vec<u8>, ImagingError> {
    use std::io::Read;
    let size = (samples * bits).div_ceil(8);
    let mut out = Vec::with_capacity(size);
    flate2::read::DeflateDecoder::new(fragment)
        .take(size as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            ImagingError::Unrenderable(format!("its deflated frame cannot be inflated: {e}"))
        })?;
    // Frames are padded to an even length before deflating.
    if out.len() < size || out.len() > size + 1 {
        return Err(ImagingError::Unrenderable(format!(
            "its deflated frame inflates to {} bytes, not the frame's {size}",
            out.len()
        )));
    }
    out.truncate(size);
    Ok(out)
}

/// `object` with frame `number` of its RLE or JPEG-LS pixel data decoded as its only, native
/// frame.
fn native_frame(
    object: &dicom_object::DefaultDicomObject,
    number: u32,
    syntax: &str,
) -> Result<dicom_object::DefaultDicomObject, ImagingError> {
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    let unrenderable = |why: String| ImagingError::Unrenderable(why);
    let int = |tag| object.get(tag).and_then(|e| e.to_int::<usize>().ok());
    let Some(DicomValue::PixelSequence(sequence)) = object.get(tags::PIXEL_DATA).map(|e| e.value())
    else {
        return Err(unrenderable(
            "its compressed pixel data is not encapsulated".into(),
        ));
    };
    let fragments = sequence.fragments();
    let frames = int(tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    // One frame in several fragments is the fragments joined (PS3.5 A.4).
    let joined;
    let fragment: &[u8] = if frames == 1 && fragments.len() > 1 {
        joined = fragments.concat();
        &joined
    } else {
        fragments.get(number as usize - 1).ok_or_else(|| {
            unrenderable(format!("its pixel data has no fragment for frame {number}"))
        })?
    };
    let bits = int(tags::BITS_ALLOCATED).unwrap_or(8);
    let (rows, columns) = (
        int(tags::ROWS).unwrap_or(0),
        int(tags::COLUMNS).unwrap_or(0),
    );
    let samples = int(tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let decoded = match syntax {
        RLE_LOSSLESS => crate::rle::decode_frame(fragment, rows, columns, samples, bits)
            .map_err(|why| unrenderable(format!("its RLE frame cannot be decoded: {why}")))?,
        DEFLATED_FRAMES => inflated_frame(fragment, rows * columns * samples, bits)?,
        JPEG_EXTENDED => jpeg12_frame(fragment, rows, columns, samples, bits)?,
        _ => jpeg_ls_frame(fragment, rows, columns, samples, bits)?,
    };
    let mut native = object.clone();
    native.meta_mut().transfer_syntax = "1.2.840.10008.1.2.1".into();
    let vr = if bits > 8 { VR::OW } else { VR::OB };
    native.put(DataElement::new(
        tags::PIXEL_DATA,
        vr,
        PrimitiveValue::U8(decoded.into()),
    ));
    native.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("1"),
    ));
    native.put(DataElement::new(
        tags::PLANAR_CONFIGURATION,
        VR::US,
        PrimitiveValue::from(0_u16),
    ));
    Ok(native)
}

/// A 12-bit lossy JPEG frame (grey) decoded by `jpeg12` into native samples of `bits`
/// allocated, after checking it is the frame the data set describes.
fn jpeg12_frame(
    codestream: &[u8],
    rows: usize,
    columns: usize,
    samples: usize,
    bits: usize,
) -> Result<Vec<u8>, ImagingError> {
    let image = crate::jpeg12::decode(codestream).map_err(|e| {
        ImagingError::Unrenderable(format!("its JPEG frame cannot be decoded: {e}"))
    })?;
    if samples != 1 {
        return Err(ImagingError::Unrenderable(format!(
            "its 12-bit JPEG frames are of {samples} samples, not grey"
        )));
    }
    let decoded = (image.height, image.width, image.components);
    declared("JPEG", decoded, (rows, columns, samples))?;
    Ok(native_samples(&image.samples, bits))
}

/// Refuses a decoded `codec` frame of (rows, columns, components) `decoded` that is not the
/// frame the data set `declares`.
fn declared(
    codec: &str,
    (height, width, components): (u32, u32, u8),
    (rows, columns, samples): (usize, usize, usize),
) -> Result<(), ImagingError> {
    if (height as usize, width as usize, usize::from(components)) == (rows, columns, samples) {
        return Ok(());
    }
    Err(ImagingError::Unrenderable(format!(
        "its {codec} frame is {height}×{width}×{components}, not the \
         {rows}×{columns}×{samples} it declares"
    )))
}

/// Decoded samples as native little-endian bytes of `bits` allocated.
fn native_samples(samples: &[u16], bits: usize) -> Vec<u8> {
    if bits <= 8 {
        samples.iter().map(|s| *s as u8).collect()
    } else {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }
}

/// A JPEG-LS frame decoded (`jpegls`) into native samples of `bits` allocated, after checking
/// that the codestream is the frame the data set describes.
fn jpeg_ls_frame(
    codestream: &[u8],
    rows: usize,
    columns: usize,
    samples: usize,
    bits: usize,
) -> Result<Vec<u8>, ImagingError> {
    let image = crate::jpegls::decode(codestream).map_err(|e| {
        ImagingError::Unrenderable(format!("its JPEG-LS frame cannot be decoded: {e}"))
    })?;
    let decoded = (image.height, image.width, image.components);
    declared("JPEG-LS", decoded, (rows, columns, samples))?;
    Ok(native_samples(&image.samples, bits))
}

fn encode(image: DynamicImage, format: Format) -> Result<Vec<u8>, ImagingError> {
    let mut out = Cursor::new(Vec::new());
    let written = match format {
        Format::Png | Format::Svg => image.write_to(&mut out, ImageFormat::Png),
        Format::Jpeg { quality } => {
            // JPEG takes 8-bit grey or RGB.
            let image = match image {
                DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image,
                other if other.color().has_color() => DynamicImage::ImageRgb8(other.to_rgb8()),
                other => DynamicImage::ImageLuma8(other.to_luma8()),
            };
            let encoder = JpegEncoder::new_with_quality(&mut out, quality);
            image.write_with_encoder(encoder)
        }
    };
    written
        .map_err(|e| ImagingError::Unrenderable(format!("the image could not be encoded: {e}")))?;
    Ok(out.into_inner())
}
