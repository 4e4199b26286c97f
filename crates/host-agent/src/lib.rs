//! Labwright host-agent: runs on a lab host (a Raspberry Pi in production, anything Linux here),
//! drives the devices attached to it and keeps one gRPC stream open to the api-server.
//!
//! Modules, one job each: `config` (the file and environment), `drivers` (the driver registry:
//! devices built from config), `runtime` (the host's state: devices, running executions, spool,
//! live views), `commands` (the server's direct commands), `runner` (executions and their
//! screenshot encoder), `spool` (reports on disk until acknowledged), `live` (live view),
//! `link` (the stream to the server: the only module that names wire types), `health` (device
//! health checks on a schedule and on hot-plug), `stats`, `systemd`,
//! `ir` (the `host-agent ir` tools for technicians).

pub mod commands;
pub mod config;
pub mod console;
pub mod drivers;
pub mod health;
pub mod ir;
pub mod link;
pub mod live;
pub mod runner;
pub mod runtime;
pub mod spool;
pub mod stats;
pub mod systemd;

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

pub use config::Config;

/// Runs the agent until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let token = config
        .token()
        .map_err(|e| anyhow::anyhow!("enrollment token: {e}"))?;
    let runtime = Arc::new(
        runtime::Runtime::new(&config.devices, &config.state_dir)
            .map_err(|e| anyhow::anyhow!(e))?
            .with_health(health::Monitor::new(
                Duration::from_millis(config.health_interval_ms),
                config.console_probes.clone().into_iter().collect(),
            )),
    );
    // Devices that connect in the background (phones) get a moment to say who they are.
    let waiting = runtime.clone();
    let _ =
        tokio::task::spawn_blocking(move || waiting.wait_for_devices(Duration::from_secs(5))).await;
    let params = link::LinkParams {
        server: config.server.clone(),
        token,
        hello: config.hello(),
        reconnect_max: Duration::from_millis(config.reconnect_max_ms),
        report_stats: true,
        runtime: Some(runtime),
    };
    tracing::info!(server = %config.server, host_name = %config.host_name, devices = config.devices.len(), "host-agent starting");
    systemd::notify("READY=1");
    let watchdog = systemd::watchdog_interval().map(|every| {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = t.tick() => systemd::notify("WATCHDOG=1"),
                }
            }
        })
    });
    link::run(params, Arc::new(link::LogObserver), shutdown).await;
    systemd::notify("STOPPING=1");
    if let Some(w) = watchdog {
        w.abort();
    }
    tracing::info!("host-agent stopped");
    Ok(())
}
