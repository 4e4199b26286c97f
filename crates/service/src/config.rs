//! One configuration loader for every binary: a TOML file (or the defaults when there is none)
//! with `LABWRIGHT_*` environment overrides, into a typed struct.
//!
//! The environment names are derived from the struct, not listed by hand: the defaults
//! (`T::default()`) are serialised to a TOML table, and each key of it is overridden by
//! `LABWRIGHT_<KEY IN UPPER CASE>`; a key of a nested table by `LABWRIGHT_<TABLE>__<KEY>` (two
//! underscores), e.g. `LABWRIGHT_BUILD_IMAGES__PYTHON`. A value is read by the type of the
//! default: `true`/`false` only for booleans, an integer, a float, or the text as is for strings
//! (also for addresses, paths and URLs, which the struct then parses). Lists and tables as a whole
//! are set in the file only. Keys whose default is absent (an `Option` that is `None`) are not in
//! the serialised defaults; a struct names them in [`Settings::OPTIONAL_KEYS`] and they are read
//! as strings.
//!
//! `LABWRIGHT_*` variables that name no key of this struct are ignored: the environment is shared
//! by several programs (the other binaries, the CLI, scripts and tests all use the prefix).
//!
//! Unknown keys in the file are errors (the structs keep `#[serde(deny_unknown_fields)]`), and
//! every problem is reported at once: each file key and each variable is tried on its own so one
//! bad value does not hide the next, then the struct's own [`Settings::check`] runs.

use std::{fmt::Debug, path::Path};

use serde::{Serialize, de::DeserializeOwned};
use toml::{Table, Value};

/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "LABWRIGHT_";
/// Separates a nested table's name from its key in an environment name.
pub const NESTED_SEPARATOR: &str = "__";

/// A binary's configuration struct.
pub trait Settings: Serialize + DeserializeOwned + Default {
    /// Top-level keys that are absent from the serialised defaults (`Option` fields that default
    /// to `None`), overridable from the environment as strings.
    const OPTIONAL_KEYS: &'static [&'static str] = &[];

    /// Fills settings whose default is found at start (a name from `/etc/hostname`), after the
    /// file and the environment are applied and before [`Settings::check`].
    fn complete(&mut self) {}

    /// Every problem with the values, one message each, starting with the key (`key: …`).
    fn check(&self) -> Vec<String> {
        Vec::new()
    }

    /// Reads the optional TOML file, then applies `LABWRIGHT_*` variables from `env`: [`load`].
    fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        load(path, env)
    }
}

/// Every configuration problem found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

/// Reads the optional TOML file at `path` (defaults when `None`), then applies the `LABWRIGHT_*`
/// variables of `env` (pass `std::env::vars()`), completes and checks the result.
pub fn load<T: Settings>(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let defaults = Table::try_from(T::default())
        .map_err(|e| ConfigError(vec![format!("defaults do not serialise: {e}")]))?;
    let mut errors = Vec::new();
    let mut merged = defaults.clone();
    let mut file_ok = true;
    if let Some(path) = path {
        match read_table(path) {
            Ok(file) => {
                for (key, value) in file {
                    let mut trial = defaults.clone();
                    trial.insert(key.clone(), value.clone());
                    match trial.try_into::<T>() {
                        Ok(_) => {
                            merged.insert(key, value);
                        }
                        Err(e) => {
                            errors.push(format!("{}: {key}: {}", path.display(), e.message()))
                        }
                    }
                }
            }
            Err(e) => {
                errors.push(e);
                file_ok = false;
            }
        }
    }
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let keys: Vec<String> = rest
            .to_ascii_lowercase()
            .split(NESTED_SEPARATOR)
            .map(str::to_string)
            .collect();
        let value = match lookup(&defaults, &keys) {
            Some(default) => match parse_like(default, &raw) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(format!("{name}: {e}"));
                    continue;
                }
            },
            None if keys.len() == 1 && T::OPTIONAL_KEYS.contains(&keys[0].as_str()) => {
                Value::String(raw)
            }
            // Another program's variable (or `LABWRIGHT_LOG`, `LABWRIGHT_CONFIG`).
            None => continue,
        };
        let mut trial = defaults.clone();
        set(&mut trial, &keys, value.clone());
        match trial.try_into::<T>() {
            Ok(_) => set(&mut merged, &keys, value),
            Err(e) => errors.push(format!("{name}: {}", e.message())),
        }
    }
    let mut config: T = match merged.try_into() {
        Ok(c) => c,
        Err(e) => {
            errors.push(e.message().to_string());
            return Err(ConfigError(errors));
        }
    };
    config.complete();
    if file_ok {
        errors.extend(config.check());
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError(errors))
    }
}

/// This machine's name from `/etc/hostname`, trimmed; `None` when it cannot be read.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Test helper for each binary's committed example config: the file at `path` parses strictly
/// and, apart from the top-level keys in `set_on_purpose` (an example host name, its devices),
/// equals `T::default()`. Panics with every difference otherwise.
pub fn assert_example_is_default<T: Settings + PartialEq + Debug>(
    path: &Path,
    set_on_purpose: &[&str],
) {
    let mut table = match read_table(path) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    for key in set_on_purpose {
        assert!(
            table.remove(*key).is_some(),
            "{}: {key} is not set, yet listed as set on purpose",
            path.display()
        );
    }
    let example: T = match table.try_into() {
        Ok(c) => c,
        Err(e) => panic!("{}: {}", path.display(), e.message()),
    };
    assert_eq!(
        example,
        T::default(),
        "{} differs from the defaults",
        path.display()
    );
}

fn read_table(path: &Path) -> Result<Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.parse::<Table>()
        .map_err(|e| format!("{}: {}", path.display(), e.message()))
}

fn lookup<'a>(table: &'a Table, keys: &[String]) -> Option<&'a Value> {
    let (first, rest) = keys.split_first()?;
    let value = table.get(first)?;
    if rest.is_empty() {
        Some(value)
    } else {
        lookup(value.as_table()?, rest)
    }
}

fn set(table: &mut Table, keys: &[String], value: Value) {
    match keys {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            if !entry.is_table() {
                *entry = Value::Table(Table::new());
            }
            if let Value::Table(inner) = entry {
                set(inner, rest, value);
            }
        }
    }
}

/// `raw` read as a value of the same type as `default`.
fn parse_like(default: &Value, raw: &str) -> Result<Value, String> {
    match default {
        Value::String(_) => Ok(Value::String(raw.to_string())),
        Value::Integer(_) => raw
            .trim()
            .parse()
            .map(Value::Integer)
            .map_err(|_| format!("expected an integer, got {raw:?}")),
        Value::Float(_) => raw
            .trim()
            .parse()
            .map(Value::Float)
            .map_err(|_| format!("expected a number, got {raw:?}")),
        Value::Boolean(_) => match raw {
            "true" => Ok(Value::Boolean(true)),
            "false" => Ok(Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {raw:?}")),
        },
        Value::Array(_) => Err("a list: set it in the config file".into()),
        Value::Table(_) => Err("a table: set its keys one by one (TABLE__KEY)".into()),
        Value::Datetime(_) => Err("a date: set it in the config file".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        name: String,
        port: u16,
        ratio: f64,
        enabled: bool,
        token: Option<String>,
        list: Vec<String>,
        inner: Inner,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        image: String,
        depth: u32,
    }

    impl Default for Inner {
        fn default() -> Self {
            Self {
                image: "base".into(),
                depth: 1,
            }
        }
    }

    impl Default for Sample {
        fn default() -> Self {
            Self {
                name: "lab".into(),
                port: 8080,
                ratio: 1.5,
                enabled: false,
                token: None,
                list: vec!["a".into()],
                inner: Inner::default(),
            }
        }
    }

    impl Settings for Sample {
        const OPTIONAL_KEYS: &'static [&'static str] = &["token"];

        fn check(&self) -> Vec<String> {
            if self.port < 1024 {
                vec!["port: must be at least 1024".into()]
            } else {
                Vec::new()
            }
        }
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lw-service-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn no_file_and_no_environment_is_the_defaults() {
        let c: Sample = load(None, []).expect("defaults");
        assert_eq!(c, Sample::default());
    }

    #[test]
    fn every_type_is_overridden_from_the_environment() {
        let c: Sample = load(
            None,
            env(&[
                ("LABWRIGHT_NAME", "bench"),
                ("LABWRIGHT_PORT", "9000"),
                ("LABWRIGHT_RATIO", "0.25"),
                ("LABWRIGHT_ENABLED", "true"),
                ("LABWRIGHT_TOKEN", "secret"),
                ("LABWRIGHT_INNER__IMAGE", "debian"),
                ("LABWRIGHT_INNER__DEPTH", "3"),
            ]),
        )
        .expect("valid");
        assert_eq!(
            c,
            Sample {
                name: "bench".into(),
                port: 9000,
                ratio: 0.25,
                enabled: true,
                token: Some("secret".into()),
                list: vec!["a".into()],
                inner: Inner {
                    image: "debian".into(),
                    depth: 3
                },
            }
        );
    }

    #[test]
    fn the_environment_overrides_the_file_and_keeps_its_nested_keys() {
        let p = file(
            "nested.toml",
            "port = 9100\n[inner]\nimage = \"alpine\"\ndepth = 7\n",
        );
        let c: Sample = load(Some(&p), env(&[("LABWRIGHT_INNER__DEPTH", "8")])).expect("valid");
        assert_eq!(c.port, 9100);
        assert_eq!(c.inner.image, "alpine");
        assert_eq!(c.inner.depth, 8);
    }

    #[test]
    fn booleans_are_strict() {
        for bad in ["yes", "1", "TRUE", ""] {
            let err =
                load::<Sample>(None, env(&[("LABWRIGHT_ENABLED", bad)])).expect_err("not a bool");
            assert_eq!(err.0.len(), 1, "{err}");
            assert!(err.0[0].starts_with("LABWRIGHT_ENABLED: "), "{err}");
        }
        let c: Sample = load(None, env(&[("LABWRIGHT_ENABLED", "false")])).expect("false");
        assert!(!c.enabled);
    }

    #[test]
    fn unknown_variables_are_ignored_but_lists_and_tables_are_refused() {
        let c: Sample = load(
            None,
            env(&[
                ("LABWRIGHT_SOMETHING_ELSE", "x"),
                ("LABWRIGHT_INNER__NOPE", "x"),
                ("LABWRIGHT_LOG", "debug"),
                ("PORT", "1"),
            ]),
        )
        .expect("ignored");
        assert_eq!(c, Sample::default());
        let err = load::<Sample>(
            None,
            env(&[("LABWRIGHT_LIST", "a,b"), ("LABWRIGHT_INNER", "x")]),
        )
        .expect_err("refused");
        assert_eq!(err.0.len(), 2, "{err}");
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let p = file("unknown.toml", "nmae = \"x\"\n");
        let err = load::<Sample>(Some(&p), []).expect_err("unknown key");
        assert!(err.to_string().contains("unknown field `nmae`"), "{err}");
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let p = file(
            "bad.toml",
            "nmae = \"x\"\nratio = \"high\"\nport = 100\n[inner]\ndepth = -1\n",
        );
        let err = load::<Sample>(
            Some(&p),
            env(&[
                ("LABWRIGHT_ENABLED", "on"),
                ("LABWRIGHT_INNER__DEPTH", "deep"),
                ("LABWRIGHT_NAME", "fine"),
            ]),
        )
        .expect_err("invalid");
        let text = err.to_string();
        // Three file keys, two variables, and the check on what remains (port 100).
        assert_eq!(err.0.len(), 6, "{text}");
        for needle in [
            "nmae",
            "ratio",
            "inner",
            "LABWRIGHT_ENABLED",
            "LABWRIGHT_INNER__DEPTH",
            "port: must be at least 1024",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn a_missing_or_broken_file_is_reported_with_the_environment_errors() {
        let err = load::<Sample>(
            Some(Path::new("/nonexistent/labwright.toml")),
            env(&[("LABWRIGHT_PORT", "many")]),
        )
        .expect_err("missing");
        assert_eq!(err.0.len(), 2, "{err}");
        let p = file("broken.toml", "port = \n");
        let err = load::<Sample>(Some(&p), []).expect_err("syntax");
        assert!(err.0[0].contains("broken.toml"), "{err}");
    }

    #[test]
    fn an_example_equal_to_the_defaults_passes_the_helper() {
        let p = file(
            "example.toml",
            "name = \"lab\"\nport = 8080\nratio = 1.5\nenabled = false\nlist = [\"a\"]\ntoken = \"t\"\n[inner]\nimage = \"base\"\ndepth = 1\n",
        );
        assert_example_is_default::<Sample>(&p, &["token"]);
    }

    #[test]
    #[should_panic(expected = "differs from the defaults")]
    fn an_example_that_drifted_fails_the_helper() {
        let p = file("drifted.toml", "port = 8081\n");
        assert_example_is_default::<Sample>(&p, &[]);
    }
}
