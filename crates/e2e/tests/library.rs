//! The test library from the command line, against the real api-server (and, for the runs, a
//! real host-agent runtime with a simulated box): `testcases validate` prints every problem like
//! a compiler, pushes take directories, go on past a refused file and keep unchanged versions,
//! references to what is not there are refused at push, and deleting archives what has run and
//! refuses a navigation tree that test cases still use, naming them.

mod support;

use std::{
    path::Path,
    process::{Command, Output},
};

use support::*;

fn samples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples")
}

async fn cli(base: &str, key: &str, args: &[&str]) -> Output {
    let (base, key) = (base.to_string(), key.to_string());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(labwright_testkit::binary::cargo_bin("labwright"))
            .args(["--url", &base])
            .args(&args)
            .env("LABWRIGHT_API_KEY", &key)
            .env_remove("LABWRIGHT_URL")
            .output()
            .expect("labwright runs")
    })
    .await
    .expect("cli thread")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path.display().to_string()
}

/// The sample references and the sim-stb tree, uploaded through the CLI.
async fn upload_samples(base: &str, key: &str) {
    let mut references = vec!["references".to_string(), "push".into()];
    for entry in std::fs::read_dir(samples().join("references")).expect("references") {
        references.push(entry.expect("entry").path().display().to_string());
    }
    let tree = samples().join("nav/sim-stb.yaml").display().to_string();
    for args in [
        references,
        vec!["trees".into(), "push".into(), "sim-stb".into(), tree],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cli(base, key, &args).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
}

const BAD: &str = "\
name: Bad one
device_model: sim-stb
steps:
  - goto: attic
  - verify_image: {reference: nope, region: {x: 0, y: 0, width: 100, height: 50}}
  - repeat:
      count: 0
      steps:
        - press: ok
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_prints_every_problem_where_it_is_written() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let base = s.url("");
    let viewer = s.create_key("viewer", "reader").await;
    upload_samples(&base, &s.admin_key).await;
    let dir = temp_dir("validate");
    let bad = write(&dir, "bad.yaml", BAD);
    let broken = write(&dir, "broken.yml", "name: Broken\nsteps:\n  - press: [ok\n");
    write(
        &dir,
        "good.yaml",
        "name: Good\ndevice_model: sim-stb\nsteps:\n  - goto: settings\n",
    );
    write(&dir, "notes.txt", "not a test case");

    let out = cli(
        &base,
        &viewer,
        &["testcases", "validate", &dir.display().to_string()],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            format!(
                "{bad}:4:11: unknown_screen: steps[0].goto: unknown screen \"attic\" in the sim-stb navigation tree"
            ),
            format!(
                "{bad}:5:31: unknown_reference: steps[1].verify_image.reference: unknown reference image \"nope\""
            ),
            format!(
                "{bad}:7:14: invalid_value: steps[2].repeat.count: must be between 1 and 10000"
            ),
        ],
        "{stdout}"
    );
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines[3].starts_with(&format!("{broken}:")) && lines[3].contains(": syntax: "),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("4 problems found"),
        "{}",
        text(&out.stderr)
    );

    // A valid file: nothing to say, exit 0, and nothing was saved.
    let good = dir.join("good.yaml").display().to_string();
    let out = cli(&base, &viewer, &["testcases", "validate", &good]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let (_, list) = s.get(&viewer, "/api/v1/testcases").await;
    assert_eq!(list, serde_json::json!([]));

    // The endpoint itself: codes, fields, lines and columns.
    let (status, report) = labwright_testkit::http::send_bytes(
        "POST",
        s.url("/api/v1/testcases/validate"),
        viewer.clone(),
        "application/yaml",
        BAD.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["valid"], false);
    assert_eq!(report["name"], "Bad one");
    assert_eq!(
        report["problems"][0],
        serde_json::json!({
            "code": "unknown_screen", "field": "steps[0].goto", "line": 4, "column": 11,
            "message": "unknown screen \"attic\" in the sim-stb navigation tree",
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_takes_directories_goes_on_past_refusals_and_keeps_unchanged_versions() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let base = s.url("");
    let key = s.create_key("operator", "ci").await;
    upload_samples(&base, &s.admin_key).await;
    let dir = temp_dir("push");
    write(&dir, "a.yaml", "name: First\nsteps:\n  - press: ok\n");
    let orphan = write(
        &dir,
        "b.yaml",
        "name: Orphan\ndevice_model: no-tree-box\nsteps:\n  - goto: home\n",
    );
    write(
        &dir,
        "c.yaml",
        "name: Third\ndevice_model: sim-stb\nsteps:\n  - goto: player\n",
    );
    let dir_arg = dir.display().to_string();

    let out = cli(&base, &key, &["testcases", "push", &dir_arg]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stdout, "First version 1\nThird version 1\n", "{stderr}");
    assert!(
        stderr.contains(&format!("{orphan}: ")) && stderr.contains("no-tree-box has none yet"),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 3 test cases not saved"), "{stderr}");

    // Unchanged content keeps its version: 200, no new version.
    std::fs::remove_file(&orphan).expect("rm");
    let out = cli(&base, &key, &["testcases", "push", &dir_arg]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "First version 1 (unchanged)\nThird version 1 (unchanged)\n"
    );
    let (status, body) = labwright_testkit::http::send_bytes(
        "POST",
        s.url("/api/v1/testcases"),
        key.clone(),
        "application/yaml",
        b"name: First\nsteps:\n  - press: ok\n".to_vec(),
    )
    .await;
    assert_eq!(
        (status, &body["version"]),
        (200, &serde_json::json!(1)),
        "{body}"
    );
    let (_, first) = s.get(&key, "/api/v1/testcases/First").await;
    assert_eq!(
        first["versions"].as_array().map(Vec::len),
        Some(1),
        "{first}"
    );
    // A change is a new version.
    let changed = write(&dir, "a.yaml", "name: First\nsteps:\n  - press: back\n");
    let out = cli(&base, &key, &["testcases", "push", &changed]).await;
    assert_eq!(
        text(&out.stdout),
        "First version 2\n",
        "{}",
        text(&out.stderr)
    );

    // A missing reference image is refused at push too, and nothing to push is a usage error.
    let missing = write(
        &dir,
        "d.yaml",
        "name: Missing\nsteps:\n  - verify_image: {reference: not-uploaded}\n",
    );
    let out = cli(&base, &key, &["testcases", "push", &missing]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not-uploaded"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(&base, &key, &["testcases", "push"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_archives_what_has_run_and_a_used_tree_names_its_users() {
    let (s, base, _agent, _device) = server_with_one_box().await;
    let key = s.create_key("operator", "ci").await;
    upload_samples(&base, &s.admin_key).await;
    let dir = temp_dir("delete");
    let one_key = write(
        &dir,
        "one-key.yaml",
        "name: One key\nsteps:\n  - press: ok\n",
    );
    write(
        &dir,
        "settings.yaml",
        "name: To settings\ndevice_model: sim-stb\nsteps:\n  - goto: settings\n",
    );
    let out = cli(
        &base,
        &key,
        &["testcases", "push", &dir.display().to_string()],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    let ran = cli(
        &base,
        &key,
        &["run", "One key", "--device", "stb-1", "--wait"],
    )
    .await;
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));
    let (_, executions) = s.get(&key, "/api/v1/executions").await;
    let execution = executions["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();

    // It has run: archived, not deleted; its execution still tells what ran.
    let out = cli(&base, &key, &["testcases", "delete", "One key"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "archived One key (1 version; kept for the history of 1 execution)\n"
    );
    let (_, list) = s.get(&key, "/api/v1/testcases").await;
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["To settings"]);
    let (status, _) = s.get(&key, "/api/v1/testcases/One%20key").await;
    assert_eq!(status, 404);
    let (status, shown) = s
        .get(&key, &format!("/api/v1/executions/{execution}"))
        .await;
    assert_eq!(
        (status, &shown["testcase"]),
        (200, &serde_json::json!("One key")),
        "{shown}"
    );
    // A run of it is refused; pushed again, it starts over after the archived version.
    let again = cli(&base, &key, &["run", "One key", "--device", "stb-1"]).await;
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    let out = cli(&base, &key, &["testcases", "push", &one_key]).await;
    assert_eq!(
        text(&out.stdout),
        "One key version 2\n",
        "{}",
        text(&out.stderr)
    );

    // The tree is used: refused, naming who uses it.
    let out = cli(&base, &key, &["trees", "delete", "sim-stb"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("\"To settings\""),
        "{}",
        text(&out.stderr)
    );
    // Never run: deleted; then the tree can go.
    let out = cli(&base, &key, &["testcases", "delete", "To settings"]).await;
    assert_eq!(
        text(&out.stdout),
        "deleted To settings (1 version)\n",
        "{}",
        text(&out.stderr)
    );
    let out = cli(&base, &key, &["trees", "delete", "sim-stb"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "deleted the navigation tree of sim-stb (1 version)\n"
    );
    let (_, trees) = s.get(&key, "/api/v1/navigation-trees").await;
    assert_eq!(trees, serde_json::json!([]));
    // Gone is gone: unknown names are usage errors, with a suggestion for a near one.
    let out = cli(&base, &key, &["trees", "delete", "sim-stb"]).await;
    assert_eq!(out.status.code(), Some(2));
    let out = cli(&base, &key, &["testcases", "delete", "One kye"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("did you mean \"One key\""),
        "{}",
        text(&out.stderr)
    );
}
