//! The host side: connect (CNXN with version and payload negotiation, AUTH with the host key),
//! then services on the device — `shell,v2` with separate stdout/stderr and the exit code,
//! `exec:` for binary output, sync STAT/LIST/SEND/RECV for push and pull, and a persistent
//! shell for fast repeated commands. Every call has a timeout; a timed-out call closes its
//! stream and leaves the connection usable; a dropped connection is `Unavailable`.

use crate::auth::AdbKey;
use crate::error::{AdbError, Result};
use crate::mux::{AdbStream, Mux};
use crate::packet::{
    self, A_AUTH, A_CNXN, AUTH_RSAPUBLICKEY, AUTH_SIGNATURE, AUTH_TOKEN, MAX_PAYLOAD, Packet,
    PacketReader, VERSION,
};
use crate::protocol::{self, DirEntry, FileStat, shell_id};
use crate::transport::AdbTransport;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Features this host asks for.
const HOST_FEATURES: &str = "shell_v2,cmd,fixed_push_mkdir";

/// How a host connection behaves.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// How long the handshake may take when the device already trusts the key.
    pub handshake_timeout: Duration,
    /// How long to wait for a person to accept the key after offering it.
    pub auth_timeout: Duration,
    /// The default timeout of each call.
    pub call_timeout: Duration,
    /// Streams open at once on this connection.
    pub max_streams: usize,
    /// The largest output `shell`/`exec` collect.
    pub max_output: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            handshake_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(30),
            max_streams: 256,
            max_output: 256 << 20,
        }
    }
}

/// What the device said about itself in its CNXN.
#[derive(Debug, Clone, Default)]
pub struct DeviceInfo {
    pub version: u32,
    pub max_payload: u32,
    /// `device`, `recovery`, … (the banner's first field).
    pub state: String,
    /// `ro.product.name` and friends, `features`.
    pub properties: Vec<(String, String)>,
    pub features: Vec<String>,
}

impl DeviceInfo {
    fn parse(version: u32, max_payload: u32, banner: &[u8]) -> DeviceInfo {
        let banner = String::from_utf8_lossy(banner)
            .trim_end_matches('\0')
            .to_string();
        let mut parts = banner.splitn(3, ':');
        let state = parts.next().unwrap_or("").to_string();
        let _serial = parts.next();
        let mut info = DeviceInfo {
            version,
            max_payload,
            state,
            ..Default::default()
        };
        for kv in parts
            .next()
            .unwrap_or("")
            .split(';')
            .filter(|s| !s.is_empty())
        {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            if k == "features" {
                info.features = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
            }
            info.properties.push((k.to_string(), v.to_string()));
        }
        info
    }

    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The result of a `shell,v2` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// A connection to one device.
pub struct AdbClient {
    mux: Arc<Mux>,
    reader: tokio::task::JoinHandle<AdbError>,
    info: DeviceInfo,
    options: ConnectOptions,
}

impl Drop for AdbClient {
    fn drop(&mut self) {
        self.reader.abort();
        self.mux.kill("client dropped".into());
    }
}

impl AdbClient {
    /// Connects over TCP (`host:port`).
    pub async fn connect_tcp(
        addr: &str,
        key: &AdbKey,
        options: ConnectOptions,
    ) -> Result<AdbClient> {
        let stream = crate::transport::connect_tcp(addr, options.handshake_timeout).await?;
        AdbClient::connect(stream, key, options).await
    }

    /// Handshakes over `transport` and starts the connection's reader.
    pub async fn connect<T: AdbTransport>(
        transport: T,
        key: &AdbKey,
        options: ConnectOptions,
    ) -> Result<AdbClient> {
        let peer = transport.describe();
        let (r, mut w) = Box::new(transport).split();
        let mut r = PacketReader::new(r, MAX_PAYLOAD, true);
        let banner = format!("host::features={HOST_FEATURES}\0").into_bytes();
        packet::write_packet(&mut *w, &Packet::new(A_CNXN, VERSION, MAX_PAYLOAD, banner)).await?;
        let mut signed = false;
        let mut offered: Option<tokio::time::Instant> = None;
        let start = tokio::time::Instant::now();
        let cnxn = loop {
            let deadline = match offered {
                Some(t) => t + options.auth_timeout,
                None => start + options.handshake_timeout,
            };
            let p = match tokio::time::timeout_at(deadline, r.next()).await {
                Ok(p) => p?,
                Err(_) if offered.is_some() => {
                    return Err(AdbError::Unauthorized {
                        fingerprint: key.fingerprint(),
                    });
                }
                Err(_) => return Err(AdbError::Timeout(options.handshake_timeout)),
            };
            match (p.command, p.arg0) {
                (A_CNXN, _) => break p,
                (A_AUTH, AUTH_TOKEN) if !signed => {
                    signed = true;
                    let sig = key.sign_token(&p.payload)?;
                    packet::write_packet(&mut *w, &Packet::new(A_AUTH, AUTH_SIGNATURE, 0, sig))
                        .await?;
                }
                (A_AUTH, AUTH_TOKEN) if offered.is_none() => {
                    let mut pk = key.public_key_text().into_bytes();
                    pk.push(0);
                    packet::write_packet(&mut *w, &Packet::new(A_AUTH, AUTH_RSAPUBLICKEY, 0, pk))
                        .await?;
                    tracing::warn!(%peer, fingerprint = %key.fingerprint(), "adb key offered; accept it on the device");
                    offered = Some(tokio::time::Instant::now());
                }
                (A_AUTH, _) => {}
                (other, _) => {
                    return Err(AdbError::Protocol(format!(
                        "unexpected {} during the handshake",
                        packet::command_name(other)
                    )));
                }
            }
        };
        let info = DeviceInfo::parse(cnxn.arg0, cnxn.arg1, &cnxn.payload);
        let version = info.version.min(VERSION);
        let max_send = info.max_payload.min(MAX_PAYLOAD);
        let mux = Mux::new(w, max_send, options.max_streams, peer);
        r.verify_checksum = version < VERSION;
        let reader = tokio::spawn(mux.clone().run_reader(r, None));
        Ok(AdbClient {
            mux,
            reader,
            info,
            options,
        })
    }

    pub fn device(&self) -> &DeviceInfo {
        &self.info
    }

    /// Whether the connection is still up (false once the device went away).
    pub fn is_connected(&self) -> bool {
        self.mux.dead_reason().is_none()
    }

    async fn timed<T>(
        &self,
        timeout: Duration,
        f: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(AdbError::Timeout(timeout)),
        }
    }

    /// Opens a raw service stream (`shell,v2,raw:…`, `exec:…`, `sync:`, …).
    pub async fn open(&self, service: &str) -> Result<AdbStream> {
        self.timed(self.options.call_timeout, self.mux.open(service))
            .await
    }

    /// Runs `command` through `shell,v2`, with the default timeout.
    pub async fn shell(&self, command: &str) -> Result<ShellOutput> {
        self.shell_with_timeout(command, self.options.call_timeout)
            .await
    }

    /// Runs `command` through `shell,v2`; at `timeout` the stream is closed and the call fails.
    pub async fn shell_with_timeout(
        &self,
        command: &str,
        timeout: Duration,
    ) -> Result<ShellOutput> {
        let limit = self.options.max_output;
        self.timed(timeout, async {
            let stream = self.mux.open(&format!("shell,v2,raw:{command}")).await?;
            let (mut r, mut w) = stream.split();
            // A command that needs no input may have finished, and its stream closed, before
            // this arrives: its output and exit code are still read below.
            let _ = w
                .write(&protocol::shell_packet(shell_id::CLOSE_STDIN, &[]))
                .await;
            let mut out = ShellOutput {
                stdout: Vec::new(),
                stderr: Vec::new(),
                exit_code: -1,
            };
            let mut exited = false;
            while let Some((id, data)) = protocol::read_shell_packet(&mut r).await? {
                match id {
                    shell_id::STDOUT => out.stdout.extend_from_slice(&data),
                    shell_id::STDERR => out.stderr.extend_from_slice(&data),
                    shell_id::EXIT => {
                        out.exit_code = i32::from(data.first().copied().unwrap_or(255));
                        exited = true;
                        break;
                    }
                    _ => {}
                }
                if out.stdout.len() + out.stderr.len() > limit {
                    return Err(AdbError::Protocol(format!(
                        "output over the limit of {limit} bytes"
                    )));
                }
            }
            let _ = w.close().await;
            if !exited {
                return Err(AdbError::Protocol(
                    "shell stream ended without an exit code".into(),
                ));
            }
            Ok(out)
        })
        .await
    }

    /// Runs `command` through `exec:` and returns its raw stdout.
    pub async fn exec(&self, command: &str) -> Result<Vec<u8>> {
        let limit = self.options.max_output;
        self.timed(self.options.call_timeout, async {
            let stream = self.mux.open(&format!("exec:{command}")).await?;
            let (mut r, _w) = stream.split();
            r.read_to_end(limit).await
        })
        .await
    }

    /// Opens a shell that stays running: commands written to it skip a process start each.
    pub async fn persistent_shell(&self) -> Result<PersistentShell> {
        let stream = self.open("shell,v2,raw:").await?;
        Ok(PersistentShell {
            stream,
            pending: Vec::new(),
            seq: 0,
            timeout: self.options.call_timeout,
        })
    }

    async fn sync(&self) -> Result<AdbStream> {
        self.mux.open("sync:").await
    }

    /// Sync STAT.
    pub async fn stat(&self, path: &str) -> Result<FileStat> {
        self.timed(self.options.call_timeout, async {
            let mut s = self.sync().await?;
            s.write(&protocol::sync_message(
                protocol::ID_STAT,
                path.len() as u32,
                path.as_bytes(),
            ))
            .await?;
            let b = s.read_exact(16).await?;
            if b[..4] != protocol::ID_STAT {
                return Err(AdbError::Protocol("bad STAT reply".into()));
            }
            let [_, mode, size, mtime] = protocol::le_words::<4>(&b);
            let _ = s.close().await;
            Ok(FileStat { mode, size, mtime })
        })
        .await
    }

    /// Sync LIST.
    pub async fn list(&self, path: &str) -> Result<Vec<DirEntry>> {
        self.timed(self.options.call_timeout, async {
            let mut s = self.sync().await?;
            s.write(&protocol::sync_message(
                protocol::ID_LIST,
                path.len() as u32,
                path.as_bytes(),
            ))
            .await?;
            let mut out = Vec::new();
            loop {
                let b = s.read_exact(20).await?;
                let [_, mode, size, mtime, namelen] = protocol::le_words::<5>(&b);
                match [b[0], b[1], b[2], b[3]] {
                    protocol::ID_DONE => break,
                    protocol::ID_DENT if (namelen as usize) <= protocol::SYNC_MAX_PATH => {
                        let name = s.read_exact(namelen as usize).await?;
                        out.push(DirEntry {
                            name: String::from_utf8_lossy(&name).into_owned(),
                            stat: FileStat { mode, size, mtime },
                        });
                    }
                    _ => return Err(AdbError::Protocol("bad LIST reply".into())),
                }
            }
            let _ = s.close().await;
            Ok(out)
        })
        .await
    }

    /// Pushes a local file to `remote` (mode 0644), with a timeout that grows with its size.
    pub async fn push_file(&self, local: &Path, remote: &str) -> Result<()> {
        let size = tokio::fs::metadata(local).await?.len();
        let mut file = tokio::fs::File::open(local).await?;
        let timeout = self.transfer_timeout(size);
        self.timed(timeout, async {
            let mut s = self.sync().await?;
            let header = format!("{remote},{}", 0o100644);
            let mut batch =
                protocol::sync_message(protocol::ID_SEND, header.len() as u32, header.as_bytes());
            let max = s.max_payload();
            let mut chunk = vec![0u8; protocol::SYNC_DATA_MAX];
            loop {
                let n = read_full(&mut file, &mut chunk).await?;
                if n == 0 {
                    break;
                }
                if batch.len() + 8 + n > max {
                    s.write(&batch).await?;
                    batch.clear();
                }
                batch.extend_from_slice(&protocol::sync_message(
                    protocol::ID_DATA,
                    n as u32,
                    &chunk[..n],
                ));
            }
            let mtime = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as u32)
                .unwrap_or(0);
            batch.extend_from_slice(&protocol::sync_message(protocol::ID_DONE, mtime, &[]));
            s.write(&batch).await?;
            let h = s.read_exact(8).await?;
            let (id, len) = (
                [h[0], h[1], h[2], h[3]],
                u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
            );
            match id {
                protocol::ID_OKAY => {
                    let _ = s.close().await;
                    Ok(())
                }
                protocol::ID_FAIL => {
                    let msg = s
                        .read_exact((len as usize).min(protocol::SYNC_MAX_PATH * 4))
                        .await?;
                    Err(AdbError::SyncFailed(
                        String::from_utf8_lossy(&msg).into_owned(),
                    ))
                }
                _ => Err(AdbError::Protocol("bad SEND reply".into())),
            }
        })
        .await
    }

    /// Pulls `remote` into a local file, with a timeout that grows with its size.
    pub async fn pull_file(&self, remote: &str, local: &Path) -> Result<u64> {
        let st = self.stat(remote).await?;
        if !st.exists() {
            return Err(AdbError::SyncFailed(format!(
                "remote object '{remote}' does not exist"
            )));
        }
        let timeout = self.transfer_timeout(u64::from(st.size));
        self.timed(timeout, async {
            let mut s = self.sync().await?;
            s.write(&protocol::sync_message(
                protocol::ID_RECV,
                remote.len() as u32,
                remote.as_bytes(),
            ))
            .await?;
            let tmp = local.with_extension("lw-partial");
            let mut file = tokio::fs::File::create(&tmp).await?;
            let mut total = 0u64;
            loop {
                let h = s.read_exact(8).await?;
                let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
                match [h[0], h[1], h[2], h[3]] {
                    protocol::ID_DATA if len <= protocol::SYNC_DATA_MAX => {
                        let data = s.read_exact(len).await?;
                        file.write_all(&data).await?;
                        total += len as u64;
                    }
                    protocol::ID_DONE => break,
                    protocol::ID_FAIL => {
                        let msg = s.read_exact(len.min(protocol::SYNC_MAX_PATH * 4)).await?;
                        let _ = tokio::fs::remove_file(&tmp).await;
                        return Err(AdbError::SyncFailed(
                            String::from_utf8_lossy(&msg).into_owned(),
                        ));
                    }
                    _ => {
                        let _ = tokio::fs::remove_file(&tmp).await;
                        return Err(AdbError::Protocol(format!("bad RECV reply of {len} bytes")));
                    }
                }
            }
            file.flush().await?;
            drop(file);
            tokio::fs::rename(&tmp, local).await?;
            let _ = s.close().await;
            Ok(total)
        })
        .await
    }

    /// The call timeout plus one second per 8 MB (a slow link must not fail big transfers).
    fn transfer_timeout(&self, size: u64) -> Duration {
        self.options.call_timeout + Duration::from_secs(size / (8 << 20))
    }
}

async fn read_full(f: &mut tokio::fs::File, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = f.read(&mut buf[n..]).await?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

/// A shell kept open on the device: each command is written to its stdin and its end found by
/// a marker echoed after it, so repeated commands (key presses) pay no process start.
pub struct PersistentShell {
    stream: AdbStream,
    pending: Vec<u8>,
    seq: u64,
    timeout: Duration,
}

impl PersistentShell {
    /// Runs one command line; returns its stdout (stderr is dropped). After a timeout the
    /// shell's output is out of step: open a new one.
    pub async fn run(&mut self, command: &str) -> Result<Vec<u8>> {
        self.seq += 1;
        let marker = format!("__lw_done_{}__", self.seq);
        let line = format!("{command}\necho {marker}\n");
        let timeout = self.timeout;
        let fut = async {
            self.stream
                .write(&protocol::shell_packet(shell_id::STDIN, line.as_bytes()))
                .await?;
            let want = format!("{marker}\n").into_bytes();
            loop {
                if let Some(at) = find(&self.pending, &want) {
                    let out = self.pending[..at].to_vec();
                    self.pending.drain(..at + want.len());
                    return Ok(out);
                }
                let head = self.stream.read_exact(5).await?;
                let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
                if len > protocol::SHELL_MAX_PACKET {
                    return Err(AdbError::Protocol(format!("shell packet of {len} bytes")));
                }
                let data = self.stream.read_exact(len).await?;
                match head[0] {
                    shell_id::STDOUT => self.pending.extend_from_slice(&data),
                    shell_id::EXIT => {
                        return Err(AdbError::Protocol("persistent shell exited".into()));
                    }
                    _ => {}
                }
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(AdbError::Timeout(timeout)),
        }
    }

    /// `input keyevent CODE` through the persistent shell.
    pub async fn key_event(&mut self, code: &str) -> Result<()> {
        self.run(&format!("input keyevent {code}"))
            .await
            .map(|_| ())
    }

    /// Ends the shell.
    pub async fn close(mut self) -> Result<()> {
        let _ = self
            .stream
            .write(&protocol::shell_packet(shell_id::CLOSE_STDIN, &[]))
            .await;
        self.stream.close().await
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
