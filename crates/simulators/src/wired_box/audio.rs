//! The box's sound out: its audio played into an ALSA PCM (snd-aloop's playback side in the
//! rig) as S16 stereo at 48 kHz, both channels the box's mono signal. Sample-exact and seamless:
//! every [`PERIOD`] the samples from the last one written up to now are taken from the box
//! (`SimulatedStb::audio_until_now`) and written, [`LEAD`] of silence ahead keeping the device
//! from running dry; an underrun is recovered and the lead written again.

use std::{thread, time::Duration};

use alsa::{
    Direction, ValueOr,
    pcm::{Access, Format, HwParams, PCM},
};
use labwright_core::sim::{SAMPLE_RATE, SimulatedStb};

use super::{REOPEN, WiredError};

/// How often samples are written.
pub const PERIOD: Duration = Duration::from_millis(20);
/// Silence written ahead at start and after an underrun.
pub const LEAD: Duration = Duration::from_millis(100);
/// The device buffer.
const BUFFER: Duration = Duration::from_millis(400);

pub struct AudioOut {
    name: String,
    pcm: PCM,
}

fn frames(d: Duration) -> i64 {
    (d.as_millis() as i64) * i64::from(SAMPLE_RATE) / 1000
}

fn open_pcm(name: &str) -> Result<PCM, String> {
    let pcm = PCM::new(name, Direction::Playback, false).map_err(|e| e.to_string())?;
    {
        let hw = HwParams::any(&pcm).map_err(|e| e.to_string())?;
        hw.set_access(Access::RWInterleaved)
            .map_err(|e| format!("interleaved access: {e}"))?;
        hw.set_format(Format::s16())
            .map_err(|e| format!("S16: {e}"))?;
        hw.set_channels(2).map_err(|e| format!("2 channels: {e}"))?;
        hw.set_rate(SAMPLE_RATE, ValueOr::Nearest)
            .map_err(|e| format!("{SAMPLE_RATE} Hz: {e}"))?;
        hw.set_buffer_size_near(frames(BUFFER))
            .map_err(|e| format!("buffer: {e}"))?;
        hw.set_period_size_near(frames(PERIOD), ValueOr::Nearest)
            .map_err(|e| format!("period: {e}"))?;
        pcm.hw_params(&hw).map_err(|e| e.to_string())?;
    }
    Ok(pcm)
}

/// The box's mono samples as interleaved stereo.
pub fn stereo(mono: &[i16]) -> Vec<i16> {
    mono.iter().flat_map(|s| [*s, *s]).collect()
}

impl AudioOut {
    pub fn open(name: &str) -> Result<AudioOut, WiredError> {
        let pcm = open_pcm(name).map_err(|e| WiredError::Audio(format!("{name}: {e}")))?;
        Ok(AudioOut {
            name: name.to_string(),
            pcm,
        })
    }

    fn write(&self, interleaved: &[i16]) -> Result<(), alsa::Error> {
        let io = self.pcm.io_i16()?;
        let mut done = 0;
        while done < interleaved.len() {
            match io.writei(&interleaved[done..]) {
                Ok(n) => done += n * 2,
                Err(e) => {
                    self.pcm.try_recover(e, true)?;
                    tracing::debug!("audio underrun recovered");
                    // Ahead again after the gap.
                    io.writei(&vec![0; frames(LEAD) as usize * 2])?;
                }
            }
        }
        Ok(())
    }

    /// Plays the box's sound forever; a failed device is reopened.
    pub fn run(mut self, stb: &SimulatedStb) {
        let mut next = None;
        let mut lead = true;
        loop {
            if lead {
                let _ = self.write(&vec![0; frames(LEAD) as usize * 2]);
                lead = false;
                next = None;
            }
            let (mono, after) = stb.audio_until_now(next);
            next = Some(after);
            if let Err(e) = self.write(&stereo(&mono)) {
                tracing::warn!(pcm = %self.name, error = %e, "audio write failed");
                thread::sleep(REOPEN);
                match open_pcm(&self.name) {
                    Ok(p) => {
                        self.pcm = p;
                        lead = true;
                    }
                    Err(e) => tracing::warn!(error = %e, "audio output not back yet"),
                }
                continue;
            }
            thread::sleep(PERIOD);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_goes_to_both_channels() {
        assert_eq!(stereo(&[1, -2, 3]), vec![1, 1, -2, -2, 3, 3]);
        assert_eq!(frames(LEAD), 4800);
    }
}
