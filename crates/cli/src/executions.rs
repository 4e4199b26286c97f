//! `run` and `executions`: test runs and their steps.

use std::io::Write;

use labwright_wire::rest::{ExecutionView, Page};
use serde_json::json;

use crate::{
    Client, ExecutionsCommand,
    client::{ApiError, decode},
    failure::Failure,
    names,
    output::{Io, cell, print_json},
    table,
};

/// Statuses an execution never leaves.
const FINAL: [&str; 5] = ["passed", "failed", "error", "cancelled", "interrupted"];

pub(crate) fn run(
    client: &Client,
    testcase: String,
    device: String,
    wait: bool,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let Io { out, err, json } = io;
    let device = names::device_id(client, &device)?;
    let answer = client
        .post(
            "/api/v1/executions",
            &json!({"testcase": testcase, "device": device}),
        )
        .or_else(|e| match e.downcast_ref::<ApiError>() {
            // Say which titles are near when the test case is unknown.
            Some(api) if api.status == 404 => names::testcase(client, &testcase).and(Err(e)),
            _ => Err(e),
        })?;
    if !wait && json {
        return print_json(out, &answer);
    }
    let created: ExecutionView = decode(&answer)?;
    let id = created.id;
    if !wait {
        writeln!(out, "execution {id} {}", created.status)?;
        return Ok(());
    }
    writeln!(err, "execution {id}: {}/#/executions/{id}", client.base())?;
    let mut progress = Progress::default();
    let (answer, done) = loop {
        let answer = client.get(&format!("/api/v1/executions/{id}"), &[])?;
        let e: ExecutionView = decode(&answer)?;
        progress.show(err, &e)?;
        if FINAL.contains(&e.status.as_str()) {
            break (answer, e);
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    if json {
        print_json(out, &answer)?;
    } else {
        write_execution(out, &done)?;
    }
    if done.status != "passed" {
        return Err(Failure::TestFailed(format!("execution {id} {}", done.status)).into());
    }
    Ok(())
}

pub(crate) fn executions(
    client: &Client,
    command: ExecutionsCommand,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let Io { out, json, .. } = io;
    match command {
        ExecutionsCommand::List { status } => {
            let mut q = vec![("limit", "50".to_string())];
            if let Some(st) = status {
                q.push(("status", st));
            }
            let answer = client.get("/api/v1/executions", &q)?;
            if json {
                return print_json(out, &answer);
            }
            let page: Page<ExecutionView> = decode(&answer)?;
            let rows = page
                .items
                .iter()
                .map(|e| {
                    vec![
                        e.id.to_string(),
                        e.testcase.clone(),
                        e.status.clone(),
                        cell(&e.created_at),
                        e.reason.clone(),
                    ]
                })
                .collect();
            table::write(
                out,
                &["ID", "TEST CASE", "STATUS", "CREATED", "REASON"],
                rows,
            )
        }
        ExecutionsCommand::Show { id } => {
            let answer = client.get(&format!("/api/v1/executions/{id}"), &[])?;
            if json {
                return print_json(out, &answer);
            }
            write_execution(out, &decode(&answer)?)
        }
        ExecutionsCommand::Cancel { id } => {
            let answer = client.post(&format!("/api/v1/executions/{id}/cancel"), &json!({}))?;
            let e: ExecutionView = decode(&answer)?;
            writeln!(out, "execution {id} {}", e.status)?;
            Ok(())
        }
        ExecutionsCommand::Console { id } => {
            let bytes = client.get_bytes(&format!(
                "/api/v1/executions/{}/console",
                crate::client::path_segment(&id)
            ))?;
            out.write_all(&bytes)?;
            Ok(())
        }
    }
}

/// What `run --wait` has told the person so far: each status change (with the queue position
/// while queued) and each step as the host reports it, on standard error.
#[derive(Default)]
struct Progress {
    status: String,
    position: Option<i64>,
    steps: usize,
}

impl Progress {
    fn show(&mut self, err: &mut dyn Write, e: &ExecutionView) -> anyhow::Result<()> {
        let position = e.queue_position.filter(|_| e.status == "queued");
        if e.status != self.status || position != self.position {
            match position {
                Some(ahead) => writeln!(err, "==> queued, {ahead} ahead on the device")?,
                None => writeln!(err, "==> {}", e.status)?,
            }
            self.status = e.status.clone();
            self.position = position;
        }
        let steps = e.steps.as_deref().unwrap_or_default();
        for st in steps.iter().skip(self.steps) {
            let of = e.steps_total.map(|n| format!("/{n}")).unwrap_or_default();
            let reason = if st.reason.is_empty() {
                String::new()
            } else {
                format!("  {}", st.reason)
            };
            writeln!(
                err,
                "  step {}{of} {} {} {:.0} ms{reason}",
                st.index + 1,
                st.kind,
                st.verdict,
                st.duration_ms
            )?;
        }
        self.steps = self.steps.max(steps.len());
        Ok(())
    }
}

fn write_execution(out: &mut dyn Write, e: &ExecutionView) -> anyhow::Result<()> {
    writeln!(
        out,
        "execution {}  {} v{}  {}",
        e.id, e.testcase, e.testcase_version, e.status
    )?;
    if !e.reason.is_empty() {
        writeln!(out, "reason: {}", e.reason)?;
    }
    let rows = e
        .steps
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|st| {
            vec![
                st.index.to_string(),
                st.kind.clone(),
                st.verdict.clone(),
                format!("{:.0} ms", st.duration_ms),
                st.reason.clone(),
            ]
        })
        .collect();
    table::write(out, &["#", "STEP", "VERDICT", "TIME", "REASON"], rows)
}
