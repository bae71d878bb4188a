//! The slow-request log: Elasticsearch's slow log, per route.
//!
//! A route's `slowlog.threshold.{warn,info,debug,trace}` settings (off by default) give the
//! times past which a request is logged. A request that ends past one is logged once, at the
//! highest level it crossed: a `tracing` event on the target [`TARGET`], and an [`Entry`] in a
//! ring of the last [`CAPACITY`] entries that `GET /_slowlog` and `GET /_cat/slowlog` read. A
//! request still running past `warn` is logged while it runs, with the stack of its future
//! (by the middleware's watcher, every `slowlog.stack_interval` up to `slowlog.stack_repeat`
//! times).
//!
//! # Cost
//!
//! A route without thresholds costs nothing more per request: the middleware compares the
//! request's time, which it reads anyway for the route's statistics, with the route's smallest
//! threshold (`u64::MAX` when off), one relaxed load. Only a request past it takes the lock of
//! the ring.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::settings::Flat;

/// The `tracing` target of slow-log events.
pub const TARGET: &str = "underscore::slowlog";

/// How many entries the ring keeps.
pub const CAPACITY: usize = 1000;

/// A slow-log level, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `slowlog.threshold.trace`.
    Trace,
    /// `slowlog.threshold.debug`.
    Debug,
    /// `slowlog.threshold.info`.
    Info,
    /// `slowlog.threshold.warn`.
    Warn,
}

impl Level {
    /// Every level, least severe first.
    pub const ALL: [Level; 4] = [Level::Trace, Level::Debug, Level::Info, Level::Warn];

    /// The level's name, lowercase (as in the settings keys).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
        }
    }

    /// The level named `name` (any case).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(name))
    }

    /// The settings key of the level's threshold.
    pub fn key(self) -> &'static str {
        match self {
            Level::Trace => "slowlog.threshold.trace",
            Level::Debug => "slowlog.threshold.debug",
            Level::Info => "slowlog.threshold.info",
            Level::Warn => "slowlog.threshold.warn",
        }
    }
}

/// The default of `slowlog.stack_repeat`.
pub const DEFAULT_STACK_REPEAT: u32 = 3;

/// A route's slow-log settings, computed once per settings change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// The threshold of each level, in [`Level::ALL`] order (`None`: off).
    pub by_level: [Option<Duration>; 4],
    /// `slowlog.stack_interval` (`None`: the `warn` threshold).
    pub stack_interval: Option<Duration>,
    /// `slowlog.stack_repeat`.
    pub stack_repeat: u32,
}

impl Thresholds {
    /// The slow log that `effective` settings ask for: `None` while every threshold is off.
    pub fn from_settings(effective: &Flat) -> Option<Self> {
        let time = |key: &str| {
            effective
                .get(key)
                .and_then(Value::as_str)
                .filter(|text| *text != "-1")
                .and_then(|text| crate::time_value::parse(text).ok())
        };
        let by_level = Level::ALL.map(|level| time(level.key()));
        if by_level.iter().all(Option::is_none) {
            return None;
        }
        Some(Self {
            by_level,
            stack_interval: time("slowlog.stack_interval").filter(|d| !d.is_zero()),
            stack_repeat: effective
                .get("slowlog.stack_repeat")
                .and_then(Value::as_u64)
                .map_or(DEFAULT_STACK_REPEAT, |n| n.min(u64::from(u32::MAX)) as u32),
        })
    }

    /// The smallest threshold set: a request that takes less is not logged.
    pub fn min(&self) -> Duration {
        self.by_level
            .iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or(Duration::MAX)
    }

    /// The highest level whose threshold `took` reached, if any.
    pub fn level_of(&self, took: Duration) -> Option<Level> {
        Level::ALL
            .into_iter()
            .rev()
            .find(|level| self.threshold(*level).is_some_and(|t| took >= t))
    }

    /// The threshold of `level`, if set.
    pub fn threshold(&self, level: Level) -> Option<Duration> {
        self.by_level[level as usize]
    }

    /// How often a request running past `warn` is reported (`None` without `warn`): every
    /// `slowlog.stack_interval`, by default the `warn` threshold itself.
    pub fn report_interval(&self) -> Option<Duration> {
        let warn = self.threshold(Level::Warn)?;
        Some(
            self.stack_interval
                .unwrap_or(warn)
                .max(Duration::from_millis(1)),
        )
    }
}

/// One slow-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its number in the log, from 1 (set by [`record`]).
    pub seq: u64,
    /// When it was logged, milliseconds since the Unix epoch (set by [`record`]).
    pub time_millis: u64,
    /// The highest level the request crossed.
    pub level: Level,
    /// The route's id.
    pub route: String,
    /// The task id, if the request was registered as a task (it waited).
    pub task: Option<String>,
    /// The request's method.
    pub method: String,
    /// The request's path (without the query, which may hold what a log must not).
    pub path: String,
    /// The response status (`None` for a request still running).
    pub status: Option<u16>,
    /// How long the request took (or has run so far).
    pub took: Duration,
    /// The request's correlation id (see [`correlation`](crate::correlation)).
    pub opaque_id: Option<String>,
    /// For a request still running: which report this is (1 for the first).
    pub report: Option<u32>,
    /// For a request still running: the stack of its future, as `print_stack` shows it, or
    /// why there is none.
    pub stack: Option<String>,
}

struct Ring {
    entries: VecDeque<Entry>,
    logged: u64,
    /// Entries logged by route and level, for Prometheus.
    counts: BTreeMap<(String, Level), u64>,
}

static RING: LazyLock<Mutex<Ring>> = LazyLock::new(|| {
    Mutex::new(Ring {
        entries: VecDeque::with_capacity(CAPACITY),
        logged: 0,
        counts: BTreeMap::new(),
    })
});

fn ring() -> std::sync::MutexGuard<'static, Ring> {
    // A panic while the ring was locked leaves it consistent (pushes and pops only).
    RING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Logs `entry` (its `seq` and `time_millis` are set here): a `tracing` event at its level on
/// [`TARGET`], and the ring.
pub fn record(entry: Entry) {
    emit(&entry);
    push(entry);
}

/// Puts `entry` in the ring (no event yet): returns its `seq`.
fn push(mut entry: Entry) -> u64 {
    entry.time_millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut ring = ring();
    ring.logged += 1;
    entry.seq = ring.logged;
    // A request reported while it ran (always at `warn`, its highest level) was counted at
    // its first report: its final entry is not counted again.
    let reported = entry.report.is_none()
        && entry.task.is_some()
        && ring
            .entries
            .iter()
            .any(|e| e.report.is_some() && e.task == entry.task);
    if entry.report.is_none_or(|n| n == 1) && !reported {
        *ring
            .counts
            .entry((entry.route.clone(), entry.level))
            .or_default() += 1;
    }
    if ring.entries.len() == CAPACITY {
        ring.entries.pop_front();
    }
    ring.entries.push_back(entry);
    ring.logged
}

/// Gives the report `seq` its stack, and logs its event.
fn attach_stack(seq: u64, stack: String) {
    let entry = {
        let mut ring = ring();
        let Some(entry) = ring.entries.iter_mut().rev().find(|e| e.seq == seq) else {
            return;
        };
        entry.stack = Some(stack);
        entry.clone()
    };
    emit(&entry);
}

fn emit(e: &Entry) {
    let took = crate::time_value::human(e.took);
    let task = e.task.as_deref().unwrap_or("-");
    let opaque_id = e.opaque_id.as_deref().unwrap_or("-");
    macro_rules! event {
        ($level:expr) => {
            match (e.status, &e.stack) {
                (Some(status), _) => tracing::event!(
                    target: TARGET, $level,
                    route = %e.route, task, method = %e.method, path = %e.path, status,
                    took = %took, took_nanos = e.took.as_nanos() as u64, opaque_id,
                    "slow request"
                ),
                (None, stack) => tracing::event!(
                    target: TARGET, $level,
                    route = %e.route, task, method = %e.method, path = %e.path,
                    took = %took, took_nanos = e.took.as_nanos() as u64, opaque_id,
                    report = e.report.unwrap_or(1),
                    stack = stack.as_deref().unwrap_or("-"),
                    "slow request still running"
                ),
            }
        };
    }
    match e.level {
        Level::Warn => event!(tracing::Level::WARN),
        Level::Info => event!(tracing::Level::INFO),
        Level::Debug => event!(tracing::Level::DEBUG),
        Level::Trace => event!(tracing::Level::TRACE),
    }
}

/// The entries in the ring, oldest first.
pub fn entries() -> Vec<Entry> {
    ring().entries.iter().cloned().collect()
}

/// How many requests were logged, by route and level (a request still running counts once,
/// at its first report).
pub fn counts() -> Vec<((String, Level), u64)> {
    ring().counts.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

/// Routes whose slow log has a `warn` threshold: while there are none, the watcher sleeps.
static WARN_ROUTES: AtomicUsize = AtomicUsize::new(0);

static WATCHER: OnceLock<std::thread::Thread> = OnceLock::new();

/// A route's thresholds change from `old` to `new`: counts the routes with a `warn`
/// threshold, and starts the watcher of running requests when the first appears.
pub(crate) fn thresholds_changed(old: Option<&Thresholds>, new: Option<&Thresholds>) {
    let warn = |t: Option<&Thresholds>| t.is_some_and(|t| t.threshold(Level::Warn).is_some());
    match (warn(old), warn(new)) {
        (false, true) => {
            // Relaxed: a hint for the watcher's sleep; it reads the routes themselves.
            WARN_ROUTES.fetch_add(1, Ordering::Relaxed);
            let watcher = WATCHER.get_or_init(|| {
                std::thread::Builder::new()
                    .name("underscore-slowlog".into())
                    .spawn(watch)
                    .expect("spawn the slow-log watcher thread")
                    .thread()
                    .clone()
            });
            watcher.unpark();
        }
        (true, false) => {
            WARN_ROUTES.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// How long the watcher waits for a stack: a task whose worker is blocked is never polled.
const STACK_WAIT: Duration = Duration::from_secs(1);

/// How often the watcher looks at the running requests.
const TICK: Duration = Duration::from_millis(50);

/// The watcher of running requests: on its own thread, every [`TICK`] while some route has a
/// `warn` threshold, it reports each request running past it with its stack, every
/// `slowlog.stack_interval`, up to `slowlog.stack_repeat` times.
fn watch() {
    use crate::tasks::{tasks, TaskRoute};
    // Reports made so far, by task number.
    let mut reported: HashMap<u64, u32> = HashMap::new();
    loop {
        if WARN_ROUTES.load(Ordering::Relaxed) == 0 {
            reported.clear();
            std::thread::park_timeout(Duration::from_secs(1));
            continue;
        }
        std::thread::sleep(TICK);
        // The thresholds of each route seen this round, by the address of its settings.
        let mut routes: HashMap<usize, Option<(Arc<Thresholds>, String)>> = HashMap::new();
        let mut due: Vec<(u64, u32, String)> = Vec::new();
        let mut alive: HashMap<u64, u32> = HashMap::new();
        for brief in tasks().briefs() {
            let (settings, id) = match &brief.route {
                TaskRoute::Annotated(meta) => (&meta.state.settings, None),
                TaskRoute::Plain(Some(route)) | TaskRoute::Admitted(route) => {
                    (&route.settings, Some(route.id.as_str()))
                }
                // A plain request in flight: the route its path matches, as `_tasks` says.
                TaskRoute::Plain(None) => {
                    let Some(route) = brief.unrouted.as_deref().and_then(|(method, uri)| {
                        crate::registry().resolve_plain(method.as_str(), uri.path())
                    }) else {
                        continue;
                    };
                    (&route.settings, Some(route.id.as_str()))
                }
                TaskRoute::None => continue,
            };
            let key = std::ptr::from_ref(settings) as usize;
            let route = routes.entry(key).or_insert_with(|| {
                let thresholds = settings.slowlog()?;
                let id = match (&brief.route, id) {
                    (_, Some(id)) => id.to_owned(),
                    (TaskRoute::Annotated(meta), None) => crate::registry()
                        .annotated_id(meta)
                        .unwrap_or(meta.name)
                        .to_owned(),
                    _ => return None,
                };
                Some((thresholds, id))
            });
            let Some((thresholds, id)) = route else {
                continue;
            };
            let (Some(warn), Some(interval)) = (
                thresholds.threshold(Level::Warn),
                thresholds.report_interval(),
            ) else {
                continue;
            };
            let done = reported.get(&brief.number).copied().unwrap_or(0);
            alive.insert(brief.number, done);
            if done < thresholds.stack_repeat && brief.running_time >= warn + interval * done {
                due.push((brief.number, done + 1, id.clone()));
            }
        }
        reported = alive;
        report(&due);
        for (number, n, _) in due {
            reported.insert(number, n);
        }
    }
}

/// Reports the running requests `due` (task number, report number, route id), with their
/// stacks: all asked at once, then waited for together.
fn report(due: &[(u64, u32, String)]) {
    use crate::tasks::{tasks, TaskKind};
    if due.is_empty() {
        return;
    }
    // Read before the stacks: a request may end while its stack is rendered (resolving
    // symbols can take a second), and its report stands.
    let numbers: Vec<u64> = due.iter().map(|(number, _, _)| *number).collect();
    let infos: HashMap<u64, crate::tasks::TaskInfo> = tasks()
        .get_many(&numbers)
        .into_iter()
        .map(|info| (info.number, info))
        .collect();
    // Each report is in the ring at once, in order; its stack follows (asked now, waited for
    // and rendered on a thread of its own, as resolving symbols can take a second), and its
    // event with it.
    let mut pending = Vec::new();
    for (number, n, route) in due {
        let Some(info) = infos.get(number) else {
            continue;
        };
        let TaskKind::Request {
            method,
            uri,
            opaque_id,
            ..
        } = &info.kind
        else {
            continue;
        };
        let seq = push(Entry {
            seq: 0,
            time_millis: 0,
            level: Level::Warn,
            route: route.clone(),
            task: Some(info.id()),
            method: method.to_string(),
            path: uri.path().to_owned(),
            status: None,
            took: info.running_time,
            opaque_id: opaque_id
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            report: Some(*n),
            stack: None,
        });
        let rx = match tasks().stacks_supported() {
            Ok(()) => tasks().request_stack(*number).ok_or("the task ended first"),
            Err(how) => Err(how),
        };
        pending.push((seq, rx));
    }
    let _ = std::thread::Builder::new()
        .name("underscore-slowlog-stacks".into())
        .spawn(move || {
            let deadline = std::time::Instant::now() + STACK_WAIT;
            for (seq, rx) in pending {
                let stack = match rx {
                    Err(why) => format!("no stack: {why}"),
                    Ok(rx) => {
                        let wait = deadline.saturating_duration_since(std::time::Instant::now());
                        match rx.recv_timeout(wait) {
                            Ok(render) => render(),
                            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                                "no stack: the task ended before its next poll".to_owned()
                            }
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => format!(
                                "no stack: the task was not polled within {}s (its worker is \
                                 blocked, see _cat/workers)",
                                STACK_WAIT.as_secs()
                            ),
                        }
                    }
                };
                attach_stack(seq, stack);
            }
        });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn thresholds(settings: &[(&str, Value)]) -> Option<Thresholds> {
        let flat: Flat = settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        Thresholds::from_settings(&flat)
    }

    #[test]
    fn the_highest_level_crossed_wins() {
        let t = thresholds(&[
            ("slowlog.threshold.warn", json!("1s")),
            ("slowlog.threshold.info", json!("500ms")),
            ("slowlog.threshold.trace", json!("0ms")),
            ("slowlog.threshold.debug", json!("-1")),
        ])
        .unwrap();
        assert_eq!(t.min(), Duration::ZERO);
        assert_eq!(t.level_of(Duration::from_millis(1)), Some(Level::Trace));
        assert_eq!(t.level_of(Duration::from_millis(499)), Some(Level::Trace));
        assert_eq!(t.level_of(Duration::from_millis(500)), Some(Level::Info));
        assert_eq!(t.level_of(Duration::from_secs(3)), Some(Level::Warn));
        assert_eq!(t.report_interval(), Some(Duration::from_secs(1)));
        assert_eq!(t.stack_repeat, DEFAULT_STACK_REPEAT);
    }

    #[test]
    fn off_thresholds_log_nothing() {
        assert_eq!(thresholds(&[]), None);
        assert_eq!(
            thresholds(&[
                ("slowlog.threshold.warn", json!("-1")),
                ("slowlog.stack_repeat", json!(5))
            ]),
            None
        );
        let t = thresholds(&[
            ("slowlog.threshold.info", json!("2s")),
            ("slowlog.stack_interval", json!("100ms")),
        ])
        .unwrap();
        assert_eq!(t.level_of(Duration::from_secs(1)), None);
        assert_eq!(
            t.report_interval(),
            None,
            "no warn: no reports while running"
        );
    }

    #[test]
    fn the_ring_keeps_the_last_entries() {
        let entry = |n: u64| Entry {
            seq: 0,
            time_millis: 0,
            level: Level::Info,
            route: "ring-test".into(),
            task: None,
            method: "GET".into(),
            path: format!("/{n}"),
            status: Some(200),
            took: Duration::from_millis(n),
            opaque_id: None,
            report: None,
            stack: None,
        };
        for n in 0..CAPACITY as u64 + 5 {
            record(entry(n));
        }
        let mine: Vec<Entry> = entries()
            .into_iter()
            .filter(|e| e.route == "ring-test")
            .collect();
        assert!(mine.len() <= CAPACITY);
        assert_eq!(mine.last().unwrap().path, format!("/{}", CAPACITY + 4));
        assert!(mine.windows(2).all(|w| w[0].seq < w[1].seq));
        let count = counts()
            .into_iter()
            .find(|((r, l), _)| r == "ring-test" && *l == Level::Info)
            .unwrap()
            .1;
        assert_eq!(count, CAPACITY as u64 + 5);
    }

    #[test]
    fn a_request_reported_while_running_counts_once() {
        let entry = |task: &str, report: Option<u32>| Entry {
            seq: 0,
            time_millis: 0,
            level: Level::Warn,
            route: "count-once".into(),
            task: Some(task.into()),
            method: "GET".into(),
            path: "/".into(),
            status: report.is_none().then_some(200),
            took: Duration::from_secs(2),
            opaque_id: None,
            report,
            stack: None,
        };
        // Reported twice while it ran, then ended; another ends without a report.
        record(entry("n:1", Some(1)));
        record(entry("n:1", Some(2)));
        record(entry("n:1", None));
        record(entry("n:2", None));
        let count = counts()
            .into_iter()
            .find(|((r, l), _)| r == "count-once" && *l == Level::Warn)
            .unwrap()
            .1;
        assert_eq!(count, 2);
    }
}
