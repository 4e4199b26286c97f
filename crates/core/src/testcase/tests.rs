//! Parser and validation tests, plus the documentation: the example in `docs/testcases.md`
//! parses and validates, and `docs/testcase.schema.json` names exactly the actions the parser
//! knows.

use super::*;
use crate::{
    fleet::Capability,
    frame::Rect,
    nav::{KeyName, NavigationTree, ReferenceSet},
};

fn repo_file(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const SHORT_AND_LONG: &str = r#"
name: forms
steps:
  - press: ok
  - press: 7
  - press: {key: down, repeat: 3, interval_ms: 200, hold_ms: 900}
  - wait: 250
  - wait: {ms: 300}
  - goto: settings
  - verify_black:
  - verify_not_black: {region: {x: 1, y: 2, width: 3, height: 4}}
    timeout_ms: 700
    continue_on_failure: true
  - verify_not_frozen: {}
  - measure_zap: ch_up
  - screenshot: shot-1
  - repeat: {count: 2, steps: [press: left, {wait: 5}]}
"#;

#[test]
fn short_and_full_forms_parse_and_round_trip() {
    let tc = parse(SHORT_AND_LONG).expect("parses");
    assert_eq!(tc.steps.len(), 12);
    // (key, repeat, interval_ms, hold_ms) of the first three steps.
    let presses = [
        ("ok", 1, 0, None),
        ("7", 1, 0, None),
        ("down", 3, 200, Some(900)),
    ];
    for (i, (key, repeat, interval_ms, hold_ms)) in presses.into_iter().enumerate() {
        assert_eq!(
            tc.steps[i].action,
            Action::Press(PressStep {
                key: KeyName(key.into()),
                repeat,
                interval_ms,
                hold_ms
            }),
            "step {i}"
        );
    }
    assert_eq!(tc.steps[3].action, Action::Wait(WaitStep { ms: 250 }));
    assert_eq!(
        tc.steps[6].action,
        Action::VerifyBlack(RegionStep { region: None })
    );
    assert_eq!(
        tc.steps[7].action,
        Action::VerifyNotBlack(RegionStep {
            region: Some(Rect::new(1, 2, 3, 4))
        })
    );
    assert_eq!(
        (tc.steps[7].timeout_ms, tc.steps[7].continue_on_failure),
        (Some(700), true)
    );
    assert_eq!(tc.defaults, Defaults::default());
    let walked: Vec<String> = tc.walk().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        walked.last().map(String::as_str),
        Some("steps[11].repeat.steps[1]")
    );
    // JSON (what the server stores) and YAML both come back identical.
    let json = serde_json::to_string(&tc).expect("json");
    assert_eq!(parse(&json).expect("json parses"), tc);
    assert_eq!(
        serde_json::from_str::<TestCase>(&json).expect("serde_json"),
        tc
    );
    assert_eq!(
        parse(&tc.to_yaml().expect("yaml")).expect("yaml parses"),
        tc
    );
    assert!(json.contains(r#"{"verify_not_black":{"region":{"x":1,"y":2,"width":3,"height":4}},"timeout_ms":700,"continue_on_failure":true}"#), "{json}");
}

fn parse_err(text: &str) -> ParseError {
    parse(text).expect_err("should not parse")
}

#[test]
fn shape_errors_have_line_and_column() {
    let e = parse_err("name: x\nsteps:\n  - press: ok\n  - presss: ok\n");
    assert_eq!((e.line, e.column), (Some(4), Some(5)), "{e}");
    assert!(e.message.contains("unknown step field `presss`"), "{e}");
    assert!(e.to_string().starts_with("line 4, column 5: "), "{e}");

    let e = parse_err("name: x\nsteps:\n  - press: ok\n    wait: 10\n");
    assert!(
        e.message
            .contains("exactly one action, found both press and wait"),
        "{e}"
    );
    assert_eq!(e.line, Some(3), "the step's position: {e}");

    let e = parse_err("name: x\nsteps:\n  - verify_image: {reference: a, treshold: 0.5}\n");
    assert!(e.message.contains("unknown field `treshold`"), "{e}");
    assert_eq!(e.line, Some(3), "{e}");

    let e = parse_err("name: x\nsteps:\n  - timeout_ms: 5\n");
    assert!(e.message.contains("a step needs an action"), "{e}");

    let e = parse_err("name: x\nsteps:\n  - wait: soon\n");
    assert!(
        e.message.contains("expected a number of milliseconds"),
        "{e}"
    );
    assert_eq!((e.line, e.column), (Some(3), Some(11)), "{e}");

    let e = parse_err("name: x\nsteps:\n  - press: {key: ok}\n  - verify_audio: {expect: loud}\n");
    assert!(e.message.contains("unknown variant `loud`"), "{e}");
    assert_eq!(e.line, Some(4), "{e}");

    let e = parse_err("name: [unclosed\n");
    assert!(e.line.is_some(), "syntax errors have a position too: {e}");
    let e = parse_err("steps: []\n");
    assert!(e.message.contains("missing field `name`"), "{e}");
}

fn tree() -> NavigationTree {
    NavigationTree::from_yaml(
        r#"
model: box
resolution: {width: 1280, height: 720}
screens:
  - {id: home, verify: [{not_black: {}}]}
  - {id: settings, verify: [{black: {}}]}
  - {id: island, verify: [{black: {}}]}
edges:
  - {id: h-s, from: home, to: settings, actions: [menu], reverse: [back]}
"#,
    )
    .expect("tree")
}

#[test]
fn validation_reports_every_problem_with_field_paths() {
    let tc = parse(
        r#"
name: everything wrong
device_model: other-box
defaults: {threshold: 2}
steps:
  - goto: nowhere
  - goto: island
  - press: {key: warp, repeat: 0}
  - verify_image: {reference: ghost, region: {x: 1200, y: 0, width: 300, height: 60}}
  - wait: 10
    timeout_ms: 100
  - repeat:
      count: 2
      steps:
        - verify_audio: {expect: silent, frequency_hz: 440}
        - measure_zap: {key: ch_upp}
  - screenshot: "bad name"
"#,
    )
    .expect("parses");
    let tree = tree();
    let mut refs = ReferenceSet::new();
    refs.insert(
        "small",
        crate::frame::Gray::new(2, 2, vec![0; 4]).expect("gray"),
    );
    let caps = [Capability::RemoteControl, Capability::VideoCapture];
    let env = ValidationEnv {
        nav: Some(&tree),
        references: Some(&refs),
        capabilities: Some(&caps),
        resolution: None,
        nav_pending: false,
        model_without_tree: None,
    };
    let errs = tc.validate(&env).expect_err("invalid");
    let got: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "device_model",
            "defaults.threshold",
            "steps[0].goto",
            "steps[1].goto",
            "steps[2].press.key",
            "steps[2].press.repeat",
            "steps[3].verify_image.reference",
            "steps[3].verify_image.region",
            "steps[4].timeout_ms",
            "steps[5].repeat.steps[0]",
            "steps[5].repeat.steps[0].verify_audio.frequency_hz",
            "steps[5].repeat.steps[1].measure_zap.key",
            "steps[6].screenshot.name",
        ],
        "{got:#?}"
    );
    assert!(got[2].contains("unknown screen \"nowhere\""), "{}", got[2]);
    assert!(
        got[3].contains("unreachable target screen \"island\""),
        "{}",
        got[3]
    );
    assert!(got[4].contains("unknown key \"warp\""), "{}", got[4]);
    assert!(
        got[6].contains("unknown reference image \"ghost\""),
        "{}",
        got[6]
    );
    assert!(
        got[7].contains("does not fit in the 1280x720 frame"),
        "{}",
        got[7]
    );
    assert!(
        got[9].contains("verify_audio needs audio_capture"),
        "{}",
        got[9]
    );
    assert_eq!(
        tc.required_capabilities(),
        [
            Capability::RemoteControl,
            Capability::VideoCapture,
            Capability::AudioCapture
        ]
    );
    // Without a tree, a goto is an error of its own.
    let tc = parse("name: g\nsteps: [goto: home]\n").expect("parses");
    let errs = tc.validate(&ValidationEnv::default()).expect_err("no tree");
    assert_eq!(errs[0].field, "steps[0].goto");
    assert!(
        parse("name: ok\nsteps: [press: ok]\n")
            .expect("parses")
            .validate(&ValidationEnv::default())
            .is_ok()
    );
}

#[test]
fn the_documented_example_parses_and_validates() {
    let doc = repo_file("docs/testcases.md");
    let start = doc.find("```yaml\n").expect("example") + "```yaml\n".len();
    let end = start + doc[start..].find("```").expect("end of example");
    let tc = parse(&doc[start..end]).unwrap_or_else(|e| panic!("docs/testcases.md example: {e}"));
    // Against the sample tree and references of the simulated box it is written for.
    let tree =
        NavigationTree::from_yaml(&repo_file("samples/nav/sim-stb.yaml")).expect("sample tree");
    let mut refs = ReferenceSet::new();
    for name in [
        "home-title",
        "settings-title",
        "page-footer",
        "banner-news-24",
    ] {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../samples/references/{name}.png"));
        let png = std::fs::read(&p).expect("reference");
        refs.insert(name, crate::image_io::decode_gray(&png).expect("decodes"));
    }
    let env = ValidationEnv {
        nav: Some(&tree),
        references: Some(&refs),
        ..ValidationEnv::default()
    };
    tc.validate(&env).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(tc.walk().len() > 10);
}

#[test]
fn the_json_schema_knows_exactly_the_parsers_actions() {
    let schema: serde_json::Value =
        serde_json::from_str(&repo_file("docs/testcase.schema.json")).expect("schema is JSON");
    let step = &schema["$defs"]["step"];
    let mut in_schema: Vec<String> = step["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .map(|v| v["required"][0].as_str().expect("name").to_owned())
        .collect();
    in_schema.sort();
    let mut known: Vec<String> = ACTION_NAMES.iter().map(|s| s.to_string()).collect();
    known.sort();
    assert_eq!(in_schema, known);
    for name in ACTION_NAMES
        .iter()
        .chain(["timeout_ms", "continue_on_failure"].iter())
    {
        assert!(
            step["properties"].get(*name).is_some(),
            "{name} missing from the schema's step properties"
        );
    }
    let keys: Vec<String> = schema["$defs"]["key"]["oneOf"][0]["enum"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|v| v.as_str().expect("key").to_owned())
        .collect();
    assert_eq!(keys, crate::controller::Key::names());
}

#[test]
fn every_sample_test_case_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/testcases");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("samples") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n >= 5, "{n} samples");
}

#[test]
fn serial_steps_parse_in_both_forms_and_are_validated() {
    let tc = parse(
        r#"
name: console
steps:
  - serial_send: root
  - serial_send: {text: "\u0003", newline: false}
  - serial_expect: "login:"
    timeout_ms: 2000
  - serial_expect: {pattern: 'version (?P<v>[0-9.]+'}
  - serial_send: {text: "", newline: false}
"#,
    )
    .expect("parses");
    assert_eq!(
        tc.steps[0].action,
        Action::SerialSend(crate::testcase::SerialSendStep {
            text: "root".into(),
            newline: true
        })
    );
    assert_eq!(tc.steps[2].timeout_ms, Some(2000));
    // JSON round trip (the host link carries test cases as core's JSON).
    let json = serde_json::to_string(&tc).expect("json");
    let back: TestCase = serde_json::from_str(&json).expect("back");
    assert_eq!(back, tc);
    let caps = [Capability::VideoCapture];
    let env = ValidationEnv {
        nav: None,
        references: None,
        capabilities: Some(&caps),
        resolution: None,
        nav_pending: false,
        model_without_tree: None,
    };
    let errs = tc.validate(&env).expect_err("invalid");
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert!(
        fields.contains(&"steps[3].serial_expect.pattern"),
        "{errs:?}"
    );
    assert!(fields.contains(&"steps[4].serial_send.text"), "{errs:?}");
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter().any(|t| t.contains("serial_send needs console")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("not a valid regular expression")),
        "{text:#?}"
    );
    assert!(parse("name: x\nsteps:\n  - serial_expect:\n").is_err());
}

#[test]
fn verify_log_parses_in_both_forms_and_is_validated() {
    let tc = parse(
        r#"
name: log
steps:
  - verify_log: "Started UI"
    timeout_ms: 2000
  - verify_log: {pattern: "Kernel panic|Oops", absent: true}
  - verify_log: {pattern: "oops", absent: true}
    timeout_ms: 100
  - verify_log: {pattern: "(unclosed"}
  - verify_log: {pattern: ""}
"#,
    )
    .expect("parses");
    assert_eq!(
        tc.steps[1].action,
        Action::VerifyLog(crate::testcase::VerifyLogStep {
            pattern: "Kernel panic|Oops".into(),
            absent: true,
        })
    );
    assert_eq!(tc.steps[0].timeout_ms, Some(2000));
    let json = serde_json::to_string(&tc).expect("json");
    assert!(
        json.contains(r#"{"verify_log":{"pattern":"Started UI"},"timeout_ms":2000}"#),
        "{json}"
    );
    let back: TestCase = serde_json::from_str(&json).expect("back");
    assert_eq!(back, tc);
    assert_eq!(tc.required_capabilities(), vec![Capability::Console]);
    let caps = [Capability::Console];
    let env = ValidationEnv {
        nav: None,
        references: None,
        capabilities: Some(&caps),
        resolution: None,
        nav_pending: false,
        model_without_tree: None,
    };
    let errs = tc.validate(&env).expect_err("invalid");
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "steps[2].timeout_ms",
            "steps[3].verify_log.pattern",
            "steps[4].verify_log.pattern"
        ],
        "{errs:?}"
    );
    assert!(parse("name: x\nsteps:\n  - verify_log:\n").is_err());
    assert!(parse("name: x\nsteps:\n  - verify_log: {pattern: x, present: true}\n").is_err());
}
