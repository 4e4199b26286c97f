//! The `labwright` command-line client: a thin layer over the REST API. Tables for people,
//! `--json` for scripts. Exit codes (see `failure`): 0 success, 1 a test or build failed, 2 usage
//! or not found, 3 infrastructure or access.

pub mod client;
mod executions;
pub mod failure;
mod fleet;
mod keys;
mod library;
mod names;
mod output;
pub mod sandboxes;
pub mod sse;
pub mod table;

use std::io::Write;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

pub use client::Client;
use output::Io;
use sandboxes::{BuildArgs, BuildsCommand, SessionsCommand};

#[derive(Parser, Debug)]
#[command(
    name = "labwright",
    version,
    about = "Labwright remote test lab: command-line client"
)]
pub struct Cli {
    /// Base URL of the api-server.
    #[arg(
        long,
        env = "LABWRIGHT_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// API key. Prefer LABWRIGHT_API_KEY or --key-file so it stays out of shell history.
    #[arg(long, env = "LABWRIGHT_API_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    /// File holding the API key (first line).
    #[arg(
        long,
        env = "LABWRIGHT_API_KEY_FILE",
        hide_env_values = true,
        global = true
    )]
    pub key_file: Option<std::path::PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Lab hosts.
    Hosts {
        #[command(subcommand)]
        command: HostsCommand,
    },
    /// Devices attached to hosts.
    Devices {
        #[command(subcommand)]
        command: DevicesCommand,
    },
    /// API keys and host enrollment tokens (admin).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Show the tenant, key and role in use.
    Whoami,
    /// Test cases (YAML).
    Testcases {
        #[command(subcommand)]
        command: TestcasesCommand,
    },
    /// Navigation trees (one per device model).
    Trees {
        #[command(subcommand)]
        command: TreesCommand,
    },
    /// Reference images for image verifications.
    References {
        #[command(subcommand)]
        command: ReferencesCommand,
    },
    /// Run a test case on a device.
    Run {
        /// Test case name.
        testcase: String,
        /// Device: its id, name, key on its host, or host/key.
        #[arg(long)]
        device: String,
        /// Wait for the end and print every step; exit 1 unless it passed.
        #[arg(long)]
        wait: bool,
    },
    /// Executions.
    Executions {
        #[command(subcommand)]
        command: ExecutionsCommand,
    },
    /// Press a remote-control key on a device.
    Press {
        /// Device: its id, name, key on its host, or host/key.
        #[arg(long)]
        device: String,
        /// Key name (up, down, ok, back, home, 0-9, ...).
        #[arg(id = "key_name", value_name = "KEY")]
        key_name: String,
        /// Hold the key this long, in milliseconds (a long press).
        #[arg(long, default_value_t = 0)]
        hold_ms: u32,
    },
    /// Switch a device's power: on, off, cycle, or state (only report it).
    Power {
        /// Device: its id, name, key on its host, or host/key.
        #[arg(long)]
        device: String,
        #[arg(value_parser = ["on", "off", "cycle", "state"])]
        action: String,
    },
    /// Save the device's current screen as a JPEG file.
    Screenshot {
        /// Device: its id, name, key on its host, or host/key.
        #[arg(long)]
        device: String,
        /// Where to write the JPEG.
        #[arg(long, short, default_value = "screenshot.jpg")]
        output: std::path::PathBuf,
    },
    /// Reserve a device for your key: only you control it and run on it until you release it.
    Reserve {
        /// Device: its id, name, key on its host, or host/key.
        #[arg(long)]
        device: String,
        /// Length of the time box, 1 to 480 minutes.
        #[arg(long, default_value_t = 60)]
        minutes: i32,
    },
    /// Release a device you reserved (admins: anyone's).
    Release {
        /// Device: its id, name, key on its host, or host/key.
        #[arg(long)]
        device: String,
    },
    /// Who holds which device: every current reservation.
    Who,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Build a git repository and run it in a session.
    Build(BuildArgs),
    /// Repository builds.
    Builds {
        #[command(subcommand)]
        command: BuildsCommand,
    },
    /// Sessions: what successful builds leave running.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum TestcasesCommand {
    /// Save YAML files as new versions (unchanged ones keep their version). Every file is tried;
    /// exits non-zero when any was refused.
    Push {
        /// YAML files, or directories: every .yaml/.yml file in them, by name.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
    },
    /// Check YAML files with the server's rules, saving nothing; prints each problem as
    /// FILE:LINE:COLUMN: CODE: MESSAGE and exits non-zero when there is any.
    Validate {
        /// YAML files, or directories: every .yaml/.yml file in them, by name.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
    },
    /// List test cases (latest versions).
    List,
    /// Delete a test case, every version (one that has run is archived: hidden, kept in the
    /// history of its executions).
    Delete {
        /// Test case name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TreesCommand {
    /// Save a tree (YAML/JSON) for its model.
    Push {
        model: String,
        file: std::path::PathBuf,
    },
    /// List the models with a navigation tree.
    List,
    /// Delete a model's tree (refused while test cases for that model navigate with it).
    Delete {
        /// Device model.
        model: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReferencesCommand {
    /// Upload PNG/JPEG files; each is named after its file stem.
    Push { files: Vec<std::path::PathBuf> },
    /// List reference images.
    List,
}

#[derive(Subcommand, Debug)]
pub enum ExecutionsCommand {
    /// List the latest executions.
    List {
        /// queued, dispatched, running, passed, failed, error, cancelled or interrupted.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show an execution and its steps.
    Show { id: String },
    /// Cancel a queued or running execution.
    Cancel { id: String },
    /// Print an execution's console log (timestamped lines with step markers).
    Console { id: String },
}

#[derive(Subcommand, Debug)]
pub enum HostsCommand {
    /// List hosts.
    List(ListArgs),
    /// Round trip to a host over its stream.
    Ping { id: String },
}

#[derive(Subcommand, Debug)]
pub enum DevicesCommand {
    /// List devices.
    List(ListArgs),
}

#[derive(Args, Debug, Default)]
pub struct ListArgs {
    /// online, offline or error.
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long)]
    pub tag: Option<String>,
    /// Substring of the name.
    #[arg(long, short)]
    pub search: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key; its secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// viewer, operator, admin, or host (an enrollment token for a host-agent).
        #[arg(long, default_value = "operator")]
        role: String,
        /// Print only the secret (for scripts).
        #[arg(long, short)]
        quiet: bool,
    },
    /// List keys.
    List,
    /// Revoke a key by id.
    Revoke { id: String },
}

impl ListArgs {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("limit", self.limit.to_string()),
            ("offset", self.offset.to_string()),
        ];
        for (k, v) in [
            ("status", &self.status),
            ("model", &self.model),
            ("tag", &self.tag),
            ("q", &self.search),
        ] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        q
    }
}

/// Runs a parsed command, writing its output to `out` and progress to standard error.
pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    run_with(cli, out, &mut std::io::stderr())
}

/// Runs a parsed command, writing its output to `out` and progress (`==> building`) to `err`.
pub fn run_with(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    if let Command::Completions { shell } = &cli.command {
        let shell = *shell;
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "labwright", out);
        return Ok(());
    }
    let key = match (&cli.key, &cli.key_file) {
        (Some(k), _) => k.trim().to_string(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        (None, None) => {
            return Err(failure::Failure::Usage(
                "no API key: set LABWRIGHT_API_KEY or pass --key-file".into(),
            )
            .into());
        }
    };
    let client = Client::new(&cli.url, &key);
    let io = Io {
        out,
        err,
        json: cli.json,
    };
    match cli.command {
        Command::Hosts { command } => fleet::hosts(&client, command, io),
        Command::Devices { command } => fleet::devices(&client, command, io),
        Command::Press {
            device,
            key_name,
            hold_ms,
        } => fleet::press(&client, &device, key_name, hold_ms, io),
        Command::Power { device, action } => fleet::power(&client, &device, &action, io),
        Command::Screenshot { device, output } => fleet::screenshot(&client, &device, &output, io),
        Command::Reserve { device, minutes } => fleet::reserve(&client, &device, minutes, io),
        Command::Release { device } => fleet::release(&client, &device, io),
        Command::Who => fleet::who(&client, io),
        // Answered above, before any key is needed.
        Command::Completions { .. } => Ok(()),
        Command::Keys { command } => keys::keys(&client, command, io),
        Command::Whoami => keys::whoami(&client, io),
        Command::Testcases { command } => library::testcases(&client, command, io),
        Command::Trees { command } => library::trees(&client, command, io),
        Command::References { command } => library::references(&client, command, io),
        Command::Run {
            testcase,
            device,
            wait,
        } => executions::run(&client, testcase, device, wait, io),
        Command::Executions { command } => executions::executions(&client, command, io),
        Command::Build(args) => sandboxes::build(&client, args, io),
        Command::Builds { command } => sandboxes::builds(&client, command, io),
        Command::Sessions { command } => sandboxes::sessions(&client, command, io),
    }
}
