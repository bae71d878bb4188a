//! The admin APIs as actix-web services: the same handlers serve the private UNIX socket and
//! the in-app mount.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use underscore_core::api::{self, Request, MAX_BODY};
use underscore_core::ApiError;

use crate::claim::AdminClaim;

/// The path prefixes the admin APIs answer under.
const BASES: [&str; 3] = ["/_cat", "/_routes", "/_tasks"];

/// Mounts the admin APIs (`/_cat`, `/_routes`, `/_tasks`) into an actix-web app or scope.
///
/// This is the in-app mode: the admin APIs then share the application's listeners, so anyone
/// who can reach the app can reach them. Prefer [`AdminSocket`](crate::AdminSocket) (a private
/// UNIX socket) in production. The admin APIs' own requests are never counted as routes.
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
    underscore_core::components::record_transport(
        "admin",
        "in-app",
        "mounted on the app's own listeners",
        None,
        false,
    );
    register(cfg);
}

/// Registers the admin services (both modes).
pub(crate) fn register(cfg: &mut web::ServiceConfig) {
    for base in BASES {
        cfg.service(
            web::resource([base.to_owned(), format!("{base}/{{tail:.*}}")])
                .wrap(AdminClaim)
                .to(move |req: HttpRequest, body: web::Payload| serve(req, body, Some(base))),
        );
    }
}

/// Serves any path: the fallback of the admin server, so unknown paths get an
/// Elasticsearch-shaped 404 rather than actix's empty one.
pub(crate) async fn fallback(req: HttpRequest, body: web::Payload) -> HttpResponse {
    serve(req, body, None).await
}

async fn serve(req: HttpRequest, body: web::Payload, base: Option<&'static str>) -> HttpResponse {
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
    let caller = caller(&req);
    let method = req.method().as_str().to_owned();
    let query = req.query_string().to_owned();
    // Off the worker: a settings change writes and fsyncs a file, and a `_cat` of thousands of
    // routes takes milliseconds, neither of which belongs on an event loop serving the app.
    let answer = web::block(move || {
        let request = Request::new(&method, &path, &query)
            .with_body(&body)
            .with_caller(&caller);
        api::handle(&request)
    })
    .await;
    match answer {
        Ok(res) => respond(res),
        Err(_) => respond(
            ApiError {
                status: 500,
                kind: "exception",
                reason: "the admin request failed unexpectedly; see the application's log"
                    .to_owned(),
                allow: None,
            }
            .into(),
        ),
    }
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
    out.body(res.body)
}
