//! The terminal gateway: an interactive shell inside a sandbox session's container, over a
//! WebSocket, for whoever holds a ticket the api-server signed for that session.
//!
//! `GET /terminal/{session}?ticket=…[&cols=…&rows=…]` upgrades to a WebSocket (the protocol is
//! in `labwright_core::terminal` and `docs/terminal.md`); `/healthz`, `/readyz` serve
//! operators, and `/metrics` too on an address of its own (`metrics_addr`, loopback by default). The gateway needs no database: the ticket says everything, the container's
//! labels confirm it.

pub mod config;
pub mod engine;
pub mod metrics;
pub mod recording;
pub mod revocations;
mod terminal;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, get, web};
use anyhow::Context;
use labwright_core::terminal::TicketKey;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

pub use config::Config;
use engine::Engine;
use metrics::Metrics;
use recording::Recordings;
use revocations::Revocations;

/// Everything a terminal needs, shared by all of them.
pub struct Gateway {
    pub config: Config,
    key: TicketKey,
    engine: Engine,
    pub metrics: Metrics,
    pub recordings: Option<Recordings>,
    /// Revoked keys (from the api-server's events) and the open terminals of each key.
    pub revocations: Revocations,
    used: Mutex<UsedTickets>,
    open: Mutex<HashMap<Uuid, usize>>,
    shutdown: CancellationToken,
    /// Recordings being stored and shells being ended: waited for on shutdown.
    pub background: TaskTracker,
}

/// Ticket ids seen, until their tickets expire (then they would be refused anyway).
#[derive(Default)]
struct UsedTickets {
    seen: HashMap<Uuid, i64>,
    prune_at: usize,
}

impl UsedTickets {
    /// False if `jti` was used before.
    fn first_use(&mut self, jti: Uuid, exp: i64, now: i64) -> bool {
        if self.seen.len() >= self.prune_at {
            self.seen.retain(|_, e| *e >= now);
            self.prune_at = (self.seen.len() * 2).max(1024);
        }
        self.seen.insert(jti, exp).is_none()
    }
}

/// A place among the open terminals; given back when dropped.
pub(crate) struct Slot {
    gateway: Arc<Gateway>,
    tenant: Uuid,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.gateway.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.tenant);
            }
        }
        self.gateway
            .metrics
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Gateway {
    pub(crate) fn first_use(&self, jti: Uuid, exp: i64, now: i64) -> bool {
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first_use(jti, exp, now)
    }

    /// A slot for one more terminal of `tenant`, if the caps allow it.
    pub(crate) fn slot(self: &Arc<Self>, tenant: Uuid) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = open.values().sum();
        let mine = open.get(&tenant).copied().unwrap_or(0);
        if total >= self.config.max_terminals || mine >= self.config.max_terminals_per_tenant {
            return None;
        }
        *open.entry(tenant).or_default() += 1;
        self.metrics
            .open
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(Slot {
            gateway: self.clone(),
            tenant,
        })
    }
}

/// A started gateway.
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served.
    pub metrics_addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    http: actix_web::dev::ServerHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    metrics: (
        actix_web::dev::ServerHandle,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ),
}

impl Running {
    /// Closes every terminal (code 1001), stops listening, waits for recordings to be stored.
    pub async fn shutdown(self) {
        self.gateway.shutdown.cancel();
        self.http.stop(true).await;
        let _ = self.server.await;
        self.metrics.0.stop(true).await;
        let _ = self.metrics.1.await;
        self.gateway.background.close();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.gateway.background.wait()).await;
    }
}

/// Connects to the Docker engine (once), then [`start_with`] it.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let engine = Engine::connect(&config.docker_host, config.managed_label())
        .await
        .context("connecting to the Docker engine")?;
    start_with(config, engine).await
}

/// Reads the ticket secret, opens the recording store and starts serving with `engine` (the
/// binary connects it with retries, see `labwright_service::ready`).
pub async fn start_with(config: Config, engine: Engine) -> anyhow::Result<Running> {
    let secret = std::fs::read(&config.ticket_secret_file).with_context(|| {
        format!(
            "reading the ticket secret {}",
            config.ticket_secret_file.display()
        )
    })?;
    let key = TicketKey::from_secret(&secret).map_err(anyhow::Error::msg)?;
    let recordings = if config.recordings_url.is_empty() {
        None
    } else {
        Some(
            Recordings::open(&config.recordings_url, config.recording_max_mib)
                .context("opening the recording store")?,
        )
    };
    let gateway = Arc::new(Gateway {
        key,
        engine,
        metrics: Metrics::default(),
        recordings,
        revocations: Revocations::default(),
        used: Mutex::default(),
        open: Mutex::default(),
        shutdown: CancellationToken::new(),
        background: TaskTracker::new(),
        config,
    });
    if gateway.config.amqp_url.is_empty() {
        tracing::warn!("amqp_url is empty: revoked keys keep their terminals and tickets");
    } else {
        let g = gateway.clone();
        gateway.background.spawn(async move {
            g.revocations
                .follow(
                    g.config.amqp_url.clone(),
                    g.config.events_exchange.clone(),
                    g.shutdown.clone(),
                )
                .await;
        });
    }
    let data = web::Data::from(gateway.clone());
    let workers = match gateway.config.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .service(terminal_ws)
            .service(healthz)
            .service(readyz)
    })
    .on_connect(|conn, _| {
        // Keystrokes are tiny writes: never hold them back.
        if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
            let _ = tcp.set_nodelay(true);
        }
    })
    .workers(workers)
    .shutdown_timeout(5)
    .disable_signals()
    .bind(gateway.config.listen_addr)
    .with_context(|| format!("binding {}", gateway.config.listen_addr))?;
    let addr = server.addrs()[0];
    let metrics_data = web::Data::from(gateway.clone());
    let metrics_server = HttpServer::new(move || {
        App::new()
            .app_data(metrics_data.clone())
            .service(metrics_text)
    })
    .workers(1)
    .shutdown_timeout(1)
    .disable_signals()
    .bind(gateway.config.metrics_addr)
    .with_context(|| format!("binding metrics on {}", gateway.config.metrics_addr))?;
    let metrics_addr = metrics_server.addrs()[0];
    let metrics_server = metrics_server.run();
    let metrics_http = metrics_server.handle();
    let metrics_task = tokio::spawn(metrics_server);
    let server = server.run();
    let http = server.handle();
    let server = tokio::spawn(server);
    tracing::info!(%addr, %metrics_addr, "terminal gateway listening");
    Ok(Running {
        addr,
        metrics_addr,
        gateway,
        http,
        server,
        metrics: (metrics_http, metrics_task),
    })
}

/// The query of a terminal URL. Sizes are read leniently (a bad one gives the default), so a
/// bad size never hides the ticket.
#[derive(serde::Deserialize, Default)]
struct Connect {
    ticket: Option<String>,
    cols: Option<String>,
    rows: Option<String>,
}

/// The terminal WebSocket. Every refusal happens after the upgrade, as a close code and reason
/// the browser can read (a failed upgrade tells a page nothing).
#[get("/terminal/{session}")]
async fn terminal_ws(
    gateway: web::Data<Gateway>,
    req: HttpRequest,
    body: web::Payload,
    session: web::Path<String>,
) -> actix_web::Result<HttpResponse> {
    let (response, ws, stream) = actix_ws::handle(&req, body)?;
    let stream = stream
        .max_frame_size(gateway.config.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(gateway.config.max_frame_bytes);
    // The query carries the ticket: parse it here, never log it.
    let q = web::Query::<Connect>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let size = |v: Option<String>, default: u16| v.and_then(|v| v.parse().ok()).unwrap_or(default);
    let request = terminal::Request {
        session: Uuid::parse_str(&session).ok(),
        ticket: q.ticket,
        cols: size(q.cols, 80),
        rows: size(q.rows, 24),
    };
    actix_web::rt::spawn(terminal::serve(gateway.into_inner(), request, ws, stream));
    Ok(response)
}

#[get("/metrics")]
async fn metrics_text(gateway: web::Data<Gateway>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(gateway.metrics.render())
}

#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

/// Ready when the Docker engine answers.
#[get("/readyz")]
async fn readyz(gateway: web::Data<Gateway>) -> HttpResponse {
    match tokio::time::timeout(Duration::from_secs(2), gateway.engine.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().body("ready"),
        Ok(Err(e)) => HttpResponse::ServiceUnavailable().body(e.to_string()),
        Err(_) => HttpResponse::ServiceUnavailable().body("Docker engine: no answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_id_is_accepted_once_and_forgotten_after_it_expires() {
        let mut used = UsedTickets::default();
        let a = Uuid::new_v4();
        assert!(used.first_use(a, 100, 50));
        assert!(!used.first_use(a, 100, 60));
        for _ in 0..2000 {
            used.first_use(Uuid::new_v4(), 10, 50);
        }
        // Pruned: only the unexpired one and the ones added since the prune remain.
        assert!(used.seen.len() < 2000);
        assert!(used.seen.contains_key(&a));
    }
}
