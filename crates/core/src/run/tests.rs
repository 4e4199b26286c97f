//! Runner tests: the samples in `samples/` against the real [`SimulatedStb`] on a manual clock
//! (deterministic, no real sleeping), faults, cancel, and the failure semantics on a scripted
//! fake device.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use super::*;
use crate::{
    clock::ManualClock,
    controller::{ControlError, Key, RemoteControl, VideoCapture},
    frame::{Frame, Rect},
    image_io,
    nav::{Navigator, ReferenceSet},
    sim::{Fault, SimConfig, SimulatedStb},
    testcase,
};

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples")
}

fn load_tree() -> NavigationTree {
    let text = std::fs::read_to_string(samples_dir().join("nav/sim-stb.yaml")).expect("tree file");
    NavigationTree::from_yaml(&text).expect("tree parses")
}

fn load_refs() -> ReferenceSet {
    let mut refs = ReferenceSet::new();
    for entry in std::fs::read_dir(samples_dir().join("references")).expect("references dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "png") {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("name")
                .to_owned();
            let bytes = std::fs::read(&path).expect("read png");
            refs.insert(name, image_io::decode_gray(&bytes).expect("png decodes"));
        }
    }
    refs
}

fn load_cases() -> BTreeMap<String, TestCase> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(samples_dir().join("testcases")).expect("testcases dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("read");
            let tc = testcase::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.insert(
                path.file_stem()
                    .and_then(|s| s.to_str())
                    .expect("name")
                    .to_owned(),
                tc,
            );
        }
    }
    out
}

fn sim(clock: &ManualClock) -> SimulatedStb {
    SimulatedStb::with_clock(SimConfig::default(), Arc::new(clock.clone())).expect("sim")
}

fn clock() -> ManualClock {
    ManualClock::new(1_800_000_000_000_000)
}

/// The samples' tree and references, and a simulated box on a manual clock, for navigation.
struct NavRig {
    tree: NavigationTree,
    refs: ReferenceSet,
    clock: ManualClock,
    stb: SimulatedStb,
    cancel: AtomicBool,
}

impl NavRig {
    fn new() -> Self {
        let clock = clock();
        NavRig {
            tree: load_tree(),
            refs: load_refs(),
            stb: sim(&clock),
            clock,
            cancel: AtomicBool::new(false),
        }
    }

    fn navigator(&self, options: crate::nav::GotoOptions) -> Navigator<'_> {
        Navigator {
            tree: &self.tree,
            device: &self.stb,
            references: &self.refs,
            clock: &self.clock,
            cancel: &self.cancel,
            options,
        }
    }
}

/// Runs `tc` and returns the summary and every step result.
fn run(
    device: &dyn crate::controller::Device,
    tree: Option<&NavigationTree>,
    refs: &ReferenceSet,
    clock: &ManualClock,
    tc: &TestCase,
) -> (RunSummary, Vec<StepResult>) {
    let cancel = AtomicBool::new(false);
    let ctx = RunContext {
        device,
        nav: tree,
        references: refs,
        cancel: &cancel,
        clock,
        options: RunOptions::default(),
    };
    let mut results = Vec::new();
    let summary = run_testcase(&ctx, tc, &mut |r: StepResult| results.push(r));
    (summary, results)
}

fn crop_rgb(frame: &Frame, r: Rect) -> Frame {
    let mut rgb = Vec::with_capacity(r.width as usize * r.height as usize * 3);
    for y in r.y..r.y + r.height {
        let start = (y as usize * frame.width as usize + r.x as usize) * 3;
        rgb.extend_from_slice(&frame.rgb[start..start + r.width as usize * 3]);
    }
    Frame::from_rgb(r.width, r.height, rgb, 0, 0).expect("crop")
}

/// The reference images of the samples, cut from simulator frames: (name, region cut).
fn cut_references() -> Vec<(&'static str, Frame)> {
    let clock = clock();
    let stb = sim(&clock);
    let press = |keys: &[Key]| {
        for k in keys {
            stb.press(*k).expect("press");
            clock.advance_ms(300);
        }
        clock.advance_ms(1_200);
    };
    let grab = || stb.grab().expect("grab");
    let mut out = Vec::new();
    out.push(("home-title", crop_rgb(&grab(), Rect::new(75, 104, 200, 40))));
    press(&[Key::Left, Key::Left, Key::Left, Key::Down, Key::Ok]);
    assert_eq!(stb.current_screen(), crate::sim::Screen::Settings);
    out.push((
        "settings-title",
        crop_rgb(&grab(), Rect::new(75, 104, 340, 40)),
    ));
    press(&[Key::Back, Key::Right, Key::Ok]);
    assert_eq!(stb.current_screen(), crate::sim::Screen::Page);
    out.push((
        "page-footer",
        crop_rgb(&grab(), Rect::new(75, 660, 200, 16)),
    ));
    press(&[
        Key::Back,
        Key::Up,
        Key::Left,
        Key::Left,
        Key::Left,
        Key::Ok,
        Key::ChannelUp,
    ]);
    assert_eq!(stb.current_screen(), crate::sim::Screen::Player);
    assert_eq!(stb.current_channel(), 2);
    out.push((
        "banner-news-24",
        crop_rgb(&grab(), Rect::new(290, 546, 180, 24)),
    ));
    out
}

/// The committed PNGs are exactly what the simulator shows today. Regenerate them with
/// `LABWRIGHT_WRITE_SAMPLES=1 cargo test -p labwright-core sample_references`.
#[test]
fn sample_references_are_cut_from_the_simulator() {
    let write = std::env::var_os("LABWRIGHT_WRITE_SAMPLES").is_some();
    for (name, cut) in cut_references() {
        let path = samples_dir().join(format!("references/{name}.png"));
        if write {
            std::fs::write(&path, image_io::encode_png(&cut).expect("png")).expect("write png");
        }
        let committed = image_io::decode_gray(&std::fs::read(&path).expect("committed reference"))
            .expect("decode");
        assert_eq!(
            committed,
            cut.to_gray(),
            "{name}.png differs from the simulator; regenerate it"
        );
    }
}

/// Expected verdict of every sample test case; every file must be listed.
const EXPECTED: [(&str, RunVerdict); 5] = [
    ("channel-tone", RunVerdict::Pass),
    ("deliberately-failing", RunVerdict::Fail),
    ("open-settings-and-back", RunVerdict::Pass),
    ("player-not-frozen", RunVerdict::Pass),
    ("zap-up", RunVerdict::Pass),
];

#[test]
fn samples_validate_and_run_on_the_simulator_with_the_expected_verdicts() {
    let tree = load_tree();
    tree.validate().expect("tree is valid");
    let refs = load_refs();
    tree.validate_references(&refs)
        .expect("tree references exist");
    let cases = load_cases();
    let names: Vec<&str> = cases.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        EXPECTED.map(|(n, _)| n).to_vec(),
        "every sample has an expected verdict"
    );
    let stb_caps = sim(&clock()).capabilities();
    for (name, expected) in EXPECTED {
        let tc = &cases[name];
        let env = ValidationEnv {
            nav: Some(&tree),
            references: Some(&refs),
            capabilities: Some(&stb_caps),
            resolution: None,
            nav_pending: false,
            model_without_tree: None,
        };
        tc.validate(&env)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let clock = clock();
        let stb = sim(&clock);
        let (summary, results) = run(&stb, Some(&tree), &refs, &clock, tc);
        let trace: Vec<String> = results
            .iter()
            .map(|r| format!("{} {} {}: {}", r.path, r.kind, r.verdict, r.reason))
            .collect();
        assert_eq!(summary.verdict, expected, "{name}:\n{}", trace.join("\n"));
        assert!(summary.problems.is_empty());
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.index as usize, i);
            if r.verdict != Verdict::Skipped {
                let jpeg = r
                    .screenshot
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name} {}: no screenshot", r.path));
                assert_eq!(&jpeg[..2], &[0xff, 0xd8], "a JPEG");
            }
        }
        if expected == RunVerdict::Fail {
            let failed: Vec<&StepResult> = results
                .iter()
                .filter(|r| r.verdict == Verdict::Fail)
                .collect();
            assert_eq!(failed.len(), 1, "{trace:?}");
            assert!(
                failed[0].reason.contains("home-title did not appear"),
                "{}",
                failed[0].reason
            );
            assert!(failed[0].screenshot.is_some());
            assert_eq!(results.last().map(|r| r.verdict), Some(Verdict::Skipped));
        }
        if name == "zap-up" {
            let zap = results
                .iter()
                .find(|r| r.kind == "measure_zap")
                .expect("zap step");
            let ms = zap.measurements["zap_ms"];
            // Key delay + zap time of the default config, within one poll interval.
            let expected_ms =
                (SimConfig::default().key_delay_ms + SimConfig::default().zap_ms) as f64;
            assert!(
                (expected_ms..=expected_ms + 20.0).contains(&ms),
                "zap_ms {ms}"
            );
        }
        if name == "player-not-frozen" {
            let paths: Vec<&str> = results.iter().map(|r| r.path.as_str()).collect();
            assert!(paths.contains(&"steps[3].repeat.steps[1]#2"), "{paths:?}");
        }
    }
}

#[test]
fn goto_reaches_its_target_through_dropped_keys_by_relocating_and_replanning() {
    let rig = NavRig::new();
    let (stb, nav) = (&rig.stb, rig.navigator(Default::default()));
    // The first four keys of home -> settings (left, left, left, down) are lost, so its `ok`
    // opens the focused Live TV tile instead of Settings. Navigation must notice, re-locate on
    // the player and re-plan through Home.
    stb.inject(Fault::DropKeys { count: 4 });
    let report = nav.goto("settings").expect("reached settings");
    assert_eq!(stb.current_screen(), crate::sim::Screen::Settings);
    assert!(report.replans >= 1, "{:?}", report.observations);
    assert!(
        report.observations.iter().any(|o| !o.success),
        "{:?}",
        report.observations
    );
    assert!(
        report
            .observations
            .last()
            .is_some_and(|o| o.success && o.edge_id.ends_with("settings"))
    );
}

#[test]
fn goto_gives_up_with_a_frame_when_it_cannot_get_there() {
    let rig = NavRig::new();
    rig.stb.inject(Fault::DropKeys { count: 1_000 });
    let nav = rig.navigator(crate::nav::GotoOptions {
        max_replans: 2,
        appear_timeout_ms: 500,
        ..Default::default()
    });
    let failure = nav.goto("player").expect_err("keys never arrive");
    assert_eq!(failure.error.code(), "lost", "{}", failure.error);
    assert!(failure.frame.is_some());
    assert_eq!(failure.last_seen.as_deref(), Some("home"));
    assert!(failure.observations.iter().all(|o| !o.success));
    // Every edge attempt was recorded: 1 + retries per plan, 1 + max_replans plans.
    assert_eq!(failure.observations.len(), 2 * 3);
}

#[test]
fn frozen_video_fails_verify_not_frozen_with_a_screenshot() {
    let tree = load_tree();
    let refs = load_refs();
    let clock = clock();
    let stb = sim(&clock);
    let tc = testcase::parse(
        "name: frozen\nsteps:\n  - goto: player\n  - verify_not_frozen: {duration_ms: 1000}\n",
    )
    .expect("parse");
    // Freeze once the player shows: run the goto, freeze, then the check.
    let (summary, _) = run(
        &stb,
        Some(&tree),
        &refs,
        &clock,
        &TestCase {
            steps: tc.steps[..1].to_vec(),
            ..tc.clone()
        },
    );
    assert_eq!(summary.verdict, RunVerdict::Pass);
    stb.inject(Fault::Frozen);
    let (summary, results) = run(
        &stb,
        Some(&tree),
        &refs,
        &clock,
        &TestCase {
            steps: tc.steps[1..].to_vec(),
            ..tc
        },
    );
    assert_eq!(summary.verdict, RunVerdict::Fail);
    let r = &results[0];
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(r.reason.contains("frozen"), "{}", r.reason);
    assert!(r.screenshot.is_some());
    assert!(
        r.measurements["frozen_ms"] >= 1000.0,
        "{:?}",
        r.measurements
    );
}

#[test]
fn an_unreachable_target_is_reported_before_anything_runs() {
    let mut tree = load_tree();
    tree.edges.retain(|e| e.id != "home-settings");
    let refs = load_refs();
    let clock = clock();
    let stb = sim(&clock);
    let tc =
        testcase::parse("name: x\nsteps:\n  - press: right\n  - goto: settings\n").expect("parse");
    let (summary, results) = run(&stb, Some(&tree), &refs, &clock, &tc);
    assert_eq!(summary.verdict, RunVerdict::Error);
    assert!(results.is_empty(), "nothing ran");
    assert_eq!(summary.problems.len(), 1, "{:?}", summary.problems);
    assert_eq!(summary.problems[0].field, "steps[1].goto");
    assert!(
        summary.problems[0]
            .message
            .contains("unreachable target screen")
    );
    assert_eq!(stb.focus_index(), Some(0), "the press did not happen");
}

// A scripted fake device: a fixed frame, keys recorded, optional cancel after N presses.

struct Fake {
    frame: Frame,
    pressed: Mutex<Vec<Key>>,
    cancel_after: Option<(usize, Arc<AtomicBool>)>,
}

impl Fake {
    fn new() -> Self {
        Fake {
            frame: Frame::from_rgb(64, 36, vec![0; 64 * 36 * 3], 0, 0).expect("frame"),
            pressed: Mutex::new(Vec::new()),
            cancel_after: None,
        }
    }
}

impl RemoteControl for Fake {
    fn press(&self, key: Key) -> Result<(), ControlError> {
        let mut p = self.pressed.lock().expect("lock");
        p.push(key);
        if let Some((n, flag)) = &self.cancel_after
            && p.len() >= *n
        {
            flag.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl VideoCapture for Fake {
    fn grab(&self) -> Result<Frame, ControlError> {
        Ok(self.frame.clone())
    }
    fn resolution(&self) -> (u32, u32) {
        (64, 36)
    }
}

impl crate::controller::Device for Fake {
    fn remote(&self) -> Option<&dyn RemoteControl> {
        Some(self)
    }
    fn video(&self) -> Option<&dyn VideoCapture> {
        Some(self)
    }
}

const FLOW: &str = r#"
name: flow
steps:
  - press: ok
  - verify_not_black: {}
    timeout_ms: 100
    continue_on_failure: true
  - repeat:
      count: 2
      steps:
        - press: {key: up, repeat: 2}
        - verify_black: {}
  - verify_not_black: {}
    timeout_ms: 100
  - press: down
  - repeat: {count: 3, steps: [press: left]}
"#;

#[test]
fn failures_stop_the_run_unless_continue_on_failure_and_paths_name_iterations() {
    let fake = Fake::new();
    let clock = clock();
    let tc = testcase::parse(FLOW).expect("parse");
    let (summary, results) = run(&fake, None, &ReferenceSet::new(), &clock, &tc);
    let got: Vec<(u32, &str, &str, Verdict)> = results
        .iter()
        .map(|r| (r.index, r.path.as_str(), r.kind.as_str(), r.verdict))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "steps[0]", "press", Verdict::Pass),
            (1, "steps[1]", "verify_not_black", Verdict::Fail),
            (2, "steps[2].repeat.steps[0]#1", "press", Verdict::Pass),
            (
                3,
                "steps[2].repeat.steps[1]#1",
                "verify_black",
                Verdict::Pass
            ),
            (4, "steps[2].repeat.steps[0]#2", "press", Verdict::Pass),
            (
                5,
                "steps[2].repeat.steps[1]#2",
                "verify_black",
                Verdict::Pass
            ),
            (6, "steps[3]", "verify_not_black", Verdict::Fail),
            (7, "steps[4]", "press", Verdict::Skipped),
            (8, "steps[5]", "repeat", Verdict::Skipped),
        ]
    );
    assert_eq!(summary.verdict, RunVerdict::Fail);
    assert_eq!(
        (
            summary.steps_passed,
            summary.steps_failed,
            summary.steps_skipped
        ),
        (5, 2, 2)
    );
    assert!(
        results[1].reason.contains("still black after 100 ms"),
        "{}",
        results[1].reason
    );
    assert!(
        results[7].reason.contains("steps[3] did not pass"),
        "{}",
        results[7].reason
    );
    assert!(results[..7].iter().all(|r| r.screenshot.is_some()));
    assert_eq!(
        *fake.pressed.lock().expect("lock"),
        vec![Key::Ok, Key::Up, Key::Up, Key::Up, Key::Up]
    );
    // The clock moved by the two 100 ms timeouts (and a poll beyond each), nothing else waited.
    let json = serde_json::to_string(&results[3]).expect("json");
    let back: StepResult = serde_json::from_str(&json).expect("round trip");
    assert_eq!(back, results[3]);
}

#[test]
fn cancel_skips_the_rest_and_marks_the_run_cancelled() {
    let cancel = Arc::new(AtomicBool::new(false));
    let fake = Fake {
        cancel_after: Some((2, cancel.clone())),
        ..Fake::new()
    };
    let clock = clock();
    let tc = testcase::parse("name: c\nsteps:\n  - press: ok\n  - press: {key: up, repeat: 3}\n  - wait: 10\n  - press: ok\n")
        .expect("parse");
    let refs = ReferenceSet::new();
    let ctx = RunContext {
        device: &fake,
        nav: None,
        references: &refs,
        cancel: &cancel,
        clock: &clock,
        options: RunOptions::default(),
    };
    let mut results = Vec::new();
    let summary = run_testcase(&ctx, &tc, &mut |r: StepResult| results.push(r));
    assert_eq!(summary.verdict, RunVerdict::Cancelled);
    assert!(summary.cancelled);
    let verdicts: Vec<Verdict> = results.iter().map(|r| r.verdict).collect();
    // The second step is interrupted in the pause between its presses.
    assert_eq!(
        verdicts,
        vec![
            Verdict::Pass,
            Verdict::Skipped,
            Verdict::Skipped,
            Verdict::Skipped
        ]
    );
    assert_eq!(results[1].reason, "cancelled while running");
    assert_eq!(results[2].reason, "cancelled");
    assert_eq!(fake.pressed.lock().expect("lock").len(), 2);
}

#[test]
fn missing_capabilities_are_refused_before_running() {
    let fake = Fake::new();
    let clock = clock();
    let tc =
        testcase::parse("name: a\nsteps:\n  - verify_audio: {expect: present}\n").expect("parse");
    assert_eq!(
        tc.required_capabilities(),
        vec![crate::fleet::Capability::AudioCapture]
    );
    let (summary, results) = run(&fake, None, &ReferenceSet::new(), &clock, &tc);
    assert_eq!(summary.verdict, RunVerdict::Error);
    assert!(results.is_empty());
    assert_eq!(summary.problems[0].field, "steps[0]");
    assert!(
        summary.problems[0].message.contains("audio_capture"),
        "{:?}",
        summary.problems
    );
}

/// A device whose console is scripted: what was printed before the run, and lines it prints
/// when it receives `boot`.
struct ConsoleBox {
    lines: Mutex<Vec<String>>,
    partial: Mutex<String>,
    sent: Mutex<Vec<u8>>,
}

impl crate::controller::Console for ConsoleBox {
    fn send(&self, data: &[u8]) -> Result<(), ControlError> {
        self.sent.lock().expect("lock").extend_from_slice(data);
        if data == b"boot\n" {
            let mut lines = self.lines.lock().expect("lock");
            lines.push("Starting kernel ...".into());
            lines.push("Linux version 6.1.99 (builder)".into());
            *self.partial.lock().expect("lock") = "stb login: ".into();
        }
        Ok(())
    }

    fn read_since(&self, from: u64) -> Result<crate::controller::ConsoleRead, ControlError> {
        let lines = self.lines.lock().expect("lock");
        Ok(crate::controller::ConsoleRead {
            lines: lines
                .iter()
                .enumerate()
                .skip(from.min(lines.len() as u64) as usize)
                .map(|(i, text)| crate::controller::ConsoleLine {
                    seq: i as u64,
                    at_us: 0,
                    text: text.clone(),
                })
                .collect(),
            partial: self.partial.lock().expect("lock").clone(),
            next: lines.len() as u64,
            missed: 0,
        })
    }

    fn wait(&self, _from: u64, timeout: std::time::Duration) -> Result<bool, ControlError> {
        std::thread::sleep(timeout.min(std::time::Duration::from_millis(1)));
        Ok(false)
    }
}

impl crate::controller::Device for ConsoleBox {
    fn console(&self) -> Option<&dyn crate::controller::Console> {
        Some(self)
    }
}

#[test]
fn serial_steps_send_and_match_console_output_after_the_run_started() {
    let device = ConsoleBox {
        lines: Mutex::new(vec!["Linux version 5.0 (before the run)".into()]),
        partial: Mutex::new(String::new()),
        sent: Mutex::new(Vec::new()),
    };
    let tc = testcase::parse(
        r#"
name: console
steps:
  - serial_send: boot
  - serial_expect: 'Linux version (?P<major>[0-9]+)\.(?P<minor>[0-9]+)\.[0-9]+ \((?P<who>\w+)\)'
  - serial_expect: {pattern: "login: $"}
  - serial_expect: Linux version
    timeout_ms: 20
    continue_on_failure: true
  - serial_send: {text: "\u0003", newline: false}
"#,
    )
    .expect("parse");
    assert_eq!(
        tc.required_capabilities(),
        vec![crate::fleet::Capability::Console]
    );
    let (summary, results) = run(&device, None, &ReferenceSet::new(), &clock(), &tc);
    let verdicts: Vec<Verdict> = results.iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        vec![
            Verdict::Pass,
            Verdict::Pass,
            Verdict::Pass,
            Verdict::Fail,
            Verdict::Pass
        ],
        "{results:#?}"
    );
    assert_eq!(summary.verdict, RunVerdict::Fail);
    assert_eq!(results[1].kind, "serial_expect");
    assert!(
        results[1]
            .reason
            .contains("\"Linux version 6.1.99 (builder)\""),
        "{}",
        results[1].reason
    );
    // Numeric named groups are measurements; `who` is not a number.
    assert_eq!(
        results[1].measurements.keys().collect::<Vec<_>>(),
        vec!["major", "minor"]
    );
    assert_eq!(results[1].measurements["major"], 6.0);
    assert!(
        results[2].reason.contains("stb login: "),
        "{}",
        results[2].reason
    );
    // The line matched before is behind the cursor, and the pre-run line was never looked at.
    assert!(
        results[3]
            .reason
            .starts_with("no console output matched /Linux version/ within 20 ms"),
        "{}",
        results[3].reason
    );
    assert_eq!(&*device.sent.lock().expect("lock"), b"boot\n\x03");
}

#[test]
fn console_steps_run_on_the_simulated_box_and_verify_log_looks_at_the_whole_run() {
    let clock = clock();
    let stb = sim(&clock);
    // Output from before the run (the box's first boot) is not the run's.
    assert!(
        crate::controller::Console::read_since(&stb, 0)
            .expect("read")
            .lines
            .iter()
            .any(|l| l.text.contains("Linux version"))
    );
    let tc = testcase::parse(
        r#"
name: sim-console
steps:
  - verify_log: {pattern: "Linux version", absent: true}
  - press: power
  - wait: 1000
  - press: power
  - serial_expect: 'Linux version (?P<major>[0-9]+)\.(?P<minor>[0-9]+)'
    timeout_ms: 10000
  - serial_expect: "login: $"
    timeout_ms: 10000
  - serial_send: root
  - serial_send: uname -a
  - serial_expect: "^Linux labwright-stb [0-9.]+-sim"
  - verify_log: "rc: key power"
  - verify_log: {pattern: "Kernel panic", absent: true}
  - verify_log: {pattern: "Power down", absent: true}
    continue_on_failure: true
  - verify_log: "never printed"
    timeout_ms: 50
"#,
    )
    .expect("parse");
    let (summary, results) = run(&stb, None, &ReferenceSet::new(), &clock, &tc);
    let verdicts: Vec<(&str, Verdict)> = results
        .iter()
        .map(|r| (r.kind.as_str(), r.verdict))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("verify_log", Verdict::Pass),
            ("press", Verdict::Pass),
            ("wait", Verdict::Pass),
            ("press", Verdict::Pass),
            ("serial_expect", Verdict::Pass),
            ("serial_expect", Verdict::Pass),
            ("serial_send", Verdict::Pass),
            ("serial_send", Verdict::Pass),
            ("serial_expect", Verdict::Pass),
            ("verify_log", Verdict::Pass),
            ("verify_log", Verdict::Pass),
            ("verify_log", Verdict::Fail),
            ("verify_log", Verdict::Fail),
        ],
        "{results:#?}"
    );
    assert_eq!(summary.verdict, RunVerdict::Fail);
    assert_eq!(results[4].measurements["major"], 5.0);
    assert!(
        results[11].reason.contains("reboot: Power down"),
        "{}",
        results[11].reason
    );
    assert!(
        results[12]
            .reason
            .starts_with("no console line of the run matched /never printed/"),
        "{}",
        results[12].reason
    );
    let tail: Vec<String> = crate::controller::Console::read_since(&stb, 0)
        .expect("read")
        .lines
        .into_iter()
        .map(|l| l.text)
        .rev()
        .take(2)
        .collect();
    assert_eq!(
        tail,
        vec![
            "Linux labwright-stb 5.10.0-sim #1 SMP PREEMPT armv7l GNU/Linux",
            "root@labwright-stb:~# uname -a"
        ]
    );
}
