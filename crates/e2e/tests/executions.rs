//! Test executions end to end: the sample library uploaded through the API, runs on a simulated
//! set-top box behind a real host-agent runtime, over real gRPC, PostgreSQL and RabbitMQ.

mod support;

use std::{path::PathBuf, time::Duration};

use labwright_host_agent::config::DeviceConfig;
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(90);

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples")
}

/// Uploads every sample reference image, the sim-stb navigation tree and every sample test case.
async fn upload_samples(base: &str, key: &str) -> Vec<String> {
    let mut refs: Vec<_> = std::fs::read_dir(samples().join("references"))
        .expect("references")
        .map(|e| e.expect("entry").path())
        .collect();
    refs.sort();
    for p in refs {
        let name = p
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        let (status, body) = send_bytes(
            "PUT",
            format!("{base}/api/v1/references/{name}"),
            key.into(),
            "image/png",
            std::fs::read(&p).expect("read"),
        )
        .await;
        assert_eq!(status, 201, "{name}: {body}");
    }
    let tree = std::fs::read(samples().join("nav/sim-stb.yaml")).expect("tree");
    let (status, body) = send_bytes(
        "PUT",
        format!("{base}/api/v1/navigation-trees/sim-stb"),
        key.into(),
        "application/yaml",
        tree,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mut names = Vec::new();
    let mut cases: Vec<_> = std::fs::read_dir(samples().join("testcases"))
        .expect("testcases")
        .map(|e| e.expect("entry").path())
        .collect();
    cases.sort();
    for p in cases {
        let (status, body) = send_bytes(
            "POST",
            format!("{base}/api/v1/testcases"),
            key.into(),
            "application/yaml",
            std::fs::read(&p).expect("read"),
        )
        .await;
        assert_eq!(status, 201, "{}: {body}", p.display());
        names.push(body["name"].as_str().expect("name").to_string());
    }
    names
}

async fn device_id(s: &TestServer, key: &str, host: &str, device: &str) -> String {
    eventually(WAIT, "device online", || async {
        let (_, page) = s.get(key, "/api/v1/devices?status=online").await;
        page["items"]
            .as_array()?
            .iter()
            .find(|d| d["host_name"] == host && d["device_key"] == device)
            .and_then(|d| d["id"].as_str().map(str::to_owned))
    })
    .await
}

/// A fresh server, with the sample library uploaded if `samples`, and host `sim-host` with
/// `devices` connected.
struct Lab {
    s: TestServer,
    base: String,
    agent: Agent,
    /// The names of the sample test cases uploaded.
    samples: Vec<String>,
}

async fn lab(samples: bool, devices: Vec<DeviceConfig>) -> Lab {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let base = s.url("");
    let samples = if samples {
        upload_samples(&base, &s.admin_key).await
    } else {
        Vec::new()
    };
    let token = s.create_key("host", "sim host").await;
    let agent = spawn_host(s.grpc(), &token, "sim-host", devices, &temp_dir("agent"));
    Lab {
        s,
        base,
        agent,
        samples,
    }
}

/// A server with the sample library and a host with one simulated box, `stb-1`, online.
async fn sim_lab() -> (TestServer, String, Agent, String) {
    let Lab { s, base, agent, .. } = lab(true, vec![sim_device("stb-1", "")]).await;
    let device = device_id(&s, &s.admin_key, "sim-host", "stb-1").await;
    (s, base, agent, device)
}

/// GET /api/v1/executions/{id}.
async fn execution(base: &str, key: &str, id: &str) -> Value {
    http(
        "GET",
        format!("{base}/api/v1/executions/{id}"),
        Some(key.into()),
        None,
    )
    .await
    .1
}

/// Waits until execution `id` is running.
async fn until_running(base: &str, key: &str, id: &str, what: &str) {
    eventually(WAIT, what, || async {
        (execution(base, key, id).await["status"] == "running").then_some(())
    })
    .await
}

/// POST /api/v1/executions, whatever the answer.
async fn queue(base: &str, key: &str, body: Value) -> (u16, Value) {
    http(
        "POST",
        format!("{base}/api/v1/executions"),
        Some(key.into()),
        Some(body),
    )
    .await
}

/// POST /api/v1/executions/{id}/cancel.
async fn cancel(base: &str, key: &str, id: &str) -> (u16, Value) {
    http(
        "POST",
        format!("{base}/api/v1/executions/{id}/cancel"),
        Some(key.into()),
        None,
    )
    .await
}

/// PUT /api/v1/devices/{device}/faults.
async fn set_faults(base: &str, key: &str, device: &str, faults: Value) -> (u16, Value) {
    http(
        "PUT",
        format!("{base}/api/v1/devices/{device}/faults"),
        Some(key.into()),
        Some(faults),
    )
    .await
}

async fn finished(base: &str, key: &str, id: &str) -> Value {
    eventually(WAIT, &format!("execution {id} to finish"), || async {
        let e = execution(base, key, id).await;
        ["passed", "failed", "error", "cancelled", "interrupted"]
            .contains(&e["status"].as_str()?)
            .then_some(e)
    })
    .await
}

/// Runs `testcase` on `device` and returns the execution once it has finished.
async fn run_to_end(base: &str, key: &str, testcase: &str, device: &str) -> Value {
    let e = run(base, key, testcase, device).await;
    finished(base, key, e["id"].as_str().expect("id")).await
}

fn steps(e: &Value) -> &Vec<Value> {
    e["steps"].as_array().expect("steps")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_suite_runs_queued_on_one_device_with_a_screenshot_per_step() {
    let Lab {
        s,
        base,
        agent,
        samples: names,
    } = lab(true, vec![sim_device("stb-1", "")]).await;
    assert!(
        names.len() >= 5,
        "at least five sample test cases: {names:?}"
    );
    let device = device_id(&s, &s.admin_key, "sim-host", "stb-1").await;

    // Queue the whole suite at once on one device: one runs, the others wait their turn.
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let e = run(&base, &s.admin_key, name, &device).await;
        if i > 0 {
            assert!(e["status"] == "queued", "{e}");
        }
        ids.push((name.clone(), e["id"].as_str().expect("id").to_string()));
    }
    let (_, queued) = s
        .get(&s.admin_key, "/api/v1/executions?status=queued")
        .await;
    assert!(
        queued["total"].as_i64().expect("total") >= 1,
        "a busy device queues runs: {queued}"
    );
    assert!(
        queued["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["queue_position"].as_i64() > Some(0))
    );

    for (name, id) in &ids {
        let e = finished(&base, &s.admin_key, id).await;
        let expected = if name.starts_with("Deliberately failing") {
            "failed"
        } else {
            "passed"
        };
        assert_eq!(
            e["status"],
            expected,
            "{name}: {}",
            serde_json::to_string_pretty(&e).unwrap_or_default()
        );
        let st = steps(&e);
        assert!(!st.is_empty());
        let indexes: Vec<i64> = st
            .iter()
            .map(|x| x["index"].as_i64().expect("index"))
            .collect();
        assert_eq!(
            indexes,
            (0..st.len() as i64).collect::<Vec<_>>(),
            "steps stored once each, none missing"
        );
        assert_eq!(e["steps_total"].as_i64(), Some(st.len() as i64));
        for step in st.iter().filter(|x| x["verdict"] != "skipped") {
            assert!(
                step["screenshot_url"].is_string(),
                "{name}: step without screenshot: {step}"
            );
        }
        if expected == "failed" {
            let failing = st
                .iter()
                .find(|x| x["verdict"] == "fail")
                .expect("a failing step");
            assert!(!failing["reason"].as_str().unwrap_or_default().is_empty());
            let (status, ct, jpeg) = get_bytes(
                format!("{base}{}", failing["screenshot_url"].as_str().expect("url")),
                s.admin_key.clone(),
            )
            .await;
            assert_eq!((status, ct.as_str()), (200, "image/jpeg"));
            assert!(
                jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.len() > 1000,
                "a real JPEG of the failing screen"
            );
            assert!(
                st.iter().any(|x| x["verdict"] == "skipped"),
                "steps after the failure are skipped"
            );
        }
        if name.starts_with("Zap up") {
            let zap = st
                .iter()
                .find(|x| x["kind"] == "measure_zap")
                .expect("zap step");
            assert!(
                zap["measurements"]["zap_ms"].as_f64().expect("zap_ms") > 0.0,
                "{zap}"
            );
        }
    }
    // Navigation learned from the runs.
    let (_, tree) = s
        .get(&s.admin_key, "/api/v1/navigation-trees/sim-stb")
        .await;
    let stats = tree["document"]["stats"]
        .as_object()
        .expect("learned stats");
    assert!(
        stats.values().any(|v| v["attempts"].as_u64() > Some(0)),
        "{stats:?}"
    );
    agent.stop.cancel();
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_an_injected_freeze_fails_and_a_dropped_key_is_recovered() {
    let (s, base, agent, device) = sim_lab().await;

    // A key dropped on the way: navigation notices, re-locates and re-plans, and the run passes.
    let (status, body) = set_faults(&base, &s.admin_key, &device, json!({"drop_keys": 1})).await;
    assert_eq!(status, 204, "{body}");
    let e = run_to_end(&base, &s.admin_key, "Open Settings and go back", &device).await;
    assert_eq!(
        e["status"],
        "passed",
        "{}",
        serde_json::to_string_pretty(&e).unwrap_or_default()
    );

    // Reach the live picture, then freeze the video: verify_not_frozen fails with a screenshot.
    let goto = "name: To live TV\ndevice_model: sim-stb\nsteps:\n  - goto: player\n";
    let frozen = "name: Frozen check\ndevice_model: sim-stb\nsteps:\n  - verify_not_frozen: {duration_ms: 1000}\n";
    for yaml in [goto, frozen] {
        push_testcase(&base, &s.admin_key, yaml).await;
    }
    assert_eq!(
        run_to_end(&base, &s.admin_key, "To live TV", &device).await["status"],
        "passed"
    );
    let (status, _) = set_faults(&base, &s.admin_key, &device, json!({"frozen": true})).await;
    assert_eq!(status, 204);
    let e = run_to_end(&base, &s.admin_key, "Frozen check", &device).await;
    assert_eq!(e["status"], "failed", "{e}");
    let step = &steps(&e)[0];
    assert_eq!(
        (step["kind"].as_str(), step["verdict"].as_str()),
        (Some("verify_not_frozen"), Some("fail")),
        "{step}"
    );
    let (status, _, jpeg) = get_bytes(
        format!(
            "{base}{}",
            step["screenshot_url"].as_str().expect("screenshot")
        ),
        s.admin_key.clone(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(jpeg.starts_with(&[0xFF, 0xD8]));

    // Clearing the faults makes the same check pass.
    let (status, _) = set_faults(&base, &s.admin_key, &device, json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(
        run_to_end(&base, &s.admin_key, "Frozen check", &device).await["status"],
        "passed"
    );
    agent.stop.cancel();
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_control_screenshots_cancel_and_the_device_lease() {
    let (s, base, agent, device) = sim_lab().await;

    let shot = || {
        get_bytes(
            format!("{base}/api/v1/devices/{device}/screenshot"),
            s.admin_key.clone(),
        )
    };
    let (status, ct, before) = shot().await;
    assert_eq!((status, ct.as_str()), (200, "image/jpeg"));
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/devices/{device}/press"),
        Some(s.admin_key.clone()),
        Some(json!({"key": "right"})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    eventually(WAIT, "the focus moves on screen", || async {
        let (_, _, after) = shot().await;
        (after != before).then_some(())
    })
    .await;
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/devices/{device}/press"),
        Some(s.admin_key.clone()),
        Some(json!({"key": "warp"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_argument"))
    );

    // A long run holds the device: direct control is refused, a second run queues, cancel works.
    let long = "name: Long watch\ndevice_model: sim-stb\nsteps:\n  - repeat:\n      count: 50\n      steps:\n        - wait: 200\n";
    push_testcase(&base, &s.admin_key, long).await;
    let first = run(&base, &s.admin_key, "Long watch", &device).await;
    let first_id = first["id"].as_str().expect("id").to_string();
    until_running(&base, &s.admin_key, &first_id, "first run running").await;
    let second = run(&base, &s.admin_key, "Long watch", &device).await;
    assert_eq!(second["status"], "queued");
    assert_eq!(second["queue_position"], 0);
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/devices/{device}/press"),
        Some(s.admin_key.clone()),
        Some(json!({"key": "ok"})),
    )
    .await;
    assert_eq!(status, 409, "leased devices refuse direct control: {body}");

    let second_id = second["id"].as_str().expect("id").to_string();
    let (status, e) = cancel(&base, &s.admin_key, &second_id).await;
    assert_eq!(
        (status, e["status"].as_str()),
        (200, Some("cancelled")),
        "queued runs cancel at once"
    );
    let (status, _) = cancel(&base, &s.admin_key, &first_id).await;
    assert_eq!(status, 200);
    let e = finished(&base, &s.admin_key, &first_id).await;
    assert_eq!(e["status"], "cancelled", "{e}");
    assert!(steps(&e).len() < 50, "the run stopped early");
    let (status, _) = cancel(&base, &s.admin_key, &first_id).await;
    assert_eq!(status, 409, "a finished run cannot be cancelled");
    agent.stop.cancel();
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_anything_runs() {
    let Lab { s, base, agent, .. } = lab(
        true,
        vec![sim_device("stb-1", ""), {
            let mut d = sim_device("odd-1", "");
            d.model = "odd-box".into();
            d
        }],
    )
    .await;
    let device = device_id(&s, &s.admin_key, "sim-host", "stb-1").await;
    let odd = device_id(&s, &s.admin_key, "sim-host", "odd-1").await;
    let post_tc = |yaml: &'static str| {
        send_bytes(
            "POST",
            format!("{base}/api/v1/testcases"),
            s.admin_key.clone(),
            "application/yaml",
            yaml.as_bytes().to_vec(),
        )
    };

    // Invalid YAML: the error says where.
    let (status, body) = post_tc("name: Broken\nsteps:\n  - press: [ok\n").await;
    assert_eq!(status, 400);
    let msg = body["error"]["message"].as_str().expect("message");
    assert!(msg.contains("line ") && msg.contains("column "), "{msg}");
    // Unknown step and unknown key, each named by path.
    let (status, body) = post_tc("name: Bad\nsteps:\n  - press: warp\n").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("steps[0]"),
        "{body}"
    );

    // Cannot run here: refused when saved (the model's tree is known) or at POST /executions at
    // the latest — never queued.
    for (name, yaml, expect) in [
        (
            "Unknown screen",
            "name: Unknown screen\ndevice_model: sim-stb\nsteps:\n  - goto: attic\n",
            "attic",
        ),
        (
            "Missing reference",
            "name: Missing reference\ndevice_model: sim-stb\nsteps:\n  - verify_image: {reference: nope}\n",
            "nope",
        ),
        (
            "Region too big",
            "name: Region too big\ndevice_model: sim-stb\nsteps:\n  - verify_black: {region: {x: 1200, y: 0, width: 200, height: 10}}\n",
            "region",
        ),
    ] {
        let (status, body) = post_tc(yaml).await;
        let (status, body) = if status == 201 {
            queue(
                &base,
                &s.admin_key,
                json!({"testcase": name, "device": device}),
            )
            .await
        } else {
            (status, body)
        };
        assert_eq!(status, 400, "{name}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(expect),
            "{name}: {body}"
        );
    }
    // A tree where a screen cannot be reached: refused before anything runs.
    let island = "model: odd-box\nresolution: {width: 1280, height: 720}\nscreens:\n  - id: home\n    verify:\n      - image: {reference: home-title, region: {x: 67, y: 96, width: 216, height: 56}}\n  - id: island\n    verify:\n      - black: {}\nedges: []\n";
    let (status, body) = send_bytes(
        "PUT",
        format!("{base}/api/v1/navigation-trees/odd-box"),
        s.admin_key.clone(),
        "application/yaml",
        island.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        post_tc("name: To the island\ndevice_model: odd-box\nsteps:\n  - goto: island\n").await;
    let (status, body) = if status == 201 {
        queue(
            &base,
            &s.admin_key,
            json!({"testcase": "To the island", "device": odd}),
        )
        .await
    } else {
        (status, body)
    };
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("island"),
        "{body}"
    );
    // Model mismatch, unknown device, unknown test case.
    let (status, body) = queue(
        &base,
        &s.admin_key,
        json!({"testcase": "Open Settings and go back", "device": odd}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = queue(
        &base,
        &s.admin_key,
        json!({"testcase": "Open Settings and go back", "device": uuid::Uuid::new_v4()}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = queue(
        &base,
        &s.admin_key,
        json!({"testcase": "No such test", "device": device}),
    )
    .await;
    assert_eq!(status, 404);
    // A reference that is not an image; a tree naming a reference never uploaded.
    let (status, body) = send_bytes(
        "PUT",
        format!("{base}/api/v1/references/junk"),
        s.admin_key.clone(),
        "image/png",
        b"not an image".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let ghost = island.replace("home-title", "ghost-title");
    let (status, body) = send_bytes(
        "PUT",
        format!("{base}/api/v1/navigation-trees/odd-box"),
        s.admin_key.clone(),
        "application/yaml",
        ghost.into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ghost-title")
    );

    let (_, all) = s.get(&s.admin_key, "/api/v1/executions").await;
    assert_eq!(all["total"], 0, "nothing was queued by bad input");
    agent.stop.cancel();
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_disconnects_mid_run_leaves_the_execution_interrupted() {
    let Lab { s, base, agent, .. } = lab(false, vec![sim_device("stb-1", "")]).await;
    let device = device_id(&s, &s.admin_key, "sim-host", "stb-1").await;
    let long = "name: Long watch\ndevice_model: sim-stb\nsteps:\n  - repeat:\n      count: 100\n      steps:\n        - wait: 200\n";
    push_testcase(&base, &s.admin_key, long).await;
    let e = run(&base, &s.admin_key, "Long watch", &device).await;
    let id = e["id"].as_str().expect("id").to_string();
    until_running(&base, &s.admin_key, &id, "running").await;
    // The host vanishes (its link stops; it never comes back).
    agent.stop.cancel();
    let _ = agent.task.await;
    let e = finished(&base, &s.admin_key, &id).await;
    assert_eq!(e["status"], "interrupted", "{e}");
    assert!(
        e["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("sim-host"),
        "the reason names the host: {e}"
    );
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_execution_loses_no_step_and_stores_none_twice() {
    let db = fresh_database().await;
    let (config, mut server, base, admin) = start_binary(&db).await;
    let token = create_key(&base, &admin, "host", "pi").await;
    let agent = spawn_host(
        format!("http://{}", config.grpc_addr),
        &token,
        "sim-host",
        vec![sim_device("stb-1", "")],
        &temp_dir("agent"),
    );
    let device = eventually(WAIT, "device online", || async {
        let (_, page) = http(
            "GET",
            format!("{base}/api/v1/devices?status=online"),
            Some(admin.clone()),
            None,
        )
        .await;
        page["items"].as_array()?.first()?["id"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    let watch = "name: Watch\ndevice_model: sim-stb\nsteps:\n  - repeat:\n      count: 30\n      steps:\n        - wait: 100\n        - verify_not_black: {}\n";
    push_testcase(&base, &admin, watch).await;
    let e = run(&base, &admin, "Watch", &device).await;
    let id = e["id"].as_str().expect("id").to_string();
    eventually(WAIT, "a few steps stored", || async {
        let e = execution(&base, &admin, &id).await;
        (e["steps"].as_array().map_or(0, Vec::len) >= 4).then_some(())
    })
    .await;

    // Kill the server mid-run; the host keeps running and spools what it cannot send.
    server.kill().expect("SIGKILL");
    server.wait().expect("reap");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut server = spawn_binary(&config);
    until_ready(&config, WAIT, "ready again").await;

    let e = finished(&base, &admin, &id).await;
    assert_eq!(
        e["status"],
        "passed",
        "{}",
        serde_json::to_string_pretty(&e).unwrap_or_default()
    );
    let indexes: Vec<i64> = steps(&e)
        .iter()
        .map(|x| x["index"].as_i64().expect("index"))
        .collect();
    assert_eq!(
        indexes.len(),
        60,
        "every step of 30 x (wait + verify) is stored"
    );
    assert_eq!(
        indexes,
        (0..60).collect::<Vec<_>>(),
        "each exactly once, none missing"
    );
    assert_eq!(e["steps_total"], 60);
    agent.stop.cancel();
    server.kill().expect("kill");
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_the_server_ended_is_stopped_on_the_host_and_the_queue_goes_on() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let base = s.url("");
    let token = s.create_key("host", "sim host").await;
    let (config, runtime) = host_runtime(
        s.grpc(),
        &token,
        "sim-host",
        vec![sim_device("stb-1", "")],
        &temp_dir("agent"),
    );
    let link = spawn_link(s.grpc(), &token, config.hello(), Some(runtime.clone()));
    let device = device_id(&s, &s.admin_key, "sim-host", "stb-1").await;
    for yaml in [
        "name: Long watch\ndevice_model: sim-stb\nsteps:\n  - repeat:\n      count: 300\n      steps:\n        - wait: 100\n",
        "name: Short\ndevice_model: sim-stb\nsteps:\n  - wait: 10\n",
    ] {
        push_testcase(&base, &s.admin_key, yaml).await;
    }
    let long = run(&base, &s.admin_key, "Long watch", &device).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    until_running(&base, &s.admin_key, &long, "long run running").await;
    // The link drops; the run goes on inside the agent. The server gives up on it.
    link.stop.cancel();
    let _ = link.task.await;
    assert_eq!(
        finished(&base, &s.admin_key, &long).await["status"],
        "interrupted"
    );
    let short = run(&base, &s.admin_key, "Short", &device).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(
        !runtime.running_executions().is_empty(),
        "the agent still runs the interrupted run"
    );

    // The agent comes back: the server stops the orphan run and the queued one runs.
    let link = spawn_link(s.grpc(), &token, config.hello(), Some(runtime.clone()));
    let e = finished(&base, &s.admin_key, &short).await;
    assert_eq!(e["status"], "passed", "{e}");
    let long_after = execution(&base, &s.admin_key, &long).await;
    assert_eq!(
        long_after["status"], "interrupted",
        "an ended run stays ended"
    );
    link.stop.cancel();
    s.server.shutdown().await;
}

/// PUT /api/v1/devices/{id}/faults with `query` (e.g. `?override_reservation=true`).
async fn set_faults_as(base: &str, key: &str, device: &str, query: &str) -> (u16, Value) {
    http(
        "PUT",
        format!("{base}/api/v1/devices/{device}/faults{query}"),
        Some(key.into()),
        Some(json!({"frozen": true})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_obey_the_device_lease_and_reservations() {
    let (s, base, agent, device) = sim_lab().await;
    let alice = s.create_key("operator", "alice").await;
    let bob = s.create_key("operator", "bob").await;

    // A run holds the lease: nobody may inject faults into it, admins included.
    let long = "name: Long watch\ndevice_model: sim-stb\nsteps:\n  - repeat:\n      count: 50\n      steps:\n        - wait: 200\n";
    push_testcase(&base, &alice, long).await;
    let running = run(&base, &alice, "Long watch", &device).await;
    let running_id = running["id"].as_str().expect("id").to_string();
    until_running(&base, &alice, &running_id, "alice's run running").await;
    for (key, query) in [
        (&bob, ""),
        (&s.admin_key, ""),
        (&s.admin_key, "?override_reservation=true"),
    ] {
        let (status, body) = set_faults_as(&base, key, &device, query).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("conflict")),
            "{query}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("leased by execution"),
            "{body}"
        );
    }
    let (status, _) = cancel(&base, &alice, &running_id).await;
    assert_eq!(status, 200);
    let e = finished(&base, &alice, &running_id).await;
    assert_eq!(
        e["status"], "cancelled",
        "the run was not failed by a fault: {e}"
    );

    // Alice reserves it: only she may inject faults; an admin only by overriding explicitly.
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/devices/{device}/reservation"),
        Some(alice.clone()),
        Some(json!({"minutes": 5})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = set_faults_as(&base, &bob, &device, "").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("reserved by alice"),
        "{body}"
    );
    let (status, body) = set_faults_as(&base, &bob, &device, "?override_reservation=true").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, _) = set_faults_as(&base, &s.admin_key, &device, "").await;
    assert_eq!(status, 409, "admins too, unless they override");
    let (status, body) = set_faults_as(&base, &alice, &device, "").await;
    assert_eq!(status, 204, "{body}");
    let (status, body) =
        set_faults_as(&base, &s.admin_key, &device, "?override_reservation=true").await;
    assert_eq!(status, 204, "{body}");
    agent.stop.cancel();
    s.server.shutdown().await;
}
