//! `GET /api/v1/devices/{id}/live`: a device's screen as a WebSocket stream of JPEG frames
//! (protocol in `docs/live-view.md`). Authenticated like every call; browsers pass the key as a
//! subprotocol (`["labwright", "bearer.<key>"]`).

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::{AggregatedMessage, Session};
use labwright_core::{
    auth::Permission,
    fleet::Capability,
    ids::{DeviceId, HostId},
};
use labwright_wire::{
    host_link::HostCommand,
    ws::{
        close_with,
        live::{
            ConsoleLineView, ConsoleMessage, ConsoleViewerMessage, LiveMessage, MAX_CONSOLE_INPUT,
            ViewerMessage, close,
        },
    },
};
use uuid::Uuid;

use crate::{
    fleet::DeviceRow,
    keys::{Caller, WEBSOCKET_PROTOCOL},
    live::{FPS, IN_FLIGHT, Live, Tier},
};

const HOST_CHECK: Duration = Duration::from_secs(2);

/// A viewer's pace, judged every [`HOST_CHECK`]: the share of its tier's frames it drew.
struct Pace {
    published: u64,
    acked: u64,
    good_windows: u32,
}

impl Pace {
    fn new(published: u64) -> Self {
        Self {
            published,
            acked: 0,
            good_windows: 0,
        }
    }

    /// The tier the viewer should move to, if any: below half of the frames in the full tier
    /// moves it to light; nine in ten in the light tier for three windows in a row moves it
    /// back. Windows with too few frames (a still picture) say nothing.
    fn window(&mut self, tier: Tier, published: u64, acked: u64) -> Option<Tier> {
        let produced = published.saturating_sub(self.published);
        let drawn = acked.saturating_sub(self.acked);
        self.published = published;
        self.acked = acked;
        if produced < 8 {
            return None;
        }
        let share = drawn as f64 / produced as f64;
        match tier {
            Tier::Full if share < 0.5 => Some(Tier::Light),
            Tier::Light if share >= 0.9 => {
                self.good_windows += 1;
                (self.good_windows >= 3).then_some(Tier::Full)
            }
            Tier::Light => {
                self.good_windows = 0;
                None
            }
            Tier::Full => None,
        }
    }
}

/// Streams a device's screen while the socket is open.
#[get("/devices/{id}/live")]
pub async fn live(
    state: web::Data<Live>,
    caller: Caller,
    req: HttpRequest,
    body: web::Payload,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, actix_web::Error> {
    caller.require(Permission::ReadFleet)?;
    let (response, ws, stream) =
        actix_ws::handle_with_protocols(&req, body, &[WEBSOCKET_PROTOCOL])?;
    let stream = stream
        .max_frame_size(4096)
        .aggregate_continuations()
        .max_continuation_size(4096);
    let id = id.into_inner();
    actix_web::rt::spawn(async move {
        let d = match state.fleet.device(caller.tenant, DeviceId(id)).await {
            Ok(Some(d)) => d,
            Ok(None) => return close_with(ws, close::NO_DEVICE, "no such device").await,
            Err(e) => return close_with(ws, close::UNAVAILABLE, e.to_string()).await,
        };
        if !d
            .capabilities
            .iter()
            .flatten()
            .any(|c| c == Capability::VideoCapture.as_str())
        {
            return close_with(ws, close::UNAVAILABLE, "the device has no video capture").await;
        }
        let host = HostId(d.host_id);
        if d.status != "online" || !state.fleet.is_connected(host) {
            return close_with(
                ws,
                close::UNAVAILABLE,
                format!(
                    "device {} is {} or its host is not connected to this server",
                    d.device_key, d.status
                ),
            )
            .await;
        }
        let viewer = state.hub.watch(host, &d.device_key);
        let (code, reason) = serve(&state, &caller, host, viewer, ws.clone(), stream, id).await;
        close_with(ws, code, reason).await;
    });
    Ok(response)
}

async fn serve(
    state: &Live,
    caller: &Caller,
    host: HostId,
    mut viewer: crate::live::Viewer,
    mut ws: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    device: Uuid,
) -> (u16, String) {
    let hello = LiveMessage::Live {
        device,
        fps: FPS,
        in_flight: IN_FLIGHT,
    };
    if ws.text(hello.to_json()).await.is_err() {
        return (close::NORMAL, String::new());
    }
    let mut sent: u64 = 0;
    let mut acked: u64 = 0;
    let mut last_seq: Option<u64> = None;
    let mut check = tokio::time::interval(HOST_CHECK);
    let mut pace = Pace::new(viewer.published());
    loop {
        if sent - acked < IN_FLIGHT {
            let next = viewer
                .frames()
                .borrow_and_update()
                .clone()
                .filter(|f| last_seq != Some(f.seq));
            if let Some(f) = next {
                if ws.binary(f.wire.clone()).await.is_err() {
                    return (close::NORMAL, "the viewer left".into());
                }
                sent += 1;
                last_seq = Some(f.seq);
                continue;
            }
        }
        let can_send = sent - acked < IN_FLIGHT;
        tokio::select! {
            changed = viewer.frames().changed(), if can_send => {
                if changed.is_err() {
                    return (close::ENDED, "the stream ended".into());
                }
            }
            msg = stream.recv() => match msg {
                None | Some(Ok(AggregatedMessage::Close(_))) => {
                    return (close::NORMAL, "the viewer left".into());
                }
                Some(Err(e)) => return (close::BAD_MESSAGE, format!("protocol error: {e}")),
                Some(Ok(AggregatedMessage::Text(t))) => match serde_json::from_str::<ViewerMessage>(&t) {
                    Ok(ViewerMessage::Ack { .. }) => acked = (acked + 1).min(sent),
                    Err(e) => {
                        let m = labwright_core::validate::shorten(&e.to_string(), 80).to_string();
                        return (close::BAD_MESSAGE, format!("bad message: {m}"));
                    }
                },
                Some(Ok(AggregatedMessage::Ping(p))) => {
                    let _ = ws.pong(&p).await;
                }
                Some(Ok(_)) => {}
            },
            _ = check.tick() => {
                if !state.fleet.is_connected(host) {
                    return (close::ENDED, "the device's host disconnected".into());
                }
                if let Some(tier) = pace.window(viewer.tier(), viewer.published(), acked) {
                    viewer.set_tier(tier);
                    pace = Pace::new(viewer.published());
                    pace.acked = acked;
                    let note = LiveMessage::Quality {
                        tier: tier.as_str().into(),
                    };
                    if ws.text(note.to_json()).await.is_err() {
                        return (close::NORMAL, "the viewer left".into());
                    }
                }
            }
            _ = state.shutdown.cancelled() => {
                return (close::GOING_AWAY, "the server is restarting; reconnect".into());
            }
            _ = caller.revoked.cancelled() => return (close::KEY_REVOKED, "the key was revoked".into()),
        }
    }
}

/// `GET /api/v1/events`: the caller's tenant's events as they happen (one JSON text frame
/// each: `{"kind": "fleet.device.status", "event": {...}}`). A client that falls too far behind
/// gets `{"kind": "resync"}` and should reload what it shows.
#[get("/events")]
pub async fn events(
    state: web::Data<Live>,
    caller: Caller,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    caller.require(Permission::ReadFleet)?;
    let (response, mut ws, stream) =
        actix_ws::handle_with_protocols(&req, body, &[WEBSOCKET_PROTOCOL])?;
    let mut stream = stream.max_frame_size(4096).aggregate_continuations();
    let mut rx = state.tap.subscribe();
    let tenant = caller.tenant.0;
    actix_web::rt::spawn(async move {
        let (code, reason) = loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(e) if e.tenant == tenant => {
                        let text = format!(r#"{{"kind":{},"event":{}}}"#, serde_json::Value::from(e.kind.as_str()), e.payload);
                        if ws.text(text).await.is_err() {
                            break (close::NORMAL, "the client left");
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if ws.text(r#"{"kind":"resync"}"#).await.is_err() {
                            break (close::NORMAL, "the client left");
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break (close::GOING_AWAY, "the server is restarting"),
                },
                msg = stream.recv() => match msg {
                    None | Some(Ok(AggregatedMessage::Close(_))) | Some(Err(_)) => break (close::NORMAL, "the client left"),
                    Some(Ok(AggregatedMessage::Ping(p))) => { let _ = ws.pong(&p).await; }
                    Some(Ok(_)) => {}
                },
                _ = state.shutdown.cancelled() => break (close::GOING_AWAY, "the server is restarting; reconnect"),
                _ = caller.revoked.cancelled() => break (close::KEY_REVOKED, "the key was revoked"),
            }
        };
        close_with(ws, code, reason).await;
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_that_draws_less_than_half_goes_light_and_comes_back_when_it_keeps_up() {
        let mut p = Pace::new(0);
        // A still picture: no judgement.
        assert_eq!(p.window(Tier::Full, 3, 0), None);
        // Keeping up.
        assert_eq!(p.window(Tier::Full, 63, 58), None);
        // Drawing a third of the frames.
        assert_eq!(p.window(Tier::Full, 123, 78), Some(Tier::Light));
        let mut p = Pace::new(0);
        assert_eq!(p.window(Tier::Light, 60, 58), None);
        assert_eq!(p.window(Tier::Light, 120, 100), None, "a bad window resets");
        assert_eq!(p.window(Tier::Light, 180, 158), None);
        assert_eq!(p.window(Tier::Light, 240, 215), None);
        assert_eq!(p.window(Tier::Light, 300, 274), Some(Tier::Full));
    }
}

/// Streams a device's console while the socket is open (`docs/live-view.md`, "Live console"):
/// read-only for viewers, input for the holder of the device's reservation.
#[get("/devices/{id}/console")]
pub async fn console(
    state: web::Data<Live>,
    caller: Caller,
    req: HttpRequest,
    body: web::Payload,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, actix_web::Error> {
    caller.require(Permission::ReadFleet)?;
    let (response, ws, stream) =
        actix_ws::handle_with_protocols(&req, body, &[WEBSOCKET_PROTOCOL])?;
    let stream = stream
        .max_frame_size(2 * MAX_CONSOLE_INPUT + 256)
        .aggregate_continuations()
        .max_continuation_size(2 * MAX_CONSOLE_INPUT + 256);
    let id = id.into_inner();
    actix_web::rt::spawn(async move {
        let d = match state.fleet.device(caller.tenant, DeviceId(id)).await {
            Ok(Some(d)) => d,
            Ok(None) => return close_with(ws, close::NO_DEVICE, "no such device").await,
            Err(e) => return close_with(ws, close::UNAVAILABLE, e.to_string()).await,
        };
        if !d
            .capabilities
            .iter()
            .flatten()
            .any(|c| c == Capability::Console.as_str())
        {
            return close_with(ws, close::UNAVAILABLE, "the device has no console").await;
        }
        let host = HostId(d.host_id);
        if d.status != "online" || !state.fleet.is_connected(host) {
            return close_with(
                ws,
                close::UNAVAILABLE,
                format!(
                    "device {} is {} or its host is not connected to this server",
                    d.device_key, d.status
                ),
            )
            .await;
        }
        let viewer = state.hub.consoles.watch(host, &d.device_key);
        let (code, reason) = serve_console(&state, &caller, &d, viewer, ws.clone(), stream).await;
        close_with(ws, code, reason).await;
    });
    Ok(response)
}

/// Whether `caller` may type into device `d`'s console now, and if not why.
async fn may_type(state: &Live, caller: &Caller, d: &DeviceRow) -> Result<(), String> {
    caller
        .require(Permission::ControlDevices)
        .map_err(|e| e.to_string())?;
    match state.fleet.holds_reservation(caller, d).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "only the holder of device {}'s reservation may type into its console: reserve it first",
            d.device_key
        )),
        Err(e) => Err(e.to_string()),
    }
}

async fn serve_console(
    state: &Live,
    caller: &Caller,
    d: &DeviceRow,
    mut viewer: crate::live::console::ConsoleViewer,
    mut ws: Session,
    mut stream: actix_ws::AggregatedMessageStream,
) -> (u16, String) {
    let can_type = may_type(state, caller, d).await.is_ok();
    let hello = ConsoleMessage::Console {
        device: d.id,
        can_type,
    };
    if ws.text(hello.to_json()).await.is_err() {
        return (close::NORMAL, String::new());
    }
    let (recent, partial) = viewer.recent();
    if !recent.is_empty() || !partial.is_empty() {
        let first = ConsoleMessage::Output {
            lines: recent.into_iter().map(line_view).collect(),
            partial,
            missed: 0,
        };
        if ws.text(first.to_json()).await.is_err() {
            return (close::NORMAL, "the viewer left".into());
        }
    }
    let mut check = tokio::time::interval(HOST_CHECK);
    loop {
        tokio::select! {
            out = viewer.output.recv() => {
                let msg = match out {
                    Ok(o) => ConsoleMessage::Output {
                        lines: o.lines.iter().cloned().map(line_view).collect(),
                        partial: o.partial.clone(),
                        missed: o.missed,
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => ConsoleMessage::Output {
                        lines: Vec::new(),
                        partial: String::new(),
                        missed: n,
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        return (close::ENDED, "the stream ended".into());
                    }
                };
                if ws.text(msg.to_json()).await.is_err() {
                    return (close::NORMAL, "the viewer left".into());
                }
            }
            msg = stream.recv() => match msg {
                None | Some(Ok(AggregatedMessage::Close(_))) => {
                    return (close::NORMAL, "the viewer left".into());
                }
                Some(Err(e)) => return (close::BAD_MESSAGE, format!("protocol error: {e}")),
                Some(Ok(AggregatedMessage::Text(t))) => match serde_json::from_str::<ConsoleViewerMessage>(&t) {
                    Ok(ConsoleViewerMessage::Input { data }) => {
                        let answer = if data.is_empty() || data.len() > MAX_CONSOLE_INPUT {
                            ConsoleMessage::Refused {
                                message: format!("input must be 1 to {MAX_CONSOLE_INPUT} bytes"),
                            }
                        } else {
                            match may_type(state, caller, d).await {
                                Err(message) => ConsoleMessage::Refused { message },
                                Ok(()) => {
                                    let bytes = data.len();
                                    let cmd = HostCommand::ConsoleInput {
                                        device_id: d.device_key.clone(),
                                        data: data.into_bytes(),
                                    };
                                    match state.fleet.command(caller.tenant, d, cmd).await {
                                        Ok(_) => ConsoleMessage::Typed { bytes },
                                        Err(e) => ConsoleMessage::Refused { message: e.to_string() },
                                    }
                                }
                            }
                        };
                        if ws.text(answer.to_json()).await.is_err() {
                            return (close::NORMAL, "the viewer left".into());
                        }
                    }
                    Err(e) => {
                        let m = labwright_core::validate::shorten(&e.to_string(), 80).to_string();
                        return (close::BAD_MESSAGE, format!("bad message: {m}"));
                    }
                },
                Some(Ok(AggregatedMessage::Ping(p))) => {
                    let _ = ws.pong(&p).await;
                }
                Some(Ok(_)) => {}
            },
            _ = check.tick() => {
                if !state.fleet.is_connected(HostId(d.host_id)) {
                    return (close::ENDED, "the device's host disconnected".into());
                }
            }
            _ = state.shutdown.cancelled() => {
                return (close::GOING_AWAY, "the server is restarting; reconnect".into());
            }
            _ = caller.revoked.cancelled() => return (close::KEY_REVOKED, "the key was revoked".into()),
        }
    }
}

fn line_view(l: labwright_core::controller::ConsoleLine) -> ConsoleLineView {
    ConsoleLineView {
        seq: l.seq,
        at_us: l.at_us,
        text: l.text,
    }
}
