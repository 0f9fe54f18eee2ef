//! Every message of the corpus is read, or refused for a stated reason (the malformed
//! envelopes); what is read writes back to itself.

use std::path::PathBuf;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files = Vec::new();
    for dir in ["ms-fhir-converter", "python-hl7"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "hl7") {
                let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
                files.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_corpus_message_is_read_or_refused_with_a_reason() {
    let files = corpus();
    assert_eq!(files.len(), 160, "the vendored corpus");
    let mut read = 0;
    let mut messages = 0;
    for (name, bytes) in &files {
        match hl7v2::parse_batch(bytes) {
            Ok(batch) => {
                assert!(!name.contains("sample_bad"), "{name} should be refused");
                read += 1;
                messages += batch.messages.len();
                for message in &batch.messages {
                    assert_eq!(message.header().name, "MSH", "{name}");
                    assert!(
                        message.control_id().is_some() || name.contains("sample_msh"),
                        "{name}: no MSH-10"
                    );
                    assert!(message.message_type().0.is_some(), "{name}: no MSH-9");
                }
            }
            Err(error) => {
                assert!(name.contains("sample_bad"), "{name}: {error}");
                assert!(
                    matches!(error, hl7v2::ParseError::Envelope(_)),
                    "{name}: {error}"
                );
            }
        }
    }
    assert_eq!(read, 154);
    assert!(messages >= 154, "{messages}");
}

#[test]
fn what_is_read_writes_back_to_itself() {
    for (name, bytes) in corpus() {
        let Ok(batch) = hl7v2::parse_batch(&bytes) else {
            continue;
        };
        for message in batch.messages {
            let again = hl7v2::parse(message.encode().as_bytes())
                .unwrap_or_else(|e| panic!("{name}: the encoded message does not read: {e}"));
            assert_eq!(again, message, "{name}");
        }
    }
}

#[test]
fn single_messages_read_alone_and_envelopes_are_counted() {
    let files = corpus();
    let file = |n: &str| &files.iter().find(|(name, _)| name.ends_with(n)).unwrap().1;
    let oru = hl7v2::parse(file("python-hl7/sample_hl7.hl7")).unwrap();
    assert_eq!(oru.message_type(), (Some("ORU"), Some("R01"), None));
    assert_eq!(oru.version(), Some("2.4"));
    assert_eq!(oru.sending_facility(), Some("ELAB-3"));
    assert_eq!(oru.segments_named("OBX").count(), 2);
    let pid = oru.segment("PID").unwrap();
    assert_eq!(pid.value(5, 1), Some("EVERYWOMAN"));
    assert_eq!(pid.value(5, 2), Some("EVE"));
    assert_eq!(pid.value(11, 3), Some("STATESVILLE"));
    let obx = oru.segment("OBX").unwrap();
    assert_eq!(obx.value(5, 2), Some("182"));
    assert_eq!(obx.value(6, 1), Some("mg/dl"));
    assert_eq!(obx.value(8, 1), Some("H"));
    let batch = hl7v2::parse_batch(file("python-hl7/sample_file.hl7")).unwrap();
    assert!(batch.file_header.is_some());
    assert_eq!(batch.batch_headers.len(), 1);
    assert_eq!(batch.messages.len(), 1);
    // A batch is not one message.
    assert!(hl7v2::parse(file("python-hl7/sample_batch.hl7")).is_err());
}

/// Inputs the fuzzer found (fuzz/RUNS.md, F2 to F5): each is refused, or read and written back
/// to itself.
#[test]
fn fuzz_findings_stay_fixed() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(root).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        seen += 1;
        if let Ok(batch) = hl7v2::parse_batch(&bytes) {
            for message in batch.messages {
                assert_eq!(hl7v2::parse(message.encode().as_bytes()).unwrap(), message);
            }
        }
    }
    assert!(seen >= 1);
    // F1: a message in a batch whose MSH declares other encoding characters is refused.
    let mixed = b"BHS|^~\\&|A\rMSH|0|P|2.5\rEVN|A04\r";
    assert!(matches!(
        hl7v2::parse_batch(mixed),
        Err(hl7v2::ParseError::Envelope(_))
    ));
    // F2: a second message declaring a character set the input is not written in.
    let charsets =
        "MSH|^~\\&|A||||||ADT^A01|1|P|2.5\rMSH|^~\\&|B||||||ADT^A01|2|P|2.5||||||ASC[I\r";
    assert!(matches!(
        hl7v2::parse_batch(charsets.as_bytes()),
        Err(hl7v2::ParseError::Charset(_))
    ));
}
