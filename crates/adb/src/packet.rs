//! The ADB packet layer: a 24-byte little-endian header (command, arg0, arg1, payload length,
//! payload checksum, magic = !command) and its payload. The header is validated before any
//! payload is allocated, so a hostile peer can make us allocate at most the negotiated maximum.

use crate::error::{AdbError, Result};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Header size in bytes.
pub const HEADER_LEN: usize = 24;
/// The protocol version we speak: checksums skipped once both sides agree on it.
pub const VERSION: u32 = 0x0100_0001;
/// The oldest version: payload checksums are checked.
pub const VERSION_MIN: u32 = 0x0100_0000;
/// The largest payload we accept and offer (adb's own 1 MiB).
pub const MAX_PAYLOAD: u32 = 1024 * 1024;

pub const A_SYNC: u32 = u32::from_le_bytes(*b"SYNC");
pub const A_CNXN: u32 = u32::from_le_bytes(*b"CNXN");
pub const A_OPEN: u32 = u32::from_le_bytes(*b"OPEN");
pub const A_OKAY: u32 = u32::from_le_bytes(*b"OKAY");
pub const A_CLSE: u32 = u32::from_le_bytes(*b"CLSE");
pub const A_WRTE: u32 = u32::from_le_bytes(*b"WRTE");
pub const A_AUTH: u32 = u32::from_le_bytes(*b"AUTH");
pub const A_STLS: u32 = u32::from_le_bytes(*b"STLS");

/// AUTH arg0: the device's challenge.
pub const AUTH_TOKEN: u32 = 1;
/// AUTH arg0: the host's signature of the challenge.
pub const AUTH_SIGNATURE: u32 = 2;
/// AUTH arg0: the host's public key, offered for the user to accept.
pub const AUTH_RSAPUBLICKEY: u32 = 3;

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub command: u32,
    pub arg0: u32,
    pub arg1: u32,
    pub len: u32,
    pub checksum: u32,
}

/// One packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub command: u32,
    pub arg0: u32,
    pub arg1: u32,
    pub payload: Vec<u8>,
}

impl Packet {
    pub fn new(command: u32, arg0: u32, arg1: u32, payload: Vec<u8>) -> Self {
        Packet {
            command,
            arg0,
            arg1,
            payload,
        }
    }

    /// The command's four letters, for logs.
    pub fn name(&self) -> String {
        command_name(self.command)
    }

    /// Header and payload as bytes (the checksum is always filled in: harmless for peers that
    /// skip it, needed by those that do not).
    pub fn encode_header(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        let words = [
            self.command,
            self.arg0,
            self.arg1,
            self.payload.len() as u32,
            checksum(&self.payload),
            self.command ^ 0xffff_ffff,
        ];
        for (i, w) in words.iter().enumerate() {
            h[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        h
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.extend_from_slice(&self.encode_header());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// The four letters of a command word.
pub fn command_name(command: u32) -> String {
    command
        .to_le_bytes()
        .iter()
        .map(|b| {
            if b.is_ascii_graphic() {
                *b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// The legacy payload checksum: the sum of its bytes.
pub fn checksum(payload: &[u8]) -> u32 {
    payload
        .iter()
        .fold(0u32, |acc, b| acc.wrapping_add(u32::from(*b)))
}

/// Validates a header: magic, known command, payload within `max_payload`.
pub fn decode_header(bytes: &[u8; HEADER_LEN], max_payload: u32) -> Result<Header> {
    let word = |i: usize| {
        u32::from_le_bytes([
            bytes[i * 4],
            bytes[i * 4 + 1],
            bytes[i * 4 + 2],
            bytes[i * 4 + 3],
        ])
    };
    let h = Header {
        command: word(0),
        arg0: word(1),
        arg1: word(2),
        len: word(3),
        checksum: word(4),
    };
    let magic = word(5);
    if magic != h.command ^ 0xffff_ffff {
        return Err(AdbError::BadMagic {
            command: h.command,
            magic,
        });
    }
    if ![
        A_SYNC, A_CNXN, A_OPEN, A_OKAY, A_CLSE, A_WRTE, A_AUTH, A_STLS,
    ]
    .contains(&h.command)
    {
        return Err(AdbError::UnknownCommand(h.command));
    }
    if h.len > max_payload {
        return Err(AdbError::OversizePayload {
            len: h.len,
            max: max_payload,
        });
    }
    Ok(h)
}

fn check_payload(h: &Header, payload: &[u8], verify_checksum: bool) -> Result<()> {
    if verify_checksum {
        let actual = checksum(payload);
        if actual != h.checksum {
            return Err(AdbError::ChecksumMismatch {
                expected: h.checksum,
                actual,
            });
        }
    }
    Ok(())
}

/// Decodes one packet from the front of `bytes`; returns it and the number of bytes used.
pub fn decode(bytes: &[u8], max_payload: u32, verify_checksum: bool) -> Result<(Packet, usize)> {
    let head: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(AdbError::Truncated("header"))?;
    let h = decode_header(head, max_payload)?;
    let end = HEADER_LEN + h.len as usize;
    let payload = bytes
        .get(HEADER_LEN..end)
        .ok_or(AdbError::Truncated("payload"))?;
    check_payload(&h, payload, verify_checksum)?;
    Ok((
        Packet::new(h.command, h.arg0, h.arg1, payload.to_vec()),
        end,
    ))
}

/// Reads packets from a byte stream through its own buffer, so `next` is cancel-safe (it can
/// sit in a `select!`). At most one packet (header, then payload within the limit) plus one
/// read's worth of bytes is buffered.
pub struct PacketReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    /// The largest payload accepted.
    pub max_payload: u32,
    /// Whether payload checksums are checked (protocol versions before [`VERSION`]).
    pub verify_checksum: bool,
}

const READ_CHUNK: usize = 64 * 1024;

impl<R: AsyncRead + Unpin> PacketReader<R> {
    pub fn new(inner: R, max_payload: u32, verify_checksum: bool) -> Self {
        PacketReader {
            inner,
            buf: Vec::new(),
            start: 0,
            max_payload,
            verify_checksum,
        }
    }

    /// The next packet. A clean end of stream between packets is `Unavailable`; one inside a
    /// packet is `Truncated`.
    pub async fn next(&mut self) -> Result<Packet> {
        loop {
            let avail = &self.buf[self.start..];
            if let Some(head) = avail
                .get(..HEADER_LEN)
                .and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok())
            {
                let h = decode_header(head, self.max_payload)?;
                let total = HEADER_LEN + h.len as usize;
                if let Some(payload) = avail.get(HEADER_LEN..total) {
                    check_payload(&h, payload, self.verify_checksum)?;
                    let p = Packet::new(h.command, h.arg0, h.arg1, payload.to_vec());
                    self.start += total;
                    return Ok(p);
                }
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            self.buf.reserve(READ_CHUNK);
            let n = self.inner.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    AdbError::Unavailable("connection closed by peer".into())
                } else if self.buf.len() < HEADER_LEN {
                    AdbError::Truncated("header")
                } else {
                    AdbError::Truncated("payload")
                });
            }
        }
    }
}

/// Reads one packet from `r` (for one-off reads; connections keep a [`PacketReader`]).
pub async fn read_packet<R: AsyncRead + Unpin>(
    r: R,
    max_payload: u32,
    verify_checksum: bool,
) -> Result<Packet> {
    PacketReader::new(r, max_payload, verify_checksum)
        .next()
        .await
}

/// Writes one packet (header then payload) and flushes.
pub async fn write_packet<W: AsyncWrite + Unpin + ?Sized>(w: &mut W, p: &Packet) -> Result<()> {
    w.write_all(&p.encode_header()).await?;
    if !p.payload.is_empty() {
        w.write_all(&p.payload).await?;
    }
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_stable_codes() {
        let p = Packet::new(A_WRTE, 7, 9, b"hello".to_vec());
        let bytes = p.encode();
        let (q, used) = decode(&bytes, MAX_PAYLOAD, true).unwrap();
        assert_eq!((q, used), (p.clone(), bytes.len()));

        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert_eq!(
            decode(&bad, MAX_PAYLOAD, true).unwrap_err().code(),
            "adb_bad_magic"
        );
        let unknown = Packet::new(u32::from_le_bytes(*b"XXXX"), 0, 0, vec![]).encode();
        assert_eq!(
            decode(&unknown, MAX_PAYLOAD, true).unwrap_err().code(),
            "adb_unknown_command"
        );
        assert_eq!(
            decode(&bytes, 4, true).unwrap_err().code(),
            "adb_oversize_payload"
        );
        let mut sum = bytes.clone();
        sum[HEADER_LEN] ^= 0x40;
        assert_eq!(
            decode(&sum, MAX_PAYLOAD, true).unwrap_err().code(),
            "adb_checksum_mismatch"
        );
        assert!(
            decode(&sum, MAX_PAYLOAD, false).is_ok(),
            "checksum skipped after negotiation"
        );
        assert_eq!(
            decode(&bytes[..10], MAX_PAYLOAD, true).unwrap_err().code(),
            "adb_truncated"
        );
        assert_eq!(
            decode(&bytes[..26], MAX_PAYLOAD, true).unwrap_err().code(),
            "adb_truncated"
        );
    }

    /// A deterministic xorshift generator: the fuzz loop is reproducible from its seed.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn fuzzed_packets_never_panic_and_allocation_is_bounded() {
        let mut rng = XorShift(0x5eed_adb0_1234_5678);
        let commands = [
            A_SYNC, A_CNXN, A_OPEN, A_OKAY, A_CLSE, A_WRTE, A_AUTH, A_STLS,
        ];
        let max = 4096u32;
        let mut decoded = 0;
        let mut codes = std::collections::BTreeSet::new();
        for i in 0..200_000 {
            let bytes: Vec<u8> = if i % 2 == 0 {
                // A valid packet, then mutated: flipped bytes, truncated, or a length rewritten.
                let len = rng.below(64);
                let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let cmd = commands[rng.below(commands.len())];
                let mut b =
                    Packet::new(cmd, rng.next() as u32, rng.next() as u32, payload).encode();
                match rng.below(4) {
                    0 => {
                        for _ in 0..=rng.below(3) {
                            let at = rng.below(b.len());
                            b[at] ^= 1 << rng.below(8);
                        }
                    }
                    1 => b.truncate(rng.below(b.len() + 1)),
                    2 => {
                        let huge = (rng.next() as u32).to_le_bytes();
                        b[12..16].copy_from_slice(&huge);
                    }
                    _ => {}
                }
                b
            } else {
                let len = rng.below(96);
                let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if b.len() >= HEADER_LEN && rng.below(2) == 0 {
                    // A plausible header (right magic) with random length and checksum.
                    let cmd = commands[rng.below(commands.len())];
                    b[0..4].copy_from_slice(&cmd.to_le_bytes());
                    b[20..24].copy_from_slice(&(cmd ^ 0xffff_ffff).to_le_bytes());
                }
                b
            };
            match decode(&bytes, max, i % 3 != 0) {
                Ok((p, used)) => {
                    assert!(p.payload.len() <= max as usize);
                    assert!(used <= bytes.len());
                    decoded += 1;
                }
                Err(e) => {
                    codes.insert(e.code());
                }
            }
        }
        assert!(decoded > 10_000, "some packets must survive: {decoded}");
        for code in [
            "adb_bad_magic",
            "adb_unknown_command",
            "adb_oversize_payload",
            "adb_checksum_mismatch",
            "adb_truncated",
        ] {
            assert!(
                codes.contains(code),
                "fuzzing never produced {code}: {codes:?}"
            );
        }
    }

    #[tokio::test]
    async fn reader_rejects_an_oversize_header_before_allocating() {
        let mut b = Packet::new(A_WRTE, 1, 1, vec![]).encode();
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = read_packet(&b[..], MAX_PAYLOAD, true).await.unwrap_err();
        assert_eq!(e.code(), "adb_oversize_payload");
        let short = Packet::new(A_WRTE, 1, 1, vec![1; 10]).encode();
        assert_eq!(
            read_packet(&short[..30], MAX_PAYLOAD, true)
                .await
                .unwrap_err()
                .code(),
            "adb_truncated"
        );
        assert_eq!(
            read_packet(&short[..3], MAX_PAYLOAD, true)
                .await
                .unwrap_err()
                .code(),
            "adb_truncated"
        );
        assert_eq!(
            read_packet(&b""[..], MAX_PAYLOAD, true)
                .await
                .unwrap_err()
                .code(),
            "adb_unavailable"
        );
        // Two packets back to back come out one at a time.
        let mut two = Packet::new(A_OKAY, 1, 2, vec![]).encode();
        two.extend(Packet::new(A_WRTE, 3, 4, b"xy".to_vec()).encode());
        let mut r = PacketReader::new(&two[..], MAX_PAYLOAD, true);
        assert_eq!(r.next().await.unwrap().command, A_OKAY);
        assert_eq!(r.next().await.unwrap().payload, b"xy");
        assert_eq!(r.next().await.unwrap_err().code(), "adb_unavailable");
    }
}
