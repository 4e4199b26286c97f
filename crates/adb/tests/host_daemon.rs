//! The host side against the daemon side, in-process over TCP loopback: handshake and AUTH,
//! shell v2 / exec / sync, ~100 concurrent streams, a 50 MB push and pull byte-exact, stream
//! caps, timeouts that leave the connection usable, a dropped connection, and malformed
//! packets from a device.

mod support;

use labwright_adb::packet::{self, A_CNXN, MAX_PAYLOAD, Packet, VERSION};
use labwright_adb::{AdbClient, AdbKey, BuiltinShell, ConnectOptions, DaemonConfig, TrustedKeys};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use support::{Phone, random_bytes};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One host key for the whole file (generating RSA keys is the slow part).
fn host_key() -> AdbKey {
    static KEY: OnceLock<AdbKey> = OnceLock::new();
    KEY.get_or_init(|| AdbKey::generate("lw-test@host").expect("generate key"))
        .clone()
}

async fn phone_with(trust: bool, tweak: impl FnOnce(&mut DaemonConfig)) -> Phone {
    let keys = TrustedKeys::default();
    if trust {
        keys.trust_public_key(&host_key().public_key_text())
            .expect("trust key");
    }
    Phone::start(keys, tweak).await
}

async fn phone() -> Phone {
    phone_with(true, |_| {}).await
}

async fn connect(addr: &str) -> AdbClient {
    AdbClient::connect_tcp(addr, &host_key(), ConnectOptions::default())
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_shell_v2_and_exec() {
    let phone = phone().await;
    let adb = connect(&phone.addr).await;
    assert_eq!(adb.device().state, "device");
    assert_eq!(
        adb.device().property("ro.product.model"),
        Some("Labwright_Sim_Phone")
    );
    assert!(adb.device().features.iter().any(|f| f == "shell_v2"));
    assert_eq!(adb.device().version, VERSION);

    let out = adb.shell("echo out; echo err >&2; exit 3").await.unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit_code, 3);

    let data = random_bytes(3 << 20, 7);
    std::fs::write(phone.sandbox.join("blob.bin"), &data).unwrap();
    let got = adb.exec("cat blob.bin").await.unwrap();
    assert!(
        got == data,
        "exec output is byte-exact ({} vs {} bytes)",
        got.len(),
        data.len()
    );

    let refused = adb.open("no-such-service:").await.err().unwrap();
    assert_eq!(refused.code(), "adb_stream_refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_streams() {
    let phone = phone().await;
    let data = random_bytes(256 * 1024, 11);
    std::fs::write(phone.sandbox.join("f.bin"), &data).unwrap();
    let adb = Arc::new(connect(&phone.addr).await);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (adb, data) = (adb.clone(), data.clone());
        set.spawn(async move {
            if i % 2 == 0 {
                let got = adb.exec("cat f.bin").await.unwrap();
                assert!(got == data, "stream {i}: exec output differs");
            } else {
                let out = adb.shell(&format!("echo {i}")).await.unwrap();
                assert_eq!(out.stdout, format!("{i}\n").into_bytes());
                assert_eq!(out.exit_code, 0);
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    assert!(adb.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_pull_50_mb_byte_exact() {
    let phone = phone().await;
    let adb = connect(&phone.addr).await;
    let local = labwright_testkit::temp_dir("adb-local");
    let data = random_bytes(50 << 20, 3);
    std::fs::write(local.join("up.bin"), &data).unwrap();

    adb.push_file(&local.join("up.bin"), "/sdcard/Download/big.bin")
        .await
        .unwrap();
    let on_device = std::fs::read(phone.sandbox.join("sdcard/Download/big.bin")).unwrap();
    assert!(on_device == data, "pushed file differs");

    let st = adb.stat("/sdcard/Download/big.bin").await.unwrap();
    assert_eq!(st.size, 50 << 20);
    assert!(st.exists() && !st.is_dir());
    let listing = adb.list("/sdcard/Download").await.unwrap();
    assert!(
        listing
            .iter()
            .any(|e| e.name == "big.bin" && e.stat.size == 50 << 20),
        "{listing:?}"
    );

    let n = adb
        .pull_file("/sdcard/Download/big.bin", &local.join("down.bin"))
        .await
        .unwrap();
    assert_eq!(n, 50 << 20);
    let back = std::fs::read(local.join("down.bin")).unwrap();
    assert!(back == data, "pulled file differs");

    let outside = adb
        .pull_file("/../../etc/passwd", &local.join("x"))
        .await
        .err()
        .unwrap();
    assert_eq!(outside.code(), "adb_sync_failed");
    assert!(!local.join("x").exists());
    let refused = adb
        .push_file(&local.join("up.bin"), "/sdcard/../../escape.bin")
        .await
        .err()
        .unwrap();
    assert_eq!(refused.code(), "adb_sync_failed", "{refused}");
    assert!(
        adb.is_connected(),
        "a refused transfer keeps the connection"
    );
    let _ = std::fs::remove_dir_all(&local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_until_the_key_is_accepted() {
    let phone = phone_with(false, |_| {}).await;
    let key = host_key();
    let quick = ConnectOptions {
        auth_timeout: Duration::from_millis(500),
        ..ConnectOptions::default()
    };
    let err = AdbClient::connect_tcp(&phone.addr, &key, quick)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), "adb_unauthorized");
    assert!(err.to_string().contains(&key.fingerprint()), "{err}");
    assert_eq!(phone.keys.pending().len(), 1);
    assert_eq!(phone.keys.pending()[0].fingerprint, key.fingerprint());

    // A host waiting on the prompt gets in as soon as the key is accepted.
    let patient = ConnectOptions {
        auth_timeout: Duration::from_secs(60),
        ..ConnectOptions::default()
    };
    let addr = phone.addr.clone();
    let k2 = key.clone();
    let waiting = tokio::spawn(async move { AdbClient::connect_tcp(&addr, &k2, patient).await });
    labwright_testkit::eventually(Duration::from_secs(20), "the key offered again", || async {
        (!waiting.is_finished() && !phone.keys.pending().is_empty()).then_some(())
    })
    .await;
    assert!(phone.keys.accept(&key.fingerprint()));
    let adb = waiting.await.unwrap().unwrap();
    assert_eq!(adb.shell("echo in").await.unwrap().stdout, b"in\n");
    // Now trusted: the token signature alone is enough.
    let again = connect(&phone.addr).await;
    assert!(again.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_never_ends_times_out_and_the_connection_stays_usable() {
    let phone = phone().await;
    let adb = connect(&phone.addr).await;
    let marker = phone.sandbox.join("still-running");
    let cmd = format!("touch {m}; sleep 600; rm {m}", m = marker.display());
    let err = adb
        .shell_with_timeout(&cmd, Duration::from_secs(2))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), "adb_timeout");
    assert!(adb.is_connected());
    assert_eq!(adb.shell("echo after").await.unwrap().stdout, b"after\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_unavailable() {
    let phone = phone().await;
    let proxy = labwright_testkit::proxy::Proxy::start(phone.addr.parse().unwrap()).await;
    let adb = Arc::new(connect(&proxy.addr.to_string()).await);
    assert_eq!(adb.shell("echo up").await.unwrap().exit_code, 0);
    let a2 = adb.clone();
    let in_flight = tokio::spawn(async move { a2.shell("sleep 600").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.cut();
    let err = tokio::time::timeout(Duration::from_secs(20), in_flight)
        .await
        .unwrap()
        .unwrap()
        .err()
        .unwrap();
    assert_eq!(err.code(), "adb_unavailable", "{err}");
    labwright_testkit::eventually(
        Duration::from_secs(20),
        "the client to see the drop",
        || async { (!adb.is_connected()).then_some(()) },
    )
    .await;
    assert_eq!(
        adb.shell("echo x").await.err().unwrap().code(),
        "adb_unavailable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_caps_and_a_persistent_shell() {
    let phone = phone_with(true, |c| {
        c.max_streams = 3;
        c.shell = Arc::new(BuiltinShell);
    })
    .await;
    let opts = ConnectOptions {
        max_streams: 2,
        ..ConnectOptions::default()
    };
    let adb = AdbClient::connect_tcp(&phone.addr, &host_key(), opts)
        .await
        .unwrap();
    let mut s1 = adb.persistent_shell().await.unwrap();
    let _s2 = adb.persistent_shell().await.unwrap();
    assert_eq!(
        adb.persistent_shell().await.err().unwrap().code(),
        "adb_too_many_streams"
    );
    for _ in 0..20 {
        s1.key_event("KEYCODE_DPAD_DOWN").await.unwrap();
    }
    assert_eq!(s1.run("echo hi").await.unwrap(), b"hi\n");
    drop(_s2);

    // The daemon's own cap refuses what the host would allow.
    let wide = AdbClient::connect_tcp(&phone.addr, &host_key(), ConnectOptions::default())
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(wide.persistent_shell().await.unwrap());
    }
    assert_eq!(
        wide.persistent_shell().await.err().unwrap().code(),
        "adb_stream_refused"
    );
}

/// A device that speaks its CNXN, then whatever bytes the test gives it.
async fn rogue_device(
    after_cnxn: Vec<u8>,
    cnxn_checksum_ok: bool,
) -> labwright_adb::Result<AdbClient> {
    let (host_end, mut dev) = tokio::io::duplex(1 << 20);
    let device = tokio::spawn(async move {
        let mut head = [0u8; 24];
        dev.read_exact(&mut head).await.expect("read CNXN header");
        let len = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as usize;
        let mut payload = vec![0u8; len];
        dev.read_exact(&mut payload)
            .await
            .expect("read CNXN payload");
        let mut cnxn = Packet::new(
            A_CNXN,
            VERSION,
            MAX_PAYLOAD,
            b"device::features=shell_v2\0".to_vec(),
        )
        .encode();
        if !cnxn_checksum_ok {
            cnxn[16] ^= 0xff;
        }
        dev.write_all(&cnxn).await.expect("write CNXN");
        dev.write_all(&after_cnxn).await.expect("write bytes");
        // Keep the pipe open until the host gives up on it.
        let mut sink = vec![0u8; 4096];
        while matches!(dev.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let r = AdbClient::connect(host_end, &host_key(), ConnectOptions::default()).await;
    if r.is_err() {
        device.abort();
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_from_the_device() {
    let err = rogue_device(vec![], false).await.err().unwrap();
    assert_eq!(err.code(), "adb_checksum_mismatch");

    let mut bad_magic = Packet::new(packet::A_WRTE, 1, 1, b"x".to_vec()).encode();
    bad_magic[20] ^= 0x10;
    let mut oversize = Packet::new(packet::A_WRTE, 1, 1, vec![]).encode();
    oversize[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut unknown = Packet::new(packet::A_WRTE, 1, 1, vec![]).encode();
    unknown[0..4].copy_from_slice(b"ZZZZ");
    unknown[20..24].copy_from_slice(&(u32::from_le_bytes(*b"ZZZZ") ^ 0xffff_ffff).to_le_bytes());
    for (bytes, code) in [
        (bad_magic, "adb_bad_magic"),
        (oversize, "adb_oversize_payload"),
        (unknown, "adb_unknown_command"),
    ] {
        let adb = rogue_device(bytes, true).await.unwrap();
        labwright_testkit::eventually(
            Duration::from_secs(20),
            "the host to drop the rogue device",
            || async { (!adb.is_connected()).then_some(()) },
        )
        .await;
        let err = adb.shell("echo").await.err().unwrap();
        assert_eq!(err.code(), "adb_unavailable");
        assert!(err.to_string().contains(code), "{code}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_and_stdout_flow_at_once_without_deadlock() {
    use labwright_adb::protocol::{self, shell_id};
    let phone = phone().await;
    let adb = connect(&phone.addr).await;
    // `cat` echoes 8 MB of stdin while we are still writing it: both directions of one stream
    // are under flow control at the same time.
    let data = random_bytes(8 << 20, 13);
    let stream = adb.open("shell,v2,raw:cat").await.expect("open");
    let (mut r, mut w) = stream.split();
    let input = data.clone();
    let writer = tokio::spawn(async move {
        for chunk in input.chunks(100_000) {
            w.write(&protocol::shell_packet(shell_id::STDIN, chunk))
                .await?;
        }
        w.write(&protocol::shell_packet(shell_id::CLOSE_STDIN, &[]))
            .await?;
        Ok::<_, labwright_adb::AdbError>(w)
    });
    let mut echoed = Vec::new();
    let mut exit = None;
    let read = async {
        while let Some((id, d)) = protocol::read_shell_packet(&mut r)
            .await
            .expect("shell packet")
        {
            match id {
                shell_id::STDOUT => echoed.extend_from_slice(&d),
                shell_id::EXIT => {
                    exit = d.first().copied();
                    break;
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("cat finishes");
    let _w = writer.await.expect("writer task").expect("stdin written");
    assert_eq!(exit, Some(0));
    assert!(
        echoed == data,
        "cat echoed {} of {} bytes, or different ones",
        echoed.len(),
        data.len()
    );
}
