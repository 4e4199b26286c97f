//! Audio capture from an ALSA PCM: a thread reads the card continuously, mixes to mono i16 and
//! keeps the last seconds in an [`AudioRing`]. `recent` reads the newest audio at once; `read`
//! waits for audio captured after it was called. Overruns (xruns) are recovered and counted; a
//! card that goes away makes the source `Unavailable` until it can be opened again.
//!
//! [`Capture`] is generic over [`PcmSource`] (`alsa_pcm::AlsaPcm` on a host, a fake in tests).

#[cfg(feature = "alsa")]
pub mod alsa_pcm;
pub mod ring;

use std::time::Duration;

use labwright_core::controller::{AudioCapture, AudioChunk, ControlError};
use serde::{Deserialize, Serialize};

pub use self::ring::{AudioRing, Span, mix_to_mono};
use crate::{
    NodeProblem,
    timestamp::epoch_now_us,
    worker::{Shared, Worker, reopen_backoff},
};

/// An audio source's settings (`[devices.settings.audio]` with `driver = "alsa"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSettings {
    /// The capture PCM, naming the card by its id: `hw:Loopback,1,0`, `hw:CARD=Device,DEV=0`,
    /// `plughw:...`.
    pub pcm: String,
    /// Sample rate; 48000 (or the nearest the card offers) when absent.
    #[serde(default)]
    pub rate: Option<u32>,
    /// Channels to capture (mixed to mono); 2 when offered, else the card's minimum.
    #[serde(default)]
    pub channels: Option<u32>,
    /// Seconds of audio kept for `recent` reads.
    #[serde(default = "default_buffer_secs")]
    pub buffer_secs: u32,
}

fn default_buffer_secs() -> u32 {
    30
}

/// What the settings ask of the card.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AudioWanted {
    pub rate: Option<u32>,
    pub channels: Option<u32>,
}

impl AudioSettings {
    /// Checks the settings on their own; every problem, each starting with its key.
    pub fn wanted(&self) -> Result<AudioWanted, Vec<String>> {
        let mut problems = Vec::new();
        if self.pcm.trim().is_empty() {
            problems.push("pcm: must name a capture PCM, e.g. hw:Loopback,1,0".to_string());
        }
        if self.rate.is_some_and(|r| !(8_000..=384_000).contains(&r)) {
            problems.push("rate: must be between 8000 and 384000".into());
        }
        if self.channels.is_some_and(|c| !(1..=32).contains(&c)) {
            problems.push("channels: must be between 1 and 32".into());
        }
        if !(1..=600).contains(&self.buffer_secs) {
            problems.push("buffer_secs: must be between 1 and 600".into());
        }
        if problems.is_empty() {
            Ok(AudioWanted {
                rate: self.rate,
                channels: self.channels,
            })
        } else {
            Err(problems)
        }
    }
}

/// The format a PCM was opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcmFormat {
    pub rate: u32,
    pub channels: u32,
}

/// A failed read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Samples were lost (overrun); recover and go on.
    Xrun,
    /// The card failed or went away.
    Node(NodeProblem),
}

/// The I/O of one capture PCM.
pub trait PcmSource: Send + 'static {
    /// The PCM's name, for messages.
    fn name(&self) -> &str;
    /// Opens the PCM for capture of interleaved S16 at a rate and channel count it offers.
    fn open(&mut self, wanted: &AudioWanted) -> Result<PcmFormat, NodeProblem>;
    /// Reads interleaved frames into `buf` (a whole number of frames); returns the frames read.
    /// Returns within about a second even when nothing arrives (then 0).
    fn read(&mut self, buf: &mut [i16]) -> Result<usize, ReadError>;
    /// Restarts capture after an overrun.
    fn recover(&mut self) -> Result<(), NodeProblem>;
    fn close(&mut self);
}

/// A read returns at most this much audio (10 ms).
const CHUNK_PER_SECOND: u32 = 100;

struct State {
    ring: AudioRing,
    unavailable: Option<String>,
    xruns: u64,
    reopened: u64,
}

/// A running capture from one PCM, implementing core's [`AudioCapture`].
pub struct Capture {
    name: String,
    format: PcmFormat,
    worker: Worker<State>,
}

impl Capture {
    /// Opens the PCM and starts capturing into a ring of `buffer_secs` seconds.
    pub fn start<S: PcmSource>(
        mut source: S,
        wanted: AudioWanted,
        buffer_secs: u32,
    ) -> Result<Self, NodeProblem> {
        let name = source.name().to_string();
        let format = source.open(&wanted)?;
        let capacity = format.rate as usize * buffer_secs.max(1) as usize;
        let state = State {
            ring: AudioRing::new(format.rate, capacity),
            unavailable: None,
            xruns: 0,
            reopened: 0,
        };
        let worker = Worker::spawn(format!("alsa {name}"), &name, state, move |shared| {
            capture_loop(source, format, &shared)
        })?;
        Ok(Self {
            name,
            format,
            worker,
        })
    }

    pub fn format(&self) -> PcmFormat {
        self.format
    }

    /// Overruns recovered so far.
    pub fn xruns(&self) -> u64 {
        self.worker.shared().lock().xruns
    }

    /// Times the PCM was reopened after going away.
    pub fn reopened(&self) -> u64 {
        self.worker.shared().lock().reopened
    }

    /// Why the source is unavailable right now, if it is.
    pub fn unavailable(&self) -> Option<String> {
        self.worker.shared().lock().unavailable.clone()
    }

    fn chunk(&self, span: Span) -> AudioChunk {
        AudioChunk {
            sample_rate: self.format.rate,
            samples: span.samples,
            started_at_us: span.started_at_us,
        }
    }

    fn samples_in(&self, duration: Duration) -> usize {
        (duration.as_micros() * u128::from(self.format.rate) / 1_000_000) as usize
    }
}

fn capture_loop<S: PcmSource>(mut source: S, format: PcmFormat, shared: &Shared<State>) {
    let name = source.name().to_string();
    let channels = format.channels.max(1) as usize;
    let frames = (format.rate / CHUNK_PER_SECOND).max(1) as usize;
    let mut interleaved = vec![0i16; frames * channels];
    let mut mono = Vec::with_capacity(frames);
    let mut open = true;
    let mut backoff = reopen_backoff();
    let lost = |why: String| shared.update(|st| st.unavailable = Some(why));
    while !shared.stopping() {
        if !open {
            // Reopen with the format the ring was made for.
            let same = AudioWanted {
                rate: Some(format.rate),
                channels: Some(format.channels),
            };
            match source.open(&same) {
                Ok(f) if f == format => {
                    open = true;
                    backoff.reset();
                    shared.update(|st| {
                        st.unavailable = None;
                        st.reopened += 1;
                    });
                    tracing::info!(pcm = %name, "audio source back");
                }
                Ok(f) => {
                    source.close();
                    lost(format!(
                        "{name}: reopened at {} Hz x {}, was {} Hz x {}",
                        f.rate, f.channels, format.rate, format.channels
                    ));
                }
                Err(e) => lost(e.to_string()),
            }
            if !open {
                shared.pause(backoff.next_delay());
                continue;
            }
        }
        match source.read(&mut interleaved) {
            Ok(0) => {}
            Ok(n) => {
                let n = n.min(frames);
                mix_to_mono(&interleaved[..n * channels], channels, &mut mono);
                shared.update(|st| st.ring.push(&mono, epoch_now_us()));
            }
            Err(ReadError::Xrun) => {
                shared.update(|st| st.xruns += 1);
                tracing::debug!(pcm = %name, "audio overrun recovered");
                if let Err(e) = source.recover() {
                    lost(e.to_string());
                    source.close();
                    open = false;
                }
            }
            Err(ReadError::Node(e)) => {
                tracing::warn!(pcm = %name, problem = %e, "audio source lost");
                lost(e.to_string());
                source.close();
                open = false;
            }
        }
    }
    source.close();
}

impl AudioCapture for Capture {
    fn read(&self, duration: Duration) -> Result<AudioChunk, ControlError> {
        let n = self.samples_in(duration);
        let shared = self.worker.shared();
        let from = shared.lock().ring.position();
        // Generous: the card delivers in real time; a stall ends as a timeout.
        let got = shared.wait_for(duration + Duration::from_secs(2), |st| {
            if let Some(why) = &st.unavailable {
                return Some(Err(ControlError::Unavailable(why.clone())));
            }
            match st.ring.since(from, n) {
                Ok(span) => span.map(Ok),
                Err(lost) => Some(Err(ControlError::Driver(format!(
                    "{}: {lost} samples overwritten before they were read",
                    self.name
                )))),
            }
        });
        match got {
            Some(r) => r.map(|span| self.chunk(span)),
            None => Err(ControlError::Timeout(format!(
                "{}: audio stopped arriving",
                self.name
            ))),
        }
    }

    fn recent(&self, duration: Duration) -> Result<AudioChunk, ControlError> {
        let st = self.worker.shared().lock();
        if let Some(why) = &st.unavailable {
            return Err(ControlError::Unavailable(why.clone()));
        }
        Ok(self.chunk(st.ring.recent(self.samples_in(duration))))
    }
}

#[cfg(test)]
mod tests;
