//! Repo sandboxes end to end against real PostgreSQL and RabbitMQ. The tests play the build
//! worker over AMQP: they take jobs off the (namespaced) jobs queue, publish `BuildUpdate`s on the
//! events exchange and listen to the sessions exchange. Each test has a namespace of its own and
//! removes its queues and exchanges at the end.

mod support;

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures::StreamExt;
use labwright_core::build::{BuildJob, BuildUpdate, SessionControl, Stage, UpdateBody};
use labwright_testkit::broker;
use labwright_wire::bus::{self, Names};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, Consumer,
    options::{
        BasicAckOptions, BasicConsumeOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    },
    types::FieldTable,
};
use serde_json::{Value, json};
use support::*;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

/// A test server with a repo-sandbox namespace of its own, and a fake worker's AMQP channel.
struct Sandbox {
    s: TestServer,
    names: Names,
    conn: Connection,
    ch: Channel,
    db: String,
}

impl Sandbox {
    async fn start(allow_private_hosts: bool) -> Self {
        let db = fresh_database().await;
        let mut config = test_config(&db);
        config.namespace = format!("t{}.", Uuid::new_v4().simple());
        config.builds_allow_private_hosts = allow_private_hosts;
        let names = Names::new(&config.namespace, &config.events_exchange);
        let s = TestServer::start(config).await;
        let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .expect("amqp connect");
        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        // The worker's side declares the same topology: any difference in arguments fails here.
        bus::declare(&ch, &names)
            .await
            .expect("the topology declares identically on both sides");
        Self {
            s,
            names,
            conn,
            ch,
            db,
        }
    }

    fn key(&self) -> String {
        self.s.admin_key.clone()
    }

    async fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        http("POST", self.s.url(path), Some(key.into()), Some(body)).await
    }

    async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        http("GET", self.s.url(path), Some(key.into()), None).await
    }

    async fn delete(&self, key: &str, path: &str) -> (u16, Value) {
        http("DELETE", self.s.url(path), Some(key.into()), None).await
    }

    /// POST /api/v1/builds/{id}/cancel.
    async fn cancel(&self, key: &str, id: &str) -> (u16, Value) {
        self.post(key, &format!("/api/v1/builds/{id}/cancel"), json!({}))
            .await
    }

    /// POST /api/v1/sessions/{id}/extend.
    async fn extend(&self, key: &str, id: &str, body: Value) -> (u16, Value) {
        self.post(key, &format!("/api/v1/sessions/{id}/extend"), body)
            .await
    }

    /// A build of the example repository, queued.
    async fn create_app_build(&self) -> Value {
        self.create_build(json!({"repo_url": "https://example.com/org/app.git"}))
            .await
    }

    async fn create_build(&self, body: Value) -> Value {
        let (status, b) = self.post(&self.key(), "/api/v1/builds", body).await;
        assert_eq!(status, 201, "{b}");
        b
    }

    /// A consumer on the jobs queue, as a worker has.
    async fn jobs(&self) -> Consumer {
        let ch = self.conn.create_channel().await.expect("channel");
        ch.basic_consume(
            self.names.jobs_queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume jobs")
    }

    /// A queue of the test's own on the sessions exchange, as each worker binds.
    async fn session_tap(&self) -> Consumer {
        let ch = self.conn.create_channel().await.expect("channel");
        broker::tap(&ch, &self.names.sessions_exchange, "").await
    }

    async fn publish(&self, exchange: &str, routing_key: &str, body: &[u8]) {
        let acked = bus::publish_confirmed(
            &self.ch,
            exchange,
            routing_key,
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("publish");
        assert!(acked);
    }

    async fn update(&self, build: &Value, attempt: Uuid, body: UpdateBody) {
        let u = BuildUpdate {
            build_id: uuid(&build["id"]),
            tenant_id: self.tenant().await,
            attempt,
            body,
        };
        let bytes = serde_json::to_vec(&u).expect("json");
        self.publish(
            &self.s.config.events_exchange,
            &bus::build_update_key(u.tenant_id),
            &bytes,
        )
        .await;
    }

    async fn stage(&self, build: &Value, attempt: Uuid, stage: Stage) {
        self.update(
            build,
            attempt,
            UpdateBody::Stage {
                stage,
                reason: String::new(),
            },
        )
        .await;
    }

    async fn tenant(&self) -> Uuid {
        let (_, me) = self.get(&self.key(), "/api/v1/whoami").await;
        uuid(&me["tenant_id"])
    }

    /// Waits until the build satisfies `check`, returning it.
    async fn build_where(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(WAIT, what, || async {
            let (status, b) = self.get(&self.key(), &format!("/api/v1/builds/{id}")).await;
            (status == 200 && check(&b)).then_some(b)
        })
        .await
    }

    /// Takes a build through every stage to `running` with a session, as a worker would.
    async fn run_build(&self, jobs: &mut Consumer) -> (Value, Uuid) {
        let b = self.create_app_build().await;
        let job = next_job(jobs).await;
        assert_eq!(job.build_id.to_string(), b["id"].as_str().expect("id"));
        let attempt = Uuid::new_v4();
        self.stage(&b, attempt, Stage::Cloning).await;
        self.stage(&b, attempt, Stage::Building).await;
        self.stage(&b, attempt, Stage::Starting).await;
        self.update(
            &b,
            attempt,
            UpdateBody::Session {
                container_id: "abc123def456".into(),
                network: format!("lw-s-{}", &b["id"].as_str().expect("id")[..8]),
            },
        )
        .await;
        self.stage(&b, attempt, Stage::Running).await;
        let id = b["id"].as_str().expect("id").to_string();
        let b = self
            .build_where(&id, "build running with a session", |b| {
                b["stage"] == "running" && b["session"]["status"] == "running"
            })
            .await;
        (b, attempt)
    }

    async fn message_count(&self, queue: &str) -> u32 {
        self.ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue exists")
            .message_count()
    }

    async fn sql(&self, statement: &str) {
        let mut conn = AsyncPgConnection::establish(&self.db)
            .await
            .expect("connect to the test database");
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .expect("sql");
    }

    /// Stops the server and removes the test's queues and exchanges.
    async fn finish(self) {
        let events = self.s.config.events_exchange.clone();
        self.s.server.shutdown().await;
        let n = &self.names;
        for q in [&n.jobs_queue, &n.dead_queue, &n.updates_queue] {
            let _ = self
                .ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for e in [
            &n.jobs_exchange,
            &n.dead_exchange,
            &n.sessions_exchange,
            &events,
        ] {
            let _ = self
                .ch
                .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
}

fn uuid(v: &Value) -> Uuid {
    v.as_str().and_then(|s| s.parse().ok()).expect("a uuid")
}

async fn next_job(jobs: &mut Consumer) -> BuildJob {
    let d = tokio::time::timeout(WAIT, jobs.next())
        .await
        .expect("a job within the wait")
        .expect("consumer open")
        .expect("delivery");
    d.ack(BasicAckOptions::default()).await.expect("ack");
    serde_json::from_slice(&d.data).expect("a BuildJob")
}

async fn next_control(tap: &mut Consumer, what: &str) -> SessionControl {
    let d = tokio::time::timeout(WAIT, tap.next())
        .await
        .unwrap_or_else(|_| panic!("no session control message: {what}"))
        .expect("consumer open")
        .expect("delivery");
    serde_json::from_slice(&d.data).expect("a SessionControl")
}

/// Waits for a control message matching `pick`, skipping others (`Live` snapshots arrive often).
async fn control_where(
    tap: &mut Consumer,
    what: &str,
    pick: impl Fn(&SessionControl) -> bool,
) -> SessionControl {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no {what}");
        let m = next_control(tap, what).await;
        if pick(&m) {
            return m;
        }
    }
}

/// One SSE event: id, event name, data.
#[derive(Debug, PartialEq)]
struct Sse {
    id: Option<i64>,
    event: Option<String>,
    data: String,
}

/// Reads the whole log stream (it ends by itself) and splits it into events.
async fn read_sse(url: String, key: String, last_event_id: Option<i64>) -> (u16, String, Vec<Sse>) {
    let (status, ct, text) = tokio::task::spawn_blocking(move || {
        let mut req = labwright_testkit::http::client()
            .get(&url)
            .header("Authorization", &format!("Bearer {key}"));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", &id.to_string());
        }
        let mut resp = req.call().expect("http call");
        let ct = labwright_testkit::http::content_type(&resp);
        let status = resp.status().as_u16();
        (
            status,
            ct,
            resp.body_mut().read_to_string().unwrap_or_default(),
        )
    })
    .await
    .expect("http task");
    let events = text
        .split("\n\n")
        .filter(|block| !block.trim().is_empty() && !block.starts_with(':'))
        .map(|block| {
            let mut e = Sse {
                id: None,
                event: None,
                data: String::new(),
            };
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    e.id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    e.event = Some(v.into());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push(v);
                }
            }
            e.data = data.join("\n");
            e
        })
        .collect();
    (status, ct, events)
}

fn lines_of(events: &[Sse]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.event.is_none())
        .map(|e| e.data.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_is_queued_for_a_worker_and_its_progress_is_stored_and_streamed() {
    let sb = Sandbox::start(true).await;
    let mut tap = EventTap::bind(&sb.s.config.events_exchange).await;
    let mut jobs = sb.jobs().await;
    let tenant = sb.tenant().await;

    let b = sb
        .create_build(
            json!({"repo_url": "https://example.com/org/app.git", "ref": "main", "subdir": "web"}),
        )
        .await;
    assert_eq!(b["stage"], "queued");
    assert_eq!(b["ref"], "main");
    assert_eq!(b["subdir"], "web");
    let id = b["id"].as_str().expect("id").to_string();

    let job = next_job(&mut jobs).await;
    assert_eq!(job.build_id.to_string(), id);
    assert_eq!(job.tenant_id, tenant);
    assert_eq!(job.repo_url.as_str(), "https://example.com/org/app.git");
    assert_eq!(job.git_ref.as_deref(), Some("main"));
    assert_eq!(job.subdir.as_deref(), Some("web"));
    assert_eq!((job.session_ttl_secs, job.hard_ttl_secs), (1800, 14_400));
    assert!(job.validate().is_ok());

    let (rk, ev) = tap.expect("build.stage", WAIT).await;
    assert_eq!(rk, format!("tenant.{tenant}.builds.stage"));
    assert_eq!(
        (ev["build_id"].as_str(), ev["stage"].as_str()),
        (Some(id.as_str()), Some("queued"))
    );

    // The worker's progress; a batch of log lines is sent twice (a lost confirm) and stored once.
    let attempt = Uuid::new_v4();
    sb.stage(&b, attempt, Stage::Cloning).await;
    let batch = UpdateBody::Log {
        first_line: 0,
        lines: vec!["Cloning into 'src'...".into(), "done.".into(), "".into()],
    };
    sb.update(&b, attempt, batch.clone()).await;
    sb.update(&b, attempt, batch).await;
    sb.stage(&b, attempt, Stage::Detecting).await;
    sb.update(
        &b,
        attempt,
        UpdateBody::Detected {
            stack: "node".into(),
            dockerfile: "FROM node:22\nCOPY . .\n".into(),
            own_dockerfile: false,
        },
    )
    .await;
    sb.stage(&b, attempt, Stage::Building).await;
    sb.update(
        &b,
        attempt,
        UpdateBody::Log {
            first_line: 3,
            lines: vec![
                "Step 1/2 : FROM node:22".into(),
                "Step 2/2 : COPY . .".into(),
            ],
        },
    )
    .await;
    sb.update(
        &b,
        attempt,
        UpdateBody::Image {
            image: format!("labwright/build:{id}"),
        },
    )
    .await;
    // A stage already passed (a late duplicate) is ignored.
    sb.stage(&b, attempt, Stage::Cloning).await;
    sb.stage(&b, attempt, Stage::Starting).await;
    sb.update(
        &b,
        attempt,
        UpdateBody::Session {
            container_id: "0123456789abcdef".into(),
            network: "lw-session-1".into(),
        },
    )
    .await;
    sb.stage(&b, attempt, Stage::Running).await;

    let b = sb
        .build_where(&id, "build running", |b| b["stage"] == "running")
        .await;
    assert_eq!(b["stack"], "node");
    assert_eq!(b["own_dockerfile"], false);
    assert_eq!(b["dockerfile"], "FROM node:22\nCOPY . .\n");
    assert_eq!(b["image"], format!("labwright/build:{id}"));
    let expected = [
        "Cloning into 'src'...",
        "done.",
        "",
        "Step 1/2 : FROM node:22",
        "Step 2/2 : COPY . .",
    ];
    assert_eq!(b["log_tail"], json!(expected), "{b}");
    assert!(
        b["started_at"].is_string() && b["finished_at"].is_null(),
        "{b}"
    );
    assert!(b["durations"]["queued_ms"].as_i64().is_some(), "{b}");
    assert!(b["durations"]["build_ms"].as_i64().is_some(), "{b}");
    assert_eq!(b["session"]["id"], id.as_str());
    assert_eq!(b["session"]["status"], "running");
    assert_eq!(b["session"]["container_id"], "0123456789abcdef");

    let (status, s) = sb.get(&sb.key(), &format!("/api/v1/sessions/{id}")).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["build_id"], id.as_str());
    assert_eq!(s["network"], "lw-session-1");
    let (_, list) = sb.get(&sb.key(), "/api/v1/sessions?status=running").await;
    assert_eq!(list["total"], 1, "{list}");

    // The log as Server-Sent Events: every line once, in order, then the end (the build runs and
    // its log is quiet).
    let url = sb.s.url(&format!("/api/v1/builds/{id}/logs"));
    let (status, ct, events) = read_sse(url.clone(), sb.key(), None).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    assert_eq!(lines_of(&events), expected);
    let last = events.last().expect("events");
    assert_eq!(
        (last.event.as_deref(), last.data.as_str()),
        (Some("end"), "running")
    );
    let ids: Vec<i64> = events.iter().filter_map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // Resuming: after an id (header or query), and without following.
    let (_, _, resumed) = read_sse(url.clone(), sb.key(), Some(ids[2])).await;
    assert_eq!(lines_of(&resumed), &expected[3..]);
    let (_, _, resumed) = read_sse(
        format!("{url}?after={}&follow=false", ids[3]),
        sb.key(),
        None,
    )
    .await;
    assert_eq!(lines_of(&resumed), &expected[4..]);
    assert_eq!(resumed.last().and_then(|e| e.event.as_deref()), Some("end"));

    // Lists, filtered by stage; private hosts are accepted when the server allows them.
    let (_, page) = sb.get(&sb.key(), "/api/v1/builds?stage=running").await;
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["items"][0]["session"]["status"], "running");
    let (status, body) = sb.get(&sb.key(), "/api/v1/builds?stage=exploded").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_argument"))
    );
    sb.create_build(json!({"repo_url": "git://127.0.0.1/x"}))
        .await;
    let (_, page) = sb.get(&sb.key(), "/api/v1/builds").await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][0]["stage"], "queued", "newest first");

    sb.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_are_refused_naming_the_field_and_nothing_is_stored_or_queued() {
    let sb = Sandbox::start(false).await;
    let ok = "https://example.com/org/app.git";
    let cases = [
        (json!({"repo_url": "file:///etc/passwd"}), "repo_url"),
        (json!({"repo_url": "/tmp/x"}), "repo_url"),
        (
            json!({"repo_url": "ext::sh -c touch% /tmp/pwned"}),
            "repo_url",
        ),
        (json!({"repo_url": "--upload-pack=x"}), "repo_url"),
        (
            json!({"repo_url": "https://user:secret@example.com/r"}),
            "repo_url",
        ),
        (json!({"repo_url": "git://127.0.0.1/x"}), "repo_url"),
        (json!({"repo_url": "https://localhost/x"}), "repo_url"),
        (json!({"repo_url": ok, "ref": "--upload-pack=x"}), "ref"),
        (json!({"repo_url": ok, "ref": "main..x"}), "ref"),
        (json!({"repo_url": ok, "subdir": "../etc"}), "subdir"),
        (json!({"repo_url": ok, "subdir": "/abs"}), "subdir"),
    ];
    for (body, field) in cases {
        let (status, resp) = sb.post(&sb.key(), "/api/v1/builds", body.clone()).await;
        assert_eq!(status, 400, "{body}: {resp}");
        assert_eq!(resp["error"]["code"], "invalid_argument", "{body}: {resp}");
        let message = resp["error"]["message"].as_str().expect("message");
        assert!(
            message.starts_with(&format!("{field}:")),
            "{body}: {message}"
        );
        assert!(!resp.to_string().contains("secret"), "{resp}");
    }
    let (_, resp) = sb
        .post(
            &sb.key(),
            "/api/v1/builds",
            json!({"repo_url": "git://127.0.0.1/x"}),
        )
        .await;
    assert!(
        resp["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("private")),
        "says why: {resp}"
    );
    let (status, _) = sb
        .post(
            &sb.key(),
            "/api/v1/builds",
            json!({"repo_url": ok, "extra": 1}),
        )
        .await;
    assert_eq!(status, 400, "unknown fields are refused");

    let (_, page) = sb.get(&sb.key(), "/api/v1/builds").await;
    assert_eq!(page["total"], 0, "nothing stored: {page}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sb.message_count(&sb.names.jobs_queue).await,
        0,
        "nothing queued"
    );
    sb.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_foreign_updates_are_acknowledged_and_change_nothing() {
    let sb = Sandbox::start(true).await;
    let mut jobs = sb.jobs().await;
    let b = sb.create_app_build().await;
    let id = b["id"].as_str().expect("id").to_string();
    next_job(&mut jobs).await;
    let tenant = sb.tenant().await;
    let rk = format!("tenant.{tenant}.builds.update");
    let events = sb.s.config.events_exchange.clone();

    // Not JSON; JSON but not an update; an update that fails validation (workers do not queue).
    sb.publish(&events, &rk, b"\x00not json").await;
    sb.publish(&events, &rk, br#"{"hello": "world"}"#).await;
    let invalid = BuildUpdate {
        build_id: uuid(&b["id"]),
        tenant_id: tenant,
        attempt: Uuid::new_v4(),
        body: UpdateBody::Stage {
            stage: Stage::Queued,
            reason: String::new(),
        },
    };
    sb.publish(&events, &rk, &serde_json::to_vec(&invalid).expect("json"))
        .await;
    // Another tenant's worker claiming this build; an unknown build.
    let (other_tenant, other_key) =
        sb.s.server
            .keys
            .create_tenant("other")
            .await
            .expect("tenant");
    for (build_id, tenant_id) in [(uuid(&b["id"]), other_tenant.0), (Uuid::new_v4(), tenant)] {
        let foreign = BuildUpdate {
            build_id,
            tenant_id,
            attempt: Uuid::new_v4(),
            body: UpdateBody::Stage {
                stage: Stage::Failed,
                reason: "nope".into(),
            },
        };
        sb.publish(
            &events,
            &bus::build_update_key(foreign.tenant_id),
            &serde_json::to_vec(&foreign).expect("json"),
        )
        .await;
    }
    // Then a real update: once it is applied, everything before it was handled.
    let attempt = Uuid::new_v4();
    sb.stage(&b, attempt, Stage::Cloning).await;
    let b = sb
        .build_where(&id, "the real update applied", |b| b["stage"] != "queued")
        .await;
    assert_eq!(b["stage"], "cloning", "nothing else changed it: {b}");
    assert_eq!(b["reason"], "");
    assert_eq!(
        sb.message_count(&sb.names.updates_queue).await,
        0,
        "all acknowledged"
    );

    // A stage of another attempt is ignored unless it starts over (a redelivered job).
    let second = Uuid::new_v4();
    sb.stage(&b, second, Stage::Building).await;
    sb.stage(&b, attempt, Stage::Detecting).await;
    sb.build_where(&id, "detecting", |b| b["stage"] == "detecting")
        .await;
    sb.stage(&b, second, Stage::Cloning).await;
    sb.build_where(&id, "the new attempt starts over", |b| {
        b["stage"] == "cloning"
    })
    .await;
    sb.stage(&b, attempt, Stage::Building).await;
    sb.stage(&b, second, Stage::Detecting).await;
    sb.build_where(&id, "the new attempt goes on", |b| {
        b["stage"] == "detecting"
    })
    .await;

    // The other tenant sees none of it.
    let other = other_key.secret;
    for path in [
        format!("/api/v1/builds/{id}"),
        format!("/api/v1/builds/{id}/logs"),
        format!("/api/v1/sessions/{id}"),
    ] {
        let (status, body) = sb.get(&other, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, _) = sb.cancel(&other, &id).await;
    assert_eq!(status, 404);
    let (_, page) = sb.get(&other, "/api/v1/builds").await;
    assert_eq!(page["total"], 0);
    sb.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_read_sandboxes_but_cannot_start_or_end_them() {
    let sb = Sandbox::start(true).await;
    let mut jobs = sb.jobs().await;
    let (b, _) = sb.run_build(&mut jobs).await;
    let id = b["id"].as_str().expect("id");
    let viewer = sb.s.create_key("viewer", "viewer").await;
    let (status, body) = sb
        .post(
            &viewer,
            "/api/v1/builds",
            json!({"repo_url": "https://example.com/org/app.git"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    for path in [
        "/api/v1/builds".to_string(),
        format!("/api/v1/builds/{id}"),
        "/api/v1/sessions".to_string(),
        format!("/api/v1/sessions/{id}"),
    ] {
        let (status, body) = sb.get(&viewer, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, _) = sb.cancel(&viewer, id).await;
    assert_eq!(status, 403);
    let (status, _) = sb.extend(&viewer, id, json!({"seconds": 60})).await;
    assert_eq!(status, 403);
    let (status, _) = sb.delete(&viewer, &format!("/api/v1/sessions/{id}")).await;
    assert_eq!(status, 403);
    let operator = sb.s.create_key("operator", "operator").await;
    let (status, body) = sb
        .post(
            &operator,
            "/api/v1/builds",
            json!({"repo_url": "https://example.com/org/app.git"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    sb.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_session_stops_it_and_tells_the_workers() {
    let sb = Sandbox::start(true).await;
    let mut jobs = sb.jobs().await;
    let mut tap = sb.session_tap().await;
    let (b, _) = sb.run_build(&mut jobs).await;
    let id = b["id"].as_str().expect("id").to_string();

    let (status, s) = sb
        .delete(&sb.key(), &format!("/api/v1/sessions/{id}"))
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["status"], "stopped");
    assert!(
        s["end_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("deleted by ")),
        "{s}"
    );
    let stop = control_where(&mut tap, "a Stop for the session", |m| {
        matches!(m, SessionControl::Stop { .. })
    })
    .await;
    let SessionControl::Stop { session_id, reason } = stop else {
        unreachable!()
    };
    assert_eq!(session_id.to_string(), id);
    assert!(reason.starts_with("deleted by "), "{reason}");

    let (_, b) = sb.get(&sb.key(), &format!("/api/v1/builds/{id}")).await;
    assert_eq!(b["stage"], "stopped", "{b}");
    assert!(b["finished_at"].is_string());
    assert_eq!(b["session"]["status"], "stopped");
    // Deleting again changes nothing; a stopped session cannot be extended.
    let (status, again) = sb
        .delete(&sb.key(), &format!("/api/v1/sessions/{id}"))
        .await;
    assert_eq!((status, &again["status"]), (200, &json!("stopped")));
    let (status, body) = sb.extend(&sb.key(), &id, json!({"seconds": 60})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let (status, _) = sb
        .delete(&sb.key(), &format!("/api/v1/sessions/{}", Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);
    sb.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_extend_up_to_their_hard_limit() {
    let sb = Sandbox::start(true).await;
    let mut jobs = sb.jobs().await;
    let (b, _) = sb.run_build(&mut jobs).await;
    let id = b["id"].as_str().expect("id").to_string();
    let (_, before) = sb.get(&sb.key(), &format!("/api/v1/sessions/{id}")).await;
    let at = |v: &Value, k: &str| {
        chrono::DateTime::parse_from_rfc3339(v[k].as_str().expect("time")).expect("rfc3339")
    };

    let (status, after) = sb.extend(&sb.key(), &id, json!({"seconds": 600})).await;
    assert_eq!(status, 200, "{after}");
    let moved = (at(&after, "expires_at") - at(&before, "expires_at")).num_seconds();
    assert!((599..=601).contains(&moved), "{moved}");

    // 1800 s to live, 14400 s at most: 13000 s more would pass the cap by about 1000 s.
    let (status, body) = sb.extend(&sb.key(), &id, json!({"seconds": 13_000})).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("seconds:") && message.contains("hard limit"),
        "{message}"
    );
    let (_, unchanged) = sb.get(&sb.key(), &format!("/api/v1/sessions/{id}")).await;
    assert_eq!(unchanged["expires_at"], after["expires_at"]);
    for bad in [json!({"seconds": 0}), json!({"seconds": -5}), json!({})] {
        let (status, _) = sb.extend(&sb.key(), &id, bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
    }
    sb.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_are_swept_and_workers_get_the_live_ones() {
    let sb = Sandbox::start(true).await;
    let mut jobs = sb.jobs().await;
    let mut tap = sb.session_tap().await;
    let (old, _) = sb.run_build(&mut jobs).await;
    let (live, _) = sb.run_build(&mut jobs).await;
    let old_id = uuid(&old["id"]);
    let live_id = uuid(&live["id"]);

    sb.sql(&format!(
        "UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE id = '{old_id}'"
    ))
    .await;
    sb.s.server.sandboxes.wake_sweeper();
    let stop = control_where(
        &mut tap,
        "a Stop for the expired session",
        |m| matches!(m, SessionControl::Stop { session_id, .. } if *session_id == old_id),
    )
    .await;
    assert_eq!(
        stop,
        SessionControl::Stop {
            session_id: old_id,
            reason: "expired".into()
        }
    );
    let snapshot = control_where(
        &mut tap,
        "a Live snapshot without it",
        |m| matches!(m, SessionControl::Live { session_ids, .. } if !session_ids.contains(&old_id)),
    )
    .await;
    let SessionControl::Live {
        session_ids,
        at_unix,
    } = snapshot
    else {
        unreachable!()
    };
    assert_eq!(session_ids, vec![live_id]);
    assert!((at_unix - chrono::Utc::now().timestamp()).abs() < 60);

    let (_, s) = sb
        .get(&sb.key(), &format!("/api/v1/sessions/{old_id}"))
        .await;
    assert_eq!(
        (s["status"].as_str(), s["end_reason"].as_str()),
        (Some("expired"), Some("expired"))
    );
    let (_, b) = sb.get(&sb.key(), &format!("/api/v1/builds/{old_id}")).await;
    assert_eq!(b["stage"], "expired", "{b}");
    let (_, b) = sb
        .get(&sb.key(), &format!("/api/v1/builds/{live_id}"))
        .await;
    assert_eq!(b["stage"], "running", "{b}");
    sb.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_job_fails_its_build() {
    let sb = Sandbox::start(true).await;
    let mut jobs = sb.jobs().await;
    let b = sb.create_app_build().await;
    let id = b["id"].as_str().expect("id").to_string();
    let job = next_job(&mut jobs).await;
    sb.publish(&sb.names.dead_exchange, "", b"garbage").await;
    sb.publish(
        &sb.names.dead_exchange,
        "",
        &serde_json::to_vec(&job).expect("json"),
    )
    .await;
    let b = sb
        .build_where(&id, "build failed", |b| b["stage"] == "failed")
        .await;
    assert_eq!(
        b["reason"],
        "the build failed on 3 workers in a row (worker crashed or the job could not be processed)"
    );
    assert!(b["finished_at"].is_string());
    eventually(WAIT, "dead letters acknowledged", || async {
        (sb.message_count(&sb.names.dead_queue).await == 0).then_some(())
    })
    .await;
    sb.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_are_cancelled_before_they_run_and_not_after() {
    let sb = Sandbox::start(true).await;
    let mut jobs = sb.jobs().await;
    let mut tap = sb.session_tap().await;

    // Queued: cancelled at once; a worker picking it up later is ignored.
    let queued = sb.create_app_build().await;
    let qid = queued["id"].as_str().expect("id").to_string();
    next_job(&mut jobs).await;
    let (status, c) = sb.cancel(&sb.key(), &qid).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["stage"], "cancelled");
    assert!(
        c["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("cancelled by ")),
        "{c}"
    );
    let attempt = Uuid::new_v4();
    sb.stage(&queued, attempt, Stage::Cloning).await;

    // Building: cancelled, and the workers are told (the session id is the build id).
    let building = sb.create_app_build().await;
    let bid = uuid(&building["id"]);
    next_job(&mut jobs).await;
    sb.stage(&building, attempt, Stage::Cloning).await;
    sb.stage(&building, attempt, Stage::Building).await;
    sb.build_where(&bid.to_string(), "building", |b| b["stage"] == "building")
        .await;
    let (status, c) = sb.cancel(&sb.key(), &bid.to_string()).await;
    assert_eq!(
        (status, c["stage"].as_str()),
        (200, Some("cancelled")),
        "{c}"
    );
    control_where(
        &mut tap,
        "a Stop for the cancelled build",
        |m| matches!(m, SessionControl::Stop { session_id, .. } if *session_id == bid),
    )
    .await;
    // Its worker's later stages are ignored; a session it still starts is stopped at once.
    sb.stage(&building, attempt, Stage::Running).await;
    sb.update(
        &building,
        attempt,
        UpdateBody::Session {
            container_id: "feedface".into(),
            network: "lw-late".into(),
        },
    )
    .await;
    control_where(&mut tap, "a Stop for the late session", |m| {
        matches!(m, SessionControl::Stop { session_id, reason } if *session_id == bid && reason.contains("cancelled"))
    })
    .await;
    let (_, b) = sb.get(&sb.key(), &format!("/api/v1/builds/{bid}")).await;
    assert_eq!(b["stage"], "cancelled");
    assert!(b["session"].is_null(), "{b}");
    let (_, q) = sb.get(&sb.key(), &format!("/api/v1/builds/{qid}")).await;
    assert_eq!(q["stage"], "cancelled");

    // Running: delete the session instead. Ended: nothing to cancel.
    let (running, _) = sb.run_build(&mut jobs).await;
    let rid = running["id"].as_str().expect("id");
    let (status, body) = sb.cancel(&sb.key(), rid).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("session"))
    );
    let (status, _) = sb.cancel(&sb.key(), &qid).await;
    assert_eq!(status, 409);
    sb.finish().await;
}
