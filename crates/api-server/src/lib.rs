//! Labwright api-server: the REST API for people and CI, and the gRPC host link that lab hosts
//! keep open. `main.rs` only parses arguments; everything else is here so tests can run a real
//! server in-process (`start`) on ephemeral ports.

pub mod executions;
pub mod fleet;
pub mod grpc;
pub mod http;
pub mod keys;
pub mod library;
pub mod live;
pub mod platform;
pub mod sandboxes;

/// The platform modules at their short paths: every feature uses them, and `main.rs` and the
/// tests name them (`labwright_api_server::db::migrate`, ...).
pub use platform::{artifacts, config, db, error, events};

use std::{net::SocketAddr, sync::Arc, time::Duration};

use actix_web::{App, HttpServer, web};
use anyhow::Context;
use labwright_core::retry::Backoff;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// Largest message either side of the host link sends: a run with its reference images (8 MiB
/// each at most) or a step report with its screenshot.
pub const MAX_HOST_MESSAGE: usize = 64 << 20;

/// A running api-server. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub registry: Arc<fleet::Registry>,
    pub sandboxes: Arc<sandboxes::Sandboxes>,
    /// Keys and tenants (tests create a second tenant with it).
    pub keys: keys::Keys,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    http: actix_web::dev::ServerHandle,
}

impl RunningServer {
    /// Stops accepting, closes host streams (hosts reconnect elsewhere), flushes fleet state and
    /// publishes what is left, then returns.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.http.stop(true).await;
        self.registry.close_all();
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }

    /// A token that, once cancelled, makes [`RunningServer::wait`] return.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Feeds the `key.revoked` events of every replica (read back by the tap) to this replica's
/// revocations; after falling behind, catches up from the database.
async fn follow_revocations(
    tap: Arc<live::tap::EventTap>,
    keys: keys::Keys,
    shutdown: CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut rx = tap.subscribe();
    // Besides the events, the database every few seconds: a revocation whose event this
    // replica missed (its reader bound late, the broker was away) is cut off within seconds.
    let mut recheck = tokio::time::interval(Duration::from_secs(3));
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = recheck.tick() => {
                let since = chrono::Utc::now() - chrono::Duration::minutes(10);
                if let Err(e) = keys.catch_up(since).await {
                    tracing::debug!(error = %e, "could not re-check key revocations");
                }
                continue;
            }
            e = rx.recv() => e,
        };
        match event {
            Ok(e) => {
                if let Some(key) =
                    labwright_wire::bus::KeyRevoked::from_kind(&e.kind, e.payload.as_bytes())
                {
                    keys.revoked_elsewhere(labwright_core::ids::ApiKeyId(key));
                }
            }
            Err(RecvError::Lagged(_)) => {
                let since = chrono::Utc::now() - chrono::Duration::minutes(10);
                if let Err(e) = keys.catch_up(since).await {
                    tracing::warn!(error = %e, "could not catch up on key revocations");
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Waits for the database (retrying with backoff), applies migrations, creates the first tenant
/// on a fresh database, binds both listeners and starts every background task.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        match crate::db::migrate(&config.database_url).await {
            Ok(()) => break,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "database not ready");
                tokio::time::sleep(delay).await;
            }
        }
    }
    artifacts::private_dir(&config.data_dir)
        .with_context(|| format!("data_dir {}", config.data_dir.display()))?;
    let pool = crate::db::pool(&config.database_url, config.database_pool_size);
    let broker = events::Broker::new(
        config.amqp_url.clone(),
        labwright_wire::bus::Names::new(&config.namespace, &config.events_exchange),
    );
    let keys = keys::Keys::new(
        keys::db::KeyStore::new(pool.clone()),
        keys::Throttle::from_config(&config),
        broker.clone(),
    );
    keys::bootstrap(&keys, &config.data_dir)
        .await
        .context("bootstrapping the first tenant")?;

    let registry = Arc::new(fleet::Registry::new(config.offline_after()));
    let artifacts =
        artifacts::Artifacts::open(&config.artifacts_url).context("opening the artifact store")?;
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    // Runs survive their host being gone for as long as the host itself is considered alive, plus
    // the time a reconnecting agent needs.
    let grace = config.offline_after() * 2 + Duration::from_secs(2);
    let fleet_store = fleet::db::FleetStore::new(pool.clone());
    let execution_store = executions::db::ExecutionStore::new(pool.clone());
    let library_store = library::db::LibraryStore::new(pool.clone());
    let library = Arc::new(library::Library::new(
        library_store.clone(),
        fleet_store.clone(),
        artifacts.clone(),
    ));
    let fleet = Arc::new(fleet::Fleet::new(
        fleet_store.clone(),
        execution_store.clone(),
        registry.clone(),
        broker.clone(),
    ));
    let lab = executions::Lab::new(
        execution_store,
        fleet_store.clone(),
        library_store,
        library.clone(),
        registry.clone(),
        artifacts.clone(),
        broker.clone(),
        grace,
        shutdown.clone(),
    );
    tasks.push(tokio::spawn(lab.clone().run_dispatcher(shutdown.clone())));

    tasks.push(tokio::spawn(
        broker.clone().run_publisher(pool.clone(), shutdown.clone()),
    ));
    let sandboxes = sandboxes::Sandboxes::new(
        sandboxes::db::BuildStore::new(pool.clone()),
        broker.clone(),
        config.builds_allow_private_hosts,
        sandboxes::db::SessionTtl {
            ttl_secs: config.session_ttl_secs,
            max_ttl_secs: config.session_max_ttl_secs,
        },
        sandboxes::Terminals {
            key: keys::terminal_key(&config)?,
            url: config.terminal_url.trim_end_matches('/').to_string(),
        },
    );
    tasks.push(tokio::spawn(
        sandboxes.clone().run_update_consumer(shutdown.clone()),
    ));
    tasks.push(tokio::spawn(
        sandboxes.clone().run_dead_letter_consumer(shutdown.clone()),
    ));
    tasks.push(tokio::spawn(
        sandboxes.clone().run_session_sweeper(shutdown.clone()),
    ));
    let timing = fleet::FlushTiming::new(config.heartbeat_interval(), config.offline_after());
    tasks.push(tokio::spawn(fleet::run_flusher(
        registry.clone(),
        fleet_store,
        broker.clone(),
        timing,
        shutdown.clone(),
    )));

    // gRPC
    let grpc_listener = tokio::net::TcpListener::bind(config.grpc_addr)
        .await
        .with_context(|| format!("binding gRPC on {}", config.grpc_addr))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let live = live::LiveHub::new(registry.clone());
    let tap = live::tap::EventTap::new();
    tasks.push(tokio::spawn(
        tap.clone().run(broker.clone(), shutdown.clone()),
    ));
    tasks.push(tokio::spawn(follow_revocations(
        tap.clone(),
        keys.clone(),
        shutdown.clone(),
    )));
    let service = grpc::HostLinkService {
        live: live.clone(),
        keys: keys.clone(),
        fleet: fleet.clone(),
        registry: registry.clone(),
        heartbeat_interval: config.heartbeat_interval(),
        lab: lab.clone(),
        // Leave a few connections for the REST API and the background writers.
        admission: Arc::new(tokio::sync::Semaphore::new(
            (config.database_pool_size as usize)
                .saturating_sub(4)
                .max(1),
        )),
    };
    // Reflection describes the host link to anyone who can reach the port: only when asked for.
    let reflection = if config.grpc_reflection {
        Some(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(labwright_wire::FILE_DESCRIPTOR_SET)
                .build_v1()
                .context("building gRPC reflection")?,
        )
    } else {
        None
    };
    let grpc_shutdown = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        // With our own listener tonic's `tcp_nodelay` does not apply: without it Nagle's algorithm
        // holds small messages (a command to a host) back by tens of milliseconds.
        let incoming = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
            |conn| {
                conn.inspect(|s| {
                    if let Err(e) = s.set_nodelay(true) {
                        tracing::debug!(error = %e, "could not set TCP_NODELAY");
                    }
                })
            },
        );
        let res = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(service.into_server(MAX_HOST_MESSAGE))
            .add_optional_service(reflection)
            .serve_with_incoming_shutdown(incoming, grpc_shutdown.cancelled_owned())
            .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "gRPC server failed");
        }
    }));

    // REST
    let http_listener = std::net::TcpListener::bind(config.http_addr)
        .with_context(|| format!("binding HTTP on {}", config.http_addr))?;
    let http_addr = http_listener.local_addr()?;
    // Each handler takes the service of its feature (and the `Caller` extractor, `Keys`).
    let keys_data = web::Data::new(keys.clone());
    let fleet_data = web::Data::from(fleet.clone());
    let lab_data = web::Data::from(lab.clone());
    let library_data = web::Data::from(library);
    let sandboxes_data = web::Data::from(sandboxes.clone());
    let live_data = web::Data::new(live::Live {
        hub: live,
        tap: tap.clone(),
        fleet,
        shutdown: shutdown.clone(),
    });
    let health = web::Data::new(platform::health::Health::new(
        db::Store::new(pool.clone()),
        broker.clone(),
    ));
    let site = web::Data::new(http::Site {
        ui_dir: config.ui_dir.clone(),
    });
    let http_server = HttpServer::new(move || {
        App::new()
            .app_data(keys_data.clone())
            .app_data(fleet_data.clone())
            .app_data(lab_data.clone())
            .app_data(library_data.clone())
            .app_data(sandboxes_data.clone())
            .app_data(live_data.clone())
            .app_data(health.clone())
            .app_data(site.clone())
            .wrap(
                actix_web::middleware::Logger::new("%{request}xi %s %Dms")
                    .custom_request_replace("request", http::logged_request)
                    .log_target("labwright::http"),
            )
            .configure(http::configure)
    })
    .workers(2)
    .shutdown_timeout(5)
    .disable_signals()
    .listen(http_listener)?
    .run();
    let http = http_server.handle();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = http_server.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    }));

    tracing::info!(%http_addr, %grpc_addr, "api-server listening");
    Ok(RunningServer {
        http_addr,
        grpc_addr,
        registry,
        sandboxes,
        keys,
        shutdown,
        tasks,
        http,
    })
}
