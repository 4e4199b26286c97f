//! Decoders: pulse/space lengths in µs (one frame, starting with a pulse) to a protocol and
//! scancode, tolerant of the distortions of real receivers (each length within 35 % of its
//! nominal value, Manchester halves within 45 % of a unit), and [`FrameSplitter`], which cuts a
//! receiver's sample stream into frames at gaps. Bad input is an [`IrError`], never a panic.

use super::{
    Code, IrError, Protocol,
    encode::{
        NEC_HEADER_PULSE, NEC_HEADER_SPACE, NEC_ONE_SPACE, NEC_REPEAT_SPACE, NEC_UNIT, RC5_UNIT,
        RC6_LEADER_PULSE, RC6_LEADER_SPACE, RC6_UNIT, SAMSUNG_HEADER, SAMSUNG_ONE_SPACE,
        SAMSUNG_UNIT, SONY_HEADER_PULSE, SONY_ONE_PULSE, SONY_UNIT,
    },
};

/// What one frame was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A full frame; `toggle` is RC-5's and RC-6's toggle bit (false for the others).
    Code { code: Code, toggle: bool },
    /// NEC's repeat code: the last key is still held.
    NecRepeat,
}

/// One sample of a receiver's stream (LIRC mode2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    Pulse(u32),
    Space(u32),
    /// Silence long enough for the receiver to stop: the end of a transmission.
    Timeout,
}

/// A space at least this long ends a frame (the longest space inside a frame is NEC's 4.5 ms
/// header; the shortest gap between frames, Sony's, is over 10 ms).
pub const FRAME_GAP_US: u32 = 10_000;

fn near(d: u32, nominal: u32) -> bool {
    d.abs_diff(nominal) <= nominal * 35 / 100
}

/// The index of the nominal value `d` is nearest to, if it is near it.
fn classify(d: u32, nominals: &[u32]) -> Option<usize> {
    let (i, n) = nominals
        .iter()
        .enumerate()
        .min_by_key(|(_, n)| d.abs_diff(**n))?;
    near(d, *n).then_some(i)
}

/// Decodes one frame.
pub fn decode(frame: &[u32]) -> Result<Decoded, IrError> {
    type Decoder = fn(&[u32]) -> Option<Decoded>;
    let decoders: [Decoder; 5] = [nec, samsung, sony, rc6_0, rc5];
    decoders
        .iter()
        .find_map(|d| d(frame))
        .ok_or(IrError::Unrecognised { len: frame.len() })
}

/// Bytes of a pulse-distance frame (a header, then `bits` pulse/space pairs, LSB first, the
/// space length telling zero from one, then a trailing pulse).
fn pulse_distance(frame: &[u32], header: (u32, u32), unit: u32, one_space: u32) -> Option<[u8; 4]> {
    if frame.len() != 2 + 64 + 1 || !near(frame[0], header.0) || !near(frame[1], header.1) {
        return None;
    }
    let mut bytes = [0u8; 4];
    for (i, pair) in frame[2..66].chunks_exact(2).enumerate() {
        if !near(pair[0], unit) {
            return None;
        }
        if classify(pair[1], &[unit, one_space])? == 1 {
            bytes[i / 8] |= 1 << (i % 8);
        }
    }
    near(frame[66], unit).then_some(bytes)
}

fn nec(frame: &[u32]) -> Option<Decoded> {
    if frame.len() == 3
        && near(frame[0], NEC_HEADER_PULSE)
        && near(frame[1], NEC_REPEAT_SPACE)
        && near(frame[2], NEC_UNIT)
    {
        return Some(Decoded::NecRepeat);
    }
    let [a, na, c, nc] = pulse_distance(
        frame,
        (NEC_HEADER_PULSE, NEC_HEADER_SPACE),
        NEC_UNIT,
        NEC_ONE_SPACE,
    )?;
    let (a, na, c, nc) = (a as u64, na as u64, c as u64, nc as u64);
    // The kernel's classification (ir_nec_bytes_to_scancode).
    let (protocol, scancode) = if c ^ nc != 0xff {
        (Protocol::Nec32, na << 24 | a << 16 | nc << 8 | c)
    } else if a ^ na != 0xff {
        (Protocol::Necx, a << 16 | na << 8 | c)
    } else {
        (Protocol::Nec, a << 8 | c)
    };
    Some(Decoded::Code {
        code: Code { protocol, scancode },
        toggle: false,
    })
}

fn samsung(frame: &[u32]) -> Option<Decoded> {
    let [a1, a2, c, nc] = pulse_distance(
        frame,
        (SAMSUNG_HEADER, SAMSUNG_HEADER),
        SAMSUNG_UNIT,
        SAMSUNG_ONE_SPACE,
    )?;
    let (a1, a2, c, nc) = (a1 as u64, a2 as u64, c as u64, nc as u64);
    let scancode = if c ^ nc != 0xff {
        a1 << 24 | a2 << 16 | c << 8 | nc
    } else if a1 != a2 {
        a1 << 16 | a2 << 8 | c
    } else {
        a1 << 8 | c
    };
    Some(Decoded::Code {
        code: Code {
            protocol: Protocol::Samsung32,
            scancode,
        },
        toggle: false,
    })
}

fn sony(frame: &[u32]) -> Option<Decoded> {
    if frame.len() < 3 || frame.len().is_multiple_of(2) || !near(frame[0], SONY_HEADER_PULSE) {
        return None;
    }
    let mut bits = Vec::with_capacity(20);
    for pair in frame[1..].chunks_exact(2) {
        if !near(pair[0], SONY_UNIT) {
            return None;
        }
        bits.push(classify(pair[1], &[SONY_UNIT, SONY_ONE_PULSE])? == 1);
    }
    let field = |from: usize, len: usize| {
        bits[from..from + len]
            .iter()
            .enumerate()
            .fold(0u64, |acc, (i, b)| acc | (u64::from(*b) << i))
    };
    let (protocol, device, subdevice) = match bits.len() {
        12 => (Protocol::Sony12, field(7, 5), 0),
        15 => (Protocol::Sony15, field(7, 8), 0),
        20 => (Protocol::Sony20, field(7, 5), field(12, 8)),
        _ => return None,
    };
    let function = field(0, 7);
    Some(Decoded::Code {
        code: Code {
            protocol,
            scancode: device << 16 | subdevice << 8 | function,
        },
        toggle: false,
    })
}

/// The frame as levels per half-unit (true = pulse), each duration rounded to whole units.
fn halves(frame: &[u32], unit: u32, max_units: u32) -> Option<Vec<bool>> {
    let mut levels = Vec::new();
    for (i, d) in frame.iter().enumerate() {
        let n = d.saturating_add(unit / 2) / unit;
        if n == 0 || n > max_units || d.abs_diff(n * unit) > unit * 45 / 100 {
            return None;
        }
        levels.extend(std::iter::repeat_n(i % 2 == 0, n as usize));
    }
    Some(levels)
}

/// Manchester bits from pairs of halves: `one` is the pair that means 1.
fn manchester(levels: &[bool], one: (bool, bool)) -> Option<Vec<bool>> {
    levels
        .chunks_exact(2)
        .map(|p| match (p[0], p[1]) {
            pair if pair == one => Some(true),
            pair if pair == (one.1, one.0) => Some(false),
            _ => None,
        })
        .collect()
}

fn rc5(frame: &[u32]) -> Option<Decoded> {
    // S1 is a one (space then pulse): the frame starts in its second half.
    let mut levels = vec![false];
    levels.extend(halves(frame, RC5_UNIT, 2)?);
    if levels.len() > 28 || levels.len() < 26 {
        return None;
    }
    levels.resize(28, false);
    let bits = manchester(&levels, (false, true))?;
    let value = |from: usize, len: usize| {
        bits[from..from + len]
            .iter()
            .fold(0u64, |acc, b| acc << 1 | u64::from(*b))
    };
    if !bits[0] {
        return None;
    }
    let command = value(8, 6) | if bits[1] { 0 } else { 0x40 };
    Some(Decoded::Code {
        code: Code {
            protocol: Protocol::Rc5,
            scancode: value(3, 5) << 8 | command,
        },
        toggle: bits[2],
    })
}

fn rc6_0(frame: &[u32]) -> Option<Decoded> {
    if frame.len() < 4 || !near(frame[0], RC6_LEADER_PULSE) || !near(frame[1], RC6_LEADER_SPACE) {
        return None;
    }
    let mut levels = halves(&frame[2..], RC6_UNIT, 3)?;
    // start (2 halves) + mode (6) + trailer (2 halves of 2 units) + 16 bits (32)
    const LEN: usize = 2 + 6 + 4 + 32;
    if levels.len() > LEN || levels.len() < LEN - 2 {
        return None;
    }
    levels.resize(LEN, false);
    let head = manchester(&levels[..8], (true, false))?;
    if head != [true, false, false, false] {
        return None;
    }
    let toggle = match levels[8..12] {
        [true, true, false, false] => true,
        [false, false, true, true] => false,
        _ => return None,
    };
    let bits = manchester(&levels[12..], (true, false))?;
    let scancode = bits.iter().fold(0u64, |acc, b| acc << 1 | u64::from(*b));
    Some(Decoded::Code {
        code: Code {
            protocol: Protocol::Rc6Mode0,
            scancode,
        },
        toggle,
    })
}

/// Cuts a stream of samples into frames: a frame ends at a timeout or a space of at least
/// [`FRAME_GAP_US`]; spaces before a frame are dropped.
#[derive(Default)]
pub struct FrameSplitter {
    current: Vec<u32>,
}

/// Frames longer than this are cut (no protocol here has more than 67 lengths).
const MAX_FRAME: usize = 512;

impl FrameSplitter {
    pub fn push(&mut self, sample: Sample) -> Option<Vec<u32>> {
        match sample {
            Sample::Pulse(d) => {
                if self.current.len() % 2 == 1 {
                    if let Some(last) = self.current.last_mut() {
                        *last = last.saturating_add(d);
                    }
                } else {
                    self.current.push(d);
                }
                if self.current.len() >= MAX_FRAME {
                    return self.take();
                }
                None
            }
            Sample::Space(d) if d >= FRAME_GAP_US => self.take(),
            Sample::Space(d) => {
                match self.current.len() % 2 {
                    0 if self.current.is_empty() => {}
                    0 => {
                        if let Some(last) = self.current.last_mut() {
                            *last = last.saturating_add(d);
                        }
                    }
                    _ => self.current.push(d),
                }
                None
            }
            Sample::Timeout => self.take(),
        }
    }

    /// The frame so far, ending with a pulse; `None` when there is none.
    pub fn take(&mut self) -> Option<Vec<u32>> {
        let mut frame = std::mem::take(&mut self.current);
        if frame.len().is_multiple_of(2) {
            frame.pop();
        }
        (!frame.is_empty()).then_some(frame)
    }
}

/// Every frame of a sample stream (the last one ends where the stream does).
pub fn frames(samples: &[Sample]) -> Vec<Vec<u32>> {
    let mut splitter = FrameSplitter::default();
    let mut out: Vec<Vec<u32>> = samples.iter().filter_map(|s| splitter.push(*s)).collect();
    out.extend(splitter.take());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::encode::{encode, repeat};

    fn code(p: Protocol, sc: u64) -> Code {
        Code::new(p, sc).expect("code")
    }

    /// One scancode per protocol that is canonical for it (NEC32's command check fails, NECX's
    /// address check fails, as the kernel tells them apart).
    pub(crate) fn samples() -> Vec<Code> {
        vec![
            code(Protocol::Nec, 0x04_08),
            code(Protocol::Necx, 0x12_34_56),
            code(Protocol::Nec32, 0x12_34_56_78),
            code(Protocol::Rc5, 0x1e_01),
            code(Protocol::Rc5, 0x05_47),
            code(Protocol::Rc6Mode0, 0x80_0c),
            code(Protocol::Sony12, 0x01_0015),
            code(Protocol::Sony15, 0x97_0015),
            code(Protocol::Sony20, 0x1a_0b15),
            code(Protocol::Samsung32, 0x07_02),
            code(Protocol::Samsung32, 0x07_08_02),
        ]
    }

    #[test]
    fn every_encoder_round_trips_with_both_toggles() {
        for c in samples() {
            for toggle in [false, true] {
                let frame = encode(c, toggle);
                let has_toggle = matches!(c.protocol, Protocol::Rc5 | Protocol::Rc6Mode0);
                assert_eq!(
                    decode(&frame),
                    Ok(Decoded::Code {
                        code: c,
                        toggle: toggle && has_toggle
                    }),
                    "{c} toggle {toggle}: {}",
                    crate::ir::to_text(&frame)
                );
            }
        }
        assert_eq!(decode(&repeat(samples()[0], false)), Ok(Decoded::NecRepeat));
    }

    #[test]
    fn every_scancode_of_the_small_protocols_round_trips() {
        for sc in 0..=0x1f7f_u64 {
            if sc & 0x80 != 0 {
                continue;
            }
            let c = code(Protocol::Rc5, sc);
            assert_eq!(
                decode(&encode(c, true)),
                Ok(Decoded::Code {
                    code: c,
                    toggle: true
                }),
                "{c}"
            );
        }
        for sc in (0..=0xffff_u64).step_by(7) {
            let c = code(Protocol::Rc6Mode0, sc);
            assert_eq!(
                decode(&encode(c, false)),
                Ok(Decoded::Code {
                    code: c,
                    toggle: false
                })
            );
            let c = code(Protocol::Nec, sc);
            assert_eq!(
                decode(&encode(c, false)),
                Ok(Decoded::Code {
                    code: c,
                    toggle: false
                })
            );
        }
    }

    /// A real receiver stretches pulses and shortens spaces (the demodulator's delay).
    fn distort(frame: &[u32], by: i64) -> Vec<u32> {
        frame
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let d = *d as i64 + if i % 2 == 0 { by } else { -by };
                d.max(1) as u32
            })
            .collect()
    }

    #[test]
    fn decoders_tolerate_a_receivers_distortion() {
        for c in samples() {
            for by in [-150, -80, 80, 150] {
                let frame = distort(&encode(c, false), by);
                assert!(
                    matches!(decode(&frame), Ok(Decoded::Code { code, .. }) if code == c),
                    "{c} distorted by {by} µs: {:?}",
                    decode(&frame)
                );
            }
        }
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let cases: Vec<Vec<u32>> = vec![
            vec![],
            vec![0],
            vec![u32::MAX],
            vec![u32::MAX; 67],
            vec![9000, 4500],
            vec![9000; 67],
            vec![889; 26],
            vec![2666, 889, 444],
            vec![2400, 600, 600],
            vec![1; 1000],
        ];
        for frame in cases {
            let result = decode(&frame);
            assert!(result.is_err(), "{frame:?} decoded as {result:?}");
        }
        // Truncated and corrupted real frames.
        for c in samples() {
            let frame = encode(c, false);
            for cut in [1, frame.len() / 2, frame.len() - 2] {
                let got = decode(&frame[..cut]);
                assert!(
                    !matches!(got, Ok(Decoded::Code { code, .. }) if code == c),
                    "{c} cut at {cut}"
                );
            }
            let mut bad = frame.clone();
            bad[frame.len() / 2] = 20_000;
            assert!(decode(&bad).is_err(), "{c} with a 20 ms length");
        }
    }

    #[test]
    fn the_splitter_cuts_at_timeouts_and_gaps() {
        let nec = encode(samples()[0], false);
        let mut stream = vec![Sample::Space(1_000_000)];
        stream.extend(nec.iter().enumerate().map(|(i, d)| {
            if i % 2 == 0 {
                Sample::Pulse(*d)
            } else {
                Sample::Space(*d)
            }
        }));
        stream.push(Sample::Timeout);
        stream.extend([
            Sample::Space(40_000),
            Sample::Pulse(9000),
            Sample::Space(2250),
        ]);
        stream.extend([
            Sample::Pulse(563),
            Sample::Space(50_000),
            Sample::Pulse(300),
        ]);
        let got = frames(&stream);
        assert_eq!(got, vec![nec, vec![9000, 2250, 563], vec![300]]);
    }
}
