//! Bytes as one reading of a kiosk's upload (JSON, from a device in a village clinic): either
//! refused with a reason the kiosk can show, or a vital-signs Observation's content with a
//! time of measurement that has a zone and is not in the future. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reading) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let now = 1_800_000_000_000_000;
    match intake::device::reading_observation(&reading, now) {
        Err(reason) => assert!(!reason.is_empty()),
        Ok((content, measured)) => {
            assert!(content["code"]["coding"][0]["system"] == "http://loinc.org");
            let at = fhir_model::clock::parse_instant(&measured).expect("a measured time reads");
            assert!(at <= now + 10 * 60 * 1_000_000);
        }
    }
});
