//! Every settings key: its name, what it does, and how its value is validated.

use serde_json::Value;

use super::Flat;

/// One settings key.
#[derive(Debug)]
pub struct KeySpec {
    /// The dotted key, e.g. `preempt.status`.
    pub key: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Validates a (non-null) value and returns its canonical form, or says what is wrong.
    pub(super) parse: fn(&Value) -> Result<Value, String>,
}

/// Every settings key.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        key: "preempt.status",
        description: "answer this status (200..=599) without calling the handler",
        parse: parse_status,
    },
    KeySpec {
        key: "preempt.reason",
        description: "reason phrase on the status line of a preempted response",
        parse: parse_reason,
    },
    KeySpec {
        key: "preempt.text",
        description: "text/plain body of a preempted response",
        parse: parse_text,
    },
    KeySpec {
        key: "preempt.retry_after",
        description: "Retry-After header of a preempted response, in seconds",
        parse: parse_retry_after,
    },
];

/// The longest reason phrase accepted.
pub const MAX_REASON: usize = 128;

fn as_integer(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        // Elasticsearch accepts numbers written as strings.
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

fn parse_status(value: &Value) -> Result<Value, String> {
    match as_integer(value) {
        Some(n @ 200..=599) => Ok(Value::from(n as u64)),
        _ => Err("must be an integer from 200 to 599".to_owned()),
    }
}

fn parse_reason(value: &Value) -> Result<Value, String> {
    let Value::String(s) = value else {
        return Err("must be a string".to_owned());
    };
    // RFC 9110 reason-phrase: HTAB, SP and visible ASCII (obs-text is not sent).
    if s.is_empty() || s.len() > MAX_REASON {
        return Err(format!("must be 1 to {MAX_REASON} characters"));
    }
    if !s
        .bytes()
        .all(|b| b == b'\t' || b == b' ' || b.is_ascii_graphic())
    {
        return Err(
            "must be printable ASCII (a reason phrase cannot carry other characters)".to_owned(),
        );
    }
    Ok(value.clone())
}

fn parse_text(value: &Value) -> Result<Value, String> {
    match value {
        Value::String(_) => Ok(value.clone()),
        _ => Err("must be a string".to_owned()),
    }
}

fn parse_retry_after(value: &Value) -> Result<Value, String> {
    match as_integer(value) {
        Some(n @ 0..=4_294_967_295) => Ok(Value::from(n as u64)),
        _ => Err("must be a whole number of seconds from 0 to 4294967295".to_owned()),
    }
}

pub(super) fn spec(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.key == key)
}

/// The defaults: every key, unset.
pub fn defaults() -> Flat {
    KEYS.iter()
        .map(|k| (k.key.to_owned(), Value::Null))
        .collect()
}
