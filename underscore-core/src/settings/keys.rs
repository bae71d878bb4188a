//! Every settings key: its name, what it does, and how its value is validated. The route
//! keys ([`KEYS`]) and the node keys ([`NODE_KEYS`]) are fixed sets; the log level keys
//! (`logger._root`, `logger.<target>`) an open one, checked by their grammar.
//!
//! This is the bottom of the settings modules: it imports none of them.

use std::fmt::Debug;

use serde_json::Value;

use super::Flat;
use crate::glob;

/// One settings key.
#[derive(Debug)]
pub struct KeySpec {
    /// The dotted key, e.g. `preempt.status`.
    pub key: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Validates a (non-null) value and returns its canonical form, or says what is wrong.
    pub(super) parse: fn(&Value) -> Result<Value, String>,
    /// The value that applies when the key is unset (`None`: no effect).
    pub default: Option<u64>,
}

/// Every settings key.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        key: "preempt.status",
        description: "answer this status (200..=599) without calling the handler",
        parse: parse_status,
        default: None,
    },
    KeySpec {
        key: "preempt.reason",
        description: "reason phrase on the status line of a preempted response",
        parse: parse_reason,
        default: None,
    },
    KeySpec {
        key: "preempt.text",
        description: "text/plain body of a preempted response",
        parse: parse_text,
        default: None,
    },
    KeySpec {
        key: "preempt.retry_after",
        description: "Retry-After header of a preempted response, in seconds",
        parse: parse_retry_after,
        default: None,
    },
    KeySpec {
        key: "preempt.percent",
        description: "share of requests preempted, 0 to 100 (default 100 with a preempt status), \
                      exact over every 100 consecutive requests",
        parse: parse_percent,
        default: Some(100),
    },
    KeySpec {
        key: "limits.max_in_flight",
        description: "at most this many requests of the route run at once; the next ones are \
                      shed (answered at once with limits.status)",
        parse: parse_max_in_flight,
        default: None,
    },
    KeySpec {
        key: "limits.timeout",
        description: "a request still running after this long (500ms, 2s, 1m) is stopped and \
                      answered 504",
        parse: parse_timeout,
        default: None,
    },
    KeySpec {
        key: "limits.status",
        description: "status (200..=599) of a request shed by limits.max_in_flight (default 503)",
        parse: parse_status,
        default: Some(503),
    },
    KeySpec {
        key: "limits.retry_after",
        description: "Retry-After header of a shed request, in seconds",
        parse: parse_retry_after,
        default: None,
    },
    KeySpec {
        key: "slowlog.threshold.warn",
        description: "a request that takes this long (500ms, 2s) is logged at warn, and reported \
                      with its stack while it runs; -1 is off",
        parse: parse_threshold,
        default: None,
    },
    KeySpec {
        key: "slowlog.threshold.info",
        description: "a request that takes this long is logged at info; -1 is off",
        parse: parse_threshold,
        default: None,
    },
    KeySpec {
        key: "slowlog.threshold.debug",
        description: "a request that takes this long is logged at debug; -1 is off",
        parse: parse_threshold,
        default: None,
    },
    KeySpec {
        key: "slowlog.threshold.trace",
        description: "a request that takes this long is logged at trace; -1 is off",
        parse: parse_threshold,
        default: None,
    },
    KeySpec {
        key: "slowlog.stack_interval",
        description: "how often a request running past slowlog.threshold.warn is reported with \
                      its stack (default: the threshold)",
        parse: parse_timeout,
        default: None,
    },
    KeySpec {
        key: "slowlog.stack_repeat",
        description: "how many times a request running past slowlog.threshold.warn is reported \
                      with its stack, 0 to 100 (default 3)",
        parse: parse_stack_repeat,
        default: Some(crate::slowlog::DEFAULT_STACK_REPEAT as u64),
    },
];

/// Every node-wide settings key (`GET|PUT /_node/settings`): one value for the whole process.
/// Their defaults are the app's configuration (`Underscore::builder()`), not constants, so
/// [`KeySpec::default`] is `None` here.
pub const NODE_KEYS: &[KeySpec] = &[
    KeySpec {
        key: "blocking.threshold",
        description: "a timed poll longer than this (10ms, 500micros) blocked its worker: it is \
                      counted as a blocking poll of its route and task, and logged once per task",
        parse: parse_blocking_threshold,
        default: None,
    },
    KeySpec {
        key: "poll_timing.enabled",
        description: "time each poll of a tracked request's future, for _cat/workers and \
                      blocking polls (true or false; costs about 400 instructions a request)",
        parse: parse_bool,
        default: None,
    },
];

/// The most `blocking.threshold` accepts: a poll that long is blocking by any measure.
pub const MAX_BLOCKING_THRESHOLD: std::time::Duration = std::time::Duration::from_secs(3600);

fn parse_blocking_threshold(value: &Value) -> Result<Value, String> {
    const RANGE: &str = "more than zero and at most 1h; to go back to the default, use null";
    let Value::String(s) = value else {
        return Err(format!(
            "must be a time value with a unit, such as 10ms or 500micros, {RANGE}"
        ));
    };
    match crate::time_value::parse(s) {
        Ok(d) if !d.is_zero() && d <= MAX_BLOCKING_THRESHOLD => {
            Ok(Value::String(s.trim().to_ascii_lowercase()))
        }
        Ok(_) | Err(crate::time_value::TimeValueError::Negative) => Err(format!("must be {RANGE}")),
        Err(err) => Err(err.to_string()),
    }
}

fn parse_bool(value: &Value) -> Result<Value, String> {
    match value {
        Value::Bool(b) => Ok(Value::Bool(*b)),
        // Elasticsearch accepts booleans written as strings, exactly "true" or "false".
        Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
        _ => Err("must be true or false".to_owned()),
    }
}

/// The node settings keys, [`NODE_KEYS`].
pub(crate) struct NodeKeys;

impl KeySet for NodeKeys {
    type Key = &'static str;

    fn check(&self, key: &str) -> Result<(Self::Key, Parse), String> {
        match NODE_KEYS.iter().find(|k| k.key == key) {
            Some(spec) => Ok((spec.key, spec.parse)),
            None if NODE_KEYS
                .iter()
                .any(|k| k.key.starts_with(&format!("{key}."))) =>
            {
                Err(format!("; to reset the group, use [{key}.*]"))
            }
            None if spec(key).is_some() => Err(format!(
                ": [{key}] is a route setting, set with PUT /_routes/{{ids}}/settings"
            )),
            None => Err(format!(
                ": node settings are [{}]",
                NODE_KEYS
                    .iter()
                    .map(|k| k.key)
                    .collect::<Vec<_>>()
                    .join("], [")
            )),
        }
    }

    fn matches_some(&self, pattern: &str) -> bool {
        NODE_KEYS.iter().any(|k| glob::matches(pattern, k.key))
    }
}

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

/// The most `limits.max_in_flight` accepts.
pub const MAX_IN_FLIGHT: u64 = u32::MAX as u64;

fn parse_max_in_flight(value: &Value) -> Result<Value, String> {
    match as_integer(value) {
        Some(n @ 1..) if n <= i128::from(MAX_IN_FLIGHT) => Ok(Value::from(n as u64)),
        _ => Err(format!(
            "must be a whole number of requests from 1 to {MAX_IN_FLIGHT}; to remove the limit, \
             use null"
        )),
    }
}

fn parse_percent(value: &Value) -> Result<Value, String> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        // Elasticsearch accepts numbers written as strings; "NaN" and "inf" are no percentage.
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
            s.parse::<f64>().ok()
        }
        _ => None,
    };
    match n {
        Some(n) if n.is_finite() && (0.0..=100.0).contains(&n) => {
            if n.fract() == 0.0 {
                Ok(Value::from(n as u64))
            } else {
                Ok(Value::from(n))
            }
        }
        _ => Err("must be a number from 0 to 100".to_owned()),
    }
}

fn parse_timeout(value: &Value) -> Result<Value, String> {
    let Value::String(s) = value else {
        return Err(
            "must be a time value with a unit, such as 500ms, 2s or 1m (a bare number has no unit)"
                .to_owned(),
        );
    };
    // Checked as written: `M` is no unit, though its lowercase is.
    parse_time(s)?;
    Ok(Value::String(s.trim().to_ascii_lowercase()))
}

fn parse_threshold(value: &Value) -> Result<Value, String> {
    let off = match value {
        Value::Number(n) => n.as_i64() == Some(-1),
        Value::String(s) => s.trim() == "-1",
        _ => false,
    };
    if off {
        return Ok(Value::from("-1"));
    }
    let Value::String(s) = value else {
        return Err(
            "must be a time value with a unit, such as 500ms or 2s, or -1 (off)".to_owned(),
        );
    };
    // Zero is a threshold here: it logs every request.
    crate::time_value::parse(s).map_err(|err| format!("{err}, or -1 (off)"))?;
    Ok(Value::String(s.trim().to_ascii_lowercase()))
}

fn parse_stack_repeat(value: &Value) -> Result<Value, String> {
    match as_integer(value) {
        Some(n @ 0..=100) => Ok(Value::from(n as u64)),
        _ => Err("must be a whole number from 0 to 100".to_owned()),
    }
}

/// Parses the value of `limits.timeout`: an Elasticsearch time value (the grammar of
/// [`time_value`](crate::time_value), which the CLI shares), more than zero.
///
/// # Errors
///
/// What is wrong with `text`, for a 400 that names the setting.
pub fn parse_time(text: &str) -> Result<std::time::Duration, String> {
    use crate::time_value::{self, TimeValueError};
    match time_value::parse(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) | Err(TimeValueError::Negative) => {
            Err("must be more than zero; to remove the timeout, use null".to_owned())
        }
        Err(err) => Err(err.to_string()),
    }
}

pub(super) fn spec(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.key == key)
}

/// The defaults: every key with the value that applies when it is unset (`null`: no effect).
pub fn defaults() -> Flat {
    KEYS.iter()
        .map(|k| (k.key.to_owned(), k.default.map_or(Value::Null, Value::from)))
        .collect()
}

/// Validates a (non-null) value and returns its canonical form, or says what is wrong.
pub(crate) type Parse = fn(&Value) -> Result<Value, String>;

/// A set of settings keys: which keys exist, and how their values are validated.
pub(crate) trait KeySet {
    /// A validated key.
    type Key: AsRef<str> + Clone + PartialEq + Debug;
    /// The canonical form of `key` and the parser of its (non-null) values; or why `key` is
    /// none, as the text that follows `<tier> setting [<key>], not recognized`.
    fn check(&self, key: &str) -> Result<(Self::Key, Parse), String>;
    /// Whether the wildcard `pattern` matches at least one key of the set.
    fn matches_some(&self, pattern: &str) -> bool;
}

/// The route settings keys, [`KEYS`].
pub(crate) struct RouteKeys;

impl KeySet for RouteKeys {
    type Key = &'static str;

    fn check(&self, key: &str) -> Result<(Self::Key, Parse), String> {
        match spec(key) {
            Some(spec) => Ok((spec.key, spec.parse)),
            None if KEYS.iter().any(|k| k.key.starts_with(&format!("{key}."))) => {
                Err(format!("; to reset the group, use [{key}.*]"))
            }
            None => Err(String::new()),
        }
    }

    fn matches_some(&self, pattern: &str) -> bool {
        KEYS.iter().any(|k| glob::matches(pattern, k.key))
    }
}

/// The prefix of every log level setting.
pub const PREFIX: &str = "logger.";

/// The target name of the default level: `logger._root`.
pub const ROOT: &str = "_root";

/// The most log level settings a tier holds: each one is a directive the filter checks.
pub const MAX_LOGGERS: usize = 1000;

/// The longest target accepted, in bytes.
pub const MAX_TARGET: usize = 256;

/// The levels, most verbose first, as they are stored (lower case).
pub const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// The keys `logger._root` and `logger.<target>`.
pub(crate) struct LoggerKeys;

impl KeySet for LoggerKeys {
    type Key = String;

    fn check(&self, key: &str) -> Result<(String, Parse), String> {
        let Some(target) = key.strip_prefix(PREFIX) else {
            if key == "logger" {
                return Err("; to reset the group, use [logger.*]".to_owned());
            }
            return Err(": log levels are [logger._root] and [logger.<target>]".to_owned());
        };
        check_target(target).map_err(|why| format!(": {why}"))?;
        Ok((key.to_owned(), parse_level))
    }

    fn matches_some(&self, pattern: &str) -> bool {
        // An open set: a pattern matches some logger key when its text before the first `*`
        // could start one, and the rest is made of target characters.
        let literal = pattern.split('*').next().unwrap_or("");
        (PREFIX.starts_with(literal) || literal.starts_with(PREFIX))
            && pattern.bytes().all(|b| b == b'*' || is_target_byte(b))
    }
}

fn is_target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-' | b'.')
}

/// Checks a tracing target: what `EnvFilter` reads as one target, and nothing it could read as
/// more (`=`, `,`, `[`, `{`, spaces and quotes are refused).
fn check_target(target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("the target after [logger.] is empty".to_owned());
    }
    if target.len() > MAX_TARGET {
        return Err(format!("a target is at most {MAX_TARGET} bytes long"));
    }
    // `EnvFilter` refuses a directive that starts with `.`.
    let first_ok = target
        .bytes()
        .next()
        .is_some_and(|b| is_target_byte(b) && b != b'.');
    if !first_ok || !target.bytes().all(is_target_byte) {
        return Err(format!(
            "[{target}] is not a tracing target: use ASCII letters, digits, '_', ':', '-' and \
             '.' (not first), like a module path (my_app::db)"
        ));
    }
    Ok(())
}

/// A level name, any case, in its stored form (lower case).
fn parse_level(value: &Value) -> Result<Value, String> {
    value
        .as_str()
        .and_then(canonical_level)
        .map(Value::from)
        .ok_or_else(|| format!("must be one of [{}], in any case", LEVELS.join(", ")))
}

pub(crate) fn canonical_level(level: &str) -> Option<&'static str> {
    LEVELS
        .iter()
        .find(|l| l.eq_ignore_ascii_case(level))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn parse(key: &str, value: Value) -> Result<Value, String> {
        (spec(key).unwrap().parse)(&value)
    }

    #[test]
    fn time_values_follow_elasticsearch_units() {
        assert_eq!(parse_time("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_time("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_time("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_time("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_time("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_time("750micros"), Ok(Duration::from_micros(750)));
        assert_eq!(parse_time("10nanos"), Ok(Duration::from_nanos(10)));
        assert_eq!(parse_time(" 3S "), Ok(Duration::from_secs(3)));
        for bad in [
            "5 parsecs",
            "-1s",
            "0s",
            "0ms",
            "s",
            "",
            "1.5s",
            "1",
            "1sec",
            "99999999999999999999d",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert!(parse_time("-1s").unwrap_err().contains("more than zero"));
        assert!(parse_time("5 parsecs").unwrap_err().contains("[parsecs]"));
        assert_eq!(
            parse_time("1.5s").unwrap_err(),
            "fractional time values are not supported: write 1500ms"
        );
    }

    #[test]
    fn limits_and_percent_are_validated() {
        assert_eq!(parse("limits.max_in_flight", json!(2)), Ok(json!(2)));
        assert_eq!(parse("limits.max_in_flight", json!("7")), Ok(json!(7)));
        for bad in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!("abc"),
            json!(true),
            json!(4294967296u64),
        ] {
            assert!(parse("limits.max_in_flight", bad.clone()).is_err(), "{bad}");
        }
        assert_eq!(parse("limits.timeout", json!("1S")), Ok(json!("1s")));
        for bad in [
            json!("5 parsecs"),
            json!("-1s"),
            json!("0s"),
            json!(5),
            json!(null),
            json!("1.5s"),
            json!("1M"),
        ] {
            assert!(parse("limits.timeout", bad.clone()).is_err(), "{bad}");
        }
        assert_eq!(parse("preempt.percent", json!(25)), Ok(json!(25)));
        assert_eq!(parse("preempt.percent", json!(12.5)), Ok(json!(12.5)));
        assert_eq!(parse("preempt.percent", json!("40")), Ok(json!(40)));
        assert_eq!(parse("preempt.percent", json!(0)), Ok(json!(0)));
        assert_eq!(parse("preempt.percent", json!(100.0)), Ok(json!(100)));
        for bad in [
            json!(101),
            json!(-1),
            json!("NaN"),
            json!("inf"),
            json!("1e3"),
            json!(""),
        ] {
            assert!(parse("preempt.percent", bad.clone()).is_err(), "{bad}");
        }
        assert_eq!(parse("limits.status", json!(429)), Ok(json!(429)));
        assert_eq!(parse("slowlog.threshold.warn", json!(-1)), Ok(json!("-1")));
        assert_eq!(
            parse("slowlog.threshold.info", json!("-1")),
            Ok(json!("-1"))
        );
        assert_eq!(
            parse("slowlog.threshold.debug", json!("0MS")),
            Ok(json!("0ms"))
        );
        for bad in [
            json!(5),
            json!("5 parsecs"),
            json!("-2s"),
            json!(true),
            json!("1.5s"),
        ] {
            let err = parse("slowlog.threshold.trace", bad.clone()).unwrap_err();
            assert!(err.contains("-1 (off)"), "{bad}: {err}");
        }
        assert_eq!(parse("slowlog.stack_repeat", json!("7")), Ok(json!(7)));
        assert!(parse("slowlog.stack_repeat", json!(101)).is_err());
        assert!(parse("slowlog.stack_interval", json!("0s")).is_err());
        assert!(parse("limits.status", json!(99)).is_err());
    }

    #[test]
    fn node_keys_are_validated_and_named() {
        let check = |key: &str, value: Value| {
            let (_, parse) = NodeKeys.check(key).unwrap();
            parse(&value)
        };
        assert_eq!(
            check("blocking.threshold", json!("25MS")),
            Ok(json!("25ms"))
        );
        assert_eq!(
            check("blocking.threshold", json!("500micros")),
            Ok(json!("500micros"))
        );
        assert_eq!(check("blocking.threshold", json!("1h")), Ok(json!("1h")));
        for bad in [
            json!("0ms"),
            json!("-1"),
            json!("2h"),
            json!(10),
            json!("10"),
        ] {
            assert!(check("blocking.threshold", bad.clone()).is_err(), "{bad}");
        }
        assert!(check("blocking.threshold", json!("0s"))
            .unwrap_err()
            .contains("use null"));
        assert_eq!(check("poll_timing.enabled", json!(true)), Ok(json!(true)));
        assert_eq!(
            check("poll_timing.enabled", json!("false")),
            Ok(json!(false))
        );
        for bad in [json!(1), json!("yes"), json!("TRUE")] {
            assert!(check("poll_timing.enabled", bad.clone()).is_err(), "{bad}");
        }
        assert!(NodeKeys
            .check("limits.timeout")
            .unwrap_err()
            .contains("is a route setting"));
        assert!(NodeKeys
            .check("blocking.treshold")
            .unwrap_err()
            .contains("[blocking.threshold], [poll_timing.enabled]"));
        assert!(NodeKeys
            .check("blocking")
            .unwrap_err()
            .contains("[blocking.*]"));
        assert!(NodeKeys.matches_some("blocking.*") && !NodeKeys.matches_some("limits.*"));
    }
}
