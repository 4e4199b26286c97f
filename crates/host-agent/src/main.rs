//! `host-agent`: parses arguments and config, sets up logging, runs until SIGTERM/SIGINT.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use labwright_host_agent::Config;
use labwright_service::{Settings, shutdown, telemetry};

#[derive(Parser)]
#[command(
    name = "host-agent",
    version,
    about = "Labwright host agent: connects this lab host and its devices to the server"
)]
struct Args {
    /// TOML config file (see host-agent.example.toml). Environment variables LABWRIGHT_* override it.
    #[arg(long, short, env = "LABWRIGHT_CONFIG")]
    config: Option<PathBuf>,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// List the V4L2 capture nodes (with their formats), ALSA capture PCMs and serial ports of
    /// this host, and print a device configuration to paste (needs no configuration).
    Discover,
    /// Switch or read a power switch (GPIO relay or smart plug) as a device's
    /// `[settings.power]` configures it, without the agent: prints the state read back.
    Power {
        /// TOML file with the keys of a `[settings.power]` table (at the top or in `[power]`).
        #[arg(long)]
        settings: PathBuf,
        /// on, off, cycle or state.
        action: labwright_drivers::power::command::Action,
        /// How long `cycle` keeps the power off (at least the switch's `min_off_ms`).
        #[arg(long, default_value_t = 2000)]
        off_ms: u64,
        /// Keep the switch open (a GPIO line requested) until SIGTERM/SIGINT: some GPIO chips
        /// reset a line once it is released.
        #[arg(long)]
        hold: bool,
    },
    /// IR tools on this host's LIRC devices: send keys or codes, print what a receiver decodes,
    /// print the timings a code encodes to.
    Ir(labwright_host_agent::ir::IrArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::Discover) => {
            print!("{}", labwright_drivers::discover::discover().to_config());
            return Ok(());
        }
        Some(Command::Power {
            settings,
            action,
            off_ms,
            hold,
        }) => {
            let off_for = std::time::Duration::from_millis(off_ms);
            let done = tokio::task::spawn_blocking(move || {
                labwright_drivers::power::command::run(&settings, action, off_for)
            })
            .await?;
            match done {
                Ok((state, power)) => {
                    println!("power {state}");
                    if hold {
                        shutdown::signal().await;
                    }
                    drop(power);
                }
                Err(e) => {
                    eprintln!("error [{}]: {e}", e.code());
                    std::process::exit(1);
                }
            }
            return Ok(());
        }
        Some(Command::Ir(ir)) => return labwright_host_agent::ir::run(ir, args.config.as_deref()),
        None => {}
    }
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    telemetry::init(config.log_format);
    if args.check {
        let (host, devices) = (&config.host_name, config.devices.len());
        println!("configuration ok: host {host} with {devices} device(s)");
        return Ok(());
    }
    labwright_host_agent::run(config, shutdown::token(|| {})).await
}
