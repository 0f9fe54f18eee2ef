//! The reader's rules one by one: delimiters, escapes, repetitions, Z-segments, character
//! sets; acknowledgements in both modes and both ERR layouts; MLLP framing.

use hl7v2::ack::AckMode;
use hl7v2::mllp::{Decoder, frame};
use hl7v2::{AckCode, AckError, Charset, ParseError, ack, parse};

const ADT: &str = "MSH|^~\\&|HIS|COUNTY^2.16.156.1^ISO|MERIDIAN|REGION|20261203101500+0800||ADT^A01^ADT_A01|MSG00001|P|2.5.1|||AL|NE||UNICODE UTF-8\r\
EVN|A01|20261203101500\r\
PID|1||110101195403020018^^^CN-ID^NI~A123^^^HIS^MR||王^芳^^^^^L||19540302|F|||解放路1号^^贵阳^贵州^550000^CHN\r\
PV1|1|I|WARD3^301^2|||||||||||||||V1001\r\
ZPI|custom|kept\\F\\here\\S\\too\\T\\and\\R\\and\\E\\end\r";

#[test]
fn fields_repetitions_components_and_escapes() {
    let message = parse(ADT.as_bytes()).unwrap();
    assert_eq!(message.charset, Charset::Utf8);
    assert_eq!(
        message.message_type(),
        (Some("ADT"), Some("A01"), Some("ADT_A01"))
    );
    assert_eq!(message.control_id(), Some("MSG00001"));
    assert_eq!(message.sending_facility(), Some("COUNTY"));
    let pid = message.segment("PID").unwrap();
    let ids = pid.repetitions(3);
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0].component(1), Some("110101195403020018"));
    assert_eq!(ids[0].component(5), Some("NI"));
    assert_eq!(ids[1].component(5), Some("MR"));
    assert_eq!(pid.value(5, 1), Some("王"));
    assert_eq!(pid.value(11, 3), Some("贵阳"));
    // A Z-segment is kept, its escapes resolved.
    let z = message.segment("ZPI").unwrap();
    assert_eq!(z.value(2, 1), Some("kept|here^too&and~and\\end"));
    // The header's own fields.
    assert_eq!(message.header().value(1, 1), Some("|"));
    assert_eq!(message.header().value(2, 1), Some("^~\\&"));
    assert_eq!(message.header().value(18, 1), Some("UNICODE UTF-8"));
}

#[test]
fn hex_and_formatting_escapes_and_unclosed_ones() {
    let text = "MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.3\rNTE|1||line one\\.br\\line two \\X41\\ \\H\\bold\\N\\ \\Q\\ end\\\r";
    let message = parse(text.as_bytes()).unwrap();
    let note = message.segment("NTE").unwrap().value(3, 1).unwrap();
    assert_eq!(note, "line one\nline two A bold \\Q\\ end\\");
}

#[test]
fn gb18030_is_read_when_declared_or_when_the_bytes_are_not_utf8() {
    let text = "MSH|^~\\&|HIS|县医院|MERIDIAN|REGION|20261203||ADT^A04|G1|P|2.4||||||GB 18030-2000\rPID|1||X1||张^三\r";
    let (bytes, _, _) = encoding_rs::GB18030.encode(text);
    let message = parse(&bytes).unwrap();
    assert_eq!(message.charset, Charset::Gb18030);
    assert_eq!(message.segment("PID").unwrap().value(5, 1), Some("张"));
    assert_eq!(message.sending_facility(), Some("县医院"));
    // Written back in GB18030, byte for byte.
    assert_eq!(parse(&message.encode_bytes()).unwrap(), message);
    // Undeclared, but not UTF-8: read as GB18030.
    let undeclared = text.replace("GB 18030-2000", "");
    let (bytes, _, _) = encoding_rs::GB18030.encode(&undeclared);
    let message = parse(&bytes).unwrap();
    assert_eq!(message.segment("PID").unwrap().value(5, 2), Some("三"));
    // An unknown character set is refused by name.
    let error = parse(text.replace("GB 18030-2000", "ISO IR87").as_bytes()).unwrap_err();
    assert_eq!(error, ParseError::Charset("ISO IR87".into()));
}

#[test]
fn malformed_input_is_refused_with_a_reason() {
    assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
    assert_eq!(parse(b"  \r\n").unwrap_err(), ParseError::Empty);
    assert!(matches!(
        parse(b"PID|1").unwrap_err(),
        ParseError::NoHeader(_)
    ));
    assert_eq!(parse(b"MSH").unwrap_err(), ParseError::BadDelimiters);
    assert_eq!(
        parse(b"MSH|^^\\&|A").unwrap_err(),
        ParseError::BadDelimiters
    );
    assert_eq!(
        parse(b"MSHA^~\\&|A").unwrap_err(),
        ParseError::BadDelimiters
    );
    assert!(matches!(
        parse(b"MSH|^~\\&|A|B\rP!D|1\r").unwrap_err(),
        ParseError::SegmentName { index: 2, .. }
    ));
    assert!(matches!(
        parse(b"MSH|^~\\&|A\rMSH|^~\\&|B\r").unwrap_err(),
        ParseError::Envelope(_)
    ));
    assert!(matches!(
        parse(&[
            0x4D, 0x53, 0x48, b'|', b'^', b'~', b'\\', b'&', b'|', 0xFF, 0xFE, 0x80
        ])
        .unwrap_err(),
        ParseError::Encoding(_)
    ));
}

#[test]
fn acknowledgements_in_both_layouts() {
    let message = parse(ADT.as_bytes()).unwrap();
    let accepted = ack(
        &message,
        AckCode::ApplicationAccept,
        &[],
        "ACK1",
        "20261203101501+0800",
    );
    let text = accepted.encode();
    assert!(text.starts_with("MSH|^~\\&|MERIDIAN|REGION|HIS|COUNTY^2.16.156.1^ISO|20261203101501+0800||ACK^A01^ACK|ACK1|P|2.5.1"), "{text}");
    assert!(text.contains("\rMSA|AA|MSG00001\r"), "{text}");
    let refused = ack(
        &message,
        AckCode::ApplicationError,
        &[AckError::error(101, "PID-3 has no identifier").at("PID", 1, 3)],
        "ACK2",
        "20261203101501+0800",
    );
    let err = refused.segment("ERR").unwrap();
    assert_eq!(err.value(2, 1), Some("PID"));
    assert_eq!(err.value(2, 3), Some("3"));
    assert_eq!(err.value(3, 1), Some("101"));
    assert_eq!(err.value(3, 3), Some("HL70357"));
    assert_eq!(err.value(4, 1), Some("E"));
    assert_eq!(err.value(8, 1), Some("PID-3 has no identifier"));
    // Before 2.5: ERR-1 and MSA-3.
    let old = parse(b"MSH|^~\\&|A|B|C|D|20260101||ADT^A08|OLD1|P|2.3\rPID|1\r").unwrap();
    let refused = ack(
        &old,
        AckCode::ApplicationReject,
        &[AckError::error(200, "no ADT^A08 here")],
        "ACK3",
        "20260101",
    );
    assert_eq!(
        refused.segment("MSA").unwrap().value(3, 1),
        Some("no ADT^A08 here")
    );
    let err = refused.segment("ERR").unwrap();
    assert_eq!(err.repetitions(1)[0].subcomponent(4, 1), Some("200"));
    // It reads back.
    assert_eq!(parse(refused.encode().as_bytes()).unwrap(), refused);
    // The modes.
    assert_eq!(old.ack_mode(), AckMode::Original);
    let AckMode::Enhanced {
        accept,
        application,
    } = message.ack_mode()
    else {
        panic!("MSH-15 AL, MSH-16 NE: enhanced");
    };
    assert!(accept.wants(AckCode::CommitAccept));
    assert!(!application.wants(AckCode::ApplicationAccept));
}

#[test]
fn mllp_frames_across_reads_with_noise_and_a_limit() {
    let one = frame(b"MSH|one");
    let two = frame(b"MSH|two");
    let mut stream = b"\r\n".to_vec();
    stream.extend_from_slice(&one);
    stream.extend_from_slice(b"junk");
    stream.extend_from_slice(&two);
    let mut decoder = Decoder::new(1024);
    let mut frames = Vec::new();
    for chunk in stream.chunks(3) {
        frames.extend(decoder.push(chunk).unwrap());
    }
    assert_eq!(frames, vec![b"MSH|one".to_vec(), b"MSH|two".to_vec()]);
    assert!(!decoder.in_frame());
    decoder.push(&[0x0B, b'M']).unwrap();
    assert!(decoder.in_frame(), "a frame cut off mid-way is still open");
    let mut small = Decoder::new(8);
    assert!(small.push(&frame(b"MSH|far too long for eight")).is_err());
    assert_eq!(
        small.push(&frame(b"MSH|ok")).unwrap(),
        vec![b"MSH|ok".to_vec()]
    );
}
