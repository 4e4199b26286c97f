//! `testcases`, `trees` and `references`: what test runs are made of.

use anyhow::Context;
use labwright_wire::rest::{ReferenceView, TestCaseView, TreeView};

use crate::{
    Client, ReferencesCommand, TestcasesCommand, TreesCommand,
    client::decode,
    output::{Io, cell, print_json},
    table,
};

pub(crate) fn testcases(
    client: &Client,
    command: TestcasesCommand,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let Io { out, json, .. } = io;
    match command {
        TestcasesCommand::Push { files } => {
            for f in files {
                let body = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
                let saved: TestCaseView = client
                    .send_bytes("POST", "/api/v1/testcases", "application/yaml", &body)
                    .and_then(|answer| decode(&answer))
                    .with_context(|| f.display().to_string())?;
                writeln!(out, "{} version {}", saved.name, saved.version)?;
            }
            Ok(())
        }
        TestcasesCommand::List => {
            let answer = client.get("/api/v1/testcases", &[])?;
            if json {
                return print_json(out, &answer);
            }
            let list: Vec<TestCaseView> = decode(&answer)?;
            let rows = list
                .iter()
                .map(|t| vec![t.name.clone(), t.version.to_string(), cell(&t.created_at)])
                .collect();
            table::write(out, &["NAME", "VERSION", "SAVED"], rows)
        }
    }
}

pub(crate) fn trees(client: &Client, command: TreesCommand, io: Io<'_>) -> anyhow::Result<()> {
    let Io { out, json, .. } = io;
    match command {
        TreesCommand::Push { model, file } => {
            let body =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let answer = client.send_bytes(
                "PUT",
                &format!("/api/v1/navigation-trees/{model}"),
                "application/yaml",
                &body,
            )?;
            let saved: TreeView = decode(&answer)?;
            writeln!(out, "{} version {}", saved.model, saved.version)?;
            Ok(())
        }
        TreesCommand::List => {
            let answer = client.get("/api/v1/navigation-trees", &[])?;
            if json {
                return print_json(out, &answer);
            }
            let list: Vec<TreeView> = decode(&answer)?;
            let rows = list
                .iter()
                .map(|t| {
                    vec![
                        t.model.clone(),
                        t.version.to_string(),
                        t.document["screens"]
                            .as_array()
                            .map_or(0, Vec::len)
                            .to_string(),
                    ]
                })
                .collect();
            table::write(out, &["MODEL", "VERSION", "SCREENS"], rows)
        }
    }
}

pub(crate) fn references(
    client: &Client,
    command: ReferencesCommand,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let Io { out, json, .. } = io;
    match command {
        ReferencesCommand::Push { files } => {
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
                let saved: ReferenceView = client
                    .send_bytes("PUT", &format!("/api/v1/references/{name}"), ct, &body)
                    .and_then(|answer| decode(&answer))
                    .with_context(|| f.display().to_string())?;
                writeln!(out, "{} {}x{}", saved.name, saved.width, saved.height)?;
            }
            Ok(())
        }
        ReferencesCommand::List => {
            let answer = client.get("/api/v1/references", &[])?;
            if json {
                return print_json(out, &answer);
            }
            let list: Vec<ReferenceView> = decode(&answer)?;
            let rows = list
                .iter()
                .map(|r| vec![r.name.clone(), format!("{}x{}", r.width, r.height)])
                .collect();
            table::write(out, &["NAME", "SIZE"], rows)
        }
    }
}
