//! The smart-plug drivers against in-process plugs (`plug_peer`), and those plugs checked against
//! the real clients: Debian's `curl` for the HTTP ones, `python-kasa` (PyPI, in the tests'
//! virtualenv: `LABWRIGHT_TEST_PYTHON_KASA` is its Python, set by `scripts/test`) for Kasa, which
//! switches the plug and reads its state while the driver does the same.

mod plug_peer;

use std::{path::PathBuf, process::Command, time::Duration};

use labwright_drivers::power::{self, Power, PowerSettings};
use plug_peer::{Kind, Peer};

fn settings(text: &str) -> PowerSettings {
    let s = PowerSettings::from_table(&toml::from_str(text).expect("toml")).expect("settings");
    assert!(s.check().is_empty(), "{:?}", s.check());
    s
}

fn open(text: &str) -> Power {
    power::open(&settings(text)).unwrap_or_else(|e| panic!("open: {e}"))
}

fn password_file(password: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lw-plugs-{}-{}", std::process::id(), uuid_ish()));
    std::fs::create_dir_all(&dir).expect("dir");
    let p = dir.join("password");
    std::fs::write(&p, format!("{password}\n")).expect("write");
    p
}

fn uuid_ish() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// `curl` GET of `url`: the status and the body.
fn curl(url: &str, extra: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl (Debian package curl) runs");
    assert!(out.status.success(), "curl {url}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("status line");
    (status.trim().parse().expect("status"), body.to_string())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}"))
}

#[test]
fn tasmota_peer_answers_curl_and_the_driver_switches_it() {
    let peer = Peer::start(Kind::Tasmota, Some(("admin", "s3cret &x")));
    let base = format!("http://{}", peer.address());
    // The real client: Tasmota's documented command URLs.
    let (status, body) = curl(
        &format!("{base}/cm?user=admin&password=s3cret%20%26x&cmnd=Power%20On"),
        &[],
    );
    assert_eq!(
        (status, json(&body)),
        (200, serde_json::json!({"POWER": "ON"}))
    );
    let (status, body) = curl(
        &format!("{base}/cm?user=admin&password=s3cret%20%26x&cmnd=Power1"),
        &[],
    );
    assert_eq!((status, json(&body)["POWER"].clone()), (200, "ON".into()));
    let (status, body) = curl(&format!("{base}/cm?cmnd=Power%20Off"), &[]);
    assert_eq!(status, 401);
    assert!(body.contains("Need user="), "{body}");
    assert!(peer.is_on());

    let file = password_file("s3cret &x");
    let plug = open(&format!(
        "driver = \"tasmota\"\naddress = \"{}\"\nuser = \"admin\"\npassword_file = \"{}\"",
        peer.address(),
        file.display()
    ));
    plug.switch(false).expect("off");
    assert!(!peer.is_on());
    assert!(!plug.read().expect("read"));
    plug.power_cycle(Duration::ZERO).expect("cycle");
    assert!(peer.is_on());

    let wrong = password_file("guess");
    let plug = open(&format!(
        "driver = \"tasmota\"\naddress = \"{}\"\nuser = \"admin\"\npassword_file = \"{}\"",
        peer.address(),
        wrong.display()
    ));
    let e = plug.switch(false).expect_err("wrong password");
    assert_eq!(e.code(), "power.unauthorized", "{e}");
    assert!(peer.is_on());
}

#[test]
fn shelly_gen1_peer_answers_curl_and_the_driver_switches_it() {
    let peer = Peer::start(Kind::ShellyGen1, Some(("admin", "pw")));
    let base = format!("http://{}", peer.address());
    let (status, body) = curl(&format!("{base}/relay/0?turn=on"), &["-u", "admin:pw"]);
    assert_eq!((status, json(&body)["ison"].clone()), (200, true.into()));
    let (status, _) = curl(&format!("{base}/relay/0"), &["-u", "admin:nope"]);
    assert_eq!(status, 401);
    let (status, _) = curl(&format!("{base}/relay/3"), &["-u", "admin:pw"]);
    assert_eq!(status, 404);

    let file = password_file("pw");
    let plug = open(&format!(
        "driver = \"shelly1\"\naddress = \"{}\"\nuser = \"admin\"\npassword_file = \"{}\"",
        peer.address(),
        file.display()
    ));
    plug.switch(false).expect("off");
    assert!(!peer.is_on());
    let (_, body) = curl(&format!("{base}/relay/0"), &["-u", "admin:pw"]);
    assert_eq!(json(&body)["ison"], false);

    let plug = open(&format!(
        "driver = \"shelly1\"\naddress = \"{}\"",
        peer.address()
    ));
    assert_eq!(
        plug.read().expect_err("no credentials").code(),
        "power.unauthorized"
    );
}

#[test]
fn shelly_gen2_peer_answers_curl_and_the_driver_switches_it() {
    let peer = Peer::start(Kind::ShellyGen2, None);
    let base = format!("http://{}", peer.address());
    let (status, body) = curl(&format!("{base}/rpc/Switch.Set?id=0&on=true"), &[]);
    assert_eq!(
        (status, json(&body)),
        (200, serde_json::json!({"was_on": false}))
    );
    let (status, body) = curl(&format!("{base}/rpc/Switch.GetStatus?id=0"), &[]);
    assert_eq!((status, json(&body)["output"].clone()), (200, true.into()));
    let (status, body) = curl(&format!("{base}/rpc/Switch.GetStatus?id=4"), &[]);
    assert_eq!((status, json(&body)["code"].clone()), (500, (-105).into()));

    let plug = open(&format!(
        "driver = \"shelly2\"\naddress = \"{}\"",
        peer.address()
    ));
    plug.switch(false).expect("off");
    assert!(!peer.is_on());
    plug.switch(true).expect("on");
    assert!(peer.is_on());
    let plug = open(&format!(
        "driver = \"shelly2\"\naddress = \"{}\"\nrelay = 4",
        peer.address()
    ));
    let e = plug.switch(true).expect_err("no switch 4");
    assert_eq!(e.code(), "power.device_error", "{e}");
}

#[test]
fn a_stuck_plug_a_silent_plug_and_no_plug_are_errors_with_codes() {
    for (kind, driver) in [
        (Kind::Tasmota, "tasmota"),
        (Kind::ShellyGen1, "shelly1"),
        (Kind::ShellyGen2, "shelly2"),
        (Kind::Kasa, "kasa"),
    ] {
        let peer = Peer::start(kind, None);
        peer.set(|s| s.stuck = true);
        let plug = open(&format!(
            "driver = \"{driver}\"\naddress = \"{}\"\nsettle_ms = 300",
            peer.address()
        ));
        let e = plug.switch(true).expect_err("stuck");
        assert_eq!(e.code(), "power.not_switched", "{driver}: {e}");
        assert!(!peer.is_on());

        peer.set(|s| {
            s.stuck = false;
            s.silent = true;
        });
        let plug = open(&format!(
            "driver = \"{driver}\"\naddress = \"{}\"\ntimeout_ms = 300\nretries = 1",
            peer.address()
        ));
        let before = peer.requests().len();
        let e = plug.switch(true).expect_err("silent");
        assert_eq!(e.code(), "power.timeout", "{driver}: {e}");
        // Asked twice (one retry), eventually seen by the peer.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while peer.requests().len() < before + 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "{driver}: retry not seen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Nothing listens on a port that was just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    for driver in ["tasmota", "kasa"] {
        let plug = open(&format!(
            "driver = \"{driver}\"\naddress = \"127.0.0.1:{port}\"\nretries = 0"
        ));
        let e = plug.read().expect_err("nobody there");
        assert_eq!(e.code(), "power.unreachable", "{driver}: {e}");
    }
}

/// Runs python-kasa (the maintained client) against `address`: `action` is `on`, `off` or
/// `state`; returns the state it then reads.
fn python_kasa(address: &str, action: &str) -> bool {
    let python = std::env::var("LABWRIGHT_TEST_PYTHON_KASA").unwrap_or_else(|_| {
        panic!("LABWRIGHT_TEST_PYTHON_KASA is not set: run the tests through scripts/test")
    });
    let (host, port) = address.rsplit_once(':').expect("host:port");
    let script = r#"
import asyncio, json, sys
from kasa import DeviceConfig
from kasa.iot import IotPlug

async def main(host, port, action):
    plug = IotPlug(host, config=DeviceConfig(host=host, port_override=int(port), timeout=20))
    await plug.update()
    if action == "on":
        await plug.turn_on()
    elif action == "off":
        await plug.turn_off()
    await plug.update()
    print(json.dumps({"is_on": plug.is_on, "alias": plug.alias, "model": plug.model}))
    await plug.disconnect()

asyncio.run(main(*sys.argv[1:]))
"#;
    let out = Command::new(&python)
        .args(["-c", script, host, port, action])
        .output()
        .expect("python-kasa runs");
    assert!(
        out.status.success(),
        "python-kasa {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(v["alias"], "labwright test plug");
    v["is_on"].as_bool().expect("is_on")
}

#[test]
fn kasa_peer_is_switched_by_python_kasa_and_by_the_driver() {
    let peer = Peer::start(Kind::Kasa, None);
    let address = peer.address();
    // The real client switches the peer and reads its state back.
    assert!(!python_kasa(&address, "state"));
    assert!(python_kasa(&address, "on"));
    assert!(peer.is_on());

    // The driver reads what python-kasa set, switches, and python-kasa sees it.
    let plug = open(&format!("driver = \"kasa\"\naddress = \"{address}\""));
    assert!(plug.read().expect("read"));
    plug.switch(false).expect("off");
    assert!(!python_kasa(&address, "state"));
    assert!(python_kasa(&address, "on"));
    assert!(plug.read().expect("read"));
    plug.power_cycle(Duration::ZERO).expect("cycle");
    assert!(python_kasa(&address, "state"));
    assert!(
        peer.requests()
            .iter()
            .any(|r| r.contains("\"set_relay_state\":{\"state\":0}")),
        "{:?}",
        peer.requests()
    );
}
