//! What ADB runs over: anything that splits into a byte reader and a byte writer. TCP (`adb
//! tcpip`, wireless debugging, the simulated phone) is implemented; in-memory pipes serve the
//! tests; USB is not implemented yet and says so.

use crate::error::{AdbError, Result};
use tokio::io::{AsyncRead, AsyncWrite};

/// The read half of a transport.
pub type TransportReader = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a transport.
pub type TransportWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// A byte pipe to one ADB peer.
pub trait AdbTransport: Send + 'static {
    /// What this is connected to, for logs and errors.
    fn describe(&self) -> String;
    /// The two halves, used by the reader task and the writers.
    fn split(self: Box<Self>) -> (TransportReader, TransportWriter);
}

impl AdbTransport for tokio::net::TcpStream {
    fn describe(&self) -> String {
        match self.peer_addr() {
            Ok(a) => format!("tcp:{a}"),
            Err(_) => "tcp".into(),
        }
    }

    fn split(self: Box<Self>) -> (TransportReader, TransportWriter) {
        let _ = self.set_nodelay(true);
        let (r, w) = self.into_split();
        (Box::new(r), Box::new(w))
    }
}

impl AdbTransport for tokio::io::DuplexStream {
    fn describe(&self) -> String {
        "in-memory".into()
    }

    fn split(self: Box<Self>) -> (TransportReader, TransportWriter) {
        let (r, w) = tokio::io::split(*self);
        (Box::new(r), Box::new(w))
    }
}

/// Opens a TCP transport to `addr` (`host:port`) within `timeout`.
pub async fn connect_tcp(
    addr: &str,
    timeout: std::time::Duration,
) -> Result<tokio::net::TcpStream> {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(AdbError::Unavailable(format!("connect {addr}: {e}"))),
        Err(_) => Err(AdbError::Timeout(timeout)),
    }
}

/// ADB over USB (interfaces of class ff/42/01, bulk endpoints). Not implemented yet: opening
/// one fails with `adb_unsupported`, so a USB device configured today gets a clear error.
#[derive(Debug)]
pub struct UsbTransport {
    _private: (),
}

impl UsbTransport {
    /// Always `adb_unsupported` for now.
    pub fn open(serial: &str) -> Result<UsbTransport> {
        let _ = serial;
        Err(AdbError::Unsupported(
            "adb over usb is not implemented yet; use tcp (adb tcpip)",
        ))
    }
}
