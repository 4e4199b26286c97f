//! The simulated set-top box: a [`Device`] with a remote, 1280x720 video, power and audio that
//! behaves like a real box, for demos, CI and training.
//!
//! It has a serial console (`console`: boot log, a line per key, channel and power change, an
//! echoing login and tiny shell).
//!
//! It shows a Home grid (Live TV, Guide, Recordings, Apps, Settings, Search, Music, Help) with a
//! focus ring, a Settings list, simple pages, and a Live TV player whose moving picture, channel
//! banner and test tone (440 Hz + 110 Hz per channel above 1, 48 kHz mono) depend on the channel.
//! Keys take effect after a configurable delay; zapping shows black for a configurable time;
//! power on shows a boot screen. Faults ([`Fault`]) can be injected at run time or from the config.
//!
//! **Determinism:** the box is a pure function of its config and the times at which things happen
//! ([`state`] replays key presses and timers in time order). With a [`ManualClock`](crate::clock::ManualClock) the same key
//! sequence at the same times gives bit-identical frames and samples, and tests jump over seconds
//! without sleeping. [`SystemClock`](crate::clock::SystemClock) is the real-time default.
//!
//! **Video:** `grab` renders the state at "now". The frame's `seq` increases only when the content
//! changes: menus are static (same `seq`) until something happens or the clock minute turns; the
//! player produces a new frame each tick of `fps`. `captured_at_us` is the time of the grab.
//!
//! **Audio:** `read(d)` blocks for `d` on the box's clock (instantly on a [`ManualClock`](crate::clock::ManualClock)), then
//! returns the samples of exactly that window, synthesised from a log of what the box was playing,
//! so a zap or mute in the middle of a read shows up at the right sample.

mod audio;
mod canvas;
mod config;
mod console;
mod font;
pub mod layout;
mod lineup;
pub mod phone;
mod render;
mod state;

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use serde::{Deserialize, Serialize};

pub use self::{
    audio::SAMPLE_RATE,
    config::{FaultConfig, MAX_CHANNELS, SimConfig},
    console::{KERNEL_VERSION, MAX_HELD_LINES, MAX_INPUT},
    lineup::{channel_name, programme, tone_hz},
    state::{
        ActiveFaults, DIGIT_TIMEOUT_MS, HOME_TILES, MAX_PENDING_KEYS, REBOOT_BLACK_MS,
        SETTINGS_ITEMS, Screen,
    },
};
use self::{
    render::{Renderer, Scene},
    state::{Machine, Press},
};
use crate::{
    clock::{Clock, SystemClock},
    controller::{
        AudioCapture, AudioChunk, Console, ConsoleRead, ControlError, Device, Key, PowerControl,
        PowerState, RemoteControl, VideoCapture,
    },
    frame::Frame,
    validate::ValidationError,
};

/// Longest audio capture one `read` accepts.
pub const MAX_AUDIO_READ: Duration = Duration::from_secs(60);

/// A fault injected into a running box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The video output freezes on the frame shown now: every grab returns that frame (same
    /// pixels, same `seq`) until faults are cleared. The box itself keeps running: keys are still
    /// handled and audio still plays.
    Frozen,
    /// The next `count` key presses are lost, as if the IR signal never arrived. Adds to presses
    /// still to be lost. Power control is not affected.
    DropKeys { count: u32 },
    /// Every key press from now on takes `extra_ms` longer to take effect (on top of
    /// `key_delay_ms`). Replaces the previous value; 0 turns it off.
    Slow { extra_ms: u64 },
    /// The box reboots now: black for [`REBOOT_BLACK_MS`], boot screen for `boot_ms`, then Home.
    /// Pending key presses are lost. A box that is off just boots. This is an event, not a state:
    /// there is nothing to clear.
    Reboot,
}

/// A snapshot of the box for tests and the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimStatus {
    pub screen: Screen,
    /// Index of the focused Home tile (row by row) or Settings item.
    pub focus_index: Option<usize>,
    /// Name of the focused Home tile or Settings item.
    pub focused_item: Option<String>,
    /// The channel playing (or being tuned, or last watched).
    pub channel: u32,
    pub volume: u8,
    pub muted: bool,
    pub faults: ActiveFaults,
}

struct Rendered {
    scene: Scene,
    rgb: Arc<[u8]>,
    seq: u64,
}

struct Inner {
    machine: Machine,
    last: Option<Rendered>,
    /// Frames the box's output has delivered (one per `fps` tick, none while frozen) up to
    /// `counted_at_us`: what a capture card's frame counter would show.
    delivered: u64,
    counted_at_us: u64,
}

/// A simulated set-top box. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct SimulatedStb {
    config: SimConfig,
    clock: Arc<dyn Clock>,
    renderer: Renderer,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SimulatedStb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedStb")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl SimulatedStb {
    /// A box running on the host's clock, powered on and showing Home.
    pub fn new(config: SimConfig) -> Result<Self, ValidationError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A box running on `clock` (a [`ManualClock`](crate::clock::ManualClock) for deterministic tests).
    pub fn with_clock(config: SimConfig, clock: Arc<dyn Clock>) -> Result<Self, ValidationError> {
        config.validate()?;
        let started_us = clock.now_us();
        let machine = Machine::new(&config, started_us);
        let renderer = Renderer::new(&config.box_name, config.channels);
        Ok(Self {
            config,
            clock,
            renderer,
            inner: Mutex::new(Inner {
                machine,
                last: None,
                delivered: 0,
                counted_at_us: started_us,
            }),
        })
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The box's state, brought up to date with the clock.
    fn lock_now(&self) -> MutexGuard<'_, Inner> {
        let now = self.clock.now_us();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.machine.advance(now);
        inner
    }

    pub fn inject(&self, fault: Fault) {
        match fault {
            Fault::Frozen => {
                // Freeze what is on screen now, not whatever was grabbed last.
                let _ = self.frame();
                self.lock_now().machine.faults.frozen = true;
            }
            Fault::DropKeys { count } => {
                let mut inner = self.lock_now();
                inner.machine.faults.drop_keys =
                    inner.machine.faults.drop_keys.saturating_add(count);
            }
            Fault::Slow { extra_ms } => {
                self.lock_now().machine.faults.slow_ms = extra_ms.min(60_000)
            }
            Fault::Reboot => {
                let mut inner = self.lock_now();
                let now = inner.machine.now_us();
                inner.machine.reboot(now);
            }
        }
    }

    /// Ends every fault: video runs again, no more lost keys, normal reaction time.
    pub fn clear_faults(&self) {
        self.lock_now().machine.faults = ActiveFaults::default();
    }

    pub fn faults(&self) -> ActiveFaults {
        self.lock_now().machine.faults
    }

    pub fn current_screen(&self) -> Screen {
        self.lock_now().machine.screen()
    }

    /// Name of the focused Home tile or Settings item (`None` on other screens).
    pub fn focused_item(&self) -> Option<&'static str> {
        self.lock_now().machine.focus().map(|(_, name)| name)
    }

    /// Index of the focused Home tile (row by row) or Settings item.
    pub fn focus_index(&self) -> Option<usize> {
        self.lock_now().machine.focus().map(|(i, _)| i)
    }

    /// The channel playing (or being tuned, or last watched).
    pub fn current_channel(&self) -> u32 {
        self.lock_now().machine.channel
    }

    pub fn status(&self) -> SimStatus {
        let inner = self.lock_now();
        let m = &inner.machine;
        SimStatus {
            screen: m.screen(),
            focus_index: m.focus().map(|(i, _)| i),
            focused_item: m.focus().map(|(_, n)| n.to_string()),
            channel: m.channel,
            volume: m.volume,
            muted: m.muted,
            faults: m.faults,
        }
    }

    /// What the box played from absolute sample `from` (sample `i` is at `i / SAMPLE_RATE` s
    /// after the Unix epoch) up to now, without waiting, and the number of the next sample: for
    /// a process that plays the box's sound out through a real audio device one window after
    /// another, seamlessly. `None` starts now (no samples). At most [`MAX_AUDIO_READ`] of
    /// samples: an older `from` starts at that limit.
    pub fn audio_until_now(&self, from: Option<u64>) -> (Vec<i16>, u64) {
        let inner = self.lock_now();
        let end = audio::first_sample_at(inner.machine.now_us());
        let oldest = end.saturating_sub(MAX_AUDIO_READ.as_secs() * u64::from(SAMPLE_RATE));
        let first = from.unwrap_or(end).clamp(oldest, end);
        let n = usize::try_from(end - first).unwrap_or(0);
        (audio::synthesize(inner.machine.audio_log(), first, n), end)
    }

    /// The frame for now: re-rendered only when the scene changed, and not at all while frozen.
    fn frame(&self) -> Frame {
        let (scene, now) = {
            let inner = self.lock_now();
            let now = inner.machine.now_us();
            if let Some(last) = &inner.last
                && inner.machine.faults.frozen
            {
                return self.to_frame(last, now);
            }
            let scene = Scene::of(&inner.machine, now, self.config.fps);
            if let Some(last) = inner.last.as_ref().filter(|l| l.scene == scene) {
                return self.to_frame(last, now);
            }
            (scene, now)
        };
        // Render without holding the lock, so key presses never wait for pixels.
        let rgb: Arc<[u8]> = self.renderer.render(&scene).into();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = match &inner.last {
            Some(last) if last.scene == scene => return self.to_frame(last, now),
            Some(last) => last.seq + 1,
            None => 0,
        };
        let rendered = Rendered { scene, rgb, seq };
        let frame = self.to_frame(&rendered, now);
        inner.last = Some(rendered);
        frame
    }

    fn to_frame(&self, r: &Rendered, now: u64) -> Frame {
        Frame {
            width: layout::WIDTH,
            height: layout::HEIGHT,
            rgb: Arc::clone(&r.rgb),
            captured_at_us: now,
            seq: r.seq,
        }
    }
}

impl RemoteControl for SimulatedStb {
    /// Queues the key; the box reacts after `key_delay_ms` (+ the `slow` fault). Returns at once,
    /// like an IR blaster: a press lost to `drop_keys` still returns `Ok`. Fails only when
    /// [`MAX_PENDING_KEYS`] presses are already waiting.
    fn press(&self, key: Key) -> Result<(), ControlError> {
        let now = self.clock.now_us();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match inner.machine.press(now, key) {
            Press::Queued | Press::Dropped => Ok(()),
            Press::BufferFull => Err(ControlError::Unavailable(format!(
                "key buffer full ({MAX_PENDING_KEYS} presses pending)"
            ))),
        }
    }

    /// The simulated box has no long-press actions: a long press is a press.
    fn long_press(&self, key: Key, _hold: Duration) -> Result<(), ControlError> {
        self.press(key)
    }
}

impl VideoCapture for SimulatedStb {
    fn grab(&self) -> Result<Frame, ControlError> {
        Ok(self.frame())
    }

    fn resolution(&self) -> (u32, u32) {
        (layout::WIDTH, layout::HEIGHT)
    }

    /// One frame per `fps` tick, like the HDMI output of a real box, whatever is on screen; none
    /// while the picture is frozen.
    fn delivered(&self) -> Option<u64> {
        let tick = 1_000_000 / u64::from(self.config.fps.max(1));
        let mut inner = self.lock_now();
        let now = inner.machine.now_us();
        if inner.machine.faults.frozen {
            inner.counted_at_us = now;
        } else {
            let ticks = now.saturating_sub(inner.counted_at_us) / tick;
            inner.delivered += ticks;
            inner.counted_at_us += ticks * tick;
        }
        Some(inner.delivered)
    }
}

impl PowerControl for SimulatedStb {
    /// Mains power: off at once (black, silent), on with the boot sequence.
    fn set(&self, state: PowerState) -> Result<(), ControlError> {
        let mut inner = self.lock_now();
        let now = inner.machine.now_us();
        inner.machine.set_power(now, state == PowerState::On);
        Ok(())
    }

    fn state(&self) -> Result<PowerState, ControlError> {
        Ok(if self.lock_now().machine.is_on() {
            PowerState::On
        } else {
            PowerState::Off
        })
    }

    fn cycle(&self, off_for: Duration) -> Result<(), ControlError> {
        self.set(PowerState::Off)?;
        self.clock.sleep(off_for);
        self.set(PowerState::On)
    }
}

impl AudioCapture for SimulatedStb {
    /// Blocks for `duration` on the box's clock, then returns the samples of that window.
    fn read(&self, duration: Duration) -> Result<AudioChunk, ControlError> {
        if duration > MAX_AUDIO_READ {
            return Err(ControlError::Invalid(format!(
                "audio reads are limited to {} s",
                MAX_AUDIO_READ.as_secs()
            )));
        }
        let start = self.lock_now().machine.now_us();
        self.clock.sleep(duration);
        let duration_us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let first = audio::first_sample_at(start);
        let n = (u128::from(duration_us) * u128::from(SAMPLE_RATE) / 1_000_000) as usize;
        let end = audio::sample_time_us(first + n as u64);
        let mut inner = self.lock_now();
        inner.machine.advance(end);
        let samples = audio::synthesize(inner.machine.audio_log(), first, n);
        Ok(AudioChunk {
            sample_rate: SAMPLE_RATE,
            samples,
            started_at_us: audio::sample_time_us(first),
        })
    }
}

/// How often a console `wait` looks for new output (on the box's clock).
const CONSOLE_POLL: Duration = Duration::from_millis(20);

impl Console for SimulatedStb {
    /// Typed into the box's UART: echoed and answered at the prompt; dropped while the box is
    /// off or booting.
    fn send(&self, data: &[u8]) -> Result<(), ControlError> {
        let mut inner = self.lock_now();
        let now = inner.machine.now_us();
        inner.machine.console.input(now, data);
        Ok(())
    }

    fn read_since(&self, from: u64) -> Result<ConsoleRead, ControlError> {
        Ok(self.lock_now().machine.console.read_since(from))
    }

    fn wait(&self, from: u64, timeout: Duration) -> Result<bool, ControlError> {
        let received = self.lock_now().machine.console.received();
        let deadline = self
            .clock
            .now_us()
            .saturating_add(u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX));
        loop {
            let (news, due) = {
                let inner = self.lock_now();
                let c = &inner.machine.console;
                (c.has_news(from, received), c.next_due())
            };
            if news {
                return Ok(true);
            }
            let now = self.clock.now_us();
            if now >= deadline {
                return Ok(false);
            }
            // Sleep to the next scheduled line when it is closer than a poll (exact on a
            // manual clock), never past the deadline.
            let mut pause = CONSOLE_POLL.min(Duration::from_micros(deadline - now));
            if let Some(due) = due.filter(|d| *d > now) {
                pause = pause.min(Duration::from_micros(due - now));
            }
            self.clock.sleep(pause.max(Duration::from_micros(1)));
        }
    }
}

impl Device for SimulatedStb {
    fn remote(&self) -> Option<&dyn RemoteControl> {
        Some(self)
    }
    fn video(&self) -> Option<&dyn VideoCapture> {
        Some(self)
    }
    fn power(&self) -> Option<&dyn PowerControl> {
        Some(self)
    }
    fn audio(&self) -> Option<&dyn AudioCapture> {
        Some(self)
    }
    fn console(&self) -> Option<&dyn Console> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
