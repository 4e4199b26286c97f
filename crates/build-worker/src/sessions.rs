//! Sessions after they start: their output is followed from the engine and sent to the
//! api-server as the session's log, their ends are learnt from the engine's events (a container
//! that dies by itself is reported with its exit code and whether it ran out of memory), and a
//! restart makes the container again.
//!
//! Everything here is tied to one broker connection (an epoch of [`crate::worker::Worker`]):
//! when it drops, the followers stop, and the next epoch starts them again from the start of each
//! container's output (the api-server stores a line once, by container and number) and reports
//! every container that ended meanwhile (it ignores what it knew already).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bollard::container::LogOutput;
use futures::StreamExt;
use labwright_core::{
    build::{BuildUpdate, UpdateBody},
    retry::Backoff,
};
use lapin::Channel;
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    engine::{Engine, Limits},
    queue::{self, PublishError},
};

/// Output lines are sent at least this often while they come.
const FLUSH: Duration = Duration::from_millis(200);
/// Lines per update.
const BATCH: usize = 200;
/// Longest line kept (characters); a line without an end is cut into pieces of this size.
const MAX_LINE_CHARS: usize = 4096;
/// How long an exit waits for the container's output to be sent before it is reported anyway.
const OUTPUT_WAIT: Duration = Duration::from_secs(30);
/// How long an exit waits for its session to be reported started.
const START_WAIT: Duration = Duration::from_secs(60);

/// A session container whose output is followed.
#[derive(Clone, Debug)]
pub struct Target {
    pub session_id: Uuid,
    pub tenant_id: Uuid,
    pub container_id: String,
}

struct Follower {
    id: u64,
    epoch: CancellationToken,
    /// `true` once everything the container printed was sent (or the follower gave up).
    done: watch::Receiver<bool>,
}

pub struct Watcher {
    engine: Engine,
    exchange: String,
    max_log_bytes: u64,
    followers: Mutex<HashMap<String, Follower>>,
    next_id: AtomicU64,
    /// Sessions whose container is (re)starting and not reported yet: their exits wait.
    starting: Mutex<HashSet<Uuid>>,
}

/// Marks a session starting until dropped.
pub struct Starting<'a> {
    watcher: &'a Watcher,
    session_id: Uuid,
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        lock(&self.watcher.starting).remove(&self.session_id);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Watcher {
    pub fn new(engine: Engine, exchange: String, max_log_bytes: u64) -> Arc<Self> {
        Arc::new(Self {
            engine,
            exchange,
            max_log_bytes,
            followers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            starting: Mutex::new(HashSet::new()),
        })
    }

    /// Holds back reports of the session's exits until the guard is dropped (its container is
    /// reported and followed by then).
    pub fn starting(&self, session_id: Uuid) -> Starting<'_> {
        lock(&self.starting).insert(session_id);
        Starting {
            watcher: self,
            session_id,
        }
    }

    /// Follows the container's output for this epoch, unless a follower of this epoch has it.
    pub fn follow(self: &Arc<Self>, channel: &Channel, epoch: &CancellationToken, t: Target) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(false);
        {
            let mut followers = lock(&self.followers);
            if followers
                .get(&t.container_id)
                .is_some_and(|f| !f.epoch.is_cancelled())
            {
                return;
            }
            followers.insert(
                t.container_id.clone(),
                Follower {
                    id,
                    epoch: epoch.clone(),
                    done: rx,
                },
            );
        }
        let me = self.clone();
        let (channel, epoch) = (channel.clone(), epoch.clone());
        tokio::spawn(async move {
            let container = t.container_id.clone();
            tokio::select! {
                _ = epoch.cancelled() => {}
                r = me.pump_output(&channel, &t) => {
                    if let Err(e) = r {
                        tracing::warn!(session_id = %t.session_id, error = %e, "session output not sent");
                    }
                }
            }
            let _ = tx.send(true);
            let mut followers = lock(&me.followers);
            if followers.get(&container).is_some_and(|f| f.id == id) {
                followers.remove(&container);
            }
        });
    }

    /// Sends the container's output, line by line, until it stops.
    async fn pump_output(&self, channel: &Channel, t: &Target) -> Result<(), PublishError> {
        let mut stream = self.engine.output(&t.container_id);
        let mut lines = OutputLines::new(self.max_log_bytes);
        let mut next_line = 0u64;
        let mut flush_at: Option<Instant> = None;
        loop {
            let item = tokio::select! {
                _ = tokio::time::sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {
                    self.send_lines(channel, t, &mut lines.pending, &mut next_line).await?;
                    flush_at = None;
                    continue;
                }
                item = stream.next() => item,
            };
            match item {
                Some(Ok(out)) => {
                    lines.push(out);
                    if lines.pending.len() >= BATCH {
                        self.send_lines(channel, t, &mut lines.pending, &mut next_line)
                            .await?;
                        flush_at = None;
                    } else if flush_at.is_none() && !lines.pending.is_empty() {
                        flush_at = Some(Instant::now() + FLUSH);
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(session_id = %t.session_id, error = %e, "session output stream ended");
                    break;
                }
                None => break,
            }
        }
        lines.finish();
        self.send_lines(channel, t, &mut lines.pending, &mut next_line)
            .await
    }

    async fn send_lines(
        &self,
        channel: &Channel,
        t: &Target,
        pending: &mut Vec<String>,
        next_line: &mut u64,
    ) -> Result<(), PublishError> {
        while !pending.is_empty() {
            let n = pending.len().min(BATCH);
            let lines: Vec<String> = pending.drain(..n).collect();
            let body = UpdateBody::SessionLog {
                container_id: t.container_id.clone(),
                first_line: *next_line,
                lines,
            };
            self.publish(channel, t.session_id, t.tenant_id, body)
                .await?;
            *next_line += n as u64;
        }
        Ok(())
    }

    async fn publish(
        &self,
        channel: &Channel,
        session_id: Uuid,
        tenant_id: Uuid,
        body: UpdateBody,
    ) -> Result<(), PublishError> {
        // A session's id is its build's; session updates hold whatever the build's attempt.
        let update = BuildUpdate {
            build_id: session_id,
            tenant_id,
            attempt: Uuid::nil(),
            body,
        };
        queue::publish_update(channel, &self.exchange, &update).await
    }

    /// Reports session containers that die by themselves, from the engine's events, until the
    /// epoch ends; first every container that is not running (ended meanwhile), and the output
    /// of every one.
    pub async fn run(self: Arc<Self>, channel: Channel, epoch: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            // Events are replayed from a second before the listing: nothing falls between.
            let since = chrono::Utc::now().timestamp() - 1;
            match self.engine.sessions().await {
                Ok(sessions) => {
                    for s in sessions {
                        let target = Target {
                            session_id: s.session_id,
                            tenant_id: s.tenant_id,
                            container_id: s.container_id.clone(),
                        };
                        self.follow(&channel, &epoch, target);
                        if !s.running {
                            self.spawn_exit(&channel, &epoch, s.container_id);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list session containers"),
            }
            let mut deaths = std::pin::pin!(self.engine.container_deaths(since));
            loop {
                let item = tokio::select! {
                    _ = epoch.cancelled() => return,
                    item = deaths.next() => item,
                };
                match item {
                    Some(Ok((container, _))) => {
                        backoff.reset();
                        self.spawn_exit(&channel, &epoch, container);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "engine events lost; watching again");
                        break;
                    }
                    None => break,
                }
            }
            tokio::select! {
                _ = epoch.cancelled() => return,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    /// Reports how the container ended, if it ended by itself, once its output was sent.
    fn spawn_exit(
        self: &Arc<Self>,
        channel: &Channel,
        epoch: &CancellationToken,
        container: String,
    ) {
        let me = self.clone();
        let (channel, epoch) = (channel.clone(), epoch.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = epoch.cancelled() => {}
                r = me.report_exit(&channel, &container) => {
                    if let Err(e) = r {
                        tracing::warn!(container, error = %e, "session exit not reported");
                    }
                }
            }
        });
    }

    async fn report_exit(&self, channel: &Channel, container: &str) -> Result<(), String> {
        let Some(exit) = self
            .engine
            .exit_of(container)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        let deadline = Instant::now() + START_WAIT;
        while lock(&self.starting).contains(&exit.session_id) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let done = lock(&self.followers).get(container).map(|f| f.done.clone());
        if let Some(mut done) = done {
            let _ = tokio::time::timeout(OUTPUT_WAIT, done.wait_for(|d| *d)).await;
        }
        tracing::info!(session_id = %exit.session_id, exit_code = exit.exit_code, oom_killed = exit.oom_killed, "session app exited");
        let body = UpdateBody::SessionExited {
            container_id: container.to_string(),
            exit_code: exit.exit_code,
            oom_killed: exit.oom_killed,
            at_unix_ms: exit.at_unix_ms,
        };
        self.publish(channel, exit.session_id, exit.tenant_id, body)
            .await
            .map_err(|e| e.to_string())
    }

    /// Makes the session's container again (if this engine has it and has not done this restart
    /// yet), reports it and follows its output.
    pub async fn restart(
        self: &Arc<Self>,
        channel: &Channel,
        epoch: &CancellationToken,
        session_id: Uuid,
        restart: u32,
        limits: &Limits,
    ) -> Result<(), String> {
        let _starting = self.starting(session_id);
        let Some((started, tenant_id)) = self
            .engine
            .restart_session(session_id, restart, limits)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        tracing::info!(%session_id, restart, "session restarted");
        let body = UpdateBody::SessionRestarted {
            container_id: started.container_id.clone(),
            restart,
        };
        self.publish(channel, session_id, tenant_id, body)
            .await
            .map_err(|e| e.to_string())?;
        self.follow(
            channel,
            epoch,
            Target {
                session_id,
                tenant_id,
                container_id: started.container_id,
            },
        );
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Out,
    Err,
}

/// A container's output cut into lines (stdout and stderr each), within a byte budget.
struct OutputLines {
    max_bytes: u64,
    used: u64,
    cut: bool,
    carry: [Vec<u8>; 2],
    pending: Vec<String>,
}

impl OutputLines {
    fn new(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            used: 0,
            cut: false,
            carry: [Vec::new(), Vec::new()],
            pending: Vec::new(),
        }
    }

    fn push(&mut self, out: LogOutput) {
        let (stream, bytes) = match out {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (Stream::Out, message)
            }
            LogOutput::StdErr { message } => (Stream::Err, message),
            LogOutput::StdIn { .. } => return,
        };
        self.push_bytes(stream, &bytes);
    }

    fn push_bytes(&mut self, stream: Stream, bytes: &[u8]) {
        let i = stream as usize;
        let mut carry = std::mem::take(&mut self.carry[i]);
        carry.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(n) = carry[start..].iter().position(|&b| b == b'\n') {
            self.line(&carry[start..start + n]);
            start += n + 1;
        }
        carry.drain(..start);
        // A line that never ends is kept in pieces.
        while carry.len() >= MAX_LINE_CHARS * 4 {
            let piece: Vec<u8> = carry.drain(..MAX_LINE_CHARS * 4).collect();
            self.line(&piece);
        }
        self.carry[i] = carry;
    }

    /// The last lines that did not end with a line break.
    fn finish(&mut self) {
        for i in 0..2 {
            let rest = std::mem::take(&mut self.carry[i]);
            if !rest.is_empty() {
                self.line(&rest);
            }
        }
    }

    fn line(&mut self, raw: &[u8]) {
        if self.cut {
            return;
        }
        self.used += raw.len() as u64 + 1;
        if self.used > self.max_bytes {
            self.cut = true;
            self.pending.push(format!(
                "output truncated: it passed {} bytes; the app goes on, its later output is not kept",
                self.max_bytes
            ));
            return;
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        self.pending.push(
            String::from_utf8_lossy(raw)
                .chars()
                .take(MAX_LINE_CHARS)
                .collect(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_cut_into_lines_per_stream_within_its_budget() {
        let mut o = OutputLines::new(40);
        o.push_bytes(Stream::Out, b"hello ");
        o.push_bytes(Stream::Err, b"oops\r\n");
        o.push_bytes(Stream::Out, b"world\nsecond");
        assert_eq!(o.pending, vec!["oops", "hello world"]);
        o.finish();
        assert_eq!(o.pending, vec!["oops", "hello world", "second"]);
        o.push_bytes(Stream::Out, b"a long line past the budget\nmore\n");
        assert_eq!(o.pending.len(), 4);
        assert!(
            o.pending[3].starts_with("output truncated"),
            "{:?}",
            o.pending
        );
        o.push_bytes(Stream::Out, b"later\n");
        assert_eq!(o.pending.len(), 4, "nothing after the cut");
    }

    #[test]
    fn a_line_without_an_end_comes_in_pieces() {
        let mut o = OutputLines::new(1 << 20);
        o.push_bytes(Stream::Out, &[b'x'; MAX_LINE_CHARS * 4 + 3]);
        assert_eq!(o.pending.len(), 1);
        assert_eq!(o.pending[0].len(), MAX_LINE_CHARS);
        o.finish();
        assert_eq!(o.pending[1], "xxx");
    }
}
