//! The box's IR receiver: raw pulses from a LIRC node, decoded by the drivers' decoders, named
//! through a key map (the file the agent's remote sends from), pressed on the box. Repeat frames
//! of a held key are not new presses (the box has no long-press actions); codes the key map does
//! not name, keys core does not know and undecodable timings are ignored, as a real box ignores
//! another remote.

use std::{collections::HashMap, path::Path, str::FromStr, thread, time::Duration};

use labwright_core::controller::{Key, RemoteControl};
use labwright_drivers::ir::{Code, IrReceiver, KeyCode, KeyMap, Received, lirc::LircDevice};

use super::{REOPEN, WiredError};

/// Which key each code of a key map is.
#[derive(Debug, Default)]
pub struct KeyNames {
    keys: HashMap<Code, Key>,
}

impl KeyNames {
    /// The keys of `map` that core knows, by their code (raw-timing keys are not received).
    pub fn of(map: &KeyMap) -> KeyNames {
        let mut keys = HashMap::new();
        for name in map.names() {
            if let (Ok(KeyCode::Code(code)), Ok(key)) = (map.get(name), Key::from_str(name)) {
                keys.insert(*code, key);
            }
        }
        KeyNames { keys }
    }

    /// The key a received frame presses (`None`: a repeat, or not one of ours).
    pub fn press(&self, received: &Received) -> Option<Key> {
        match received {
            Received::Code {
                code,
                repeat: false,
                ..
            } => self.keys.get(code).copied(),
            _ => None,
        }
    }
}

pub struct KeyReceiver {
    path: std::path::PathBuf,
    receiver: IrReceiver<LircDevice>,
    names: KeyNames,
}

fn open_receiver(path: &Path) -> Result<IrReceiver<LircDevice>, WiredError> {
    let fail = |e: labwright_drivers::ir::IrError| {
        WiredError::Ir(format!("{}: [{}] {e}", path.display(), e.code()))
    };
    IrReceiver::new(LircDevice::open(path).map_err(fail)?).map_err(fail)
}

impl KeyReceiver {
    pub fn open(lirc: &Path, keymap: &Path) -> Result<KeyReceiver, WiredError> {
        let map = KeyMap::load(keymap).map_err(|e| WiredError::KeyMap(e.to_string()))?;
        let names = KeyNames::of(&map);
        if names.keys.is_empty() {
            return Err(WiredError::KeyMap(format!(
                "{}: names none of the box's keys ({})",
                keymap.display(),
                Key::names().join(", ")
            )));
        }
        Ok(KeyReceiver {
            path: lirc.to_path_buf(),
            receiver: open_receiver(lirc)?,
            names,
        })
    }

    /// Receives and presses forever; a failed node is reopened.
    pub fn run(mut self, remote: &dyn RemoteControl) {
        loop {
            match self.receiver.next(Duration::from_millis(500)) {
                Ok(Some(received)) => match self.names.press(&received) {
                    Some(key) => {
                        tracing::debug!(%key, "IR key received");
                        if let Err(e) = remote.press(key) {
                            tracing::warn!(%key, error = %e, "the box refused a key");
                        }
                    }
                    None => tracing::debug!(?received, "IR frame ignored"),
                },
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "IR receive failed");
                    thread::sleep(REOPEN);
                    match open_receiver(&self.path) {
                        Ok(r) => self.receiver = r,
                        Err(e) => tracing::warn!(error = %e, "IR receiver not back yet"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use labwright_drivers::ir::Protocol;

    use super::*;

    #[test]
    fn codes_of_the_key_map_press_their_keys_and_repeats_do_not() {
        let map = KeyMap::parse(
            "[keys]\nok = \"nec:0x408\"\nch_up = { protocol = \"rc6_0\", scancode = 0x800c }\n\
             red = \"nec:0x409\"\n7 = \"sony12:0x10015\"\npower = { raw = [9000, 4500, 563] }\n",
        )
        .expect("key map");
        let names = KeyNames::of(&map);
        let code = |p, s| Code::new(p, s).expect("code");
        let press = |c: Code, repeat| {
            names.press(&Received::Code {
                code: c,
                toggle: false,
                repeat,
            })
        };
        assert_eq!(press(code(Protocol::Nec, 0x408), false), Some(Key::Ok));
        assert_eq!(
            press(code(Protocol::Rc6Mode0, 0x800c), false),
            Some(Key::ChannelUp)
        );
        assert_eq!(
            press(code(Protocol::Sony12, 0x10015), false),
            Some(Key::Digit(7))
        );
        // A held RC-6 key (same toggle) is one press.
        assert_eq!(press(code(Protocol::Rc6Mode0, 0x800c), true), None);
        // `red` is no key of the box; another remote's code; NEC repeat codes; raw timings.
        assert_eq!(press(code(Protocol::Nec, 0x409), false), None);
        assert_eq!(press(code(Protocol::Nec, 0x1), false), None);
        assert_eq!(
            names.press(&Received::Repeat {
                of: Some(code(Protocol::Nec, 0x408))
            }),
            None
        );
        assert_eq!(names.press(&Received::Raw(vec![9000, 4500, 563])), None);
    }
}
