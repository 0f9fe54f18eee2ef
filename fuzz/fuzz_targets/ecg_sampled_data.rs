//! Bytes as a FHIR Observation (JSON) whose SampledData is an ECG, as a kiosk posts one and
//! `$ecg-tracing` and `$ecg-measure` read it: refused with a reason, or a tracing that is
//! measured (`Tracing::measure`) to figures within what the algorithm guarantees and drawn as
//! SVG and PNG (`ecg_checks.rs`). Never a panic, a hang or a memory blow-up.
#![no_main]

mod ecg_checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(observation) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    ecg_checks::check_observation(&observation);
});
