//! Unit tests of trees, statistics and planning (execution is tested against the simulator in
//! `run::tests`).

use super::*;

const TREE: &str = r#"
model: demo
resolution: {width: 640, height: 360}
screens:
  - id: a
    verify: [{not_black: {}}]
  - id: b
    verify: [{image: {reference: b-logo, region: {x: 0, y: 0, width: 100, height: 50}}}]
  - id: c
    verify: [{black: {region: {x: 10, y: 10, width: 20, height: 20}}}]
  - id: d
    verify: [{not_black: {}}]
edges:
  - {id: a-b, from: a, to: b, actions: [right], reverse: [left]}
  - {id: b-c, from: b, to: c, actions: [{key: ok, delay_ms: 200}], wait_after_ms: 300}
  - {id: a-c, from: a, to: c, actions: [down, down, down, down, down, down, down, ok]}
"#;

fn tree() -> NavigationTree {
    NavigationTree::from_yaml(TREE).expect("parses")
}

#[test]
fn trees_parse_validate_and_round_trip_through_json() {
    let t = tree();
    t.validate().expect("valid");
    assert_eq!(
        t.edges[1].actions[0],
        KeyAction {
            key: KeyName("ok".into()),
            delay_ms: 200
        }
    );
    assert_eq!(
        t.screens[1].verify[0],
        ScreenCheck::Image {
            reference: "b-logo".into(),
            region: Some(crate::frame::Rect::new(0, 0, 100, 50)),
            threshold: tree::DEFAULT_IMAGE_THRESHOLD,
        }
    );
    let json = serde_json::to_string(&t).expect("json");
    assert!(json.contains(r#"{"image":{"reference":"b-logo""#), "{json}");
    let back: NavigationTree = serde_json::from_str(&json).expect("back");
    assert_eq!(back, t);
    let ids: Vec<String> = t.directed_edges().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["a-b", "b-c", "a-c", "a-b.reverse"]);
}

#[test]
fn validation_reports_every_problem_with_its_path() {
    let text = r#"
model: demo
resolution: {width: 640, height: 360}
screens:
  - id: a
    verify: []
  - id: a
    verify: [{image: {reference: x, region: {x: 600, y: 0, width: 100, height: 10}, threshold: 1.5}}]
edges:
  - {id: e, from: a, to: nowhere, actions: [warp]}
  - {id: e, from: a, to: a, actions: []}
stats:
  ghost: {attempts: 1, successes: 2, mean_duration_ms: 10}
"#;
    let t = NavigationTree::from_yaml(text).expect("parses");
    let errs = t.validate().expect_err("invalid");
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "screens[0].verify",
            "screens[1].id",
            "screens[1].verify[0].image.region",
            "screens[1].verify[0].image.threshold",
            "edges[0].to",
            "edges[0].actions[0].key",
            "edges[1].id",
            "edges[1].to",
            "edges[1].actions",
            "stats.ghost",
            "stats.ghost.successes",
        ],
        "{errs:#?}"
    );
    assert!(errs[5].message.contains("unknown key \"warp\""));
}

#[test]
fn a_check_needs_exactly_one_kind() {
    let e = NavigationTree::from_yaml(
        "model: m\nresolution: {width: 1, height: 1}\nscreens:\n  - id: a\n    verify: [{black: {}, not_black: {}}]\n",
    )
    .expect_err("two kinds");
    assert!(
        e.message.contains("exactly one of image, black, not_black"),
        "{e}"
    );
    assert_eq!(e.line, Some(5), "{e}");
}

#[test]
fn plans_take_the_cheapest_path_and_learn_from_observations() {
    let mut t = tree();
    // Unmeasured: a-b + b-c (1 press + 1 press with 200 ms + 300 ms wait) beats eight presses.
    let p = plan(&t, "a", "c").expect("path");
    let ids: Vec<&str> = p.edges.iter().map(|e| e.edge_id.as_str()).collect();
    assert_eq!(ids, ["a-b", "b-c"]);
    // b-c turns out slow and unreliable: the direct edge wins.
    let slow: Vec<EdgeObservation> = (0..6)
        .map(|i| EdgeObservation {
            edge_id: "b-c".into(),
            duration_ms: 4_000.0,
            success: i % 2 == 0,
        })
        .collect();
    t.record(&slow);
    assert_eq!(
        t.stats["b-c"],
        EdgeStats {
            attempts: 6,
            successes: 3,
            mean_duration_ms: 4_000.0
        }
    );
    let p = plan(&t, "a", "c").expect("path");
    let ids: Vec<&str> = p.edges.iter().map(|e| e.edge_id.as_str()).collect();
    assert_eq!(ids, ["a-c"]);
    // The reverse edge is used, and nothing leads to d.
    let back = plan(&t, "b", "a").expect("reverse");
    assert_eq!(back.edges[0].edge_id, "a-b.reverse");
    assert_eq!(plan(&t, "a", "a").expect("empty").edges, vec![]);
    assert_eq!(
        plan(&t, "a", "d"),
        Err(NavError::Unreachable {
            from: "a".into(),
            to: "d".into()
        })
    );
    assert_eq!(
        plan(&t, "a", "zz"),
        Err(NavError::UnknownScreen("zz".into()))
    );
    assert!(!t.is_reachable_from_elsewhere("d"));
    assert!(
        t.is_reachable_from_elsewhere("a"),
        "through the reverse edge"
    );
    assert_eq!(t.screens_that_cannot_reach("b"), ["c", "d"]);
    // Observations of unknown edges are ignored.
    t.record(&[EdgeObservation {
        edge_id: "nope".into(),
        duration_ms: 1.0,
        success: true,
    }]);
    assert!(!t.stats.contains_key("nope"));
}

#[test]
fn edge_cost_is_expected_time_to_succeed_with_a_prior() {
    let fresh = EdgeStats::default();
    // No data: the prior (1000 ms at 90 %).
    assert!((fresh.expected_cost_ms(1_000.0) - 1_000.0 / 0.9).abs() < 1e-9);
    let mut s = EdgeStats::default();
    for _ in 0..98 {
        s.record(500.0, true);
    }
    // Lots of data: close to the measured mean over the measured rate.
    let c = s.expected_cost_ms(1_000.0);
    assert!(c > 500.0 && c < 515.0, "{c}");
    let mut failing = EdgeStats::default();
    for _ in 0..10 {
        failing.record(500.0, false);
    }
    assert!(
        failing.expected_cost_ms(1_000.0) > 5.0 * c,
        "failures make an edge expensive"
    );
    assert!(failing.expected_cost_ms(1_000.0).is_finite());
}
