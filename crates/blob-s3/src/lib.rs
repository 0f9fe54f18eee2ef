//! Blobs in S3-compatible object storage (AWS S3, MinIO, Ceph RGW, ...) through the
//! `object_store` crate, behind the synchronous [`BlobStore`] trait: a runtime of its own drives
//! the client, so callers on blocking threads (or plain threads) use it like the filesystem
//! store. Writes are multipart uploads that become visible when finished and are aborted when
//! dropped; reads stream.

use std::io::{Read, Write};
use std::sync::Arc;

use blob::{BlobError, BlobInfo, BlobKey, BlobStore, BlobWriter};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;

/// Where the blobs live in S3-compatible storage.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `https://s3.cn-north-1.amazonaws.com.cn`, `http://127.0.0.1:9000` (MinIO), ...
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Keys are stored under this prefix (without slashes at its ends), if any.
    pub prefix: Option<String>,
}

impl std::fmt::Debug for S3Config {
    /// Everything but the secret key, which never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"(hidden)")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Blobs in one bucket.
pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    runtime: Arc<Runtime>,
    config: S3Config,
}

impl S3BlobStore {
    pub fn open(config: S3Config) -> Result<S3BlobStore, BlobError> {
        let store = AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_allow_http(config.endpoint.starts_with("http://"))
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .build()
            .map_err(unavailable)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("blob-s3")
            .enable_all()
            .build()
            .map_err(|e| BlobError::Unavailable(format!("starting the S3 client: {e}")))?;
        Ok(S3BlobStore {
            store: Arc::new(store),
            runtime: Arc::new(runtime),
            config,
        })
    }

    fn path(&self, key: &BlobKey) -> Path {
        match &self.config.prefix {
            Some(prefix) => Path::from(format!("{prefix}/{key}")),
            None => Path::from(key.as_str()),
        }
    }

    /// The blob key of an object path (`None` for objects outside the prefix or not keys).
    fn key_of(&self, path: &Path) -> Option<BlobKey> {
        let text = path.as_ref();
        let text = match &self.config.prefix {
            Some(prefix) => text.strip_prefix(prefix.as_str())?.strip_prefix('/')?,
            None => text,
        };
        BlobKey::new(text).ok()
    }
}

fn unavailable(error: object_store::Error) -> BlobError {
    BlobError::Unavailable(error.to_string())
}

struct S3Writer {
    writer: Option<BufWriter>,
    runtime: Arc<Runtime>,
    written: u64,
}

impl Write for S3Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| std::io::Error::other("finished"))?;
        self.runtime.block_on(writer.write_all(bytes))?;
        self.written += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Parts go up as they fill; the whole becomes visible at finish.
        Ok(())
    }
}

impl BlobWriter for S3Writer {
    fn finish(mut self: Box<Self>) -> Result<u64, BlobError> {
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| std::io::Error::other("finished"))?;
        self.runtime.block_on(writer.shutdown())?;
        Ok(self.written)
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            // An unfinished upload leaves nothing visible; abort it so its parts go too.
            let _ = self.runtime.block_on(writer.abort());
        }
    }
}

/// An object's bytes as a `Read`, chunk by chunk as they arrive.
struct S3Reader {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    runtime: Arc<Runtime>,
    chunk: Bytes,
}

impl Read for S3Reader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(error)) => return Err(std::io::Error::other(error)),
                None => return Ok(0),
            }
        }
        let n = buffer.len().min(self.chunk.len());
        buffer[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

impl BlobStore for S3BlobStore {
    fn create(&self, key: &BlobKey) -> Result<Box<dyn BlobWriter>, BlobError> {
        let writer = {
            let _entered = self.runtime.enter();
            BufWriter::new(Arc::clone(&self.store), self.path(key))
        };
        Ok(Box::new(S3Writer {
            writer: Some(writer),
            runtime: Arc::clone(&self.runtime),
            written: 0,
        }))
    }

    fn open(&self, key: &BlobKey) -> Result<Option<Box<dyn Read + Send>>, BlobError> {
        match self.runtime.block_on(self.store.get(&self.path(key))) {
            Ok(result) => Ok(Some(Box::new(S3Reader {
                stream: result.into_stream(),
                runtime: Arc::clone(&self.runtime),
                chunk: Bytes::new(),
            }))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(unavailable(error)),
        }
    }

    fn size(&self, key: &BlobKey) -> Result<Option<u64>, BlobError> {
        match self.runtime.block_on(self.store.head(&self.path(key))) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(unavailable(error)),
        }
    }

    fn list(&self, prefix: &BlobKey) -> Result<Vec<BlobInfo>, BlobError> {
        let path = self.path(prefix);
        let listed: Vec<object_store::Result<object_store::ObjectMeta>> = self
            .runtime
            .block_on(self.store.list(Some(&path)).collect());
        let mut found = Vec::new();
        for meta in listed {
            let meta = meta.map_err(unavailable)?;
            if let Some(key) = self.key_of(&meta.location)
                && key.starts_with(prefix)
            {
                found.push(BlobInfo {
                    key,
                    size: meta.size,
                });
            }
        }
        // A prefix that is itself a blob lists it too.
        if let Some(size) = self.size(prefix)?
            && !found.iter().any(|b| b.key == *prefix)
        {
            found.push(BlobInfo {
                key: prefix.clone(),
                size,
            });
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match self.runtime.block_on(self.store.delete(&self.path(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    fn describe(&self) -> String {
        match &self.config.prefix {
            Some(prefix) => format!(
                "s3://{}/{prefix} at {}",
                self.config.bucket, self.config.endpoint
            ),
            None => format!("s3://{} at {}", self.config.bucket, self.config.endpoint),
        }
    }
}
