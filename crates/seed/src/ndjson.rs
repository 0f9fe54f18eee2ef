//! Writing a region as NDJSON, one file per resource type (`Patient.ndjson`, ...), the Bulk
//! Data layout that `meridian import` reads.
//!
//! Residents are generated and serialised in batches on several threads and written in
//! order, so the files are the same bytes whatever the number of threads: those of taking
//! [`Region::resources`] in order and appending each resource to its type's file. Memory stays
//! bounded: each worker holds at most a couple of batches.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{Generated, RESOURCE_TYPES, Region};

/// Residents per batch: enough to amortise the hand-over between threads, few enough that a
/// batch (about 60 resources a resident) stays small.
const BATCH: u64 = 128;

/// Where writing stands, reported after every batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub residents_done: u64,
    pub residents: u64,
    pub resources: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Resources per type, for the types written.
    pub counts: BTreeMap<&'static str, u64>,
    pub bytes: u64,
    pub files: Vec<PathBuf>,
}

impl Summary {
    pub fn resources(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Serialised resources of one batch, grouped by type in first-seen order.
#[derive(Default)]
struct Chunk {
    by_type: Vec<(&'static str, Vec<u8>, u64)>,
}

impl Chunk {
    fn add(&mut self, (resource_type, resource): &Generated) {
        let index = match self.by_type.iter().position(|(t, ..)| t == resource_type) {
            Some(index) => index,
            None => {
                self.by_type.push((resource_type, Vec::new(), 0));
                self.by_type.len() - 1
            }
        };
        let (_, bytes, count) = &mut self.by_type[index];
        serde_json::to_writer(&mut *bytes, resource).expect("a Value serialises into memory");
        bytes.push(b'\n');
        *count += 1;
    }
}

/// Writes `region` into `dir` (created if needed; files of earlier runs for the generator's
/// types are replaced), generating on `threads` threads; `progress` is called after every
/// batch.
pub fn write_region(
    region: &Region,
    dir: &Path,
    threads: usize,
    mut progress: impl FnMut(&Progress),
) -> io::Result<Summary> {
    std::fs::create_dir_all(dir)?;
    for resource_type in RESOURCE_TYPES {
        match std::fs::remove_file(file_of(dir, resource_type)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    let started = Instant::now();
    let mut files = Files {
        dir,
        open: Vec::new(),
        counts: BTreeMap::new(),
        bytes: 0,
    };

    let mut directory = Vec::new();
    region.directory(&mut directory);
    let mut chunk = Chunk::default();
    directory.iter().for_each(|generated| chunk.add(generated));
    files.write(chunk)?;

    let residents = region.config().patients;
    let batches = residents.div_ceil(BATCH);
    let mut report = |files: &Files, batch: u64| {
        progress(&Progress {
            residents_done: ((batch + 1) * BATCH).min(residents),
            residents,
            resources: files.counts.values().sum(),
            bytes: files.bytes,
            elapsed: started.elapsed(),
        })
    };
    let threads = threads.clamp(1, 64) as u64;
    if threads == 1 {
        for batch in 0..batches {
            files.write(generate_batch(region, batch))?;
            report(&files, batch);
        }
    } else {
        std::thread::scope(|scope| -> io::Result<()> {
            let receivers: Vec<_> = (0..threads)
                .map(|worker| {
                    let (sender, receiver) = mpsc::sync_channel::<Chunk>(2);
                    scope.spawn(move || {
                        let mut batch = worker;
                        while batch < batches {
                            // The writer has stopped (an I/O error): stop too.
                            if sender.send(generate_batch(region, batch)).is_err() {
                                return;
                            }
                            batch += threads;
                        }
                    });
                    receiver
                })
                .collect();
            for batch in 0..batches {
                let chunk = receivers[(batch % threads) as usize]
                    .recv()
                    .expect("a worker sends every batch it is given");
                files.write(chunk)?;
                report(&files, batch);
            }
            Ok(())
        })?;
    }
    files.finish()
}

fn generate_batch(region: &Region, batch: u64) -> Chunk {
    let mut chunk = Chunk::default();
    let mut generated = Vec::new();
    let end = ((batch + 1) * BATCH).min(region.config().patients);
    for index in batch * BATCH..end {
        region.resident(index, &mut generated);
        generated.iter().for_each(|g| chunk.add(g));
        generated.clear();
    }
    chunk
}

fn file_of(dir: &Path, resource_type: &str) -> PathBuf {
    dir.join(format!("{resource_type}.ndjson"))
}

struct Files<'a> {
    dir: &'a Path,
    open: Vec<(&'static str, BufWriter<File>)>,
    counts: BTreeMap<&'static str, u64>,
    bytes: u64,
}

impl Files<'_> {
    fn write(&mut self, chunk: Chunk) -> io::Result<()> {
        for (resource_type, bytes, count) in chunk.by_type {
            let index = match self.open.iter().position(|(t, _)| *t == resource_type) {
                Some(index) => index,
                None => {
                    let file = File::create(file_of(self.dir, resource_type))?;
                    self.open
                        .push((resource_type, BufWriter::with_capacity(1 << 20, file)));
                    self.open.len() - 1
                }
            };
            self.open[index].1.write_all(&bytes)?;
            self.bytes += bytes.len() as u64;
            *self.counts.entry(resource_type).or_default() += count;
        }
        Ok(())
    }

    fn finish(self) -> io::Result<Summary> {
        let mut files = Vec::new();
        for (resource_type, mut writer) in self.open {
            writer.flush()?;
            writer
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()?;
            files.push(file_of(self.dir, resource_type));
        }
        files.sort();
        Ok(Summary {
            counts: self.counts,
            bytes: self.bytes,
            files,
        })
    }
}
