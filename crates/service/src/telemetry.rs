//! Logging for every binary: readable text by default or JSON (one object per line, the event's
//! fields flattened beside `timestamp`, `level`, `target` and `message`), with the filter from
//! `LABWRIGHT_LOG` (`info` when unset or invalid, e.g. `info,labwright_api_server=debug`).

use serde::{Deserialize, Serialize};
use tracing_subscriber::{EnvFilter, fmt};

/// The environment variable holding the log filter.
pub const FILTER_ENV: &str = "LABWRIGHT_LOG";

/// The `log_format` setting of every binary.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    #[default]
    Text,
    /// For log shippers.
    Json,
}

/// Installs the global subscriber. A second call (tests starting several servers in one
/// process) keeps the first.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env(FILTER_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_target(true);
    let _already_set = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
