//! The store of every setting: every tier of every route, of the log levels and of the node
//! settings, the settings file the persistent tier lives in, the operator settings file, and the
//! one lock they share.
//!
//! The top of the settings modules: it builds on [`tiers`](super::tiers), the settings
//! [`file`](mod@super::file), the [`logging`](super::logging) and `node` stores
//! and the [`operator`](super::operator) file; none of them imports it.
//!
//! # The operator tier
//!
//! The operator settings file is read again on every change (see
//! [`Registry::reload_operator_settings`](crate::Registry::reload_operator_settings)), and
//! applied all or nothing:
//!
//! - a file that is not valid (not JSON, an unknown key, a bad value, a log filter that
//!   refuses its levels) changes nothing: the last good state stays, and the error is kept for
//!   `GET /_operator/settings` and [`OperatorStatus`];
//! - `metadata.version` only moves forward: a lower version than the applied one is ignored
//!   (an error too); the same version with other settings is applied, with a warning;
//! - a missing file releases every key it set.
//!
//! A PUT that would change a key the file sets, in either tier, is a 400 naming the key and
//! the file; nothing is changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::Value;

use super::file::{load_file, write_file, Sections, SettingsError};
use super::logging::{LevelChanged, Loggers};
use super::node::NodeSettings;
use super::operator::{parse, OperatorFile};
use super::tiers::{apply, diff, Change, Changed, KeyChanged, RouteEntry, Tier, Tiers, Update};
use super::Flat;
use crate::{glob, ApiError};

/// The settings of every route: both tiers, and the file the persistent one lives in.
#[derive(Debug, Default)]
pub struct SettingsStore {
    pub(crate) state: Mutex<StoreState>,
}

#[derive(Debug, Default)]
pub(crate) struct StoreState {
    pub tiers: Tiers,
    pub file: Option<PathBuf>,
    /// The log levels: they share the settings file, and this lock, with the routes.
    pub logging: Loggers,
    /// The node settings: the same.
    pub node: NodeSettings,
    /// The operator settings file, when one is configured.
    pub operator: Option<OperatorState>,
}

/// The operator settings file, as the store knows it.
#[derive(Debug)]
pub(crate) struct OperatorState {
    pub file: PathBuf,
    /// The file in effect: `None` before the first good read, or after the file was removed.
    pub applied: Option<OperatorFile>,
    /// When the file in effect was applied, or the removed one released.
    pub applied_at: Option<SystemTime>,
    /// Why the last file read was not applied, and when; `None` once one is.
    pub last_error: Option<(String, SystemTime)>,
    /// What the last read found (`None`: no file), so that reading an unchanged file again
    /// does nothing, and says nothing.
    last_read: Option<Option<Vec<u8>>>,
}

impl OperatorState {
    pub(crate) fn new(file: PathBuf) -> Self {
        Self {
            file,
            applied: None,
            applied_at: None,
            last_error: None,
            last_read: None,
        }
    }

    /// A copy of what it says, for [`OperatorStatus`].
    pub(crate) fn status(&self) -> OperatorStatus {
        OperatorStatus {
            file: self.file.clone(),
            version: self.applied.as_ref().map(|f| f.version),
            applied_at: self.applied_at,
            last_error: self.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_at: self.last_error.as_ref().map(|(_, at)| *at),
        }
    }
}

/// The state of the operator settings file: which version is applied, and whether the file
/// read last was applied. A health check reads it (`operator_settings`: yellow while
/// [`OperatorStatus::is_ok`] is false).
///
/// # Examples
///
/// ```
/// let reg = underscore_core::Registry::from_routes([]);
/// assert!(reg.operator_status().is_none(), "no operator settings file is configured");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperatorStatus {
    /// The file.
    pub file: PathBuf,
    /// The `metadata.version` of the file in effect (`None`: none is, or it was removed).
    pub version: Option<u64>,
    /// When the file in effect was applied (or the removed one released).
    pub applied_at: Option<SystemTime>,
    /// Why the file read last was not applied: not valid, or a lower version than the applied
    /// one. `None` once one is applied.
    pub last_error: Option<String>,
    /// When that error was found.
    pub last_error_at: Option<SystemTime>,
}

impl OperatorStatus {
    /// Whether the file read last is the one in effect (no error).
    pub fn is_ok(&self) -> bool {
        self.last_error.is_none()
    }
}

/// What reading the operator settings file did.
#[derive(Debug)]
pub(crate) enum OperatorOutcome {
    /// Nothing: the file is as it was, or sets what is in effect.
    Unchanged,
    /// The file (or its removal) is in effect.
    Applied(OperatorApplied),
    /// A lower version than the one in effect: not applied.
    Older { version: u64, applied: u64 },
    /// Not applied: why.
    Failed(String),
}

/// What an applied operator settings file changed, for the audit log.
#[derive(Debug)]
pub(crate) struct OperatorApplied {
    /// The version now in effect (`None`: the file was removed).
    pub version: Option<u64>,
    /// The version that was (`None`: no file was in effect).
    pub previous: Option<u64>,
    /// The same version as the one in effect, with other settings.
    pub same_version: bool,
    /// Route settings changed: `{ids}` expression, key, old, new.
    pub routes: Vec<(String, String, Option<Value>, Option<Value>)>,
    /// Log levels changed: key, old, new.
    pub levels: Vec<(String, Option<Value>, Option<Value>)>,
    /// Node settings changed: key, old, new.
    pub node: Vec<(String, Option<Value>, Option<Value>)>,
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
        let loaded = load_file(&path)?;
        let ids: Vec<String> = loaded.routes.keys().cloned().collect();
        state.tiers.persistent = loaded.routes;
        state.logging.persistent = loaded.logging;
        state.node.persistent = loaded.node;
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
        let file = self.file_for(update.touches_persistent())?;
        for id in ids {
            self.check_reserved(&self.tiers.operator(id), update, Some(id))?;
        }
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
                changed.extend(diff(&old, &new).map(|(key, o, n)| Changed {
                    id: id.clone(),
                    tier,
                    key: key.clone(),
                    old: o.cloned(),
                    new: n.cloned(),
                }));
                if new.is_empty() {
                    next.tier_mut(tier).remove(id);
                } else {
                    next.tier_mut(tier).insert(id.clone(), new);
                }
            }
        }
        // The persistent tier changes only through an update that names it: `file` is set.
        if let (true, Some(file)) = (next.persistent != self.tiers.persistent, file) {
            // The other sections are written back as they are.
            let sections = Sections {
                routes: &next.persistent,
                ..self.sections()
            };
            write_settings(file, sections)?;
        }
        self.tiers = next;
        Ok(changed)
    }

    /// Applies a log level `update`, all or nothing: computes both tiers and the directives,
    /// writes the settings file if the persistent tier changed, reloads the filter, and only
    /// then commits. If the reload fails after the file was written, the file is written back.
    pub(crate) fn apply_levels(
        &mut self,
        update: &Update<String>,
    ) -> Result<Vec<LevelChanged>, ApiError> {
        self.logging.installed()?;
        let file = self.file_for(update.touches_persistent())?;
        self.check_reserved(&self.logging.operator, update, None)?;
        let next = self.logging.next(update)?;
        // Set only through an update that names the persistent tier: `file` is set then.
        let written = match file {
            Some(file) if next.persistent != self.logging.persistent => {
                let sections = Sections {
                    logging: &next.persistent,
                    ..self.sections()
                };
                write_settings(file, sections)?;
                Some(file)
            }
            _ => None,
        };
        if let Err((after, why)) = self.logging.reload_for(&next) {
            let mut reason =
                format!("failed to apply the log filter [{after}]: {why}; nothing was changed");
            if let Some(file) = written {
                if let Err(e) = write_file(file, self.sections()) {
                    reason = format!(
                        "failed to apply the log filter [{after}]: {why}; the levels in effect \
                         are unchanged, but the settings file [{}] could not be restored ({e}): \
                         it holds the new persistent levels, which would apply at the next start",
                        file.display()
                    );
                }
            }
            return Err(ApiError::new(500, "exception", reason));
        }
        Ok(self.logging.commit(next))
    }

    /// Applies a node settings `update`, all or nothing: computes both tiers, writes the
    /// settings file if the persistent tier changed, and only then commits. The caller applies
    /// the new values to the process.
    pub(crate) fn apply_node(&mut self, update: &Update) -> Result<Vec<KeyChanged>, ApiError> {
        let file = self.file_for(update.touches_persistent())?;
        self.check_reserved(&self.node.operator, update, None)?;
        let next = self.node.next(update);
        // Set only through an update that names the persistent tier: `file` is set then.
        if let (true, Some(file)) = (next.persistent != self.node.persistent, file) {
            let sections = Sections {
                node: &next.persistent,
                ..self.sections()
            };
            write_settings(file, sections)?;
        }
        Ok(self.node.commit(next))
    }

    /// The persistent tier of every section, as the settings file holds it.
    fn sections(&self) -> Sections<'_> {
        Sections {
            routes: &self.tiers.persistent,
            logging: &self.logging.persistent,
            node: &self.node.persistent,
        }
    }

    /// The settings file an update writes to: `None` when it leaves the persistent tier alone;
    /// an error when it names that tier but no file is configured (even if it would change
    /// nothing: the caller learns at once that persistence is off).
    pub(crate) fn file_for(&self, touches_persistent: bool) -> Result<Option<&Path>, ApiError> {
        match (self.file.as_deref(), touches_persistent) {
            (None, true) => Err(no_file()),
            (file, _) => Ok(file),
        }
    }
}

impl StoreState {
    /// Refuses an update that would change a key the operator settings file sets (`reserved`,
    /// the operator tier of route `id`, or of the log levels): a key it names, or a group it
    /// resets that holds one. The 400 names the key and the file.
    fn check_reserved<K: AsRef<str> + Clone + PartialEq + std::fmt::Debug>(
        &self,
        reserved: &Flat,
        update: &Update<K>,
        id: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(operator) = &self.operator else {
            return Ok(());
        };
        if reserved.is_empty() {
            return Ok(());
        }
        for tier in [Tier::Persistent, Tier::Transient] {
            for change in update.changes(tier) {
                let (named, key) = match change {
                    Change::Set(key, _) => (key.as_ref(), Some(key.as_ref())),
                    Change::Reset(pattern) => (
                        pattern.as_str(),
                        reserved
                            .keys()
                            .map(String::as_str)
                            .find(|key| glob::matches(pattern.as_str(), key)),
                    ),
                };
                let Some(key) = key.filter(|key| reserved.contains_key(*key)) else {
                    continue;
                };
                let of = id.map_or_else(String::new, |id| format!(" of route [{id}]"));
                let what = if named == key {
                    format!("{} setting [{key}]{of} is reserved", tier.name())
                } else {
                    format!(
                        "{} setting [{named}] would reset [{key}]{of}, which is reserved",
                        tier.name()
                    )
                };
                return Err(ApiError::illegal_argument(format!(
                    "{what} by the operator settings file [{}]: change it in that file, or \
                     remove it from the file to release it",
                    operator.file.display()
                )));
            }
        }
        Ok(())
    }

    /// Applies what was read of the operator settings file (`None`: there is none), all or
    /// nothing, at `now`. See the [module docs](self).
    pub(crate) fn apply_operator(
        &mut self,
        read: Result<Option<Vec<u8>>, String>,
        now: SystemTime,
    ) -> OperatorOutcome {
        let Some(operator) = self.operator.as_mut() else {
            return OperatorOutcome::Unchanged;
        };
        let read = match read {
            Ok(read) => read,
            Err(why) => {
                // Read again next time: an unreadable file may become readable.
                operator.last_read = None;
                operator.last_error = Some((why.clone(), now));
                return OperatorOutcome::Failed(why);
            }
        };
        if operator.last_read.as_ref() == Some(&read) {
            return OperatorOutcome::Unchanged;
        }
        operator.last_read = Some(read.clone());
        let file = match read.as_deref().map(parse).transpose() {
            Ok(file) => file,
            Err(why) => {
                operator.last_error = Some((why.clone(), now));
                return OperatorOutcome::Failed(why);
            }
        };
        let previous = operator.applied.as_ref().map(|f| f.version);
        if file.is_none() && previous.is_none() {
            // No file, and none was in effect: nothing to release.
            operator.last_error = None;
            return OperatorOutcome::Unchanged;
        }
        let mut same_version = false;
        if let (Some(new), Some(old)) = (&file, &operator.applied) {
            if new.version < old.version {
                operator.last_error = Some((
                    format!(
                        "[metadata.version] {} is lower than the version in effect, {}: the file \
                         was ignored",
                        new.version, old.version
                    ),
                    now,
                ));
                return OperatorOutcome::Older {
                    version: new.version,
                    applied: old.version,
                };
            }
            if new.version == old.version {
                if new.same_settings(old) {
                    operator.last_error = None;
                    return OperatorOutcome::Unchanged;
                }
                same_version = true;
            }
        }
        let (routes, levels, node) = file.as_ref().map_or_else(Default::default, |f| {
            (f.routes.clone(), f.logging.clone(), f.node.clone())
        });
        let next_levels = self.logging.next_operator(levels);
        if let Err((directives, why)) = self.logging.reload_for(&next_levels) {
            let why = format!("the log filter refused the directives [{directives}]: {why}");
            let operator = self.operator.as_mut().expect("checked above");
            // Read again next time: the filter may take it then.
            operator.last_read = None;
            operator.last_error = Some((why.clone(), now));
            return OperatorOutcome::Failed(why);
        }
        let route_changes = entry_diff(&self.tiers.operator, &routes);
        let level_changes = diff(&self.logging.operator, &next_levels.operator)
            .map(|(k, o, n)| (k.clone(), o.cloned(), n.cloned()))
            .collect();
        let node_changes = diff(&self.node.operator, &node)
            .map(|(k, o, n)| (k.clone(), o.cloned(), n.cloned()))
            .collect();
        self.tiers.operator = routes;
        self.logging.commit(next_levels);
        self.node.operator = node;
        let operator = self.operator.as_mut().expect("checked above");
        let version = file.as_ref().map(|f| f.version);
        operator.applied = file;
        operator.applied_at = Some(now);
        operator.last_error = None;
        OperatorOutcome::Applied(OperatorApplied {
            version,
            previous,
            same_version,
            routes: route_changes,
            levels: level_changes,
            node: node_changes,
        })
    }
}

/// Every route key whose value differs between two versions of the operator tier, by `{ids}`
/// expression.
fn entry_diff(
    old: &[RouteEntry],
    new: &[RouteEntry],
) -> Vec<(String, String, Option<Value>, Option<Value>)> {
    let by_ids = |entries: &[RouteEntry]| -> BTreeMap<String, Flat> {
        entries
            .iter()
            .map(|e| (e.ids.clone(), e.settings.clone()))
            .collect()
    };
    let (old, new) = (by_ids(old), by_ids(new));
    let empty = Flat::new();
    let mut out = Vec::new();
    for ids in old
        .keys()
        .chain(new.keys().filter(|k| !old.contains_key(*k)))
    {
        let (o, n) = (
            old.get(ids).unwrap_or(&empty),
            new.get(ids).unwrap_or(&empty),
        );
        out.extend(diff(o, n).map(|(k, o, n)| (ids.clone(), k.clone(), o.cloned(), n.cloned())));
    }
    out
}

/// Writes every section of the settings file, or the 500 that says nothing was changed.
fn write_settings(file: &Path, sections: Sections<'_>) -> Result<(), ApiError> {
    write_file(file, sections).map_err(|e| {
        ApiError::new(
            500,
            "io_exception",
            format!(
                "failed to write the settings file [{}]: {e}; nothing was changed",
                file.display()
            ),
        )
    })
}

pub(crate) fn no_file() -> ApiError {
    ApiError::illegal_argument(
        "persistent settings are disabled: no settings file is configured; enable them with \
         Underscore::builder().settings_file(path) (the quickstart reads UNDERSCORE_SETTINGS)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::keys::LoggerKeys;
    use crate::settings::logging::test_filter::recorder;
    use crate::settings::logging::{not_installed, InstallError};
    use serde_json::{json, Value};

    fn update(body: Value) -> Result<Update, ApiError> {
        Update::parse(body.to_string().as_bytes())
    }

    fn levels(body: Value) -> Result<Update<String>, ApiError> {
        Update::parse_with(body.to_string().as_bytes(), &LoggerKeys)
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

    #[test]
    fn levels_apply_through_the_filter_all_or_nothing() {
        let mut state = StoreState::default();
        let u = levels(json!({"transient": {"logger.a": "debug"}})).unwrap();
        assert_eq!(
            state.apply_levels(&u).unwrap_err().reason,
            not_installed().reason
        );
        let (apply, seen, fail) = recorder();
        state.logging.install("info", apply).unwrap();
        assert_eq!(*seen.lock().unwrap(), ["info,underscore::audit=info"]);
        let (again, _, _) = recorder();
        assert!(matches!(
            state.logging.install("warn", again),
            Err(InstallError::AlreadyInstalled)
        ));

        let changed = state.apply_levels(&u).unwrap();
        assert_eq!(
            changed,
            [LevelChanged {
                tier: Tier::Transient,
                key: "logger.a".to_owned(),
                old: None,
                new: Some(json!("debug"))
            }]
        );
        assert_eq!(
            seen.lock().unwrap().last().unwrap(),
            "info,a=debug,underscore::audit=info"
        );
        // No settings file: a persistent update is refused, and nothing changes.
        let p = levels(
            json!({"persistent": {"logger._root": "warn"}, "transient": {"logger.a": null}}),
        )
        .unwrap();
        assert_eq!(state.apply_levels(&p).unwrap_err().status, 400);
        assert_eq!(state.logging.transient.len(), 1);

        // A filter that fails: a 500, nothing committed.
        *fail.lock().unwrap() = true;
        let reset = levels(json!({"transient": {"logger.*": null}})).unwrap();
        let err = state.apply_levels(&reset).unwrap_err();
        assert_eq!((err.status, err.kind), (500, "exception"));
        assert!(err.reason.contains("nothing was changed"), "{}", err.reason);
        assert_eq!(state.logging.transient.len(), 1);
        *fail.lock().unwrap() = false;
        assert_eq!(state.apply_levels(&reset).unwrap().len(), 1);
        assert!(state.logging.transient.is_empty());
        // An update that leaves the directives as they are does not reload the filter.
        let reloads = seen.lock().unwrap().len();
        state.apply_levels(&reset).unwrap();
        assert_eq!(seen.lock().unwrap().len(), reloads);
    }

    #[test]
    fn a_failed_reload_puts_the_settings_file_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let mut state = StoreState {
            file: Some(path.clone()),
            ..StoreState::default()
        };
        let (apply, _, fail) = recorder();
        state.logging.install("info", apply).unwrap();
        let set = levels(json!({"persistent": {"logger.a": "debug"}})).unwrap();
        state.apply_levels(&set).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        assert!(before.contains("\"logger.a\": \"debug\""), "{before}");
        *fail.lock().unwrap() = true;
        let change = levels(json!({"persistent": {"logger.a": "trace"}})).unwrap();
        assert_eq!(state.apply_levels(&change).unwrap_err().status, 500);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        assert_eq!(state.logging.persistent["logger.a"], json!("debug"));
    }

    /// A store with an operator settings file at `/etc/fleet/settings.json` (never read: the
    /// tests give `apply_operator` the bytes).
    fn with_operator() -> StoreState {
        StoreState {
            operator: Some(OperatorState::new("/etc/fleet/settings.json".into())),
            ..StoreState::default()
        }
    }

    fn read(file: Value) -> Result<Option<Vec<u8>>, String> {
        Ok(Some(file.to_string().into_bytes()))
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_put_that_touches_a_reserved_key_is_refused_naming_the_key_and_the_file() {
        let mut state = with_operator();
        let now = SystemTime::now();
        let file = json!({"metadata": {"version": 1}, "routes": {"se*": {"limits.timeout": "5s"}}});
        assert!(matches!(
            state.apply_operator(read(file), now),
            OperatorOutcome::Applied(_)
        ));
        // Set in the transient tier, before: shadowed by the operator tier.
        state.tiers.transient.insert(
            "search".into(),
            [("preempt.status".to_owned(), json!(503))].into(),
        );
        let before = state.tiers.clone();
        for (body, reason) in [
            (
                json!({"transient": {"limits.timeout": "1s"}}),
                "transient setting [limits.timeout] of route [search] is reserved by the \
                 operator settings file [/etc/fleet/settings.json]: change it in that file, or \
                 remove it from the file to release it",
            ),
            (
                json!({"persistent": {"limits": {"timeout": null}}}),
                "persistent setting [limits.timeout] of route [search] is reserved",
            ),
            (
                json!({"transient": {"preempt.status": null, "limits.*": null}}),
                "transient setting [limits.*] would reset [limits.timeout] of route [search], \
                 which is reserved by the operator settings file [/etc/fleet/settings.json]",
            ),
        ] {
            state.file = Some("/nonexistent/settings.json".into());
            let err = state
                .apply(&ids(&["other", "search"]), &update(body).unwrap())
                .unwrap_err();
            assert_eq!(err.status, 400);
            assert!(err.reason.starts_with(reason), "{}", err.reason);
            assert_eq!(state.tiers.transient, before.transient, "nothing changed");
        }
        state.file = None;
        // Other keys, and other routes, are free.
        let free = update(json!({"transient": {"limits.max_in_flight": 2}})).unwrap();
        assert_eq!(
            state
                .apply(&ids(&["search", "other"]), &free)
                .unwrap()
                .len(),
            2
        );
        // The operator tier wins over transient.
        assert_eq!(
            state.tiers.effective("search")["limits.timeout"],
            json!("5s")
        );
        // Removing the key from the file releases it.
        let file = json!({"metadata": {"version": 2}, "routes": {}});
        assert!(matches!(
            state.apply_operator(read(file), now),
            OperatorOutcome::Applied(_)
        ));
        let put = update(json!({"transient": {"limits.timeout": "1s"}})).unwrap();
        assert_eq!(state.apply(&ids(&["search"]), &put).unwrap().len(), 1);
    }

    #[test]
    fn a_reserved_log_level_is_refused_too() {
        let mut state = with_operator();
        let (apply, seen, _) = recorder();
        state.logging.install("info", apply).unwrap();
        let file = json!({"metadata": {"version": 1}, "logging": {"logger.db": "debug"}});
        assert!(matches!(
            state.apply_operator(read(file), SystemTime::now()),
            OperatorOutcome::Applied(_)
        ));
        assert_eq!(
            seen.lock().unwrap().last().unwrap(),
            "info,db=debug,underscore::audit=info"
        );
        let err = state
            .apply_levels(&levels(json!({"transient": {"logger.db": "trace"}})).unwrap())
            .unwrap_err();
        assert_eq!(
            err.reason,
            "transient setting [logger.db] is reserved by the operator settings file \
             [/etc/fleet/settings.json]: change it in that file, or remove it from the file to \
             release it"
        );
        let other = levels(json!({"transient": {"logger.other": "trace"}})).unwrap();
        assert_eq!(state.apply_levels(&other).unwrap().len(), 1);
    }

    #[test]
    fn versions_only_move_forward_and_a_bad_file_changes_nothing() {
        let mut state = with_operator();
        let now = SystemTime::now();
        let file = |version: u64, timeout: &str| json!({"metadata": {"version": version}, "routes": {"_all": {"limits.timeout": timeout}}});
        let timeout = |state: &StoreState| state.tiers.effective("any")["limits.timeout"].clone();
        let status = |state: &StoreState| state.operator.as_ref().unwrap().status();
        // No file yet: nothing applied, nothing released, no error.
        assert!(matches!(
            state.apply_operator(Ok(None), now),
            OperatorOutcome::Unchanged
        ));
        assert!(status(&state).is_ok() && status(&state).applied_at.is_none());
        assert!(matches!(
            state.apply_operator(read(file(5, "5s")), now),
            OperatorOutcome::Applied(OperatorApplied {
                version: Some(5),
                previous: None,
                ..
            })
        ));
        // The same bytes again: nothing, not even a log line.
        assert!(matches!(
            state.apply_operator(read(file(5, "5s")), now),
            OperatorOutcome::Unchanged
        ));
        // Lower: ignored, and said.
        assert!(matches!(
            state.apply_operator(read(file(4, "4s")), now),
            OperatorOutcome::Older {
                version: 4,
                applied: 5
            }
        ));
        assert_eq!(timeout(&state), json!("5s"));
        assert!(status(&state)
            .last_error
            .unwrap()
            .contains("lower than the version in effect"));
        // Same version, other settings: applied, with a warning.
        assert!(matches!(
            state.apply_operator(read(file(5, "6s")), now),
            OperatorOutcome::Applied(OperatorApplied {
                same_version: true,
                ..
            })
        ));
        assert_eq!(timeout(&state), json!("6s"));
        assert!(status(&state).is_ok());
        // Bad files: the last good state stays, the error says why (and where, for JSON).
        for bad in [
            "{\"metadata\": {\"version\": 9},\n \"routes\": {,}}".to_owned(),
            file(9, "0s").to_string(),
            json!({"metadata": {"version": 9}, "routes": {"_all": {"limits.nope": 1}}}).to_string(),
        ] {
            let outcome = state.apply_operator(Ok(Some(bad.into_bytes())), now);
            assert!(matches!(outcome, OperatorOutcome::Failed(_)), "{outcome:?}");
            assert_eq!(timeout(&state), json!("6s"));
            assert_eq!(status(&state).version, Some(5));
        }
        let error = status(&state).last_error.unwrap();
        assert!(error.contains("[limits.nope]"), "{error}");
        let outcome = state.apply_operator(Ok(Some(b"{\n  ,".to_vec())), now);
        let OperatorOutcome::Failed(why) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(why.ends_with("at line 2 column 3"), "{why}");
        // A good file again: applied, the error cleared.
        state.apply_operator(read(file(6, "7s")), now);
        assert_eq!(
            (timeout(&state), status(&state).is_ok()),
            (json!("7s"), true)
        );
        // Removed: every key released, and any version applies next.
        assert!(matches!(
            state.apply_operator(Ok(None), now),
            OperatorOutcome::Applied(OperatorApplied {
                version: None,
                previous: Some(6),
                ..
            })
        ));
        assert!(state.tiers.effective("any").is_empty());
        assert!(matches!(
            state.apply_operator(read(file(1, "1s")), now),
            OperatorOutcome::Applied(_)
        ));
    }

    #[test]
    fn a_file_the_log_filter_refuses_changes_nothing() {
        let mut state = with_operator();
        let (apply, _, fail) = recorder();
        state.logging.install("info", apply).unwrap();
        let file = json!({
            "metadata": {"version": 1},
            "routes": {"a": {"preempt.status": 503}},
            "logging": {"logger.db": "debug"}
        });
        *fail.lock().unwrap() = true;
        let outcome = state.apply_operator(read(file.clone()), SystemTime::now());
        assert!(matches!(outcome, OperatorOutcome::Failed(_)), "{outcome:?}");
        assert!(state.tiers.operator.is_empty() && state.logging.operator.is_empty());
        // Read again, the same file applies once the filter takes it.
        *fail.lock().unwrap() = false;
        let OperatorOutcome::Applied(applied) = state.apply_operator(read(file), SystemTime::now())
        else {
            panic!("not applied")
        };
        assert_eq!(
            (applied.routes.len(), applied.levels.len()),
            (1, 1),
            "every change is reported for the audit log"
        );
    }
}
