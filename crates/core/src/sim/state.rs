//! The box's behaviour as a timed state machine. Nothing here reads a clock: every operation takes
//! the time it happens at, [`Machine::advance`] replays queued key presses and timers (boot, zap,
//! digit entry) in time order up to a given instant, and the machine keeps a short log of what it
//! was playing so audio can be synthesised for a past window. Same inputs at the same times, same
//! states.

use std::collections::VecDeque;

use serde::Serialize;

use super::{config::SimConfig, console::SimConsole, lineup};
use crate::controller::Key;

/// The tiles of the Home grid, row by row.
pub const HOME_TILES: [&str; 8] = [
    "Live TV",
    "Guide",
    "Recordings",
    "Apps",
    "Settings",
    "Search",
    "Music",
    "Help",
];
/// Columns of the Home grid.
pub const HOME_COLUMNS: usize = 4;
/// The items of the Settings list, top to bottom.
pub const SETTINGS_ITEMS: [&str; 5] = ["Network", "Display", "Audio", "Parental control", "About"];
/// Black time at the start of a reboot, before the boot screen appears.
pub const REBOOT_BLACK_MS: u64 = 500;
/// A partial channel number typed with digit keys is tuned after this long without another digit.
pub const DIGIT_TIMEOUT_MS: u64 = 1500;
/// How long the volume bar stays up after a volume or mute key.
pub const VOLUME_OSD_MS: u64 = 2000;
pub const MAX_VOLUME: u8 = 20;
pub const DEFAULT_VOLUME: u8 = 10;

const TILE_LIVE_TV: usize = 0;
const TILE_SETTINGS: usize = 4;
/// Key presses the box buffers before it refuses more (the queue is bounded).
pub const MAX_PENDING_KEYS: usize = 64;
/// Audio state older than this is forgotten.
const AUDIO_HISTORY_US: u64 = 120_000_000;

/// What the box is showing, for tests and the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Screen {
    Off,
    Booting,
    Home,
    Settings,
    /// A titled page opened from a Home tile other than Live TV and Settings.
    Page,
    Player,
    /// Black while tuning a channel.
    Zapping,
}

impl Screen {
    pub fn as_str(self) -> &'static str {
        match self {
            Screen::Off => "off",
            Screen::Booting => "booting",
            Screen::Home => "home",
            Screen::Settings => "settings",
            Screen::Page => "page",
            Screen::Player => "player",
            Screen::Zapping => "zapping",
        }
    }
}

impl std::fmt::Display for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum View {
    Off,
    /// Black until `logo_from_us`, boot screen until `until_us`, then Home.
    Booting {
        logo_from_us: u64,
        until_us: u64,
    },
    Home,
    Settings,
    Page {
        tile: usize,
    },
    Player,
    Zapping {
        until_us: u64,
    },
}

/// Channel digits typed so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DigitEntry {
    pub value: u32,
    pub count: u32,
    pub deadline_us: u64,
}

/// Faults currently in effect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ActiveFaults {
    pub frozen: bool,
    /// Key presses still to be lost.
    pub drop_keys: u32,
    pub slow_ms: u64,
}

/// A sine tone being played.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tone {
    pub freq_hz: u32,
    pub amplitude: i16,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct AudioSegment {
    pub start_us: u64,
    pub tone: Option<Tone>,
}

/// What became of a key press.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Press {
    Queued,
    /// Lost to the `drop_keys` fault.
    Dropped,
    /// [`MAX_PENDING_KEYS`] presses are already waiting.
    BufferFull,
}

#[derive(Debug)]
pub(super) struct Machine {
    key_delay_us: u64,
    zap_us: u64,
    boot_us: u64,
    banner_us: u64,
    channels: u32,
    now_us: u64,
    pub view: View,
    pub home_focus: usize,
    pub settings_focus: usize,
    /// The channel playing, or being tuned while zapping.
    pub channel: u32,
    pub banner_until_us: u64,
    pub digits: Option<DigitEntry>,
    pub volume: u8,
    pub muted: bool,
    pub volume_osd_until_us: u64,
    /// Live time at which the picture was paused.
    pub paused_at_us: Option<u64>,
    pub faults: ActiveFaults,
    /// Key presses waiting for the box to react, by due time.
    pending: VecDeque<(u64, Key)>,
    audio: VecDeque<AudioSegment>,
    /// The serial console, told of every event at its time.
    pub console: SimConsole,
}

const fn ms(v: u64) -> u64 {
    v.saturating_mul(1000)
}

impl Machine {
    /// A box powered on at `now_us`, on Home (or rebooting, if the config asks for it).
    pub fn new(config: &SimConfig, now_us: u64) -> Self {
        let mut m = Self {
            key_delay_us: ms(config.key_delay_ms),
            zap_us: ms(config.zap_ms),
            boot_us: ms(config.boot_ms),
            banner_us: ms(config.banner_ms),
            channels: config.channels.max(1),
            now_us,
            view: View::Home,
            home_focus: 0,
            settings_focus: 0,
            channel: config.start_channel.clamp(1, config.channels.max(1)),
            banner_until_us: 0,
            digits: None,
            volume: DEFAULT_VOLUME,
            muted: false,
            volume_osd_until_us: 0,
            paused_at_us: None,
            faults: ActiveFaults {
                frozen: config.faults.frozen,
                drop_keys: config.faults.drop_keys,
                slow_ms: config.faults.slow_ms,
            },
            pending: VecDeque::new(),
            audio: VecDeque::from([AudioSegment {
                start_us: now_us,
                tone: None,
            }]),
            console: SimConsole::booted(&config.box_name, now_us, ms(config.boot_ms)),
        };
        if config.faults.reboot {
            m.reboot(now_us);
        }
        m
    }

    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    pub fn screen(&self) -> Screen {
        match self.view {
            View::Off => Screen::Off,
            View::Booting { .. } => Screen::Booting,
            View::Home => Screen::Home,
            View::Settings => Screen::Settings,
            View::Page { .. } => Screen::Page,
            View::Player => Screen::Player,
            View::Zapping { .. } => Screen::Zapping,
        }
    }

    pub fn is_on(&self) -> bool {
        self.view != View::Off
    }

    /// Replays everything due up to `t`. Time never goes backwards: an earlier `t` is a no-op.
    pub fn advance(&mut self, t: u64) {
        loop {
            let timer = self.next_timer().filter(|at| *at <= t);
            let key = self
                .pending
                .front()
                .map(|(at, _)| *at)
                .filter(|at| *at <= t);
            match (timer, key) {
                (Some(tt), k) if k.is_none_or(|kt| tt <= kt) => {
                    self.now_us = self.now_us.max(tt);
                    self.console.advance(self.now_us);
                    self.fire_timer(self.now_us);
                }
                (_, Some(_)) => {
                    let Some((at, key)) = self.pending.pop_front() else {
                        break;
                    };
                    self.now_us = self.now_us.max(at);
                    self.console.advance(self.now_us);
                    self.apply_key(self.now_us, key);
                }
                _ => break,
            }
            self.note_audio(self.now_us);
        }
        self.now_us = self.now_us.max(t);
        self.console.advance(self.now_us);
    }

    /// A key press at `t`.
    pub fn press(&mut self, t: u64, key: Key) -> Press {
        self.advance(t);
        if self.pending.len() >= MAX_PENDING_KEYS {
            return Press::BufferFull;
        }
        if self.faults.drop_keys > 0 {
            self.faults.drop_keys -= 1;
            return Press::Dropped;
        }
        let due = self.now_us + self.key_delay_us + ms(self.faults.slow_ms);
        let pos = self
            .pending
            .iter()
            .position(|(at, _)| *at > due)
            .unwrap_or(self.pending.len());
        self.pending.insert(pos, (due, key));
        Press::Queued
    }

    /// Mains power at `t`: off at once, or on with the boot sequence.
    pub fn set_power(&mut self, t: u64, on: bool) {
        self.advance(t);
        if on && !self.is_on() {
            self.boot(self.now_us, 0);
        } else if !on && self.is_on() {
            self.power_off(self.now_us);
        }
        self.note_audio(self.now_us);
    }

    /// Reboots at `t`: black, boot screen, Home. A box that is off just boots.
    pub fn reboot(&mut self, t: u64) {
        self.advance(t);
        let black = if self.is_on() { ms(REBOOT_BLACK_MS) } else { 0 };
        self.console.restart(self.now_us);
        self.boot(self.now_us, black);
        self.note_audio(self.now_us);
    }

    fn power_off(&mut self, t: u64) {
        self.console.power_off(t);
        self.view = View::Off;
        self.pending.clear();
        self.reset_player_overlays();
    }

    fn boot(&mut self, t: u64, black_us: u64) {
        self.pending.clear();
        self.reset_player_overlays();
        self.view = View::Booting {
            logo_from_us: t + black_us,
            until_us: t + black_us + self.boot_us,
        };
        self.console.boot(t, t + black_us + self.boot_us);
    }

    fn reset_player_overlays(&mut self) {
        self.digits = None;
        self.paused_at_us = None;
        self.banner_until_us = 0;
        self.volume_osd_until_us = 0;
    }

    fn next_timer(&self) -> Option<u64> {
        let view = match self.view {
            View::Booting { until_us, .. } | View::Zapping { until_us } => Some(until_us),
            _ => None,
        };
        let digits = self.digits.map(|d| d.deadline_us);
        match (view, digits) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn fire_timer(&mut self, t: u64) {
        if let Some(d) = self.digits
            && d.deadline_us <= t
        {
            self.commit_digits(t);
            return;
        }
        match self.view {
            View::Booting { until_us, .. } if until_us <= t => {
                self.view = View::Home;
                self.home_focus = 0;
            }
            View::Zapping { until_us } if until_us <= t => {
                self.console.playing(t, self.channel);
                self.view = View::Player;
                self.banner_until_us = t + self.banner_us;
            }
            _ => {}
        }
    }

    fn apply_key(&mut self, t: u64, key: Key) {
        self.console.key(t, key);
        match (self.view, key) {
            (View::Off, Key::Power) => return self.boot(t, 0),
            (View::Off, _) => return,
            (_, Key::Power) => return self.power_off(t),
            (View::Booting { .. }, _) => return,
            (_, Key::Mute) => {
                self.muted = !self.muted;
                self.volume_osd_until_us = t + ms(VOLUME_OSD_MS);
                return;
            }
            (_, Key::VolumeUp | Key::VolumeDown) => {
                self.volume = if key == Key::VolumeUp {
                    (self.volume + 1).min(MAX_VOLUME)
                } else {
                    self.volume.saturating_sub(1)
                };
                self.muted = false;
                self.volume_osd_until_us = t + ms(VOLUME_OSD_MS);
                return;
            }
            _ => {}
        }
        match self.view {
            View::Home => self.home_key(t, key),
            View::Settings => match key {
                Key::Up => self.settings_focus = self.settings_focus.saturating_sub(1),
                Key::Down => {
                    self.settings_focus = (self.settings_focus + 1).min(SETTINGS_ITEMS.len() - 1)
                }
                Key::Back | Key::Home | Key::Menu => self.view = View::Home,
                _ => {}
            },
            View::Page { .. } => {
                if matches!(key, Key::Back | Key::Home | Key::Menu) {
                    self.view = View::Home;
                }
            }
            View::Player | View::Zapping { .. } => self.player_key(t, key),
            View::Off | View::Booting { .. } => {}
        }
    }

    fn home_key(&mut self, t: u64, key: Key) {
        let (row, col) = (
            self.home_focus / HOME_COLUMNS,
            self.home_focus % HOME_COLUMNS,
        );
        let rows = HOME_TILES.len().div_ceil(HOME_COLUMNS);
        let (row, col) = match key {
            Key::Up => (row.saturating_sub(1), col),
            Key::Down => ((row + 1).min(rows - 1), col),
            Key::Left => (row, col.saturating_sub(1)),
            Key::Right => (row, (col + 1).min(HOME_COLUMNS - 1)),
            Key::Ok => {
                match self.home_focus {
                    TILE_LIVE_TV => self.zap(t, self.channel),
                    TILE_SETTINGS => {
                        self.settings_focus = 0;
                        self.view = View::Settings;
                    }
                    tile => self.view = View::Page { tile },
                }
                return;
            }
            Key::Digit(_) | Key::ChannelUp | Key::ChannelDown => {
                // Like most boxes: channel keys on Home go straight to live TV.
                self.zap(t, self.channel);
                if let Key::Digit(_) = key {
                    self.player_key(t, key);
                }
                return;
            }
            _ => return,
        };
        self.home_focus = (row * HOME_COLUMNS + col).min(HOME_TILES.len() - 1);
    }

    fn player_key(&mut self, t: u64, key: Key) {
        match key {
            Key::ChannelUp => self.zap(
                t,
                if self.channel >= self.channels {
                    1
                } else {
                    self.channel + 1
                },
            ),
            Key::ChannelDown => self.zap(
                t,
                if self.channel <= 1 {
                    self.channels
                } else {
                    self.channel - 1
                },
            ),
            Key::Digit(d) => {
                let mut e = self.digits.unwrap_or(DigitEntry {
                    value: 0,
                    count: 0,
                    deadline_us: 0,
                });
                e.value = e.value * 10 + u32::from(d);
                e.count += 1;
                e.deadline_us = t + ms(DIGIT_TIMEOUT_MS);
                self.digits = Some(e);
                if e.count >= digit_count(self.channels) {
                    self.commit_digits(t);
                }
            }
            Key::Info | Key::Ok if self.view == View::Player => {
                self.banner_until_us = t + self.banner_us
            }
            Key::PlayPause if self.view == View::Player => {
                self.paused_at_us = match self.paused_at_us {
                    Some(_) => None,
                    None => Some(t),
                };
            }
            Key::Back | Key::Home | Key::Menu => {
                self.reset_player_overlays();
                self.view = View::Home;
            }
            _ => {}
        }
    }

    fn commit_digits(&mut self, t: u64) {
        let Some(e) = self.digits.take() else { return };
        if (1..=self.channels).contains(&e.value) {
            if e.value != self.channel || self.view != View::Player {
                self.zap(t, e.value);
            } else {
                self.banner_until_us = t + self.banner_us;
            }
        }
    }

    fn zap(&mut self, t: u64, channel: u32) {
        self.console.tune(t, channel);
        self.channel = channel;
        self.digits = None;
        self.paused_at_us = None;
        self.banner_until_us = 0;
        self.view = View::Zapping {
            until_us: t + self.zap_us,
        };
    }

    /// What the box plays right now.
    fn tone(&self) -> Option<Tone> {
        let playing = self.view == View::Player
            && self.paused_at_us.is_none()
            && !self.muted
            && self.volume > 0;
        playing.then(|| Tone {
            freq_hz: lineup::tone_hz(self.channel),
            amplitude: i16::from(self.volume) * 1000,
        })
    }

    fn note_audio(&mut self, t: u64) {
        let tone = self.tone();
        if self.audio.back().is_none_or(|s| s.tone != tone) {
            self.audio.push_back(AudioSegment { start_us: t, tone });
        }
        let horizon = t.saturating_sub(AUDIO_HISTORY_US);
        while self.audio.len() > 1 && self.audio.get(1).is_some_and(|s| s.start_us <= horizon) {
            self.audio.pop_front();
        }
    }

    /// The audio log, oldest first; each segment lasts until the next one starts.
    pub fn audio_log(&self) -> &VecDeque<AudioSegment> {
        &self.audio
    }

    /// The focused entry of the current screen: a Home tile or a Settings item.
    pub fn focus(&self) -> Option<(usize, &'static str)> {
        match self.view {
            View::Home => Some((self.home_focus, HOME_TILES[self.home_focus])),
            View::Settings => Some((self.settings_focus, SETTINGS_ITEMS[self.settings_focus])),
            _ => None,
        }
    }
}

/// Digits needed to type any channel number.
fn digit_count(channels: u32) -> u32 {
    if channels >= 10 { 2 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000_000;

    fn machine(config: SimConfig) -> Machine {
        Machine::new(&config, T0)
    }

    #[test]
    fn keys_apply_after_the_delay_in_order() {
        let mut m = machine(SimConfig::default());
        m.press(T0, Key::Right);
        m.press(T0 + 10_000, Key::Down);
        m.advance(T0 + 119_999);
        assert_eq!(m.focus(), Some((0, "Live TV")));
        m.advance(T0 + 120_000);
        assert_eq!(m.focus(), Some((1, "Guide")));
        m.advance(T0 + 130_000);
        assert_eq!(m.focus(), Some((5, "Search")));
        // Clamped at the edges.
        for k in [Key::Down, Key::Right, Key::Right, Key::Right, Key::Right] {
            m.press(T0 + 200_000, k);
        }
        m.advance(T0 + 400_000);
        assert_eq!(m.focus(), Some((7, "Help")));
        // The queue is bounded.
        let presses: Vec<Press> = (0..=MAX_PENDING_KEYS)
            .map(|_| m.press(T0 + 500_000, Key::Left))
            .collect();
        assert!(
            presses[..MAX_PENDING_KEYS]
                .iter()
                .all(|p| *p == Press::Queued)
        );
        assert_eq!(presses[MAX_PENDING_KEYS], Press::BufferFull);
    }

    #[test]
    fn digits_tune_two_digit_channels_after_a_timeout() {
        let mut m = machine(SimConfig {
            channels: 20,
            key_delay_ms: 0,
            zap_ms: 100,
            ..SimConfig::default()
        });
        m.press(T0, Key::Ok);
        m.advance(T0 + 200_000);
        assert_eq!((m.screen(), m.channel), (Screen::Player, 1));
        m.press(T0 + 300_000, Key::Digit(1));
        m.press(T0 + 400_000, Key::Digit(2));
        m.advance(T0 + 400_000);
        assert_eq!((m.screen(), m.channel), (Screen::Zapping, 12));
        m.advance(T0 + 600_000);
        m.press(T0 + 600_000, Key::Digit(7));
        m.advance(T0 + 600_000 + ms(DIGIT_TIMEOUT_MS) - 1);
        assert_eq!((m.screen(), m.channel), (Screen::Player, 12));
        m.advance(T0 + 600_000 + ms(DIGIT_TIMEOUT_MS));
        assert_eq!((m.screen(), m.channel), (Screen::Zapping, 7));
        m.press(T0 + 4_000_000, Key::ChannelDown);
        m.press(T0 + 4_000_000, Key::ChannelDown);
        m.advance(T0 + 4_000_000);
        assert_eq!(m.channel, 5, "zapping again while black retunes");
    }

    #[test]
    fn audio_log_follows_the_player() {
        let mut m = machine(SimConfig {
            key_delay_ms: 0,
            zap_ms: 100,
            ..SimConfig::default()
        });
        m.press(T0 + 1_000, Key::Ok);
        m.advance(T0 + 1_000_000);
        m.press(T0 + 1_000_000, Key::Mute);
        m.advance(T0 + 2_000_000);
        let log: Vec<_> = m
            .audio_log()
            .iter()
            .map(|s| (s.start_us - T0, s.tone.map(|t| t.freq_hz)))
            .collect();
        assert_eq!(
            log,
            vec![(0, None), (101_000, Some(440)), (1_000_000, None)]
        );
    }
}
