//! Bytes as an HL7 v2 message or batch from a hospital system, mapped to FHIR as the intake
//! maps it: every message read is either refused (AE/AR with a reason) or mapped to a
//! transaction Bundle whose every resource the model's validator accepts. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = hl7v2::parse_batch(data) else {
        return;
    };
    let profile = intake::v2::Profile {
        organization: "Organization/fuzz-hosp".into(),
        namespace: "fuzz-hosp".into(),
        source: "urn:meridian:hl7v2:fuzz-hosp:1".into(),
        code_maps: Default::default(),
    };
    for message in &batch.messages {
        match intake::v2::map(message, &profile) {
            Err(refusal) => assert!(!refusal.error.text.is_empty()),
            Ok(mapped) => {
                assert_eq!(mapped.bundle["type"], "transaction");
                for entry in mapped.bundle["entry"].as_array().into_iter().flatten() {
                    let issues = fhir_model::validate(fhir_model::r4(), &entry["resource"]);
                    let errors: Vec<_> = issues
                        .iter()
                        .filter(|i| i.severity == fhir_model::Severity::Error)
                        .collect();
                    assert!(errors.is_empty(), "{errors:?} in {}", entry["resource"]);
                }
            }
        }
    }
});
