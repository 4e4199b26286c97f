//! The security findings of the build phase, each against the real worker, Docker engine and git
//! daemon: root users in any spelling, remote `ADD`, host names that resolve to internal
//! addresses, build limits on a network of the build's own, the log cap, the generated
//! Dockerfile kept out of the image, and the egress policy tried from inside real build and
//! session containers (towards this machine's own addresses only, and a package registry).

mod support;

use std::{
    io::{Read, Write},
    net::{TcpListener, ToSocketAddrs},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use labwright_build_worker::engine;
use labwright_core::build::Stage;
use labwright_wire::docker::labels;
use support::*;

const SETTLE: Duration = Duration::from_secs(120);

/// A TCP listener on every address of this machine (0.0.0.0), answering each connection with a
/// small HTTP response; counts connections.
fn host_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("0.0.0.0:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\ninternal-key");
        }
    });
    (port, hits)
}

fn root_dockerfile(tail: &str) -> String {
    format!("FROM {BASE_IMAGE}\nCOPY . /app\n{tail}\nCMD [\"sleep\", \"600\"]\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_user_in_any_spelling_is_refused() {
    let mut lab = start(|_| {}).await;
    let e = lab.engine().await;
    for (name, tail) in [
        ("zero", "USER 0:0"),
        ("root-root", "USER root:root"),
        ("padded", "USER 00:65534"),
        ("plain-root", "USER root"),
        (
            "alias",
            "RUN echo 'toor:x:0:0::/:/bin/sh' >> /etc/passwd\nUSER toor",
        ),
    ] {
        let url = lab
            .git
            .repo(name, &[("Dockerfile", &root_dockerfile(tail))]);
        let job = lab.server.queue_job(&url, None, None).await;
        let p = lab.server.until_settled(job.build_id, SETTLE).await;
        assert_eq!(p.last(), Some(Stage::Failed), "{tail}: {p:#?}");
        assert!(
            p.reason.contains("runs as root") && p.reason.contains("USER"),
            "{tail}: {}",
            p.reason
        );
        assert!(
            e.docker()
                .inspect_container(&engine::session_name(job.build_id), None)
                .await
                .is_err(),
            "{tail}: no container left"
        );
    }
    // A non-root user named in the image still runs.
    let url = lab.git.repo(
        "app-user",
        &[(
            "Dockerfile",
            &root_dockerfile("RUN echo 'app:x:1000:1000::/app:/bin/sh' >> /etc/passwd\nUSER app"),
        )],
    );
    let job = lab.server.queue_job(&url, None, None).await;
    let p = lab.server.until_settled(job.build_id, SETTLE).await;
    assert_eq!(p.last(), Some(Stage::Running), "{p:#?}");
    e.remove_session(job.build_id).await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_add_is_refused_naming_the_line_and_never_fetched() {
    let (port, hits) = host_listener();
    let mut lab = start(|_| {}).await;
    let url = lab.git.repo(
        "ssrf",
        &[(
            "Dockerfile",
            &format!(
                "FROM {BASE_IMAGE}\nCOPY . /app\nADD http://127.0.0.1:{port}/secret /secret\n\
                 CMD [\"sleep\", \"600\"]\n"
            ),
        )],
    );
    let job = lab.server.queue_job(&url, None, None).await;
    let p = lab.server.until_settled(job.build_id, SETTLE).await;
    assert_eq!(p.last(), Some(Stage::Failed), "{p:#?}");
    assert!(
        p.reason.contains("Dockerfile line 3") && p.reason.contains("ADD from a URL"),
        "{}",
        p.reason
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing fetched the URL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_names_that_resolve_to_internal_addresses_are_refused() {
    let host = String::from_utf8(Command::new("hostname").output().expect("hostname").stdout)
        .expect("utf8")
        .trim()
        .to_ascii_lowercase();
    let resolved: Vec<_> = (host.as_str(), 80)
        .to_socket_addrs()
        .expect("this machine's name resolves")
        .collect();
    assert!(
        resolved.iter().all(|a| a.ip().is_loopback()),
        "the test needs this machine's name ({host}) to resolve to loopback: {resolved:?}"
    );
    let mut lab = start(|c| c.allow_private_hosts = false).await;
    let by_name = lab
        .git
        .repo("app", &[("Dockerfile", &root_dockerfile(""))])
        .replace("127.0.0.1", &host);
    let job = lab.server.queue_job(&by_name, None, None).await;
    let p = lab.server.until_settled(job.build_id, SETTLE).await;
    assert_eq!(p.stages, vec![Stage::Failed], "{by_name}: {p:#?}");
    assert!(
        p.reason.contains(&format!("{host} resolves to 127.")),
        "{}",
        p.reason
    );
    for literal in [
        "[::7f00:1]",
        "[64:ff9b::7f00:1]",
        "[::ffff:127.0.0.1]",
        "100.64.0.1",
    ] {
        let url = format!("git://{literal}:{}/app", lab.git.port);
        let job = lab.server.queue_job(&url, None, None).await;
        let p = lab.server.until_settled(job.build_id, SETTLE).await;
        assert_eq!(p.stages, vec![Stage::Failed], "{url}: {p:#?}");
        assert!(p.reason.contains("private address"), "{url}: {}", p.reason);
    }
}

/// A base image standing in for `labwright/python:3`: `pip` prints the limits its `RUN` step
/// has, `python` sleeps.
async fn fake_python_image(e: &engine::Engine) -> String {
    const TAG: &str = "labwright-test/fake-python:1";
    let pip = "#!/bin/sh\n\
        echo \"step memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)\"\n\
        echo \"step cpu $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max)\"\n\
        echo \"step route $(ip route | grep default)\"\n\
        for i in $(seq 1 300); do v=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max); [ \"$v\" != max ] && break; sleep 0.1; done\n\
        echo \"step pids $v\"\n";
    let python = "#!/bin/sh\nexec sleep 600\n";
    let dockerfile =
        format!("FROM {BASE_IMAGE}\nCOPY pip python /bin/\nRUN chmod 755 /bin/pip /bin/python\n");
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("Dockerfile", dockerfile.as_str()),
        ("pip", pip),
        ("python", python),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        tar.append_data(&mut h, name, data.as_bytes()).expect("tar");
    }
    let bytes = tar.into_inner().expect("tar");
    use futures::StreamExt;
    let mut stream = e.docker().build_image(
        bollard::query_parameters::BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(TAG.into()),
            rm: true,
            ..Default::default()
        },
        None,
        Some(bollard::body_full(bytes.into())),
    );
    while let Some(r) = stream.next().await {
        let info = r.expect("fake python image");
        assert!(info.error_detail.is_none(), "{info:?}");
    }
    TAG.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_are_limited_on_their_own_network_and_leave_no_trace_of_the_worker() {
    let ns = namespace();
    let python = fake_python_image(&engine(&ns).await).await;
    let mut lab = start(|c| {
        c.build_images.python = python.clone();
        c.build_memory_mib = 256;
        c.build_cpus = 0.5;
        // The pids limit is the engine's, not the build's: it lands on every step that joins the
        // shared build network, from every worker on the engine (other tests' workers run
        // beside this one), so it is left at the default that all of them use.
        c.build_log_max_kib = 4;
    })
    .await;
    let url = lab.git.repo(
        "py",
        &[("requirements.txt", "flask\n"), ("app.py", "print('hi')\n")],
    );
    let job = lab.server.queue_job(&url, None, None).await;
    let p = lab.server.until_settled(job.build_id, SETTLE).await;
    assert_eq!(p.last(), Some(Stage::Running), "{p:#?}");
    let log = p.log.join("\n");
    assert!(log.contains("step memory 268435456"), "{log}");
    assert!(
        log.contains("step cpu 50000") || log.contains("step cpu 50000 100000"),
        "{log}"
    );
    let pids = labwright_build_worker::Config::default().build_pids;
    assert!(log.contains(&format!("step pids {pids}")), "{log}");
    let route = p
        .log
        .iter()
        .find(|l| l.starts_with("step route"))
        .expect("route printed");
    assert!(
        !route.contains("172.17.0.1"),
        "not the default bridge: {route}"
    );
    let scratch = lab.worker.config.scratch_dir.display().to_string();
    assert!(
        p.log.iter().all(|l| !l.contains(&scratch)),
        "no worker path in the log: {:?}",
        p.log
    );
    let e = lab.engine().await;
    let container = p.container.clone().expect("container");
    let generated = e
        .docker()
        .inspect_container(&container, None)
        .await
        .expect("container");
    assert!(generated.state.and_then(|s| s.running).unwrap_or(false));
    use futures::StreamExt;
    let mut copy = e.docker().download_from_container(
        &container,
        Some(bollard::query_parameters::DownloadFromContainerOptions {
            path: "/app/.labwright.Dockerfile".into(),
        }),
    );
    let first = copy.next().await;
    assert!(
        matches!(first, Some(Err(_))),
        "the generated Dockerfile is not in the image"
    );
    let mut app = e.docker().download_from_container(
        &container,
        Some(bollard::query_parameters::DownloadFromContainerOptions {
            path: "/app/app.py".into(),
        }),
    );
    assert!(matches!(app.next().await, Some(Ok(_))), "the app is");
    // Builds run on the engine's build network (lw-builds), which carries no build's label: the
    // session's network is the only one of this build.
    let mut names = Vec::new();
    for _ in 0..100 {
        let build_networks = e
            .docker()
            .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
                filters: Some(std::collections::HashMap::from([(
                    "label".to_string(),
                    vec![format!("{}={}", labels::BUILD, job.build_id)],
                )])),
            }))
            .await
            .expect("networks");
        names = build_networks
            .iter()
            .filter_map(|n| n.name.clone())
            .collect();
        if names.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        names,
        vec![engine::session_name(job.build_id)],
        "no network of the build's own is left; the session's stays"
    );
    e.remove_session(job.build_id).await.expect("cleanup");

    // Output past the cap is cut with one line saying so; the build goes on.
    let chatty = lab.git.repo(
        "chatty",
        &[(
            "Dockerfile",
            &root_dockerfile("RUN seq 1 20000 && echo chatty-done"),
        )],
    );
    let job = lab.server.queue_job(&chatty, None, None).await;
    let p = lab.server.until_settled(job.build_id, SETTLE).await;
    assert_eq!(p.last(), Some(Stage::Running), "{p:#?}");
    let cut: Vec<_> = p
        .log
        .iter()
        .filter(|l| l.contains("build log truncated"))
        .collect();
    assert_eq!(cut.len(), 1, "{:?}", p.log);
    assert!(
        !p.log.iter().any(|l| l == "19999"),
        "later lines are not kept"
    );
    let bytes: usize = p.log.iter().map(|l| l.len() + 1).sum();
    assert!(bytes < 16 << 10, "log kept small: {bytes} bytes");
    e.remove_session(job.build_id).await.expect("cleanup");
}

/// The IPv4 addresses of this machine's interfaces other than loopback: the platform's own
/// addresses and Docker bridge gateways.
fn host_addresses() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .expect("ip addr");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains(" lo "))
        .filter_map(|l| {
            let cidr = l.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
            Some(cidr.split('/').next()?.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_and_sessions_reach_neither_this_machine_nor_private_addresses_but_registries() {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/sandbox-egress");
    let applied = Command::new(&script)
        .arg("apply")
        .status()
        .expect("sandbox-egress");
    assert!(applied.success(), "sandbox-egress apply");
    let (port, hits) = host_listener();
    let addrs = host_addresses();
    assert!(
        !addrs.is_empty(),
        "this machine has addresses besides loopback"
    );
    let registry = ("deb.debian.org", 80)
        .to_socket_addrs()
        .expect("the package registry resolves")
        .find(|a| a.is_ipv4())
        .expect("an IPv4 address")
        .ip();
    let probe = format!(
        "gw=$(ip route | awk '/^default/ {{print $3}}')\n\
         for t in $gw {addrs}; do\n\
           if echo | nc -w 3 $t {port} >/dev/null 2>&1; then echo \"$1 host $t open\"; else echo \"$1 host $t closed\"; fi\n\
         done\n\
         if (printf 'HEAD /debian/dists/bookworm/Release HTTP/1.1\\r\\nHost: deb.debian.org\\r\\nConnection: close\\r\\n\\r\\n'; sleep 3) | nc -w 10 {registry} 80 | grep -q '^HTTP/1.. [23]'; then echo \"$1 registry open\"; else echo \"$1 registry closed\"; fi\n\
         echo \"$1 probe done\"\n\
         if [ \"$1\" = session ]; then exec sleep 600; fi\n",
        addrs = addrs.join(" "),
    );
    let mut lab = start(|_| {}).await;
    let url = lab.git.repo(
        "probe",
        &[
            ("probe.sh", &probe),
            (
                "Dockerfile",
                &format!(
                    "FROM {BASE_IMAGE}\nCOPY probe.sh /probe.sh\nRUN sh /probe.sh build\n\
                     CMD [\"sh\", \"/probe.sh\", \"session\"]\n"
                ),
            ),
        ],
    );
    let job = lab.server.queue_job(&url, None, None).await;
    let p = lab.server.until_settled(job.build_id, SETTLE).await;
    assert_eq!(p.last(), Some(Stage::Running), "{p:#?}");
    let build_log = p.log.join("\n");
    let e = lab.engine().await;
    let mut session_log = String::new();
    for _ in 0..300 {
        session_log = container_logs(&e, job.build_id).await;
        if session_log.contains("session probe done") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    e.remove_session(job.build_id).await.expect("cleanup");
    for (phase, log) in [("build", &build_log), ("session", &session_log)] {
        assert!(
            log.contains(&format!("{phase} probe done")),
            "{phase}: {log}"
        );
        assert!(
            !log.lines()
                .any(|l| l.starts_with(&format!("{phase} host ")) && l.ends_with(" open")),
            "{phase} reached this machine: {log}"
        );
        for addr in &addrs {
            assert!(
                log.contains(&format!("{phase} host {addr} closed")),
                "{phase}: {addr}: {log}"
            );
        }
        assert!(
            log.contains(&format!("{phase} registry open")),
            "{phase}: the package registry stays reachable: {log}"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no connection reached the host"
    );
}

/// Stand-ins for internal destinations beyond this machine, kept on it: a network namespace
/// behind a veth pair holding 169.254.169.254 (metadata), a private and a CGNAT address, each
/// routed to it from here, with a listener on `port`. Removed on drop.
struct InternalPeers {
    ns: String,
    veth: String,
    addrs: Vec<&'static str>,
    listener: std::process::Child,
}

const PEER_ADDRS: [&str; 3] = ["169.254.169.254", "10.255.254.77", "100.64.77.77"];
const PEER_GATEWAY: &str = "10.255.254.1";

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect(args[0]);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl InternalPeers {
    fn start(port: u16) -> Self {
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..6];
        let (ns, veth, peer) = (
            format!("lwt{tag}"),
            format!("lwth{tag}"),
            format!("lwtp{tag}"),
        );
        sh(&["ip", "netns", "add", &ns]);
        let peers = InternalPeers {
            ns: ns.clone(),
            veth: veth.clone(),
            addrs: Vec::new(),
            listener: Command::new("true").spawn().expect("true"),
        };
        sh(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", &peer,
        ]);
        sh(&["ip", "link", "set", &peer, "netns", &ns]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{PEER_GATEWAY}/32"),
            "dev",
            &veth,
        ]);
        sh(&["ip", "link", "set", &veth, "up"]);
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &ns, "link", "set", &peer, "up"]);
        sh(&["ip", "-n", &ns, "route", "add", PEER_GATEWAY, "dev", &peer]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            "default",
            "via",
            PEER_GATEWAY,
        ]);
        let mut peers = peers;
        for a in PEER_ADDRS {
            sh(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{a}/32"),
                "dev",
                &peer,
            ]);
            sh(&["ip", "route", "add", &format!("{a}/32"), "dev", &veth]);
            peers.addrs.push(a);
        }
        let _ = peers.listener.wait();
        peers.listener = Command::new("ip")
            .args(["netns", "exec", &ns, "busybox", "nc", "-ll", "-p"])
            .arg(port.to_string())
            .args(["-e", "/bin/echo", "reached"])
            .spawn()
            .expect("listener in the namespace");
        peers
    }
}

impl Drop for InternalPeers {
    fn drop(&mut self) {
        let _ = self.listener.kill();
        let _ = self.listener.wait();
        for a in &self.addrs {
            let _ = Command::new("ip")
                .args(["route", "del", &format!("{a}/32"), "dev", &self.veth])
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// Runs `script` in a throwaway container on Docker's default bridge (not a sandbox network)
/// and returns its output.
async fn on_default_bridge(e: &engine::Engine, script: &str) -> String {
    let name = format!("lw-test-control-{}", uuid::Uuid::new_v4().simple());
    let docker = e.docker();
    docker
        .create_container(
            Some(bollard::query_parameters::CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            bollard::models::ContainerCreateBody {
                image: Some(BASE_IMAGE.into()),
                cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
                ..Default::default()
            },
        )
        .await
        .expect("control container");
    docker.start_container(&name, None).await.expect("start");
    use futures::StreamExt;
    let mut wait = docker.wait_container(&name, None);
    while wait.next().await.is_some() {}
    let mut out = String::new();
    let mut logs = docker.logs(
        &name,
        Some(bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        }),
    );
    while let Some(Ok(chunk)) = logs.next().await {
        out.push_str(&chunk.to_string());
    }
    let _ = docker
        .remove_container(
            &name,
            Some(bollard::query_parameters::RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_private_and_cgnat_addresses_are_refused_beyond_this_machine() {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/sandbox-egress");
    let applied = Command::new(&script)
        .arg("apply")
        .status()
        .expect("sandbox-egress");
    assert!(applied.success(), "sandbox-egress apply");
    let port = free_port();
    let _peers = InternalPeers::start(port);
    let probe = |phase: &str| {
        format!(
            "for t in {}; do\n\
               if echo | nc -w 3 $t {port} 2>/dev/null | grep -q reached; then echo \"{phase} peer $t open\"; else echo \"{phase} peer $t closed\"; fi\n\
             done\n\
             echo \"{phase} probe done\"\n",
            PEER_ADDRS.join(" ")
        )
    };
    let lab = start(|_| {}).await;
    let e = lab.engine().await;
    // The stand-ins answer a container that is not on a sandbox network: the rules, not the
    // fixture, are what refuses them below.
    let control = on_default_bridge(&e, &probe("control")).await;
    for a in PEER_ADDRS {
        assert!(
            control.contains(&format!("control peer {a} open")),
            "{control}"
        );
    }
    let mut lab = lab;
    let url = lab.git.repo(
        "peers",
        &[
            (
                "probe.sh",
                &format!(
                    "{}{}",
                    probe("$1"),
                    "if [ \"$1\" = session ]; then exec sleep 600; fi\n"
                ),
            ),
            (
                "Dockerfile",
                &format!(
                    "FROM {BASE_IMAGE}\nCOPY probe.sh /probe.sh\nRUN sh /probe.sh build\n\
                     CMD [\"sh\", \"/probe.sh\", \"session\"]\n"
                ),
            ),
        ],
    );
    let job = lab.server.queue_job(&url, None, None).await;
    let p = lab.server.until_settled(job.build_id, SETTLE).await;
    assert_eq!(p.last(), Some(Stage::Running), "{p:#?}");
    let build_log = p.log.join("\n");
    let mut session_log = String::new();
    for _ in 0..300 {
        session_log = container_logs(&e, job.build_id).await;
        if session_log.contains("session probe done") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    e.remove_session(job.build_id).await.expect("cleanup");
    for (phase, log) in [("build", &build_log), ("session", &session_log)] {
        assert!(
            log.contains(&format!("{phase} probe done")),
            "{phase}: {log}"
        );
        for a in PEER_ADDRS {
            assert!(
                log.contains(&format!("{phase} peer {a} closed")),
                "{phase}: {a}: {log}"
            );
        }
    }
}
