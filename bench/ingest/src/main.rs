//! The ingest harness's helpers (see `bench/README.md`):
//!
//! - `ndjson OUT PATH...` writes the resources of FHIR Bundles as NDJSON, one file per input,
//!   so the raw insert below reads the same documents `meridian import` loads from the bundles.
//! - `raw (--data DIR | --database-url URL) [--batch N] PATH...` inserts every line of the
//!   NDJSON files as it is (no parsing, validation or indexing) into one table of a fresh
//!   database of the same kind and settings as the store, in transactions of N rows (1,000, the
//!   import's batch), and prints resources/s. It is the limit the real ingest is compared with.
//! - `windows LOG` reads the progress log `meridian import` writes when its stderr is not a
//!   terminal and prints the ingest rate of each stretch of the load, so the rate at 1M
//!   resources can be compared with the rate at 10k.
//!
//! The SQL here is the benchmark's own: a one-table schema that stands for "the database can
//! take this much", kept out of the platform's crates on purpose.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    // Positional arguments: everything after the command that is neither a flag nor a flag's value.
    let positional: Vec<PathBuf> = args
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, a)| !a.starts_with("--") && !args[i - 1].starts_with("--"))
        .map(|(_, a)| PathBuf::from(a))
        .collect();
    match args.first().map(String::as_str) {
        Some("ndjson") => {
            let Some((out, inputs)) = positional.split_first() else {
                bail!("usage: ingest-bench ndjson OUT_DIR BUNDLE_OR_DIR...");
            };
            bundles_to_ndjson(out, inputs)
        }
        Some("raw") => {
            let batch: usize = flag("--batch").unwrap_or_else(|| "1000".into()).parse()?;
            let files = ndjson_files(&positional)?;
            let started = Instant::now();
            let (rows, bytes) = match (flag("--data"), flag("--database-url")) {
                (_, Some(url)) => raw_postgres(&url, &files, batch)?,
                (Some(dir), None) => raw_sqlite(Path::new(&dir), &files, batch)?,
                (None, None) => bail!("--data DIR or --database-url URL"),
            };
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "raw insert: {rows} documents ({:.1} MB) in {seconds:.1} s ({:.0}/s)",
                bytes as f64 / 1e6,
                rows as f64 / seconds
            );
            Ok(())
        }
        Some("windows") => {
            let Some(log) = positional.first() else {
                bail!("usage: ingest-bench windows LOG");
            };
            let text = std::fs::read_to_string(log)?;
            for line in windows(&parse_progress(&text)) {
                println!("{line}");
            }
            Ok(())
        }
        _ => bail!(
            "usage: ingest-bench (ndjson OUT PATH... | raw (--data DIR | --database-url URL) PATH... | windows LOG)"
        ),
    }
}

fn files_under(paths: &[PathBuf], extension: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).with_context(|| path.display().to_string())? {
                let entry = entry?.path();
                if entry.extension().is_some_and(|e| e == extension) {
                    files.push(entry);
                }
            }
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    Ok(files)
}

fn ndjson_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let files = files_under(paths, "ndjson")?;
    if files.is_empty() {
        bail!("no .ndjson files");
    }
    Ok(files)
}

fn bundles_to_ndjson(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let mut written = 0usize;
    for path in files_under(inputs, "json")? {
        let bundle: Value = serde_json::from_slice(&std::fs::read(&path)?)
            .with_context(|| path.display().to_string())?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("bundle");
        let mut writer = BufWriter::new(File::create(out.join(format!("{name}.ndjson")))?);
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            if let Some(resource) = entry.get("resource") {
                serde_json::to_writer(&mut writer, resource)?;
                writer.write_all(b"\n")?;
                written += 1;
            }
        }
        writer.flush()?;
    }
    eprintln!("wrote {written} resources to {}", out.display());
    Ok(())
}

/// Calls `batch_done` with every run of up to `batch` non-empty lines of the files.
fn for_each_batch(
    files: &[PathBuf],
    batch: usize,
    mut batch_done: impl FnMut(&[Vec<u8>]) -> Result<()>,
) -> Result<(u64, u64)> {
    let (mut rows, mut bytes) = (0u64, 0u64);
    let mut pending: Vec<Vec<u8>> = Vec::with_capacity(batch);
    for path in files {
        let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            while line.last().is_some_and(|b| b.is_ascii_whitespace()) {
                line.pop();
            }
            if line.is_empty() {
                continue;
            }
            rows += 1;
            bytes += line.len() as u64;
            pending.push(line.clone());
            if pending.len() == batch {
                batch_done(&pending)?;
                pending.clear();
            }
        }
    }
    if !pending.is_empty() {
        batch_done(&pending)?;
    }
    Ok((rows, bytes))
}

/// SQLite with the store's write settings (WAL, `synchronous = FULL` as `meridian import`
/// opens it, the same cache), into a fresh file.
fn raw_sqlite(dir: &Path, files: &[PathBuf], batch: usize) -> Result<(u64, u64)> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("raw.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut connection = rusqlite::Connection::open(&path)?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -131072; \
         PRAGMA wal_autocheckpoint = 4000; \
         CREATE TABLE raw (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
    )?;
    for_each_batch(files, batch, |lines| {
        let transaction = connection.transaction()?;
        {
            let mut insert = transaction.prepare_cached("INSERT INTO raw (body) VALUES (?1)")?;
            for line in lines {
                insert.execute([line])?;
            }
        }
        transaction.commit()?;
        Ok(())
    })
}

/// PostgreSQL with the bulk mechanism the store's import uses (`COPY ... FROM STDIN BINARY`),
/// into a fresh table of the database the URL names.
fn raw_postgres(url: &str, files: &[PathBuf], batch: usize) -> Result<(u64, u64)> {
    use postgres::binary_copy::BinaryCopyInWriter;
    use postgres::types::Type;
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    client.batch_execute(
        "DROP TABLE IF EXISTS raw; CREATE TABLE raw (id bigserial PRIMARY KEY, body bytea NOT NULL);",
    )?;
    for_each_batch(files, batch, |lines| {
        let mut transaction = client.transaction()?;
        let sink = transaction.copy_in("COPY raw (body) FROM STDIN BINARY")?;
        let mut writer = BinaryCopyInWriter::new(sink, &[Type::BYTEA]);
        for line in lines {
            writer.write(&[line])?;
        }
        writer.finish()?;
        transaction.commit()?;
        Ok(())
    })
}

/// One progress line of `meridian import`: seconds since the start and resources so far.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Progress {
    seconds: f64,
    resources: u64,
}

/// Reads lines like `12.0 s  130000 resources  10833/s ...`.
fn parse_progress(text: &str) -> Vec<Progress> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let seconds = words.next()?.parse().ok()?;
            (words.next()? == "s").then_some(())?;
            let resources = words.next()?.parse().ok()?;
            (words.next()? == "resources").then_some(())?;
            Some(Progress { seconds, resources })
        })
        .collect()
}

/// The rate between consecutive progress lines, as table rows.
fn windows(progress: &[Progress]) -> Vec<String> {
    let mut rows = vec![
        "| resources loaded | window rate (resources/s) |".to_owned(),
        "|---|---|".to_owned(),
    ];
    let start = Progress {
        seconds: 0.0,
        resources: 0,
    };
    let mut previous = start;
    for point in progress {
        let seconds = point.seconds - previous.seconds;
        if seconds > 0.0 && point.resources > previous.resources {
            rows.push(format!(
                "| {}–{} | {:.0} |",
                previous.resources,
                point.resources,
                (point.resources - previous.resources) as f64 / seconds
            ));
        }
        previous = *point;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_progress_lines_and_ignores_the_rest() {
        let log = "a region of 10 residents\n5.0 s  50000 resources  10000/s  40% of 9.0 MB\n\
                   10.0 s  80000 resources  8000/s  60% of 9.0 MB\nimported 80000 resources\n";
        let progress = parse_progress(log);
        assert_eq!(
            progress,
            vec![
                Progress {
                    seconds: 5.0,
                    resources: 50000
                },
                Progress {
                    seconds: 10.0,
                    resources: 80000
                }
            ]
        );
        assert_eq!(
            windows(&progress)[2..],
            ["| 0–50000 | 10000 |", "| 50000–80000 | 6000 |"]
        );
    }

    #[test]
    fn batches_cover_every_line_once() {
        let dir = std::env::temp_dir().join(format!("ingest-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.ndjson");
        std::fs::write(&file, "{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}").unwrap();
        let mut seen = Vec::new();
        let (rows, bytes) = for_each_batch(std::slice::from_ref(&file), 2, |lines| {
            seen.push(lines.len());
            Ok(())
        })
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((rows, bytes, seen), (3, 21, vec![2, 1]));
    }
}
