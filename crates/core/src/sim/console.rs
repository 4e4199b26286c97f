//! The simulated box's serial console: what a set-top box prints on its debug UART.
//!
//! At power-on it prints a kernel-like boot log (`Linux version …`, spread over the boot time)
//! and ends with a `login: ` prompt (a partial line, no terminator). While the box is on, every
//! key it handles, every channel it tunes and every power change prints a line stamped with the
//! time since boot, like the kernel's `printk`. Input is echoed: at the prompt any user name logs
//! in (no password), then a tiny shell answers `uname`, `uname -a`, `echo`, `uptime`, `help`,
//! `exit` and says `not found` to anything else. A box that is off or still booting drops input,
//! like a real UART with nobody reading.
//!
//! Like the rest of the simulator this is a pure function of the times things happen at: the
//! machine ([`super::state`]) calls it with the time of every event and [`SimConsole::advance`]
//! releases scheduled boot lines in time order.

use std::collections::VecDeque;

use crate::controller::{ConsoleLine, ConsoleRead, Key};

use super::lineup;

/// Lines the console holds; older ones are dropped (and reported as `missed`).
pub const MAX_HELD_LINES: usize = 5000;
/// Longest input line the shell accepts; longer input is cut (like a tty's line buffer).
pub const MAX_INPUT: usize = 1024;
/// The kernel version the boot log and `uname` report.
pub const KERNEL_VERSION: &str = "5.10.0-sim";

/// The boot log, printed over the boot time.
const BOOT_LOG: [&str; 12] = [
    "Booting Linux on physical CPU 0x0",
    "Linux version 5.10.0-sim (builder@labwright) (gcc version 12.2.0) #1 SMP PREEMPT",
    "CPU: ARMv7 Processor [410fd034] revision 4 (ARMv7), cr=10c5383d",
    "Machine model: Labwright simulated set-top box",
    "Memory: 1024MB = 1GB total",
    "hdmi: output 1280x720@50",
    "rc: IR receiver registered",
    "audio: 48000 Hz stereo output ready",
    "tuner: DVB frontend registered",
    "Freeing unused kernel memory: 1024K",
    "Run /sbin/init as init process",
    "init: starting services: network tuner ui",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Off,
    Booting,
    Login,
    Shell,
}

#[derive(Clone, Debug)]
enum Scheduled {
    Kernel(&'static str),
    Prompt,
}

#[derive(Debug)]
pub(super) struct SimConsole {
    host: String,
    state: State,
    boot_at_us: u64,
    lines: VecDeque<ConsoleLine>,
    next_seq: u64,
    /// The prompt of the partial line, then what was typed after it.
    prompt: String,
    typed: String,
    last_was_cr: bool,
    scheduled: VecDeque<(u64, Scheduled)>,
    /// Bytes of output so far: a `wait` returns when this grows (a longer partial line).
    received: u64,
}

impl SimConsole {
    /// A console whose box finished booting at `now_us` (its boot log already printed).
    pub fn booted(box_name: &str, now_us: u64, boot_us: u64) -> Self {
        let host: String = box_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let mut c = SimConsole {
            host: if host.is_empty() { "stb".into() } else { host },
            state: State::Off,
            boot_at_us: now_us,
            lines: VecDeque::new(),
            next_seq: 0,
            prompt: String::new(),
            typed: String::new(),
            last_was_cr: false,
            scheduled: VecDeque::new(),
            received: 0,
        };
        let start = now_us.saturating_sub(boot_us);
        c.boot(start, now_us);
        c.advance(now_us);
        c
    }

    /// Releases the scheduled boot output due up to `t`.
    pub fn advance(&mut self, t: u64) {
        while let Some((at, _)) = self.scheduled.front()
            && *at <= t
        {
            let Some((at, what)) = self.scheduled.pop_front() else {
                break;
            };
            match what {
                Scheduled::Kernel(text) => self.kernel(at, text),
                Scheduled::Prompt => {
                    self.line(at, String::new());
                    self.line(
                        at,
                        format!("Labwright simulated set-top box {} ttyS0", self.host),
                    );
                    self.state = State::Login;
                    self.set_prompt(format!("{} login: ", self.host));
                }
            }
        }
    }

    /// Power on (or reboot) at `t`: the boot log over `[t, until_us]`, then the login prompt.
    pub fn boot(&mut self, t: u64, until_us: u64) {
        self.finish_partial(t);
        self.scheduled.clear();
        self.state = State::Booting;
        self.boot_at_us = t;
        let n = BOOT_LOG.len() as u64;
        let span = until_us.saturating_sub(t);
        for (i, text) in BOOT_LOG.iter().enumerate() {
            // The first half of the boot for the kernel, the rest for user space.
            let at = t + span / 2 * i as u64 / n;
            self.scheduled.push_back((at, Scheduled::Kernel(text)));
        }
        self.scheduled
            .push_back((until_us.max(t), Scheduled::Prompt));
    }

    /// A reboot at `t` of a box that is on: the kernel says so before it boots again.
    pub fn restart(&mut self, t: u64) {
        if self.state != State::Off {
            self.finish_partial(t);
            self.kernel(t, "reboot: Restarting system");
        }
    }

    pub fn power_off(&mut self, t: u64) {
        if self.state == State::Off {
            return;
        }
        self.finish_partial(t);
        self.kernel(t, "reboot: Power down");
        self.scheduled.clear();
        self.state = State::Off;
    }

    pub fn key(&mut self, t: u64, key: Key) {
        if self.state != State::Off {
            self.kernel(t, &format!("rc: key {key}"));
        }
    }

    pub fn tune(&mut self, t: u64, channel: u32) {
        self.kernel(
            t,
            &format!(
                "player: tuning channel {channel} ({})",
                lineup::channel_name(channel)
            ),
        );
    }

    pub fn playing(&mut self, t: u64, channel: u32) {
        self.kernel(t, &format!("player: playing channel {channel}"));
    }

    /// Bytes written to the console at `t`: echoed and handled at the prompt, dropped while the
    /// box is off or booting.
    pub fn input(&mut self, t: u64, data: &[u8]) {
        if matches!(self.state, State::Off | State::Booting) {
            return;
        }
        for ch in String::from_utf8_lossy(data).chars() {
            let cr = ch == '\r';
            match ch {
                '\n' if self.last_was_cr => {}
                '\r' | '\n' => self.enter(t),
                '\u{3}' => {
                    let typed = std::mem::take(&mut self.typed);
                    let prompt = std::mem::take(&mut self.prompt);
                    self.line(t, format!("{prompt}{typed}^C"));
                    self.set_prompt(prompt);
                }
                '\u{8}' | '\u{7f}' => {
                    self.typed.pop();
                }
                c if c.is_control() => {}
                c if self.typed.len() + c.len_utf8() <= MAX_INPUT => {
                    self.typed.push(c);
                    self.received += c.len_utf8() as u64;
                }
                _ => {}
            }
            self.last_was_cr = cr;
        }
    }

    fn enter(&mut self, t: u64) {
        let typed = std::mem::take(&mut self.typed);
        let prompt = std::mem::take(&mut self.prompt);
        self.line(t, format!("{prompt}{typed}"));
        let command = typed.trim();
        match self.state {
            State::Login if command.is_empty() => {}
            State::Login => {
                self.line(t, format!("Welcome to {}, {command}.", self.host));
                self.state = State::Shell;
            }
            State::Shell => self.run(t, command),
            State::Off | State::Booting => {}
        }
        let prompt = match self.state {
            State::Login => format!("{} login: ", self.host),
            _ => format!("root@{}:~# ", self.host),
        };
        self.set_prompt(prompt);
    }

    fn run(&mut self, t: u64, command: &str) {
        let (name, args) = command
            .split_once(char::is_whitespace)
            .map_or((command, ""), |(n, a)| (n, a.trim()));
        let uptime_s = t.saturating_sub(self.boot_at_us) / 1_000_000;
        let out = match (name, args) {
            ("", _) => return,
            ("uname", "") => "Linux".to_owned(),
            ("uname", "-a") => format!(
                "Linux {} {KERNEL_VERSION} #1 SMP PREEMPT armv7l GNU/Linux",
                self.host
            ),
            ("uname", "-r") => KERNEL_VERSION.to_owned(),
            ("echo", text) => text.to_owned(),
            ("uptime", _) => format!("up {uptime_s} s"),
            ("help", _) => "commands: uname [-a|-r], echo TEXT, uptime, help, exit".to_owned(),
            ("exit" | "logout", _) => {
                self.state = State::Login;
                return;
            }
            (name, _) => format!("-sh: {name}: not found"),
        };
        self.line(t, out);
    }

    /// A kernel message: stamped with the time since boot, printed before the prompt.
    fn kernel(&mut self, t: u64, text: &str) {
        let up = t.saturating_sub(self.boot_at_us);
        let line = format!("[{:5}.{:06}] {text}", up / 1_000_000, up % 1_000_000);
        self.line(t, line);
    }

    fn set_prompt(&mut self, prompt: String) {
        self.received += prompt.len() as u64;
        self.prompt = prompt;
    }

    /// Ends the partial line (a prompt with what was typed) as a complete line.
    fn finish_partial(&mut self, t: u64) {
        let partial = format!(
            "{}{}",
            std::mem::take(&mut self.prompt),
            std::mem::take(&mut self.typed)
        );
        if !partial.is_empty() {
            self.line(t, partial);
        }
    }

    fn line(&mut self, at_us: u64, text: String) {
        self.received += text.len() as u64 + 1;
        self.lines.push_back(ConsoleLine {
            seq: self.next_seq,
            at_us,
            text,
        });
        self.next_seq += 1;
        while self.lines.len() > MAX_HELD_LINES {
            self.lines.pop_front();
        }
    }

    pub fn read_since(&self, from: u64) -> ConsoleRead {
        let oldest = self.lines.front().map_or(self.next_seq, |l| l.seq);
        ConsoleRead {
            lines: self
                .lines
                .iter()
                .filter(|l| l.seq >= from)
                .cloned()
                .collect(),
            partial: format!("{}{}", self.prompt, self.typed),
            next: self.next_seq,
            missed: oldest.saturating_sub(from.min(self.next_seq)),
        }
    }

    /// Whether there is output newer than line `from`, or more output than `received` bytes.
    pub fn has_news(&self, from: u64, received: u64) -> bool {
        self.next_seq > from || self.received > received
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// When the next scheduled line is due.
    pub fn next_due(&self) -> Option<u64> {
        self.scheduled.front().map(|(at, _)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000_000;

    fn texts(c: &SimConsole, from: u64) -> Vec<String> {
        c.read_since(from)
            .lines
            .into_iter()
            .map(|l| l.text)
            .collect()
    }

    #[test]
    fn boot_log_comes_out_over_the_boot_time_then_the_prompt() {
        let mut c = SimConsole::booted("Sim STB 1", T0, 0);
        let start = c.read_since(0).next;
        c.power_off(T0 + 1_000);
        // The prompt stays on the screen as a line, then the kernel says goodbye.
        assert_eq!(
            texts(&c, start),
            vec!["sim-stb-1 login: ", "[    0.001000] reboot: Power down"]
        );
        let after_off = c.read_since(0).next;
        c.input(T0 + 2_000, b"ignored\n");
        assert_eq!(
            c.read_since(0).next,
            after_off,
            "input is dropped while off"
        );
        c.boot(T0 + 10_000_000, T0 + 13_000_000);
        c.advance(T0 + 10_000_000);
        let first = texts(&c, after_off);
        assert_eq!(
            first,
            vec!["[    0.000000] Booting Linux on physical CPU 0x0"]
        );
        c.advance(T0 + 12_999_999);
        assert_eq!(
            c.read_since(0).partial,
            "",
            "no prompt before the boot ends"
        );
        c.advance(T0 + 13_000_000);
        let all = texts(&c, after_off);
        assert!(all.iter().any(|l| l.contains("Linux version 5.10.0-sim")));
        assert_eq!(all.len(), BOOT_LOG.len() + 2);
        assert_eq!(c.read_since(0).partial, "sim-stb-1 login: ");
        let stamps: Vec<u64> = c
            .read_since(after_off)
            .lines
            .iter()
            .map(|l| l.at_us)
            .collect();
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    }

    #[test]
    fn input_is_echoed_and_the_shell_answers() {
        let mut c = SimConsole::booted("stb", T0, 3_000_000);
        let from = c.read_since(0).next;
        c.input(T0 + 1, b"ro");
        assert_eq!(c.read_since(0).partial, "stb login: ro");
        let r = c.received();
        c.input(T0 + 2, b"ot\r\n");
        assert!(c.has_news(from, r));
        c.input(T0 + 3, b"uname -a\n");
        c.input(T0 + 4, b"frobnicate\n");
        c.input(T0 + 5, b"sleep\x7f\x7f\x7f\x7f\x7fecho hi\n");
        c.input(T0 + 6, b"half\x03");
        assert_eq!(
            texts(&c, from),
            vec![
                "stb login: root",
                "Welcome to stb, root.",
                "root@stb:~# uname -a",
                "Linux stb 5.10.0-sim #1 SMP PREEMPT armv7l GNU/Linux",
                "root@stb:~# frobnicate",
                "-sh: frobnicate: not found",
                "root@stb:~# echo hi",
                "hi",
                "root@stb:~# half^C",
            ]
        );
        assert_eq!(c.read_since(0).partial, "root@stb:~# ");
        c.key(T0 + 1_000_000, Key::Ok);
        c.tune(T0 + 1_000_000, 2);
        let last = texts(&c, from);
        assert_eq!(last[last.len() - 2], "[    4.000000] rc: key ok");
        assert!(last[last.len() - 1].starts_with("[    4.000000] player: tuning channel 2 ("));
    }

    #[test]
    fn history_is_bounded_and_reports_what_was_missed() {
        let mut c = SimConsole::booted("stb", T0, 0);
        for i in 0..MAX_HELD_LINES as u64 + 10 {
            c.key(T0 + i, Key::Up);
        }
        let r = c.read_since(0);
        assert_eq!(r.lines.len(), MAX_HELD_LINES);
        assert_eq!(r.missed, r.next - MAX_HELD_LINES as u64);
        assert_eq!(c.read_since(r.next).lines.len(), 0);
        assert_eq!(c.read_since(r.next).missed, 0);
        c.input(T0, &[b'x'; MAX_INPUT + 10]);
        assert_eq!(
            c.read_since(0).partial.len(),
            "stb login: ".len() + MAX_INPUT
        );
    }
}
