//! How results are shown: the output streams of one command, table cells from typed views,
//! the paging footer and `--json` (the server's answer as it came, pretty-printed).

use std::io::Write;

use labwright_wire::rest::Page;
use serde::Serialize;
use serde_json::Value;

/// Output streams and mode of one command.
pub(crate) struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub json: bool,
}

/// A value as a table cell, the way it reads in the JSON: strings bare, absent as `-`.
pub(crate) fn cell<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(Value::Null) | Err(_) => "-".into(),
        Ok(other) => other.to_string(),
    }
}

/// A list as one cell: comma-separated, `-` when empty.
pub(crate) fn join(parts: &[String]) -> String {
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

/// Says how to see more when a page holds fewer items than matched.
pub(crate) fn footer<T>(out: &mut dyn Write, page: &Page<T>) -> anyhow::Result<()> {
    let shown = page.items.len() as i64;
    if page.total > shown {
        writeln!(
            out,
            "({shown} of {} shown, from offset {}; use --limit/--offset)",
            page.total, page.offset
        )?;
    }
    Ok(())
}

pub(crate) fn print_json(out: &mut dyn Write, v: &Value) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

/// `GET path?query` of a listing: the answer as it came with `--json`, otherwise a table with
/// one `row` per item and the page's footer.
pub(crate) fn list_page<T: serde::de::DeserializeOwned>(
    client: &crate::Client,
    out: &mut dyn Write,
    json: bool,
    (path, query): (&str, &[(&'static str, String)]),
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    let answer = client.get(path, query)?;
    if json {
        return print_json(out, &answer);
    }
    let page: Page<T> = crate::client::decode(&answer)?;
    let rows = page.items.iter().map(row).collect();
    crate::table::write(out, headers, rows)?;
    footer(out, &page)
}
