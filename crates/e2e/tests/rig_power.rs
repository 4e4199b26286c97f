//! The GPIO relay driver against a real kernel GPIO chip: gpio-sim in the rig's guest (label
//! `rig-gpio`, line 5 named `rig-relay`), switched by the real `host-agent power` subcommand
//! (`--hold` keeps the line requested, as the agent does), read back from gpio-sim's own view of
//! the line (`sim_gpio5/value`: the level the line is driven to) and cross-checked with
//! libgpiod's tools from Debian (`gpioinfo` sees our request, its consumer and active-low flag;
//! a line `gpioset` holds is refused to us with `power.line_busy` naming it).

use labwright_testkit::{binary::cargo_bin, rig::Rig};

const SCRIPT: &str = r#"
v=/sys/devices/platform/gpio-sim.0/gpiochip0/sim_gpio5/value
# Bounded waits (60 s) for what another process prints or does.
wait_for() {
    for _ in $(seq 600); do
        if eval "$1"; then return 0; fi
        sleep 0.1
    done
    echo "never happened: $1" >&2
    return 1
}
hold() {
    "$AGENT" power --settings "$1" "$2" --off-ms 200 --hold >hold.out 2>&1 &
    pid=$!
    wait_for 'grep -q "^power " hold.out || ! kill -0 $pid 2>/dev/null'
    cat hold.out
}
release() {
    kill -TERM "$pid"
    wait "$pid"
}
line_info() {
    gpioinfo gpiochip0 | grep '"rig-relay"' | tr -s ' \t' ' ' | sed 's/^ //'
}

hold relay.toml on
echo "on: $(cat $v)"
line_info
release
hold relay.toml off
echo "off: $(cat $v)"
release
hold relay.toml cycle
echo "cycled: $(cat $v)"
release
hold relay-low.toml on
echo "low on: $(cat $v)"
line_info
release
hold relay-low.toml off
echo "low off: $(cat $v)"
release

# Another program holds the line: ours is refused, naming it.
gpioset --mode=signal gpiochip0 5=1 &
g=$!
wait_for 'gpioinfo gpiochip0 | grep "rig-relay" | grep -q gpioset'
if "$AGENT" power --settings relay.toml state 2>busy.err; then
    echo "unexpected: the busy line was requested"
    exit 1
fi
echo "busy: $(cat busy.err)"
kill -TERM "$g"
wait "$g" || true

if "$AGENT" power --settings no-line.toml state 2>missing.err; then
    echo "unexpected: a missing line was requested"
    exit 1
fi
echo "missing: $(cat missing.err)"
"#;

#[test]
fn the_relay_driver_switches_and_holds_a_gpio_sim_line() {
    let agent = cargo_bin("host-agent");
    let rig = Rig::new();
    let write = |name: &str, text: &str| {
        std::fs::write(rig.job().join(name), text).expect("write settings");
    };
    // By chip label and line name; by chip path and offset, active low.
    write(
        "relay.toml",
        "driver = \"gpio\"\nchip = \"rig-gpio\"\nline = \"rig-relay\"\nat_start = \"off\"\nmin_off_ms = 100\n",
    );
    write(
        "relay-low.toml",
        "[power]\ndriver = \"gpio\"\nchip = \"/dev/gpiochip0\"\nline = 5\nactive_low = true\nat_start = \"off\"\n",
    );
    write(
        "no-line.toml",
        "driver = \"gpio\"\nchip = \"gpiochip0\"\nline = 99\n",
    );
    let out = rig.run(&format!("AGENT={}\n{SCRIPT}", agent.display()));
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let expected_prefixes = [
        "power on",
        "on: 1",
        "5: \"rig-relay\" \"labwright\" output active-high [used]",
        "power off",
        "off: 0",
        "power on",
        "cycled: 1",
        "power on",
        "low on: 0",
        "5: \"rig-relay\" \"labwright\" output active-low [used]",
        "power off",
        "low off: 1",
        "busy: error [power.line_busy]: gpiochip0 line \"rig-relay\": already in use by \"gpioset\"",
        "missing: error [power.not_found]: /dev/gpiochip0: no line 99 (the chip has 16 lines)",
    ];
    assert_eq!(
        lines.len(),
        expected_prefixes.len(),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    for (line, want) in lines.iter().zip(expected_prefixes) {
        assert!(
            line.starts_with(want) || line.ends_with(want),
            "{line:?} is not {want:?}\nstdout:\n{}\nstderr:\n{}",
            out.stdout,
            out.stderr
        );
    }
}
