//! A TCP proxy in front of a real peer (PostgreSQL, RabbitMQ), which a test cuts off and
//! restores: an outage as the process under test sees it.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::net::TcpListener;

/// Forwards every connection to its target until cut off (dropping every connection and
/// refusing new ones), then again once restored.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let (gen_tx, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(gen_tx);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !AtomicBool::load(&up2, Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            generation,
        }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Rewrites the host:port of a URL (postgres:// or amqp://) to go through `addr`.
pub fn via(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (auth, after) = rest
        .rsplit_once('@')
        .map(|(a, r)| (format!("{a}@"), r))
        .unwrap_or((String::new(), rest));
    let path_start = after.find('/').unwrap_or(after.len());
    format!("{scheme}://{auth}{addr}{}", &after[path_start..])
}

/// The host:port a URL (postgres:// or amqp://) points at.
pub fn target_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").expect("scheme").1;
    let after = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    let hostport = &after[..after.find('/').unwrap_or(after.len())];
    let hostport = if hostport.starts_with("localhost:") {
        hostport.replacen("localhost", "127.0.0.1", 1)
    } else {
        hostport.to_string()
    };
    hostport.parse().expect("host:port")
}
