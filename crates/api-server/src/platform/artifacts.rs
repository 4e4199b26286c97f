//! Artifacts (step screenshots, reference images) in an object store: a local directory by
//! default, any S3-compatible store by config (`artifacts_url = "s3://bucket/prefix"`, credentials
//! and endpoint from the usual `AWS_*` environment variables).

use std::sync::Arc;

use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, local::LocalFileSystem, path::Path};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact store: {0}")]
    Store(#[from] object_store::Error),
    #[error("artifact store configuration: {0}")]
    Config(String),
}

#[derive(Clone)]
pub struct Artifacts {
    store: Arc<dyn ObjectStore>,
}

impl Artifacts {
    /// `file:///abs/dir` or a plain path (created if missing), or `s3://bucket[/prefix]`.
    pub fn open(url: &str) -> Result<Self, ArtifactError> {
        let store: Arc<dyn ObjectStore> = if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()?;
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
            }
        } else {
            let dir = url.strip_prefix("file://").unwrap_or(url);
            private_dir(std::path::Path::new(dir))
                .map_err(|e| ArtifactError::Config(format!("{dir}: {e}")))?;
            Arc::new(LocalFileSystem::new_with_prefix(dir)?)
        };
        Ok(Self { store })
    }

    /// Stores `bytes` under `key` (idempotent: the same key gets the same bytes again).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ArtifactError> {
        self.store
            .put(&Path::from(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, ArtifactError> {
        Ok(self.store.get(&Path::from(key)).await?.bytes().await?)
    }
}

/// Creates `dir` (and its parents) if missing and makes it 0700: screenshots and reference
/// images are written by the object store with the process's umask, so the directory is what
/// keeps them from other users of the machine.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Object key of a step's screenshot.
pub fn step_screenshot_key(tenant: uuid::Uuid, execution: uuid::Uuid, index: u32) -> String {
    format!("tenants/{tenant}/executions/{execution}/steps/{index:05}.jpg")
}

/// Object key of an execution's console log.
pub fn console_log_key(tenant: uuid::Uuid, execution: uuid::Uuid) -> String {
    format!("tenants/{tenant}/executions/{execution}/console.log")
}

/// Object key of a reference image version.
pub fn reference_key(tenant: uuid::Uuid, name: &str, sha256: &str) -> String {
    format!("tenants/{tenant}/references/{name}/{sha256}.png")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_store_round_trips() {
        let dir =
            std::env::temp_dir().join(format!("lw-artifacts-{}", uuid::Uuid::new_v4().simple()));
        let a = Artifacts::open(dir.to_str().expect("utf8")).expect("open");
        a.put("x/y.jpg", b"jpeg".to_vec()).await.expect("put");
        assert_eq!(&a.get("x/y.jpg").await.expect("get")[..], b"jpeg");
        assert!(a.get("missing").await.is_err());
        assert!(dir.join("x/y.jpg").exists());
    }
}
