//! Evaluates every R4 search-parameter expression that applies to each resource of the Synthea
//! sample, as search indexing does on every write, and reports resources per second and heap
//! allocations per resource.
//!
//! `fhirpath-bench [--bundles N] [--passes N] [--workload FILE] [--dump FILE] [--per-expression]
//! [DATA_DIR]`
//!
//! DATA_DIR holds `bundles/` (and optionally `bundles-over-4MiB/`) from the Synthea archive.
//! `--workload FILE` also writes the expressions used per resource type, so that
//! `bench/fhirpath/run.sh` can give the reference JavaScript engine the same work.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use fhirpath::{CompileOptions, Environment, Expression};
use serde_json::Value;

/// Counts allocations so the report can say how many an evaluation makes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, that is, from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System`, and the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Args {
    data: PathBuf,
    bundles: Option<usize>,
    passes: usize,
    workload: Option<PathBuf>,
    dump: Option<PathBuf>,
    per_expression: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        data: PathBuf::from("/tmp/corp/synthea-120/blaze-synthea"),
        bundles: None,
        passes: 3,
        workload: None,
        dump: None,
        per_expression: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--bundles" => args.bundles = it.next().and_then(|n| n.parse().ok()),
            "--passes" => args.passes = it.next().and_then(|n| n.parse().ok()).unwrap_or(3).max(1),
            "--workload" => args.workload = it.next().map(PathBuf::from),
            "--dump" => args.dump = it.next().map(PathBuf::from),
            "--per-expression" => args.per_expression = true,
            "-h" | "--help" => {
                eprintln!(
                    "usage: fhirpath-bench [--bundles N] [--passes N] [--workload FILE] [--dump FILE] [--per-expression] [DATA_DIR]"
                );
                std::process::exit(0);
            }
            other => args.data = PathBuf::from(other),
        }
    }
    args
}

/// The patient bundles' files, sorted by name so a `--bundles N` subset is the same in every
/// run and for both engines. The hospital and practitioner bundles (`0-*`) come first.
fn bundle_files(data: &Path, limit: Option<usize>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["bundles", "bundles-over-4MiB"] {
        if let Ok(entries) = std::fs::read_dir(data.join(dir)) {
            files.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json")),
            );
        }
    }
    files.sort_by_key(|p| p.file_name().map(|n| n.to_os_string()));
    if let Some(limit) = limit {
        files.truncate(limit);
    }
    files
}

fn main() {
    let args = parse_args();
    let files = bundle_files(&args.data, args.bundles);
    if files.is_empty() {
        eprintln!(
            "no bundles under {} (expected bundles/*.json)",
            args.data.display()
        );
        std::process::exit(1);
    }
    let load_start = Instant::now();
    let bundles: Vec<Value> = files
        .iter()
        .map(|f| {
            serde_json::from_slice(&std::fs::read(f).expect("a bundle is readable"))
                .expect("a bundle is JSON")
        })
        .collect();
    let resources: Vec<&Value> = bundles
        .iter()
        .flat_map(|b| b["entry"].as_array().into_iter().flatten())
        .filter_map(|e| e.get("resource"))
        .collect();
    eprintln!(
        "loaded {} resources from {} bundles in {:.1?}",
        resources.len(),
        files.len(),
        load_start.elapsed()
    );

    // Compile once per (resource type, parameter), with the type as context, as the indexer does.
    let model = fhir_model::r4();
    let compile_start = Instant::now();
    let mut plans: BTreeMap<&str, Vec<Expression>> = BTreeMap::new();
    let mut workload: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for resource in &resources {
        let Some(type_name) = resource["resourceType"].as_str() else {
            continue;
        };
        if plans.contains_key(type_name) {
            continue;
        }
        let options = CompileOptions {
            context_type: Some(type_name.to_string()),
            strict: false,
        };
        let mut compiled = Vec::new();
        let mut sources = Vec::new();
        for parameter in model.search_parameters_for(type_name) {
            let Some(expression) = parameter.expression.as_deref() else {
                continue;
            };
            compiled.push(
                fhirpath::compile_with(expression, &options).expect("R4 expressions compile"),
            );
            sources.push(expression);
        }
        plans.insert(type_name, compiled);
        workload.insert(type_name, sources);
    }
    let expressions: usize = plans.values().map(Vec::len).sum();
    eprintln!(
        "compiled {expressions} expressions for {} resource types in {:.1?}",
        plans.len(),
        compile_start.elapsed()
    );
    if let Some(path) = &args.workload {
        let text = serde_json::to_string(&workload).expect("the workload serialises");
        std::fs::write(path, text).expect("the workload file is writable");
    }

    let environment = Environment::new();
    let mut best = f64::INFINITY;
    let mut items = 0u64;
    let mut errors = 0u64;
    let mut evaluations = 0u64;
    let mut allocations = 0u64;
    let mut bytes = 0u64;
    for pass in 0..args.passes {
        items = 0;
        errors = 0;
        evaluations = 0;
        let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
        let bytes_before = ALLOCATED_BYTES.load(Ordering::Relaxed);
        let start = Instant::now();
        for resource in &resources {
            let Some(plan) = resource["resourceType"].as_str().and_then(|t| plans.get(t)) else {
                continue;
            };
            // Typed once per resource, as the indexer does before evaluating every parameter.
            let context = fhirpath::Collection::of_resource(resource);
            for expression in plan {
                evaluations += 1;
                match expression.evaluate_on(&context, &environment) {
                    Ok(result) => items += result.len() as u64,
                    Err(_) => errors += 1,
                }
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
        bytes = ALLOCATED_BYTES.load(Ordering::Relaxed) - bytes_before;
        eprintln!("pass {}: {:.3} s", pass + 1, seconds);
        best = best.min(seconds);
    }
    if let Some(path) = &args.dump {
        dump_results(path, &resources, &plans, &environment);
    }
    if args.per_expression {
        per_expression_report(&resources, &plans, &environment);
    }
    let n = resources.len() as f64;
    println!("engine: meridian fhirpath (Rust)");
    println!("resources: {}", resources.len());
    println!("evaluations: {evaluations}");
    println!("result items: {items}");
    println!("evaluation errors: {errors}");
    println!("best pass seconds: {best:.3}");
    println!("resources per second: {:.0}", n / best);
    println!("evaluations per second: {:.0}", evaluations as f64 / best);
    println!("allocations per resource: {:.1}", allocations as f64 / n);
    println!("allocated bytes per resource: {:.0}", bytes as f64 / n);
}

/// `--dump FILE`: every evaluation's result as a line `resource-index expression-index JSON`,
/// for comparing results with the reference engine's (`reference.js --dump`).
fn dump_results<'a>(
    path: &Path,
    resources: &[&'a Value],
    plans: &BTreeMap<&str, Vec<Expression>>,
    environment: &Environment<'a>,
) {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("the dump file is writable");
    let mut out = std::io::BufWriter::new(file);
    for (r, resource) in resources.iter().enumerate() {
        let Some(plan) = resource["resourceType"].as_str().and_then(|t| plans.get(t)) else {
            continue;
        };
        let context = fhirpath::Collection::of_resource(resource);
        for (e, expression) in plan.iter().enumerate() {
            let result = match expression.evaluate_on(&context, environment) {
                Ok(items) => items.to_json(),
                Err(error) => Value::String(format!("error: {error}")),
            };
            writeln!(out, "{r} {e} {result}").expect("the dump file is writable");
        }
    }
}

/// `--per-expression`: the ten expressions that take the most time over
/// the whole sample, to know where to look when optimising.
fn per_expression_report<'a>(
    resources: &[&'a Value],
    plans: &BTreeMap<&str, Vec<Expression>>,
    environment: &Environment<'a>,
) {
    let mut totals: BTreeMap<(&str, usize), f64> = BTreeMap::new();
    for resource in resources {
        let Some(type_name) = resource["resourceType"].as_str() else {
            continue;
        };
        let Some(plan) = plans.get(type_name) else {
            continue;
        };
        let context = fhirpath::Collection::of_resource(resource);
        for (i, expression) in plan.iter().enumerate() {
            let start = Instant::now();
            let _ = expression.evaluate_on(&context, environment);
            *totals.entry((type_name, i)).or_default() += start.elapsed().as_secs_f64();
        }
    }
    let mut ranked: Vec<_> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    for ((type_name, i), seconds) in ranked.into_iter().take(10) {
        let source = plans[type_name][i].source();
        eprintln!(
            "{seconds:8.4} s  {type_name}: {}",
            &source[..source.len().min(110)]
        );
    }
}
