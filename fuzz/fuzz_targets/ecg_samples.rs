//! Bytes as the samples of an ECG inside a fixed Observation, so that mutations change the
//! signal rather than break the JSON and reach far into the measurement (`ecg_checks.rs`
//! checks what comes out). Byte 0: the period (low three bits: 1, 2, 4, 2.5, 8, 10, 0.5 or
//! 0.05 ms), how the leads are arranged (bits 3–4: all samples as one lead in the
//! Observation's own SampledData, a component per lead, one component of as many dimensions,
//! or components of two dimensions each) and the unit (bit 5: mV, else µV). Byte 1: the number
//! of leads less one (at most 12, named as the standard leads by their MDC codes). Byte 2: the
//! factor (low three bits: 1, 1.25, 2.5, 5, 0.5, 10, 0.005 or 100). The rest: little-endian i16
//! samples interleaved by lead; -32768, -32767 and -32766 are written as E, L and U.
#![no_main]

mod ecg_checks;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const PERIODS: [f64; 8] = [1.0, 2.0, 4.0, 2.5, 8.0, 10.0, 0.5, 0.05];
const FACTORS: [f64; 8] = [1.0, 1.25, 2.5, 5.0, 0.5, 10.0, 0.005, 100.0];
/// MDC_ECG_ELEC_POTL_x codes of I, II, III, aVR, aVL, aVF, V1–V6.
const CODES: [&str; 12] = [
    "131329", "131330", "131389", "131390", "131391", "131392", "131331", "131332", "131333",
    "131334", "131335", "131336",
];

fn token(value: i16) -> String {
    match value {
        -32768 => "E".into(),
        -32767 => "L".into(),
        -32766 => "U".into(),
        v => v.to_string(),
    }
}

fn sampled(data: String, period: f64, unit: &str, factor: f64, dimensions: usize) -> Value {
    json!({
        "origin": {"value": 0, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
        "period": period, "factor": factor, "dimensions": dimensions, "data": data,
    })
}

fn code(lead: usize) -> Value {
    json!({"coding": [{"system": "urn:oid:2.16.840.1.113883.6.24", "code": CODES[lead % 12]}]})
}

fuzz_target!(|data: &[u8]| {
    let Some((&[shape, leads, factor], body)) = data.split_first_chunk::<3>() else {
        return;
    };
    let period = PERIODS[usize::from(shape & 0x07)];
    let arrangement = (shape >> 3) & 0x03;
    let unit = if shape & 0x20 != 0 { "mV" } else { "uV" };
    let leads = usize::from(leads % 12) + 1;
    let factor = FACTORS[usize::from(factor & 0x07)];
    let values: Vec<i16> = body
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let lead = |index: usize| -> String {
        values
            .iter()
            .skip(index)
            .step_by(leads)
            .map(|&v| token(v))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let all = || {
        values
            .iter()
            .map(|&v| token(v))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut observation = json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "11524-6"}], "text": "ECG"},
    });
    match arrangement {
        0 => {
            observation["code"] = code(1);
            observation["valueSampledData"] = sampled(all(), period, unit, factor, 1);
        }
        1 => {
            let components: Vec<Value> = (0..leads)
                .map(|i| json!({"code": code(i), "valueSampledData": sampled(lead(i), period, unit, factor, 1)}))
                .collect();
            observation["component"] = json!(components);
        }
        2 => {
            observation["component"] = json!([{
                "code": {"text": "leads"},
                "valueSampledData": sampled(all(), period, unit, factor, leads),
            }]);
        }
        _ => {
            // Two leads a component: each component's data is the samples of its pair.
            let components: Vec<Value> = (0..leads.div_ceil(2))
                .map(|pair| {
                    let data = values
                        .chunks(leads)
                        .flat_map(|row| row.iter().skip(2 * pair).take(2))
                        .map(|&v| token(v))
                        .collect::<Vec<_>>()
                        .join(" ");
                    json!({"code": code(2 * pair), "valueSampledData": sampled(data, period, unit, factor, 2)})
                })
                .collect();
            observation["component"] = json!(components);
        }
    }
    ecg_checks::check_observation(&observation);
});
