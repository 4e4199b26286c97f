//! The wired box: core's [`SimulatedStb`] on the real clock, in its own process, talking only
//! through kernel devices, the way a real set-top box on a bench is wired to a lab host:
//!
//! - **video** ([`video`]): every frame is written to a V4L2 *output* node (vivid's HDMI output,
//!   looped by vivid into the capture node the agent's V4L2 driver reads);
//! - **IR** ([`ir`]): pulses received on a LIRC node (rc-loopback, on which the agent's remote
//!   transmits) are decoded by the drivers' IR decoders and named through a key map, the same
//!   file the agent's remote sends from;
//! - **mains** ([`power`]): the level of a GPIO line the agent's relay drives (read from the
//!   simulated chip's side, gpio-sim's `sim_gpioN/value`): off is black and silent, on boots;
//! - **sound** ([`audio`]): the box's audio is played into an ALSA PCM (snd-aloop's playback
//!   side), sample-exact and seamless;
//! - **console** ([`console`]): a boot log and a `login:` prompt on a tty at every boot (the USB
//!   CDC-ACM gadget's `/dev/ttyGS0`, read by the agent on `/dev/ttyACM0`), and a small shell.
//!
//! Nothing of the box is on the agent's side: it sees a plain `composite` device.
//! Each part runs on its own thread; a part whose device fails keeps retrying, the others go on.

pub mod audio;
pub mod console;
pub mod ir;
pub mod power;
pub mod video;

use std::{path::PathBuf, sync::Arc, thread, time::Duration};

use labwright_core::{
    controller::{PowerControl, PowerState},
    sim::{SimConfig, SimulatedStb},
};

/// Which kernel devices the box is wired to; every part is optional.
#[derive(Clone, Debug, Default)]
pub struct Wiring {
    pub video: Option<PathBuf>,
    pub lirc: Option<PathBuf>,
    pub keymap: Option<PathBuf>,
    pub power: Option<PathBuf>,
    pub power_active_low: bool,
    pub audio: Option<String>,
    pub console: Option<PathBuf>,
}

/// Why the box could not start, with a stable code per part.
#[derive(Debug, thiserror::Error)]
pub enum WiredError {
    #[error("video output {0}")]
    Video(String),
    #[error("ir {0}")]
    Ir(String),
    #[error("keymap {0}")]
    KeyMap(String),
    #[error("power line {0}")]
    Power(String),
    #[error("audio output {0}")]
    Audio(String),
    #[error("console {0}")]
    Console(String),
    #[error("the simulated box: {0}")]
    Sim(String),
}

impl WiredError {
    pub fn code(&self) -> &'static str {
        match self {
            WiredError::Video(_) => "wired.video",
            WiredError::Ir(_) => "wired.ir",
            WiredError::KeyMap(_) => "wired.keymap",
            WiredError::Power(_) => "wired.power",
            WiredError::Audio(_) => "wired.audio",
            WiredError::Console(_) => "wired.console",
            WiredError::Sim(_) => "wired.sim",
        }
    }
}

/// How long a part whose device failed waits before opening it again.
pub(crate) const REOPEN: Duration = Duration::from_secs(1);

/// Opens every wired device (failing with the first problem), then runs the box until the
/// process is killed.
pub fn run(wiring: Wiring) -> Result<(), WiredError> {
    let stb = Arc::new(
        SimulatedStb::new(SimConfig::default()).map_err(|e| WiredError::Sim(e.to_string()))?,
    );
    let boot_ms = stb.config().boot_ms;
    // Everything is opened before the box reacts to anything, so a wiring mistake is a start
    // error naming the device.
    let video = wiring
        .video
        .as_deref()
        .map(video::VideoOut::open)
        .transpose()?;
    let receiver = match (&wiring.lirc, &wiring.keymap) {
        (Some(lirc), Some(keymap)) => Some(ir::KeyReceiver::open(lirc, keymap)?),
        (Some(_), None) => return Err(WiredError::KeyMap("is needed to receive IR".into())),
        _ => None,
    };
    let mains = wiring
        .power
        .as_deref()
        .map(|p| power::MainsLine::open(p, wiring.power_active_low))
        .transpose()?;
    let audio = wiring
        .audio
        .as_deref()
        .map(audio::AudioOut::open)
        .transpose()?;
    let console = wiring
        .console
        .as_deref()
        .map(|p| console::Console::open(p, boot_ms))
        .transpose()?;

    let mut threads = Vec::new();
    if let Some(line) = mains {
        let stb = Arc::clone(&stb);
        // Unpowered until the line says otherwise.
        let _ = stb.set(PowerState::Off);
        threads.push(spawn("power", move || {
            line.run(|on| {
                let _ = stb.set(if on { PowerState::On } else { PowerState::Off });
            })
        })?);
    }
    if let Some(console) = console {
        let stb = Arc::clone(&stb);
        threads.push(spawn("console", move || console.run(&stb))?);
    }
    if let Some(video) = video {
        let stb = Arc::clone(&stb);
        threads.push(spawn("video", move || video.run(&stb))?);
    }
    if let Some(receiver) = receiver {
        let stb = Arc::clone(&stb);
        threads.push(spawn("ir", move || receiver.run(&*stb))?);
    }
    if let Some(audio) = audio {
        let stb = Arc::clone(&stb);
        threads.push(spawn("audio", move || audio.run(&stb))?);
    }
    tracing::info!(parts = threads.len(), "wired box running");
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn spawn(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<thread::JoinHandle<()>, WiredError> {
    thread::Builder::new()
        .name(format!("wired-{name}"))
        .spawn(f)
        .map_err(|e| WiredError::Sim(format!("{name} thread: {e}")))
}
