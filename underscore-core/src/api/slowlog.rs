//! `GET /_slowlog` and `GET /_cat/slowlog`: the last entries of the slow-request log.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::cat::{self, CatParams, Cell, Column, Rendered};
use crate::params::Query;
use crate::render::DocParams;
use crate::slowlog::{self, Entry, Level};
use crate::time_value::human;
use crate::{ApiError, Registry};

/// The filters both endpoints take: `route`, `since`, `size`, `level`.
struct Filters {
    routes: Option<Vec<String>>,
    since_millis: Option<u64>,
    size: usize,
    level: Level,
}

impl Filters {
    fn take(reg: &Registry, query: &mut Query) -> Result<Self, ApiError> {
        let routes = match query.take("route") {
            None => None,
            Some(expr) => {
                let ids = reg.ids();
                let mut items = Vec::new();
                for item in crate::params::split_list("route", &expr)? {
                    let known = item == "_all"
                        || ids.iter().any(|id| crate::glob::matches(item, id))
                        || crate::glob::is_pattern(item);
                    if !known {
                        return Err(ApiError::not_found(format!("no such route [{item}]")));
                    }
                    items.push(item.to_owned());
                }
                Some(items)
            }
        };
        let since_millis = match query.take("since") {
            None => None,
            Some(text) => Some(since(&text)?),
        };
        let size = match query.take("size") {
            None => slowlog::CAPACITY,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=slowlog::CAPACITY).contains(&n) => n,
                _ => {
                    return Err(ApiError::illegal_argument(format!(
                        "failed to parse [size] with value [{text}]: must be a whole number from \
                         1 to {}",
                        slowlog::CAPACITY
                    )))
                }
            },
        };
        let level = match query.take("level") {
            None => Level::Trace,
            Some(text) => Level::parse(&text).ok_or_else(|| {
                ApiError::illegal_argument(format!(
                    "failed to parse [level] with value [{text}]: must be one of warn, info, \
                     debug, trace (the least severe level listed)"
                ))
            })?,
        };
        Ok(Self {
            routes,
            since_millis,
            size,
            level,
        })
    }

    /// The entries that pass, oldest first, and how many passed before `size` cut them.
    fn apply(&self) -> (Vec<Entry>, usize) {
        let mut kept: Vec<Entry> = slowlog::entries()
            .into_iter()
            .filter(|e| e.level >= self.level)
            .filter(|e| self.since_millis.is_none_or(|s| e.time_millis >= s))
            .filter(|e| {
                self.routes.as_ref().is_none_or(|items| {
                    items
                        .iter()
                        .any(|item| item == "_all" || crate::glob::matches(item, &e.route))
                })
            })
            .collect();
        let total = kept.len();
        if kept.len() > self.size {
            kept.drain(..kept.len() - self.size);
        }
        (kept, total)
    }
}

/// `since`: milliseconds since the epoch, or a time value meaning that long ago (`5m`).
fn since(text: &str) -> Result<u64, ApiError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| bad_since(text, "is too large"));
    }
    let ago = crate::time_value::parse(text).map_err(|err| bad_since(text, &err.to_string()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(now.saturating_sub(ago).as_millis() as u64)
}

fn bad_since(text: &str, why: &str) -> ApiError {
    ApiError::illegal_argument(format!(
        "failed to parse [since] with value [{text}]: {why} (milliseconds since the epoch, or a \
         time value such as 5m for the last five minutes)"
    ))
}

fn hms(millis: u64) -> String {
    let secs = millis / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

fn entry_json(e: &Entry) -> Value {
    json!({
        "seq": e.seq,
        "time_in_millis": e.time_millis,
        "level": e.level.as_str(),
        "route_id": e.route,
        "task": e.task,
        "method": e.method,
        "path": e.path,
        "status": e.status,
        "running": e.status.is_none(),
        "took": human(e.took),
        "took_in_nanos": e.took.as_nanos() as u64,
        "opaque_id": e.opaque_id,
        "report": e.report,
        "stack": e.stack,
    })
}

/// `GET /_slowlog`.
pub(crate) fn get(reg: &Registry, mut query: Query, path: &str) -> Result<Rendered, ApiError> {
    let filters = Filters::take(reg, &mut query)?;
    let params = DocParams::take(query, path)?;
    let (entries, total) = filters.apply();
    params.render(json!({
        "total": total,
        "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
    }))
}

/// The columns of `_cat/slowlog`, in `h=*` order.
pub(crate) const COLUMNS: &[Column] = &[
    Column::number("seq", &["n"], "entry number in the log").hidden(),
    Column::text(
        "timestamp",
        &["ts", "hms"],
        "when it was logged, HH:MM:SS UTC",
    ),
    Column::text("level", &["l"], "highest slowlog.threshold crossed"),
    Column::text("route", &["r", "route_id"], "route id"),
    Column::number("took", &["time"], "time taken (so far, if running)"),
    Column::number("took_ns", &["time_ns"], "time taken in nanoseconds").hidden(),
    Column::text(
        "status",
        &["s"],
        "response status, or running for a request still running",
    ),
    Column::text("method", &["m"], "HTTP method"),
    Column::text("path", &["p"], "request path (without the query)"),
    Column::text(
        "opaque_id",
        &["x_opaque_id"],
        "correlation id: X-Opaque-Id, else X-Request-Id, else the traceparent's trace id",
    ),
    Column::text("task", &["t", "task_id"], "task id, if the request waited").hidden(),
    Column::number(
        "report",
        &["rep"],
        "report number of a request still running",
    )
    .hidden(),
];

/// `GET /_cat/slowlog`.
pub(crate) fn cat(reg: &Registry, mut query: Query, path: &str) -> Result<Rendered, ApiError> {
    let filters = Filters::take(reg, &mut query)?;
    let params = CatParams::take(query, path)?;
    let (entries, _) = filters.apply();
    let opt = |s: &Option<String>| s.clone().map_or(Cell::Null, Cell::Str);
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                Cell::Int(e.seq as i64),
                Cell::Str(hms(e.time_millis)),
                Cell::Str(e.level.as_str().to_owned()),
                Cell::Str(e.route.clone()),
                Cell::duration(e.took),
                Cell::Int(e.took.as_nanos().min(i64::MAX as u128) as i64),
                Cell::Str(
                    e.status
                        .map_or_else(|| "running".to_owned(), |s| s.to_string()),
                ),
                Cell::Str(e.method.clone()),
                Cell::Str(e.path.clone()),
                opt(&e.opaque_id),
                opt(&e.task),
                e.report.map_or(Cell::Null, |n| Cell::Int(i64::from(n))),
            ]
        })
        .collect();
    cat::render(COLUMNS, rows, &params)
}
