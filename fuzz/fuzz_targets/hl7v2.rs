//! Bytes as an HL7 v2 batch or message from a hospital system, as they arrive over MLLP: framed
//! and reassembled from chunks, read (delimiters, character set, escapes, envelopes), and for
//! every message read, written back and read again to the same message, and acknowledged (the
//! acknowledgement also reads back). Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = hl7v2::mllp::Decoder::new(1 << 16);
    let framed = hl7v2::mllp::frame(data);
    let mut frames = Vec::new();
    for chunk in framed.chunks(7) {
        if let Ok(done) = decoder.push(chunk) {
            frames.extend(done);
        }
    }
    let _ = hl7v2::parse(data);
    let Ok(batch) = hl7v2::parse_batch(data) else {
        return;
    };
    for message in &batch.messages {
        let again = hl7v2::parse(message.encode().as_bytes()).expect("a written message reads");
        assert_eq!(&again, message);
        let errors = [hl7v2::AckError::error(207, "fuzz").at("PID", 1, 3)];
        let ack = hl7v2::ack(message, hl7v2::AckCode::ApplicationError, &errors, "A1", "20260101");
        let read = hl7v2::parse(ack.encode().as_bytes()).expect("an acknowledgement reads");
        assert_eq!(read, ack);
        let _ = message.ack_mode();
    }
});
