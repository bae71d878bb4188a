//! The settings file: where the persistent tier lives, written so that a crash never leaves
//! it half-written, and refused at start-up when it is corrupt or not safe to trust.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::keys::{KeySet, LoggerKeys, NodeKeys, RouteKeys};
use super::Flat;

/// Why the settings file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The file exists but could not be read.
    #[error("cannot read the settings file {}: {source}", .path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not a valid settings file; it was left untouched.
    #[error("the settings file {} is corrupt ({reason}); it was left untouched: fix or remove it", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file is not safe to trust: another user owns it or may write it; it was left
    /// untouched.
    #[error("the settings file {} is not safe to use: {reason}", .path.display())]
    Insecure {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A settings file is already configured for this process.
    #[error("a settings file is already configured ({}); it can be set once per process", .path.display())]
    AlreadyConfigured {
        /// The file already in use.
        path: PathBuf,
    },
    /// An operator settings file is already configured for this process.
    #[error("an operator settings file is already configured ({}); it can be set once per process", .path.display())]
    OperatorAlreadyConfigured {
        /// The file already in use.
        path: PathBuf,
    },
    /// The operator settings file cannot be watched for changes.
    #[error("cannot watch the operator settings file {}: {reason}", .path.display())]
    Unwatchable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The format tag of the settings file.
const FILE_FORMAT: &str = "underscore-settings/1";

/// Refuses a settings file that another user owns or may write: whoever can write it decides
/// which routes answer 503 at the next start.
fn check_owner(path: &Path) -> Result<(), SettingsError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    // The owner of /proc/self is this process's effective uid.
    let me = fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let insecure = |reason: String| SettingsError::Insecure {
        path: path.to_owned(),
        reason,
    };
    if !meta.file_type().is_file() {
        return Err(insecure("it is not a regular file".to_owned()));
    }
    if me.is_some_and(|me| me != meta.uid()) {
        return Err(insecure(format!(
            "it is owned by uid {}, not by this process",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(insecure(format!(
            "others may write it (mode {:o}); chmod go-w it",
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

/// What the settings file holds: the persistent tier of the routes, of the log levels and of
/// the node settings.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    pub routes: BTreeMap<String, Flat>,
    pub logging: Flat,
    pub node: Flat,
}

/// The persistent tier of every section, to be written.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sections<'a> {
    pub routes: &'a BTreeMap<String, Flat>,
    pub logging: &'a Flat,
    pub node: &'a Flat,
}

/// Reads the persistent tier from `path`; a missing file is an empty tier.
pub(super) fn load_file(path: &Path) -> Result<Loaded, SettingsError> {
    check_owner(path)?;
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(source) => {
            return Err(SettingsError::Unreadable {
                path: path.to_owned(),
                source,
            })
        }
    };
    let corrupt = |reason: String| SettingsError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not valid JSON: {e}")))?;
    let Value::Object(mut top) = value else {
        return Err(corrupt("not a JSON object".to_owned()));
    };
    if top.get("format").and_then(Value::as_str) != Some(FILE_FORMAT) {
        return Err(corrupt(format!("[format] is not [{FILE_FORMAT}]")));
    }
    let Some(Value::Object(routes)) = top.remove("routes") else {
        return Err(corrupt("[routes] is missing or not an object".to_owned()));
    };
    let mut out = BTreeMap::new();
    for (id, settings) in routes {
        let Value::Object(settings) = settings else {
            return Err(corrupt(format!(
                "the settings of route [{id}] are not an object"
            )));
        };
        let flat = section(&RouteKeys, settings, &format!("route [{id}]")).map_err(corrupt)?;
        if !flat.is_empty() {
            out.insert(id, flat);
        }
    }
    // Optional: files written before log levels existed, or without any, have none.
    let logging = match top.remove("logging") {
        None => Flat::new(),
        Some(Value::Object(levels)) => section(&LoggerKeys, levels, "logging").map_err(corrupt)?,
        Some(_) => return Err(corrupt("[logging] is not an object".to_owned())),
    };
    // Optional as well: files written before node settings existed have none.
    let node = match top.remove("node") {
        None => Flat::new(),
        Some(Value::Object(node)) => section(&NodeKeys, node, "node").map_err(corrupt)?,
        Some(_) => return Err(corrupt("[node] is not an object".to_owned())),
    };
    Ok(Loaded {
        routes: out,
        logging,
        node,
    })
}

/// The settings of one section of the file (a route's, the log levels), each key known to
/// `keys` and each value valid; or what is wrong, after `context`.
fn section<S: KeySet>(
    keys: &S,
    settings: Map<String, Value>,
    context: &str,
) -> Result<Flat, String> {
    let mut flat = Flat::new();
    for (key, value) in settings {
        let (canonical, parse) = keys
            .check(&key)
            .map_err(|why| format!("{context}: unknown setting [{key}]{why}"))?;
        let value =
            parse(&value).map_err(|why| format!("{context}: setting [{key}] = {value}: {why}"))?;
        flat.insert(canonical.as_ref().to_owned(), value);
    }
    Ok(flat)
}

/// Writes the persistent tier so that a crash at any instant leaves the old file or the new
/// one: a temporary file beside it, written and fsynced, renamed over it, then the directory
/// fsynced so the rename itself is durable.
///
/// A section without settings (`logging`, `node`) is left out, as in files written before it
/// existed.
pub(super) fn write_file(path: &Path, sections: Sections<'_>) -> io::Result<()> {
    let routes: Map<String, Value> = sections
        .routes
        .iter()
        .map(|(id, flat)| {
            let obj: Map<String, Value> =
                flat.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            (id.clone(), Value::Object(obj))
        })
        .collect();
    let mut doc = serde_json::json!({"format": FILE_FORMAT, "routes": routes});
    for (name, flat) in [("logging", sections.logging), ("node", sections.node)] {
        if !flat.is_empty() {
            doc[name] = Value::Object(flat.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        }
    }
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("a Value always serializes");
    bytes.push(b'\n');

    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".tmp.{}.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    ));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        // `create_new`: never write into a file someone else prepared (or a link to one).
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    // The new file is in place: from here the change is made, whatever happens next.
    if let Err(err) = File::open(&dir).and_then(|d| d.sync_all()) {
        tracing::warn!(
            file = %path.display(),
            %err,
            "settings file written, but its directory could not be synced: a power loss now \
             could bring back the previous version"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sections<'a>(
        routes: &'a BTreeMap<String, Flat>,
        logging: &'a Flat,
        node: &'a Flat,
    ) -> Sections<'a> {
        Sections {
            routes,
            logging,
            node,
        }
    }

    #[test]
    fn file_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        assert!(load_file(&path).unwrap().routes.is_empty());
        let mut tiers: BTreeMap<String, Flat> = BTreeMap::new();
        tiers.insert(
            "gone".into(),
            [("preempt.status".to_owned(), json!(503))].into(),
        );
        write_file(&path, sections(&tiers, &Flat::new(), &Flat::new())).unwrap();
        assert_eq!(load_file(&path).unwrap().routes, tiers);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["settings.json"], "no temporary file is left behind");
        // A file others may write is refused, and left as it is.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let err = load_file(&path).unwrap_err();
        assert!(matches!(err, SettingsError::Insecure { .. }), "{err}");
        assert!(err.to_string().contains("others may write it"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

        for bad in [
            "{",
            "[]",
            r#"{"format":"other","routes":{}}"#,
            r#"{"format":"underscore-settings/1"}"#,
            r#"{"format":"underscore-settings/1","routes":{"a":{"preempt.status":42}}}"#,
            r#"{"format":"underscore-settings/1","routes":{"a":{"nope":1}}}"#,
        ] {
            fs::write(&path, bad).unwrap();
            let err = load_file(&path).unwrap_err();
            assert!(matches!(err, SettingsError::Corrupt { .. }), "{bad}: {err}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
            assert_eq!(fs::read_to_string(&path).unwrap(), bad, "left untouched");
        }
    }

    #[test]
    fn the_logging_and_node_sections_are_optional_validated_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let routes: BTreeMap<String, Flat> = [(
            "a".into(),
            [("preempt.status".to_owned(), json!(503))].into(),
        )]
        .into();
        // No levels: no `logging` object, the file is as it was before log levels existed.
        let none = Flat::new();
        write_file(&path, sections(&routes, &none, &none)).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("logging") && !text.contains("node"),
            "{text}"
        );
        let levels: Flat = [("logger._root".to_owned(), json!("warn"))].into();
        let node: Flat = [("blocking.threshold".to_owned(), json!("25ms"))].into();
        write_file(&path, sections(&routes, &levels, &node)).unwrap();
        let loaded = load_file(&path).unwrap();
        assert_eq!(
            (loaded.routes, loaded.logging, loaded.node),
            (routes, levels, node)
        );

        for (bad, why) in [
            (r#""logging":[]"#, "[logging] is not an object"),
            (
                r#""logging":{"logger.x":"loud"}"#,
                "logging: setting [logger.x]",
            ),
            (
                r#""logging":{"logger.a=b":"info"}"#,
                "logging: unknown setting [logger.a=b]",
            ),
            (
                r#""logging":{"preempt.status":503}"#,
                "logging: unknown setting [preempt.status]",
            ),
            (r#""node":3"#, "[node] is not an object"),
            (
                r#""node":{"blocking.threshold":"0ms"}"#,
                "node: setting [blocking.threshold]",
            ),
            (
                r#""node":{"limits.timeout":"1s"}"#,
                "node: unknown setting [limits.timeout]",
            ),
        ] {
            let text = format!(r#"{{"format":"underscore-settings/1","routes":{{}},{bad}}}"#);
            fs::write(&path, &text).unwrap();
            let err = load_file(&path).unwrap_err();
            assert!(matches!(err, SettingsError::Corrupt { .. }), "{bad}: {err}");
            let msg = err.to_string();
            assert!(
                msg.contains(why) && msg.contains(&path.display().to_string()),
                "{msg}"
            );
            assert_eq!(fs::read_to_string(&path).unwrap(), text, "left untouched");
        }
    }
}
