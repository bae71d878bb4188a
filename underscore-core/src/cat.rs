//! `_cat` tables: column selection (`h`), sorting (`s`), `help`, and the text, JSON and YAML
//! renderings, with Elasticsearch's exact text layout.

use std::cmp::Ordering;

use comfy_table::{presets, CellAlignment, ColumnConstraint, ContentArrangement, Table};
use serde_json::{Map, Value};

use crate::params::{split_list, Format, Query};
use crate::render::document;
pub use crate::render::Rendered;
use crate::{glob, ApiError};

/// One column of a `_cat` table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The column's name, e.g. `stats.req.total`.
    pub name: &'static str,
    /// Short names accepted in `h` and `s`.
    pub aliases: &'static [&'static str],
    /// What the column shows, for `help`.
    pub description: &'static str,
    /// Shown when `h` is not given.
    pub default: bool,
    /// Numeric columns are right-aligned, header included.
    pub numeric: bool,
}

impl Column {
    /// A text column, shown when `h` is not given.
    pub const fn text(
        name: &'static str,
        aliases: &'static [&'static str],
        description: &'static str,
    ) -> Self {
        Self {
            name,
            aliases,
            description,
            default: true,
            numeric: false,
        }
    }

    /// A numeric column (right-aligned), shown when `h` is not given.
    pub const fn number(
        name: &'static str,
        aliases: &'static [&'static str],
        description: &'static str,
    ) -> Self {
        Self {
            numeric: true,
            ..Self::text(name, aliases, description)
        }
    }

    /// The same column, shown only when `h` asks for it.
    #[must_use]
    pub const fn hidden(self) -> Self {
        Self {
            default: false,
            ..self
        }
    }
}

/// A typed cell value: sorting compares numbers as numbers, JSON keeps the type.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value: `-` in text, `null` in JSON.
    Null,
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A floating-point number; a non-finite one is treated as [`Cell::Null`].
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A human-readable value (`1.2s`) that sorts by a number (its seconds): text in every
    /// format, as Elasticsearch writes such values.
    Human {
        /// What is shown.
        text: String,
        /// What sorting compares.
        key: f64,
    },
}

impl Cell {
    /// A duration as Elasticsearch writes it for humans (`1.2s`), sorting by its length.
    pub fn duration(d: std::time::Duration) -> Self {
        Cell::Human {
            text: crate::time_value::human(d),
            key: d.as_secs_f64(),
        }
    }

    fn text(&self) -> String {
        match self {
            Cell::Null => "-".to_owned(),
            Cell::Str(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Float(f) if f.is_finite() => f.to_string(),
            Cell::Float(_) => "-".to_owned(),
            Cell::Bool(b) => b.to_string(),
            Cell::Human { text, .. } => text.clone(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Str(s) => Value::String(s.clone()),
            Cell::Int(n) => Value::from(*n),
            // `from_f64` is `None` for NaN and infinities: never emit invalid JSON.
            Cell::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Human { text, .. } => Value::String(text.clone()),
        }
    }

    /// Typed comparison: null first, numbers numerically, then strings, then booleans.
    pub(crate) fn compare(&self, other: &Cell) -> Ordering {
        fn rank(cell: &Cell) -> (u8, f64) {
            match cell {
                Cell::Null => (0, 0.0),
                Cell::Float(f) if !f.is_finite() => (0, 0.0),
                Cell::Int(n) => (1, *n as f64),
                Cell::Float(f) => (1, *f),
                Cell::Human { key, .. } => (1, *key),
                Cell::Str(_) => (2, 0.0),
                Cell::Bool(_) => (3, 0.0),
            }
        }
        match (self, other) {
            (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
            (Cell::Str(a), Cell::Str(b)) => a.cmp(b),
            (Cell::Bool(a), Cell::Bool(b)) => a.cmp(b),
            _ => {
                let (ra, va) = rank(self);
                let (rb, vb) = rank(other);
                ra.cmp(&rb).then(va.total_cmp(&vb))
            }
        }
    }
}

/// The parsed `_cat` parameters of one request.
#[derive(Debug, Clone)]
pub struct CatParams {
    /// `v`: print a header row.
    pub verbose: bool,
    /// `help`: describe the columns instead of listing rows.
    pub help: bool,
    /// `h`: the requested columns, as given.
    pub headers: Option<String>,
    /// `s`: the sort keys, as given.
    pub sort: Option<String>,
    /// `format`.
    pub format: Format,
    /// `pretty`, for JSON.
    pub pretty: bool,
    /// `filter_path`, for JSON and YAML.
    pub filter_path: Option<String>,
}

impl CatParams {
    /// Takes the `_cat` parameters out of `query`, and rejects whatever else it holds.
    ///
    /// # Errors
    ///
    /// A 400 for a malformed boolean or format, or for a parameter of no `_cat` API
    /// (`path` names the request in the message).
    pub fn take(mut query: Query, path: &str) -> Result<Self, ApiError> {
        let params = Self {
            verbose: query.take_bool("v")?,
            help: query.take_bool("help")?,
            headers: query.take("h"),
            sort: query.take("s"),
            format: query.take_format(Format::Text)?,
            pretty: query.take_bool("pretty")?,
            filter_path: query.take("filter_path"),
        };
        query.finish(path)?;
        Ok(params)
    }
}

/// Renders `rows` (each in `columns` order) as the `_cat` parameters ask.
///
/// # Errors
///
/// A 400 for an unknown column or sort key, or a malformed list; the reason names the offending
/// item and, for columns, lists the valid ones.
pub fn render(
    columns: &[Column],
    mut rows: Vec<Vec<Cell>>,
    params: &CatParams,
) -> Result<Rendered, ApiError> {
    debug_assert!(
        rows.iter().all(|row| row.len() == columns.len()),
        "every row has one cell per column"
    );
    let display = select_columns(columns, params.headers.as_deref())?;
    let sort = sort_keys(columns, "s", params.sort.as_deref())?;
    if params.help {
        return Ok(Rendered::text(help(columns)));
    }
    if !sort.is_empty() {
        // A stable sort keeps the natural order among equal keys, as Elasticsearch does.
        rows.sort_by(|a, b| {
            sort.iter()
                .map(|&(idx, desc)| {
                    let ord = a[idx].compare(&b[idx]);
                    if desc {
                        ord.reverse()
                    } else {
                        ord
                    }
                })
                .find(|ord| ord.is_ne())
                .unwrap_or(Ordering::Equal)
        });
    }
    match params.format {
        Format::Text => Ok(Rendered::text(text_table(
            columns,
            &display,
            &rows,
            params.verbose,
        ))),
        Format::Json | Format::Yaml => {
            let array: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let object: Map<String, Value> = display
                        .iter()
                        .map(|(idx, name)| (name.clone(), row[*idx].json()))
                        .collect();
                    Value::Object(object)
                })
                .collect();
            document(
                Value::Array(array),
                params.format,
                params.pretty,
                params.filter_path.as_deref(),
            )
        }
    }
}

/// Resolves `h` into `(column index, display name)` pairs, in request order, each column once.
fn select_columns(columns: &[Column], h: Option<&str>) -> Result<Vec<(usize, String)>, ApiError> {
    let defaults = || -> Vec<(usize, String)> {
        columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.default)
            .map(|(i, c)| (i, c.name.to_owned()))
            .collect()
    };
    // `h=` (empty) is the same as no `h`: the default columns.
    let Some(h) = h.filter(|h| !h.trim().is_empty()) else {
        return Ok(defaults());
    };
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut push = |idx: usize, name: &str| {
        if !out.iter().any(|(i, _)| *i == idx) {
            out.push((idx, name.to_owned()));
        }
    };
    for item in split_list("h", h)? {
        if glob::is_pattern(item) {
            let mut any = false;
            for (idx, col) in columns.iter().enumerate() {
                if glob::matches(item, col.name)
                    || col.aliases.iter().any(|a| glob::matches(item, a))
                {
                    push(idx, col.name);
                    any = true;
                }
            }
            if !any {
                return Err(unknown_column(columns, "h", item));
            }
        } else if let Some(idx) = find_column(columns, item) {
            // Requested by alias: the alias is the display name, as in Elasticsearch.
            push(idx, item);
        } else {
            return Err(unknown_column(columns, "h", item));
        }
    }
    Ok(out)
}

fn find_column(columns: &[Column], name: &str) -> Option<usize> {
    columns
        .iter()
        .position(|c| c.name == name)
        .or_else(|| columns.iter().position(|c| c.aliases.contains(&name)))
}

fn unknown_column(columns: &[Column], param: &str, item: &str) -> ApiError {
    let valid: Vec<&str> = columns.iter().map(|c| c.name).collect();
    ApiError::illegal_argument(format!(
        "unknown column [{item}] in parameter [{param}], valid columns are [{}]",
        valid.join(", ")
    ))
}

/// Resolves sort keys (`s` of `_cat`, or `param` of another API that sorts by the same
/// columns) into `(column index, descending)` pairs, first key first.
pub(crate) fn sort_keys(
    columns: &[Column],
    param: &str,
    s: Option<&str>,
) -> Result<Vec<(usize, bool)>, ApiError> {
    let Some(s) = s.filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    split_list(param, s)?
        .into_iter()
        .map(|item| {
            let (name, desc) = match item.rsplit_once(':') {
                Some((name, "asc")) => (name, false),
                Some((name, "desc")) => (name, true),
                Some((_, order)) => {
                    return Err(ApiError::illegal_argument(format!(
                        "invalid sort order [{order}] in [{item}], expected [asc] or [desc]"
                    )))
                }
                None => (item, false),
            };
            let idx =
                find_column(columns, name).ok_or_else(|| unknown_column(columns, param, name))?;
            Ok((idx, desc))
        })
        .collect()
}

/// Elasticsearch's `help`: `name | aliases | description`, every column, each field padded.
fn help(columns: &[Column]) -> String {
    let rows: Vec<[String; 3]> = columns
        .iter()
        .map(|c| {
            [
                c.name.to_owned(),
                c.aliases.join(","),
                c.description.to_owned(),
            ]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1) = (width(0), width(1));
    let mut out = String::new();
    for [name, aliases, desc] in &rows {
        let line = format!("{name:<w0$} | {aliases:<w1$} | {desc}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The text layout of Elasticsearch's `_cat`: one space between columns, widths from the widest
/// cell (the header counts only with `v`), numeric columns right-aligned, no trailing spaces.
fn text_table(
    columns: &[Column],
    display: &[(usize, String)],
    rows: &[Vec<Cell>],
    verbose: bool,
) -> String {
    let header: Vec<&str> = display.iter().map(|(_, name)| name.as_str()).collect();
    let numeric: Vec<bool> = display
        .iter()
        .map(|(idx, _)| columns[*idx].numeric)
        .collect();
    text_layout(
        verbose.then_some(&header[..]),
        rows.iter()
            .map(|row| display.iter().map(|(idx, _)| row[*idx].text())),
        &numeric,
    )
}

/// Lays out cells as `_cat`'s text: one space between columns, each column as wide as its
/// widest cell (the `header` row counts when given), `right_aligned` columns (the numeric
/// ones) padded on the left, the others on the right, no trailing spaces, `\n` after every
/// row; nothing at all without columns, or without rows and header.
///
/// Widths are display widths, as a terminal draws them: a CJK character or an emoji takes two
/// columns. The `underscore` CLI lays out the tables it merges from several servers with this
/// function, so both look alike.
///
/// # Examples
///
/// ```
/// use underscore_core::cat::text_layout;
///
/// let rows = [["hello".to_owned(), "7".to_owned()], ["你好".to_owned(), "12".to_owned()]];
/// let text = text_layout(Some(&["id", "total"]), rows, &[false, true]);
/// assert_eq!(text, "id    total\nhello     7\n你好     12\n");
/// ```
pub fn text_layout<R, C>(header: Option<&[&str]>, rows: R, right_aligned: &[bool]) -> String
where
    R: IntoIterator<Item = C>,
    C: IntoIterator<Item = String>,
{
    if right_aligned.is_empty() {
        return String::new();
    }
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if let Some(header) = header {
        table.set_header(header.iter().copied());
    }
    for row in rows {
        table.add_row(row);
    }
    if table.row_count() == 0 && header.is_none() {
        return String::new();
    }
    for (col, &right) in table.column_iter_mut().zip(right_aligned) {
        col.set_padding((0, 1));
        col.set_constraint(ColumnConstraint::ContentWidth);
        if right {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[Column] = &[
        Column::text("id", &["i"], "route id"),
        Column::text("path", &["p"], "path pattern"),
        Column::number("stats.req.total", &["rt"], "requests"),
        Column::text("handler", &[], "handler fn").hidden(),
    ];

    fn rows() -> Vec<Vec<Cell>> {
        vec![
            vec![
                Cell::Str("index".into()),
                Cell::Str("/".into()),
                Cell::Int(7),
                Cell::Str("a::index".into()),
            ],
            vec![
                Cell::Str("hello".into()),
                Cell::Str("/hello/{name}".into()),
                Cell::Int(12),
                Cell::Null,
            ],
            vec![
                Cell::Str("slow".into()),
                Cell::Str("/slow".into()),
                Cell::Int(100),
                Cell::Str("a::slow".into()),
            ],
        ]
    }

    fn params(query: &str) -> CatParams {
        CatParams::take(Query::parse(query).unwrap(), "/_cat/test").unwrap()
    }

    fn text(query: &str) -> String {
        String::from_utf8(render(COLUMNS, rows(), &params(query)).unwrap().body).unwrap()
    }

    #[test]
    fn text_layout_matches_elasticsearch() {
        assert_eq!(
            text(""),
            "index /               7\nhello /hello/{name}  12\nslow  /slow         100\n"
        );
        assert_eq!(
            text("v"),
            "id    path          stats.req.total\n\
             index /                           7\n\
             hello /hello/{name}              12\n\
             slow  /slow                     100\n"
        );
    }

    #[test]
    fn last_left_aligned_column_has_no_trailing_spaces() {
        assert_eq!(text("h=rt,id"), "  7 index\n 12 hello\n100 slow\n");
        assert_eq!(text("h=handler&v"), "handler\na::index\n-\na::slow\n");
    }

    #[test]
    fn no_rows_prints_only_the_header_with_v() {
        let p = params("v");
        let out = render(COLUMNS, Vec::new(), &p).unwrap();
        assert_eq!(out.body, b"id path stats.req.total\n");
        let out = render(COLUMNS, Vec::new(), &params("")).unwrap();
        assert_eq!(out.body, b"");
    }

    #[test]
    fn headers_by_name_alias_and_wildcard() {
        assert_eq!(text("h=i,p"), "index /\nhello /hello/{name}\nslow  /slow\n");
        assert_eq!(
            text("h=stats.*&v"),
            "stats.req.total\n              7\n             12\n            100\n"
        );
        // A column matched twice is shown once.
        assert_eq!(text("h=id,i,*d"), "index\nhello\nslow\n");
        // `h=*` is every column, in declaration order.
        assert!(text("h=*&v").starts_with("id    path          stats.req.total handler\n"));
        // `h=` is the default columns, not an error.
        assert_eq!(text("h="), text(""));
    }

    #[test]
    fn unknown_header_lists_valid_columns() {
        let err = render(COLUMNS, rows(), &params("h=id,nope")).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(
            err.reason.contains("[nope]") && err.reason.contains("stats.req.total"),
            "{}",
            err.reason
        );
        assert_eq!(
            render(COLUMNS, rows(), &params("h=zz*"))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            render(COLUMNS, rows(), &params("h=id,,path"))
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn sort_is_typed_multi_key_and_stable() {
        assert_eq!(text("h=id&s=rt:desc"), "slow\nhello\nindex\n");
        // Numbers compare as numbers: 7 < 12 < 100 (as strings "100" < "12" < "7").
        assert_eq!(text("h=id&s=stats.req.total"), "index\nhello\nslow\n");
        assert_eq!(text("h=id&s=path:desc"), "slow\nhello\nindex\n");
        // Nulls sort first ascending; ties keep their order.
        assert_eq!(text("h=id&s=handler"), "hello\nindex\nslow\n");
        assert_eq!(text("h=id&s=handler:desc,id:asc"), "slow\nindex\nhello\n");
    }

    #[test]
    fn bad_sort_keys_are_rejected() {
        for q in ["s=nope", "s=id:up", "s=id,", "s=,id"] {
            let err = render(COLUMNS, rows(), &params(q)).unwrap_err();
            assert_eq!(err.status, 400, "{q}");
        }
    }

    #[test]
    fn json_is_typed_and_keyed_by_display_name() {
        let out = render(
            COLUMNS,
            rows(),
            &params("format=json&h=i,rt,handler&s=rt:desc"),
        )
        .unwrap();
        assert_eq!(out.content_type, "application/json");
        assert_eq!(
            String::from_utf8(out.body).unwrap(),
            r#"[{"i":"slow","rt":100,"handler":"a::slow"},{"i":"hello","rt":12,"handler":null},{"i":"index","rt":7,"handler":"a::index"}]"#
        );
    }

    #[test]
    fn non_finite_floats_are_null() {
        assert_eq!(Cell::Float(f64::NAN).json(), Value::Null);
        assert_eq!(Cell::Float(f64::INFINITY).text(), "-");
    }

    #[test]
    fn yaml_output() {
        let out = render(COLUMNS, rows(), &params("format=yaml&h=id,rt&s=id")).unwrap();
        assert_eq!(out.content_type, "application/yaml");
        assert_eq!(
            String::from_utf8(out.body).unwrap(),
            "---\n- id: \"hello\"\n  rt: 12\n- id: \"index\"\n  rt: 7\n- id: \"slow\"\n  rt: 100\n"
        );
    }

    #[test]
    fn wide_characters_line_up_by_display_width() {
        use unicode_width::UnicodeWidthStr;
        const WIDE: &[Column] = &[
            Column::text("id", &[], "route id"),
            Column::text("reason", &[], "reason"),
            Column::number("total", &[], "requests"),
        ];
        let rows = vec![
            vec![
                Cell::Str("你好世界".into()),
                Cell::Str("🔥 on fire".into()),
                Cell::Int(7),
            ],
            vec![
                Cell::Str("hello".into()),
                Cell::Str("calm".into()),
                Cell::Int(12345),
            ],
            vec![
                Cell::Str("日本".into()),
                Cell::Str("🚧🚧".into()),
                Cell::Null,
            ],
        ];
        let out = render(WIDE, rows, &params("v")).unwrap().body;
        let out = String::from_utf8(out).unwrap();
        // The last column is right-aligned: every row, header included, is as wide.
        let widths: Vec<usize> = out.lines().map(UnicodeWidthStr::width).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{widths:?}\n{out}");
        assert_eq!(
            out,
            "id       reason     total\n\
             你好世界 🔥 on fire     7\n\
             hello    calm       12345\n\
             日本     🚧🚧           -\n"
        );
    }

    #[test]
    fn help_lists_every_column() {
        assert_eq!(
            text("help"),
            "id              | i  | route id\n\
             path            | p  | path pattern\n\
             stats.req.total | rt | requests\n\
             handler         |    | handler fn\n"
        );
    }
}
