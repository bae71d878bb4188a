//! `GET /_cat` and `GET /_cat/routes[/{ids}]`.

use crate::cat::{self, CatParams, Cell, Column};
use crate::params::Query;
use crate::render::Rendered;
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
    Column::text("id", &["i"], "route id"),
    Column::text("method", &["m", "methods"], "HTTP methods, comma-separated"),
    Column::text(
        "path",
        &["p", "pattern"],
        "path pattern (full once mounted and requested)",
    ),
    Column::number("stats.req.active", &["active"], "requests in flight"),
    Column::number("stats.req.total", &["total"], "requests received"),
    Column::number(
        "stats.req.preempted",
        &["preempted"],
        "requests answered by a preempt setting",
    )
    .hidden(),
    Column::number(
        "stats.req.shed",
        &["shed"],
        "requests answered at once because limits.max_in_flight were running",
    )
    .hidden(),
    Column::number(
        "stats.req.timed_out",
        &["timeout"],
        "requests stopped by limits.timeout (answered 504)",
    )
    .hidden(),
    Column::number(
        "stats.req.interrupted",
        &["interrupted"],
        "requests ended by an interrupt of the route",
    )
    .hidden(),
    Column::number(
        "stats.req.cancelled",
        &["cancelled"],
        "requests ended by a task cancel",
    )
    .hidden(),
    Column::number(
        "stats.req.dropped",
        &["dropped"],
        "requests that ended without a response (dropped or panicked)",
    )
    .hidden(),
    Column::number("stats.resp.1xx", &["1xx"], "responses with a 1xx status").hidden(),
    Column::number("stats.resp.2xx", &["2xx"], "responses with a 2xx status").hidden(),
    Column::number("stats.resp.3xx", &["3xx"], "responses with a 3xx status").hidden(),
    Column::number("stats.resp.4xx", &["4xx"], "responses with a 4xx status").hidden(),
    Column::number("stats.resp.5xx", &["5xx"], "responses with a 5xx status").hidden(),
    Column::number(
        "stats.resp.time_avg_1m",
        &["avg_1m"],
        "mean response time over the last minute, ms",
    )
    .hidden(),
    Column::number(
        "stats.resp.time_avg_5m",
        &["avg_5m"],
        "mean response time over the last 5 minutes, ms",
    )
    .hidden(),
    Column::number(
        "stats.resp.time_avg_15m",
        &["avg_15m"],
        "mean response time over the last 15 minutes, ms",
    )
    .hidden(),
    Column::number(
        "stats.resp.time_p50",
        &["p50"],
        "median response time, ms (histogram, within 25%)",
    )
    .hidden(),
    Column::number(
        "stats.resp.time_p90",
        &["p90"],
        "90th percentile response time, ms",
    )
    .hidden(),
    Column::number(
        "stats.resp.time_p99",
        &["p99"],
        "99th percentile response time, ms",
    )
    .hidden(),
    Column::number("stats.resp.time_max", &["max"], "largest response time, ms").hidden(),
    Column::number(
        "preempt",
        &["pre", "preempt.status"],
        "effective preempt status (- when the route is served normally)",
    ),
    Column::text(
        "preempt.reason",
        &["reason"],
        "effective preempt reason phrase",
    )
    .hidden(),
    Column::number(
        "preempt.retry_after",
        &["retry_after"],
        "effective preempt Retry-After, in seconds",
    )
    .hidden(),
    Column::number(
        "preempt.percent",
        &["percent"],
        "effective share of requests preempted, 0 to 100",
    )
    .hidden(),
    Column::number(
        "limits.max_in_flight",
        &["max_in_flight", "mif"],
        "effective limit of requests in flight (- without one)",
    )
    .hidden(),
    Column::text(
        "limits.timeout",
        &["timeout_after"],
        "effective timeout, as set (- without one)",
    )
    .hidden(),
    Column::text(
        "settings.tiers",
        &["tiers"],
        "where each setting in effect comes from, key:tier comma-separated (tier: operator, \
         transient or persistent; - when none is set)",
    )
    .hidden(),
    Column::text("handler", &["hd"], "handler fn (module path and name)").hidden(),
    Column::text("name", &["n"], "declared id or actix resource name").hidden(),
    Column::text(
        "kind",
        &["k"],
        "annotated or actix (registered with plain actix-web)",
    )
    .hidden(),
    Column::text(
        "mounted",
        &["mo"],
        "whether an actix worker has mounted the route",
    )
    .hidden(),
    Column::text("source", &["src", "file"], "file:line of the handler").hidden(),
    Column::text(
        "doc",
        &["d", "description"],
        "first line of the handler's doc comment",
    )
    .hidden(),
];

pub(crate) fn routes(
    reg: &Registry,
    query: Query,
    path: &str,
    ids: Option<&str>,
) -> Result<Rendered, ApiError> {
    let params = CatParams::take(query, path)?;
    let routes = super::routes::selected(reg, ids)?;
    // Where each setting comes from, read at one instant for every route.
    let tiers: Vec<Cell> = {
        let state = reg.settings().lock();
        routes
            .iter()
            .map(|r| {
                let sources = state.tiers.sources(&r.id);
                if sources.is_empty() {
                    return Cell::Null;
                }
                let text: Vec<String> = sources
                    .into_iter()
                    .map(|(key, tier)| format!("{key}:{tier}"))
                    .collect();
                Cell::Str(text.join(","))
            })
            .collect()
    };
    let rows = routes
        .into_iter()
        .zip(tiers)
        .map(|(r, tiers)| {
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
                count(Outcome::Shed),
                count(Outcome::TimedOut),
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
                r.preempt
                    .as_ref()
                    .map_or(Cell::Null, |p| match p.percent() {
                        whole if whole.fract() == 0.0 => Cell::Int(whole as i64),
                        part => Cell::Float(part),
                    }),
                r.limits
                    .as_ref()
                    .and_then(|l| l.max_in_flight)
                    .map_or(Cell::Null, |n| Cell::Int(i64::from(n))),
                opt(r
                    .limits
                    .as_ref()
                    .and_then(|l| l.timeout.as_ref())
                    .map(|(_, text)| text.as_str())),
                tiers,
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
