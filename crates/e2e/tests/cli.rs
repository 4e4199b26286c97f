//! The `labwright` binary, as a person or a CI job runs it, against the real stack (api-server,
//! a real host-agent runtime with a simulated box): devices named as `devices list` shows them,
//! the global `--key` kept apart from a command's own key argument, reservations from the
//! command line, and exit codes a CI script can branch on.

mod support;

use std::process::{Command, Output, Stdio};

use support::*;

fn labwright(base: &str, key: &str, args: &[&str]) -> Output {
    Command::new(labwright_testkit::binary::cargo_bin("labwright"))
        .args(["--url", base])
        .args(args)
        .env("LABWRIGHT_API_KEY", key)
        .env_remove("LABWRIGHT_URL")
        .output()
        .expect("labwright runs")
}

async fn cli(base: &str, key: &str, args: &[&str]) -> Output {
    let (base, key) = (base.to_string(), key.to_string());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        labwright(&base, &key, &args)
    })
    .await
    .expect("cli thread")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn press_takes_the_device_by_name_and_the_key_from_its_argument() {
    let (s, base, agent, device) = server_with_one_box().await;
    let operator = s.create_key("operator", "ci").await;
    // The global --key option and the command's KEY argument used to share one name: the key
    // name went out as the API token (401).
    let out = cli(
        &base,
        "unused",
        &["--key", &operator, "press", "--device", "stb-1", "back"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "pressed back\n");
    // The same by host/key and by id.
    for name in ["sim-host/stb-1", device.as_str()] {
        let out = cli(&base, &operator, &["press", "--device", name, "ok"]).await;
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
    }
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_suggest_and_exit_codes_tell_usage_from_access_and_infrastructure() {
    let (s, base, _agent, _device) = server_with_one_box().await;
    let operator = s.create_key("operator", "ci").await;

    let typo = cli(&base, &operator, &["press", "--device", "stb1", "ok"]).await;
    assert_eq!(typo.status.code(), Some(2), "{}", text(&typo.stderr));
    assert!(
        text(&typo.stderr).contains("did you mean \"stb-1\""),
        "{}",
        text(&typo.stderr)
    );

    let unknown_case = cli(
        &base,
        &operator,
        &["run", "no such test", "--device", "stb-1"],
    )
    .await;
    assert_eq!(
        unknown_case.status.code(),
        Some(2),
        "{}",
        text(&unknown_case.stderr)
    );

    let bad_key = cli(&base, "lw_not_a_key", &["devices", "list"]).await;
    assert_eq!(bad_key.status.code(), Some(3), "{}", text(&bad_key.stderr));

    // Nothing listens there: the message names the URL it tried.
    let port = free_port();
    let nowhere = format!("http://127.0.0.1:{port}");
    let down = cli(&nowhere, &operator, &["devices", "list"]).await;
    assert_eq!(down.status.code(), Some(3), "{}", text(&down.stderr));
    assert!(
        text(&down.stderr).contains(&format!("cannot reach {nowhere}/api/v1/devices")),
        "{}",
        text(&down.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_who_and_release_from_the_command_line() {
    let (s, base, _agent, _device) = server_with_one_box().await;
    let alice = s.create_key("operator", "alice").await;
    let bob = s.create_key("operator", "bob").await;

    let out = cli(
        &base,
        &alice,
        &["reserve", "--device", "stb-1", "--minutes", "240"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("reserved sim-host/stb-1 until "));
    // It lasts its whole time box: nothing has to keep it alive, unlike the web UI's lock.
    let (_, listed) = s.get(&bob, "/api/v1/devices").await;
    let held = &listed["items"][0]["reservation"];
    assert_eq!(held["holder"], "alice", "{listed}");
    assert_eq!(held["until"], held["ends_at"], "{held}");

    let who = cli(&base, &bob, &["who"]).await;
    assert!(who.status.success(), "{}", text(&who.stderr));
    let table = text(&who.stdout);
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("sim-host/stb-1") && row.contains("alice"),
        "{table}"
    );

    // Bob is kept off the device (a refusal: usage, not infrastructure).
    let refused = cli(&base, &bob, &["press", "--device", "stb-1", "ok"]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("alice"),
        "{}",
        text(&refused.stderr)
    );

    let out = cli(&base, &alice, &["release", "--device", "stb-1"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let who = text(&cli(&base, &bob, &["who"]).await.stdout);
    assert!(!who.contains("alice") && !who.contains("stb-1"), "{who}");
    let pressed = cli(&base, &bob, &["press", "--device", "stb-1", "ok"]).await;
    assert!(pressed.status.success(), "{}", text(&pressed.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_closes_the_pipe_is_not_an_error() {
    let (s, base, _agent, _device) = server_with_one_box().await;
    let key = s.admin_key.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(labwright_testkit::binary::cargo_bin("labwright"))
            .args(["--url", &base, "devices", "list"])
            .env("LABWRIGHT_API_KEY", &key)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // `| head -0`: the reader is gone before anything is written.
        drop(child.stdout.take());
        child.wait_with_output().expect("wait")
    })
    .await
    .expect("thread");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_wait_shows_progress_and_exits_by_the_verdict() {
    let (s, base, _agent, _device) = server_with_one_box().await;
    let operator = s.create_key("operator", "ci").await;
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples");
    let mut references = vec!["references".to_string(), "push".into()];
    for entry in std::fs::read_dir(format!("{samples}/references")).expect("references") {
        references.push(entry.expect("entry").path().display().to_string());
    }
    for args in [
        references,
        vec![
            "trees".into(),
            "push".into(),
            "sim-stb".into(),
            format!("{samples}/nav/sim-stb.yaml"),
        ],
        vec![
            "testcases".into(),
            "push".into(),
            format!("{samples}/testcases/open-settings-and-back.yaml"),
            format!("{samples}/testcases/deliberately-failing.yaml"),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cli(&base, &s.admin_key, &args).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }

    let passed = cli(
        &base,
        &operator,
        &[
            "run",
            "Open Settings and go back",
            "--device",
            "stb-1",
            "--wait",
        ],
    )
    .await;
    let progress = text(&passed.stderr);
    assert_eq!(passed.status.code(), Some(0), "{progress}");
    assert!(progress.contains("/#/executions/"), "{progress}");
    assert!(progress.contains("==> running"), "{progress}");
    // Every step, as it was reported, before the final table on stdout.
    for n in 1..=6 {
        assert!(
            progress.contains(&format!("  step {n}")),
            "step {n}: {progress}"
        );
    }
    assert!(
        text(&passed.stdout).contains("passed"),
        "{}",
        text(&passed.stdout)
    );

    let failed = cli(
        &base,
        &operator,
        &[
            "run",
            "Deliberately failing — expects Home while on Settings",
            "--device",
            "stb-1",
            "--wait",
        ],
    )
    .await;
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stderr));
    assert!(
        text(&failed.stderr).contains("fail"),
        "{}",
        text(&failed.stderr)
    );
}
