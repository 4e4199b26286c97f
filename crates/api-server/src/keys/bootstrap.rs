//! First start and secret files: the `default` tenant with its admin key written to
//! `<data_dir>/admin-key`, and the terminal ticket secret. Both files are mode 0600.

use std::path::Path;

use labwright_core::terminal::TicketKey;

use super::Keys;

/// On the very first start (no tenant yet) creates the `default` tenant and an admin key, written to
/// `<data_dir>/admin-key` with mode 0600. The key never appears in logs, only the file's path.
pub async fn bootstrap(keys: &Keys, data_dir: &Path) -> anyhow::Result<()> {
    if keys.tenant_count().await? > 0 {
        return Ok(());
    }
    let (_, key) = keys
        .create_tenant("default")
        .await
        .map_err(|e| anyhow::anyhow!("creating the default tenant: {e}"))?;
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("admin-key");
    write_secret_file(&path, &key.secret, false)?;
    tracing::info!(path = %path.display(), "first start: created tenant \"default\" and its admin key; read it from this file");
    Ok(())
}

/// The key terminal tickets are signed with: `terminal_secret_file`, or
/// `<data_dir>/terminal-secret`, created (mode 0600) if it does not exist yet.
pub fn terminal_key(config: &crate::config::Config) -> anyhow::Result<TicketKey> {
    use anyhow::Context;
    let path = if config.terminal_secret_file.is_empty() {
        config.data_dir.join("terminal-secret")
    } else {
        std::path::PathBuf::from(&config.terminal_secret_file)
    };
    if config.terminal_secret_file.is_empty() && !path.exists() {
        std::fs::create_dir_all(&config.data_dir)?;
        // `create_new`: a replica starting at the same moment keeps the secret the first wrote.
        match write_secret_file(&path, &TicketKey::generate_secret(), true) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "created the terminal ticket secret; give it to the terminal gateway")
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("writing {}", path.display())),
        }
    }
    let secret = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    TicketKey::from_secret(&secret).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Writes a secret (mode 0600). `fresh`: fail with `AlreadyExists` rather than replace one.
fn write_secret_file(path: &Path, secret: &str, fresh: bool) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .create_new(fresh)
        .truncate(!fresh)
        .mode(0o600)
        .open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")
}
