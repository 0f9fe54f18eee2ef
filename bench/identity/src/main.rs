//! The identity benchmarks: `febrl DIR` (accuracy on FEBRL 1-3, with and without the
//! identifier column), `regional N` (accuracy on generated regional data), `index N QUERIES`
//! (latency of matching one record against an index of N people) and `dedup N` (batch
//! deduplication of N records), `store N WRITES` (the online path: Patient writes matched by the
//! write hook on the embedded store, and `$match`, with N residents already registered);
//! `train N` prints the model EM estimates on generated regional data, as the Rust table
//! `Model::regional` holds. Each prints a Markdown table for BENCHMARKS.md; `--explain` after
//! `febrl` or `regional` also prints every missed true pair and every wrong link.

mod accuracy;
mod febrl;
mod scale;
mod stored;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `--explain` (febrl, regional): every missed true pair and every wrong link, with both
    // records, each field's level and weight, and the match probability, then the weakest true
    // links and the strongest non-matches (and, for FEBRL, the estimated model), on standard
    // error.
    let explain = args.iter().any(|a| a == "--explain");
    args.retain(|a| a != "--explain");
    let number = |i: usize, default: usize| {
        args.get(i)
            .and_then(|a| a.replace('_', "").parse().ok())
            .unwrap_or(default)
    };
    match args.first().map(String::as_str) {
        Some("febrl") => {
            let dir = args
                .get(1)
                .map_or("../shared/corpora/febrl", String::as_str);
            febrl::run(std::path::Path::new(dir), explain);
        }
        Some("regional") => accuracy::regional(number(1, 20_000), false, explain),
        Some("train") => accuracy::regional(number(1, 50_000), true, false),
        Some("index") => scale::index(number(1, 1_000_000), number(2, 10_000)),
        Some("dedup") => scale::dedup(number(1, 1_000_000)),
        Some("store") => stored::run(number(1, 20_000), number(2, 1_000)),
        _ => {
            eprintln!(
                "usage: identity-bench febrl DIR [--explain] | regional N [--explain] | train N | index N QUERIES | dedup N | store N WRITES"
            );
            std::process::exit(2);
        }
    }
}
