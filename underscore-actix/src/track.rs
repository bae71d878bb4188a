//! `Track`: the resource-level middleware that `#[underscore_route]` puts on every annotated
//! route. It knows its route exactly (a `&'static` to the macro-emitted metadata), so the
//! per-request work is a few atomic operations, with no lookup and no allocation.

use std::any::Any;
use std::cell::Cell;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::InternalError;
use actix_web::Error;
use pin_project_lite::pin_project;

use underscore_core::clock::{self, Stamp};
use underscore_core::settings::Flags;
use underscore_core::tasks::{CancelReason, Signal};
use underscore_core::RouteMeta;

use crate::claim;
use crate::inflight::Tracked;
use crate::stack::Traced;

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
    B: MessageBody + 'static,
{
    type Response = ServiceResponse;
    type Error = Error;
    type Transform = TrackMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        self.route.state.set_mounted();
        underscore_core::workers::register_current();
        crate::stack::declare_support();
        clock::calibrate();
        underscore_core::components::note_middleware(
            "resource (every annotated route)",
            std::any::type_name::<Track>(),
            "underscore",
        );
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
    B: MessageBody + 'static,
{
    type Response = ServiceResponse;
    type Error = Error;
    type Future = TrackFuture<S::Future>;

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
        // One atomic load while the route has no preempt and no limit.
        let flags = state.settings.flags();
        if !flags.is_empty() {
            return self.call_with_settings(req, flags);
        }
        state.stats.begin();
        self.run(req, None, false, false, false)
    }
}

impl<S, B> TrackMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    /// Runs the request in the app (counted in its route's statistics already), stopped after
    /// `timeout` if given.
    ///
    /// Always inlined: called from two places, it would otherwise stay a call of its own on
    /// every request's path, moving the request and its future once more (about 60
    /// instructions a request, measured with `bench/ir.sh`).
    #[inline(always)]
    fn run(
        &self,
        req: ServiceRequest,
        timeout: Option<std::time::Duration>,
        limited: bool,
        keep_details: bool,
        watched: bool,
    ) -> TrackFuture<S::Future> {
        let start = claim::observed_start().unwrap_or_else(Stamp::now);
        // No clone of the request here: one held while the user's middleware run would make
        // their edits of it panic. `Capture` hands one over once they are done. Where one of
        // the route's requests waited before that (in a middleware of the user's that defers
        // its call on), the details are read now, to list the request should it wait there too.
        let kind = keep_details.then(|| Box::new(crate::inflight::kind_of(req.request())));
        let listening = crate::capture::listen();
        let fut = self.service.call(req);
        let mut tracked = Tracked::new(crate::capture::stop(listening), self.route, start);
        if let Some(kind) = kind {
            tracked.set_kind(kind);
        }
        if let Some(timeout) = timeout {
            tracked.set_timeout(timeout);
        }
        if limited {
            tracked.set_limited();
        }
        if watched {
            tracked.set_watched();
        }
        TrackFuture::Running {
            fut: crate::stack::root(fut),
            tracked,
        }
    }

    /// A request of a route with a preempt or a limit: preempted (its share of them), shed
    /// (over `limits.max_in_flight`), or run with its timeout.
    #[inline(never)]
    fn call_with_settings(&self, req: ServiceRequest, flags: Flags) -> TrackFuture<S::Future> {
        let state = &self.route.state;
        let settings = &state.settings;
        if flags.preempt() {
            if let Some(preempt) = settings.preempt_now() {
                let res = crate::preempt::answer(&state.stats, &preempt);
                return TrackFuture::answer(req.into_response(res));
            }
        }
        // The limit and the timeout are atomics of their own (zero: unset), read only here.
        let limited = match settings.max_in_flight() {
            Some(max) => {
                if !state.stats.try_begin(max) {
                    let res = crate::preempt::shed(&state.stats, settings);
                    return TrackFuture::answer(req.into_response(res));
                }
                true
            }
            None => {
                state.stats.begin();
                false
            }
        };
        self.run(
            req,
            settings.timeout(),
            limited,
            flags.waits_outside(),
            flags.watched(),
        )
    }
}

pin_project! {
    /// The response future of [`TrackMiddleware`]: the app's future while the request runs, or
    /// a ready answer (a preempted route, an interrupted request).
    #[project = TrackFutureProj]
    #[project_replace = TrackFutureReplace]
    #[allow(missing_docs)]
    pub enum TrackFuture<F> {
        /// The request runs in the app. Once it has answered, it stays counted until this
        /// future is dropped, as its owner does on receiving the answer (actix's resource
        /// awaits it): then the app's future is dropped too, and the request is over.
        Running {
            #[pin]
            fut: Traced<F>,
            tracked: Tracked,
        },
        /// The answer is ready; the app is not (or no longer) called.
        // Boxed: the rare path must not make every request's future bigger.
        Done {
            res: Option<Box<ServiceResponse>>,
        },
    }
}

impl<F> TrackFuture<F> {
    /// An answer of the middleware (preempted, shed): the app is not called.
    fn answer(res: ServiceResponse) -> Self {
        TrackFuture::Done {
            res: Some(Box::new(res)),
        }
    }

    /// Ends a cancelled request (interrupt, cancel, timeout): drops the handler's future now,
    /// on this worker, and answers for it.
    ///
    /// The answer is a response of the request, as the app's would be. A request cancelled
    /// before `Capture` was reached (still in a middleware of the user's that has not called
    /// on) has no clone to answer with: its answer travels as an error carrying the response,
    /// which actix sends as it is.
    #[cold]
    #[inline(never)]
    fn cancel(mut self: Pin<&mut Self>, reason: CancelReason) -> Result<ServiceResponse, Error> {
        let TrackFutureProj::Running { tracked, .. } = self.as_mut().project() else {
            unreachable!("only a running request is cancelled")
        };
        let request = tracked.cancel(reason);
        // Ends the request, with its cancelled outcome.
        self.project_replace(TrackFuture::Done { res: None });
        let res = crate::inflight::cancelled_response(reason);
        match request {
            Some(request) => Ok(ServiceResponse::new(request, res)),
            None => {
                Err(InternalError::from_response(crate::inflight::cut_short(reason), res).into())
            }
        }
    }
}

/// A response of the app, with its body as actix's resource wants it: a [`BoxBody`] (what
/// actix's own routes answer with) is passed on as it is, without `map_body`. (Left to the
/// optimiser, the identity mapping was folded away in some builds and not in others: 90
/// instructions a request, measured with `bench/ir.sh`.)
#[inline(always)]
fn boxed<B: MessageBody + 'static>(
    mut polled: Poll<Result<ServiceResponse<B>, Error>>,
) -> Poll<Result<ServiceResponse, Error>> {
    // A constant once `B` is known: no test at run time. Moved out by `replace`, not through
    // an `Option`: that would copy the response once more.
    if let Some(boxed) = (&mut polled as &mut dyn Any)
        .downcast_mut::<Poll<Result<ServiceResponse<BoxBody>, Error>>>()
    {
        return std::mem::replace(boxed, Poll::Pending);
    }
    polled.map(|out| out.map(ServiceResponse::map_into_boxed_body))
}

/// A response of the app with a body of known length: passed on as it is if the body is in
/// memory (then the request ends with this future), else followed to its last byte.
#[inline(always)]
fn sized<B: MessageBody + 'static>(
    mut polled: Poll<Result<ServiceResponse<B>, Error>>,
    tracked: &mut Tracked,
) -> Poll<Result<ServiceResponse, Error>> {
    let in_memory_or_followed = |body: B, tracked: &mut Tracked| match body.try_into_bytes() {
        Ok(bytes) => BoxBody::new(bytes),
        Err(body) => tracked.hand_over(body),
    };
    // As in `boxed`: a `BoxBody` response is taken apart and put together in place, without
    // `map_body` (which the optimiser does not always inline: up to 200 instructions).
    if let Some(boxed) = (&mut polled as &mut dyn Any)
        .downcast_mut::<Poll<Result<ServiceResponse<BoxBody>, Error>>>()
    {
        let Poll::Ready(Ok(res)) = std::mem::replace(boxed, Poll::Pending) else {
            unreachable!("only an answer has a body")
        };
        let (request, res) = res.into_parts();
        let (head, body) = res.into_parts();
        let body = match body.try_into_bytes() {
            Ok(bytes) => BoxBody::new(bytes),
            Err(body) => tracked.hand_over(body),
        };
        return Poll::Ready(Ok(ServiceResponse::new(request, head.set_body(body))));
    }
    polled.map(|out| out.map(|res| res.map_body(|_, body| in_memory_or_followed(body, tracked))))
}

impl<F, B> Future for TrackFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // One byte, false unless the route's slow log or poll timing is on: then the poll
        // goes through `poll_watched`, out of line.
        if let TrackFutureProj::Running { tracked, .. } = self.as_mut().project() {
            if tracked.is_watched() {
                return self.poll_watched(cx);
            }
        }
        self.poll_request(cx)
    }
}

impl<F, B> TrackFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody + 'static,
{
    /// A poll of a request whose route has its slow log on, or while poll timing is on: the
    /// poll is timed (poll timing), and the request is judged by the slow log once answered.
    #[cold]
    #[inline(never)]
    fn poll_watched(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<ServiceResponse, Error>> {
        let timed = match self.as_mut().project() {
            TrackFutureProj::Running { tracked, .. } if underscore_core::workers::poll_timing() => {
                tracked.begin_poll()
            }
            _ => None,
        };
        let polled = self.as_mut().poll_request(cx);
        // Cancelled (then `Done`): the poll still counts for its worker.
        let TrackFutureProj::Running { tracked, .. } = self.project() else {
            if let Some(timed) = timed {
                timed.end();
            }
            return polled;
        };
        if let Some(timed) = timed {
            tracked.end_poll(timed);
        }
        if let Poll::Ready(result) = &polled {
            let status = match result {
                Ok(res) => res.status(),
                Err(err) => err.as_response_error().status_code(),
            };
            tracked.judge_slow(status);
        }
        polled
    }

    /// A poll of the request in the app.
    #[inline(always)]
    fn poll_request(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<ServiceResponse, Error>> {
        let (fut, tracked) = match self.as_mut().project() {
            TrackFutureProj::Running { fut, tracked } => (fut, tracked),
            TrackFutureProj::Done { res } => {
                let res = res
                    .take()
                    .expect("a TrackFuture is not polled after completion");
                return Poll::Ready(Ok(*res));
            }
        };
        assert!(
            !tracked.answered(),
            "a TrackFuture is not polled after completion"
        );
        let signal = tracked.signal(cx);
        if let Signal::Cancelled(reason) = signal {
            return Poll::Ready(self.cancel(reason));
        }
        // Until `Capture` has handed over the clone (a middleware of the user's deferred its
        // call on): listened for around the poll too.
        let listening = crate::capture::listen();
        let polled = crate::stack::poll(fut, cx, tracked.handle(), signal);
        if let Some(request) = crate::capture::stop(listening) {
            tracked.captured(request);
        }
        let body = match &polled {
            Poll::Pending => {
                tracked.register(cx);
                return Poll::Pending;
            }
            Poll::Ready(Ok(res)) => {
                tracked.responded(res.status());
                match res.response().body().size() {
                    BodySize::Stream => Body::Streamed,
                    // In memory, or a stream of known length (`SizedStream`, a proxied
                    // response): only the body itself can tell, and asking it moves the
                    // response out and back (160 instructions, measured with `bench/ir.sh`).
                    // So it is asked where following matters and the request costs more
                    // anyway: one that waited, or with a timeout or a limit to keep.
                    BodySize::Sized(n) if n > 0 && tracked.follows_sized() => Body::Sized,
                    // A request that waited may be waited on still.
                    _ if tracked.handle().is_some() => Body::Streamed,
                    _ => Body::Empty,
                }
            }
            Poll::Ready(Err(err)) => {
                // actix turns the error into this response.
                tracked.responded(err.as_response_error().status_code());
                Body::Empty
            }
        };
        match body {
            Body::Empty => boxed(polled),
            Body::Sized => sized(polled, tracked),
            Body::Streamed => {
                polled.map(|out| out.map(|res| res.map_body(|_, body| tracked.hand_over(body))))
            }
        }
    }
}

/// What the request's response body asks of `Track`.
enum Body {
    /// None: the request ends with the response.
    Empty,
    /// One of known length, which may be in memory (then the request ends with the response)
    /// or streamed (then followed to its last byte).
    Sized,
    /// A stream (or the body of a request that waited): followed to its last byte.
    Streamed,
}
