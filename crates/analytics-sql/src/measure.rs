//! An indicator of the catalogue (`analytics::indicators`) computed: its SQL run over the
//! materialised views with the period bound, its answer counted as it comes into a
//! `MeasureReport`.

use serde_json::{Value, json};

use analytics::indicators::{Indicator, Period, ReportBuilder};

use crate::{Engine, SqlError};

/// Why an indicator could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// A view it reads has not been materialised.
    #[error("indicator {indicator} reads view '{view}', which is not materialised here")]
    MissingView { indicator: String, view: String },
    /// The SQL failed, or its answer did not have the columns the Measure names: a fault of
    /// the catalogue or of the files, not of the caller.
    #[error("indicator {indicator}: {source}")]
    Sql {
        indicator: String,
        #[source]
        source: SqlError,
    },
}

/// `indicator` over the views of `engine` for `period`, as a summary `MeasureReport` or, with
/// `subject_list`, one that lists the members of each population. `date` is the report's.
pub fn evaluate(
    engine: &mut Engine,
    indicator: &Indicator,
    period: &Period,
    subject_list: bool,
    date: &str,
) -> Result<Value, EvaluateError> {
    let sql = indicator.sql;
    if let Some(view) = indicator
        .views
        .iter()
        .find(|v| !engine.tables().contains(v))
    {
        return Err(EvaluateError::MissingView {
            indicator: indicator.id.to_owned(),
            view: view.clone(),
        });
    }
    let params = [
        (":period_start", json!(period.start)),
        (":period_end", json!(period.end)),
        (":period_months", json!(period.months())),
    ];
    let sql_error = |source: SqlError| EvaluateError::Sql {
        indicator: indicator.id.to_owned(),
        source,
    };
    let builder = engine
        .query_each(
            sql,
            &params,
            |columns| {
                ReportBuilder::new(indicator, columns, subject_list)
                    .map_err(|e| SqlError::Query(e.to_string()))
            },
            |builder, row| {
                builder.add(&row);
                Ok(())
            },
        )
        .map_err(sql_error)?;
    Ok(builder.finish(period, date))
}
