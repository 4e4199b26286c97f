//! The `labwright` command-line client: a thin layer over the REST API. Tables for people,
//! `--json` for scripts. Exit code 0 on success, 1 on an API or network error, 2 on usage errors.

pub mod client;
pub mod sandboxes;
pub mod sse;
pub mod table;

use std::io::Write;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

pub use client::Client;
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
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// API key. Prefer LABWRIGHT_API_KEY or --key-file so it stays out of shell history.
    #[arg(long, env = "LABWRIGHT_API_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    /// File holding the API key (first line).
    #[arg(long, env = "LABWRIGHT_API_KEY_FILE", global = true)]
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
        /// Device id.
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
    /// Press a key on a device.
    Press {
        #[arg(long)]
        device: String,
        key: String,
    },
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
    /// Save YAML files as new versions.
    Push { files: Vec<std::path::PathBuf> },
    /// List test cases (latest versions).
    List,
}

#[derive(Subcommand, Debug)]
pub enum TreesCommand {
    /// Save a tree (YAML/JSON) for its model.
    Push {
        model: String,
        file: std::path::PathBuf,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum ReferencesCommand {
    /// Upload PNG/JPEG files; each is named after its file stem.
    Push {
        files: Vec<std::path::PathBuf>,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum ExecutionsCommand {
    List {
        #[arg(long)]
        status: Option<String>,
    },
    Show {
        id: String,
    },
    Cancel {
        id: String,
    },
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
    let key = match (&cli.key, &cli.key_file) {
        (Some(k), _) => k.trim().to_string(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        (None, None) => anyhow::bail!("no API key: set LABWRIGHT_API_KEY or pass --key-file"),
    };
    let client = Client::new(&cli.url, &key);
    let json = cli.json;
    match cli.command {
        Command::Hosts {
            command: HostsCommand::List(args),
        } => {
            let page = client.get("/api/v1/hosts", &args.query())?;
            if cli.json {
                return print_json(out, &page);
            }
            let rows = items(&page)
                .iter()
                .map(|h| {
                    vec![
                        s(h, "name"),
                        s(h, "status"),
                        h["device_count"].to_string(),
                        s(h, "agent_version"),
                        s(h, "last_seen_at"),
                        s(h, "id"),
                    ]
                })
                .collect();
            table::write(
                out,
                &["NAME", "STATUS", "DEVICES", "AGENT", "LAST SEEN", "ID"],
                rows,
            )?;
            footer(out, &page)
        }
        Command::Hosts {
            command: HostsCommand::Ping { id },
        } => {
            let res = client.post(&format!("/api/v1/hosts/{id}/ping"), &json!({}))?;
            if cli.json {
                return print_json(out, &res);
            }
            writeln!(
                out,
                "round trip {:.2} ms",
                res["round_trip_ms"].as_f64().unwrap_or(0.0)
            )?;
            Ok(())
        }
        Command::Devices {
            command: DevicesCommand::List(args),
        } => {
            let page = client.get("/api/v1/devices", &args.query())?;
            if cli.json {
                return print_json(out, &page);
            }
            let rows = items(&page)
                .iter()
                .map(|d| {
                    vec![
                        s(d, "host_name"),
                        s(d, "device_key"),
                        s(d, "name"),
                        s(d, "model"),
                        s(d, "status"),
                        join(&d["capabilities"]),
                        join(&d["tags"]),
                        s(d, "id"),
                    ]
                })
                .collect();
            table::write(
                out,
                &[
                    "HOST",
                    "DEVICE",
                    "NAME",
                    "MODEL",
                    "STATUS",
                    "CAPABILITIES",
                    "TAGS",
                    "ID",
                ],
                rows,
            )?;
            footer(out, &page)
        }
        Command::Keys {
            command: KeysCommand::Create { name, role, quiet },
        } => {
            let created = client.post("/api/v1/keys", &json!({"name": name, "role": role}))?;
            if quiet {
                writeln!(out, "{}", s(&created, "secret"))?;
                return Ok(());
            }
            if cli.json {
                return print_json(out, &created);
            }
            writeln!(
                out,
                "created {} key {:?} ({})",
                s(&created, "role"),
                s(&created, "name"),
                s(&created, "id")
            )?;
            writeln!(
                out,
                "secret (shown once, store it now):\n{}",
                s(&created, "secret")
            )?;
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::List,
        } => {
            let keys = client.get("/api/v1/keys", &[])?;
            if cli.json {
                return print_json(out, &keys);
            }
            let rows = array(&keys)
                .iter()
                .map(|k| {
                    let state = if k["revoked_at"].is_null() {
                        "active".to_string()
                    } else {
                        format!("revoked {}", s(k, "revoked_at"))
                    };
                    vec![
                        s(k, "prefix"),
                        s(k, "name"),
                        s(k, "role"),
                        state,
                        s(k, "last_used_at"),
                        s(k, "id"),
                    ]
                })
                .collect();
            table::write(
                out,
                &["PREFIX", "NAME", "ROLE", "STATE", "LAST USED", "ID"],
                rows,
            )
        }
        Command::Keys {
            command: KeysCommand::Revoke { id },
        } => {
            client.delete(&format!("/api/v1/keys/{id}"))?;
            if cli.json {
                return print_json(out, &json!({"revoked": id}));
            }
            writeln!(out, "revoked key {id}")?;
            Ok(())
        }
        Command::Testcases {
            command: TestcasesCommand::Push { files },
        } => {
            for f in files {
                let body = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
                let saved = client
                    .send_bytes("POST", "/api/v1/testcases", "application/yaml", &body)
                    .with_context(|| f.display().to_string())?;
                writeln!(out, "{} version {}", s(&saved, "name"), saved["version"])?;
            }
            Ok(())
        }
        Command::Testcases {
            command: TestcasesCommand::List,
        } => {
            let list = client.get("/api/v1/testcases", &[])?;
            if cli.json {
                return print_json(out, &list);
            }
            let rows = array(&list)
                .iter()
                .map(|t| vec![s(t, "name"), t["version"].to_string(), s(t, "created_at")])
                .collect();
            table::write(out, &["NAME", "VERSION", "SAVED"], rows)
        }
        Command::Trees {
            command: TreesCommand::Push { model, file },
        } => {
            let body =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let saved = client.send_bytes(
                "PUT",
                &format!("/api/v1/navigation-trees/{model}"),
                "application/yaml",
                &body,
            )?;
            writeln!(out, "{} version {}", s(&saved, "model"), saved["version"])?;
            Ok(())
        }
        Command::Trees {
            command: TreesCommand::List,
        } => {
            let list = client.get("/api/v1/navigation-trees", &[])?;
            if cli.json {
                return print_json(out, &list);
            }
            let rows = array(&list)
                .iter()
                .map(|t| {
                    vec![
                        s(t, "model"),
                        t["version"].to_string(),
                        t["document"]["screens"]
                            .as_array()
                            .map_or(0, Vec::len)
                            .to_string(),
                    ]
                })
                .collect();
            table::write(out, &["MODEL", "VERSION", "SCREENS"], rows)
        }
        Command::References {
            command: ReferencesCommand::Push { files },
        } => {
            for f in files {
                let name = f
                    .file_stem()
                    .and_then(|n| n.to_str())
                    .context("file name")?
                    .to_string();
                let body = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
                let ct = if body.starts_with(&[0x89, b'P', b'N', b'G']) {
                    "image/png"
                } else {
                    "image/jpeg"
                };
                let saved = client
                    .send_bytes("PUT", &format!("/api/v1/references/{name}"), ct, &body)
                    .with_context(|| f.display().to_string())?;
                writeln!(
                    out,
                    "{} {}x{}",
                    s(&saved, "name"),
                    saved["width"],
                    saved["height"]
                )?;
            }
            Ok(())
        }
        Command::References {
            command: ReferencesCommand::List,
        } => {
            let list = client.get("/api/v1/references", &[])?;
            if cli.json {
                return print_json(out, &list);
            }
            let rows = array(&list)
                .iter()
                .map(|r| vec![s(r, "name"), format!("{}x{}", r["width"], r["height"])])
                .collect();
            table::write(out, &["NAME", "SIZE"], rows)
        }
        Command::Run {
            testcase,
            device,
            wait,
        } => {
            let created = client.post(
                "/api/v1/executions",
                &json!({"testcase": testcase, "device": device}),
            )?;
            let id = s(&created, "id");
            if !wait {
                if cli.json {
                    return print_json(out, &created);
                }
                writeln!(out, "execution {id} {}", s(&created, "status"))?;
                return Ok(());
            }
            let done = loop {
                let e = client.get(&format!("/api/v1/executions/{id}"), &[])?;
                let status = s(&e, "status");
                if ["passed", "failed", "error", "cancelled", "interrupted"]
                    .contains(&status.as_str())
                {
                    break e;
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
            };
            if cli.json {
                print_json(out, &done)?;
            } else {
                write_execution(out, &done)?;
            }
            if done["status"] != "passed" {
                anyhow::bail!("execution {id} {}", s(&done, "status"));
            }
            Ok(())
        }
        Command::Executions {
            command: ExecutionsCommand::List { status },
        } => {
            let mut q = vec![("limit", "50".to_string())];
            if let Some(st) = status {
                q.push(("status", st));
            }
            let page = client.get("/api/v1/executions", &q)?;
            if cli.json {
                return print_json(out, &page);
            }
            let rows = items(&page)
                .iter()
                .map(|e| {
                    vec![
                        s(e, "id"),
                        s(e, "testcase"),
                        s(e, "status"),
                        s(e, "created_at"),
                        s(e, "reason"),
                    ]
                })
                .collect();
            table::write(
                out,
                &["ID", "TEST CASE", "STATUS", "CREATED", "REASON"],
                rows,
            )
        }
        Command::Executions {
            command: ExecutionsCommand::Show { id },
        } => {
            let e = client.get(&format!("/api/v1/executions/{id}"), &[])?;
            if cli.json {
                return print_json(out, &e);
            }
            write_execution(out, &e)
        }
        Command::Executions {
            command: ExecutionsCommand::Cancel { id },
        } => {
            let e = client.post(&format!("/api/v1/executions/{id}/cancel"), &json!({}))?;
            writeln!(out, "execution {id} {}", s(&e, "status"))?;
            Ok(())
        }
        Command::Press { device, key } => {
            client.post(
                &format!("/api/v1/devices/{device}/press"),
                &json!({"key": key}),
            )?;
            writeln!(out, "pressed {key}")?;
            Ok(())
        }
        Command::Build(args) => sandboxes::build(&client, args, sandboxes::Io { out, err, json }),
        Command::Builds { command } => {
            sandboxes::builds(&client, command, sandboxes::Io { out, err, json })
        }
        Command::Sessions { command } => {
            sandboxes::sessions(&client, command, sandboxes::Io { out, err, json })
        }
        Command::Whoami => {
            let me = client.get("/api/v1/whoami", &[])?;
            if cli.json {
                return print_json(out, &me);
            }
            writeln!(
                out,
                "tenant {} ({})\nkey    {} ({})\nrole   {}",
                s(&me, "tenant_name"),
                s(&me, "tenant_id"),
                s(&me, "key_name"),
                s(&me, "key_id"),
                s(&me, "role")
            )?;
            Ok(())
        }
    }
}

fn write_execution(out: &mut dyn Write, e: &Value) -> anyhow::Result<()> {
    writeln!(
        out,
        "execution {}  {} v{}  {}",
        s(e, "id"),
        s(e, "testcase"),
        e["testcase_version"],
        s(e, "status")
    )?;
    if !e["reason"].as_str().unwrap_or_default().is_empty() {
        writeln!(out, "reason: {}", s(e, "reason"))?;
    }
    let rows = array(&e["steps"])
        .iter()
        .map(|st| {
            vec![
                st["index"].to_string(),
                s(st, "kind"),
                s(st, "verdict"),
                format!("{:.0} ms", st["duration_ms"].as_f64().unwrap_or(0.0)),
                s(st, "reason"),
            ]
        })
        .collect();
    table::write(out, &["#", "STEP", "VERDICT", "TIME", "REASON"], rows)
}

/// The elements of a JSON array; empty for anything else.
fn array(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn items(page: &Value) -> &[Value] {
    array(&page["items"])
}

fn s(v: &Value, field: &str) -> String {
    match &v[field] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn join(v: &Value) -> String {
    let parts: Vec<&str> = array(v).iter().filter_map(Value::as_str).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

fn footer(out: &mut dyn Write, page: &Value) -> anyhow::Result<()> {
    let shown = items(page).len() as i64;
    let total = page["total"].as_i64().unwrap_or(shown);
    let offset = page["offset"].as_i64().unwrap_or(0);
    if total > shown {
        writeln!(
            out,
            "({shown} of {total} shown, from offset {offset}; use --limit/--offset)"
        )?;
    }
    Ok(())
}

fn print_json(out: &mut dyn Write, v: &Value) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}
