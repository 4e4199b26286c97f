//! The one mapping between the generated [`crate::v1`] messages and the link's domain types.
//!
//! Encoding (domain → wire) cannot fail. Decoding (wire → domain) is `TryFrom` where input can be
//! wrong, and the error ([`ConvertError`]) says what was wrong; values a peer may legitimately
//! leave unset or that an older peer does not know (a status, a verdict) decode to `None` and are
//! judged by the receiver, as before.

use labwright_core::{
    controller::Key,
    fleet::{HostInfo, HostStats, RawDevice, RawHello, Status},
    health::Health,
    nav::tree::EdgeObservation,
    run::Verdict,
    sim::FaultConfig,
};
use prost::Message;

use super::{
    Command, CommandReply, ConsoleOutput, DeviceHealthReport, DeviceStatusChange, ExecutionReport,
    FromHost, Heartbeat, Hello, HostCommand, LiveFrame, LiveView, NAVIGATION_TREE_JSON_VERSION,
    PowerAction, Refusal, Report, ReportAck, ResultCode, RunExecution, ScreenshotReport,
    StepReport, TESTCASE_JSON_VERSION, ToHost, Welcome,
};
use crate::v1 as pb;

/// Why a wire message could not be turned into a domain value.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The message has no body (a peer newer than this one sent something unknown).
    #[error("empty message")]
    Empty,
    #[error("unknown command (this agent is older than the server)")]
    UnknownCommand,
    #[error("{field}: missing")]
    Missing { field: &'static str },
    #[error("{field}: unknown value {value}")]
    UnknownEnum { field: &'static str, value: i32 },
    /// A field failed core's validation (the error names the field).
    #[error("{0}")]
    Invalid(#[from] labwright_core::ValidationError),
    #[error("{field}: JSON version {got}, this side speaks {expected}")]
    JsonVersion {
        field: &'static str,
        got: u32,
        expected: u32,
    },
    #[error("{field}: {source}")]
    Json {
        field: &'static str,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Decode(#[from] prost::DecodeError),
    #[error("not a report")]
    NotAReport,
    /// A command that could not be understood, with its id so the host can still answer it.
    #[error("{source}")]
    Command {
        command_id: String,
        source: Box<ConvertError>,
    },
}

impl ConvertError {
    /// The id of the command that could not be decoded, if this is such an error.
    pub fn command_id(&self) -> Option<&str> {
        match self {
            ConvertError::Command { command_id, .. } => Some(command_id),
            _ => None,
        }
    }

    /// The refusal a host answers an undecodable command with.
    pub fn refusal(&self) -> Refusal {
        Refusal::new(ResultCode::Invalid, self.to_string())
    }
}

// ---- enums ----

fn health_to_wire(h: Health) -> pb::HealthState {
    match h {
        Health::Healthy => pb::HealthState::Healthy,
        Health::Degraded => pb::HealthState::Degraded,
        Health::Unhealthy => pb::HealthState::Unhealthy,
    }
}

fn health_from_wire(v: i32) -> Option<Health> {
    match pb::HealthState::try_from(v).ok()? {
        pb::HealthState::Healthy => Some(Health::Healthy),
        pb::HealthState::Degraded => Some(Health::Degraded),
        pb::HealthState::Unhealthy => Some(Health::Unhealthy),
        pb::HealthState::Unspecified => None,
    }
}

fn status_to_wire(s: Status) -> pb::DeviceStatus {
    match s {
        Status::Online => pb::DeviceStatus::Online,
        Status::Offline => pb::DeviceStatus::Offline,
        Status::Error => pb::DeviceStatus::Error,
    }
}

fn status_from_wire(v: i32) -> Option<Status> {
    match pb::DeviceStatus::try_from(v).ok()? {
        pb::DeviceStatus::Online => Some(Status::Online),
        pb::DeviceStatus::Offline => Some(Status::Offline),
        pb::DeviceStatus::Error => Some(Status::Error),
        pb::DeviceStatus::Unspecified => None,
    }
}

fn verdict_to_wire(v: Option<Verdict>) -> i32 {
    (match v {
        Some(Verdict::Pass) => pb::Verdict::Pass,
        Some(Verdict::Fail) => pb::Verdict::Fail,
        Some(Verdict::Error) => pb::Verdict::Error,
        Some(Verdict::Skipped) => pb::Verdict::Skipped,
        None => pb::Verdict::Unspecified,
    }) as i32
}

fn verdict_from_wire(v: i32) -> Option<Verdict> {
    match pb::Verdict::try_from(v).ok()? {
        pb::Verdict::Pass => Some(Verdict::Pass),
        pb::Verdict::Fail => Some(Verdict::Fail),
        pb::Verdict::Error => Some(Verdict::Error),
        pb::Verdict::Skipped => Some(Verdict::Skipped),
        pb::Verdict::Unspecified => None,
    }
}

/// `From` both ways between a link type and its message whose fields carry the same names and
/// types: the field list is written once.
macro_rules! mirror {
    ($domain:ty, $wire:ty { $($field:ident),+ $(,)? }) => {
        impl From<$domain> for $wire {
            fn from(v: $domain) -> Self {
                Self { $($field: v.$field),+ }
            }
        }

        impl From<$wire> for $domain {
            fn from(v: $wire) -> Self {
                Self { $($field: v.$field),+ }
            }
        }
    };
}

impl From<ResultCode> for pb::ResultCode {
    fn from(c: ResultCode) -> Self {
        match c {
            ResultCode::Busy => pb::ResultCode::Busy,
            ResultCode::NotFound => pb::ResultCode::NotFound,
            ResultCode::Invalid => pb::ResultCode::Invalid,
            ResultCode::Device => pb::ResultCode::Device,
            ResultCode::Unsupported => pb::ResultCode::Unsupported,
            ResultCode::Refused => pb::ResultCode::Refused,
        }
    }
}

/// A refusal with a code this side does not know (or none) is a plain refusal.
fn result_code_from_wire(v: i32) -> ResultCode {
    match pb::ResultCode::try_from(v) {
        Ok(pb::ResultCode::Busy) => ResultCode::Busy,
        Ok(pb::ResultCode::NotFound) => ResultCode::NotFound,
        Ok(pb::ResultCode::Invalid) => ResultCode::Invalid,
        Ok(pb::ResultCode::Device) => ResultCode::Device,
        Ok(pb::ResultCode::Unsupported) => ResultCode::Unsupported,
        Ok(pb::ResultCode::Refused | pb::ResultCode::Unspecified) | Err(_) => ResultCode::Refused,
    }
}

impl From<PowerAction> for pb::PowerAction {
    fn from(a: PowerAction) -> Self {
        match a {
            PowerAction::On => pb::PowerAction::On,
            PowerAction::Off => pb::PowerAction::Off,
            PowerAction::Cycle => pb::PowerAction::Cycle,
            PowerAction::State => pb::PowerAction::State,
        }
    }
}

fn power_action_from_wire(v: i32) -> Result<PowerAction, ConvertError> {
    match pb::PowerAction::try_from(v) {
        Ok(pb::PowerAction::On) => Ok(PowerAction::On),
        Ok(pb::PowerAction::Off) => Ok(PowerAction::Off),
        Ok(pb::PowerAction::Cycle) => Ok(PowerAction::Cycle),
        Ok(pb::PowerAction::State) => Ok(PowerAction::State),
        Ok(pb::PowerAction::Unspecified) | Err(_) => Err(ConvertError::UnknownEnum {
            field: "power.action",
            value: v,
        }),
    }
}

// ---- hello, heartbeat, status ----

impl From<Hello> for pb::Hello {
    fn from(h: Hello) -> Self {
        let raw = h.raw;
        pb::Hello {
            host_name: raw.host_name,
            agent_version: raw.agent_version,
            info: Some(pb::HostInfo {
                hostname: raw.info.hostname,
                os: raw.info.os,
                arch: raw.info.arch,
                kernel: raw.info.kernel,
            }),
            devices: raw.devices.into_iter().map(pb::DeviceInfo::from).collect(),
            running_executions: h.running_executions,
        }
    }
}

/// Unset fields decode to empty values; `RawHello::validate` judges them.
impl From<pb::Hello> for Hello {
    fn from(h: pb::Hello) -> Self {
        let info = h.info.unwrap_or_default();
        Hello {
            raw: RawHello {
                host_name: h.host_name,
                agent_version: h.agent_version,
                info: HostInfo {
                    hostname: info.hostname,
                    os: info.os,
                    arch: info.arch,
                    kernel: info.kernel,
                },
                devices: h
                    .devices
                    .into_iter()
                    .map(|d| RawDevice {
                        status: status_from_wire(d.status),
                        key: d.device_id,
                        name: d.name,
                        model: d.model,
                        driver: d.driver,
                        capabilities: d.capabilities,
                        tags: d.tags,
                        status_detail: d.status_detail,
                    })
                    .collect(),
            },
            running_executions: h.running_executions,
        }
    }
}

impl From<RawDevice> for pb::DeviceInfo {
    fn from(d: RawDevice) -> Self {
        pb::DeviceInfo {
            device_id: d.key,
            name: d.name,
            model: d.model,
            driver: d.driver,
            capabilities: d.capabilities,
            tags: d.tags,
            // A host that declares a device has it online unless it says otherwise.
            status: status_to_wire(d.status.unwrap_or(Status::Online)) as i32,
            status_detail: d.status_detail,
        }
    }
}

// Not sanitised here: the server calls `HostStats::sanitized` before storing.
mirror!(
    HostStats,
    pb::SystemStats {
        cpu_percent,
        mem_used_bytes,
        mem_total_bytes,
        load1,
        uptime_secs,
        temperature_c,
        disk_free_bytes,
    }
);

// ---- reports ----

mirror!(
    EdgeObservation,
    pb::EdgeObservation {
        edge_id,
        duration_ms,
        success,
    }
);

fn report_to_wire(r: Report) -> pb::host_message::Body {
    match r {
        Report::Step(s) => pb::host_message::Body::Step(pb::StepReport {
            execution_id: s.execution_id,
            index: s.index,
            path: s.path,
            kind: s.kind,
            verdict: verdict_to_wire(s.verdict),
            reason: s.reason,
            started_at_unix_micros: s.started_at_unix_micros,
            duration_micros: s.duration_micros,
            screenshot_jpeg: s.screenshot_jpeg,
            measurements: s.measurements,
            screenshot_pending: s.screenshot_pending,
        }),
        Report::Screenshot(s) => pb::host_message::Body::Screenshot(pb::ScreenshotReport {
            execution_id: s.execution_id,
            index: s.index,
            jpeg: s.jpeg,
        }),
        Report::Execution(x) => pb::host_message::Body::Execution(pb::ExecutionReport {
            execution_id: x.execution_id,
            verdict: verdict_to_wire(x.verdict),
            reason: x.reason,
            steps_total: x.steps_total,
            cancelled: x.cancelled,
            finished_at_unix_micros: x.finished_at_unix_micros,
            edge_observations: x.edge_observations.into_iter().map(Into::into).collect(),
            console_log: x.console_log,
        }),
    }
}

impl From<pb::StepReport> for StepReport {
    fn from(s: pb::StepReport) -> Self {
        StepReport {
            execution_id: s.execution_id,
            index: s.index,
            path: s.path,
            kind: s.kind,
            verdict: verdict_from_wire(s.verdict),
            reason: s.reason,
            started_at_unix_micros: s.started_at_unix_micros,
            duration_micros: s.duration_micros,
            screenshot_jpeg: s.screenshot_jpeg,
            measurements: s.measurements,
            screenshot_pending: s.screenshot_pending,
        }
    }
}

impl From<pb::ExecutionReport> for ExecutionReport {
    fn from(x: pb::ExecutionReport) -> Self {
        ExecutionReport {
            execution_id: x.execution_id,
            verdict: verdict_from_wire(x.verdict),
            reason: x.reason,
            steps_total: x.steps_total,
            cancelled: x.cancelled,
            edge_observations: x.edge_observations.into_iter().map(Into::into).collect(),
            finished_at_unix_micros: x.finished_at_unix_micros,
            console_log: x.console_log,
        }
    }
}

impl Report {
    /// The report as it is kept on a host's disk: the encoded `HostMessage`, as sent.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::HostMessage {
            body: Some(report_to_wire(self.clone())),
        }
        .encode_to_vec()
    }

    /// A report read back from a host's disk.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConvertError> {
        match FromHost::try_from(pb::HostMessage::decode(bytes)?)? {
            FromHost::Report(r) => Ok(r),
            _ => Err(ConvertError::NotAReport),
        }
    }
}

mirror!(
    ReportAck,
    pb::ReportAck {
        execution_id,
        step_index,
        screenshot,
    }
);

// ---- command results ----

impl From<CommandReply> for pb::CommandResult {
    fn from(r: CommandReply) -> Self {
        match r.outcome {
            Ok(payload) => pb::CommandResult {
                command_id: r.command_id,
                ok: true,
                error: String::new(),
                payload,
                code: pb::ResultCode::Unspecified as i32,
            },
            Err(refusal) => pb::CommandResult {
                command_id: r.command_id,
                ok: false,
                error: refusal.message,
                payload: Vec::new(),
                code: pb::ResultCode::from(refusal.code) as i32,
            },
        }
    }
}

impl From<pb::CommandResult> for CommandReply {
    fn from(r: pb::CommandResult) -> Self {
        CommandReply {
            command_id: r.command_id,
            outcome: if r.ok {
                Ok(r.payload)
            } else {
                Err(Refusal::new(result_code_from_wire(r.code), r.error))
            },
        }
    }
}

// ---- whole messages, host → server ----

impl From<FromHost> for pb::HostMessage {
    fn from(m: FromHost) -> Self {
        use pb::host_message::Body;
        let body = match m {
            FromHost::Hello(h) => Body::Hello(h.into()),
            FromHost::Heartbeat(hb) => Body::Heartbeat(pb::Heartbeat {
                sent_at_unix_micros: hb.sent_at_unix_micros,
                stats: hb.stats.map(Into::into),
            }),
            FromHost::DeviceStatus(c) => Body::DeviceStatus(pb::DeviceStatusChanged {
                device_id: c.device_id,
                status: c
                    .status
                    .map_or(pb::DeviceStatus::Unspecified, status_to_wire)
                    as i32,
                detail: c.detail,
            }),
            FromHost::CommandResult(r) => Body::CommandResult(r.into()),
            FromHost::Report(r) => report_to_wire(r),
            FromHost::LiveFrame(f) => Body::LiveFrame(pb::LiveFrame {
                device_id: f.device_id,
                seq: f.seq,
                captured_at_unix_micros: f.captured_at_unix_micros,
                width: f.width,
                height: f.height,
                jpeg: f.jpeg,
            }),
            FromHost::DeviceHealth(h) => Body::DeviceHealth(pb::DeviceHealth {
                device_id: h.device_id,
                health: h
                    .health
                    .map_or(pb::HealthState::Unspecified, health_to_wire)
                    as i32,
                reason: h.reason,
                checked_at_unix_micros: h.checked_at_unix_micros,
            }),
            FromHost::ConsoleOutput(o) => Body::ConsoleOutput(pb::ConsoleOutput {
                device_id: o.device_id,
                lines: o
                    .lines
                    .into_iter()
                    .map(|l| pb::ConsoleOutputLine {
                        seq: l.seq,
                        at_unix_micros: l.at_us,
                        text: l.text,
                    })
                    .collect(),
                partial: o.partial,
                missed: o.missed,
            }),
        };
        pb::HostMessage { body: Some(body) }
    }
}

/// Fails only on an empty message ([`ConvertError::Empty`]); everything else is judged by the server.
impl TryFrom<pb::HostMessage> for FromHost {
    type Error = ConvertError;

    fn try_from(m: pb::HostMessage) -> Result<Self, ConvertError> {
        use pb::host_message::Body;
        Ok(match m.body.ok_or(ConvertError::Empty)? {
            Body::Hello(h) => FromHost::Hello(h.into()),
            Body::Heartbeat(hb) => FromHost::Heartbeat(Heartbeat {
                sent_at_unix_micros: hb.sent_at_unix_micros,
                stats: hb.stats.map(Into::into),
            }),
            Body::DeviceStatus(c) => FromHost::DeviceStatus(DeviceStatusChange {
                device_id: c.device_id,
                status: status_from_wire(c.status),
                detail: c.detail,
            }),
            Body::CommandResult(r) => FromHost::CommandResult(r.into()),
            Body::Step(s) => FromHost::Report(Report::Step(s.into())),
            Body::Screenshot(s) => FromHost::Report(Report::Screenshot(ScreenshotReport {
                execution_id: s.execution_id,
                index: s.index,
                jpeg: s.jpeg,
            })),
            Body::Execution(x) => FromHost::Report(Report::Execution(x.into())),
            Body::LiveFrame(f) => FromHost::LiveFrame(LiveFrame {
                device_id: f.device_id,
                seq: f.seq,
                captured_at_unix_micros: f.captured_at_unix_micros,
                width: f.width,
                height: f.height,
                jpeg: f.jpeg,
            }),
            Body::DeviceHealth(h) => FromHost::DeviceHealth(DeviceHealthReport {
                device_id: h.device_id,
                health: health_from_wire(h.health),
                reason: h.reason,
                checked_at_unix_micros: h.checked_at_unix_micros,
            }),
            Body::ConsoleOutput(o) => FromHost::ConsoleOutput(ConsoleOutput {
                device_id: o.device_id,
                lines: o
                    .lines
                    .into_iter()
                    .map(|l| labwright_core::controller::ConsoleLine {
                        seq: l.seq,
                        at_us: l.at_unix_micros,
                        text: l.text,
                    })
                    .collect(),
                partial: o.partial,
                missed: o.missed,
            }),
        })
    }
}

// ---- whole messages, server → host ----

fn versioned_json<T: serde::Serialize>(version: u32, value: &T) -> pb::VersionedJson {
    pb::VersionedJson {
        version,
        // Serialising these plain data types cannot fail (string keys only); an empty payload
        // would be refused by the host with a clear error anyway.
        json: serde_json::to_vec(value).unwrap_or_default(),
    }
}

fn from_versioned_json<T: serde::de::DeserializeOwned>(
    field: &'static str,
    expected: u32,
    v: pb::VersionedJson,
) -> Result<T, ConvertError> {
    if v.version != expected {
        return Err(ConvertError::JsonVersion {
            field,
            got: v.version,
            expected,
        });
    }
    serde_json::from_slice(&v.json).map_err(|source| ConvertError::Json { field, source })
}

mirror!(
    FaultConfig,
    pb::Faults {
        frozen,
        drop_keys,
        slow_ms,
        reboot,
    }
);

impl From<HostCommand> for pb::command::Kind {
    fn from(c: HostCommand) -> Self {
        use pb::command::Kind;
        match c {
            HostCommand::Ping { payload } => Kind::Ping(pb::Ping { payload }),
            HostCommand::Run(run) => {
                let run = *run;
                Kind::RunExecution(pb::RunExecution {
                    execution_id: run.execution_id,
                    device_id: run.device_id,
                    references: run.references,
                    testcase: Some(versioned_json(TESTCASE_JSON_VERSION, &run.testcase)),
                    navigation_tree: run
                        .navigation_tree
                        .map(|t| versioned_json(NAVIGATION_TREE_JSON_VERSION, &t)),
                })
            }
            HostCommand::Cancel { execution_id } => {
                Kind::CancelExecution(pb::CancelExecution { execution_id })
            }
            HostCommand::PressKey {
                device_id,
                key,
                hold_ms,
            } => Kind::PressKey(pb::PressKey {
                device_id,
                key: key.to_string(),
                hold_ms,
            }),
            HostCommand::Screenshot { device_id } => {
                Kind::CaptureScreenshot(pb::CaptureScreenshot { device_id })
            }
            HostCommand::SetFaults { device_id, faults } => Kind::SetFaults(pb::SetFaults {
                device_id,
                faults: Some(faults.into()),
            }),
            HostCommand::LiveView(lv) => Kind::LiveView(pb::LiveView {
                device_id: lv.device_id,
                on: lv.on,
                max_fps: lv.max_fps,
                quality: lv.quality,
            }),
            HostCommand::Power { device_id, action } => Kind::Power(pb::Power {
                device_id,
                action: pb::PowerAction::from(action) as i32,
            }),
            HostCommand::ConsoleWatch { device_id, on } => {
                Kind::ConsoleWatch(pb::ConsoleWatch { device_id, on })
            }
            HostCommand::ConsoleInput { device_id, data } => {
                Kind::ConsoleInput(pb::ConsoleInput { device_id, data })
            }
        }
    }
}

impl TryFrom<pb::command::Kind> for HostCommand {
    type Error = ConvertError;

    fn try_from(k: pb::command::Kind) -> Result<Self, ConvertError> {
        use pb::command::Kind;
        Ok(match k {
            Kind::Ping(p) => HostCommand::Ping { payload: p.payload },
            Kind::RunExecution(run) => {
                let testcase = from_versioned_json(
                    "test case",
                    TESTCASE_JSON_VERSION,
                    run.testcase
                        .ok_or(ConvertError::Missing { field: "testcase" })?,
                )?;
                let navigation_tree = run
                    .navigation_tree
                    .map(|t| {
                        from_versioned_json("navigation tree", NAVIGATION_TREE_JSON_VERSION, t)
                    })
                    .transpose()?;
                HostCommand::Run(Box::new(RunExecution {
                    execution_id: run.execution_id,
                    device_id: run.device_id,
                    testcase,
                    navigation_tree,
                    references: run.references,
                }))
            }
            Kind::CancelExecution(c) => HostCommand::Cancel {
                execution_id: c.execution_id,
            },
            Kind::PressKey(p) => HostCommand::PressKey {
                key: p.key.parse::<Key>()?,
                device_id: p.device_id,
                hold_ms: p.hold_ms,
            },
            Kind::CaptureScreenshot(s) => HostCommand::Screenshot {
                device_id: s.device_id,
            },
            Kind::SetFaults(f) => HostCommand::SetFaults {
                device_id: f.device_id,
                faults: f
                    .faults
                    .ok_or(ConvertError::Missing { field: "faults" })?
                    .into(),
            },
            Kind::LiveView(lv) => HostCommand::LiveView(LiveView {
                device_id: lv.device_id,
                on: lv.on,
                max_fps: lv.max_fps,
                quality: lv.quality,
            }),
            Kind::Power(p) => HostCommand::Power {
                action: power_action_from_wire(p.action)?,
                device_id: p.device_id,
            },
            Kind::ConsoleWatch(w) => HostCommand::ConsoleWatch {
                device_id: w.device_id,
                on: w.on,
            },
            Kind::ConsoleInput(i) => HostCommand::ConsoleInput {
                device_id: i.device_id,
                data: i.data,
            },
        })
    }
}

impl From<Command> for pb::Command {
    fn from(c: Command) -> Self {
        pb::Command {
            command_id: c.command_id,
            kind: Some(c.kind.into()),
        }
    }
}

/// A command this side cannot understand fails with [`ConvertError::Command`], which carries
/// its id so it can still be answered.
impl TryFrom<pb::Command> for Command {
    type Error = ConvertError;

    fn try_from(c: pb::Command) -> Result<Self, ConvertError> {
        let kind = c
            .kind
            .ok_or(ConvertError::UnknownCommand)
            .and_then(HostCommand::try_from);
        match kind {
            Ok(kind) => Ok(Command {
                command_id: c.command_id,
                kind,
            }),
            Err(e) => Err(ConvertError::Command {
                command_id: c.command_id,
                source: Box::new(e),
            }),
        }
    }
}

impl From<ToHost> for pb::ServerMessage {
    fn from(m: ToHost) -> Self {
        use pb::server_message::Body;
        let body = match m {
            ToHost::Welcome(w) => Body::Welcome(pb::Welcome {
                host_id: w.host_id,
                tenant_id: w.tenant_id,
                heartbeat_interval_ms: w.heartbeat_interval_ms,
                server_version: w.server_version,
            }),
            ToHost::HeartbeatAck {
                sent_at_unix_micros,
            } => Body::HeartbeatAck(pb::HeartbeatAck {
                sent_at_unix_micros,
            }),
            ToHost::Command(c) => Body::Command(c.into()),
            ToHost::ReportAck(a) => Body::ReportAck(a.into()),
        };
        pb::ServerMessage { body: Some(body) }
    }
}

impl TryFrom<pb::ServerMessage> for ToHost {
    type Error = ConvertError;

    fn try_from(m: pb::ServerMessage) -> Result<Self, ConvertError> {
        use pb::server_message::Body;
        Ok(match m.body.ok_or(ConvertError::Empty)? {
            Body::Welcome(w) => ToHost::Welcome(Welcome {
                host_id: w.host_id,
                tenant_id: w.tenant_id,
                heartbeat_interval_ms: w.heartbeat_interval_ms,
                server_version: w.server_version,
            }),
            Body::HeartbeatAck(a) => ToHost::HeartbeatAck {
                sent_at_unix_micros: a.sent_at_unix_micros,
            },
            Body::Command(c) => ToHost::Command(c.try_into()?),
            Body::ReportAck(a) => ToHost::ReportAck(a.into()),
        })
    }
}

#[cfg(test)]
mod tests;
