//! Plain aligned text tables.

use std::io::Write;

pub fn write(out: &mut dyn Write, headers: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in &rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    if rows.is_empty() {
        writeln!(out, "(none)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns() {
        let mut out = Vec::new();
        super::write(
            &mut out,
            &["A", "LONGER"],
            vec![vec!["xxxx".into(), "y".into()]],
        )
        .expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "A     LONGER\nxxxx  y\n"
        );
    }
}
