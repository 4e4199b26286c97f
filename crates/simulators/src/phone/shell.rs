//! The phone's shell: Android's commands over the phone model, with Android's output formats
//! and exit codes (`getprop`, `screencap`, `input`, `uiautomator dump`, `am`, `pm`/`cmd
//! package`, `monkey`, `logcat`, `wm`, `dumpsys window`, `echo`, `ls`/`cat`/`rm` on the phone's
//! storage). Command lines are split like `sh` does (quotes, backslashes, `;`, `&&`, `||`);
//! an unknown command is `/system/bin/sh: X: inaccessible or not found`, exit 127.

use super::SharedPhone;
use labwright_adb::daemon::{ExitFuture, ShellHandler, ShellIo, sandbox_path};
use labwright_core::sim::phone::{self, Keycode, StartError, apk::MAX_APK_BYTES};
use std::path::PathBuf;
use std::time::Duration;

/// Longest `sleep` a command may ask for.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// The phone's `ShellHandler`: commands run against `phone`; files live under `storage`
/// (device path `/sdcard/x` is `storage/sdcard/x`, the same root as sync).
#[derive(Clone)]
pub struct PhoneShell {
    pub phone: SharedPhone,
    pub storage: PathBuf,
}

/// How a command joins the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    Always,
    IfOk,
    IfFailed,
}

/// Splits a command line into commands of words, like `sh`: single quotes keep everything,
/// double quotes keep all but `\"` and `\\`, a backslash escapes the next character; `;`,
/// newlines, `&&` and `||` separate commands. Err on an unterminated quote.
fn parse_line(line: &str) -> Result<Vec<(Join, Vec<String>)>, String> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut join = Join::Always;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            if let Some(ch) = chars.next() {
                                word.push(ch);
                            }
                        }
                        Some(ch) => word.push(ch),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = chars.next() {
                    word.push(ch);
                }
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            ';' | '\n' | '&' | '|' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                let next = match c {
                    '&' if chars.peek() == Some(&'&') => {
                        chars.next();
                        Join::IfOk
                    }
                    '|' if chars.peek() == Some(&'|') => {
                        chars.next();
                        Join::IfFailed
                    }
                    // A lone `&` or `|` (background, pipe) is not supported: run in sequence.
                    _ => Join::Always,
                };
                if !words.is_empty() {
                    out.push((join, std::mem::take(&mut words)));
                }
                join = next;
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if !words.is_empty() {
        out.push((join, words));
    }
    Ok(out)
}

/// What a command does with the streams.
struct Io<'a> {
    io: &'a mut ShellIo,
}

impl Io<'_> {
    async fn out(&self, data: impl Into<Vec<u8>>) -> bool {
        let data = data.into();
        if data.is_empty() {
            return true;
        }
        // Large outputs (screenshots) go in pieces so no single message is huge.
        for chunk in data.chunks(256 * 1024) {
            if self.io.stdout.send(chunk.to_vec()).await.is_err() {
                return false;
            }
        }
        true
    }

    async fn err(&self, data: impl Into<Vec<u8>>) {
        let _ = self.io.stderr.send(data.into()).await;
    }

    /// Reads exactly `n` bytes of stdin (a streamed install); None if it ends first.
    async fn read_stdin(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut buf = Vec::with_capacity(n.min(MAX_APK_BYTES));
        while buf.len() < n {
            let d = self.io.stdin.recv().await?;
            buf.extend_from_slice(&d);
        }
        buf.truncate(n);
        Some(buf)
    }
}

impl PhoneShell {
    fn path(&self, device_path: &str) -> Result<PathBuf, String> {
        sandbox_path(&self.storage, device_path)
    }

    /// Runs one command line (possibly several commands); returns the last exit code.
    async fn run_line(&self, line: &str, io: &mut Io<'_>) -> i32 {
        let commands = match parse_line(line) {
            Ok(c) => c,
            Err(e) => {
                io.err(format!("/system/bin/sh: syntax error: {e}\n")).await;
                return 2;
            }
        };
        let mut code = 0;
        for (join, argv) in commands {
            match join {
                Join::IfOk if code != 0 => continue,
                Join::IfFailed if code == 0 => continue,
                _ => {}
            }
            code = self.command(&argv, io).await;
        }
        code
    }

    async fn command(&self, argv: &[String], io: &mut Io<'_>) -> i32 {
        let mut argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        // `exec logcat` (how adb runs logcat) and `VAR=value cmd`.
        while let Some(first) = argv.first() {
            if *first == "exec" || (first.contains('=') && !first.starts_with('=')) {
                argv.remove(0);
            } else {
                break;
            }
        }
        let Some((&name, args)) = argv.split_first() else {
            return 0;
        };
        match name {
            "true" | "export" | ":" => 0,
            "false" => 1,
            "exit" => args.first().and_then(|n| n.parse().ok()).unwrap_or(0),
            "echo" => {
                let (newline, words) = match args.first() {
                    Some(&"-n") => (false, &args[1..]),
                    _ => (true, args),
                };
                let mut s = words.join(" ");
                if newline {
                    s.push('\n');
                }
                io.out(s).await;
                0
            }
            "id" => {
                io.out("uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log) context=u:r:shell:s0\n").await;
                0
            }
            "whoami" => {
                io.out("shell\n").await;
                0
            }
            "sleep" => {
                let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(0.0);
                let d = Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(MAX_SLEEP);
                tokio::time::sleep(d.min(MAX_SLEEP)).await;
                0
            }
            "getprop" => self.getprop(args, io).await,
            "screencap" => self.screencap(args, io).await,
            "input" => self.input(args, io).await,
            "uiautomator" => self.uiautomator(args, io).await,
            "am" => self.am(args, io).await,
            "pm" => self.pm(args, io).await,
            "cmd" => match args.split_first() {
                Some((&"package", rest)) => self.pm(rest, io).await,
                Some((&"activity", rest)) => self.am(rest, io).await,
                Some((other, _)) => {
                    io.err(format!("cmd: Can't find service: {other}\n")).await;
                    20
                }
                None => {
                    io.err("cmd: no service specified; use -l to list all services\n")
                        .await;
                    20
                }
            },
            "monkey" => self.monkey(args, io).await,
            "logcat" => self.logcat(args, io).await,
            "wm" => self.wm(args, io).await,
            "dumpsys" => self.dumpsys(args, io).await,
            "ls" => self.ls(args, io).await,
            "cat" => self.cat(args, io).await,
            "rm" => self.rm(args, io).await,
            other => {
                io.err(format!(
                    "/system/bin/sh: {other}: inaccessible or not found\n"
                ))
                .await;
                127
            }
        }
    }

    async fn getprop(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        let text = self.phone.read(|p| match args.first() {
            Some(key) => format!(
                "{}\n",
                p.property(key)
                    .or_else(|| args.get(1).map(|d| d.to_string()))
                    .unwrap_or_default()
            ),
            None => p
                .properties()
                .into_iter()
                .map(|(k, v)| format!("[{k}]: [{v}]\n"))
                .collect(),
        });
        io.out(text).await;
        0
    }

    async fn screencap(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        let mut png = false;
        let mut file = None;
        for a in args {
            match *a {
                "-p" => png = true,
                "-h" => {
                    io.err("usage: screencap [-hp] [-d display-id] [FILENAME]\n   -h: this message\n   -p: save the file as a png.\nIf FILENAME ends with .png it will be saved as a png.\nIf FILENAME is not given, the results will be printed to stdout.\n").await;
                    return 0;
                }
                f if !f.starts_with('-') => file = Some(f.to_string()),
                _ => {}
            }
        }
        if file.as_deref().is_some_and(|f| f.ends_with(".png")) {
            png = true;
        }
        let rgb = self.phone.read(|p| p.render_rgb());
        let encoded = tokio::task::spawn_blocking(move || {
            if png {
                phone::encode_png(&rgb)
            } else {
                phone::encode_raw(&rgb)
            }
        })
        .await
        .unwrap_or_default();
        match file {
            None => {
                io.out(encoded).await;
                0
            }
            Some(f) => self.write_file(&f, &encoded, "screencap", io).await,
        }
    }

    async fn write_file(&self, device_path: &str, data: &[u8], tool: &str, io: &mut Io<'_>) -> i32 {
        let written = match self.path(device_path) {
            Ok(p) => std::fs::write(&p, data).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => 0,
            Err(e) => {
                io.err(format!("{tool}: Error opening file: {device_path} ({e})\n"))
                    .await;
                1
            }
        }
    }

    async fn input(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        const USAGE: &str = "Usage: input [<source>] <command> [<arg>...]\n\nThe commands and default sources are:\n      text <string> (Default: touchscreen)\n      keyevent [--longpress|--doubletap] <key code number or name> ... (Default: keyboard)\n      tap <x> <y> (Default: touchscreen)\n      swipe <x1> <y1> <x2> <y2> [duration(ms)] (Default: touchscreen)\n      press (Default: trackball)\n      longpress <x> <y> (Default: touchscreen)\n";
        const SOURCES: &[&str] = &[
            "keyboard",
            "dpad",
            "gamepad",
            "touchscreen",
            "touchpad",
            "mouse",
            "stylus",
            "trackball",
            "joystick",
            "touchnavigation",
            "rotaryencoder",
        ];
        let mut args = args;
        if let Some((_, rest)) = args.split_first().filter(|(f, _)| SOURCES.contains(f)) {
            args = rest;
        }
        let Some((&cmd, rest)) = args.split_first() else {
            io.err(USAGE).await;
            return 1;
        };
        let num = |s: &str| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(|v| v as i32)
        };
        let points = |rest: &[&str], n: usize| -> Option<Vec<i32>> {
            (rest.len() >= n)
                .then(|| {
                    rest[..n]
                        .iter()
                        .map(|s| num(s))
                        .collect::<Option<Vec<i32>>>()
                })
                .flatten()
        };
        match cmd {
            "keyevent" => {
                let codes: Vec<&str> = rest
                    .iter()
                    .copied()
                    .filter(|a| !a.starts_with("--"))
                    .collect();
                if codes.is_empty() {
                    io.err(USAGE).await;
                    return 1;
                }
                let mut keys = Vec::new();
                for c in codes {
                    match Keycode::parse(c) {
                        Some(k) => keys.push(k),
                        None => {
                            io.err(format!("Error: Unknown keycode: {c}\n")).await;
                            return 1;
                        }
                    }
                }
                self.phone
                    .update(|p| keys.into_iter().for_each(|k| p.key(k)));
                0
            }
            "press" => {
                self.phone.update(|p| p.key(Keycode::DPAD_CENTER));
                0
            }
            "tap" | "longpress" => match points(rest, 2) {
                Some(v) => {
                    self.phone.update(|p| {
                        if cmd == "tap" {
                            p.tap(v[0], v[1])
                        } else {
                            p.long_press(v[0], v[1])
                        }
                    });
                    0
                }
                None => {
                    io.err(format!(
                        "Error: invalid arguments for command: {cmd}\n{USAGE}"
                    ))
                    .await;
                    1
                }
            },
            "swipe" | "draganddrop" => match points(rest, 4) {
                Some(v) => {
                    let ms = rest
                        .get(4)
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(300)
                        .min(60_000);
                    // The gesture takes its time, as on a phone.
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    self.phone.update(|p| p.swipe(v[0], v[1], v[2], v[3], ms));
                    0
                }
                None => {
                    io.err(format!(
                        "Error: invalid arguments for command: {cmd}\n{USAGE}"
                    ))
                    .await;
                    1
                }
            },
            "text" => match rest.first() {
                Some(t) => {
                    let text = t.replace("%s", " ");
                    self.phone.update(|p| p.text(&text));
                    0
                }
                None => {
                    io.err(format!(
                        "Error: invalid arguments for command: text\n{USAGE}"
                    ))
                    .await;
                    1
                }
            },
            other => {
                io.err(format!("Error: Unknown command: {other}\n{USAGE}"))
                    .await;
                1
            }
        }
    }

    async fn uiautomator(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        match args.first() {
            Some(&"dump") => {}
            _ => {
                io.err("Usage: uiautomator <subcommand> [options]\n\nAvailable subcommands:\n\nhelp: displays help message\n\ndump: creates an XML dump of current UI hierarchy\n").await;
                return 1;
            }
        }
        let file = args[1..]
            .iter()
            .find(|a| !a.starts_with("--"))
            .copied()
            .unwrap_or("/sdcard/window_dump.xml");
        let Some(xml) = self.phone.read(|p| p.ui_dump()) else {
            io.err("ERROR: null root node returned by UiTestAutomationBridge.\n")
                .await;
            return 1;
        };
        if file == "/dev/tty" || file == "/dev/stdout" {
            io.out(xml).await;
        } else {
            let code = self
                .write_file(file, xml.as_bytes(), "uiautomator", io)
                .await;
            if code != 0 {
                return code;
            }
        }
        io.out(format!("UI hierchary dumped to: {file}\n")).await;
        0
    }

    async fn am(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        let Some((&sub, rest)) = args.split_first() else {
            io.err("usage: am [subcommand] [options]\n").await;
            return 1;
        };
        match sub {
            "start" | "start-activity" => {
                let (mut component, mut action, mut category) = (None, None, None);
                let mut it = rest.iter();
                while let Some(a) = it.next() {
                    match *a {
                        "-n" => component = it.next().copied(),
                        "-a" => action = it.next().copied(),
                        "-c" => category = it.next().copied(),
                        "-W" | "-S" | "-R" | "--activity-clear-top" => {}
                        "-f" | "-d" | "-t" | "--user" | "-e" | "--es" | "--ei" | "--ez" => {
                            // Options with values the phone does not use.
                            if matches!(*a, "-e" | "--es" | "--ei" | "--ez") {
                                it.next();
                            }
                            it.next();
                        }
                        other
                            if !other.starts_with('-')
                                && component.is_none()
                                && other.contains('/') =>
                        {
                            component = Some(other)
                        }
                        _ => {}
                    }
                }
                let intent = match (component, action) {
                    (Some(c), _) => format!("cmp={c}"),
                    (None, Some(a)) => match category {
                        Some(c) => format!("act={a} cat=[{c}]"),
                        None => format!("act={a}"),
                    },
                    (None, None) => {
                        io.err("Error: Intent does not match any activities: Intent {  }\n")
                            .await;
                        return 1;
                    }
                };
                io.out(format!("Starting: Intent {{ {intent} }}\n")).await;
                let result = self.phone.update(|p| match component {
                    Some(c) => p.start_component(c),
                    None => p.start_action(action.unwrap_or_default(), category),
                });
                match result {
                    Ok(_) => 0,
                    Err(StartError::NoActivity(c)) => {
                        io.err(format!(
                            "Error type 3\nError: Activity class {{{c}}} does not exist.\n"
                        ))
                        .await;
                        1
                    }
                    Err(StartError::Unresolved) => {
                        io.err(format!("Error: Activity not started, unable to resolve Intent {{ {intent} flg=0x10000000 }}\n")).await;
                        1
                    }
                }
            }
            "force-stop" | "kill" => match rest.iter().find(|a| !a.starts_with('-')) {
                Some(pkg) => {
                    self.phone.update(|p| p.force_stop(pkg));
                    0
                }
                None => {
                    io.err("Exception occurred while executing 'force-stop':\njava.lang.IllegalArgumentException: Argument expected after \"force-stop\"\n").await;
                    255
                }
            },
            other => {
                io.err(format!("Unknown command: {other}\n")).await;
                255
            }
        }
    }

    async fn pm(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        let Some((&sub, rest)) = args.split_first() else {
            io.err("usage: pm [subcommand] [options]\n").await;
            return 1;
        };
        let positional: Vec<&str> = rest
            .iter()
            .copied()
            .filter(|a| !a.starts_with('-'))
            .collect();
        match sub {
            "list" => {
                if rest.first() != Some(&"packages") {
                    io.err(format!(
                        "Error: unknown list type '{}'\n",
                        rest.first().unwrap_or(&"")
                    ))
                    .await;
                    return 255;
                }
                let (third, system) = (rest.contains(&"-3"), rest.contains(&"-s"));
                let filter = positional.get(1).copied();
                let mut names: Vec<String> = self.phone.read(|p| {
                    p.packages()
                        .iter()
                        .filter(|pk| if pk.system { !third } else { !system })
                        .filter(|pk| filter.is_none_or(|f| pk.name.contains(f)))
                        .map(|pk| pk.name.clone())
                        .collect()
                });
                names.sort();
                io.out(
                    names
                        .iter()
                        .map(|n| format!("package:{n}\n"))
                        .collect::<String>(),
                )
                .await;
                0
            }
            "path" => {
                let pkg = positional.first().copied().unwrap_or_default();
                match self.phone.read(|p| p.package(pkg).map(|pk| pk.system)) {
                    Some(system) => {
                        let dir = if system { "/system/app" } else { "/data/app" };
                        io.out(format!("package:{dir}/{pkg}-1/base.apk\n")).await;
                        0
                    }
                    None => 1,
                }
            }
            "install" => {
                let mut size = None;
                let mut it = rest.iter();
                while let Some(a) = it.next() {
                    if *a == "-S" {
                        size = it.next().and_then(|s| s.parse::<usize>().ok());
                    }
                }
                let bytes = match (
                    size,
                    positional
                        .iter()
                        .find(|a| !a.chars().all(|c| c.is_ascii_digit())),
                ) {
                    (Some(n), _) => {
                        if n > MAX_APK_BYTES {
                            io.out(format!("Failure [INSTALL_FAILED_INSUFFICIENT_STORAGE: APK of {n} bytes is larger than the simulated phone accepts]\n")).await;
                            return 1;
                        }
                        match io.read_stdin(n).await {
                            Some(b) => b,
                            None => {
                                io.out("Failure [INSTALL_FAILED_INVALID_APK: the APK stream ended early]\n").await;
                                return 1;
                            }
                        }
                    }
                    (None, Some(path)) => {
                        let read = self.path(path).and_then(|p| {
                            let meta = std::fs::metadata(&p).map_err(|e| e.to_string())?;
                            if meta.len() > MAX_APK_BYTES as u64 {
                                return Err("file too large".into());
                            }
                            std::fs::read(&p).map_err(|e| e.to_string())
                        });
                        match read {
                            Ok(b) => b,
                            Err(_) => {
                                io.err(format!("Error: Can't open file: {path}\n")).await;
                                io.out("Failure [INSTALL_FAILED_INVALID_APK: Can't open file]\n")
                                    .await;
                                return 1;
                            }
                        }
                    }
                    (None, None) => {
                        io.err("Error: APK content must be streamed\n").await;
                        return 1;
                    }
                };
                match self.phone.update(|p| p.install(&bytes)) {
                    Ok(_) => {
                        io.out("Success\n").await;
                        0
                    }
                    Err(f) => {
                        io.out(format!("{f}\n")).await;
                        1
                    }
                }
            }
            "clear" => {
                let pkg = positional.first().copied().unwrap_or_default();
                if self.phone.update(|p| p.clear_data(pkg)) {
                    io.out("Success\n").await;
                    0
                } else {
                    io.out("Failed\n").await;
                    1
                }
            }
            "uninstall" => {
                let pkg = positional.first().copied().unwrap_or_default();
                if self.phone.update(|p| p.uninstall(pkg)) {
                    io.out("Success\n").await;
                    0
                } else {
                    io.out("Failure [DELETE_FAILED_INTERNAL_ERROR]\n").await;
                    1
                }
            }
            other => {
                io.err(format!("Unknown command: {other}\n")).await;
                255
            }
        }
    }

    /// `monkey -p PKG [-c CATEGORY] N`: the usual way to launch an app by package.
    async fn monkey(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        let pkg = args
            .iter()
            .position(|a| *a == "-p")
            .and_then(|i| args.get(i + 1))
            .copied();
        let Some(pkg) = pkg else {
            io.err("** Error: you must specify at least one package (-p)\n")
                .await;
            return 1;
        };
        let mut text: String = args.iter().map(|a| format!("  bash arg: {a}\n")).collect();
        match self.phone.update(|p| p.launch(pkg)) {
            Ok(_) => {
                text.push_str("Events injected: 1\n## Network stats: elapsed time=14ms (0ms mobile, 0ms wifi, 14ms not connected)\n");
                io.out(text).await;
                0
            }
            Err(_) => {
                text.push_str("** No activities found to run, monkey aborted.\n");
                io.out(text).await;
                252
            }
        }
    }

    /// `logcat [-d] [-c] [-t N] [-v FORMAT] [-b BUFFER]`: prints the buffer in threadtime
    /// format; without `-d` keeps streaming new lines until the host closes the stream.
    async fn logcat(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        let mut dump = false;
        let mut tail = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match *a {
                "-d" => dump = true,
                "-c" => {
                    self.phone.update(|p| p.log_clear());
                    return 0;
                }
                "-t" | "-T" => {
                    tail = it.next().and_then(|n| n.parse::<usize>().ok());
                    if *a == "-t" {
                        dump = true;
                    }
                }
                "-v" | "-b" => {
                    it.next();
                }
                _ => {}
            }
        }
        let mut changes = self.phone.subscribe();
        let (lines, mut next) = self.phone.read(|p| (p.log_since(0), p.log_end()));
        let skip = tail.map_or(0, |t| lines.len().saturating_sub(t));
        let mut text = String::from("--------- beginning of main\n");
        for l in &lines[skip..] {
            text.push_str(l);
            text.push('\n');
        }
        if !io.out(text).await {
            return 0;
        }
        if dump {
            return 0;
        }
        loop {
            if changes.changed().await.is_err() {
                return 0;
            }
            let (lines, end) = self.phone.read(|p| (p.log_since(next), p.log_end()));
            next = end;
            if lines.is_empty() {
                continue;
            }
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            if !io.out(text).await {
                return 0;
            }
        }
    }

    async fn wm(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        match args.first() {
            Some(&"size") => {
                io.out(format!(
                    "Physical size: {}x{}\n",
                    phone::WIDTH,
                    phone::HEIGHT
                ))
                .await;
                0
            }
            Some(&"density") => {
                io.out("Physical density: 240\n").await;
                0
            }
            _ => {
                io.err("usage: wm [size|density]\n").await;
                255
            }
        }
    }

    async fn dumpsys(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        match args.first() {
            Some(&"window") | Some(&"activity") => {
                let (component, on) = self.phone.read(|p| {
                    let s = p.status();
                    (s.focused_component, s.screen_on)
                });
                let (pkg, class) = component
                    .split_once('/')
                    .unwrap_or((component.as_str(), ""));
                let full = match class.strip_prefix('.') {
                    Some(short) => format!("{pkg}/{pkg}.{short}"),
                    None => component.clone(),
                };
                io.out(format!(
                    "  mCurrentFocus=Window{{1a2b3c4 u0 {full}}}\n  mFocusedApp=ActivityRecord{{5d6e7f8 u0 {component} t1}}\n  mResumedActivity: ActivityRecord{{5d6e7f8 u0 {component} t1}}\n  mScreenOn={on}\n"
                ))
                .await;
                0
            }
            Some(other) => {
                io.err(format!("Can't find service: {other}\n")).await;
                0
            }
            None => 0,
        }
    }

    async fn ls(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        let target = args
            .iter()
            .find(|a| !a.starts_with('-'))
            .copied()
            .unwrap_or("/");
        let listed = self.path(target).and_then(|p| {
            if p.is_dir() {
                let mut names: Vec<String> = std::fs::read_dir(&p)
                    .map_err(|e| e.to_string())?
                    .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect();
                names.sort();
                Ok(names
                    .into_iter()
                    .map(|n| format!("{n}\n"))
                    .collect::<String>())
            } else if p.exists() {
                Ok(format!("{target}\n"))
            } else {
                Err("No such file or directory".into())
            }
        });
        match listed {
            Ok(s) => {
                io.out(s).await;
                0
            }
            Err(_) => {
                io.err(format!("ls: {target}: No such file or directory\n"))
                    .await;
                1
            }
        }
    }

    async fn cat(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        let mut code = 0;
        for f in args {
            match self
                .path(f)
                .and_then(|p| std::fs::read(p).map_err(|e| e.to_string()))
            {
                Ok(b) => {
                    io.out(b).await;
                }
                Err(_) => {
                    io.err(format!("cat: {f}: No such file or directory\n"))
                        .await;
                    code = 1;
                }
            }
        }
        code
    }

    async fn rm(&self, args: &[&str], io: &mut Io<'_>) -> i32 {
        let force = args.iter().any(|a| a.starts_with('-') && a.contains('f'));
        let mut code = 0;
        for f in args.iter().filter(|a| !a.starts_with('-')) {
            let removed = self
                .path(f)
                .and_then(|p| std::fs::remove_file(p).map_err(|e| e.to_string()));
            if removed.is_err() && !force {
                io.err(format!("rm: {f}: No such file or directory\n"))
                    .await;
                code = 1;
            }
        }
        code
    }
}

impl ShellHandler for PhoneShell {
    fn run(&self, command: String, mut io: ShellIo) -> ExitFuture {
        let shell = self.clone();
        Box::pin(async move {
            let mut io = Io { io: &mut io };
            if !command.trim().is_empty() {
                return shell.run_line(&command, &mut io).await;
            }
            // Interactive: one line at a time until stdin closes or `exit`.
            let mut pending = Vec::new();
            let mut code = 0;
            while let Some(d) = io.io.stdin.recv().await {
                pending.extend_from_slice(&d);
                while let Some(at) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=at).collect();
                    let line = String::from_utf8_lossy(&line).into_owned();
                    if line.trim() == "exit" {
                        return code;
                    }
                    code = shell.run_line(&line, &mut io).await;
                }
                if pending.len() > 64 * 1024 {
                    pending.clear();
                }
            }
            code
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Vec<String>> {
        parse_line(line)
            .expect("parses")
            .into_iter()
            .map(|(_, w)| w)
            .collect()
    }

    #[test]
    fn command_lines_split_like_sh() {
        assert_eq!(
            words("getprop ro.product.model"),
            [["getprop", "ro.product.model"]]
        );
        assert_eq!(
            words(r#"export ANDROID_LOG_TAGS="''"; exec logcat '-d'"#),
            [
                vec!["export", "ANDROID_LOG_TAGS=''"],
                vec!["exec", "logcat", "-d"]
            ]
        );
        assert_eq!(
            words("cmd package 'install' -S 1234"),
            [["cmd", "package", "install", "-S", "1234"]]
        );
        assert_eq!(
            words(r"input text hello\ world"),
            [["input", "text", "hello world"]]
        );
        assert_eq!(words("a && b || c\nd"), [["a"], ["b"], ["c"], ["d"]]);
        let joins: Vec<Join> = parse_line("a && b || c; d")
            .expect("parses")
            .into_iter()
            .map(|(j, _)| j)
            .collect();
        assert_eq!(
            joins,
            [Join::Always, Join::IfOk, Join::IfFailed, Join::Always]
        );
        assert!(parse_line("echo 'open").is_err());
        assert!(words("  ;; ").is_empty());
    }
}
