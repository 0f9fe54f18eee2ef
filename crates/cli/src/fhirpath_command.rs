//! `meridian fhirpath [--typed] EXPR [FILE|-]`: evaluates an expression against a resource and
//! prints the result collection as a JSON array. Exit status: 0 on success, 1 when the input
//! cannot be read or the evaluation fails, 2 when the expression does not compile.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use fhirpath::{Collection, CompileOptions, Environment, Tracer};
use serde_json::Value;

/// `trace()` output goes to standard error, leaving standard output to the result.
struct StderrTracer;

impl Tracer for StderrTracer {
    fn trace(&self, name: &str, items: &Collection<'_>) {
        eprintln!("trace {name}: {}", items.to_typed_json());
    }
}

pub fn run(typed: bool, expression: &str, file: Option<&Path>) -> ExitCode {
    let resource = match read_input(file) {
        Ok(resource) => resource,
        Err(message) => {
            eprintln!("meridian fhirpath: {message}");
            return ExitCode::from(1);
        }
    };
    // With the resource's type as context, a misspelt element is reported before evaluating.
    let options = CompileOptions {
        context_type: resource
            .get("resourceType")
            .and_then(Value::as_str)
            .filter(|t| fhir_model::r4().type_def(t).is_some())
            .map(str::to_string),
        strict: false,
    };
    let compiled = match fhirpath::compile_with(expression, &options) {
        Ok(compiled) => compiled,
        Err(error) => {
            eprintln!("meridian fhirpath: {error}");
            if let Some(line) = expression.lines().nth(error.position.line as usize - 1) {
                eprintln!("  {line}");
                eprintln!("  {}^", " ".repeat(error.position.column as usize - 1));
            }
            return ExitCode::from(2);
        }
    };
    let tracer = StderrTracer;
    let environment = Environment::new().with_tracer(&tracer);
    match compiled.evaluate(&resource, &environment) {
        Ok(result) => {
            let output = if typed {
                result.to_typed_json()
            } else {
                result.to_json()
            };
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("meridian fhirpath: evaluation failed: {error}");
            ExitCode::from(1)
        }
    }
}

fn read_input(file: Option<&Path>) -> Result<Value, String> {
    let bytes = match file {
        Some(path) if path != Path::new("-") => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        _ => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            bytes
        }
    };
    // The server's reader: a byte-order mark is fine, a property named twice is not.
    fhir_model::json::parse(&bytes).map_err(|e| format!("the input is not FHIR JSON: {e}"))
}
