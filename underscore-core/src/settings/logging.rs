//! Log levels at runtime: the `logger._root` and `logger.<target>` settings, in the same two
//! tiers and with the same update semantics as route settings ([`tiers`](super::tiers)), and
//! the `tracing` filter directives they give.
//!
//! This crate knows nothing of `tracing-subscriber`: the app's reloadable filter is reached
//! through an [`ApplyFilter`] function, which `underscore_actix::logging::layer` installs with
//! [`Registry::install_log_filter`](crate::Registry::install_log_filter). That function takes
//! the filter as an `EnvFilter` directive string, computed by [`DefaultDirectives::with_settings`]:
//!
//! - the app's default directives (what it passed to the layer, typically `RUST_LOG`), where
//!   `logger._root` replaces the bare level (`info`), and each `logger.<target>` replaces the
//!   plain directive for exactly that target (`<target>=<level>`), or adds one; directives with
//!   a span or field filter (`target[span]=debug`) are kept as they are;
//! - `underscore::audit=info`, unless the default directives or a setting name that target: the
//!   audit log of admin changes stays visible when someone sets `logger._root` to `off`.
//!
//! The keys' grammar is in [`keys`](super::keys); the settings file that holds the persistent
//! levels, and the lock they share with the routes, are the [`store`](super::store)'s.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

pub use super::keys::{LEVELS, MAX_LOGGERS, MAX_TARGET, PREFIX, ROOT};

use super::keys::canonical_level;
use super::tiers::{effective, next_tiers, KeyChanged, Tier, Update, OPERATOR};
use super::Flat;
use crate::ApiError;

/// The target of the audit log, kept at `info` unless named explicitly.
pub const AUDIT_TARGET: &str = "underscore::audit";

/// Sets the app's log filter from `EnvFilter` directives, or says why it could not.
pub type ApplyFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Why a log filter could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// A filter is installed already: there is one per process.
    #[error(
        "a reloadable log filter is already installed: underscore_actix::logging::layer can be \
         used once per process"
    )]
    AlreadyInstalled,
    /// The filter did not take the directives.
    #[error("the log filter did not take the directives [{directives}]: {reason}")]
    Rejected {
        /// The directives.
        directives: String,
        /// Why.
        reason: String,
    },
}

/// The level of an `EnvFilter` directive as written (`INFO`, `3`, or empty for `error`), by
/// its name.
fn directive_level(level: &str) -> Option<&'static str> {
    match level {
        "" | "1" => Some("error"),
        "0" => Some("off"),
        "2" => Some("warn"),
        "3" => Some("info"),
        "4" => Some("debug"),
        "5" => Some("trace"),
        other => canonical_level(other),
    }
}

/// The directives an app passed to its layer, sorted into what log level settings replace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultDirectives {
    raw: String,
    /// The bare level (`info`); the last one wins, as in `EnvFilter`.
    root: Option<&'static str>,
    /// Plain `target=level` directives; the last one for a target wins.
    targets: BTreeMap<String, &'static str>,
    /// The others (span or field filters), as written.
    other: Vec<String>,
}

impl DefaultDirectives {
    /// Sorts `directives` (comma-separated, as `EnvFilter` splits them). Anything that is not a
    /// bare level or a plain `target=level` is kept as written.
    pub fn parse(directives: &str) -> Self {
        let mut out = Self {
            raw: directives.to_owned(),
            ..Self::default()
        };
        for item in directives
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            let plain = !item.contains(['[', '{', '"']);
            match item.split_once('=') {
                None if plain => match directive_level(item) {
                    Some(level) => out.root = Some(level),
                    // A bare target enables all of its levels.
                    None => {
                        out.targets.insert(item.to_owned(), "trace");
                    }
                },
                Some((target, level)) if plain && !target.is_empty() => {
                    match directive_level(level) {
                        Some(level) => {
                            out.targets.insert(target.to_owned(), level);
                        }
                        None => out.other.push(item.to_owned()),
                    }
                }
                _ => out.other.push(item.to_owned()),
            }
        }
        out
    }

    /// The directives as the app gave them.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The default level: the bare level, else `off` (`EnvFilter` enables nothing that no
    /// directive names).
    pub fn root(&self) -> &'static str {
        self.root.unwrap_or("off")
    }

    /// Every target a plain directive names, with its level, and the audit target's pin.
    fn target_levels(&self) -> BTreeMap<String, &'static str> {
        let mut targets = self.targets.clone();
        targets.entry(AUDIT_TARGET.to_owned()).or_insert("info");
        targets
    }

    /// The directives with `effective` settings (flat `logger.*` keys) applied.
    pub fn with_settings(&self, effective: &Flat) -> String {
        let level = |v: &Value| v.as_str().and_then(canonical_level);
        let root = effective.get("logger._root").and_then(level).or(self.root);
        let mut targets = self.target_levels();
        for (key, value) in effective {
            match (key.strip_prefix(PREFIX), level(value)) {
                (Some(ROOT) | None, _) | (_, None) => {}
                (Some(target), Some(level)) => {
                    targets.insert(target.to_owned(), level);
                }
            }
        }
        let mut out: Vec<String> = root.into_iter().map(str::to_owned).collect();
        out.extend(targets.iter().map(|(t, l)| format!("{t}={l}")));
        out.extend(self.other.iter().cloned());
        out.join(",")
    }
}

/// The installed filter: the app's defaults and how to reach it.
struct Installed {
    defaults: DefaultDirectives,
    apply: ApplyFilter,
}

impl fmt::Debug for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Installed")
            .field("defaults", &self.defaults)
            .finish_non_exhaustive()
    }
}

/// The log levels: every tier of `logger.*` settings, and the filter they are applied to.
#[derive(Debug, Default)]
pub(crate) struct Loggers {
    pub persistent: Flat,
    pub transient: Flat,
    /// The operator settings file's levels (empty without the file).
    pub operator: Flat,
    filter: Option<Installed>,
}

/// One level's change, for the audit log.
pub(crate) type LevelChanged = KeyChanged;

/// One row of `_cat/loggers`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LoggerRow {
    pub target: String,
    pub level: &'static str,
    pub tier: &'static str,
    pub operator: Option<&'static str>,
    pub transient: Option<&'static str>,
    pub persistent: Option<&'static str>,
    pub default: Option<&'static str>,
}

impl Loggers {
    /// Installs the app's filter, and applies the settings already loaded (a settings file
    /// configured before the layer).
    pub(crate) fn install(
        &mut self,
        defaults: &str,
        apply: ApplyFilter,
    ) -> Result<(), InstallError> {
        if self.filter.is_some() {
            return Err(InstallError::AlreadyInstalled);
        }
        let installed = Installed {
            defaults: DefaultDirectives::parse(defaults),
            apply,
        };
        let directives = installed.defaults.with_settings(&self.effective());
        (installed.apply)(&directives).map_err(|reason| InstallError::Rejected {
            directives: directives.clone(),
            reason,
        })?;
        self.filter = Some(installed);
        Ok(())
    }

    /// Applies the current settings to the filter, if one is installed (after the settings
    /// file is loaded).
    pub(crate) fn refresh(&self) -> Result<(), String> {
        match &self.filter {
            Some(installed) => (installed.apply)(&self.directives(installed)),
            None => Ok(()),
        }
    }

    fn directives(&self, installed: &Installed) -> String {
        installed.defaults.with_settings(&self.effective())
    }

    /// Operator, else transient, else persistent.
    pub(crate) fn effective(&self) -> Flat {
        effective(&self.persistent, &self.transient, &self.operator)
    }

    /// The installed filter's defaults and current directives, or the 400 that says how to
    /// install one.
    pub(crate) fn installed(&self) -> Result<(&DefaultDirectives, String), ApiError> {
        let installed = self.filter.as_ref().ok_or_else(not_installed)?;
        Ok((&installed.defaults, self.directives(installed)))
    }

    /// The defaults as settings: `logger._root` and every target a plain default directive
    /// names (the audit target included).
    pub(crate) fn defaults(defaults: &DefaultDirectives) -> Flat {
        std::iter::once((format!("{PREFIX}{ROOT}"), Value::from(defaults.root())))
            .chain(
                defaults
                    .target_levels()
                    .into_iter()
                    .map(|(t, l)| (format!("{PREFIX}{t}"), Value::from(l))),
            )
            .collect()
    }

    /// `_root`, then every target with a default directive or a setting, by name.
    pub(crate) fn rows(&self, defaults: &DefaultDirectives) -> Vec<LoggerRow> {
        let level = |flat: &Flat, key: &str| {
            flat.get(key)
                .and_then(Value::as_str)
                .and_then(canonical_level)
        };
        let mut targets: BTreeMap<&str, Option<&'static str>> = BTreeMap::new();
        let default_targets = defaults.target_levels();
        for (t, l) in &default_targets {
            targets.insert(t, Some(l));
        }
        for key in self
            .persistent
            .keys()
            .chain(self.transient.keys())
            .chain(self.operator.keys())
        {
            if let Some(t) = key.strip_prefix(PREFIX).filter(|t| *t != ROOT) {
                targets.entry(t).or_insert(None);
            }
        }
        std::iter::once((ROOT, Some(defaults.root())))
            .chain(targets)
            .map(|(target, default)| {
                let key = format!("{PREFIX}{target}");
                let operator = level(&self.operator, &key);
                let transient = level(&self.transient, &key);
                let persistent = level(&self.persistent, &key);
                let (level, tier) = match (operator, transient, persistent, default) {
                    (Some(l), _, _, _) => (l, OPERATOR),
                    (None, Some(l), _, _) => (l, Tier::Transient.name()),
                    (None, None, Some(l), _) => (l, Tier::Persistent.name()),
                    (None, None, None, d) => (d.unwrap_or("off"), "default"),
                };
                LoggerRow {
                    target: target.to_owned(),
                    level,
                    tier,
                    operator,
                    transient,
                    persistent,
                    default,
                }
            })
            .collect()
    }
}

/// The 400 of the logging APIs in an app without the layer.
pub(crate) fn not_installed() -> ApiError {
    ApiError::illegal_argument(
        "log levels cannot be changed at runtime: no reloadable log filter is installed; add \
         underscore_actix::logging::layer(..) to your tracing-subscriber registry",
    )
}

/// The log levels an update gives, checked against [`MAX_LOGGERS`], with what changes: see
/// [`Loggers::next`].
#[derive(Debug)]
pub(crate) struct NextLevels {
    pub persistent: Flat,
    pub transient: Flat,
    pub operator: Flat,
    pub changed: Vec<LevelChanged>,
}

impl Loggers {
    /// What `update` would make of both tiers, without changing anything.
    pub(crate) fn next(&self, update: &Update<String>) -> Result<NextLevels, ApiError> {
        let (persistent, transient, changed) =
            next_tiers(&self.persistent, &self.transient, update);
        for (tier, flat) in [
            (Tier::Persistent, &persistent),
            (Tier::Transient, &transient),
        ] {
            if flat.len() > MAX_LOGGERS {
                return Err(ApiError::illegal_argument(format!(
                    "{} log levels would be {}, more than the limit of [{MAX_LOGGERS}]",
                    tier.name(),
                    flat.len()
                )));
            }
        }
        Ok(NextLevels {
            persistent,
            transient,
            operator: self.operator.clone(),
            changed,
        })
    }

    /// The levels with `operator` as the operator tier, the others as they are.
    pub(crate) fn next_operator(&self, operator: Flat) -> NextLevels {
        NextLevels {
            persistent: self.persistent.clone(),
            transient: self.transient.clone(),
            operator,
            changed: Vec::new(),
        }
    }

    /// Reloads the installed filter for `next`, if that changes its directives. On failure,
    /// the directives that were refused and why; nothing is committed either way.
    pub(crate) fn reload_for(&self, next: &NextLevels) -> Result<(), (String, String)> {
        let Some(installed) = &self.filter else {
            return Ok(());
        };
        let before = self.directives(installed);
        let after = installed.defaults.with_settings(&effective(
            &next.persistent,
            &next.transient,
            &next.operator,
        ));
        if after == before {
            return Ok(());
        }
        (installed.apply)(&after).map_err(|why| (after, why))
    }

    /// Makes `next` the levels in effect (after [`Loggers::reload_for`]).
    pub(crate) fn commit(&mut self, next: NextLevels) -> Vec<LevelChanged> {
        self.persistent = next.persistent;
        self.transient = next.transient;
        self.operator = next.operator;
        next.changed
    }
}

/// The `logger.*` settings of a tier as a document: nested under `logger` (the target is one
/// key, dots and all), or flat.
pub(crate) fn shape(flat: &Flat, flat_keys: bool) -> Value {
    if flat_keys {
        return Value::Object(flat.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    }
    let targets: Map<String, Value> = flat
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(PREFIX)?.to_owned(), v.clone())))
        .collect();
    let mut out = Map::new();
    if !targets.is_empty() {
        out.insert("logger".to_owned(), Value::Object(targets));
    }
    Value::Object(out)
}

/// A test filter, for the tests of the modules that apply levels.
#[cfg(test)]
pub(crate) mod test_filter {
    use std::sync::{Arc, Mutex};

    use super::ApplyFilter;

    /// What a test filter was given.
    pub(crate) type Seen = Arc<Mutex<Vec<String>>>;

    /// A filter that records what it was given; fails while `fail` is set.
    pub(crate) fn recorder() -> (ApplyFilter, Seen, Arc<Mutex<bool>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(Mutex::new(false));
        let (s, f) = (seen.clone(), fail.clone());
        let apply: ApplyFilter = Box::new(move |d: &str| {
            if *f.lock().unwrap() {
                return Err("subscriber no longer exists".to_owned());
            }
            s.lock().unwrap().push(d.to_owned());
            Ok(())
        });
        (apply, seen, fail)
    }
}

#[cfg(test)]
mod tests {
    use super::test_filter::recorder;
    use super::*;
    use crate::settings::keys::LoggerKeys;
    use crate::settings::tiers::{apply, Change};
    use serde_json::json;

    fn update(body: Value) -> Result<Update<String>, ApiError> {
        Update::parse_with(body.to_string().as_bytes(), &LoggerKeys)
    }

    fn reason(body: Value) -> String {
        update(body).unwrap_err().reason
    }

    #[test]
    fn keys_and_levels_are_validated_and_named() {
        let u = update(
            json!({"transient": {"logger._root": "WARN", "logger": {"my_app::db": "Debug"}}}),
        )
        .unwrap();
        let mut flat = Flat::new();
        apply(&mut flat, u.changes(Tier::Transient));
        assert_eq!(
            flat,
            [
                ("logger._root".to_owned(), json!("warn")),
                ("logger.my_app::db".to_owned(), json!("debug"))
            ]
            .into()
        );
        assert_eq!(
            reason(json!({"transient": {"logger.x": "loud"}})),
            "failed to parse transient setting [logger.x] with value [\"loud\"]: must be one of \
             [trace, debug, info, warn, error, off], in any case"
        );
        assert!(
            reason(json!({"persistent": {"logger.x": 5}})).contains("[logger.x] with value [5]")
        );
        assert_eq!(
            reason(json!({"transient": {"logger.": "info"}})),
            "transient setting [logger.], not recognized: the target after [logger.] is empty"
        );
        for bad in ["a=b", "a,b", "a[s]", "a{f}", "a b", "a\"", ".a", "é"] {
            let r = reason(json!({"transient": {format!("logger.{bad}"): "info"}}));
            assert!(
                r.starts_with(&format!(
                    "transient setting [logger.{bad}], not recognized: ["
                )),
                "{bad}: {r}"
            );
        }
        let long = format!("logger.{}", "a".repeat(MAX_TARGET + 1));
        assert!(reason(json!({"transient": {long: "info"}})).contains("at most 256 bytes"));
        assert_eq!(
            reason(json!({"transient": {"notlogger.x": "info"}})),
            "transient setting [notlogger.x], not recognized: log levels are [logger._root] and \
             [logger.<target>]"
        );
        assert_eq!(
            reason(json!({"transient": {"logger": null}})),
            "transient setting [logger], not recognized; to reset the group, use [logger.*]"
        );
        assert!(reason(json!({"transient": {"logger.*": "info"}}))
            .contains("can only be reset with null"));
        assert!(reason(json!({"transient": {"route.*": null}})).contains("matches no setting"));
        assert!(update(json!({"transient": {"logger.my_app::*": null, "*": null}})).is_ok());
        // Route keys are not log levels.
        assert!(reason(json!({"transient": {"preempt.status": 503}})).contains("not recognized"));
        // Dots nest: the target is everything after `logger.`.
        let u = update(json!({"transient": {"logger": {"a": {"b": "info"}}}})).unwrap();
        assert_eq!(
            u.changes(Tier::Transient),
            [Change::Set("logger.a.b".to_owned(), json!("info"))]
        );
        assert!(crate::glob::matches("logger.*", "logger.a.b"));
    }

    #[test]
    fn default_directives_are_sorted_into_root_targets_and_others() {
        let d = DefaultDirectives::parse("info, hyper=WARN,my_app[req]=debug,tokio,3,my_app=2,x=");
        assert_eq!(d.root(), "info");
        assert_eq!(
            d.targets,
            [
                ("hyper".to_owned(), "warn"),
                ("my_app".to_owned(), "warn"),
                ("tokio".to_owned(), "trace"),
                ("x".to_owned(), "error"),
            ]
            .into()
        );
        assert_eq!(d.other, ["my_app[req]=debug"]);
        assert_eq!(DefaultDirectives::parse("").root(), "off");
        assert_eq!(DefaultDirectives::parse("a=debug").root(), "off");
    }

    #[test]
    fn settings_replace_the_root_level_and_exactly_their_target() {
        let d = DefaultDirectives::parse("info,my_app=warn,my_app::db=error,my_app[req]=trace");
        assert_eq!(
            d.with_settings(&Flat::new()),
            "info,my_app=warn,my_app::db=error,underscore::audit=info,my_app[req]=trace"
        );
        let settings: Flat = [
            ("logger._root".to_owned(), json!("warn")),
            ("logger.my_app::db".to_owned(), json!("debug")),
            ("logger.other".to_owned(), json!("off")),
        ]
        .into();
        assert_eq!(
            d.with_settings(&settings),
            "warn,my_app=warn,my_app::db=debug,other=off,underscore::audit=info,my_app[req]=trace"
        );
        // The audit pin yields to a setting, or to a default directive, for its target.
        let audit: Flat = [("logger.underscore::audit".to_owned(), json!("off"))].into();
        assert_eq!(
            d.with_settings(&audit)
                .matches("underscore::audit=")
                .count(),
            1
        );
        assert!(d.with_settings(&audit).contains("underscore::audit=off"));
        let quiet = DefaultDirectives::parse("warn,underscore::audit=warn");
        assert_eq!(
            quiet.with_settings(&Flat::new()),
            "warn,underscore::audit=warn"
        );
    }

    #[test]
    fn settings_loaded_before_the_filter_apply_when_it_is_installed() {
        let mut loggers = Loggers {
            persistent: [("logger.quickstart".to_owned(), json!("debug"))].into(),
            ..Loggers::default()
        };
        let (apply, seen, _) = recorder();
        loggers.install("info", apply).unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            ["info,quickstart=debug,underscore::audit=info"]
        );
        // And a filter that refuses them is not installed.
        let mut loggers = Loggers::default();
        let refuse: ApplyFilter = Box::new(|_| Err("no".to_owned()));
        assert!(matches!(
            loggers.install("info", refuse),
            Err(InstallError::Rejected { .. })
        ));
        assert!(loggers.installed().is_err());
    }

    #[test]
    fn rows_show_the_effective_level_and_its_tier() {
        let loggers = Loggers {
            persistent: [
                ("logger._root".to_owned(), json!("warn")),
                ("logger.b".to_owned(), json!("info")),
            ]
            .into(),
            transient: [("logger.b".to_owned(), json!("trace"))].into(),
            operator: [
                ("logger.a".to_owned(), json!("error")),
                ("logger.c".to_owned(), json!("off")),
            ]
            .into(),
            filter: None,
        };
        let d = DefaultDirectives::parse("info,a=debug");
        let rows: Vec<(String, &str, &str)> = loggers
            .rows(&d)
            .into_iter()
            .map(|r| (r.target, r.level, r.tier))
            .collect();
        assert_eq!(
            rows,
            [
                ("_root".to_owned(), "warn", "persistent"),
                ("a".to_owned(), "error", "operator"),
                ("b".to_owned(), "trace", "transient"),
                ("c".to_owned(), "off", "operator"),
                ("underscore::audit".to_owned(), "info", "default"),
            ]
        );
    }

    #[test]
    fn documents_nest_under_logger_with_the_target_as_one_key() {
        let flat: Flat = [
            ("logger._root".to_owned(), json!("warn")),
            ("logger.a.b".to_owned(), json!("info")),
        ]
        .into();
        assert_eq!(
            shape(&flat, false),
            json!({"logger": {"_root": "warn", "a.b": "info"}})
        );
        assert_eq!(shape(&flat, true)["logger.a.b"], "info");
        assert_eq!(shape(&Flat::new(), false), json!({}));
    }
}
