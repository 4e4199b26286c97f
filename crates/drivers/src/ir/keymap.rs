//! Key maps: what each key of a device's remote sends, from TOML.
//!
//! ```toml
//! [keys]
//! ok = "nec:0x0408"                                  # protocol:scancode, as ir-ctl writes it
//! up = { protocol = "nec", scancode = 0x0402 }
//! power = { raw = [9000, 4500, 563], carrier = 38000 } # raw pulse/space timings in µs
//! ```
//!
//! Key names are free text (lowercase letters, digits, `_`), so a remote's colour keys, guide
//! or vendor keys have entries too; test steps press the ones core's `Key` names.

use std::{collections::BTreeMap, path::Path};

use serde::Deserialize;

use super::{Code, IrError, encode::check_raw};

/// What one key sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyCode {
    Code(Code),
    /// Raw pulse/space lengths in µs and the carrier to send them on.
    Raw {
        durations: Vec<u32>,
        carrier_hz: u32,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Text(String),
    Code {
        protocol: String,
        scancode: u64,
    },
    Raw {
        raw: Vec<u32>,
        #[serde(default = "default_carrier")]
        carrier: u32,
    },
}

fn default_carrier() -> u32 {
    38_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    keys: BTreeMap<String, toml::Value>,
}

/// Key name → what it sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyMap {
    keys: BTreeMap<String, KeyCode>,
}

impl KeyMap {
    /// Parses a key map's TOML text; every problem at once, TOML syntax errors with their line
    /// and column, others with the key's name.
    pub fn parse(text: &str) -> Result<KeyMap, IrError> {
        let file: File =
            toml::from_str(text).map_err(|e| IrError::KeyMap(e.to_string().trim().to_string()))?;
        Self::from_table(file.keys)
    }

    /// A `[keys]` table already parsed (inline in a device's settings).
    pub fn from_table(keys: BTreeMap<String, toml::Value>) -> Result<KeyMap, IrError> {
        let mut problems = Vec::new();
        let mut map = BTreeMap::new();
        for (name, value) in keys {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                problems.push(format!(
                    "keys.{name}: key names are lowercase letters, digits and _"
                ));
                continue;
            }
            match parse_entry(value) {
                Ok(code) => {
                    map.insert(name, code);
                }
                Err(e) => problems.push(format!("keys.{name}: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(KeyMap { keys: map })
        } else {
            Err(IrError::KeyMap(problems.join("; ")))
        }
    }

    pub fn load(path: &Path) -> Result<KeyMap, IrError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| IrError::KeyMap(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| match e {
            IrError::KeyMap(m) => IrError::KeyMap(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// What `key` sends, or an error naming every key of the map.
    pub fn get(&self, key: &str) -> Result<&KeyCode, IrError> {
        self.keys.get(key).ok_or_else(|| IrError::UnknownKey {
            key: key.to_string(),
            known: self.names().join(", "),
        })
    }

    pub fn names(&self) -> Vec<&str> {
        self.keys.keys().map(String::as_str).collect()
    }

    pub fn insert(&mut self, name: &str, code: KeyCode) {
        self.keys.insert(name.to_string(), code);
    }
}

fn parse_entry(value: toml::Value) -> Result<KeyCode, String> {
    let entry: Entry = value.try_into().map_err(|_| {
        "expected \"protocol:scancode\", { protocol, scancode } or { raw = [...], carrier }"
            .to_string()
    })?;
    match entry {
        Entry::Text(t) => t
            .parse::<Code>()
            .map(KeyCode::Code)
            .map_err(|e| e.to_string()),
        Entry::Code { protocol, scancode } => protocol
            .parse()
            .and_then(|p| Code::new(p, scancode))
            .map(KeyCode::Code)
            .map_err(|e| e.to_string()),
        Entry::Raw { raw, carrier } => {
            check_raw(&raw).map_err(|e| e.to_string())?;
            if !(20_000..=60_000).contains(&carrier) {
                return Err(format!("carrier {carrier} Hz: expected 20000..=60000"));
            }
            Ok(KeyCode::Raw {
                durations: raw,
                carrier_hz: carrier,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Protocol;

    #[test]
    fn every_form_of_entry_parses() {
        let map = KeyMap::parse(
            r#"
            [keys]
            ok = "nec:0x0408"
            up = { protocol = "rc5", scancode = 0x1e01 }
            red = { raw = [9000, 4500, 563], carrier = 36000 }
            "#,
        )
        .expect("key map");
        assert_eq!(map.names(), vec!["ok", "red", "up"]);
        assert_eq!(
            map.get("up"),
            Ok(&KeyCode::Code(Code {
                protocol: Protocol::Rc5,
                scancode: 0x1e01
            }))
        );
        assert!(matches!(
            map.get("red"),
            Ok(KeyCode::Raw {
                carrier_hz: 36000,
                ..
            })
        ));
        let err = map.get("guide").expect_err("unknown key");
        assert_eq!(err.code(), "ir_unknown_key");
        assert!(err.to_string().contains("known: ok, red, up"), "{err}");
    }

    #[test]
    fn bad_maps_name_every_problem() {
        let err = KeyMap::parse(
            r#"
            [keys]
            ok = "nec:0x10000"
            up = { protocol = "jvc", scancode = 1 }
            red = { raw = [9000, 4500] }
            Bad = "nec:1"
            x = 3
            "#,
        )
        .expect_err("bad map")
        .to_string();
        for key in ["keys.ok:", "keys.up:", "keys.red:", "keys.Bad:", "keys.x:"] {
            assert!(err.contains(key), "{key} missing in {err}");
        }
        let syntax = KeyMap::parse("[keys]\nok = \"nec:1\"\nup = \n").expect_err("syntax");
        assert!(syntax.to_string().contains("line 3"), "{syntax}");
        assert_eq!(syntax.code(), "ir_bad_keymap");
        assert!(KeyMap::parse("[other]\n").is_err());
    }
}
