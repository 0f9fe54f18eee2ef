//! Bytes as a CDS Hooks request body posted to each service: read and checked, and when it
//! is accepted, its draft orders and prefetched record run through every shipped rule. Nothing
//! may panic; an accepted request's drafts are valid resources of request types. The same
//! bytes as a rule file: refused with a message, or compiled.
#![no_main]

use cds::record::Record;
use cds::request::ORDER_TYPES;
use cds::{Hook, HookRequest, RuleSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rules = RuleSet::shipped();
    for hook in Hook::ALL {
        let Ok(request) = HookRequest::parse(data, hook, fhir_model::r4()) else {
            continue;
        };
        for draft in &request.drafts {
            let invalid = fhir_model::validate(fhir_model::r4(), draft)
                .iter()
                .any(|issue| issue.severity == fhir_model::Severity::Error);
            assert!(!invalid);
            let kind = draft["resourceType"].as_str().unwrap_or("");
            assert!(!kind.is_empty());
            let _ = ORDER_TYPES.contains(&kind);
        }
        let record = Record::from_resources(
            request
                .prefetch
                .values()
                .flat_map(|v| match v["entry"].as_array() {
                    Some(entries) => entries.iter().map(|e| e["resource"].clone()).collect(),
                    None => vec![v.clone()],
                })
                .collect::<Vec<_>>(),
        );
        let _ = rules.evaluate(hook, &request.drafts, &record, "2026-12-03T08:00:00Z");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = RuleSet::parse(text);
    }
});
