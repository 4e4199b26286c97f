//! The phone model: navigation, input, apps, logcat and the hierarchy matching the pixels.

use super::*;
use crate::clock::ManualClock;
use std::collections::HashMap;

fn phone() -> Phone {
    Phone::new(
        PhoneConfig::default(),
        Arc::new(ManualClock::new(1_796_664_636_000_000)),
    )
    .expect("valid config")
}

/// The nodes of a uiautomator dump as attribute maps.
fn nodes(xml: &str) -> Vec<HashMap<String, String>> {
    let node = regex::Regex::new(r"<node ([^>]*?)\s*/?>").expect("regex");
    let attr = regex::Regex::new(r#"([a-z-]+)="([^"]*)""#).expect("regex");
    node.captures_iter(xml)
        .map(|c| {
            attr.captures_iter(&c[1])
                .map(|a| (a[1].to_string(), a[2].to_string()))
                .collect()
        })
        .collect()
}

fn center(bounds: &str) -> (i32, i32) {
    let n: Vec<i32> = bounds
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    ((n[0] + n[2]) / 2, (n[1] + n[3]) / 2)
}

/// Taps the node whose attribute `key` is `value`, found through the dump like a test would.
fn tap_node(p: &mut Phone, key: &str, value: &str) {
    let xml = p.ui_dump().expect("screen on");
    let n = nodes(&xml)
        .into_iter()
        .find(|n| n.get(key).map(String::as_str) == Some(value))
        .unwrap_or_else(|| panic!("no node with {key}={value} in {xml}"));
    let (x, y) = center(&n["bounds"]);
    p.tap(x, y);
}

fn find<'a>(nodes: &'a [HashMap<String, String>], id: &str) -> &'a HashMap<String, String> {
    nodes
        .iter()
        .find(|n| n["resource-id"] == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

#[test]
fn boots_to_home_with_app_icons() {
    let p = phone();
    assert_eq!(p.foreground(), LAUNCHER);
    let xml = p.ui_dump().expect("screen on");
    assert!(xml.starts_with("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\"><node index=\"0\""));
    assert!(xml.ends_with("</node></hierarchy>"));
    let n = nodes(&xml);
    let labels: Vec<&str> = n
        .iter()
        .filter(|n| n["resource-id"] == "com.android.launcher3:id/icon")
        .map(|n| n["text"].as_str())
        .collect();
    assert_eq!(labels, ["Settings", "Labwright Demo"]);
    assert!(n.iter().all(|n| n.contains_key("checkable")
        && n.contains_key("long-clickable")
        && n.contains_key("password")));
    assert!(
        p.log_since(0)
            .iter()
            .any(|l| l.contains("Start proc") && l.contains(LAUNCHER))
    );
}

#[test]
fn demo_app_counter_text_and_keys() {
    let mut p = phone();
    let before = p.screencap_png();
    tap_node(&mut p, "text", "Labwright Demo");
    assert_eq!(
        p.status().focused_component,
        "com.labwright.demo/.MainActivity"
    );
    let start = p.log_since(0);
    assert!(
        start
            .iter()
            .any(|l| l.contains(" I ActivityTaskManager: START u0 {")
                && l.contains("cmp=com.labwright.demo/.MainActivity")),
        "{start:?}"
    );
    let home_png = before;
    let demo_rgb = p.render_rgb();
    tap_node(&mut p, "resource-id", "com.labwright.demo:id/increment");
    tap_node(&mut p, "resource-id", "com.labwright.demo:id/increment");
    assert_eq!(p.status().demo.count, 2);
    let n = nodes(&p.ui_dump().expect("on"));
    assert_eq!(
        find(&n, "com.labwright.demo:id/counter")["text"],
        "Count: 2"
    );
    assert_ne!(p.render_rgb(), demo_rgb, "the counter is drawn");
    assert_ne!(p.screencap_png(), home_png);
    assert!(
        p.log_since(0)
            .iter()
            .any(|l| l.ends_with("LabwrightDemo: button increment clicked, count=2"))
    );

    // Long press adds ten; reset; hello.
    let (x, y) = center(&find(&n, "com.labwright.demo:id/increment")["bounds"]);
    p.long_press(x, y);
    assert_eq!(p.status().demo.count, 12);
    p.swipe(x, y, x + 3, y, 800);
    assert_eq!(
        p.status().demo.count,
        22,
        "a swipe that stays put for 800 ms is a long press"
    );
    tap_node(&mut p, "text", "Reset");
    assert_eq!(p.status().demo.count, 0);
    tap_node(&mut p, "text", "Say hello");
    let n = nodes(&p.ui_dump().expect("on"));
    assert_eq!(
        find(&n, "com.labwright.demo:id/message")["text"],
        "Hello, Labwright!"
    );

    // Text goes nowhere until the field is focused.
    p.text("ignored");
    assert_eq!(p.status().demo.text, "");
    tap_node(&mut p, "resource-id", "com.labwright.demo:id/input");
    p.text("hello world");
    p.key(Keycode::DEL);
    p.key(Keycode::parse("KEYCODE_7").expect("key"));
    let n = nodes(&p.ui_dump().expect("on"));
    let input = find(&n, "com.labwright.demo:id/input");
    assert_eq!(
        (
            input["text"].as_str(),
            input["focused"].as_str(),
            input["class"].as_str()
        ),
        ("hello worl7", "true", "android.widget.EditText")
    );
    assert_eq!(
        find(&n, "com.labwright.demo:id/last_key")["text"],
        "Last key: KEYCODE_7"
    );

    // Media keys reach the app; volume keys change the volume.
    p.key(Keycode(85));
    p.key(Keycode::VOLUME_UP);
    let n = nodes(&p.ui_dump().expect("on"));
    assert_eq!(
        find(&n, "com.labwright.demo:id/volume")["text"],
        "Volume: 9"
    );

    // BACK hides the keyboard first, then leaves the app.
    p.key(Keycode::BACK);
    assert_eq!(p.foreground(), DEMO);
    assert!(!p.status().demo.input_focused);
    p.key(Keycode::BACK);
    assert_eq!(p.foreground(), LAUNCHER);
    // The app keeps its state until it is stopped.
    p.launch(DEMO).expect("launch");
    assert_eq!(p.status().demo.text, "hello worl7");
    p.force_stop(DEMO);
    assert_eq!(p.foreground(), LAUNCHER);
    assert_eq!(p.status().demo, DemoState::default());
    assert!(
        p.log_since(0)
            .iter()
            .any(|l| l.contains("Force stopping com.labwright.demo"))
    );
}

#[test]
fn dpad_moves_focus_and_enter_clicks() {
    let mut p = phone();
    p.key(Keycode::DPAD_RIGHT);
    p.key(Keycode::DPAD_RIGHT);
    let n = nodes(&p.ui_dump().expect("on"));
    let focused: Vec<&str> = n
        .iter()
        .filter(|n| n["focused"] == "true")
        .map(|n| n["text"].as_str())
        .collect();
    assert_eq!(focused, ["Labwright Demo"]);
    p.key(Keycode::ENTER);
    assert_eq!(p.foreground(), DEMO);
    p.key(Keycode::DPAD_DOWN); // increment
    p.key(Keycode::DPAD_CENTER);
    assert_eq!(p.status().demo.count, 1);
    p.key(Keycode::HOME);
    assert_eq!(p.foreground(), LAUNCHER);
}

#[test]
fn launcher_lists_settings_and_navigation_bar() {
    let mut p = phone();
    p.swipe(270, 700, 270, 300, 200);
    assert_eq!(
        p.status().focused_component,
        "com.android.launcher3/.AllAppsActivity"
    );
    let n = nodes(&p.ui_dump().expect("on"));
    let rows: Vec<&str> = n
        .iter()
        .filter(|n| n["resource-id"].ends_with(":id/app_row"))
        .map(|n| n["content-desc"].as_str())
        .collect();
    assert_eq!(rows, [SETTINGS, DEMO]);
    p.swipe(270, 300, 270, 700, 200);
    assert_eq!(p.foreground(), LAUNCHER);
    p.key(Keycode::MENU);
    tap_node(&mut p, "content-desc", SETTINGS);
    let n = nodes(&p.ui_dump().expect("on"));
    let texts: Vec<&str> = n.iter().map(|n| n["text"].as_str()).collect();
    for want in [
        "Settings",
        "Model",
        "Labwright Sim Phone",
        "Android version",
        "14",
        "LWSIM0001",
    ] {
        assert!(texts.contains(&want), "{want} in {texts:?}");
    }
    // Recents lists what is open; the navigation bar's Home goes Home.
    tap_node(&mut p, "content-desc", "Overview");
    let n = nodes(&p.ui_dump().expect("on"));
    assert!(
        n.iter()
            .any(|n| n["resource-id"].ends_with(":id/app_row") && n["text"] == "Settings")
    );
    tap_node(&mut p, "content-desc", "Back");
    assert_eq!(p.foreground(), SETTINGS);
    tap_node(&mut p, "content-desc", "Home");
    assert_eq!(p.foreground(), LAUNCHER);
    // Swiping up from the bottom edge goes Home too.
    p.launch(SETTINGS).expect("settings");
    p.swipe(270, 950, 270, 500, 150);
    assert_eq!(p.foreground(), LAUNCHER);
}

#[test]
fn every_clickable_node_is_reached_by_a_tap_at_its_centre() {
    let mut p = phone();
    for setup in [None, Some(DEMO), Some(SETTINGS)] {
        if let Some(pkg) = setup {
            p.launch(pkg).expect("launch");
        }
        let windows = p.windows();
        for w in &windows {
            for n in w.nodes.iter().filter(|n| n.clickable) {
                let (x, y) = n.bounds.center();
                assert_eq!(ui::hit(&windows, x, y, false), Some(n));
            }
        }
    }
}

#[test]
fn apps_install_start_clear_and_uninstall() {
    let mut p = phone();
    let apk = apk::build_demo_apk("com.example.hello", "Hello App");
    let info = p.install(&apk).expect("install");
    assert_eq!(info.package, "com.example.hello");
    assert!(p.package("com.example.hello").is_some());
    let n = nodes(&p.ui_dump().expect("on"));
    assert!(
        n.iter().any(|n| n["text"] == "Hello App"),
        "the launcher shows the new app"
    );
    assert_eq!(
        p.start_component("com.example.hello/.MainActivity"),
        Ok("com.example.hello/.MainActivity".into())
    );
    let n = nodes(&p.ui_dump().expect("on"));
    assert!(n.iter().any(|n| n["text"] == "Hello from Hello App"));
    assert!(matches!(
        p.start_component("com.example.hello/.Nope"),
        Err(StartError::NoActivity(_))
    ));
    assert!(matches!(
        p.start_component("com.nope/.Main"),
        Err(StartError::NoActivity(_))
    ));
    assert_eq!(
        p.start_action(
            "android.intent.action.MAIN",
            Some("android.intent.category.HOME")
        ),
        Ok("com.android.launcher3/.Launcher".into())
    );
    assert_eq!(
        p.start_action("android.intent.action.VIEW", None),
        Err(StartError::Unresolved)
    );
    assert!(p.clear_data("com.example.hello"));
    assert!(!p.clear_data("com.nope.x"));
    assert!(p.uninstall("com.example.hello"));
    assert!(!p.uninstall("com.example.hello"));
    assert!(!p.uninstall(SETTINGS), "system apps stay");
    assert_eq!(
        p.install(b"garbage").unwrap_err().code,
        "INSTALL_PARSE_FAILED_NOT_APK"
    );
    assert!(p.install(&apk::build_demo_apk(SETTINGS, "Evil")).is_err());
}

#[test]
fn power_turns_the_screen_off_and_on() {
    let mut p = phone();
    p.key(Keycode::POWER);
    assert!(!p.status().screen_on);
    assert!(p.ui_dump().is_none());
    assert!(p.render_rgb().iter().all(|b| *b == 0));
    p.tap(100, 200);
    p.key(Keycode::HOME);
    assert!(!p.status().screen_on, "only power or wakeup wakes it");
    p.key(Keycode::WAKEUP);
    assert!(p.status().screen_on);
}

#[test]
fn screencaps_are_valid_and_deterministic() {
    let mut a = phone();
    let mut b = phone();
    for p in [&mut a, &mut b] {
        p.launch(DEMO).expect("demo");
        p.tap(270, 286);
    }
    let png = a.screencap_png();
    assert_eq!(png, b.screencap_png());
    assert_eq!(a.log_since(0), b.log_since(0));
    let img = image::load_from_memory(&png).expect("png decodes");
    assert_eq!((img.width(), img.height()), (WIDTH, HEIGHT));
    assert_eq!(img.to_rgb8().into_raw(), a.render_rgb());
    let raw = a.screencap_raw();
    assert_eq!(
        &raw[..16],
        &[0x1c, 2, 0, 0, 0xc0, 3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(raw.len(), 16 + (WIDTH * HEIGHT * 4) as usize);
    let v = a.version();
    a.tap(5, 60); // nothing there
    assert_eq!(a.version(), v, "nothing changed, same frame");
}

#[test]
fn properties_and_config() {
    let p = phone();
    assert_eq!(
        p.property("ro.product.model").as_deref(),
        Some("Labwright Sim Phone")
    );
    assert_eq!(p.property("ro.build.version.sdk").as_deref(), Some("34"));
    assert_eq!(p.property("ro.serialno").as_deref(), Some("LWSIM0001"));
    assert_eq!(p.property("no.such"), None);
    let props = p.properties();
    assert!(props.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    let bad = |f: fn(&mut PhoneConfig)| {
        let mut c = PhoneConfig::default();
        f(&mut c);
        c.validate().unwrap_err().field
    };
    assert_eq!(bad(|c| c.serial = "has space".into()), "serial");
    assert_eq!(bad(|c| c.model = String::new()), "model");
    assert_eq!(bad(|c| c.sdk = 0), "sdk");
}

#[test]
fn logcat_lines_are_threadtime() {
    let mut p = phone();
    let end = p.log_end();
    p.key(Keycode::HOME);
    let lines = p.log_since(end);
    assert_eq!(
        lines,
        [
            "12-07 17:30:36.000   612   612 I InputDispatcher: Delivering KEYCODE_HOME (3) to com.android.launcher3"
        ]
    );
    p.log_clear();
    assert!(p.log_since(0).is_empty());
}
