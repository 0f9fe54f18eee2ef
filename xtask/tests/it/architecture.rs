//! The invariants ARCHITECTURE.md states, checked from `cargo metadata` and the sources, so a
//! change that breaks a layer fails the test suite instead of a review.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Graph {
    /// package name -> names of its normal (non-dev, non-build) dependencies
    normal: HashMap<String, Vec<String>>,
    members: Vec<String>,
}

/// The host's target triple: the graph is resolved for the platform we build on (and offline,
/// so the check needs no network for crates that only other platforms use).
fn host_triple() -> String {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host")
}

fn graph() -> Graph {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
            &host_triple(),
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let name_of: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut normal = HashMap::new();
    for node in metadata["resolve"]["nodes"].as_array().unwrap() {
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| name_of[d["pkg"].as_str().unwrap()].to_owned())
            .collect();
        normal.insert(name_of[node["id"].as_str().unwrap()].to_owned(), deps);
    }
    let members = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| name_of[id.as_str().unwrap()].to_owned())
        .collect();
    Graph { normal, members }
}

impl Graph {
    fn closure(&self, package: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![package.to_owned()];
        while let Some(next) = stack.pop() {
            for dep in self.normal.get(&next).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        seen
    }
}

#[test]
fn the_inner_layers_know_nothing_of_storage_async_or_http() {
    let graph = graph();
    for package in ["fhir-model", "fhirpath", "search"] {
        let deps = graph.closure(package);
        for forbidden in [
            "tokio",
            "axum",
            "hyper",
            "rusqlite",
            "postgres",
            "store",
            "store-sql",
        ] {
            assert!(
                !deps.contains(forbidden),
                "{package} depends on {forbidden}"
            );
        }
    }
}

#[test]
fn the_synthetic_region_generator_knows_no_storage_and_no_http() {
    let deps = graph().closure("seed");
    for forbidden in [
        "tokio",
        "axum",
        "hyper",
        "rusqlite",
        "postgres",
        "store",
        "repository",
        "server",
    ] {
        assert!(!deps.contains(forbidden), "seed depends on {forbidden}");
    }
}

#[test]
fn only_the_server_depends_on_axum_directly() {
    let graph = graph();
    for member in &graph.members {
        if graph.normal[member].iter().any(|d| d == "axum") {
            assert_eq!(member, "server", "{member} depends on axum");
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn crate_sources(skip: &[&str]) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(workspace_root().join("crates"))
        .unwrap()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) {
            continue;
        }
        let mut found = Vec::new();
        rust_files(&entry.path().join("src"), &mut found);
        files.extend(found.into_iter().map(|f| (name.clone(), f)));
    }
    files
}

/// The crates that may hold SQL: the two backends and the SQL they share, and the SQL engine
/// over materialised views (its virtual tables' declarations). The store trait crate
/// (`store`) is not one of them.
const SQL_CRATES: [&str; 4] = [
    "store-sql",
    "store-sqlite",
    "store-postgres",
    "analytics-sql",
];

#[test]
fn sql_lives_only_in_the_backends_and_the_sql_they_share() {
    let statements = [
        "SELECT ",
        "INSERT INTO",
        "DELETE FROM",
        "CREATE TABLE",
        "CREATE INDEX",
        "ALTER TABLE",
    ];
    let mut skipped = SQL_CRATES.to_vec();
    skipped.push("test-support");
    for (crate_name, file) in crate_sources(&skipped) {
        let text = std::fs::read_to_string(&file).unwrap();
        for statement in statements {
            assert!(
                !text.contains(statement),
                "{crate_name}: {} contains SQL ({statement})",
                file.display()
            );
        }
    }
}

#[test]
fn only_the_backends_depend_on_the_sql_they_share() {
    let graph = graph();
    for member in &graph.members {
        let uses_shared_sql = graph.normal[member].iter().any(|d| d == "store-sql");
        let backend = ["store-sqlite", "store-postgres"].contains(&member.as_str());
        assert_eq!(
            uses_shared_sql, backend,
            "{member}: only the backends (and both of them) depend on store-sql"
        );
    }
}

#[test]
fn only_the_command_line_reads_the_environment() {
    for (crate_name, file) in crate_sources(&["cli", "test-support"]) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("env::var(") && !text.contains("env::vars("),
            "{crate_name}: {} reads the environment",
            file.display()
        );
    }
}

/// `unsafe` is denied by the workspace's lints and allowed in one file: SQLite's virtual table
/// interface, an unsafe trait (decision 0024).
#[test]
fn unsafe_code_is_allowed_only_in_the_parquet_virtual_table() {
    for (crate_name, file) in crate_sources(&[]) {
        let text = std::fs::read_to_string(&file).unwrap();
        let allowed = crate_name == "analytics-sql" && file.ends_with("src/parquet_table.rs");
        assert!(
            allowed || !text.contains("allow(unsafe_code)"),
            "{crate_name}: {} allows unsafe code",
            file.display()
        );
    }
    let workspace = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    assert!(workspace.contains("unsafe_code = \"deny\""));
}

#[test]
fn every_crate_uses_the_workspace_lints_and_one_test_binary() {
    let root = workspace_root();
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    manifests.push(root.join("xtask"));
    for dir in manifests {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "{} does not use the workspace lints",
            dir.display()
        );
        for entry in std::fs::read_dir(dir.join("tests"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            assert!(
                !(path.is_file() && path.extension().is_some_and(|e| e == "rs")),
                "{}: integration tests belong in tests/it/ (one binary per crate)",
                path.display()
            );
        }
    }
}

/// What each workspace member is, for the rules on who may depend on what. A crate added to the
/// workspace fails [`every_member_has_a_place`] until it is given one here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Where the outside world comes in (HTTP, the command line, later MLLP and MQTT
    /// listeners): the only crates that may use an async runtime, HTTP, or build a caller.
    Edge,
    /// A thin wrapper over an outside system behind one of our traits (a database driver, an
    /// object store client): may use a network client, and an async runtime inside itself.
    Adapter,
    /// What every service builds on: the model, FHIRPath, search, the store trait, the
    /// repository, the caller, jobs, blobs, the verifiable log.
    Foundation,
    /// A domain service (resident identity; later access, cds, workflow, imaging, ...): knows
    /// no HTTP, async runtime, database driver or other domain service.
    Service,
    /// Benchmarks, the generator, test helpers and xtask: not part of the running platform.
    Tooling,
}

fn place(member: &str) -> Option<Place> {
    Some(match member {
        "server" | "meridian" => Place::Edge,
        "store-sqlite" | "store-postgres" | "blob-s3" | "analytics-sql" => Place::Adapter,
        "fhir-model" | "fhirpath" | "search" | "store" | "store-sql" | "repository" | "caller"
        | "jobs" | "blob" | "ledger" | "hl7v2" => Place::Foundation,
        "residents" | "access" | "cds" | "workflow" | "notify" | "intake" | "chronic"
        | "imaging" | "analytics" => Place::Service,
        "seed" | "test-support" | "xtask" | "fhirpath-bench" | "identity-bench"
        | "ingest-bench" | "search-bench" | "ledger-bench" | "cds-bench" | "workflow-bench"
        | "crud-bench" | "intake-bench" => Place::Tooling,
        _ => return None,
    })
}

#[test]
fn every_member_has_a_place() {
    for member in &graph().members {
        assert!(
            place(member).is_some(),
            "{member} has no place in the architecture checks: add it to `place`"
        );
    }
}

/// Async runtimes, HTTP and network clients.
const RUNTIME_AND_NETWORK: [&str; 7] = [
    "tokio",
    "axum",
    "hyper",
    "reqwest",
    "postgres",
    "object_store",
    "rusqlite",
];

#[test]
fn only_edges_and_adapters_reach_a_runtime_a_network_or_a_database() {
    let graph = graph();
    for member in &graph.members {
        if !matches!(place(member), Some(Place::Foundation | Place::Service)) {
            continue;
        }
        let deps = graph.closure(member);
        for forbidden in RUNTIME_AND_NETWORK {
            assert!(
                !deps.contains(forbidden),
                "{member} depends on {forbidden}: only edges and adapters may"
            );
        }
    }
}

#[test]
fn no_domain_service_depends_on_another() {
    let graph = graph();
    let services: Vec<&String> = graph
        .members
        .iter()
        .filter(|m| place(m) == Some(Place::Service))
        .collect();
    for service in &services {
        let deps = graph.closure(service);
        for other in &services {
            assert!(
                service == other || !deps.contains(other.as_str()),
                "{service} depends on {other}: domain services meet at the edges, or through \
                 the repository's hooks and change log"
            );
        }
    }
}

#[test]
fn the_caller_is_built_only_at_the_edges() {
    // `Caller::from_json` is how a durable job gets back the caller that enqueued it: the
    // caller an edge built, kept, not a new one.
    // The one exception: sign-in's `Authenticator::authenticate`, which turns the bearer token
    // the server hands it into that request's caller (the server calls it, and nothing else).
    let constructors = ["Caller::anonymous(", "Caller::operator(", "Caller {"];
    let authenticate = workspace_root().join("crates/access/src/signin/mod.rs");
    for (crate_name, file) in crate_sources(&["caller", "server", "cli"]) {
        if file == authenticate {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for constructor in constructors {
            let builds = text.match_indices(constructor).any(|(at, _)| {
                !text[..at].ends_with("struct ")
                    && (constructor != "Caller {" || is_literal(&text[at + constructor.len()..]))
            });
            assert!(
                !builds,
                "{crate_name}: {} builds a caller ({constructor}); callers come from the edges",
                file.display()
            );
        }
    }
}

/// Whether the text after `Caller {` is a struct literal's fields (`field:` or `field,`) rather
/// than a function body after a return type.
fn is_literal(after_brace: &str) -> bool {
    let rest = after_brace.trim_start();
    let field_end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    field_end > 0
        && matches!(
            rest[field_end..].trim_start().chars().next(),
            Some(':' | ',' | '}')
        )
}

#[test]
fn stored_resources_are_read_only_through_the_reader() {
    let reads = [
        ".read(",
        ".read_version(",
        ".search(",
        ".scan(",
        ".history(",
    ];
    for (crate_name, file) in crate_sources(&[
        "store",
        "store-sql",
        "store-sqlite",
        "store-postgres",
        "test-support",
    ]) {
        if file.ends_with("repository/src/reader.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let store_read = reads.iter().any(|read| {
                line.contains(&format!("store(){read}")) || line.contains(&format!("store{read}"))
            });
            assert!(
                !store_read,
                "{crate_name}: {} reads the store past the reader (its read policy): {}",
                file.display(),
                line.trim()
            );
        }
    }
}
