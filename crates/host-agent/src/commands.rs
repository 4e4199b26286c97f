//! Direct commands from the server: the dispatch of every command (runs are handed to
//! [`crate::runner`]), and the ones answered here: ping, cancel, key press, screenshot, power,
//! fault injection and live view. Every refusal is a [`CommandError`] with a result code.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use labwright_core::{
    controller::{ControlError, Key, PowerState},
    jpeg::{self, JpegError, JpegProfile},
    sim::FaultConfig,
};
use labwright_wire::host_link::{
    Command, CommandReply, FromHost, HostCommand, LiveView, PowerAction, Refusal, ResultCode,
};
use tokio::sync::mpsc;

use crate::{console::ConsoleWatchError, drivers::Driver, live::LiveError, runtime::Runtime};

/// Why a command was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no device {0:?} on this host")]
    NoDevice(String),
    #[error("device {device} is running execution {execution}")]
    Busy { device: String, execution: String },
    #[error("execution {0} is not running here")]
    NotRunning(String),
    #[error("device has no {0}")]
    Unsupported(&'static str),
    #[error("{0}")]
    Device(#[from] ControlError),
    #[error("{0}")]
    Encode(#[from] JpegError),
    #[error("reference {name}: {message}")]
    Reference { name: String, message: String },
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    Console(#[from] ConsoleWatchError),
    #[error("this agent has no devices")]
    NoDevices,
    #[error("command task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl CommandError {
    pub fn code(&self) -> ResultCode {
        match self {
            CommandError::NoDevice(_) | CommandError::NotRunning(_) => ResultCode::NotFound,
            CommandError::Busy { .. } => ResultCode::Busy,
            CommandError::Unsupported(_)
            | CommandError::Live(_)
            | CommandError::Console(_)
            | CommandError::NoDevices => ResultCode::Unsupported,
            CommandError::Device(_) | CommandError::Encode(_) => ResultCode::Device,
            CommandError::Reference { .. } => ResultCode::Invalid,
            CommandError::Task(_) => ResultCode::Refused,
        }
    }

    pub fn refusal(&self) -> Refusal {
        Refusal::new(self.code(), self.to_string())
    }
}

/// Commands of a link without devices (lightweight simulated fleets): only pings.
pub fn handle_without_runtime(cmd: Command) -> CommandReply {
    let outcome = match cmd.kind {
        HostCommand::Ping { payload } => Ok(payload),
        _ => Err(Refusal::new(
            ResultCode::Unsupported,
            "this link has no devices",
        )),
    };
    CommandReply {
        command_id: cmd.command_id,
        outcome,
    }
}

impl Runtime {
    /// The driver of one of this host's devices.
    pub(crate) fn device(&self, key: &str) -> Result<&Driver, CommandError> {
        self.driver(key)
            .ok_or_else(|| CommandError::NoDevice(key.to_string()))
    }

    /// Handles a command from the server. Long work (runs) continues after the answer.
    pub async fn handle(self: &Arc<Self>, cmd: Command) -> CommandReply {
        let outcome: Result<Vec<u8>, CommandError> = match cmd.kind {
            HostCommand::Ping { payload } => Ok(payload),
            HostCommand::Run(run) => self.start_execution(*run).map(|()| Vec::new()),
            HostCommand::Cancel { execution_id } => self.cancel(&execution_id).map(|()| Vec::new()),
            HostCommand::PressKey {
                device_id,
                key,
                hold_ms,
            } => self.press(&device_id, key, hold_ms).await,
            HostCommand::Screenshot { device_id } => self.screenshot(&device_id).await,
            HostCommand::SetFaults { device_id, faults } => {
                self.set_faults(&device_id, &faults).map(|()| Vec::new())
            }
            HostCommand::Power { device_id, action } => {
                let outcome = self.power(&device_id, action).await;
                if action != PowerAction::State {
                    self.health.recheck(&device_id);
                }
                outcome
            }
            // The link answers these itself (they need its sender).
            HostCommand::LiveView(_) | HostCommand::ConsoleWatch { .. } => {
                Err(CommandError::Unsupported("live streams here"))
            }
            HostCommand::ConsoleInput { device_id, data } => self
                .console_input(&device_id, data)
                .await
                .map(|()| Vec::new()),
        };
        CommandReply {
            command_id: cmd.command_id,
            outcome: outcome.map_err(|e| e.refusal()),
        }
    }

    /// Starts, renews or stops a device's live view; frames go to `link`.
    pub fn live_view(
        &self,
        cmd: &LiveView,
        link: mpsc::Sender<FromHost>,
    ) -> Result<(), CommandError> {
        let device = self.device(&cmd.device_id)?.device_arc();
        Ok(self.live.set(cmd, device, link)?)
    }

    /// Starts, renews or stops streaming a device's console; output goes to `link`.
    pub fn console_watch(
        &self,
        device_id: &str,
        on: bool,
        link: mpsc::Sender<FromHost>,
    ) -> Result<(), CommandError> {
        let device = self.device(device_id)?.device_arc();
        Ok(self.consoles.set(device_id, on, device, link)?)
    }

    /// Types into a device's console (refused while a run has the device: nothing but its run
    /// changes a leased device).
    async fn console_input(&self, device: &str, data: Vec<u8>) -> Result<(), CommandError> {
        self.refuse_if_busy(device)?;
        let d = self.device(device)?.device_arc();
        if d.console().is_none() {
            return Err(CommandError::Unsupported("console"));
        }
        tokio::task::spawn_blocking(move || -> Result<(), CommandError> {
            let console = d.console().ok_or(CommandError::Unsupported("console"))?;
            Ok(console.send(&data)?)
        })
        .await?
    }

    fn cancel(&self, execution_id: &str) -> Result<(), CommandError> {
        match self.running().get(execution_id) {
            Some(run) => {
                run.cancel.store(true, Ordering::SeqCst);
                Ok(())
            }
            None => Err(CommandError::NotRunning(execution_id.to_string())),
        }
    }

    fn refuse_if_busy(&self, device: &str) -> Result<(), CommandError> {
        match self.busy(device) {
            Some(execution) => Err(CommandError::Busy {
                device: device.to_string(),
                execution,
            }),
            None => Ok(()),
        }
    }

    async fn press(&self, device: &str, key: Key, hold_ms: u32) -> Result<Vec<u8>, CommandError> {
        self.refuse_if_busy(device)?;
        let device = self.device(device)?.device_arc();
        tokio::task::spawn_blocking(move || -> Result<Vec<u8>, CommandError> {
            let remote = device
                .remote()
                .ok_or(CommandError::Unsupported("remote control"))?;
            if hold_ms > 0 {
                remote.long_press(key, Duration::from_millis(u64::from(hold_ms)))?;
            } else {
                remote.press(key)?;
            }
            Ok(Vec::new())
        })
        .await?
    }

    async fn power(&self, device: &str, action: PowerAction) -> Result<Vec<u8>, CommandError> {
        if action != PowerAction::State {
            self.refuse_if_busy(device)?;
        }
        let device = self.device(device)?.device_arc();
        tokio::task::spawn_blocking(move || -> Result<Vec<u8>, CommandError> {
            let power = device
                .power()
                .ok_or(CommandError::Unsupported("power control"))?;
            match action {
                PowerAction::On => power.set(PowerState::On)?,
                PowerAction::Off => power.set(PowerState::Off)?,
                PowerAction::Cycle => power.cycle(Duration::from_secs(2))?,
                PowerAction::State => {}
            }
            Ok(match power.state()? {
                PowerState::On => b"on".to_vec(),
                PowerState::Off => b"off".to_vec(),
            })
        })
        .await?
    }

    async fn screenshot(&self, device: &str) -> Result<Vec<u8>, CommandError> {
        let device = self.device(device)?.device_arc();
        tokio::task::spawn_blocking(move || -> Result<Vec<u8>, CommandError> {
            let frame = device
                .video()
                .ok_or(CommandError::Unsupported("video capture"))?
                .grab()?;
            Ok(jpeg::encode(&frame, 85, JpegProfile::Live)?)
        })
        .await?
    }

    fn set_faults(&self, device: &str, faults: &FaultConfig) -> Result<(), CommandError> {
        self.device(device)?
            .faults()
            .ok_or(CommandError::Unsupported("fault injection"))?
            .set_faults(faults);
        self.health.recheck(device);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DeviceConfig;

    fn runtime(name: &str) -> Arc<Runtime> {
        let dir = std::env::temp_dir().join(format!("lw-commands-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let device = DeviceConfig {
            id: "stb-1".into(),
            name: "STB".into(),
            model: "sim-stb".into(),
            driver: "simulated".into(),
            tags: vec![],
            settings: toml::Table::new(),
        };
        Arc::new(Runtime::new(&[device], &dir).expect("runtime"))
    }

    async fn send(rt: &Arc<Runtime>, kind: HostCommand) -> Result<Vec<u8>, Refusal> {
        let reply = rt
            .handle(Command {
                command_id: "c-1".into(),
                kind,
            })
            .await;
        assert_eq!(reply.command_id, "c-1");
        reply.outcome
    }

    #[tokio::test]
    async fn commands_are_answered_with_typed_codes() {
        let rt = runtime("codes");
        assert_eq!(
            send(
                &rt,
                HostCommand::Ping {
                    payload: b"p".to_vec()
                }
            )
            .await,
            Ok(b"p".to_vec())
        );
        let power = |action| HostCommand::Power {
            device_id: "stb-1".into(),
            action,
        };
        assert_eq!(
            send(&rt, power(PowerAction::State)).await,
            Ok(b"on".to_vec())
        );
        let missing = send(
            &rt,
            HostCommand::Screenshot {
                device_id: "nope".into(),
            },
        )
        .await
        .expect_err("no such device");
        assert_eq!(missing.code, ResultCode::NotFound);
        assert_eq!(missing.message, "no device \"nope\" on this host");
        let not_running = send(
            &rt,
            HostCommand::Cancel {
                execution_id: "e-1".into(),
            },
        )
        .await
        .expect_err("not running");
        assert_eq!(not_running.code, ResultCode::NotFound);
        let live = send(
            &rt,
            HostCommand::LiveView(LiveView {
                device_id: "stb-1".into(),
                on: true,
                max_fps: 5,
                quality: 50,
            }),
        )
        .await
        .expect_err("live view goes through the link");
        assert_eq!(live.code, ResultCode::Unsupported);
        assert_eq!(
            send(
                &rt,
                HostCommand::SetFaults {
                    device_id: "stb-1".into(),
                    faults: FaultConfig {
                        frozen: true,
                        ..FaultConfig::default()
                    },
                },
            )
            .await,
            Ok(Vec::new())
        );
    }

    #[test]
    fn a_link_without_devices_only_answers_pings() {
        let reply = handle_without_runtime(Command {
            command_id: "c".into(),
            kind: HostCommand::Screenshot {
                device_id: "stb-1".into(),
            },
        });
        assert_eq!(
            reply.outcome.expect_err("refused").code,
            ResultCode::Unsupported
        );
    }
}
