//! Infrared remotes: protocol encoders and decoders as pure functions over pulse/space lengths
//! in µs ([`encode`], [`decode`]), key maps ([`keymap`]: key name → protocol + scancode or raw
//! timings), and the driver ([`remote`]: [`IrSender`], [`IrReceiver`] and the composite
//! device's [`IrRemote`]) over a small transport trait ([`IrTransport`]), whose real
//! implementation is the kernel's LIRC device ([`lirc::LircDevice`], cargo feature `lirc`; its
//! ioctls live in `labwright-lirc-ioctl`, the only crate with `unsafe`).
//!
//! Scancodes follow the kernel's conventions (`rc_proto`, as `ir-ctl` and `ir-keytable` print
//! them), so a code learned or configured with Debian's tools means the same here:
//! NEC `AADD`, NECX `AAaaDD`, NEC32 `aaAAddDD`, RC-5 `AACC` (7-bit command, the RC-5X field bit),
//! RC-6 mode 0 `AACC`, Sony `DDSSFF` (device, subdevice for 20 bits, function).

pub mod decode;
pub mod encode;
pub mod keymap;
#[cfg(feature = "lirc")]
pub mod lirc;
pub mod remote;

use std::{fmt, str::FromStr};

pub use decode::{Decoded, Sample, decode, frames};
pub use encode::encode;
pub use keymap::{KeyCode, KeyMap};
pub use remote::{IrFeatures, IrReceiver, IrRemote, IrSender, IrTransport, Received};

/// The protocols with an encoder and a decoder here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Nec,
    Necx,
    Nec32,
    Rc5,
    Rc6Mode0,
    Sony12,
    Sony15,
    Sony20,
    Samsung32,
}

impl Protocol {
    pub const ALL: [Protocol; 9] = [
        Protocol::Nec,
        Protocol::Necx,
        Protocol::Nec32,
        Protocol::Rc5,
        Protocol::Rc6Mode0,
        Protocol::Sony12,
        Protocol::Sony15,
        Protocol::Sony20,
        Protocol::Samsung32,
    ];

    /// The name `ir-ctl` uses (`nec`, `rc6_0`, `sony12`…; `samsung32` is ours).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Nec => "nec",
            Protocol::Necx => "necx",
            Protocol::Nec32 => "nec32",
            Protocol::Rc5 => "rc5",
            Protocol::Rc6Mode0 => "rc6_0",
            Protocol::Sony12 => "sony12",
            Protocol::Sony15 => "sony15",
            Protocol::Sony20 => "sony20",
            Protocol::Samsung32 => "samsung32",
        }
    }

    /// The kernel's `enum rc_proto` number, for scancode mode (none for Samsung32: the kernel
    /// has no encoder for it).
    pub fn rc_proto(self) -> Option<u16> {
        Some(match self {
            Protocol::Rc5 => 2,
            Protocol::Sony12 => 6,
            Protocol::Sony15 => 7,
            Protocol::Sony20 => 8,
            Protocol::Nec => 9,
            Protocol::Necx => 10,
            Protocol::Nec32 => 11,
            Protocol::Rc6Mode0 => 15,
            Protocol::Samsung32 => return None,
        })
    }

    /// The carrier frequency remotes of this protocol use, in Hz.
    pub fn carrier_hz(self) -> u32 {
        match self {
            Protocol::Rc5 | Protocol::Rc6Mode0 => 36_000,
            Protocol::Sony12 | Protocol::Sony15 | Protocol::Sony20 => 40_000,
            Protocol::Nec | Protocol::Necx | Protocol::Nec32 | Protocol::Samsung32 => 38_000,
        }
    }

    /// From the start of one frame to the start of the next when a key is held, in µs.
    pub fn repeat_period_us(self) -> u32 {
        match self {
            Protocol::Nec | Protocol::Necx | Protocol::Nec32 | Protocol::Samsung32 => 108_000,
            Protocol::Rc5 | Protocol::Rc6Mode0 => 114_000,
            Protocol::Sony12 | Protocol::Sony15 | Protocol::Sony20 => 45_000,
        }
    }

    /// The largest scancode this protocol carries.
    pub fn max_scancode(self) -> u64 {
        match self {
            Protocol::Nec | Protocol::Rc6Mode0 => 0xffff,
            Protocol::Necx => 0xff_ffff,
            Protocol::Nec32 | Protocol::Samsung32 => 0xffff_ffff,
            Protocol::Rc5 => 0x1f7f,
            Protocol::Sony12 => 0x1f_007f,
            Protocol::Sony15 => 0xff_007f,
            Protocol::Sony20 => 0x1f_ff7f,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = IrError;
    fn from_str(s: &str) -> Result<Self, IrError> {
        let lower = s.to_ascii_lowercase().replace('-', "_");
        let alias = match lower.as_str() {
            "rc6" | "rc6_mode0" | "rc_6_0" => "rc6_0",
            "rc_5" => "rc5",
            "samsung" => "samsung32",
            other => other,
        };
        Protocol::ALL
            .into_iter()
            .find(|p| p.name() == alias)
            .ok_or_else(|| IrError::UnknownProtocol {
                name: s.to_string(),
            })
    }
}

/// A protocol and scancode: what one key sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Code {
    pub protocol: Protocol,
    pub scancode: u64,
}

impl Code {
    pub fn new(protocol: Protocol, scancode: u64) -> Result<Code, IrError> {
        if scancode > protocol.max_scancode() || !encode::fits(protocol, scancode) {
            return Err(IrError::ScancodeOutOfRange {
                protocol,
                scancode,
                max: protocol.max_scancode(),
            });
        }
        Ok(Code { protocol, scancode })
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{:#x}", self.protocol, self.scancode)
    }
}

/// `nec:0x0408` (as `ir-ctl --scancode` takes it; decimal works too).
impl FromStr for Code {
    type Err = IrError;
    fn from_str(s: &str) -> Result<Self, IrError> {
        let (proto, sc) = s.split_once(':').ok_or_else(|| IrError::BadCode {
            text: s.to_string(),
        })?;
        let protocol: Protocol = proto.trim().parse()?;
        let sc = sc.trim();
        let scancode = match sc.strip_prefix("0x").or_else(|| sc.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => sc.parse(),
        }
        .map_err(|_| IrError::BadCode {
            text: s.to_string(),
        })?;
        Code::new(protocol, scancode)
    }
}

/// Everything that can go wrong with IR, each with a stable [`IrError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IrError {
    #[error(
        "unknown IR protocol {name:?} (known: nec, necx, nec32, rc5, rc6_0, sony12, sony15, sony20, samsung32)"
    )]
    UnknownProtocol { name: String },
    #[error("{text:?} is not a code (expected protocol:scancode, e.g. nec:0x0408)")]
    BadCode { text: String },
    #[error("scancode {scancode:#x} does not fit {protocol} (largest {max:#x})")]
    ScancodeOutOfRange {
        protocol: Protocol,
        scancode: u64,
        max: u64,
    },
    /// Raw timings that cannot be sent: an even count, a zero or too long a duration.
    #[error("raw timings: {0}")]
    BadRaw(String),
    /// No known protocol matches these timings.
    #[error("no known protocol matches {len} pulse/space lengths")]
    Unrecognised { len: usize },
    #[error("key {key:?} is not in the key map (known: {known})")]
    UnknownKey { key: String, known: String },
    #[error("invalid key map: {0}")]
    KeyMap(String),
    /// The device cannot do what was asked (send, receive, a mode).
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Device(String),
}

impl IrError {
    pub fn code(&self) -> &'static str {
        match self {
            IrError::UnknownProtocol { .. } => "ir_unknown_protocol",
            IrError::BadCode { .. } => "ir_bad_code",
            IrError::ScancodeOutOfRange { .. } => "ir_scancode_range",
            IrError::BadRaw(_) => "ir_bad_raw",
            IrError::Unrecognised { .. } => "ir_unrecognised",
            IrError::UnknownKey { .. } => "ir_unknown_key",
            IrError::KeyMap(_) => "ir_bad_keymap",
            IrError::Unsupported(_) => "ir_unsupported",
            IrError::Device(_) => "ir_device",
        }
    }
}

/// Pulse/space lengths as `ir-ctl` prints and reads them: `+9000 -4500 +563 …`.
pub fn to_text(durations: &[u32]) -> String {
    durations
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{}{d}", if i % 2 == 0 { '+' } else { '-' }))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses `ir-ctl`'s text (`+9000 -4500 …`, or `pulse 9000` / `space 4500` lines of its mode2
/// output; `#` comments and `timeout` lines end nothing and are skipped) into alternating
/// durations starting with a pulse.
pub fn from_text(text: &str) -> Result<Vec<u32>, IrError> {
    let mut out: Vec<u32> = Vec::new();
    let mut tokens = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace);
    while let Some(tok) = tokens.next() {
        let (pulse, value) = match tok {
            "pulse" => (true, tokens.next().unwrap_or("")),
            "space" => (false, tokens.next().unwrap_or("")),
            "timeout" | "carrier" | "overflow" => {
                tokens.next();
                continue;
            }
            t if t.starts_with('+') => (true, &t[1..]),
            t if t.starts_with('-') => (false, &t[1..]),
            t => return Err(IrError::BadRaw(format!("unexpected {t:?}"))),
        };
        let d: u32 = value
            .parse()
            .map_err(|_| IrError::BadRaw(format!("bad duration {value:?}")))?;
        let expect_pulse = out.len().is_multiple_of(2);
        if pulse == expect_pulse {
            out.push(d);
        } else if let Some(last) = out.last_mut() {
            *last = last.saturating_add(d);
        } else if pulse {
            return Err(IrError::BadRaw("starts with a space".into()));
        }
        // a leading space is dropped
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_like_ir_ctl_scancodes() {
        let c: Code = "nec:0x0408".parse().expect("code");
        assert_eq!(
            c,
            Code {
                protocol: Protocol::Nec,
                scancode: 0x0408
            }
        );
        assert_eq!(c.to_string(), "nec:0x408");
        assert_eq!(
            "RC6:1".parse::<Code>().map(|c| c.protocol),
            Ok(Protocol::Rc6Mode0)
        );
        assert_eq!(
            "nec:0x10000".parse::<Code>().map_err(|e| e.code()),
            Err("ir_scancode_range")
        );
        assert_eq!(
            "jvc:1".parse::<Code>().map_err(|e| e.code()),
            Err("ir_unknown_protocol")
        );
        assert_eq!(
            "nec".parse::<Code>().map_err(|e| e.code()),
            Err("ir_bad_code")
        );
        assert_eq!(
            "nec:zz".parse::<Code>().map_err(|e| e.code()),
            Err("ir_bad_code")
        );
        assert_eq!(
            "rc5:0x80".parse::<Code>().map_err(|e| e.code()),
            Err("ir_scancode_range")
        );
    }

    #[test]
    fn text_round_trips_and_merges_like_ir_ctl() {
        let d = vec![9000, 4500, 563];
        assert_eq!(to_text(&d), "+9000 -4500 +563");
        assert_eq!(from_text("+9000 -4500 +563\n"), Ok(d.clone()));
        assert_eq!(
            from_text("pulse 9000\nspace 4500\npulse 563\ntimeout 125000\n"),
            Ok(d)
        );
        assert_eq!(from_text("+100 +200 -5"), Ok(vec![300, 5]));
        assert!(from_text("+x").is_err());
        assert!(from_text("hello").is_err());
    }
}
