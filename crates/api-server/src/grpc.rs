//! The gRPC host link: one bidirectional stream per host. Authenticates the enrollment token,
//! validates the hello, persists the host and its devices, then relays heartbeats, device status
//! changes and command results to the live registry, and server commands down to the host.
//!
//! The only module of the api-server that names wire (`v1`) types: the rest of the server speaks
//! the link's domain types (`labwright_wire::host_link`), converted here at the stream.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::Stream;
use labwright_core::{auth::Permission, fleet::Status, health::Health, ids::HostId, validate};
use labwright_wire::{
    host_link::{ConvertError, DeviceHealthReport, DeviceStatusChange, FromHost, ToHost, Welcome},
    v1::{
        self as pb,
        host_link_server::{HostLink, HostLinkServer},
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status as GrpcStatus, Streaming};
use uuid::Uuid;

use crate::{
    error::ApiError,
    fleet::{DisconnectReason, Fleet, Registry},
    keys::{self, Keys},
};

/// How long a host has to send its hello after opening the stream.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages buffered towards one host before the server waits for the host to read.
const OUTBOUND_BUFFER: usize = 32;

pub struct HostLinkService {
    /// Resolves enrollment tokens (throttled, watching their revocation) and binds them to
    /// their host.
    pub keys: Keys,
    pub fleet: Arc<Fleet>,
    pub registry: Arc<Registry>,
    pub heartbeat_interval: Duration,
    pub lab: Arc<crate::executions::Lab>,
    pub live: Arc<crate::live::LiveHub>,
    /// Bounds the database work of connecting hosts, so a reconnect storm (every host of a lab
    /// after a server restart) queues here instead of exhausting the pool and failing.
    pub admission: Arc<tokio::sync::Semaphore>,
}

/// How long a connecting host may wait for its turn before it is told to come back later.
const ADMISSION_TIMEOUT: Duration = Duration::from_secs(30);

impl HostLinkService {
    /// The tonic service, taking messages up to `max_message` bytes each way.
    pub fn into_server(self, max_message: usize) -> HostLinkServer<Self> {
        HostLinkServer::new(self)
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message)
    }

    async fn admit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, GrpcStatus> {
        match tokio::time::timeout(ADMISSION_TIMEOUT, self.admission.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(GrpcStatus::unavailable(
                "server busy admitting hosts; retry later",
            )),
        }
    }
}

type ServerStream = Pin<Box<dyn Stream<Item = Result<pb::ServerMessage, GrpcStatus>> + Send>>;

#[tonic::async_trait]
impl HostLink for HostLinkService {
    type SessionStream = ServerStream;

    async fn session(
        &self,
        request: Request<Streaming<pb::HostMessage>>,
    ) -> Result<Response<Self::SessionStream>, GrpcStatus> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let token = keys::bearer(header)?;
        let source = request.remote_addr().map(|a| a.ip());
        let caller = {
            let _permit = self.admit().await?;
            self.keys.authenticate(token, source).await?
        };
        caller.require(Permission::ConnectHost)?;

        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| GrpcStatus::deadline_exceeded("no hello within 10 s"))??;
        let Some(Ok(FromHost::Hello(hello))) = first.map(FromHost::try_from) else {
            return Err(
                ApiError::InvalidArgument("the first message must be a hello".into()).into(),
            );
        };
        if hello.running_executions.len() > 1024 {
            return Err(
                ApiError::InvalidArgument("running_executions: at most 1024".into()).into(),
            );
        }
        let running = hello.running_executions;
        let hello = hello.raw.validate().map_err(ApiError::from)?;
        {
            let _permit = self.admit().await?;
            self.keys.bind_host(&caller, &hello.host_name).await?;
        }

        let connection_id = Uuid::new_v4();
        let host = {
            let _permit = self.admit().await?;
            self.fleet
                .hello(caller.tenant, &hello, connection_id)
                .await?
        };
        tracing::info!(host_id = %host, host_name = %hello.host_name, tenant_id = %caller.tenant, devices = hello.devices.len(), "host connected");

        let (tx, rx) = mpsc::channel(OUTBOUND_BUFFER);
        let welcome = ToHost::Welcome(Welcome {
            host_id: host.to_string(),
            tenant_id: caller.tenant.to_string(),
            heartbeat_interval_ms: self.heartbeat_interval.as_millis() as u32,
            server_version: env!("CARGO_PKG_VERSION").into(),
        });
        tx.try_send(Ok(Box::new(welcome)))
            .map_err(|_| GrpcStatus::internal("outbound buffer full"))?;
        let killed = self
            .registry
            .register(host, caller.tenant, connection_id, tx.clone());
        let lab = self.lab.clone();
        tokio::spawn(async move {
            if let Err(e) = lab.host_connected(host, &running).await {
                tracing::warn!(host_id = %host, error = %e, "could not reconcile the host's executions");
            }
        });
        let device_keys: Vec<String> = hello.devices.into_iter().map(|d| d.key).collect();
        tokio::spawn(read_stream(
            self.lab.clone(),
            self.live.clone(),
            caller.tenant,
            self.registry.clone(),
            host,
            connection_id,
            inbound,
            tx,
            killed,
            caller.revoked.clone(),
            device_keys,
        ));
        Ok(Response::new(Box::pin(tokio_stream::StreamExt::map(
            ReceiverStream::new(rx),
            |m: crate::fleet::Outgoing| m.map(|b| pb::ServerMessage::from(*b)).map_err(|e| *e),
        ))))
    }
}

/// Reads one host's stream until it ends or the server closes it.
#[allow(clippy::too_many_arguments)]
async fn read_stream(
    lab: Arc<crate::executions::Lab>,
    live: Arc<crate::live::LiveHub>,
    tenant: labwright_core::ids::TenantId,
    registry: Arc<Registry>,
    host: HostId,
    connection_id: Uuid,
    mut inbound: Streaming<pb::HostMessage>,
    tx: crate::fleet::Outbound,
    mut killed: tokio::sync::oneshot::Receiver<DisconnectReason>,
    revoked: tokio_util::sync::CancellationToken,
    device_keys: Vec<String>,
) {
    let reason = loop {
        let msg = tokio::select! {
            reason = &mut killed => break reason.unwrap_or(DisconnectReason::Closed),
            _ = revoked.cancelled() => {
                tracing::info!(host_id = %host, "enrollment token revoked: closing the host link");
                let _ = tx
                    .send(Err(Box::new(GrpcStatus::unauthenticated(
                        "the enrollment token was revoked",
                    ))))
                    .await;
                break DisconnectReason::Closed;
            }
            msg = inbound.message() => msg,
        };
        let body = match msg.map(|m| m.map(FromHost::try_from)) {
            Ok(Some(Ok(body))) => body,
            // Empty (or from a newer host, unknown): nothing to do.
            Ok(Some(Err(ConvertError::Empty))) => continue,
            Ok(Some(Err(e))) => {
                tracing::debug!(host_id = %host, error = %e, "unreadable message from host");
                continue;
            }
            Ok(None) => break DisconnectReason::Closed,
            Err(status) => {
                tracing::debug!(host_id = %host, error = %status, "host stream error");
                break DisconnectReason::Closed;
            }
        };
        match body {
            FromHost::Heartbeat(hb) => {
                if !registry.heartbeat(host, connection_id, hb.stats.map(|s| s.sanitized())) {
                    break DisconnectReason::Superseded;
                }
                let ack = ToHost::HeartbeatAck {
                    sent_at_unix_micros: hb.sent_at_unix_micros,
                };
                if tx.send(Ok(Box::new(ack))).await.is_err() {
                    break DisconnectReason::Closed;
                }
            }
            FromHost::DeviceStatus(change) => match device_change(&change, &device_keys) {
                Ok((status, detail)) => registry.queue(crate::fleet::registry_change(
                    host,
                    connection_id,
                    change.device_id,
                    status,
                    detail,
                )),
                Err(e) => {
                    tracing::warn!(host_id = %host, error = %e, "invalid device status from host");
                    let _ = tx.send(Err(Box::new(ApiError::from(e).into()))).await;
                    break DisconnectReason::Closed;
                }
            },
            FromHost::DeviceHealth(report) => match device_health(&report, &device_keys) {
                Ok((health, checked_at)) => registry.queue(crate::fleet::health_change(
                    host,
                    connection_id,
                    report.device_id,
                    health,
                    report.reason,
                    checked_at,
                )),
                Err(e) => {
                    tracing::warn!(host_id = %host, error = %e, "invalid device health from host");
                    let _ = tx.send(Err(Box::new(ApiError::from(e).into()))).await;
                    break DisconnectReason::Closed;
                }
            },
            FromHost::Report(body) => lab.submit(crate::executions::Report { host, tenant, body }),
            FromHost::LiveFrame(frame) => {
                // Only the host's own devices; a frame for anything else is ignored.
                if device_keys.contains(&frame.device_id) {
                    live.publish(host, frame);
                }
            }
            FromHost::ConsoleOutput(output) => {
                if device_keys.contains(&output.device_id) {
                    live.consoles.publish(host, output);
                }
            }
            FromHost::CommandResult(result) => {
                registry.complete_command(host, connection_id, result)
            }
            FromHost::Hello(_) => {
                let _ = tx
                    .send(Err(Box::new(GrpcStatus::invalid_argument(
                        "hello may only be sent once per stream",
                    ))))
                    .await;
                break DisconnectReason::Closed;
            }
        }
    };
    registry.stream_ended(host, connection_id, reason);
    tracing::info!(host_id = %host, reason = reason.as_str(), "host stream ended");
}

fn known_device(id: &str, known: &[String]) -> Result<(), labwright_core::ValidationError> {
    validate::slug("device_id", id, labwright_core::fleet::MAX_DEVICE_KEY_LEN)?;
    if !known.iter().any(|k| k == id) {
        return Err(labwright_core::ValidationError::new(
            "device_id",
            format!("device {id:?} was not declared in the hello"),
        ));
    }
    Ok(())
}

/// A health report's device (declared in the hello), health, reason (bounded text) and check
/// time (not in the future beyond clock skew; the server's clock when missing).
fn device_health(
    r: &DeviceHealthReport,
    known: &[String],
) -> Result<(Health, chrono::DateTime<chrono::Utc>), labwright_core::ValidationError> {
    known_device(&r.device_id, known)?;
    let health = r.health.ok_or_else(|| {
        labwright_core::ValidationError::new("health", "must be healthy, degraded or unhealthy")
    })?;
    validate::optional_text("reason", &r.reason, labwright_core::health::MAX_REASON_LEN)?;
    let now = chrono::Utc::now();
    let checked_at = i64::try_from(r.checked_at_unix_micros)
        .ok()
        .filter(|us| *us > 0)
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map_or(now, |t| t.min(now));
    Ok((health, checked_at))
}

fn device_change(
    c: &DeviceStatusChange,
    known: &[String],
) -> Result<(Status, String), labwright_core::ValidationError> {
    validate::slug(
        "device_id",
        &c.device_id,
        labwright_core::fleet::MAX_DEVICE_KEY_LEN,
    )?;
    if !known.contains(&c.device_id) {
        return Err(labwright_core::ValidationError::new(
            "device_id",
            format!("device {:?} was not declared in the hello", c.device_id),
        ));
    }
    let status = c.status.ok_or_else(|| {
        labwright_core::ValidationError::new("status", "must be online, offline or error")
    })?;
    validate::optional_text("detail", &c.detail, labwright_core::fleet::MAX_INFO_LEN)?;
    Ok((status, c.detail.clone()))
}
