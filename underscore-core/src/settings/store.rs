//! The store of every setting: both tiers of every route and of the log levels, the settings
//! file the persistent tier lives in, and the one lock they share.
//!
//! The top of the settings modules: it builds on [`tiers`](super::tiers), the settings
//! [`file`](mod@super::file) and the [`logging`](super::logging) store; none of them imports it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::file::{load_file, write_file, SettingsError};
use super::logging::{LevelChanged, Loggers};
use super::tiers::{apply, diff, Changed, Tier, Tiers, Update};
use super::Flat;
use crate::ApiError;

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
            // The log levels' section is written back as it is.
            write_settings(file, &next.persistent, &self.logging.persistent)?;
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
        let next = self.logging.next(update)?;
        // Set only through an update that names the persistent tier: `file` is set then.
        let written = match file {
            Some(file) if next.persistent != self.logging.persistent => {
                write_settings(file, &self.tiers.persistent, &next.persistent)?;
                Some(file)
            }
            _ => None,
        };
        if let Err((after, why)) = self.logging.reload_for(&next) {
            let mut reason =
                format!("failed to apply the log filter [{after}]: {why}; nothing was changed");
            if let Some(file) = written {
                if let Err(e) = write_file(file, &self.tiers.persistent, &self.logging.persistent) {
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

/// Writes both sections of the settings file, or the 500 that says nothing was changed.
pub(crate) fn write_settings(
    file: &Path,
    routes: &BTreeMap<String, Flat>,
    logging: &Flat,
) -> Result<(), ApiError> {
    write_file(file, routes, logging).map_err(|e| {
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
}
