//! The LIRC character device (`/dev/lircN`, `<linux/lirc.h>`) behind a safe API: features,
//! send and receive modes, carrier, duty cycle, receive timeout (the ioctls, through `nix`'s
//! ioctl macros), and the reads and writes of pulse/space (mode2) samples and scancodes.
//!
//! This is the only crate of the workspace that may use `unsafe` for IR (each ioctl is one
//! `unsafe` call on a file descriptor this crate owns, with a `u32` it owns); the protocol
//! encoders, decoders and the driver live in `labwright-drivers` (`ir`), in safe code.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    os::fd::{AsFd, AsRawFd},
    path::{Path, PathBuf},
    time::Duration,
};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The data modes of `<linux/lirc.h>` (`LIRC_MODE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Pulse/space lengths as `u32` microseconds (`LIRC_MODE_PULSE`): how pulses are sent.
    Pulse,
    /// Timed samples, each `u32` with a type in the top byte (`LIRC_MODE_MODE2`): how raw IR
    /// is received.
    Mode2,
    /// Decoded or to-be-encoded scancodes (`struct lirc_scancode`, `LIRC_MODE_SCANCODE`).
    Scancode,
}

impl Mode {
    const fn bits(self) -> u32 {
        match self {
            Mode::Pulse => 0x2,
            Mode::Mode2 => 0x4,
            Mode::Scancode => 0x8,
        }
    }
}

/// `LIRC_GET_FEATURES`: what the device can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features(pub u32);

impl Features {
    pub fn can_send(self, mode: Mode) -> bool {
        self.0 & mode.bits() != 0
    }
    pub fn can_receive(self, mode: Mode) -> bool {
        self.0 & (mode.bits() << 16) != 0
    }
    pub fn can_set_send_carrier(self) -> bool {
        self.0 & 0x0000_0100 != 0
    }
    pub fn can_set_send_duty_cycle(self) -> bool {
        self.0 & 0x0000_0200 != 0
    }
    pub fn can_set_receive_timeout(self) -> bool {
        self.0 & 0x1000_0000 != 0
    }
}

/// One mode2 sample as read from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    Pulse(u32),
    Space(u32),
    /// The receiver saw no edge for this long: the end of a transmission.
    Timeout(u32),
    /// The measured carrier frequency (Hz), when carrier reports are on.
    Frequency(u32),
    /// The receiver's buffer overflowed: samples were lost.
    Overflow(u32),
}

impl Sample {
    /// Decodes one `u32` of `LIRC_MODE_MODE2`; `None` for a type this crate does not know.
    pub fn from_raw(raw: u32) -> Option<Sample> {
        let value = raw & 0x00ff_ffff;
        Some(match raw >> 24 {
            0 => Sample::Space(value),
            1 => Sample::Pulse(value),
            2 => Sample::Frequency(value),
            3 => Sample::Timeout(value),
            4 => Sample::Overflow(value),
            _ => return None,
        })
    }
}

/// `struct lirc_scancode`: a scancode sent or received with its kernel protocol number
/// (`enum rc_proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scancode {
    pub timestamp_ns: u64,
    pub flags: u16,
    pub rc_proto: u16,
    pub keycode: u32,
    pub scancode: u64,
}

impl Scancode {
    /// `LIRC_SCANCODE_FLAG_TOGGLE`: the toggle bit was set (RC-5, RC-6).
    pub const FLAG_TOGGLE: u16 = 1;
    /// `LIRC_SCANCODE_FLAG_REPEAT`: a repeat (NEC repeat code).
    pub const FLAG_REPEAT: u16 = 2;
    const SIZE: usize = 24;

    fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..8].copy_from_slice(&self.timestamp_ns.to_ne_bytes());
        b[8..10].copy_from_slice(&self.flags.to_ne_bytes());
        b[10..12].copy_from_slice(&self.rc_proto.to_ne_bytes());
        b[12..16].copy_from_slice(&self.keycode.to_ne_bytes());
        b[16..24].copy_from_slice(&self.scancode.to_ne_bytes());
        b
    }

    fn from_bytes(b: &[u8; Self::SIZE]) -> Scancode {
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_ne_bytes(a)
        };
        Scancode {
            timestamp_ns: u64_at(0),
            flags: u16_at(8),
            rc_proto: u16_at(10),
            keycode: u32_at(12),
            scancode: u64_at(16),
        }
    }
}

/// What failed, on which device.
#[derive(Debug, thiserror::Error)]
pub enum LircError {
    #[error("{path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    /// The device does not implement this ioctl or mode (`ENOTTY`, `EINVAL`, `ENOSYS`).
    #[error("{path}: {op} is not supported by this device ({source})")]
    Unsupported {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
}

impl LircError {
    /// A stable code for each kind of failure.
    pub fn code(&self) -> &'static str {
        match self {
            LircError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                "lirc_missing"
            }
            LircError::Open { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
                "lirc_permission"
            }
            LircError::Open { .. } => "lirc_open",
            LircError::Unsupported { .. } => "lirc_unsupported",
            LircError::Io { .. } => "lirc_io",
        }
    }
}

mod ioctls {
    // <linux/lirc.h>: every request is 'i' with a __u32 argument.
    nix::ioctl_read!(get_features, b'i', 0x00, u32);
    nix::ioctl_read!(get_send_mode, b'i', 0x01, u32);
    nix::ioctl_read!(get_rec_mode, b'i', 0x02, u32);
    nix::ioctl_read!(get_rec_resolution, b'i', 0x07, u32);
    nix::ioctl_read!(get_min_timeout, b'i', 0x08, u32);
    nix::ioctl_read!(get_max_timeout, b'i', 0x09, u32);
    nix::ioctl_write_ptr!(set_send_mode, b'i', 0x11, u32);
    nix::ioctl_write_ptr!(set_rec_mode, b'i', 0x12, u32);
    nix::ioctl_write_ptr!(set_send_carrier, b'i', 0x13, u32);
    nix::ioctl_write_ptr!(set_send_duty_cycle, b'i', 0x15, u32);
    nix::ioctl_write_ptr!(set_rec_timeout, b'i', 0x18, u32);
    nix::ioctl_read!(get_rec_timeout, b'i', 0x24, u32);
}

type RawRead = unsafe fn(nix::libc::c_int, *mut u32) -> nix::Result<nix::libc::c_int>;
type RawWrite = unsafe fn(nix::libc::c_int, *const u32) -> nix::Result<nix::libc::c_int>;

/// An open LIRC device.
#[derive(Debug)]
pub struct Lirc {
    file: File,
    path: PathBuf,
}

impl Lirc {
    /// Opens the device for sending and receiving (LIRC devices are opened read-write by
    /// `ir-ctl` too; the kernel allows several openers).
    pub fn open(path: impl AsRef<Path>) -> Result<Lirc, LircError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| LircError::Open {
                path: path.clone(),
                source,
            })?;
        Ok(Lirc { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, op: &'static str, errno: nix::errno::Errno) -> LircError {
        self.io_error(op, io::Error::from(errno))
    }

    fn read_u32(&self, op: &'static str, call: RawRead) -> Result<u32, LircError> {
        let mut value: u32 = 0;
        // SAFETY: the descriptor is open for as long as `self`; the kernel writes one u32
        // (the size encoded in the request) into `value`, which lives across the call.
        unsafe { call(self.file.as_raw_fd(), &mut value) }.map_err(|e| self.error(op, e))?;
        Ok(value)
    }

    fn write_u32(&self, op: &'static str, call: RawWrite, value: u32) -> Result<(), LircError> {
        // SAFETY: as in `read_u32`; the kernel only reads one u32 from `value`.
        unsafe { call(self.file.as_raw_fd(), &value) }.map_err(|e| self.error(op, e))?;
        Ok(())
    }

    /// `LIRC_GET_FEATURES`.
    pub fn features(&self) -> Result<Features, LircError> {
        self.read_u32("LIRC_GET_FEATURES", ioctls::get_features)
            .map(Features)
    }

    /// `LIRC_GET_SEND_MODE`, as raw mode bits.
    pub fn send_mode(&self) -> Result<u32, LircError> {
        self.read_u32("LIRC_GET_SEND_MODE", ioctls::get_send_mode)
    }

    /// `LIRC_GET_REC_MODE`, as raw mode bits.
    pub fn receive_mode(&self) -> Result<u32, LircError> {
        self.read_u32("LIRC_GET_REC_MODE", ioctls::get_rec_mode)
    }

    /// `LIRC_SET_SEND_MODE` (`Pulse` or `Scancode`).
    pub fn set_send_mode(&self, mode: Mode) -> Result<(), LircError> {
        self.write_u32("LIRC_SET_SEND_MODE", ioctls::set_send_mode, mode.bits())
    }

    /// `LIRC_SET_REC_MODE` (`Mode2` or `Scancode`).
    pub fn set_receive_mode(&self, mode: Mode) -> Result<(), LircError> {
        self.write_u32("LIRC_SET_REC_MODE", ioctls::set_rec_mode, mode.bits())
    }

    /// `LIRC_SET_SEND_CARRIER`, in Hz.
    pub fn set_send_carrier(&self, hz: u32) -> Result<(), LircError> {
        self.write_u32("LIRC_SET_SEND_CARRIER", ioctls::set_send_carrier, hz)
    }

    /// `LIRC_SET_SEND_DUTY_CYCLE`, in percent (1..=99).
    pub fn set_send_duty_cycle(&self, percent: u32) -> Result<(), LircError> {
        self.write_u32(
            "LIRC_SET_SEND_DUTY_CYCLE",
            ioctls::set_send_duty_cycle,
            percent,
        )
    }

    /// `LIRC_SET_REC_TIMEOUT`, in µs: the silence after which the receiver reports a timeout.
    pub fn set_receive_timeout(&self, us: u32) -> Result<(), LircError> {
        self.write_u32("LIRC_SET_REC_TIMEOUT", ioctls::set_rec_timeout, us)
    }

    /// `LIRC_GET_REC_TIMEOUT`, in µs.
    pub fn receive_timeout(&self) -> Result<u32, LircError> {
        self.read_u32("LIRC_GET_REC_TIMEOUT", ioctls::get_rec_timeout)
    }

    /// `LIRC_GET_MIN_TIMEOUT` and `LIRC_GET_MAX_TIMEOUT`, in µs.
    pub fn receive_timeout_range(&self) -> Result<(u32, u32), LircError> {
        Ok((
            self.read_u32("LIRC_GET_MIN_TIMEOUT", ioctls::get_min_timeout)?,
            self.read_u32("LIRC_GET_MAX_TIMEOUT", ioctls::get_max_timeout)?,
        ))
    }

    /// `LIRC_GET_REC_RESOLUTION`, in µs.
    pub fn receive_resolution(&self) -> Result<u32, LircError> {
        self.read_u32("LIRC_GET_REC_RESOLUTION", ioctls::get_rec_resolution)
    }

    /// Transmits pulse/space lengths in µs (an odd count, starting and ending with a pulse) in
    /// pulse mode; returns once the kernel has sent them.
    pub fn send_pulses(&self, durations: &[u32]) -> Result<(), LircError> {
        let bytes: Vec<u8> = durations.iter().flat_map(|d| d.to_ne_bytes()).collect();
        self.write_whole("sending pulses", &bytes)
    }

    /// Transmits a scancode in scancode mode (the kernel encodes it).
    pub fn send_scancode(&self, rc_proto: u16, scancode: u64) -> Result<(), LircError> {
        let sc = Scancode {
            timestamp_ns: 0,
            flags: 0,
            rc_proto,
            keycode: 0,
            scancode,
        };
        self.write_whole("sending a scancode", &sc.to_bytes())
    }

    fn write_whole(&self, op: &'static str, bytes: &[u8]) -> Result<(), LircError> {
        let written = (&self.file)
            .write(bytes)
            .map_err(|e| self.io_error(op, e))?;
        if written != bytes.len() {
            return Err(LircError::Io {
                path: self.path.clone(),
                op,
                source: io::Error::other(format!("wrote {written} of {} bytes", bytes.len())),
            });
        }
        Ok(())
    }

    fn io_error(&self, op: &'static str, source: io::Error) -> LircError {
        match source.raw_os_error() {
            Some(nix::libc::EINVAL | nix::libc::ENOTTY | nix::libc::ENOSYS) => {
                LircError::Unsupported {
                    path: self.path.clone(),
                    op,
                    source,
                }
            }
            _ => LircError::Io {
                path: self.path.clone(),
                op,
                source,
            },
        }
    }

    /// Waits up to `timeout` for something to read; `false` when nothing came.
    pub fn wait_readable(&self, timeout: Duration) -> Result<bool, LircError> {
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(self.error("poll", e)),
        }
    }

    /// Reads the mode2 samples available now (blocks until at least one arrives: call
    /// [`Lirc::wait_readable`] first to bound the wait).
    pub fn read_samples(&self) -> Result<Vec<Sample>, LircError> {
        let mut buf = [0u8; 4 * 256];
        let n = (&self.file)
            .read(&mut buf)
            .map_err(|e| self.io_error("reading samples", e))?;
        Ok(buf[..n - n % 4]
            .chunks_exact(4)
            .filter_map(|c| Sample::from_raw(u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
            .collect())
    }

    /// Reads the scancodes available now (in scancode receive mode; blocks like
    /// [`Lirc::read_samples`]).
    pub fn read_scancodes(&self) -> Result<Vec<Scancode>, LircError> {
        let mut buf = [0u8; Scancode::SIZE * 16];
        let n = (&self.file)
            .read(&mut buf)
            .map_err(|e| self.io_error("reading scancodes", e))?;
        Ok(buf[..n - n % Scancode::SIZE]
            .chunks_exact(Scancode::SIZE)
            .filter_map(|c| <&[u8; Scancode::SIZE]>::try_from(c).ok())
            .map(Scancode::from_bytes)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode2_samples_decode_by_their_type_byte() {
        assert_eq!(Sample::from_raw(0x0100_2328), Some(Sample::Pulse(9000)));
        assert_eq!(Sample::from_raw(0x0000_1194), Some(Sample::Space(4500)));
        assert_eq!(
            Sample::from_raw(0x0301_e848),
            Some(Sample::Timeout(125_000))
        );
        assert_eq!(
            Sample::from_raw(0x0200_8ca0),
            Some(Sample::Frequency(36_000))
        );
        assert_eq!(Sample::from_raw(0x7f00_0001), None);
    }

    #[test]
    fn scancodes_round_trip_through_their_kernel_layout() {
        let sc = Scancode {
            timestamp_ns: 7,
            flags: Scancode::FLAG_TOGGLE,
            rc_proto: 9,
            keycode: 0x160,
            scancode: 0x00ff_12ed,
        };
        assert_eq!(Scancode::from_bytes(&sc.to_bytes()), sc);
    }

    #[test]
    fn features_read_the_send_and_receive_bits() {
        // rc-loopback: pulse send, mode2 receive, carrier, duty cycle, timeout.
        let f = Features(0x0002 | (0x0004 << 16) | 0x0100 | 0x0200 | 0x1000_0000);
        assert!(f.can_send(Mode::Pulse) && !f.can_send(Mode::Scancode));
        assert!(f.can_receive(Mode::Mode2) && !f.can_receive(Mode::Pulse));
        assert!(f.can_set_send_carrier() && f.can_set_send_duty_cycle());
        assert!(f.can_set_receive_timeout());
    }

    #[test]
    fn a_missing_device_is_a_coded_error() {
        let err = Lirc::open("/dev/labwright-test-no-lirc").err();
        assert_eq!(err.map(|e| e.code()), Some("lirc_missing"));
    }
}
