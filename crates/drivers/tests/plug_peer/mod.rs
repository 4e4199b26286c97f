//! In-process smart plugs for the tests: the device side of Tasmota's HTTP commands, Shelly
//! Gen1's `/relay/N`, Shelly Gen2's RPC over HTTP and Kasa's XOR protocol on TCP, each on its own
//! loopback port. Written from the protocols' documentation, independently of the drivers (its
//! own HTTP parsing and its own cipher), and checked against the real clients (`curl`,
//! `python-kasa`) in `tests/plugs.rs`.
//!
//! Faults: `stuck` (answers commands but its relay never moves: a plug that does not switch),
//! `silent` (accepts connections, reads the request and never answers).

#![allow(dead_code)]

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tasmota,
    ShellyGen1,
    ShellyGen2,
    Kasa,
}

#[derive(Default)]
pub struct State {
    pub on: bool,
    pub stuck: bool,
    pub silent: bool,
    /// Requests seen (HTTP request targets, Kasa JSON).
    pub requests: Vec<String>,
}

pub struct Peer {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Peer {
    /// Starts a plug of `kind` on 127.0.0.1 (a free port); `credentials` are the user and
    /// password it wants (Tasmota, Shelly Gen1).
    pub fn start(kind: Kind, credentials: Option<(&str, &str)>) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let credentials = credentials.map(|(u, p)| (u.to_string(), p.to_string()));
        let (s, st) = (state.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, c) = (s.clone(), credentials.clone());
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
                    match kind {
                        Kind::Kasa => serve_kasa(conn, &s),
                        http => serve_http(conn, http, &s, c.as_ref()),
                    }
                });
            }
        });
        Peer {
            addr,
            state,
            stop,
            accept: Some(accept),
        }
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    pub fn is_on(&self) -> bool {
        self.state.lock().expect("state").on
    }

    pub fn set(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().expect("state"));
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("state").requests.clone()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

// ---- HTTP (Tasmota, Shelly) ----

struct Request {
    path: String,
    query: HashMap<String, String>,
    target: String,
    authorization: Option<String>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 || buf.len() > 16 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target, version) = (first.next()?, first.next()?, first.next()?);
    if method != "GET" || !version.starts_with("HTTP/1.") {
        return None;
    }
    let mut authorization = None;
    for line in lines.take_while(|l| !l.is_empty()) {
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_string());
        }
    }
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Some(Request {
        path: path.to_string(),
        query,
        target: target.to_string(),
        authorization,
    })
}

fn respond(conn: &mut TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 401 {
        head.push_str("WWW-Authenticate: Basic realm=\"shelly\"\r\n");
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
    let _ = conn.flush();
}

/// Basic credentials `user:password`, decoded by hand (no dependency on the driver's base64).
fn basic_matches(header: Option<&str>, user: &str, password: &str) -> bool {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let Some(token) = header.and_then(|h| h.strip_prefix("Basic ")) else {
        return false;
    };
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in token.trim_end_matches('=').bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            return false;
        };
        bits = (bits << 6) | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out == format!("{user}:{password}").as_bytes()
}

fn serve_http(
    mut conn: TcpStream,
    kind: Kind,
    state: &Mutex<State>,
    credentials: Option<&(String, String)>,
) {
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    let silent = {
        let mut s = state.lock().expect("state");
        s.requests.push(req.target.clone());
        s.silent
    };
    if silent {
        // Hold the connection without answering until the client gives up.
        let mut sink = [0u8; 64];
        while conn.read(&mut sink).is_ok_and(|n| n > 0) {}
        return;
    }
    let (status, body) = match kind {
        Kind::Tasmota => tasmota(&req, state, credentials),
        Kind::ShellyGen1 => shelly1(&req, state, credentials),
        Kind::ShellyGen2 => shelly2(&req, state),
        Kind::Kasa => (500, String::new()),
    };
    respond(&mut conn, status, &body);
}

fn switch(state: &Mutex<State>, to: Option<bool>) -> (bool, bool) {
    let mut s = state.lock().expect("state");
    let was = s.on;
    if let Some(on) = to
        && !s.stuck
    {
        s.on = on;
    }
    (was, s.on)
}

fn tasmota(
    req: &Request,
    state: &Mutex<State>,
    credentials: Option<&(String, String)>,
) -> (u16, String) {
    if req.path != "/cm" {
        return (404, "Not Found".into());
    }
    if let Some((user, password)) = credentials
        && (req.query.get("user") != Some(user) || req.query.get("password") != Some(password))
    {
        return (
            401,
            json!({"WARNING": "Need user=<username>&password=<password>"}).to_string(),
        );
    }
    let cmnd = req.query.get("cmnd").map(String::as_str).unwrap_or("");
    let (name, arg) = cmnd.split_once(' ').unwrap_or((cmnd, ""));
    let name = name.to_ascii_lowercase();
    if name != "power" && name != "power1" {
        return (200, json!({"Command": "Unknown"}).to_string());
    }
    let current = state.lock().expect("state").on;
    let to = match arg.to_ascii_lowercase().as_str() {
        "" => None,
        "on" | "1" => Some(true),
        "off" | "0" => Some(false),
        "toggle" | "2" => Some(!current),
        _ => return (200, json!({"Command": "Error"}).to_string()),
    };
    let (_, now) = switch(state, to);
    // One relay: Tasmota answers POWER whether asked Power or Power1.
    (
        200,
        json!({"POWER": if now { "ON" } else { "OFF" }}).to_string(),
    )
}

fn shelly1_status(on: bool) -> String {
    json!({"ison": on, "has_timer": false, "timer_started": 0, "timer_duration": 0,
           "timer_remaining": 0, "source": "http"})
    .to_string()
}

fn shelly1(
    req: &Request,
    state: &Mutex<State>,
    credentials: Option<&(String, String)>,
) -> (u16, String) {
    if let Some((user, password)) = credentials
        && !basic_matches(req.authorization.as_deref(), user, password)
    {
        return (401, "401 Unauthorized".into());
    }
    if req.path != "/relay/0" {
        return (404, "Not Found".into());
    }
    let current = state.lock().expect("state").on;
    let to = match req.query.get("turn").map(String::as_str) {
        None => None,
        Some("on") => Some(true),
        Some("off") => Some(false),
        Some("toggle") => Some(!current),
        Some(_) => return (400, "Bad turn!".into()),
    };
    let (_, now) = switch(state, to);
    (200, shelly1_status(now))
}

fn shelly2(req: &Request, state: &Mutex<State>) -> (u16, String) {
    let not_found = |what: &str| {
        (
            500,
            json!({"code": -105, "message": format!("Argument 'id', value {what} not found!")})
                .to_string(),
        )
    };
    let id = req.query.get("id").map(String::as_str).unwrap_or("");
    match req.path.as_str() {
        "/rpc/Switch.Set" | "/rpc/Switch.GetStatus" if id != "0" => not_found(id),
        "/rpc/Switch.Set" => {
            let to = match req.query.get("on").map(String::as_str) {
                Some("true") => true,
                Some("false") => false,
                _ => {
                    return (
                        500,
                        json!({"code": -103, "message": "Missing required argument 'on'!"})
                            .to_string(),
                    );
                }
            };
            let (was, _) = switch(state, Some(to));
            (200, json!({"was_on": was}).to_string())
        }
        "/rpc/Switch.GetStatus" => {
            let on = state.lock().expect("state").on;
            (
                200,
                json!({"id": 0, "source": "http", "output": on, "apower": 0.0,
                       "voltage": 230.1, "temperature": {"tC": 41.2, "tF": 106.2}})
                .to_string(),
            )
        }
        _ => (
            404,
            json!({"code": 404, "message": format!("No handler for {}", req.path)}).to_string(),
        ),
    }
}

// ---- Kasa ----

fn xor(data: &[u8], encrypt: bool) -> Vec<u8> {
    let mut key: u8 = 0xAB;
    data.iter()
        .map(|&b| {
            let out = key ^ b;
            key = if encrypt { out } else { b };
            out
        })
        .collect()
}

fn sysinfo(on: bool) -> Value {
    json!({
        "sw_ver": "1.0.2 Build 200804 Rel.095306",
        "hw_ver": "1.0",
        "model": "HS103(EU)",
        "deviceId": "8006A1B2C3D4E5F60718293A4B5C6D7E8F901234",
        "oemId": "211C91F3C6FA93568D818524FC170CEC",
        "hwId": "B25ECBDEE0D8E6F5F2CAB2B2A1D3E2C6",
        "rssi": -48,
        "latitude_i": 0,
        "longitude_i": 0,
        "alias": "labwright test plug",
        "status": "new",
        "mic_type": "IOT.SMARTPLUGSWITCH",
        "feature": "TIM",
        "mac": "50:C7:BF:00:00:01",
        "updating": 0,
        "led_off": 0,
        "relay_state": i32::from(on),
        "on_time": 0,
        "icon_hash": "",
        "dev_name": "Smart Wi-Fi Plug Mini",
        "active_mode": "none",
        "next_action": {"type": -1},
        "ntc_state": 0,
        "err_code": 0
    })
}

fn kasa_answer(request: &Value, state: &Mutex<State>) -> Value {
    let mut answer = serde_json::Map::new();
    let Some(targets) = request.as_object() else {
        return json!({"err_code": -1, "err_msg": "json format error"});
    };
    for (target, commands) in targets {
        if target == "context" {
            continue;
        }
        if target != "system" {
            answer.insert(
                target.clone(),
                json!({"err_code": -1, "err_msg": "module not support"}),
            );
            continue;
        }
        let mut results = serde_json::Map::new();
        for (cmd, arg) in commands.as_object().into_iter().flatten() {
            let result = match cmd.as_str() {
                "get_sysinfo" => sysinfo(state.lock().expect("state").on),
                "set_relay_state" => match arg.get("state").and_then(Value::as_i64) {
                    Some(n @ (0 | 1)) => {
                        switch(state, Some(n == 1));
                        json!({"err_code": 0})
                    }
                    _ => json!({"err_code": -3, "err_msg": "invalid argument"}),
                },
                _ => json!({"err_code": -2, "err_msg": "member not support"}),
            };
            results.insert(cmd.clone(), result);
        }
        answer.insert(target.clone(), Value::Object(results));
    }
    Value::Object(answer)
}

fn serve_kasa(mut conn: TcpStream, state: &Mutex<State>) {
    loop {
        let mut len = [0u8; 4];
        if conn.read_exact(&mut len).is_err() {
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > 64 * 1024 {
            return;
        }
        let mut cipher = vec![0u8; len];
        if conn.read_exact(&mut cipher).is_err() {
            return;
        }
        let plain = xor(&cipher, false);
        let text = String::from_utf8_lossy(&plain).into_owned();
        let silent = {
            let mut s = state.lock().expect("state");
            s.requests.push(text.clone());
            s.silent
        };
        if silent {
            let mut sink = [0u8; 64];
            while conn.read(&mut sink).is_ok_and(|n| n > 0) {}
            return;
        }
        let answer = match serde_json::from_str::<Value>(&text) {
            Ok(request) => kasa_answer(&request, state),
            Err(_) => json!({"err_code": -1, "err_msg": "json format error"}),
        }
        .to_string();
        let mut out = (answer.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&xor(answer.as_bytes(), true));
        if conn.write_all(&out).is_err() {
            return;
        }
    }
}
