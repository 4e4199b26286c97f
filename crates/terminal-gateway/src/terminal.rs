//! One terminal: check the ticket, attach a shell, pump bytes both ways until one side ends,
//! then end the shell, close the WebSocket with a code and reason, and store the recording.
//!
//! Input and output are two futures polled side by side: a client that reads slowly makes the
//! output wait (the WebSocket's send queue is bounded, so nothing piles up in memory), while its
//! keystrokes, Ctrl-C included, still go straight to the shell.

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Duration,
};

use actix_ws::{AggregatedMessage, AggregatedMessageStream, Session};
use labwright_core::terminal::{TicketError, Utf8Carry};
use labwright_wire::ws::{
    self,
    terminal::{Control, Event, MAX_DIMENSION, close},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::Instant,
};
use uuid::Uuid;

use crate::{
    Gateway,
    engine::{Attached, Container},
    metrics::ConnectError,
    recording::{Recording, Recordings},
};

/// Output read from the engine per chunk, and the most sent in one frame.
const READ_CHUNK: usize = 32 * 1024;
/// The gateway pings a quiet client this often, and gives up on one silent for `3 *` this.
const PING_EVERY: Duration = Duration::from_secs(20);

pub(crate) struct Request {
    pub session: Option<Uuid>,
    pub ticket: Option<String>,
    pub cols: u16,
    pub rows: u16,
}

/// How a terminal ended: the close frame it gets.
struct End {
    code: u16,
    reason: String,
}

impl End {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// How long a control frame (ping, pong) may wait for room in the send queue: a client that
/// stopped reading must not keep its terminal, its slot and its recording forever (a close
/// frame waits as long: `ws::CLOSE_SEND`).
const CONTROL_SEND: Duration = Duration::from_secs(5);

async fn close_with(ws: Session, end: End) {
    ws::close_with(ws, end.code, end.reason).await;
}

/// The close code for a ticket that was refused.
fn ticket_close_code(e: &TicketError) -> u16 {
    match e {
        TicketError::Malformed | TicketError::Forged => close::BAD_TICKET,
        TicketError::Expired => close::TICKET_EXPIRED,
        TicketError::OtherSession => close::OTHER_SESSION,
    }
}

fn refuse(gateway: &Gateway, e: ConnectError) {
    gateway.metrics.connect_error(e);
}

pub(crate) async fn serve(
    gateway: Arc<Gateway>,
    req: Request,
    ws: Session,
    stream: AggregatedMessageStream,
) {
    let now = chrono::Utc::now().timestamp();
    let Some(session) = req.session else {
        refuse(&gateway, ConnectError::NoSession);
        return close_with(ws, End::new(close::NO_SESSION, "no such session")).await;
    };
    let Some(ticket) = req.ticket.filter(|t| !t.is_empty()) else {
        refuse(&gateway, ConnectError::MissingTicket);
        return close_with(ws, End::new(close::BAD_TICKET, "a ticket is required")).await;
    };
    let claims = match gateway.key.verify(&ticket, session, now) {
        Ok(c) => c,
        Err(e) => {
            refuse(
                &gateway,
                match e {
                    TicketError::Malformed | TicketError::Forged => ConnectError::BadTicket,
                    TicketError::Expired => ConnectError::ExpiredTicket,
                    TicketError::OtherSession => ConnectError::OtherSession,
                },
            );
            return close_with(ws, End::new(ticket_close_code(&e), e.to_string())).await;
        }
    };
    if !gateway.first_use(claims.jti, claims.exp, now) {
        refuse(&gateway, ConnectError::ReusedTicket);
        return close_with(
            ws,
            End::new(close::TICKET_REUSED, "the ticket was used already"),
        )
        .await;
    }
    let Some(watch) = gateway.revocations.watch(claims.key) else {
        refuse(&gateway, ConnectError::KeyRevoked);
        return close_with(
            ws,
            End::new(
                close::KEY_REVOKED,
                "the key this ticket was issued to was revoked",
            ),
        )
        .await;
    };
    let Some(slot) = gateway.slot(claims.tenant) else {
        refuse(&gateway, ConnectError::TooMany);
        return close_with(
            ws,
            End::new(close::TOO_MANY, "too many terminals open; close one first"),
        )
        .await;
    };
    match gateway
        .engine
        .container(&claims.container, session, claims.tenant)
        .await
    {
        Ok(Container::Running) => {}
        Ok(Container::Missing) => {
            refuse(&gateway, ConnectError::NoSession);
            return close_with(ws, End::new(close::NO_SESSION, "no such session")).await;
        }
        Ok(Container::Stopped) => {
            refuse(&gateway, ConnectError::SessionEnded);
            return close_with(
                ws,
                End::new(
                    close::SESSION_ENDED,
                    "the session's container is not running",
                ),
            )
            .await;
        }
        Err(e) => {
            refuse(&gateway, ConnectError::Engine);
            tracing::warn!(error = %e, %session, "terminal: engine unavailable");
            return close_with(
                ws,
                End::new(close::INTERNAL, "the container engine is unavailable"),
            )
            .await;
        }
    }
    let terminal = Uuid::new_v4();
    let attached = match gateway
        .engine
        .start_shell(
            &claims.container,
            &gateway.config.shell,
            &gateway.config.term,
            terminal,
        )
        .await
    {
        Ok(a) => a,
        Err(e) => {
            // Most often the container stopped in between.
            refuse(&gateway, ConnectError::SessionEnded);
            tracing::info!(error = %e, %session, "terminal: shell did not start");
            return close_with(
                ws,
                End::new(
                    close::SESSION_ENDED,
                    "the shell could not be started in the session",
                ),
            )
            .await;
        }
    };
    gateway.metrics.opened.fetch_add(1, Relaxed);
    tracing::info!(%session, %terminal, tenant = %claims.tenant, key = %claims.key, "terminal opened");
    let exec_id = attached.exec_id.clone();
    let cols = req.cols.clamp(1, MAX_DIMENSION);
    let rows = req.rows.clamp(1, MAX_DIMENSION);
    let recording = match &gateway.recordings {
        Some(r) => r
            .start(
                Recordings::key(claims.tenant, session, terminal),
                terminal,
                cols,
                rows,
                &gateway.config.term,
                &format!("session {session}"),
            )
            .await
            .map_err(|e| {
                gateway.metrics.recordings_failed.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, %terminal, "terminal: recording did not start");
            })
            .ok(),
        None => None,
    };
    let mut pump = Pump {
        gateway: gateway.clone(),
        ws: ws.clone(),
        exec_id: exec_id.clone(),
        recording,
        last_input: Instant::now(),
        last_heard: Instant::now(),
        revoked: watch.token.clone(),
    };
    let end = pump
        .run(attached, stream, &claims.container, cols, rows)
        .await;
    // The shell may outlive the connection (the user left, the gateway stops): end it.
    {
        let gateway = gateway.clone();
        let container = claims.container.clone();
        let exec_id = exec_id.clone();
        gateway.clone().background.spawn(async move {
            match gateway
                .engine
                .end_shell(&container, &exec_id, terminal)
                .await
            {
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    gateway.metrics.leaked_shells.fetch_add(1, Relaxed);
                    tracing::warn!(%terminal, "terminal: the shell could not be ended");
                }
            }
        });
    }
    tracing::info!(%session, %terminal, code = end.code, reason = %end.reason, "terminal closed");
    close_with(ws, end).await;
    if let Some(rec) = pump.recording.take() {
        let gateway = gateway.clone();
        gateway.clone().background.spawn(async move {
            if let Err(e) = rec.finish().await {
                gateway.metrics.recordings_failed.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, %terminal, "terminal: recording not stored");
            }
        });
    }
    drop(slot);
    drop(watch);
}

struct Pump {
    gateway: Arc<Gateway>,
    ws: Session,
    exec_id: String,
    recording: Option<Recording>,
    last_input: Instant,
    last_heard: Instant,
    /// Cancelled when the key the ticket was issued to is revoked.
    revoked: tokio_util::sync::CancellationToken,
}

enum Input {
    Continue,
    End(End),
}

impl Pump {
    async fn run(
        &mut self,
        attached: Attached,
        mut stream: AggregatedMessageStream,
        container: &str,
        cols: u16,
        rows: u16,
    ) -> End {
        if let Err(e) = self.gateway.engine.resize(&self.exec_id, cols, rows).await {
            tracing::debug!(error = %e, "terminal: first resize");
        }
        let Attached {
            stream: conn,
            early,
            ..
        } = attached;
        let (mut from_shell, mut to_shell) = tokio::io::split(conn);
        let idle = Duration::from_secs(self.gateway.config.idle_timeout_secs);
        let mut ws_out = self.ws.clone();
        let mut ticker = tokio::time::interval(PING_EVERY.min(idle));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let _ = self.ws.text(Event::Ready { cols, rows }.to_json()).await;
        // The recording is fed by the output half only; resizes are noted by the input half
        // through this queue (bounded: the input waits rather than grows it).
        let (resized_tx, mut resized_rx) = tokio::sync::mpsc::channel::<(u16, u16)>(16);
        let gateway = self.gateway.clone();
        let recording = &mut self.recording;
        let output = async {
            let mut carry = Utf8Carry::default();
            let mut buf = vec![0u8; READ_CHUNK];
            // Bytes that came with the attach answer go first.
            let mut first = Some(early);
            loop {
                let frame = match first.take() {
                    Some(early) => carry.push(&early),
                    None => tokio::select! {
                        biased;
                        Some((c, r)) = resized_rx.recv() => {
                            if let Some(rec) = recording.as_mut() {
                                let _ = rec.resize(c, r).await;
                            }
                            continue;
                        }
                        read = from_shell.read(&mut buf) => match read {
                            Ok(0) | Err(_) => break,
                            Ok(n) => carry.push(&buf[..n]),
                        },
                    },
                };
                if frame.is_empty() {
                    continue;
                }
                gateway
                    .metrics
                    .bytes_out
                    .fetch_add(frame.len() as u64, Relaxed);
                if let Some(rec) = recording.as_mut()
                    && rec.output(&frame).await.is_err()
                {
                    gateway.metrics.recordings_failed.fetch_add(1, Relaxed);
                    *recording = None;
                }
                if ws_out.binary(frame).await.is_err() {
                    return None; // the client is gone
                }
            }
            let rest = carry.finish();
            if !rest.is_empty() {
                let _ = ws_out.binary(rest).await;
            }
            Some(())
        };
        let last_input = &mut self.last_input;
        let last_heard = &mut self.last_heard;
        let pong_pending = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ws_in = &mut self.ws;
        let engine = &self.gateway.engine;
        let exec_id = &self.exec_id;
        let input = async {
            loop {
                let msg = tokio::select! {
                    msg = stream.recv() => msg,
                    _ = ticker.tick() => {
                        if last_input.elapsed() >= idle {
                            return End::new(close::IDLE, format!("idle for {} s", idle.as_secs()));
                        }
                        if last_heard.elapsed() >= PING_EVERY * 3 {
                            return End::new(close::IDLE, "the client stopped answering");
                        }
                        if tokio::time::timeout(CONTROL_SEND, ws_in.ping(b"lw")).await.is_err() {
                            return End::new(close::IDLE, "the client stopped reading");
                        }
                        continue;
                    }
                };
                *last_heard = Instant::now();
                let step = match msg {
                    None => Input::End(End::new(close::NORMAL, "the client left")),
                    Some(Err(actix_ws::ProtocolError::Overflow)) => Input::End(End::new(
                        close::TOO_BIG,
                        format!("frame over {} bytes", gateway.config.max_frame_bytes),
                    )),
                    Some(Err(e)) => Input::End(End::new(
                        close::PROTOCOL_ERROR,
                        format!("protocol error: {e}"),
                    )),
                    Some(Ok(AggregatedMessage::Binary(b))) => {
                        *last_input = Instant::now();
                        gateway.metrics.bytes_in.fetch_add(b.len() as u64, Relaxed);
                        match to_shell.write_all(&b).await {
                            Ok(()) => Input::Continue,
                            // The shell went away; the output side sees it and says why.
                            Err(_) => std::future::pending().await,
                        }
                    }
                    Some(Ok(AggregatedMessage::Text(t))) => match Control::parse(&t) {
                        Ok(Control::Resize { cols, rows }) => {
                            *last_input = Instant::now();
                            if let Err(e) = engine.resize(exec_id, cols, rows).await {
                                tracing::debug!(error = %e, "terminal: resize");
                            }
                            let _ = resized_tx.try_send((cols, rows));
                            Input::Continue
                        }
                        Ok(Control::Ping { id }) => {
                            // Not awaited in line: a full send queue must not hold keystrokes.
                            // One pong on its way at a time; pings meanwhile go unanswered.
                            if !pong_pending.swap(true, Relaxed) {
                                let mut ws = ws_in.clone();
                                let pending = pong_pending.clone();
                                actix_web::rt::spawn(async move {
                                    let pong = ws.text(Event::Pong { id }.to_json());
                                    let _ = tokio::time::timeout(CONTROL_SEND, pong).await;
                                    pending.store(false, Relaxed);
                                });
                            }
                            Input::Continue
                        }
                        Err(reason) => Input::End(End::new(close::BAD_MESSAGE, reason)),
                    },
                    Some(Ok(AggregatedMessage::Ping(p))) => {
                        let _ = ws_in.pong(&p).await;
                        Input::Continue
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => Input::Continue,
                    Some(Ok(AggregatedMessage::Close(_))) => {
                        Input::End(End::new(close::NORMAL, "the client left"))
                    }
                };
                if let Input::End(end) = step {
                    return end;
                }
            }
        };
        let shutdown = self.gateway.shutdown.clone();
        let revoked = self.revoked.clone();
        let outcome = tokio::select! {
            end = input => Some(end),
            out = output => match out {
                None => Some(End::new(close::NORMAL, "the client left")),
                Some(()) => None,
            },
            _ = shutdown.cancelled() => Some(End::new(close::GOING_AWAY, "the terminal gateway is restarting; reconnect")),
            _ = revoked.cancelled() => Some(End::new(close::KEY_REVOKED, "the key this terminal was opened with was revoked")),
        };
        match outcome {
            Some(end) => end,
            None => self.shell_ended(container).await,
        }
    }

    /// The shell's output ended: it exited, or its container stopped.
    async fn shell_ended(&mut self, container: &str) -> End {
        // An exit is visible to inspect a moment after the stream ends.
        for _ in 0..20 {
            match self.gateway.engine.exec_state(&self.exec_id).await {
                Ok((false, code)) => {
                    let code = code.unwrap_or(-1);
                    // A shell killed by a signal (or whose code is unknown) may be its container
                    // stopping: the engine records the exec's end a moment before the
                    // container's, longer on a loaded machine (up to 3 s are waited).
                    let looks = if !(0..128).contains(&code) { 60 } else { 1 };
                    for i in 0..looks {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        let state = self
                            .gateway
                            .engine
                            .docker()
                            .inspect_container(container, None)
                            .await
                            .ok()
                            .and_then(|c| c.state);
                        if state.as_ref().and_then(|s| s.running) != Some(true) {
                            return session_end(state);
                        }
                    }
                    let _ = self.ws.text(Event::Exit { code }.to_json()).await;
                    return End::new(close::NORMAL, format!("the shell exited with code {code}"));
                }
                Ok((true, _)) => tokio::time::sleep(Duration::from_millis(25)).await,
                Err(_) => return End::new(close::SESSION_ENDED, "the session ended"),
            }
        }
        End::new(close::SESSION_ENDED, "the shell's output ended")
    }
}

/// How a session whose container stopped ended: its app exited by itself (the container is
/// `exited`: its code, or that it ran out of memory), or the platform ended it (the container is
/// being removed, or gone).
fn session_end(state: Option<bollard::models::ContainerState>) -> End {
    match state {
        Some(s) if s.status == Some(bollard::models::ContainerStateStatusEnum::EXITED) => End::new(
            close::APP_EXITED,
            labwright_core::build::exit_summary(
                s.exit_code.unwrap_or(-1),
                s.oom_killed.unwrap_or(false),
            ),
        ),
        _ => End::new(close::SESSION_ENDED, "the session ended"),
    }
}
