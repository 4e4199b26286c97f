//! The kernel's LIRC device (`/dev/lircN`) as an [`IrTransport`], through the safe API of
//! `labwright-lirc-ioctl`: pulses in pulse mode with the carrier set by ioctl, scancodes in
//! scancode mode, mode2 samples when receiving.

use std::{path::Path, time::Duration};

use labwright_lirc_ioctl::{Lirc, LircError, Mode, Sample as LircSample};

use super::{Code, IrError, IrFeatures, IrTransport, Sample};
use crate::NodeProblem;

/// An open LIRC device.
pub struct LircDevice {
    lirc: Lirc,
    send_mode: Option<Mode>,
}

fn error(e: LircError) -> IrError {
    match e {
        LircError::Unsupported { .. } => IrError::Unsupported(e.to_string()),
        // Missing, permission (naming the group to join), busy, gone: as every driver says it.
        LircError::Open { path, source } => {
            IrError::Device(NodeProblem::from_io(&path.display().to_string(), &source).to_string())
        }
        other => IrError::Device(other.to_string()),
    }
}

impl LircDevice {
    pub fn open(path: &Path) -> Result<LircDevice, IrError> {
        Ok(LircDevice {
            lirc: Lirc::open(path).map_err(error)?,
            send_mode: None,
        })
    }

    fn send_mode(&mut self, mode: Mode) -> Result<(), IrError> {
        if self.send_mode != Some(mode) {
            self.lirc.set_send_mode(mode).map_err(error)?;
            self.send_mode = Some(mode);
        }
        Ok(())
    }
}

impl IrTransport for LircDevice {
    fn features(&mut self) -> Result<IrFeatures, IrError> {
        let f = self.lirc.features().map_err(error)?;
        Ok(IrFeatures {
            send_pulses: f.can_send(Mode::Pulse),
            // The kernel encodes scancodes into pulses for every device that sends pulses
            // (it does not advertise LIRC_CAN_SEND_SCANCODE); the protocol's encoder module
            // must be loaded, or the write fails with EINVAL.
            send_scancodes: f.can_send(Mode::Scancode) || f.can_send(Mode::Pulse),
            receive_samples: f.can_receive(Mode::Mode2),
            set_carrier: f.can_set_send_carrier(),
            set_duty_cycle: f.can_set_send_duty_cycle(),
        })
    }

    fn set_carrier(&mut self, hz: u32) -> Result<(), IrError> {
        self.lirc.set_send_carrier(hz).map_err(error)
    }

    fn set_duty_cycle(&mut self, percent: u32) -> Result<(), IrError> {
        self.lirc.set_send_duty_cycle(percent).map_err(error)
    }

    fn send_pulses(&mut self, durations: &[u32]) -> Result<(), IrError> {
        self.send_mode(Mode::Pulse)?;
        self.lirc.send_pulses(durations).map_err(error)
    }

    fn send_scancode(&mut self, code: Code) -> Result<(), IrError> {
        let proto = code.protocol.rc_proto().ok_or_else(|| {
            IrError::Unsupported(format!("the kernel has no encoder for {}", code.protocol))
        })?;
        self.send_mode(Mode::Scancode)?;
        self.lirc.send_scancode(proto, code.scancode).map_err(error)
    }

    fn start_receiving(&mut self) -> Result<(), IrError> {
        self.lirc.set_receive_mode(Mode::Mode2).map_err(error)
    }

    fn receive(&mut self, wait: Duration) -> Result<Vec<Sample>, IrError> {
        if !self.lirc.wait_readable(wait).map_err(error)? {
            return Ok(Vec::new());
        }
        Ok(self
            .lirc
            .read_samples()
            .map_err(error)?
            .into_iter()
            .filter_map(|s| match s {
                LircSample::Pulse(d) => Some(Sample::Pulse(d)),
                LircSample::Space(d) => Some(Sample::Space(d)),
                // Lost samples end the frame as a timeout does.
                LircSample::Timeout(_) | LircSample::Overflow(_) => Some(Sample::Timeout),
                LircSample::Frequency(_) => None,
            })
            .collect())
    }
}
