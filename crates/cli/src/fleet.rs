//! `hosts`, `devices`, device control (`press`, `power`, `screenshot`) and reservations
//! (`reserve`, `release`, `who`).

use anyhow::Context;
use labwright_wire::rest::{
    DeviceView, HostView, PingResult, PowerBody, PowerView, PressBody, ReservationView, ReserveBody,
};
use serde_json::json;

use crate::{
    Client, DevicesCommand, HostsCommand,
    client::decode,
    names,
    output::{Io, cell, join, list_page, print_json},
    table,
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

pub(crate) fn press(
    client: &Client,
    device: &str,
    key: String,
    hold_ms: u32,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let id = names::device_id(client, device)?;
    client.post(
        &format!("/api/v1/devices/{id}/press"),
        &PressBody {
            key: key.clone(),
            hold_ms,
        },
    )?;
    writeln!(io.out, "pressed {key}")?;
    Ok(())
}

pub(crate) fn power(client: &Client, device: &str, action: &str, io: Io<'_>) -> anyhow::Result<()> {
    let id = names::device_id(client, device)?;
    let answer = client.post(
        &format!("/api/v1/devices/{id}/power"),
        &PowerBody {
            action: action.to_string(),
        },
    )?;
    if io.json {
        return print_json(io.out, &answer);
    }
    let view: PowerView = decode(&answer)?;
    writeln!(io.out, "power {}", view.state)?;
    Ok(())
}

pub(crate) fn screenshot(
    client: &Client,
    device: &str,
    output: &std::path::Path,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let id = names::device_id(client, device)?;
    let jpeg = client.get_bytes(&format!("/api/v1/devices/{id}/screenshot"))?;
    std::fs::write(output, &jpeg).with_context(|| format!("writing {}", output.display()))?;
    writeln!(io.out, "{} ({} bytes)", output.display(), jpeg.len())?;
    Ok(())
}

pub(crate) fn reserve(
    client: &Client,
    device: &str,
    minutes: i32,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let d = names::device(client, device)?;
    let answer = client.post(
        &format!("/api/v1/devices/{}/reservation", d.id),
        &ReserveBody {
            minutes,
            keep_alive: false,
        },
    )?;
    if io.json {
        return print_json(io.out, &answer);
    }
    let r: ReservationView = decode(&answer)?;
    writeln!(
        io.out,
        "reserved {}/{} until {}",
        d.host_name,
        d.device_key,
        cell(&r.ends_at)
    )?;
    Ok(())
}

pub(crate) fn release(client: &Client, device: &str, io: Io<'_>) -> anyhow::Result<()> {
    let d = names::device(client, device)?;
    client.delete(&format!("/api/v1/devices/{}/reservation", d.id))?;
    writeln!(io.out, "released {}/{}", d.host_name, d.device_key)?;
    Ok(())
}

pub(crate) fn who(client: &Client, io: Io<'_>) -> anyhow::Result<()> {
    let held: Vec<DeviceView> = names::all_devices(client)?
        .into_iter()
        .filter(|d| d.reservation.is_some())
        .collect();
    if io.json {
        return print_json(io.out, &serde_json::to_value(&held)?);
    }
    let rows = held
        .iter()
        .filter_map(|d| {
            let r = d.reservation.as_ref()?;
            Some(vec![
                format!("{}/{}", d.host_name, d.device_key),
                r.holder.clone(),
                cell(&r.since),
                cell(&r.ends_at),
                if r.mine { "yes" } else { "" }.to_string(),
            ])
        })
        .collect();
    table::write(
        io.out,
        &["DEVICE", "HELD BY", "SINCE", "UNTIL", "MINE"],
        rows,
    )
}
