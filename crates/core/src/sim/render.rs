//! Turns the box's state into pixels. A [`Scene`] is everything a frame depends on (screen, focus,
//! clock minute, live-picture tick, overlays); equal scenes render to identical frames, which is
//! what the video source uses to decide whether a grab is a new frame. The [`Renderer`] keeps the
//! static menu background (gradient, header, box name) pre-rendered and copies it per frame.

use super::{
    canvas::{Canvas, Rgb},
    layout::{self, HEIGHT, WIDTH},
    lineup,
    state::{HOME_TILES, Machine, SETTINGS_ITEMS, View},
};

/// Steps of the boot progress bar.
const BOOT_STEPS: u64 = 24;

const TEXT: Rgb = [235, 238, 245];
const TEXT_DIM: Rgb = [150, 160, 185];
const TEXT_DARK: Rgb = [20, 22, 30];
const PANEL: Rgb = [28, 36, 62];
const HEADER_BG: Rgb = [10, 14, 28];

const TILE_COLOURS: [Rgb; 8] = [
    [176, 48, 56],
    [44, 110, 170],
    [120, 64, 160],
    [36, 140, 110],
    [90, 96, 110],
    [190, 110, 30],
    [160, 50, 120],
    [50, 120, 60],
];

/// Everything a frame depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Scene {
    pub base: Base,
    /// Volume bar: level and mute state.
    pub volume_osd: Option<(u8, bool)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Base {
    Black,
    Boot {
        step: u64,
    },
    Home {
        focus: usize,
        minute: u64,
    },
    Settings {
        focus: usize,
        minute: u64,
    },
    Page {
        tile: usize,
        minute: u64,
    },
    Player {
        channel: u32,
        tick: u64,
        banner_minute: Option<u64>,
        digits: Option<(u32, u32)>,
        paused: bool,
        muted: bool,
    },
}

impl Scene {
    /// The scene of machine `m` at time `now_us` (the machine must have been advanced to it).
    pub fn of(m: &Machine, now_us: u64, fps: u32) -> Self {
        let minute = now_us / 60_000_000;
        let base = match m.view {
            View::Off | View::Zapping { .. } => Base::Black,
            View::Booting {
                logo_from_us,
                until_us,
            } if now_us >= logo_from_us => {
                let span = until_us.saturating_sub(logo_from_us).max(1);
                Base::Boot {
                    step: ((now_us - logo_from_us) * BOOT_STEPS / span).min(BOOT_STEPS),
                }
            }
            View::Booting { .. } => Base::Black,
            View::Home => Base::Home {
                focus: m.home_focus,
                minute,
            },
            View::Settings => Base::Settings {
                focus: m.settings_focus,
                minute,
            },
            View::Page { tile } => Base::Page { tile, minute },
            View::Player => {
                let live = m.paused_at_us.unwrap_or(now_us);
                Base::Player {
                    channel: m.channel,
                    tick: live / 1_000_000 * u64::from(fps)
                        + live % 1_000_000 * u64::from(fps) / 1_000_000,
                    banner_minute: (now_us < m.banner_until_us).then_some(minute),
                    digits: m.digits.map(|d| (d.value, d.count)),
                    paused: m.paused_at_us.is_some(),
                    muted: m.muted,
                }
            }
        };
        let osd =
            !matches!(base, Base::Black | Base::Boot { .. }) && now_us < m.volume_osd_until_us;
        Self {
            base,
            volume_osd: osd.then_some((m.volume, m.muted)),
        }
    }
}

pub(super) struct Renderer {
    box_name: String,
    channels: u32,
    /// Gradient background with the header and box name, no clock.
    menu_background: Vec<u8>,
}

fn frame_bytes() -> usize {
    WIDTH as usize * HEIGHT as usize * 3
}

impl Renderer {
    pub fn new(box_name: &str, channels: u32) -> Self {
        let mut bg = vec![0u8; frame_bytes()];
        let mut c = Canvas::new(&mut bg, WIDTH, HEIGHT);
        for y in 0..HEIGHT {
            // Vertical gradient from deep blue to near black.
            let k = y * 256 / HEIGHT;
            let colour = [
                (24 - k * 14 / 256) as u8,
                (30 - k * 16 / 256) as u8,
                (72 - k * 48 / 256) as u8,
            ];
            c.fill(0, y as i32, WIDTH, 1, colour);
        }
        let h = layout::HEADER;
        c.fill(h.x as i32, h.y as i32, h.width, h.height, HEADER_BG);
        c.fill(0, h.height as i32, WIDTH, 3, layout::FOCUS);
        c.fill(40, 26, 8, 28, layout::FOCUS);
        c.text(60, 28, 3, TEXT, box_name);
        Self {
            box_name: box_name.to_string(),
            channels,
            menu_background: bg,
        }
    }

    /// Renders `scene` into a fresh RGB24 buffer.
    pub fn render(&self, scene: &Scene) -> Vec<u8> {
        let mut buf = match scene.base {
            Base::Black => return vec![0; frame_bytes()],
            Base::Home { .. } | Base::Settings { .. } | Base::Page { .. } => {
                self.menu_background.clone()
            }
            Base::Boot { .. } | Base::Player { .. } => vec![0; frame_bytes()],
        };
        let mut c = Canvas::new(&mut buf, WIDTH, HEIGHT);
        match &scene.base {
            Base::Black => {}
            Base::Boot { step } => self.boot(&mut c, *step),
            Base::Home { focus, minute } => {
                menu_chrome(
                    &mut c,
                    "Home",
                    *minute,
                    "Arrows: move    OK: open    POWER: standby",
                );
                home(&mut c, *focus);
            }
            Base::Settings { focus, minute } => {
                menu_chrome(&mut c, "Settings", *minute, "Up/Down: move    BACK: return");
                self.settings(&mut c, *focus);
            }
            Base::Page { tile, minute } => {
                let title = HOME_TILES.get(*tile).copied().unwrap_or("Page");
                menu_chrome(&mut c, title, *minute, "BACK: return");
                self.page(&mut c, *tile, *minute);
            }
            Base::Player {
                channel,
                tick,
                banner_minute,
                digits,
                paused,
                muted,
            } => {
                picture(&mut c, *channel, *tick);
                if let Some(minute) = banner_minute {
                    banner(&mut c, *channel, *minute);
                }
                if let Some((value, count)) = digits {
                    let r = layout::DIGITS;
                    c.fill(r.x as i32, r.y as i32, r.width, r.height, [8, 12, 30]);
                    let typed = format!("{value:0width$}-", width = *count as usize);
                    c.text_centered((r.x + r.width / 2) as i32, r.y as i32 + 16, 6, TEXT, &typed);
                }
                let badge = match (paused, muted) {
                    (true, _) => Some("PAUSED"),
                    (false, true) => Some("MUTE"),
                    _ => None,
                };
                if let Some(text) = badge {
                    let r = layout::BADGE;
                    c.fill(r.x as i32, r.y as i32, r.width, r.height, [200, 30, 40]);
                    c.text_centered((r.x + r.width / 2) as i32, r.y as i32 + 10, 3, TEXT, text);
                }
            }
        }
        if let Some((volume, muted)) = scene.volume_osd {
            volume_bar(&mut c, volume, muted);
        }
        buf
    }

    fn boot(&self, c: &mut Canvas<'_>, step: u64) {
        let cx = (WIDTH / 2) as i32;
        c.text_centered(cx, 250, 10, layout::FOCUS, "LABWRIGHT");
        c.text_centered(cx, 360, 3, TEXT, &self.box_name);
        c.text_centered(cx, 410, 2, TEXT_DIM, "Starting up...");
        let (x, y, w) = (cx - 220, 470, 440u32);
        c.frame(x, y, w, 16, 2, TEXT_DIM);
        c.fill(
            x + 4,
            y + 4,
            ((w - 8) as u64 * step / BOOT_STEPS) as u32,
            8,
            TEXT,
        );
    }

    fn settings(&self, c: &mut Canvas<'_>, focus: usize) {
        for (i, item) in SETTINGS_ITEMS.iter().enumerate() {
            let Some(r) = layout::settings_item(i) else {
                continue;
            };
            let (fill, ink) = if i == focus {
                (layout::FOCUS, TEXT_DARK)
            } else {
                (PANEL, TEXT)
            };
            c.fill(r.x as i32, r.y as i32, r.width, r.height, fill);
            c.text(r.x as i32 + 24, r.y as i32 + 18, 3, ink, item);
            c.text_right((r.x + r.width) as i32 - 24, r.y as i32 + 18, 3, ink, ">");
        }
        let d = layout::SETTINGS_DETAIL;
        c.fill(d.x as i32, d.y as i32, d.width, d.height, PANEL);
        let name = SETTINGS_ITEMS.get(focus).copied().unwrap_or("");
        c.text(d.x as i32 + 30, d.y as i32 + 30, 4, TEXT, name);
        c.fill(d.x as i32 + 30, d.y as i32 + 74, d.width - 60, 2, TEXT_DIM);
        let lines: Vec<String> = match focus {
            0 => vec![
                "Connection: Ethernet".into(),
                "Address: 192.168.1.50".into(),
                "Gateway: 192.168.1.1".into(),
                "Status: Connected".into(),
            ],
            1 => vec![
                "Resolution: 1280x720".into(),
                "Frame rate: 50 Hz".into(),
                "HDR: Off".into(),
                "Aspect: 16:9".into(),
            ],
            2 => vec![
                "Output: HDMI".into(),
                "Format: Stereo PCM".into(),
                "Dialogue boost: Off".into(),
            ],
            3 => vec![
                "PIN: ****".into(),
                "Age limit: 12".into(),
                "Locked channels: 0".into(),
            ],
            _ => vec![
                format!("Model: {}", self.box_name),
                "Software: 1.4.2".into(),
                format!("Channels: {}", self.channels),
            ],
        };
        for (i, l) in lines.iter().enumerate() {
            c.text(
                d.x as i32 + 30,
                d.y as i32 + 100 + i as i32 * 44,
                3,
                TEXT_DIM,
                l,
            );
        }
    }

    fn page(&self, c: &mut Canvas<'_>, tile: usize, minute: u64) {
        let b = layout::PAGE_BODY;
        c.fill(b.x as i32, b.y as i32, b.width, b.height, PANEL);
        let (x, y) = (b.x as i32 + 30, b.y as i32 + 30);
        if tile == 1 {
            // Guide: what is on now, one row per channel.
            let slot = minute * 60_000_000 / lineup::SLOT_US;
            let rows = self.channels.min(9);
            for ch in 1..=rows {
                let ry = y + (ch as i32 - 1) * 44;
                c.text(x, ry, 3, layout::FOCUS, &format!("{ch:>2}"));
                c.text(x + 90, ry, 3, TEXT, &lineup::channel_name(ch));
                c.text(x + 520, ry, 3, TEXT_DIM, lineup::programme(ch, slot));
            }
            return;
        }
        let lines: &[&str] = match tile {
            2 => &["No recordings yet.", "Press REC while watching to record."],
            3 => &[
                "Installed apps: Weather, News, Radio",
                "More apps coming soon.",
            ],
            5 => &["Search is not available", "on the simulated box."],
            6 => &["Music channels: see channel 7", "(Music Box) in Live TV."],
            _ => &[
                "Labwright simulated set-top box.",
                "Use the arrow keys and OK to navigate,",
                "BACK to return, CH+/CH- to zap.",
            ],
        };
        for (i, l) in lines.iter().enumerate() {
            c.text(x, y + i as i32 * 44, 3, TEXT, l);
        }
    }
}

fn menu_chrome(c: &mut Canvas<'_>, title: &str, minute: u64, hint: &str) {
    let k = layout::CLOCK;
    c.text_right(
        (k.x + k.width) as i32,
        k.y as i32,
        3,
        TEXT,
        &lineup::clock_text(minute * 60_000_000),
    );
    let t = layout::TITLE;
    c.text(t.x as i32, t.y as i32, 5, TEXT, title);
    let f = layout::FOOTER;
    c.text(f.x as i32, f.y as i32, 2, TEXT_DIM, hint);
}

fn home(c: &mut Canvas<'_>, focus: usize) {
    for (i, name) in HOME_TILES.iter().enumerate() {
        let Some(r) = layout::home_tile(i) else {
            continue;
        };
        let base = TILE_COLOURS[i % TILE_COLOURS.len()];
        let colour = if i == focus {
            base.map(|v| v.saturating_add(40))
        } else {
            base
        };
        let (x, y) = (r.x as i32, r.y as i32);
        c.fill(x, y, r.width, r.height, colour);
        // A simple icon: the tile's initial in a darker square.
        c.fill(x + 20, y + 20, 64, 64, base.map(|v| v / 2));
        c.text_centered(x + 52, y + 32, 6, TEXT, &name[..1]);
        c.text(x + 20, y + r.height as i32 - 44, 3, TEXT, name);
        if i == focus
            && let Some(ring) = layout::home_focus_ring(i)
        {
            c.frame(
                ring.x as i32,
                ring.y as i32,
                ring.width,
                ring.height,
                layout::FOCUS_RING,
                layout::FOCUS,
            );
        }
    }
}

/// A triangle wave over `0..=max` as `t` grows.
fn bounce(t: u64, max: u32) -> i32 {
    let m = u64::from(max.max(1));
    let p = t % (2 * m);
    (if p < m { p } else { 2 * m - p }) as i32
}

/// The live picture of `channel` at frame `tick`: scrolling colour bars, a moving gradient and a
/// bouncing square, all depending on the channel, so every frame differs from the previous one.
fn picture(c: &mut Canvas<'_>, channel: u32, tick: u64) {
    const BARS: [Rgb; 8] = [
        [192, 192, 192],
        [192, 192, 0],
        [0, 192, 192],
        [0, 192, 0],
        [192, 0, 192],
        [192, 0, 0],
        [0, 0, 192],
        [24, 24, 24],
    ];
    const BARS_BOTTOM: u32 = 440;
    let w = WIDTH as u64;
    let bar_w = w / BARS.len() as u64;
    let speed = 4 + u64::from(channel % 4) * 2;
    let offset = tick * speed % w;
    let mut row = vec![0u8; WIDTH as usize * 3];
    for (x, px) in row.chunks_exact_mut(3).enumerate() {
        let bar = ((x as u64 + offset) % w / bar_w + u64::from(channel)) as usize % BARS.len();
        px.copy_from_slice(&BARS[bar]);
    }
    c.repeat_row(0, &row, 0, BARS_BOTTOM);

    let tint = TILE_COLOURS[channel as usize % TILE_COLOURS.len()].map(u32::from);
    let shift = tick * (3 + u64::from(channel % 3) * 2);
    for (x, px) in row.chunks_exact_mut(3).enumerate() {
        let v = bounce(x as u64 * 2 + shift, 255) as u32;
        for i in 0..3 {
            px[i] = ((v * (tint[i] + 64)) / 320) as u8;
        }
    }
    c.repeat_row(0, &row, BARS_BOTTOM, HEIGHT);

    const SQUARE: u32 = 140;
    let sx = bounce(tick * 7 + u64::from(channel) * 97, WIDTH - SQUARE);
    let sy = bounce(tick * 5 + u64::from(channel) * 53, HEIGHT - SQUARE);
    c.fill(sx, sy, SQUARE, SQUARE, [16, 16, 16]);
    c.fill(sx + 8, sy + 8, SQUARE - 16, SQUARE - 16, [240, 240, 240]);
    c.text_centered(
        sx + (SQUARE / 2) as i32,
        sy + 46,
        6,
        TEXT_DARK,
        &channel.to_string(),
    );

    // The channel's logo, top right, like a broadcaster's watermark.
    let name = lineup::channel_name(channel);
    let w = crate::sim::font::text_width(&name, 2) + 24;
    c.fill(WIDTH as i32 - 40 - w as i32, 40, w, 36, [8, 12, 30]);
    c.text_right(WIDTH as i32 - 52, 50, 2, TEXT, &name);
}

fn banner(c: &mut Canvas<'_>, channel: u32, minute: u64) {
    let b = layout::BANNER;
    c.fill(b.x as i32, b.y as i32, b.width, b.height, [8, 12, 30]);
    c.fill(b.x as i32, b.y as i32, b.width, 4, layout::FOCUS);
    let n = layout::BANNER_NUMBER;
    c.text_centered(
        (n.x + n.width / 2) as i32,
        n.y as i32,
        7,
        layout::FOCUS,
        &channel.to_string(),
    );
    let name = layout::BANNER_NAME;
    c.text(
        name.x as i32,
        name.y as i32,
        3,
        TEXT,
        &lineup::channel_name(channel),
    );
    let now_us = minute * 60_000_000;
    let slot = lineup::slot_of(now_us);
    let p = layout::BANNER_PROGRAMME;
    c.text(
        p.x as i32,
        p.y as i32,
        3,
        TEXT,
        lineup::programme(channel, slot),
    );
    let start = slot * lineup::SLOT_US;
    let times = format!(
        "{} - {}",
        lineup::clock_text(start),
        lineup::clock_text(start + lineup::SLOT_US)
    );
    c.text(p.x as i32, p.y as i32 + 40, 2, TEXT_DIM, &times);
    c.text_right(
        (b.x + b.width) as i32 - 30,
        name.y as i32,
        3,
        TEXT,
        &lineup::clock_text(now_us),
    );
    // Programme progress, per minute.
    let (bx, by, bw) = (p.x as i32 + 180, p.y as i32 + 42, 300u32);
    c.fill(bx, by, bw, 10, [70, 76, 100]);
    let elapsed = (now_us - start) * u64::from(bw) / lineup::SLOT_US;
    c.fill(bx, by, elapsed as u32, 10, layout::FOCUS);
    let next = format!("Next: {}", lineup::programme(channel, slot + 1));
    c.text_right(
        (b.x + b.width) as i32 - 30,
        p.y as i32 + 40,
        2,
        TEXT_DIM,
        &next,
    );
}

fn volume_bar(c: &mut Canvas<'_>, volume: u8, muted: bool) {
    let r = layout::VOLUME;
    c.fill(r.x as i32, r.y as i32, r.width, r.height, [8, 12, 30]);
    let label = if muted {
        "MUTE".to_string()
    } else {
        format!("VOL {volume:>2}")
    };
    c.text(r.x as i32 + 16, r.y as i32 + 18, 3, TEXT, &label);
    let max = u32::from(super::state::MAX_VOLUME);
    for i in 0..max {
        let on = !muted && i < u32::from(volume);
        c.fill(
            r.x as i32 + 180 + i as i32 * 15,
            r.y as i32 + 16,
            11,
            24,
            if on { layout::FOCUS } else { [70, 76, 100] },
        );
    }
}
