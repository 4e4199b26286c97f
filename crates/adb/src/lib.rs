//! ADB — the Android Debug Bridge protocol — in Rust, generic over its transport.
//!
//! - [`packet`]: the 24-byte header and payload, validated before any allocation.
//! - [`auth`]: the host's RSA key in adb's formats, token signatures, fingerprints.
//! - [`transport`]: [`AdbTransport`] (TCP; USB is not implemented yet: `adb_unsupported`).
//! - [`host`]: [`AdbClient`], the host side (shell v2, exec, sync push/pull, persistent shell).
//! - [`daemon`]: [`AdbDaemon`], the device side for the simulated phone (trusted keys, a
//!   pluggable [`ShellHandler`], sync in a sandbox directory).
//!
//! Both sides share the stream multiplexer (OPEN/OKAY/WRTE/CLSE with adb's flow control) and
//! the in-stream framings (`shell,v2`, sync) in [`protocol`].

pub mod auth;
pub mod daemon;
pub mod error;
pub mod host;
mod mux;
pub mod packet;
pub mod protocol;
pub mod transport;

pub use auth::AdbKey;
pub use daemon::{
    AdbDaemon, BuiltinShell, DaemonConfig, ProcessShell, ShellHandler, ShellIo, TrustedKeys,
};
pub use error::{AdbError, Result};
pub use host::{AdbClient, ConnectOptions, DeviceInfo, PersistentShell, ShellOutput};
pub use mux::{AdbStream, StreamReader, StreamWriter};
pub use protocol::{DirEntry, FileStat};
pub use transport::{AdbTransport, UsbTransport};
