//! The admin APIs as actix-web services: the same handlers serve the private UNIX socket and
//! the in-app mount.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;
use underscore_core::api::{self, Request, MAX_BODY};
use underscore_core::ApiError;

use crate::claim::AdminClaim;

/// The path prefixes the admin APIs answer under.
const BASES: [&str; 7] = [
    "/_cat",
    "/_routes",
    "/_tasks",
    "/_logging",
    "/_prometheus",
    "/_health",
    "/_drain",
];

/// Mounts the admin APIs (`/_cat`, `/_routes`, `/_tasks`, `/_logging`, `/_prometheus`, `/_health`,
/// `/_drain`) into an actix-web app or scope,
/// without any guard.
///
/// This is the in-app mode: the admin APIs then share the application's listeners, so anyone
/// who can reach the app can read them and change route settings. Prefer
/// [`AdminSocket`](crate::AdminSocket) (a private UNIX socket) in production, or at least
/// [`InApp`] with a bearer token and loopback-only peers. Mounting without a guard logs a
/// warning once. The admin APIs' own requests are never counted as routes.
///
/// ```no_run
/// use actix_web::{App, HttpServer};
///
/// # async fn run() -> std::io::Result<()> {
/// HttpServer::new(|| App::new().configure(underscore_actix::admin::configure))
///     .bind("127.0.0.1:8080")?
///     .run()
///     .await
/// # }
/// ```
pub fn configure(cfg: &mut web::ServiceConfig) {
    InApp::new().configure(cfg);
}

/// The in-app mount of the admin APIs, with its guards.
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use underscore_actix::admin::InApp;
///
/// # async fn run() -> std::io::Result<()> {
/// let token = std::env::var("ADMIN_TOKEN").expect("a secret token");
/// HttpServer::new(move || {
///     let admin = InApp::new().bearer_token(&token).loopback_only();
///     App::new().configure(|cfg| admin.configure(cfg))
/// })
/// .bind("0.0.0.0:8080")?
/// .run()
/// .await
/// # }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct InApp {
    policy: Policy,
    dashboard: bool,
}

impl InApp {
    /// The mount, with no guard yet.
    pub fn new() -> Self {
        Self {
            policy: Policy {
                in_app: true,
                ..Policy::default()
            },
            dashboard: false,
        }
    }

    /// Serves the browser dashboard at `<mount>/_ui` too: one page, embedded in the binary,
    /// that shows the routes, tasks and log levels and acts on them through the admin APIs.
    ///
    /// The page holds no data, so it is served without the bearer token (every other guard
    /// applies); it reads the token from its URL's fragment (`/_ui#token=...`, never sent to
    /// the server) and sends it on its calls. A browser's state change (a request with an
    /// `Origin`) passes only with a bearer token configured and given, from the app's own
    /// origin: without [`InApp::bearer_token`] the dashboard can look but not act.
    ///
    /// ```no_run
    /// use actix_web::{App, HttpServer};
    /// use underscore_actix::admin::InApp;
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let token = std::env::var("ADMIN_TOKEN").expect("a secret token");
    /// HttpServer::new(move || {
    ///     let admin = InApp::new().bearer_token(&token).loopback_only().dashboard();
    ///     App::new().configure(|cfg| admin.configure(cfg))
    /// })
    /// .bind("127.0.0.1:8080")?
    /// .run()
    /// .await
    /// // then open http://127.0.0.1:8080/_ui#token=<the token>
    /// # }
    /// ```
    pub fn dashboard(mut self) -> Self {
        self.dashboard = true;
        self
    }

    /// Requires `Authorization: Bearer <token>` on every admin request (compared in constant
    /// time); others get a 401.
    pub fn bearer_token(mut self, token: impl AsRef<str>) -> Self {
        self.policy.token = Some(Arc::from(token.as_ref().as_bytes()));
        self
    }

    /// Answers only peers on the loopback interface (127.0.0.0/8, ::1); others get a 403.
    /// Behind a reverse proxy on the same host every peer is loopback: use a token as well.
    pub fn loopback_only(mut self) -> Self {
        self.policy.loopback_only = true;
        self
    }

    /// Mounts the admin APIs into `cfg`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        underscore_core::components::record_transport(
            "admin",
            "in-app",
            "mounted on the app's own listeners",
            None,
            false,
        );
        if self.policy.token.is_none() && !self.policy.loopback_only {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "the underscore admin APIs are mounted in the app without a guard: anyone who \
                     can reach the app can read them and change route settings (use the UNIX \
                     socket, or InApp::bearer_token / loopback_only)"
                );
            });
        }
        register(cfg, self.policy.clone());
        if self.dashboard {
            register_dashboard(cfg, self.policy.clone());
        }
    }
}

/// `GET <mount>/_ui` (the page) and `GET <mount>/_ui/nodes` (this one node).
fn register_dashboard(cfg: &mut web::ServiceConfig, policy: Policy) {
    let page_policy = policy.clone();
    cfg.service(
        web::resource("/_ui")
            .wrap(AdminClaim)
            .to(move |req: HttpRequest| {
                let policy = page_policy.clone();
                async move {
                    if let Err(res) = only_get(&req) {
                        return *res;
                    }
                    if let Err(denied) = policy.check_page(&req) {
                        return *denied;
                    }
                    let mut res = HttpResponse::Ok();
                    res.insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"));
                    for (name, value) in underscore_core::dashboard::PAGE_HEADERS {
                        res.insert_header((name, value));
                    }
                    res.body(underscore_core::dashboard::PAGE)
                }
            }),
    );
    cfg.service(
        web::resource("/_ui/nodes")
            .wrap(AdminClaim)
            .to(move |req: HttpRequest| {
                let policy = policy.clone();
                async move {
                    if let Err(res) = only_get(&req) {
                        return *res;
                    }
                    if let Err(denied) = policy.check(&req) {
                        return *denied;
                    }
                    let name = underscore_core::tasks::tasks().node();
                    HttpResponse::Ok()
                        .insert_header((header::CONTENT_TYPE, "application/json"))
                        .insert_header((header::CACHE_CONTROL, "no-store"))
                        .body(underscore_core::dashboard::nodes_json([(name, "")]))
                }
            }),
    );
}

/// A 405 with `Allow` for a method other than GET and HEAD.
fn only_get(req: &HttpRequest) -> Result<(), Box<HttpResponse>> {
    if matches!(req.method().as_str(), "GET" | "HEAD") {
        return Ok(());
    }
    Err(Box::new(respond(
        ApiError::method_not_allowed(req.path(), req.method().as_str(), "GET, HEAD").into(),
    )))
}

/// Who may use the admin APIs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// The in-app mount (mutations from browsers are refused).
    pub in_app: bool,
    pub token: Option<Arc<[u8]>>,
    pub loopback_only: bool,
    /// UNIX socket: the peer uids allowed, if restricted.
    pub uids: Option<Arc<[u32]>>,
}

impl Policy {
    /// `Err(response)` for a request that may not pass.
    fn check(&self, req: &HttpRequest) -> Result<(), Box<HttpResponse>> {
        self.check_with(req, true)
    }

    /// [`Policy::check`] for the dashboard's page, which a browser loads without a bearer
    /// header and which holds no data: every guard but the token.
    fn check_page(&self, req: &HttpRequest) -> Result<(), Box<HttpResponse>> {
        self.check_with(req, false)
    }

    fn check_with(&self, req: &HttpRequest, token: bool) -> Result<(), Box<HttpResponse>> {
        let deny = |status: u16, reason: String| {
            Box::new(respond(
                ApiError::new(status, "security_exception", reason).into(),
            ))
        };
        if let Some(uids) = &self.uids {
            let uid = req.conn_data::<PeerCred>().map(|c| c.uid);
            if !uid.is_some_and(|uid| uids.contains(&uid)) {
                return Err(deny(
                    403,
                    format!(
                        "uid [{}] may not use the admin APIs",
                        uid.map_or("unknown".to_owned(), |u| u.to_string())
                    ),
                ));
            }
        }
        if self.loopback_only {
            // `to_canonical`: on a dual-stack listener, 127.0.0.1 arrives as ::ffff:127.0.0.1.
            if !req
                .peer_addr()
                .is_some_and(|a| a.ip().to_canonical().is_loopback())
            {
                return Err(deny(
                    403,
                    "the admin APIs answer loopback peers only".to_owned(),
                ));
            }
            // DNS rebinding: a page of another site, resolved to 127.0.0.1, still names its
            // own host. Without a token, loopback peers must name a loopback host.
            if self.token.is_none() && !loopback_host(req) {
                return Err(deny(
                    403,
                    "the admin APIs answer requests to a loopback host only \
                     (Host: localhost, 127.0.0.1 or [::1])"
                        .to_owned(),
                ));
            }
        }
        if let Some(token) = self.token.as_ref().filter(|_| token) {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
            if !given.is_some_and(|given| constant_time_eq(given, token)) {
                let mut res = deny(
                    401,
                    format!(
                        "missing or wrong bearer token for REST request [{}]",
                        req.path()
                    ),
                );
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"underscore\""),
                );
                return Err(res);
            }
        }
        // A browser page on another origin can send a POST (a form) to an app it can reach;
        // it cannot drop the Origin header. A browser's state change passes in-app only from
        // the app's own origin (the dashboard) and with the bearer token, checked above: a
        // form cannot send that header, and without a token a page of another site resolved
        // to this address (DNS rebinding) would be "same-origin" too.
        if self.in_app && !matches!(req.method().as_str(), "GET" | "HEAD") {
            if let Some(origin) = req.headers().get(header::ORIGIN) {
                let info = req.connection_info();
                let same = origin.to_str().is_ok_and(|origin| {
                    underscore_core::dashboard::same_origin(origin, info.scheme(), info.host())
                });
                if self.token.is_none() || !same {
                    return Err(deny(
                        403,
                        if self.token.is_none() {
                            "the admin APIs take no state change from a browser (a request with \
                             an Origin header) without a bearer token configured"
                                .to_owned()
                        } else {
                            format!(
                                "the admin APIs take state changes from their own origin only, \
                                 not from [{}]",
                                String::from_utf8_lossy(origin.as_bytes())
                            )
                        },
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether the request's `Host` names the loopback interface.
fn loopback_host(req: &HttpRequest) -> bool {
    underscore_core::dashboard::is_loopback_host(req.connection_info().host())
}

/// Compares in time that depends only on the lengths, not on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Registers the admin services (both modes).
pub(crate) fn register(cfg: &mut web::ServiceConfig, policy: Policy) {
    for base in BASES {
        let policy = policy.clone();
        cfg.service(
            web::resource([base.to_owned(), format!("{base}/{{tail:.*}}")])
                .wrap(AdminClaim)
                .to(move |req: HttpRequest, body: web::Payload| {
                    serve(req, body, Some(base), policy.clone())
                }),
        );
    }
}

/// Serves any path: the fallback of the admin server, so unknown paths get an
/// Elasticsearch-shaped 404 rather than actix's empty one.
pub(crate) async fn fallback(
    req: HttpRequest,
    body: web::Payload,
    policy: web::Data<Policy>,
) -> HttpResponse {
    serve(req, body, None, (**policy).clone()).await
}

async fn serve(
    req: HttpRequest,
    body: web::Payload,
    base: Option<&'static str>,
    policy: Policy,
) -> HttpResponse {
    if let Err(denied) = policy.check(&req) {
        return *denied;
    }
    let path = match (base, req.match_info().get("tail")) {
        (Some(base), Some(tail)) => format!("{base}/{tail}"),
        (Some(base), None) => base.to_owned(),
        (None, _) => req.path().to_owned(),
    };
    let body = match body.to_bytes_limited(MAX_BODY).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(err)) => {
            return respond(
                ApiError::illegal_argument(format!("failed to read the request body: {err}"))
                    .into(),
            )
        }
        Err(_) => return respond(ApiError::too_large(MAX_BODY).into()),
    };
    answer(&req, path, body).await
}

/// Answers `req` for the admin path `path`, off the worker.
async fn answer(req: &HttpRequest, path: String, body: web::Bytes) -> HttpResponse {
    let caller = caller(req);
    let method = req.method().as_str().to_owned();
    let query = req.query_string().to_owned();
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Off the worker: a settings change writes and fsyncs a file, and a `_cat` or a scrape of
    // thousands of routes takes milliseconds, neither of which belongs on an event loop
    // serving the app.
    let answer = web::block(move || {
        let request = Request::new(&method, &path, &query)
            .with_body(&body)
            .with_caller(&caller)
            .with_accept(accept.as_deref());
        api::handle(&request)
    })
    .await;
    match answer {
        Ok(res) => respond(res),
        Err(_) => respond(
            ApiError::new(
                500,
                "exception",
                "the admin request failed unexpectedly; see the application's log",
            )
            .into(),
        ),
    }
}

/// The Prometheus metrics (`GET /_prometheus/metrics` of the admin APIs) as a route of the
/// app, for a scraper that reaches the app's port but not the admin socket.
///
/// It answers exactly as the admin endpoint does: the Prometheus text format (version 0.0.4),
/// or OpenMetrics when `Accept` prefers `application/openmetrics-text`; `GET` and `HEAD` only
/// (others get a 405 with `Allow`), no query parameter (a 400). It shows only counts and
/// gauges per route id (no task, path with query, peer or setting) and changes nothing, so it
/// has no guard: restrict it with your own (a guard, a scope with middleware) if route names
/// are private. Scrapes are never counted as a route, like every admin request.
///
/// # Examples
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use underscore_actix::Observe;
///
/// # async fn run() -> std::io::Result<()> {
/// HttpServer::new(|| {
///     App::new()
///         .wrap(Observe::new())
///         .route("/metrics", underscore_actix::metrics_handler())
/// })
/// .bind("0.0.0.0:8080")?
/// .run()
/// .await
/// # }
/// ```
pub fn metrics_handler() -> actix_web::Route {
    web::route()
        .to(|req: HttpRequest| answer_owned(req, "/_prometheus/metrics"))
        .wrap(AdminClaim)
}

async fn answer_owned(req: HttpRequest, path: &'static str) -> HttpResponse {
    answer(&req, path.to_owned(), web::Bytes::new()).await
}

/// The credentials of the peer of a UNIX-socket connection, recorded when it connects.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerCred {
    pub uid: u32,
    pub pid: Option<i32>,
}

/// Who sent `req`, for the audit log.
fn caller(req: &HttpRequest) -> String {
    if let Some(cred) = req.conn_data::<PeerCred>() {
        match cred.pid {
            Some(pid) => format!("uid={} pid={pid}", cred.uid),
            None => format!("uid={}", cred.uid),
        }
    } else if let Some(addr) = req.peer_addr() {
        format!("addr={addr}")
    } else {
        "unknown".to_owned()
    }
}

fn respond(res: api::Response) -> HttpResponse {
    let status = StatusCode::from_u16(res.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    out.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static(res.content_type),
    ))
    // Admin answers describe live state: never cache them anywhere.
    .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if let Some(allow) = res.allow {
        out.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
    }
    if let Some(total) = res.total_count {
        out.insert_header(("x-total-count", HeaderValue::from(total)));
    }
    out.body(res.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn policy(token: Option<&str>, loopback_only: bool) -> Policy {
        Policy {
            in_app: true,
            token: token.map(|t| Arc::from(t.as_bytes())),
            loopback_only,
            uids: None,
        }
    }

    #[test]
    fn bearer_tokens_are_checked() {
        let p = policy(Some("s3cret"), false);
        let ok = TestRequest::get()
            .insert_header(("Authorization", "Bearer s3cret"))
            .to_http_request();
        assert!(p.check(&ok).is_ok());
        for header in [
            None,
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("Basic s3cret"),
            Some("bearer s3cret"),
        ] {
            let mut req = TestRequest::get();
            if let Some(h) = header {
                req = req.insert_header(("Authorization", h));
            }
            let res = p.check(&req.to_http_request()).unwrap_err();
            assert_eq!(res.status(), 401, "{header:?}");
            assert!(res.headers().contains_key(header::WWW_AUTHENTICATE));
        }
    }

    #[test]
    fn loopback_only_refuses_other_peers() {
        let p = policy(None, true);
        let local = TestRequest::get()
            .peer_addr("127.0.0.1:4000".parse().unwrap())
            .to_http_request();
        let local6 = TestRequest::get()
            .peer_addr("[::1]:4000".parse().unwrap())
            .to_http_request();
        let remote = TestRequest::get()
            .peer_addr("10.1.2.3:4000".parse().unwrap())
            .to_http_request();
        let unknown = TestRequest::get().to_http_request();
        assert!(p.check(&local).is_ok() && p.check(&local6).is_ok());
        assert_eq!(p.check(&remote).unwrap_err().status(), 403);
        assert_eq!(p.check(&unknown).unwrap_err().status(), 403);
    }

    #[test]
    fn loopback_peers_must_name_a_loopback_host_without_a_token() {
        let p = policy(None, true);
        let peer = "127.0.0.1:4000".parse().unwrap();
        let mapped = "[::ffff:127.0.0.1]:4000".parse().unwrap();
        for host in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "LOCALHOST",
        ] {
            let req = TestRequest::get()
                .peer_addr(peer)
                .insert_header(("Host", host))
                .to_http_request();
            assert!(p.check(&req).is_ok(), "{host}");
        }
        let req = TestRequest::get()
            .peer_addr(mapped)
            .insert_header(("Host", "localhost"))
            .to_http_request();
        assert!(p.check(&req).is_ok(), "IPv4-mapped loopback peer");
        let rebound = TestRequest::get()
            .peer_addr(peer)
            .insert_header(("Host", "evil.example"))
            .to_http_request();
        assert_eq!(p.check(&rebound).unwrap_err().status(), 403);
        // With a token, the token is the guard.
        let p = policy(Some("t"), true);
        let req = TestRequest::get()
            .peer_addr(peer)
            .insert_header(("Host", "app.internal"))
            .insert_header(("Authorization", "Bearer t"))
            .to_http_request();
        assert!(p.check(&req).is_ok());
    }

    #[test]
    fn browsers_cannot_change_state_in_app() {
        let p = policy(None, false);
        let form = TestRequest::post()
            .insert_header(("Origin", "https://evil.example"))
            .to_http_request();
        assert_eq!(p.check(&form).unwrap_err().status(), 403);
        let read = TestRequest::get()
            .insert_header(("Origin", "https://evil.example"))
            .to_http_request();
        assert!(p.check(&read).is_ok());
        assert!(p.check(&TestRequest::post().to_http_request()).is_ok());
        // Same origin, but no token configured: a rebound host would look the same.
        let same = TestRequest::post()
            .insert_header(("Host", "127.0.0.1:8080"))
            .insert_header(("Origin", "http://127.0.0.1:8080"))
            .to_http_request();
        assert_eq!(p.check(&same).unwrap_err().status(), 403);
    }

    #[test]
    fn the_dashboard_changes_state_from_its_own_origin_with_the_token() {
        let p = policy(Some("t"), false);
        let post = |origin: &str, token: &str| {
            TestRequest::post()
                .insert_header(("Host", "127.0.0.1:8080"))
                .insert_header(("Origin", origin))
                .insert_header(("Authorization", token))
                .to_http_request()
        };
        assert!(p.check(&post("http://127.0.0.1:8080", "Bearer t")).is_ok());
        let other = p
            .check(&post("http://127.0.0.1:8081", "Bearer t"))
            .unwrap_err();
        assert_eq!(other.status(), 403);
        assert_eq!(
            p.check(&post("http://evil.example", "Bearer t"))
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            p.check(&post("http://127.0.0.1:8080", "Bearer x"))
                .unwrap_err()
                .status(),
            401
        );
        // The page itself needs no token; the node list does.
        let page = TestRequest::get().to_http_request();
        assert!(p.check_page(&page).is_ok());
        assert_eq!(p.check(&page).unwrap_err().status(), 401);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
