//! The official SQL on FHIR v2 test suite (`tests/sql-on-fhir-v2/tests/*.json`), every test of
//! every file, with views evaluated in memory by the crate (`official` says how a test is
//! judged and keeps the known failures).

use analytics::View;
use serde_json::Value;

use crate::official::{Table, assert_as_known, run_suite};

#[test]
fn official_sql_on_fhir_v2_suite() {
    assert_as_known(&run_suite(&evaluate), "in memory");
}

fn evaluate(view: &Value, resources: &[Value]) -> Result<Table, String> {
    let view = View::parse(view).map_err(|e| e.to_string())?;
    let columns: Vec<String> = view
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let mut rows = Vec::new();
    for resource in resources {
        for row in view.rows(resource).map_err(|e| e.to_string())? {
            assert_eq!(row.len(), columns.len(), "a row has a value per column");
            rows.push(columns.iter().cloned().zip(row).collect());
        }
    }
    Ok(Table { columns, rows })
}
