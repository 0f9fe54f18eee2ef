//! ECGs: the tracing of the vendored 12-lead waveform (`waveform_ecg.dcm`, a Mortara ELI 250
//! recording from pydicom's test files), measured and checked against the device's own
//! measurements in the file's Waveform Annotation Sequence; drawn on ECG paper as SVG and
//! PNG; read again from FHIR `SampledData`.

use dicom_dictionary_std::tags;
use imaging::ecg::{self, Tracing};
use imaging::render::{self, Format, Rendering};
use serde_json::{Value, json};

use crate::corpus;

fn recording() -> Tracing {
    ecg::from_dicom(&corpus("waveform_ecg.dcm")).unwrap()
}

/// The device's numeric measurements from the file's Waveform Annotation Sequence
/// (0040,B020): each item's concept name (0040,A043) and numeric value (0040,A30A).
fn annotated(name: &str) -> f64 {
    let object = dicom_object::OpenFileOptions::new()
        .from_reader(std::io::Cursor::new(&corpus("waveform_ecg.dcm")[128..]))
        .unwrap();
    let items = object
        .get(tags::WAVEFORM_ANNOTATION_SEQUENCE)
        .and_then(|e| e.items())
        .unwrap();
    items
        .iter()
        .find_map(|item| {
            let concept = item
                .get(tags::CONCEPT_NAME_CODE_SEQUENCE)?
                .items()?
                .first()?;
            let meaning = concept.get(tags::CODE_MEANING)?.to_str().ok()?;
            (meaning.trim() == name)
                .then(|| item.get(tags::NUMERIC_VALUE)?.to_float64().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no annotation {name}"))
}

#[test]
fn the_waveform_is_read_as_twelve_leads_in_microvolts() {
    let tracing = recording();
    assert_eq!(tracing.sample_rate, 1000.0);
    assert_eq!(tracing.samples(), 10_000);
    let names: Vec<&str> = tracing.leads.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ecg::STANDARD_LEADS);
    // Einthoven's law holds sample by sample (II = I + III) when the leads are scaled alike;
    // a channel read with the wrong sensitivity or interleave would break it.
    let (one, two, three) = (
        &tracing.lead("I").unwrap().microvolts,
        &tracing.lead("II").unwrap().microvolts,
        &tracing.lead("III").unwrap().microvolts,
    );
    let worst = (0..tracing.samples())
        .map(|i| (two[i] - one[i] - three[i]).abs())
        .fold(0.0, f64::max);
    assert!(worst < 30.0, "II − I − III reaches {worst} µV");
    // A QRS complex is hundreds of microvolts to a few millivolts.
    let peak = two.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    assert!(
        (300.0..5_000.0).contains(&peak),
        "lead II peaks at {peak} µV"
    );
}

#[test]
fn measurements_agree_with_the_devices_annotations() {
    let m = recording().measure().unwrap();
    let rr = annotated("RR Interval");
    let close = |what: &str, ours: f64, theirs: f64, within: f64| {
        assert!(
            (ours - theirs).abs() <= within,
            "{what}: measured {ours:.1}, annotated {theirs}"
        );
    };
    close("RR", m.rr_ms, rr, 10.0);
    close("heart rate", m.heart_rate_bpm, 60_000.0 / rr, 2.0);
    close("PR", m.pr_ms.unwrap(), annotated("PR Interval"), 15.0);
    close("QRS", m.qrs_ms, annotated("QRS Duration"), 12.0);
    close("QT", m.qt_ms, annotated("QT Interval"), 20.0);
    // The device's QTc (370 ms at RR 982 ms) is within the spread of the two formulas.
    close("QTc", m.qtc_fridericia_ms, annotated("QTc Interval"), 20.0);
    let seconds = m.rr_ms / 1000.0;
    close("Bazett", m.qtc_bazett_ms, m.qt_ms / seconds.sqrt(), 0.5);
    close(
        "Fridericia",
        m.qtc_fridericia_ms,
        m.qt_ms / seconds.cbrt(),
        0.5,
    );
    assert_eq!(m.beats, m.r_peaks.len());
    assert!(
        (9..=11).contains(&m.beats),
        "{} beats in 10 s at 61/min",
        m.beats
    );
}

/// The same recording at 500 and 250 Hz (block averages, as a slower device would sample it)
/// is measured within the same tolerances.
#[test]
fn slower_sampling_gives_the_same_measurements() {
    let full = recording();
    for factor in [2, 4] {
        let slower = Tracing {
            sample_rate: full.sample_rate / factor as f64,
            leads: full
                .leads
                .iter()
                .map(|lead| ecg::Lead {
                    name: lead.name.clone(),
                    microvolts: lead
                        .microvolts
                        .chunks(factor)
                        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
                        .collect(),
                })
                .collect(),
        };
        let m = slower.measure().unwrap();
        let at = slower.sample_rate;
        assert!(
            (m.rr_ms - annotated("RR Interval")).abs() <= 10.0,
            "{at} Hz: RR {}",
            m.rr_ms
        );
        assert!(
            (m.pr_ms.unwrap() - annotated("PR Interval")).abs() <= 15.0,
            "{at} Hz: {m:?}"
        );
        assert!(
            (m.qrs_ms - annotated("QRS Duration")).abs() <= 12.0,
            "{at} Hz: {m:?}"
        );
        assert!(
            (m.qt_ms - annotated("QT Interval")).abs() <= 20.0,
            "{at} Hz: {m:?}"
        );
    }
}

#[test]
fn the_twelve_lead_layout_has_three_rows_of_four_columns_and_a_rhythm_strip() {
    let tracing = recording();
    let sheet = ecg::paper::layout(&tracing);
    assert_eq!(sheet.strips.len(), 13);
    assert_eq!(sheet.rows.len(), 4);
    // 10 s at 25 mm/s is 250 mm of trace; each column 2.5 s.
    let rhythm = &sheet.strips[12];
    assert_eq!(tracing.leads[rhythm.lead].name, "II");
    assert_eq!((rhythm.from, rhythm.to), (0, 10_000));
    let v1 = sheet
        .strips
        .iter()
        .find(|s| tracing.leads[s.lead].name == "V1")
        .unwrap();
    assert_eq!((v1.from, v1.to), (5_000, 7_500));
    assert!(
        (v1.x - sheet.strips[0].x - 125.0).abs() < 1e-9,
        "V1 starts 5 s in"
    );
    assert!((sheet.width - (250.0 + 15.0)).abs() < 1e-9);
}

#[test]
fn the_svg_is_on_paper_scale_with_the_measurements() {
    let tracing = recording();
    let m = tracing.measure().unwrap();
    let svg = ecg::paper::svg(&tracing, Some(&m), "TEST^ECG <&>");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"265.0mm\""));
    assert!(svg.ends_with("</svg>"));
    assert!(svg.contains(&format!("data-qrs=\"{:.0}\"", m.qrs_ms)));
    assert!(
        svg.contains("TEST^ECG &lt;&amp;&gt;"),
        "the title is escaped"
    );
    assert!(!svg.contains("<&>"));
    assert_eq!(svg.matches("class=\"lead\"").count(), 13);
    assert_eq!(
        svg.matches("stroke-linejoin").count(),
        13,
        "one trace per strip"
    );
    // The rhythm strip's first point is lead II's first sample at 10 mm/mV below its row.
    let sheet = ecg::paper::layout(&tracing);
    let first = tracing.lead("II").unwrap().microvolts[0];
    let expected = format!("M10.00,{:.2}", sheet.rows[3] - first / 100.0);
    assert!(svg.contains(&expected), "no {expected}");
}

#[test]
fn the_png_and_jpeg_are_the_sheet_at_five_pixels_a_millimetre() {
    let tracing = recording();
    let png = ecg::paper::png(&tracing, tracing.measure().ok().as_ref(), 5.0).unwrap();
    let image = dicom_pixeldata::image::load_from_memory(&png).unwrap();
    let sheet = ecg::paper::layout(&tracing);
    assert_eq!(image.width(), (sheet.width * 5.0).ceil() as u32);
    assert_eq!(image.height(), (sheet.height * 5.0).ceil() as u32);
    let rgb = image.to_rgb8();
    let ink = rgb.pixels().filter(|p| p.0 == [0, 0, 0]).count();
    assert!(ink > 10_000, "{ink} black pixels of trace and text");
    // WADO-RS `rendered` of the instance draws the same tracing.
    let rendered = |format| {
        render::render(
            &corpus("waveform_ecg.dcm"),
            &Rendering {
                frame: 1,
                window: None,
                format,
                viewport: None,
            },
        )
    };
    let svg = rendered(Format::Svg).unwrap();
    assert!(String::from_utf8(svg).unwrap().contains("data-heart-rate"));
    let jpeg = rendered(Format::Jpeg { quality: 90 }).unwrap();
    assert_eq!(
        dicom_pixeldata::image::load_from_memory(&jpeg)
            .unwrap()
            .width(),
        image.width()
    );
    // An image is not drawn as SVG.
    let refused = render::render(
        &corpus("CT_small.dcm"),
        &Rendering {
            frame: 1,
            window: None,
            format: Format::Svg,
            viewport: None,
        },
    );
    assert!(matches!(
        refused,
        Err(imaging::ImagingError::Unrenderable(_))
    ));
}

/// Lead `name` of the recording as a component of SampledData in millivolts, every second
/// sample (500 Hz), at `factor` mV per unit.
fn component(tracing: &Tracing, name: &str, code: &str) -> Value {
    let factor = 0.005;
    let data: Vec<String> = tracing
        .lead(name)
        .unwrap()
        .microvolts
        .iter()
        .step_by(2)
        .map(|uv| format!("{}", (uv / 1000.0 / factor).round()))
        .collect();
    json!({
        "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.24", "code": code,
            "display": format!("MDC_ECG_ELEC_POTL_{}", name.to_uppercase())}]},
        "valueSampledData": {
            "origin": {"value": 0, "unit": "mV", "system": "http://unitsofmeasure.org", "code": "mV"},
            "period": 2, "factor": factor, "dimensions": 1, "data": data.join(" "),
        },
    })
}

#[test]
fn a_kiosk_recording_in_sampled_data_is_read_measured_and_drawn() {
    let tracing = recording();
    let observation = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "ECG"},
        "component": [
            component(&tracing, "I", "131329"),
            component(&tracing, "II", "131330"),
            component(&tracing, "V5", "131335"),
        ],
    });
    let read = ecg::from_observation(&observation).unwrap();
    assert_eq!(read.sample_rate, 500.0);
    let names: Vec<&str> = read.leads.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["I", "II", "V5"]);
    assert_eq!(read.samples(), 5_000);
    // Within the 5 µV quantum of the data.
    let original = &tracing.lead("II").unwrap().microvolts;
    for (i, uv) in read.lead("II").unwrap().microvolts.iter().enumerate() {
        assert!((uv - original[2 * i]).abs() <= 2.5 + 1e-9);
    }
    let m = read.measure().unwrap();
    let full = tracing.measure().unwrap();
    assert!((m.rr_ms - full.rr_ms).abs() <= 10.0);
    assert!((m.qrs_ms - full.qrs_ms).abs() <= 20.0);
    // Three leads are three strips, not the 12-lead layout.
    assert_eq!(ecg::paper::layout(&read).strips.len(), 3);
}

#[test]
fn sampled_data_that_cannot_be_read_is_refused_with_a_reason() {
    let with = |data: Value| json!({"resourceType": "Observation", "valueSampledData": data});
    let refused = |observation: Value| match ecg::from_observation(&observation) {
        Err(
            imaging::ImagingError::BadRequest(reason) | imaging::ImagingError::Unrenderable(reason),
        ) => reason,
        other => panic!("{other:?}"),
    };
    assert!(refused(json!({"resourceType": "Observation"})).contains("no SampledData"));
    assert!(
        refused(with(
            json!({"origin": {"value": 0}, "period": 0, "dimensions": 1, "data": "1 2"})
        ))
        .contains("period")
    );
    assert!(
        refused(with(
            json!({"origin": {"value": 0}, "period": 2, "dimensions": 1, "data": "1 x 2"})
        ))
        .contains("'x'")
    );
    assert!(refused(with(json!({"origin": {"value": 0, "code": "mmHg"}, "period": 2, "dimensions": 1, "data": "1 2"}))).contains("not a voltage"));
    assert!(
        refused(with(
            json!({"origin": {"value": 0}, "period": 50, "dimensions": 1, "data": "1 2 3"})
        ))
        .contains("20 Hz")
    );
    // E, L and U hold the sample before them.
    let read = ecg::from_observation(&with(json!({
        "origin": {"value": 0}, "period": 2, "dimensions": 2, "data": "1 10 E 11 3 U"
    })))
    .unwrap();
    assert_eq!(read.leads[0].microvolts, [1.0, 1.0, 3.0]);
    assert_eq!(read.leads[1].microvolts, [10.0, 11.0, 11.0]);
    // Too short to measure: an error, not a panic.
    assert!(read.measure().is_err());
}

/// Fuzz finding F13 (fuzz/RUNS.md): a lead whose samples swing between ±3.3 kV, each one far
/// above or far below the paper. The raster walked every segment pixel by pixel to a million
/// pixels off the page (its ends were only clamped to -1..1e6): 90 s for this page, and the
/// same for a stored ECG waveform of such a sensitivity drawn by WADO-RS `rendered`. Segments
/// are now clipped to the image: the trace still runs from edge to edge, at once.
#[test]
fn fuzz_finding_f13_a_trace_far_off_the_paper_is_clipped_not_walked() {
    let observation: Value =
        serde_json::from_slice(&corpus("regressions/fuzz_F13_kilovolts.json")).unwrap();
    let tracing = ecg::from_observation(&observation).unwrap();
    assert!(tracing.leads[0].microvolts.iter().all(|v| v.abs() > 3e9));
    let started = std::time::Instant::now();
    let image = ecg::paper::raster(&tracing, None, 5.0);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // Every segment crosses the whole sheet: the bottom row is inked along the trace.
    let bottom = image.height() - 1;
    let inked = (0..image.width())
        .filter(|&x| image.get_pixel(x, bottom).0 == [0, 0, 0])
        .count();
    assert!(inked > 500, "{inked} inked pixels in the bottom row");
}

/// Fuzz finding F14 (fuzz/RUNS.md): an Observation of many short leads (here 5 components of
/// 16 dimensions, 80 leads of two samples). Each lead is a strip 30 mm high on the page: 160,000
/// of them in a 1.2 MB Observation made a PNG of 5.4 GB (and a body of the server's 16 MB one
/// of some 70 GB). A recording has at most 64 leads, as a DICOM waveform has channels.
#[test]
fn fuzz_finding_f14_an_observation_of_more_than_64_leads_is_refused() {
    let mut observation: Value =
        serde_json::from_slice(&corpus("regressions/fuzz_F14_many_leads.json")).unwrap();
    match ecg::from_observation(&observation) {
        Err(imaging::ImagingError::BadRequest(reason)) => {
            assert!(reason.contains("64 leads"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    observation["component"].as_array_mut().unwrap().truncate(4);
    let tracing = ecg::from_observation(&observation).unwrap();
    assert_eq!(tracing.leads.len(), ecg::MAX_LEADS);
    assert_eq!(ecg::paper::layout(&tracing).strips.len(), 64);
}
