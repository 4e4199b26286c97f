//! Authentication, authorization, tenant isolation and bad input at both edges (REST and gRPC).
//! Every rejection must leave nothing behind.

mod support;

use std::time::Duration;

use labwright_core::fleet::RawDevice;
use labwright_wire::v1::{self as pb, host_link_client::HostLinkClient};
use serde_json::{Value, json};
use support::*;
use tokio_stream::wrappers::ReceiverStream;

const WAIT: Duration = Duration::from_secs(20);

/// Opens a host stream with `token` and `hello`, returning the first server reply or the error.
async fn connect_raw(
    grpc: String,
    token: Option<&str>,
    hello: pb::Hello,
) -> Result<pb::ServerMessage, tonic::Status> {
    let mut client = HostLinkClient::connect(grpc).await.expect("connect");
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::HostMessage {
        body: Some(pb::host_message::Body::Hello(hello)),
    })
    .await
    .expect("queue hello");
    let mut req = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(t) = token {
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("header"),
        );
    }
    let mut inbound = client.session(req).await?.into_inner();
    let first = inbound.message().await?;
    drop(tx);
    first.ok_or_else(|| tonic::Status::aborted("stream ended"))
}

fn pb_hello(name: &str, devices: Vec<RawDevice>) -> pb::Hello {
    pb::Hello {
        host_name: name.into(),
        agent_version: "0.1.0".into(),
        info: None,
        running_executions: vec![],
        // Status online, as `device` leaves it unset.
        devices: devices.into_iter().map(pb::DeviceInfo::from).collect(),
    }
}

async fn count_rows(db: &str, table: &str) -> i64 {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(db).await.expect("connect");
    let rows: Vec<N> = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .load(&mut conn)
        .await
        .expect("count");
    rows[0].n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_on_both_edges_and_nothing_is_written() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let host_token = s.create_key("host", "to revoke").await;
    let unknown = format!("lw_{}", "ab".repeat(32));

    let hello = || pb_hello("intruder", vec![device("d1", "sim-stb", &[])]);
    for token in [None, Some("garbage"), Some(unknown.as_str())] {
        let err = connect_raw(s.grpc(), token, hello())
            .await
            .expect_err("refused");
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{token:?}: {err}");
    }
    // A person's key cannot open the host link.
    let err = connect_raw(s.grpc(), Some(&s.admin_key), hello())
        .await
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);

    // Revoked: works before, refused after.
    connect_raw(s.grpc(), Some(&host_token), pb_hello("legit", vec![]))
        .await
        .expect("valid token connects");
    let id = revoke_named(&s, "to revoke").await;
    let err = connect_raw(s.grpc(), Some(&host_token), hello())
        .await
        .expect_err("revoked");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let (_, keys) = s.get(&s.admin_key, "/api/v1/keys").await;
    assert!(
        keys.as_array()
            .expect("keys")
            .iter()
            .any(|k| k["id"] == id.as_str() && !k["revoked_at"].is_null())
    );

    // REST: missing, garbage, unknown → 401 with the stable code; host tokens → 403.
    for key in [None, Some("nope".to_string()), Some(unknown.clone())] {
        let (status, body) = http("GET", s.url("/api/v1/hosts"), key, None).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], "unauthenticated");
    }
    let fresh_host_token = s.create_key("host", "rest attempt").await;
    let (status, body) = s.get(&fresh_host_token, "/api/v1/hosts").await;
    assert_eq!(status, 403, "{body}");

    // Nothing of the intruder was stored; only "legit" exists.
    assert_eq!(count_rows(&db, "hosts WHERE name = 'intruder'").await, 0);
    assert_eq!(count_rows(&db, "hosts").await, 1);
    // Keys are stored hashed: no secret appears in the table.
    assert_eq!(
        count_rows(
            &db,
            &format!(
                "api_keys WHERE key_hash = '{}' OR key_hash = '{}'",
                s.admin_key, host_token
            )
        )
        .await,
        0
    );
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_hellos_are_rejected_naming_the_field_and_nothing_is_persisted() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let token = s.create_key("host", "pi").await;
    let many: Vec<RawDevice> = (0..2000)
        .map(|i| device(&format!("d{i}"), "sim-stb", &[]))
        .collect();
    let cases: Vec<(pb::Hello, &str)> = vec![
        (pb_hello("", vec![]), "host_name"),
        (pb_hello(&"x".repeat(200), vec![]), "host_name"),
        (pb_hello("pi", many), "devices"),
        (
            pb_hello("pi", vec![device("a", "m", &[]), device("a", "m", &[])]),
            "devices[1].device_id",
        ),
        (
            pb_hello(
                "pi",
                vec![RawDevice {
                    driver: "teleport".into(),
                    ..device("a", "m", &[])
                }],
            ),
            "devices[0].driver",
        ),
        (
            pb_hello(
                "pi",
                vec![RawDevice {
                    name: "bad\u{7}name".into(),
                    ..device("a", "m", &[])
                }],
            ),
            "devices[0].name",
        ),
        (
            pb_hello(
                "pi",
                vec![RawDevice {
                    capabilities: vec!["x-ray".into()],
                    ..device("a", "m", &[])
                }],
            ),
            "devices[0].capabilities[0]",
        ),
    ];
    for (hello, field) in cases {
        let err = connect_raw(s.grpc(), Some(&token), hello)
            .await
            .expect_err(field);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{field}: {err}");
        assert!(
            err.message().starts_with(&format!("{field}:")),
            "{field}: {}",
            err.message()
        );
    }
    // A stream whose first message is not a hello.
    let mut client = HostLinkClient::connect(s.grpc()).await.expect("connect");
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(pb::HostMessage {
        body: Some(pb::host_message::Body::Heartbeat(pb::Heartbeat::default())),
    })
    .await
    .expect("send");
    let mut req = tonic::Request::new(ReceiverStream::new(rx));
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let err = client.session(req).await.expect_err("no hello");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    assert_eq!(count_rows(&db, "hosts").await, 0);
    assert_eq!(count_rows(&db, "devices").await, 0);
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tenant_sees_none_of_the_first_tenants_fleet() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let token_a = s.create_key("host", "a").await;
    let agent = spawn_agent(
        s.grpc(),
        &token_a,
        hello("shared-name", vec![device("stb-1", "sim-stb", &["x"])]),
    );
    let host_a = eventually(WAIT, "tenant A host online", || async {
        let (_, page) = s.get(&s.admin_key, "/api/v1/hosts").await;
        page["items"]
            .as_array()
            .and_then(|a| a.first().cloned())
            .filter(|h| h["status"] == "online")
    })
    .await;
    let (_, devs) = s.get(&s.admin_key, "/api/v1/devices").await;
    let device_a = devs["items"][0]["id"].as_str().expect("device").to_string();
    let host_a_id = host_a["id"].as_str().expect("id").to_string();

    let (_, key_b) = s
        .server
        .keys
        .create_tenant("tenant-b")
        .await
        .expect("tenant b");
    let key_b = key_b.secret;
    let (_, me) = s.get(&key_b, "/api/v1/whoami").await;
    assert_eq!(me["tenant_name"], "tenant-b");
    assert_eq!(me["role"], "admin");
    let (_, hosts) = s.get(&key_b, "/api/v1/hosts").await;
    assert_eq!(hosts["total"], 0);
    let (_, devices) = s.get(&key_b, "/api/v1/devices").await;
    assert_eq!(devices["total"], 0);
    for path in [
        format!("/api/v1/hosts/{host_a_id}"),
        format!("/api/v1/devices/{device_a}"),
    ] {
        let (status, body) = s.get(&key_b, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, _) = http(
        "POST",
        s.url(&format!("/api/v1/hosts/{host_a_id}/ping")),
        Some(key_b.clone()),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, keys_b) = s.get(&key_b, "/api/v1/keys").await;
    assert_eq!(
        keys_b.as_array().expect("keys").len(),
        1,
        "tenant B sees only its own key"
    );
    let (_, keys_a) = s.get(&s.admin_key, "/api/v1/keys").await;
    let a_key_id = keys_a[0]["id"].as_str().expect("id").to_string();
    let (status, _) = http(
        "DELETE",
        s.url(&format!("/api/v1/keys/{a_key_id}")),
        Some(key_b.clone()),
        None,
    )
    .await;
    assert_eq!(status, 404, "tenant B cannot revoke tenant A's key");

    // The same host name in tenant B is a different host.
    let (status, created) = http(
        "POST",
        s.url("/api/v1/keys"),
        Some(key_b.clone()),
        Some(json!({"name": "b host", "role": "host"})),
    )
    .await;
    assert_eq!(status, 201);
    let agent_b = spawn_agent(
        s.grpc(),
        created["secret"].as_str().expect("secret"),
        hello("shared-name", vec![]),
    );
    let host_b = eventually(WAIT, "tenant B host online", || async {
        let (_, page) = s.get(&key_b, "/api/v1/hosts").await;
        page["items"]
            .as_array()
            .and_then(|a| a.first().cloned())
            .filter(|h| h["status"] == "online")
    })
    .await;
    assert_ne!(host_b["id"], host_a["id"]);
    let (_, hosts_a) = s.get(&s.admin_key, "/api/v1/hosts").await;
    assert_eq!(hosts_a["total"], 1);
    assert_eq!(
        hosts_a["items"][0]["device_count"], 1,
        "tenant B's hello did not touch tenant A's host"
    );
    agent.stop.cancel();
    agent_b.stop.cancel();
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_bad_rest_input_get_structured_errors() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let viewer = s.create_key("viewer", "read only").await;
    let operator = s.create_key("operator", "ci").await;

    let (status, body) = s.get(&viewer, "/api/v1/hosts").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.get(&viewer, "/api/v1/keys").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _) = http(
        "POST",
        s.url("/api/v1/keys"),
        Some(operator.clone()),
        Some(json!({"name": "x", "role": "admin"})),
    )
    .await;
    assert_eq!(status, 403, "operators cannot mint keys");
    let random = uuid::Uuid::new_v4();
    let (status, _) = http(
        "POST",
        s.url(&format!("/api/v1/hosts/{random}/ping")),
        Some(viewer.clone()),
        None,
    )
    .await;
    assert_eq!(status, 403, "viewers cannot push commands");

    let bad = [
        "/api/v1/hosts?status=sleeping",
        "/api/v1/hosts?limit=0",
        "/api/v1/hosts?limit=100000",
        "/api/v1/hosts?offset=-1",
        "/api/v1/hosts?colour=red",
        "/api/v1/devices?tag=has%20space",
        "/api/v1/hosts/not-a-uuid",
    ];
    for path in bad {
        let (status, body) = s.get(&s.admin_key, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_argument", "{path}");
        assert!(
            !body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
        );
    }
    let (status, body) = s
        .get(&s.admin_key, &format!("/api/v1/hosts/{random}"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = s.get(&s.admin_key, "/api/v1/nowhere").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    for body in [
        json!({"name": "x", "role": "root"}),
        json!({"name": "", "role": "viewer"}),
        json!({"name": "x"}),
        json!({"name": "x", "role": "viewer", "extra": 1}),
    ] {
        let (status, resp) = http(
            "POST",
            s.url("/api/v1/keys"),
            Some(s.admin_key.clone()),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {resp}");
        assert_eq!(resp["error"]["code"], "invalid_argument");
    }
    // The admin key cannot revoke itself (that would lock the tenant out).
    let (_, me) = s.get(&s.admin_key, "/api/v1/whoami").await;
    let (status, _) = http(
        "DELETE",
        s.url(&format!(
            "/api/v1/keys/{}",
            me["key_id"].as_str().expect("id")
        )),
        Some(s.admin_key.clone()),
        None,
    )
    .await;
    assert_eq!(status, 409);

    // Health, OpenAPI and Swagger UI are served; the document lists the fleet routes.
    let (status, _) = http("GET", s.url("/healthz"), None, None).await;
    assert_eq!(status, 200);
    let (status, ready) = http("GET", s.url("/readyz"), None, None).await;
    assert_eq!(
        (status, ready["database"].as_str(), ready["broker"].as_str()),
        (200, Some("ok"), Some("ok"))
    );
    let (status, doc) = http("GET", s.url("/api/v1/openapi.json"), None, None).await;
    assert_eq!(status, 200, "{doc}");
    for p in [
        "/api/v1/hosts",
        "/api/v1/hosts/{id}",
        "/api/v1/devices",
        "/api/v1/devices/{id}",
        "/api/v1/keys",
    ] {
        assert!(doc["paths"][p].is_object(), "openapi lacks {p}");
    }
    let (status, _) = http("GET", s.url("/swagger-ui/"), None, None).await;
    assert_eq!(status, 200);
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_reflection_is_off_by_default_and_lists_the_host_link_when_on() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    async fn reflect(
        grpc: String,
    ) -> Result<tonic::Streaming<tonic_reflection::pb::v1::ServerReflectionResponse>, tonic::Status>
    {
        let channel = tonic::transport::Endpoint::from_shared(grpc)
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        Ok(ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await?
            .into_inner())
    }
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let err = reflect(s.grpc()).await.expect_err("reflection is off");
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err}");
    s.server.shutdown().await;

    let db = fresh_database().await;
    let mut config = test_config(&db);
    config.grpc_reflection = true;
    let s = TestServer::start(config).await;
    let mut stream = reflect(s.grpc()).await.expect("reflection");
    let resp = stream.message().await.expect("message").expect("response");
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection response")
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "labwright.v1.HostLink"),
        "{:?}",
        list.service
    );
    s.server.shutdown().await;
}

/// Revokes the key named `name` of the admin's tenant; its id.
async fn revoke_named(s: &TestServer, name: &str) -> String {
    let (_, keys) = s.get(&s.admin_key, "/api/v1/keys").await;
    let id = keys
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == name)
        .expect("key")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (status, _) = http(
        "DELETE",
        s.url(&format!("/api/v1/keys/{id}")),
        Some(s.admin_key.clone()),
        None,
    )
    .await;
    assert_eq!(status, 204);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_token_is_bound_to_one_host_and_cannot_take_over_another() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let token_a = s.create_key("host", "a").await;
    let token_b = s.create_key("host", "b").await;
    // First use binds each token to its host name.
    connect_raw(s.grpc(), Some(&token_a), pb_hello("pi-a", vec![]))
        .await
        .expect("a enrols");
    connect_raw(
        s.grpc(),
        Some(&token_b),
        pb_hello("pi-b", vec![device("stb-1", "sim-stb", &[])]),
    )
    .await
    .expect("b enrols");
    // A's token speaking as pi-b is refused, naming the binding; pi-b is untouched.
    let err = connect_raw(s.grpc(), Some(&token_a), pb_hello("pi-b", vec![]))
        .await
        .expect_err("a as b");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    assert!(err.message().contains("bound to host \"pi-a\""), "{err}");
    assert_eq!(
        count_rows(
            &db,
            "devices d JOIN hosts h ON h.id = d.host_id WHERE h.name = 'pi-b'"
        )
        .await,
        1,
        "pi-b's devices were not replaced"
    );
    // A fresh token cannot claim a host enrolled with another token either.
    let token_c = s.create_key("host", "c").await;
    let err = connect_raw(s.grpc(), Some(&token_c), pb_hello("pi-b", vec![]))
        .await
        .expect_err("c as b");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    assert!(err.message().contains("another token"), "{err}");
    // C stays unbound by the refusal and may enrol a new host.
    connect_raw(s.grpc(), Some(&token_c), pb_hello("pi-c", vec![]))
        .await
        .expect("c enrols");

    // Bound at creation: only that name; a name already taken is a conflict.
    let (status, created) = http(
        "POST",
        s.url("/api/v1/keys"),
        Some(s.admin_key.clone()),
        Some(json!({"name": "d", "role": "host", "host_name": "pi-d"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["host_name"], "pi-d");
    let token_d = created["secret"].as_str().expect("secret").to_string();
    let err = connect_raw(s.grpc(), Some(&token_d), pb_hello("pi-x", vec![]))
        .await
        .expect_err("d as x");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    connect_raw(s.grpc(), Some(&token_d), pb_hello("pi-d", vec![]))
        .await
        .expect("d enrols");
    for (body, code) in [
        (
            json!({"name": "e", "role": "host", "host_name": "pi-a"}),
            409,
        ),
        (
            json!({"name": "e", "role": "viewer", "host_name": "pi-e"}),
            400,
        ),
        (
            json!({"name": "e", "role": "host", "host_name": "no spaces"}),
            400,
        ),
    ] {
        let (status, resp) = http(
            "POST",
            s.url("/api/v1/keys"),
            Some(s.admin_key.clone()),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, code, "{body}: {resp}");
    }
    // Re-enrolling a host under a new token: revoke the old one first.
    revoke_named(&s, "b").await;
    let token_f = s.create_key("host", "f").await;
    connect_raw(s.grpc(), Some(&token_f), pb_hello("pi-b", vec![]))
        .await
        .expect("pi-b re-enrolled");
    assert_eq!(count_rows(&db, "hosts WHERE name = 'pi-b'").await, 1);
    s.server.shutdown().await;
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket of the API with `key` offered as a subprotocol, as browsers do.
async fn open_ws(url: String, key: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url
        .replacen("http", "ws", 1)
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("labwright, bearer.{key}").parse().expect("header"),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade")
        .0
}

/// Reads until the socket closes; its close code (1006 without a close frame).
async fn close_code(ws: &mut Ws) -> u16 {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Err(_) => panic!("the socket stayed open for {WAIT:?}"),
            Ok(Some(Ok(Message::Close(c)))) => return c.map_or(1005, |c| u16::from(c.code)),
            Ok(Some(Ok(_))) => {}
            Ok(None) | Ok(Some(Err(_))) => return 1006,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_closes_its_sockets_and_host_link_on_every_replica() {
    use labwright_wire::ws::live::close;
    let db = fresh_database().await;
    let a = TestServer::start(test_config(&db)).await;
    // A second replica: same database, broker exchange and data directory.
    let mut config_b = a.config.clone();
    config_b.http_addr = "127.0.0.1:0".parse().expect("addr");
    config_b.grpc_addr = "127.0.0.1:0".parse().expect("addr");
    let b = TestServer::start(config_b).await;

    let host_token = a.create_key("host", "pi").await;
    let agent = spawn_host(
        b.grpc(),
        &host_token,
        "pi",
        vec![sim_device("stb-1", "")],
        &temp_dir("agent"),
    );
    let device = eventually(WAIT, "device online", || async {
        let (_, page) = b.get(&b.admin_key, "/api/v1/devices?status=online").await;
        page["items"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    let viewer = a.create_key("viewer", "watcher").await;
    let mut events = open_ws(b.url("/api/v1/events"), &viewer).await;
    let mut live = open_ws(b.url(&format!("/api/v1/devices/{device}/live")), &viewer).await;
    {
        use futures::StreamExt;
        let first = tokio::time::timeout(WAIT, live.next())
            .await
            .expect("live hello")
            .expect("open")
            .expect("message");
        assert!(first.is_text(), "{first:?}");
    }

    // Revoked through replica A: replica B closes the key's sockets.
    revoke_named(&a, "watcher").await;
    assert_eq!(close_code(&mut events).await, close::KEY_REVOKED);
    assert_eq!(close_code(&mut live).await, close::KEY_REVOKED);
    let (status, _) = b.get(&viewer, "/api/v1/hosts").await;
    assert_eq!(status, 401);

    // The host's enrollment token: its link on B is closed and it cannot come back.
    revoke_named(&a, "pi").await;
    eventually(WAIT, "the host goes offline", || async {
        let (_, page) = a.get(&a.admin_key, "/api/v1/hosts?status=online").await;
        (page["total"] == 0).then_some(())
    })
    .await;
    let error = agent.counter.last_error.lock().expect("lock").clone();
    assert!(error.is_some(), "the agent was disconnected");
    agent.stop.cancel();
    b.server.shutdown().await;
    a.server.shutdown().await;
}

/// A blocking request with `key`, keeping the response's headers: (status, Retry-After, body).
async fn call_with_headers(
    method: &'static str,
    url: String,
    key: Option<String>,
) -> (u16, Option<String>, serde_json::Value) {
    tokio::task::spawn_blocking(move || {
        let client = labwright_testkit::http::client();
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(k) = key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        let mut resp = client
            .run(req.body(()).expect("request"))
            .expect("response");
        let retry = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        (
            resp.status().as_u16(),
            retry,
            serde_json::from_str(&body).unwrap_or_default(),
        )
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_throttled_per_address_on_both_edges() {
    let db = fresh_database().await;
    let mut config = test_config(&db);
    config.auth_failures_allowed = 3;
    // Long enough that the block outlasts the test on any machine.
    config.auth_backoff_ms = 300_000;
    let s = TestServer::start(config).await;
    let host_token = s.create_key("host", "pi").await;
    let wrong = || Some(format!("lw_{}", "cd".repeat(32)));
    // A missing key is not a failure.
    for _ in 0..5 {
        let (status, _, _) = call_with_headers("GET", s.url("/api/v1/hosts"), None).await;
        assert_eq!(status, 401);
    }
    // Three wrong keys are answered, the fourth blocks the address.
    for i in 0..4 {
        let (status, retry, body) = call_with_headers("GET", s.url("/api/v1/hosts"), wrong()).await;
        assert_eq!((status, retry), (401, None), "attempt {i}: {body}");
    }
    let (status, retry, body) = call_with_headers("GET", s.url("/api/v1/hosts"), wrong()).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let retry: u64 = retry.expect("Retry-After").parse().expect("seconds");
    assert!((1..=300).contains(&retry), "{retry}");
    // While blocked nothing is tried, not even a valid key.
    let (status, _, body) =
        call_with_headers("GET", s.url("/api/v1/hosts"), Some(s.admin_key.clone())).await;
    assert_eq!(status, 429, "{body}");
    let err = connect_raw(s.grpc(), Some(&host_token), pb_hello("pi", vec![]))
        .await
        .expect_err("blocked");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(err.metadata().get("retry-after").is_some(), "{err:?}");
    s.server.shutdown().await;

    // The host link counts failures too.
    let db = fresh_database().await;
    let mut config = test_config(&db);
    config.auth_failures_allowed = 2;
    config.auth_backoff_ms = 300_000;
    let s = TestServer::start(config).await;
    let wrong = format!("lw_{}", "ef".repeat(32));
    for _ in 0..3 {
        let err = connect_raw(s.grpc(), Some(&wrong), pb_hello("pi", vec![]))
            .await
            .expect_err("wrong");
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    }
    let err = connect_raw(s.grpc(), Some(&wrong), pb_hello("pi", vec![]))
        .await
        .expect_err("blocked");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    let (status, _, _) =
        call_with_headers("GET", s.url("/api/v1/hosts"), Some(s.admin_key.clone())).await;
    assert_eq!(status, 429);
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_route_authenticates_before_it_reads_the_body() {
    let db = fresh_database().await;
    let mut config = test_config(&db);
    // Every request below presents a wrong key or none: no throttling in this test.
    config.auth_failures_allowed = 10_000;
    let s = TestServer::start(config).await;
    let (status, doc) = http("GET", s.url("/api/v1/openapi.json"), None, None).await;
    assert_eq!(status, 200);
    let unknown = format!("lw_{}", "ab".repeat(32));
    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["post", "put", "patch"] {
            if item.get(method).is_none() {
                continue;
            }
            // Path parameters well-formed or not; the body not JSON at all, or missing; the key
            // missing, or unknown (which takes a database lookup: the body's error must not
            // win the race against it).
            for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".into()] {
                let concrete: String = path
                    .split('/')
                    .skip(1)
                    .map(|part| {
                        if part.starts_with('{') {
                            format!("/{id}")
                        } else {
                            format!("/{part}")
                        }
                    })
                    .collect();
                for key in [None, Some(unknown.clone())] {
                    for body in [Some("{not json"), None] {
                        let (status, resp) = send_raw(
                            method.to_uppercase(),
                            s.url(&format!("{concrete}?limit=nope")),
                            key.clone(),
                            body,
                        )
                        .await;
                        assert_eq!(
                            (status, resp["error"]["code"].as_str()),
                            (401, Some("unauthenticated")),
                            "{method} {concrete} key {:?} body {body:?}: {resp}",
                            key.is_some()
                        );
                    }
                }
            }
            walked += 1;
        }
    }
    assert!(walked >= 10, "only {walked} write routes in the document");
    s.server.shutdown().await;
}

/// `method` on `url` with `key` (or none) and `body` (sent as JSON) or none: (status, JSON
/// body).
async fn send_raw(
    method: String,
    url: String,
    key: Option<String>,
    body: Option<&'static str>,
) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        let client = labwright_testkit::http::client();
        let mut req = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(&url)
            .header("content-type", "application/json");
        if let Some(k) = key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        let mut resp = match body {
            Some(b) => client.run(req.body(b.as_bytes().to_vec()).expect("request")),
            None => client.run(req.body(Vec::new()).expect("request")),
        }
        .expect("response");
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            resp.status().as_u16(),
            serde_json::from_str(&text).unwrap_or_default(),
        )
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_bytes_csp_and_private_artifact_directories() {
    use std::os::unix::fs::PermissionsExt;
    let db = fresh_database().await;
    let mut config = test_config(&db);
    let ui = temp_dir("ui");
    std::fs::write(ui.join("index.html"), "<!doctype html><title>x</title>").expect("ui");
    config.ui_dir = ui;
    let s = TestServer::start(config.clone()).await;
    // A NUL byte in a name (path) or a query: 400 with a code, not 500.
    for path in [
        "/api/v1/testcases/a%00b",
        "/api/v1/trees/a%00b",
        "/api/v1/references/a%00b",
        "/api/v1/devices?tag=a%00b",
    ] {
        let (status, body) = s.get(&s.admin_key, path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_argument")),
            "{path}: {body}"
        );
    }
    // The web UI may not be framed and runs only its own scripts.
    let (status, headers) = tokio::task::spawn_blocking({
        let url = s.url("/");
        move || {
            let resp = labwright_testkit::http::client()
                .get(&url)
                .call()
                .expect("ui");
            (resp.status().as_u16(), resp.headers().clone())
        }
    })
    .await
    .expect("join");
    assert_eq!(status, 200);
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("CSP");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(
        headers.get("x-frame-options").and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
    // Screenshots, references and keys live in directories only the server's user can open.
    for dir in [
        &config.data_dir,
        std::path::Path::new(&config.artifacts_url),
    ] {
        let mode = std::fs::metadata(dir).expect("dir").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    s.server.shutdown().await;
}
