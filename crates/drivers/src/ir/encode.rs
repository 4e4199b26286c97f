//! Encoders: a protocol and scancode to pulse/space lengths in µs, starting and ending with a
//! pulse (what LIRC's pulse mode sends). Timings are the protocols' published nominal values
//! (the constants below), rounded to whole µs as the kernel's own encoders round them.

use super::{Code, IrError, Protocol};

pub(crate) const NEC_HEADER_PULSE: u32 = 9000;
pub(crate) const NEC_HEADER_SPACE: u32 = 4500;
pub(crate) const NEC_REPEAT_SPACE: u32 = 2250;
/// 562.5 µs.
pub(crate) const NEC_UNIT: u32 = 563;
pub(crate) const NEC_ONE_SPACE: u32 = 1688;
pub(crate) const SAMSUNG_HEADER: u32 = 4500;
pub(crate) const SAMSUNG_UNIT: u32 = 560;
pub(crate) const SAMSUNG_ONE_SPACE: u32 = 1690;
pub(crate) const SONY_HEADER_PULSE: u32 = 2400;
pub(crate) const SONY_UNIT: u32 = 600;
pub(crate) const SONY_ONE_PULSE: u32 = 1200;
/// 888.9 µs (64 cycles of 36 kHz).
pub(crate) const RC5_UNIT: u32 = 889;
/// 444.4 µs (16 cycles of 36 kHz).
pub(crate) const RC6_UNIT: u32 = 444;
pub(crate) const RC6_LEADER_PULSE: u32 = 2666;
pub(crate) const RC6_LEADER_SPACE: u32 = 889;

/// Whether `scancode` uses only the bits `protocol` carries.
pub fn fits(protocol: Protocol, scancode: u64) -> bool {
    scancode & !protocol.max_scancode() == 0
}

/// Pulse/space lengths, merging neighbours of the same level.
#[derive(Default)]
struct Timings(Vec<u32>);

impl Timings {
    fn push(&mut self, pulse: bool, us: u32) {
        let next_is_pulse = self.0.len().is_multiple_of(2);
        if pulse == next_is_pulse {
            self.0.push(us);
        } else if let Some(last) = self.0.last_mut() {
            *last += us;
        }
        // a space before the first pulse is not sent
    }
    fn pulse(&mut self, us: u32) -> &mut Self {
        self.push(true, us);
        self
    }
    fn space(&mut self, us: u32) -> &mut Self {
        self.push(false, us);
        self
    }
    /// Without a trailing space.
    fn finish(mut self) -> Vec<u32> {
        if self.0.len().is_multiple_of(2) {
            self.0.pop();
        }
        self.0
    }
}

/// One frame of `code`. `toggle` is the toggle bit of RC-5 and RC-6 (flip it for each new key
/// press, keep it for repeats of a held key); other protocols ignore it.
pub fn encode(code: Code, toggle: bool) -> Vec<u32> {
    let sc = code.scancode;
    match code.protocol {
        Protocol::Nec | Protocol::Necx | Protocol::Nec32 => nec(nec_bytes(code.protocol, sc)),
        Protocol::Samsung32 => samsung(sc),
        Protocol::Sony12 | Protocol::Sony15 | Protocol::Sony20 => sony(code.protocol, sc),
        Protocol::Rc5 => rc5(sc, toggle),
        Protocol::Rc6Mode0 => rc6_0(sc, toggle),
    }
}

/// What is sent while the key stays held, one frame per [`Protocol::repeat_period_us`]: NEC's
/// repeat code for the NEC family, the same frame (same toggle) for the others.
pub fn repeat(code: Code, toggle: bool) -> Vec<u32> {
    match code.protocol {
        Protocol::Nec | Protocol::Necx | Protocol::Nec32 => {
            vec![NEC_HEADER_PULSE, NEC_REPEAT_SPACE, NEC_UNIT]
        }
        _ => encode(code, toggle),
    }
}

/// The four bytes in the order sent (address, address check, command, command check), from
/// the kernel's scancode layout.
pub(crate) fn nec_bytes(protocol: Protocol, sc: u64) -> [u8; 4] {
    let b = |shift: u32| ((sc >> shift) & 0xff) as u8;
    match protocol {
        Protocol::Nec => [b(8), !b(8), b(0), !b(0)],
        Protocol::Necx => [b(16), b(8), b(0), !b(0)],
        _ => [b(16), b(24), b(0), b(8)],
    }
}

fn lsb_first(bytes: &[u8]) -> impl Iterator<Item = bool> + '_ {
    bytes
        .iter()
        .flat_map(|byte| (0..8).map(move |i| byte >> i & 1 == 1))
}

fn nec(bytes: [u8; 4]) -> Vec<u32> {
    let mut t = Timings::default();
    t.pulse(NEC_HEADER_PULSE).space(NEC_HEADER_SPACE);
    for bit in lsb_first(&bytes) {
        t.pulse(NEC_UNIT)
            .space(if bit { NEC_ONE_SPACE } else { NEC_UNIT });
    }
    t.pulse(NEC_UNIT);
    t.finish()
}

/// Samsung32: the address byte twice (or two address bytes for a 24-bit scancode), the
/// command and its complement.
pub(crate) fn samsung_bytes(sc: u64) -> [u8; 4] {
    let b = |shift: u32| ((sc >> shift) & 0xff) as u8;
    if sc > 0xffff {
        if sc > 0xff_ffff {
            [b(24), b(16), b(8), b(0)]
        } else {
            [b(16), b(8), b(0), !b(0)]
        }
    } else {
        [b(8), b(8), b(0), !b(0)]
    }
}

fn samsung(sc: u64) -> Vec<u32> {
    let mut t = Timings::default();
    t.pulse(SAMSUNG_HEADER).space(SAMSUNG_HEADER);
    for bit in lsb_first(&samsung_bytes(sc)) {
        t.pulse(SAMSUNG_UNIT)
            .space(if bit { SAMSUNG_ONE_SPACE } else { SAMSUNG_UNIT });
    }
    t.pulse(SAMSUNG_UNIT);
    t.finish()
}

/// Sony: function (7 bits), device (5 or 8), subdevice (8, 20-bit only), LSB first.
fn sony(protocol: Protocol, sc: u64) -> Vec<u32> {
    let function = sc & 0x7f;
    let subdevice = (sc >> 8) & 0xff;
    let device = (sc >> 16) & 0xff;
    let mut fields = vec![(function, 7), (device, 5)];
    match protocol {
        Protocol::Sony15 => fields[1] = (device, 8),
        Protocol::Sony20 => fields.push((subdevice, 8)),
        _ => {}
    }
    let mut t = Timings::default();
    t.pulse(SONY_HEADER_PULSE);
    for (value, bits) in fields {
        for i in 0..bits {
            t.space(SONY_UNIT).pulse(if value >> i & 1 == 1 {
                SONY_ONE_PULSE
            } else {
                SONY_UNIT
            });
        }
    }
    t.finish()
}

/// RC-5 (Philips): S1, S2 (the inverted 7th command bit of RC-5X), toggle, 5 address bits,
/// 6 command bits, MSB first, Manchester coded: a one is space then pulse.
fn rc5(sc: u64, toggle: bool) -> Vec<u32> {
    let address = (sc >> 8) & 0x1f;
    let command = sc & 0x7f;
    let mut bits = vec![true, command & 0x40 == 0, toggle];
    bits.extend((0..5).rev().map(|i| address >> i & 1 == 1));
    bits.extend((0..6).rev().map(|i| command >> i & 1 == 1));
    let mut t = Timings::default();
    for bit in bits {
        t.push(!bit, RC5_UNIT);
        t.push(bit, RC5_UNIT);
    }
    t.finish()
}

/// RC-6 mode 0: leader, start bit, mode 000, the double-length trailer (toggle) bit, then 8
/// address and 8 command bits MSB first; a one is pulse then space (the opposite of RC-5).
fn rc6_0(sc: u64, toggle: bool) -> Vec<u32> {
    let mut t = Timings::default();
    t.pulse(RC6_LEADER_PULSE).space(RC6_LEADER_SPACE);
    let bit = |t: &mut Timings, one: bool, unit: u32| {
        t.push(one, unit);
        t.push(!one, unit);
    };
    bit(&mut t, true, RC6_UNIT);
    for _ in 0..3 {
        bit(&mut t, false, RC6_UNIT);
    }
    bit(&mut t, toggle, 2 * RC6_UNIT);
    for i in (0..16).rev() {
        bit(&mut t, sc >> i & 1 == 1, RC6_UNIT);
    }
    t.finish()
}

/// Checks raw timings before they go to a device: an odd count (pulse first and last), none
/// zero, none longer than half a second, at most 512 values (the kernel's limit).
pub fn check_raw(durations: &[u32]) -> Result<(), IrError> {
    if durations.is_empty() || durations.len().is_multiple_of(2) {
        return Err(IrError::BadRaw(format!(
            "{} values: an odd number is needed (pulse first and last)",
            durations.len()
        )));
    }
    if durations.len() > 512 {
        return Err(IrError::BadRaw(format!(
            "{} values: at most 512",
            durations.len()
        )));
    }
    if let Some((i, d)) = durations
        .iter()
        .enumerate()
        .find(|(_, d)| **d == 0 || **d > 500_000)
    {
        return Err(IrError::BadRaw(format!(
            "value {} is {d} µs: each must be 1..=500000",
            i + 1
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(p: Protocol, sc: u64) -> Code {
        Code::new(p, sc).expect("code")
    }

    #[test]
    fn nec_follows_the_published_frame() {
        // Address 0x04, command 0x08: 0x04 0xfb 0x08 0xf7, each LSB first.
        let t = encode(code(Protocol::Nec, 0x0408), false);
        assert_eq!(t.len(), 2 + 32 * 2 + 1);
        assert_eq!(&t[..2], &[9000, 4500]);
        // address 0x04 = 0b0000_0100 LSB first: 0 0 1 0 0 0 0 0
        let spaces: Vec<u32> = t[2..18].chunks(2).map(|c| c[1]).collect();
        assert_eq!(spaces, vec![563, 563, 1688, 563, 563, 563, 563, 563]);
        assert!(
            t[2..].iter().step_by(2).all(|p| *p == 563),
            "every bit pulse is 562.5 µs"
        );
        // 32 bits, 16 of them ones (a byte and its complement): 67.5 ms in all.
        let total: u32 = t.iter().sum();
        assert_eq!(total, 9000 + 4500 + 32 * 563 + 16 * 563 + 16 * 1688 + 563);
        assert_eq!(
            repeat(code(Protocol::Nec, 0x0408), false),
            vec![9000, 2250, 563]
        );
    }

    #[test]
    fn nec_scancode_layouts_match_the_kernel() {
        assert_eq!(nec_bytes(Protocol::Nec, 0x12_34), [0x12, 0xed, 0x34, 0xcb]);
        assert_eq!(
            nec_bytes(Protocol::Necx, 0x12_34_56),
            [0x12, 0x34, 0x56, 0xa9]
        );
        assert_eq!(
            nec_bytes(Protocol::Nec32, 0x12_34_56_78),
            [0x34, 0x12, 0x78, 0x56]
        );
    }

    #[test]
    fn rc5_is_manchester_with_889_us_halves() {
        // What `ir-ctl -S rc5:0x1e01` sends (seen in the rig).
        let t = encode(code(Protocol::Rc5, 0x1e01), false);
        assert_eq!(
            super::super::to_text(&t),
            "+889 -889 +1778 -1778 +889 -889 +889 -889 +889 -889 +1778 -889 +889 -889 +889 -889 +889 -889 +889 -889 +889 -1778 +889"
        );
        // The toggle bit changes the frame; a 7-bit command clears S2.
        assert_ne!(t, encode(code(Protocol::Rc5, 0x1e01), true));
        assert_eq!(encode(code(Protocol::Rc5, 0x0040), false)[..2], [1778, 889]);
    }

    #[test]
    fn rc6_mode0_has_its_leader_and_double_trailer_bit() {
        let t = encode(code(Protocol::Rc6Mode0, 0x0000), false);
        // leader 6+2 units, start 1: +444 -444, mode 000: -444 +444 ×3, trailer 0: -889 +889,
        // then sixteen zeros: -444 +444 each.
        assert_eq!(&t[..4], &[2666, 889, 444, 888]);
        let total: u32 = t.iter().sum();
        assert_eq!(total, 2666 + 889 + 2 * 444 + 6 * 444 + 4 * 444 + 32 * 444);
        let toggled = encode(code(Protocol::Rc6Mode0, 0x0000), true);
        assert_ne!(t, toggled);
    }

    #[test]
    fn sony_widths_are_12_15_and_20_bits() {
        for (p, sc, bits) in [
            (Protocol::Sony12, 0x01_0015, 12),
            (Protocol::Sony15, 0x97_0015, 15),
            (Protocol::Sony20, 0x1a_0b15, 20),
        ] {
            let t = encode(code(p, sc), false);
            assert_eq!(t.len(), 1 + 2 * bits, "{p}");
            assert_eq!(t[0], 2400);
            assert!(t[1..].iter().step_by(2).all(|s| *s == 600), "{p}: spaces");
        }
        // function 0x15 = 0b0010101 LSB first: 1 0 1 0 1 0 0
        let t = encode(code(Protocol::Sony12, 0x01_0015), false);
        let pulses: Vec<u32> = t[2..16].iter().step_by(2).copied().collect();
        assert_eq!(pulses, vec![1200, 600, 1200, 600, 1200, 600, 600]);
    }

    #[test]
    fn samsung32_repeats_the_address() {
        assert_eq!(samsung_bytes(0x0702), [0x07, 0x07, 0x02, 0xfd]);
        let t = encode(code(Protocol::Samsung32, 0x0702), false);
        assert_eq!(&t[..2], &[4500, 4500]);
        assert_eq!(t.len(), 67);
    }

    #[test]
    fn raw_timings_are_checked() {
        assert!(check_raw(&[9000, 4500, 563]).is_ok());
        assert_eq!(check_raw(&[]).map_err(|e| e.code()), Err("ir_bad_raw"));
        assert!(check_raw(&[1, 2]).is_err());
        assert!(check_raw(&[1, 0, 3]).is_err());
        assert!(check_raw(&[600_000]).is_err());
        assert!(check_raw(&vec![1; 513]).is_err());
    }
}
