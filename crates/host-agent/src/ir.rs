//! `host-agent ir`: IR tools for lab technicians, on this host's LIRC devices: send a key (from
//! a key map), a scancode or raw timings; print what a receiver decodes; print the pulses a code
//! encodes to (in `ir-ctl`'s text format, so the two tools' outputs compare directly); press a
//! configured device's keys through its remote, exactly as a test step does.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use labwright_core::controller::Key;
use labwright_drivers::ir::{
    self, Code, IrReceiver, IrSender, IrTransport, KeyCode, KeyMap, Received,
    encode::{encode, repeat},
    lirc::LircDevice,
    remote::SendMode,
};
use labwright_service::Settings;

#[derive(Args)]
pub struct IrArgs {
    #[command(subcommand)]
    command: IrCommand,
}

#[derive(Subcommand)]
enum IrCommand {
    /// Send keys (names in --keymap), codes (`nec:0x0408`, as ir-ctl's --scancode) or raw
    /// timings (`raw:+9000 -4500 +563`), one press each, in order.
    Send {
        /// The LIRC device.
        #[arg(long, short, default_value = "/dev/lirc0")]
        device: PathBuf,
        /// Key map (TOML, `[keys]`) naming the keys.
        #[arg(long, short)]
        keymap: Option<PathBuf>,
        /// Repeat frames after each press (a held key: NEC repeat codes, the same toggle).
        #[arg(long, default_value_t = 0)]
        repeat: u32,
        /// Let the kernel encode the scancodes (devices with a scancode encoder).
        #[arg(long)]
        scancode_mode: bool,
        /// Carrier duty cycle in percent.
        #[arg(long)]
        duty_cycle: Option<u32>,
        #[arg(required = true)]
        what: Vec<String>,
    },
    /// Print each frame received, decoded (`nec:0x408`, `rc5:0x1e01 toggle`, `repeat
    /// nec:0x408`, or `raw +… -…` when no protocol matches). Prints `listening on DEVICE` to
    /// stderr once receiving.
    Receive {
        #[arg(long, short, default_value = "/dev/lirc0")]
        device: PathBuf,
        /// Stop after this many frames (default: never).
        #[arg(long, short)]
        count: Option<usize>,
        /// Give up after this many seconds (exit status 1 if --count frames did not come).
        #[arg(long, short)]
        timeout: Option<u64>,
        /// Print every frame's timings too.
        #[arg(long)]
        timings: bool,
    },
    /// Press keys of a configured device (`--config`) through its remote control, as test
    /// steps do (a composite device's `[settings.remote]`).
    Press {
        /// The device's id in the configuration.
        #[arg(long)]
        device: String,
        /// Hold each key this long (a long press).
        #[arg(long)]
        hold_ms: Option<u64>,
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Print the pulse/space timings of codes (one line per frame, ir-ctl's `+pulse -space`).
    Encode {
        /// Repeat frames after each code.
        #[arg(long, default_value_t = 0)]
        repeat: u32,
        /// The toggle bit (RC-5, RC-6).
        #[arg(long)]
        toggle: bool,
        #[arg(required = true)]
        code: Vec<String>,
    },
}

fn key_code(text: &str, keys: Option<&KeyMap>) -> anyhow::Result<KeyCode> {
    if let Some(raw) = text.strip_prefix("raw:") {
        return Ok(KeyCode::Raw {
            durations: ir::from_text(raw)?,
            carrier_hz: 38_000,
        });
    }
    if text.contains(':') {
        return Ok(KeyCode::Code(text.parse()?));
    }
    match keys {
        Some(k) => Ok(k.get(text)?.clone()),
        None => bail!("{text:?} is a key name: give --keymap, or a code such as nec:0x0408"),
    }
}

/// Runs one `host-agent ir` command (`config`: the agent's configuration file, for `press`).
pub fn run(args: IrArgs, config: Option<&Path>) -> anyhow::Result<()> {
    match args.command {
        IrCommand::Press {
            device,
            hold_ms,
            keys,
        } => press(config, &device, hold_ms.map(Duration::from_millis), &keys),
        IrCommand::Send {
            device,
            keymap,
            repeat,
            scancode_mode,
            duty_cycle,
            what,
        } => {
            let keys = keymap.as_deref().map(KeyMap::load).transpose()?;
            let codes = what
                .iter()
                .map(|w| key_code(w, keys.as_ref()))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let lirc = LircDevice::open(&device)?;
            let mode = if scancode_mode {
                SendMode::Scancode
            } else {
                SendMode::Pulse
            };
            let mut sender = IrSender::new(lirc, mode, duty_cycle)
                .with_context(|| device.display().to_string())?;
            for code in &codes {
                sender.send(code, repeat)?;
            }
            Ok(())
        }
        IrCommand::Receive {
            device,
            count,
            timeout,
            timings,
        } => receive(device, count, timeout.map(Duration::from_secs), timings),
        IrCommand::Encode {
            repeat: repeats,
            toggle,
            code,
        } => {
            let mut out = std::io::stdout().lock();
            for text in code {
                let c: Code = text.parse()?;
                writeln!(out, "{}", ir::to_text(&encode(c, toggle)))?;
                for _ in 0..repeats {
                    writeln!(out, "{}", ir::to_text(&repeat(c, toggle)))?;
                }
            }
            Ok(())
        }
    }
}

fn receive(
    device: PathBuf,
    count: Option<usize>,
    timeout: Option<Duration>,
    timings: bool,
) -> anyhow::Result<()> {
    let lirc = LircDevice::open(&device)?;
    let mut receiver = IrReceiver::new(Box::new(lirc) as Box<dyn IrTransport>)
        .with_context(|| device.display().to_string())?;
    eprintln!("listening on {}", device.display());
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut seen = 0;
    let mut out = std::io::stdout().lock();
    while count.is_none_or(|c| seen < c) {
        let wait = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        if wait.is_zero() {
            bail!("timed out after {seen} frame(s)");
        }
        let Some(frame) = receiver.next_frame(wait)? else {
            continue;
        };
        let line = match receiver.decode_frame(&frame) {
            Received::Code {
                code,
                toggle,
                repeat,
            } => format!(
                "{code}{}{}",
                if toggle { " toggle" } else { "" },
                if repeat { " repeat" } else { "" }
            ),
            Received::Repeat { of: Some(c) } => format!("repeat {c}"),
            Received::Repeat { of: None } => "repeat".to_string(),
            Received::Raw(t) => format!("raw {}", ir::to_text(&t)),
        };
        writeln!(out, "{line}")?;
        if timings {
            writeln!(out, "  {}", ir::to_text(&frame))?;
        }
        out.flush()?;
        seen += 1;
    }
    Ok(())
}

fn press(
    config: Option<&Path>,
    device: &str,
    hold: Option<Duration>,
    keys: &[String],
) -> anyhow::Result<()> {
    let config = crate::Config::load(config, std::env::vars())?;
    let dc = config
        .devices
        .iter()
        .find(|d| d.id == device)
        .ok_or_else(|| anyhow!("no device {device:?} in the configuration"))?;
    let keys = keys
        .iter()
        .map(|k| k.parse::<Key>())
        .collect::<Result<Vec<_>, _>>()?;
    let driver = crate::drivers::build(&dc.id, &dc.driver, &dc.settings, &config.state_dir)?;
    let remote = driver
        .device()
        .remote()
        .ok_or_else(|| anyhow!("device {device:?} has no remote control"))?;
    for key in keys {
        match hold {
            Some(h) => remote.long_press(key, h),
            None => remote.press(key),
        }
        .with_context(|| format!("pressing {key}"))?;
    }
    Ok(())
}
