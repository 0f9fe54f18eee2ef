use imaging::multipart::{build, media_type, parameter, split};

#[test]
fn parts_come_back_as_they_were_built() {
    let parts = vec![
        (
            "application/dicom".to_owned(),
            b"first\r\n--not-the-boundary".to_vec(),
        ),
        ("application/dicom".to_owned(), Vec::new()),
        (
            "application/dicom".to_owned(),
            vec![0, 1, 2, 13, 10, 45, 45],
        ),
    ];
    let body = build("b0und", &parts);
    let split = split(&body, "b0und").unwrap();
    assert_eq!(split.len(), 3);
    for (got, (content_type, bytes)) in split.iter().zip(&parts) {
        assert_eq!(got.header("content-type"), Some(content_type.as_str()));
        assert_eq!(got.body, bytes.as_slice());
    }
}

#[test]
fn a_preamble_and_transport_padding_are_skipped() {
    let body = b"ignored preamble\r\n--xyz   \r\nContent-Type: application/dicom\r\n\r\nDATA\r\n--xyz--\r\nepilogue";
    let parts = split(body, "xyz").unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].body, b"DATA");
}

#[test]
fn malformed_bodies_are_refused_with_a_reason() {
    for (body, boundary) in [
        (&b"no boundary here"[..], "xyz"),
        (b"--xyz\r\nContent-Type: a\r\n\r\nDATA", "xyz"),
        (b"--xyz--\r\n", "xyz"),
        (b"--xyz\r\nno colon line\r\n\r\nDATA\r\n--xyz--", "xyz"),
        (b"--xyz", "xyz"),
        (b"--\r\n\r\n", ""),
    ] {
        let refused = split(body, boundary);
        assert!(
            refused.as_ref().is_err_and(|why| !why.is_empty()),
            "{:?}: {refused:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn media_type_parameters_are_read_quoted_or_not() {
    let content_type = "Multipart/Related; type=\"application/dicom\"; boundary=abc";
    assert_eq!(media_type(content_type), "multipart/related");
    assert_eq!(
        parameter(content_type, "type").as_deref(),
        Some("application/dicom")
    );
    assert_eq!(parameter(content_type, "BOUNDARY").as_deref(), Some("abc"));
    assert_eq!(parameter(content_type, "transfer-syntax"), None);
}
