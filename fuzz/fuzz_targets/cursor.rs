//! Bytes as the `_cursor` of a next link: opened with a fixed key (a changed cursor must be
//! refused, never panic), and, since random bytes almost never authenticate, the cursor text
//! inside decoded directly too. What decodes must survive its own text form, and what is sealed
//! must open to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use repository::CursorSeal;
use search::query::{Cursor, CursorValue};

const SCOPE: &str = "Patient";

fn has_nan(cursor: &Cursor) -> bool {
    cursor
        .sort_values
        .iter()
        .chain(cursor.walk.as_ref().map(|walk| &walk.value))
        .any(|value| matches!(value, CursorValue::Float(f) if f.is_nan()))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let seal = CursorSeal::with_key(&[7; 32]);
    if let Some(plain) = seal.open(SCOPE, text) {
        let _ = Cursor::decode(&plain);
    }
    if let Some(cursor) = Cursor::decode(text) {
        if !has_nan(&cursor) {
            assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
    }
    // Sealed cursors over 4 KiB are refused unread (a next link is never that long).
    let sealed = seal.seal(SCOPE, text);
    if sealed.len() <= 4096 {
        assert_eq!(seal.open(SCOPE, &sealed).as_deref(), Some(text));
    }
});
