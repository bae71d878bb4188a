//! The operator settings file: the desired settings of a whole fleet, which every replica reads
//! from the same file (typically a Kubernetes ConfigMap), applies as the `operator` tier, above
//! transient, and refuses to let the settings APIs change.
//!
//! ```json
//! {
//!   "metadata": {"version": 3},
//!   "routes": {
//!     "_all": {"limits.timeout": "30s"},
//!     "search,export*": {"limits": {"max_in_flight": 8, "timeout": "5s"}}
//!   },
//!   "logging": {"logger._root": "info", "logger.my_app::db": "debug"},
//!   "node": {"poll_timing.enabled": true, "blocking.threshold": "25ms"}
//! }
//! ```
//!
//! The keys of `routes` are `{ids}` expressions (a comma list, `*` wildcards, `_all`), matched
//! against every route, those that appear later included; their settings are those of the
//! settings APIs, flat or nested, validated the same way. Where several entries set a key of a
//! route, the closest match wins (a route's name over a pattern over `_all`), then the later
//! entry. `metadata.version` only moves forward (see [`store`](super::store)).
//!
//! This module reads the file; it builds on [`keys`](super::keys) and [`tiers`](super::tiers).

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;

use serde_json::{Map, Value};

use super::keys::{KeySet, LoggerKeys, NodeKeys, RouteKeys, MAX_LOGGERS};
use super::tiers::{flatten, RouteEntry};
use super::Flat;
use crate::glob;

/// The largest operator settings file read, in bytes (a ConfigMap holds at most 1 MiB).
pub const MAX_FILE: u64 = 4 * 1024 * 1024;

/// What a valid operator settings file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct OperatorFile {
    /// `metadata.version`.
    pub version: u64,
    /// The route settings, in file order.
    pub routes: Vec<RouteEntry>,
    /// The log levels.
    pub logging: Flat,
    /// The node settings.
    pub node: Flat,
}

impl OperatorFile {
    /// Whether `self` sets the same settings as `other`, whatever the versions.
    pub(crate) fn same_settings(&self, other: &OperatorFile) -> bool {
        self.routes == other.routes && self.logging == other.logging && self.node == other.node
    }
}

/// Reads the file at `path` (through symbolic links, as a ConfigMap volume has them): `None`
/// when there is none; an error when it cannot be read, is larger than [`MAX_FILE`], is not a
/// regular file or is writable by others.
pub(crate) fn read(path: &Path) -> Result<Option<Vec<u8>>, String> {
    use std::os::unix::fs::PermissionsExt;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read the file: {e}")),
    };
    // The file opened, not the path: a swap right now cannot give one file's mode and
    // another's bytes.
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".to_owned());
    }
    // Its owner may be another user (root owns a ConfigMap's files), but whoever may write it
    // steers every route: not anyone.
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 {
        return Err(format!(
            "others may write it (mode {:o}): chmod o-w it",
            mode & 0o777
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!("it is larger than {MAX_FILE} bytes"));
    }
    Ok(Some(bytes))
}

/// Checks an operator settings file as an app reads it, without applying it: its
/// `metadata.version`; or what is wrong with it, as `GET /_operator/settings` would say it (with
/// the line and column of a JSON syntax error). For a test or a CI step before `kubectl apply`.
///
/// # Examples
///
/// ```
/// use underscore_core::settings::operator::check;
///
/// let file = br#"{"metadata": {"version": 3}, "routes": {"_all": {"limits.timeout": "30s"}}}"#;
/// assert_eq!(check(file), Ok(3));
/// assert!(check(br#"{"metadata": {"version": 3}, "routes": {"_all": {"limits.timeout": 30}}}"#)
///     .unwrap_err()
///     .contains("[limits.timeout]"));
/// ```
///
/// # Errors
///
/// What is wrong with the file.
pub fn check(bytes: &[u8]) -> Result<u64, String> {
    parse(bytes).map(|file| file.version)
}

/// Reads an operator settings file; or says what is wrong with it, with the line and column of a
/// JSON syntax error.
pub(crate) fn parse(bytes: &[u8]) -> Result<OperatorFile, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(top) = value else {
        return Err(
            "the file must be a JSON object with [metadata], [routes], [logging] and [node]"
                .to_owned(),
        );
    };
    let mut version = None;
    let mut file = OperatorFile::default();
    for (key, value) in top {
        match key.as_str() {
            "metadata" => version = Some(metadata(value)?),
            "routes" => file.routes = routes(value)?,
            "logging" => {
                file.logging = section(&LoggerKeys, value, "logging")?;
                if file.logging.len() > MAX_LOGGERS {
                    return Err(format!(
                        "logging: {} log levels, more than the limit of [{MAX_LOGGERS}]",
                        file.logging.len()
                    ));
                }
            }
            "node" => file.node = section(&NodeKeys, value, "node")?,
            other => {
                return Err(format!(
                    "unknown field [{other}], expected [metadata], [routes], [logging] or [node]"
                ))
            }
        }
    }
    file.version = version.ok_or_else(|| {
        "[metadata.version] is missing: every file has one, and a newer file a higher one"
            .to_owned()
    })?;
    Ok(file)
}

fn metadata(value: Value) -> Result<u64, String> {
    let Value::Object(metadata) = value else {
        return Err("[metadata] must be an object with [version]".to_owned());
    };
    let mut version = None;
    for (key, value) in metadata {
        if key != "version" {
            return Err(format!(
                "unknown field [metadata.{key}], expected [version]"
            ));
        }
        let parsed = match &value {
            Value::Number(n) => n.as_u64(),
            // As Elasticsearch's operator files write it: a number in a string.
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok()
            }
            _ => None,
        };
        version = Some(parsed.ok_or_else(|| {
            format!(
                "[metadata.version] must be a whole number from 0 to {}, got [{value}]",
                u64::MAX
            )
        })?);
    }
    version.ok_or_else(|| "[metadata.version] is missing".to_owned())
}

fn routes(value: Value) -> Result<Vec<RouteEntry>, String> {
    let Value::Object(routes) = value else {
        return Err("[routes] must be an object of {ids}: settings".to_owned());
    };
    let mut out = Vec::with_capacity(routes.len());
    for (ids, settings) in routes {
        check_ids(&ids)?;
        let settings = section(&RouteKeys, settings, &format!("routes [{ids}]"))?;
        if !settings.is_empty() {
            out.push(RouteEntry { ids, settings });
        }
    }
    Ok(out)
}

/// An `{ids}` expression: a comma list of route ids, patterns with `*`, or `_all`.
fn check_ids(ids: &str) -> Result<(), String> {
    for item in ids.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!(
                "routes [{ids}]: an empty item in the list of route ids"
            ));
        }
        let valid = item == "_all"
            || item.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~' | b'*')
            });
        if !valid {
            return Err(format!(
                "routes [{ids}]: [{item}] is no route id: ids are made of ASCII letters, digits, \
                 '_', '.', '-' and '~', with '*' for any run of characters, or [_all]"
            ));
        }
    }
    Ok(())
}

/// The settings of one section, flat or nested, each key known to `keys` and each value valid;
/// or what is wrong, after `context`.
fn section<S: KeySet>(keys: &S, value: Value, context: &str) -> Result<Flat, String> {
    let Value::Object(settings) = value else {
        return Err(format!("{context}: the settings must be an object"));
    };
    let mut pairs: Vec<(String, Value)> = Vec::new();
    flatten("", Map::from_iter(settings), &mut pairs);
    let mut seen = HashSet::new();
    let mut flat = Flat::new();
    for (key, value) in pairs {
        if !seen.insert(key.clone()) {
            return Err(format!(
                "{context}: setting [{key}] is given more than once"
            ));
        }
        if glob::is_pattern(&key) {
            return Err(format!(
                "{context}: [{key}] is a pattern: the file sets values (to release a key, remove \
                 it from the file)"
            ));
        }
        let (canonical, parse) = keys
            .check(&key)
            .map_err(|why| format!("{context}: unknown setting [{key}]{why}"))?;
        if value.is_null() {
            return Err(format!(
                "{context}: setting [{key}] is null: the file sets values (to release a key, \
                 remove it from the file)"
            ));
        }
        let value = parse(&value).map_err(|why| {
            // The parsers speak to the settings APIs, where null removes a key; a file has no
            // null: the key is removed from it.
            let why = why.replace("use null", "remove the key from the file");
            format!("{context}: setting [{key}] = {value}: {why}")
        })?;
        flat.insert(canonical.as_ref().to_owned(), value);
    }
    Ok(flat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(text: &str) -> String {
        parse(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_file_gives_its_version_routes_and_levels_validated_and_canonical() {
        let file = parse(
            json!({
                "metadata": {"version": "7"},
                "routes": {
                    "_all": {"limits.timeout": "30S"},
                    "search, export*": {"limits": {"max_in_flight": "8"}, "preempt.status": 503},
                    "empty": {}
                },
                "logging": {"logger": {"_root": "WARN", "my_app::db": "debug"}},
                "node": {"poll_timing": {"enabled": true}, "blocking.threshold": "25MS"}
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(file.version, 7);
        assert_eq!(
            file.routes,
            [
                RouteEntry {
                    ids: "_all".to_owned(),
                    settings: [("limits.timeout".to_owned(), json!("30s"))].into()
                },
                RouteEntry {
                    ids: "search, export*".to_owned(),
                    settings: [
                        ("limits.max_in_flight".to_owned(), json!(8)),
                        ("preempt.status".to_owned(), json!(503))
                    ]
                    .into()
                },
            ]
        );
        assert_eq!(
            file.logging,
            [
                ("logger._root".to_owned(), json!("warn")),
                ("logger.my_app::db".to_owned(), json!("debug"))
            ]
            .into()
        );
        assert_eq!(
            file.node,
            [
                ("blocking.threshold".to_owned(), json!("25ms")),
                ("poll_timing.enabled".to_owned(), json!(true))
            ]
            .into()
        );
        // The smallest file: a version, nothing set.
        assert_eq!(
            parse(br#"{"metadata":{"version":0}}"#).unwrap(),
            OperatorFile::default()
        );
    }

    #[test]
    fn a_bad_file_says_what_is_wrong_and_where() {
        assert_eq!(
            err("{\n  \"metadata\": {\"version\": 1},\n  \"routes\": {\n}"),
            "not valid JSON: EOF while parsing an object at line 4 column 1"
        );
        assert_eq!(
            err("[]"),
            "the file must be a JSON object with [metadata], [routes], [logging] and [node]"
        );
        assert!(err(r#"{"routes":{}}"#).starts_with("[metadata.version] is missing"));
        assert!(err(r#"{"metadata":{"version":-1}}"#).contains("must be a whole number"));
        assert!(err(r#"{"metadata":{"version":1.5}}"#).contains("got [1.5]"));
        assert!(err(r#"{"metadata":{"version":1,"x":2}}"#).contains("[metadata.x]"));
        assert!(err(r#"{"metadata":{"version":1},"persistent":{}}"#)
            .starts_with("unknown field [persistent]"));
        let bad =
            |routes: Value| err(&json!({"metadata": {"version": 1}, "routes": routes}).to_string());
        assert_eq!(
            bad(json!({"search": {"limits.timeout": "0s"}})),
            "routes [search]: setting [limits.timeout] = \"0s\": must be more than zero; to \
             remove the timeout, remove the key from the file"
        );
        assert_eq!(
            bad(json!({"search": {"limits": {"max": 1}}})),
            "routes [search]: unknown setting [limits.max]"
        );
        assert!(bad(json!({"a,,b": {"preempt.status": 503}})).contains("an empty item"));
        assert!(bad(json!({"a b": {"preempt.status": 503}})).contains("[a b] is no route id"));
        assert!(bad(json!({"a": {"preempt.*": null}})).contains("is a pattern"));
        assert!(bad(json!({"a": {"preempt.status": null}})).contains("is null"));
        assert!(
            bad(json!({"a": {"preempt": {"status": 503}, "preempt.status": 503}}))
                .contains("more than once")
        );
        assert!(bad(json!({"a": 5})).contains("must be an object"));
        let levels = |logging: Value| {
            err(&json!({"metadata": {"version": 1}, "logging": logging}).to_string())
        };
        assert!(levels(json!({"logger.x": "loud"})).starts_with("logging: setting [logger.x]"));
        assert!(levels(json!({"preempt.status": 503})).starts_with("logging: unknown setting"));
        let node =
            |node: Value| err(&json!({"metadata": {"version": 1}, "node": node}).to_string());
        assert_eq!(
            node(json!({"blocking.threshold": "0ms"})),
            "node: setting [blocking.threshold] = \"0ms\": must be more than zero and at most 1h; \
             to go back to the default, remove the key from the file"
        );
        assert!(node(json!({"limits.timeout": "1s"})).contains("is a route setting"));
        assert!(node(json!({"poll_timing.enabled": null})).contains("is null"));
    }

    #[test]
    fn the_closest_entry_wins_a_key_then_the_later_one() {
        let entry = |ids: &str, key: &str, v: u64| RouteEntry {
            ids: ids.to_owned(),
            settings: [(key.to_owned(), json!(v))].into(),
        };
        let entries = [
            entry("search", "limits.max_in_flight", 1),
            entry("se*", "limits.max_in_flight", 2),
            entry("_all", "limits.max_in_flight", 3),
            entry("_all", "limits.retry_after", 4),
            entry("*", "limits.retry_after", 5),
        ];
        let of = |id: &str| super::super::tiers::operator_for(&entries, id);
        assert_eq!(of("search")["limits.max_in_flight"], json!(1));
        assert_eq!(of("send")["limits.max_in_flight"], json!(2));
        assert_eq!(of("other")["limits.max_in_flight"], json!(3));
        // Equally close: the later entry.
        assert_eq!(of("other")["limits.retry_after"], json!(5));
    }
}
