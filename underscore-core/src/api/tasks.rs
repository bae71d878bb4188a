//! `_tasks`, `_cat/tasks` and `POST /_routes/{ids}/interrupt`.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::cat::{self, CatParams, Cell, Column};
use crate::params::{split_list, Query};
use crate::render::DocParams;
use crate::render::Rendered;
use crate::tasks::{tasks, CancelOutcome, TaskBrief, TaskInfo, TaskKind, TaskRoute};
use crate::{glob, ApiError, Registry};

/// How long `print_stack` waits for the task to be polled and capture itself.
const STACK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the admin APIs show of one task.
struct View {
    info: TaskInfo,
    /// Shared by every task of the route: a listing of 100,000 tasks makes no copy of it.
    route_id: Option<Arc<str>>,
}

/// Resolves the route ids of a listing's tasks, each distinct route once: an annotated
/// route's id is a scan of the registry's routes, a waiting plain request's a match of its
/// path, and a storm has thousands of tasks on a few routes.
struct RouteIds<'r> {
    reg: &'r Registry,
    /// By the address of the route's `RouteMeta` or `DynamicRoute` (a `&'static`).
    by_route: HashMap<usize, Option<Arc<str>>>,
    /// Plain requests not routed yet, by method and path.
    by_path: HashMap<(http::Method, String), Option<Arc<str>>>,
    /// The last route looked up in `by_route`: a storm's tasks are mostly one route's.
    last: Option<(usize, Option<Arc<str>>)>,
}

impl<'r> RouteIds<'r> {
    fn new(reg: &'r Registry) -> Self {
        Self {
            reg,
            by_route: HashMap::new(),
            by_path: HashMap::new(),
            last: None,
        }
    }

    fn of(&mut self, info: &TaskInfo) -> Option<Arc<str>> {
        let request = match &info.kind {
            TaskKind::Request { method, uri, .. } => Some((method, uri)),
            TaskKind::Background { .. } | TaskKind::Underscore { .. } => None,
        };
        self.of_parts(&info.route, request)
    }

    fn of_parts(
        &mut self,
        route: &TaskRoute,
        request: Option<(&http::Method, &http::Uri)>,
    ) -> Option<Arc<str>> {
        let reg = self.reg;
        let address = match route {
            TaskRoute::Annotated(meta) => Some(std::ptr::from_ref(*meta) as usize),
            TaskRoute::Plain(Some(route)) | TaskRoute::Admitted(route) => {
                Some(std::ptr::from_ref(*route) as usize)
            }
            TaskRoute::Plain(None) | TaskRoute::None => None,
        };
        if let (Some(address), Some((last, id))) = (address, &self.last) {
            if address == *last {
                return id.clone();
            }
        }
        let id = match route {
            TaskRoute::Annotated(meta) => self
                .by_route
                .entry(std::ptr::from_ref(*meta) as usize)
                .or_insert_with(|| reg.annotated_id(meta).map(Arc::from))
                .clone(),
            TaskRoute::Plain(Some(route)) | TaskRoute::Admitted(route) => self
                .by_route
                .entry(std::ptr::from_ref(*route) as usize)
                .or_insert_with(|| Some(Arc::from(route.id.as_str())))
                .clone(),
            TaskRoute::Plain(None) => match request {
                Some((method, uri)) => self
                    .by_path
                    .entry((method.clone(), uri.path().to_owned()))
                    .or_insert_with(|| {
                        reg.resolve_plain(method.as_str(), uri.path())
                            .map(|r| Arc::from(r.id.as_str()))
                    })
                    .clone(),
                None => None,
            },
            TaskRoute::None => None,
        };
        if let Some(address) = address {
            self.last = Some((address, id.clone()));
        }
        id
    }
}

impl View {
    fn new(ids: &mut RouteIds<'_>, info: TaskInfo) -> Self {
        let route_id = ids.of(&info);
        Self { info, route_id }
    }

    /// `http:<route id>` (`http:_unrouted` without one) or `background:<name>`.
    fn action(&self) -> String {
        match &self.info.kind {
            TaskKind::Request { .. } => {
                format!("http:{}", self.route_id.as_deref().unwrap_or("_unrouted"))
            }
            TaskKind::Background { name } => format!("background:{name}"),
            TaskKind::Underscore { name } => format!("underscore:{name}"),
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.info.kind {
            TaskKind::Request { .. } => "http",
            TaskKind::Background { .. } => "background",
            TaskKind::Underscore { .. } => "underscore",
        }
    }

    fn method(&self) -> Option<String> {
        match &self.info.kind {
            TaskKind::Request { method, .. } => Some(method.to_string()),
            TaskKind::Background { .. } | TaskKind::Underscore { .. } => None,
        }
    }

    fn path(&self) -> Option<String> {
        match &self.info.kind {
            TaskKind::Request { uri, .. } => Some(
                uri.path_and_query()
                    .map_or_else(|| uri.path().to_owned(), |p| p.to_string()),
            ),
            TaskKind::Background { .. } | TaskKind::Underscore { .. } => None,
        }
    }

    fn peer(&self) -> Option<String> {
        match &self.info.kind {
            TaskKind::Request { peer, .. } => peer.map(|p| p.to_string()),
            TaskKind::Background { .. } | TaskKind::Underscore { .. } => None,
        }
    }

    fn opaque_id(&self) -> Option<String> {
        match &self.info.kind {
            TaskKind::Request { opaque_id, .. } => opaque_id
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            TaskKind::Background { .. } | TaskKind::Underscore { .. } => None,
        }
    }

    /// Elasticsearch's task object, plus ours: `route_id`, `method`, `path`, `peer`, `worker`.
    fn json(&self, detailed: bool) -> Value {
        let mut task = Map::new();
        task.insert("node".into(), json!(self.info.node));
        task.insert("id".into(), json!(self.info.number));
        task.insert("type".into(), json!(self.kind_name()));
        task.insert("action".into(), json!(self.action()));
        if detailed {
            let description = match (self.method(), self.path()) {
                (Some(m), Some(p)) => format!("{m} {p}"),
                _ => self.action(),
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
        let underscore = matches!(self.info.kind, TaskKind::Underscore { .. });
        task.insert("cancellable".into(), json!(!underscore));
        task.insert("cancelled".into(), json!(self.info.cancelled));
        let mut headers = Map::new();
        if let Some(opaque) = self.opaque_id() {
            headers.insert("X-Opaque-Id".into(), json!(opaque));
        }
        task.insert("headers".into(), Value::Object(headers));
        task.insert("opaque_id".into(), json!(self.opaque_id()));
        if let Some(p) = self.info.polls {
            task.insert(
                "polls".into(),
                json!({
                    "count": p.polls,
                    "busy_in_nanos": p.busy.as_nanos() as u64,
                    "longest_in_nanos": p.longest.as_nanos() as u64,
                    "blocking": p.blocking,
                }),
            );
        }
        task.insert("route_id".into(), json!(self.route_id.as_deref()));
        task.insert("method".into(), json!(self.method()));
        task.insert("path".into(), json!(self.path()));
        task.insert("peer".into(), json!(self.peer()));
        task.insert("worker".into(), json!(self.info.worker));
        if matches!(self.info.kind, TaskKind::Underscore { name: "drain" }) {
            // Elasticsearch's `status` of a long-running task: where the drain is.
            task.insert("status".into(), crate::health::drain_status());
        }
        Value::Object(task)
    }
}

/// Every task, ordered by start time.
fn views(reg: &Registry) -> Vec<View> {
    let mut ids = RouteIds::new(reg);
    tasks()
        .snapshot()
        .into_iter()
        .map(|info| View::new(&mut ids, info))
        .collect()
}

/// Every task, in no particular order (for a [`Selection`], which orders what it keeps).
fn views_unordered(reg: &Registry) -> Vec<View> {
    let mut ids = RouteIds::new(reg);
    tasks()
        .snapshot_unordered()
        .into_iter()
        .map(|info| View::new(&mut ids, info))
        .collect()
}

fn view(reg: &Registry, info: TaskInfo) -> View {
    View::new(&mut RouteIds::new(reg), info)
}

/// A task's [`TaskBrief`] and route id: what a selection by the columns in
/// [`BRIEF_COLUMNS`] and a summary read, without copying 100,000 tasks' requests.
struct Brief {
    brief: TaskBrief,
    route_id: Option<Arc<str>>,
}

/// The `_cat/tasks` columns a [`Brief`] knows.
const BRIEF_COLUMNS: &[&str] = &[
    "start_time",
    "timestamp",
    "running_time",
    "running_time_ns",
    "cancelled",
    "worker",
    "route",
];

fn briefs(reg: &Registry) -> Vec<Brief> {
    briefs_with(reg, true)
}

/// Every task's [`Brief`]; with `route_ids` false, none has its route id (`None`): a
/// selection that neither filters nor sorts by route need not look up 100,000 of them.
fn briefs_with(reg: &Registry, route_ids: bool) -> Vec<Brief> {
    let mut ids = RouteIds::new(reg);
    tasks()
        .briefs()
        .into_iter()
        .map(|brief| {
            let route_id = if route_ids {
                let request = brief.unrouted.as_deref().map(|(m, u)| (m, u));
                ids.of_parts(&brief.route, request)
            } else {
                None
            };
            Brief { brief, route_id }
        })
        .collect()
}

impl Brief {
    /// As [`sort_cell`] of the task's view.
    fn sort_cell(&self, column: usize) -> Cell {
        let b = &self.brief;
        let start_millis = || {
            b.start_time
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        };
        match TASK_COLUMNS[column].name {
            "running_time" | "running_time_ns" => Cell::Int(b.running_time.as_nanos() as i64),
            "start_time" => Cell::Int(start_millis()),
            "timestamp" => Cell::Int(start_millis() / 1000 % 86_400),
            "cancelled" => Cell::Bool(b.cancelled),
            "worker" => Cell::Int(b.worker as i64),
            "route" => self
                .route_id
                .as_deref()
                .map_or(Cell::Null, |id| Cell::Str(id.to_owned())),
            other => unreachable!("column [{other}] is not in BRIEF_COLUMNS"),
        }
    }
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

/// What a listing keeps of the tasks, and in which order: `route`, `min_running_time`, a sort
/// (`s` of `_cat/tasks`, `sort` of `_tasks`, by the `_cat/tasks` columns) and `size`.
#[derive(Debug, Default)]
struct Selection {
    /// The route ids `route=` selects (`None`: every task, background ones included).
    routes: Option<Vec<String>>,
    min_running_time: Option<Duration>,
    /// `(column of TASK_COLUMNS, descending)`, first key first.
    sort: Vec<(usize, bool)>,
    size: Option<usize>,
}

impl Selection {
    /// Takes `route`, `min_running_time` and `size` out of `query`; the sort keys are given
    /// (`sort_param` names them in errors).
    fn take(
        reg: &Registry,
        query: &mut Query,
        sort_param: &str,
        sort: Option<&str>,
    ) -> Result<Self, ApiError> {
        let routes = match query.take("route") {
            None => None,
            Some(expr) => {
                let ids = reg.ids();
                let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                let picked = super::select_ids(&expr, &refs, "route")?;
                Some(picked.into_iter().map(|i| ids[i].clone()).collect())
            }
        };
        let min_running_time = query
            .take("min_running_time")
            .map(|text| {
                crate::time_value::parse(&text).map_err(|err| {
                    ApiError::illegal_argument(format!(
                        "failed to parse parameter [min_running_time] with value [{text}]: {err}"
                    ))
                })
            })
            .transpose()?;
        let size = query
            .take("size")
            .map(|text| {
                text.parse::<usize>().map_err(|_| {
                    ApiError::illegal_argument(format!(
                        "invalid value [{text}] for parameter [size], expected a whole number \
                         of tasks (0 or more)"
                    ))
                })
            })
            .transpose()?;
        Ok(Self {
            routes,
            min_running_time,
            sort: cat::sort_keys(TASK_COLUMNS, sort_param, sort)?,
            size,
        })
    }

    /// Whether a task of route `route_id` that ran `running_time` passes the filters.
    fn keeps(&self, route_id: Option<&str>, running_time: Duration) -> bool {
        let route_ok = self
            .routes
            .as_ref()
            .is_none_or(|routes| route_id.is_some_and(|id| routes.iter().any(|r| r == id)));
        route_ok && self.min_running_time.is_none_or(|min| running_time >= min)
    }

    /// Whether the sort keys are all columns a [`Brief`] knows.
    fn brief_will_do(&self) -> bool {
        self.sort
            .iter()
            .all(|&(i, _)| BRIEF_COLUMNS.contains(&TASK_COLUMNS[i].name))
    }

    /// Which of `items` pass the filters (`keep`), sorted by the sort keys (`key` gives item
    /// `i`'s cell of a column; `natural` orders ties, and everything without keys), the
    /// first `size` of them: their indexes, and how many passed.
    ///
    /// With `size`, only the kept items are sorted: a partial selection
    /// (`select_nth_unstable_by`) finds them first, in linear time. Indexes are what moves,
    /// and each item's keys are computed once, side by side in one vector.
    fn pick<T>(
        &self,
        items: &[T],
        keep: impl Fn(&T) -> bool,
        key: impl Fn(&T, usize) -> Cell,
        natural: impl Fn(&T, &T) -> Ordering,
    ) -> (Vec<usize>, usize) {
        let mut picked: Vec<usize> = (0..items.len()).filter(|&i| keep(&items[i])).collect();
        let total = picked.len();
        let k = self.sort.len();
        let mut keys: Vec<Cell> = Vec::with_capacity(items.len() * k);
        if k > 0 {
            for item in items {
                keys.extend(self.sort.iter().map(|&(column, _)| key(item, column)));
            }
        }
        let directed = |j: usize, ord: Ordering| {
            if self.sort[j].1 {
                ord.reverse()
            } else {
                ord
            }
        };
        // Integers compare as such (running times, start times, workers: what a storm is
        // sorted by), without matching two cells per comparison.
        let ints: Option<Vec<i64>> = keys
            .iter()
            .map(|cell| match cell {
                Cell::Int(n) => Some(*n),
                _ => None,
            })
            .collect();
        match ints {
            // One integer key, the usual `s=running_time:desc`: the selection moves the keys
            // with the indexes, and reads no other memory until two keys tie.
            Some(ints) if k == 1 => {
                drop(keys);
                let desc = self.sort[0].1;
                let mut keyed: Vec<(i64, usize)> = picked.iter().map(|&i| (ints[i], i)).collect();
                first_sorted(&mut keyed, self.size, |a, b| {
                    let ord = if desc { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) };
                    ord.then_with(|| natural(&items[a.1], &items[b.1]))
                });
                picked = keyed.into_iter().map(|(_, i)| i).collect();
            }
            Some(ints) => {
                drop(keys);
                first_sorted(&mut picked, self.size, |&a, &b| {
                    (0..k)
                        .map(|j| directed(j, ints[a * k + j].cmp(&ints[b * k + j])))
                        .find(|o| o.is_ne())
                        .unwrap_or_else(|| natural(&items[a], &items[b]))
                });
            }
            None => first_sorted(&mut picked, self.size, |&a, &b| {
                (0..k)
                    .map(|j| directed(j, keys[a * k + j].compare(&keys[b * k + j])))
                    .find(|o| o.is_ne())
                    .unwrap_or_else(|| natural(&items[a], &items[b]))
            }),
        }
        (picked, total)
    }

    /// The views that pass the filters, sorted (by start time when no key is given), the
    /// first `size` of them; and how many passed. Ties keep start-time order, as `_cat`'s
    /// stable sort does, so `_cat/tasks` sorting the kept rows again changes nothing.
    fn apply(&self, all: Vec<View>) -> (Vec<View>, usize) {
        let (picked, total) = self.pick(
            &all,
            |v| self.keeps(v.route_id.as_deref(), v.info.running_time),
            sort_cell,
            |a, b| (a.info.start_time, a.info.number).cmp(&(b.info.start_time, b.info.number)),
        );
        let mut slots: Vec<Option<View>> = all.into_iter().map(Some).collect();
        let kept = picked.iter().filter_map(|&i| slots[i].take()).collect();
        (kept, total)
    }

    /// [`apply`](Self::apply) to every task of the registry, reading only [`Brief`]s when
    /// the sort keys allow, and the full details of the tasks kept.
    fn select(&self, reg: &Registry) -> (Vec<View>, usize) {
        if !self.brief_will_do() {
            return self.apply(views_unordered(reg));
        }
        // Route ids only where the filters or the sort read them; the kept tasks' are looked
        // up below, as their views are made.
        let by_route = self.routes.is_some()
            || self
                .sort
                .iter()
                .any(|&(i, _)| TASK_COLUMNS[i].name == "route");
        let all = briefs_with(reg, by_route);
        let (picked, total) = self.pick(
            &all,
            |b| self.keeps(b.route_id.as_deref(), b.brief.running_time),
            Brief::sort_cell,
            |a, b| (a.brief.start_time, a.brief.number).cmp(&(b.brief.start_time, b.brief.number)),
        );
        let numbers: Vec<u64> = picked.iter().map(|&i| all[i].brief.number).collect();
        let mut rank: HashMap<u64, usize> = HashMap::with_capacity(picked.len());
        for (r, &i) in picked.iter().enumerate() {
            rank.insert(all[i].brief.number, r);
        }
        // A task that ended since the scan is left out; the total stays as counted.
        let mut ids = RouteIds::new(reg);
        let mut kept: Vec<(usize, View)> = tasks()
            .get_many(&numbers)
            .into_iter()
            .map(|info| {
                let r = rank[&info.number];
                let view = match &all[picked[r]].route_id {
                    Some(id) if by_route => View {
                        info,
                        route_id: Some(id.clone()),
                    },
                    _ => View::new(&mut ids, info),
                };
                (r, view)
            })
            .collect();
        kept.sort_unstable_by_key(|(r, _)| *r);
        (kept.into_iter().map(|(_, v)| v).collect(), total)
    }
}

/// Sorts `picked` (indexes, or keys and indexes) by `order` and keeps its first `size`: with `size` smaller than the
/// whole, a partial selection (`select_nth_unstable_by`) finds them first, in linear time,
/// and only those are sorted.
fn first_sorted<T>(
    picked: &mut Vec<T>,
    size: Option<usize>,
    mut order: impl FnMut(&T, &T) -> Ordering,
) {
    match size {
        Some(0) => picked.clear(),
        Some(n) if n < picked.len() => {
            picked.select_nth_unstable_by(n - 1, &mut order);
            picked.truncate(n);
        }
        _ => {}
    }
    picked.sort_unstable_by(order);
}

struct ListParams {
    group_by: String,
    actions: Option<String>,
    detailed: bool,
    selection: Selection,
    doc: DocParams,
}

fn list_params(reg: &Registry, mut query: Query, path: &str) -> Result<ListParams, ApiError> {
    let sort = query.take("sort");
    let params = ListParams {
        group_by: query.take("group_by").unwrap_or_else(|| "nodes".to_owned()),
        actions: query.take("actions"),
        detailed: query.take_bool("detailed")?,
        selection: Selection::take(reg, &mut query, "sort", sort.as_deref())?,
        doc: DocParams::take_from(&mut query)?,
    };
    query.finish(path)?;
    if !matches!(
        params.group_by.as_str(),
        "nodes" | "parents" | "none" | "routes"
    ) {
        return Err(ApiError::illegal_argument(format!(
            "invalid value [{}] for parameter [group_by], expected one of [nodes, parents, none, routes]",
            params.group_by
        )));
    }
    if params.group_by == "routes" {
        let per_task = [
            ("size", params.selection.size.is_some()),
            ("sort", !params.selection.sort.is_empty()),
            ("detailed", params.detailed),
        ];
        if let Some((name, _)) = per_task.iter().find(|(_, given)| *given) {
            return Err(ApiError::illegal_argument(format!(
                "parameter [{name}] applies to task rows, and [group_by=routes] lists none"
            )));
        }
    }
    Ok(params)
}

/// `GET /_tasks`.
pub(crate) fn list(reg: &Registry, query: Query, path: &str) -> Result<Rendered, ApiError> {
    let params = list_params(reg, query, path)?;
    let selection = &params.selection;
    let (all, total) = if let Some(actions) = &params.actions {
        // An action names a background task: only the full views know it.
        let patterns = split_list("actions", actions)?;
        let mut all = views_unordered(reg);
        all.retain(|v| {
            let action = v.action();
            patterns.iter().any(|p| glob::matches(p, &action))
        });
        if params.group_by == "routes" {
            let lines = all
                .iter()
                .filter(|v| selection.keeps(v.route_id.as_deref(), v.info.running_time))
                .map(|v| {
                    let is_request = matches!(v.info.kind, TaskKind::Request { .. });
                    (v.route_id.as_ref(), is_request, &v.info)
                })
                .map(|(id, req, info)| (id, req, info.running_time, info.cancelled));
            return params.doc.render(summary_json(lines));
        }
        selection.apply(all)
    } else if params.group_by == "routes" {
        let all = briefs(reg);
        return params
            .doc
            .render(summary_json(summary_items(&all, selection)));
    } else {
        selection.select(reg)
    };
    let mut body = match params.group_by.as_str() {
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
    if selection.size.is_some() {
        body["total"] = json!(total);
    }
    params.doc.render(body)
}

/// One route's line of the summary (`_tasks?group_by=routes`, `_cat/tasks/summary`).
#[derive(Debug, Default)]
struct RouteSummary {
    tasks: u64,
    cancelled: u64,
    oldest: Duration,
}

/// One task as the summary counts it: its route id, whether it is a request, its running
/// time, whether it was cancelled.
type SummaryItem<'a> = (Option<&'a Arc<str>>, bool, Duration, bool);

/// What the summary counts of each task `selection` keeps.
fn summary_items<'a>(
    all: &'a [Brief],
    selection: &'a Selection,
) -> impl Iterator<Item = SummaryItem<'a>> {
    all.iter()
        .filter(|b| selection.keeps(b.route_id.as_deref(), b.brief.running_time))
        .map(|b| {
            let t = &b.brief;
            (
                b.route_id.as_ref(),
                t.is_request,
                t.running_time,
                t.cancelled,
            )
        })
}

/// The summary of `items`, by route id (`_unrouted` for a request without one, `_background`
/// for background tasks), ordered by id; and how many tasks it counts.
fn summarize<'a>(
    items: impl Iterator<Item = SummaryItem<'a>>,
) -> (Vec<(Arc<str>, RouteSummary)>, u64) {
    static UNROUTED: std::sync::LazyLock<Arc<str>> =
        std::sync::LazyLock::new(|| Arc::from("_unrouted"));
    static BACKGROUND: std::sync::LazyLock<Arc<str>> =
        std::sync::LazyLock::new(|| Arc::from("_background"));
    // Keyed by the shared id's address first: hashing a pointer, not the id's text, for
    // each of 100,000 tasks (the ids of one route are one `Arc`).
    let mut by: HashMap<usize, (Arc<str>, RouteSummary)> = HashMap::new();
    let mut total = 0;
    for (id, is_request, running_time, cancelled) in items {
        let key = match (id, is_request) {
            (Some(id), _) => id,
            (None, true) => &*UNROUTED,
            (None, false) => &*BACKGROUND,
        };
        let (_, line) = by
            .entry(Arc::as_ptr(key).cast::<u8>() as usize)
            .or_insert_with(|| (key.clone(), RouteSummary::default()));
        line.tasks += 1;
        line.cancelled += u64::from(cancelled);
        line.oldest = line.oldest.max(running_time);
        total += 1;
    }
    let mut lines: Vec<(Arc<str>, RouteSummary)> = Vec::new();
    for (id, line) in by.into_values() {
        // Two `Arc`s of one id (a route resolved twice) make one line.
        match lines.iter_mut().find(|(other, _)| *other == id) {
            Some((_, same)) => {
                same.tasks += line.tasks;
                same.cancelled += line.cancelled;
                same.oldest = same.oldest.max(line.oldest);
            }
            None => lines.push((id, line)),
        }
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    (lines, total)
}

/// `{"total": N, "routes": {"<id>": {"tasks", "cancelled", "oldest_running_time_in_nanos"}}}`
fn summary_json<'a>(items: impl Iterator<Item = SummaryItem<'a>>) -> Value {
    let (lines, total) = summarize(items);
    let routes: Map<String, Value> = lines
        .into_iter()
        .map(|(id, line)| {
            (
                id.to_string(),
                json!({
                    "tasks": line.tasks,
                    "cancelled": line.cancelled,
                    "oldest_running_time_in_nanos": line.oldest.as_nanos() as u64,
                }),
            )
        })
        .collect();
    json!({"total": total, "routes": routes})
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
    let body = json!({"completed": false, "task": view(reg, info).json(true)});
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
    if let TaskKind::Underscore { name } = info.kind {
        return Err(ApiError::illegal_argument(format!(
            "task [{id}] ({}) doesn't support cancellation",
            format_args!("underscore:{name}")
        )));
    }
    let outcome = tasks().cancel(n);
    let mut view = view(reg, info);
    let body = match outcome {
        CancelOutcome::NotFound => return Err(not_running(id)),
        CancelOutcome::Cancelled => {
            view.info.cancelled = true;
            tracing::info!(target: "underscore::audit", caller, task = %id, action = %view.action(), "task cancelled");
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
    let view = view(reg, info);
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
        "task {} ({}{}{}) running for {:?} on worker {}\n",
        view.info.id(),
        view.action(),
        match (view.method(), view.path()) {
            (Some(m), Some(p)) => format!(", {m} {p}"),
            _ => String::new(),
        },
        view.opaque_id()
            .map(|id| format!(", opaque_id {id}"))
            .unwrap_or_default(),
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
    // shard locks (matching a plain request's path compiles patterns); then they are
    // cancelled by number, in one pass over each shard. A request that starts after the
    // snapshot is not interrupted. (Background tasks have no route.)
    let mut route_of: HashMap<u64, Arc<str>> = HashMap::new();
    for brief in briefs(reg) {
        if let Some(id) = brief.route_id {
            if hits.contains_key(&*id) {
                route_of.insert(brief.brief.number, id);
            }
        }
    }
    let numbers: std::collections::HashSet<u64> = route_of.keys().copied().collect();
    for number in tasks().cancel_many(&numbers, crate::tasks::CancelReason::Interrupt) {
        if let Some(hit) = route_of.get(&number).and_then(|id| hits.get_mut(&**id)) {
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
        "task action: http:<route id>, background:<name> or underscore:drain",
    ),
    Column::text("type", &["ty"], "http, background or underscore").hidden(),
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
        "correlation id: X-Opaque-Id, else X-Request-Id, else the traceparent's trace id",
    )
    .hidden(),
    Column::number(
        "polls",
        &["po"],
        "polls of the task's future timed (poll timing on)",
    )
    .hidden(),
    Column::number("busy", &["b"], "time spent in those polls").hidden(),
    Column::number("longest_poll", &["lp"], "the longest of them").hidden(),
    Column::number("blocking_polls", &["bp"], "polls past blocking.threshold").hidden(),
];

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

/// Cell `column` (an index of [`TASK_COLUMNS`]) of `v`'s row.
fn cell(v: &View, column: usize) -> Cell {
    let text = |s: Option<String>| s.map_or(Cell::Null, Cell::Str);
    match TASK_COLUMNS[column].name {
        "id" => Cell::Str(v.info.id()),
        "action" => Cell::Str(v.action()),
        "type" => Cell::Str(v.kind_name().to_owned()),
        "route" => text(v.route_id.as_deref().map(str::to_owned)),
        "method" => text(v.method()),
        "path" => text(v.path()),
        "peer" => text(v.peer()),
        "start_time" => Cell::Int(v.info.start_millis() as i64),
        "timestamp" => Cell::Str(hms(&v.info)),
        "running_time" => Cell::duration(v.info.running_time),
        "running_time_ns" => Cell::Int(v.info.running_time.as_nanos() as i64),
        "cancelled" => Cell::Bool(v.info.cancelled),
        "worker" => Cell::Int(v.info.worker as i64),
        "node" => Cell::Str(v.info.node.to_owned()),
        "opaque_id" => text(v.opaque_id()),
        "polls" => v
            .info
            .polls
            .map_or(Cell::Null, |p| Cell::Int(p.polls as i64)),
        "busy" => v.info.polls.map_or(Cell::Null, |p| Cell::duration(p.busy)),
        "longest_poll" => v
            .info
            .polls
            .map_or(Cell::Null, |p| Cell::duration(p.longest)),
        "blocking_polls" => v
            .info
            .polls
            .map_or(Cell::Null, |p| Cell::Int(p.blocking as i64)),
        other => unreachable!("column [{other}] has no cell"),
    }
}

/// Cell `column` of `v` as sorting compares it: the same order as [`cell`], without
/// formatting a human time for each of 100,000 tasks.
fn sort_cell(v: &View, column: usize) -> Cell {
    match TASK_COLUMNS[column].name {
        "running_time" | "running_time_ns" => Cell::Int(v.info.running_time.as_nanos() as i64),
        // HH:MM:SS of the start: the start orders it the same within a day.
        "timestamp" => Cell::Int(v.info.start_millis() as i64 / 1000 % 86_400),
        _ => cell(v, column),
    }
}

/// `GET /_cat/tasks[/{ids}]`, and the number of tasks that matched when `size` cut the rows.
pub(crate) fn cat(
    reg: &Registry,
    mut query: Query,
    path: &str,
    ids: Option<&str>,
) -> Result<(Rendered, Option<usize>), ApiError> {
    let sort = query.take("s");
    let selection = Selection::take(reg, &mut query, "s", sort.as_deref())?;
    let mut params = CatParams::take(query, path)?;
    params.sort = sort;
    let (kept, total) = match ids {
        Some(_) => selection.apply(super::select(views(reg), ids, "task", |v| v.info.id())?),
        None => selection.select(reg),
    };
    let rows = kept
        .iter()
        .map(|v| (0..TASK_COLUMNS.len()).map(|i| cell(v, i)).collect())
        .collect();
    let rendered = cat::render(TASK_COLUMNS, rows, &params)?;
    Ok((rendered, selection.size.map(|_| total)))
}

/// The columns of `_cat/tasks/summary`, in `h=*` order.
pub(crate) const SUMMARY_COLUMNS: &[Column] = &[
    Column::text(
        "route",
        &["r", "route_id"],
        "route id (_unrouted: a request without one, _background: background tasks)",
    ),
    Column::number("tasks", &["t", "in_flight"], "tasks in flight"),
    Column::number(
        "cancelled",
        &["c"],
        "tasks cancelled and still winding down",
    ),
    Column::number(
        "oldest",
        &["o", "time"],
        "running time of the oldest, human-readable",
    ),
    Column::number(
        "oldest_ns",
        &["o_ns"],
        "running time of the oldest in nanoseconds",
    )
    .hidden(),
];

/// `GET /_cat/tasks/summary`: one row per route with tasks, no task rows.
pub(crate) fn cat_summary(
    reg: &Registry,
    mut query: Query,
    path: &str,
) -> Result<Rendered, ApiError> {
    let selection = Selection::take(reg, &mut query, "s", None)?;
    if selection.size.is_some() {
        return Err(ApiError::illegal_argument(
            "parameter [size] applies to task rows, and [/_cat/tasks/summary] lists none",
        ));
    }
    let params = CatParams::take(query, path)?;
    let all = briefs(reg);
    let rows = summarize(summary_items(&all, &selection))
        .0
        .into_iter()
        .map(|(id, line)| {
            vec![
                Cell::Str(id.to_string()),
                Cell::Int(line.tasks as i64),
                Cell::Int(line.cancelled as i64),
                Cell::duration(line.oldest),
                Cell::Int(line.oldest.as_nanos() as i64),
            ]
        })
        .collect();
    cat::render(SUMMARY_COLUMNS, rows, &params)
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
    for b in briefs(reg) {
        let Some(id) = b.route_id.as_deref() else {
            continue;
        };
        let is_request = b.brief.is_request;
        // Counted in its route's statistics only once it ends (an admitted one is already).
        let is_plain = matches!(b.brief.route, TaskRoute::Plain(_));
        if !is_request && !is_plain {
            continue;
        }
        // The id is copied once per route, not once per task.
        if !out.contains_key(id) {
            out.insert(id.to_owned(), RouteTasks::default());
        }
        let Some(entry) = out.get_mut(id) else {
            continue;
        };
        if is_plain {
            entry.plain += 1;
        }
        if is_request {
            entry.oldest = entry.oldest.max(b.brief.running_time);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_value::human;
    use std::time::SystemTime;

    fn view(number: u64, running_ms: u64, start_ms: u64) -> View {
        View {
            info: TaskInfo {
                node: "n",
                number,
                worker: (number % 3) as usize,
                kind: TaskKind::Background {
                    name: format!("b{}", number % 4).into(),
                },
                route: TaskRoute::None,
                start_time: UNIX_EPOCH + Duration::from_millis(start_ms),
                running_time: Duration::from_millis(running_ms),
                cancelled: number.is_multiple_of(5),
                polls: None,
            },
            route_id: None,
        }
    }

    /// Many ties: the order among them must be the same with and without `size`.
    fn views() -> Vec<View> {
        (0..300)
            .map(|n| view(n, (n * 7919) % 13, (n * 104_729) % 17))
            .collect()
    }

    fn order(views: &[View]) -> Vec<u64> {
        views.iter().map(|v| v.info.number).collect()
    }

    fn selection(sort: &str, size: Option<usize>) -> Selection {
        Selection {
            sort: cat::sort_keys(TASK_COLUMNS, "s", Some(sort)).unwrap(),
            size,
            ..Selection::default()
        }
    }

    #[test]
    fn partial_selection_keeps_what_a_full_sort_would() {
        for sort in [
            "running_time:desc",
            "running_time",
            "worker,running_time:desc",
            "cancelled:desc,start_time",
            "action:desc",
        ] {
            let (full, total) = selection(sort, None).apply(views());
            assert_eq!(total, 300);
            for size in [0, 1, 20, 299, 300, 1000] {
                let (cut, total) = selection(sort, Some(size)).apply(views());
                assert_eq!(total, 300, "{sort} {size}");
                assert_eq!(
                    order(&cut),
                    order(&full[..size.min(300)]),
                    "{sort} size={size}"
                );
            }
        }
    }

    #[test]
    fn one_integer_key_orders_as_a_stable_sort_by_it_then_start_time() {
        for (sort, desc) in [("running_time:desc", true), ("running_time", false)] {
            let mut expected = views();
            expected.sort_by(|a, b| {
                let by_key = a.info.running_time.cmp(&b.info.running_time);
                let by_key = if desc { by_key.reverse() } else { by_key };
                by_key.then(
                    (a.info.start_time, a.info.number).cmp(&(b.info.start_time, b.info.number)),
                )
            });
            for size in [1, 20, 300] {
                let (cut, _) = selection(sort, Some(size)).apply(views());
                assert_eq!(order(&cut), order(&expected[..size]), "{sort} size={size}");
            }
        }
    }

    #[test]
    fn no_sort_key_is_start_time_order_and_filters_count_before_size() {
        let (all, _) = Selection::default().apply(views());
        let starts: Vec<(SystemTime, u64)> = all
            .iter()
            .map(|v| (v.info.start_time, v.info.number))
            .collect();
        assert!(starts.is_sorted());
        let old = Selection {
            min_running_time: Some(Duration::from_millis(10)),
            size: Some(5),
            ..Selection::default()
        };
        let (kept, total) = old.apply(views());
        let expected = views()
            .iter()
            .filter(|v| v.info.running_time >= Duration::from_millis(10))
            .count();
        assert_eq!((kept.len(), total), (5, expected));
        assert!(kept
            .iter()
            .all(|v| v.info.running_time >= Duration::from_millis(10)));
    }

    #[test]
    fn sort_cells_order_as_the_shown_cells() {
        let vs = views();
        for column in ["running_time", "timestamp"] {
            let i = TASK_COLUMNS.iter().position(|c| c.name == column).unwrap();
            for a in &vs[..40] {
                for b in &vs[..40] {
                    assert_eq!(
                        sort_cell(a, i).compare(&sort_cell(b, i)),
                        cell(a, i).compare(&cell(b, i)),
                        "{column}"
                    );
                }
            }
        }
    }

    #[test]
    fn human_times() {
        assert_eq!(human(Duration::from_nanos(500)), "500nanos");
        assert_eq!(human(Duration::from_nanos(44_100)), "44.1micros");
        assert_eq!(human(Duration::from_millis(12)), "12.0ms");
        assert_eq!(human(Duration::from_millis(3_400)), "3.4s");
        assert_eq!(human(Duration::from_secs(126)), "2.1m");
    }
}
