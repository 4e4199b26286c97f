//! Recordings of terminals in asciicast v2 (the asciinema format: a JSON header line, then one
//! `[seconds, "o" | "r", data]` line per output chunk or resize), spooled to a local file while
//! the terminal is open and stored in the object store when it closes. Keystrokes are not
//! recorded (they would include passwords); their echo is.

use std::{path::PathBuf, sync::Arc, time::Instant};

use bytes::Bytes;
use object_store::{
    ObjectStore, ObjectStoreExt, PutPayload, local::LocalFileSystem, path::Path as StorePath,
};
use tokio::io::{AsyncWriteExt, BufWriter};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("recording store: {0}")]
    Store(#[from] object_store::Error),
    #[error("recording spool: {0}")]
    Io(#[from] std::io::Error),
    #[error("recording store configuration: {0}")]
    Config(String),
}

/// Where recordings go.
#[derive(Clone)]
pub struct Recordings {
    store: Arc<dyn ObjectStore>,
    spool: PathBuf,
    max_bytes: u64,
}

impl Recordings {
    /// `file:///abs/dir` or a plain path (created if missing), or `s3://bucket[/prefix]`.
    pub fn open(url: &str, max_mib: u64) -> Result<Self, RecordingError> {
        let store: Arc<dyn ObjectStore> = match url.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()?;
                match prefix {
                    "" => Arc::new(s3),
                    p => Arc::new(object_store::prefix::PrefixStore::new(s3, p)),
                }
            }
            None => {
                let dir = url.strip_prefix("file://").unwrap_or(url);
                std::fs::create_dir_all(dir)
                    .map_err(|e| RecordingError::Config(format!("{dir}: {e}")))?;
                Arc::new(LocalFileSystem::new_with_prefix(dir)?)
            }
        };
        let spool =
            std::env::temp_dir().join(format!("labwright-recordings-{}", std::process::id()));
        std::fs::create_dir_all(&spool)?;
        Ok(Self {
            store,
            spool,
            max_bytes: max_mib * 1024 * 1024,
        })
    }

    /// Object key of a terminal's recording.
    pub fn key(tenant: Uuid, session: Uuid, terminal: Uuid) -> String {
        format!("tenants/{tenant}/sessions/{session}/terminals/{terminal}.cast")
    }

    pub async fn start(
        &self,
        key: String,
        terminal: Uuid,
        cols: u16,
        rows: u16,
        term: &str,
        title: &str,
    ) -> Result<Recording, RecordingError> {
        let path = self.spool.join(format!("{}.cast", terminal.simple()));
        let file = tokio::fs::File::create(&path).await?;
        let header = serde_json::json!({
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": chrono::Utc::now().timestamp(),
            "env": {"TERM": term},
            "title": title,
        });
        let mut r = Recording {
            out: BufWriter::with_capacity(64 * 1024, file),
            path,
            key,
            start: Instant::now(),
            written: 0,
            max_bytes: self.max_bytes,
            full: false,
            store: self.store.clone(),
        };
        r.line(format!("{header}\n")).await?;
        Ok(r)
    }

    /// Reads a stored recording back (tests, audit tools).
    pub async fn get(&self, key: &str) -> Result<Bytes, RecordingError> {
        Ok(self.store.get(&StorePath::from(key)).await?.bytes().await?)
    }
}

/// One terminal's recording in progress.
pub struct Recording {
    out: BufWriter<tokio::fs::File>,
    path: PathBuf,
    key: String,
    start: Instant,
    written: u64,
    max_bytes: u64,
    full: bool,
    store: Arc<dyn ObjectStore>,
}

impl Recording {
    async fn line(&mut self, line: String) -> Result<(), RecordingError> {
        if self.full {
            return Ok(());
        }
        if self.written + line.len() as u64 > self.max_bytes {
            self.full = true;
            let note = format!(
                "[{:.6}, \"o\", \"\\r\\n[labwright: recording stopped at its size limit]\\r\\n\"]\n",
                self.start.elapsed().as_secs_f64()
            );
            self.out.write_all(note.as_bytes()).await?;
            return Ok(());
        }
        self.written += line.len() as u64;
        self.out.write_all(line.as_bytes()).await?;
        Ok(())
    }

    /// Output, cut on character boundaries by the caller.
    pub async fn output(&mut self, bytes: &[u8]) -> Result<(), RecordingError> {
        let text = String::from_utf8_lossy(bytes);
        let data = serde_json::to_string(&text).unwrap_or_default();
        self.line(format!(
            "[{:.6}, \"o\", {data}]\n",
            self.start.elapsed().as_secs_f64()
        ))
        .await
    }

    pub async fn resize(&mut self, cols: u16, rows: u16) -> Result<(), RecordingError> {
        self.line(format!(
            "[{:.6}, \"r\", \"{cols}x{rows}\"]\n",
            self.start.elapsed().as_secs_f64()
        ))
        .await
    }

    /// Stores the recording and removes its spool file.
    pub async fn finish(mut self) -> Result<String, RecordingError> {
        self.out.flush().await?;
        drop(self.out);
        let bytes = tokio::fs::read(&self.path).await?;
        let stored = self
            .store
            .put(&StorePath::from(self.key.as_str()), PutPayload::from(bytes))
            .await;
        let _ = tokio::fs::remove_file(&self.path).await;
        stored?;
        Ok(self.key)
    }
}
