//! `Observe`: the App-level middleware that accounts for routes registered with plain
//! actix-web (not annotated). Annotated routes are accounted for by their own `Track`; for
//! them `Observe` costs a thread-local flag and nothing else.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::Error;
use pin_project_lite::pin_project;
use underscore_core::registry::{registry, DynamicRoute};

use crate::claim;

/// App-level middleware: makes routes registered with plain actix-web (not annotated) appear in
/// the admin APIs after their first request, with their methods and request counts.
///
/// ```no_run
/// use actix_web::{web, App, HttpServer};
/// use underscore_actix::Observe;
///
/// # async fn run() -> std::io::Result<()> {
/// HttpServer::new(|| {
///     App::new()
///         .wrap(Observe::new())
///         .route("/plain", web::get().to(|| async { "plain" }))
/// })
/// .bind("127.0.0.1:8080")?
/// .run()
/// .await
/// # }
/// ```
///
/// Wrap it last (outermost), so it sees every request. A route registered with plain actix-web
/// is only known once a request has been routed to it, and actix routes inside the App: so its
/// requests are counted when they finish, and `stats.req.active` is unknown (`-`) for it.
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct Observe;

impl Observe {
    /// The middleware.
    pub fn new() -> Self {
        Self
    }
}

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = ObserveMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        // Relaxed: `Track` only needs to see it eventually (see `claim`).
        claim::OBSERVE_INSTALLED.store(true, Ordering::Relaxed);
        ready(Ok(ObserveMiddleware {
            service,
            routes: Rc::default(),
        }))
    }
}

/// Per-worker cache of plain routes by pattern, so the registry's lock is taken once per
/// worker and route, never per request.
type RouteCache = Rc<RefCell<HashMap<String, Arc<DynamicRoute>>>>;

/// The [`Service`] of [`Observe`], one per worker.
#[derive(Debug)]
pub struct ObserveMiddleware<S> {
    service: S,
    routes: RouteCache,
}

impl<S, B> Service<ServiceRequest> for ObserveMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = ObserveFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let (fut, claimed) = claim::observe(|| self.service.call(req));
        ObserveFuture {
            fut,
            routes: (!claimed).then(|| self.routes.clone()),
        }
    }
}

pin_project! {
    /// The response future of [`ObserveMiddleware`].
    #[derive(Debug)]
    pub struct ObserveFuture<F> {
        #[pin]
        fut: F,
        // `Some` when no `Track` claimed the request synchronously.
        routes: Option<RouteCache>,
    }
}

impl<F, B> Future for ObserveFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.fut.poll(cx));
        if let (Some(routes), Ok(res)) = (this.routes.take(), &out) {
            record_plain(&routes, res);
        }
        Poll::Ready(out)
    }
}

/// Accounts for a finished request that no `Track` claimed.
fn record_plain<B>(routes: &RouteCache, res: &ServiceResponse<B>) {
    if claim::claimed_late(res) {
        return;
    }
    let req = res.request();
    // After routing this is exact; `None` means no resource matched (a 404).
    let Some(pattern) = req.match_pattern() else {
        return;
    };
    let route = {
        let mut cache = routes.borrow_mut();
        match cache.get(&pattern) {
            Some(route) => route.clone(),
            None => {
                let route = registry().dynamic_route(&pattern, req.match_name());
                cache.insert(pattern, route.clone());
                route
            }
        }
    };
    route.methods.insert(req.method().as_str());
    route.counters.record_finished();
}
