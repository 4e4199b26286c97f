//! A device composed of controllers from different drivers, as a host's configuration says:
//!
//! ```toml
//! [devices.settings.video]
//! driver = "v4l2"
//! path = "/dev/v4l/by-id/usb-MACROSILICON_USB_Video-video-index0"
//! [devices.settings.audio]
//! driver = "alsa"
//! pcm = "hw:MS2109,0,0"
//! [devices.settings.console]
//! driver = "serial"
//! path = "/dev/ttyUSB0"
//! [devices.settings.power]
//! driver = "gpio"                 # or a smart plug: tasmota, shelly1, shelly2, kasa
//! chip = "gpiochip0"
//! line = 17
//! [devices.settings.remote]
//! driver = "lirc"
//! path = "/dev/lirc0"
//! keymap = "/etc/labwright/remotes/stb.toml"
//! ```
//!
//! [`build`] checks every section and opens every node, and reports every problem at once
//! (a missing node, the group to join, a format the device does not offer), each starting with
//! its setting's path (`video.format: ...`).

use labwright_core::{
    controller::{AudioCapture, Console, Device, PowerControl, RemoteControl, VideoCapture},
    fleet::Capability,
};

use crate::{audio, ir, power, serial, video};

/// Controller driver kinds, by section: what `driver = "..."` may say in each (`power` has
/// several: [`power::PowerSettings`]).
pub const CONTROLLER_KINDS: &[(&str, &str)] = &[
    ("video", "v4l2"),
    ("audio", "alsa"),
    ("console", "serial"),
    ("remote", "lirc"),
];

const SECTIONS: [&str; 5] = ["video", "audio", "console", "power", "remote"];

/// A composed device: each controller optional.
#[derive(Default)]
pub struct CompositeDevice {
    video: Option<video::Capture>,
    audio: Option<audio::Capture>,
    console: Option<serial::SerialConsole>,
    power: Option<power::Power>,
    remote: Option<ir::IrRemote>,
}

impl CompositeDevice {
    pub fn video_capture(&self) -> Option<&video::Capture> {
        self.video.as_ref()
    }
    pub fn audio_capture(&self) -> Option<&audio::Capture> {
        self.audio.as_ref()
    }
    pub fn serial_console(&self) -> Option<&serial::SerialConsole> {
        self.console.as_ref()
    }
    pub fn ir_remote(&self) -> Option<&ir::IrRemote> {
        self.remote.as_ref()
    }
}

impl Device for CompositeDevice {
    fn video(&self) -> Option<&dyn VideoCapture> {
        self.video.as_ref().map(|v| v as &dyn VideoCapture)
    }
    fn audio(&self) -> Option<&dyn AudioCapture> {
        self.audio.as_ref().map(|a| a as &dyn AudioCapture)
    }
    fn console(&self) -> Option<&dyn Console> {
        self.console.as_ref().map(|c| c as &dyn Console)
    }
    fn power(&self) -> Option<&dyn PowerControl> {
        self.power.as_deref().map(|p| p as &dyn PowerControl)
    }
    fn remote(&self) -> Option<&dyn RemoteControl> {
        self.remote.as_ref().map(|r| r as &dyn RemoteControl)
    }
}

/// The capabilities a composite device with these settings declares (sections present), for
/// the host's hello; no device is opened.
pub fn capabilities(settings: &toml::Table) -> Vec<Capability> {
    let mut caps = Vec::new();
    for (section, cap) in [
        ("video", Capability::VideoCapture),
        ("audio", Capability::AudioCapture),
        ("console", Capability::Console),
        ("power", Capability::Power),
        ("remote", Capability::RemoteControl),
    ] {
        if settings.contains_key(section) {
            caps.push(cap);
        }
    }
    caps
}

/// One section's table without its `driver` key, after checking the kind.
fn section(settings: &toml::Table, name: &str, problems: &mut Vec<String>) -> Option<toml::Table> {
    let value = settings.get(name)?;
    let Some(table) = value.as_table() else {
        problems.push(format!("{name}: must be a table"));
        return None;
    };
    let expected = CONTROLLER_KINDS
        .iter()
        .find(|(s, _)| *s == name)
        .map(|(_, k)| *k)
        .unwrap_or_default();
    match table.get("driver").and_then(toml::Value::as_str) {
        Some(k) if k == expected => {}
        Some(k) => {
            problems.push(format!(
                "{name}.driver: unknown {name} driver {k:?} (known: {expected})"
            ));
            return None;
        }
        None => {
            problems.push(format!("{name}.driver: missing (known: {expected})"));
            return None;
        }
    }
    let mut rest = table.clone();
    rest.remove("driver");
    Some(rest)
}

fn parse<T: serde::de::DeserializeOwned>(
    name: &str,
    table: toml::Table,
    problems: &mut Vec<String>,
) -> Option<T> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| problems.push(format!("{name}: {}", e.message().trim())))
        .ok()
}

/// Checks the settings without opening anything; every problem.
pub fn check(settings: &toml::Table) -> Vec<String> {
    parse_all(settings).1
}

struct Parsed {
    video: Option<video::VideoSettings>,
    audio: Option<audio::AudioSettings>,
    console: Option<serial::SerialSettings>,
    power: Option<power::PowerSettings>,
    remote: Option<ir::remote::RemoteSettings>,
}

fn parse_all(settings: &toml::Table) -> (Parsed, Vec<String>) {
    let mut problems = Vec::new();
    for key in settings.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            problems.push(format!(
                "{key}: unknown section (known: {})",
                SECTIONS.join(", ")
            ));
        }
    }
    if !SECTIONS.iter().any(|s| settings.contains_key(*s)) {
        problems.push(format!(
            "a composite device needs at least one of {}",
            SECTIONS.join(", ")
        ));
    }
    let video = section(settings, "video", &mut problems)
        .and_then(|t| parse::<video::VideoSettings>("video", t, &mut problems))
        .filter(|v| {
            v.wanted()
                .map_err(|e| problems.extend(e.into_iter().map(|p| format!("video.{p}"))))
                .is_ok()
        });
    let audio = section(settings, "audio", &mut problems)
        .and_then(|t| parse::<audio::AudioSettings>("audio", t, &mut problems))
        .filter(|a| {
            a.wanted()
                .map_err(|e| problems.extend(e.into_iter().map(|p| format!("audio.{p}"))))
                .is_ok()
        });
    let console = section(settings, "console", &mut problems)
        .and_then(|t| parse::<serial::SerialSettings>("console", t, &mut problems))
        .filter(|c| {
            let p = c.check();
            let ok = p.is_empty();
            problems.extend(p.into_iter().map(|p| format!("console.{p}")));
            ok
        });
    let power = match settings.get("power") {
        None => None,
        Some(toml::Value::Table(t)) => match power::PowerSettings::from_table(t) {
            Ok(p) => {
                let p_problems = p.check();
                let ok = p_problems.is_empty();
                problems.extend(p_problems.into_iter().map(|p| format!("power.{p}")));
                ok.then_some(p)
            }
            Err(e) if e.starts_with("driver:") => {
                problems.push(format!("power.{e}"));
                None
            }
            Err(e) => {
                problems.push(format!("power: {e}"));
                None
            }
        },
        Some(_) => {
            problems.push("power: must be a table".into());
            None
        }
    };
    let remote = section(settings, "remote", &mut problems)
        .and_then(|t| parse::<ir::remote::RemoteSettings>("remote", t, &mut problems))
        .filter(|r| {
            let p = r.check();
            let ok = p.is_empty();
            problems.extend(p.into_iter().map(|p| format!("remote.{p}")));
            ok
        });
    (
        Parsed {
            video,
            audio,
            console,
            power,
            remote,
        },
        problems,
    )
}

/// Checks the settings, opens every configured node and starts capturing; on any problem,
/// nothing stays open and every problem is returned.
pub fn build(settings: &toml::Table) -> Result<CompositeDevice, Vec<String>> {
    let (parsed, mut problems) = parse_all(settings);
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut device = CompositeDevice::default();
    if let Some(v) = parsed.video {
        match start_video(&v) {
            Ok(c) => device.video = Some(c),
            Err(e) => problems.push(format!("video: {e}")),
        }
    }
    if let Some(a) = parsed.audio {
        match start_audio(&a) {
            Ok(c) => device.audio = Some(c),
            Err(e) => problems.push(format!("audio: {e}")),
        }
    }
    if let Some(c) = parsed.console {
        match start_console(&c) {
            Ok(c) => device.console = Some(c),
            Err(e) => problems.push(format!("console: {e}")),
        }
    }
    if let Some(p) = parsed.power {
        match power::open(&p) {
            Ok(p) => device.power = Some(p),
            Err(e) => problems.push(format!("power: [{}] {e}", e.code())),
        }
    }
    if let Some(r) = parsed.remote {
        match start_remote(&r) {
            Ok(c) => device.remote = Some(c),
            Err(e) => problems.push(format!("remote: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(device)
    } else {
        Err(problems)
    }
}

#[cfg(feature = "v4l2")]
fn start_video(s: &video::VideoSettings) -> Result<video::Capture, String> {
    let wanted = s.wanted().map_err(|p| p.join("; "))?;
    video::Capture::start(video::v4l2::V4l2Node::new(&s.path), wanted).map_err(|e| e.to_string())
}

#[cfg(not(feature = "v4l2"))]
fn start_video(_: &video::VideoSettings) -> Result<video::Capture, String> {
    Err("the v4l2 driver is not built into this agent (cargo feature `v4l2`)".into())
}

#[cfg(feature = "alsa")]
fn start_audio(s: &audio::AudioSettings) -> Result<audio::Capture, String> {
    let wanted = s.wanted().map_err(|p| p.join("; "))?;
    audio::Capture::start(audio::alsa_pcm::AlsaPcm::new(&s.pcm), wanted, s.buffer_secs)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "alsa"))]
fn start_audio(_: &audio::AudioSettings) -> Result<audio::Capture, String> {
    Err("the alsa driver is not built into this agent (cargo feature `alsa`)".into())
}

#[cfg(feature = "serial")]
fn start_console(s: &serial::SerialSettings) -> Result<serial::SerialConsole, String> {
    serial::SerialConsole::start(serial::port::SystemPort::new(s.clone()), s.history_lines)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "serial"))]
fn start_console(_: &serial::SerialSettings) -> Result<serial::SerialConsole, String> {
    Err("the serial driver is not built into this agent (cargo feature `serial`)".into())
}

#[cfg(feature = "lirc")]
fn start_remote(s: &ir::remote::RemoteSettings) -> Result<ir::IrRemote, String> {
    let keys = s.key_map()?;
    let device = ir::lirc::LircDevice::open(&s.path).map_err(|e| e.to_string())?;
    let sender = ir::IrSender::new(
        Box::new(device) as Box<dyn ir::IrTransport>,
        s.send,
        s.duty_cycle,
    )
    .map_err(|e| format!("{}: {e}", s.path.display()))?;
    Ok(ir::IrRemote::new(sender, keys))
}

#[cfg(not(feature = "lirc"))]
fn start_remote(_: &ir::remote::RemoteSettings) -> Result<ir::IrRemote, String> {
    Err("the lirc driver is not built into this agent (cargo feature `lirc`)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).expect("toml")
    }

    #[test]
    fn every_settings_problem_is_reported_at_once() {
        let s = table(
            r#"
            [video]
            driver = "v4l2"
            path = "/dev/video0"
            format = "H264"
            [audio]
            driver = "pulse"
            [console]
            driver = "serial"
            path = "/dev/ttyACM0"
            baud = 7
            [touch]
            driver = "evdev"
            [remote]
            driver = "lirc"
            path = "/dev/lirc0"
            duty_cycle = 0
            [remote.keys]
            ok = "nec:0x0408"
            "#,
        );
        let problems = check(&s);
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].starts_with("touch: unknown section"));
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("remote.duty_cycle: 0"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("video.format: \"H264\""))
        );
        assert!(
            problems
                .iter()
                .any(|p| p == "audio.driver: unknown audio driver \"pulse\" (known: alsa)")
        );
        assert!(problems.iter().any(|p| p.starts_with("console.baud:")));
        assert!(check(&table("")).iter().any(|p| p.contains("at least one")));
        let unknown_key = check(&table(
            "[video]\ndriver = \"v4l2\"\npath = \"/dev/video0\"\nsize = 3",
        ));
        assert!(
            unknown_key[0].starts_with("video: unknown field `size`"),
            "{unknown_key:?}"
        );
    }

    #[cfg(feature = "lirc")]
    #[test]
    fn a_missing_lirc_node_is_a_start_error() {
        let s = table(
            "[remote]\ndriver = \"lirc\"\npath = \"/dev/labwright-test-no-lirc\"\n[remote.keys]\nok = \"nec:0x0408\"\n",
        );
        assert!(check(&s).is_empty(), "{:?}", check(&s));
        let Err(problems) = build(&s) else {
            panic!("a missing LIRC node was accepted")
        };
        assert_eq!(
            problems,
            vec![
                "remote: /dev/labwright-test-no-lirc: no such device (not plugged in, or the driver is not loaded)"
            ]
        );
        assert_eq!(capabilities(&s), vec![Capability::RemoteControl]);
    }

    #[test]
    fn capabilities_follow_the_sections() {
        let s = table(
            "[video]\ndriver = \"v4l2\"\npath = \"/dev/video0\"\n[console]\ndriver = \"serial\"\npath = \"/dev/ttyS0\"",
        );
        assert_eq!(
            capabilities(&s),
            vec![Capability::VideoCapture, Capability::Console]
        );
    }

    #[test]
    fn a_power_switch_is_a_section_of_its_own() {
        // Nothing listens on a port that was just freed: the plug is only asked when used.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let s = table(&format!(
            "[power]\ndriver = \"kasa\"\naddress = \"127.0.0.1:{port}\"\nretries = 0"
        ));
        assert_eq!(capabilities(&s), vec![Capability::Power]);
        let device = build(&s).expect("built without contacting the plug");
        let power = device.power().expect("power control");
        let e = power.state().expect_err("nobody there");
        assert!(
            e.to_string()
                .starts_with("device unavailable: power.unreachable: 127.0.0.1:"),
            "{e}"
        );
        let problems = check(&table(
            "[power]\ndriver = \"shelly2\"\naddress = \"\"\n[video]\ndriver = \"v4l2\"\npath = \"/dev/video0\"",
        ));
        assert_eq!(problems, ["power.address: must be a host or host:port"]);
        assert_eq!(
            check(&table("[power]\naddress = \"x\"")),
            ["power.driver: missing (known: gpio, tasmota, shelly1, shelly2, kasa)"]
        );
        let unknown = check(&table("[power]\ndriver = \"zigbee\""));
        assert!(
            unknown[0].starts_with("power: unknown variant `zigbee`"),
            "{unknown:?}"
        );
    }

    #[cfg(all(feature = "v4l2", feature = "alsa", feature = "serial"))]
    #[test]
    fn missing_nodes_are_all_reported_and_nothing_stays_open() {
        let s = table(
            r#"
            [video]
            driver = "v4l2"
            path = "/dev/labwright-test-no-video"
            [audio]
            driver = "alsa"
            pcm = "hw:LabwrightNoSuchCard,1,0"
            [console]
            driver = "serial"
            path = "/dev/labwright-test-no-tty"
            "#,
        );
        let problems = build(&s).err().expect("nothing there");
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].starts_with("video: /dev/labwright-test-no-video: no such device"),
            "{problems:#?}"
        );
        assert!(
            problems[1].starts_with("audio: hw:LabwrightNoSuchCard,1,0: no such card or PCM"),
            "{problems:#?}"
        );
        assert!(
            problems[2].starts_with("console: /dev/labwright-test-no-tty: no such device"),
            "{problems:#?}"
        );
    }
}
