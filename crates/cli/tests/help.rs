//! The command line as people meet it: the help of every command is pinned in a snapshot (so a
//! renamed flag or a lost help line shows in review), every command has help text, and the
//! completion scripts know every command.
//! Regenerate with `LABWRIGHT_UPDATE_SNAPSHOTS=1 cargo test -p labwright-cli --test help`.

use clap::{CommandFactory, Parser};
use labwright_cli::Cli;

/// `labwright [SUB...] --help` for every command, depth first.
fn every_help(cmd: &mut clap::Command, path: &str, out: &mut String) {
    out.push_str(&format!("==== {path} --help\n"));
    out.push_str(&cmd.render_long_help().to_string());
    out.push('\n');
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    for name in names {
        let sub = cmd.find_subcommand_mut(&name).expect("listed");
        every_help(sub, &format!("{path} {name}"), out);
    }
}

#[test]
fn the_help_of_every_command_matches_its_snapshot() {
    let mut cmd = Cli::command();
    cmd.build();
    let mut got = String::new();
    every_help(&mut cmd, "labwright", &mut got);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/help.txt");
    if std::env::var_os("LABWRIGHT_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &got).expect("write snapshot");
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        want == got,
        "the CLI's help changed; review and regenerate with LABWRIGHT_UPDATE_SNAPSHOTS=1\n{}",
        first_difference(&want, &got)
    );
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}: snapshot {w:?}, now {g:?}", i + 1);
        }
    }
    format!(
        "snapshot has {} lines, now {}",
        want.lines().count(),
        got.lines().count()
    )
}

#[test]
fn every_command_says_what_it_does() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
            let here = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                missing.push(here.clone());
            }
            walk(sub, &here, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&Cli::command(), "labwright", &mut missing);
    assert!(missing.is_empty(), "commands without help: {missing:?}");
}

#[test]
fn completion_scripts_know_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let cli = Cli::try_parse_from(["labwright", "completions", shell]).expect("args");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // No key is needed to print completions.
        labwright_cli::run_with(cli, &mut out, &mut err).expect("completions");
        let script = String::from_utf8(out).expect("utf-8");
        for command in [
            "devices",
            "press",
            "reserve",
            "release",
            "who",
            "screenshot",
        ] {
            assert!(script.contains(command), "{shell}: no {command}");
        }
    }
}

#[test]
fn a_missing_key_is_a_usage_error() {
    let cli =
        Cli::try_parse_from(["labwright", "--url", "http://127.0.0.1:9", "who"]).expect("args");
    if std::env::var_os("LABWRIGHT_API_KEY").is_some() {
        return;
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let e = labwright_cli::run_with(cli, &mut out, &mut err).expect_err("no key");
    assert_eq!(labwright_cli::failure::exit_code(&e), 2);
}
