//! Verification on real frames and audio from the simulated set-top box ([`crate::sim`]), on a
//! manual clock: what the test runner will see from a device.

use std::{sync::Arc, time::Duration};

use super::*;
use crate::{
    clock::ManualClock,
    controller::{AudioCapture, Key, RemoteControl, VideoCapture},
    frame::Gray,
    sim::{Screen, SimConfig, SimulatedStb, layout},
};

/// 2023-11-14 22:13:20 UTC.
const T0: u64 = 1_700_000_000_000_000;

fn sim() -> (SimulatedStb, ManualClock) {
    let clock = ManualClock::new(T0);
    let stb = SimulatedStb::with_clock(SimConfig::default(), Arc::new(clock.clone()))
        .expect("valid config");
    (stb, clock)
}

fn gray(stb: &SimulatedStb) -> Gray {
    stb.grab().expect("grab").to_gray()
}

fn press(stb: &SimulatedStb, clock: &ManualClock, key: Key) {
    stb.press(key).expect("press");
    clock.advance_ms(stb.config().key_delay_ms);
}

/// Home -> Live TV, past the tuning black.
fn watch(stb: &SimulatedStb, clock: &ManualClock) {
    press(stb, clock, Key::Ok);
    clock.advance_ms(stb.config().zap_ms);
    assert_eq!(stb.current_screen(), Screen::Player);
}

#[test]
fn menus_are_frozen_and_the_player_moves() {
    let (stb, clock) = sim();
    let a = gray(&stb);
    clock.advance_ms(500);
    let b = gray(&stb);
    clock.advance_ms(500);
    let c = gray(&stb);
    assert!(
        is_frozen(&[a.clone(), b, c], None, 1.0).expect("ok"),
        "home screen is static"
    );
    assert!(
        !is_black(&a, None, BlackParams::default())
            .expect("ok")
            .black
    );

    watch(&stb, &clock);
    let p1 = gray(&stb);
    clock.advance_ms(100);
    let p2 = gray(&stb);
    let m = motion(&p1, &p2, None, 1.0).expect("ok");
    assert!(m.moving, "{m:?}");
    assert!(!is_frozen(&[p1, p2], None, 1.0).expect("ok"));
}

#[test]
fn a_tile_cut_from_the_home_screen_is_found_where_it_is() {
    let (stb, clock) = sim();
    let home = gray(&stb);
    let settings_tile = layout::home_tile(4).expect("tile");
    let template = home.crop(settings_tile);
    // The focus moves (the ring is drawn outside the tile): the tile is still found, exactly.
    press(&stb, &clock, Key::Right);
    let moved = gray(&stb);
    assert_ne!(moved, home);
    let m = find_template(&moved, &template, None).expect("ok");
    assert_eq!(m.rect(template.width, template.height), settings_tile);
    assert!(m.score > 0.99, "{m:?}");
    // Searching only the top row of tiles does not find it there (Settings is on row two).
    let top_row = Rect::new(0, 150, layout::WIDTH, 250);
    let other = match_template(&moved, &template, Some(top_row), 0.9).expect("ok");
    assert_eq!(other, None);
    // Gone once the player is up.
    press(&stb, &clock, Key::Left);
    watch(&stb, &clock);
    assert_eq!(
        match_template(&gray(&stb), &template, None, 0.9).expect("ok"),
        None
    );
}

#[test]
fn zap_time_of_a_channel_change() {
    let (stb, clock) = sim();
    watch(&stb, &clock);
    clock.advance_ms(200);
    let key_at = T0 + 2_000_000;
    clock.set_us(key_at);
    stb.press(Key::ChannelUp).expect("press");
    let mut frames = Vec::new();
    for _ in 0..40 {
        clock.advance_ms(40);
        let f = stb.grab().expect("grab");
        frames.push((f.captured_at_us, f.to_gray()));
    }
    let observed: Vec<(u64, &Gray)> = frames.iter().map(|(t, g)| (*t, g)).collect();
    let z = zap_time(key_at, &observed, None, BlackParams::default())
        .expect("ok")
        .expect("a zap");
    let config = stb.config();
    // Black from the key delay on, good again after zap_ms (to the 40 ms grab interval).
    assert!(
        z.black_started_at_us - key_at >= config.key_delay_ms * 1000,
        "{z:?}"
    );
    assert!(
        z.black_started_at_us - key_at < (config.key_delay_ms + 40) * 1000,
        "{z:?}"
    );
    let expected = (config.key_delay_ms + config.zap_ms) as f64;
    assert!(z.zap_ms >= expected && z.zap_ms < expected + 40.0, "{z:?}");
}

#[test]
fn the_test_tone_changes_with_the_channel() {
    let (stb, clock) = sim();
    watch(&stb, &clock);
    let chunk = stb.read(Duration::from_millis(200)).expect("audio");
    assert!(!is_silent(&chunk.samples, DEFAULT_SILENCE_DBFS));
    let f1 = dominant_frequency(&chunk.samples, chunk.sample_rate).expect("a tone");
    assert!((f1 - crate::sim::tone_hz(1) as f32).abs() < 5.0, "{f1}");
    press(&stb, &clock, Key::ChannelUp);
    clock.advance_ms(stb.config().zap_ms);
    let chunk = stb.read(Duration::from_millis(200)).expect("audio");
    let f2 = dominant_frequency(&chunk.samples, chunk.sample_rate).expect("a tone");
    assert!((f2 - crate::sim::tone_hz(2) as f32).abs() < 5.0, "{f2}");
    press(&stb, &clock, Key::Mute);
    let chunk = stb.read(Duration::from_millis(200)).expect("audio");
    assert!(is_silent(&chunk.samples, DEFAULT_SILENCE_DBFS));
    assert_eq!(dominant_frequency(&chunk.samples, chunk.sample_rate), None);
}
