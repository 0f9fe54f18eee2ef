//! The views the platform materialises for its indicators: a ViewDefinition each, kept as
//! data in `catalogue/views/`, named as the tables SQL reads (`encounter`, `patient`, ...).
//! Each column's description is in its view; `docs/analytics.md` lists them.

use std::sync::OnceLock;

use serde_json::Value;

use crate::{View, ViewError};

/// (name, ViewDefinition JSON) of every catalogue view, by name.
const VIEWS: &[(&str, &str)] = &[
    (
        "blood_pressure",
        include_str!("../catalogue/views/blood_pressure.json"),
    ),
    (
        "chronic_programme",
        include_str!("../catalogue/views/chronic_programme.json"),
    ),
    (
        "condition",
        include_str!("../catalogue/views/condition.json"),
    ),
    (
        "diagnostic_report",
        include_str!("../catalogue/views/diagnostic_report.json"),
    ),
    (
        "encounter",
        include_str!("../catalogue/views/encounter.json"),
    ),
    ("glucose", include_str!("../catalogue/views/glucose.json")),
    (
        "imaging_order",
        include_str!("../catalogue/views/imaging_order.json"),
    ),
    (
        "institution",
        include_str!("../catalogue/views/institution.json"),
    ),
    ("patient", include_str!("../catalogue/views/patient.json")),
    ("referral", include_str!("../catalogue/views/referral.json")),
    (
        "workflow_task",
        include_str!("../catalogue/views/workflow_task.json"),
    ),
];

/// A catalogue view: its name (the table's), its ViewDefinition, and the view compiled.
pub struct CatalogueView {
    pub name: &'static str,
    pub json: Value,
    pub view: View,
}

/// Every catalogue view, by name, compiled once per process. The views are checked when the
/// crate is tested, so an error here is a fault of the build.
pub fn views() -> Result<&'static [CatalogueView], ViewError> {
    static VIEWS_COMPILED: OnceLock<Result<Vec<CatalogueView>, ViewError>> = OnceLock::new();
    VIEWS_COMPILED
        .get_or_init(|| {
            VIEWS
                .iter()
                .map(|(name, text)| {
                    let json: Value = serde_json::from_str(text)
                        .map_err(|e| ViewError::invalid(*name, format!("is not JSON: {e}")))?;
                    let view = View::parse(&json)?;
                    Ok(CatalogueView { name, json, view })
                })
                .collect()
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// The names of the catalogue's views (the SQL tables), without compiling them.
pub fn names() -> impl Iterator<Item = &'static str> {
    VIEWS.iter().map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_compiles_and_is_named_as_its_file() {
        let views = views().unwrap();
        assert_eq!(views.len(), VIEWS.len());
        for view in views {
            assert_eq!(view.view.name(), Some(view.name));
            assert!(view.json["description"].is_string(), "{}", view.name);
        }
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/catalogue/views"))
            .unwrap()
            .count();
        assert_eq!(files, VIEWS.len(), "a view file not in VIEWS");
    }
}
