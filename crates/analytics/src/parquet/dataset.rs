//! A view materialised as a directory of Parquet files (a *dataset*), kept up to date from the
//! store's change log instead of being recomputed.
//!
//! ```text
//! DIR/part-000001.parquet      the rows, in parts; any Parquet reader takes the directory
//! DIR/part-000007.parquet      (pandas, DuckDB, Spark, DataFusion) as one table
//! DIR/_meridian/manifest.json  the view, the change-log position reached, the parts
//! DIR/_meridian/part-000001.keys  which resource each part's rows came from, in row order
//! ```
//!
//! Readers skip names starting with `_`, so the bookkeeping is invisible to them. A full build
//! ([`Dataset::build`]) writes a new directory beside the old and swaps it in. A refresh
//! ([`Dataset::refresh`]) is given the resources changed since the manifest's position, each
//! with its current content (or none when it is gone): their rows are appended as a new part;
//! the parts that held their earlier rows are rewritten without them (only for resources that
//! can have earlier rows: a first version has none); and when small parts pile up they are
//! merged into one. The new files are written under new names before the manifest that names
//! them, and old ones removed after, so a refresh that stops half-way leaves the last complete
//! state (files the manifest does not name are removed when the dataset is next opened).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use arrow_array::BooleanArray;
use serde_json::{Value, json};

use super::{ParquetWriter, WriteError, properties, schema};
use crate::View;

/// The most rows a part written by a full build holds.
pub const PART_ROWS: u64 = 1_000_000;

/// Parts with fewer rows than this count as small...
const SMALL_PART_ROWS: u64 = 100_000;
/// ...and when there are more of them than this, a refresh merges them into one.
const MAX_SMALL_PARTS: usize = 8;

const BOOKKEEPING: &str = "_meridian";
const MANIFEST: &str = "manifest.json";

/// Why a dataset could not be built, opened or refreshed.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("reading a part: {0}")]
    Read(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One Parquet file of the dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    number: u64,
    rows: u64,
}

impl Part {
    fn file_name(&self) -> String {
        format!("part-{:06}.parquet", self.number)
    }

    fn keys_name(&self) -> String {
        format!("part-{:06}.keys", self.number)
    }
}

/// What the manifest records.
#[derive(Debug, Clone)]
struct Manifest {
    view: Value,
    position: i64,
    /// The log's end when the full build finished: a change up to it may be in the build's
    /// rows already, even a creation.
    settled: i64,
    next_part: u64,
    parts: Vec<Part>,
}

impl Manifest {
    fn to_json(&self) -> Value {
        json!({
            "view": self.view,
            "position": self.position,
            "settled": self.settled,
            "nextPart": self.next_part,
            "parts": self.parts.iter().map(|p| json!({"number": p.number, "rows": p.rows})).collect::<Vec<_>>(),
        })
    }

    /// The manifest of the dataset at `dir`; `None` when there is none.
    fn read(dir: &Path) -> Result<Option<Manifest>, DatasetError> {
        let path = dir.join(BOOKKEEPING).join(MANIFEST);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io(&path)(error)),
        };
        serde_json::from_str::<Value>(&text)
            .ok()
            .as_ref()
            .and_then(Manifest::from_json)
            .map(Some)
            .ok_or_else(|| DatasetError::Corrupt {
                path,
                message: "is not a dataset manifest".into(),
            })
    }

    /// The Parquet files of the parts, in part order.
    fn files(&self, dir: &Path) -> Vec<PathBuf> {
        self.parts.iter().map(|p| dir.join(p.file_name())).collect()
    }

    fn from_json(json: &Value) -> Option<Manifest> {
        let parts = json
            .get("parts")?
            .as_array()?
            .iter()
            .map(|p| {
                Some(Part {
                    number: p.get("number")?.as_u64()?,
                    rows: p.get("rows")?.as_u64()?,
                })
            })
            .collect::<Option<Vec<Part>>>()?;
        Some(Manifest {
            view: json.get("view")?.clone(),
            position: json.get("position")?.as_i64()?,
            settled: json.get("settled")?.as_i64()?,
            next_part: json.get("nextPart")?.as_u64()?,
            parts,
        })
    }
}

/// Which resource each of a part's rows came from: runs of (resource id, rows), in row order.
type Keys = Vec<(String, u64)>;

/// What a build or refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Resources whose rows were (re)computed.
    pub resources: u64,
    /// Rows written from them.
    pub rows_added: u64,
    /// Earlier rows removed (of changed or deleted resources).
    pub rows_removed: u64,
    /// Rows refused because a value did not fit its column (each named in `refused`).
    pub rows_refused: u64,
    /// The first refusals, as `Type/id: reason`.
    pub refused: Vec<String>,
    /// Parts rewritten (without removed rows, or merged).
    pub parts_rewritten: u64,
    /// The rows the dataset holds after.
    pub rows: u64,
}

const REFUSALS_KEPT: usize = 10;

impl Summary {
    fn refuse(&mut self, resource_type: &str, id: &str, error: &WriteError) {
        self.rows_refused += 1;
        if self.refused.len() < REFUSALS_KEPT {
            self.refused.push(format!("{resource_type}/{id}: {error}"));
        }
    }
}

/// A resource changed since the dataset's position, as the refresh is given it.
#[derive(Debug, Clone)]
pub struct Changed {
    pub id: String,
    /// Its current content; `None` when it was deleted (or is no longer readable).
    pub resource: Option<Value>,
    /// Whether the dataset may hold rows of an earlier version (false for a resource created
    /// since the position: its first version).
    pub may_have_rows: bool,
}

/// A materialised view: its directory and manifest.
pub struct Dataset {
    dir: PathBuf,
    view: View,
    manifest: Manifest,
}

impl Dataset {
    /// The dataset at `dir`, when one was built there from this same view (`view_json` is the
    /// ViewDefinition `view` was parsed from); `None` when there is none, or it was built from
    /// another view (it needs a full build). Files its manifest does not name (a refresh that
    /// stopped) are removed.
    pub fn open(
        dir: &Path,
        view: View,
        view_json: &Value,
    ) -> Result<Option<Dataset>, DatasetError> {
        let Some(manifest) = Manifest::read(dir)? else {
            return Ok(None);
        };
        if manifest.view != *view_json {
            return Ok(None);
        }
        let dataset = Dataset {
            dir: dir.to_path_buf(),
            view,
            manifest,
        };
        dataset.remove_strays()?;
        Ok(Some(dataset))
    }

    /// Starts a full build of `view` for `dir`: the rows are written into a directory beside
    /// it, which replaces `dir` when the build finishes.
    pub fn build(dir: &Path, view: View, view_json: &Value) -> Result<Build, DatasetError> {
        let staging = sibling(dir, "building");
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        fs::create_dir_all(staging.join(BOOKKEEPING)).map_err(io(&staging))?;
        Ok(Build {
            dir: dir.to_path_buf(),
            dataset: Dataset {
                dir: staging,
                view,
                manifest: Manifest {
                    view: view_json.clone(),
                    position: 0,
                    settled: 0,
                    next_part: 1,
                    parts: Vec::new(),
                },
            },
            part: None,
            summary: Summary::default(),
        })
    }

    /// The change-log position the dataset reflects: every change up to it is in the rows.
    pub fn position(&self) -> i64 {
        self.manifest.position
    }

    /// The log's end when the dataset was built: the rows may hold any resource changed up to
    /// it, so a refresh must treat even a creation up to it as possibly there.
    pub fn settled(&self) -> i64 {
        self.manifest.settled
    }

    /// The rows the dataset holds.
    pub fn rows(&self) -> u64 {
        self.manifest.parts.iter().map(|p| p.rows).sum()
    }

    /// The Parquet files, in part order.
    pub fn files(&self) -> Vec<PathBuf> {
        self.manifest.files(&self.dir)
    }

    pub fn view(&self) -> &View {
        &self.view
    }

    /// Brings the rows up to `position`, given every resource of the view's type changed
    /// after the dataset's position and up to `position` (each once, with its content now).
    pub fn refresh(&mut self, position: i64, changed: &[Changed]) -> Result<Summary, DatasetError> {
        let mut summary = Summary::default();
        let mut manifest = self.manifest.clone();
        let mut obsolete = Vec::new();

        // Earlier rows of the changed resources leave the parts that hold them.
        let removed: HashSet<&str> = changed
            .iter()
            .filter(|c| c.may_have_rows)
            .map(|c| c.id.as_str())
            .collect();
        if !removed.is_empty() {
            let mut kept_parts = Vec::with_capacity(manifest.parts.len());
            for part in std::mem::take(&mut manifest.parts) {
                let keys = self.read_keys(&part)?;
                if !keys.iter().any(|(id, _)| removed.contains(id.as_str())) {
                    kept_parts.push(part);
                    continue;
                }
                let keep: Vec<bool> = keys
                    .iter()
                    .flat_map(|(id, rows)| {
                        std::iter::repeat_n(!removed.contains(id.as_str()), *rows as usize)
                    })
                    .collect();
                let kept_keys: Keys = keys
                    .into_iter()
                    .filter(|(id, _)| !removed.contains(id.as_str()))
                    .collect();
                let number = manifest.next_part;
                manifest.next_part += 1;
                let rows = self.rewrite(&[(&part, Some(&keep))], number)?;
                summary.rows_removed += part.rows - rows;
                summary.parts_rewritten += 1;
                let new = Part { number, rows };
                self.write_keys(&new, &kept_keys)?;
                obsolete.push(part);
                if rows > 0 {
                    kept_parts.push(new);
                } else {
                    obsolete.push(new);
                }
            }
            manifest.parts = kept_parts;
        }

        // The changed resources' rows now, as one new part.
        let present: Vec<(&str, &Value)> = changed
            .iter()
            .filter_map(|c| Some((c.id.as_str(), c.resource.as_ref()?)))
            .collect();
        if !present.is_empty() {
            let number = manifest.next_part;
            manifest.next_part += 1;
            let mut writer = PartWriter::create(&self.dir, &self.view, number)?;
            for (id, resource) in present {
                writer.add(&self.view, id, resource, &mut summary)?;
            }
            let (part, keys) = writer.finish()?;
            self.write_keys(&part, &keys)?;
            if part.rows > 0 {
                manifest.parts.push(part);
            } else {
                obsolete.push(part);
            }
        }

        // Small parts are merged once there are too many of them.
        let small: Vec<Part> = manifest
            .parts
            .iter()
            .filter(|p| p.rows < SMALL_PART_ROWS)
            .cloned()
            .collect();
        if small.len() > MAX_SMALL_PARTS {
            let number = manifest.next_part;
            manifest.next_part += 1;
            let inputs: Vec<(&Part, Option<&Vec<bool>>)> =
                small.iter().map(|p| (p, None)).collect();
            let rows = self.rewrite(&inputs, number)?;
            let mut keys = Keys::new();
            for part in &small {
                keys.extend(self.read_keys(part)?);
            }
            let merged = Part { number, rows };
            self.write_keys(&merged, &keys)?;
            summary.parts_rewritten += small.len() as u64;
            manifest.parts.retain(|p| !small.contains(p));
            manifest.parts.push(merged);
            obsolete.extend(small);
        }

        manifest.position = position;
        self.write_manifest(&manifest)?;
        self.manifest = manifest;
        for part in obsolete {
            remove_if_present(&self.dir.join(part.file_name()))?;
            remove_if_present(&self.dir.join(BOOKKEEPING).join(part.keys_name()))?;
        }
        summary.resources = changed.len() as u64;
        summary.rows = self.rows();
        Ok(summary)
    }

    /// Writes the rows of `inputs` (each part's rows, only those marked `true` when a mask is
    /// given) into part `number`, answering how many it holds.
    fn rewrite(
        &self,
        inputs: &[(&Part, Option<&Vec<bool>>)],
        number: u64,
    ) -> Result<u64, DatasetError> {
        let target = self.dir.join(Part { number, rows: 0 }.file_name());
        let file = File::create(&target).map_err(io(&target))?;
        let schema = Arc::new(schema(&self.view));
        let mut writer = ArrowWriter::try_new(BufWriter::new(file), schema, Some(properties()))
            .map_err(|e| DatasetError::Read(e.to_string()))?;
        let mut rows = 0u64;
        for (part, mask) in inputs {
            let path = self.dir.join(part.file_name());
            let file = File::open(&path).map_err(io(&path))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.build())
                .map_err(|e| DatasetError::Read(format!("{}: {e}", path.display())))?;
            let mut at = 0usize;
            for batch in reader {
                let batch =
                    batch.map_err(|e| DatasetError::Read(format!("{}: {e}", path.display())))?;
                let length = batch.num_rows();
                let batch = match mask {
                    None => batch,
                    Some(mask) => {
                        let Some(slice) = mask.get(at..at + length) else {
                            return Err(DatasetError::Corrupt {
                                path: path.clone(),
                                message: "holds more rows than its keys say".into(),
                            });
                        };
                        let filter = BooleanArray::from(slice.to_vec());
                        arrow_select::filter::filter_record_batch(&batch, &filter)
                            .map_err(|e| DatasetError::Read(e.to_string()))?
                    }
                };
                at += length;
                rows += batch.num_rows() as u64;
                writer
                    .write(&batch)
                    .map_err(|e| DatasetError::Read(e.to_string()))?;
            }
        }
        let mut out = writer
            .into_inner()
            .map_err(|e| DatasetError::Read(e.to_string()))?;
        out.flush().map_err(io(&target))?;
        Ok(rows)
    }

    fn read_keys(&self, part: &Part) -> Result<Keys, DatasetError> {
        let path = self.dir.join(BOOKKEEPING).join(part.keys_name());
        let file = File::open(&path).map_err(io(&path))?;
        let mut keys = Keys::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io(&path))?;
            let parsed = line
                .split_once('\t')
                .and_then(|(id, rows)| Some((id.to_owned(), rows.parse().ok()?)));
            let Some(entry) = parsed else {
                return Err(DatasetError::Corrupt {
                    path,
                    message: format!("{line:?} is not `id<TAB>rows`"),
                });
            };
            keys.push(entry);
        }
        Ok(keys)
    }

    fn write_keys(&self, part: &Part, keys: &Keys) -> Result<(), DatasetError> {
        write_keys(&self.dir, part, keys)
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<(), DatasetError> {
        let path = self.dir.join(BOOKKEEPING).join(MANIFEST);
        let staging = self.dir.join(BOOKKEEPING).join("manifest.json.new");
        let text = serde_json::to_string_pretty(&manifest.to_json()).expect("JSON values print");
        let mut file = File::create(&staging).map_err(io(&staging))?;
        file.write_all(text.as_bytes()).map_err(io(&staging))?;
        file.sync_all().map_err(io(&staging))?;
        fs::rename(&staging, &path).map_err(io(&path))
    }

    /// Removes parts and keys the manifest does not name: what a refresh that stopped left.
    fn remove_strays(&self) -> Result<(), DatasetError> {
        let named: HashSet<String> = self
            .manifest
            .parts
            .iter()
            .flat_map(|p| [p.file_name(), p.keys_name()])
            .collect();
        for dir in [self.dir.clone(), self.dir.join(BOOKKEEPING)] {
            for entry in fs::read_dir(&dir).map_err(io(&dir))? {
                let entry = entry.map_err(io(&dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let ours = name.starts_with("part-")
                    && (name.ends_with(".parquet") || name.ends_with(".keys"));
                if ours && !named.contains(&name) {
                    remove_if_present(&entry.path())?;
                }
            }
        }
        Ok(())
    }
}

/// A full build in progress: resources are added in any order, each once.
pub struct Build {
    dir: PathBuf,
    dataset: Dataset,
    part: Option<PartWriter>,
    summary: Summary,
}

impl Build {
    /// Adds one resource's rows.
    pub fn add(&mut self, id: &str, resource: &Value) -> Result<(), DatasetError> {
        let dataset = &mut self.dataset;
        let writer = match &mut self.part {
            Some(writer) => writer,
            None => {
                let number = dataset.manifest.next_part;
                dataset.manifest.next_part += 1;
                self.part
                    .insert(PartWriter::create(&dataset.dir, &dataset.view, number)?)
            }
        };
        writer.add(&dataset.view, id, resource, &mut self.summary)?;
        self.summary.resources += 1;
        if writer.rows >= PART_ROWS {
            self.close_part()?;
        }
        Ok(())
    }

    fn close_part(&mut self) -> Result<(), DatasetError> {
        if let Some(writer) = self.part.take() {
            let (part, keys) = writer.finish()?;
            write_keys(&self.dataset.dir, &part, &keys)?;
            self.dataset.manifest.parts.push(part);
        }
        Ok(())
    }

    /// Ends the build, which replaces what `dir` held. The dataset reflects the change log up
    /// to `position`, taken before the first resource was read: a change made during the
    /// build is applied again by the next refresh. `settled` is the log's end after the last
    /// was read ([`Dataset::settled`]).
    pub fn finish(
        mut self,
        position: i64,
        settled: i64,
    ) -> Result<(Dataset, Summary), DatasetError> {
        self.close_part()?;
        let mut dataset = self.dataset;
        dataset.manifest.position = position;
        dataset.manifest.settled = settled;
        dataset.write_manifest(&dataset.manifest)?;
        let retired = sibling(&self.dir, "retired");
        if retired.exists() {
            fs::remove_dir_all(&retired).map_err(io(&retired))?;
        }
        if self.dir.exists() {
            fs::rename(&self.dir, &retired).map_err(io(&self.dir))?;
        }
        fs::rename(&dataset.dir, &self.dir).map_err(io(&self.dir))?;
        if retired.exists() {
            fs::remove_dir_all(&retired).map_err(io(&retired))?;
        }
        dataset.dir = self.dir;
        let mut summary = self.summary;
        summary.rows = dataset.rows();
        Ok((dataset, summary))
    }
}

/// One part being written, with the keys of its rows.
struct PartWriter {
    number: u64,
    path: PathBuf,
    writer: ParquetWriter<BufWriter<File>>,
    keys: Keys,
    rows: u64,
}

impl PartWriter {
    fn create(dir: &Path, view: &View, number: u64) -> Result<PartWriter, DatasetError> {
        let path = dir.join(Part { number, rows: 0 }.file_name());
        let file = File::create(&path).map_err(io(&path))?;
        Ok(PartWriter {
            number,
            writer: ParquetWriter::new(view, BufWriter::new(file))?,
            path,
            keys: Keys::new(),
            rows: 0,
        })
    }

    /// Adds a resource's rows; a row whose value does not fit is refused and counted. A
    /// resource the view cannot evaluate is refused whole, as one refusal.
    fn add(
        &mut self,
        view: &View,
        id: &str,
        resource: &Value,
        summary: &mut Summary,
    ) -> Result<(), DatasetError> {
        let rows = match view.rows(resource) {
            Ok(rows) => rows,
            Err(error) => {
                summary.rows_refused += 1;
                if summary.refused.len() < REFUSALS_KEPT {
                    summary
                        .refused
                        .push(format!("{}/{id}: {error}", view.resource()));
                }
                return Ok(());
            }
        };
        let mut written = 0u64;
        for row in &rows {
            match self.writer.write(row) {
                Ok(()) => written += 1,
                Err(error @ WriteError::Value { .. }) => {
                    summary.refuse(view.resource(), id, &error);
                }
                Err(error) => return Err(error.into()),
            }
        }
        if written > 0 {
            self.keys.push((id.to_owned(), written));
            self.rows += written;
            summary.rows_added += written;
        }
        Ok(())
    }

    fn finish(self) -> Result<(Part, Keys), DatasetError> {
        let (rows, mut out) = self.writer.finish()?;
        out.flush().map_err(io(&self.path))?;
        Ok((
            Part {
                number: self.number,
                rows,
            },
            self.keys,
        ))
    }
}

fn write_keys(dir: &Path, part: &Part, keys: &Keys) -> Result<(), DatasetError> {
    let path = dir.join(BOOKKEEPING).join(part.keys_name());
    let file = File::create(&path).map_err(io(&path))?;
    let mut out = BufWriter::new(file);
    for (id, rows) in keys {
        writeln!(out, "{id}\t{rows}").map_err(io(&path))?;
    }
    out.flush().map_err(io(&path))
}

fn remove_if_present(path: &Path) -> Result<(), DatasetError> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(io(path)(error)),
        _ => Ok(()),
    }
}

/// `dir` with `.suffix` added to its last name.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

/// What a reader of a dataset needs: the Arrow schema of its rows (from the view its manifest
/// records), its Parquet files as the last complete build or refresh left them, and how many
/// rows they hold.
pub struct Table {
    pub schema: arrow_schema::Schema,
    pub files: Vec<PathBuf>,
    pub rows: u64,
}

/// The dataset at `dir` as a reader sees it.
pub fn table_of(dir: &Path) -> Result<Table, DatasetError> {
    let path = dir.join(BOOKKEEPING).join(MANIFEST);
    let manifest = Manifest::read(dir)?.ok_or_else(|| DatasetError::Corrupt {
        path: path.clone(),
        message: "is missing".into(),
    })?;
    let view = View::parse(&manifest.view).map_err(|e| DatasetError::Corrupt {
        path,
        message: format!("its view: {e}"),
    })?;
    Ok(Table {
        schema: schema(&view),
        files: manifest.files(dir),
        rows: manifest.parts.iter().map(|p| p.rows).sum(),
    })
}

/// The datasets under `root`, by name (sorted): each directory whose name is a SQL name (a
/// view's name, the table a reader gives it) holding a manifest. `NAME.building` and
/// `NAME.retired`, a build's own, are not.
pub fn datasets_in(root: &Path) -> Result<Vec<(String, PathBuf)>, DatasetError> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io(root)(error)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(root))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let sql_name = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if sql_name && path.join(BOOKKEEPING).join(MANIFEST).is_file() {
            found.push((name, path));
        }
    }
    found.sort();
    Ok(found)
}
