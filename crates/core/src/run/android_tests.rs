//! The Android steps against a fake phone: a tiny app whose screen (a uiautomator dump) changes
//! with taps and typed text, a shell with exit codes, and apps to launch, stop and install.

use std::{
    sync::{Mutex, atomic::AtomicBool},
    time::Duration,
};

use crate::{
    clock::ManualClock,
    controller::{AndroidUi, ControlError, Device, Shell, ShellOutput},
    fleet::Capability,
    nav::ReferenceSet,
    run::{RunContext, RunOptions, RunVerdict, StepResult, Verdict, run_testcase},
    testcase::{self, ProblemCode, ValidationEnv},
};

#[derive(Default)]
struct Screen {
    app: Option<String>,
    greeted: bool,
    typed: String,
    log: Vec<String>,
}

/// A phone running a demo app: a "Say hello" button at (100,200)-(500,300) that shows a
/// "Hello!" label when tapped, and a name field that shows what was typed.
#[derive(Default)]
struct FakePhone {
    screen: Mutex<Screen>,
    /// The label appears only after this many dumps following the tap (a slow UI).
    lag: u32,
    dumps_since_tap: Mutex<u32>,
}

impl FakePhone {
    fn log(&self) -> Vec<String> {
        self.screen.lock().expect("lock").log.clone()
    }
}

impl AndroidUi for FakePhone {
    fn tap(&self, x: u32, y: u32) -> Result<(), ControlError> {
        let mut s = self.screen.lock().expect("lock");
        s.log.push(format!("tap {x} {y}"));
        if s.app.as_deref() == Some("com.labwright.demo")
            && (100..500).contains(&x)
            && (200..300).contains(&y)
        {
            s.greeted = true;
            *self.dumps_since_tap.lock().expect("lock") = 0;
        }
        Ok(())
    }

    fn swipe(&self, from: (u32, u32), to: (u32, u32), d: Duration) -> Result<(), ControlError> {
        self.screen.lock().expect("lock").log.push(format!(
            "swipe {} {} {} {} {}",
            from.0,
            from.1,
            to.0,
            to.1,
            d.as_millis()
        ));
        Ok(())
    }

    fn input_text(&self, text: &str) -> Result<(), ControlError> {
        let mut s = self.screen.lock().expect("lock");
        s.log.push(format!("text {text}"));
        s.typed.push_str(text);
        Ok(())
    }

    fn ui_dump(&self) -> Result<String, ControlError> {
        let s = self.screen.lock().expect("lock");
        let mut dumps = self.dumps_since_tap.lock().expect("lock");
        *dumps += 1;
        let mut nodes = String::new();
        if s.app.as_deref() == Some("com.labwright.demo") {
            nodes.push_str(r#"<node text="Say hello" resource-id="com.labwright.demo:id/hello" class="android.widget.Button" content-desc="" clickable="true" enabled="true" bounds="[100,200][500,300]" />"#);
            nodes.push_str(&format!(
                r#"<node text="{}" resource-id="com.labwright.demo:id/name" class="android.widget.EditText" content-desc="Your name" bounds="[100,400][980,500]" />"#,
                s.typed
            ));
            if s.greeted && *dumps > self.lag {
                nodes.push_str(r#"<node text="Hello!" resource-id="com.labwright.demo:id/greeting" class="android.widget.TextView" content-desc="" bounds="[100,600][500,700]" />"#);
            }
        } else {
            nodes.push_str(r#"<node text="Demo" resource-id="" class="android.widget.TextView" content-desc="Demo app" bounds="[0,0][200,200]" />"#);
        }
        Ok(format!(
            "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\">{nodes}</hierarchy>"
        ))
    }

    fn launch_app(&self, package: &str, _activity: Option<&str>) -> Result<(), ControlError> {
        let mut s = self.screen.lock().expect("lock");
        if package != "com.labwright.demo" {
            return Err(ControlError::Invalid(format!(
                "no activities found for {package}"
            )));
        }
        s.log.push(format!("launch {package}"));
        s.app = Some(package.to_string());
        Ok(())
    }

    fn stop_app(&self, package: &str) -> Result<(), ControlError> {
        let mut s = self.screen.lock().expect("lock");
        s.log.push(format!("stop {package}"));
        s.app = None;
        s.greeted = false;
        Ok(())
    }

    fn install_app(&self, apk: &str) -> Result<(), ControlError> {
        self.screen
            .lock()
            .expect("lock")
            .log
            .push(format!("install {apk}"));
        Ok(())
    }
}

impl Shell for FakePhone {
    fn run(&self, command: &str, _timeout: Duration) -> Result<ShellOutput, ControlError> {
        let (stdout, code) = match command {
            "getprop ro.product.model" => ("Sim Phone\n", 0),
            "false" => ("", 1),
            _ => ("", 127),
        };
        Ok(ShellOutput {
            stdout: stdout.into(),
            stderr: if code == 127 {
                format!("sh: {command}: not found")
            } else {
                String::new()
            },
            exit_code: code,
        })
    }
}

impl Device for FakePhone {
    fn android_ui(&self) -> Option<&dyn AndroidUi> {
        Some(self)
    }
    fn shell(&self) -> Option<&dyn Shell> {
        Some(self)
    }
}

fn run(phone: &FakePhone, yaml: &str) -> (super::RunSummary, Vec<StepResult>) {
    let tc = testcase::parse(yaml).expect("test case");
    let clock = ManualClock::new(1_000_000);
    let refs = ReferenceSet::new();
    let cancel = AtomicBool::new(false);
    let ctx = RunContext {
        device: phone,
        nav: None,
        references: &refs,
        cancel: &cancel,
        clock: &clock,
        options: RunOptions::default(),
    };
    let mut results = Vec::new();
    let summary = run_testcase(&ctx, &tc, &mut |r: StepResult| results.push(r));
    (summary, results)
}

const DEMO: &str = r#"
name: demo app says hello
steps:
  - launch_app: com.labwright.demo
  - tap_element: Say hello
  - verify_element: Hello!
  - tap: {resource_id: name}
  - input_text: Ada Lovelace
  - verify_element: {content_desc: Your name, state: present}
  - verify_element: {text: Goodbye, state: absent}
  - swipe: {from: {x: 500, y: 1500}, to: {x: 500, y: 500}}
  - tap: {x: 10, y: 20}
  - shell: {command: getprop ro.product.model, expect_output: "^Sim"}
  - shell: {command: "false", exit_code: 1}
  - install_app: demo.apk
  - stop_app: com.labwright.demo
"#;

#[test]
fn a_demo_app_is_driven_through_its_ui() {
    let phone = FakePhone {
        lag: 3,
        ..FakePhone::default()
    };
    let (summary, results) = run(&phone, DEMO);
    assert_eq!(summary.verdict, RunVerdict::Pass, "{results:#?}");
    assert_eq!(summary.steps_passed, 13);
    assert_eq!(
        phone.log(),
        vec![
            "launch com.labwright.demo",
            "tap 300 250",
            "tap 540 450",
            "text Ada Lovelace",
            "swipe 500 1500 500 500 300",
            "tap 10 20",
            "install demo.apk",
            "stop com.labwright.demo",
        ]
    );
    assert_eq!(results[1].reason, "tapped text \"Say hello\" at (300, 250)");
    assert!(
        results[2].reason.starts_with("text \"Hello!\" is present"),
        "{}",
        results[2].reason
    );
    assert_eq!(results[10].measurements.get("exit_code"), Some(&1.0));
}

#[test]
fn a_missing_element_fails_listing_the_closest_ones() {
    let phone = FakePhone::default();
    let (summary, results) = run(
        &phone,
        "name: t\nsteps:\n  - launch_app: com.labwright.demo\n  - tap_element: Say helo\n    timeout_ms: 1000\n  - input_text: never\n",
    );
    assert_eq!(summary.verdict, RunVerdict::Fail);
    assert_eq!(results[1].verdict, Verdict::Fail);
    assert_eq!(
        results[1].reason,
        "no element with text \"Say helo\"; closest: text \"Say hello\" within 1000 ms"
    );
    assert_eq!(results[2].verdict, Verdict::Skipped);
}

#[test]
fn failures_of_shell_apps_and_absent_elements() {
    let phone = FakePhone::default();
    let (summary, results) = run(
        &phone,
        r#"
name: t
steps:
  - shell: {command: getprop ro.product.model, expect_output: "^Pixel"}
    continue_on_failure: true
  - shell: nonsense
    continue_on_failure: true
  - verify_element: {content_desc: Demo app, state: absent}
    timeout_ms: 500
    continue_on_failure: true
  - launch_app: com.missing
"#,
    );
    assert_eq!(summary.verdict, RunVerdict::Error);
    assert_eq!(results[0].verdict, Verdict::Fail);
    assert!(
        results[0].reason.contains("does not match /^Pixel/"),
        "{}",
        results[0].reason
    );
    assert_eq!(results[1].verdict, Verdict::Fail);
    assert!(
        results[1]
            .reason
            .contains("exited with 127 (expected 0): sh: nonsense: not found"),
        "{}",
        results[1].reason
    );
    assert_eq!(results[2].verdict, Verdict::Fail);
    assert_eq!(
        results[2].reason,
        "an element with content_desc \"Demo app\" is still present after 500 ms"
    );
    assert_eq!(results[3].verdict, Verdict::Error);
    assert!(
        results[3]
            .reason
            .contains("no activities found for com.missing")
    );
}

#[test]
fn android_steps_are_validated_and_need_touch() {
    let tc = testcase::parse(
        r#"
name: t
steps:
  - tap: {x: 10}
  - tap: {x: 1, y: 2, text: OK}
  - tap: {}
  - swipe: {from: {x: 0, y: 0}, to: {x: 5000, y: 0}, duration_ms: 0}
  - input_text: "two\nlines"
  - tap_element: {text: ""}
  - launch_app: "com.example; reboot"
  - stop_app: 1com.x
  - install_app: ../etc/passwd
  - shell: {command: " ", expect_output: "(", exit_code: 300}
  - input_text: ok
    timeout_ms: 100
"#,
    )
    .expect("parse");
    let caps = [Capability::Shell];
    let env = ValidationEnv {
        capabilities: Some(&caps),
        resolution: Some(crate::nav::Resolution {
            width: 1080,
            height: 2400,
        }),
        ..ValidationEnv::default()
    };
    let problems = tc.problems(&env);
    let fields: Vec<String> = problems.iter().map(|(_, e)| e.field.clone()).collect();
    for want in [
        "steps[0].tap",
        "steps[1].tap",
        "steps[2].tap",
        "steps[3].swipe.to",
        "steps[3].swipe.duration_ms",
        "steps[4].input_text.text",
        "steps[5].tap_element.text",
        "steps[6].launch_app.package",
        "steps[7].stop_app.package",
        "steps[8].install_app.apk",
        "steps[9].shell.command",
        "steps[9].shell.expect_output",
        "steps[9].shell.exit_code",
        "steps[10].timeout_ms",
    ] {
        assert!(
            fields.iter().any(|f| f == want),
            "{want} missing from {problems:#?}"
        );
    }
    let missing = problems
        .iter()
        .filter(|(c, _)| *c == ProblemCode::MissingCapability)
        .count();
    // Every step but the shell one needs a touch screen.
    assert_eq!(missing, 10, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|(c, e)| *c == ProblemCode::MissingCapability
                && e.message == "tap needs touch, which the device does not have")
    );
}

#[test]
fn android_steps_round_trip_through_yaml() {
    let tc = testcase::parse(DEMO).expect("parse");
    let json = serde_json::to_string(&tc).expect("json");
    let again: testcase::TestCase = serde_json::from_str(&json).expect("back");
    assert_eq!(tc, again);
    assert!(
        json.contains(r#"{"tap_element":{"text":"Say hello"}}"#),
        "{json}"
    );
    assert!(
        json.contains(r#"{"verify_element":{"text":"Goodbye","state":"absent"}}"#),
        "{json}"
    );
}
