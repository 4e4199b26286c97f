//! Round trips through the wire for every message kind, errors for bad input, and the snapshots
//! that pin the versioned JSON payloads.

use std::collections::HashMap;

use labwright_core::{
    controller::Key,
    fleet::{HostInfo, HostStats, RawDevice, RawHello, Status},
    health::Health,
    nav::tree::{EdgeObservation, NavigationTree},
    run::Verdict,
    sim::FaultConfig,
    testcase::TestCase,
};
use prost::Message;

use super::super::*;
use crate::v1 as pb;

fn sample_testcase() -> TestCase {
    labwright_core::testcase::parse(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/testcases/zap-up.yaml"
    )))
    .expect("sample test case parses")
}

fn sample_tree() -> NavigationTree {
    NavigationTree::from_yaml(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/nav/sim-stb.yaml"
    )))
    .expect("sample tree parses")
}

/// Encodes to bytes and decodes again, as the link does.
fn to_host(m: ToHost) -> Result<ToHost, ConvertError> {
    let bytes = pb::ServerMessage::from(m).encode_to_vec();
    ToHost::try_from(pb::ServerMessage::decode(bytes.as_slice())?)
}

fn from_host(m: FromHost) -> Result<FromHost, ConvertError> {
    let bytes = pb::HostMessage::from(m).encode_to_vec();
    FromHost::try_from(pb::HostMessage::decode(bytes.as_slice())?)
}

fn command(kind: HostCommand) -> ToHost {
    ToHost::Command(Command {
        command_id: "c-1".into(),
        kind,
    })
}

#[test]
fn every_command_survives_the_wire() {
    let commands = vec![
        HostCommand::Ping {
            payload: b"ping".to_vec(),
        },
        HostCommand::Run(Box::new(RunExecution {
            execution_id: "e-1".into(),
            device_id: "stb-1".into(),
            testcase: sample_testcase(),
            navigation_tree: Some(sample_tree()),
            references: HashMap::from([("home-title".to_string(), vec![1, 2, 3])]),
        })),
        HostCommand::Run(Box::new(RunExecution {
            execution_id: "e-2".into(),
            device_id: "stb-1".into(),
            testcase: sample_testcase(),
            navigation_tree: None,
            references: HashMap::new(),
        })),
        HostCommand::Cancel {
            execution_id: "e-1".into(),
        },
        HostCommand::PressKey {
            device_id: "stb-1".into(),
            key: Key::Ok,
            hold_ms: 1500,
        },
        HostCommand::Screenshot {
            device_id: "stb-1".into(),
        },
        HostCommand::SetFaults {
            device_id: "stb-1".into(),
            faults: FaultConfig {
                frozen: true,
                drop_keys: 2,
                slow_ms: 300,
                reboot: true,
            },
        },
        HostCommand::LiveView(LiveView {
            device_id: "stb-1".into(),
            on: true,
            max_fps: 25,
            quality: 70,
        }),
        HostCommand::Power {
            device_id: "stb-1".into(),
            action: PowerAction::Cycle,
        },
        HostCommand::ConsoleWatch {
            device_id: "stb-1".into(),
            on: true,
        },
        HostCommand::ConsoleInput {
            device_id: "stb-1".into(),
            data: b"uname -a\n".to_vec(),
        },
    ];
    for c in commands {
        let m = command(c);
        assert_eq!(to_host(m.clone()).expect("decodes"), m);
    }
    for m in [
        ToHost::Welcome(Welcome {
            host_id: "h".into(),
            tenant_id: "t".into(),
            heartbeat_interval_ms: 200,
            server_version: "0.1.0".into(),
        }),
        ToHost::HeartbeatAck {
            sent_at_unix_micros: 42,
        },
        ToHost::ReportAck(ReportAck {
            execution_id: "e".into(),
            step_index: Some(3),
            screenshot: true,
        }),
    ] {
        assert_eq!(to_host(m.clone()).expect("decodes"), m);
    }
}

#[test]
fn every_host_message_survives_the_wire() {
    let messages = vec![
        FromHost::Heartbeat(Heartbeat {
            sent_at_unix_micros: 7,
            stats: Some(HostStats {
                cpu_percent: 12.5,
                mem_used_bytes: 1,
                mem_total_bytes: 2,
                load1: 0.5,
                uptime_secs: 60,
                temperature_c: Some(48.0),
                disk_free_bytes: 3,
            }),
        }),
        FromHost::DeviceStatus(DeviceStatusChange {
            device_id: "stb-1".into(),
            status: Some(Status::Error),
            detail: "hdmi lost".into(),
        }),
        FromHost::DeviceHealth(DeviceHealthReport {
            device_id: "stb-1".into(),
            health: Some(Health::Degraded),
            reason: "console: unavailable (/dev/ttyACM0: gone)".into(),
            checked_at_unix_micros: 1_700_000_000_000_000,
        }),
        FromHost::DeviceHealth(DeviceHealthReport {
            device_id: "stb-1".into(),
            health: None,
            reason: String::new(),
            checked_at_unix_micros: 0,
        }),
        FromHost::CommandResult(CommandReply {
            command_id: "c".into(),
            outcome: Ok(b"on".to_vec()),
        }),
        FromHost::CommandResult(CommandReply {
            command_id: "c".into(),
            outcome: Err(Refusal::new(ResultCode::Busy, "device is running e-1")),
        }),
        FromHost::Report(Report::Step(StepReport {
            execution_id: "e".into(),
            index: 2,
            path: "steps[2]".into(),
            kind: "wait".into(),
            verdict: Some(Verdict::Fail),
            reason: "why".into(),
            started_at_unix_micros: 10,
            duration_micros: 20,
            screenshot_jpeg: vec![0xFF, 0xD8],
            measurements: HashMap::from([("zap_ms".to_string(), 812.5)]),
            screenshot_pending: false,
        })),
        FromHost::Report(Report::Screenshot(ScreenshotReport {
            execution_id: "e".into(),
            index: 2,
            jpeg: vec![0xFF, 0xD8],
        })),
        FromHost::Report(Report::Execution(ExecutionReport {
            execution_id: "e".into(),
            verdict: Some(Verdict::Pass),
            reason: "3 passed".into(),
            steps_total: 3,
            cancelled: false,
            edge_observations: vec![EdgeObservation {
                edge_id: "home-settings".into(),
                duration_ms: 812.0,
                success: true,
            }],
            finished_at_unix_micros: 99,
            console_log: "2026-12-07T17:30:36.000000Z --- run started ---\n".into(),
        })),
        FromHost::LiveFrame(LiveFrame {
            device_id: "stb-1".into(),
            seq: 5,
            captured_at_unix_micros: 6,
            width: 1280,
            height: 720,
            jpeg: vec![0xFF, 0xD8],
        }),
        FromHost::ConsoleOutput(super::super::ConsoleOutput {
            device_id: "stb-1".into(),
            lines: vec![labwright_core::controller::ConsoleLine {
                seq: 7,
                at_us: 8,
                text: "Linux version 5.10.0-sim".into(),
            }],
            partial: "stb login: ".into(),
            missed: 2,
        }),
    ];
    for m in messages {
        assert_eq!(from_host(m.clone()).expect("decodes"), m);
    }
}

#[test]
fn a_hello_means_the_same_on_both_ends() {
    let raw = RawHello {
        host_name: "pi-1".into(),
        agent_version: "0.1.0".into(),
        info: HostInfo {
            hostname: "pi-1".into(),
            os: "Debian".into(),
            arch: "aarch64".into(),
            kernel: "6.1".into(),
        },
        devices: vec![RawDevice {
            key: "stb-1".into(),
            name: "STB".into(),
            model: "sim-stb".into(),
            driver: "simulated".into(),
            capabilities: vec!["remote_control".into()],
            tags: vec!["lab-a".into()],
            status: None,
            status_detail: String::new(),
        }],
    };
    let sent = FromHost::Hello(Hello {
        raw: raw.clone(),
        running_executions: vec!["e-1".into()],
    });
    let FromHost::Hello(got) = from_host(sent).expect("decodes") else {
        panic!("not a hello");
    };
    // A device the host declares is online unless it says otherwise.
    let mut expected = raw;
    expected.devices[0].status = Some(Status::Online);
    assert_eq!(got.raw, expected);
    assert_eq!(got.running_executions, vec!["e-1".to_string()]);

    let bare = FromHost::try_from(pb::HostMessage {
        body: Some(pb::host_message::Body::Hello(pb::Hello::default())),
    })
    .expect("a hello without info decodes; validation judges it");
    assert!(matches!(bare, FromHost::Hello(h) if h.raw.info == HostInfo::default()));
}

#[test]
fn an_unknown_result_code_is_a_plain_refusal() {
    let reply = CommandReply::from(pb::CommandResult {
        command_id: "c".into(),
        ok: false,
        error: "no".into(),
        payload: vec![],
        code: 99,
    });
    assert_eq!(
        reply.outcome,
        Err(Refusal::new(ResultCode::Refused, "no")),
        "unknown codes are refusals"
    );
}

fn bad_command(kind: Option<pb::command::Kind>) -> ConvertError {
    let err = Command::try_from(pb::Command {
        command_id: "c-9".into(),
        kind,
    })
    .expect_err("refused");
    assert_eq!(err.command_id(), Some("c-9"), "the id survives: {err}");
    assert_eq!(err.refusal().code, ResultCode::Invalid);
    err
}

#[test]
fn bad_commands_fail_with_what_was_wrong() {
    let e = bad_command(None);
    assert_eq!(
        e.to_string(),
        "unknown command (this agent is older than the server)"
    );

    let e = bad_command(Some(pb::command::Kind::Power(pb::Power {
        device_id: "stb-1".into(),
        action: 0,
    })));
    assert_eq!(e.to_string(), "power.action: unknown value 0");

    let e = bad_command(Some(pb::command::Kind::PressKey(pb::PressKey {
        device_id: "stb-1".into(),
        key: "warp".into(),
        hold_ms: 0,
    })));
    assert!(e.to_string().starts_with("key: "), "{e}");

    let run = |testcase: Option<pb::VersionedJson>| {
        Some(pb::command::Kind::RunExecution(pb::RunExecution {
            execution_id: "e".into(),
            device_id: "stb-1".into(),
            references: HashMap::new(),
            testcase,
            navigation_tree: None,
        }))
    };
    let e = bad_command(run(None));
    assert_eq!(e.to_string(), "testcase: missing");
    let e = bad_command(run(Some(pb::VersionedJson {
        version: TESTCASE_JSON_VERSION + 1,
        json: b"{}".to_vec(),
    })));
    assert_eq!(
        e.to_string(),
        format!(
            "test case: JSON version {}, this side speaks {TESTCASE_JSON_VERSION}",
            TESTCASE_JSON_VERSION + 1
        )
    );
    let e = bad_command(run(Some(pb::VersionedJson {
        version: TESTCASE_JSON_VERSION,
        json: b"{\"nme\": 1}".to_vec(),
    })));
    assert!(e.to_string().starts_with("test case: "), "{e}");

    let e = bad_command(Some(pb::command::Kind::SetFaults(pb::SetFaults {
        device_id: "stb-1".into(),
        faults: None,
    })));
    assert_eq!(e.to_string(), "faults: missing");

    assert!(matches!(
        ToHost::try_from(pb::ServerMessage { body: None }),
        Err(ConvertError::Empty)
    ));
}

#[test]
fn spooled_reports_read_back() {
    let r = Report::Step(StepReport {
        execution_id: "e".into(),
        index: 1,
        path: "steps[1]".into(),
        kind: "press".into(),
        verdict: Some(Verdict::Pass),
        reason: String::new(),
        started_at_unix_micros: 1,
        duration_micros: 2,
        screenshot_jpeg: vec![],
        measurements: HashMap::new(),
        screenshot_pending: true,
    });
    assert_eq!(Report::from_bytes(&r.to_bytes()).expect("reads back"), r);
    assert!(Report::from_bytes(b"\xff\xff\xff").is_err());
    let hb = pb::HostMessage::from(FromHost::Heartbeat(Heartbeat {
        sent_at_unix_micros: 1,
        stats: None,
    }))
    .encode_to_vec();
    assert!(matches!(
        Report::from_bytes(&hb),
        Err(ConvertError::NotAReport)
    ));
}

/// The JSON carried in `RunExecution.testcase`, for every sample test case. If this changes,
/// the protocol changed: bump `TESTCASE_JSON_VERSION` and update the snapshot (`UPDATE_EXPECT=1`).
#[test]
fn testcase_json_is_pinned() {
    let samples = [
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/testcases/channel-tone.yaml"
        )),
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/testcases/deliberately-failing.yaml"
        )),
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/testcases/open-settings-and-back.yaml"
        )),
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/testcases/player-not-frozen.yaml"
        )),
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/testcases/zap-up.yaml"
        )),
    ];
    let all: Vec<TestCase> = samples
        .iter()
        .map(|y| labwright_core::testcase::parse(y).expect("sample parses"))
        .collect();
    let json = serde_json::to_string_pretty(&all).expect("json");
    expect_test::expect_file!["snapshots/testcase.v1.json"].assert_eq(&json);
}

/// The JSON carried in `RunExecution.navigation_tree`; see [`testcase_json_is_pinned`].
#[test]
fn navigation_tree_json_is_pinned() {
    let json = serde_json::to_string_pretty(&sample_tree()).expect("json");
    expect_test::expect_file!["snapshots/navigation_tree.v1.json"].assert_eq(&json);
}
