//! Behaviour of the simulated box through its public controller traits, on a manual clock.

use std::{sync::Arc, time::Duration};

use super::*;
use crate::{clock::ManualClock, frame::Rect};

/// 2023-11-14 22:13:20 UTC.
const T0: u64 = 1_700_000_000_000_000;

fn sim(config: SimConfig) -> (SimulatedStb, ManualClock) {
    let clock = ManualClock::new(T0);
    let stb = SimulatedStb::with_clock(config, Arc::new(clock.clone())).expect("valid config");
    (stb, clock)
}

/// Presses `key` and waits until the box has reacted.
fn press(stb: &SimulatedStb, clock: &ManualClock, key: Key) {
    stb.press(key).expect("press");
    clock.advance_ms(stb.config().key_delay_ms + stb.faults().slow_ms);
}

fn is_black(f: &Frame) -> bool {
    f.rgb.iter().all(|b| *b == 0)
}

fn crop(f: &Frame, r: Rect) -> Vec<u8> {
    let mut out = Vec::new();
    for y in r.y..r.y + r.height {
        let start = (y * f.width + r.x) as usize * 3;
        out.extend_from_slice(&f.rgb[start..start + r.width as usize * 3]);
    }
    out
}

/// The pixel in the middle of the top edge of the focus ring of Home tile `i`.
fn ring_pixel(f: &Frame, i: usize) -> [u8; 3] {
    let r = layout::home_focus_ring(i).expect("tile");
    f.pixel(r.x + r.width / 2, r.y + 2)
}

/// Rising zero crossings per second.
fn frequency(chunk: &AudioChunk) -> f64 {
    let rising = chunk
        .samples
        .windows(2)
        .filter(|w| w[0] < 0 && w[1] >= 0)
        .count();
    rising as f64 * f64::from(chunk.sample_rate) / chunk.samples.len() as f64
}

/// Home -> Live TV, past the tuning black and the banner.
fn watch(stb: &SimulatedStb, clock: &ManualClock) {
    press(stb, clock, Key::Ok);
    clock.advance_ms(stb.config().zap_ms);
    assert_eq!(stb.current_screen(), Screen::Player);
}

#[test]
fn arrows_move_the_focus_ring_on_home() {
    let (stb, clock) = sim(SimConfig::default());
    assert_eq!(stb.current_screen(), Screen::Home);
    assert_eq!(stb.focused_item(), Some("Live TV"));
    let f = stb.grab().expect("grab");
    assert_eq!(ring_pixel(&f, 0), layout::FOCUS);
    assert_ne!(ring_pixel(&f, 1), layout::FOCUS);

    stb.press(Key::Right).expect("press");
    clock.advance_ms(119);
    assert_eq!(
        stb.focused_item(),
        Some("Live TV"),
        "not before the key delay"
    );
    clock.advance_ms(1);
    assert_eq!(stb.focused_item(), Some("Guide"));
    let f = stb.grab().expect("grab");
    assert_ne!(ring_pixel(&f, 0), layout::FOCUS);
    assert_eq!(ring_pixel(&f, 1), layout::FOCUS);

    press(&stb, &clock, Key::Down);
    assert_eq!(
        (stb.focus_index(), stb.focused_item()),
        (Some(5), Some("Search"))
    );
    let f = stb.grab().expect("grab");
    assert_eq!(ring_pixel(&f, 5), layout::FOCUS);
    assert!(
        (0..8)
            .filter(|i| *i != 5)
            .all(|i| ring_pixel(&f, i) != layout::FOCUS)
    );
}

#[test]
fn settings_list_moves_and_returns_home() {
    let (stb, clock) = sim(SimConfig::default());
    for k in [Key::Down, Key::Ok] {
        press(&stb, &clock, k);
    }
    assert_eq!(stb.current_screen(), Screen::Settings);
    assert_eq!(stb.focused_item(), Some("Network"));
    press(&stb, &clock, Key::Down);
    press(&stb, &clock, Key::Down);
    assert_eq!(stb.focused_item(), Some("Audio"));
    let f = stb.grab().expect("grab");
    let item = |i: usize| {
        let r = layout::settings_item(i).expect("item");
        f.pixel(r.x + 4, r.y + 4)
    };
    assert_eq!(item(2), layout::FOCUS);
    assert_ne!(item(0), layout::FOCUS);
    press(&stb, &clock, Key::Back);
    assert_eq!(stb.current_screen(), Screen::Home);
    assert_eq!(
        stb.focused_item(),
        Some("Settings"),
        "home remembers its focus"
    );
    // Other tiles open a page that BACK leaves.
    press(&stb, &clock, Key::Right);
    press(&stb, &clock, Key::Ok);
    assert_eq!(stb.current_screen(), Screen::Page);
    press(&stb, &clock, Key::Home);
    assert_eq!(stb.current_screen(), Screen::Home);
}

#[test]
fn live_tv_plays_a_moving_picture_while_menus_are_static() {
    let (stb, clock) = sim(SimConfig::default());
    let a = stb.grab().expect("grab");
    clock.advance_ms(500);
    let b = stb.grab().expect("grab");
    assert_eq!(
        (a.seq, &a.rgb),
        (b.seq, &b.rgb),
        "menus do not change by themselves"
    );
    assert!(b.captured_at_us > a.captured_at_us);

    press(&stb, &clock, Key::Ok);
    assert_eq!(stb.current_screen(), Screen::Zapping);
    assert!(is_black(&stb.grab().expect("grab")));
    clock.advance_ms(stb.config().zap_ms);
    assert_eq!(stb.current_screen(), Screen::Player);
    let mut last = stb.grab().expect("grab");
    assert!(!is_black(&last));
    for _ in 0..5 {
        clock.advance(Duration::from_micros(33_334));
        let f = stb.grab().expect("grab");
        assert!(f.seq > last.seq);
        assert_ne!(f.rgb, last.rgb, "every frame of the live picture differs");
        // The banner is opaque, so its text can be matched whatever moves behind it.
        assert_eq!(crop(&f, layout::BANNER), crop(&last, layout::BANNER));
        last = f;
    }
    let same_tick = stb.grab().expect("grab");
    assert_eq!(same_tick.seq, last.seq);
}

#[test]
fn zapping_is_black_for_the_configured_time() {
    let (stb, clock) = sim(SimConfig {
        zap_ms: 600,
        ..SimConfig::default()
    });
    watch(&stb, &clock);
    stb.press(Key::ChannelUp).expect("press");
    clock.advance_ms(119);
    assert!(
        !is_black(&stb.grab().expect("grab")),
        "still the old channel during the key delay"
    );
    clock.advance_ms(1);
    assert_eq!(
        (stb.current_screen(), stb.current_channel()),
        (Screen::Zapping, 2)
    );
    for _ in 0..6 {
        assert!(is_black(&stb.grab().expect("grab")));
        clock.advance_ms(99);
    }
    clock.advance_ms(6);
    assert_eq!(stb.current_screen(), Screen::Player);
    let f = stb.grab().expect("grab");
    assert!(!is_black(&f));
    // The banner names the new channel.
    let (other, other_clock) = sim(SimConfig::default());
    watch(&other, &other_clock);
    let g = other.grab().expect("grab");
    assert_ne!(crop(&f, layout::BANNER_NAME), crop(&g, layout::BANNER_NAME));

    // ch_down wraps around, digits tune directly.
    press(&stb, &clock, Key::ChannelDown);
    press(&stb, &clock, Key::ChannelDown);
    assert_eq!(stb.current_channel(), 9);
    press(&stb, &clock, Key::Digit(4));
    assert_eq!(
        (stb.current_screen(), stb.current_channel()),
        (Screen::Zapping, 4)
    );
}

#[test]
fn the_output_delivers_frames_on_a_static_screen_but_not_while_frozen() {
    let (stb, clock) = sim(SimConfig::default());
    let a = stb.delivered().expect("counted");
    clock.advance_ms(1000);
    let b = stb.delivered().expect("counted");
    assert_eq!(b - a, 30, "30 fps on the static Home screen");
    assert_eq!(
        stb.grab().expect("grab").seq,
        0,
        "the picture itself did not change"
    );
    stb.inject(Fault::Frozen);
    let c = stb.delivered().expect("counted");
    clock.advance_ms(2000);
    assert_eq!(stb.delivered(), Some(c), "nothing delivered while frozen");
    stb.clear_faults();
    clock.advance_ms(100);
    assert_eq!(stb.delivered(), Some(c + 3), "frozen time is not counted");
}

#[test]
fn frozen_video_repeats_the_same_frame_until_cleared() {
    let (stb, clock) = sim(SimConfig::default());
    watch(&stb, &clock);
    stb.inject(Fault::Frozen);
    let a = stb.grab().expect("grab");
    press(&stb, &clock, Key::ChannelUp);
    clock.advance_ms(2000);
    let b = stb.grab().expect("grab");
    assert_eq!((a.seq, &a.rgb), (b.seq, &b.rgb));
    assert_eq!(
        stb.current_channel(),
        2,
        "the box keeps running behind the frozen picture"
    );
    stb.clear_faults();
    let c = stb.grab().expect("grab");
    assert!(c.seq > b.seq);
    assert_ne!(c.rgb, b.rgb);

    // From the config too.
    let (stb, clock) = sim(SimConfig {
        faults: FaultConfig {
            frozen: true,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    });
    let a = stb.grab().expect("grab");
    press(&stb, &clock, Key::Right);
    assert_eq!(stb.grab().expect("grab").rgb, a.rgb);
}

#[test]
fn dropped_and_slow_keys() {
    let (stb, clock) = sim(SimConfig::default());
    stb.inject(Fault::DropKeys { count: 2 });
    for _ in 0..3 {
        press(&stb, &clock, Key::Right);
    }
    assert_eq!(
        stb.focused_item(),
        Some("Guide"),
        "two of three presses lost"
    );
    assert_eq!(stb.faults().drop_keys, 0);

    stb.inject(Fault::Slow { extra_ms: 1000 });
    stb.press(Key::Right).expect("press");
    clock.advance_ms(1119);
    assert_eq!(stb.focused_item(), Some("Guide"));
    clock.advance_ms(1);
    assert_eq!(stb.focused_item(), Some("Recordings"));
    stb.clear_faults();
    assert_eq!(stb.faults(), ActiveFaults::default());

    let (stb, clock) = sim(SimConfig {
        faults: FaultConfig {
            drop_keys: 1,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    });
    press(&stb, &clock, Key::Right);
    press(&stb, &clock, Key::Right);
    assert_eq!(stb.focused_item(), Some("Guide"));
}

#[test]
fn power_off_is_black_and_silent_and_power_on_boots_to_home() {
    let (stb, clock) = sim(SimConfig::default());
    watch(&stb, &clock);
    assert!(
        stb.read(Duration::from_millis(100))
            .expect("audio")
            .samples
            .iter()
            .any(|s| *s != 0)
    );

    PowerControl::set(&stb, PowerState::Off).expect("off");
    assert_eq!(stb.current_screen(), Screen::Off);
    assert_eq!(PowerControl::state(&stb), Ok(PowerState::Off));
    assert!(is_black(&stb.grab().expect("grab")));
    let audio = stb.read(Duration::from_millis(500)).expect("audio");
    assert_eq!(audio.samples.len(), 24_000);
    assert!(audio.samples.iter().all(|s| *s == 0));
    press(&stb, &clock, Key::Ok);
    assert_eq!(stb.current_screen(), Screen::Off, "only power wakes it");

    PowerControl::set(&stb, PowerState::On).expect("on");
    assert_eq!(stb.current_screen(), Screen::Booting);
    assert!(!is_black(&stb.grab().expect("grab")), "boot screen");
    clock.advance_ms(1499);
    assert_eq!(stb.current_screen(), Screen::Booting);
    clock.advance_ms(1);
    assert_eq!(
        (stb.current_screen(), stb.focused_item()),
        (Screen::Home, Some("Live TV"))
    );

    // The power key is standby, both ways.
    press(&stb, &clock, Key::Power);
    assert_eq!(stb.current_screen(), Screen::Off);
    press(&stb, &clock, Key::Power);
    assert_eq!(stb.current_screen(), Screen::Booting);
}

#[test]
fn reboot_goes_black_then_boot_screen_then_home() {
    let (stb, clock) = sim(SimConfig::default());
    watch(&stb, &clock);
    stb.inject(Fault::Reboot);
    assert_eq!(stb.current_screen(), Screen::Booting);
    assert!(is_black(&stb.grab().expect("grab")));
    clock.advance_ms(REBOOT_BLACK_MS);
    let boot = stb.grab().expect("grab");
    assert!(!is_black(&boot));
    clock.advance_ms(stb.config().boot_ms);
    assert_eq!(stb.current_screen(), Screen::Home);
    assert_ne!(stb.grab().expect("grab").rgb, boot.rgb);

    let (stb, clock) = sim(SimConfig {
        faults: FaultConfig {
            reboot: true,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    });
    assert_eq!(stb.current_screen(), Screen::Booting);
    clock.advance_ms(REBOOT_BLACK_MS + stb.config().boot_ms);
    assert_eq!(stb.current_screen(), Screen::Home);
}

#[test]
fn each_channel_plays_its_own_tone_and_menus_are_silent() {
    let (stb, clock) = sim(SimConfig::default());
    assert!(
        stb.read(Duration::from_millis(200))
            .expect("audio")
            .samples
            .iter()
            .all(|s| *s == 0)
    );
    watch(&stb, &clock);
    let one = stb.read(Duration::from_secs(1)).expect("audio");
    assert_eq!(one.sample_rate, SAMPLE_RATE);
    assert_eq!(one.samples.len(), 48_000);
    assert!(
        (frequency(&one) - 440.0).abs() <= 1.0,
        "{}",
        frequency(&one)
    );
    press(&stb, &clock, Key::Digit(3));
    clock.advance_ms(stb.config().zap_ms);
    let three = stb.read(Duration::from_secs(1)).expect("audio");
    assert!(
        (frequency(&three) - 660.0).abs() <= 1.0,
        "{}",
        frequency(&three)
    );
    assert_eq!(three.started_at_us, clock.now_us() - 1_000_000);

    // A zap in the middle of a read: the tone stops exactly when the black starts.
    stb.press(Key::ChannelUp).expect("press");
    let chunk = stb.read(Duration::from_millis(500)).expect("audio");
    let delay = (stb.config().key_delay_ms * 48) as usize;
    assert!(chunk.samples[..delay].iter().any(|s| *s != 0));
    assert!(chunk.samples[delay + 1..].iter().all(|s| *s == 0));

    press(&stb, &clock, Key::Mute);
    clock.advance_ms(1000);
    assert!(
        stb.read(Duration::from_millis(200))
            .expect("audio")
            .samples
            .iter()
            .all(|s| *s == 0)
    );
    assert!(stb.read(MAX_AUDIO_READ + Duration::from_secs(1)).is_err());
}

#[test]
fn audio_until_now_joins_windows_seamlessly_and_matches_read() {
    let (stb, clock) = sim(SimConfig::default());
    watch(&stb, &clock);
    let (none, start) = stb.audio_until_now(None);
    assert!(none.is_empty());
    // Windows of any length, one after another, are the samples one read gives.
    let mut joined = Vec::new();
    let mut next = start;
    for ms in [7, 20, 1, 33, 139] {
        clock.advance_ms(ms);
        let (samples, after) = stb.audio_until_now(Some(next));
        assert_eq!(after - next, samples.len() as u64);
        joined.extend(samples);
        next = after;
    }
    assert_eq!(joined.len(), 48 * 200);
    let (replayed, _) = stb.audio_until_now(Some(start));
    assert_eq!(replayed, joined);
    let read = stb.read(Duration::from_millis(200)).expect("audio");
    let (same, _) = stb.audio_until_now(Some(next));
    assert_eq!(same, read.samples);
    // Nothing older than the longest read is kept.
    let (oldest, _) = stb.audio_until_now(Some(0));
    assert_eq!(oldest.len() as u64, MAX_AUDIO_READ.as_secs() * 48_000);
}

#[test]
fn same_inputs_at_the_same_times_give_identical_frames() {
    let run = || {
        let (stb, clock) = sim(SimConfig::default());
        let mut frames = Vec::new();
        for (k, wait) in [
            (Key::Right, 300),
            (Key::Left, 250),
            (Key::Ok, 1000),
            (Key::ChannelUp, 1500),
            (Key::Info, 70),
        ] {
            stb.press(k).expect("press");
            clock.advance_ms(wait);
            frames.push(stb.grab().expect("grab"));
        }
        frames
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    assert!(a.windows(2).all(|w| w[0].rgb != w[1].rgb));
}

#[test]
fn device_capabilities_and_fault_json() {
    use crate::fleet::Capability;
    let (stb, _clock) = sim(SimConfig::default());
    let caps = stb.capabilities();
    for c in [
        Capability::RemoteControl,
        Capability::VideoCapture,
        Capability::Power,
        Capability::AudioCapture,
        Capability::Console,
    ] {
        assert!(caps.contains(&c), "{c:?}");
    }
    assert!(stb.shell().is_none());
    assert_eq!(stb.resolution(), (1280, 720));
    let f: Fault = serde_json::from_str(r#"{"fault":"drop_keys","count":3}"#).expect("json");
    assert_eq!(f, Fault::DropKeys { count: 3 });
    assert!(serde_json::from_str::<Fault>(r#"{"fault":"melt"}"#).is_err());
    let status = serde_json::to_value(stb.status()).expect("json");
    assert_eq!(status["screen"], "home");
    assert!(
        SimulatedStb::new(SimConfig {
            channels: 0,
            ..SimConfig::default()
        })
        .is_err()
    );
}

/// Prints how long rendering takes (no threshold: the machine is shared). Set
/// `LABWRIGHT_SIM_DUMP_DIR` to also write each screen as a PPM image there.
#[test]
fn render_time() {
    let (stb, clock) = sim(SimConfig::default());
    let mut screens = vec![("home", stb.grab().expect("grab"))];
    press(&stb, &clock, Key::Down);
    press(&stb, &clock, Key::Ok);
    press(&stb, &clock, Key::Down);
    screens.push(("settings", stb.grab().expect("grab")));
    press(&stb, &clock, Key::Back);
    press(&stb, &clock, Key::Up);
    press(&stb, &clock, Key::Right);
    press(&stb, &clock, Key::Ok);
    screens.push(("guide", stb.grab().expect("grab")));
    press(&stb, &clock, Key::Back);
    press(&stb, &clock, Key::Left);
    watch(&stb, &clock);
    press(&stb, &clock, Key::VolumeUp);
    screens.push(("player", stb.grab().expect("grab")));
    let runs = 60;
    let started = std::time::Instant::now();
    for _ in 0..runs {
        clock.advance(Duration::from_micros(33_334));
        screens.push(("player-frame", stb.grab().expect("grab")));
        screens.pop();
    }
    let per_frame = started.elapsed() / runs;
    println!(
        "sim: grab of a new 1280x720 player frame (banner and volume bar up) took {per_frame:?} on average over {runs} runs"
    );
    press(&stb, &clock, Key::Home);
    let mut menu = Duration::ZERO;
    for i in 0..runs {
        press(
            &stb,
            &clock,
            if i % 2 == 0 { Key::Right } else { Key::Left },
        );
        let before = stb.status().focus_index;
        let started = std::time::Instant::now();
        let f = stb.grab().expect("grab");
        menu += started.elapsed();
        assert_eq!(before, Some(if i % 2 == 0 { 1 } else { 0 }));
        assert_eq!(
            ring_pixel(&f, before.unwrap_or(0)),
            layout::FOCUS,
            "re-rendered"
        );
    }
    println!(
        "sim: grab of a new 1280x720 Home frame (focus moved) took {:?} on average over {runs} runs",
        menu / runs
    );
    stb.inject(Fault::Reboot);
    clock.advance_ms(REBOOT_BLACK_MS + 700);
    screens.push(("boot", stb.grab().expect("grab")));
    if let Some(dir) = std::env::var_os("LABWRIGHT_SIM_DUMP_DIR") {
        for (name, f) in &screens {
            let mut ppm = format!("P6\n{} {}\n255\n", f.width, f.height).into_bytes();
            ppm.extend_from_slice(&f.rgb);
            std::fs::write(std::path::Path::new(&dir).join(format!("{name}.ppm")), ppm)
                .expect("write ppm");
        }
    }
}

/// The simulator against the real verification functions: a reference cut from one capture is
/// found again in a later one, and the tone is measured by spectrum.
#[test]
fn verification_functions_recognise_the_simulated_box() {
    use crate::verify;
    let (stb, clock) = sim(SimConfig::default());
    watch(&stb, &clock);
    press(&stb, &clock, Key::ChannelUp);
    clock.advance_ms(stb.config().zap_ms);
    let reference = stb
        .grab()
        .expect("grab")
        .to_gray()
        .crop(layout::BANNER_NAME);
    clock.advance_ms(1000);
    let later = stb.grab().expect("grab").to_gray();
    let m = verify::match_template(&later, &reference, None, 0.99)
        .expect("search")
        .expect("banner found");
    assert_eq!((m.x, m.y), (layout::BANNER_NAME.x, layout::BANNER_NAME.y));

    let chunk = stb.read(Duration::from_millis(500)).expect("audio");
    let hz = verify::dominant_frequency(&chunk.samples, chunk.sample_rate).expect("a tone");
    assert!((hz - tone_hz(2) as f32).abs() < 5.0, "{hz}");
    press(&stb, &clock, Key::Home);
    let chunk = stb.read(Duration::from_millis(500)).expect("audio");
    assert!(verify::dominant_frequency(&chunk.samples, chunk.sample_rate).is_none());
}
