//! `hosts`, `devices` and `press`: the fleet and device control.

use labwright_wire::rest::{DeviceView, HostView, PingResult, PressBody};
use serde_json::json;

use crate::{
    Client, DevicesCommand, HostsCommand,
    client::decode,
    output::{Io, cell, join, list_page, print_json},
};

pub(crate) fn hosts(client: &Client, command: HostsCommand, io: Io<'_>) -> anyhow::Result<()> {
    let Io { out, json, .. } = io;
    match command {
        HostsCommand::List(args) => list_page(
            client,
            out,
            json,
            ("/api/v1/hosts", &args.query()),
            &["NAME", "STATUS", "DEVICES", "AGENT", "LAST SEEN", "ID"],
            |h: &HostView| {
                vec![
                    h.name.clone(),
                    h.status.clone(),
                    h.device_count.to_string(),
                    h.agent_version.clone(),
                    cell(&h.last_seen_at),
                    h.id.to_string(),
                ]
            },
        ),
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
    list_page(
        client,
        out,
        json,
        ("/api/v1/devices", &args.query()),
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
        |d: &DeviceView| {
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
        },
    )
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
