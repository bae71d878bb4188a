//! A small YAML emitter for JSON values, in the style of Elasticsearch's `format=yaml`: a `---`
//! line, block collections, and strings always double-quoted (JSON escapes are valid YAML, so
//! no value can change type or break the document).

use serde_json::Value;

/// Writes `value` as a YAML document.
pub fn to_string(value: &Value) -> String {
    let mut out = String::from("---\n");
    match value {
        Value::Array(items) if !items.is_empty() => seq(&mut out, items, 0),
        Value::Object(map) if !map.is_empty() => mapping(&mut out, map, 0, false),
        scalar_or_empty => {
            out.push_str(&scalar(scalar_or_empty));
            out.push('\n');
        }
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
        Value::String(s) => quoted(s),
        // Numbers, booleans and null read the same in YAML.
        other => other.to_string(),
    }
}

/// A YAML double-quoted string: JSON's escapes, plus DEL and the C1 controls, which YAML does
/// not allow raw.
fn quoted(s: &str) -> String {
    let json = Value::String(s.to_owned()).to_string();
    if !json
        .chars()
        .any(|c| c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c))
    {
        return json;
    }
    json.chars()
        .map(|c| {
            if c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c) {
                format!("\\x{:02X}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => false,
    }
}

fn key(k: &str) -> String {
    // Plain only when no YAML reader could take it for anything but a string: a letter or `_`
    // first (no number, date or `.inf`), then letters, digits, `_`, `.`, `-`; no reserved word.
    let plain = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "nan" | "inf"
        );
    if plain {
        k.to_owned()
    } else {
        quoted(k)
    }
}

/// `inline_first`: the first key follows a sequence item's `- ` on the same line.
fn mapping(
    out: &mut String,
    map: &serde_json::Map<String, Value>,
    indent: usize,
    inline_first: bool,
) {
    for (i, (k, v)) in map.iter().enumerate() {
        // The first key of a mapping inside a sequence item follows the "- " directly.
        if i > 0 || !inline_first {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&key(k));
        out.push(':');
        match v {
            Value::Object(m) if is_block(v) => {
                out.push('\n');
                mapping(out, m, indent + 2, false);
            }
            Value::Array(a) if is_block(v) => {
                out.push('\n');
                seq(out, a, indent);
            }
            _ => {
                out.push(' ');
                out.push_str(&scalar(v));
                out.push('\n');
            }
        }
    }
}

fn seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        match item {
            Value::Object(m) if is_block(item) => {
                out.push_str("- ");
                mapping(out, m, indent + 2, true);
            }
            Value::Array(a) if is_block(item) => {
                out.push_str("-\n");
                seq(out, a, indent + 2);
            }
            _ => {
                out.push_str("- ");
                out.push_str(&scalar(item));
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::to_string;
    use serde_json::json;

    #[test]
    fn nested_document() {
        let doc = json!({
            "index": {"methods": ["GET", "HEAD"], "line": 12, "doc": null, "x": {}},
            "true": [[1, 2], {"a": "b: c\n"}],
        });
        assert_eq!(
            to_string(&doc),
            "---\nindex:\n  methods:\n  - \"GET\"\n  - \"HEAD\"\n  line: 12\n  doc: null\n  x: {}\n\
             \"true\":\n-\n  - 1\n  - 2\n- a: \"b: c\\n\"\n"
        );
    }

    #[test]
    fn keys_and_strings_never_change_type() {
        let doc = json!({"0x10": 1, ".inf": 2, "2024-01-01": 3, "_ok": 4, "a\u{7f}b": "c\u{85}d"});
        assert_eq!(
            to_string(&doc),
            "---\n\"0x10\": 1\n\".inf\": 2\n\"2024-01-01\": 3\n_ok: 4\n\"a\\x7Fb\": \"c\\x85d\"\n"
        );
    }

    #[test]
    fn empty_and_scalar_documents() {
        assert_eq!(to_string(&json!([])), "---\n[]\n");
        assert_eq!(to_string(&json!({})), "---\n{}\n");
        assert_eq!(to_string(&json!("x")), "---\n\"x\"\n");
    }
}
