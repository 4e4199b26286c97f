//! The serial console: a thread reads the port continuously into timestamped lines (a bounded
//! history plus the line still being written); `send` writes to the device. A port that goes away
//! (USB adapter unplugged) makes the console `Unavailable` until it can be opened again.
//!
//! [`SerialConsole`] is generic over [`PortOpener`] (`port::SystemPort` for a tty path on a
//! host, fakes in tests; a pty pair in the integration test).

pub mod framing;
#[cfg(feature = "serial")]
pub mod port;

use std::{collections::VecDeque, io::Write, time::Duration};

use labwright_core::controller::{Console, ConsoleLine, ConsoleRead, ControlError};
use serde::{Deserialize, Serialize};

pub use self::framing::{FramedLine, LineFramer};
use crate::{
    NodeProblem,
    timestamp::epoch_now_us,
    worker::{Shared, Worker, reopen_backoff},
};

/// Parity of a serial line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    #[default]
    None,
    Odd,
    Even,
}

/// Flow control of a serial line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowControl {
    #[default]
    None,
    /// XON/XOFF.
    Software,
    /// RTS/CTS.
    Hardware,
}

/// A console's settings (`[devices.settings.console]` with `driver = "serial"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialSettings {
    /// The tty: a stable path (`/dev/serial/by-id/usb-...`) or `/dev/ttyUSB0`, `/dev/ttyACM0`.
    pub path: String,
    #[serde(default = "default_baud")]
    pub baud: u32,
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    #[serde(default)]
    pub parity: Parity,
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    #[serde(default)]
    pub flow_control: FlowControl,
    /// Complete lines kept for reads (older ones are dropped).
    #[serde(default = "default_history_lines")]
    pub history_lines: usize,
}

fn default_baud() -> u32 {
    115_200
}
fn default_data_bits() -> u8 {
    8
}
fn default_stop_bits() -> u8 {
    1
}
fn default_history_lines() -> usize {
    10_000
}

impl SerialSettings {
    /// Checks the settings on their own; every problem, each starting with its key.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.path.trim().is_empty() {
            problems.push("path: must name a serial port, e.g. /dev/ttyUSB0".to_string());
        }
        if !(50..=4_000_000).contains(&self.baud) {
            problems.push("baud: must be between 50 and 4000000".into());
        }
        if !(5..=8).contains(&self.data_bits) {
            problems.push("data_bits: must be 5, 6, 7 or 8".into());
        }
        if !(1..=2).contains(&self.stop_bits) {
            problems.push("stop_bits: must be 1 or 2".into());
        }
        if !(1..=1_000_000).contains(&self.history_lines) {
            problems.push("history_lines: must be between 1 and 1000000".into());
        }
        problems
    }
}

/// An open port: reads with a short timeout, and a writer usable from other threads.
pub trait ConsolePort: Send + 'static {
    /// Reads what arrived, waiting at most about 100 ms; `Ok(0)` when nothing did.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, NodeProblem>;
    /// A handle that writes to the same port.
    fn writer(&self) -> Result<Box<dyn Write + Send>, NodeProblem>;
}

/// Opens the console's port (again, after an unplug).
pub trait PortOpener: Send + 'static {
    type Port: ConsolePort;
    fn path(&self) -> &str;
    fn open(&mut self) -> Result<Self::Port, NodeProblem>;
}

/// Longest line kept whole; longer ones are cut.
const MAX_LINE: usize = 8 * 1024;

struct State {
    lines: VecDeque<ConsoleLine>,
    history: usize,
    next_seq: u64,
    partial: String,
    /// Bytes received ever: `wait` notices a longer partial line through it.
    received: u64,
    writer: Option<Box<dyn Write + Send>>,
    unavailable: Option<String>,
    reopened: u64,
}

/// A running console capture, implementing core's [`Console`].
pub struct SerialConsole {
    path: String,
    worker: Worker<State>,
}

impl SerialConsole {
    /// Opens the port and starts capturing, keeping `history_lines` complete lines.
    pub fn start<O: PortOpener>(mut opener: O, history_lines: usize) -> Result<Self, NodeProblem> {
        let path = opener.path().to_string();
        let port = opener.open()?;
        let state = State {
            lines: VecDeque::new(),
            history: history_lines.max(1),
            next_seq: 0,
            partial: String::new(),
            received: 0,
            writer: Some(port.writer()?),
            unavailable: None,
            reopened: 0,
        };
        let worker = Worker::spawn(format!("serial {path}"), &path, state, move |shared| {
            read_loop(opener, port, &shared)
        })?;
        Ok(Self { path, worker })
    }

    /// Times the port was reopened after going away.
    pub fn reopened(&self) -> u64 {
        self.worker.shared().lock().reopened
    }

    /// Why the console is unavailable right now, if it is.
    pub fn unavailable(&self) -> Option<String> {
        self.worker.shared().lock().unavailable.clone()
    }
}

impl State {
    fn append(&mut self, framed: &mut Vec<FramedLine>, partial: String, bytes: usize) {
        self.received += bytes as u64;
        for line in framed.drain(..) {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.lines.push_back(ConsoleLine {
                seq,
                at_us: line.at_us,
                text: line.text,
            });
            if self.lines.len() > self.history {
                self.lines.pop_front();
            }
        }
        self.partial = partial;
    }
}

fn read_loop<O: PortOpener>(mut opener: O, port: O::Port, shared: &Shared<State>) {
    let path = opener.path().to_string();
    let mut port = Some(port);
    let mut framer = LineFramer::new(MAX_LINE);
    let mut buf = vec![0u8; 4096];
    let mut framed = Vec::new();
    let mut backoff = reopen_backoff();
    while !shared.stopping() {
        let Some(p) = port.as_mut() else {
            match opener.open().and_then(|p| p.writer().map(|w| (p, w))) {
                Ok((p, w)) => {
                    port = Some(p);
                    backoff.reset();
                    shared.update(|st| {
                        st.writer = Some(w);
                        st.unavailable = None;
                        st.reopened += 1;
                    });
                    tracing::info!(path = %path, "console back");
                }
                Err(e) => {
                    shared.update(|st| st.unavailable = Some(e.to_string()));
                    shared.pause(backoff.next_delay());
                }
            }
            continue;
        };
        match p.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => {
                framer.feed(&buf[..n], epoch_now_us(), &mut framed);
                let partial = framer.partial();
                shared.update(|st| st.append(&mut framed, partial, n));
            }
            Err(e) => {
                tracing::warn!(path = %path, problem = %e, "console lost");
                port = None;
                shared.update(|st| {
                    st.writer = None;
                    st.unavailable = Some(e.to_string());
                });
            }
        }
    }
}

impl Console for SerialConsole {
    fn send(&self, data: &[u8]) -> Result<(), ControlError> {
        let mut st = self.worker.shared().lock();
        if let Some(why) = &st.unavailable {
            return Err(ControlError::Unavailable(why.clone()));
        }
        let Some(w) = st.writer.as_mut() else {
            return Err(ControlError::Unavailable(format!(
                "{}: not open",
                self.path
            )));
        };
        w.write_all(data)
            .and_then(|()| w.flush())
            .map_err(|e| ControlError::Driver(format!("{}: {e}", self.path)))
    }

    fn read_since(&self, from: u64) -> Result<ConsoleRead, ControlError> {
        let st = self.worker.shared().lock();
        let first = st.lines.front().map_or(st.next_seq, |l| l.seq);
        Ok(ConsoleRead {
            lines: st.lines.iter().filter(|l| l.seq >= from).cloned().collect(),
            partial: st.partial.clone(),
            next: st.next_seq,
            missed: first.saturating_sub(from),
        })
    }

    fn wait(&self, from: u64, timeout: Duration) -> Result<bool, ControlError> {
        let shared = self.worker.shared();
        let received = shared.lock().received;
        let got = shared.wait_for(timeout, |st| {
            if st.next_seq > from || st.received > received {
                return Some(Ok(true));
            }
            st.unavailable
                .as_ref()
                .map(|why| Err(ControlError::Unavailable(why.clone())))
        });
        got.unwrap_or(Ok(false))
    }
}

#[cfg(test)]
mod tests;
