//! A STOW-RS part as the archive reads it (`imaging::part10::read`): refused with a failure
//! reason, or an instance whose stored file is PS3.10 and reads back to the same attributes;
//! a read instance's first frame is then taken and rendered (decoders included: RLE, JPEG-LS,
//! deflated frames, 1-bit, 32-bit and YBR_FULL_422 frames drawn by `native`, an ECG waveform's
//! tracing drawn on paper as PNG and SVG), answered or refused, never a panic, a hang or a
//! memory blow-up.
#![no_main]

use imaging::part10::{self, CANNOT_UNDERSTAND, DOES_NOT_MATCH_SOP_CLASS};
use imaging::render::{Format, Rendering, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    match part10::read(bytes) {
        Err(refusal) => {
            assert!(!refusal.reason.is_empty());
            assert!([CANNOT_UNDERSTAND, DOES_NOT_MATCH_SOP_CLASS].contains(&refusal.code));
        }
        Ok(instance) => {
            assert_eq!(&instance.file[128..132], b"DICM");
            for uid in [
                &instance.study,
                &instance.series,
                &instance.sop_instance,
                &instance.sop_class,
            ] {
                assert!(part10::valid_uid(uid), "{uid}");
            }
            let again = part10::read(&instance.file).expect("a stored file reads again");
            assert_eq!(again.dataset, instance.dataset);
            let _ = imaging::frames::frame(&instance.file, 1);
            let rendering = Rendering {
                frame: 1,
                window: None,
                format: Format::Png,
                viewport: Some((64, 64)),
            };
            let _ = render(&instance.file, &rendering);
            // An ECG waveform's page is drawn as a PNG above and as SVG here.
            if imaging::ecg::is_ecg(&instance.sop_class) {
                let _ = render(
                    &instance.file,
                    &Rendering {
                        format: Format::Svg,
                        ..rendering
                    },
                );
            }
        }
    }
});
