//! `Track`: the resource-level middleware that `#[underscore_route]` puts on every annotated
//! route. It knows its route exactly (a `&'static` to the macro-emitted metadata), so the
//! per-request work is a few atomic operations, with no lookup and no allocation.

use std::cell::Cell;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::EitherBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::Error;
use pin_project_lite::pin_project;
use underscore_core::route::RequestCounters;
use underscore_core::RouteMeta;

use crate::claim;

/// The middleware of one annotated route; built by `#[underscore_route]`, not by hand.
#[derive(Debug, Clone, Copy)]
pub struct Track {
    route: &'static RouteMeta,
    mount: usize,
}

impl Track {
    /// Tracks requests of `route`, mounted through its actix attribute number `mount`.
    pub fn new(route: &'static RouteMeta, mount: usize) -> Self {
        Self { route, mount }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Track
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = TrackMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        self.route.state.set_mounted();
        ready(Ok(TrackMiddleware {
            service,
            route: self.route,
            mount: self.mount,
            learned: Cell::new(false),
        }))
    }
}

/// The [`Service`] of [`Track`], one per worker and mount.
#[derive(Debug)]
pub struct TrackMiddleware<S> {
    service: S,
    route: &'static RouteMeta,
    mount: usize,
    /// Whether this mount's full pattern was recorded (once per worker and mount).
    learned: Cell<bool>,
}

impl<S, B> Service<ServiceRequest> for TrackMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = TrackFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        claim::claim(&req);
        if !self.learned.get() {
            self.learned.set(true);
            // After routing, `match_pattern` is exact and includes any scope prefix.
            if let Some(pattern) = req.match_pattern() {
                self.route.state.learn_full_path(self.mount, &pattern);
            }
        }
        let state = &self.route.state;
        // One atomic load while the route is not preempted.
        if let Some(preempt) = state.settings.preempt() {
            state.counters.record_finished();
            let res = req.into_response(crate::preempt::response(&preempt));
            return TrackFuture::Preempted {
                res: Some(res.map_into_right_body()),
            };
        }
        state.counters.begin();
        TrackFuture::Running {
            fut: self.service.call(req),
            _active: Active(&state.counters),
        }
    }
}

/// Ends the request in the route's counters when dropped: on response, error, panic, or when
/// actix drops the request future.
#[derive(Debug)]
pub struct Active(&'static RequestCounters);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.end();
    }
}

pin_project! {
    /// The response future of [`TrackMiddleware`]: the app's future while the request runs, or
    /// the ready answer of a preempted route.
    #[project = TrackFutureProj]
    #[allow(missing_docs)]
    pub enum TrackFuture<F, B> {
        /// The request runs in the app.
        Running {
            #[pin]
            fut: F,
            _active: Active,
        },
        /// The route is preempted: the answer is ready, the app is not called.
        Preempted {
            res: Option<ServiceResponse<EitherBody<B>>>,
        },
    }
}

impl<F, B> Future for TrackFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            TrackFutureProj::Running { fut, .. } => {
                fut.poll(cx).map_ok(ServiceResponse::map_into_left_body)
            }
            TrackFutureProj::Preempted { res } => Poll::Ready(Ok(res
                .take()
                .expect("a TrackFuture is not polled after completion"))),
        }
    }
}
