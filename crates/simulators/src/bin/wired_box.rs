//! `labwright-wired-box`: the simulated set-top box wired like a real one (see
//! `labwright_simulators::wired_box`). Runs until killed.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use labwright_service::telemetry::{self, LogFormat};
use labwright_simulators::wired_box::{self, Wiring};

#[derive(Parser)]
#[command(
    name = "labwright-wired-box",
    version,
    about = "The simulated set-top box as a separate process wired through kernel devices: \
             video out to a V4L2 output node, IR in from LIRC, mains from a GPIO line, sound \
             out to ALSA, a serial console on a tty; each part is optional"
)]
struct Args {
    /// V4L2 output node the box writes its frames to (RGB24 at 1280x720), e.g. /dev/video1.
    #[arg(long)]
    video: Option<PathBuf>,
    /// LIRC node the box receives IR from, e.g. /dev/lirc0 (needs --keymap).
    #[arg(long, requires = "keymap")]
    lirc: Option<PathBuf>,
    /// Key map file (TOML `[keys]`, as the agent's remote uses): what each key's IR code is.
    #[arg(long)]
    keymap: Option<PathBuf>,
    /// File whose first character is the mains level: `1` powered, `0` off (e.g. gpio-sim's
    /// `/sys/devices/platform/gpio-sim.0/gpiochip0/sim_gpio5/value`). Without it the box is
    /// always powered.
    #[arg(long)]
    power: Option<PathBuf>,
    /// The power line is active low (`0` powered).
    #[arg(long, requires = "power")]
    power_active_low: bool,
    /// ALSA PCM the box plays its sound into (S16, 48 kHz, stereo), e.g. hw:Loopback,0,0.
    #[arg(long)]
    audio: Option<String>,
    /// Serial tty of the box's console (boot log and login prompt), e.g. /dev/ttyGS0.
    #[arg(long)]
    console: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init(LogFormat::Text);
    let wiring = Wiring {
        video: args.video,
        lirc: args.lirc,
        keymap: args.keymap,
        power: args.power,
        power_active_low: args.power_active_low,
        audio: args.audio,
        console: args.console,
    };
    match wired_box::run(wiring) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("labwright-wired-box: error [{}]: {e}", e.code());
            ExitCode::from(2)
        }
    }
}
