//! IR in the rig (`scripts/rig`): the kernel's `rc-loopback` device (`/dev/lirc0`) loops what is
//! sent back to its receive side, so the real `host-agent ir` tools and the kernel meet there:
//! our encoders' pulses come back and our decoders name the same protocol and scancode, for
//! every protocol, with repeats and toggle bits; the kernel's own decoders agree (read with
//! Debian's `ir-keytable -t`); a composite device's remote presses keys from its key map; and
//! Debian's `ir-ctl` is checked in both directions (it sends, we decode; we send, it receives
//! exactly the timings our encoder gives).

use std::process::Command;

use labwright_testkit::{binary::cargo_bin, rig::Rig};

/// One code per protocol, each canonical for it (the kernel tells NEC, NECX and NEC32 apart by
/// their check bytes).
const CODES: &[&str] = &[
    "nec:0x408",
    "necx:0x123456",
    "nec32:0x12345678",
    "rc5:0x1e01",
    "rc5:0x547",
    "rc6_0:0x800c",
    "sony12:0x10015",
    "sony15:0x970015",
    "sony20:0x1a0b15",
    "samsung32:0x702",
];

/// The protocols the kernel and `ir-ctl` know (all but Samsung32).
fn kernel_codes() -> Vec<&'static str> {
    CODES
        .iter()
        .copied()
        .filter(|c| !c.starts_with("samsung"))
        .collect()
}

/// A shell loop that waits (at most `secs` seconds of wall time) until `cond` holds, failing the
/// job otherwise.
fn wait_for(cond: &str, secs: u32) -> String {
    format!(
        "end=$(($(date +%s) + {secs})); until {cond}; do if [ $(date +%s) -gt $end ]; then echo 'gave up waiting for: {}' >&2; exit 1; fi; sleep 0.1; done\n",
        cond.replace('\'', "")
    )
}

/// Starts our receiver in the background and waits until it listens.
fn start_receiver(agent: &str, count: usize) -> String {
    format!(
        "{agent} ir receive --count {count} --timeout 120 > ours.txt 2> ours.err &\nrx=$!\n{}",
        wait_for("grep -q listening ours.err", 60)
    )
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

/// Protocols whose toggle bit a fresh sender sets on its first press.
fn with_toggle(code: &str) -> String {
    if code.starts_with("rc5") || code.starts_with("rc6") {
        format!("{code} toggle")
    } else {
        code.to_string()
    }
}

#[test]
fn our_pulses_come_back_decoded_for_every_protocol_and_the_kernel_agrees() {
    let agent = cargo_bin("host-agent");
    let agent = agent.display().to_string();
    let rig = Rig::new();
    let config = format!(
        "server = \"http://127.0.0.1:9\"\nhost_name = \"rig-ir\"\nenrollment_token = \"lw_unused\"\n\
         state_dir = \"{}/state\"\n\
         [[devices]]\nid = \"ir-1\"\nname = \"IR only\"\nmodel = \"rig-box\"\ndriver = \"composite\"\n\
         [devices.settings.remote]\ndriver = \"lirc\"\npath = \"/dev/lirc0\"\nduty_cycle = 50\n\
         [devices.settings.remote.keys]\nok = \"nec:0x408\"\nup = {{ protocol = \"rc6_0\", scancode = 0x800c }}\n",
        rig.job().display()
    );
    std::fs::write(rig.job().join("agent.toml"), config).expect("agent config");
    let kernel = kernel_codes();
    // Our frames: every code, a held NEC key (two repeat codes), a held RC-5 key (one repeat
    // frame with the same toggle), then the composite device's key presses.
    let expected_ours = CODES.len() + 3 + 2 + 2;
    let mut script = String::from(
        "ir-keytable -s rc0 -p nec,rc-5,rc-6,sony >/dev/null\n\
         stdbuf -oL ir-keytable -s rc0 -t > kernel.txt 2>&1 &\nkt=$!\n",
    );
    script += &wait_for("ls -l /proc/$kt/fd | grep -q lirc0", 60);
    script += &start_receiver(&agent, expected_ours);
    for code in CODES {
        script += &format!("{agent} ir send {code}\n");
    }
    script += &format!("{agent} ir send --repeat 2 nec:0x408\n");
    script += &format!("{agent} ir send --repeat 1 rc5:0x1e01\n");
    script += &format!("{agent} --config agent.toml ir press --device ir-1 ok up\n");
    script += &format!(
        "if {agent} --config agent.toml ir press --device ir-1 menu 2> unknown.err; then echo 'menu pressed' >&2; exit 1; fi\n"
    );
    script += "wait $rx\n";
    // The kernel decodes asynchronously: wait for its last code (the composite's `up`).
    script += &wait_for("[ $(grep -c 'lirc protocol(rc6_0)' kernel.txt) -ge 2 ]", 60);
    script += "kill $kt\n";
    let out = rig.run(&script);
    out.assert_success();
    let read = |f: &str| std::fs::read_to_string(rig.job().join(f)).unwrap_or_default();

    let mut want: Vec<String> = CODES.iter().map(|c| with_toggle(c)).collect();
    want.extend(lines("nec:0x408\nrepeat nec:0x408\nrepeat nec:0x408"));
    want.extend(lines("rc5:0x1e01 toggle\nrc5:0x1e01 toggle repeat"));
    // The remote's toggle flips at every new press, whatever the key: `ok` set it, `up` clears it.
    want.extend(lines("nec:0x408\nrc6_0:0x800c"));
    assert_eq!(lines(&read("ours.txt")), want, "{}", read("ours.err"));

    let kernel_seen = read("kernel.txt");
    for code in kernel {
        let (proto, sc) = code.split_once(':').unwrap_or_default();
        let line = format!("lirc protocol({proto}): scancode = {sc}");
        assert!(
            kernel_seen.contains(&line),
            "the kernel did not decode {code}:\n{kernel_seen}"
        );
    }
    // The kernel has no Samsung32 decoder: its NEC decoder takes the 4.5 ms header for NECX.
    assert!(
        kernel_seen.contains("lirc protocol(necx): scancode = 0x70702"),
        "{kernel_seen}"
    );
    let unknown = read("unknown.err");
    assert!(
        unknown.contains("\"menu\" is not in the key map (known: ok, up)"),
        "{unknown}"
    );
}

#[test]
fn ir_ctl_sends_and_we_decode() {
    let agent = cargo_bin("host-agent");
    let agent = agent.display().to_string();
    let rig = Rig::new();
    let codes = kernel_codes();
    let mut script = start_receiver(&agent, codes.len());
    for code in &codes {
        script += &format!("ir-ctl -d /dev/lirc0 --scancode={code}\n");
    }
    script += "wait $rx\n";
    let out = rig.run(&script);
    out.assert_success();
    let ours = std::fs::read_to_string(rig.job().join("ours.txt")).unwrap_or_default();
    // ir-ctl sends RC-5 and RC-6 with the toggle bit clear.
    let want: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    assert_eq!(lines(&ours), want);
}

/// `ir-ctl --mode2` lines (`pulse 9000`, `space 4500`) as `+9000 -4500`.
fn mode2_as_text(mode2: &str) -> String {
    mode2
        .lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            ["pulse", d] => Some(format!("+{d}")),
            ["space", d] => Some(format!("-{d}")),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn we_send_and_ir_ctl_receives_exactly_our_timings() {
    let agent = cargo_bin("host-agent");
    let agent_s = agent.display().to_string();
    let rig = Rig::new();
    let mut script = String::new();
    for (i, code) in CODES.iter().enumerate() {
        script +=
            &format!("ir-ctl -d /dev/lirc0 --receive --one-shot --mode2 > rx{i}.txt &\nr=$!\n");
        script += &wait_for("ls -l /proc/$r/fd | grep -q lirc0", 60);
        script += &format!("{agent_s} ir send {code}\nwait $r\n");
    }
    let out = rig.run(&script);
    out.assert_success();
    for (i, code) in CODES.iter().enumerate() {
        // A fresh sender's first press: RC-5/RC-6 toggle set.
        let encoded = Command::new(&agent)
            .args(["ir", "encode", "--toggle", code])
            .output()
            .expect("host-agent ir encode");
        assert!(encoded.status.success(), "{code}: {encoded:?}");
        let want = String::from_utf8_lossy(&encoded.stdout).trim().to_string();
        let got = std::fs::read_to_string(rig.job().join(format!("rx{i}.txt"))).unwrap_or_default();
        assert_eq!(mode2_as_text(&got), want, "{code}: ir-ctl received\n{got}");
    }
}
