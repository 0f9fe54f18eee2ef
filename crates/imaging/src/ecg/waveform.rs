//! Reading a tracing: from a DICOM waveform (PS3.3 C.10.9, the Waveform module) or from a
//! FHIR `Observation`'s `SampledData`.

use dicom_core::value::Value as DicomValue;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde_json::Value;

use super::{Lead, MAX_LEADS, MAX_SAMPLES, RATES, Tracing, standard_lead};
use crate::{ImagingError, part10};

fn unreadable(why: impl Into<String>) -> ImagingError {
    ImagingError::Unrenderable(why.into())
}

/// The tracing of a stored ECG file: its rhythm multiplex group (the one labelled `RHYTHM`,
/// else the first), each channel scaled to microvolts as PS3.3 C.10.9.1.4 says: the sample
/// times the channel's sensitivity and its correction factor, plus its baseline, in the
/// sensitivity's units (µV, mV or V).
pub fn from_dicom(file: &[u8]) -> Result<Tracing, ImagingError> {
    let object = part10::parse(file).map_err(|r| ImagingError::BadRequest(r.reason))?;
    from_object(&object)
}

/// The tracing of a parsed ECG instance, as [`from_dicom`].
pub fn from_object(object: &InMemDicomObject) -> Result<Tracing, ImagingError> {
    let groups = object
        .get(tags::WAVEFORM_SEQUENCE)
        .and_then(|e| e.items())
        .filter(|items| !items.is_empty())
        .ok_or_else(|| unreadable("the instance has no waveform"))?;
    let group = groups
        .iter()
        .find(|g| {
            text(g, tags::MULTIPLEX_GROUP_LABEL).is_some_and(|l| l.to_uppercase() == "RHYTHM")
        })
        .unwrap_or(&groups[0]);
    multiplex_group(group)
}

fn text(item: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    let value = item.get(tag)?.to_str().ok()?;
    let value = value.trim_matches(['\0', ' ']);
    (!value.is_empty()).then(|| value.to_owned())
}

fn number(item: &InMemDicomObject, tag: dicom_core::Tag) -> Option<f64> {
    item.get(tag)?.to_float64().ok().filter(|n| n.is_finite())
}

fn multiplex_group(group: &InMemDicomObject) -> Result<Tracing, ImagingError> {
    let channels = number(group, tags::NUMBER_OF_WAVEFORM_CHANNELS)
        .ok_or_else(|| unreadable("the waveform does not say how many channels it has"))?;
    let samples = number(group, tags::NUMBER_OF_WAVEFORM_SAMPLES)
        .ok_or_else(|| unreadable("the waveform does not say how many samples it has"))?;
    let rate = number(group, tags::SAMPLING_FREQUENCY)
        .ok_or_else(|| unreadable("the waveform has no sampling frequency"))?;
    if !(1.0..=MAX_LEADS as f64).contains(&channels) || samples < 1.0 {
        return Err(unreadable(format!(
            "a waveform of {channels} channels of {samples} samples is not read"
        )));
    }
    let (channels, samples) = (channels as usize, samples as usize);
    if channels.saturating_mul(samples) > MAX_SAMPLES {
        return Err(unreadable(format!(
            "a waveform of {channels} × {samples} samples is longer than the {MAX_SAMPLES} read"
        )));
    }
    if !RATES.contains(&rate) {
        return Err(unreadable(format!(
            "a sampling frequency of {rate} Hz is not read (100 Hz to 20 kHz)"
        )));
    }
    let bits = number(group, tags::WAVEFORM_BITS_ALLOCATED).unwrap_or(16.0);
    let interpretation = text(group, tags::WAVEFORM_SAMPLE_INTERPRETATION).unwrap_or_default();
    let width = match (bits as u32, interpretation.as_str()) {
        (16, "SS") => Width::Signed16,
        (16, "US") => Width::Unsigned16,
        (8, "SB") => Width::Signed8,
        (8, "UB") => Width::Unsigned8,
        (bits, interpretation) => {
            return Err(unreadable(format!(
                "waveform samples of {bits} bits read as '{interpretation}' are not read"
            )));
        }
    };
    let data = match group.get(tags::WAVEFORM_DATA).map(|e| e.value()) {
        Some(DicomValue::Primitive(value)) => value.to_bytes(),
        _ => return Err(unreadable("the waveform has no waveform data")),
    };
    let needed = channels * samples * width.bytes();
    if data.len() < needed {
        return Err(unreadable(format!(
            "the waveform data holds {} bytes, not the {needed} its channels need",
            data.len()
        )));
    }
    let definitions = group
        .get(tags::CHANNEL_DEFINITION_SEQUENCE)
        .and_then(|e| e.items())
        .filter(|items| items.len() == channels)
        .ok_or_else(|| unreadable("the waveform does not define each of its channels"))?;
    let mut leads: Vec<Lead> = definitions
        .iter()
        .enumerate()
        .map(|(index, definition)| {
            let (name, scale, baseline) = channel(definition, index)?;
            let microvolts = (0..samples)
                .map(|sample| {
                    let at = (sample * channels + index) * width.bytes();
                    width.read(&data[at..]) * scale + baseline
                })
                .collect();
            Ok(Lead { name, microvolts })
        })
        .collect::<Result<_, ImagingError>>()?;
    // A recording that names its leads is kept in the standard order.
    leads.sort_by_key(|l| {
        super::STANDARD_LEADS
            .iter()
            .position(|s| *s == l.name)
            .unwrap_or(usize::MAX)
    });
    Ok(Tracing {
        leads,
        sample_rate: rate,
    })
}

#[derive(Clone, Copy)]
enum Width {
    Signed16,
    Unsigned16,
    Signed8,
    Unsigned8,
}

impl Width {
    fn bytes(self) -> usize {
        match self {
            Width::Signed16 | Width::Unsigned16 => 2,
            Width::Signed8 | Width::Unsigned8 => 1,
        }
    }

    /// The sample at the start of `bytes` (little endian, as dicom-object gives values).
    fn read(self, bytes: &[u8]) -> f64 {
        match self {
            Width::Signed16 => f64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
            Width::Unsigned16 => f64::from(u16::from_le_bytes([bytes[0], bytes[1]])),
            Width::Signed8 => f64::from(bytes[0] as i8),
            Width::Unsigned8 => f64::from(bytes[0]),
        }
    }
}

/// A channel's lead name and its scale and baseline to microvolts.
fn channel(
    definition: &InMemDicomObject,
    index: usize,
) -> Result<(String, f64, f64), ImagingError> {
    let source = definition
        .get(tags::CHANNEL_SOURCE_SEQUENCE)
        .and_then(|e| e.items())
        .and_then(|items| items.first());
    let named = source.and_then(|s| {
        [tags::CODE_MEANING, tags::CODE_VALUE]
            .into_iter()
            .filter_map(|tag| text(s, tag))
            .find_map(|t| standard_lead(&t))
    });
    let name = named
        .map(str::to_owned)
        .or_else(|| text(definition, tags::CHANNEL_LABEL))
        .or_else(|| source.and_then(|s| text(s, tags::CODE_MEANING)))
        .unwrap_or_else(|| format!("{}", index + 1));
    let units = definition
        .get(tags::CHANNEL_SENSITIVITY_UNITS_SEQUENCE)
        .and_then(|e| e.items())
        .and_then(|items| items.first())
        .and_then(|u| text(u, tags::CODE_VALUE))
        .unwrap_or_else(|| "uV".into());
    let per_unit = microvolts_per(&units)
        .ok_or_else(|| unreadable(format!("channel {name} is in '{units}', not a voltage")))?;
    let sensitivity = number(definition, tags::CHANNEL_SENSITIVITY).unwrap_or(1.0);
    let correction = number(definition, tags::CHANNEL_SENSITIVITY_CORRECTION_FACTOR).unwrap_or(1.0);
    let baseline = number(definition, tags::CHANNEL_BASELINE).unwrap_or(0.0);
    Ok((
        name,
        sensitivity * correction * per_unit,
        baseline * per_unit,
    ))
}

/// Microvolts in one of a UCUM voltage unit.
fn microvolts_per(unit: &str) -> Option<f64> {
    match unit {
        "uV" | "µV" => Some(1.0),
        "mV" => Some(1_000.0),
        "V" => Some(1_000_000.0),
        "nV" => Some(0.001),
        _ => None,
    }
}

/// The tracing of an `Observation`: each component with `valueSampledData` is a lead named by
/// its code (MDC `MDC_ECG_ELEC_POTL_x` codes or displays, or text), or the Observation's own
/// `valueSampledData` is one lead named by its code. Values are `origin + factor × data` in
/// the origin's unit (µV, mV or V; microvolts when it names none, as IEEE 11073 ECG devices
/// report); `E`, `L` and `U` (error, below and above the detection limits) hold the sample
/// before them. All leads must share one period; a `SampledData` of several dimensions is
/// as many leads, numbered; at most [`MAX_LEADS`] leads in all.
pub fn from_observation(observation: &Value) -> Result<Tracing, ImagingError> {
    let bad = |why: String| ImagingError::BadRequest(why);
    let mut sources: Vec<(String, &Value)> = Vec::new();
    if let Some(data) = observation.get("valueSampledData") {
        sources.push((lead_name(observation.get("code"), 0), data));
    }
    for (index, component) in observation
        .get("component")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(data) = component.get("valueSampledData") {
            sources.push((lead_name(component.get("code"), index), data));
        }
    }
    if sources.is_empty() {
        return Err(ImagingError::Unrenderable(
            "the Observation has no SampledData to draw".into(),
        ));
    }
    let mut period: Option<f64> = None;
    let mut leads = Vec::new();
    let mut total = 0usize;
    for (name, data) in sources {
        let this_period = data
            .get("period")
            .and_then(Value::as_f64)
            .filter(|p| p.is_finite() && *p > 0.0)
            .ok_or_else(|| bad(format!("lead {name}'s SampledData has no period above 0")))?;
        match period {
            Some(p) if (p - this_period).abs() > 1e-9 => {
                return Err(bad(format!(
                    "lead {name} is sampled every {this_period} ms, the others every {p} ms"
                )));
            }
            _ => period = Some(this_period),
        }
        let origin = data
            .pointer("/origin/value")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let unit = data
            .pointer("/origin/code")
            .or_else(|| data.pointer("/origin/unit"))
            .and_then(Value::as_str)
            .unwrap_or("uV");
        let per_unit = microvolts_per(unit)
            .ok_or_else(|| bad(format!("lead {name} is in '{unit}', not a voltage")))?;
        let factor = data.get("factor").and_then(Value::as_f64).unwrap_or(1.0);
        let dimensions = data
            .get("dimensions")
            .and_then(Value::as_u64)
            .filter(|d| (1..=16).contains(d))
            .ok_or_else(|| {
                bad(format!(
                    "lead {name}'s SampledData has no dimensions 1 to 16"
                ))
            })? as usize;
        if leads.len() + dimensions > MAX_LEADS {
            return Err(bad(format!(
                "the Observation has more than the {MAX_LEADS} leads read"
            )));
        }
        let text = data.get("data").and_then(Value::as_str).unwrap_or_default();
        let mut values: Vec<Vec<f64>> = vec![Vec::new(); dimensions];
        let mut last = vec![0.0; dimensions];
        for (at, token) in text.split_ascii_whitespace().enumerate() {
            total += 1;
            if total > MAX_SAMPLES {
                return Err(bad(format!(
                    "the Observation holds more than the {MAX_SAMPLES} samples read"
                )));
            }
            let dimension = at % dimensions;
            let value = match token {
                "E" | "L" | "U" => last[dimension],
                number => {
                    let raw: f64 = number
                        .parse()
                        .ok()
                        .filter(|n: &f64| n.is_finite())
                        .ok_or_else(|| bad(format!("lead {name} has a sample '{number}'")))?;
                    (origin + factor * raw) * per_unit
                }
            };
            last[dimension] = value;
            values[dimension].push(value);
        }
        for (dimension, microvolts) in values.into_iter().enumerate() {
            let name = if dimensions == 1 {
                name.clone()
            } else {
                format!("{name} {}", dimension + 1)
            };
            leads.push(Lead { name, microvolts });
        }
    }
    let rate = 1000.0 / period.unwrap_or(1.0);
    if !RATES.contains(&rate) {
        return Err(bad(format!(
            "a sampling rate of {rate} Hz is not read (100 Hz to 20 kHz)"
        )));
    }
    let samples = leads.iter().map(|l| l.microvolts.len()).min().unwrap_or(0);
    if samples < 2 {
        return Err(bad("the Observation's SampledData holds no samples".into()));
    }
    // Leads recorded together have as many samples; a longer one is cut to the shortest.
    for lead in &mut leads {
        lead.microvolts.truncate(samples);
    }
    Ok(Tracing {
        leads,
        sample_rate: rate,
    })
}

/// A lead's name from a `CodeableConcept`: a standard lead from any coding's code or display,
/// else its text, else its position.
fn lead_name(code: Option<&Value>, index: usize) -> String {
    let codings = code
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for coding in codings {
        for field in ["code", "display"] {
            if let Some(lead) = coding
                .get(field)
                .and_then(Value::as_str)
                .and_then(standard_lead)
            {
                return lead.to_owned();
            }
        }
    }
    code.and_then(|c| c.get("text"))
        .and_then(Value::as_str)
        .map(|t| standard_lead(t).map_or_else(|| t.to_owned(), str::to_owned))
        .unwrap_or_else(|| format!("{}", index + 1))
}
