//! `underscore ui`: the browser dashboard on a loopback port, its admin-API calls proxied to
//! every socket the command line names.
//!
//! Paths served:
//! - `GET /` redirects to `/_ui`; `GET /_ui` is the page ([`underscore_core::dashboard::PAGE`]);
//! - `GET /_ui/nodes`: the nodes, `{"nodes": [{"name": "app-1", "base": "/n/0"}, ...]}` (a glob
//!   is expanded again on each call: replicas started later join, one that went away stays);
//! - `/n/<index>/_...`: the admin API `/_...` of that node, method, query and body as sent, the
//!   answer as the node gives it (a node that cannot be reached is a 502 in Elasticsearch's
//!   error shape).
//!
//! Guards, before anything else:
//! - with `--token`, every request but the page's own load needs `Authorization: Bearer
//!   <token>` (the page holds no data; it reads the token from its URL's fragment and sends it
//!   on each call); without one (loopback only), the `Host` must name the loopback interface,
//!   so a page of another site resolved to 127.0.0.1 (DNS rebinding) is refused;
//! - a request other than GET and HEAD that carries an `Origin` (a browser's) must come from
//!   this server's own origin: a page of another site cannot post a form here.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

use crate::cli::UiArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::nodes::Node;
use crate::top::app::Rescan;

/// The largest request body passed on: the admin APIs' own limit.
const MAX_BODY: usize = underscore_core::api::MAX_BODY;

/// What every connection shares.
struct Ui {
    token: Option<String>,
    timeout: Duration,
    /// The nodes, in the order of their index in `/n/<index>`: only ever appended to.
    nodes: Mutex<Vec<Slot>>,
    rescan: Option<Rescan>,
}

/// One node and its idle connections (the page asks several things of a node at once).
struct Slot {
    node: Node,
    idle: Vec<Client>,
}

type Answer = Response<Full<Bytes>>;

/// Serves the dashboard on `args.listen` until the process is stopped.
///
/// # Errors
///
/// [`CliError::Usage`] for a non-loopback `--listen` without `--token`, or an address that
/// cannot be bound.
pub fn run(
    runtime: &Runtime,
    nodes: Vec<Node>,
    rescan: Option<Rescan>,
    args: &UiArgs,
    timeout: Duration,
) -> Result<(), CliError> {
    if !args.listen.ip().is_loopback() && args.token.is_none() {
        return Err(CliError::Usage(format!(
            "--listen {} is not a loopback address: give --token (or UNDERSCORE_UI_TOKEN) too, \
             and every request will need it",
            args.listen
        )));
    }
    if args.token.as_deref().is_some_and(str::is_empty) {
        return Err(CliError::Usage("--token must not be empty".to_owned()));
    }
    let ui = Arc::new(Ui {
        token: args.token.clone(),
        timeout,
        nodes: Mutex::new(
            nodes
                .into_iter()
                .map(|node| Slot {
                    node,
                    idle: Vec::new(),
                })
                .collect(),
        ),
        rescan,
    });
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|err| CliError::Usage(format!("cannot listen on {}: {err}", args.listen)))?;
        let addr = listener.local_addr().map_err(CliError::Terminal)?;
        announce(&ui, addr);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors and the like: wait a little rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let ui = ui.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let ui = ui.clone();
                    async move { Ok::<_, Infallible>(handle(&ui, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// Prints the URL (with the token in its fragment, which browsers never send) and the nodes.
fn announce(ui: &Ui, addr: SocketAddr) {
    let fragment = ui
        .token
        .as_deref()
        .map(|t| format!("#token={}", crate::commands::encode(t)))
        .unwrap_or_default();
    let nodes = ui.nodes.lock().unwrap_or_else(PoisonError::into_inner);
    let names: Vec<String> = nodes
        .iter()
        .map(|s| format!("{} ({})", s.node.name, s.node.path.display()))
        .collect();
    let text = format!(
        "dashboard on http://{addr}/_ui{fragment}\nnodes: {}\n",
        names.join(", ")
    );
    // A closed stdout must not stop the server.
    let _ = crate::commands::print(&text);
}

async fn handle(ui: &Ui, req: Request<Incoming>) -> Answer {
    let path = req.uri().path().to_owned();
    let is_page = matches!(path.as_str(), "/" | "/_ui" | "/_ui/");
    if let Err(denied) = guard(ui, &req, is_page) {
        return *denied;
    }
    match path.as_str() {
        "/" => redirect("/_ui"),
        "/_ui" | "/_ui/" => page(req.method()),
        "/_ui/nodes" => nodes(ui, req.method()),
        _ => match path.strip_prefix("/n/").and_then(|p| p.split_once('/')) {
            Some((index, rest)) if rest.starts_with('_') => match index.parse::<usize>() {
                Ok(index) => proxy(ui, index, req).await,
                Err(_) => error(
                    404,
                    "resource_not_found_exception",
                    format!("no node [{index}]"),
                ),
            },
            _ => error(
                404,
                "resource_not_found_exception",
                format!("no handler found for uri [{path}]"),
            ),
        },
    }
}

/// The token, the loopback `Host` and the cross-site checks (see the module's docs).
fn guard(ui: &Ui, req: &Request<Incoming>, is_page: bool) -> Result<(), Box<Answer>> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    match &ui.token {
        Some(token) if !is_page => {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
            if !given.is_some_and(|given| constant_time_eq(given, token.as_bytes())) {
                let mut res = error(
                    401,
                    "security_exception",
                    format!(
                        "missing or wrong bearer token for REST request [{}]",
                        req.uri().path()
                    ),
                );
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"underscore\""),
                );
                return Err(Box::new(res));
            }
        }
        Some(_) => {}
        None if !underscore_core::dashboard::is_loopback_host(host) => {
            return Err(Box::new(error(
                403,
                "security_exception",
                "the dashboard answers requests to a loopback host only \
                 (Host: localhost, 127.0.0.1 or [::1])"
                    .to_owned(),
            )));
        }
        None => {}
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let same = origin
                .to_str()
                .is_ok_and(|o| underscore_core::dashboard::same_origin(o, "http", host));
            if !same {
                return Err(Box::new(error(
                    403,
                    "security_exception",
                    format!(
                        "the dashboard takes state changes from its own origin only, not from [{}]",
                        String::from_utf8_lossy(origin.as_bytes())
                    ),
                )));
            }
        }
    }
    Ok(())
}

fn page(method: &Method) -> Answer {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return not_allowed(method, "/_ui");
    }
    let mut res = Response::new(Full::new(Bytes::from_static(
        underscore_core::dashboard::PAGE.as_bytes(),
    )));
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    for (name, value) in underscore_core::dashboard::PAGE_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    res
}

fn nodes(ui: &Ui, method: &Method) -> Answer {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return not_allowed(method, "/_ui/nodes");
    }
    let found = ui.rescan.as_ref().map(|rescan| rescan());
    let mut slots = ui.nodes.lock().unwrap_or_else(PoisonError::into_inner);
    for node in found.into_iter().flatten() {
        if !slots.iter().any(|s| s.node.path == node.path) {
            slots.push(Slot {
                node,
                idle: Vec::new(),
            });
        }
    }
    let bases: Vec<String> = (0..slots.len()).map(|i| format!("/n/{i}")).collect();
    let body = underscore_core::dashboard::nodes_json(
        slots
            .iter()
            .zip(&bases)
            .map(|(s, b)| (s.node.name.as_str(), b.as_str())),
    );
    json(200, body)
}

async fn proxy(ui: &Ui, index: usize, req: Request<Incoming>) -> Answer {
    let taken = {
        let mut slots = ui.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        slots.get_mut(index).map(|s| {
            let client = s
                .idle
                .pop()
                .unwrap_or_else(|| Client::new(&s.node.path).with_timeout(ui.timeout));
            (s.node.name.clone(), client)
        })
    };
    let Some((name, mut client)) = taken else {
        return error(
            404,
            "resource_not_found_exception",
            format!("no node [{index}]"),
        );
    };
    let method = req.method().clone();
    let prefix_len = format!("/n/{index}").len();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .get(prefix_len..)
        .unwrap_or("/")
        .to_owned();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return error(
                413,
                "content_too_long_exception",
                format!("the request body is larger than {MAX_BODY} bytes"),
            )
        }
    };
    let body = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
    match client
        .request(method, &path_and_query, body.as_deref())
        .await
    {
        Ok(reply) => {
            let mut slots = ui.nodes.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = slots.get_mut(index) {
                // A few kept connections per node are enough for the page's calls.
                if slot.idle.len() < 4 {
                    slot.idle.push(client);
                }
            }
            let mut res = Response::new(Full::new(Bytes::from(reply.body)));
            *res.status_mut() =
                StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let headers = res.headers_mut();
            if let Some(ct) = reply
                .content_type
                .and_then(|ct| HeaderValue::from_str(&ct).ok())
            {
                headers.insert(header::CONTENT_TYPE, ct);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(err) => error(
            502,
            "node_unreachable_exception",
            format!("node [{name}]: {err}"),
        ),
    }
}

fn redirect(to: &'static str) -> Answer {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::FOUND;
    res.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    res
}

fn not_allowed(method: &Method, path: &str) -> Answer {
    let mut res = error(
        405,
        "method_not_allowed_exception",
        format!(
            "Incorrect HTTP method for uri [{path}] and method [{method}], allowed: [GET, HEAD]"
        ),
    );
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    res
}

fn error(status: u16, kind: &'static str, reason: String) -> Answer {
    json(
        status,
        underscore_core::ApiError::new(status, kind, reason)
            .to_json()
            .to_string(),
    )
}

fn json(status: u16, body: String) -> Answer {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Compares in time that depends only on the lengths, not on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
