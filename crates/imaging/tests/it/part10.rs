use imaging::json::text;
use imaging::part10::{self, CANNOT_UNDERSTAND, DOES_NOT_MATCH_SOP_CLASS};

use crate::corpus;

/// Every vendored file, and what reading it gives: its transfer syntax, or the failure reason.
const FILES: &[(&str, Result<&str, u16>)] = &[
    ("CT_small.dcm", Ok("1.2.840.10008.1.2.1")),
    ("MR_small.dcm", Ok("1.2.840.10008.1.2.1")),
    ("MR_small_implicit.dcm", Ok("1.2.840.10008.1.2")),
    ("MR_small_bigendian.dcm", Ok("1.2.840.10008.1.2.2")),
    ("MR_small_RLE.dcm", Ok("1.2.840.10008.1.2.5")),
    ("MR_small_jp2klossless.dcm", Ok("1.2.840.10008.1.2.4.90")),
    (
        "MR_small_jpeg_ls_lossless.dcm",
        Ok("1.2.840.10008.1.2.4.80"),
    ),
    ("SC_rgb_small_odd_jpeg.dcm", Ok("1.2.840.10008.1.2.4.50")),
    ("SC_rgb_jpeg_gdcm.dcm", Ok("1.2.840.10008.1.2.4.70")),
    // Its data set is written in implicit VR under JPEG baseline: stored re-encoded.
    ("SC_rgb_jpeg.dcm", Ok("1.2.840.10008.1.2.4.50")),
    ("JPEG-lossy.dcm", Ok("1.2.840.10008.1.2.4.51")),
    ("image_dfl.dcm", Ok("1.2.840.10008.1.2.1.99")),
    ("waveform_ecg.dcm", Ok("1.2.840.10008.1.2.1")),
    // Its meta group names another SOP Instance UID than its data set: the data set's counts.
    ("rtplan.dcm", Ok("1.2.840.10008.1.2")),
    ("chrX1.dcm", Ok("1.2.840.10008.1.2.1")),
    ("chrX2.dcm", Ok("1.2.840.10008.1.2.1")),
    ("chrH31.dcm", Ok("1.2.840.10008.1.2.1")),
    // A bare data set (no preamble, no meta group): stored as a PS3.10 file.
    ("ExplVR_BigEndNoMeta.dcm", Ok("1.2.840.10008.1.2.2")),
    ("MR_truncated.dcm", Err(CANNOT_UNDERSTAND)),
    // A sequence as UN of undefined length: refused before the reader, which would read its
    // implicit VR items as explicit and allocate gigabytes for a garbage length.
    ("UN_sequence.dcm", Err(CANNOT_UNDERSTAND)),
    ("no_meta.dcm", Err(CANNOT_UNDERSTAND)),
    ("JPEGLSNearLossless_08.dcm", Err(DOES_NOT_MATCH_SOP_CLASS)),
    ("DICOMDIR-empty.dcm", Err(DOES_NOT_MATCH_SOP_CLASS)),
];

#[test]
fn every_vendored_file_is_read_or_refused_with_its_reason() {
    for (name, expected) in FILES {
        let read = part10::read(&corpus(name));
        match (expected, read) {
            (Ok(syntax), Ok(instance)) => {
                assert_eq!(instance.transfer_syntax, *syntax, "{name}");
                assert!(
                    instance.file.len() >= 132 && &instance.file[128..132] == b"DICM",
                    "{name}"
                );
                for uid in [
                    &instance.study,
                    &instance.series,
                    &instance.sop_instance,
                    &instance.sop_class,
                ] {
                    assert!(part10::valid_uid(uid), "{name}: {uid}");
                }
                // What the file is read as again is the same instance (the stored file of a
                // bare data set included).
                let again = part10::read(&instance.file).unwrap();
                assert_eq!(again.dataset, instance.dataset, "{name}");
            }
            (Err(code), Err(refusal)) => {
                assert_eq!(refusal.code, *code, "{name}: {}", refusal.reason);
                assert!(!refusal.reason.is_empty());
            }
            (expected, got) => panic!("{name}: expected {expected:?}, got {got:?}"),
        }
    }
}

/// A data set written in implicit VR under an explicit VR syntax is read as what it is and
/// stored re-encoded in its syntax (explicit VR), with a warning for the sender; its
/// attributes are those pydicom reads (which reads such files by looking at the bytes too).
#[test]
fn a_data_set_in_implicit_vr_under_an_explicit_syntax_is_stored_re_encoded() {
    let original = corpus("SC_rgb_jpeg.dcm");
    let instance = part10::read(&original).unwrap();
    assert!(instance.coerced.as_deref().unwrap().contains("implicit VR"));
    assert_ne!(instance.file, original);
    // The stored data set is explicit VR now: its first element carries a VR.
    let again = part10::read(&instance.file).unwrap();
    assert!(again.coerced.is_none());
    assert_eq!(again.dataset, instance.dataset);
    assert_eq!(text(&instance.dataset, "00280010").as_deref(), Some("256"));
    assert_eq!(text(&instance.dataset, "00080060").as_deref(), Some("OT"));
}

#[test]
fn the_data_set_not_its_meta_group_names_the_instance() {
    let instance = part10::read(&corpus("rtplan.dcm")).unwrap();
    assert_eq!(
        instance.sop_instance,
        "1.2.777.777.77.7.7777.7777.20030903150023"
    );
}

#[test]
fn chinese_names_are_read_in_utf8_and_in_gb18030() {
    for (name, ideographic) in [("chrX1.dcm", "王^小東"), ("chrX2.dcm", "王^小东")] {
        let instance = part10::read(&corpus(name)).unwrap();
        let pn = &instance.dataset["00100010"]["Value"][0];
        assert_eq!(pn["Alphabetic"], "Wang^XiaoDong", "{name}");
        assert_eq!(pn["Ideographic"], ideographic, "{name}");
    }
}

#[test]
fn the_model_writes_numbers_as_numbers_and_bulk_data_by_reference() {
    let instance = part10::read(&corpus("CT_small.dcm")).unwrap();
    let d = &instance.dataset;
    assert_eq!(d["00280010"]["vr"], "US");
    assert_eq!(d["00280010"]["Value"][0], 128);
    assert!(
        d["00180050"]["Value"][0].is_number(),
        "DS as a number: {}",
        d["00180050"]
    );
    assert_eq!(d["7FE00010"]["BulkDataURI"], "bulkdata/7FE00010");
    assert!(
        d.get("00020010").is_none(),
        "the file meta group is not part of the data set"
    );
    assert_eq!(text(d, "00100020").as_deref(), Some("1CT1"));
    // Encapsulated pixel data and the ECG's waveform samples too.
    let jpeg = part10::read(&corpus("SC_rgb_small_odd_jpeg.dcm")).unwrap();
    assert_eq!(jpeg.dataset["7FE00010"]["BulkDataURI"], "bulkdata/7FE00010");
    let ecg = part10::read(&corpus("waveform_ecg.dcm")).unwrap();
    let waveform = &ecg.dataset["54000100"]["Value"][0]["54001010"];
    assert_eq!(waveform["BulkDataURI"], "bulkdata/54000100/0/54001010");
}

/// A file whose first element claims `length` bytes.
fn claiming(length: u32) -> Vec<u8> {
    let mut file = corpus("MR_small.dcm");
    let meta_end = 132 + 12 + u32::from_le_bytes(file[140..144].try_into().unwrap()) as usize;
    // The first data set element (explicit VR LE, group 0008): an OB claiming `length`.
    let mut element = vec![0x08, 0x00, 0x99, 0x00, b'O', b'B', 0, 0];
    element.extend_from_slice(&length.to_le_bytes());
    element.extend_from_slice(&[0; 16]);
    file.truncate(meta_end);
    file.extend_from_slice(&element);
    file
}

#[test]
fn a_part_claiming_more_bytes_than_it_has_is_refused_before_anything_is_allocated_for_it() {
    for length in [0xFFFF_FFF0, 1 << 30, 17] {
        let refusal = part10::read(&claiming(length)).unwrap_err();
        assert_eq!(refusal.code, CANNOT_UNDERSTAND);
        assert!(refusal.reason.contains("declares"), "{}", refusal.reason);
    }
}

#[test]
fn sequences_nested_beyond_the_limit_are_refused() {
    let mut file = corpus("MR_small.dcm");
    let meta_end = 132 + 12 + u32::from_le_bytes(file[140..144].try_into().unwrap()) as usize;
    file.truncate(meta_end);
    // (0008,1115) SQ of undefined length, each item holding the next, 100 deep.
    for _ in 0..100 {
        file.extend_from_slice(&[
            0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        file.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    }
    let refusal = part10::read(&file).unwrap_err();
    assert!(refusal.reason.contains("nested"), "{}", refusal.reason);
}

#[test]
fn every_file_cut_short_anywhere_is_refused_not_a_panic() {
    for (name, _) in FILES {
        let bytes = corpus(name);
        let whole = part10::read(&bytes).ok();
        for cut in (0..bytes.len()).step_by((bytes.len() / 97).max(1)) {
            match part10::read(&bytes[..cut]) {
                // A cut at an element's end leaves a shorter data set: what it holds is what
                // the whole one holds.
                Ok(short) => {
                    let whole = whole
                        .as_ref()
                        .unwrap_or_else(|| panic!("{name} cut at {cut} read"));
                    assert!(
                        short.dataset.keys().all(|k| whole.dataset.contains_key(k)),
                        "{name} at {cut}"
                    );
                }
                Err(refusal) => assert!(
                    [CANNOT_UNDERSTAND, DOES_NOT_MATCH_SOP_CLASS].contains(&refusal.code)
                        && !refusal.reason.is_empty(),
                    "{name} at {cut}: {refusal:?}"
                ),
            }
        }
        let mut flipped = bytes.clone();
        for at in (0..flipped.len()).step_by(13) {
            flipped[at] ^= 0x5A;
        }
        if let Err(refusal) = part10::read(&flipped) {
            assert!(!refusal.reason.is_empty(), "{name}");
        }
    }
}

/// Fuzz finding F8 (fuzz/RUNS.md): a deflated data set whose inflated bytes declare a value of
/// gigabytes: the length walk skipped deflated data sets and the reader allocated 3 GB. The
/// walk now inflates (to a bound) and walks the inflated data set.
#[test]
fn fuzz_finding_f8_a_deflated_data_set_is_walked_inflated() {
    let refusal = part10::read(&corpus("regressions/fuzz_F8_deflate.dcm")).unwrap_err();
    assert_eq!(refusal.code, CANNOT_UNDERSTAND, "{}", refusal.reason);
    assert!(part10::read(&corpus("image_dfl.dcm")).is_ok());
}

/// Fuzz finding F9 (fuzz/RUNS.md): an element whose VR bytes name no VR. The walk read its
/// length in the short form, the reader (as UN) in the long one, and allocated 3 GB. The walk
/// now reads it as the reader does.
#[test]
fn fuzz_finding_f9_an_unknown_vr_is_walked_as_the_reader_reads_it() {
    let refusal = part10::read(&corpus("regressions/fuzz_F9_unknown_vr.dcm")).unwrap_err();
    assert_eq!(refusal.code, CANNOT_UNDERSTAND);
    assert!(refusal.reason.contains("declares"), "{}", refusal.reason);
}

/// Fuzz finding F11 (fuzz/RUNS.md): a file meta group whose group length says it ends
/// elsewhere than its elements do. The reader starts the data set where the length says, the
/// walk where the elements end: they read different bytes, and the reader allocated 3.6 GB.
#[test]
fn fuzz_finding_f11_a_meta_group_length_that_disagrees_is_refused() {
    let refusal = part10::read(&corpus("regressions/fuzz_F11_group_length.dcm")).unwrap_err();
    assert!(
        refusal.reason.contains("group's length"),
        "{}",
        refusal.reason
    );
}

/// Fuzz finding F12 (fuzz/RUNS.md): a part whose data set fails the length walk is tried as
/// implicit VR written under an explicit syntax, and that try read the meta group's transfer
/// syntax with dicom-object's meta reader, which allocates each element's declared length
/// before reading it: 2.7 GB for this 400-byte part (a Media Storage SOP Instance UID whose
/// VR bytes are `U\0`, read with a length of 0xA6FF88FF). The meta group is now walked first.
/// The allocation itself cannot be seen from here (the read was refused before the fix too,
/// a second and a half and 2.7 GB later), so the walk that prevents it is checked.
#[test]
fn fuzz_finding_f12_the_meta_group_is_walked_before_its_reader_reads_it() {
    let part = corpus("regressions/fuzz_F12_meta_length.dcm");
    let why = imaging::lengths::check_meta(&part).unwrap_err();
    assert!(why.contains("value representation"), "{why}");
    let refusal = part10::read(&part).unwrap_err();
    assert_eq!(refusal.code, CANNOT_UNDERSTAND, "{}", refusal.reason);
    assert!(imaging::lengths::check_meta(&corpus("CT_small.dcm")).is_ok());
}
