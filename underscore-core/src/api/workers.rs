//! `GET /_cat/workers`: one row per app worker (Elasticsearch's `_cat/thread_pool`).

use crate::cat::{self, CatParams, Cell, Column, Rendered};
use crate::params::Query;
use crate::tasks::tasks;
use crate::workers;
use crate::{ApiError, Registry};

/// The columns of `_cat/workers`, in `h=*` order.
pub(crate) const COLUMNS: &[Column] = &[
    Column::number(
        "worker",
        &["w"],
        "worker number (its task shard in _cat/tasks)",
    ),
    Column::text("thread", &["t"], "thread name").hidden(),
    Column::number(
        "active",
        &["a"],
        "requests active on the worker: registered tasks, and the request polled now",
    ),
    Column::number(
        "busy_1s",
        &["b1"],
        "share of the last second spent in polls",
    ),
    Column::number(
        "busy_5s",
        &["b5"],
        "share of the last 5 seconds spent in polls",
    ),
    Column::number(
        "busy_15s",
        &["b15"],
        "share of the last 15 seconds spent in polls",
    ),
    Column::number(
        "longest_poll",
        &["lp"],
        "longest poll in the last minute, the running one included",
    ),
    Column::number("polls", &["p"], "polls timed").hidden(),
    Column::number("blocking_polls", &["bp"], "polls past blocking.threshold").hidden(),
    Column::text(
        "polling",
        &["route"],
        "route of the request being polled now",
    ),
    Column::text(
        "task",
        &["task_id"],
        "task being polled now (- before it is registered: its first poll)",
    ),
    Column::number("polling_for", &["for"], "how long the running poll has run"),
    Column::text(
        "blocked",
        &["bl"],
        "whether the running poll is past blocking.threshold (GET /_node/settings)",
    )
    .hidden(),
];

/// `GET /_cat/workers`.
pub(crate) fn cat(reg: &Registry, query: Query, path: &str) -> Result<Rendered, ApiError> {
    let params = CatParams::take(query, path)?;
    let ratio = |r: Option<f64>| r.map_or(Cell::Null, |r| Cell::Float((r * 100.0).round() / 100.0));
    let threshold = workers::blocking_threshold();
    let rows = workers::all()
        .into_iter()
        .map(|w| {
            let polling = w.polling();
            let registered = tasks().shard_len(w.shard());
            let unregistered = polling.is_some_and(|(_, task, _)| task == 0);
            let [b1, b5, b15] = w.busy_ratios();
            vec![
                Cell::Int(w.index as i64),
                Cell::Str(w.thread.clone()),
                Cell::Int((registered + usize::from(unregistered)) as i64),
                ratio(b1),
                ratio(b5),
                ratio(b15),
                Cell::duration(w.longest_poll()),
                Cell::Int(w.polls() as i64),
                Cell::Int(w.blocking_polls() as i64),
                polling.map_or(Cell::Null, |(route, _, _)| {
                    reg.route_id_at(route).map_or(Cell::Null, Cell::Str)
                }),
                polling
                    .filter(|(_, task, _)| *task != 0)
                    .map_or(Cell::Null, |(_, task, _)| {
                        Cell::Str(format!("{}:{task}", tasks().node()))
                    }),
                polling.map_or(Cell::Null, |(_, _, d)| Cell::duration(d)),
                Cell::Bool(polling.is_some_and(|(_, _, d)| d > threshold)),
            ]
        })
        .collect();
    cat::render(COLUMNS, rows, &params)
}
