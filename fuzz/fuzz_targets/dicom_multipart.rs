//! A STOW-RS body as the archive splits it (`imaging::multipart::split`, boundary `b0und`):
//! refused with a reason, or parts that, built again into a body, split into the same bodies.
#![no_main]

use imaging::multipart::{build, split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match split(body, "b0und") {
        Err(reason) => assert!(!reason.is_empty()),
        Ok(parts) => {
            assert!(!parts.is_empty());
            let rebuilt: Vec<(String, Vec<u8>)> = parts
                .iter()
                .map(|p| ("application/dicom".to_owned(), p.body.to_vec()))
                .collect();
            // A body that holds the delimiter itself cannot be rebuilt around it: skip those.
            if rebuilt.iter().all(|(_, b)| !b.windows(7).any(|w| w == b"--b0und")) {
                let built = build("b0und", &rebuilt);
                let again = split(&built, "b0und").expect("a built body splits");
                let bodies: Vec<&[u8]> = again.iter().map(|p| p.body).collect();
                let wanted: Vec<&[u8]> = rebuilt.iter().map(|(_, b)| b.as_slice()).collect();
                assert_eq!(bodies, wanted);
            }
        }
    }
});
