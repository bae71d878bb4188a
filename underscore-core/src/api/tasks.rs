//! `_tasks`, `_cat/tasks` and `POST /_routes/{ids}/interrupt`.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::cat::{self, CatParams, Cell, Column, Rendered};
use crate::params::{split_list, Query};
use crate::render::DocParams;
use crate::tasks::{tasks, CancelOutcome, TaskInfo, TaskKind, TaskRoute};
use crate::{glob, ApiError, Registry};

/// How long `print_stack` waits for the task to be polled and capture itself.
const STACK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the admin APIs show of one task.
struct View {
    info: TaskInfo,
    route_id: Option<String>,
    action: String,
}

impl View {
    fn new(reg: &Registry, info: TaskInfo) -> Self {
        let route_id = match &info.route {
            TaskRoute::Annotated(meta) => reg.annotated_id(meta).map(str::to_owned),
            TaskRoute::Plain(Some(route)) | TaskRoute::Admitted(route) => Some(route.id.clone()),
            TaskRoute::Plain(None) => match &info.kind {
                TaskKind::Request { method, uri, .. } => reg
                    .resolve_plain(method.as_str(), uri.path())
                    .map(|r| r.id.clone()),
                TaskKind::Background { .. } => None,
            },
            TaskRoute::None => None,
        };
        let action = match &info.kind {
            TaskKind::Request { .. } => {
                format!("http:{}", route_id.as_deref().unwrap_or("_unrouted"))
            }
            TaskKind::Background { name } => format!("background:{name}"),
        };
        Self {
            info,
            route_id,
            action,
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.info.kind {
            TaskKind::Request { .. } => "http",
            TaskKind::Background { .. } => "background",
        }
    }

    fn method(&self) -> Option<String> {
        match &self.info.kind {
            TaskKind::Request { method, .. } => Some(method.to_string()),
            TaskKind::Background { .. } => None,
        }
    }

    fn path(&self) -> Option<String> {
        match &self.info.kind {
            TaskKind::Request { uri, .. } => Some(
                uri.path_and_query()
                    .map_or_else(|| uri.path().to_owned(), |p| p.to_string()),
            ),
            TaskKind::Background { .. } => None,
        }
    }

    fn peer(&self) -> Option<String> {
        match &self.info.kind {
            TaskKind::Request { peer, .. } => peer.map(|p| p.to_string()),
            TaskKind::Background { .. } => None,
        }
    }

    fn opaque_id(&self) -> Option<String> {
        match &self.info.kind {
            TaskKind::Request { opaque_id, .. } => opaque_id
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            TaskKind::Background { .. } => None,
        }
    }

    /// Elasticsearch's task object, plus ours: `route_id`, `method`, `path`, `peer`, `worker`.
    fn json(&self, detailed: bool) -> Value {
        let mut task = Map::new();
        task.insert("node".into(), json!(self.info.node));
        task.insert("id".into(), json!(self.info.number));
        task.insert("type".into(), json!(self.kind_name()));
        task.insert("action".into(), json!(self.action));
        if detailed {
            let description = match (self.method(), self.path()) {
                (Some(m), Some(p)) => format!("{m} {p}"),
                _ => self.action.clone(),
            };
            task.insert("description".into(), json!(description));
        }
        task.insert(
            "start_time_in_millis".into(),
            json!(self.info.start_millis()),
        );
        task.insert(
            "running_time_in_nanos".into(),
            json!(self.info.running_time.as_nanos() as u64),
        );
        task.insert("cancellable".into(), json!(true));
        task.insert("cancelled".into(), json!(self.info.cancelled));
        let mut headers = Map::new();
        if let Some(opaque) = self.opaque_id() {
            headers.insert("X-Opaque-Id".into(), json!(opaque));
        }
        task.insert("headers".into(), Value::Object(headers));
        task.insert("route_id".into(), json!(self.route_id));
        task.insert("method".into(), json!(self.method()));
        task.insert("path".into(), json!(self.path()));
        task.insert("peer".into(), json!(self.peer()));
        task.insert("worker".into(), json!(self.info.worker));
        Value::Object(task)
    }
}

fn views(reg: &Registry) -> Vec<View> {
    tasks()
        .snapshot()
        .into_iter()
        .map(|info| View::new(reg, info))
        .collect()
}

/// `{"nodes": {"<node>": {"name": .., "tasks": {"<id>": {..}}}}}`
fn by_node(views: &[View], detailed: bool) -> Value {
    let node = tasks().node();
    let list: Map<String, Value> = views
        .iter()
        .map(|v| (v.info.id(), v.json(detailed)))
        .collect();
    if list.is_empty() {
        return json!({"nodes": {}});
    }
    json!({"nodes": {node: {"name": node, "roles": [], "tasks": list}}})
}

struct ListParams {
    group_by: String,
    actions: Option<String>,
    detailed: bool,
    doc: DocParams,
}

fn list_params(mut query: Query, path: &str) -> Result<ListParams, ApiError> {
    let params = ListParams {
        group_by: query.take("group_by").unwrap_or_else(|| "nodes".to_owned()),
        actions: query.take("actions"),
        detailed: query.take_bool("detailed")?,
        doc: DocParams::take_from(&mut query)?,
    };
    query.finish(path)?;
    if !matches!(params.group_by.as_str(), "nodes" | "parents" | "none") {
        return Err(ApiError::illegal_argument(format!(
            "invalid value [{}] for parameter [group_by], expected one of [nodes, parents, none]",
            params.group_by
        )));
    }
    Ok(params)
}

/// `GET /_tasks`.
pub(crate) fn list(reg: &Registry, query: Query, path: &str) -> Result<Rendered, ApiError> {
    let params = list_params(query, path)?;
    let mut all = views(reg);
    if let Some(actions) = &params.actions {
        let patterns = split_list("actions", actions)?;
        all.retain(|v| patterns.iter().any(|p| glob::matches(p, &v.action)));
    }
    let body = match params.group_by.as_str() {
        "nodes" => by_node(&all, params.detailed),
        // No task has a parent here: every task is a root.
        "parents" => {
            let tasks: Map<String, Value> = all
                .iter()
                .map(|v| (v.info.id(), v.json(params.detailed)))
                .collect();
            json!({ "tasks": tasks })
        }
        _ => json!({"tasks": all.iter().map(|v| v.json(params.detailed)).collect::<Vec<_>>()}),
    };
    params.doc.render(body)
}

fn number(id: &str) -> Result<u64, ApiError> {
    match tasks().parse_id(id) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(not_running(id)),
        Err(reason) => Err(ApiError::illegal_argument(reason)),
    }
}

fn not_running(id: &str) -> ApiError {
    ApiError::not_found(format!("task [{id}] isn't running"))
}

/// `GET /_tasks/{task_id}`.
pub(crate) fn get(
    reg: &Registry,
    query: Query,
    path: &str,
    id: &str,
) -> Result<Rendered, ApiError> {
    let params = DocParams::take(query, path)?;
    let n = number(id)?;
    let info = tasks().get(n).ok_or_else(|| not_running(id))?;
    let body = json!({"completed": false, "task": View::new(reg, info).json(true)});
    params.render(body)
}

/// `POST /_tasks/{task_id}/_cancel` (and `/cancel`).
pub(crate) fn cancel(
    reg: &Registry,
    query: Query,
    path: &str,
    id: &str,
    caller: &str,
) -> Result<Rendered, ApiError> {
    let params = DocParams::take(query, path)?;
    let n = number(id)?;
    let info = tasks().get(n).ok_or_else(|| not_running(id))?;
    let outcome = tasks().cancel(n);
    let mut view = View::new(reg, info);
    let body = match outcome {
        CancelOutcome::NotFound => return Err(not_running(id)),
        CancelOutcome::Cancelled => {
            view.info.cancelled = true;
            tracing::info!(target: "underscore::audit", caller, task = %id, action = %view.action, "task cancelled");
            by_node(std::slice::from_ref(&view), false)
        }
        CancelOutcome::AlreadyCancelled => {
            let mut body = by_node(std::slice::from_ref(&view), false);
            body["task_failures"] = json!([{
                "task_id": n,
                "node_id": tasks().node(),
                "status": "CONFLICT",
                "reason": {"type": "illegal_state_exception", "reason": format!("task with id {n} is already cancelled")},
            }]);
            body
        }
    };
    params.render(body)
}

/// `GET /_tasks/{task_id}/print_stack`.
pub(crate) fn print_stack(
    reg: &Registry,
    query: Query,
    path: &str,
    id: &str,
) -> Result<Rendered, ApiError> {
    query.finish(path)?;
    let n = number(id)?;
    let info = tasks().get(n).ok_or_else(|| not_running(id))?;
    if let Err(how) = tasks().stacks_supported() {
        return Err(ApiError::new(501, "unsupported_operation_exception", how));
    }
    let view = View::new(reg, info);
    let rx = tasks().request_stack(n).ok_or_else(|| not_running(id))?;
    let stack = match rx.recv_timeout(STACK_TIMEOUT) {
        Ok(render) => render(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            return Err(ApiError::not_found(format!(
                "task [{id}] completed before its stack could be captured"
            )))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            return Err(ApiError::new(
                504,
                "timeout_exception",
                format!(
                    "task [{id}] was not polled within {}s (a task stuck in blocking code never yields to be captured)",
                    STACK_TIMEOUT.as_secs()
                ),
            ))
        }
    };
    let header = format!(
        "task {} ({}{}) running for {:?} on worker {}\n",
        view.info.id(),
        view.action,
        match (view.method(), view.path()) {
            (Some(m), Some(p)) => format!(", {m} {p}"),
            _ => String::new(),
        },
        view.info.running_time,
        view.info.worker,
    );
    Ok(Rendered::text(header + &stack))
}

/// `POST /_routes/{ids}/interrupt`.
pub(crate) fn interrupt(
    reg: &Registry,
    query: Query,
    path: &str,
    ids: &str,
    caller: &str,
) -> Result<Rendered, ApiError> {
    let params = DocParams::take(query, path)?;
    let selected = super::select(reg.ids(), Some(ids), "route", Clone::clone)?;
    let mut hits: HashMap<&str, u64> = selected.iter().map(|id| (id.as_str(), 0)).collect();
    // Which tasks belong to those routes is worked out from a snapshot, outside the workers'
    // shard locks (matching a plain request's path compiles patterns); then each is cancelled
    // by number. A request that starts after the snapshot is not interrupted. (Background
    // tasks have no route.)
    for view in views(reg) {
        let Some(hit) = view.route_id.as_deref().and_then(|id| hits.get_mut(id)) else {
            continue;
        };
        if tasks().cancel_as(view.info.number, crate::tasks::CancelReason::Interrupt)
            == CancelOutcome::Cancelled
        {
            *hit += 1;
        }
    }
    let interrupted: u64 = hits.values().sum();
    let counts: Map<String, Value> = selected
        .iter()
        .map(|id| (id.clone(), json!({ "interrupted": hits[id.as_str()] })))
        .collect();
    tracing::info!(target: "underscore::audit", caller, routes = ?selected, interrupted, "routes interrupted");
    params.render(Value::Object(counts))
}

/// The columns of `_cat/tasks`, in `h=*` order.
pub(crate) const TASK_COLUMNS: &[Column] = &[
    Column::text("id", &["task_id", "ti"], "task id (node:number)"),
    Column::text(
        "action",
        &["ac"],
        "task action: http:<route id> or background:<name>",
    ),
    Column::text("type", &["ty"], "http or background").hidden(),
    Column::text("route", &["r", "route_id"], "route id").hidden(),
    Column::text("method", &["m"], "HTTP method"),
    Column::text("path", &["p"], "request path and query"),
    Column::text("peer", &["ip"], "client address").hidden(),
    Column::number(
        "start_time",
        &["start"],
        "start time, milliseconds since the epoch",
    ),
    Column::text("timestamp", &["ts", "hms"], "start time, HH:MM:SS UTC"),
    Column::number("running_time", &["time"], "running time, human-readable"),
    Column::number(
        "running_time_ns",
        &["time_ns"],
        "running time in nanoseconds",
    )
    .hidden(),
    Column::text("cancelled", &["c"], "whether cancellation was asked"),
    Column::number("worker", &["w"], "worker shard running the task").hidden(),
    Column::text("node", &["n"], "node id").hidden(),
    Column::text(
        "opaque_id",
        &["x_opaque_id"],
        "X-Opaque-Id header of the request",
    )
    .hidden(),
];

/// Elasticsearch's human time: `44.1micros`, `1.2ms`, `3.4s`, `2.1m`.
fn human(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns}nanos")
    } else if ns < 1e6 {
        format!("{:.1}micros", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1}ms", ns / 1e6)
    } else if ns < 60e9 {
        format!("{:.1}s", ns / 1e9)
    } else if ns < 3600e9 {
        format!("{:.1}m", ns / 60e9)
    } else {
        format!("{:.1}h", ns / 3600e9)
    }
}

fn hms(info: &TaskInfo) -> String {
    let secs = info
        .start_time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

/// A human time cell that sorts by its duration.
fn duration_cell(d: Duration) -> Cell {
    Cell::Human {
        text: human(d),
        key: d.as_secs_f64(),
    }
}

/// `GET /_cat/tasks[/{ids}]`.
pub(crate) fn cat(
    reg: &Registry,
    query: Query,
    path: &str,
    ids: Option<&str>,
) -> Result<Rendered, ApiError> {
    let params = CatParams::take(query, path)?;
    let all = super::select(views(reg), ids, "task", |v| v.info.id())?;
    let text = |s: Option<String>| s.map_or(Cell::Null, Cell::Str);
    let rows = all
        .iter()
        .map(|v| {
            vec![
                Cell::Str(v.info.id()),
                Cell::Str(v.action.clone()),
                Cell::Str(v.kind_name().to_owned()),
                text(v.route_id.clone()),
                text(v.method()),
                text(v.path()),
                text(v.peer()),
                Cell::Int(v.info.start_millis() as i64),
                Cell::Str(hms(&v.info)),
                duration_cell(v.info.running_time),
                Cell::Int(v.info.running_time.as_nanos() as i64),
                Cell::Bool(v.info.cancelled),
                Cell::Int(v.info.worker as i64),
                Cell::Str(v.info.node.clone()),
                text(v.opaque_id()),
            ]
        })
        .collect();
    cat::render(TASK_COLUMNS, rows, &params)
}

/// What the task registry says of one route's in-flight requests.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RouteTasks {
    /// In-flight requests of a plain actix-web route, matched to it by path (its other
    /// figures count a plain request only once it ends).
    pub plain: u64,
    /// How long the oldest in-flight request has been running. Only requests that waited are
    /// tasks (one answered within its first poll never is).
    pub oldest: Duration,
}

/// [`RouteTasks`] of every route with a task, by route id, in one pass over the registry.
pub(crate) fn by_route(reg: &Registry) -> HashMap<String, RouteTasks> {
    let mut out: HashMap<String, RouteTasks> = HashMap::new();
    for view in views(reg) {
        let Some(id) = view.route_id else { continue };
        let is_request = matches!(view.info.kind, TaskKind::Request { .. });
        // Counted in its route's statistics only once it ends (an admitted one is already).
        let is_plain = matches!(view.info.route, TaskRoute::Plain(_));
        if !is_request && !is_plain {
            continue;
        }
        let entry = out.entry(id).or_default();
        if is_plain {
            entry.plain += 1;
        }
        if is_request {
            entry.oldest = entry.oldest.max(view.info.running_time);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::human;
    use std::time::Duration;

    #[test]
    fn human_times() {
        assert_eq!(human(Duration::from_nanos(500)), "500nanos");
        assert_eq!(human(Duration::from_nanos(44_100)), "44.1micros");
        assert_eq!(human(Duration::from_millis(12)), "12.0ms");
        assert_eq!(human(Duration::from_millis(3_400)), "3.4s");
        assert_eq!(human(Duration::from_secs(126)), "2.1m");
    }
}
