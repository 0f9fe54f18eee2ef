//! `meridian fhirpath [--typed] EXPR [FILE|-]`.

use std::path::Path;
use std::process::ExitCode;

pub fn run(_typed: bool, _expression: &str, _file: Option<&Path>) -> ExitCode {
    eprintln!("meridian fhirpath: not built yet");
    ExitCode::from(1)
}
