//! The one error type of the ADB crate, each variant with a stable code.

/// An ADB failure: a bad packet, a refused key, a peer that went away, a call that took too long.
#[derive(Debug, thiserror::Error)]
pub enum AdbError {
    /// The header's magic is not the command's complement.
    #[error("bad packet magic {magic:#010x} for command {command:#010x}")]
    BadMagic { command: u32, magic: u32 },
    /// The header names a command ADB does not have.
    #[error("unknown packet command {0:#010x}")]
    UnknownCommand(u32),
    /// The header announces a payload larger than this side accepts.
    #[error("packet payload of {len} bytes is over the limit of {max}")]
    OversizePayload { len: u32, max: u32 },
    /// The payload's byte sum differs from the header's checksum.
    #[error("packet checksum {actual:#010x} does not match the header's {expected:#010x}")]
    ChecksumMismatch { expected: u32, actual: u32 },
    /// The bytes ended inside a header or payload.
    #[error("packet truncated: {0}")]
    Truncated(&'static str),
    /// The peer broke the protocol (an unexpected packet, a bad shell or sync frame).
    #[error("adb protocol error: {0}")]
    Protocol(String),
    /// The device has not accepted this host's key.
    #[error("device unauthorized: accept the key with fingerprint {fingerprint} on the device")]
    Unauthorized { fingerprint: String },
    /// The connection is gone (the peer closed it, a cable was pulled).
    #[error("device unavailable: {0}")]
    Unavailable(String),
    /// The call took longer than its timeout; the stream was closed, the connection stays.
    #[error("adb call timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// This connection already has its maximum number of open streams.
    #[error("too many open streams on this connection (limit {0})")]
    TooManyStreams(usize),
    /// The device refused to open the service.
    #[error("device refused service {0:?}")]
    StreamRefused(String),
    /// A sync (push/pull/stat/list) request failed on the device.
    #[error("sync failed: {0}")]
    SyncFailed(String),
    /// The host key could not be created, read or used.
    #[error("adb key: {0}")]
    Key(String),
    /// A local file or socket error.
    #[error("adb i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A transport this build cannot use yet.
    #[error("adb transport unsupported: {0}")]
    Unsupported(&'static str),
}

impl AdbError {
    /// A stable machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            AdbError::BadMagic { .. } => "adb_bad_magic",
            AdbError::UnknownCommand(_) => "adb_unknown_command",
            AdbError::OversizePayload { .. } => "adb_oversize_payload",
            AdbError::ChecksumMismatch { .. } => "adb_checksum_mismatch",
            AdbError::Truncated(_) => "adb_truncated",
            AdbError::Protocol(_) => "adb_protocol",
            AdbError::Unauthorized { .. } => "adb_unauthorized",
            AdbError::Unavailable(_) => "adb_unavailable",
            AdbError::Timeout(_) => "adb_timeout",
            AdbError::TooManyStreams(_) => "adb_too_many_streams",
            AdbError::StreamRefused(_) => "adb_stream_refused",
            AdbError::SyncFailed(_) => "adb_sync_failed",
            AdbError::Key(_) => "adb_key",
            AdbError::Io(_) => "adb_io",
            AdbError::Unsupported(_) => "adb_unsupported",
        }
    }
}

/// Results of this crate.
pub type Result<T, E = AdbError> = std::result::Result<T, E>;
