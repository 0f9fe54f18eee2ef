//! FEBRL 1-3: read the CSV files and their true links, and evaluate with and without the
//! identifier column (`soc_sec_id`).

use std::path::Path;

use residents::index::Index;
use residents::model::Thresholds;
use residents::record::{Date, Name, Record};

use crate::accuracy::{evaluate, explain_model, header, row, train, truth_pairs};

/// One FEBRL file: records, the person number of each (from `rec-N-org` / `rec-N-dup-k`) and
/// each record's line as the file has it.
fn load(path: &Path, with_ids: bool) -> (Vec<Record>, Vec<u32>, Vec<String>) {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut records = Vec::new();
    let mut people = Vec::new();
    let mut lines = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() < 11 {
            continue;
        }
        let person: u32 = fields[0]
            .split('-')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(u32::MAX);
        let mut record = Record::default();
        let name = Name::new(fields[2], fields[1]);
        if !name.is_empty() {
            record.names.push(name);
        }
        if let Some(date) = Date::parse(fields[9]) {
            record.birth_dates.push(date);
        }
        // The lines of a FHIR address, joined as `Record::from_fhir` joins them: number and
        // street, then the second line (a property, village or building).
        let street = format!("{} {} {}", fields[3], fields[4], fields[5]);
        record.add_address(street.trim(), fields[6], fields[7]);
        if with_ids {
            record.add_wide_identifier("febrl:soc_sec_id", fields[10]);
        }
        records.push(record);
        people.push(person);
        lines.push(line.to_owned());
    }
    (records, people, lines)
}

/// Evaluates the three sets with and without identifiers; with `explain`, every missed true
/// pair and every wrong link is printed with both records and the evidence (standard error).
pub fn run(dir: &Path, explain: bool) {
    header();
    for set in ["febrl1", "febrl2", "febrl3"] {
        let path = dir.join(format!("{set}.csv"));
        let links_file = dir.join(format!("{set}_true_links.csv"));
        let listed = std::fs::read_to_string(&links_file)
            .map(|t| t.lines().count().saturating_sub(1))
            .unwrap_or(0);
        for with_ids in [false, true] {
            let (records, people, lines) = load(&path, with_ids);
            let truth = truth_pairs(&people);
            assert_eq!(
                truth.len(),
                listed,
                "{set}: the true links are all pairs of one person"
            );
            let index = Index::build(records, 2);
            let (matcher, iterations, pairs) = train(&index, Thresholds::default());
            let name = format!("{set}, {} ids", if with_ids { "with" } else { "without" });
            if explain {
                eprintln!("{name}:");
                explain_model(&matcher.model);
            }
            let evaluation = evaluate(&index, &matcher, &truth, explain.then_some(&lines[..]));
            row(&name, &evaluation);
            eprintln!(
                "{name}: {} records, {pairs} blocked pairs, EM {iterations} iterations, prior {:.4}",
                index.len(),
                matcher.model.prior
            );
        }
    }
}
