//! Views kept materialised (`meridian view materialise`, and the server before it computes an
//! indicator or runs a query): views written as directories of Parquet files
//! (`analytics::parquet::dataset`), one per view, named as the view, and kept up to date from
//! the store's change log. With no view named, the catalogue's views
//! (`analytics::catalogue`). A view materialised before, from the same ViewDefinition, is
//! refreshed: only the resources changed since its position are read again. Otherwise (or with
//! `--full`) it is built from every resource of its type. The store is read as the platform's
//! operator: materialised views are the platform's derived data, like its search index; who
//! may read what is computed from them is decided where they are queried.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use analytics::View;
use analytics::parquet::dataset::{Changed, Dataset, Summary};
use anyhow::{Context, Result};
use repository::{Repository, RepositoryError};
use serde_json::Value;
use store::Method;

/// What a long materialisation tells as it goes.
pub trait Progress {
    /// `name`'s build has read `read` resources so far (called often: throttle).
    fn tick(&self, name: &str, read: u64);
    /// A view is done: `line` says how.
    fn line(&self, line: &str);
}

/// No news.
pub struct Quiet;

impl Progress for Quiet {
    fn tick(&self, _: &str, _: u64) {}
    fn line(&self, _: &str) {}
}

/// The views materialised by one run: `(name, ViewDefinition, view)`.
pub type Views = Vec<(String, Value, View)>;

/// The catalogue's views.
pub fn catalogue() -> Result<Views> {
    Ok(analytics::catalogue::views()
        .context("the view catalogue")?
        .iter()
        .map(|v| (v.name.to_owned(), v.json.clone(), v.view.clone()))
        .collect())
}

/// Materialises `views` under `root`, each in `root/NAME`, with a line per view to `progress`.
pub fn materialise(
    repository: &Repository,
    caller: &caller::Caller,
    views: Views,
    root: &Path,
    full: bool,
    progress: &dyn Progress,
) -> Result<()> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    for (name, json, view) in views {
        let dir = root.join(&name);
        let started = std::time::Instant::now();
        let existing = if full {
            None
        } else {
            Dataset::open(&dir, view.clone(), &json)?
        };
        let (kind, summary) = match existing {
            Some(mut dataset) => {
                let summary = refresh(repository, caller, &mut dataset)?;
                ("refreshed", summary)
            }
            None => (
                "built",
                build(repository, caller, &name, &dir, view, &json, progress)?,
            ),
        };
        let mut line = format!(
            "{name}: {kind} in {:.2} s, {} resource(s) read, {} row(s) added, {} removed, {} part(s) rewritten; {} row(s) in all",
            started.elapsed().as_secs_f64(),
            summary.resources,
            summary.rows_added,
            summary.rows_removed,
            summary.parts_rewritten,
            summary.rows
        );
        if summary.rows_refused > 0 {
            line.push_str(&format!(
                "; {} row(s) refused: {}",
                summary.rows_refused,
                summary.refused.join("; ")
            ));
        }
        progress.line(&line);
    }
    Ok(())
}

fn build(
    repository: &Repository,
    caller: &caller::Caller,
    name: &str,
    dir: &Path,
    view: View,
    json: &Value,
    progress: &dyn Progress,
) -> Result<Summary> {
    // The position is taken before the first read: a change made while the build reads is
    // applied again by the next refresh, which replaces whatever rows it had.
    let position = repository.change_log_end()?;
    let resource_type = view.resource().to_owned();
    let mut build = Dataset::build(dir, view, json)?;
    let reader = repository.reader(caller);
    let mut query = store::ScanQuery {
        types: vec![resource_type],
        limit: 1_000,
        ..store::ScanQuery::default()
    };
    let mut read = 0u64;
    loop {
        let page = reader.scan(&query)?;
        let Some(last) = page.last() else {
            break;
        };
        query.after_row = last.row;
        for record in &page {
            let resource = repository::parse_stored(record)?;
            build.add(&record.id, &resource)?;
            read += 1;
        }
        progress.tick(name, read);
    }
    let (_, summary) = build.finish(position, repository.change_log_end()?)?;
    Ok(summary)
}

fn refresh(
    repository: &Repository,
    caller: &caller::Caller,
    dataset: &mut Dataset,
) -> Result<Summary> {
    let resource_type = dataset.view().resource().to_owned();
    // Each changed resource once: whether any of its changes since the position could have
    // left rows (anything but a creation of a first version after the build settled).
    let mut changed: HashMap<String, bool> = HashMap::new();
    let mut order = Vec::new();
    let mut position = dataset.position();
    let settled = dataset.settled();
    loop {
        let changes = repository.store().changes(position, 10_000)?;
        let Some(last) = changes.last() else {
            break;
        };
        position = last.position;
        for change in changes {
            if change.resource_type != resource_type {
                continue;
            }
            let earlier = !(change.method == Method::Create && change.version == 1)
                || change.position <= settled;
            match changed.get_mut(&change.id) {
                Some(may_have_rows) => *may_have_rows |= earlier,
                None => {
                    order.push(change.id.clone());
                    changed.insert(change.id, earlier);
                }
            }
        }
    }
    let reader = repository.reader(caller);
    let mut resources = Vec::with_capacity(order.len());
    for id in order {
        let resource = match reader.read(&resource_type, &id) {
            Ok(record) => Some(repository::parse_stored(&record)?),
            Err(RepositoryError::NotFound(_) | RepositoryError::Gone { .. }) => None,
            Err(error) => return Err(error.into()),
        };
        resources.push(Changed {
            may_have_rows: changed[&id],
            id,
            resource,
        });
    }
    Ok(dataset.refresh(position, &resources)?)
}

/// The default directory of materialised views: `views` beside the embedded store's files.
pub fn default_root(data: &Path) -> PathBuf {
    data.join("views")
}

/// One refresh at a time in this process: two would write the same directories.
static REFRESHING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Every catalogue view under `root`, brought up to date with the store (one refresh at a
/// time in this process).
pub fn refresh_catalogue(
    repository: &Repository,
    caller: &caller::Caller,
    root: &Path,
) -> Result<()> {
    refresh_one_at_a_time(repository, caller, root, catalogue()?)
}

/// `views` under `root` brought up to date with the store, quietly, one refresh at a time.
fn refresh_one_at_a_time(
    repository: &Repository,
    caller: &caller::Caller,
    root: &Path,
    views: Views,
) -> Result<()> {
    let _one = REFRESHING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    materialise(repository, caller, views, root, false, &Quiet)
}

/// `indicator` computed for `period` over the views under `root`, after bringing the views it
/// reads up to date with the store (built the first time, refreshed after): the
/// `MeasureReport`, a summary or (`subject_list`) one listing each population's members.
pub fn evaluate_indicator(
    repository: &Repository,
    caller: &caller::Caller,
    root: &Path,
    indicator: &analytics::indicators::Indicator,
    period: &analytics::indicators::Period,
    subject_list: bool,
) -> Result<Value> {
    let views: Views = catalogue()?
        .into_iter()
        .filter(|(name, _, _)| indicator.views.contains(name))
        .collect();
    refresh_one_at_a_time(repository, caller, root, views)?;
    let mut engine = analytics_sql::Engine::over(root, analytics_sql::Limits::default())?;
    let date = fhir_model::clock::format_instant(fhir_model::clock::now_micros());
    Ok(analytics_sql::evaluate(
        &mut engine,
        indicator,
        period,
        subject_list,
        &date,
    )?)
}

/// The MeasureReports the schedule keeps: `MeasureReport/<indicator>-<YYYY-MM>`, one per
/// indicator and month.
pub fn kept_report_id(indicator: &str, month: &str) -> String {
    format!("{indicator}-{month}")
}

/// Every catalogue indicator computed for `month` (`YYYY-MM`) over the views under `root`
/// (brought up to date first) and kept as `MeasureReport/<indicator>-<month>`, written as the
/// platform's operator when its figures differ from the version kept (so a month's history is
/// its versions). Answers the reports written.
pub fn keep_month(
    repository: &Repository,
    caller: &caller::Caller,
    root: &Path,
    month: &str,
) -> Result<Vec<String>> {
    let period = analytics::indicators::Period::parse(month, month)
        .with_context(|| format!("'{month}' is not a month (YYYY-MM)"))?;
    refresh_catalogue(repository, caller, root)?;
    let mut engine = analytics_sql::Engine::over(root, analytics_sql::Limits::default())?;
    let date = fhir_model::clock::format_instant(fhir_model::clock::now_micros());
    let mut written = Vec::new();
    for indicator in analytics::indicators::indicators()? {
        let mut report = analytics_sql::evaluate(&mut engine, indicator, &period, false, &date)?;
        let id = kept_report_id(indicator.id, month);
        report["id"] = Value::String(id.clone());
        report["identifier"] = serde_json::json!([{
            "system": "https://meridian.example/sid/indicator-report",
            "value": id,
        }]);
        let kept = match repository.read(caller, "MeasureReport", &id) {
            Ok(record) => Some(repository::parse_stored(&record)?),
            Err(RepositoryError::NotFound(_) | RepositoryError::Gone { .. }) => None,
            Err(error) => return Err(error.into()),
        };
        // The figures, not the moment they were computed, decide whether this is news.
        let same = kept.as_ref().is_some_and(|kept| {
            let figures = |r: &Value| (r.get("group").cloned(), r.get("measure").cloned());
            figures(kept) == figures(&report)
        });
        if !same {
            repository.update(caller, "MeasureReport", &id, report, None)?;
            written.push(id);
        }
    }
    Ok(written)
}
