//! The admin APIs as one framework-independent function: [`handle`] takes a request and gives
//! the response. The actix glue only converts to and from it, so both serving modes (UNIX socket
//! and in-app) answer exactly the same.

mod cat;
mod components;
mod health;
mod logging;
mod node;
mod operator;
pub(crate) mod routes;
mod settings;
mod slowlog;
pub(crate) mod tasks;
mod workers;

use crate::{ApiError, Registry};

/// The largest request body the admin APIs read.
pub const MAX_BODY: usize = 64 * 1024;

/// One admin-API request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method, upper case.
    pub method: &'a str,
    /// The path relative to where the admin APIs are mounted, starting with `/_`.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// The request body.
    pub body: &'a [u8],
    /// Who is asking, for the audit log: `uid=.. pid=..` on the UNIX socket, the peer address
    /// in-app.
    pub caller: &'a str,
    /// The `Accept` header, if any: `GET /_prometheus/metrics` negotiates its format with it.
    pub accept: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// A request without a body.
    pub fn new(method: &'a str, path: &'a str, query: &'a str) -> Self {
        Self {
            method,
            path,
            query,
            body: &[],
            caller: "unknown",
            accept: None,
        }
    }

    /// The same request with `body`.
    #[must_use]
    pub fn with_body(self, body: &'a [u8]) -> Self {
        Self { body, ..self }
    }

    /// The same request, made by `caller` (see [`Request::caller`]).
    #[must_use]
    pub fn with_caller(self, caller: &'a str) -> Self {
        Self { caller, ..self }
    }

    /// The same request, with this `Accept` header (see [`Request::accept`]).
    #[must_use]
    pub fn with_accept(self, accept: Option<&'a str>) -> Self {
        Self { accept, ..self }
    }
}

/// One admin-API response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The `Allow` header, for a 405.
    pub allow: Option<&'static str>,
    /// The `X-Total-Count` header: how many items matched before `size` cut the list
    /// (`_cat/tasks?size=N`).
    pub total_count: Option<usize>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    fn ok(rendered: crate::render::Rendered) -> Self {
        Self {
            status: 200,
            content_type: rendered.content_type,
            allow: None,
            total_count: None,
            body: rendered.body,
        }
    }

    fn with_total_count(self, total_count: Option<usize>) -> Self {
        Self {
            total_count,
            ..self
        }
    }
}

impl From<ApiError> for Response {
    fn from(err: ApiError) -> Self {
        Self {
            status: err.status,
            content_type: "application/json",
            allow: err.allow,
            total_count: None,
            body: err.to_json().to_string().into_bytes(),
        }
    }
}

/// The endpoints, for `GET /_cat` and for documentation.
pub const CAT_ENDPOINTS: &[&str] = &[
    "/_cat/routes",
    "/_cat/routes/{ids}",
    "/_cat/tasks",
    "/_cat/tasks/summary",
    "/_cat/tasks/{task_ids}",
    "/_cat/middlewares",
    "/_cat/transports",
    "/_cat/loggers",
    "/_cat/health",
    "/_cat/slowlog",
    "/_cat/workers",
];

const GET: &str = "GET, HEAD";
const GET_PUT: &str = "GET, HEAD, PUT";

/// Answers one admin-API request, from the process-wide [`registry`](crate::registry()).
pub fn handle(req: &Request<'_>) -> Response {
    handle_in(crate::registry(), req)
}

/// Answers one admin-API request from `reg` (tests and benchmarks build their own).
pub fn handle_in(reg: &Registry, req: &Request<'_>) -> Response {
    dispatch(reg, req).unwrap_or_else(Response::from)
}

fn dispatch(reg: &Registry, req: &Request<'_>) -> Result<Response, ApiError> {
    let path = match req.path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => req.path,
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let allow = |allowed: &'static str| -> Result<(), ApiError> {
        let ok = allowed.split(", ").any(|m| m == req.method);
        if ok {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed(path, req.method, allowed))
        }
    };
    let query = crate::params::Query::parse(req.query)?;
    match segments.as_slice() {
        ["_cat"] => {
            allow(GET)?;
            query.finish(path)?;
            Ok(Response::ok(cat::index()))
        }
        ["_cat", "routes"] => {
            allow(GET)?;
            cat::routes(reg, query, path, None).map(Response::ok)
        }
        ["_cat", "routes", ids] => {
            allow(GET)?;
            cat::routes(reg, query, path, Some(ids)).map(Response::ok)
        }
        ["_cat", "middlewares"] => {
            allow(GET)?;
            components::middlewares_cat(query, path).map(Response::ok)
        }
        ["_cat", "transports"] => {
            allow(GET)?;
            components::transports_cat(query, path).map(Response::ok)
        }
        ["_cat", "tasks"] => {
            allow(GET)?;
            let (rendered, total) = tasks::cat(reg, query, path, None)?;
            Ok(Response::ok(rendered).with_total_count(total))
        }
        // Task ids always hold a `:`: no task is named `summary`.
        ["_cat", "tasks", "summary"] => {
            allow(GET)?;
            tasks::cat_summary(reg, query, path).map(Response::ok)
        }
        ["_cat", "tasks", ids] => {
            allow(GET)?;
            let (rendered, total) = tasks::cat(reg, query, path, Some(ids))?;
            Ok(Response::ok(rendered).with_total_count(total))
        }
        ["_cat", "loggers"] => {
            allow(GET)?;
            logging::cat(reg, query, path).map(Response::ok)
        }
        ["_cat", "health"] => {
            allow(GET)?;
            health::cat(query, path).map(Response::ok)
        }
        ["_health"] => {
            allow(GET)?;
            health::get(query, path).map(Response::ok)
        }
        ["_health", action @ ("_fail" | "_ok")] => {
            if req.method != "POST" {
                let mut err = ApiError::method_not_allowed(path, req.method, "POST");
                err.reason
                    .push_str(": it changes the node's readiness, so it takes POST");
                return Err(err);
            }
            health::set_failed(query, path, *action == "_fail", req.caller).map(Response::ok)
        }
        ["_drain"] => {
            if req.method != "POST" {
                let mut err = ApiError::method_not_allowed(path, req.method, "POST");
                err.reason
                    .push_str(": draining stops the server, so it takes POST");
                return Err(err);
            }
            health::drain(query, path, req.caller).map(Response::ok)
        }
        ["_cat", "slowlog"] => {
            allow(GET)?;
            slowlog::cat(reg, query, path).map(Response::ok)
        }
        ["_cat", "workers"] => {
            allow(GET)?;
            workers::cat(reg, query, path).map(Response::ok)
        }
        ["_slowlog"] => {
            allow(GET)?;
            slowlog::get(reg, query, path).map(Response::ok)
        }
        ["_logging", "settings"] => {
            allow(GET_PUT)?;
            if req.method == "PUT" {
                logging::put(reg, query, path, req.body, req.caller).map(Response::ok)
            } else {
                logging::get(reg, query, path).map(Response::ok)
            }
        }
        ["_node", "settings"] => {
            allow(GET_PUT)?;
            if req.method == "PUT" {
                node::put(reg, query, path, req.body, req.caller).map(Response::ok)
            } else {
                node::get(reg, query, path).map(Response::ok)
            }
        }
        ["_operator", "settings"] => {
            allow(GET)?;
            operator::get(reg, query, path).map(Response::ok)
        }
        ["_tasks"] => {
            allow(GET)?;
            tasks::list(reg, query, path).map(Response::ok)
        }
        ["_tasks", id] => {
            allow(GET)?;
            tasks::get(reg, query, path, id).map(Response::ok)
        }
        ["_tasks", id, "_cancel" | "cancel"] => {
            if req.method != "POST" {
                let mut err = ApiError::method_not_allowed(path, req.method, "POST");
                err.reason.push_str(": cancelling changes state, so it takes POST (a GET could be triggered by any page a browser visits)");
                return Err(err);
            }
            tasks::cancel(reg, query, path, id, req.caller).map(Response::ok)
        }
        ["_tasks", id, "print_stack"] => {
            allow(GET)?;
            tasks::print_stack(reg, query, path, id).map(Response::ok)
        }
        ["_routes", ids, "interrupt"] => {
            if req.method != "POST" {
                let mut err = ApiError::method_not_allowed(path, req.method, "POST");
                err.reason
                    .push_str(": interrupting changes state, so it takes POST");
                return Err(err);
            }
            tasks::interrupt(reg, query, path, ids, req.caller).map(Response::ok)
        }
        ["_routes"] => {
            allow(GET)?;
            routes::get(reg, query, path, None).map(Response::ok)
        }
        ["_routes", "stats"] => {
            allow(GET)?;
            routes::stats(reg, query, path, None).map(Response::ok)
        }
        ["_routes", ids, "stats"] => {
            allow(GET)?;
            routes::stats(reg, query, path, Some(ids)).map(Response::ok)
        }
        ["_routes", "settings"] => {
            allow(GET)?;
            settings::get(reg, query, path, None).map(Response::ok)
        }
        ["_routes", ids] => {
            allow(GET)?;
            routes::get(reg, query, path, Some(ids)).map(Response::ok)
        }
        ["_routes", ids, "settings"] => {
            allow(GET_PUT)?;
            if req.method == "PUT" {
                settings::put(reg, query, path, ids, req.body, req.caller).map(Response::ok)
            } else {
                settings::get(reg, query, path, Some(ids)).map(Response::ok)
            }
        }
        ["_prometheus", "metrics"] => {
            allow(GET)?;
            // No parameter applies: the format is negotiated with `Accept`, as Prometheus
            // does, and the text formats have no `pretty` or `filter_path`.
            query.finish(path)?;
            let format = crate::prometheus::Format::negotiate(req.accept);
            let body = crate::prometheus::encode(reg, format)
                .map_err(|_| ApiError::new(500, "exception", "the metrics could not be encoded"))?;
            Ok(Response {
                status: 200,
                content_type: format.content_type(),
                allow: None,
                total_count: None,
                body: body.into_bytes(),
            })
        }
        _ => Err(ApiError::not_found(format!(
            "no handler found for uri [{path}] and method [{}]",
            req.method
        ))),
    }
}

/// Resolves an `{ids}` expression (comma list, `*` wildcards, `_all`) against the ids of
/// `what` (routes, tasks).
///
/// Returns indexes into `ids`, in `ids` order, each once.
///
/// # Errors
///
/// A 400 for an empty item; a 404 naming the first item that matches no id.
pub fn select_ids(expr: &str, ids: &[&str], what: &str) -> Result<Vec<usize>, ApiError> {
    let mut selected = vec![false; ids.len()];
    for item in crate::params::split_list("ids", expr)? {
        let mut any = false;
        for (i, id) in ids.iter().enumerate() {
            let hit = if item == "_all" {
                true
            } else if crate::glob::is_pattern(item) {
                crate::glob::matches(item, id)
            } else {
                item == *id
            };
            if hit {
                selected[i] = true;
                any = true;
            }
        }
        if !(any || item == "_all" || item == "*") {
            return Err(ApiError::not_found(format!("no such {what} [{item}]")));
        }
    }
    Ok((0..ids.len()).filter(|&i| selected[i]).collect())
}

/// Milliseconds, rounded to the microsecond the histogram and windows keep.
pub(crate) fn rounded_ms(v: Option<f64>) -> Option<f64> {
    v.map(|v| (v * 1000.0).round() / 1000.0)
}

/// Keeps the `items` an `{ids}` expression selects (all of them without one), in order.
///
/// # Errors
///
/// As [`select_ids`].
pub(crate) fn select<T>(
    items: Vec<T>,
    expr: Option<&str>,
    what: &str,
    id: impl Fn(&T) -> String,
) -> Result<Vec<T>, ApiError> {
    let Some(expr) = expr else {
        return Ok(items);
    };
    let ids: Vec<String> = items.iter().map(id).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut keep = select_ids(expr, &refs, what)?.into_iter().peekable();
    Ok(items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.next_if_eq(i).is_some())
        .map(|(_, item)| item)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selecting_items_keeps_their_order() {
        let items = vec![("a", 1), ("b", 2), ("c", 3)];
        let id = |t: &(&str, i32)| t.0.to_owned();
        assert_eq!(select(items.clone(), None, "thing", id).unwrap(), items);
        assert_eq!(
            select(items.clone(), Some("c,a"), "thing", id).unwrap(),
            [("a", 1), ("c", 3)]
        );
        let err = select(items, Some("z"), "thing", id).unwrap_err();
        assert_eq!(err.reason, "no such thing [z]");
    }

    #[test]
    fn id_expressions() {
        let ids = ["echo", "hello", "index", "slow"];
        assert_eq!(select_ids("hello", &ids, "route").unwrap(), [1]);
        assert_eq!(select_ids("slow,echo", &ids, "route").unwrap(), [0, 3]);
        assert_eq!(select_ids("*l*", &ids, "route").unwrap(), [1, 3]);
        assert_eq!(select_ids("_all", &ids, "route").unwrap(), [0, 1, 2, 3]);
        assert_eq!(select_ids("*,echo", &ids, "route").unwrap(), [0, 1, 2, 3]);
        assert_eq!(
            select_ids("_all", &[], "route").unwrap(),
            Vec::<usize>::new()
        );
        let err = select_ids("hello,nope", &ids, "route").unwrap_err();
        assert_eq!(
            (err.status, err.reason.as_str()),
            (404, "no such route [nope]")
        );
        assert_eq!(select_ids("x*", &ids, "route").unwrap_err().status, 404);
        assert_eq!(select_ids("a,,b", &ids, "route").unwrap_err().status, 400);
    }

    #[test]
    fn unknown_paths_and_methods() {
        let res = handle(&Request::new("GET", "/_nope", ""));
        assert_eq!(res.status, 404);
        let res = handle(&Request::new("POST", "/_cat", ""));
        assert_eq!((res.status, res.allow), (405, Some("GET, HEAD")));
        let res = handle(&Request::new("DELETE", "/_routes", ""));
        assert_eq!(res.status, 405);
    }

    #[test]
    fn prometheus_metrics_take_get_no_parameter_and_negotiate() {
        let res = handle(&Request::new("GET", "/_prometheus/metrics", ""));
        assert_eq!(res.status, 200);
        assert_eq!(res.content_type, "text/plain; version=0.0.4; charset=utf-8");
        let body = String::from_utf8(res.body).unwrap();
        assert!(
            body.contains("# TYPE underscore_requests_total counter\n"),
            "{body}"
        );
        let res = handle(
            &Request::new("GET", "/_prometheus/metrics/", "")
                .with_accept(Some("application/openmetrics-text; version=1.0.0")),
        );
        assert_eq!(
            res.content_type,
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert!(res.body.ends_with(b"# EOF\n"));
        let res = handle(&Request::new("POST", "/_prometheus/metrics", ""));
        assert_eq!((res.status, res.allow), (405, Some("GET, HEAD")));
        for query in ["foo", "format=json", "pretty"] {
            let res = handle(&Request::new("GET", "/_prometheus/metrics", query));
            assert_eq!(res.status, 400, "{query}");
            let key = query.split('=').next().unwrap();
            let want =
                format!("request [/_prometheus/metrics] contains unrecognized parameter: [{key}]");
            assert!(String::from_utf8_lossy(&res.body).contains(&want));
        }
        assert_eq!(handle(&Request::new("GET", "/_prometheus", "")).status, 404);
    }

    #[test]
    fn cat_index_lists_endpoints() {
        let res = handle(&Request::new("GET", "/_cat", ""));
        assert_eq!(res.status, 200);
        assert_eq!(res.content_type, "text/plain; charset=utf-8");
        let body = String::from_utf8(res.body).unwrap();
        assert!(body.starts_with("=^.^=\n/_cat/routes\n"), "{body}");
        assert_eq!(handle(&Request::new("GET", "/_cat/", "")).status, 200);
        assert_eq!(handle(&Request::new("GET", "/_cat", "v")).status, 400);
    }
}
