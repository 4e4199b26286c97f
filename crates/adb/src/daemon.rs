//! The device side of ADB (what `adbd` does on a phone), for the simulated phone: AUTH against
//! trusted host keys (an unknown key waits, "unauthorized", until someone accepts it), the
//! `shell,v2`, legacy `shell:` and `exec:` services through a pluggable [`ShellHandler`], and
//! sync confined to a sandbox directory (paths with `..` or through symlinks out of it are
//! refused).

use crate::auth::{self, fingerprint};
use crate::error::{AdbError, Result};
use crate::mux::{AdbStream, Mux, OpenHandler, ServiceStarter, StreamReader, StreamWriter};
use crate::packet::{
    self, A_AUTH, A_CNXN, AUTH_RSAPUBLICKEY, AUTH_SIGNATURE, AUTH_TOKEN, MAX_PAYLOAD, Packet,
    PacketReader, VERSION,
};
use crate::protocol::{self, shell_id};
use crate::transport::AdbTransport;
use rand_core::RngCore as _;
use rsa::RsaPublicKey;
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, watch};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A host key that asked to be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingKey {
    /// MD5 fingerprint, `AB:CD:…`.
    pub fingerprint: String,
    /// The key as offered (`<base64> <name>`).
    pub text: String,
}

#[derive(Default)]
struct KeyState {
    trusted: Vec<(Vec<u8>, RsaPublicKey)>,
    pending: Vec<(Vec<u8>, RsaPublicKey, PendingKey)>,
}

/// The host keys this device accepts, and those waiting for a person to accept them.
#[derive(Clone)]
pub struct TrustedKeys {
    state: Arc<Mutex<KeyState>>,
    changed: Arc<watch::Sender<u64>>,
}

impl Default for TrustedKeys {
    fn default() -> Self {
        TrustedKeys {
            state: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
        }
    }
}

impl TrustedKeys {
    /// Trusts a key given as `adbkey.pub` text; returns its fingerprint.
    pub fn trust_public_key(&self, text: &str) -> Result<String> {
        let (raw, key) = auth::parse_public_key(text.as_bytes())?;
        let fp = fingerprint(&raw);
        {
            let mut s = lock(&self.state);
            s.pending.retain(|(r, _, _)| *r != raw);
            if !s.trusted.iter().any(|(r, _)| *r == raw) {
                s.trusted.push((raw, key));
            }
        }
        self.changed.send_modify(|g| *g += 1);
        Ok(fp)
    }

    /// Accepts a pending key by its fingerprint (what tapping "Allow" does); false if none.
    pub fn accept(&self, fingerprint: &str) -> bool {
        let found = {
            let mut s = lock(&self.state);
            match s
                .pending
                .iter()
                .position(|(_, _, p)| p.fingerprint == fingerprint)
            {
                Some(i) => {
                    let (raw, key, _) = s.pending.remove(i);
                    s.trusted.push((raw, key));
                    true
                }
                None => false,
            }
        };
        if found {
            self.changed.send_modify(|g| *g += 1);
        }
        found
    }

    /// Keys offered by hosts and not accepted yet.
    pub fn pending(&self) -> Vec<PendingKey> {
        lock(&self.state)
            .pending
            .iter()
            .map(|(_, _, p)| p.clone())
            .collect()
    }

    fn is_trusted(&self, raw: &[u8]) -> bool {
        lock(&self.state).trusted.iter().any(|(r, _)| r == raw)
    }

    fn verify(&self, token: &[u8], signature: &[u8]) -> bool {
        let keys: Vec<RsaPublicKey> = lock(&self.state)
            .trusted
            .iter()
            .map(|(_, k)| k.clone())
            .collect();
        keys.iter().any(|k| auth::verify_token(k, token, signature))
    }

    fn offer(&self, raw: Vec<u8>, key: RsaPublicKey, text: String) -> String {
        let fp = fingerprint(&raw);
        let mut s = lock(&self.state);
        if !s.pending.iter().any(|(r, _, _)| *r == raw) {
            tracing::info!(fingerprint = %fp, "adb host key waiting to be accepted");
            s.pending.push((
                raw,
                key,
                PendingKey {
                    fingerprint: fp.clone(),
                    text,
                },
            ));
        }
        fp
    }
}

/// A future that yields an exit code.
pub type ExitFuture = Pin<Box<dyn Future<Output = i32> + Send + 'static>>;

/// A command's standard streams. Dropping `stdout` and `stderr` (by returning) ends the output.
pub struct ShellIo {
    pub stdin: mpsc::Receiver<Vec<u8>>,
    pub stdout: mpsc::Sender<Vec<u8>>,
    pub stderr: mpsc::Sender<Vec<u8>>,
}

/// Runs the device's shell commands: `command` is what followed `shell:`/`exec:`; empty means
/// an interactive shell reading command lines from stdin.
pub trait ShellHandler: Send + Sync + 'static {
    fn run(&self, command: String, io: ShellIo) -> ExitFuture;
}

type BoxedRead = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// Kills a command's whole process group unless it finished (the host closed the stream or
/// the call was given up): `sh -c` leaves its children behind otherwise.
struct GroupKiller {
    pgid: Option<u32>,
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Runs commands with `/bin/sh` in a working directory, each in a process group of its own
/// (killed, children and all, when the host closes the stream first).
#[derive(Debug, Clone)]
pub struct ProcessShell {
    pub cwd: PathBuf,
}

impl ShellHandler for ProcessShell {
    fn run(&self, command: String, io: ShellIo) -> ExitFuture {
        let cwd = self.cwd.clone();
        Box::pin(async move {
            let mut cmd = tokio::process::Command::new("/bin/sh");
            if !command.is_empty() {
                cmd.arg("-c").arg(&command);
            }
            cmd.current_dir(&cwd)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let _ = io.stderr.send(format!("/bin/sh: {e}\n").into_bytes()).await;
                    return 127;
                }
            };
            let mut killer = GroupKiller { pgid: child.id() };
            let ShellIo {
                mut stdin,
                stdout,
                stderr,
            } = io;
            let child_in = child.stdin.take();
            let feed = async move {
                if let Some(mut w) = child_in {
                    while let Some(d) = stdin.recv().await {
                        if w.write_all(&d).await.is_err() {
                            break;
                        }
                    }
                }
            };
            let pump = |r: Option<BoxedRead>, tx: mpsc::Sender<Vec<u8>>| async move {
                if let Some(mut r) = r {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = r.read(&mut buf).await {
                        if n == 0 || tx.send(buf[..n].to_vec()).await.is_err() {
                            break;
                        }
                    }
                }
            };
            let out = pump(
                child.stdout.take().map(|s| Box::new(s) as BoxedRead),
                stdout,
            );
            let err = pump(
                child.stderr.take().map(|s| Box::new(s) as BoxedRead),
                stderr,
            );
            let feeding = tokio::spawn(feed);
            let (_, _, status) = tokio::join!(out, err, child.wait());
            feeding.abort();
            killer.pgid = None;
            match status {
                Ok(s) => {
                    use std::os::unix::process::ExitStatusExt as _;
                    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
                }
                Err(_) => 255,
            }
        })
    }
}

/// A tiny shell of built-in commands for the simulated phone and benchmarks: `input …` (a
/// no-op, as if the event were injected), `echo`, `true`, `false`, `exit N`; anything else is
/// "not found" (127). Interactive sessions run one line at a time.
#[derive(Debug, Clone, Default)]
pub struct BuiltinShell;

impl BuiltinShell {
    async fn line(line: &str, io: &ShellIo) -> Option<i32> {
        let line = line.trim();
        let (cmd, args) = line.split_once(' ').unwrap_or((line, ""));
        let code = match cmd {
            "" | "true" | "input" => 0,
            "false" => 1,
            "echo" => {
                let _ = io.stdout.send(format!("{args}\n").into_bytes()).await;
                0
            }
            "exit" => return None,
            other => {
                let _ = io
                    .stderr
                    .send(format!("sh: {other}: not found\n").into_bytes())
                    .await;
                127
            }
        };
        Some(code)
    }
}

impl ShellHandler for BuiltinShell {
    fn run(&self, command: String, mut io: ShellIo) -> ExitFuture {
        Box::pin(async move {
            if !command.is_empty() {
                let mut code = 0;
                for part in command.split([';', '\n']) {
                    match BuiltinShell::line(part, &io).await {
                        Some(c) => code = c,
                        None => {
                            return part
                                .trim()
                                .strip_prefix("exit")
                                .and_then(|n| n.trim().parse().ok())
                                .unwrap_or(0);
                        }
                    }
                }
                return code;
            }
            let mut pending = Vec::new();
            let mut code = 0;
            while let Some(d) = io.stdin.recv().await {
                pending.extend_from_slice(&d);
                while let Some(at) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=at).collect();
                    let line = String::from_utf8_lossy(&line).into_owned();
                    match BuiltinShell::line(&line, &io).await {
                        Some(c) => code = c,
                        None => return code,
                    }
                }
            }
            code
        })
    }
}

/// What the simulated device is.
#[derive(Clone)]
pub struct DaemonConfig {
    pub serial: String,
    /// `ro.product.name`, `ro.product.model`, `ro.product.device` and any other banner properties.
    pub properties: Vec<(String, String)>,
    /// Sync's root: device path `/sdcard/x` is `sandbox/sdcard/x`.
    pub sandbox: PathBuf,
    pub shell: Arc<dyn ShellHandler>,
    pub keys: TrustedKeys,
    /// Streams open at once per connection.
    pub max_streams: usize,
}

impl DaemonConfig {
    /// A simulated phone with `sandbox` as its storage, running commands with `/bin/sh` there.
    pub fn new(sandbox: PathBuf, keys: TrustedKeys) -> DaemonConfig {
        DaemonConfig {
            serial: "labwright-sim-phone".into(),
            properties: vec![
                ("ro.product.name".into(), "labwright_sim".into()),
                ("ro.product.model".into(), "Labwright_Sim_Phone".into()),
                ("ro.product.device".into(), "lwsim".into()),
            ],
            shell: Arc::new(ProcessShell {
                cwd: sandbox.clone(),
            }),
            sandbox,
            keys,
            max_streams: 256,
        }
    }
}

/// How long a new connection may take to send its CNXN.
const HELLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Features this device offers.
const DEVICE_FEATURES: &str = "shell_v2,cmd,fixed_push_mkdir";

/// The device-side daemon.
#[derive(Clone)]
pub struct AdbDaemon {
    config: Arc<DaemonConfig>,
}

impl AdbDaemon {
    pub fn new(config: DaemonConfig) -> AdbDaemon {
        AdbDaemon {
            config: Arc::new(config),
        }
    }

    /// Accepts TCP connections until the listener fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> Result<()> {
        loop {
            let (sock, addr) = listener.accept().await?;
            let d = self.clone();
            tokio::spawn(async move {
                if let Err(e) = d.serve_connection(sock).await {
                    tracing::debug!(%addr, error = %e, code = e.code(), "adb daemon connection ended");
                }
            });
        }
    }

    fn banner(&self) -> Vec<u8> {
        let mut b = String::from("device::");
        for (k, v) in &self.config.properties {
            b.push_str(&format!("{k}={v};"));
        }
        b.push_str(&format!("features={DEVICE_FEATURES}\0"));
        b.into_bytes()
    }

    /// Runs one connection: handshake, then services until the host goes away.
    pub async fn serve_connection<T: AdbTransport>(&self, transport: T) -> Result<()> {
        let peer = transport.describe();
        let (r, mut w) = Box::new(transport).split();
        let mut r = PacketReader::new(r, MAX_PAYLOAD, true);
        // A peer that never says CNXN does not hold a connection for ever.
        let hello = tokio::time::timeout(HELLO_TIMEOUT, async {
            loop {
                let p = r.next().await?;
                if p.command == A_CNXN {
                    return Ok::<_, AdbError>(p);
                }
            }
        })
        .await
        .map_err(|_| AdbError::Timeout(HELLO_TIMEOUT))??;
        let keys = &self.config.keys;
        let mut changed = keys.changed.subscribe();
        let new_token = || {
            let mut t = [0u8; 20];
            rand_core::OsRng.fill_bytes(&mut t);
            t
        };
        let mut token = new_token();
        packet::write_packet(&mut *w, &Packet::new(A_AUTH, AUTH_TOKEN, 0, token.to_vec())).await?;
        let mut waiting: Option<Vec<u8>> = None;
        loop {
            tokio::select! {
                p = r.next() => {
                    let p = p?;
                    match (p.command, p.arg0) {
                        (A_AUTH, AUTH_SIGNATURE) => {
                            if keys.verify(&token, &p.payload) {
                                break;
                            }
                            token = new_token();
                            packet::write_packet(&mut *w, &Packet::new(A_AUTH, AUTH_TOKEN, 0, token.to_vec())).await?;
                        }
                        (A_AUTH, AUTH_RSAPUBLICKEY) => {
                            let (raw, key) = auth::parse_public_key(&p.payload)?;
                            if keys.is_trusted(&raw) {
                                break;
                            }
                            let text = String::from_utf8_lossy(&p.payload).trim_end_matches('\0').to_string();
                            keys.offer(raw.clone(), key, text);
                            waiting = Some(raw);
                        }
                        (A_CNXN, _) => {
                            token = new_token();
                            packet::write_packet(&mut *w, &Packet::new(A_AUTH, AUTH_TOKEN, 0, token.to_vec())).await?;
                        }
                        _ => {}
                    }
                }
                c = changed.changed(), if waiting.is_some() => {
                    if c.is_err() {
                        return Err(AdbError::Unavailable("daemon stopped".into()));
                    }
                    if waiting.as_deref().is_some_and(|raw| keys.is_trusted(raw)) {
                        break;
                    }
                }
            }
        }
        packet::write_packet(
            &mut *w,
            &Packet::new(A_CNXN, VERSION, MAX_PAYLOAD, self.banner()),
        )
        .await?;
        let version = hello.arg0.min(VERSION);
        r.verify_checksum = version < VERSION;
        tracing::debug!(%peer, "adb host connected");
        let mux = Mux::new(
            w,
            hello.arg1.min(MAX_PAYLOAD),
            self.config.max_streams,
            peer,
        );
        let config = self.config.clone();
        let on_open: OpenHandler = Arc::new(move |service: &str| start_service(&config, service));
        Err(mux.run_reader(r, Some(on_open)).await)
    }
}

/// The service a stream asks for: a task that runs it, or None (refused).
fn start_service(config: &Arc<DaemonConfig>, service: &str) -> Option<ServiceStarter> {
    let config = config.clone();
    let (name, rest) = service.split_once(':').unwrap_or((service, ""));
    let rest = rest.to_string();
    let mut args = name.split(',');
    let kind = args.next().unwrap_or("");
    let v2 = args.any(|a| a == "v2");
    match kind {
        "shell" if v2 => Some(Box::new(move |s: AdbStream| {
            tokio::spawn(run_command(config, rest, s, Framing::ShellV2));
        })),
        "shell" => Some(Box::new(move |s: AdbStream| {
            tokio::spawn(run_command(config, rest, s, Framing::Legacy));
        })),
        "exec" => Some(Box::new(move |s: AdbStream| {
            tokio::spawn(run_command(config, rest, s, Framing::Exec));
        })),
        "sync" => Some(Box::new(move |s: AdbStream| {
            tokio::spawn(async move {
                if let Err(e) = sync_service(&config.sandbox, s).await {
                    tracing::debug!(error = %e, "adb sync session ended");
                }
            });
        })),
        _ => {
            tracing::debug!(%service, "adb service refused");
            None
        }
    }
}

/// How a command's streams travel: `shell,v2` packets (stdout, stderr, exit code), `exec:`
/// (stdout only, byte-exact) or legacy `shell:` (stdout and stderr together, no exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    ShellV2,
    Exec,
    Legacy,
}

/// Stdin from the host until it closes the stream (the command is then stopped).
async fn pump_stdin(mut r: StreamReader, framing: Framing, stdin: mpsc::Sender<Vec<u8>>) {
    let mut stdin = Some(stdin);
    loop {
        let data = if framing == Framing::ShellV2 {
            match protocol::read_shell_packet(&mut r).await {
                Ok(Some((shell_id::STDIN, d))) => Some(d),
                Ok(Some((shell_id::CLOSE_STDIN, _))) => None,
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            }
        } else {
            match r.read_chunk().await {
                Ok(Some(d)) => Some(d),
                Ok(None) | Err(_) => return,
            }
        };
        match (data, &stdin) {
            (Some(d), Some(tx)) => {
                if tx.send(d).await.is_err() {
                    stdin = None;
                }
            }
            (None, _) => stdin = None,
            (Some(_), None) => {}
        }
    }
}

async fn run_command(
    config: Arc<DaemonConfig>,
    command: String,
    stream: AdbStream,
    framing: Framing,
) {
    let (r, mut w) = stream.split();
    let (in_tx, in_rx) = mpsc::channel(8);
    let (out_tx, mut out_rx) = mpsc::channel(8);
    let (err_tx, mut err_rx) = mpsc::channel(8);
    let io = ShellIo {
        stdin: in_rx,
        stdout: out_tx,
        stderr: err_tx,
    };
    let mut job = tokio::spawn(config.shell.run(command, io));
    let mut reader = tokio::spawn(pump_stdin(r, framing, in_tx));
    let max = w.max_payload();
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        let (id, data) = tokio::select! {
            d = out_rx.recv(), if out_open => match d {
                Some(d) => (shell_id::STDOUT, d),
                None => { out_open = false; continue }
            },
            d = err_rx.recv(), if err_open => match d {
                Some(d) => (shell_id::STDERR, d),
                None => { err_open = false; continue }
            },
            _ = &mut reader => { job.abort(); return; }
        };
        let bytes = match framing {
            Framing::ShellV2 => protocol::shell_packet(id, &data),
            Framing::Exec if id == shell_id::STDERR => continue,
            Framing::Exec | Framing::Legacy => {
                // Coalesce stdout already queued into one WRTE.
                let mut batch = data;
                while batch.len() < max {
                    match out_rx.try_recv() {
                        Ok(more) => batch.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                batch
            }
        };
        if w.write(&bytes).await.is_err() {
            job.abort();
            reader.abort();
            return;
        }
    }
    let code = tokio::select! {
        c = &mut job => c.unwrap_or(255),
        _ = &mut reader => { job.abort(); return; }
    };
    if framing == Framing::ShellV2 {
        let _ = w
            .write(&protocol::shell_packet(
                shell_id::EXIT,
                &[(code & 0xff) as u8],
            ))
            .await;
    }
    let _ = w.close().await;
    reader.abort();
}

/// Maps a device path into the sandbox; `..`, and symlinks leading out, are refused.
pub fn sandbox_path(root: &Path, device_path: &str) -> Result<PathBuf, String> {
    let mut out = root.to_path_buf();
    for c in Path::new(device_path).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("{device_path}: path outside the device's storage"));
            }
        }
    }
    let canon_root = root.canonicalize().map_err(|e| format!("sandbox: {e}"))?;
    let mut probe = out.clone();
    loop {
        if let Ok(real) = probe.canonicalize() {
            if !real.starts_with(&canon_root) {
                return Err(format!("{device_path}: path outside the device's storage"));
            }
            break;
        }
        if !probe.pop() {
            break;
        }
    }
    Ok(out)
}

fn stat_of(meta: &std::fs::Metadata) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt as _;
    (
        meta.mode(),
        meta.size().min(u64::from(u32::MAX)) as u32,
        meta.mtime().max(0) as u32,
    )
}

async fn read_path(r: &mut StreamReader, len: u32) -> Result<String> {
    if len as usize > protocol::SYNC_MAX_PATH {
        return Err(AdbError::Protocol(format!("sync path of {len} bytes")));
    }
    Ok(String::from_utf8_lossy(&r.read_exact(len as usize).await?).into_owned())
}

fn fail(msg: &str) -> Vec<u8> {
    protocol::sync_message(protocol::ID_FAIL, msg.len() as u32, msg.as_bytes())
}

async fn sync_service(root: &Path, stream: AdbStream) -> Result<()> {
    let (mut r, mut w) = stream.split();
    loop {
        let (id, len) = protocol::read_sync_header(&mut r).await?;
        match id {
            protocol::ID_STAT => {
                let path = read_path(&mut r, len).await?;
                let (mode, size, mtime) = match sandbox_path(root, &path)
                    .ok()
                    .and_then(|p| std::fs::metadata(p).ok())
                {
                    Some(m) => stat_of(&m),
                    None => (0, 0, 0),
                };
                let mut reply =
                    protocol::sync_message(protocol::ID_STAT, mode, &size.to_le_bytes());
                reply.extend_from_slice(&mtime.to_le_bytes());
                w.write(&reply).await?;
            }
            protocol::ID_LIST => {
                let path = read_path(&mut r, len).await?;
                let mut reply = Vec::new();
                if let Ok(dir) = sandbox_path(root, &path)
                    && let Ok(entries) = std::fs::read_dir(dir)
                {
                    for e in entries.flatten() {
                        let Ok(meta) = e.metadata() else { continue };
                        let (mode, size, mtime) = stat_of(&meta);
                        let name = e.file_name().to_string_lossy().into_owned();
                        reply.extend_from_slice(&protocol::sync_message(
                            protocol::ID_DENT,
                            mode,
                            &size.to_le_bytes(),
                        ));
                        reply.extend_from_slice(&mtime.to_le_bytes());
                        reply.extend_from_slice(&(name.len() as u32).to_le_bytes());
                        reply.extend_from_slice(name.as_bytes());
                    }
                }
                reply.extend_from_slice(&protocol::sync_message(protocol::ID_DONE, 0, &[0u8; 12]));
                w.write(&reply).await?;
            }
            protocol::ID_SEND => {
                let spec = read_path(&mut r, len).await?;
                let path = spec
                    .rsplit_once(',')
                    .map(|(p, _)| p)
                    .unwrap_or(&spec)
                    .to_string();
                let reply = receive_file(root, &path, &mut r).await?;
                w.write(&reply).await?;
            }
            protocol::ID_RECV => {
                let path = read_path(&mut r, len).await?;
                send_file(root, &path, &mut w).await?;
            }
            protocol::ID_QUIT => {
                let _ = w.close().await;
                return Ok(());
            }
            other => {
                let msg = format!("unknown sync request {}", String::from_utf8_lossy(&other));
                w.write(&fail(&msg)).await?;
                let _ = w.close().await;
                return Err(AdbError::Protocol(msg));
            }
        }
    }
}

/// SEND: DATA chunks until DONE, into a temporary file renamed at the end. On a refused path
/// the data is still read (so the host gets the FAIL reply).
async fn receive_file(root: &Path, path: &str, r: &mut StreamReader) -> Result<Vec<u8>> {
    let target = sandbox_path(root, path);
    let mut file = None;
    let mut error: Option<String> = target.as_ref().err().cloned();
    let tmp = target.as_ref().ok().map(|t| {
        let mut name = t.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".lw-sync");
        t.with_file_name(name)
    });
    if let (Some(tmp), Ok(t)) = (&tmp, &target) {
        if let Some(dir) = t.parent() {
            let _ = tokio::fs::create_dir_all(dir).await;
        }
        match tokio::fs::File::create(tmp).await {
            Ok(f) => file = Some(f),
            Err(e) => error = Some(format!("{path}: {e}")),
        }
    }
    loop {
        let (id, len) = protocol::read_sync_header(r).await?;
        match id {
            protocol::ID_DATA if (len as usize) <= protocol::SYNC_DATA_MAX => {
                let data = r.read_exact(len as usize).await?;
                if let Some(f) = &mut file
                    && let Err(e) = f.write_all(&data).await
                {
                    error = Some(format!("{path}: {e}"));
                    file = None;
                }
            }
            protocol::ID_DONE => break,
            _ => {
                return Err(AdbError::Protocol(format!(
                    "bad sync data message of {len} bytes"
                )));
            }
        }
    }
    if error.is_none()
        && let (Some(mut f), Some(tmp), Ok(t)) = (file, tmp.clone(), &target)
    {
        if let Err(e) = f.flush().await {
            error = Some(format!("{path}: {e}"));
        } else {
            drop(f);
            if let Err(e) = tokio::fs::rename(&tmp, t).await {
                error = Some(format!("{path}: {e}"));
            }
        }
    }
    match error {
        None => Ok(protocol::sync_message(protocol::ID_OKAY, 0, &[])),
        Some(msg) => {
            if let Some(tmp) = tmp {
                let _ = tokio::fs::remove_file(tmp).await;
            }
            Ok(fail(&msg))
        }
    }
}

/// RECV: the file as DATA chunks (several per WRTE), then DONE; or FAIL.
async fn send_file(root: &Path, path: &str, w: &mut StreamWriter) -> Result<()> {
    let opened = match sandbox_path(root, path) {
        Ok(p) => tokio::fs::File::open(&p)
            .await
            .map_err(|e| format!("{path}: {e}")),
        Err(e) => Err(e),
    };
    let mut f = match opened {
        Ok(f) => f,
        Err(msg) => return w.write(&fail(&msg)).await,
    };
    let max = w.max_payload();
    let mut batch = Vec::with_capacity(max);
    let mut chunk = vec![0u8; protocol::SYNC_DATA_MAX];
    loop {
        let n = f.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        if batch.len() + 8 + n > max {
            w.write(&batch).await?;
            batch.clear();
        }
        batch.extend_from_slice(&protocol::sync_message(
            protocol::ID_DATA,
            n as u32,
            &chunk[..n],
        ));
    }
    batch.extend_from_slice(&protocol::sync_message(protocol::ID_DONE, 0, &[]));
    w.write(&batch).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_refuses_escapes() {
        let root = std::env::temp_dir().join(format!("lw-adb-sandbox-{}", std::process::id()));
        std::fs::create_dir_all(root.join("sdcard")).unwrap();
        assert_eq!(
            sandbox_path(&root, "/sdcard/a.txt").unwrap(),
            root.join("sdcard/a.txt")
        );
        assert!(sandbox_path(&root, "/sdcard/../../etc/passwd").is_err());
        assert!(sandbox_path(&root, "../x").is_err());
        let _ = std::os::unix::fs::symlink("/etc", root.join("sdcard/etc"));
        assert!(
            sandbox_path(&root, "/sdcard/etc/passwd").is_err(),
            "symlink out of the sandbox"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
