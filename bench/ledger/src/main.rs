//! The verifiable log measured on its own (BENCHMARKS.md, "The verifiable log"):
//!
//! - `append STORE LEAVES BATCH`: leaves of about 200 bytes appended through `ledger::log::append`
//!   (the log's lock, its size, the leaf rows and the grown tiles) in transactions of BATCH,
//!   into a fresh store: leaves/s.
//! - `tiles STORE LEAVES`: the tiles of a tree of LEAVES leaf hashes written straight into the
//!   store (the tree a proof reads; no leaf rows), in transactions of a million leaves.
//! - `prove STORE SAMPLES`: inclusion proofs of random leaves in the store's whole tree, through
//!   `ledger::log::Log` (the tiles read from the store each time): p50, p99 and max, each
//!   proof checked.
//!
//! STORE is `sqlite:DIR` or a PostgreSQL URL.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ledger::hash::{Hash, leaf_hash};
use ledger::log::PendingLeaf;
use store::Store;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn open(store: &str) -> Result<Arc<dyn Store>> {
    Ok(match store.strip_prefix("sqlite:") {
        Some(dir) => Arc::new(store_sqlite::SqliteStore::open({
            std::fs::create_dir_all(dir)?;
            store_sqlite::SqliteConfig::in_dir(std::path::Path::new(dir))
        })?),
        None => Arc::new(store_postgres::PostgresStore::open(
            store_postgres::PostgresConfig::new(store),
        )?),
    })
}

/// A leaf input of the size real ones have.
fn input(i: u64) -> Vec<u8> {
    format!(
        "{{\"id\":\"bench-{i:012}\",\"org\":\"Organization/hospital-{}\",\"sha256\":\"{}\",\"time\":\"2026-12-02T10:00:00.000000Z\",\"type\":\"Observation\",\"version\":1}}",
        i % 977,
        ledger::hash::sha256_hex(&i.to_le_bytes())
    )
    .into_bytes()
}

fn append(store: &dyn Store, leaves: u64, batch: u64) -> Result<()> {
    let started = Instant::now();
    let mut done = 0;
    while done < leaves {
        let n = batch.min(leaves - done);
        let pending: Vec<PendingLeaf> = (done..done + n)
            .map(|i| PendingLeaf {
                row: i as i64 + 1,
                resource_type: "Observation".into(),
                id: format!("bench-{i:012}"),
                version: 1,
                input: input(i),
            })
            .collect();
        let mut tx = store.begin()?;
        ledger::log::append(&mut *tx, pending)?;
        tx.commit()?;
        done += n;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "append: {leaves} leaves in transactions of {batch} in {seconds:.2} s: {:.0} leaves/s",
        leaves as f64 / seconds
    );
    Ok(())
}

struct Tiles<'a>(&'a mut dyn store::Transaction);

impl ledger::TileSource for Tiles<'_> {
    type Error = store::StoreError;

    fn tile(&mut self, level: u32, index: u64) -> Result<Option<Vec<u8>>, store::StoreError> {
        self.0.ledger_tile(level, index)
    }
}

fn tiles(store: &dyn Store, leaves: u64) -> Result<()> {
    let started = Instant::now();
    let chunk = 1_000_000u64;
    let mut size = store.ledger_size()?;
    if size != 0 {
        bail!("the store's log is not empty");
    }
    let mut written = 0u64;
    while written < leaves {
        let n = chunk.min(leaves - written);
        let hashes: Vec<Hash> = (written..written + n)
            .map(|i| leaf_hash(&i.to_le_bytes()))
            .collect();
        let mut tx = store.begin()?;
        let writes = ledger::tree::append(&mut Tiles(&mut *tx), written, &hashes)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let tiles: Vec<(u32, u64, &[u8])> = writes
            .iter()
            .map(|w| (w.level, w.index, w.hashes.as_slice()))
            .collect();
        tx.put_ledger(&[], &tiles)?;
        tx.commit()?;
        written += n;
        size = written;
        if written.is_multiple_of(10_000_000) {
            eprintln!("{written} leaves, {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    // The tree's size is the leaf rows' count: one row at the last index makes it `size`.
    let mut tx = store.begin()?;
    tx.put_ledger(
        &[store::LedgerLeaf {
            index: size - 1,
            row: 1,
            resource_type: "Observation".into(),
            id: "bench-last".into(),
            version: 1,
            input: (size - 1).to_le_bytes().to_vec(),
        }],
        &[],
    )?;
    tx.commit()?;
    println!(
        "tiles: a tree of {leaves} leaves in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A small deterministic generator (xorshift), for reproducible samples.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn prove(store: Arc<dyn Store>, samples: usize) -> Result<()> {
    let log = ledger::log::Log::open(Arc::clone(&store), "bench.local/ledger", 0)?;
    let size = log.size()?;
    let root = log.root(size)?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        // Leaves below the last, whose hashes are those the tiles were built from.
        let index = next(&mut state) % (size - 1);
        let started = Instant::now();
        let path = log.inclusion(index, size)?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        // The append benchmark's leaves have rows; the tiles benchmark's are hashes of indexes.
        let leaf = match store.ledger_leaves(index, index + 1)?.pop() {
            Some(row) => leaf_hash(&row.input),
            None => leaf_hash(&index.to_le_bytes()),
        };
        if !ledger::tree::verify_inclusion(index, size, &leaf, &path, &root) {
            bail!("the proof of leaf {index} does not verify");
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "prove: {samples} inclusion proofs in a tree of {size} leaves: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (every proof verified)",
        at(0.50),
        at(0.99),
        times[times.len() - 1]
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let number = |i: usize| -> Result<u64> {
        args.get(i)
            .context("missing argument")?
            .replace('_', "")
            .parse()
            .context("not a number")
    };
    match args.get(1).map(String::as_str) {
        Some("append") => append(&*open(&args[2])?, number(3)?, number(4)?),
        Some("tiles") => tiles(&*open(&args[2])?, number(3)?),
        Some("prove") => prove(open(&args[2])?, number(3)? as usize),
        _ => bail!(
            "usage: ledger-bench append STORE LEAVES BATCH | tiles STORE LEAVES | prove STORE SAMPLES"
        ),
    }
}
