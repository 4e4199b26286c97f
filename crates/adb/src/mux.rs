//! Streams over one ADB connection, shared by the host and the daemon: OPEN/OKAY/WRTE/CLSE,
//! many streams at once, a cap on how many, and adb's flow control — one WRTE in flight per
//! stream and direction until the peer's OKAY. A received WRTE is acknowledged as soon as it
//! fits in the stream's small buffer (two payloads), otherwise when the reader drains it, so a
//! stream that reads and writes in one task cannot deadlock with its peer.
//!
//! One reader task per connection dispatches packets; writers share the transport's write half
//! behind a lock. When the connection dies every stream fails with `Unavailable`.

use crate::error::{AdbError, Result};
use crate::packet::{self, A_AUTH, A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_WRTE, Packet, PacketReader};
use crate::transport::{TransportReader, TransportWriter};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Payloads buffered per stream before the peer must wait for our OKAY.
const STREAM_BUFFER: usize = 2;

/// Starts the service a stream was opened for.
pub(crate) type ServiceStarter = Box<dyn FnOnce(AdbStream) + Send>;
/// What the daemon does with a service the host opens: a starter, or None to refuse it.
pub(crate) type OpenHandler = Arc<dyn Fn(&str) -> Option<ServiceStarter> + Send + Sync>;

struct Slot {
    remote: u32,
    data: mpsc::Sender<Vec<u8>>,
    owed: Arc<AtomicBool>,
    acks: Arc<Semaphore>,
    opened: Option<oneshot::Sender<u32>>,
}

/// One connection's stream table and write half.
pub(crate) struct Mux {
    writer: tokio::sync::Mutex<TransportWriter>,
    streams: Mutex<HashMap<u32, Slot>>,
    next_id: AtomicU32,
    max_send: usize,
    max_streams: usize,
    dead: Mutex<Option<String>>,
    peer: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Mux {
    pub(crate) fn new(
        writer: TransportWriter,
        max_send: u32,
        max_streams: usize,
        peer: String,
    ) -> Arc<Mux> {
        Arc::new(Mux {
            writer: tokio::sync::Mutex::new(writer),
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            max_send: max_send.clamp(256, packet::MAX_PAYLOAD) as usize,
            max_streams,
            dead: Mutex::new(None),
            peer,
        })
    }

    /// Why the connection is gone, if it is.
    pub(crate) fn dead_reason(&self) -> Option<String> {
        lock(&self.dead).clone()
    }

    fn unavailable(&self) -> AdbError {
        let why = self
            .dead_reason()
            .unwrap_or_else(|| "connection closed".into());
        AdbError::Unavailable(format!("{}: {why}", self.peer))
    }

    /// Marks the connection dead and fails every stream.
    pub(crate) fn kill(&self, reason: String) {
        {
            let mut d = lock(&self.dead);
            if d.is_none() {
                tracing::debug!(peer = %self.peer, %reason, "adb connection closed");
                *d = Some(reason);
            }
        }
        let slots: Vec<Slot> = lock(&self.streams).drain().map(|(_, s)| s).collect();
        for s in slots {
            s.acks.close();
        }
    }

    pub(crate) async fn send(&self, p: Packet) -> Result<()> {
        if self.dead_reason().is_some() {
            return Err(self.unavailable());
        }
        let mut w = self.writer.lock().await;
        if let Err(e) = packet::write_packet(&mut **w, &p).await {
            drop(w);
            self.kill(format!("write failed: {e}"));
            return Err(self.unavailable());
        }
        Ok(())
    }

    fn new_slot(
        &self,
        remote: u32,
        opened: Option<oneshot::Sender<u32>>,
    ) -> Result<(u32, StreamReader, Arc<Semaphore>)> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let owed = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Semaphore::new(0));
        let mut map = lock(&self.streams);
        if map.len() >= self.max_streams {
            return Err(AdbError::TooManyStreams(self.max_streams));
        }
        let mut local = self.next_id.fetch_add(1, Ordering::Relaxed);
        while local == 0 || map.contains_key(&local) {
            local = self.next_id.fetch_add(1, Ordering::Relaxed);
        }
        map.insert(
            local,
            Slot {
                remote,
                data: tx,
                owed: owed.clone(),
                acks: acks.clone(),
                opened,
            },
        );
        let reader = StreamReader {
            guard: None,
            rx,
            owed,
            buf: Vec::new(),
            pos: 0,
        };
        Ok((local, reader, acks))
    }

    /// Opens `service` on the peer (host side).
    pub(crate) async fn open(self: &Arc<Self>, service: &str) -> Result<AdbStream> {
        if self.dead_reason().is_some() {
            return Err(self.unavailable());
        }
        let (tx, rx) = oneshot::channel();
        let (local, reader, acks) = self.new_slot(0, Some(tx))?;
        // From here the guard cleans up if the caller gives up (a timeout drops this future).
        let guard = Arc::new(StreamGuard {
            mux: self.clone(),
            local,
            remote: AtomicU32::new(0),
        });
        let mut payload = service.as_bytes().to_vec();
        payload.push(0);
        self.send(Packet::new(A_OPEN, local, 0, payload)).await?;
        match rx.await {
            Ok(remote) => {
                guard.remote.store(remote, Ordering::Relaxed);
                Ok(AdbStream::assemble(guard, reader, acks))
            }
            Err(_) if self.dead_reason().is_some() => Err(self.unavailable()),
            Err(_) => Err(AdbError::StreamRefused(service.into())),
        }
    }

    fn remove(&self, local: u32) -> bool {
        match lock(&self.streams).remove(&local) {
            Some(s) => {
                s.acks.close();
                true
            }
            None => false,
        }
    }

    /// Dispatches incoming packets until the connection ends; returns why it ended.
    pub(crate) async fn run_reader(
        self: Arc<Self>,
        mut reader: PacketReader<TransportReader>,
        on_open: Option<OpenHandler>,
    ) -> AdbError {
        let err = loop {
            let p = match reader.next().await {
                Ok(p) => p,
                Err(e) => break e,
            };
            if let Err(e) = self.dispatch(p, on_open.as_ref()).await {
                break e;
            }
        };
        self.kill(format!("{err} [{}]", err.code()));
        if let Ok(mut w) =
            tokio::time::timeout(std::time::Duration::from_secs(1), self.writer.lock()).await
        {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), w.shutdown()).await;
        }
        err
    }

    async fn dispatch(self: &Arc<Self>, p: Packet, on_open: Option<&OpenHandler>) -> Result<()> {
        let (remote, local) = (p.arg0, p.arg1);
        match p.command {
            A_OKAY => {
                let known = {
                    let mut map = lock(&self.streams);
                    match map.get_mut(&local) {
                        Some(slot) => {
                            if let Some(tx) = slot.opened.take() {
                                slot.remote = remote;
                                let _ = tx.send(remote);
                            } else if slot.acks.available_permits() == 0 {
                                slot.acks.add_permits(1);
                            }
                            true
                        }
                        None => false,
                    }
                };
                if !known {
                    self.send(Packet::new(A_CLSE, local, remote, vec![]))
                        .await?;
                }
            }
            A_WRTE => {
                let slot = lock(&self.streams)
                    .get(&local)
                    .map(|s| (s.data.clone(), s.owed.clone(), s.remote));
                let Some((tx, owed, their_id)) = slot else {
                    return self.send(Packet::new(A_CLSE, local, remote, vec![])).await;
                };
                match tx.try_send(p.payload) {
                    Ok(()) => {
                        owed.store(true, Ordering::SeqCst);
                        if tx.capacity() > 0 && owed.swap(false, Ordering::SeqCst) {
                            self.send(Packet::new(A_OKAY, local, their_id, vec![]))
                                .await?;
                        }
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(peer = %self.peer, local, "adb peer ignored flow control; closing the stream");
                        if self.remove(local) {
                            self.send(Packet::new(A_CLSE, local, their_id, vec![]))
                                .await?;
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
            A_CLSE => {
                self.remove(local);
            }
            A_OPEN => {
                let service = String::from_utf8_lossy(&p.payload)
                    .trim_end_matches('\0')
                    .to_string();
                let accepted = match on_open.and_then(|h| h(&service)) {
                    Some(start) => match self.new_slot(remote, None) {
                        Ok((local, reader, acks)) => {
                            let guard = Arc::new(StreamGuard {
                                mux: self.clone(),
                                local,
                                remote: AtomicU32::new(remote),
                            });
                            self.send(Packet::new(A_OKAY, local, remote, vec![]))
                                .await?;
                            start(AdbStream::assemble(guard, reader, acks));
                            true
                        }
                        Err(e) => {
                            tracing::warn!(peer = %self.peer, %service, error = %e, "adb open refused");
                            false
                        }
                    },
                    None => false,
                };
                if !accepted {
                    self.send(Packet::new(A_CLSE, 0, remote, vec![])).await?;
                }
            }
            A_CNXN => {
                return Err(AdbError::Unavailable(
                    "peer restarted the connection".into(),
                ));
            }
            A_AUTH => {
                return Err(AdbError::Protocol(
                    "auth packet after the connection was set up".into(),
                ));
            }
            other => {
                tracing::debug!(peer = %self.peer, command = %packet::command_name(other), "adb packet ignored")
            }
        }
        Ok(())
    }
}

/// Removes the stream and tells the peer when the last half of a stream is dropped.
struct StreamGuard {
    mux: Arc<Mux>,
    local: u32,
    remote: AtomicU32,
}

impl StreamGuard {
    fn ids(&self) -> (u32, u32) {
        (self.local, self.remote.load(Ordering::Relaxed))
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.mux.remove(self.local) {
            let (local, remote) = self.ids();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let mux = self.mux.clone();
                rt.spawn(async move {
                    let _ = mux.send(Packet::new(A_CLSE, local, remote, vec![])).await;
                });
            }
        }
    }
}

/// One ADB stream (a service opened on the device).
pub struct AdbStream {
    reader: StreamReader,
    writer: StreamWriter,
}

/// The receiving half of a stream.
pub struct StreamReader {
    guard: Option<Arc<StreamGuard>>,
    rx: mpsc::Receiver<Vec<u8>>,
    owed: Arc<AtomicBool>,
    buf: Vec<u8>,
    pos: usize,
}

/// The sending half of a stream.
pub struct StreamWriter {
    guard: Arc<StreamGuard>,
    acks: Arc<Semaphore>,
}

impl AdbStream {
    fn assemble(
        guard: Arc<StreamGuard>,
        mut reader: StreamReader,
        acks: Arc<Semaphore>,
    ) -> AdbStream {
        reader.guard = Some(guard.clone());
        AdbStream {
            reader,
            writer: StreamWriter { guard, acks },
        }
    }

    /// The two halves, for a task that reads while another writes.
    pub fn split(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }

    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.writer.write(data).await
    }

    pub async fn read_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        self.reader.read_chunk().await
    }

    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>> {
        self.reader.read_exact(n).await
    }

    /// Sends CLSE and forgets the stream.
    pub async fn close(self) -> Result<()> {
        self.writer.close().await
    }

    /// The largest WRTE payload the peer accepts.
    pub fn max_payload(&self) -> usize {
        self.writer.guard.mux.max_send
    }
}

impl StreamReader {
    fn mux(&self) -> Option<&Arc<Mux>> {
        self.guard.as_ref().map(|g| &g.mux)
    }

    /// The next payload the peer wrote, or None at the end of the stream.
    pub async fn read_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if self.pos < self.buf.len() {
            let rest = self.buf.split_off(self.pos);
            self.buf.clear();
            self.pos = 0;
            return Ok(Some(rest));
        }
        match self.rx.recv().await {
            Some(d) => {
                if self.owed.swap(false, Ordering::SeqCst)
                    && let Some(g) = &self.guard
                {
                    let (local, remote) = g.ids();
                    g.mux
                        .send(Packet::new(A_OKAY, local, remote, vec![]))
                        .await?;
                }
                Ok(Some(d))
            }
            None => match self.mux() {
                Some(m) if m.dead_reason().is_some() => Err(m.unavailable()),
                _ => Ok(None),
            },
        }
    }

    /// Whether the stream has ended (waits for the next payload if none is buffered).
    pub async fn at_end(&mut self) -> Result<bool> {
        loop {
            if self.pos < self.buf.len() {
                return Ok(false);
            }
            match self.read_chunk().await? {
                Some(d) => {
                    self.buf = d;
                    self.pos = 0;
                }
                None => return Ok(true),
            }
        }
    }

    /// Exactly `n` bytes; the stream ending first is a protocol error.
    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n.min(1 << 20));
        while out.len() < n {
            if self.pos >= self.buf.len() {
                match self.read_chunk().await? {
                    Some(d) => {
                        self.buf = d;
                        self.pos = 0;
                    }
                    None => {
                        return Err(AdbError::Protocol(format!(
                            "stream ended {} bytes early",
                            n - out.len()
                        )));
                    }
                }
                continue;
            }
            let take = (n - out.len()).min(self.buf.len() - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
        }
        Ok(out)
    }

    /// Everything until the peer closes the stream, at most `limit` bytes.
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(d) = self.read_chunk().await? {
            if out.len() + d.len() > limit {
                return Err(AdbError::Protocol(format!(
                    "output over the limit of {limit} bytes"
                )));
            }
            out.extend_from_slice(&d);
        }
        Ok(out)
    }
}

impl StreamWriter {
    /// Writes `data` as WRTE packets, each waiting for the peer's OKAY.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        let mux = &self.guard.mux;
        for chunk in data.chunks(mux.max_send) {
            let (local, remote) = self.guard.ids();
            mux.send(Packet::new(A_WRTE, local, remote, chunk.to_vec()))
                .await?;
            match self.acks.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) if mux.dead_reason().is_some() => return Err(mux.unavailable()),
                Err(_) => return Err(AdbError::Protocol("stream closed by the peer".into())),
            }
        }
        Ok(())
    }

    /// The largest WRTE payload the peer accepts.
    pub fn max_payload(&self) -> usize {
        self.guard.mux.max_send
    }

    /// Sends CLSE (if the peer has not closed first).
    pub async fn close(self) -> Result<()> {
        let mux = self.guard.mux.clone();
        if mux.remove(self.guard.local) {
            let (local, remote) = self.guard.ids();
            mux.send(Packet::new(A_CLSE, local, remote, vec![])).await?;
        }
        Ok(())
    }
}
