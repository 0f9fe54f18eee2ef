//! Bytes as an expression and a resource, separated by the first NUL byte (the whole input is the
//! expression when there is none): the expression is compiled without a context type and, when
//! the resource names its type, with it; each compiled form is evaluated against the resource
//! (or against nothing when the rest is not JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let (expression, resource) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(expression) = std::str::from_utf8(expression) else {
        return;
    };
    let resource = fhir_model::json::parse(resource).unwrap_or(Value::Null);
    let environment = fhirpath::Environment::new();
    if let Ok(compiled) = fhirpath::compile(expression) {
        let _ = compiled.evaluate(&resource, &environment);
    }
    if let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) {
        let options = fhirpath::CompileOptions {
            context_type: Some(resource_type.to_owned()),
            strict: false,
        };
        if let Ok(compiled) = fhirpath::compile_with(expression, &options) {
            let _ = compiled.evaluate(&resource, &environment);
        }
    }
});
