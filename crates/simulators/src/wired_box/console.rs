//! The box's serial console on a tty (the USB CDC-ACM gadget's `/dev/ttyGS0` in the rig, read by
//! the agent on `/dev/ttyACM0`). It follows the box: whenever the box boots (mains on, woken
//! from standby, a reboot) it writes a numbered boot log spread over the boot, then a `login:`
//! prompt; power off cuts a boot log short. Like a development box's getty it logs `root` in
//! without a password, and its shell answers `dmesg` (this boot's log again), `uptime` and
//! `exit`. Its own thread, so a console nobody reads never holds up the box.

use std::{
    fs::{File, OpenOptions},
    io::{ErrorKind, Read, Write},
    os::fd::AsFd,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use labwright_core::sim::{Screen, SimulatedStb};
use nix::sys::termios::{self, SetArg, SpecialCharacterIndices};

use super::{REOPEN, WiredError};

/// The boot log of boot number `boot`, one line at a time spread over the boot.
pub fn boot_log(boot: u32) -> Vec<String> {
    vec![
        "Labwright STB boot loader 2.1 (wired)".into(),
        "Starting kernel ...".into(),
        format!("[    0.000000] Linux version 6.1.0-labwright-stb (boot {boot})"),
        "[    0.412000] hdmi: output 1280x720p RGB".into(),
        "[    0.515000] ir: receiver ready".into(),
        "[    0.623000] audio: 48000 Hz stereo".into(),
        "Starting services: tuner ui audio".into(),
        "Welcome to Labwright STB".into(),
    ]
}

/// The login prompt (no newline: it waits for a user name).
pub const LOGIN: &str = "labwright-stb login: ";
/// The shell's prompt once logged in.
pub const SHELL: &str = "# ";

/// What the console does with one line typed at it; returns the text to write back.
#[derive(Debug, Default)]
pub struct Session {
    logged_in: bool,
}

impl Session {
    pub fn line(&mut self, line: &str, log: &[String], up: Duration) -> String {
        let line = line.trim();
        // A real getty echoes what is typed.
        let mut out = format!("{line}\r\n");
        if !self.logged_in {
            if line == "root" {
                self.logged_in = true;
                out.push_str(SHELL);
            } else if line.is_empty() {
                out.push_str(LOGIN);
            } else {
                out.push_str(&format!("\r\nLogin incorrect\r\n{LOGIN}"));
            }
            return out;
        }
        match line {
            "" => {}
            "dmesg" => log.iter().for_each(|l| out.push_str(&format!("{l}\r\n"))),
            "uptime" => out.push_str(&format!("up {} s\r\n", up.as_secs())),
            "exit" => {
                self.logged_in = false;
                out.push_str(&format!("\r\n{LOGIN}"));
                return out;
            }
            other => out.push_str(&format!("sh: {other}: not found\r\n")),
        }
        out.push_str(SHELL);
        out
    }
}

pub struct Console {
    path: PathBuf,
    file: File,
    boot: Duration,
}

fn open_tty(path: &Path) -> Result<File, String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    // Raw (no echo by the kernel, no newline translation: the box writes CRLF), and a read
    // returns after 100 ms without input.
    let mut t = termios::tcgetattr(file.as_fd()).map_err(|e| format!("not a tty: {e}"))?;
    termios::cfmakeraw(&mut t);
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 1;
    termios::tcsetattr(file.as_fd(), SetArg::TCSANOW, &t).map_err(|e| e.to_string())?;
    Ok(file)
}

/// A boot log being written.
struct Booting {
    started: Instant,
    written: usize,
}

impl Console {
    pub fn open(path: &Path, boot_ms: u64) -> Result<Console, WiredError> {
        let file =
            open_tty(path).map_err(|e| WiredError::Console(format!("{}: {e}", path.display())))?;
        Ok(Console {
            path: path.to_path_buf(),
            file,
            boot: Duration::from_millis(boot_ms),
        })
    }

    fn write(&mut self, text: &str) {
        if let Err(e) = self.file.write_all(text.as_bytes()) {
            self.failed(&e);
        }
    }

    fn failed(&mut self, e: &std::io::Error) {
        tracing::warn!(path = %self.path.display(), error = %e, "console failed");
        thread::sleep(REOPEN);
        match open_tty(&self.path) {
            Ok(f) => self.file = f,
            Err(e) => tracing::warn!(error = %e, "console not back yet"),
        }
    }

    /// Follows the box forever.
    pub fn run(mut self, stb: &SimulatedStb) {
        let mut boots = 0u32;
        let mut log = boot_log(0);
        let mut booting: Option<Booting> = None;
        let mut session = Session::default();
        let mut up_since = Instant::now();
        let mut typed = Vec::new();
        let mut after_cr = false;
        let mut last = stb.current_screen();
        if !matches!(last, Screen::Off | Screen::Booting) {
            self.write(&format!("\r\n{LOGIN}"));
        }
        let step = self.boot / 8;
        loop {
            let screen = stb.current_screen();
            if screen == Screen::Booting && last != Screen::Booting {
                boots += 1;
                log = boot_log(boots);
                booting = Some(Booting {
                    started: Instant::now(),
                    written: 0,
                });
                session = Session::default();
                up_since = Instant::now();
            }
            if screen == Screen::Off {
                booting = None;
            }
            if let Some(b) = &mut booting {
                let done = screen != Screen::Booting;
                let due = if done {
                    log.len()
                } else {
                    let n = b.started.elapsed().as_millis() / step.as_millis().max(1);
                    (n as usize + 1).min(log.len())
                };
                let mut text = String::new();
                for line in &log[b.written..due] {
                    text.push_str(line);
                    text.push_str("\r\n");
                }
                b.written = due;
                if done {
                    text.push_str(&format!("\r\n{LOGIN}"));
                    booting = None;
                }
                if !text.is_empty() {
                    self.write(&text);
                }
            }
            last = screen;
            // Input (waits up to 100 ms): lines typed while the box runs (CR, LF or CRLF).
            let mut buf = [0u8; 256];
            let n = match self.file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => 0,
                Err(e) => {
                    self.failed(&e);
                    0
                }
            };
            let mut lines = Vec::new();
            for &b in &buf[..n] {
                match b {
                    b'\n' if after_cr => after_cr = false,
                    b'\r' | b'\n' => {
                        after_cr = b == b'\r';
                        lines.push(
                            String::from_utf8_lossy(&std::mem::take(&mut typed)).into_owned(),
                        );
                    }
                    _ => {
                        after_cr = false;
                        typed.push(b);
                    }
                }
            }
            for line in lines {
                // Nothing answers while the box is off or booting.
                if booting.is_none() && screen != Screen::Off {
                    let reply = session.line(&line, &log, up_since.elapsed());
                    self.write(&reply);
                }
            }
            if typed.len() > 4096 {
                typed.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_logs_in_and_dmesg_repeats_this_boots_log() {
        let log = boot_log(3);
        let mut s = Session::default();
        assert_eq!(
            s.line("guest", &log, Duration::ZERO),
            format!("guest\r\n\r\nLogin incorrect\r\n{LOGIN}")
        );
        assert_eq!(
            s.line("root", &log, Duration::ZERO),
            format!("root\r\n{SHELL}")
        );
        let dmesg = s.line("dmesg", &log, Duration::ZERO);
        assert!(
            dmesg.contains("Linux version 6.1.0-labwright-stb (boot 3)\r\n"),
            "{dmesg}"
        );
        assert!(dmesg.ends_with(&format!("Welcome to Labwright STB\r\n{SHELL}")));
        assert_eq!(
            s.line("uptime", &log, Duration::from_secs(7)),
            format!("uptime\r\nup 7 s\r\n{SHELL}")
        );
        assert_eq!(
            s.line("ls", &log, Duration::ZERO),
            format!("ls\r\nsh: ls: not found\r\n{SHELL}")
        );
        assert_eq!(
            s.line("exit", &log, Duration::ZERO),
            format!("exit\r\n\r\n{LOGIN}")
        );
        assert_eq!(
            s.line("dmesg", &log, Duration::ZERO),
            format!("dmesg\r\n\r\nLogin incorrect\r\n{LOGIN}")
        );
    }
}
