//! Mains power through the whole platform to a real protocol peer: `POST
//! /api/v1/devices/{id}/power` on the api-server, the host command over gRPC, the host-agent's
//! composite device with `[settings.power]` (a Kasa plug), the Kasa driver, and the in-process
//! Kasa plug of the drivers' tests (checked there against python-kasa) switching for real.

mod support;

#[path = "../../drivers/tests/plug_peer/mod.rs"]
mod plug_peer;

use std::time::Duration;

use plug_peer::{Kind, Peer};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_power_action_switches_a_plug_and_reports_what_it_reads_back() {
    let peer = Peer::start(Kind::Kasa, None);
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let base = s.url("");
    let token = s.create_key("host", "plug host").await;
    let settings = format!(
        "[power]\ndriver = \"kasa\"\naddress = \"{}\"\nmin_off_ms = 100\nsettle_ms = 1000\n",
        peer.address()
    );
    let device = labwright_host_agent::config::DeviceConfig {
        id: "plugged-1".into(),
        name: "Box on a Kasa plug".into(),
        model: "stb-x".into(),
        driver: "composite".into(),
        tags: vec![],
        settings: toml::from_str(&settings).expect("settings"),
    };
    let agent = spawn_host(
        s.grpc(),
        &token,
        "plug-host",
        vec![device],
        &temp_dir("agent"),
    );
    let device = eventually(Duration::from_secs(60), "device online", || async {
        let (_, page) = s.get(&s.admin_key, "/api/v1/devices?status=online").await;
        let d = page["items"].as_array()?.first()?.clone();
        assert_eq!(d["capabilities"], json!(["power"]), "{d}");
        d["id"].as_str().map(str::to_owned)
    })
    .await;

    let (status, body) = power(&base, &s.admin_key, &device, "state").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("off")),
        "{body}"
    );
    let (status, body) = power(&base, &s.admin_key, &device, "on").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("on")),
        "{body}"
    );
    assert!(peer.is_on());
    let (status, body) = power(&base, &s.admin_key, &device, "cycle").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("on")),
        "{body}"
    );
    let requests = peer.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("\"set_relay_state\":{\"state\":0}")),
        "the cycle switched off: {requests:?}"
    );

    // A plug that answers but does not switch is an error, not a silent success.
    peer.set(|st| st.stuck = true);
    let (status, body) = power(&base, &s.admin_key, &device, "off").await;
    assert!(status >= 400, "{status} {body}");
    assert!(
        body.to_string().contains("power.not_switched"),
        "{status} {body}"
    );
    assert!(peer.is_on());
    agent.stop.cancel();
}
