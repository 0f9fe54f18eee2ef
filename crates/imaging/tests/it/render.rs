use imaging::ImagingError;
use imaging::frames::frame;
use imaging::render::{self, Format, Rendering};

use crate::corpus;

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn image_of(bytes: &[u8]) -> dicom_pixeldata::image::DynamicImage {
    dicom_pixeldata::image::load_from_memory(bytes).unwrap()
}

#[test]
fn a_frame_of_every_renderable_syntax_becomes_a_jpeg_of_its_size() {
    let unrenderable: Vec<String> = std::fs::read_to_string(format!(
        "{}/tests/dicom/unrenderable.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .lines()
    .filter_map(|l| {
        l.split('#')
            .next()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
    })
    .collect();
    let rendering = Rendering {
        frame: 1,
        window: None,
        format: Format::Jpeg { quality: 90 },
        viewport: None,
    };
    let mut rendered = 0;
    for name in [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "SC_rgb_small_odd_jpeg.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
        "JPEG-lossy.dcm",
        "image_dfl.dcm",
        "liver_deflate.dcm",
        "liver_j2k.dcm",
        "liver_rle.dcm",
        "SC_ybr_full_422_uncompressed.dcm",
        "rtdose_rle_1frame.dcm",
        "SC_rgb_rle_32bit_2frame.dcm",
    ] {
        let instance = imaging::part10::read(&corpus(name)).unwrap();
        let size = |tag: &str| {
            imaging::json::text(&instance.dataset, tag)
                .unwrap()
                .parse::<u32>()
                .unwrap()
        };
        match render::render(&instance.file, &rendering) {
            Ok(jpeg) => {
                assert!(
                    !unrenderable.contains(&name.to_owned()),
                    "{name} renders: take it off the list"
                );
                let image = image_of(&jpeg);
                assert_eq!(
                    (image.width(), image.height()),
                    (size("00280011"), size("00280010")),
                    "{name}"
                );
                rendered += 1;
            }
            Err(ImagingError::Unrenderable(reason)) => {
                assert!(unrenderable.contains(&name.to_owned()), "{name}: {reason}");
            }
            Err(other) => panic!("{name}: {other}"),
        }
    }
    assert_eq!(rendered, 17);
}

/// A 1-bit segmentation is the same mask whether its frames are deflated, in JPEG 2000 or in
/// RLE; every frame of it is black and white, and the mask is there.
#[test]
fn one_bit_segmentations_render_alike_in_every_syntax() {
    let png = |name: &str, frame| {
        let file = imaging::part10::read(&corpus(name)).unwrap().file;
        let rendering = Rendering {
            frame,
            window: None,
            format: Format::Png,
            viewport: None,
        };
        image_of(&render::render(&file, &rendering).unwrap()).to_luma8()
    };
    for frame in 1..=3 {
        let deflated = png("liver_deflate.dcm", frame);
        assert!(deflated.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
        let set = deflated.pixels().filter(|p| p.0[0] == 255).count();
        assert!(set > 1_000, "frame {frame}: {set} pixels of the mask");
        assert!(png("liver_j2k.dcm", frame) == deflated, "J2K frame {frame}");
        assert!(png("liver_rle.dcm", frame) == deflated, "RLE frame {frame}");
    }
}

/// YBR_FULL_422 native frames and 32-bit RGB frames come out in colour: the colour bars of
/// the two files are not grey.
#[test]
fn colour_frames_drawn_here_keep_their_colour() {
    for name in [
        "SC_ybr_full_422_uncompressed.dcm",
        "SC_rgb_rle_32bit_2frame.dcm",
    ] {
        let file = imaging::part10::read(&corpus(name)).unwrap().file;
        let rendering = Rendering {
            frame: 1,
            window: None,
            format: Format::Png,
            viewport: None,
        };
        let rgb = image_of(&render::render(&file, &rendering).unwrap()).to_rgb8();
        let red = rgb
            .pixels()
            .filter(|p| p.0[0] > 200 && p.0[1] < 60 && p.0[2] < 60)
            .count();
        assert!(red > 100, "{name}: {red} red pixels");
    }
}

/// The JPEG-LS, RLE and JPEG 2000 lossless copies of MR_small are the same picture as the
/// uncompressed one, pixel for pixel.
#[test]
fn lossless_copies_render_to_the_same_pixels() {
    let png = |name: &str| {
        let file = imaging::part10::read(&corpus(name)).unwrap().file;
        let rendering = Rendering {
            frame: 1,
            window: Some((600.0, 1200.0)),
            format: Format::Png,
            viewport: None,
        };
        image_of(&render::render(&file, &rendering).unwrap()).to_luma8()
    };
    let original = png("MR_small.dcm");
    for copy in [
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
    ] {
        assert!(png(copy).as_raw() == original.as_raw(), "{copy}");
    }
}

#[test]
fn a_window_changes_the_picture_and_a_viewport_its_size() {
    let file = imaging::part10::read(&corpus("CT_small.dcm")).unwrap().file;
    let at = |window| {
        let png = render::render(
            &file,
            &Rendering {
                frame: 1,
                window,
                format: Format::Png,
                viewport: None,
            },
        )
        .unwrap();
        image_of(&png).to_luma8()
    };
    let (narrow, wide) = (at(Some((40.0, 80.0))), at(Some((40.0, 2000.0))));
    assert_ne!(narrow.as_raw(), wide.as_raw());
    let thumbnail = render::render(
        &file,
        &Rendering {
            frame: 1,
            window: None,
            format: Format::Png,
            viewport: Some((64, 64)),
        },
    )
    .unwrap();
    let thumbnail = image_of(&thumbnail);
    assert!(thumbnail.width() <= 64 && thumbnail.height() <= 64);
}

#[test]
fn rendering_parameters_are_read_and_bad_ones_refused() {
    let parsed = render::parse(
        &params(&[
            ("window", "40,400,LINEAR"),
            ("quality", "70"),
            ("viewport", "256,256"),
        ]),
        "image/jpeg",
        1,
    )
    .unwrap();
    assert_eq!(parsed.window, Some((40.0, 400.0)));
    assert_eq!(parsed.format, Format::Jpeg { quality: 70 });
    assert_eq!(parsed.viewport, Some((256, 256)));
    assert_eq!(
        render::parse(&[], "image/png", 1).unwrap().format,
        Format::Png
    );
    for bad in [
        params(&[("window", "40")]),
        params(&[("window", "40,0")]),
        params(&[("window", "a,b")]),
        params(&[("quality", "0")]),
        params(&[("viewport", "10")]),
        params(&[("viewport", "0,10")]),
        params(&[("unknown", "1")]),
    ] {
        assert!(
            matches!(
                render::parse(&bad, "image/jpeg", 1),
                Err(ImagingError::BadRequest(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn frames_come_in_their_stored_syntax() {
    let ct = imaging::part10::read(&corpus("CT_small.dcm")).unwrap();
    assert_eq!(frame(&ct.file, 1).unwrap().len(), 128 * 128 * 2);
    assert!(matches!(frame(&ct.file, 2), Err(ImagingError::NotFound(_))));
    assert!(matches!(frame(&ct.file, 0), Err(ImagingError::NotFound(_))));
    // An encapsulated single frame is its fragments: a JPEG stream.
    let jpeg = imaging::part10::read(&corpus("SC_rgb_small_odd_jpeg.dcm")).unwrap();
    let bytes = frame(&jpeg.file, 1).unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
    // A frame number past the last of a rendering too.
    let rendering = Rendering {
        frame: 3,
        window: None,
        format: Format::Png,
        viewport: None,
    };
    assert!(matches!(
        render::render(&ct.file, &rendering),
        Err(ImagingError::NotFound(_))
    ));
}

/// Fuzz finding F7 (fuzz/RUNS.md): an RLE frame whose segment decodes short made dicom-rs's
/// decoder index past its buffer (a panic; its header can also make it allocate 16 GiB). RLE is
/// decoded by `imaging::rle`, which refuses it.
#[test]
fn fuzz_finding_f7_a_damaged_rle_frame_is_refused() {
    let instance = imaging::part10::read(&corpus("regressions/fuzz_F7_rle.dcm")).unwrap();
    let rendering = Rendering {
        frame: 1,
        window: None,
        format: Format::Png,
        viewport: Some((64, 64)),
    };
    match render::render(&instance.file, &rendering) {
        Err(ImagingError::Unrenderable(reason)) => assert!(reason.contains("RLE"), "{reason}"),
        other => panic!("{:?}", other.map(|b| b.len())),
    }
}

#[test]
fn rle_headers_that_do_not_fit_are_refused() {
    use imaging::rle::decode_frame;
    let mut header = vec![0u8; 64];
    header[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(
        decode_frame(&header, 2, 2, 1, 8).is_err(),
        "4 billion segments"
    );
    header[0..4].copy_from_slice(&1u32.to_le_bytes());
    header[4..8].copy_from_slice(&64u32.to_le_bytes());
    assert!(
        decode_frame(&header, 2, 2, 1, 8).is_err(),
        "an empty segment"
    );
    // A segment of one repeat run: four pixels of 7.
    let mut frame = header.clone();
    frame.extend_from_slice(&[(-3i8) as u8, 7]);
    assert_eq!(decode_frame(&frame, 2, 2, 1, 8).unwrap(), vec![7, 7, 7, 7]);
    assert!(decode_frame(&frame, 3, 3, 1, 8).is_err(), "decodes short");
}

/// Fuzz finding F10 (fuzz/RUNS.md): pixel attributes the decoder's lookup tables overflow on
/// (a shift by BitsStored); they are refused before decoding.
#[test]
fn fuzz_finding_f10_pixel_attributes_out_of_range_are_refused() {
    let instance = imaging::part10::read(&corpus("regressions/fuzz_F10_bits.dcm")).unwrap();
    // Refused by the check before decoding, not by catching the decoder's panic.
    let reason = refusal_to_render(&instance.file);
    assert!(reason.contains("are not rendered"), "{reason}");
}

/// Why the first frame of `file` is not rendered as a PNG; fails when it is.
fn refusal_to_render(file: &[u8]) -> String {
    let rendering = Rendering {
        frame: 1,
        window: None,
        format: Format::Png,
        viewport: Some((64, 64)),
    };
    match render::render(file, &rendering) {
        Err(ImagingError::Unrenderable(reason)) => reason,
        other => panic!("{:?}", other.map(|b| b.len())),
    }
}

/// Fuzz finding F15 (fuzz/RUNS.md): Rows, Columns and Samples per Pixel written as UL
/// (0xFFFFFFFF, 0xFFFFFFFF and 3) instead of US. A frame's size in bits overflowed a u64 in
/// the frame cutter and its count of samples in the renderer: a panic where arithmetic is
/// checked (tests, the fuzz build), a wrapped size where it is not. Both refuse it now.
#[test]
fn fuzz_finding_f15_sizes_beyond_a_u64_are_refused() {
    let instance = imaging::part10::read(&corpus("regressions/fuzz_F15_sizes_ul.dcm")).unwrap();
    assert!(matches!(
        frame(&instance.file, 1),
        Err(ImagingError::Unrenderable(_))
    ));
    let reason = refusal_to_render(&instance.file);
    assert!(reason.contains("is not rendered"), "{reason}");
}
