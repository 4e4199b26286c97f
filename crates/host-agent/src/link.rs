//! The host's side of the host link: dial the server, say hello, heartbeat, answer commands, and
//! reconnect forever with capped exponential backoff and jitter.
//!
//! The only module of the agent that names wire (`v1`) types: everything else speaks the link's
//! domain types (`labwright_wire::host_link`), converted here at the stream.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use labwright_core::{
    fleet::{RawHello, Status},
    retry::Backoff,
};
use labwright_wire::{
    host_link::{
        Command, CommandReply, ConvertError, DeviceStatusChange, FromHost, Heartbeat, Hello,
        HostCommand, ToHost,
    },
    v1::{self as pb, host_link_client::HostLinkClient},
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, transport::Endpoint};

use crate::{commands, stats::StatsReader};

/// Everything one link needs.
#[derive(Clone)]
pub struct LinkParams {
    pub server: String,
    pub token: String,
    pub hello: RawHello,
    pub reconnect_max: Duration,
    /// Whether to read `/proc` for heartbeats (off for lightweight simulated fleets).
    pub report_stats: bool,
    /// Devices, executions and the report spool; without it the link only answers pings.
    pub runtime: Option<Arc<crate::runtime::Runtime>>,
}

/// Unacknowledged reports are sent again after this long.
const RESEND_AFTER: Duration = Duration::from_secs(10);

/// How often devices' own statuses (a phone that went away) are read; changes are sent.
const STATUS_POLL: Duration = Duration::from_millis(500);

/// Things a link reports as they happen (logging in the agent, measurements in the benchmark).
pub trait LinkObserver: Send + Sync + 'static {
    fn connected(&self, _host_id: &str) {}
    fn heartbeat_acked(&self, _round_trip: Duration) {}
    /// An established session ended.
    fn disconnected(&self, _error: &LinkError) {}
    /// An attempt failed before the server welcomed the host.
    fn connect_failed(&self, _error: &LinkError) {}
}

/// The agent's default observer: logs.
pub struct LogObserver;

impl LinkObserver for LogObserver {
    fn connected(&self, host_id: &str) {
        tracing::info!(host_id, "connected to the server");
    }
    fn disconnected(&self, error: &LinkError) {
        tracing::warn!(error = %error, "link to the server lost");
    }
    fn connect_failed(&self, error: &LinkError) {
        match error {
            LinkError::Rejected(s) => {
                tracing::error!(code = ?s.code(), message = s.message(), "server rejected this host; check the enrollment token and config")
            }
            other => tracing::warn!(error = %other, "could not connect to the server"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("connecting: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("server rejected the host: {}", .0.message())]
    Rejected(tonic::Status),
    #[error("stream: {}", .0.message())]
    Stream(tonic::Status),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("server closed the stream")]
    Closed,
}

impl LinkError {
    fn from_status(s: tonic::Status) -> Self {
        use tonic::Code::*;
        match s.code() {
            Unauthenticated | PermissionDenied | InvalidArgument => LinkError::Rejected(s),
            _ => LinkError::Stream(s),
        }
    }
}

/// Runs the link until `shutdown`: connect, session, and on any failure back off and reconnect.
pub async fn run(params: LinkParams, observer: Arc<dyn LinkObserver>, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(250), params.reconnect_max);
    // Health checks run while the link runs, connected or not; results wait for a stream.
    if let Some(rt) = &params.runtime {
        tokio::spawn(crate::health::run(rt.clone(), shutdown.child_token()));
    }
    loop {
        let mut welcomed = false;
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = session(&params, observer.as_ref(), &mut welcomed, &mut backoff, &shutdown) => r,
        };
        // Nobody can watch through a link that is gone.
        if let Some(rt) = &params.runtime {
            rt.live.stop_all();
            rt.consoles.stop_all();
        }
        match result {
            Ok(()) => return,
            Err(e) => {
                if welcomed {
                    observer.disconnected(&e);
                } else {
                    observer.connect_failed(&e);
                }
                // A rejection will not fix itself quickly: wait the longest.
                let delay = if matches!(e, LinkError::Rejected(_)) {
                    params.reconnect_max
                } else {
                    backoff.next_delay()
                };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// One connection: returns `Ok` only on shutdown.
async fn session(
    params: &LinkParams,
    observer: &dyn LinkObserver,
    welcomed: &mut bool,
    backoff: &mut Backoff,
    shutdown: &CancellationToken,
) -> Result<(), LinkError> {
    let channel = Endpoint::from_shared(params.server.clone())
        .map_err(|e| LinkError::Protocol(format!("server address: {e}")))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    // Runs carry their reference images; the server accepts up to 64 MiB per message.
    let mut client = HostLinkClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel::<FromHost>(16);
    let running_executions = params
        .runtime
        .as_ref()
        .map(|r| r.running_executions())
        .unwrap_or_default();
    let mut raw = params.hello.clone();
    if let Some(rt) = &params.runtime {
        rt.complete_hello(&mut raw);
    }
    // What the server was last told about each device's own status.
    let mut told: HashMap<String, (Status, String)> = raw
        .devices
        .iter()
        .filter_map(|d| {
            d.status
                .map(|s| (d.key.clone(), (s, d.status_detail.clone())))
        })
        .collect();
    tx.send(FromHost::Hello(Hello {
        raw,
        running_executions,
    }))
    .await
    .map_err(|_| LinkError::Closed)?;
    let mut request = Request::new(ReceiverStream::new(rx).map(pb::HostMessage::from));
    let auth = format!("Bearer {}", params.token)
        .parse()
        .map_err(|_| LinkError::Protocol("token is not a valid header value".into()))?;
    request.metadata_mut().insert("authorization", auth);
    let mut inbound = client
        .session(request)
        .await
        .map_err(LinkError::from_status)?
        .into_inner();

    let welcome = match inbound
        .message()
        .await
        .map_err(LinkError::from_status)?
        .map(ToHost::try_from)
    {
        Some(Ok(ToHost::Welcome(w))) => w,
        Some(_) => return Err(LinkError::Protocol("expected a welcome first".into())),
        None => return Err(LinkError::Closed),
    };
    backoff.reset();
    *welcomed = true;
    observer.connected(&welcome.host_id);
    let interval = Duration::from_millis(u64::from(welcome.heartbeat_interval_ms.max(50)));
    // A random first delay spreads heartbeats of hosts that (re)connected together, e.g. after a
    // server restart, so the server never sees the whole fleet beat in the same millisecond.
    let first = interval.mul_f64(rand::random::<f64>());
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stats = params.report_stats.then(StatsReader::default);
    let runtime = params.runtime.clone();
    if let Some(rt) = &runtime {
        rt.spool.reset_sent();
        send_reports(rt, &tx).await?;
        rt.health.resend_all();
        send_health(rt, &tx).await?;
    }
    let mut resend = tokio::time::interval(RESEND_AFTER / 2);
    let mut statuses = tokio::time::interval(STATUS_POLL);
    statuses.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticker.tick() => {
                let hb = Heartbeat { sent_at_unix_micros: unix_micros(), stats: stats.as_mut().map(StatsReader::read) };
                tx.send(FromHost::Heartbeat(hb)).await.map_err(|_| LinkError::Closed)?;
            }
            _ = async {
                match &runtime {
                    Some(rt) => rt.reports.notified().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(rt) = &runtime {
                    send_reports(rt, &tx).await?;
                }
            }
            _ = async {
                match &runtime {
                    Some(rt) => rt.health.ready.notified().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(rt) = &runtime {
                    send_health(rt, &tx).await?;
                }
            }
            _ = statuses.tick() => {
                if let Some(rt) = &runtime {
                    for (key, status, detail) in rt.device_statuses() {
                        if told.get(&key) != Some(&(status, detail.clone())) {
                            told.insert(key.clone(), (status, detail.clone()));
                            let change = DeviceStatusChange { device_id: key, status: Some(status), detail };
                            tx.send(FromHost::DeviceStatus(change)).await.map_err(|_| LinkError::Closed)?;
                        }
                    }
                }
            }
            _ = resend.tick() => {
                if let Some(rt) = &runtime {
                    send_reports(rt, &tx).await?;
                }
            }
            msg = inbound.message() => {
                let Some(msg) = msg.map_err(LinkError::from_status)? else { return Err(LinkError::Closed) };
                let msg = match ToHost::try_from(msg) {
                    Ok(msg) => msg,
                    // A command this agent cannot understand is still answered.
                    Err(e) => {
                        if let Some(command_id) = e.command_id() {
                            tracing::warn!(command_id, error = %e, "command refused");
                            let reply = CommandReply { command_id: command_id.to_string(), outcome: Err(e.refusal()) };
                            tx.send(FromHost::CommandResult(reply)).await.map_err(|_| LinkError::Closed)?;
                        } else if !matches!(e, ConvertError::Empty) {
                            tracing::warn!(error = %e, "message from the server ignored");
                        }
                        continue;
                    }
                };
                match msg {
                    ToHost::HeartbeatAck { sent_at_unix_micros } => {
                        let rtt = unix_micros().saturating_sub(sent_at_unix_micros);
                        observer.heartbeat_acked(Duration::from_micros(rtt));
                    }
                    // Answered in line: it only starts, renews or stops a capture thread.
                    ToHost::Command(Command { command_id, kind: HostCommand::LiveView(lv) }) => {
                        let outcome = match &runtime {
                            Some(rt) => rt.live_view(&lv, tx.clone()).map(|()| Vec::new()).map_err(|e| e.refusal()),
                            None => Err(commands::CommandError::NoDevices.refusal()),
                        };
                        tx.send(FromHost::CommandResult(CommandReply { command_id, outcome })).await.map_err(|_| LinkError::Closed)?;
                    }
                    // Answered in line too: it only starts, renews or stops a console thread.
                    ToHost::Command(Command { command_id, kind: HostCommand::ConsoleWatch { device_id, on } }) => {
                        let outcome = match &runtime {
                            Some(rt) => rt.console_watch(&device_id, on, tx.clone()).map(|()| Vec::new()).map_err(|e| e.refusal()),
                            None => Err(commands::CommandError::NoDevices.refusal()),
                        };
                        tx.send(FromHost::CommandResult(CommandReply { command_id, outcome })).await.map_err(|_| LinkError::Closed)?;
                    }
                    ToHost::Command(cmd) => match &runtime {
                        Some(rt) => {
                            let (rt, tx) = (rt.clone(), tx.clone());
                            tokio::spawn(async move {
                                let reply = rt.handle(cmd).await;
                                let _ = tx.send(FromHost::CommandResult(reply)).await;
                            });
                        }
                        None => {
                            let reply = commands::handle_without_runtime(cmd);
                            tx.send(FromHost::CommandResult(reply)).await.map_err(|_| LinkError::Closed)?;
                        }
                    },
                    ToHost::ReportAck(ack) => {
                        if let Some(rt) = &runtime {
                            rt.spool.ack(&ack);
                        }
                    }
                    ToHost::Welcome(_) => return Err(LinkError::Protocol("unexpected second welcome".into())),
                }
            }
        }
    }
}

async fn send_health(
    rt: &crate::runtime::Runtime,
    tx: &mpsc::Sender<FromHost>,
) -> Result<(), LinkError> {
    for report in rt.health.take_unsent() {
        tx.send(FromHost::DeviceHealth(report))
            .await
            .map_err(|_| LinkError::Closed)?;
    }
    Ok(())
}

async fn send_reports(
    rt: &crate::runtime::Runtime,
    tx: &mpsc::Sender<FromHost>,
) -> Result<(), LinkError> {
    for report in rt.spool.due(RESEND_AFTER) {
        tx.send(FromHost::Report(report))
            .await
            .map_err(|_| LinkError::Closed)?;
    }
    Ok(())
}
