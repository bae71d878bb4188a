//! `GET /_health`, `GET /_cat/health`, `POST /_health/_fail`, `POST /_health/_ok` and
//! `POST /_drain`.

use serde_json::{json, Map, Value};

use crate::cat::{self, CatParams, Cell, Column, Rendered};
use crate::health::{self, Readiness};
use crate::params::Query;
use crate::render::DocParams;
use crate::ApiError;

/// The body of `GET /_health`.
pub(crate) fn document() -> Value {
    let checks: Map<String, Value> = health::checks()
        .iter()
        .map(|c| {
            let took = c.took().map(|t| t.as_micros() as f64 / 1000.0);
            (
                c.spec().name.clone(),
                json!({
                    "status": c.status().name(),
                    "critical": c.spec().critical,
                    "took_ms": took,
                    "checked_at": c.checked_at_millis(),
                    "error": c.error(),
                }),
            )
        })
        .collect();
    let readiness = health::readiness();
    let mut out = json!({
        "status": health::status(),
        "ready": readiness == Readiness::Ready,
        "live": true,
        "draining": health::is_draining(),
        "failed_by_hand": health::is_failed_by_hand(),
        "uptime_ms": health::uptime().as_millis() as u64,
        "checks": checks,
    });
    if readiness != Readiness::Ready {
        out["reason"] = readiness.line().trim_end().into();
    }
    if health::is_draining() {
        out["drain"] = health::drain_status();
    }
    out
}

pub(crate) fn get(query: Query, path: &str) -> Result<Rendered, ApiError> {
    DocParams::take(query, path)?.render(document())
}

/// `POST /_health/_fail` (`fail`) and `POST /_health/_ok`.
pub(crate) fn set_failed(
    query: Query,
    path: &str,
    failed: bool,
    caller: &str,
) -> Result<Rendered, ApiError> {
    let params = DocParams::take(query, path)?;
    let was = health::set_failed_by_hand(failed)
        .map_err(|reason| ApiError::new(409, "illegal_state_exception", reason))?;
    tracing::info!(
        target: "underscore::audit",
        caller,
        old = was,
        new = failed,
        "{}",
        if failed {
            "node failed by hand: readiness fails"
        } else {
            "node put back by hand"
        }
    );
    let mut body = document();
    body["acknowledged"] = true.into();
    params.render(body)
}

/// The columns of `_cat/health`, in `h=*` order.
const HEALTH_COLUMNS: &[Column] = &[
    Column::text("check", &["c", "name"], "health check name"),
    Column::text(
        "status",
        &["st"],
        "pass, fail or pending (not finished once yet)",
    ),
    Column::text(
        "critical",
        &["cr"],
        "whether a failure makes the node red and not ready",
    ),
    Column::number("took_ms", &["took"], "how long the last run took, ms"),
    Column::text("error", &["e"], "why it fails"),
    Column::text("interval", &["i"], "time between runs").hidden(),
    Column::text("timeout", &["t"], "time a run may take before it fails").hidden(),
    Column::number(
        "checked_at",
        &["at"],
        "when the last run ended, ms since the epoch",
    )
    .hidden(),
];

pub(crate) fn cat(query: Query, path: &str) -> Result<Rendered, ApiError> {
    let params = CatParams::take(query, path)?;
    let rows = health::checks()
        .iter()
        .map(|c| {
            let spec = c.spec();
            vec![
                Cell::Str(spec.name.clone()),
                Cell::Str(c.status().name().to_owned()),
                Cell::Bool(spec.critical),
                c.took()
                    .map_or(Cell::Null, |t| Cell::Float(t.as_micros() as f64 / 1000.0)),
                c.error().map_or(Cell::Null, Cell::Str),
                Cell::Str(crate::time_value::format(spec.interval)),
                Cell::Str(crate::time_value::format(spec.timeout)),
                c.checked_at_millis()
                    .map_or(Cell::Null, |t| Cell::Int(t as i64)),
            ]
        })
        .collect();
    cat::render(HEALTH_COLUMNS, rows, &params)
}

/// Parses a time parameter of `_drain`.
fn time_param(query: &mut Query, key: &str) -> Result<Option<std::time::Duration>, ApiError> {
    let Some(text) = query.take(key) else {
        return Ok(None);
    };
    crate::time_value::parse(&text).map(Some).map_err(|err| {
        ApiError::illegal_argument(format!(
            "failed to parse parameter [{key}] with value [{text}]: {err}"
        ))
    })
}

/// `POST /_drain?delay=&timeout=`.
pub(crate) fn drain(mut query: Query, path: &str, caller: &str) -> Result<Rendered, ApiError> {
    let delay = time_param(&mut query, "delay")?;
    let timeout = time_param(&mut query, "timeout")?;
    let params = DocParams::take(query, path)?;
    let started = health::start_drain(delay, timeout, caller)
        .map_err(|reason| ApiError::new(409, "illegal_state_exception", reason))?;
    let info = &started.info;
    if !started.already_running {
        tracing::info!(
            target: "underscore::audit",
            caller,
            task = %info.task,
            delay = %crate::time_value::format(info.delay),
            timeout = %crate::time_value::format(info.timeout),
            "drain started"
        );
    }
    let mut body = json!({
        "acknowledged": true,
        "already_running": started.already_running,
        "task": info.task,
    });
    body["drain"] = health::drain_status();
    params.render(body)
}

#[cfg(test)]
mod tests {
    use crate::api::{handle, Request};

    #[test]
    fn drain_parameters_are_checked_before_anything_happens() {
        for (query, key) in [
            ("delay=-1s", "delay"),
            ("timeout=abc", "timeout"),
            ("delay=1.5s", "delay"),
        ] {
            let res = handle(&Request::new("POST", "/_drain", query));
            assert_eq!(res.status, 400, "{query}");
            let body = String::from_utf8(res.body).unwrap();
            assert!(
                body.contains(&format!("failed to parse parameter [{key}]")),
                "{body}"
            );
        }
        let res = handle(&Request::new("POST", "/_drain", "delay=1s&wait=1"));
        assert_eq!(res.status, 400);
        assert!(String::from_utf8_lossy(&res.body).contains("unrecognized parameter: [wait]"));
        assert_eq!(handle(&Request::new("GET", "/_drain", "")).status, 405);
        // Nothing was started by any of them.
        assert!(!crate::health::is_draining());
    }

    #[test]
    fn health_reads_and_cat_health_lays_out() {
        let res = handle(&Request::new("GET", "/_health", ""));
        assert_eq!(res.status, 200);
        let doc: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
        assert_eq!(doc["live"], true);
        let res = handle(&Request::new("GET", "/_cat/health", "help"));
        assert_eq!(res.status, 200);
        assert!(String::from_utf8_lossy(&res.body).starts_with("check "));
        let res = handle(&Request::new("GET", "/_cat/health", "h=nope"));
        assert_eq!(res.status, 400);
        assert_eq!(
            handle(&Request::new("GET", "/_health/_fail", "")).status,
            405
        );
    }
}
