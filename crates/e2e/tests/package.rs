//! The host-agent's Debian package (`scripts/package-host-agent`), installed with Debian's `apt`
//! into a Debian 12 container (`labwright/runtime:12`, made from Debian packages by
//! `scripts/build-images`) as a lab owner installs it on a Pi: the package makes the `labwright`
//! user in the device groups, installs the unit, config and udev rules with the right owners,
//! and the packaged binary, run as that user, enrolls with a real api-server.

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use labwright_testkit::{binary::cargo_bin, docker_host};
use support::*;

const IMAGE: &str = "labwright/runtime:12";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/package-host-agent")
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .env("DOCKER_HOST", docker_host())
        .args(args)
        .output()
        .expect("docker CLI")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Removes the container however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

/// Builds the package from the test build of `host-agent`; answers the .deb's path.
fn build_package(out: &Path) -> PathBuf {
    let agent = cargo_bin("host-agent");
    let built = Command::new(script())
        .arg("--binary")
        .arg(&agent)
        .arg("--out")
        .arg(out)
        .output()
        .expect("scripts/package-host-agent");
    assert!(
        built.status.success(),
        "package-host-agent failed: {}",
        text(&built.stderr)
    );
    let path = text(&built.stdout).trim().to_string();
    let deb = PathBuf::from(path);
    assert!(deb.is_file(), "no package at {}", deb.display());
    deb
}

fn deb_field(deb: &Path, field: &str) -> String {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg(field)
        .output()
        .expect("dpkg-deb");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

#[test]
fn the_package_holds_the_agent_its_unit_config_and_udev_rules() {
    let dir = labwright_testkit::temp_dir("package-contents");
    let deb = build_package(&dir);
    assert_eq!(deb_field(&deb, "Package"), "labwright-host-agent");
    let arch = text(
        &Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .expect("dpkg")
            .stdout,
    );
    assert_eq!(deb_field(&deb, "Architecture"), arch.trim());
    // The shared libraries the binary links, as the packages that own them.
    let depends = deb_field(&deb, "Depends");
    for pkg in ["libc6", "libasound2", "libudev1", "passwd"] {
        assert!(
            depends.split(", ").any(|d| d == pkg),
            "{pkg} missing: {depends}"
        );
    }
    let contents = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .expect("dpkg-deb -c");
    let listing = text(&contents.stdout);
    for (path, mode) in [
        ("./usr/bin/host-agent", "-rwxr-xr-x"),
        (
            "./lib/systemd/system/labwright-host-agent.service",
            "-rw-r--r--",
        ),
        ("./etc/labwright/host-agent.toml", "-rw-r-----"),
        (
            "./lib/udev/rules.d/60-labwright-host-agent.rules",
            "-rw-r--r--",
        ),
    ] {
        let line = listing
            .lines()
            .find(|l| l.ends_with(&format!(" {path}")))
            .unwrap_or_else(|| panic!("{path} not in the package:\n{listing}"));
        assert!(line.starts_with(mode), "{line}");
        assert!(line.contains("root/root"), "{line}");
    }
    // The config is a conffile: a lab owner's edits survive upgrades.
    let conffiles = Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb)
        .arg("conffiles")
        .output()
        .expect("dpkg-deb --info");
    assert_eq!(
        text(&conffiles.stdout).trim(),
        "/etc/labwright/host-agent.toml"
    );
    // An unknown option is refused before anything is built.
    let bad = Command::new(script())
        .arg("--frobnicate")
        .output()
        .expect("package-host-agent");
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("unknown option --frobnicate"),
        "{}",
        text(&bad.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_with_apt_the_agent_runs_as_its_own_user_and_enrolls() {
    let dir = labwright_testkit::temp_dir("package-install");
    let deb = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || build_package(&dir)
    })
    .await
    .expect("build the package");
    let deb_name = deb
        .file_name()
        .and_then(|n| n.to_str())
        .expect("package file name")
        .to_string();

    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let token = s.create_key("host", "packaged host").await;
    let grpc_port = s.server.grpc_addr.port();
    // The install as a lab owner does it, then the agent started as the unit starts it (the
    // unit's user, groups and command line; the container has no systemd as its init), its
    // unit file checked by systemd itself.
    let install = format!(
        "set -e\n\
         export DEBIAN_FRONTEND=noninteractive\n\
         apt-get update -qq\n\
         apt-get install -y -qq --no-install-recommends /pkg/{deb_name} systemd >/dev/null\n\
         echo \"user: $(id -nG labwright)\"\n\
         echo \"shell: $(getent passwd labwright | cut -d: -f7)\"\n\
         echo \"modes: $(stat -c '%U:%G:%a' /etc/labwright /etc/labwright/host-agent.toml /var/lib/labwright | tr '\\n' ' ')\"\n\
         systemd-analyze verify /lib/systemd/system/labwright-host-agent.service && echo \"unit: verified\"\n\
         echo '{token}' > /etc/labwright/enrollment-token\n\
         chown root:labwright /etc/labwright/enrollment-token && chmod 0640 /etc/labwright/enrollment-token\n\
         sed -i -e 's|^server = .*|server = \"http://127.0.0.1:{grpc_port}\"|' \\\n\
                -e 's|^host_name = .*|host_name = \"packaged-01\"|' /etc/labwright/host-agent.toml\n\
         echo \"agent: starting\"\n\
         exec setpriv --reuid labwright --regid labwright --init-groups --inh-caps=-all \\\n\
              /usr/bin/host-agent --config /etc/labwright/host-agent.toml\n"
    );
    std::fs::write(dir.join("install.sh"), install).expect("install script");
    let name = format!("lw-test-package-{}", uuid::Uuid::new_v4().simple());
    let pkg_mount = format!("{}:/pkg:ro", dir.display());
    let run = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "-v",
        &pkg_mount,
        IMAGE,
        "bash",
        "/pkg/install.sh",
    ]);
    assert!(run.status.success(), "docker run: {}", text(&run.stderr));
    let container = Container(name);
    let id = container.0.as_str();

    let logs = || {
        let out = docker(&["logs", id]);
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    };
    // apt fetches the libraries from Debian's registry: minutes on a slow mirror.
    let host = eventually(Duration::from_secs(300), "packaged-01 online", || {
        let (s, logs) = (&s, &logs);
        async move {
            let (_, page) = s.get(&s.admin_key, "/api/v1/hosts?q=packaged-01").await;
            let online = page["items"]
                .as_array()?
                .iter()
                .find(|h| h["name"] == "packaged-01" && h["status"] == "online")
                .cloned();
            if online.is_none() {
                let state = docker(&["inspect", "-f", "{{.State.Running}}", id]);
                assert!(
                    text(&state.stdout).trim() != "false",
                    "the container stopped:\n{}",
                    logs()
                );
            }
            online
        }
    })
    .await;
    let log = logs();
    let user = log
        .lines()
        .find_map(|l| l.strip_prefix("user: "))
        .unwrap_or_else(|| panic!("no user line:\n{log}"));
    let groups: Vec<&str> = user.split_whitespace().collect();
    for g in ["labwright", "video", "audio", "dialout", "gpio", "plugdev"] {
        assert!(groups.contains(&g), "labwright not in {g}: {user}");
    }
    assert!(log.contains("shell: /usr/sbin/nologin"), "{log}");
    assert!(
        log.contains("modes: root:labwright:750 root:labwright:640 labwright:labwright:750 "),
        "{log}"
    );
    assert!(log.contains("unit: verified"), "{log}");
    // The example config's simulated box came online with the packaged agent.
    let host_id = host["id"].as_str().expect("host id");
    let (_, h) = s
        .get(&s.admin_key, &format!("/api/v1/hosts/{host_id}"))
        .await;
    let devices = h["devices"].as_array().expect("devices");
    assert!(
        devices.iter().any(|d| d["device_key"] == "stb-1"),
        "{devices:?}"
    );
    // It runs as the unprivileged user, not root: the agent is the container's first process
    // (the script ends in `exec setpriv … host-agent`).
    let proc1 = docker(&["exec", id, "stat", "-c", "%U %n", "/proc/1/exe"]);
    let exe = docker(&["exec", "--user", "labwright", id, "readlink", "/proc/1/exe"]);
    assert_eq!(
        (text(&proc1.stdout).trim(), text(&exe.stdout).trim()),
        ("labwright /proc/1/exe", "/usr/bin/host-agent"),
        "{}{}",
        text(&proc1.stderr),
        text(&exe.stderr)
    );
}
