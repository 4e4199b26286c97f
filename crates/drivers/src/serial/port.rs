//! The real serial port: a tty opened through `serialport` with the settings' framing,
//! exclusive (no second program interleaving on the console), reads with a 100 ms timeout.

use std::{io, io::Read, path::Path, time::Duration};

use serialport::{ClearBuffer, DataBits, SerialPort, StopBits, TTYPort};

use super::{ConsolePort, FlowControl, Parity, PortOpener, SerialSettings};
use crate::{NodeProblem, device_node::owning_group};

const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// Opens a tty by path with the configured framing.
pub struct SystemPort {
    settings: SerialSettings,
}

impl SystemPort {
    pub fn new(settings: SerialSettings) -> Self {
        Self { settings }
    }
}

/// An open tty.
pub struct OpenPort {
    path: String,
    tty: TTYPort,
}

fn open_problem(path: &str, e: &serialport::Error) -> NodeProblem {
    use serialport::ErrorKind as K;
    match e.kind() {
        K::Io(io::ErrorKind::NotFound) => NodeProblem::Missing { path: path.into() },
        K::Io(io::ErrorKind::PermissionDenied) => NodeProblem::PermissionDenied {
            path: path.into(),
            group: owning_group(Path::new(path)),
        },
        K::NoDevice if Path::new(path).exists() => NodeProblem::Busy { path: path.into() },
        K::NoDevice => NodeProblem::Missing { path: path.into() },
        _ => NodeProblem::Other {
            path: path.into(),
            message: e.to_string(),
        },
    }
}

impl PortOpener for SystemPort {
    type Port = OpenPort;

    fn path(&self) -> &str {
        &self.settings.path
    }

    fn open(&mut self) -> Result<OpenPort, NodeProblem> {
        let s = &self.settings;
        let data_bits = match s.data_bits {
            5 => DataBits::Five,
            6 => DataBits::Six,
            7 => DataBits::Seven,
            _ => DataBits::Eight,
        };
        let parity = match s.parity {
            Parity::None => serialport::Parity::None,
            Parity::Odd => serialport::Parity::Odd,
            Parity::Even => serialport::Parity::Even,
        };
        let stop_bits = if s.stop_bits == 2 {
            StopBits::Two
        } else {
            StopBits::One
        };
        let flow = match s.flow_control {
            FlowControl::None => serialport::FlowControl::None,
            FlowControl::Software => serialport::FlowControl::Software,
            FlowControl::Hardware => serialport::FlowControl::Hardware,
        };
        let builder = serialport::new(&s.path, s.baud)
            .data_bits(data_bits)
            .parity(parity)
            .stop_bits(stop_bits)
            .flow_control(flow)
            .timeout(READ_TIMEOUT);
        let tty = TTYPort::open(&builder).map_err(|e| open_problem(&s.path, &e))?;
        // Whatever sat in the kernel's buffer before we opened is not this session's output.
        let _ = tty.clear(ClearBuffer::Input);
        Ok(OpenPort {
            path: s.path.clone(),
            tty,
        })
    }
}

impl ConsolePort for OpenPort {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, NodeProblem> {
        match self.tty.read(buf) {
            // A tty that reads end-of-file after poll said readable was hung up.
            Ok(0) => Err(NodeProblem::Gone {
                path: self.path.clone(),
            }),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            // Hang-up (POLLHUP) or EIO: the adapter or the other end went away.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe || e.kind() == io::ErrorKind::Other => {
                Err(NodeProblem::Gone {
                    path: self.path.clone(),
                })
            }
            Err(e) => Err(NodeProblem::from_io(&self.path, &e)),
        }
    }

    fn writer(&self) -> Result<Box<dyn io::Write + Send>, NodeProblem> {
        let w = self
            .tty
            .try_clone_native()
            .map_err(|e| NodeProblem::Other {
                path: self.path.clone(),
                message: format!("cannot open a writer: {e}"),
            })?;
        Ok(Box::new(w))
    }
}
