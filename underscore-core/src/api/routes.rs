//! `GET /_routes[/{ids}]`, and the route snapshot that `_cat/routes` shares.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::params::{Format, Query};
use crate::registry::Registry;
use crate::settings::Preempt;
use crate::{render, ApiError};

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
    pub total: u64,
    /// Requests in flight.
    pub active: Option<u64>,
    /// The effective preempt.
    pub preempt: Option<Arc<Preempt>>,
}

impl RouteInfo {
    pub(crate) fn path(&self) -> String {
        self.paths.join("|")
    }
}

/// Every route, annotated ones first (by id), then plain actix-web ones (in order of discovery).
pub(crate) fn snapshot(reg: &Registry) -> Vec<RouteInfo> {
    let annotated = reg.annotated().iter().map(|(id, meta)| RouteInfo {
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
        total: meta.state.counters.total(),
        active: Some(meta.state.counters.active()),
        preempt: meta.state.settings.preempt(),
    });
    let dynamic = reg.dynamic();
    // In-flight requests of plain routes are matched to a route by path (actix has not told
    // which route serves them yet).
    let plain_active = if dynamic.is_empty() {
        Default::default()
    } else {
        super::tasks::plain_active(reg)
    };
    let dynamic = dynamic.into_iter().map(|route| RouteInfo {
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
        total: route.counters.total(),
        active: Some(plain_active.get(&route.id).copied().unwrap_or(0)),
        preempt: route.settings.preempt(),
    });
    annotated.chain(dynamic).collect()
}

/// The routes an `{ids}` expression selects (all of them without one).
pub(crate) fn selected(reg: &Registry, ids: Option<&str>) -> Result<Vec<RouteInfo>, ApiError> {
    let mut all = snapshot(reg);
    let Some(expr) = ids else {
        return Ok(all);
    };
    let keys: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    let keep = super::select_ids(expr, &keys)?;
    let mut keep = keep.into_iter().peekable();
    let mut index = 0;
    all.retain(|_| {
        let hit = keep.peek() == Some(&index);
        if hit {
            keep.next();
        }
        index += 1;
        hit
    });
    Ok(all)
}

pub(crate) fn get(
    reg: &Registry,
    mut query: Query,
    path: &str,
    ids: Option<&str>,
) -> Result<crate::cat::Rendered, ApiError> {
    let format = query.take_format(Format::Json)?;
    let pretty = query.take_bool("pretty")?;
    let filter = query.take("filter_path");
    query.finish(path)?;
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
    render::document(Value::Object(body), format, pretty, filter.as_deref())
}
