//! A STOW-RS part as the archive reads it (`imaging::part10::read`): refused with a failure
//! reason, or an instance whose stored file is PS3.10 and reads back to the same attributes;
//! a read instance's first frame is then taken and rendered (decoders included), answered or
//! refused, never a panic, a hang or a memory blow-up.
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
            for uid in [&instance.study, &instance.series, &instance.sop_instance, &instance.sop_class] {
                assert!(part10::valid_uid(uid), "{uid}");
            }
            let again = part10::read(&instance.file).expect("a stored file reads again");
            assert_eq!(again.dataset, instance.dataset);
            let _ = imaging::frames::frame(&instance.file, 1);
            let rendering = Rendering { frame: 1, window: None, format: Format::Png, viewport: Some((64, 64)) };
            let _ = render(&instance.file, &rendering);
        }
    }
});
