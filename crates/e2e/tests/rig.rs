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
        "readlink /dev/v4l/by-path/platform-vivid.0-video-index0\n\
         readlink /dev/snd/by-path/platform-snd_aloop.0\n\
         link=/dev/serial/by-id/usb-Labwright_Labwright_rig_serial_RIG0001-if00\n\
         readlink $link\n\
         rig-usb unplug && udevadm settle\n\
         if [ -e $link ]; then echo present; else echo absent; fi\n\
         rig-usb plug && udevadm settle\n\
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
"#
}

/// Device keys of [`rig_devices`] that must come online.
fn expected_devices() -> &'static [&'static str] {
    &["stb-1"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_host_agent_in_the_rig_brings_its_devices_online() {
    let agent = tokio::task::spawn_blocking(|| cargo_bin("host-agent"))
        .await
        .expect("build host-agent");
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
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
    let mut guest = rig.spawn(&[&agent, "--config", "agent.toml"]);

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
    drop(guest);
    s.server.shutdown().await;
}
