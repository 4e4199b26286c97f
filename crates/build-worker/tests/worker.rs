//! The build worker end to end against a real RabbitMQ, a real Docker engine and a real git
//! daemon: repositories built and run to live, limited containers; every bad input ends `failed`
//! with its reason; sessions stop on request; the sweep leaves no orphans; a container that
//! forks or allocates without bound is contained.

mod support;

use std::time::Duration;

use labwright_build_worker::engine;
use labwright_core::build::{SessionControl, Stage};
use labwright_wire::docker::labels;
use support::*;
use uuid::Uuid;

const SETTLE: Duration = Duration::from_secs(120);

fn dockerfile(cmd: &str) -> String {
    format!("FROM {BASE_IMAGE}\nCOPY . /app\nWORKDIR /app\nCMD {cmd}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_with_a_dockerfile_runs_as_a_limited_session_until_stopped() {
    let mut lab = start(|_| {}).await;
    let url = lab.git.repo(
        "app",
        &[
            (
                "Dockerfile",
                &dockerfile(r#"["sh", "-c", "echo up; exec sleep 600"]"#),
            ),
            ("hello.txt", "hello\n"),
        ],
    );
    let job = lab.server.queue_job(&url, Some("main"), None).await;
    let p = lab.server.until_settled(job.build_id, SETTLE).await;
    assert_eq!(
        p.stages,
        vec![
            Stage::Cloning,
            Stage::Detecting,
            Stage::Building,
            Stage::Starting,
            Stage::Running
        ],
        "{p:#?}"
    );
    let (stack, _, own) = p.detected.clone().expect("detected");
    assert_eq!((stack.as_str(), own), ("dockerfile", true));
    assert!(
        p.log.iter().any(|l| l.contains("Step 1/")),
        "build log streamed: {:?}",
        p.log
    );
    let e = lab.engine().await;
    assert_eq!(p.image.as_deref(), Some(e.image_tag(job.build_id).as_str()));

    let c = e
        .docker()
        .inspect_container(p.container.as_deref().expect("container"), None)
        .await
        .expect("container exists");
    assert_eq!(c.state.as_ref().and_then(|s| s.running), Some(true));
    let host = c.host_config.clone().expect("host config");
    assert_eq!(host.memory, Some(64 << 20));
    assert_eq!(host.memory_swap, Some(64 << 20), "no swap beyond the limit");
    assert_eq!(host.pids_limit, Some(64));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges".to_string()])
    );
    assert_eq!(host.privileged, Some(false));
    assert!(
        host.binds.unwrap_or_default().is_empty(),
        "no mounts, no docker socket"
    );
    assert_eq!(
        host.network_mode.as_deref(),
        Some(engine::session_name(job.build_id).as_str())
    );
    assert_eq!(
        c.config.as_ref().and_then(|c| c.user.clone()).as_deref(),
        Some("65534:65534")
    );
    let l = labels_of(&c);
    assert_eq!(l.get(labels::TENANT), Some(&job.tenant_id.to_string()));
    assert_eq!(l.get(labels::SESSION), Some(&job.build_id.to_string()));
    assert!(l.contains_key(labels::HARD_EXPIRY));
    assert!(
        std::fs::read_dir(&lab.worker.config.scratch_dir)
            .expect("scratch")
            .next()
            .is_none(),
        "the checkout is gone"
    );

    lab.server
        .control(&SessionControl::Stop {
            session_id: job.build_id,
            reason: "deleted".into(),
        })
        .await;
    let name = engine::session_name(job.build_id);
    for _ in 0..100 {
        let gone = e.docker().inspect_container(&name, None).await.is_err()
            && e.docker()
                .inspect_image(&e.image_tag(job.build_id))
                .await
                .is_err();
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        e.docker().inspect_container(&name, None).await.is_err(),
        "container removed"
    );
    assert!(
        e.docker()
            .inspect_network(
                &name,
                None::<bollard::query_parameters::InspectNetworkOptions>
            )
            .await
            .is_err(),
        "network removed"
    );
    assert!(
        e.docker()
            .inspect_image(&e.image_tag(job.build_id))
            .await
            .is_err(),
        "image removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_repositories_fail_with_their_reason() {
    let mut lab = start(|_| {}).await;
    let readme = lab
        .git
        .repo("docs-only", &[("README.md", "# nothing to build\n")]);
    let broken = lab.git.repo(
        "broken",
        &[(
            "Dockerfile",
            &format!("FROM {BASE_IMAGE}\nRUN echo about to fail && false\n"),
        )],
    );
    let nested = lab.git.repo(
        "nested",
        &[(
            "services/api/Dockerfile",
            &dockerfile(r#"["sleep", "600"]"#),
        )],
    );
    let cases = [
        (lab.git.url("does-not-exist"), None, None, "not found"),
        (readme.clone(), None, None, "no recognisable stack"),
        (
            readme.clone(),
            Some("no-such-branch"),
            None,
            "not found in the repository",
        ),
        (broken, None, None, "build failed"),
        (
            nested.clone(),
            None,
            Some("services/missing"),
            "does not exist",
        ),
    ];
    for (url, git_ref, subdir, expected) in cases {
        let job = lab.server.queue_job(&url, git_ref, subdir).await;
        let p = lab.server.until_settled(job.build_id, SETTLE).await;
        assert_eq!(p.last(), Some(Stage::Failed), "{url} {git_ref:?}: {p:#?}");
        assert!(
            p.reason.contains(expected),
            "{url}: reason {:?} lacks {expected:?}",
            p.reason
        );
        assert!(
            p.log.last().is_some_and(|l| l.contains("build failed")),
            "log ends with the failure: {:?}",
            p.log
        );
    }
    // The subdir is the build context.
    let job = lab
        .server
        .queue_job(&nested, None, Some("services/api"))
        .await;
    let p = lab.server.until_settled(job.build_id, SETTLE).await;
    assert_eq!(p.last(), Some(Stage::Running), "{p:#?}");
    lab.engine()
        .await
        .remove_session(job.build_id)
        .await
        .expect("cleanup");
    // A malformed job never reaches a build.
    lab.server.publish_raw(b"{\"build_id\": 42}").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_hosts_are_refused_unless_allowed() {
    let mut lab = start(|c| c.allow_private_hosts = false).await;
    let url = lab
        .git
        .repo("app", &[("Dockerfile", &dockerfile(r#"["sleep", "600"]"#))]);
    let job = lab.server.queue_job(&url, None, None).await;
    let p = lab.server.until_settled(job.build_id, SETTLE).await;
    assert_eq!(p.stages, vec![Stage::Failed], "{p:#?}");
    assert!(p.reason.contains("private address"), "{}", p.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bombs_and_memory_hogs_are_contained() {
    let mut lab = start(|_| {}).await;
    let calm = lab.git.repo(
        "calm",
        &[("Dockerfile", &dockerfile(r#"["sleep", "600"]"#))],
    );
    let bomb = lab.git.repo(
        "bomb",
        &[(
            "Dockerfile",
            &dockerfile(r#"["sh", "-c", "f() { f | f; }; f & exec sleep 600"]"#),
        )],
    );
    let hog = lab.git.repo(
        "hog",
        &[(
            "Dockerfile",
            &dockerfile(r#"["sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"]"#),
        )],
    );
    let mut ids = Vec::new();
    for url in [&calm, &bomb, &hog] {
        let job = lab.server.queue_job(url, None, None).await;
        let p = lab.server.until_settled(job.build_id, SETTLE).await;
        assert_eq!(p.last(), Some(Stage::Running), "{url}: {p:#?}");
        ids.push(job.build_id);
    }
    let e = lab.engine().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let inspect = |id: Uuid| {
        let e = e.clone();
        async move {
            e.docker()
                .inspect_container(&engine::session_name(id), None)
                .await
                .expect("inspect")
        }
    };
    // The hog hit its memory limit and was killed by the kernel, not the machine.
    let hog_state = inspect(ids[2]).await.state.expect("state");
    assert_eq!(hog_state.oom_killed, Some(true), "{hog_state:?}");
    // The bomb ran into its pids limit (the kernel refused its forks) and never passed it.
    let bomb_id = inspect(ids[1]).await.id.expect("id");
    let cgroup = [
        format!("/sys/fs/cgroup/pids/docker/{bomb_id}"),
        format!("/sys/fs/cgroup/system.slice/docker-{bomb_id}.scope"),
        format!("/sys/fs/cgroup/docker/{bomb_id}"),
    ]
    .into_iter()
    .find(|d| std::path::Path::new(d).join("pids.events").exists())
    .expect("the bomb's pids cgroup");
    let read = |f: &str| std::fs::read_to_string(format!("{cgroup}/{f}")).expect(f);
    let refused: u64 = read("pids.events")
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("pids.events");
    assert!(refused > 0, "the bomb never hit its limit");
    if let Ok(peak) = std::fs::read_to_string(format!("{cgroup}/pids.peak")) {
        let peak: u64 = peak.trim().parse().expect("pids.peak");
        assert!(peak <= 64, "{peak} processes at once despite a limit of 64");
    }
    // Its neighbour and the engine are unaffected.
    assert_eq!(
        inspect(ids[0]).await.state.and_then(|s| s.running),
        Some(true)
    );
    e.docker().ping().await.expect("engine responsive");
    for id in ids {
        e.remove_session(id).await.expect("cleanup");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_removes_orphans_and_sessions_past_their_hard_expiry() {
    let mut lab = start(|_| {}).await;
    let url = lab
        .git
        .repo("app", &[("Dockerfile", &dockerfile(r#"["sleep", "600"]"#))]);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let job = lab.server.queue_job(&url, None, None).await;
        let p = lab.server.until_settled(job.build_id, SETTLE).await;
        assert_eq!(p.last(), Some(Stage::Running), "{p:#?}");
        ids.push(job.build_id);
    }
    let e = lab.engine().await;
    let live = |id: Uuid| {
        let e = e.clone();
        async move {
            e.docker()
                .inspect_container(&engine::session_name(id), None)
                .await
                .is_ok()
        }
    };
    // The api-server says only the first is live (as of a moment well after both started).
    lab.server
        .control(&SessionControl::Live {
            session_ids: vec![ids[0]],
            at_unix: chrono_now() + 120,
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let removed = lab.worker.sweep().await.expect("sweep");
    assert!(removed >= 1);
    assert!(live(ids[0]).await, "a live session stays");
    assert!(!live(ids[1]).await, "an orphan goes");

    // Past its hard expiry a session goes whatever the api-server says.
    let hard = lab.server.queue_job(&url, None, None).await;
    let p = lab.server.until_settled(hard.build_id, SETTLE).await;
    assert_eq!(p.last(), Some(Stage::Running));
    lab.server
        .control(&SessionControl::Live {
            session_ids: vec![ids[0], hard.build_id],
            at_unix: chrono_now(),
        })
        .await;
    // Re-label by restarting the session with an expiry in the past.
    e.remove_session(hard.build_id).await.expect("remove");
    e.start_session(&engine::SessionSpec {
        session_id: hard.build_id,
        build_id: hard.build_id,
        tenant_id: hard.tenant_id,
        image: BASE_IMAGE,
        hard_expiry_unix: chrono_now() - 1,
        limits: &engine::Limits {
            memory_bytes: 64 << 20,
            nano_cpus: 500_000_000,
            pids: 64,
        },
        restart: 0,
    })
    .await
    .expect("start");
    tokio::time::sleep(Duration::from_millis(500)).await;
    lab.worker.sweep().await.expect("sweep");
    assert!(!live(hard.build_id).await, "past its hard expiry");
    assert!(live(ids[0]).await);
    e.remove_session(ids[0]).await.expect("cleanup");
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// The real binary, configured through the environment like a deployment.
fn spawn_worker_binary(config: &labwright_build_worker::Config, name: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_build-worker"))
        .env("LABWRIGHT_AMQP_URL", &config.amqp_url)
        .env("LABWRIGHT_EVENTS_EXCHANGE", &config.events_exchange)
        .env("LABWRIGHT_NAMESPACE", &config.namespace)
        .env("LABWRIGHT_DOCKER_HOST", &config.docker_host)
        .env("LABWRIGHT_SCRATCH_DIR", &config.scratch_dir)
        .env("LABWRIGHT_ALLOW_PRIVATE_HOSTS", "true")
        .env("LABWRIGHT_WORKER_NAME", name)
        .env("LABWRIGHT_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start build-worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_build_loses_nothing_and_leaves_nothing() {
    let ns = namespace();
    let e = engine(&ns).await;
    ensure_base_image(&e).await;
    let mut server = FakeServer::start(names(&ns)).await;
    let git = GitDaemon::start().await;
    let config = worker_config(&ns);
    let url = git.repo(
        "slow",
        &[(
            "Dockerfile",
            &format!("FROM {BASE_IMAGE}\nRUN sleep 4\nCMD [\"sleep\", \"600\"]\n"),
        )],
    );
    let mut first = spawn_worker_binary(&config, "first");
    let job = server.queue_job(&url, None, None).await;
    let p = server
        .until_stage(job.build_id, Stage::Building, SETTLE)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // well into `RUN sleep 4`
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");

    let mut second = spawn_worker_binary(&config, "second");
    let p = server
        .until(
            job.build_id,
            SETTLE,
            |s| s == Stage::Running || s.is_final(),
            p,
        )
        .await;
    assert_eq!(p.last(), Some(Stage::Running), "{p:#?}");
    assert_eq!(
        p.attempts.len(),
        2,
        "the job was redelivered to the second worker"
    );
    assert_eq!(
        p.stages.iter().filter(|s| **s == Stage::Cloning).count(),
        2,
        "the second attempt started over"
    );
    // What the first attempt left (its half-built image, intermediate containers) is gone: the
    // engine cancels a build whose client vanished, and the session starts clean.
    let sessions = e.sessions().await.expect("sessions");
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(sessions[0].running);
    let stray = e
        .docker()
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await
        .expect("containers")
        .into_iter()
        .filter(|c| {
            c.image
                .as_deref()
                .is_some_and(|i| !i.starts_with("labwright/build-"))
                && c.command
                    .as_deref()
                    .is_some_and(|cmd| cmd.contains("sleep 4"))
        })
        .count();
    assert_eq!(stray, 0, "no intermediate build container left");
    second.kill().expect("stop");
    let _ = second.wait();
    e.remove_session(job.build_id).await.expect("cleanup");
}

/// One repository per stack, built from the generated Dockerfile on the Debian-based images of
/// `scripts/build-images` and run to a live container whose program says it is up. Java through
/// Gradle (a project without dependencies builds offline); Maven is left out: even a project
/// without dependencies needs its plugins from Maven Central, which this machine cannot reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stack_builds_and_runs_from_a_generated_dockerfile() {
    let mut lab = start(|c| c.build_timeout_secs = 600).await;
    let e = lab.engine().await;
    for image in [
        "labwright/python:3",
        "labwright/node:18",
        "labwright/go:1",
        "labwright/rust:1",
    ] {
        assert!(
            e.docker().inspect_image(image).await.is_ok(),
            "{image} is missing: scripts/test makes it with scripts/build-images"
        );
    }
    let repos = [
        (
            "python",
            vec![
                ("requirements.txt", "six==1.16.0\n"),
                (
                    "main.py",
                    "import time, six\nopen('state.db', 'w').write('x')\nprint('python up', six.__version__, flush=True)\ntime.sleep(600)\n",
                ),
            ],
        ),
        (
            "node",
            vec![
                (
                    "package.json",
                    r#"{"name": "app", "version": "1.0.0", "scripts": {"start": "node server.js"}}"#,
                ),
                (
                    "package-lock.json",
                    r#"{"name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": {"": {"name": "app", "version": "1.0.0"}}}"#,
                ),
                (
                    "server.js",
                    "require('fs').writeFileSync('state.db', 'x');\nconsole.log('node up');\nsetInterval(() => {}, 1000);\n",
                ),
            ],
        ),
        (
            "go",
            vec![
                ("go.mod", "module example.com/app\n\ngo 1.19\n"),
                (
                    "main.go",
                    "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"time\"\n)\n\nfunc main() {\n\tif err := os.WriteFile(\"state.db\", []byte(\"x\"), 0o600); err != nil {\n\t\tpanic(err)\n\t}\n\tfmt.Println(\"go up\")\n\ttime.Sleep(600 * time.Second)\n}\n",
                ),
            ],
        ),
        (
            "java_gradle",
            vec![
                (
                    "build.gradle",
                    "apply plugin: 'java'\njar { manifest { attributes 'Main-Class': 'app.Main' } }\n",
                ),
                (
                    "src/main/java/app/Main.java",
                    "package app;\n\npublic class Main {\n    public static void main(String[] args) throws Exception {\n        new java.io.FileWriter(\"state.db\").close();\n        System.out.println(\"java_gradle up\");\n        Thread.sleep(600_000);\n    }\n}\n",
                ),
            ],
        ),
        (
            "rust",
            vec![
                (
                    "Cargo.toml",
                    "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
                ),
                (
                    "src/main.rs",
                    "fn main() {\n    std::fs::write(\"state.db\", \"x\").expect(\"/app is writable\");\n    println!(\"rust up\");\n    std::thread::sleep(std::time::Duration::from_secs(600));\n}\n",
                ),
            ],
        ),
    ];
    // Every program writes a file next to its code before it says it is up: apps that keep
    // SQLite files, uploads or logs in their directory must be able to.
    for (stack, files) in repos {
        let url = lab.git.repo(stack, &files);
        let job = lab.server.queue_job(&url, None, None).await;
        let p = lab
            .server
            .until_settled(job.build_id, Duration::from_secs(600))
            .await;
        assert_eq!(
            p.last(),
            Some(Stage::Running),
            "{stack}: {} / {:?}",
            p.reason,
            p.log.iter().rev().take(15).collect::<Vec<_>>()
        );
        let (detected, dockerfile, own) = p.detected.clone().expect("detected");
        assert_eq!((detected.as_str(), own), (stack, false), "{dockerfile}");
        let expected = format!("{stack} up");
        let mut logs = String::new();
        for _ in 0..100 {
            logs = container_logs(&e, job.build_id).await;
            if logs.contains(&expected) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            logs.contains(&expected),
            "{stack}: the program did not start: {logs:?}"
        );
        let c = e
            .docker()
            .inspect_container(&engine::session_name(job.build_id), None)
            .await
            .expect("inspect");
        assert_eq!(
            c.config.and_then(|c| c.user).as_deref(),
            Some("65534:65534"),
            "{stack} runs as nobody"
        );
        e.remove_session(job.build_id).await.expect("cleanup");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_cancelled_while_building_stops_and_is_not_retried() {
    let mut lab = start(|_| {}).await;
    let url = lab.git.repo(
        "slow",
        &[(
            "Dockerfile",
            &format!("FROM {BASE_IMAGE}\nRUN sleep 5\nCMD [\"sleep\", \"600\"]\n"),
        )],
    );
    let job = lab.server.queue_job(&url, None, None).await;
    let p = lab
        .server
        .until_stage(job.build_id, Stage::Building, SETTLE)
        .await;
    lab.server
        .control(&SessionControl::Stop {
            session_id: job.build_id,
            reason: "cancelled".into(),
        })
        .await;
    // Nothing more happens for it: no later stage, no second attempt.
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        lab.server
            .until(job.build_id, SETTLE, |_| true, Progress::default()),
    )
    .await;
    assert!(
        next.is_err(),
        "the cancelled build went on: {next:?} after {p:?}"
    );
    let e = lab.engine().await;
    assert!(e.sessions().await.expect("sessions").is_empty());
    assert!(
        e.docker()
            .inspect_image(&e.image_tag(job.build_id))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_that_are_too_big_or_too_slow_fail_with_their_limit() {
    let mut lab = start(|c| {
        c.clone_max_mib = 1;
        c.clone_timeout_secs = 3;
    })
    .await;
    // Two MiB that do not compress: over the 1 MiB limit whatever git does.
    let mut noise = vec![0u8; 2 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let dir = lab.git.root.join("big");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("blob.bin"), &noise).expect("blob");
    let big = lab
        .git
        .repo("big", &[("Dockerfile", &dockerfile(r#"["sleep", "600"]"#))]);
    let job = lab.server.queue_job(&big, None, None).await;
    let p = lab.server.until_settled(job.build_id, SETTLE).await;
    assert_eq!(p.last(), Some(Stage::Failed), "{p:#?}");
    assert!(p.reason.contains("larger than 1 MiB"), "{}", p.reason);

    // A git server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let job = lab
        .server
        .queue_job(&format!("git://127.0.0.1:{port}/stuck"), None, None)
        .await;
    let p = lab.server.until_settled(job.build_id, SETTLE).await;
    assert_eq!(p.last(), Some(Stage::Failed), "{p:#?}");
    assert!(p.reason.contains("longer than 3 s"), "{}", p.reason);
}
