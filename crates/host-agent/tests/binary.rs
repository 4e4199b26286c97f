//! The real `host-agent` binary: config errors are reported at once, and SIGTERM ends it cleanly
//! even while it is reconnecting to a server that is not there.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn agent() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_host-agent"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn check_accepts_the_example_and_rejects_a_bad_config_listing_every_problem() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/host-agent.example.toml");
    let out = agent()
        .args(["--config", example, "--check"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("configuration ok: host pi-lab-01 with 1 device(s)")
    );

    let dir = labwright_testkit::temp_dir("agent-bin");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "server = \"ftp://x\"\nhost_name = \"ok\"\nenrollment_token = \"t\"\nlog_format = \"xml\"\n[[devices]]\nid = \"a\"\nname = \"A\"\nmodel = \"m\"\ndriver = \"nope\"\n").expect("write");
    let out = agent()
        .args(["--config", bad.to_str().expect("path"), "--check"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["server:", "log_format:", "devices[0].driver"] {
        assert!(err.contains(needle), "missing {needle} in {err}");
    }
}

#[test]
fn sigterm_stops_the_agent_cleanly_while_it_reconnects() {
    // Port 1 on loopback refuses connections: the agent keeps retrying with backoff.
    let mut child = agent()
        .env("LABWRIGHT_SERVER", "http://127.0.0.1:1")
        .env("LABWRIGHT_HOST_NAME", "pi-test")
        .env("LABWRIGHT_ENROLLMENT_TOKEN", "lw_not_a_real_token")
        .env("LABWRIGHT_RECONNECT_MAX_MS", "200")
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        child.try_wait().expect("poll").is_none(),
        "the agent keeps running while the server is down"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().expect("poll") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "agent did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    let out = child.wait_with_output().expect("output");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("could not connect to the server"), "{log}");
    assert!(log.contains("host-agent stopped"), "{log}");
    assert!(
        !log.contains("lw_not_a_real_token"),
        "the token must never be logged"
    );
}
