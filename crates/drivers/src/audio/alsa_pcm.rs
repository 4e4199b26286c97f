//! The real [`PcmSource`]: an ALSA capture PCM through the `alsa` crate, interleaved S16 at a
//! rate and channel count the card offers.

use std::path::Path;

use alsa::{
    Direction, ValueOr,
    pcm::{Access, Format, HwParams, PCM},
};

use super::{AudioWanted, PcmFormat, PcmSource, ReadError};
use crate::{NodeProblem, device_node::owning_group};

/// How long a read waits for audio before returning 0 frames.
const WAIT_MS: u32 = 500;
const DEFAULT_RATE: u32 = 48_000;

/// An ALSA capture PCM by name (`hw:Loopback,1,0`).
pub struct AlsaPcm {
    name: String,
    pcm: Option<PCM>,
}

impl AlsaPcm {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            pcm: None,
        }
    }

    fn problem(&self, e: &alsa::Error) -> NodeProblem {
        problem(&self.name, e)
    }

    /// Opening: an unknown card or device is ENOENT or ENODEV ("cannot get card index").
    fn open_problem(&self, e: &alsa::Error) -> NodeProblem {
        match problem(&self.name, e) {
            NodeProblem::Gone { path } | NodeProblem::Missing { path } => no_such_pcm(path),
            other => other,
        }
    }
}

fn no_such_pcm(path: String) -> NodeProblem {
    let cards = card_ids();
    NodeProblem::Other {
        path,
        message: format!(
            "no such card or PCM (not plugged in, or the driver is not loaded; cards: {})",
            if cards.is_empty() {
                "none".into()
            } else {
                cards.join(", ")
            }
        ),
    }
}

/// The card ids ALSA knows (`Loopback`, `PCH`), for messages.
pub fn card_ids() -> Vec<String> {
    alsa::card::Iter::new()
        .filter_map(Result::ok)
        .filter_map(|c| c.get_name().ok())
        .collect()
}

fn problem(name: &str, e: &alsa::Error) -> NodeProblem {
    let errno = e.errno();
    let p = NodeProblem::from_errno(name, Some(errno), &e.to_string());
    match p {
        NodeProblem::Missing { path } => no_such_pcm(path),
        NodeProblem::PermissionDenied { path, .. } => NodeProblem::PermissionDenied {
            path,
            // ALSA's nodes all belong to one group (`audio`).
            group: owning_group(Path::new("/dev/snd/timer")),
        },
        other => other,
    }
}

impl PcmSource for AlsaPcm {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self, wanted: &AudioWanted) -> Result<PcmFormat, NodeProblem> {
        self.pcm = None;
        let pcm =
            PCM::new(&self.name, Direction::Capture, false).map_err(|e| self.open_problem(&e))?;
        let other = |message: String| NodeProblem::Other {
            path: self.name.clone(),
            message,
        };
        let format = {
            let hw = HwParams::any(&pcm).map_err(|e| self.problem(&e))?;
            hw.set_access(Access::RWInterleaved)
                .map_err(|e| self.problem(&e))?;
            hw.set_format(Format::s16())
                .map_err(|_| other("does not offer 16-bit samples (S16)".into()))?;
            let (min_ch, max_ch) = (
                hw.get_channels_min().map_err(|e| self.problem(&e))?,
                hw.get_channels_max().map_err(|e| self.problem(&e))?,
            );
            let channels = match wanted.channels {
                Some(c) if (min_ch..=max_ch).contains(&c) => c,
                Some(c) => {
                    return Err(other(format!(
                        "{c} channels not offered (offers {min_ch} to {max_ch})"
                    )));
                }
                None => 2.clamp(min_ch, max_ch),
            };
            hw.set_channels(channels).map_err(|e| self.problem(&e))?;
            let (min_rate, max_rate) = (
                hw.get_rate_min().map_err(|e| self.problem(&e))?,
                hw.get_rate_max().map_err(|e| self.problem(&e))?,
            );
            let rate = match wanted.rate {
                Some(r) => {
                    hw.set_rate(r, ValueOr::Nearest).map_err(|_| {
                        other(format!(
                            "rate {r} Hz not offered (offers {min_rate} to {max_rate} Hz)"
                        ))
                    })?;
                    r
                }
                None => hw
                    .set_rate_near(DEFAULT_RATE, ValueOr::Nearest)
                    .map_err(|e| self.problem(&e))?,
            };
            // 10 ms periods, half a second of buffer: room for a busy host.
            let _ = hw.set_period_size_near(i64::from(rate / 100).max(1), ValueOr::Nearest);
            let _ = hw.set_buffer_size_near(i64::from(rate / 2).max(2));
            pcm.hw_params(&hw).map_err(|e| self.problem(&e))?;
            PcmFormat { rate, channels }
        };
        pcm.prepare().map_err(|e| self.problem(&e))?;
        pcm.start().map_err(|e| self.problem(&e))?;
        self.pcm = Some(pcm);
        Ok(format)
    }

    fn read(&mut self, buf: &mut [i16]) -> Result<usize, ReadError> {
        let Some(pcm) = self.pcm.as_ref() else {
            return Err(ReadError::Node(NodeProblem::Other {
                path: self.name.clone(),
                message: "not open".into(),
            }));
        };
        let classify = |e: alsa::Error| {
            let errno = e.errno();
            if errno == nix::errno::Errno::EPIPE as i32
                || errno == nix::errno::Errno::ESTRPIPE as i32
            {
                ReadError::Xrun
            } else {
                ReadError::Node(problem(&self.name, &e))
            }
        };
        match pcm.wait(Some(WAIT_MS)) {
            Ok(false) => return Ok(0),
            Ok(true) => {}
            Err(e) => return Err(classify(e)),
        }
        let io = pcm.io_i16().map_err(classify)?;
        match io.readi(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.errno() == nix::errno::Errno::EAGAIN as i32 => Ok(0),
            Err(e) => Err(classify(e)),
        }
    }

    fn recover(&mut self) -> Result<(), NodeProblem> {
        let Some(pcm) = self.pcm.as_ref() else {
            return Ok(());
        };
        pcm.prepare().map_err(|e| self.problem(&e))?;
        pcm.start().map_err(|e| self.problem(&e))
    }

    fn close(&mut self) {
        self.pcm = None;
    }
}
