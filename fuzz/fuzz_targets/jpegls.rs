//! Bytes as a JPEG-LS codestream (ITU-T T.87), as a DICOM JPEG-LS frame holds one
//! (`imaging::jpegls::decode`): refused with a reason, or an image whose samples are its width ×
//! height × components, each within its precision. Never a panic, a hang or a memory blow-up.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match imaging::jpegls::decode(data) {
        Err(error) => assert!(!error.0.is_empty()),
        Ok(image) => {
            let expected =
                image.width as usize * image.height as usize * usize::from(image.components);
            assert_eq!(image.samples.len(), expected);
            assert!(
                (2..=16).contains(&image.bits_per_sample),
                "{}",
                image.bits_per_sample
            );
            let largest = (1u32 << image.bits_per_sample) - 1;
            assert!(image.samples.iter().all(|&s| u32::from(s) <= largest));
        }
    }
});
