//! `GET /_routes[/{ids}]`, and the route snapshot that `_cat/routes` shares.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::params::Query;
use crate::registry::Registry;
use crate::render::DocParams;
use crate::settings::{Limits, Preempt};
use crate::stats::{Latencies, Outcome, StatsSnapshot};
use crate::ApiError;

/// What the admin APIs show of one route, read from the registry at one instant.
#[derive(Debug, Clone)]
pub(crate) struct RouteInfo {
    pub id: String,
    pub annotated: bool,
    pub handler: Option<&'static str>,
    pub name: Option<String>,
    pub methods: Vec<String>,
    pub paths: Vec<String>,
    pub file: Option<&'static str>,
    pub line: Option<u32>,
    pub doc: Option<&'static str>,
    pub mounted: bool,
    /// Requests in flight.
    pub active: u64,
    /// Statistics.
    pub stats: StatsSnapshot,
    /// The effective preempt.
    pub preempt: Option<Arc<Preempt>>,
    /// The effective limits.
    pub limits: Option<Arc<Limits>>,
    /// The latency histogram `stats` was computed from, when asked for (Prometheus).
    pub latencies: Option<Box<Latencies>>,
    /// How long its oldest in-flight request has run, when asked for (Prometheus).
    pub oldest: Option<Duration>,
}

impl RouteInfo {
    pub(crate) fn path(&self) -> String {
        self.paths.join("|")
    }
}

/// Every route, annotated ones first (by id), then plain actix-web ones (in order of discovery).
pub(crate) fn snapshot(reg: &Registry) -> Vec<RouteInfo> {
    snapshot_with(reg, false)
}

/// [`snapshot`], with each route's latency histogram and the age of its oldest in-flight
/// request when `metrics` is set.
pub(crate) fn snapshot_with(reg: &Registry, metrics: bool) -> Vec<RouteInfo> {
    let dynamic = reg.dynamic();
    // In-flight requests of plain routes are matched to a route by path (actix has not told
    // which route serves them yet); the registry is read once, and only when needed.
    let tasks = if dynamic.is_empty() && !metrics {
        Default::default()
    } else {
        super::tasks::by_route(reg)
    };
    let tasks_of = |id: &str| tasks.get(id).copied().unwrap_or_default();
    let oldest = |id: &str| metrics.then(|| tasks_of(id).oldest);
    let read = |stats: &crate::stats::RouteStats| {
        if metrics {
            let (snapshot, latencies) = stats.snapshot_with_latencies();
            (snapshot, Some(Box::new(latencies)))
        } else {
            (stats.snapshot(), None)
        }
    };
    let annotated = reg.annotated().iter().map(|(id, meta)| {
        let (stats, latencies) = read(&meta.state.stats);
        RouteInfo {
            id: id.clone(),
            annotated: true,
            handler: Some(meta.handler),
            name: Some(meta.name.to_owned()),
            methods: meta.methods.iter().map(|m| (*m).to_owned()).collect(),
            paths: meta.display_paths(),
            file: Some(meta.file),
            line: Some(meta.line),
            doc: Some(meta.doc).filter(|d| !d.is_empty()),
            mounted: meta.state.is_mounted(),
            active: stats.active,
            stats,
            preempt: meta.state.settings.preempt(),
            limits: meta.state.settings.limits(),
            latencies,
            oldest: oldest(id),
        }
    });
    let dynamic = dynamic.into_iter().map(|route| {
        let (stats, latencies) = read(&route.stats);
        RouteInfo {
            id: route.id.clone(),
            annotated: false,
            handler: None,
            name: route.name.clone(),
            methods: route.methods.to_vec(),
            paths: vec![route.pattern.clone()],
            file: None,
            line: None,
            doc: None,
            mounted: true,
            // Plain requests are counted when they end: while they run, they are matched to
            // their route by path (see `tasks::by_route`).
            active: tasks_of(&route.id).plain + stats.active,
            stats,
            preempt: route.settings.preempt(),
            limits: route.settings.limits(),
            latencies,
            oldest: oldest(&route.id),
        }
    });
    annotated.chain(dynamic).collect()
}

/// The routes an `{ids}` expression selects (all of them without one).
pub(crate) fn selected(reg: &Registry, ids: Option<&str>) -> Result<Vec<RouteInfo>, ApiError> {
    super::select(snapshot(reg), ids, "route", |r| r.id.clone())
}

pub(crate) fn get(
    reg: &Registry,
    query: Query,
    path: &str,
    ids: Option<&str>,
) -> Result<crate::render::Rendered, ApiError> {
    let params = DocParams::take(query, path)?;
    let routes = selected(reg, ids)?;
    let body: Map<String, Value> = routes
        .into_iter()
        .map(|r| {
            let path = r.path();
            let value = json!({
                "handler": r.handler,
                "name": r.name,
                "methods": r.methods,
                "path": path,
                "file": r.file,
                "line": r.line,
                "doc": r.doc,
                "annotated": r.annotated,
            });
            (r.id, value)
        })
        .collect();
    params.render(Value::Object(body))
}

/// The statistics of one route (or bucket), as `_routes/stats` shows them.
fn stats_json(s: &StatsSnapshot, active: u64) -> Value {
    let ms = super::rounded_ms;
    json!({
        "requests": {
            "total": s.total,
            "active": active,
            "preempted": s.count(Outcome::Preempted),
            "shed": s.count(Outcome::Shed),
            "timed_out": s.count(Outcome::TimedOut),
            "interrupted": s.count(Outcome::Interrupted),
            "cancelled": s.count(Outcome::Cancelled),
            "dropped": s.count(Outcome::Dropped),
        },
        "responses": {
            "1xx": s.count(Outcome::Status(100)),
            "2xx": s.count(Outcome::Status(200)),
            "3xx": s.count(Outcome::Status(300)),
            "4xx": s.count(Outcome::Status(400)),
            "5xx": s.count(Outcome::Status(500)),
        },
        "latency_ms": {
            "count": s.latency_count,
            "avg_1m": ms(s.avg_ms[0]),
            "avg_5m": ms(s.avg_ms[1]),
            "avg_15m": ms(s.avg_ms[2]),
            "p50": ms(s.percentiles_ms[0]),
            "p90": ms(s.percentiles_ms[1]),
            "p99": ms(s.percentiles_ms[2]),
            "max": ms(s.max_ms),
        },
        "blocking_polls": s.blocking_polls,
        "busy_ms": ms(Some(s.busy_nanos as f64 / 1e6)),
    })
}

/// `GET /_routes/stats` and `GET /_routes/{ids}/stats`.
pub(crate) fn stats(
    reg: &Registry,
    query: Query,
    path: &str,
    ids: Option<&str>,
) -> Result<crate::render::Rendered, ApiError> {
    let params = DocParams::take(query, path)?;
    let routes: Map<String, Value> = selected(reg, ids)?
        .into_iter()
        .map(|r| {
            let value = stats_json(&r.stats, r.active);
            (r.id, value)
        })
        .collect();
    let mut body = json!({ "routes": routes });
    if ids.is_none() {
        // Requests no route served, whatever their path: one bucket per kind.
        let unmatched = reg.unmatched().snapshot();
        let not_allowed = reg.method_not_allowed().snapshot();
        body["unmatched"] = json!({
            "404": stats_json(&unmatched, unmatched.active),
            "405": stats_json(&not_allowed, not_allowed.active),
        });
    }
    params.render(body)
}
