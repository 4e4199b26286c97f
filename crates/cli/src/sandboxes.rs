//! `build`, `builds` and `sessions`: repo sandboxes. Submit a git repository to be built and run,
//! follow its log and stages, and look after the sessions that successful builds leave running.
//!
//! The log is followed over Server-Sent Events on a reader thread, so the build's stage can be
//! polled (at most every 500 ms) while the log is quiet; a dropped stream is resumed after the
//! last event id with capped, jittered backoff.

use std::{
    io::{Read, Write},
    sync::mpsc,
    time::{Duration, Instant},
};

use clap::{Args, Subcommand};
use labwright_wire::rest::{BuildView, CreateBuild, ExtendSession, SessionView};
use serde_json::{Value, json};

use crate::{
    Client,
    client::{ApiError, decode},
    failure::Failure,
    output::{Io, cell, list_page, print_json},
    sse,
};

/// Every build stage, in order.
pub const STAGES: [&str; 10] = [
    "queued",
    "cloning",
    "detecting",
    "building",
    "starting",
    "running",
    "failed",
    "expired",
    "cancelled",
    "stopped",
];
/// Stages a build never leaves.
const FINAL: [&str; 4] = ["failed", "expired", "cancelled", "stopped"];
const SESSION_STATUSES: [&str; 4] = ["running", "exited", "stopped", "expired"];

/// How often the stage is polled while a log is followed.
const POLL: Duration = Duration::from_millis(500);
/// Reconnections in a row, without an event in between, before giving up on a log stream.
const MAX_RECONNECTS: u32 = 8;
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Git repository: https://, http://, ssh://, git:// or user@host:path (no credentials).
    pub repo_url: String,
    /// Branch, tag or commit (default: the default branch).
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// Directory of the repository to build.
    #[arg(long, value_name = "DIR")]
    pub subdir: Option<String>,
    /// Stream the log and the stages until the build runs or ends; exit 1 unless it runs.
    #[arg(long)]
    pub follow: bool,
}

#[derive(Subcommand, Debug)]
pub enum BuildsCommand {
    /// List builds, newest first.
    List {
        #[arg(long, value_parser = STAGES)]
        stage: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// One build: stage, stack, image, timings, reason and the end of its log.
    Get {
        #[arg(value_parser = parse_id)]
        id: String,
    },
    /// Cancel a build that is not running yet (end a running one with `sessions delete`).
    Cancel {
        #[arg(value_parser = parse_id)]
        id: String,
    },
    /// Print a build's log (plain text, also with --json).
    Logs {
        #[arg(value_parser = parse_id)]
        id: String,
        /// Keep streaming until the build runs or ends.
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionsCommand {
    /// List sessions, newest first.
    List {
        #[arg(long, value_parser = SESSION_STATUSES)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// One session (its id is its build's id).
    Get {
        #[arg(value_parser = parse_id)]
        id: String,
    },
    /// End a session: its container is removed and its build becomes `stopped`.
    Delete {
        #[arg(value_parser = parse_id)]
        id: String,
    },
    /// Print a session's own output (its app's stdout and stderr), as plain text.
    Logs {
        #[arg(value_parser = parse_id)]
        id: String,
        /// Keep streaming new output while the session runs; ends when it exits or ends.
        #[arg(long)]
        follow: bool,
        /// Only the last N lines stored.
        #[arg(long, value_name = "N")]
        tail: Option<u32>,
    },
    /// Restart a session's app (a running one is stopped first); an exited session runs again.
    Restart {
        #[arg(value_parser = parse_id)]
        id: String,
    },
    /// Push back a running session's expiry, never past its hard limit.
    Extend {
        #[arg(value_parser = parse_id)]
        id: String,
        /// Minutes added to the later of now and the current expiry.
        #[arg(long, value_parser = parse_minutes)]
        minutes: u32,
    },
}

/// Build and session ids are UUIDs; checking them keeps anything else out of request paths.
fn parse_id(v: &str) -> Result<String, String> {
    let hex = v.chars().filter(char::is_ascii_hexdigit).count();
    if hex == 32 && v.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        Ok(v.to_ascii_lowercase())
    } else {
        Err("expected a UUID".into())
    }
}

fn parse_minutes(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(0) | Err(_) => Err("expected a whole number of minutes, at least 1".into()),
        Ok(m) => Ok(m),
    }
}

pub(crate) fn build(client: &Client, args: BuildArgs, io: Io<'_>) -> anyhow::Result<()> {
    let body = CreateBuild {
        repo_url: args.repo_url,
        git_ref: args.git_ref,
        subdir: args.subdir,
    };
    let answer = client.post("/api/v1/builds", &body)?;
    if !args.follow && io.json {
        return print_json(io.out, &answer);
    }
    let created: BuildView = decode(&answer)?;
    let id = created.id.to_string();
    if !args.follow {
        writeln!(io.out, "build {id} {}", created.stage)?;
        writeln!(
            io.out,
            "follow it with: labwright builds logs {id} --follow"
        )?;
        return Ok(());
    }
    let (answer, done) = follow_build(client, &id, &created, io.out, io.err, !io.json)?;
    let stage = done.stage;
    if io.json {
        print_json(io.out, &answer)?;
    } else if stage == "running" {
        let (sid, status, expires) = match &done.session {
            Some(session) => (
                session.id.to_string(),
                session.status.clone(),
                cell(&session.expires_at),
            ),
            None => ("-".to_string(), "-".to_string(), "-".to_string()),
        };
        writeln!(io.out, "session {sid} {status}, expires {expires}")?;
        writeln!(io.out, "see it with: labwright sessions get {sid}")?;
    }
    if stage != "running" {
        let reason = done.reason;
        if reason.is_empty() {
            return Err(Failure::TestFailed(format!("build {id} {stage}")).into());
        }
        return Err(Failure::TestFailed(format!("build {id} {stage}: {reason}")).into());
    }
    Ok(())
}

/// Streams a build's log to `out` (when `human`) and its stage changes to `err` until it runs or
/// ends; returns the build as it is then (as answered, and as its view).
fn follow_build(
    client: &Client,
    id: &str,
    first: &BuildView,
    out: &mut dyn Write,
    err: &mut dyn Write,
    human: bool,
) -> anyhow::Result<(Value, BuildView)> {
    let path = format!("/api/v1/builds/{id}");
    let get = || -> anyhow::Result<(Value, BuildView)> {
        let answer = client.get(&path, &[])?;
        let b = decode(&answer)?;
        Ok((answer, b))
    };
    let mut shown = String::new();
    let mut report = |err: &mut dyn Write, b: &BuildView| -> anyhow::Result<()> {
        if human && b.stage != shown {
            writeln!(err, "==> {}", b.stage)?;
        }
        shown.clone_from(&b.stage);
        Ok(())
    };
    report(err, first)?;
    let mut last_poll = Instant::now();
    stream_log(
        client,
        build_log(id, true),
        &mut |line| {
            if human {
                writeln!(out, "{}", printable(line))?;
            }
            Ok(())
        },
        &mut || {
            if last_poll.elapsed() >= POLL {
                last_poll = Instant::now();
                // The stream and the final read decide; a failed poll only delays a progress line.
                if let Ok((_, b)) = get() {
                    report(err, &b)?;
                }
            }
            Ok(())
        },
    )?;
    out.flush()?;
    // The stream ends once the build runs or ends; the stage read afterwards is at least as new.
    loop {
        let (answer, b) = get()?;
        report(err, &b)?;
        if settled(&b) {
            return Ok((answer, b));
        }
        std::thread::sleep(POLL);
    }
}

fn settled(b: &BuildView) -> bool {
    b.stage == "running" || FINAL.contains(&b.stage.as_str())
}

enum Msg {
    Events(Vec<sse::Event>),
    Closed(Option<std::io::Error>),
}

/// Reads one connection's events on a thread of its own: reads block, polls must not wait.
fn spawn_reader(mut body: Box<dyn Read + Send>, tx: mpsc::SyncSender<Msg>) {
    std::thread::spawn(move || {
        let mut parser = sse::Parser::new();
        let mut buf = [0u8; 8192];
        loop {
            let msg = match body.read(&mut buf) {
                Ok(0) => Msg::Closed(None),
                Ok(n) => match parser.feed(&buf[..n]) {
                    events if events.is_empty() => continue,
                    events => Msg::Events(events),
                },
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Msg::Closed(Some(e)),
            };
            let closed = matches!(msg, Msg::Closed(_));
            if tx.send(msg).is_err() || closed {
                return;
            }
        }
    });
}

/// A build's log: `follow` keeps it open until the build runs or ends.
fn build_log(id: &str, follow: bool) -> (String, Vec<(&'static str, String)>) {
    (
        format!("/api/v1/builds/{id}/logs"),
        vec![("follow", follow.to_string())],
    )
}

/// Streams a log (`build_log`, or a session's output), calling `line` for each line and `tick`
/// after each batch of events and at least every [`POLL`]; resumes after the last event id when
/// the connection drops. Returns what the `end` event says (the build's stage, the session's
/// status).
fn stream_log(
    client: &Client,
    (path, query): (String, Vec<(&'static str, String)>),
    line: &mut dyn FnMut(&str) -> anyhow::Result<()>,
    tick: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let mut last_id: Option<String> = None;
    let mut failures = 0u32;
    loop {
        let cause = match client.log_stream(&path, &query, last_id.as_deref()) {
            Ok(body) => {
                let (tx, rx) = mpsc::sync_channel(64);
                spawn_reader(body, tx);
                loop {
                    match rx.recv_timeout(POLL) {
                        Ok(Msg::Events(events)) => {
                            for ev in events {
                                failures = 0;
                                if ev.id.is_some() {
                                    last_id = ev.id;
                                }
                                match ev.event.as_deref() {
                                    None | Some("message") => line(&ev.data)?,
                                    Some("end") => return Ok(ev.data),
                                    Some(_) => {}
                                }
                            }
                        }
                        Ok(Msg::Closed(e)) => break e.map(anyhow::Error::from),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => break None,
                    }
                    tick()?;
                }
            }
            Err(e) if retryable(&e) => Some(e),
            Err(e) => return Err(e),
        };
        failures += 1;
        if failures > MAX_RECONNECTS {
            let cause = cause.map(|e| format!(": {e:#}")).unwrap_or_default();
            anyhow::bail!("log stream lost after {MAX_RECONNECTS} reconnections{cause}");
        }
        let wait = backoff(failures);
        let until = Instant::now() + wait;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            std::thread::sleep(left.min(POLL));
            tick()?;
        }
    }
}

/// Network errors and server-side failures are worth another try; a refusal (4xx) is not.
fn retryable(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<ApiError>() {
        Some(api) => api.status >= 500 || api.status == 429,
        None => true,
    }
}

/// Exponential from [`BACKOFF_BASE`], capped at [`BACKOFF_CAP`], with up to 50% jitter.
fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let wait = exp.min(BACKOFF_CAP);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    wait + wait.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

/// `limit` and `offset`, and one optional filter.
fn page_query(
    limit: u32,
    offset: u32,
    filter: &'static str,
    value: Option<String>,
) -> Vec<(&'static str, String)> {
    let mut q = vec![("limit", limit.to_string()), ("offset", offset.to_string())];
    q.extend(value.map(|v| (filter, v)));
    q
}

pub(crate) fn builds(client: &Client, command: BuildsCommand, io: Io<'_>) -> anyhow::Result<()> {
    let Io { out, err, json } = io;
    match command {
        BuildsCommand::List {
            stage,
            limit,
            offset,
        } => {
            let q = page_query(limit, offset, "stage", stage);
            list_page(
                client,
                out,
                json,
                ("/api/v1/builds", &q),
                &[
                    "ID",
                    "STAGE",
                    "REPOSITORY",
                    "REF",
                    "STACK",
                    "CREATED",
                    "REASON",
                ],
                |b: &BuildView| {
                    vec![
                        b.id.to_string(),
                        b.stage.clone(),
                        b.repo_url.clone(),
                        cell(&b.git_ref),
                        cell(&b.stack),
                        cell(&b.created_at),
                        b.reason.clone(),
                    ]
                },
            )
        }
        BuildsCommand::Get { id } => {
            let answer = client.get(&format!("/api/v1/builds/{id}"), &[])?;
            if json {
                return print_json(out, &answer);
            }
            write_build(out, &decode(&answer)?)
        }
        BuildsCommand::Cancel { id } => {
            let answer = client.post(&format!("/api/v1/builds/{id}/cancel"), &json!({}))?;
            if json {
                return print_json(out, &answer);
            }
            let b: BuildView = decode(&answer)?;
            writeln!(out, "build {id} {}", b.stage)?;
            Ok(())
        }
        BuildsCommand::Logs { id, follow } => {
            let stage = stream_log(
                client,
                build_log(&id, follow),
                &mut |line| Ok(writeln!(out, "{}", printable(line))?),
                &mut || Ok(()),
            )?;
            out.flush()?;
            if follow {
                writeln!(err, "==> {stage}")?;
            }
            Ok(())
        }
    }
}

fn write_build(out: &mut dyn Write, b: &BuildView) -> anyhow::Result<()> {
    let mut field = |name: &str, value: String| writeln!(out, "{name:<10}{value}");
    field("build", b.id.to_string())?;
    let mut repo = b.repo_url.clone();
    for (label, value) in [("ref", &b.git_ref), ("subdir", &b.subdir)] {
        if let Some(v) = value {
            repo.push_str(&format!("  {label} {v}"));
        }
    }
    field("repo", repo)?;
    field("stage", b.stage.clone())?;
    if !b.reason.is_empty() {
        field("reason", b.reason.clone())?;
    }
    let dockerfile = match b.own_dockerfile {
        Some(true) => " (its own Dockerfile)",
        Some(false) => " (generated Dockerfile)",
        None => "",
    };
    field("stack", format!("{}{dockerfile}", cell(&b.stack)))?;
    field("image", cell(&b.image))?;
    field("created", cell(&b.created_at))?;
    field("started", cell(&b.started_at))?;
    field("finished", cell(&b.finished_at))?;
    field("queued", secs(b.durations.queued_ms))?;
    field("built in", secs(b.durations.build_ms))?;
    if let Some(session) = &b.session {
        field(
            "session",
            format!(
                "{} {}, expires {}",
                session.id,
                session.status,
                cell(&session.expires_at)
            ),
        )?;
    }
    if let Some(dockerfile) = &b.dockerfile {
        writeln!(out, "Dockerfile:")?;
        for line in dockerfile.lines() {
            writeln!(out, "  {}", printable(line))?;
        }
    }
    let tail = b.log_tail.as_deref().unwrap_or_default();
    if !tail.is_empty() {
        writeln!(out, "log (last {} lines):", tail.len())?;
        for line in tail {
            writeln!(out, "  {}", printable(line))?;
        }
    }
    Ok(())
}

/// A log line as it is safe to show: the log is the repository's output, so terminal escape
/// sequences (colours, cursor moves, titles) are removed rather than obeyed or shown as garbage,
/// a line redrawn with carriage returns (a progress bar) shows its last state, and any other
/// control character is replaced; tabs are kept.
fn printable(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains(|c: char| c.is_control() && c != '\t' && c != '\n') {
        return line.into();
    }
    let mut shown = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (titles, links): up to BEL or ESC \.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                // Two-character escapes (ESC 7, ESC =, ...).
                Some(_) | None => {}
            },
            '\r' if chars.peek().is_some_and(|&n| n != '\n') => shown.clear(),
            '\r' => {}
            '\t' | '\n' => shown.push(c),
            c if c.is_control() => shown.push('\u{fffd}'),
            c => shown.push(c),
        }
    }
    shown.into()
}

/// Milliseconds as seconds with one decimal; `-` when absent.
fn secs(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0))
}

pub(crate) fn sessions(
    client: &Client,
    command: SessionsCommand,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let Io { out, err, json } = io;
    let view = match command {
        SessionsCommand::Logs { id, follow, tail } => {
            let mut query = vec![("follow", follow.to_string())];
            query.extend(tail.map(|n| ("tail", n.to_string())));
            let status = stream_log(
                client,
                (format!("/api/v1/sessions/{id}/logs"), query),
                &mut |line| Ok(writeln!(out, "{}", printable(line))?),
                &mut || Ok(()),
            )?;
            out.flush()?;
            if follow {
                writeln!(err, "==> {status}")?;
            }
            return Ok(());
        }
        SessionsCommand::Restart { id } => {
            client.post(&format!("/api/v1/sessions/{id}/restart"), &json!({}))?
        }
        SessionsCommand::List {
            status,
            limit,
            offset,
        } => {
            let q = page_query(limit, offset, "status", status);
            return list_page(
                client,
                out,
                json,
                ("/api/v1/sessions", &q),
                &[
                    "ID",
                    "STATUS",
                    "CREATED",
                    "EXPIRES",
                    "HARD LIMIT",
                    "EXIT",
                    "END REASON",
                ],
                |v: &SessionView| {
                    vec![
                        v.id.to_string(),
                        v.status.clone(),
                        cell(&v.created_at),
                        cell(&v.expires_at),
                        cell(&v.hard_expires_at),
                        cell(&v.exit_code),
                        v.end_reason.clone(),
                    ]
                },
            );
        }
        SessionsCommand::Get { id } => client.get(&format!("/api/v1/sessions/{id}"), &[])?,
        SessionsCommand::Delete { id } => client.delete(&format!("/api/v1/sessions/{id}"))?,
        SessionsCommand::Extend { id, minutes } => client.post(
            &format!("/api/v1/sessions/{id}/extend"),
            &ExtendSession {
                seconds: i64::from(minutes) * 60,
            },
        )?,
    };
    if json {
        return print_json(out, &view);
    }
    write_session(out, &decode(&view)?)
}

fn write_session(out: &mut dyn Write, v: &SessionView) -> anyhow::Result<()> {
    let mut field = |name: &str, value: String| writeln!(out, "{name:<12}{value}");
    field("session", v.id.to_string())?;
    field("status", v.status.clone())?;
    field("created", cell(&v.created_at))?;
    field("expires", cell(&v.expires_at))?;
    field("hard limit", cell(&v.hard_expires_at))?;
    if let Some(exited) = &v.exited_at {
        field("exited", format!("{} ({})", cell(exited), v.end_reason))?;
    }
    if let Some(ended) = &v.ended_at {
        field("ended", format!("{} ({})", cell(ended), v.end_reason))?;
    }
    if v.restarts > 0 {
        field("restarts", v.restarts.to_string())?;
    }
    field("container", v.container_id.clone())?;
    field("network", v.network.clone())?;
    field("build", format!("labwright builds get {}", v.build_id))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{Parser, error::ErrorKind};

    use super::*;
    use crate::{Cli, Command};

    const ID: &str = "6f1c2a3b-0000-4000-8000-00000000000a";

    fn parse(args: &[&str]) -> Result<Command, ErrorKind> {
        let argv = std::iter::once("labwright").chain(args.iter().copied());
        Cli::try_parse_from(argv)
            .map(|c| c.command)
            .map_err(|e| e.kind())
    }

    #[test]
    fn build_takes_a_url_and_options() {
        let Ok(Command::Build(b)) = parse(&[
            "build",
            "https://example.com/a.git",
            "--ref",
            "v1",
            "--subdir",
            "app",
            "--follow",
        ]) else {
            panic!("build parses");
        };
        assert_eq!(b.repo_url, "https://example.com/a.git");
        assert_eq!(b.git_ref.as_deref(), Some("v1"));
        assert_eq!(b.subdir.as_deref(), Some("app"));
        assert!(b.follow);
        let Ok(Command::Build(b)) = parse(&["build", "git@example.com:a/b.git"]) else {
            panic!("build parses");
        };
        assert!(!b.follow && b.git_ref.is_none() && b.subdir.is_none());
    }

    #[test]
    fn build_requires_a_url() {
        assert_eq!(
            parse(&["build"]).err(),
            Some(ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            parse(&["build", "--follow"]).err(),
            Some(ErrorKind::MissingRequiredArgument)
        );
    }

    #[test]
    fn extend_requires_positive_minutes() {
        let Ok(Command::Sessions {
            command: SessionsCommand::Extend { id, minutes },
        }) = parse(&["sessions", "extend", ID, "--minutes", "30"])
        else {
            panic!("extend parses");
        };
        assert_eq!((id.as_str(), minutes), (ID, 30));
        assert_eq!(
            parse(&["sessions", "extend", ID]).err(),
            Some(ErrorKind::MissingRequiredArgument)
        );
        for bad in ["0", "-5", "x", ""] {
            assert_eq!(
                parse(&["sessions", "extend", ID, &format!("--minutes={bad}")]).err(),
                Some(ErrorKind::ValueValidation),
                "{bad}"
            );
        }
    }

    #[test]
    fn builds_and_sessions_subcommands() {
        let Ok(Command::Builds {
            command: BuildsCommand::List { stage, limit, .. },
        }) = parse(&["builds", "list", "--stage", "failed", "--limit", "5"])
        else {
            panic!("list parses");
        };
        assert_eq!((stage.as_deref(), limit), (Some("failed"), 5));
        assert_eq!(
            parse(&["builds", "list", "--stage", "baking"]).err(),
            Some(ErrorKind::InvalidValue)
        );
        assert!(matches!(
            parse(&["builds", "logs", ID, "--follow"]),
            Ok(Command::Builds {
                command: BuildsCommand::Logs { follow: true, .. }
            })
        ));
        for cmd in [
            &["builds", "get", ID][..],
            &["builds", "cancel", ID],
            &["sessions", "get", ID],
            &["sessions", "delete", ID],
            &["sessions", "list", "--status", "running", "--json"],
        ] {
            assert!(parse(cmd).is_ok(), "{cmd:?}");
        }
        assert_eq!(
            parse(&["builds", "get", "../keys"]).err(),
            Some(ErrorKind::ValueValidation)
        );
        assert_eq!(
            parse(&["sessions", "delete"]).err(),
            Some(ErrorKind::MissingRequiredArgument)
        );
    }

    #[test]
    fn ids_must_be_uuids() {
        let id = "6F1C2A3B-0000-4000-8000-00000000000A";
        assert_eq!(
            parse_id(id).as_deref(),
            Ok(id.to_ascii_lowercase().as_str())
        );
        assert!(parse_id("6f1c2a3b000040008000000000000000").is_ok());
        for bad in [
            "",
            "42",
            "../keys",
            "6f1c2a3b-0000-4000-8000-00000000000a/cancel",
        ] {
            assert!(parse_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn builds_get_shows_the_dockerfile_it_built() {
        let b: BuildView = serde_json::from_value(serde_json::json!({
            "id": "6f1c2a3b-0000-4000-8000-00000000000a", "repo_url": "https://example.com/a.git",
            "ref": null, "subdir": null, "stage": "running", "reason": "", "stack": "python",
            "dockerfile": "FROM labwright/python:3\nCOPY . /app\n", "own_dockerfile": false,
            "image": null, "created_at": "2030-01-01T00:00:00Z", "started_at": null,
            "finished_at": null, "durations": {"queued_ms": 1, "build_ms": 2}, "log_tail": [],
            "session": null,
        }))
        .expect("view");
        let mut out = Vec::new();
        write_build(&mut out, &b).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("Dockerfile:\n  FROM labwright/python:3\n  COPY . /app\n"),
            "{text}"
        );
    }

    #[test]
    fn log_lines_cannot_drive_the_terminal() {
        assert_eq!(printable("plain\ttext"), "plain\ttext");
        assert_eq!(printable("\u{1b}[91mred\u{1b}[0m\r"), "red");
        assert_eq!(
            printable("\u{1b}[1;38;5;196mbold\u{1b}[K done"),
            "bold done"
        );
        assert_eq!(printable("\u{1b}]0;owned title\u{7}text"), "text");
        assert_eq!(
            printable("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\"),
            "link"
        );
        assert_eq!(printable(" 10%\r 50%\r100%"), "100%");
        assert_eq!(
            printable("bell\u{7} and null\u{0}"),
            "bell\u{fffd} and null\u{fffd}"
        );
        assert_eq!(printable("a\nb"), "a\nb");
        assert_eq!(printable("cut \u{1b}["), "cut ");
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        for attempt in 1..40 {
            let d = backoff(attempt);
            let exp = BACKOFF_BASE * 2u32.pow(attempt.min(16) - 1);
            let floor = exp.min(BACKOFF_CAP);
            assert!(d >= floor && d <= floor.mul_f64(1.5), "{attempt}: {d:?}");
        }
    }

    #[test]
    fn only_refusals_are_final() {
        let api = |status| {
            anyhow::Error::from(ApiError {
                status,
                code: "x".into(),
                message: "y".into(),
            })
        };
        assert!(!retryable(&api(404)));
        assert!(!retryable(&api(401)));
        assert!(retryable(&api(503)));
        assert!(retryable(&api(429)));
        assert!(retryable(&anyhow::anyhow!("connection reset")));
    }
}
