//! Authentication, authorization, tenant isolation and bad input at both edges (REST and gRPC).
//! Every rejection must leave nothing behind.

mod support;

use std::time::Duration;

use labwright_core::fleet::RawDevice;
use labwright_wire::v1::{self as pb, host_link_client::HostLinkClient};
use serde_json::json;
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
    let (_, keys) = s.get(&s.admin_key, "/api/v1/keys").await;
    let id = keys
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == "to revoke")
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
async fn grpc_reflection_lists_the_host_link() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let channel = tonic::transport::Endpoint::from_shared(s.grpc())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut client = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("reflection")
        .into_inner();
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
