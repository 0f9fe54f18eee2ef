//! An in-memory blocking index over records, for batch deduplication and for measuring the
//! matcher at scale. Keys live in one sorted array (compact, built once by sorting) plus a hash
//! map of keys added since, so that a million records cost tens of megabytes of index, not
//! millions of small allocations.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::blocking::blocking_keys;
use crate::model::{Decision, Matcher, Verdict};
use crate::record::Record;

/// Keys are already xxh3 hashes: hashing them again would only cost time.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// How many records of one block are compared at most: a block that large (a very common name
/// with a common birth month) is a poor key, and the other keys still find the true match.
pub const MAX_BLOCK: usize = 500;

/// Records and their blocking keys.
#[derive(Default)]
pub struct Index {
    records: Vec<Record>,
    /// (key, record number), sorted.
    frozen: Vec<(u64, u32)>,
    recent: KeyMap<Vec<u32>>,
}

/// A candidate found for a query, with its verdict.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub record: u32,
    pub verdict: Verdict,
}

impl Index {
    /// Builds the index over `records` in one go (keys computed on `threads` threads).
    pub fn build(records: Vec<Record>, threads: usize) -> Index {
        let threads = threads.max(1);
        let chunk = records.len().div_ceil(threads).max(1);
        let mut frozen: Vec<(u64, u32)> = std::thread::scope(|scope| {
            let handles: Vec<_> = records
                .chunks(chunk)
                .enumerate()
                .map(|(c, part)| {
                    scope.spawn(move || {
                        let mut out = Vec::with_capacity(part.len() * 8);
                        for (i, record) in part.iter().enumerate() {
                            let number = (c * chunk + i) as u32;
                            out.extend(blocking_keys(record).into_iter().map(|k| (k, number)));
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        frozen.sort_unstable();
        Index {
            records,
            frozen,
            recent: KeyMap::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn record(&self, number: u32) -> &Record {
        &self.records[number as usize]
    }

    /// Adds one record; answers its number.
    pub fn insert(&mut self, record: Record) -> u32 {
        let number = self.records.len() as u32;
        for key in blocking_keys(&record) {
            self.recent.entry(key).or_default().push(number);
        }
        self.records.push(record);
        number
    }

    /// The numbers of the records sharing a blocking key with `record`, each once, below
    /// `below` (to compare each pair of an index with itself only once).
    pub fn candidates(&self, record: &Record, below: u32) -> Vec<u32> {
        let mut found: Vec<u32> = Vec::new();
        for key in blocking_keys(record) {
            let start = self.frozen.partition_point(|(k, _)| *k < key);
            let block = self.frozen[start..]
                .iter()
                .take_while(|(k, _)| *k == key)
                .map(|(_, n)| *n)
                .filter(|n| *n < below);
            found.extend(block.take(MAX_BLOCK));
            if let Some(recent) = self.recent.get(&key) {
                found.extend(
                    recent
                        .iter()
                        .copied()
                        .filter(|n| *n < below)
                        .take(MAX_BLOCK),
                );
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    /// Every candidate of `record` with its verdict, best first.
    pub fn search(&self, matcher: &Matcher, record: &Record) -> Vec<Candidate> {
        let mut scored: Vec<Candidate> = self
            .candidates(record, u32::MAX)
            .into_iter()
            .map(|n| Candidate {
                record: n,
                verdict: matcher.decide(record, self.record(n)),
            })
            .collect();
        scored.sort_by(|a, b| {
            b.verdict
                .score
                .probability
                .total_cmp(&a.verdict.score.probability)
        });
        scored
    }

    /// Batch deduplication: every pair of records that blocking brings together is decided
    /// once, on `threads` threads. Answers the pairs decided `AutoLink` or `Review`.
    pub fn link_pairs(&self, matcher: &Matcher, threads: usize) -> Vec<(u32, u32, Decision, f64)> {
        self.for_each_pair(threads, |a, b, record_a, record_b| {
            let verdict = matcher.decide(record_a, record_b);
            (verdict.decision != Decision::NoLink).then_some((
                a,
                b,
                verdict.decision,
                verdict.score.probability,
            ))
        })
    }

    /// Runs `visit` on every blocked pair (higher number first), collecting what it answers.
    pub fn for_each_pair<T: Send>(
        &self,
        threads: usize,
        visit: impl Fn(u32, u32, &Record, &Record) -> Option<T> + Sync,
    ) -> Vec<T> {
        let threads = threads.max(1);
        let n = self.records.len();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let visit = &visit;
        let next = &next;
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        loop {
                            // Work is handed out in small chunks so both threads finish together.
                            let start = next.fetch_add(1024, std::sync::atomic::Ordering::Relaxed);
                            if start >= n {
                                break;
                            }
                            for i in start..(start + 1024).min(n) {
                                let record = &self.records[i];
                                for j in self.candidates(record, i as u32) {
                                    if let Some(value) = visit(i as u32, j, record, self.record(j))
                                    {
                                        out.push(value);
                                    }
                                }
                            }
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    }
}

/// Groups record numbers into clusters by the links between them (union–find).
pub fn clusters(count: usize, links: impl IntoIterator<Item = (u32, u32)>) -> Vec<u32> {
    let mut parent: Vec<u32> = (0..count as u32).collect();
    fn root(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let grand = parent[parent[x as usize] as usize];
            parent[x as usize] = grand;
            x = grand;
        }
        x
    }
    for (a, b) in links {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb) as usize] = ra.min(rb);
        }
    }
    (0..count as u32).map(|x| root(&mut parent, x)).collect()
}
