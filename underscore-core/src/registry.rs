//! The route registry: annotated routes from the inventory, plus routes registered with plain
//! actix-web, discovered from the requests they serve.
//!
//! # Route ids
//!
//! - An annotated handler's id is its fn name, or its `name = "..."`. When several handlers
//!   declare the same id, each of them gets its handler path instead, with `::` written as `.`
//!   (`app::v1::index` becomes `app.v1.index`), so no two routes are ever merged.
//! - A route registered with plain actix-web gets its actix resource name when it has one that is
//!   a valid id and not an annotated route's, else an id derived from its pattern: the leading `/` dropped, `/` written as `.`,
//!   `{param}` (with or without a regex) written as `param`, any other character outside
//!   `[A-Za-z0-9_.-]` written as `_`; the root `/` is `_root`. If that id is already taken, `~2`,
//!   `~3`, ... is appended in the order the routes are first seen.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, OnceLock, RwLock};
use std::time::Duration;

use crate::route::{RouteMeta, RouteRef, METHODS};
use crate::settings::node::NodeValues;
use crate::settings::store::{OperatorOutcome, OperatorState};
use crate::settings::{
    operator, ApplyFilter, Flat, InstallError, Limits, OperatorStatus, Preempt, SettingsError,
    SettingsSlot, SettingsStore, StoreState, OPERATOR,
};
use crate::stats::RouteStats;

/// Every route the admin APIs know about. There is one per process: see [`registry`].
#[derive(Debug)]
pub struct Registry {
    annotated: Vec<(String, &'static RouteMeta)>,
    dynamic: RwLock<Vec<&'static DynamicRoute>>,
    settings: SettingsStore,
    dynamic_settings: AtomicUsize,
    path_matcher: OnceLock<CompilePattern>,
    unmatched: RouteStats,
    method_not_allowed: RouteStats,
    /// Whether this is the process-wide registry: only its node settings set the process's
    /// poll timing and blocking threshold (a registry built for a test leaves them alone).
    process: bool,
}

/// The process-wide registry, built from the inventory on first use.
pub fn registry() -> &'static Registry {
    static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
        // The rolling windows' sampler; its first look waits for this initialisation to end.
        crate::stats::start_sampler(|| registry().all_stats());
        let mut reg = Registry::from_routes(inventory::iter::<RouteRef>.into_iter().map(|r| r.0));
        reg.process = true;
        reg
    });
    &REGISTRY
}

/// Whether `id` can be typed in a URL path without percent-encoding, and is no list or pattern.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "_all"
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~'))
}

impl Registry {
    /// A registry of the given annotated routes (the process-wide one uses the inventory).
    pub fn from_routes(routes: impl IntoIterator<Item = &'static RouteMeta>) -> Self {
        let mut routes: Vec<&'static RouteMeta> = routes.into_iter().collect();
        routes.sort_by_key(|m| (m.name, m.handler));
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for meta in &routes {
            *counts.entry(meta.name).or_default() += 1;
        }
        let mut annotated: Vec<(String, &'static RouteMeta)> = Vec::with_capacity(routes.len());
        let mut taken: HashMap<String, usize> = HashMap::new();
        for meta in routes {
            let base = if counts[meta.name] > 1 {
                meta.handler.replace("::", ".")
            } else {
                meta.name.to_owned()
            };
            let id = unique(&mut taken, base);
            annotated.push((id, meta));
        }
        annotated.sort_by(|a, b| a.0.cmp(&b.0));
        Self {
            annotated,
            dynamic: RwLock::new(Vec::new()),
            settings: SettingsStore::default(),
            dynamic_settings: AtomicUsize::new(0),
            path_matcher: OnceLock::new(),
            unmatched: RouteStats::new(),
            method_not_allowed: RouteStats::new(),
            process: false,
        }
    }

    /// The annotated routes with their ids, sorted by id.
    pub fn annotated(&self) -> &[(String, &'static RouteMeta)] {
        &self.annotated
    }

    /// The routes registered with plain actix-web seen so far, in the order they were seen.
    pub fn dynamic(&self) -> Vec<&'static DynamicRoute> {
        self.dynamic
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The route of a plain actix-web resource with this `pattern`, created on first sight.
    ///
    /// Takes the registry's lock: callers cache the result (the middleware keeps a per-worker
    /// map), so this runs once per worker and route, not per request.
    pub fn dynamic_route(&self, pattern: &str, name: Option<&str>) -> &'static DynamicRoute {
        if let Some(route) = self.dynamic_by_pattern(pattern) {
            return route;
        }
        let mut dynamic = self.dynamic.write().unwrap_or_else(|e| e.into_inner());
        if let Some(route) = dynamic.iter().find(|r| r.pattern == pattern) {
            return route;
        }
        let mut taken: HashMap<String, usize> = self
            .annotated
            .iter()
            .map(|(id, _)| (id.clone(), 1))
            .chain(dynamic.iter().map(|r| (r.id.clone(), 1)))
            .collect();
        // actix answers `match_name` by path: where an annotated resource has the same pattern,
        // the name it gives may be that route's. Such a name is not this route's.
        let name = name.filter(|name| {
            !self
                .annotated
                .iter()
                .any(|(id, meta)| id == name || meta.name == *name)
        });
        let base = match name {
            Some(name) if is_valid_id(name) => name.to_owned(),
            _ => id_from_pattern(pattern),
        };
        // Routes are never removed: leaking them once makes every reference a plain `&'static`,
        // with no reference counting on the request path.
        let route: &'static DynamicRoute = Box::leak(Box::new(DynamicRoute {
            id: unique(&mut taken, base),
            pattern: pattern.to_owned(),
            name: name.map(str::to_owned),
            methods: MethodSet::default(),
            stats: RouteStats::new(),
            settings: SettingsSlot::new(),
            matcher: OnceLock::new(),
        }));
        dynamic.push(route);
        drop(dynamic);
        // Settings may wait for this id (persistent ones, loaded before the route was seen).
        // Taken after the registry's lock is released: the settings lock always comes first.
        let state = self.settings.lock();
        self.refresh(&state, [route.id.as_str()]);
        route
    }

    /// The statistics of every route and bucket, for the sampler of the rolling windows.
    pub fn all_stats(&'static self) -> Vec<&'static RouteStats> {
        self.annotated
            .iter()
            .map(|(_, meta)| &meta.state.stats)
            .chain(self.dynamic().into_iter().map(|route| &route.stats))
            .chain([&self.unmatched, &self.method_not_allowed])
            .collect()
    }

    /// Requests that matched no route (404): one bucket, whatever their path, so scanners
    /// cannot grow memory.
    pub fn unmatched(&self) -> &RouteStats {
        &self.unmatched
    }

    /// Requests whose path matched a route but whose method did not (405): one bucket.
    pub fn method_not_allowed(&self) -> &RouteStats {
        &self.method_not_allowed
    }

    /// The settings of every route.
    pub fn settings(&self) -> &SettingsStore {
        &self.settings
    }

    /// Uses `path` for persistent settings: loads it (a missing file is an empty one) and
    /// applies what it holds.
    ///
    /// # Errors
    ///
    /// A corrupt or unreadable file, named in the error and left untouched; or a second call.
    pub fn configure_settings_file(&self, path: impl Into<PathBuf>) -> Result<(), SettingsError> {
        let path = path.into();
        let ids = self.settings.configure_file(&path)?;
        let state = self.settings.lock();
        self.refresh(&state, ids.iter().map(String::as_str));
        let known = self.ids();
        for id in ids.iter().filter(|id| !known.contains(id)) {
            tracing::warn!(
                route = %id,
                file = %path.display(),
                "persistent settings for a route not known (yet): kept, and applied if it appears \
                 (routes registered with plain actix-web appear after their first request)"
            );
        }
        tracing::info!(
            file = %path.display(),
            routes = ids.len(),
            log_levels = state.logging.persistent.len(),
            "persistent settings loaded"
        );
        // Persistent log levels take effect now if the filter is installed, else when it is.
        if let Err(err) = state.logging.refresh() {
            tracing::warn!(file = %path.display(), %err, "persistent log levels could not be applied");
        }
        self.apply_node_settings(&state);
        Ok(())
    }

    /// Sets the defaults of the node settings: the app's configuration, in effect where no
    /// tier sets a key (`Underscore::builder().poll_timing(..)`, `.blocking_threshold(..)`).
    /// Then applies the node settings to the process (the process-wide registry only).
    pub fn configure_node_defaults(&self, poll_timing: bool, blocking_threshold: Duration) {
        let mut state = self.settings.lock();
        state.node.defaults = NodeValues {
            poll_timing,
            blocking_threshold,
        };
        self.apply_node_settings(&state);
    }

    /// Applies the node settings in effect to the process: poll timing and the blocking
    /// threshold ([`workers`](crate::workers)). Only the process-wide registry does.
    pub(crate) fn apply_node_settings(&self, state: &StoreState) {
        if !self.process {
            return;
        }
        let values = state.node.values();
        crate::workers::set_blocking_threshold(values.blocking_threshold);
        if values.poll_timing != crate::workers::poll_timing() {
            crate::workers::set_poll_timing(values.poll_timing);
        }
    }

    /// Uses `path` as the operator settings file: the fleet's settings, in the `operator` tier
    /// above transient, which the settings APIs refuse to change (see
    /// [`settings::operator`](crate::settings::operator)). Reads and applies it now; then
    /// [`Registry::reload_operator_settings`] reads it again (`underscore_actix` calls it on
    /// every change of the file's directory).
    ///
    /// A file that cannot be applied is no error here: the app starts without it, the error is
    /// logged and kept in [`Registry::operator_status`], and the next good file applies. A
    /// missing file sets nothing.
    ///
    /// # Errors
    ///
    /// [`SettingsError::OperatorAlreadyConfigured`] on a second call.
    pub fn configure_operator_settings(
        &self,
        path: impl Into<PathBuf>,
    ) -> Result<OperatorStatus, SettingsError> {
        let path = path.into();
        {
            let mut state = self.settings.lock();
            if let Some(existing) = &state.operator {
                return Err(SettingsError::OperatorAlreadyConfigured {
                    path: existing.file.clone(),
                });
            }
            state.operator = Some(OperatorState::new(path.clone()));
        }
        let status = self
            .reload_operator_settings()
            .expect("the operator settings file was configured above");
        if status.version.is_none() && status.is_ok() {
            tracing::info!(
                file = %path.display(),
                "no operator settings file (yet): none applied; it applies when it appears"
            );
        }
        Ok(status)
    }

    /// Reads the operator settings file again and applies it, all or nothing; does nothing
    /// when it is as it was. Every change it makes is audited (target `underscore::audit`,
    /// `caller="operator file"`); an error, a lower version and a change of settings under the
    /// same version are logged. `None` without an operator settings file.
    pub fn reload_operator_settings(&self) -> Option<OperatorStatus> {
        // Read under the settings lock: two reloads never apply their reads out of order.
        let mut state = self.settings.lock();
        let path = state.operator.as_ref()?.file.clone();
        let read = operator::read(&path);
        let ids = self.ids();
        let before: Vec<Flat> = ids.iter().map(|id| state.tiers.effective(id)).collect();
        let file = path.display();
        match state.apply_operator(read, std::time::SystemTime::now()) {
            OperatorOutcome::Unchanged => {}
            OperatorOutcome::Applied(applied) => {
                let changed: Vec<&str> = ids
                    .iter()
                    .zip(&before)
                    .filter(|(id, old)| state.tiers.effective(id) != **old)
                    .map(|(id, _)| id.as_str())
                    .collect();
                self.refresh(&state, changed);
                let value = |v: &Option<serde_json::Value>| {
                    v.as_ref()
                        .map_or_else(|| "null".to_owned(), ToString::to_string)
                };
                for (ids, key, old, new) in &applied.routes {
                    tracing::info!(
                        target: "underscore::audit",
                        caller = "operator file",
                        route = %ids,
                        tier = OPERATOR,
                        setting = %key,
                        old = %value(old),
                        new = %value(new),
                        "route setting changed"
                    );
                }
                let levels = applied.levels.iter().map(|c| (c, "log level changed"));
                let node = applied.node.iter().map(|c| (c, "node setting changed"));
                for ((key, old, new), what) in levels.chain(node) {
                    tracing::info!(
                        target: "underscore::audit",
                        caller = "operator file",
                        tier = OPERATOR,
                        setting = %key,
                        old = %value(old),
                        new = %value(new),
                        "{what}"
                    );
                }
                self.apply_node_settings(&state);
                let changes = applied.routes.len() + applied.levels.len() + applied.node.len();
                let previous = applied
                    .previous
                    .map_or_else(|| "none".to_owned(), |v| v.to_string());
                match applied.version {
                    None => tracing::info!(
                        %file,
                        previous = %previous,
                        changes,
                        "operator settings file removed: every setting it made is released"
                    ),
                    Some(version) if applied.same_version => tracing::warn!(
                        %file,
                        version,
                        changes,
                        "operator settings file changed without a higher [metadata.version]: \
                         applied; raise the version with every change"
                    ),
                    Some(version) => tracing::info!(
                        %file,
                        version,
                        previous = %previous,
                        changes,
                        "operator settings applied"
                    ),
                }
            }
            OperatorOutcome::Older { version, applied } => tracing::warn!(
                %file,
                version,
                applied,
                "operator settings file ignored: its [metadata.version] is lower than the \
                 version in effect"
            ),
            OperatorOutcome::Failed(reason) => tracing::error!(
                %file,
                %reason,
                "operator settings file not applied: the settings in effect stay as they are"
            ),
        }
        state.operator.as_ref().map(OperatorState::status)
    }

    /// The state of the operator settings file: the version in effect and the last error.
    /// `None` without one. A health check (`operator_settings`) reads it.
    pub fn operator_status(&self) -> Option<OperatorStatus> {
        self.settings
            .lock()
            .operator
            .as_ref()
            .map(OperatorState::status)
    }

    /// Installs the app's reloadable log filter, which the logging APIs change: `apply` sets
    /// it from `EnvFilter` directives, computed from `default_directives` (what the app would
    /// filter with otherwise, typically `RUST_LOG`) and the log level settings. It is called
    /// once now, with the persistent levels already loaded (if the settings file was
    /// configured first), then on every change.
    ///
    /// `underscore_actix::logging::layer` calls this; an app has no need to.
    ///
    /// # Errors
    ///
    /// [`InstallError::AlreadyInstalled`] on a second call (there is one filter per process);
    /// [`InstallError::Rejected`] if `apply` fails now (then nothing is installed).
    pub fn install_log_filter(
        &self,
        default_directives: &str,
        apply: ApplyFilter,
    ) -> Result<(), InstallError> {
        self.settings
            .lock()
            .logging
            .install(default_directives, apply)
    }

    /// Whether some plain actix-web route has a preempt or a limit, so that `Observe` must look
    /// up routes before calling the app (otherwise it never does).
    #[inline]
    pub fn has_dynamic_settings(&self) -> bool {
        // Relaxed: a hint that only gates a lookup; the slot itself is read with Acquire.
        self.dynamic_settings.load(Ordering::Relaxed) > 0
    }

    /// Teaches the registry to match a path against an actix pattern (the actix layer installs
    /// one that builds actix's own `ResourceDef`), so that in-flight plain requests can be
    /// given their route. `compile` runs once per route, the first time a path is matched
    /// against it; the first call of this method wins.
    pub fn set_path_matcher(&self, compile: CompilePattern) {
        let _ = self.path_matcher.set(compile);
    }

    /// The plain route an in-flight request most likely belongs to: the first route seen whose
    /// pattern matches the path and on which the method was seen, as actix's `match_pattern`
    /// does before routing. `None` without a matcher.
    ///
    /// It runs for every waiting plain request each time the admin APIs list them, so it
    /// allocates nothing and compiles no pattern twice.
    pub fn resolve_plain(&self, method: &str, path: &str) -> Option<&'static DynamicRoute> {
        let compile = *self.path_matcher.get()?;
        // Scanned under the read lock rather than copied out (this runs once per waiting
        // request of a listing); a pattern is compiled here on its first use. Only the first
        // request of a new route writes the list, and waits for the scan.
        self.dynamic
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .find(|r| r.methods.contains(method) && r.matches(path, compile))
    }

    /// The id of an annotated route.
    pub fn annotated_id(&self, meta: &RouteMeta) -> Option<&str> {
        self.annotated
            .iter()
            .find(|(_, m)| std::ptr::eq(*m, meta))
            .map(|(id, _)| id.as_str())
    }

    /// The settings slot of the annotated route `id` (plain routes are not watched: poll
    /// timing and the slow log are for annotated routes).
    pub fn settings_slot(&self, id: &str) -> Option<&'static SettingsSlot> {
        self.annotated
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, meta)| &meta.state.settings)
    }

    /// The id of the annotated route whose `RouteMeta` is at `address` (as
    /// [`Worker::begin_poll`](crate::workers::Worker::begin_poll) keeps it).
    pub fn annotated_id_at(&self, address: usize) -> Option<&str> {
        self.annotated
            .iter()
            .find(|(_, m)| std::ptr::from_ref(*m) as usize == address)
            .map(|(id, _)| id.as_str())
    }

    /// The id of the route whose `RouteMeta` or `DynamicRoute` is at `address` (as
    /// [`Worker::begin_poll`](crate::workers::Worker::begin_poll) keeps it).
    pub fn route_id_at(&self, address: usize) -> Option<String> {
        if let Some(id) = self.annotated_id_at(address) {
            return Some(id.to_owned());
        }
        self.dynamic()
            .into_iter()
            .find(|r| std::ptr::from_ref(*r) as usize == address)
            .map(|r| r.id.clone())
    }

    /// The plain actix-web route with this full pattern, if it was seen already.
    pub fn dynamic_by_pattern(&self, pattern: &str) -> Option<&'static DynamicRoute> {
        self.dynamic
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|r| r.pattern == pattern)
            .cloned()
    }

    /// Every route id, annotated first.
    pub fn ids(&self) -> Vec<String> {
        self.annotated
            .iter()
            .map(|(id, _)| id.clone())
            .chain(self.dynamic().iter().map(|r| r.id.clone()))
            .collect()
    }

    /// Sets the slots of `ids` from the settings in `state`, and recounts plain routes with settings.
    pub(crate) fn refresh<'a>(&self, state: &StoreState, ids: impl IntoIterator<Item = &'a str>) {
        let dynamic = self.dynamic();
        for id in ids {
            let effective = state.tiers.effective(id);
            let (preempt, limits) = (
                Preempt::from_settings(&effective),
                Limits::from_settings(&effective),
            );
            let slowlog = crate::slowlog::Thresholds::from_settings(&effective);
            if let Some((_, meta)) = self.annotated.iter().find(|(i, _)| i == id) {
                meta.state.settings.set(preempt, limits);
                meta.state.settings.set_slowlog(slowlog);
            } else if let Some(route) = dynamic.iter().find(|r| r.id == id) {
                route.settings.set(preempt, limits);
                route.settings.set_slowlog(slowlog);
            }
        }
        let count = dynamic.iter().filter(|r| r.settings.is_set()).count();
        self.dynamic_settings.store(count, Ordering::Relaxed);
    }
}

/// `base`, or `base~2`, `base~3`, ... if taken; marks the result as taken.
fn unique(taken: &mut HashMap<String, usize>, base: String) -> String {
    let mut id = base.clone();
    let mut n = 1;
    while taken.contains_key(&id) {
        n += 1;
        id = format!("{base}~{n}");
    }
    taken.insert(id.clone(), 1);
    id
}

/// The id of a plain actix-web route without a usable resource name (see the module docs).
pub fn id_from_pattern(pattern: &str) -> String {
    let trimmed = pattern.trim_start_matches('/');
    if trimmed.is_empty() {
        return "_root".to_owned();
    }
    let mut out = String::with_capacity(trimmed.len());
    let mut chars = trimmed.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' => {
                // `{name}` or `{name:regex}`: keep the name, skip to the matching brace.
                let mut depth = 1;
                let mut in_name = true;
                for c in chars.by_ref() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        ':' => in_name = false,
                        c if in_name => out.push(if c.is_ascii_alphanumeric() || c == '_' {
                            c
                        } else {
                            '_'
                        }),
                        _ => {}
                    }
                }
                // A tail segment `{tail}*`: the star adds nothing to the id.
                if chars.peek() == Some(&'*') {
                    chars.next();
                }
            }
            '/' => out.push('.'),
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') => out.push(c),
            _ => out.push('_'),
        }
    }
    if out.is_empty() {
        "_root".to_owned()
    } else {
        out
    }
}

/// A route pattern compiled to match request paths (for actix, its `ResourceDef`).
pub type PathMatcher = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Compiles a route pattern into a [`PathMatcher`]: see [`Registry::set_path_matcher`].
pub type CompilePattern = fn(pattern: &str) -> PathMatcher;

/// A route registered with plain actix-web, discovered from the requests it served.
#[derive(Debug)]
pub struct DynamicRoute {
    /// The id (see the module docs).
    pub id: String,
    /// The full pattern, as actix matched it.
    pub pattern: String,
    /// The actix resource name, if it has one.
    pub name: Option<String>,
    /// The methods seen on this route.
    pub methods: MethodSet,
    /// Request statistics.
    pub stats: RouteStats,
    /// The effective settings, as the middleware reads them.
    pub settings: SettingsSlot,
    /// The pattern compiled, on the first path matched against it.
    matcher: OnceLock<Compiled>,
}

impl DynamicRoute {
    /// Whether `path` matches the pattern, compiling it with `compile` on first use.
    fn matches(&self, path: &str, compile: CompilePattern) -> bool {
        (self
            .matcher
            .get_or_init(|| Compiled(compile(&self.pattern)))
            .0)(path)
    }
}

/// A [`PathMatcher`], which has no `Debug` of its own.
struct Compiled(PathMatcher);

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compiled(..)")
    }
}

/// Extension methods kept per route before the rest fold into `OTHER`.
const MAX_EXTENSION_METHODS: usize = 8;

/// A set of HTTP methods, updated without a lock for the standard ones.
#[derive(Debug, Default)]
pub struct MethodSet {
    standard: AtomicU16,
    extension: Mutex<Vec<String>>,
}

impl MethodSet {
    /// Adds `method` (upper case).
    #[inline]
    pub fn insert(&self, method: &str) {
        match METHODS.iter().position(|m| *m == method) {
            Some(bit) => {
                let bit = 1 << bit;
                // Relaxed: a set for display; the load first avoids a write on the common path.
                if self.standard.load(Ordering::Relaxed) & bit == 0 {
                    self.standard.fetch_or(bit, Ordering::Relaxed);
                }
            }
            None => {
                // Clients choose these: a few are kept, the rest fold into one, so a scanner
                // cannot grow memory.
                let mut ext = self.extension.lock().unwrap_or_else(|e| e.into_inner());
                let name = if ext.len() < MAX_EXTENSION_METHODS {
                    method
                } else {
                    "OTHER"
                };
                if !ext.iter().any(|m| m == name) {
                    ext.push(name.to_owned());
                }
            }
        }
    }

    /// Whether `method` was seen.
    #[inline]
    pub fn contains(&self, method: &str) -> bool {
        match METHODS.iter().position(|m| *m == method) {
            Some(bit) => self.standard.load(Ordering::Relaxed) & (1 << bit) != 0,
            None => self
                .extension
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|m| m == method),
        }
    }

    /// The methods, standard ones first in a fixed order.
    pub fn to_vec(&self) -> Vec<String> {
        let bits = self.standard.load(Ordering::Relaxed);
        METHODS
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, m)| (*m).to_owned())
            .chain(
                self.extension
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .cloned(),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::RouteState;

    macro_rules! meta {
        ($name:literal, $handler:literal) => {{
            static M: RouteMeta = RouteMeta {
                name: $name,
                handler: $handler,
                methods: &["GET"],
                paths: &["/"],
                file: "f.rs",
                line: 1,
                doc: "",
                state: RouteState::new(),
            };
            &M
        }};
    }

    #[test]
    fn colliding_ids_are_qualified_by_handler_path() {
        let reg = Registry::from_routes([
            meta!("index", "app::v2::index"),
            meta!("hello", "app::hello"),
            meta!("index", "app::v1::index"),
        ]);
        let ids: Vec<&str> = reg.annotated().iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["app.v1.index", "app.v2.index", "hello"]);
    }

    #[test]
    fn pattern_ids() {
        assert_eq!(id_from_pattern("/"), "_root");
        assert_eq!(id_from_pattern("/plain"), "plain");
        assert_eq!(id_from_pattern("/api/users/{id}"), "api.users.id");
        assert_eq!(
            id_from_pattern("/files/{id:\\d{2,}}/{tail}*"),
            "files.id.tail"
        );
        assert_eq!(id_from_pattern("/a b/ü"), "a_b._");
        for p in ["/", "/x/{y}", "/{a:[0-9]+}", "/%20"] {
            assert!(is_valid_id(&id_from_pattern(p)), "{p}");
        }
    }

    #[test]
    fn dynamic_routes_never_take_an_existing_id() {
        let reg = Registry::from_routes([meta!("plain", "app::plain")]);
        let a = reg.dynamic_route("/plain", None);
        // Another route's name (actix reports names by path) is not used.
        let b = reg.dynamic_route("/plain/", Some("plain"));
        let c = reg.dynamic_route("/named", Some("my-route"));
        let d = reg.dynamic_route("/bad", Some("has space"));
        assert_eq!(
            (a.id.as_str(), b.id.as_str(), c.id.as_str(), d.id.as_str()),
            ("plain~2", "plain.", "my-route", "bad")
        );
        assert!(std::ptr::eq(a, reg.dynamic_route("/plain", None)));
        assert_eq!(reg.dynamic().len(), 4);
    }

    /// Whether `path` matches `pattern`, a `{param}` standing for one segment.
    fn segments_match(pattern: &str, path: &str) -> bool {
        pattern.split('/').count() == path.split('/').count()
            && pattern
                .split('/')
                .zip(path.split('/'))
                .all(|(p, s)| p == s || p.starts_with('{'))
    }

    #[test]
    fn each_pattern_is_compiled_once() {
        static COMPILED: AtomicUsize = AtomicUsize::new(0);
        let reg = Registry::from_routes([]);
        for pattern in ["/a", "/b/{id}", "/c/{id}"] {
            reg.dynamic_route(pattern, None).methods.insert("GET");
        }
        // Each call of the hook stands for building actix's `ResourceDef` (a regex).
        reg.set_path_matcher(|pattern| {
            COMPILED.fetch_add(1, Ordering::Relaxed);
            let pattern = pattern.to_owned();
            Box::new(move |path| segments_match(&pattern, path))
        });
        for _ in 0..10 {
            let found = reg.resolve_plain("GET", "/c/7").map(|r| r.id.as_str());
            assert_eq!(found, Some("c.id"));
            assert!(reg.resolve_plain("POST", "/c/7").is_none());
            assert!(reg.resolve_plain("GET", "/d").is_none());
        }
        assert_eq!(COMPILED.load(Ordering::Relaxed), 3, "compiled per lookup");
    }

    #[test]
    fn operator_settings_reach_routes_now_and_later_and_the_api_shows_them() {
        use crate::api::{handle_in, Request};
        let reg = Registry::from_routes([meta!("hello", "app::hello")]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let write = |text: &str| std::fs::write(&path, text).unwrap();
        let get = |path: &str, query: &str| {
            let res = handle_in(&reg, &Request::new("GET", path, query));
            assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
            serde_json::from_slice::<serde_json::Value>(&res.body).unwrap()
        };
        // A missing file sets nothing, and is no error.
        let status = reg.configure_operator_settings(&path).unwrap();
        assert!(status.is_ok() && status.version.is_none());
        assert!(matches!(
            reg.configure_operator_settings(&path),
            Err(SettingsError::OperatorAlreadyConfigured { .. })
        ));
        write(r#"{"metadata":{"version":1},"routes":{"_all":{"preempt":{"status":503}}}}"#);
        let status = reg.reload_operator_settings().unwrap();
        assert_eq!((status.version, status.is_ok()), (Some(1), true));
        let (_, hello) = &reg.annotated()[0];
        assert_eq!(hello.state.settings.preempt().unwrap().status, 503);
        // A plain route seen after the file was applied gets its settings too.
        let later = reg.dynamic_route("/later", None);
        assert_eq!(later.settings.preempt().unwrap().status, 503);
        assert!(reg.has_dynamic_settings());

        let all = get("/_routes/settings", "flat_settings");
        assert_eq!(
            all["later"]["operator"],
            serde_json::json!({"preempt.status": 503})
        );
        assert_eq!(all["hello"]["transient"], serde_json::json!({}));
        let op = get("/_operator/settings", "");
        assert_eq!(op["status"], "ok");
        assert_eq!(op["version"], 1);
        assert_eq!(op["routes"]["_all"]["preempt"]["status"], 503);
        assert!(op["applied_at"].as_str().unwrap().ends_with('Z'));

        // A bad file: nothing changes; the error is shown, with where the JSON breaks.
        write("{\"metadata\":{\"version\":2},\n\"routes\":{\"_all\":}}");
        let status = reg.reload_operator_settings().unwrap();
        assert_eq!(status.version, Some(1));
        assert_eq!(later.settings.preempt().unwrap().status, 503);
        let op = get("/_operator/settings", "");
        assert_eq!(op["status"], "error");
        let reason = op["last_error"]["reason"].as_str().unwrap();
        assert!(reason.contains("at line 2 column 18"), "{reason}");

        // Removed: released everywhere.
        std::fs::remove_file(&path).unwrap();
        assert!(reg.reload_operator_settings().unwrap().is_ok());
        assert!(later.settings.preempt().is_none() && hello.state.settings.preempt().is_none());
        assert!(!reg.has_dynamic_settings());
    }

    #[test]
    fn method_sets() {
        let set = MethodSet::default();
        set.insert("POST");
        set.insert("GET");
        set.insert("PURGE");
        set.insert("GET");
        assert_eq!(set.to_vec(), ["GET", "POST", "PURGE"]);
        for i in 0..100 {
            set.insert(&format!("X{i}"));
        }
        assert_eq!(set.to_vec().len(), 3 + 7 + 1, "{:?}", set.to_vec());
        assert!(set.contains("OTHER"));
    }
}

#[cfg(test)]
mod sampler_tests {
    #[test]
    fn the_process_wide_registry_starts_the_window_sampler() {
        let _ = super::registry();
        let running = || {
            std::fs::read_dir("/proc/self/task").unwrap().any(|t| {
                std::fs::read_to_string(t.unwrap().path().join("comm"))
                    .is_ok_and(|name| name.trim() == "underscore-stat")
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !running() {
            assert!(
                std::time::Instant::now() < deadline,
                "no underscore-stat thread"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
