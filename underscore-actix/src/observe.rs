//! `Observe`: the App-level middleware that accounts for routes registered with plain
//! actix-web (not annotated). Annotated routes are accounted for by their own `Track`; for
//! them `Observe` costs a clock read (which `Track` reuses), a reference to the request target
//! (taken before it knows whether a `Track` will claim the request: one atomic increment on the
//! buffer actix already shares) and a thread-local flag, then passes the request through
//! untouched.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::{Error, HttpResponse};
use pin_project_lite::pin_project;
use underscore_core::clock::{self, Stamp};
use underscore_core::registry::{registry, DynamicRoute, Registry};
use underscore_core::stats::RouteStats;
use underscore_core::tasks::Signal;

use crate::claim;
use crate::inflight::{Active, InFlight};
use crate::stack::Traced;

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
/// requests are counted when they finish, and while they run they are matched to a route by
/// their path (for `stats.req.active`, `_tasks` and interrupts).
///
/// `Observe` also applies route settings (a preempt, `limits.max_in_flight`, `limits.timeout`)
/// to plain routes. As actix has not routed the request yet, it matches the path against the
/// App's resources the way actix's `match_pattern` does before routing (by path, in
/// registration order), and applies them only if the request's method was already seen on that
/// route. It does this lookup only while some plain route has such a setting; otherwise it
/// costs nothing. A plain route's requests are counted in flight against its limit only while
/// it has one: requests already running when the limit is set are not in its count.
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
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = ObserveMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        underscore_core::components::note_middleware(
            "app",
            std::any::type_name::<Observe>(),
            "underscore",
        );
        // Relaxed: `Track` only needs to see it eventually (see `claim`).
        claim::OBSERVE_INSTALLED.store(true, Ordering::Relaxed);
        clock::calibrate();
        // In-flight plain requests are given a route by matching their path, as actix would.
        registry().set_path_matcher(|pattern| {
            // Every path the pattern matches begins with its text before the first `{` (actix's
            // regex starts with it): checked first, as actix's regex engine has no prefilter.
            let literal = pattern[..pattern.find('{').unwrap_or(pattern.len())].to_owned();
            let def = actix_web::dev::ResourceDef::new(pattern);
            Box::new(move |path| path.starts_with(&literal) && def.is_match(path))
        });
        ready(Ok(ObserveMiddleware {
            service,
            routes: Rc::default(),
            registry: registry(),
        }))
    }
}

/// Per-worker cache of plain routes by pattern, so the registry's lock is taken once per
/// worker and route, never per request.
type RouteCache = Rc<RefCell<HashMap<String, &'static DynamicRoute>>>;

/// The [`Service`] of [`Observe`], one per worker.
#[derive(Debug)]
pub struct ObserveMiddleware<S> {
    service: S,
    routes: RouteCache,
    /// Kept, not looked up per request (its lazy initialisation is checked at each lookup).
    registry: &'static Registry,
}

/// The route of `pattern` from the worker's cache, or from `find` (then cached).
fn cached(
    routes: &RouteCache,
    pattern: String,
    find: impl FnOnce(&str) -> Option<&'static DynamicRoute>,
) -> Option<&'static DynamicRoute> {
    let mut cache = routes.borrow_mut();
    if let Some(route) = cache.get(&pattern) {
        return Some(*route);
    }
    let route = find(&pattern)?;
    cache.insert(pattern, route);
    Some(route)
}

impl<S> ObserveMiddleware<S> {
    /// The plain route this request would reach, if it has a preempt or a limit, judged before
    /// routing.
    fn plain_route(&self, req: &ServiceRequest) -> Option<&'static DynamicRoute> {
        // Before routing, `match_pattern` walks the resources by path alone.
        let pattern = req.match_pattern()?;
        // Not cached when missing: the route may be met (and preempted) later.
        let route = cached(&self.routes, pattern, |p| {
            self.registry.dynamic_by_pattern(p)
        })?;
        // A method never seen there may belong to another resource with the same path.
        if !route.methods.contains(req.method().as_str()) {
            return None;
        }
        route.settings.is_set().then_some(route)
    }
}

// `'static`: as actix's `HttpServer` requires of every app anyway.
impl<S, B> Service<ServiceRequest> for ObserveMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = ObserveFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let route = if self.registry.has_dynamic_settings() {
            self.plain_route(&req)
        } else {
            None
        };
        if let Some(route) = route {
            if let Some(preempt) = route.settings.preempt_now() {
                return ObserveFuture::answered(crate::preempt::answer(&route.stats, &preempt));
            }
        }
        let start = Stamp::now();
        // Taken now: once the request is handed to actix's router it is out of reach.
        let details = InFlight::before_routing(&req, start);
        let (fut, claimed) = claim::observe(start, || self.service.call(req));
        if claimed {
            // A `Track` accounts for it: pass through, at no cost.
            return ObserveFuture::Claimed { fut };
        }
        // The handler has not run yet (a future runs when polled): a request over the route's
        // limit is shed here, without it.
        let mut admitted = None;
        let mut timeout = None;
        if let Some(route) = route {
            let settings = &route.settings;
            if let Some(max) = settings.max_in_flight() {
                match Active::admit(&route.stats, max) {
                    Some(active) => admitted = Some((active, route)),
                    None => {
                        return ObserveFuture::answered(crate::preempt::shed(
                            &route.stats,
                            settings,
                        ));
                    }
                }
            }
            timeout = settings.timeout();
        }
        let mut inflight = InFlight::plain(details, admitted);
        if let Some(timeout) = timeout {
            inflight.set_timeout(timeout);
        }
        ObserveFuture::Observed {
            fut: Box::pin(Plain {
                fut: Some(crate::stack::root(fut)),
                state: Some((self.routes.clone(), inflight)),
            }),
        }
    }
}

/// An answer of `Observe` itself. The request is out of reach here (actix's router holds it,
/// or is about to), so the answer travels as an error carrying its response, which actix's
/// dispatcher sends as is. (Middleware wrapped outside `Observe` see an error.)
fn answer(res: HttpResponse) -> Error {
    InternalError::from_response("answered by underscore", res).into()
}

pin_project! {
    /// The response future of [`ObserveMiddleware`].
    #[project = ObserveFutureProj]
    #[allow(missing_docs)]
    pub enum ObserveFuture<F, B> {
        /// A `Track` claimed the request.
        Claimed {
            #[pin]
            fut: F,
        },
        /// A request `Observe` follows itself (a plain route's, or a 404), or answers. Behind
        /// one pointer, so that this future is dropped almost as cheaply as the app's own:
        /// actix's dispatcher inlines its drop where it drops its state, three times a request
        /// (with the plain request's state inline, that drop cost 21 instructions a request
        /// more, measured with `bench/ir.sh`).
        Observed {
            fut: Pin<Box<dyn Future<Output = Result<ServiceResponse<B>, Error>>>>,
        },
    }
}

impl<F, B: 'static> ObserveFuture<F, B> {
    /// An answer of `Observe` itself (a preempted or shed plain route).
    fn answered(res: HttpResponse) -> Self {
        ObserveFuture::Observed {
            fut: Box::pin(ready(Err(answer(res)))),
        }
    }
}

impl<F, B> Future for ObserveFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = F::Output;

    // Out of line: inlined, its caller copies the response once more.
    #[inline(never)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ObserveFutureProj::Claimed { fut } => fut.poll(cx),
            ObserveFutureProj::Observed { fut } => fut.as_mut().poll(cx),
        }
    }
}

pin_project! {
    /// A request no `Track` claimed synchronously, as `Observe` follows it.
    #[project = PlainProj]
    struct Plain<F> {
        // `None` once dropped (the request was cancelled).
        #[pin]
        fut: Option<Traced<F>>,
        // `None` once the request ends, or once a `Track` claimed it late.
        state: Option<(RouteCache, InFlight)>,
    }
}

impl<F, B> Future for Plain<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let PlainProj {
            fut: mut slot,
            state: plain,
        } = self.project();
        let fut = slot
            .as_mut()
            .as_pin_mut()
            .expect("a plain request is not polled after completion");
        let Some(state) = plain.as_mut() else {
            // A `Track` claimed it late: it accounts for it.
            return fut.poll(cx);
        };
        let inflight = &mut state.1;
        let signal = inflight.signal(cx);
        if let Signal::Cancelled(reason) = signal {
            let (_, mut inflight) = plain.take().expect("checked above");
            // Not routed yet as far as anyone knows: counted on the route its path matches.
            inflight.count_by_path();
            inflight.cancelled(reason);
            // Drops the handler's future now, on this worker.
            slot.set(None);
            drop(inflight);
            return Poll::Ready(Err(answer(crate::inflight::cancelled_response(reason))));
        }
        // Raised around the poll too: a `Track` behind a deferring middleware is reached only
        // now, and claims the request here.
        // Poll timing (off by default): one relaxed load a poll when off.
        let timed = if underscore_core::workers::poll_timing() {
            inflight.begin_poll()
        } else {
            None
        };
        let (polled, claimed) =
            claim::observe_poll(|| crate::stack::poll(fut, cx, inflight.handle(), signal));
        if claimed {
            // The `Track` timed its poll itself, inside this one.
            if let Some((timed, _)) = timed {
                timed.abandon();
            }
            // Not ours after all: drop our task entry, count nothing.
            plain.take().expect("checked above").1.disown();
            return polled;
        }
        if let Some((timed, route)) = timed {
            inflight.end_poll(timed, route);
        }
        let out = match polled {
            Poll::Pending => {
                inflight.register(cx);
                return Poll::Pending;
            }
            Poll::Ready(out) => out,
        };
        let (routes, mut inflight) = plain.take().expect("checked above");
        let (stats, status, route) = match &out {
            Ok(res) => match classify(&routes, res) {
                // A `Track` behind a deferring middleware counted it.
                Served::Claimed => return Poll::Ready(out),
                Served::Route(route) => {
                    inflight.set_route(route);
                    (&route.stats, res.status(), Some(route))
                }
                Served::Bucket(stats) => (stats, res.status(), None),
            },
            // actix turns the error into a response; which route failed is known only by its
            // path.
            Err(err) => {
                let route = inflight.resolve_plain();
                let stats = route.map_or(registry().unmatched(), |r| &r.stats);
                (stats, err.as_response_error().status_code(), route)
            }
        };
        inflight.count_on(stats);
        inflight.responded(status);
        if let Some(route) = route {
            inflight.judge_slow(route, status);
        }
        // A plain request ends with its response head: `Observe` cannot change the app's body
        // type to follow the body, as `Track` does.
        Poll::Ready(out)
    }
}

/// Who served a request no `Track` claimed synchronously.
enum Served {
    /// A `Track` claimed it late (behind a deferring middleware): it is counted already.
    Claimed,
    /// A plain actix-web route.
    Route(&'static DynamicRoute),
    /// No route: the 404 or 405 bucket.
    Bucket(&'static RouteStats),
}

/// Finds the route of a finished request that no `Track` claimed synchronously.
fn classify<B>(routes: &RouteCache, res: &ServiceResponse<B>) -> Served {
    if claim::claimed_late(res) {
        return Served::Claimed;
    }
    let req = res.request();
    // After routing this is exact; `None` means no resource matched (a 404).
    let Some(pattern) = req.match_pattern() else {
        return Served::Bucket(registry().unmatched());
    };
    // A resource matched the path but none of its routes the method: actix's 405. (A handler
    // answering 405 itself lands here too; it is the same story for an operator.)
    if res.status() == StatusCode::METHOD_NOT_ALLOWED {
        return Served::Bucket(registry().method_not_allowed());
    }
    let Some(route) = cached(routes, pattern, |p| {
        Some(registry().dynamic_route(p, req.match_name()))
    }) else {
        unreachable!("dynamic_route finds or makes the route")
    };
    route.methods.insert(req.method().as_str());
    Served::Route(route)
}
