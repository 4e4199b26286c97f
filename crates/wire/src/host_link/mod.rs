//! The host link in domain terms: what a host and the server say to each other, as plain Rust
//! types over `labwright-core`'s vocabulary (no prost, no tonic).
//!
//! Both ends work with these types; only their link modules (api-server `grpc.rs`, host-agent
//! `link.rs`) convert them to and from the generated [`crate::v1`] messages, through the
//! `From`/`TryFrom` implementations in [`convert`], written once for both ends.

pub mod convert;

use std::{collections::HashMap, fmt};

use labwright_core::{
    controller::Key,
    fleet::{HostStats, RawHello, Status},
    health::Health,
    nav::tree::{EdgeObservation, NavigationTree},
    run::Verdict,
    sim::FaultConfig,
    testcase::TestCase,
};

pub use convert::ConvertError;

/// Version of the test case JSON carried by `RunExecution.testcase`. Bump it when the serde
/// shape of [`TestCase`] changes (the snapshot test in [`convert`] fails when it does).
pub const TESTCASE_JSON_VERSION: u32 = 1;
/// Version of the navigation tree JSON carried by `RunExecution.navigation_tree`.
pub const NAVIGATION_TREE_JSON_VERSION: u32 = 1;

/// A message from a host to the server.
#[derive(Clone, Debug, PartialEq)]
pub enum FromHost {
    /// The first message of a stream.
    Hello(Hello),
    Heartbeat(Heartbeat),
    DeviceStatus(DeviceStatusChange),
    CommandResult(CommandReply),
    /// Kept on the host's disk until acknowledged.
    Report(Report),
    /// A frame of a live view (never spooled).
    LiveFrame(LiveFrame),
    /// The result of a health check of one device (never spooled; the latest is sent again
    /// after a reconnect).
    DeviceHealth(DeviceHealthReport),
    /// New console output of a watched device (never spooled).
    ConsoleOutput(ConsoleOutput),
}

/// A message from the server to a host.
#[derive(Clone, Debug, PartialEq)]
pub enum ToHost {
    Welcome(Welcome),
    HeartbeatAck {
        sent_at_unix_micros: u64,
    },
    Command(Command),
    /// The server stored a report; the host may forget it.
    ReportAck(ReportAck),
}

/// What a host says about itself, plus the runs it still has (after a reconnect).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub raw: RawHello,
    pub running_executions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Heartbeat {
    /// Host clock at send time, echoed back in the ack.
    pub sent_at_unix_micros: u64,
    pub stats: Option<HostStats>,
}

/// A device's status changed; `status` is `None` when the host sent no (or an unknown) value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceStatusChange {
    pub device_id: String,
    pub status: Option<Status>,
    pub detail: String,
}

/// A device's health as its host just checked it; `health` is `None` when the host sent no (or
/// an unknown) value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceHealthReport {
    pub device_id: String,
    pub health: Option<Health>,
    pub reason: String,
    pub checked_at_unix_micros: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    pub host_id: String,
    pub tenant_id: String,
    pub heartbeat_interval_ms: u32,
    pub server_version: String,
}

/// A command for a host; the host answers with a [`CommandReply`] of the same id.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub command_id: String,
    pub kind: HostCommand,
}

/// What the server can ask of a host.
#[derive(Clone, Debug, PartialEq)]
pub enum HostCommand {
    Ping {
        payload: Vec<u8>,
    },
    /// Run a test case; the host answers at once and reports steps and the end afterwards.
    Run(Box<RunExecution>),
    Cancel {
        execution_id: String,
    },
    PressKey {
        device_id: String,
        key: Key,
        hold_ms: u32,
    },
    /// Answered with a JPEG of the device's screen.
    Screenshot {
        device_id: String,
    },
    /// Simulated devices only: replace the injected faults.
    SetFaults {
        device_id: String,
        faults: FaultConfig,
    },
    /// Start, renew (a lease) or stop a device's live view.
    LiveView(LiveView),
    /// Answered with the state afterwards: `on` or `off`.
    Power {
        device_id: String,
        action: PowerAction,
    },
    /// Start, renew (a lease) or stop streaming a device's console output.
    ConsoleWatch {
        device_id: String,
        on: bool,
    },
    /// Type into a device's console.
    ConsoleInput {
        device_id: String,
        data: Vec<u8>,
    },
}

/// New output of a device's console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleOutput {
    pub device_id: String,
    pub lines: Vec<labwright_core::controller::ConsoleLine>,
    /// The line being written (a prompt), without its terminator yet.
    pub partial: String,
    /// Lines before these that the console no longer held.
    pub missed: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunExecution {
    pub execution_id: String,
    pub device_id: String,
    pub testcase: TestCase,
    pub navigation_tree: Option<NavigationTree>,
    /// Reference images by name: PNG bytes.
    pub references: HashMap<String, Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveView {
    pub device_id: String,
    pub on: bool,
    /// Frames per second at most (1-60).
    pub max_fps: u32,
    /// JPEG quality (10-95).
    pub quality: u32,
}

/// Mains power of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerAction {
    On,
    Off,
    /// Off, 2 s, on.
    Cycle,
    /// Only report the state.
    State,
}

/// A host's answer to a command: its payload, or why it refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandReply {
    pub command_id: String,
    pub outcome: Result<Vec<u8>, Refusal>,
}

/// A refused command: a code the server may act on, and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: ResultCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ResultCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Why a host refused a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// The device runs another execution (the server requeues a run refused with this).
    Busy,
    /// No such device or execution on this host.
    NotFound,
    /// The command is malformed.
    Invalid,
    /// The driver failed.
    Device,
    /// The device (or the link) cannot do that.
    Unsupported,
    /// Any other refusal.
    Refused,
}

impl ResultCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultCode::Busy => "busy",
            ResultCode::NotFound => "not_found",
            ResultCode::Invalid => "invalid",
            ResultCode::Device => "device",
            ResultCode::Unsupported => "unsupported",
            ResultCode::Refused => "refused",
        }
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A report of an execution, spooled by the host until the server acknowledges it.
#[derive(Clone, Debug, PartialEq)]
pub enum Report {
    Step(StepReport),
    /// The screenshot of a step reported with `screenshot_pending`.
    Screenshot(ScreenshotReport),
    /// The end of the execution.
    Execution(ExecutionReport),
}

impl Report {
    pub fn execution_id(&self) -> &str {
        match self {
            Report::Step(s) => &s.execution_id,
            Report::Screenshot(s) => &s.execution_id,
            Report::Execution(x) => &x.execution_id,
        }
    }

    /// The acknowledgement that lets the host forget this report.
    pub fn ack(&self) -> ReportAck {
        let (step_index, screenshot) = match self {
            Report::Step(s) => (Some(s.index), false),
            Report::Screenshot(s) => (Some(s.index), true),
            Report::Execution(_) => (None, false),
        };
        ReportAck {
            execution_id: self.execution_id().to_string(),
            step_index,
            screenshot,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    pub execution_id: String,
    pub index: u32,
    pub path: String,
    pub kind: String,
    /// `None` when the host sent no (or an unknown) verdict.
    pub verdict: Option<Verdict>,
    pub reason: String,
    pub started_at_unix_micros: u64,
    pub duration_micros: u64,
    /// JPEG of the frame that decided the verdict; empty when none or when pending.
    pub screenshot_jpeg: Vec<u8>,
    pub measurements: HashMap<String, f64>,
    /// The screenshot follows in a [`ScreenshotReport`].
    pub screenshot_pending: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenshotReport {
    pub execution_id: String,
    pub index: u32,
    /// Empty when the host could not encode the frame.
    pub jpeg: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionReport {
    pub execution_id: String,
    /// `None` when the host sent no (or an unknown) verdict.
    pub verdict: Option<Verdict>,
    pub reason: String,
    pub steps_total: u32,
    pub cancelled: bool,
    pub edge_observations: Vec<EdgeObservation>,
    pub finished_at_unix_micros: u64,
    /// The run's console log (`labwright_core::run::console_log`); empty when the device has no
    /// console.
    pub console_log: String,
}

/// Identity of an acknowledged report: its execution, its step (`None` for the end report), and
/// whether it is the step's screenshot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReportAck {
    pub execution_id: String,
    pub step_index: Option<u32>,
    pub screenshot: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveFrame {
    pub device_id: String,
    pub seq: u64,
    pub captured_at_unix_micros: u64,
    pub width: u32,
    pub height: u32,
    pub jpeg: Vec<u8>,
}
