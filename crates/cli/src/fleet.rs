//! `hosts`, `devices` and `press`: the fleet and device control.

use labwright_wire::rest::{DeviceView, HostView, Page, PingResult, PressBody};
use serde_json::json;

use crate::{
    Client, DevicesCommand, HostsCommand,
    client::decode,
    output::{Io, cell, footer, join, print_json},
    table,
};

pub(crate) fn hosts(client: &Client, command: HostsCommand, io: Io<'_>) -> anyhow::Result<()> {
    let Io { out, json, .. } = io;
    match command {
        HostsCommand::List(args) => {
            let answer = client.get("/api/v1/hosts", &args.query())?;
            if json {
                return print_json(out, &answer);
            }
            let page: Page<HostView> = decode(&answer)?;
            let rows = page
                .items
                .iter()
                .map(|h| {
                    vec![
                        h.name.clone(),
                        h.status.clone(),
                        h.device_count.to_string(),
                        h.agent_version.clone(),
                        cell(&h.last_seen_at),
                        h.id.to_string(),
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
        HostsCommand::Ping { id } => {
            let answer = client.post(&format!("/api/v1/hosts/{id}/ping"), &json!({}))?;
            if json {
                return print_json(out, &answer);
            }
            let ping: PingResult = decode(&answer)?;
            writeln!(out, "round trip {:.2} ms", ping.round_trip_ms)?;
            Ok(())
        }
    }
}

pub(crate) fn devices(client: &Client, command: DevicesCommand, io: Io<'_>) -> anyhow::Result<()> {
    let Io { out, json, .. } = io;
    let DevicesCommand::List(args) = command;
    let answer = client.get("/api/v1/devices", &args.query())?;
    if json {
        return print_json(out, &answer);
    }
    let page: Page<DeviceView> = decode(&answer)?;
    let rows = page
        .items
        .iter()
        .map(|d| {
            vec![
                d.host_name.clone(),
                d.device_key.clone(),
                d.name.clone(),
                d.model.clone(),
                d.status.clone(),
                join(&d.capabilities),
                join(&d.tags),
                d.id.to_string(),
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

pub(crate) fn press(client: &Client, device: &str, key: String, io: Io<'_>) -> anyhow::Result<()> {
    client.post(
        &format!("/api/v1/devices/{device}/press"),
        &PressBody {
            key: key.clone(),
            hold_ms: 0,
        },
    )?;
    writeln!(io.out, "pressed {key}")?;
    Ok(())
}
