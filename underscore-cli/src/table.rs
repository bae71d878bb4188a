//! `_cat` tables merged from several nodes, laid out as the server lays out one.
//!
//! Each node answers `format=json`: an array of objects keyed by the displayed column names,
//! in order, with typed values. The merged table puts a `node` column first and is laid out by
//! the server's own code ([`underscore_core::cat::text_layout`]): one space between columns,
//! widths from the widest cell by display width (CJK and emoji count two; the header counts
//! only with `v`), numeric columns right-aligned (their header too), `-` for a missing value,
//! no trailing spaces, `\n` after every row. A column is numeric when every value it has is a
//! number (the server knows its columns' types; the client knows only the values).

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// One row: its node and its cells by column name.
pub type Row = (String, Map<String, Value>);

/// A parsed `s` parameter: column names (as written) and whether each sorts descending.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SortKeys(pub Vec<(String, bool)>);

impl SortKeys {
    /// Parses `col[:asc|:desc],...`; the server has already validated it when this runs.
    pub fn parse(s: &str) -> Self {
        Self(
            s.split(',')
                .filter(|k| !k.is_empty())
                .map(|k| match k.rsplit_once(':') {
                    Some((col, "desc")) => (col.to_owned(), true),
                    Some((col, "asc")) => (col.to_owned(), false),
                    _ => (k.to_owned(), false),
                })
                .collect(),
        )
    }
}

/// Compares two cells as the server does: `-`/null first, numbers as numbers, else as text.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let rank = |v: Option<&Value>| match v {
        None | Some(Value::Null) => 0,
        Some(_) => 1,
    };
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Some(x), Some(y)) if rank(a) == 1 && rank(b) == 1 => cell(x).cmp(&cell(y)),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Sorts merged rows by `keys` (stable: rows that tie keep the nodes' order).
pub fn sort(rows: &mut [Row], keys: &SortKeys) {
    rows.sort_by(|(_, a), (_, b)| {
        keys.0
            .iter()
            .map(|(col, desc)| {
                let o = compare(a.get(col), b.get(col));
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
}

/// A cell's text: strings as they are, `-` for null.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders `rows` with the columns `columns` (a `node` column first when `node_column`), a
/// header row when `header`.
pub fn render(columns: &[String], rows: &[Row], header: bool, node_column: bool) -> String {
    render_typed(columns, rows, header, node_column, &[])
}

/// [`render`], with the columns known to be numeric: they are right-aligned even when no row
/// has a value in them (from the values alone, such a column would read as text).
pub fn render_typed(
    columns: &[String],
    rows: &[Row],
    header: bool,
    node_column: bool,
    numeric_columns: &[&str],
) -> String {
    let mut names: Vec<&str> = Vec::new();
    if node_column {
        names.push("node");
    }
    names.extend(columns.iter().map(String::as_str));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|(node, cells)| {
            let mut line = Vec::new();
            if node_column {
                line.push(node.clone());
            }
            line.extend(
                columns
                    .iter()
                    .map(|c| cells.get(c).map(cell).unwrap_or_else(|| "-".to_owned())),
            );
            line
        })
        .collect();
    // The node column is text.
    let numeric: Vec<bool> = std::iter::repeat_n(false, usize::from(node_column))
        .chain(columns.iter().map(|col| {
            if numeric_columns.contains(&col.as_str()) {
                return true;
            }
            let mut values = rows.iter().filter_map(|(_, r)| r.get(col));
            let mut any = false;
            let all = values.all(|v| {
                any |= v.is_number();
                v.is_number() || v.is_null()
            });
            all && any
        }))
        .collect();
    // The server's own layout code, so both look alike (and wide characters line up).
    underscore_core::cat::text_layout(header.then_some(&names[..]), body, &numeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(node: &str, v: Value) -> Row {
        match v {
            Value::Object(m) => (node.to_owned(), m),
            _ => unreachable!("rows are objects"),
        }
    }

    fn cols(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn merged_rows_are_laid_out_like_the_server_with_a_node_column() {
        let rows = vec![
            row("a", json!({"id": "hello", "total": 48211, "preempt": null})),
            row("bb", json!({"id": "slow", "total": 7, "preempt": 503})),
        ];
        let out = render(&cols(&["id", "total", "preempt"]), &rows, true, true);
        assert_eq!(
            out,
            "node id    total preempt\n\
             a    hello 48211       -\n\
             bb   slow      7     503\n"
        );
        let out = render(&cols(&["id"]), &rows, false, true);
        assert_eq!(out, "a  hello\nbb slow\n");
    }

    #[test]
    fn text_columns_are_left_aligned_and_lines_have_no_trailing_spaces() {
        let rows = vec![
            row("a", json!({"doc": "x", "ok": true})),
            row("a", json!({"doc": "longer", "ok": false})),
        ];
        assert_eq!(
            render(&cols(&["ok", "doc"]), &rows, false, false),
            "true  x\nfalse longer\n"
        );
    }

    #[test]
    fn wide_characters_line_up_by_display_width() {
        use ratatui::text::Line;
        let rows = vec![
            row(
                "app-1",
                json!({"id": "你好世界", "reason": "🔥 on fire", "total": 7}),
            ),
            row(
                "app-2",
                json!({"id": "hello", "reason": "calm", "total": 12345}),
            ),
            row("日本", json!({"id": "x", "reason": "🚧🚧", "total": null})),
        ];
        let out = render(&cols(&["id", "reason", "total"]), &rows, true, true);
        // The last column is right-aligned: every row, header included, is as wide.
        let widths: Vec<usize> = out.lines().map(|l| Line::from(l).width()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{widths:?}\n{out}");
        assert_eq!(
            out,
            "node  id       reason     total\n\
             app-1 你好世界 🔥 on fire     7\n\
             app-2 hello    calm       12345\n\
             日本  x        🚧🚧           -\n"
        );
    }

    #[test]
    fn sorting_is_typed_stable_and_puts_missing_values_first() {
        let mut rows = vec![
            row("a", json!({"id": "x", "n": 10})),
            row("b", json!({"id": "y", "n": 9})),
            row("a", json!({"id": "z", "n": null})),
            row("b", json!({"id": "w", "n": 10})),
        ];
        sort(&mut rows, &SortKeys::parse("n"));
        let ids: Vec<_> = rows.iter().map(|(_, r)| cell(&r["id"])).collect();
        assert_eq!(ids, ["z", "y", "x", "w"]);
        sort(&mut rows, &SortKeys::parse("n:desc,id:asc"));
        let ids: Vec<_> = rows.iter().map(|(_, r)| cell(&r["id"])).collect();
        assert_eq!(ids, ["w", "x", "y", "z"]);
    }
}
