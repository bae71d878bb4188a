//! Making the middleware stack and the listeners visible to `_cat/middlewares` and
//! `_cat/transports`.
//!
//! actix-web cannot list the middleware wrapped around an app, nor its listeners: what is not
//! recorded here is not shown. underscore's own (`Observe`, `Track`, the admin socket) always
//! are.

use std::any::Any;
use std::borrow::Cow;
use std::net::SocketAddr;

use actix_web::dev::{Extensions, Transform};
use underscore_core::components::{self, Connection};

/// A middleware recorded for `_cat/middlewares`; it behaves exactly as the one it wraps.
///
/// ```no_run
/// use actix_web::{middleware::Logger, App};
///
/// let app = App::new()
///     .wrap(underscore_actix::record(Logger::default()))
///     .wrap(underscore_actix::Observe::new());
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Recorded<M> {
    scope: Cow<'static, str>,
    inner: M,
}

/// Records an App-level middleware (see [`Recorded`]).
pub fn record<M>(middleware: M) -> Recorded<M> {
    record_in("app", middleware)
}

/// Records a middleware that applies to `scope` (say `"scope /api"` or `"resource /items"`).
pub fn record_in<M>(scope: impl Into<Cow<'static, str>>, middleware: M) -> Recorded<M> {
    Recorded {
        scope: scope.into(),
        inner: middleware,
    }
}

impl<S, Req, M> Transform<S, Req> for Recorded<M>
where
    M: Transform<S, Req>,
{
    type Response = M::Response;
    type Error = M::Error;
    type Transform = M::Transform;
    type InitError = M::InitError;
    type Future = M::Future;

    fn new_transform(&self, service: S) -> Self::Future {
        components::note_middleware(&self.scope, std::any::type_name::<M>(), "declared");
        self.inner.new_transform(service)
    }
}

/// Records the app's listeners for `_cat/transports`: pass `HttpServer::addrs_with_scheme()`
/// after binding. Their open connections are counted if the server also uses [`on_connect`].
pub fn record_listeners<'a>(addrs: impl IntoIterator<Item = (SocketAddr, &'a str)>) {
    for (addr, scheme) in addrs {
        let kind = if scheme == "https" { "tls" } else { "tcp" };
        components::record_transport("app", kind, &addr.to_string(), None, true);
    }
}

/// Counts the connections of recorded TCP listeners: pass it to `HttpServer::on_connect`
/// (or call it from yours). Connections of other kinds (TLS streams, UNIX sockets) are not
/// counted.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    if let Some(stream) = conn.downcast_ref::<actix_rt::net::TcpStream>() {
        if let Some(counter) = stream
            .local_addr()
            .ok()
            .and_then(|addr| components::transport_counter(&addr.to_string()))
        {
            // Dropped with the connection's data when it closes.
            ext.insert(Connection::open(counter));
        }
    }
}
