//! The console driver against a fake port: lines with sequence numbers, the bounded history,
//! the partial line, `wait`, `send`, unplug and replug.

use std::{
    collections::VecDeque,
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use labwright_core::controller::{Console, ControlError};

use super::*;
use crate::eventually::eventually;

#[derive(Default)]
struct Wire {
    incoming: VecDeque<Vec<u8>>,
    sent: Vec<u8>,
    plugged: bool,
    opens: u32,
}

#[derive(Clone)]
struct FakePort(Arc<Mutex<Wire>>);

const PATH: &str = "/dev/ttyACM0";

impl FakePort {
    fn new() -> Self {
        FakePort(Arc::new(Mutex::new(Wire {
            plugged: true,
            ..Wire::default()
        })))
    }
    fn wire(&self) -> std::sync::MutexGuard<'_, Wire> {
        self.0.lock().expect("wire")
    }
    fn incoming(&self, bytes: &[u8]) {
        self.wire().incoming.push_back(bytes.to_vec());
    }
}

impl ConsolePort for FakePort {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, NodeProblem> {
        let next = {
            let mut w = self.wire();
            if !w.plugged {
                return Err(NodeProblem::Gone { path: PATH.into() });
            }
            w.incoming.pop_front()
        };
        match next {
            Some(b) => {
                buf[..b.len()].copy_from_slice(&b);
                Ok(b.len())
            }
            None => {
                std::thread::sleep(Duration::from_millis(2));
                Ok(0)
            }
        }
    }
    fn writer(&self) -> Result<Box<dyn Write + Send>, NodeProblem> {
        Ok(Box::new(self.clone()))
    }
}

impl Write for FakePort {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.wire().sent.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl PortOpener for FakePort {
    type Port = FakePort;
    fn path(&self) -> &str {
        PATH
    }
    fn open(&mut self) -> Result<FakePort, NodeProblem> {
        let mut w = self.wire();
        if !w.plugged {
            return Err(NodeProblem::Missing { path: PATH.into() });
        }
        w.opens += 1;
        Ok(self.clone())
    }
}

fn texts(r: &ConsoleRead) -> Vec<&str> {
    r.lines.iter().map(|l| l.text.as_str()).collect()
}

#[test]
fn output_becomes_numbered_timestamped_lines_and_a_partial_line() {
    let port = FakePort::new();
    let console = SerialConsole::start(port.clone(), 100).expect("started");
    port.incoming(b"U-Boot 2024.01\r\n");
    port.incoming(b"Starting kernel ...\r\n\r\nlogin: ");
    let r = eventually("prompt", || {
        let r = console.read_since(0).ok()?;
        (r.partial == "login: ").then_some(r)
    });
    assert_eq!(texts(&r), vec!["U-Boot 2024.01", "Starting kernel ...", ""]);
    assert_eq!(r.next, 3);
    assert_eq!(r.missed, 0);
    assert!(r.lines.windows(2).all(|w| w[0].at_us <= w[1].at_us));
    assert!(r.lines.iter().enumerate().all(|(i, l)| l.seq == i as u64));
    let later = console.read_since(2).expect("read");
    assert_eq!(texts(&later), vec![""]);
}

#[test]
fn history_is_bounded_and_reports_missed_lines() {
    let port = FakePort::new();
    let console = SerialConsole::start(port.clone(), 2).expect("started");
    port.incoming(b"1\n2\n3\n4\n");
    let r = eventually("4 lines", || {
        let r = console.read_since(0).ok()?;
        (r.next == 4).then_some(r)
    });
    assert_eq!(texts(&r), vec!["3", "4"]);
    assert_eq!(r.missed, 2);
}

#[test]
fn wait_returns_when_output_arrives_and_send_writes_to_the_port() {
    let port = FakePort::new();
    let console = SerialConsole::start(port.clone(), 10).expect("started");
    assert!(!console.wait(0, Duration::from_millis(20)).expect("waited"));
    console.send(b"root\n").expect("sent");
    assert_eq!(port.wire().sent, b"root\n");
    port.incoming(b"Passw");
    assert!(
        console
            .wait(0, Duration::from_secs(20))
            .expect("partial arrives")
    );
    port.incoming(b"ord:\n");
    assert!(
        console
            .wait(0, Duration::from_secs(20))
            .expect("line arrives")
    );
}

#[test]
fn unplugging_makes_the_console_unavailable_and_replugging_resumes_it() {
    let port = FakePort::new();
    let console = SerialConsole::start(port.clone(), 10).expect("started");
    port.wire().plugged = false;
    let why = eventually("unavailable", || console.unavailable());
    assert!(why.starts_with(PATH), "{why}");
    assert!(matches!(
        console.send(b"x"),
        Err(ControlError::Unavailable(_))
    ));
    assert!(matches!(
        console.wait(0, Duration::from_secs(1)),
        Err(ControlError::Unavailable(_))
    ));
    port.wire().plugged = true;
    eventually("reopened", || (console.reopened() == 1).then_some(()));
    port.incoming(b"back\n");
    eventually("line after replug", || {
        (texts(&console.read_since(0).ok()?) == vec!["back"]).then_some(())
    });
    console.send(b"ok").expect("sent after replug");
    assert_eq!(port.wire().opens, 2);
}

#[test]
fn missing_port_is_a_start_error_and_settings_are_checked() {
    let port = FakePort::new();
    port.wire().plugged = false;
    let e = SerialConsole::start(port, 10).err().expect("missing");
    assert!(
        e.to_string().starts_with("/dev/ttyACM0: no such device"),
        "{e}"
    );
    let s: SerialSettings =
        toml::from_str("path = \"\"\nbaud = 10\ndata_bits = 9\nstop_bits = 3").expect("parsed");
    assert_eq!(s.check().len(), 4, "{:?}", s.check());
    let ok: SerialSettings =
        toml::from_str("path = \"/dev/ttyUSB0\"\nparity = \"even\"\nflow_control = \"hardware\"")
            .expect("parsed");
    assert!(ok.check().is_empty());
    assert_eq!((ok.baud, ok.data_bits, ok.stop_bits), (115_200, 8, 1));
    assert_eq!(ok.parity, Parity::Even);
    assert!(toml::from_str::<SerialSettings>("path = \"x\"\nspeed = 9600").is_err());
}
