//! What `top` shows, computed from the nodes' answers: no I/O, no terminal, no clock.
//!
//! Each refresh gives one [`Snapshot`] per node. [`Model::apply`] computes the rates against
//! the node's previous snapshot (requests and 5xx responses per second: the counters' deltas
//! over the time between the two polls; a counter that went down, as after a restart, counts
//! from zero), sorts the routes and the tasks, and keeps the selection on the same route or
//! task while rows move. [`Model::on_key`] turns a key into a change of the model or an
//! [`Action`] for the app to carry out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// One route's row of `_cat/routes?format=json&h=...`, by column name. Columns the server
/// does not have (an older or newer server) are `None`, shown as `-`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteStats {
    /// `id`.
    pub id: String,
    /// `method`.
    pub method: Option<String>,
    /// `path`.
    pub path: Option<String>,
    /// `stats.req.total`.
    pub total: Option<u64>,
    /// `stats.req.active`: requests in flight.
    pub active: Option<u64>,
    /// `stats.resp.5xx`.
    pub resp_5xx: Option<u64>,
    /// `stats.resp.time_p50`, ms.
    pub p50: Option<f64>,
    /// `stats.resp.time_p99`, ms.
    pub p99: Option<f64>,
    /// `stats.req.shed`: requests turned away by a load-shedding limit.
    pub shed: Option<u64>,
    /// `stats.req.timed_out`.
    pub timed_out: Option<u64>,
    /// `limits.max_in_flight`.
    pub max_in_flight: Option<u64>,
    /// `limits.timeout`, as the server writes it.
    pub timeout: Option<String>,
    /// `preempt`: the effective preempt status.
    pub preempt: Option<u64>,
    /// `preempt.percent`: the share of requests preempted.
    pub preempt_percent: Option<f64>,
}

/// The `_cat/routes` columns `top` reads.
pub const ROUTE_COLUMNS: [&str; 14] = [
    "id",
    "method",
    "path",
    "stats.req.total",
    "stats.req.active",
    "stats.resp.5xx",
    "stats.resp.time_p50",
    "stats.resp.time_p99",
    "stats.req.shed",
    "stats.req.timed_out",
    "limits.max_in_flight",
    "limits.timeout",
    "preempt",
    "preempt.percent",
];

impl RouteStats {
    /// Reads a row; `None` without an `id`.
    pub fn from_row(row: &Map<String, Value>) -> Option<Self> {
        let text = |k: &str| match row.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => Some(v.to_string()),
        };
        let int = |k: &str| row.get(k).and_then(Value::as_u64);
        let float = |k: &str| row.get(k).and_then(Value::as_f64);
        Some(Self {
            id: row.get("id")?.as_str()?.to_owned(),
            method: text("method"),
            path: text("path"),
            total: int("stats.req.total"),
            active: int("stats.req.active"),
            resp_5xx: int("stats.resp.5xx"),
            p50: float("stats.resp.time_p50"),
            p99: float("stats.resp.time_p99"),
            shed: int("stats.req.shed"),
            timed_out: int("stats.req.timed_out"),
            max_in_flight: int("limits.max_in_flight"),
            timeout: text("limits.timeout"),
            preempt: int("preempt"),
            preempt_percent: float("preempt.percent"),
        })
    }
}

/// One in-flight task of `_tasks?detailed&group_by=none`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskInfo {
    /// `node:number`.
    pub id: String,
    /// `http:<route>` or `background:<name>`.
    pub action: String,
    /// The route id, for a request.
    pub route: Option<String>,
    /// The HTTP method, for a request.
    pub method: Option<String>,
    /// The path and query, for a request.
    pub path: Option<String>,
    /// How long it has been running.
    pub running_nanos: u64,
    /// Whether a cancel was asked.
    pub cancelled: bool,
    /// The request's correlation id (`opaque_id`), if it has one.
    pub opaque_id: Option<String>,
    /// Its polls so far, with poll timing on (`polls` of `_tasks`).
    pub polls: Option<TaskPolls>,
}

/// A task's polls so far, as `_tasks` gives them with poll timing on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskPolls {
    /// How many.
    pub count: u64,
    /// Time spent in them, in nanoseconds.
    pub busy_nanos: u64,
    /// The longest, in nanoseconds.
    pub longest_nanos: u64,
}

impl TaskPolls {
    /// Reads a task's `polls` object.
    fn from_value(polls: &Value) -> Option<Self> {
        let n = |k: &str| polls.get(k).and_then(Value::as_u64);
        Some(Self {
            count: n("count")?,
            busy_nanos: n("busy_in_nanos")?,
            longest_nanos: n("longest_in_nanos")?,
        })
    }
}

impl TaskInfo {
    /// Reads the `tasks` array of `_tasks?group_by=none`.
    pub fn from_tasks(value: &Value) -> Vec<Self> {
        let Some(tasks) = value.get("tasks").and_then(Value::as_array) else {
            return Vec::new();
        };
        tasks
            .iter()
            .filter_map(|t| {
                let s = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_owned);
                let id = match (t.get("node").and_then(Value::as_str), t.get("id")) {
                    (Some(node), Some(Value::Number(n))) => format!("{node}:{n}"),
                    (_, Some(Value::String(id))) => id.clone(),
                    _ => return None,
                };
                Some(Self {
                    id,
                    action: s("action").unwrap_or_default(),
                    route: s("route_id"),
                    method: s("method"),
                    path: s("path").or_else(|| s("description")),
                    running_nanos: t
                        .get("running_time_in_nanos")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                    cancelled: t.get("cancelled").and_then(Value::as_bool).unwrap_or(false),
                    opaque_id: s("opaque_id"),
                    polls: t.get("polls").and_then(TaskPolls::from_value),
                })
            })
            .collect()
    }
}

/// Reads the `total` of `_tasks?size=N` (how many tasks are in flight, of which the answer
/// holds the N longest-running); `None` from a server that does not cut the list.
pub fn tasks_total(value: &Value) -> Option<u64> {
    value.get("total").and_then(Value::as_u64)
}

/// Reads `_tasks?group_by=routes`: `(route, tasks in flight)`.
pub fn task_routes(value: &Value) -> Vec<(String, u64)> {
    let Some(routes) = value.get("routes").and_then(Value::as_object) else {
        return Vec::new();
    };
    routes
        .iter()
        .filter_map(|(id, line)| Some((id.clone(), line.get("tasks")?.as_u64()?)))
        .collect()
}

/// What a node's `GET /_health` said (a node without it, an older build, says nothing).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeHealth {
    /// `green`, `yellow` or `red`.
    pub status: String,
    /// Whether `/readyz` says 200.
    pub ready: bool,
    /// The drain's phase, while it drains.
    pub phase: Option<String>,
    /// The requests the drain waits for.
    pub in_flight: Option<u64>,
}

impl NodeHealth {
    /// Reads a `GET /_health` answer.
    pub fn from_value(value: &Value) -> Option<Self> {
        let drain = value.get("drain");
        Some(Self {
            status: value.get("status")?.as_str()?.to_owned(),
            ready: value.get("ready")?.as_bool()?,
            phase: drain
                .and_then(|d| d.get("phase"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            in_flight: drain
                .and_then(|d| d.get("in_flight"))
                .and_then(Value::as_u64),
        })
    }

    /// How the header shows it: `green ready`, `red not ready`, `draining: waiting, 3 in
    /// flight`.
    pub fn label(&self) -> String {
        match &self.phase {
            Some(phase) => format!(
                "draining: {phase}, {} in flight",
                self.in_flight.unwrap_or(0)
            ),
            None if self.ready => format!("{} ready", self.status),
            None => format!("{} not ready", self.status),
        }
    }
}

/// What a node's workers and slow log warn of: workers blocked now, slow requests lately.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeWarnings {
    /// Workers polling one request past the node's `blocking.threshold` now (the server's
    /// `blocked` column; from a server without it, [`BLOCKED_AFTER`]): worker, route, task
    /// (`None` before the request waited once), for how long.
    pub blocked: Vec<(u64, String, Option<String>, Duration)>,
    /// Requests the slow log logged in the last minute (a request reported while it ran
    /// counts once).
    pub slow_last_minute: u64,
}

/// A poll running this long is shown as a blocked worker when the server does not say (one
/// without the `blocked` column of `_cat/workers`): the default `blocking.threshold`.
pub const BLOCKED_AFTER: Duration = Duration::from_millis(10);

impl NodeWarnings {
    /// Reads `GET /_cat/workers?format=json&h=worker,polling,task,polling_for,blocked` and
    /// `GET /_slowlog?since=1m`.
    pub fn from_values(workers: &Value, slowlog: &Value) -> Self {
        let blocked = workers
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| {
                let route = w.get("polling")?.as_str()?.to_owned();
                let took = parse_human(w.get("polling_for")?.as_str()?)?;
                let task = w.get("task").and_then(Value::as_str).map(str::to_owned);
                let worker = w.get("worker").and_then(Value::as_u64).unwrap_or(0);
                let blocked = match w.get("blocked").and_then(Value::as_bool) {
                    Some(blocked) => blocked,
                    None => took >= BLOCKED_AFTER,
                };
                blocked.then_some((worker, route, task, took))
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        let slow_last_minute = slowlog
            .get("entries")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| {
                let key = match e.get("task").and_then(Value::as_str) {
                    Some(task) => task.to_owned(),
                    None => format!("#{}", e.get("seq").and_then(Value::as_u64).unwrap_or(0)),
                };
                seen.insert(key)
            })
            .count() as u64;
        Self {
            blocked,
            slow_last_minute,
        }
    }

    /// Whether there is anything to say.
    pub fn is_empty(&self) -> bool {
        self.blocked.is_empty() && self.slow_last_minute == 0
    }
}

/// A duration as the `_cat` tables print it: `1.2s`, `50.3ms`, `92.9micros`, `3m`.
fn parse_human(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let secs = match unit {
        "nanos" => 1e-9,
        "micros" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(number * secs).ok()
}

/// What one node answered at one poll.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeData {
    /// Its health, when it has `/_health`.
    pub health: Option<NodeHealth>,
    /// What its workers and slow log warn of, when it has them.
    pub warnings: Option<NodeWarnings>,
    /// Its routes.
    pub routes: Vec<RouteStats>,
    /// Its longest-running in-flight tasks (as many as the screen shows).
    pub tasks: Vec<TaskInfo>,
    /// How many tasks it has in flight, when it said (`tasks` may hold fewer).
    pub tasks_total: Option<u64>,
    /// Its tasks in flight per route, from its summary.
    pub task_routes: Vec<(String, u64)>,
    /// The endpoints that answered an error (or something unreadable), one line each; what
    /// they would have given is empty above, what the others gave is kept.
    pub failed: Vec<String>,
}

/// One node's poll: when, and what it answered or why it could not.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The node's name.
    pub node: String,
    /// When the answer came.
    pub at: Instant,
    /// The answer, or the one-line error.
    pub data: Result<NodeData, String>,
}

/// The sort orders `s` cycles through, all descending but the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Requests per second.
    #[default]
    Rate,
    /// Requests in flight.
    Active,
    /// p99 latency.
    P99,
    /// 5xx responses per second.
    Errors,
    /// Node, then route id, ascending.
    Id,
}

impl SortBy {
    /// The next one.
    #[must_use]
    pub fn next(self) -> Self {
        match self {
            Self::Rate => Self::Active,
            Self::Active => Self::P99,
            Self::P99 => Self::Errors,
            Self::Errors => Self::Id,
            Self::Id => Self::Rate,
        }
    }

    /// Its name in the header.
    pub fn label(self) -> &'static str {
        match self {
            Self::Rate => "req/s",
            Self::Active => "active",
            Self::P99 => "p99",
            Self::Errors => "5xx/s",
            Self::Id => "id",
        }
    }
}

/// A route's row: its node, its stats, and the rates since the previous poll.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteLine {
    /// The node's name.
    pub node: String,
    /// What the server said.
    pub stats: RouteStats,
    /// Requests per second since the previous poll; `None` on the first.
    pub rate: Option<f64>,
    /// 5xx responses per second since the previous poll.
    pub err_rate: Option<f64>,
}

/// A task's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLine {
    /// The node's name.
    pub node: String,
    /// What the server said.
    pub task: TaskInfo,
}

/// Which pane the arrow keys move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pane {
    /// The routes.
    #[default]
    Routes,
    /// The tasks.
    Tasks,
}

/// A question waiting for `y` or `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Interrupt every in-flight request of a route.
    Interrupt {
        /// The node.
        node: String,
        /// The route id.
        route: String,
    },
    /// Cancel one task.
    Cancel {
        /// The node.
        node: String,
        /// The task id.
        task: String,
    },
}

/// A task's stack, shown over the panes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackView {
    /// The node.
    pub node: String,
    /// The task id.
    pub task: String,
    /// The text, or `None` while it is being fetched.
    pub text: Option<String>,
    /// Lines scrolled past.
    pub scroll: u16,
}

/// Something the app must do over the sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Leave.
    Quit,
    /// `POST /_routes/{route}/interrupt` on `node`.
    Interrupt {
        /// The node.
        node: String,
        /// The route id.
        route: String,
    },
    /// `POST /_tasks/{task}/_cancel` on `node`.
    Cancel {
        /// The node.
        node: String,
        /// The task id.
        task: String,
    },
    /// `GET /_tasks/{task}/print_stack` on `node`.
    Stack {
        /// The node.
        node: String,
        /// The task id.
        task: String,
    },
}

/// The keys `top` knows, independent of the terminal library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A character.
    Char(char),
    /// Up arrow.
    Up,
    /// Down arrow.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Home.
    Home,
    /// End.
    End,
    /// Tab.
    Tab,
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Ctrl-C.
    CtrlC,
}

/// A node's state at the last poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// It answered.
    Up,
    /// It answered, but some of its endpoints answered an error: one line each.
    Failing(Vec<String>),
    /// It could not be reached: why.
    Down(String),
}

#[derive(Debug, Clone, Copy)]
struct Counters {
    at: Instant,
    total: Option<u64>,
    resp_5xx: Option<u64>,
}

/// Everything the view draws.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// The nodes in the order given, and their state.
    pub nodes: Vec<(String, NodeState)>,
    /// The health of the nodes that answered it, in the nodes' order.
    pub health: Vec<(String, NodeHealth)>,
    /// The warnings of the nodes that have some, in the nodes' order.
    pub warnings: Vec<(String, NodeWarnings)>,
    /// Every route of the nodes that answered, sorted.
    pub routes: Vec<RouteLine>,
    /// The longest-running tasks of the nodes that answered, longest first.
    pub tasks: Vec<TaskLine>,
    /// How many tasks the nodes that answered have in flight (`tasks` may hold fewer).
    pub tasks_total: u64,
    /// Tasks in flight per route, over the nodes, most first.
    pub task_routes: Vec<(String, u64)>,
    /// The routes' order.
    pub sort: SortBy,
    /// Where the arrows move.
    pub focus: Pane,
    /// The selected route's index in `routes`.
    pub route_index: usize,
    /// The selected task's index in `tasks`.
    pub task_index: usize,
    /// A question waiting for y/n.
    pub prompt: Option<Prompt>,
    /// A stack shown over the panes.
    pub stack: Option<StackView>,
    /// The last outcome or error, shown in the status line.
    pub status: Option<String>,
    /// Time between polls, for the header.
    pub interval: Duration,
    /// The wall-clock time of the last poll, `HH:MM:SS`, for the header (set by the app).
    pub clock: String,
    /// How many polls so far.
    pub polls: u64,
    previous: HashMap<(String, String), Counters>,
}

/// A selected route's and task's `(node, id)`.
type Selection = (Option<(String, String)>, Option<(String, String)>);

fn per_second(now: Option<u64>, before: Option<u64>, dt: f64) -> Option<f64> {
    let (now, before) = (now?, before?);
    // A counter that went down was reset (the process restarted): count from zero.
    let delta = now.checked_sub(before).unwrap_or(now);
    (dt > 0.0).then(|| delta as f64 / dt)
}

impl Model {
    /// A model for `nodes`, polled every `interval`, with nothing polled yet.
    pub fn new(nodes: Vec<String>, interval: Duration) -> Self {
        Self {
            nodes: nodes.into_iter().map(|n| (n, NodeState::Up)).collect(),
            interval,
            ..Self::default()
        }
    }

    /// Whether the nodes get a column (there are several).
    pub fn several_nodes(&self) -> bool {
        self.nodes.len() > 1
    }

    /// Takes one poll of every node.
    pub fn apply(&mut self, snapshots: Vec<Snapshot>) {
        let selection = self.selection();
        self.polls += 1;
        let mut routes = Vec::new();
        let mut tasks = Vec::new();
        let mut tasks_total = 0;
        let mut task_routes: HashMap<String, u64> = HashMap::new();
        let mut health = Vec::new();
        let mut warnings = Vec::new();
        for snap in snapshots {
            if let Ok(NodeData {
                health: Some(h), ..
            }) = &snap.data
            {
                health.push((snap.node.clone(), h.clone()));
            }
            if let Ok(NodeData {
                warnings: Some(w), ..
            }) = &snap.data
            {
                if !w.is_empty() {
                    warnings.push((snap.node.clone(), w.clone()));
                }
            }
            let state = match snap.data {
                Err(why) => {
                    // Rates restart from the next answer, not across the gap.
                    self.previous.retain(|(node, _), _| *node != snap.node);
                    NodeState::Down(why)
                }
                Ok(data) => {
                    for stats in data.routes {
                        let key = (snap.node.clone(), stats.id.clone());
                        let now = Counters {
                            at: snap.at,
                            total: stats.total,
                            resp_5xx: stats.resp_5xx,
                        };
                        let (rate, err_rate) = match self.previous.insert(key, now) {
                            Some(before) => {
                                let dt = snap.at.saturating_duration_since(before.at).as_secs_f64();
                                (
                                    per_second(now.total, before.total, dt),
                                    per_second(now.resp_5xx, before.resp_5xx, dt),
                                )
                            }
                            None => (None, None),
                        };
                        routes.push(RouteLine {
                            node: snap.node.clone(),
                            stats,
                            rate,
                            err_rate,
                        });
                    }
                    tasks_total += data.tasks_total.unwrap_or(data.tasks.len() as u64);
                    for (route, n) in data.task_routes {
                        *task_routes.entry(route).or_default() += n;
                    }
                    tasks.extend(data.tasks.into_iter().map(|task| TaskLine {
                        node: snap.node.clone(),
                        task,
                    }));
                    if data.failed.is_empty() {
                        NodeState::Up
                    } else {
                        NodeState::Failing(data.failed)
                    }
                }
            };
            match self.nodes.iter_mut().find(|(n, _)| *n == snap.node) {
                Some(entry) => entry.1 = state,
                None => self.nodes.push((snap.node, state)),
            }
        }
        self.routes = routes;
        self.health = health;
        self.warnings = warnings;
        self.tasks = tasks;
        self.tasks_total = tasks_total;
        let mut task_routes: Vec<(String, u64)> = task_routes.into_iter().collect();
        task_routes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.task_routes = task_routes;
        self.sort_rows();
        self.reselect(selection);
    }

    fn sort_rows(&mut self) {
        let desc = |a: Option<f64>, b: Option<f64>| {
            b.unwrap_or(-1.0)
                .partial_cmp(&a.unwrap_or(-1.0))
                .unwrap_or(std::cmp::Ordering::Equal)
        };
        let by_id = |a: &RouteLine, b: &RouteLine| {
            (a.node.as_str(), a.stats.id.as_str()).cmp(&(b.node.as_str(), b.stats.id.as_str()))
        };
        let sort = self.sort;
        self.routes.sort_by(|a, b| {
            let primary = match sort {
                SortBy::Rate => desc(a.rate, b.rate),
                SortBy::Active => desc(
                    a.stats.active.map(|v| v as f64),
                    b.stats.active.map(|v| v as f64),
                ),
                SortBy::P99 => desc(a.stats.p99, b.stats.p99),
                SortBy::Errors => desc(a.err_rate, b.err_rate),
                SortBy::Id => std::cmp::Ordering::Equal,
            };
            // Ties (every rate on the first poll) fall back to the total, then the id, so
            // rows do not jump around between refreshes.
            let tie = match sort {
                SortBy::Id => std::cmp::Ordering::Equal,
                _ => desc(
                    a.stats.total.map(|v| v as f64),
                    b.stats.total.map(|v| v as f64),
                ),
            };
            primary.then(tie).then_with(|| by_id(a, b))
        });
        self.tasks.sort_by(|a, b| {
            b.task
                .running_nanos
                .cmp(&a.task.running_nanos)
                .then_with(|| a.task.id.cmp(&b.task.id))
        });
    }

    /// The selected route's and task's node and id, to find them again once the rows moved.
    fn selection(&self) -> Selection {
        (
            self.selected_route()
                .map(|r| (r.node.clone(), r.stats.id.clone())),
            self.selected_task()
                .map(|t| (t.node.clone(), t.task.id.clone())),
        )
    }

    fn reselect(&mut self, (route, task): Selection) {
        if let Some((node, id)) = route {
            if let Some(i) = self
                .routes
                .iter()
                .position(|r| r.node == node && r.stats.id == id)
            {
                self.route_index = i;
            }
        }
        if let Some((node, id)) = task {
            if let Some(i) = self
                .tasks
                .iter()
                .position(|t| t.node == node && t.task.id == id)
            {
                self.task_index = i;
            }
        }
        self.route_index = self.route_index.min(self.routes.len().saturating_sub(1));
        self.task_index = self.task_index.min(self.tasks.len().saturating_sub(1));
    }

    /// The selected route.
    pub fn selected_route(&self) -> Option<&RouteLine> {
        self.routes.get(self.route_index)
    }

    /// The selected task.
    pub fn selected_task(&self) -> Option<&TaskLine> {
        self.tasks.get(self.task_index)
    }

    /// Moves the selection of the focused pane by `delta` rows, within bounds.
    pub fn move_selection(&mut self, delta: isize) {
        let (index, len) = match self.focus {
            Pane::Routes => (&mut self.route_index, self.routes.len()),
            Pane::Tasks => (&mut self.task_index, self.tasks.len()),
        };
        let max = len.saturating_sub(1);
        *index = index.saturating_add_signed(delta).min(max);
    }

    /// Handles a key: changes the model, or returns what the app must do.
    pub fn on_key(&mut self, key: Key) -> Option<Action> {
        if key == Key::CtrlC {
            return Some(Action::Quit);
        }
        if let Some(prompt) = self.prompt.take() {
            return match key {
                Key::Char('y' | 'Y') => Some(match prompt {
                    Prompt::Interrupt { node, route } => Action::Interrupt { node, route },
                    Prompt::Cancel { node, task } => Action::Cancel { node, task },
                }),
                _ => {
                    self.status = Some("nothing done".to_owned());
                    None
                }
            };
        }
        if let Some(stack) = &mut self.stack {
            match key {
                Key::Up | Key::Char('k') => stack.scroll = stack.scroll.saturating_sub(1),
                Key::Down | Key::Char('j') => stack.scroll = stack.scroll.saturating_add(1),
                Key::PageUp => stack.scroll = stack.scroll.saturating_sub(10),
                Key::PageDown => stack.scroll = stack.scroll.saturating_add(10),
                Key::Char('q') => return Some(Action::Quit),
                _ => self.stack = None,
            }
            return None;
        }
        match key {
            Key::Char('q') => return Some(Action::Quit),
            Key::Char('s') => {
                self.sort = self.sort.next();
                let selection = self.selection();
                self.sort_rows();
                self.reselect(selection);
            }
            Key::Tab => {
                self.focus = match self.focus {
                    Pane::Routes => Pane::Tasks,
                    Pane::Tasks => Pane::Routes,
                }
            }
            Key::Up | Key::Char('k') => self.move_selection(-1),
            Key::Down | Key::Char('j') => self.move_selection(1),
            Key::PageUp => self.move_selection(-10),
            Key::PageDown => self.move_selection(10),
            Key::Home => self.move_selection(isize::MIN),
            Key::End => self.move_selection(isize::MAX),
            Key::Char('i') => match self.selected_route() {
                Some(r) => {
                    self.prompt = Some(Prompt::Interrupt {
                        node: r.node.clone(),
                        route: r.stats.id.clone(),
                    })
                }
                None => self.status = Some("no route selected".to_owned()),
            },
            // Enter opens the stack in the tasks pane only.
            Key::Enter if self.focus == Pane::Routes => {}
            Key::Char('c' | 'p') | Key::Enter => {
                let Some(t) = self.selected_task() else {
                    self.status = Some("no task selected (Tab moves to the tasks)".to_owned());
                    return None;
                };
                let (node, task) = (t.node.clone(), t.task.id.clone());
                if key == Key::Char('c') {
                    self.prompt = Some(Prompt::Cancel { node, task });
                } else {
                    self.stack = Some(StackView {
                        node: node.clone(),
                        task: task.clone(),
                        text: None,
                        scroll: 0,
                    });
                    return Some(Action::Stack { node, task });
                }
            }
            _ => {}
        }
        None
    }

    /// Shows a fetched stack, if it is still the one asked for.
    pub fn show_stack(&mut self, node: &str, task: &str, text: String) {
        if let Some(stack) = &mut self.stack {
            if stack.node == node && stack.task == task {
                stack.text = Some(text);
                self.status = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(id: &str, total: u64, fivexx: u64) -> RouteStats {
        RouteStats {
            id: id.to_owned(),
            total: Some(total),
            resp_5xx: Some(fivexx),
            active: Some(0),
            ..RouteStats::default()
        }
    }

    fn snap(node: &str, at: Instant, routes: Vec<RouteStats>) -> Snapshot {
        Snapshot {
            node: node.to_owned(),
            at,
            data: Ok(NodeData {
                routes,
                ..NodeData::default()
            }),
        }
    }

    #[test]
    fn rates_are_deltas_over_the_time_between_polls() {
        let t0 = Instant::now();
        let mut m = Model::new(vec!["a".into()], Duration::from_secs(1));
        m.apply(vec![snap(
            "a",
            t0,
            vec![route("x", 100, 0), route("y", 10, 0)],
        )]);
        assert!(
            m.routes.iter().all(|r| r.rate.is_none()),
            "no rate on the first poll"
        );
        m.apply(vec![snap(
            "a",
            t0 + Duration::from_secs(2),
            vec![route("x", 110, 4), route("y", 50, 0)],
        )]);
        let ids: Vec<_> = m.routes.iter().map(|r| r.stats.id.as_str()).collect();
        assert_eq!(ids, ["y", "x"], "sorted by req/s");
        assert_eq!(m.routes[0].rate, Some(20.0));
        assert_eq!(m.routes[1].rate, Some(5.0));
        assert_eq!(m.routes[1].err_rate, Some(2.0));
    }

    #[test]
    fn a_restarted_node_counts_from_zero_and_a_gap_restarts_the_rates() {
        let t0 = Instant::now();
        let mut m = Model::new(vec!["a".into()], Duration::from_secs(1));
        m.apply(vec![snap("a", t0, vec![route("x", 100, 0)])]);
        m.apply(vec![snap(
            "a",
            t0 + Duration::from_secs(1),
            vec![route("x", 3, 0)],
        )]);
        assert_eq!(m.routes[0].rate, Some(3.0));
        m.apply(vec![Snapshot {
            node: "a".into(),
            at: t0 + Duration::from_secs(2),
            data: Err("connection refused".into()),
        }]);
        assert_eq!(m.nodes[0].1, NodeState::Down("connection refused".into()));
        assert!(m.routes.is_empty());
        m.apply(vec![snap(
            "a",
            t0 + Duration::from_secs(3),
            vec![route("x", 5, 0)],
        )]);
        assert_eq!(m.nodes[0].1, NodeState::Up);
        assert_eq!(m.routes[0].rate, None);
    }

    #[test]
    fn a_failing_endpoint_keeps_what_the_other_answered() {
        let t0 = Instant::now();
        let mut m = Model::new(vec!["a".into()], Duration::from_secs(1));
        m.apply(vec![snap("a", t0, vec![route("x", 100, 0)])]);
        m.apply(vec![Snapshot {
            node: "a".into(),
            at: t0 + Duration::from_secs(1),
            data: Ok(NodeData {
                routes: vec![route("x", 110, 0)],
                tasks: Vec::new(),
                failed: vec!["GET /_tasks failed: no (status 403)".into()],
                ..NodeData::default()
            }),
        }]);
        assert_eq!(
            m.nodes[0].1,
            NodeState::Failing(vec!["GET /_tasks failed: no (status 403)".into()])
        );
        assert_eq!(
            m.routes[0].rate,
            Some(10.0),
            "the routes and their rates stay"
        );
        m.apply(vec![snap(
            "a",
            t0 + Duration::from_secs(2),
            vec![route("x", 120, 0)],
        )]);
        assert_eq!(m.nodes[0].1, NodeState::Up);
    }

    #[test]
    fn the_selection_follows_its_route_when_rows_move() {
        let t0 = Instant::now();
        let mut m = Model::new(vec!["a".into()], Duration::from_secs(1));
        m.apply(vec![snap(
            "a",
            t0,
            vec![route("x", 0, 0), route("y", 0, 0)],
        )]);
        m.on_key(Key::Down);
        assert_eq!(m.selected_route().unwrap().stats.id, "y");
        m.apply(vec![snap(
            "a",
            t0 + Duration::from_secs(1),
            vec![route("x", 0, 0), route("y", 100, 0)],
        )]);
        assert_eq!(m.routes[0].stats.id, "y");
        assert_eq!(m.selected_route().unwrap().stats.id, "y");
    }

    #[test]
    fn s_cycles_the_sort_and_back() {
        let mut m = Model::default();
        let mut seen = vec![m.sort];
        for _ in 0..5 {
            m.on_key(Key::Char('s'));
            seen.push(m.sort);
        }
        assert_eq!(
            seen,
            [
                SortBy::Rate,
                SortBy::Active,
                SortBy::P99,
                SortBy::Errors,
                SortBy::Id,
                SortBy::Rate
            ]
        );
    }

    #[test]
    fn interrupt_asks_first_and_only_y_confirms() {
        let mut m = Model::new(vec!["a".into()], Duration::from_secs(1));
        m.apply(vec![snap("a", Instant::now(), vec![route("slow", 1, 0)])]);
        assert_eq!(m.on_key(Key::Char('i')), None);
        assert!(m.prompt.is_some());
        assert_eq!(m.on_key(Key::Char('n')), None);
        assert!(m.prompt.is_none());
        m.on_key(Key::Char('i'));
        assert_eq!(
            m.on_key(Key::Char('y')),
            Some(Action::Interrupt {
                node: "a".into(),
                route: "slow".into()
            })
        );
    }

    #[test]
    fn cancel_and_stack_act_on_the_selected_task() {
        let mut m = Model::new(vec!["a".into()], Duration::from_secs(1));
        let tasks = TaskInfo::from_tasks(&json!({"tasks": [
            {"node": "vm", "id": 7, "action": "http:slow", "running_time_in_nanos": 5, "cancelled": false},
            {"node": "vm", "id": 8, "action": "http:slow", "running_time_in_nanos": 9, "cancelled": true},
        ]}));
        m.apply(vec![Snapshot {
            node: "a".into(),
            at: Instant::now(),
            data: Ok(NodeData {
                tasks,
                ..NodeData::default()
            }),
        }]);
        assert_eq!(m.tasks[0].task.id, "vm:8", "longest-running first");
        assert!(m.tasks[0].task.cancelled);
        m.on_key(Key::Tab);
        m.on_key(Key::Down);
        m.on_key(Key::Char('c'));
        assert_eq!(
            m.on_key(Key::Char('y')),
            Some(Action::Cancel {
                node: "a".into(),
                task: "vm:7".into()
            })
        );
        assert_eq!(
            m.on_key(Key::Char('p')),
            Some(Action::Stack {
                node: "a".into(),
                task: "vm:7".into()
            })
        );
        m.show_stack("a", "vm:7", "frames".into());
        assert_eq!(m.stack.as_ref().unwrap().text.as_deref(), Some("frames"));
        m.on_key(Key::Esc);
        assert!(m.stack.is_none());
        assert_eq!(m.on_key(Key::Char('q')), Some(Action::Quit));
    }

    #[test]
    fn rows_read_columns_by_name_and_missing_ones_are_none() {
        let row = json!({"id": "hello", "stats.req.total": 5, "stats.resp.time_p99": 0.5,
                         "preempt": 503, "limits.max_in_flight": 10, "limits.timeout": "2s"});
        let r = RouteStats::from_row(row.as_object().unwrap()).unwrap();
        assert_eq!(r.total, Some(5));
        assert_eq!(r.p99, Some(0.5));
        assert_eq!(r.preempt, Some(503));
        assert_eq!(r.max_in_flight, Some(10));
        assert_eq!(r.timeout.as_deref(), Some("2s"));
        assert_eq!(r.shed, None);
        assert!(RouteStats::from_row(json!({"total": 1}).as_object().unwrap()).is_none());
    }

    #[test]
    fn tasks_read_their_polls_and_correlation_id_when_given() {
        // As `_tasks?detailed&group_by=none` answers with poll timing on, then without.
        let tasks = TaskInfo::from_tasks(&json!({"tasks": [
            {"node": "vm", "id": 7, "action": "http:block", "running_time_in_nanos": 9,
             "opaque_id": "abc", "polls": {"count": 2, "busy_in_nanos": 30, "longest_in_nanos": 20,
             "blocking": 1}},
            {"node": "vm", "id": 8, "action": "http:slow", "opaque_id": null}
        ]}));
        assert_eq!(tasks[0].opaque_id.as_deref(), Some("abc"));
        assert_eq!(
            tasks[0].polls,
            Some(TaskPolls {
                count: 2,
                busy_nanos: 30,
                longest_nanos: 20
            })
        );
        assert_eq!(
            (tasks[1].opaque_id.as_deref(), tasks[1].polls),
            (None, None)
        );
    }
}
