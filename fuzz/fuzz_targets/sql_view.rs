//! Bytes as a SQL on FHIR ViewDefinition and the resources it runs over: up to the first NUL
//! byte the view (JSON), after it one resource a line. A view is refused with an error or
//! compiled; a compiled view evaluates each resource to rows or an error. Nothing may panic,
//! and every row has a value per column.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (view, resources) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(view) = serde_json::from_slice::<serde_json::Value>(view) else {
        return;
    };
    let Ok(view) = analytics::View::parse(&view) else {
        return;
    };
    let view = view.with_row_limit(10_000);
    let columns = view.columns().len();
    for line in resources.split(|&b| b == b'\n') {
        let Ok(resource) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if let Ok(rows) = view.rows(&resource) {
            assert!(rows.iter().all(|row| row.len() == columns));
        }
    }
});
