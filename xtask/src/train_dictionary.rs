//! `train-dictionary OUT FILE|DIR...`: trains the zstd dictionary the stores compress resources
//! with, from samples of resources (JSON resources or Bundles, NDJSON lines), each written in
//! the compact form the stores keep.
//!
//! A dictionary is fixed once shipped: stored resources name the dictionary they were
//! compressed with, so a new one gets a new number and the old one stays readable.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Samples at most this many resources, spread evenly over the input.
const MAX_SAMPLES: usize = 60_000;
/// The dictionary size zstd's own command line uses by default.
const DICTIONARY_BYTES: usize = 112_640;

pub fn run(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let mut samples: Vec<Vec<u8>> = Vec::new();
    for input in inputs {
        collect(input, &mut samples)?;
    }
    if samples.len() < 1000 {
        bail!(
            "only {} resources found: a dictionary needs thousands of samples",
            samples.len()
        );
    }
    let step = samples.len().div_ceil(MAX_SAMPLES).max(1);
    let chosen: Vec<Vec<u8>> = samples.into_iter().step_by(step).collect();
    let dictionary =
        zstd::dict::from_samples(&chosen, DICTIONARY_BYTES).context("training the dictionary")?;
    std::fs::write(out, &dictionary).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "trained {} bytes from {} resources into {}",
        dictionary.len(),
        chosen.len(),
        out.display()
    );
    Ok(())
}

fn collect(path: &Path, samples: &mut Vec<Vec<u8>>) -> Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            collect(&entry, samples)?;
        }
        return Ok(());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let documents: Vec<Value> = match path.extension().and_then(|e| e.to_str()) {
        Some("ndjson") => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        Some("json") => serde_json::from_str(&text).ok().into_iter().collect(),
        _ => Vec::new(),
    };
    for document in documents {
        add(document, samples);
    }
    Ok(())
}

fn add(document: Value, samples: &mut Vec<Vec<u8>>) {
    if document.get("resourceType").and_then(Value::as_str) == Some("Bundle")
        && let Some(entries) = document.get("entry").and_then(Value::as_array)
    {
        for entry in entries {
            if let Some(resource) = entry.get("resource") {
                add(resource.clone(), samples);
            }
        }
        return;
    }
    if document.get("resourceType").is_some() {
        samples.push(serde_json::to_vec(&document).expect("a JSON value serialises"));
    }
}
