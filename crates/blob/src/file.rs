//! Blobs as files under a root directory, a key's segments its path. A blob is written to a
//! temporary file beside its place and renamed over it when finished, so a reader sees the old
//! blob or the new one, never a part.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::{BlobError, BlobInfo, BlobKey, BlobStore, BlobWriter};

/// Blobs under a directory.
#[derive(Debug, Clone)]
pub struct FileBlobStore {
    root: PathBuf,
}

/// Temporary files start with this; listings skip them.
const TEMPORARY: &str = ".part-";

impl FileBlobStore {
    /// Blobs under `root`, created if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<FileBlobStore, BlobError> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(FileBlobStore { root })
    }

    /// Blobs under `root`, which is created when the first blob is written.
    pub fn new(root: impl Into<PathBuf>) -> FileBlobStore {
        FileBlobStore { root: root.into() }
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        key.segments()
            .fold(self.root.clone(), |path, s| path.join(s))
    }
}

struct FileWriter {
    temporary: PathBuf,
    target: PathBuf,
    file: Option<BufWriter<File>>,
    written: u64,
}

impl Write for FileWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("finished"))?;
        let n = file.write(bytes)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl FileWriter {
    /// Moves the written file into place, after syncing its data when `durable`.
    fn settle(mut self, durable: bool) -> Result<u64, BlobError> {
        let file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("finished"))?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        if durable {
            file.sync_data()?;
        }
        drop(file);
        std::fs::rename(&self.temporary, &self.target)?;
        Ok(self.written)
    }
}

impl BlobWriter for FileWriter {
    fn finish(self: Box<Self>) -> Result<u64, BlobError> {
        (*self).settle(true)
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

impl FileBlobStore {
    fn writer(&self, key: &BlobKey) -> Result<FileWriter, BlobError> {
        let target = self.path(key);
        let dir = target.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir)?;
        let temporary = dir.join(format!("{TEMPORARY}{}", uuid::Uuid::new_v4()));
        let file = File::create(&temporary)?;
        Ok(FileWriter {
            temporary,
            target,
            file: Some(BufWriter::with_capacity(256 * 1024, file)),
            written: 0,
        })
    }
}

impl BlobStore for FileBlobStore {
    fn create(&self, key: &BlobKey) -> Result<Box<dyn BlobWriter>, BlobError> {
        Ok(Box::new(self.writer(key)?))
    }

    /// Written and moved into place without syncing its data: no fsync for what can be made
    /// again.
    fn put_derived(&self, key: &BlobKey, bytes: &[u8]) -> Result<u64, BlobError> {
        let mut writer = self.writer(key)?;
        writer.write_all(bytes)?;
        writer.settle(false)
    }

    fn open(&self, key: &BlobKey) -> Result<Option<Box<dyn Read + Send>>, BlobError> {
        match File::open(self.path(key)) {
            Ok(file) if file.metadata()?.is_file() => Ok(Some(Box::new(file))),
            Ok(_) => Ok(None),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    fn size(&self, key: &BlobKey) -> Result<Option<u64>, BlobError> {
        match std::fs::metadata(self.path(key)) {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    fn list(&self, prefix: &BlobKey) -> Result<Vec<BlobInfo>, BlobError> {
        let mut found = Vec::new();
        let start = self.path(prefix);
        match std::fs::metadata(&start) {
            Ok(meta) if meta.is_file() => {
                found.push(BlobInfo {
                    key: prefix.clone(),
                    size: meta.len(),
                });
            }
            Ok(_) => walk(&start, prefix.as_str(), &mut found)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match std::fs::remove_file(self.path(key)) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    fn delete_prefix(&self, prefix: &BlobKey) -> Result<u64, BlobError> {
        let count = self.list(prefix)?.len() as u64;
        let path = self.path(prefix);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => Ok(count),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(error) => Err(error.into()),
        }
    }

    fn describe(&self) -> String {
        format!("file:{}", self.root.display())
    }
}

fn walk(dir: &Path, key: &str, found: &mut Vec<BlobInfo>) -> Result<(), BlobError> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TEMPORARY) {
            continue;
        }
        let Ok(child) = BlobKey::new(format!("{key}/{name}")) else {
            continue;
        };
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk(&entry.path(), child.as_str(), found)?;
        } else {
            found.push(BlobInfo {
                key: child,
                size: meta.len(),
            });
        }
    }
    Ok(())
}
