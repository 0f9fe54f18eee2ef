//! `meridian import PATH...`: loads FHIR Bundles (transaction, batch, collection), resources and
//! NDJSON files, or whole directories of them, streaming, with a progress line and a summary.
//! Every record that fails is reported with its file and line or entry; the command exits
//! non-zero if any did.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use repository::{ImportCounts, ImportOptions, ImportUnit};

use crate::config::StoreConfig;
use crate::progress::{Progress, eta};
use crate::stores::open_repository;

/// Imports everything under `paths`; answers whether every record was imported.
/// Loads `paths`; what is loaded is held by `organization` when one is given.
pub fn run(
    config: &StoreConfig,
    paths: &[PathBuf],
    options: ImportOptions,
    organization: Option<String>,
) -> Result<bool> {
    let files = collect_files(paths)?;
    if files.is_empty() {
        bail!(
            "no .json or .ndjson files under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    let mut ctx = crate::operator("import");
    ctx.organization = organization;
    let repository = open_repository(config, &ctx)?;
    let bytes_read = AtomicU64::new(0);
    let units = Units {
        files: files.into_iter(),
        current: None,
        bytes_read: &bytes_read,
    };
    let progress = Progress::start();
    let show = |counts: &ImportCounts| {
        progress.show(counts, |seconds| {
            let read = bytes_read.load(Ordering::Relaxed);
            let fraction = if total_bytes > 0 {
                read as f64 / total_bytes as f64
            } else {
                1.0
            };
            format!(
                "{:.0}% of {:.1} MB  ETA {:.0} s",
                fraction * 100.0,
                total_bytes as f64 / 1e6,
                eta(seconds, fraction)
            )
        })
    };
    let report = progress.bulk_load(&repository, || {
        repository.import(&ctx, units, options, &show)
    })?;
    Ok(progress.finish("imported", &report))
}

/// The files to import, in path order (so `0-hospitalInformation.json` comes before patients).
fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if metadata.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "ndjson")
        ) {
            files.push(path);
        }
    }
    Ok(())
}

/// Reads units lazily: a `.json` file is one unit, each line of an `.ndjson` file another.
struct Units<'a> {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(PathBuf, BufReader<File>, usize)>,
    bytes_read: &'a AtomicU64,
}

impl Iterator for Units<'_> {
    type Item = ImportUnit;

    fn next(&mut self) -> Option<ImportUnit> {
        loop {
            if let Some((path, reader, line_number)) = &mut self.current {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) => self.current = None,
                    Ok(n) => {
                        self.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                        *line_number += 1;
                        if line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        return Some(ImportUnit {
                            source: format!("{}:{line_number}", path.display()),
                            json: line,
                        });
                    }
                    Err(error) => {
                        let source = format!("{}:{}", path.display(), *line_number + 1);
                        self.current = None;
                        // An unreadable line becomes a failed unit, so it is reported, not lost.
                        return Some(ImportUnit {
                            source,
                            json: format!("unreadable: {error}").into_bytes(),
                        });
                    }
                }
                continue;
            }
            let path = self.files.next()?;
            let opened = File::open(&path);
            if path.extension().and_then(|e| e.to_str()) == Some("ndjson")
                && let Ok(file) = opened
            {
                self.current = Some((path, BufReader::with_capacity(1 << 20, file), 0));
                continue;
            }
            let json = std::fs::read(&path)
                .unwrap_or_else(|error| format!("unreadable: {error}").into_bytes());
            self.bytes_read
                .fetch_add(json.len() as u64, Ordering::Relaxed);
            return Some(ImportUnit {
                source: path.display().to_string(),
                json,
            });
        }
    }
}
