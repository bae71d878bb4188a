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

use actix_web::body::EitherBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::Error;
use pin_project_lite::pin_project;
use underscore_core::registry::{registry, DynamicRoute};
use underscore_core::settings::Preempt;

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
///
/// `Observe` also applies route settings (a preempt) to plain routes. As actix has not routed
/// the request yet, it matches the path against the App's resources the way actix's
/// `match_pattern` does before routing (by path, in registration order), and preempts only if
/// the request's method was already seen on that route. It does this lookup only while some
/// plain route has a preempt; otherwise it costs nothing.
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
    type Response = ServiceResponse<EitherBody<B>>;
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

impl<S> ObserveMiddleware<S> {
    /// The plain route this request would reach and its preempt, judged before routing.
    fn plain_preempt(&self, req: &ServiceRequest) -> Option<(Arc<DynamicRoute>, Arc<Preempt>)> {
        // Before routing, `match_pattern` walks the resources by path alone.
        let pattern = req.match_pattern()?;
        let route = {
            let mut cache = self.routes.borrow_mut();
            match cache.get(&pattern) {
                Some(route) => route.clone(),
                None => {
                    let route = registry().dynamic_by_pattern(&pattern)?;
                    cache.insert(pattern, route.clone());
                    route
                }
            }
        };
        // A method never seen there may belong to another resource with the same path.
        if !route.methods.contains(req.method().as_str()) {
            return None;
        }
        let preempt = route.settings.preempt()?;
        Some((route, preempt))
    }
}

impl<S, B> Service<ServiceRequest> for ObserveMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = ObserveFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if registry().has_dynamic_preempts() {
            if let Some((route, preempt)) = self.plain_preempt(&req) {
                route.counters.record_finished();
                let res = req.into_response(crate::preempt::response(&preempt));
                return ObserveFuture::Preempted {
                    res: Some(res.map_into_right_body()),
                };
            }
        }
        let (fut, claimed) = claim::observe(|| self.service.call(req));
        ObserveFuture::Running {
            fut,
            routes: (!claimed).then(|| self.routes.clone()),
        }
    }
}

pin_project! {
    /// The response future of [`ObserveMiddleware`].
    #[project = ObserveFutureProj]
    #[allow(missing_docs)]
    pub enum ObserveFuture<F, B> {
        /// The request runs in the app; `routes` is `Some` when no `Track` claimed it.
        Running {
            #[pin]
            fut: F,
            routes: Option<RouteCache>,
        },
        /// A plain route is preempted: the answer is ready, the app is not called.
        Preempted {
            res: Option<ServiceResponse<EitherBody<B>>>,
        },
    }
}

impl<F, B> Future for ObserveFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ObserveFutureProj::Running { fut, routes } => {
                let out = std::task::ready!(fut.poll(cx));
                if let (Some(routes), Ok(res)) = (routes.take(), &out) {
                    record_plain(&routes, res);
                }
                Poll::Ready(out.map(ServiceResponse::map_into_left_body))
            }
            ObserveFutureProj::Preempted { res } => Poll::Ready(Ok(res
                .take()
                .expect("an ObserveFuture is not polled after completion"))),
        }
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
