//! The serial console over a real pseudo-terminal pair: the console opens the pty's slave by
//! path, as it opens `/dev/ttyACM0` on a host, and the test plays the device on the master.
#![cfg(feature = "serial")]

use std::{
    io::{Read, Write},
    time::{Duration, Instant},
};

use labwright_core::controller::{Console, ControlError};
use labwright_drivers::serial::{SerialConsole, SerialSettings, port::SystemPort};
use serialport::{SerialPort, TTYPort};

fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn settings(path: &str) -> SerialSettings {
    toml::from_str(&format!("path = {path:?}\nbaud = 115200")).expect("settings")
}

#[test]
fn console_captures_lines_sends_input_and_notices_the_hang_up() {
    let (mut device, slave) = TTYPort::pair().expect("pty pair");
    let path = slave.name().expect("slave path");
    drop(slave);
    let console = SerialConsole::start(SystemPort::new(settings(&path)), 1000).expect("opened");

    device
        .write_all(b"U-Boot 2024.01\r\nStarting kernel\r\n\xffbad\nlogin: ")
        .expect("device writes");
    let r = eventually("prompt", || {
        let r = console.read_since(0).ok()?;
        (r.partial == "login: ").then_some(r)
    });
    let lines: Vec<&str> = r.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        lines,
        vec!["U-Boot 2024.01", "Starting kernel", "\u{FFFD}bad"]
    );

    console.send(b"root\n").expect("sent");
    device
        .set_timeout(Duration::from_secs(20))
        .expect("timeout");
    let mut got = [0u8; 5];
    device.read_exact(&mut got).expect("device reads");
    assert_eq!(&got, b"root\n");

    // Closing the master is the adapter going away: the console notices and says so.
    drop(device);
    let why = eventually("hang-up noticed", || console.unavailable());
    assert!(why.starts_with(&path), "{why}");
    assert!(matches!(
        console.send(b"x"),
        Err(ControlError::Unavailable(_))
    ));
}

#[test]
fn a_missing_port_is_a_clear_start_error() {
    let e = SerialConsole::start(SystemPort::new(settings("/dev/ttyLabwrightNone")), 10)
        .err()
        .expect("no such port");
    assert_eq!(
        e.to_string(),
        "/dev/ttyLabwrightNone: no such device (not plugged in, or the driver is not loaded)"
    );
}
