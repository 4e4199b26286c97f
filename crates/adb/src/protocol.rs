//! Framing inside streams: `shell,v2` packets (id, length, data) and the sync service's
//! requests and responses (four-letter id, little-endian length or fields).

use crate::error::{AdbError, Result};
use crate::mux::StreamReader;

/// `shell,v2` packet ids.
pub mod shell_id {
    pub const STDIN: u8 = 0;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    pub const EXIT: u8 = 3;
    pub const CLOSE_STDIN: u8 = 4;
    pub const WINDOW_SIZE: u8 = 5;
}

/// The largest `shell,v2` packet we accept.
pub const SHELL_MAX_PACKET: usize = 1 << 20;
/// The largest sync DATA chunk (adb's SYNC_DATA_MAX).
pub const SYNC_DATA_MAX: usize = 64 * 1024;
/// The longest path a sync request may name.
pub const SYNC_MAX_PATH: usize = 1024;

/// One `shell,v2` packet.
pub fn shell_packet(id: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + data.len());
    v.push(id);
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// Reads one `shell,v2` packet; None when the stream ends between packets (inside one it is
/// a protocol error).
pub async fn read_shell_packet(r: &mut StreamReader) -> Result<Option<(u8, Vec<u8>)>> {
    if r.at_end().await? {
        return Ok(None);
    }
    let head = r.read_exact(5).await?;
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > SHELL_MAX_PACKET {
        return Err(AdbError::Protocol(format!("shell packet of {len} bytes")));
    }
    Ok(Some((head[0], r.read_exact(len).await?)))
}

pub const ID_STAT: [u8; 4] = *b"STAT";
pub const ID_LIST: [u8; 4] = *b"LIST";
pub const ID_SEND: [u8; 4] = *b"SEND";
pub const ID_RECV: [u8; 4] = *b"RECV";
pub const ID_DENT: [u8; 4] = *b"DENT";
pub const ID_DONE: [u8; 4] = *b"DONE";
pub const ID_DATA: [u8; 4] = *b"DATA";
pub const ID_OKAY: [u8; 4] = *b"OKAY";
pub const ID_FAIL: [u8; 4] = *b"FAIL";
pub const ID_QUIT: [u8; 4] = *b"QUIT";

/// A sync message: id and one little-endian word, then `data`.
pub fn sync_message(id: [u8; 4], word: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&id);
    v.extend_from_slice(&word.to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// Reads a sync id and word.
pub async fn read_sync_header(r: &mut StreamReader) -> Result<([u8; 4], u32)> {
    let h = r.read_exact(8).await?;
    Ok((
        [h[0], h[1], h[2], h[3]],
        u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
    ))
}

/// Little-endian words out of a byte slice of known size.
pub fn le_words<const N: usize>(b: &[u8]) -> [u32; N] {
    let mut out = [0u32; N];
    for (i, w) in out.iter_mut().enumerate() {
        if let Some(s) = b.get(i * 4..i * 4 + 4) {
            *w = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        }
    }
    out
}

/// A file's metadata as sync STAT reports it (mode 0: it does not exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub mode: u32,
    pub size: u32,
    pub mtime: u32,
}

impl FileStat {
    pub fn exists(&self) -> bool {
        self.mode != 0
    }
    pub fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }
}

/// One entry of a sync LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub stat: FileStat,
}
