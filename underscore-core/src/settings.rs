//! Route settings: the keys and their validation, the persistent and transient tiers with
//! Elasticsearch's update semantics, the effective value the middleware applies, and the
//! settings file.
//!
//! # Adding a key
//!
//! Add a [`KeySpec`] to [`KEYS`] (name, description, parser), then read it where its effect
//! lives (for `preempt.*`, [`Preempt::from_settings`]). Validation, both tiers, dot notation,
//! wildcard resets, `flat_settings`, `include_defaults` and the file format follow by themselves.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use serde_json::{Map, Value};

use crate::{glob, ApiError};

/// Settings of one route in one tier: flat dotted key to validated value.
pub type Flat = BTreeMap<String, Value>;

/// One settings key.
#[derive(Debug)]
pub struct KeySpec {
    /// The dotted key, e.g. `preempt.status`.
    pub key: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Validates a (non-null) value and returns its canonical form, or says what is wrong.
    parse: fn(&Value) -> Result<Value, String>,
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

fn spec(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.key == key)
}

/// A settings tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Survives restarts: written to the settings file.
    Persistent,
    /// Lost on restart; wins over persistent.
    Transient,
}

impl Tier {
    /// `persistent` or `transient`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Persistent => "persistent",
            Tier::Transient => "transient",
        }
    }
}

/// What a PUT asks for one key, or a wildcard group of keys.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Set(&'static str, Value),
    Reset(String),
}

/// A validated PUT body.
#[derive(Debug, Default)]
pub struct Update {
    persistent: Vec<Change>,
    transient: Vec<Change>,
}

impl Update {
    /// Parses and validates a PUT body: every key known, every value valid, or an error that
    /// names the key and the value.
    ///
    /// # Errors
    ///
    /// A 400 `parse_exception` for malformed JSON or an empty body, a 400
    /// `illegal_argument_exception` for anything else.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::parse("request body is required"));
        }
        // serde_json refuses nesting deeper than 128 levels: deep bodies are an error, not a
        // stack overflow.
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::parse(format!("request body is not valid JSON: {e}")))?;
        let Value::Object(top) = value else {
            return Err(ApiError::illegal_argument(
                "request body must be an object with [persistent] and/or [transient]",
            ));
        };
        let mut update = Update::default();
        for (tier_name, settings) in top {
            let tier = match tier_name.as_str() {
                "persistent" => Tier::Persistent,
                "transient" => Tier::Transient,
                other => {
                    return Err(ApiError::illegal_argument(format!(
                    "unknown field [{other}] in request body, expected [persistent] or [transient]"
                )))
                }
            };
            let Value::Object(settings) = settings else {
                return Err(ApiError::illegal_argument(format!(
                    "[{tier_name}] must be an object of settings"
                )));
            };
            let mut flat: Vec<(String, Value)> = Vec::new();
            flatten("", settings, &mut flat);
            let mut seen: HashSet<String> = HashSet::new();
            let changes = match tier {
                Tier::Persistent => &mut update.persistent,
                Tier::Transient => &mut update.transient,
            };
            for (key, value) in flat {
                if !seen.insert(key.clone()) {
                    return Err(ApiError::illegal_argument(format!(
                        "{tier_name} setting [{key}] is given more than once"
                    )));
                }
                changes.push(change(tier, key, value)?);
            }
        }
        Ok(update)
    }

    /// Whether the update touches the persistent tier.
    pub fn touches_persistent(&self) -> bool {
        !self.persistent.is_empty()
    }

    fn changes(&self, tier: Tier) -> &[Change] {
        match tier {
            Tier::Persistent => &self.persistent,
            Tier::Transient => &self.transient,
        }
    }
}

/// Flattens nested objects into dotted keys; an empty object contributes nothing.
fn flatten(prefix: &str, map: Map<String, Value>, out: &mut Vec<(String, Value)>) {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) => flatten(&key, inner, out),
            other => out.push((key, other)),
        }
    }
}

fn change(tier: Tier, key: String, value: Value) -> Result<Change, ApiError> {
    let tier_name = tier.name();
    if glob::is_pattern(&key) {
        if !value.is_null() {
            return Err(ApiError::illegal_argument(format!(
                "{tier_name} setting [{key}] is a pattern: it can only be reset with null, got [{value}]"
            )));
        }
        if !KEYS.iter().any(|k| glob::matches(&key, k.key)) {
            return Err(ApiError::illegal_argument(format!(
                "{tier_name} setting [{key}], matches no setting"
            )));
        }
        return Ok(Change::Reset(key));
    }
    let Some(spec) = spec(&key) else {
        let hint = if KEYS.iter().any(|k| k.key.starts_with(&format!("{key}."))) {
            format!("; to reset the group, use [{key}.*]")
        } else {
            String::new()
        };
        return Err(ApiError::illegal_argument(format!(
            "{tier_name} setting [{key}], not recognized{hint}"
        )));
    };
    if value.is_null() {
        return Ok(Change::Reset(key));
    }
    let value = (spec.parse)(&value).map_err(|why| {
        ApiError::illegal_argument(format!(
            "failed to parse {tier_name} setting [{key}] with value [{value}]: {why}"
        ))
    })?;
    Ok(Change::Set(spec.key, value))
}

fn apply(flat: &mut Flat, changes: &[Change]) {
    for change in changes {
        match change {
            Change::Set(key, value) => {
                flat.insert((*key).to_owned(), value.clone());
            }
            Change::Reset(pattern) => flat.retain(|key, _| !glob::matches(pattern, key)),
        }
    }
}

/// Turns flat keys into nested objects: `preempt.status` into `{"preempt": {"status": ..}}`.
pub fn nest(flat: &Flat) -> Value {
    let mut root = Map::new();
    for (key, value) in flat {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().expect("split yields at least one part");
        let mut node = &mut root;
        for part in parts {
            let entry = node
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            node = entry
                .as_object_mut()
                .expect("keys never prefix one another");
        }
        node.insert(last.to_owned(), value.clone());
    }
    Value::Object(root)
}

/// The defaults: every key, unset.
pub fn defaults() -> Flat {
    KEYS.iter()
        .map(|k| (k.key.to_owned(), Value::Null))
        .collect()
}

/// A preempted response, computed once per settings change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preempt {
    /// The status code.
    pub status: u16,
    /// The reason phrase, interned (actix takes a `&'static str`).
    pub reason: Option<&'static str>,
    /// The text/plain body.
    pub text: Option<String>,
    /// The `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
}

impl Preempt {
    /// The preempt that `effective` settings ask for: `None` without `preempt.status`.
    pub fn from_settings(effective: &Flat) -> Option<Self> {
        let status = effective.get("preempt.status")?.as_u64()? as u16;
        Some(Self {
            status,
            reason: effective
                .get("preempt.reason")
                .and_then(Value::as_str)
                .map(intern),
            text: effective
                .get("preempt.text")
                .and_then(Value::as_str)
                .map(str::to_owned),
            retry_after: effective.get("preempt.retry_after").and_then(Value::as_u64),
        })
    }
}

/// Interns a reason phrase: each distinct phrase is leaked once, never per request or change.
fn intern(reason: &str) -> &'static str {
    static PHRASES: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Mutex::default);
    let mut phrases = PHRASES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = phrases.get(reason) {
        return found;
    }
    let leaked: &'static str = Box::leak(reason.to_owned().into_boxed_str());
    phrases.insert(leaked);
    leaked
}

/// The effective settings of one route, as the middleware reads them on every request.
///
/// Reading costs one atomic load while the route has no preempt: the lock behind it is taken
/// only for a preempted route.
#[derive(Debug, Default)]
pub struct SettingsSlot {
    preempting: AtomicBool,
    preempt: RwLock<Option<Arc<Preempt>>>,
}

impl SettingsSlot {
    /// An empty slot.
    pub const fn new() -> Self {
        Self {
            preempting: AtomicBool::new(false),
            preempt: RwLock::new(None),
        }
    }

    /// The preempt to answer with, if any.
    #[inline]
    pub fn preempt(&self) -> Option<Arc<Preempt>> {
        // Acquire pairs with the Release in `set`: once the flag is seen, so is the value.
        if !self.preempting.load(Ordering::Acquire) {
            return None;
        }
        self.preempt
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the route is preempted now.
    pub fn is_preempting(&self) -> bool {
        self.preempting.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self, preempt: Option<Preempt>) {
        let on = preempt.is_some();
        *self.preempt.write().unwrap_or_else(|e| e.into_inner()) = preempt.map(Arc::new);
        self.preempting.store(on, Ordering::Release);
    }
}

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
}

/// The format tag of the settings file.
const FILE_FORMAT: &str = "underscore-settings/1";

#[derive(Debug, Default, Clone)]
pub(crate) struct Tiers {
    pub persistent: BTreeMap<String, Flat>,
    pub transient: BTreeMap<String, Flat>,
}

impl Tiers {
    pub(crate) fn tier(&self, tier: Tier) -> &BTreeMap<String, Flat> {
        match tier {
            Tier::Persistent => &self.persistent,
            Tier::Transient => &self.transient,
        }
    }

    fn tier_mut(&mut self, tier: Tier) -> &mut BTreeMap<String, Flat> {
        match tier {
            Tier::Persistent => &mut self.persistent,
            Tier::Transient => &mut self.transient,
        }
    }

    /// Transient, else persistent, else default (unset).
    pub(crate) fn effective(&self, id: &str) -> Flat {
        let mut out = self.persistent.get(id).cloned().unwrap_or_default();
        if let Some(transient) = self.transient.get(id) {
            out.extend(transient.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    /// Every id that has settings in either tier.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &String> {
        self.persistent.keys().chain(
            self.transient
                .keys()
                .filter(|k| !self.persistent.contains_key(*k)),
        )
    }
}

/// One key's change, for the audit log.
#[derive(Debug)]
pub(crate) struct Changed {
    pub id: String,
    pub tier: Tier,
    pub key: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// The settings of every route: both tiers, and the file the persistent one lives in.
#[derive(Debug, Default)]
pub struct SettingsStore {
    pub(crate) state: Mutex<StoreState>,
}

#[derive(Debug, Default)]
pub(crate) struct StoreState {
    pub tiers: Tiers,
    pub file: Option<PathBuf>,
}

impl SettingsStore {
    /// Uses `path` for the persistent tier: loads it now (a missing file is an empty one), and
    /// writes it on every persistent change.
    ///
    /// # Errors
    ///
    /// [`SettingsError::Corrupt`] or [`SettingsError::Unreadable`], naming the file, which is
    /// left untouched; [`SettingsError::AlreadyConfigured`] on a second call.
    pub fn configure_file(&self, path: impl Into<PathBuf>) -> Result<Vec<String>, SettingsError> {
        let path = path.into();
        let mut state = self.lock();
        if let Some(existing) = &state.file {
            return Err(SettingsError::AlreadyConfigured {
                path: existing.clone(),
            });
        }
        let persistent = load_file(&path)?;
        let ids: Vec<String> = persistent.keys().cloned().collect();
        state.tiers.persistent = persistent;
        state.file = Some(path);
        Ok(ids)
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, StoreState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StoreState {
    /// Applies `update` to `ids`: computes the new tiers, writes the file if the persistent tier
    /// changed, and only then commits. Returns what changed.
    ///
    /// An update that names the persistent tier is refused when no file is configured, even
    /// if it would change nothing: the caller learns at once that persistence is off.
    pub(crate) fn apply(
        &mut self,
        ids: &[String],
        update: &Update,
    ) -> Result<Vec<Changed>, ApiError> {
        let file = match (self.file.as_deref(), update.touches_persistent()) {
            (None, true) => return Err(no_file()),
            (file, _) => file,
        };
        let mut next = self.tiers.clone();
        let mut changed = Vec::new();
        for tier in [Tier::Persistent, Tier::Transient] {
            let changes = update.changes(tier);
            if changes.is_empty() {
                continue;
            }
            for id in ids {
                let old = next.tier(tier).get(id).cloned().unwrap_or_default();
                let mut new = old.clone();
                apply(&mut new, changes);
                if new == old {
                    continue;
                }
                for key in old
                    .keys()
                    .chain(new.keys().filter(|k| !old.contains_key(*k)))
                {
                    let (o, n) = (old.get(key), new.get(key));
                    if o != n {
                        changed.push(Changed {
                            id: id.clone(),
                            tier,
                            key: key.clone(),
                            old: o.cloned(),
                            new: n.cloned(),
                        });
                    }
                }
                if new.is_empty() {
                    next.tier_mut(tier).remove(id);
                } else {
                    next.tier_mut(tier).insert(id.clone(), new);
                }
            }
        }
        // The persistent tier changes only through an update that names it: `file` is set.
        if let (true, Some(file)) = (next.persistent != self.tiers.persistent, file) {
            write_file(file, &next.persistent).map_err(|e| {
                ApiError::new(
                    500,
                    "io_exception",
                    format!(
                        "failed to write the settings file [{}]: {e}; nothing was changed",
                        file.display()
                    ),
                )
            })?;
        }
        self.tiers = next;
        Ok(changed)
    }
}

fn no_file() -> ApiError {
    ApiError::illegal_argument(
        "persistent settings are disabled: no settings file is configured; enable them with \
         Underscore::builder().settings_file(path) (the quickstart reads UNDERSCORE_SETTINGS)",
    )
}

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

/// Reads the persistent tier from `path`; a missing file is an empty tier.
fn load_file(path: &Path) -> Result<BTreeMap<String, Flat>, SettingsError> {
    check_owner(path)?;
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
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
        let mut flat = Flat::new();
        for (key, value) in settings {
            let spec = spec(&key)
                .ok_or_else(|| corrupt(format!("route [{id}]: unknown setting [{key}]")))?;
            let value = (spec.parse)(&value).map_err(|why| {
                corrupt(format!("route [{id}]: setting [{key}] = {value}: {why}"))
            })?;
            flat.insert(key, value);
        }
        if !flat.is_empty() {
            out.insert(id, flat);
        }
    }
    Ok(out)
}

/// Writes the persistent tier so that a crash at any instant leaves the old file or the new
/// one: a temporary file beside it, written and fsynced, renamed over it, then the directory
/// fsynced so the rename itself is durable.
fn write_file(path: &Path, persistent: &BTreeMap<String, Flat>) -> io::Result<()> {
    let routes: Map<String, Value> = persistent
        .iter()
        .map(|(id, flat)| {
            let obj: Map<String, Value> =
                flat.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            (id.clone(), Value::Object(obj))
        })
        .collect();
    let doc = serde_json::json!({"format": FILE_FORMAT, "routes": routes});
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

    fn update(body: Value) -> Result<Update, ApiError> {
        Update::parse(body.to_string().as_bytes())
    }

    fn reason(body: Value) -> String {
        update(body).unwrap_err().reason
    }

    #[test]
    fn nested_and_dotted_keys_are_equivalent() {
        let a =
            update(json!({"transient": {"preempt": {"status": 503, "reason": "Busy"}}})).unwrap();
        let b =
            update(json!({"transient": {"preempt.status": 503, "preempt": {"reason": "Busy"}}}))
                .unwrap();
        assert_eq!(a.transient, b.transient);
        assert!(!a.touches_persistent());
    }

    #[test]
    fn values_are_validated_and_named() {
        assert_eq!(
            reason(json!({"transient": {"preempt.status": 42}})),
            "failed to parse transient setting [preempt.status] with value [42]: must be an integer from 200 to 599"
        );
        assert!(reason(json!({"persistent": {"preempt": {"status": true}}}))
            .contains("[preempt.status] with value [true]"));
        assert!(
            reason(json!({"transient": {"preempt.reason": "a\r\nInjected: 1"}}))
                .contains("printable ASCII")
        );
        assert!(reason(json!({"transient": {"preempt.reason": ""}})).contains("1 to 128"));
        assert!(reason(json!({"transient": {"preempt.retry_after": -1}}))
            .contains("[preempt.retry_after]"));
        assert!(reason(json!({"transient": {"preempt.text": 5}})).contains("must be a string"));
        // Numbers written as strings are accepted, as in Elasticsearch.
        let u = update(json!({"transient": {"preempt.status": "503"}})).unwrap();
        assert_eq!(u.transient, [Change::Set("preempt.status", json!(503))]);
    }

    #[test]
    fn unknown_keys_and_shapes_are_rejected() {
        assert_eq!(
            reason(json!({"transient": {"preempt.stat": 1}})),
            "transient setting [preempt.stat], not recognized"
        );
        assert_eq!(
            reason(json!({"transient": {"preempt": null}})),
            "transient setting [preempt], not recognized; to reset the group, use [preempt.*]"
        );
        assert!(reason(json!({"sometimes": {}})).contains("unknown field [sometimes]"));
        assert!(reason(json!({"transient": null})).contains("[transient] must be an object"));
        assert!(reason(json!([1])).contains("must be an object"));
        assert!(reason(json!({"transient": {"preempt.*": 503}}))
            .contains("can only be reset with null"));
        assert!(reason(json!({"transient": {"nothing.*": null}})).contains("matches no setting"));
        assert!(
            reason(json!({"transient": {"preempt": {"status": 500}, "preempt.status": 503}}))
                .contains("more than once")
        );
    }

    #[test]
    fn malformed_and_deep_bodies_are_parse_errors() {
        assert_eq!(Update::parse(b"{nope").unwrap_err().kind, "parse_exception");
        assert_eq!(
            Update::parse(b"  ").unwrap_err().reason,
            "request body is required"
        );
        let deep = "[".repeat(100_000);
        assert_eq!(
            Update::parse(deep.as_bytes()).unwrap_err().kind,
            "parse_exception"
        );
        let deep_obj = format!("{{\"transient\":{}{}", "{\"a\":".repeat(5000), "1");
        assert_eq!(Update::parse(deep_obj.as_bytes()).unwrap_err().status, 400);
    }

    #[test]
    fn set_reset_and_group_reset() {
        let mut flat = Flat::new();
        apply(
            &mut flat,
            &update(
                json!({"transient": {"preempt": {"status": 503, "reason": "Busy", "text": "t"}}}),
            )
            .unwrap()
            .transient,
        );
        assert_eq!(flat.len(), 3);
        // Absent keys are untouched; null resets one key.
        apply(
            &mut flat,
            &update(json!({"transient": {"preempt.status": 500, "preempt.text": null}}))
                .unwrap()
                .transient,
        );
        assert_eq!(
            nest(&flat),
            json!({"preempt": {"reason": "Busy", "status": 500}})
        );
        apply(
            &mut flat,
            &update(json!({"transient": {"preempt.*": null}}))
                .unwrap()
                .transient,
        );
        assert!(flat.is_empty());
    }

    #[test]
    fn effective_is_transient_then_persistent() {
        let mut tiers = Tiers::default();
        tiers.persistent.insert(
            "a".into(),
            [
                ("preempt.status".to_owned(), json!(503)),
                ("preempt.reason".to_owned(), json!("P")),
            ]
            .into(),
        );
        tiers.transient.insert(
            "a".into(),
            [("preempt.reason".to_owned(), json!("T"))].into(),
        );
        let p = Preempt::from_settings(&tiers.effective("a")).unwrap();
        assert_eq!((p.status, p.reason), (503, Some("T")));
        assert_eq!(Preempt::from_settings(&tiers.effective("b")), None);
        // A reason without a status preempts nothing.
        tiers.persistent.clear();
        assert_eq!(Preempt::from_settings(&tiers.effective("a")), None);
    }

    #[test]
    fn file_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        assert!(load_file(&path).unwrap().is_empty());
        let mut tiers: BTreeMap<String, Flat> = BTreeMap::new();
        tiers.insert(
            "gone".into(),
            [("preempt.status".to_owned(), json!(503))].into(),
        );
        write_file(&path, &tiers).unwrap();
        assert_eq!(load_file(&path).unwrap(), tiers);
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
    fn reasons_are_interned() {
        assert!(std::ptr::eq(
            intern("Busy now"),
            intern(&String::from("Busy now"))
        ));
    }

    #[test]
    fn a_persistent_update_without_a_file_is_refused_even_when_it_changes_nothing() {
        let mut state = StoreState::default();
        let ids = vec!["r".to_owned()];
        let noop = update(json!({"persistent": {"preempt.status": null}})).unwrap();
        assert_eq!(state.apply(&ids, &noop).unwrap_err().status, 400);
        let both = update(
            json!({"persistent": {"preempt.status": 503}, "transient": {"preempt.status": 429}}),
        )
        .unwrap();
        assert!(state.apply(&ids, &both).is_err());
        assert!(state.tiers.transient.is_empty(), "nothing half-applied");
        let transient = update(json!({"transient": {"preempt.status": 429}})).unwrap();
        assert_eq!(state.apply(&ids, &transient).unwrap().len(), 1);
    }
}
