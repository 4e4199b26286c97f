//! The hardware-in-the-loop rig (`scripts/rig`): Debian's kernel in a QEMU guest with real kernel
//! devices. These tests prove the devices the drivers will meet (vivid capture and its loop from
//! output to capture, snd-aloop, a USB CDC-ACM gadget and its unplug, a gpio-sim chip), then run the real
//! `host-agent` binary inside the guest, dialling an api-server on the host through the rig's
//! only way out (a forward to the host's loopback), and check through REST that the host and
//! its devices come online.
//!
//! **Where the drivers plug in:** [`rig_devices`] is the `[[devices]]` part of the guest
//! host-agent's config. Today it is the simulated set-top box; the drivers add there a device
//! whose video comes from `/dev/video0` (vivid, HDMI input, 640x480 RGB24; stable path
//! `/dev/v4l/by-path/platform-vivid.0-video-index0`), audio from `hw:Loopback,1,0` (played into
//! `hw:Loopback,0,0`) and console from `/dev/ttyACM0`
//! (`/dev/serial/by-id/usb-Labwright_Labwright_rig_serial_RIG0001-if00`; written to from the
//! gadget end, `/dev/ttyGS0`; `rig-usb unplug|plug` in the guest), and assert more in
//! `the_real_host_agent_in_the_rig_brings_its_devices_online` (health, live view, runs).

mod support;

use std::time::Duration;

use labwright_testkit::{binary::cargo_bin, rig::Rig};
use serde_json::Value;
use support::*;

const WIDTH: usize = 640;
const HEIGHT: usize = 480;
/// One RGB24 frame at the rig's DV timings (640x480p59.94).
const FRAME: usize = WIDTH * HEIGHT * 3;
const RATE: usize = 48_000;

#[test]
fn vivid_capture_gives_frames() {
    let rig = Rig::new();
    rig.run("v4l2-ctl -d /dev/video0 --stream-mmap=3 --stream-count=5 --stream-to=cap.rgb\n")
        .assert_success();
    let cap = std::fs::read(rig.job().join("cap.rgb")).expect("captured frames");
    assert_eq!(cap.len(), 5 * FRAME, "five 640x480 RGB24 frames");
    // vivid's colour bars: a row across the middle of the picture crosses eight of them.
    let row = &cap[FRAME / 2..FRAME / 2 + WIDTH * 3];
    let mut colours: Vec<&[u8]> = row.chunks(3).collect();
    colours.dedup();
    assert!(
        colours.len() >= 8,
        "expected colour bars across the middle row, saw {} colour runs",
        colours.len()
    );
}

/// A frame no test pattern makes: every pixel a function of its position.
fn tagged_frame() -> Vec<u8> {
    let mut f = vec![0u8; FRAME];
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let i = (y * WIDTH + x) * 3;
            f[i] = ((x * 7 + y) & 0xff) as u8;
            f[i + 1] = ((x * 3 + y * 5) & 0xff) as u8;
            f[i + 2] = ((x ^ y) & 0xff) as u8;
        }
    }
    f
}

#[test]
fn a_frame_written_to_vivid_output_comes_back_on_its_capture() {
    let rig = Rig::new();
    let frame = tagged_frame();
    std::fs::write(rig.job().join("frame.rgb"), &frame).expect("write frame");
    rig.run(
        r#"v4l2-ctl -d /dev/video0 -c loop_video=1 -c osd_text_mode=2
v4l2-ctl -d /dev/video1 --stream-out-mmap=3 --stream-from=frame.rgb --stream-loop --stream-no-query >out.log 2>&1 &
out=$!
# Capture once the output is streaming (v4l2-ctl prints '>' per buffer it queues).
until grep -q '>' out.log; do kill -0 $out; sleep 0.05; done
v4l2-ctl -d /dev/video0 --stream-mmap=3 --stream-count=10 --stream-to=cap.rgb --stream-no-query
kill $out
"#,
    )
    .assert_success();
    let cap = std::fs::read(rig.job().join("cap.rgb")).expect("captured frames");
    assert_eq!(cap.len(), 10 * FRAME);
    let same = cap.chunks(FRAME).filter(|c| *c == frame.as_slice()).count();
    assert!(
        same > 0,
        "no captured frame equals the frame written to the output"
    );
}

/// A 1 kHz tone, S16LE stereo at 48 kHz, starting off zero so its first sample is recognisable.
fn tone(seconds: usize) -> Vec<i16> {
    (0..RATE * seconds)
        .flat_map(|i| {
            let t = i as f64 / RATE as f64;
            let v = (12_000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t + 0.5).sin()) as i16;
            [v, v]
        })
        .collect()
}

fn to_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[test]
fn snd_aloop_carries_a_tone() {
    let rig = Rig::new();
    let played = tone(2);
    std::fs::write(rig.job().join("tone.raw"), to_bytes(&played)).expect("write tone");
    let fmt = "-t raw -f S16_LE -r 48000 -c 2";
    rig.run(&format!(
        "arecord -q -D hw:Loopback,1,0 {fmt} -d 1 rec.raw &\n\
         rec=$!\n\
         aplay -q -D hw:Loopback,0,0 {fmt} tone.raw\n\
         wait $rec\n"
    ))
    .assert_success();
    let rec: Vec<i16> = std::fs::read(rig.job().join("rec.raw"))
        .expect("recording")
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    // The recording is silence until the player starts, then the tone sample for sample.
    let start = rec
        .iter()
        .position(|s| *s != 0)
        .expect("the recording is all silence");
    let heard = &rec[start..];
    let half_second = RATE; // stereo samples
    assert!(
        heard.len() >= half_second,
        "only {} samples of tone",
        heard.len()
    );
    assert_eq!(
        &heard[..half_second],
        &played[..half_second],
        "the loopback changed the tone"
    );
    // And it is a 1 kHz tone: two sign changes per period of the left channel.
    let left: Vec<i16> = heard[..half_second].iter().step_by(2).copied().collect();
    let crossings = left.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    assert!(
        (998..=1002).contains(&crossings),
        "{crossings} sign changes in 0.5 s"
    );
}

/// Opens both ends of the gadget serial link raw and carries a line each way.
const ACM_BOTH_WAYS: &str = r#"exec 3<>/dev/ttyGS0 4<>/dev/ttyACM0
stty raw -echo <&3
stty raw -echo <&4
printf 'to-gadget\n' >&4
IFS= read -r -t 10 a <&3
echo "gadget got: $a"
printf 'to-host\n' >&3
IFS= read -r -t 10 b <&4
echo "host got: $b"
exec 3<&- 4<&-
"#;

#[test]
fn the_cdc_acm_gadget_carries_bytes_both_ways() {
    let rig = Rig::new();
    let out = rig.run(&format!(
        "cat /sys/class/tty/ttyACM0/device/../product\n\
         cat /sys/class/tty/ttyACM0/device/bInterfaceClass\n\
         {ACM_BOTH_WAYS}"
    ));
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "Labwright rig serial",
            "02", // USB communications class: a real USB serial adapter
            "gadget got: to-gadget",
            "host got: to-host"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn unbinding_the_gadget_unplugs_tty_acm_and_rebinding_restores_it() {
    let rig = Rig::new();
    let out = rig.run(&format!(
        "present() {{ if [ -e /dev/ttyACM0 ]; then echo present; else echo absent; fi; }}\n\
         present\n\
         rig-usb unplug || true\n\
         present\n\
         rig-usb plug || true\n\
         present\n\
         {ACM_BOTH_WAYS}"
    ));
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "present",
            "absent",
            "present",
            "gadget got: to-gadget",
            "host got: to-host"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn udev_in_the_guest_gives_stable_links_that_follow_an_unplug() {
    let rig = Rig::new().udev();
    let out = rig.run(
        // udev works asynchronously: each link is waited for (10 s at most) after `settle`.
        "until_link() { i=0; while [ $i -lt 100 ] && [ \"$(test -e $1 && echo y || echo n)\" != $2 ]; do sleep 0.1; i=$((i+1)); done; }\n\
         until_link /dev/v4l/by-path/platform-vivid.0-video-index0 y\n\
         readlink /dev/v4l/by-path/platform-vivid.0-video-index0\n\
         until_link /dev/snd/by-path/platform-snd_aloop.0 y\n\
         readlink /dev/snd/by-path/platform-snd_aloop.0\n\
         link=/dev/serial/by-id/usb-Labwright_Labwright_rig_serial_RIG0001-if00\n\
         until_link $link y\n\
         readlink $link\n\
         rig-usb unplug && udevadm settle\n\
         until_link $link n\n\
         if [ -e $link ]; then echo present; else echo absent; fi\n\
         rig-usb plug && udevadm settle\n\
         until_link $link y\n\
         readlink $link\n",
    );
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "../../video0",
            "../controlC0",
            "../../ttyACM0",
            "absent",
            "../../ttyACM0"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn a_gpio_sim_line_reads_what_its_pull_drives() {
    let rig = Rig::new();
    let out = rig.run(
        "line=/sys/devices/platform/gpio-sim.0/gpiochip0/sim_gpio3\n\
         gpiodetect\n\
         echo pull-up >$line/pull\n\
         gpioget gpiochip0 3\n\
         echo pull-down >$line/pull\n\
         gpioget gpiochip0 3\n",
    );
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["gpiochip0 [rig-gpio] (16 lines)", "1", "0"],
        "{}",
        out.stderr
    );
}

#[test]
fn the_guest_reaches_the_forwarded_loopback_port_and_nothing_else() {
    use std::io::Write;
    let serve = |listener: std::net::TcpListener| {
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let _ = conn.write_all(b"hello\n");
            }
        })
    };
    let forwarded = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (fwd_port, other_port) = (
        forwarded.local_addr().expect("addr").port(),
        other.local_addr().expect("addr").port(),
    );
    serve(forwarded);
    serve(other);
    let rig = Rig::new().forward(fwd_port);
    let out = rig.run(&format!(
        "exec 3<>/dev/tcp/10.0.2.100/{fwd_port}\n\
         head -n1 <&3\n\
         exec 3<&-\n\
         # The same host's other port, through QEMU's host alias and directly: refused or dropped.\n\
         for addr in 10.0.2.2/{other_port} 10.0.2.100/{other_port}; do\n\
             if timeout 5 bash -c \"exec 4<>/dev/tcp/$addr && head -n1 <&4\"; then echo reached; else echo blocked; fi\n\
         done\n"
    ));
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["hello", "blocked", "blocked"], "{}", out.stderr);
}

/// The `[[devices]]` of the host-agent in the guest. **The drivers' hook:** add here a device
/// with video from `/dev/video0`, audio from `hw:Loopback,1,0` and console from `/dev/ttyACM0`
/// (the `rig-usb unplug`/`plug` commands in the guest unplug and replug it), and expect it in
/// [`expected_devices`].
fn rig_devices() -> &'static str {
    r#"
[[devices]]
id = "stb-1"
name = "Simulated set-top box in the rig"
model = "sim-stb"
driver = "simulated"

[[devices]]
id = "rig-1"
name = "Real drivers on the rig's kernel devices"
model = "rig-box"
driver = "composite"

[devices.settings.video]
driver = "v4l2"
path = "/dev/v4l/by-path/platform-vivid.0-video-index0"
format = "RGB3"
width = 640
height = 480

[devices.settings.audio]
driver = "alsa"
pcm = "hw:Loopback,1,0"
rate = 48000
channels = 2

[devices.settings.console]
driver = "serial"
path = "/dev/serial/by-id/usb-Labwright_Labwright_rig_serial_RIG0001-if00"
baud = 115200
"#
}

/// Device keys of [`rig_devices`] that must come online.
fn expected_devices() -> &'static [&'static str] {
    &["stb-1", "rig-1"]
}

/// The guest's start script: the "box" side of the bench (a 1 kHz tone played into the ALSA
/// loopback, console lines written from the USB gadget's end), the test's hand on the USB cable
/// (`unplug.req` / `plug.req` created in the job directory unplug and replug the gadget), then
/// the real host-agent.
fn start_script(agent: &str) -> String {
    format!(
        // One long-lived player fed through a pipe: starting a player per second left gaps of
        // silence as long as a whole measurement window on a loaded TCG guest.
        "(while true; do (while cat tone.raw; do :; done) | aplay -q -D hw:Loopback,0,0 -t raw -f S16_LE -r {RATE} -c 2; sleep 1; done) &\n\
         (n=0; while true; do n=$((n+1)); echo \"boot line $n\"; echo \"hello 42\"; sleep 1; done > /dev/ttyGS0) &\n\
         (while [ ! -e unplug.req ]; do sleep 1; done; rig-usb unplug; touch unplugged; \
          while [ ! -e plug.req ]; do sleep 1; done; rig-usb plug; touch plugged) &\n\
         RUST_BACKTRACE=1 {agent} --config agent.toml\n\
         echo \"host-agent exited with status $?\" >&2\n"
    )
}

const RIG_CASE: &str = r#"name: Rig box through real drivers
device_model: rig-box
steps:
  - verify_not_black: {}
  - verify_audio: {expect: present, frequency_hz: 1000, tolerance_hz: 20, duration_ms: 500}
  - serial_expect: 'hello (?P<n>[0-9]+)'
  - screenshot: vivid
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_host_agent_in_the_rig_brings_its_devices_online() {
    let agent = tokio::task::spawn_blocking(|| cargo_bin("host-agent"))
        .await
        .expect("build host-agent");
    let db = fresh_database().await;
    let mut config = test_config(&db);
    // The guest is an emulated machine (TCG) on a busy host: the test suite's 200 ms heartbeats
    // would mark it offline while it encodes a frame; a real lab's timings are longer still.
    config.heartbeat_interval_ms = 1_000;
    config.missed_heartbeats = 5;
    let s = TestServer::start(config).await;
    let token = s.create_key("host", "rig host").await;
    let grpc_port = s.server.grpc_addr.port();
    // udev: the agent sees the stable links and hot-plug events of a real lab host.
    let rig = Rig::new().forward(grpc_port).udev();
    let config = format!(
        "server = \"http://{}\"\n\
         host_name = \"rig-01\"\n\
         enrollment_token = \"{token}\"\n\
         state_dir = \"{}/state\"\n\
         {}",
        Rig::host_addr(grpc_port),
        rig.job().display(),
        rig_devices()
    );
    std::fs::write(rig.job().join("agent.toml"), config).expect("agent config");
    let agent = agent.to_str().expect("utf-8 path").to_string();
    std::fs::write(rig.job().join("tone.raw"), to_bytes(&tone(10))).expect("tone");
    std::fs::write(rig.job().join("start.sh"), start_script(&agent)).expect("start script");
    let mut guest = rig.spawn(&["sh", "start.sh"]);

    let host = eventually(Duration::from_secs(180), "rig-01 online", || {
        if let Some(status) = guest.exited() {
            panic!("the guest ended (exit {status})\n{}", guest.logs());
        }
        let s = &s;
        async move {
            let (_, page) = s.get(&s.admin_key, "/api/v1/hosts?q=rig-01").await;
            page["items"]
                .as_array()?
                .iter()
                .find(|h| h["name"] == "rig-01" && h["status"] == "online")
                .cloned()
        }
    })
    .await;
    // It runs in the guest: the rig's hostname and Debian's kernel, not the host's.
    assert_eq!(host["info"]["hostname"], "rig", "{host}");
    let host_kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let guest_kernel = host["info"]["kernel"].as_str().expect("kernel");
    assert!(
        guest_kernel.ends_with("-amd64") && guest_kernel != host_kernel.trim(),
        "{guest_kernel}"
    );

    let id = host["id"].as_str().expect("host id").to_string();
    let devices: Vec<Value> = eventually(Duration::from_secs(60), "devices online", || {
        let (s, id) = (&s, &id);
        async move {
            let (_, h) = s.get(&s.admin_key, &format!("/api/v1/hosts/{id}")).await;
            let devices = h["devices"].as_array()?.clone();
            let online = |key: &&str| {
                devices
                    .iter()
                    .any(|d| d["device_key"] == *key && d["status"] == "online")
            };
            expected_devices().iter().all(online).then_some(devices)
        }
    })
    .await;
    assert_eq!(devices.len(), expected_devices().len(), "{devices:?}");
    let rig_box = devices
        .iter()
        .find(|d| d["device_key"] == "rig-1")
        .expect("rig-1");
    let device = rig_box["id"].as_str().expect("device id").to_string();
    for capability in ["video_capture", "audio_capture", "console"] {
        assert!(
            rig_box["capabilities"]
                .as_array()
                .is_some_and(|c| c.iter().any(|v| v == capability)),
            "{capability}: {rig_box}"
        );
    }

    // The live picture is vivid's, through the V4L2 driver.
    let (status, content_type, jpeg) = labwright_testkit::http::get_bytes(
        s.url(&format!("/api/v1/devices/{device}/screenshot")),
        s.admin_key.clone(),
    )
    .await;
    if status != 200 {
        // Let the guest's last words reach its log files.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    assert_eq!(
        (status, content_type.as_str()),
        (200, "image/jpeg"),
        "{}\n{}",
        String::from_utf8_lossy(&jpeg),
        guest.logs()
    );
    assert!(jpeg.starts_with(&[0xff, 0xd8]) && jpeg.len() > 1000);

    // A test case through all three drivers: picture, the tone played into the loopback, and a
    // console line written from the gadget's end, its number kept as a measurement.
    let (status, body) = labwright_testkit::http::send_bytes(
        "POST",
        s.url("/api/v1/testcases"),
        s.admin_key.clone(),
        "application/yaml",
        RIG_CASE.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, created) = labwright_testkit::http::http(
        "POST",
        s.url("/api/v1/executions"),
        Some(s.admin_key.clone()),
        Some(serde_json::json!({"testcase": "Rig box through real drivers", "device": device})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let execution = created["id"].as_str().expect("execution id").to_string();
    let done = eventually(Duration::from_secs(120), "the rig run ends", || {
        let (s, execution) = (&s, &execution);
        async move {
            let (_, e) = s
                .get(&s.admin_key, &format!("/api/v1/executions/{execution}"))
                .await;
            ["passed", "failed", "error", "cancelled", "interrupted"]
                .contains(&e["status"].as_str()?)
                .then_some(e)
        }
    })
    .await;
    assert_eq!(
        done["status"],
        "passed",
        "{}\n{}",
        serde_json::to_string_pretty(&done).unwrap_or_default(),
        guest.logs()
    );
    let expect = &done["steps"][2];
    assert_eq!(expect["kind"], "serial_expect", "{done}");
    assert_eq!(expect["measurements"]["n"], 42.0, "{expect}");

    // Health, checked by the agent at start and on hot-plug: every part of the rig box works;
    // unplugging the USB serial adapter degrades it naming the console, replugging restores it,
    // without restarting the agent.
    rig_health(&s, &device, &mut guest, "healthy", str::is_empty).await;
    std::fs::write(rig.job().join("unplug.req"), "").expect("unplug request");
    let d = rig_health(&s, &device, &mut guest, "degraded", |r| {
        r.starts_with("console: unavailable")
    })
    .await;
    assert!(
        !d["health_reason"].as_str().unwrap_or("").contains("video"),
        "only the console is gone: {d}"
    );
    // The agent may notice the unplug before `rig-usb unplug` has returned and the guest has
    // written its marker (on a slow TCG guest, `rig-usb` still waits for udev meanwhile).
    let marker = rig.job().join("unplugged");
    eventually(
        Duration::from_secs(60),
        "the guest's unplugged marker",
        || {
            let there = marker.exists();
            async move { there.then_some(()) }
        },
    )
    .await;
    std::fs::write(rig.job().join("plug.req"), "").expect("plug request");
    rig_health(&s, &device, &mut guest, "healthy", str::is_empty).await;
    drop(guest);
    s.server.shutdown().await;
}

/// The device view once its health is `want` with a reason `reason` accepts (the guest is an
/// emulated machine on a loaded host: generous bounds).
async fn rig_health(
    s: &TestServer,
    device: &str,
    guest: &mut labwright_testkit::rig::Guest,
    want: &str,
    reason: fn(&str) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = guest.exited() {
            panic!("the guest ended (exit {status})\n{}", guest.logs());
        }
        let (_, d) = s
            .get(&s.admin_key, &format!("/api/v1/devices/{device}"))
            .await;
        if d["health"] == want && reason(d["health_reason"].as_str().unwrap_or("?")) {
            return d;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("rig-1 not {want} within 120 s: {d}\n{}", guest.logs());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A format the capture device does not offer stops the agent at start, naming what it offers.
#[test]
fn a_format_the_device_does_not_offer_is_a_clear_start_error() {
    let agent = cargo_bin("host-agent");
    // udev: the config names the devices by their stable links.
    let rig = Rig::new().udev();
    let config = format!(
        "server = \"http://127.0.0.1:9\"\n\
         host_name = \"rig-02\"\n\
         enrollment_token = \"lw_unused\"\n\
         state_dir = \"{}/state\"\n\
         {}",
        rig.job().display(),
        rig_devices().replace("format = \"RGB3\"", "format = \"MJPG\"")
    );
    std::fs::write(rig.job().join("agent.toml"), config).expect("agent config");
    let out = rig.run(&format!(
        "if {} --config agent.toml --check; then echo STARTED; else echo REFUSED; fi\n",
        agent.display()
    ));
    out.assert_success();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("REFUSED") && !text.contains("STARTED"),
        "{text}"
    );
    assert!(text.contains("MJPG 640x480 is not offered"), "{text}");
    assert!(text.contains("RGB3"), "{text}");
}
