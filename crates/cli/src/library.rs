//! `testcases`, `trees` and `references`: what test runs are made of. Pushing and validating
//! take files and directories and go through every file, reporting each failure, before the
//! exit code says whether any failed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use labwright_wire::rest::{
    DeleteOutcome, DeletedView, ReferenceView, TestCaseView, TreeView, ValidationView,
};

use crate::{
    Client, ReferencesCommand, TestcasesCommand, TreesCommand,
    client::{decode, path_segment},
    failure::{self, Failure},
    names,
    output::{Io, cell, print_json},
    table,
};

/// The files `paths` name: each file as given, and every `.yaml`/`.yml` file of each directory
/// (not its subdirectories), by name.
fn yaml_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension().is_some_and(|e| {
                        e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml")
                    })
            })
            .collect();
        if found.is_empty() {
            return Err(
                Failure::Usage(format!("no .yaml or .yml file in {}", path.display())).into(),
            );
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// After every file was tried: the worst failure (by exit code), with how many failed.
fn outcome(failed: Vec<anyhow::Error>, total: usize, what: &str) -> anyhow::Result<()> {
    let count = failed.len();
    match failed.into_iter().max_by_key(failure::exit_code) {
        None => Ok(()),
        Some(worst) => Err(worst.context(format!("{count} of {total} {what}"))),
    }
}

fn push_one(client: &Client, file: &Path) -> anyhow::Result<(TestCaseView, bool)> {
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let (status, answer) =
        client.send_bytes_status("POST", "/api/v1/testcases", "application/yaml", &body)?;
    Ok((decode(&answer)?, status == 201))
}

fn validate_one(client: &Client, file: &Path) -> anyhow::Result<ValidationView> {
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let answer = client.send_bytes(
        "POST",
        "/api/v1/testcases/validate",
        "application/yaml",
        &body,
    )?;
    decode(&answer)
}

/// One problem the way compilers print theirs: `file:line:column: code: field: message`.
fn problem_line(file: &Path, p: &labwright_wire::rest::ProblemView) -> String {
    let mut line = file.display().to_string();
    if let (Some(l), Some(c)) = (p.line, p.column) {
        line.push_str(&format!(":{l}:{c}"));
    }
    let code = serde_json::to_value(p.code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    line.push_str(&format!(": {code}: "));
    if let Some(field) = &p.field {
        line.push_str(&format!("{field}: "));
    }
    line.push_str(&p.message);
    line
}

pub(crate) fn testcases(
    client: &Client,
    command: TestcasesCommand,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let Io { out, err, json } = io;
    match command {
        TestcasesCommand::Push { paths } => {
            let files = yaml_files(&paths)?;
            let mut failed = Vec::new();
            for f in &files {
                match push_one(client, f) {
                    Ok((saved, true)) => writeln!(out, "{} version {}", saved.name, saved.version)?,
                    Ok((saved, false)) => {
                        writeln!(out, "{} version {} (unchanged)", saved.name, saved.version)?
                    }
                    Err(e) => {
                        writeln!(err, "{}: {e:#}", f.display())?;
                        failed.push(e.context(f.display().to_string()));
                    }
                }
            }
            outcome(failed, files.len(), "test cases not saved")
        }
        TestcasesCommand::Validate { paths } => {
            let files = yaml_files(&paths)?;
            let mut failed = Vec::new();
            let mut reports = Vec::new();
            let mut problems = 0;
            for f in &files {
                match validate_one(client, f) {
                    Ok(report) => {
                        if !json {
                            for p in &report.problems {
                                writeln!(out, "{}", problem_line(f, p))?;
                            }
                        }
                        if !report.valid {
                            problems += report.problems.len();
                            failed.push(anyhow::Error::from(Failure::Usage(format!(
                                "{}: {} problem{}",
                                f.display(),
                                report.problems.len(),
                                if report.problems.len() == 1 { "" } else { "s" }
                            ))));
                        }
                        reports.push(serde_json::json!({"file": f, "report": report}));
                    }
                    Err(e) => {
                        writeln!(err, "{}: {e:#}", f.display())?;
                        failed.push(e.context(f.display().to_string()));
                    }
                }
            }
            if json {
                print_json(out, &serde_json::Value::Array(reports))?;
            }
            if problems > 0 {
                writeln!(
                    err,
                    "{problems} problem{} found",
                    if problems == 1 { "" } else { "s" }
                )?;
            }
            outcome(failed, files.len(), "test cases with problems")
        }
        TestcasesCommand::Delete { name } => {
            names::testcase(client, &name)?;
            let answer = client.delete(&format!("/api/v1/testcases/{}", path_segment(&name)))?;
            if json {
                return print_json(out, &answer);
            }
            let done: DeletedView = decode(&answer)?;
            let versions = plural(done.versions, "version");
            match done.outcome {
                DeleteOutcome::Deleted => writeln!(out, "deleted {} ({versions})", done.name)?,
                DeleteOutcome::Archived => writeln!(
                    out,
                    "archived {} ({versions}; kept for the history of {})",
                    done.name,
                    plural(done.executions, "execution")
                )?,
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

fn plural(n: i64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
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
        TreesCommand::Delete { model } => {
            let answer = client.delete(&format!(
                "/api/v1/navigation-trees/{}",
                path_segment(&model)
            ))?;
            if json {
                return print_json(out, &answer);
            }
            let done: DeletedView = decode(&answer)?;
            writeln!(
                out,
                "deleted the navigation tree of {} ({})",
                done.name,
                plural(done.versions, "version")
            )?;
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
