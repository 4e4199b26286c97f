//! Artifacts in an S3-compatible object store: the api-server configured with
//! `artifacts_url = "s3://bucket/prefix"` stores and serves reference images through a real S3
//! API server (moto's standalone server, installed by scripts/test), with the endpoint and
//! credentials from the standard `AWS_*` variables.

mod support;

use std::{process::Child, time::Duration};

use support::*;

struct S3Server(Child);

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn reference_images_live_in_an_s3_bucket() {
    let port = free_port();
    let server = S3Server(
        std::process::Command::new(env("LABWRIGHT_TEST_S3_SERVER"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the S3 server"),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    eventually(Duration::from_secs(30), "S3 server up", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
    })
    .await;
    let status = unsigned_s3("PUT", format!("{endpoint}/lab-artifacts"))
        .await
        .0;
    assert_eq!(status, 200, "bucket created");
    let mut config = test_config(&fresh_database().await);
    config.artifacts_url = "s3://lab-artifacts/site-a".into();
    let aws = [
        ("AWS_ENDPOINT", endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "labwright-test".into()),
        ("AWS_SECRET_ACCESS_KEY", "labwright-test-secret".into()),
    ];
    let (_config, mut process, base, admin) = start_binary_with(config, &aws).await;
    let png = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../samples/references/home-title.png"),
    )
    .expect("sample reference");
    let (status, body) = send_bytes(
        "PUT",
        format!("{base}/api/v1/references/logo"),
        admin.clone(),
        "image/png",
        png.clone(),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let (status, ct, served) =
        get_bytes(format!("{base}/api/v1/references/logo"), admin.clone()).await;
    assert_eq!((status, ct.as_str()), (200, "image/png"));
    assert_eq!(served, png, "served back from the bucket byte for byte");

    // The object is in the bucket, under the configured prefix.
    let (status, listing) =
        unsigned_s3("GET", format!("{endpoint}/lab-artifacts?prefix=site-a/")).await;
    assert_eq!(status, 200);
    assert!(
        listing.contains("site-a/tenants/") && listing.contains("/references/logo/"),
        "{listing}"
    );
    let _ = process.kill();
    let _ = process.wait();
    drop(server);
}

/// A plain (unsigned) call to the S3 server for setup and inspection: status and body.
async fn unsigned_s3(method: &'static str, url: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = if method == "PUT" {
            agent.put(&url).send_empty()
        } else {
            agent.get(&url).call()
        }
        .expect("S3 call");
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    })
    .await
    .expect("S3 call task")
}
