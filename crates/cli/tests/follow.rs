//! `labwright build --follow` against a scripted api-server on loopback: the log stream is cut
//! mid-event and must be resumed with `Last-Event-ID`, stages are reported on stderr, and the
//! exit status follows the build's outcome. Unexpected requests fail the test loudly.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex},
};

use clap::Parser;
use labwright_cli::Cli;
use serde_json::{Value, json};

const ID: &str = "6f1c2a3b-0000-4000-8000-00000000000a";
const KEY: &str = "lw_secret_key_never_printed";

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    log_requests: Vec<Option<String>>,
    unexpected: Vec<String>,
}

/// What the fake server does: the build's end stage and reason.
#[derive(Clone, Copy)]
struct Script {
    end: &'static str,
    reason: &'static str,
}

fn build(stage: &str, reason: &str) -> Value {
    let session = if stage == "running" {
        json!({"id": ID, "status": "running", "expires_at": "2030-01-01T00:30:00Z", "container_id": "c0ffee"})
    } else {
        Value::Null
    };
    json!({
        "id": ID, "repo_url": "https://example.com/org/app.git", "ref": null, "subdir": null,
        "stage": stage, "reason": reason, "stack": "node", "dockerfile": null,
        "own_dockerfile": false, "image": null, "created_at": "2030-01-01T00:00:00Z",
        "started_at": null, "finished_at": null,
        "durations": {"queued_ms": 12, "build_ms": null}, "log_tail": [], "session": session,
    })
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let req = Request {
        method,
        target,
        headers,
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(req)
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

/// An event stream delimited by the connection closing, as a cut stream is.
fn respond_stream(stream: &mut TcpStream, body: &str) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

fn serve(script: Script) -> (String, Arc<Mutex<State>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let state = Arc::new(Mutex::new(State::default()));
    let shared = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let state = shared.clone();
            std::thread::spawn(move || handle(&mut stream, script, &state));
        }
    });
    (url, state)
}

fn handle(stream: &mut TcpStream, script: Script, state: &Mutex<State>) {
    let Some(req) = read_request(stream) else {
        return;
    };
    let mut st = state.lock().expect("state");
    if req.header("authorization") != Some(&format!("Bearer {KEY}")) {
        drop(st);
        return respond(
            stream,
            "401 Unauthorized",
            "application/json",
            r#"{"error":{"code":"unauthenticated","message":"bad key"}}"#,
        );
    }
    let build_path = format!("/api/v1/builds/{ID}");
    match (req.method.as_str(), req.target.as_str()) {
        ("POST", "/api/v1/builds") => {
            drop(st);
            respond(
                stream,
                "201 Created",
                "application/json",
                &build("queued", "").to_string(),
            )
        }
        ("GET", t) if t == build_path => {
            let stage = match st.log_requests.len() {
                0 | 1 => "building",
                _ => script.end,
            };
            let reason = if stage == script.end {
                script.reason
            } else {
                ""
            };
            drop(st);
            respond(
                stream,
                "200 OK",
                "application/json",
                &build(stage, reason).to_string(),
            )
        }
        ("GET", t) if t.starts_with(&format!("{build_path}/logs?")) => {
            let last = req.header("last-event-id").map(str::to_string);
            st.log_requests.push(last);
            let n = st.log_requests.len();
            drop(st);
            if n == 1 {
                // Cut in the middle of event 3.
                respond_stream(
                    stream,
                    "id: 1\ndata: cloning https://example.com/org/app.git\n\n: keep-alive\n\n\
                     id: 2\r\ndata: step 1/2\r\ndata: step 2/2\r\n\r\nid: 3\ndata: hal",
                );
            } else {
                let end = format!(
                    "id: 3\ndata: half and whole\n\nid: 4\ndata: \n\nevent: end\ndata: {}\n\n",
                    script.end
                );
                respond_stream(stream, &end);
            }
        }
        _ => {
            st.unexpected.push(format!("{} {}", req.method, req.target));
            drop(st);
            respond(
                stream,
                "404 Not Found",
                "application/json",
                r#"{"error":{"code":"not_found","message":"no such thing"}}"#,
            )
        }
    }
}

fn run(url: &str, args: &[&str]) -> (anyhow::Result<()>, String, String) {
    let mut argv = vec!["labwright", "--url", url, "--key", KEY];
    argv.extend(args);
    let cli = Cli::try_parse_from(argv).expect("args");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let res = labwright_cli::run_with(cli, &mut out, &mut err);
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
    (res, text(out), text(err))
}

#[test]
fn follow_resumes_a_cut_stream_and_ends_running() {
    let (url, state) = serve(Script {
        end: "running",
        reason: "",
    });
    let (res, out, err) = run(
        &url,
        &["build", "https://example.com/org/app.git", "--follow"],
    );
    res.expect("a running build exits 0");
    assert_eq!(
        out,
        format!(
            "cloning https://example.com/org/app.git\nstep 1/2\nstep 2/2\nhalf and whole\n\n\
             session {ID} running, expires 2030-01-01T00:30:00Z\n\
             see it with: labwright sessions get {ID}\n"
        )
    );
    let stages: Vec<&str> = err.lines().collect();
    assert_eq!(stages.first(), Some(&"==> queued"), "{err}");
    assert_eq!(stages.last(), Some(&"==> running"), "{err}");
    let st = state.lock().expect("state");
    assert_eq!(st.log_requests, vec![None, Some("2".to_string())]);
    assert!(st.unexpected.is_empty(), "{:?}", st.unexpected);
    assert!(!out.contains(KEY) && !err.contains(KEY));
}

#[test]
fn a_failed_build_exits_1_with_its_reason() {
    let (url, _) = serve(Script {
        end: "failed",
        reason: "clone: repository not found",
    });
    let (res, out, err) = run(
        &url,
        &["build", "https://example.com/org/app.git", "--follow"],
    );
    let e = res.expect_err("a failed build is an error");
    assert_eq!(
        format!("{e:#}"),
        format!("build {ID} failed: clone: repository not found")
    );
    assert!(out.ends_with("half and whole\n\n"), "{out}");
    assert!(err.ends_with("==> failed\n"), "{err}");
}

#[test]
fn json_prints_only_the_final_build() {
    let (url, _) = serve(Script {
        end: "running",
        reason: "",
    });
    let (res, out, err) = run(
        &url,
        &[
            "build",
            "https://example.com/org/app.git",
            "--follow",
            "--json",
        ],
    );
    res.expect("runs");
    let b: Value = serde_json::from_str(&out).expect("stdout is one JSON document");
    assert_eq!(b["stage"], "running");
    assert_eq!(b["session"]["id"], ID);
    assert_eq!(err, "");
}

#[test]
fn logs_of_an_unknown_build_fail_at_once_with_the_api_error() {
    let (url, state) = serve(Script {
        end: "running",
        reason: "",
    });
    let other = "00000000-0000-4000-8000-000000000000";
    let (res, out, _) = run(&url, &["builds", "logs", other, "--follow"]);
    let e = res.expect_err("404");
    assert!(format!("{e:#}").contains("no such thing"), "{e:#}");
    assert_eq!(out, "");
    // Not retried: a refusal is final.
    assert_eq!(state.lock().expect("state").unexpected.len(), 1);
}

#[test]
fn logs_print_the_stored_log() {
    let (url, _) = serve(Script {
        end: "running",
        reason: "",
    });
    let (res, out, _) = run(&url, &["builds", "logs", ID]);
    res.expect("logs");
    assert!(out.starts_with("cloning https://example.com/org/app.git\nstep 1/2\n"));
    assert!(out.ends_with("half and whole\n\n"));
}
