//! Route metadata and per-route state.
//!
//! `#[underscore_route]` emits one `static` [`RouteMeta`] per handler and submits a
//! [`RouteRef`] to it into the [`inventory`], so the admin APIs can list every annotated route,
//! and the middleware reaches the route's counters through a `&'static` with no lookup.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::settings::SettingsSlot;
use crate::stats::RouteStats;

/// Compile-time metadata of one annotated handler, plus its runtime state.
///
/// Built by `#[underscore_route]`; not meant to be written by hand.
#[derive(Debug)]
pub struct RouteMeta {
    /// The declared id: the fn name, or `name = "..."`. [`crate::Registry`] qualifies it when two
    /// handlers declare the same one.
    pub name: &'static str,
    /// The handler: module path and fn name, e.g. `quickstart::hello`.
    pub handler: &'static str,
    /// The HTTP methods the actix attribute(s) accept, upper case.
    pub methods: &'static [&'static str],
    /// The path pattern of each actix attribute, as written (before any scope prefix).
    pub paths: &'static [&'static str],
    /// The source file of the handler.
    pub file: &'static str,
    /// The line of the handler in [`RouteMeta::file`].
    pub line: u32,
    /// The first line of the handler's doc comment, or empty.
    pub doc: &'static str,
    /// Counters and what was learned at runtime.
    pub state: RouteState,
}

/// An inventory entry pointing at a [`RouteMeta`].
#[derive(Debug, Clone, Copy)]
pub struct RouteRef(pub &'static RouteMeta);

inventory::collect!(RouteRef);

/// The runtime state of an annotated route, `const`-constructible so it can live in the
/// macro-emitted `static`.
#[derive(Debug)]
pub struct RouteState {
    /// Request statistics.
    pub stats: RouteStats,
    /// The effective settings, as the middleware reads them.
    pub settings: SettingsSlot,
    mounted: AtomicBool,
    /// Full (scope-prefixed) patterns learned from served requests: `(attribute index, pattern)`.
    /// Written once per worker and mount, read by the admin APIs: never on the per-request path.
    full_paths: Mutex<Vec<(usize, String)>>,
}

impl Default for RouteState {
    fn default() -> Self {
        Self::new()
    }
}

impl RouteState {
    /// The initial state.
    pub const fn new() -> Self {
        Self {
            stats: RouteStats::new(),
            settings: SettingsSlot::new(),
            mounted: AtomicBool::new(false),
            full_paths: Mutex::new(Vec::new()),
        }
    }

    /// Records that an actix worker mounted this route.
    pub fn set_mounted(&self) {
        // Relaxed: a flag for display, publishing nothing else.
        self.mounted.store(true, Ordering::Relaxed);
    }

    /// Whether any actix worker has mounted this route.
    pub fn is_mounted(&self) -> bool {
        self.mounted.load(Ordering::Relaxed)
    }

    /// Records the full pattern under which attribute `index` of the route is mounted.
    pub fn learn_full_path(&self, index: usize, pattern: &str) {
        let mut paths = self.full_paths.lock().unwrap_or_else(|e| e.into_inner());
        if !paths.iter().any(|(i, p)| *i == index && p == pattern) {
            paths.push((index, pattern.to_owned()));
        }
    }

    fn full_paths(&self) -> Vec<(usize, String)> {
        self.full_paths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl RouteMeta {
    /// The route's path patterns: the mounted (scope-prefixed) ones where a request has shown
    /// them, else the patterns as written in the attribute.
    pub fn display_paths(&self) -> Vec<String> {
        let learned = self.state.full_paths();
        let mut out: Vec<String> = Vec::new();
        for (index, local) in self.paths.iter().enumerate() {
            let mut any = false;
            for (_, full) in learned.iter().filter(|(i, _)| *i == index) {
                any = true;
                if !out.contains(full) {
                    out.push(full.clone());
                }
            }
            if !any && !out.iter().any(|p| p == local) {
                out.push((*local).to_owned());
            }
        }
        out
    }
}

/// The standard methods, in the order a route's methods are listed.
pub(crate) const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];

#[cfg(test)]
mod tests {
    use super::*;

    static META: RouteMeta = RouteMeta {
        name: "hello",
        handler: "app::hello",
        methods: &["GET", "POST"],
        paths: &["/hello/{name}", "/hi/{name}"],
        file: "src/main.rs",
        line: 7,
        doc: "Greets.",
        state: RouteState::new(),
    };

    #[test]
    fn full_paths_replace_local_ones_once_learned() {
        assert_eq!(META.display_paths(), ["/hello/{name}", "/hi/{name}"]);
        META.state.learn_full_path(0, "/api/hello/{name}");
        META.state.learn_full_path(0, "/api/hello/{name}");
        assert_eq!(META.display_paths(), ["/api/hello/{name}", "/hi/{name}"]);
    }
}
