//! What the ECG targets check of an Observation's recording (`imaging::ecg::from_observation`):
//! refused with a reason, or a tracing of equally long leads at a rate read; measured
//! (`measure.rs`) to figures within what the algorithm guarantees, or refused; and drawn as SVG
//! and as a raster of the sheet's size.

use imaging::ImagingError;
use imaging::ecg::{self, Measurements, Tracing, paper};
use serde_json::Value;

pub fn check_observation(observation: &Value) {
    let tracing = match ecg::from_observation(observation) {
        Err(ImagingError::BadRequest(reason) | ImagingError::Unrenderable(reason)) => {
            assert!(!reason.is_empty());
            return;
        }
        Err(other) => panic!("{other:?}"),
        Ok(tracing) => tracing,
    };
    let samples = tracing.samples();
    assert!((1..=ecg::MAX_LEADS).contains(&tracing.leads.len()));
    assert!(samples >= 2);
    assert!(tracing.leads.iter().all(|l| l.microvolts.len() == samples));
    assert!(samples * tracing.leads.len() <= ecg::MAX_SAMPLES);
    assert!(
        ecg::RATES.contains(&tracing.sample_rate),
        "{}",
        tracing.sample_rate
    );
    let measured = tracing.measure().ok();
    if let Some(m) = &measured {
        check_measurements(m, &tracing);
    }
    draw(&tracing, measured.as_ref());
}

/// The figures `measure` guarantees (read from `crates/imaging/src/ecg/measure.rs`):
/// - all of them finite and above 0 (`assemble` refuses others);
/// - QT ≥ QRS: a lead's T end is kept only after the global QRS offset;
/// - QRS < 290 ms: onset and offset lie inside R − 120 ms .. R + 160 ms (rounded to samples, at
///   100 Hz or more); PR ≤ 330 ms: the P window starts 330 ms before the QRS onset;
/// - QT < 1,370 ms: the T end lies inside the median beat, at most 0.45 s + 0.9 s and a
///   sample or two long;
/// - RR ≥ 45 ms and a heart rate under 1,334/min — not under 400: candidate beats are more than
///   200 ms apart, but each is then placed at the largest QRS-band amplitude within ±75 ms, so
///   two detected beats can be as little as 50 ms apart (less 5 ms of rounding at 100 Hz);
/// - at least 2 beats, R peaks inside the recording and in time order.
pub fn check_measurements(m: &Measurements, tracing: &Tracing) {
    let figures = [
        m.heart_rate_bpm,
        m.rr_ms,
        m.qrs_ms,
        m.qt_ms,
        m.qtc_bazett_ms,
        m.qtc_fridericia_ms,
    ];
    assert!(figures.iter().all(|v| v.is_finite() && *v > 0.0), "{m:?}");
    assert!(m.qt_ms >= m.qrs_ms, "{m:?}");
    assert!(m.qrs_ms < 290.0, "{m:?}");
    assert!(m.qt_ms < 1370.0, "{m:?}");
    assert!(m.rr_ms >= 45.0 && m.heart_rate_bpm < 1334.0, "{m:?}");
    assert!(
        m.pr_ms
            .is_none_or(|pr| pr.is_finite() && pr > 0.0 && pr <= 330.0 + 1e-6),
        "{m:?}"
    );
    let rr = m.rr_ms / 1000.0;
    assert!(
        (m.qtc_bazett_ms - m.qt_ms / rr.sqrt()).abs() <= 1e-6 * m.qtc_bazett_ms,
        "{m:?}"
    );
    assert!(
        (m.qtc_fridericia_ms - m.qt_ms / rr.cbrt()).abs() <= 1e-6 * m.qtc_fridericia_ms,
        "{m:?}"
    );
    assert!(m.beats >= 2 && m.r_peaks.len() == m.beats, "{m:?}");
    assert!(m.r_peaks.iter().all(|&p| p < tracing.samples()), "{m:?}");
    assert!(m.r_peaks.windows(2).all(|w| w[0] < w[1]), "{m:?}");
}

/// The tracing drawn as the server draws it: SVG and a PNG's raster at 5 pixels a millimetre.
pub fn draw(tracing: &Tracing, measured: Option<&Measurements>) {
    let svg = paper::svg(tracing, measured, "t");
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    let sheet = paper::layout(tracing);
    let image = paper::raster(tracing, measured, 5.0);
    assert_eq!(image.width(), (sheet.width * 5.0).ceil() as u32);
    assert_eq!(image.height(), (sheet.height * 5.0).ceil() as u32);
}
