//! `host-agent discover`: what is attached to this host (V4L2 capture nodes with their formats,
//! ALSA capture PCMs, serial ports), printed as a configuration a lab owner can paste: a
//! commented inventory and one `composite` device using the first of each, by stable path
//! where the system offers one (`/dev/v4l/by-id`, `/dev/serial/by-id`).

use std::fmt::Write as _;

/// A capture node and what it offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoNode {
    /// The stable path when there is one, else `/dev/videoN`.
    pub path: String,
    pub offers: Vec<String>,
}

/// A capture PCM: its ALSA name and a description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturePcm {
    pub pcm: String,
    pub description: String,
}

/// Everything found; problems (a node that could not be opened) are listed, not fatal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    pub video: Vec<VideoNode>,
    pub audio: Vec<CapturePcm>,
    pub serial: Vec<String>,
    pub problems: Vec<String>,
}

/// Looks at the devices of this host.
pub fn discover() -> Discovery {
    let mut d = Discovery::default();
    video(&mut d);
    let cards = std::fs::read_to_string("/proc/asound/cards").unwrap_or_default();
    let pcms = std::fs::read_to_string("/proc/asound/pcm").unwrap_or_default();
    d.audio = capture_pcms(&cards, &pcms);
    serial(&mut d);
    d
}

/// Paths in `dir` (symlinks to device nodes) by the node they point to.
fn stable_names(dir: &str) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let link = e.path();
            let target = std::fs::canonicalize(&link).ok()?;
            Some((
                target.to_string_lossy().into_owned(),
                link.to_string_lossy().into_owned(),
            ))
        })
        .collect();
    out.sort();
    out
}

fn dev_nodes(prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir("/dev")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .map(|n| format!("/dev/{n}"))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|p| (p.len(), p.clone()));
    out
}

fn stable_or(node: &str, stable: &[(String, String)]) -> String {
    stable
        .iter()
        .find(|(target, _)| target == node)
        .map_or_else(|| node.to_string(), |(_, link)| link.clone())
}

#[cfg(feature = "v4l2")]
fn video(d: &mut Discovery) {
    use crate::video::{VideoDevice, v4l2::V4l2Node};
    let stable = stable_names("/dev/v4l/by-id");
    for node in dev_nodes("video") {
        let mut n = V4l2Node::new(node.clone());
        if let Err(e) = n.open() {
            // Metadata and output nodes are not capture nodes: not worth a problem line.
            if !matches!(e, crate::NodeProblem::Other { .. }) {
                d.problems.push(e.to_string());
            }
            continue;
        }
        match n.offers() {
            Ok(offers) => d.video.push(VideoNode {
                path: stable_or(&node, &stable),
                offers: offers.iter().map(ToString::to_string).collect(),
            }),
            Err(e) => d.problems.push(e.to_string()),
        }
        n.close();
    }
}

#[cfg(not(feature = "v4l2"))]
fn video(d: &mut Discovery) {
    d.problems
        .push("video: the v4l2 driver is not built into this agent".into());
}

/// Capture PCMs from `/proc/asound/cards` (card ids) and `/proc/asound/pcm` (devices).
pub fn capture_pcms(cards: &str, pcms: &str) -> Vec<CapturePcm> {
    // ` 0 [Loopback       ]: Loopback - Loopback`
    let ids: Vec<(u32, String)> = cards
        .lines()
        .filter_map(|l| {
            let (num, rest) = l.trim_start().split_once(' ')?;
            let id = rest
                .trim_start()
                .strip_prefix('[')?
                .split(']')
                .next()?
                .trim();
            Some((num.parse().ok()?, id.to_string()))
        })
        .collect();
    // `00-01: Loopback PCM : Loopback PCM : playback 8 : capture 8`
    pcms.lines()
        .filter(|l| l.contains("capture"))
        .filter_map(|l| {
            let (numbers, rest) = l.split_once(':')?;
            let (card, device) = numbers.trim().split_once('-')?;
            let (card, device): (u32, u32) = (card.parse().ok()?, device.parse().ok()?);
            let id = ids.iter().find(|(n, _)| *n == card)?.1.clone();
            let description = rest
                .split(':')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            Some(CapturePcm {
                pcm: format!("hw:{id},{device},0"),
                description,
            })
        })
        .collect()
}

#[cfg(feature = "serial")]
fn serial(d: &mut Discovery) {
    let stable = stable_names("/dev/serial/by-id");
    match serialport::available_ports() {
        Ok(ports) => {
            let mut names: Vec<String> = ports
                .into_iter()
                .map(|p| stable_or(&p.port_name, &stable))
                .collect();
            names.sort();
            d.serial = names;
        }
        Err(e) => d.problems.push(format!("serial ports: {e}")),
    }
    if d.serial.is_empty() {
        // Without udev (a container, the rig's guest), list the usual USB serial nodes.
        for prefix in ["ttyACM", "ttyUSB"] {
            d.serial.extend(dev_nodes(prefix));
        }
    }
}

#[cfg(not(feature = "serial"))]
fn serial(d: &mut Discovery) {
    d.problems
        .push("serial: the serial driver is not built into this agent".into());
}

impl Discovery {
    /// The inventory as TOML comments, then a pasteable composite device.
    pub fn to_config(&self) -> String {
        let mut out = String::from("# Found by `host-agent discover`.\n");
        let section = |out: &mut String, title: &str, items: Vec<String>| {
            let _ = writeln!(out, "#\n# {title}:");
            if items.is_empty() {
                out.push_str("#   none\n");
            }
            for i in items {
                let _ = writeln!(out, "#   {i}");
            }
        };
        section(
            &mut out,
            "V4L2 capture nodes",
            self.video
                .iter()
                .map(|v| format!("{}: {}", v.path, v.offers.join("; ")))
                .collect(),
        );
        section(
            &mut out,
            "ALSA capture PCMs",
            self.audio
                .iter()
                .map(|a| format!("{} ({})", a.pcm, a.description))
                .collect(),
        );
        section(&mut out, "serial ports", self.serial.clone());
        if !self.problems.is_empty() {
            section(&mut out, "problems", self.problems.clone());
        }
        if self.video.is_empty() && self.audio.is_empty() && self.serial.is_empty() {
            return out;
        }
        out.push_str(
            "\n[[devices]]\nid = \"device-1\"\nname = \"Device 1\"\nmodel = \"unknown\"\ndriver = \"composite\"\n",
        );
        if let Some(v) = self.video.first() {
            let _ = write!(
                out,
                "\n[devices.settings.video]\ndriver = \"v4l2\"\npath = {:?}\n",
                v.path
            );
        }
        if let Some(a) = self.audio.first() {
            let _ = write!(
                out,
                "\n[devices.settings.audio]\ndriver = \"alsa\"\npcm = {:?}\n",
                a.pcm
            );
        }
        if let Some(s) = self.serial.first() {
            let _ = write!(
                out,
                "\n[devices.settings.console]\ndriver = \"serial\"\npath = {:?}\nbaud = 115200\n",
                s
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_pcms_come_from_proc_asound() {
        let cards = " 0 [PCH            ]: HDA-Intel - HDA Intel PCH\n                      HDA Intel PCH at 0xf7f10000 irq 33\n 1 [Loopback       ]: Loopback - Loopback\n                      Loopback 1\n";
        let pcms = "00-00: ALC3232 Analog : ALC3232 Analog : playback 1 : capture 1\n00-03: HDMI 0 : HDMI 0 : playback 1\n01-00: Loopback PCM : Loopback PCM : playback 8 : capture 8\n01-01: Loopback PCM : Loopback PCM : playback 8 : capture 8\n";
        let found = capture_pcms(cards, pcms);
        let names: Vec<&str> = found.iter().map(|p| p.pcm.as_str()).collect();
        assert_eq!(
            names,
            vec!["hw:PCH,0,0", "hw:Loopback,0,0", "hw:Loopback,1,0"]
        );
        assert_eq!(found[0].description, "ALC3232 Analog");
        assert!(capture_pcms("", "garbage\n: capture").is_empty());
    }

    #[test]
    fn the_config_lists_everything_and_composes_the_first_of_each() {
        let d = Discovery {
            video: vec![VideoNode {
                path: "/dev/v4l/by-id/usb-X-video-index0".into(),
                offers: vec!["MJPG 1920x1080 at 30 fps".into()],
            }],
            audio: vec![CapturePcm {
                pcm: "hw:Loopback,1,0".into(),
                description: "Loopback PCM".into(),
            }],
            serial: vec!["/dev/ttyACM0".into()],
            problems: vec!["/dev/video1: permission denied".into()],
        };
        let text = d.to_config();
        assert!(text.contains("#   /dev/v4l/by-id/usb-X-video-index0: MJPG 1920x1080 at 30 fps"));
        assert!(text.contains("#   /dev/video1: permission denied"));
        // The device part parses as the host-agent's device table would.
        let config: toml::Table = toml::from_str(&text).expect("valid TOML");
        let device = &config["devices"][0];
        assert_eq!(device["driver"].as_str(), Some("composite"));
        let settings = device["settings"].as_table().expect("settings");
        assert!(crate::composite::check(settings).is_empty(), "{text}");
        assert_eq!(settings["audio"]["pcm"].as_str(), Some("hw:Loopback,1,0"));
        assert!(!Discovery::default().to_config().contains("[[devices]]"));
    }
}
