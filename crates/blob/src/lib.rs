//! Object storage for large files: Bulk Data export files now, DICOM instances later. One
//! trait, [`BlobStore`], written and read as streams; a filesystem implementation here
//! ([`FileBlobStore`]) and S3-compatible storage in `blob-s3`. Domain services see only the
//! trait; which implementation serves is the command line's configuration. Synchronous, like
//! the store: callers run on blocking threads.

mod file;
mod key;

use std::io::{Read, Write};

pub use file::FileBlobStore;
pub use key::BlobKey;

/// What went wrong in a blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The key is not a valid blob key (see [`BlobKey`]).
    #[error("invalid blob key: {0}")]
    InvalidKey(String),
    /// The storage cannot be reached or refused the operation.
    #[error("blob storage unavailable: {0}")]
    Unavailable(String),
    /// Reading or writing failed.
    #[error("blob storage i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// A blob being written: bytes go in with [`Write`]; nothing is visible under the key until
/// [`BlobWriter::finish`], and a writer dropped unfinished leaves nothing behind.
pub trait BlobWriter: Write + Send {
    /// Makes the blob visible under its key (replacing what was there) and answers its size.
    fn finish(self: Box<Self>) -> Result<u64, BlobError>;
}

/// A stored blob's key and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub key: BlobKey,
    pub size: u64,
}

/// Where large files live.
pub trait BlobStore: Send + Sync {
    /// Starts writing `key`.
    fn create(&self, key: &BlobKey) -> Result<Box<dyn BlobWriter>, BlobError>;

    /// Reads `key`, or `None` when there is no such blob.
    fn open(&self, key: &BlobKey) -> Result<Option<Box<dyn Read + Send>>, BlobError>;

    /// The size of `key`, or `None` when there is no such blob.
    fn size(&self, key: &BlobKey) -> Result<Option<u64>, BlobError>;

    /// The blobs whose keys start with `prefix` (whole segments), in key order.
    fn list(&self, prefix: &BlobKey) -> Result<Vec<BlobInfo>, BlobError>;

    /// Removes `key`; nothing happens when there is no such blob.
    fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;

    /// Removes every blob under `prefix` and answers how many there were.
    fn delete_prefix(&self, prefix: &BlobKey) -> Result<u64, BlobError> {
        let blobs = self.list(prefix)?;
        for blob in &blobs {
            self.delete(&blob.key)?;
        }
        Ok(blobs.len() as u64)
    }

    /// Where the blobs live, for logs (`file:/var/lib/meridian/blobs`, `s3://bucket/prefix`).
    fn describe(&self) -> String;

    /// Writes `bytes` under `key` at once.
    fn put(&self, key: &BlobKey, bytes: &[u8]) -> Result<u64, BlobError> {
        let mut writer = self.create(key)?;
        writer.write_all(bytes)?;
        writer.finish()
    }

    /// Writes `bytes` under `key` that can be made again from other blobs (a cache, an index of
    /// one): a store may skip what makes a write durable, so after a crash the blob may be
    /// missing or damaged and its reader must make it again. By default, as `put`.
    fn put_derived(&self, key: &BlobKey, bytes: &[u8]) -> Result<u64, BlobError> {
        self.put(key, bytes)
    }

    /// Reads all of `key`.
    fn get(&self, key: &BlobKey) -> Result<Option<Vec<u8>>, BlobError> {
        let Some(mut reader) = self.open(key)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    }
}
