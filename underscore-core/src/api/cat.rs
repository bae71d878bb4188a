//! `GET /_cat` and `GET /_cat/routes[/{ids}]`.

use crate::cat::{self, CatParams, Cell, Column, Rendered};
use crate::params::Query;
use crate::stats::Outcome;
use crate::{ApiError, Registry};

pub(crate) fn index() -> Rendered {
    let mut body = String::from("=^.^=\n");
    for endpoint in super::CAT_ENDPOINTS {
        body.push_str(endpoint);
        body.push('\n');
    }
    Rendered::text(body)
}

/// The columns of `_cat/routes`, in `h=*` order.
pub(crate) const ROUTE_COLUMNS: &[Column] = &[
    Column {
        name: "id",
        aliases: &["i"],
        description: "route id",
        default: true,
        numeric: false,
    },
    Column {
        name: "method",
        aliases: &["m", "methods"],
        description: "HTTP methods, comma-separated",
        default: true,
        numeric: false,
    },
    Column {
        name: "path",
        aliases: &["p", "pattern"],
        description: "path pattern (full once mounted and requested)",
        default: true,
        numeric: false,
    },
    Column {
        name: "stats.req.active",
        aliases: &["active"],
        description: "requests in flight",
        default: true,
        numeric: true,
    },
    Column {
        name: "stats.req.total",
        aliases: &["total"],
        description: "requests received",
        default: true,
        numeric: true,
    },
    Column {
        name: "stats.req.preempted",
        aliases: &["preempted"],
        description: "requests answered by a preempt setting",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.req.interrupted",
        aliases: &["interrupted"],
        description: "requests ended by an interrupt of the route",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.req.cancelled",
        aliases: &["cancelled"],
        description: "requests ended by a task cancel",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.req.dropped",
        aliases: &["dropped"],
        description: "requests that ended without a response (dropped or panicked)",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.resp.1xx",
        aliases: &["1xx"],
        description: "responses with a 1xx status",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.resp.2xx",
        aliases: &["2xx"],
        description: "responses with a 2xx status",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.resp.3xx",
        aliases: &["3xx"],
        description: "responses with a 3xx status",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.resp.4xx",
        aliases: &["4xx"],
        description: "responses with a 4xx status",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.resp.5xx",
        aliases: &["5xx"],
        description: "responses with a 5xx status",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.resp.time_avg_1m",
        aliases: &["avg_1m"],
        description: "mean response time over the last minute, ms",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.resp.time_avg_5m",
        aliases: &["avg_5m"],
        description: "mean response time over the last 5 minutes, ms",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.resp.time_avg_15m",
        aliases: &["avg_15m"],
        description: "mean response time over the last 15 minutes, ms",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.resp.time_p50",
        aliases: &["p50"],
        description: "median response time, ms (histogram, within 25%)",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.resp.time_p90",
        aliases: &["p90"],
        description: "90th percentile response time, ms",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.resp.time_p99",
        aliases: &["p99"],
        description: "99th percentile response time, ms",
        default: false,
        numeric: true,
    },
    Column {
        name: "stats.resp.time_max",
        aliases: &["max"],
        description: "largest response time, ms",
        default: false,
        numeric: true,
    },
    Column {
        name: "preempt",
        aliases: &["pre", "preempt.status"],
        description: "effective preempt status (- when the route is served normally)",
        default: true,
        numeric: true,
    },
    Column {
        name: "preempt.reason",
        aliases: &["reason"],
        description: "effective preempt reason phrase",
        default: false,
        numeric: false,
    },
    Column {
        name: "preempt.retry_after",
        aliases: &["retry_after"],
        description: "effective preempt Retry-After, in seconds",
        default: false,
        numeric: true,
    },
    Column {
        name: "handler",
        aliases: &["hd"],
        description: "handler fn (module path and name)",
        default: false,
        numeric: false,
    },
    Column {
        name: "name",
        aliases: &["n"],
        description: "declared id or actix resource name",
        default: false,
        numeric: false,
    },
    Column {
        name: "kind",
        aliases: &["k"],
        description: "annotated or actix (registered with plain actix-web)",
        default: false,
        numeric: false,
    },
    Column {
        name: "mounted",
        aliases: &["mo"],
        description: "whether an actix worker has mounted the route",
        default: false,
        numeric: false,
    },
    Column {
        name: "source",
        aliases: &["src", "file"],
        description: "file:line of the handler",
        default: false,
        numeric: false,
    },
    Column {
        name: "doc",
        aliases: &["d", "description"],
        description: "first line of the handler's doc comment",
        default: false,
        numeric: false,
    },
];

pub(crate) fn routes(
    reg: &Registry,
    query: Query,
    path: &str,
    ids: Option<&str>,
) -> Result<Rendered, ApiError> {
    let params = CatParams::take(query, path)?;
    let rows = super::routes::selected(reg, ids)?
        .into_iter()
        .map(|r| {
            let opt = |s: Option<&str>| s.map_or(Cell::Null, |s| Cell::Str(s.to_owned()));
            let ms = |v: Option<f64>| super::rounded_ms(v).map_or(Cell::Null, Cell::Float);
            let count = |o: Outcome| Cell::Int(r.stats.count(o) as i64);
            vec![
                Cell::Str(r.id.clone()),
                Cell::Str(r.methods.join(",")),
                Cell::Str(r.path()),
                Cell::Int(r.active as i64),
                Cell::Int(r.stats.total as i64),
                count(Outcome::Preempted),
                count(Outcome::Interrupted),
                count(Outcome::Cancelled),
                count(Outcome::Dropped),
                count(Outcome::Status(100)),
                count(Outcome::Status(200)),
                count(Outcome::Status(300)),
                count(Outcome::Status(400)),
                count(Outcome::Status(500)),
                ms(r.stats.avg_ms[0]),
                ms(r.stats.avg_ms[1]),
                ms(r.stats.avg_ms[2]),
                ms(r.stats.percentiles_ms[0]),
                ms(r.stats.percentiles_ms[1]),
                ms(r.stats.percentiles_ms[2]),
                ms(r.stats.max_ms),
                r.preempt
                    .as_ref()
                    .map_or(Cell::Null, |p| Cell::Int(i64::from(p.status))),
                opt(r.preempt.as_ref().and_then(|p| p.reason)),
                r.preempt
                    .as_ref()
                    .and_then(|p| p.retry_after)
                    .map_or(Cell::Null, |s| Cell::Int(s as i64)),
                opt(r.handler),
                opt(r.name.as_deref()),
                Cell::Str(if r.annotated { "annotated" } else { "actix" }.to_owned()),
                Cell::Bool(r.mounted),
                match (r.file, r.line) {
                    (Some(file), Some(line)) => Cell::Str(format!("{file}:{line}")),
                    _ => Cell::Null,
                },
                opt(r.doc),
            ]
        })
        .collect();
    cat::render(ROUTE_COLUMNS, rows, &params)
}
