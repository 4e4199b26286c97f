//! The Docker engine side of a terminal: find the session's container, start a shell in it with a
//! TTY, attach to it, resize it, and make sure it is gone afterwards.
//!
//! Attaching does not go through bollard's `start_exec`: its output decoder treats a chunk that
//! starts with a byte 0, 1 or 2 as a multiplexing header even for a TTY, so a program printing
//! such a byte could stall the terminal. The attach is a plain HTTP upgrade on a connection of
//! our own, and the stream after it is raw terminal bytes both ways.

use std::{collections::HashMap, io, time::Duration};

use bollard::{
    Docker,
    exec::{CreateExecOptions, ResizeExecOptions},
};
use labwright_service::docker::DockerError;
use labwright_wire::docker::labels;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpStream, UnixStream},
};
use uuid::Uuid;

/// Where the engine listens (parsed once, in `labwright_service::docker`).
pub use labwright_service::docker::EngineAddr as Addr;

/// A raw duplex connection to the engine.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("Docker engine: {0}")]
    Api(#[from] bollard::errors::Error),
    #[error("Docker engine connection: {0}")]
    Io(#[from] io::Error),
    #[error("Docker engine refused the attach: {0}")]
    Attach(String),
}

/// What the gateway knows of a session's container.
#[derive(Debug, PartialEq, Eq)]
pub enum Container {
    /// Running, and labelled as this session of this tenant of this installation.
    Running,
    Stopped,
    /// Missing, or not the ticket's (a mismatch looks the same as a missing one).
    Missing,
}

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    addr: Addr,
    /// `v1.41` and such: the version agreed with the engine.
    version: String,
    managed: String,
}

/// An exec attached with a TTY: its id and the raw stream (plus any bytes read past the
/// response head).
pub struct Attached {
    pub exec_id: String,
    pub stream: Box<dyn Duplex>,
    pub early: Vec<u8>,
}

impl Engine {
    pub async fn connect(host: &str, managed: String) -> Result<Self, EngineError> {
        let connection = match labwright_service::docker::connect(host, 60).await {
            Ok(c) => c,
            Err(DockerError::Engine(e)) => return Err(EngineError::Api(e)),
            Err(e @ DockerError::Address(_)) => return Err(EngineError::Attach(e.to_string())),
        };
        Ok(Self {
            version: connection.version_path(),
            docker: connection.docker,
            addr: connection.addr,
            managed,
        })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub async fn ping(&self) -> Result<(), EngineError> {
        self.docker.ping().await?;
        Ok(())
    }

    /// The container, checked against the ticket: its labels must name this installation, the
    /// session and the tenant.
    pub async fn container(
        &self,
        id: &str,
        session: Uuid,
        tenant: Uuid,
    ) -> Result<Container, EngineError> {
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Ok(Container::Missing);
        }
        let c = match self.docker.inspect_container(id, None).await {
            Ok(c) => c,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(Container::Missing),
            Err(e) => return Err(e.into()),
        };
        let l: HashMap<String, String> = c
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let is = |k: &str, v: &str| l.get(k).is_some_and(|x| x == v);
        if !(is(labels::MANAGED, &self.managed)
            && is(labels::SESSION, &session.to_string())
            && is(labels::TENANT, &tenant.to_string()))
        {
            return Ok(Container::Missing);
        }
        let running = c.state.and_then(|s| s.running).unwrap_or(false);
        Ok(if running {
            Container::Running
        } else {
            Container::Stopped
        })
    }

    /// Creates the shell exec (marked with `LW_TERMINAL=<marker>` so it can be found and ended)
    /// and attaches to it.
    pub async fn start_shell(
        &self,
        container: &str,
        shell: &[String],
        term: &str,
        marker: Uuid,
    ) -> Result<Attached, EngineError> {
        let exec = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(true),
                    env: Some(vec![
                        format!("TERM={term}"),
                        format!("LW_TERMINAL={}", marker.simple()),
                    ]),
                    cmd: Some(shell.to_vec()),
                    ..Default::default()
                },
            )
            .await?;
        let (stream, early) = self.attach(&exec.id).await?;
        Ok(Attached {
            exec_id: exec.id,
            stream,
            early,
        })
    }

    /// `POST /exec/{id}/start` upgraded to a raw stream.
    pub async fn attach(&self, exec_id: &str) -> Result<(Box<dyn Duplex>, Vec<u8>), EngineError> {
        let mut stream: Box<dyn Duplex> = match &self.addr {
            Addr::Unix(p) => Box::new(UnixStream::connect(p).await?),
            Addr::Tcp(a) => {
                let s = TcpStream::connect(a).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
        };
        let body = r#"{"Detach":false,"Tty":true}"#;
        let head = format!(
            "POST /{}/exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n{body}",
            self.version,
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        let mut buf = Vec::with_capacity(1024);
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 16 * 1024 {
                return Err(EngineError::Attach("response head too long".into()));
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(EngineError::Attach("connection closed".into()));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let status = String::from_utf8_lossy(&buf[..end]);
        let line = status.lines().next().unwrap_or_default().to_string();
        if !(line.contains(" 101 ") || line.contains(" 200 ")) {
            let mut rest = String::from_utf8_lossy(&buf[end..]).into_owned();
            rest.truncate(200);
            return Err(EngineError::Attach(format!("{line} {}", rest.trim())));
        }
        Ok((stream, buf[end..].to_vec()))
    }

    pub async fn resize(&self, exec_id: &str, cols: u16, rows: u16) -> Result<(), EngineError> {
        self.docker
            .resize_exec(
                exec_id,
                ResizeExecOptions {
                    height: rows,
                    width: cols,
                },
            )
            .await?;
        Ok(())
    }

    /// `(running, exit code)` of an exec.
    pub async fn exec_state(&self, exec_id: &str) -> Result<(bool, Option<i64>), EngineError> {
        let i = self.docker.inspect_exec(exec_id).await?;
        Ok((i.running.unwrap_or(false), i.exit_code))
    }

    /// Ends the shell and everything it started (they carry its marker in their environment):
    /// SIGHUP, as a closing terminal would, then SIGKILL for what ignores it. Docker has no call
    /// to stop an exec, and a shell whose client left would otherwise live on.
    pub async fn end_shell(
        &self,
        container: &str,
        exec_id: &str,
        marker: Uuid,
    ) -> Result<bool, EngineError> {
        for signal in ["HUP", "KILL"] {
            match self.exec_state(exec_id).await {
                Ok((false, _)) => return Ok(true),
                Ok((true, _)) => {}
                // The exec went with its container (the session was removed).
                Err(EngineError::Api(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                })) => return Ok(true),
                Err(e) => return Err(e),
            }
            let script = "for p in /proc/[0-9]*; do \
                if tr '\\000' '\\n' < \"$p/environ\" 2>/dev/null | grep -qx \"LW_TERMINAL=$2\"; then \
                kill -$1 \"${p#/proc/}\" 2>/dev/null; fi; done";
            let killer = self
                .docker
                .create_exec(
                    container,
                    CreateExecOptions::<String> {
                        cmd: Some(vec![
                            "/bin/sh".into(),
                            "-c".into(),
                            script.into(),
                            "lw-end".into(),
                            signal.into(),
                            marker.simple().to_string(),
                        ]),
                        ..Default::default()
                    },
                )
                .await;
            match killer {
                Ok(k) => {
                    self.docker
                        .start_exec(
                            &k.id,
                            Some(bollard::exec::StartExecOptions {
                                detach: true,
                                ..Default::default()
                            }),
                        )
                        .await?;
                    // Wait for the killer, then give the shell a moment to go.
                    for _ in 0..40 {
                        if !self.exec_state(&k.id).await?.0 {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                }
                // The container is gone or stopped: so is the shell.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404 | 409,
                    ..
                }) => return Ok(true),
                Err(e) => return Err(e.into()),
            }
            for _ in 0..40 {
                if !self.exec_state(exec_id).await?.0 {
                    return Ok(true);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        Ok(!self.exec_state(exec_id).await?.0)
    }
}
