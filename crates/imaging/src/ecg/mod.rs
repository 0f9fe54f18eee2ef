//! ECGs (issue 19): a tracing read from a DICOM waveform (12-lead and General ECG IODs) or
//! from a FHIR `Observation` with `SampledData` (a kiosk's single- or few-lead recording),
//! measured ([`measure`]: heart rate, RR, PR, QRS, QT and QTc by Bazett and Fridericia), drawn
//! on standard ECG paper ([`paper`]: 25 mm/s, 10 mm/mV, 12-lead layout with a rhythm strip, as
//! SVG or PNG), and recorded as an `Observation` whose components are the measurements
//! ([`record`]).

pub mod measure;
pub mod paper;
pub mod record;
mod waveform;

pub use measure::Measurements;
pub use waveform::{from_dicom, from_object, from_observation};

/// The SOP classes of ECG waveforms (PS3.4 B.5): 12-lead, General and Ambulatory ECG.
pub const ECG_CLASSES: [&str; 3] = [
    "1.2.840.10008.5.1.4.1.1.9.1.1",
    "1.2.840.10008.5.1.4.1.1.9.1.2",
    "1.2.840.10008.5.1.4.1.1.9.1.3",
];

pub fn is_ecg(sop_class: &str) -> bool {
    ECG_CLASSES.contains(&sop_class)
}

/// A recording: its leads, each in microvolts, all at one sampling rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracing {
    pub leads: Vec<Lead>,
    pub sample_rate: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lead {
    /// The lead's short name as printed on ECG paper (`I`, `aVR`, `V1`), or the label the
    /// source gave a lead it does not name.
    pub name: String,
    pub microvolts: Vec<f64>,
}

impl Tracing {
    /// Samples per lead (every lead has as many).
    pub fn samples(&self) -> usize {
        self.leads.first().map_or(0, |l| l.microvolts.len())
    }

    pub fn seconds(&self) -> f64 {
        self.samples() as f64 / self.sample_rate
    }

    pub fn lead(&self, name: &str) -> Option<&Lead> {
        self.leads.iter().find(|l| l.name == name)
    }

    /// The recording measured, as [`measure::measure`] does.
    pub fn measure(&self) -> Result<Measurements, measure::Error> {
        let leads: Vec<measure::Lead<'_>> = self
            .leads
            .iter()
            .map(|l| measure::Lead {
                name: &l.name,
                microvolts: &l.microvolts,
            })
            .collect();
        measure::measure(&leads, self.sample_rate)
    }
}

/// At most this many samples in all leads of a recording (12 leads of 10 minutes at 1 kHz).
pub const MAX_SAMPLES: usize = 12 * 600 * 1000;
/// At most this many leads in a recording, from a DICOM waveform (its channels) or an
/// Observation: each is a strip 30 mm high on the drawn page (fuzz finding F14: a 1.2 MB
/// Observation of 160,000 two-sample leads was drawn on a page of 5.4 GB).
pub const MAX_LEADS: usize = 64;
/// Sampling rates taken, in Hz.
pub const RATES: std::ops::RangeInclusive<f64> = 100.0..=20_000.0;

/// The leads of the standard 12-lead ECG, in the order of their printed layout's columns.
pub const STANDARD_LEADS: [&str; 12] = [
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
];

/// A lead's short name from how a source names it: `Lead I (Einthoven)`, `lead avr`,
/// `MDC_ECG_ELEC_POTL_AVR`, `V1`, or a SCP-ECG / MDC code (`5.6.3-9-1`, `131329`); `None`
/// when it is none of the twelve standard leads.
pub fn standard_lead(text: &str) -> Option<&'static str> {
    let text = text.trim();
    let code = text.rsplit(['-', ' ']).next().unwrap_or(text);
    // SCP-ECG lead codes (5.6.3-9-n) and MDC_ECG_ELEC_POTL_x (131328 + n) number leads alike.
    let numbered = if text.starts_with("5.6.3-9-") {
        code.parse::<u32>().ok()
    } else {
        text.parse::<u32>()
            .ok()
            .and_then(|c| c.checked_sub(131_328))
    };
    if let Some(number) = numbered {
        return match number {
            1 => Some("I"),
            2 => Some("II"),
            3..=8 => Some(STANDARD_LEADS[number as usize + 3]),
            61 => Some("III"),
            62 => Some("aVR"),
            63 => Some("aVL"),
            64 => Some("aVF"),
            _ => None,
        };
    }
    let mut name = text
        .split('(')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase();
    for prefix in ["MDC_ECG_ELEC_POTL_", "MDC_ECG_LEAD_", "LEAD "] {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest.trim().to_owned();
        }
    }
    STANDARD_LEADS
        .iter()
        .find(|lead| lead.eq_ignore_ascii_case(&name))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leads_are_named_from_any_of_their_spellings() {
        assert_eq!(standard_lead("Lead I (Einthoven)"), Some("I"));
        assert_eq!(standard_lead("Lead aVR"), Some("aVR"));
        assert_eq!(standard_lead("lead avf"), Some("aVF"));
        assert_eq!(standard_lead("MDC_ECG_ELEC_POTL_III"), Some("III"));
        assert_eq!(standard_lead("131389"), Some("III"));
        assert_eq!(standard_lead("131331"), Some("V1"));
        assert_eq!(standard_lead("5.6.3-9-8"), Some("V6"));
        assert_eq!(standard_lead("5.6.3-9-2"), Some("II"));
        assert_eq!(standard_lead("Lead V4"), Some("V4"));
        assert_eq!(standard_lead("Pressure"), None);
        assert_eq!(standard_lead("131328"), None);
    }
}
