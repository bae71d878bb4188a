//! What the middleware keeps for each in-flight request: its task entry (listed by `_tasks`,
//! cancellable from another thread) and the body wrapper that keeps the entry until the
//! response has been sent.

use std::error::Error as StdError;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use pin_project_lite::pin_project;
use std::time::Instant;

use actix_web::http::StatusCode;
use underscore_core::stats::{Outcome, RouteStats};
use underscore_core::tasks::{CancelReason, Signal, TaskHandle, TaskKind, TaskRoute};

/// The reason phrase and body of an interrupted request.
pub(crate) const INTERRUPTED: &str = "Request interrupted";

/// The answer to a request cancelled while its handler ran.
pub(crate) fn interrupted_response() -> HttpResponse {
    let mut res = HttpResponse::ServiceUnavailable()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ))
        .body("Request interrupted\n");
    res.head_mut().reason = Some(INTERRUPTED);
    res
}

/// A request counted in its route's statistics: records its outcome exactly once, when it
/// is dropped (after the response was sent, or on error, panic or cancellation). A request
/// dropped before any outcome was set ends as `dropped`.
#[derive(Debug)]
pub struct Active {
    stats: &'static RouteStats,
    start: Instant,
    outcome: Option<Outcome>,
}

impl Active {
    /// Counts a request of the route with `stats`, started at `start`.
    pub(crate) fn begin(stats: &'static RouteStats, start: Instant) -> Self {
        stats.begin();
        Self {
            stats,
            start,
            outcome: None,
        }
    }

    /// The app answered with `status`: records the latency, and the outcome for later.
    pub(crate) fn responded(&mut self, status: StatusCode) {
        self.stats.record_latency(self.start, Instant::now());
        self.outcome = Some(Outcome::Status(status.as_u16()));
    }

    /// The request was ended by a cancellation.
    pub(crate) fn cancelled(&mut self, reason: CancelReason) {
        self.outcome = Some(match reason {
            CancelReason::Interrupt => Outcome::Interrupted,
            CancelReason::Cancel => Outcome::Cancelled,
        });
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.stats.end(self.outcome.unwrap_or(Outcome::Dropped));
    }
}

/// The in-flight state of one request.
#[derive(Debug)]
pub struct InFlight {
    /// Where the task's details come from, until it is registered.
    source: Option<Source>,
    route: TaskRoute,
    handle: Option<TaskHandle>,
    /// The request in its route's statistics (annotated routes; plain ones are counted once
    /// actix has said which route served them).
    active: Option<Active>,
    /// When the request entered the middleware.
    start: Instant,
}

#[derive(Debug)]
enum Source {
    /// A clone of the request (resource level, after routing): details are read from it only
    /// if the request has to wait.
    Request(HttpRequest),
    /// Details taken before routing (App level, where the request may not be cloned).
    Kind(TaskKind),
}

fn kind_of(req: &HttpRequest) -> TaskKind {
    TaskKind::Request {
        method: req.method().clone(),
        uri: req.uri().clone(),
        peer: req.peer_addr(),
        opaque_id: req.headers().get(OPAQUE_ID).cloned(),
    }
}

const OPAQUE_ID: header::HeaderName = header::HeaderName::from_static("x-opaque-id");

impl InFlight {
    /// The state of a request `Track` serves, from a clone of its request.
    pub(crate) fn from_request(request: HttpRequest, route: TaskRoute, active: Active) -> Self {
        Self {
            source: Some(Source::Request(request)),
            route,
            handle: None,
            start: active.start,
            active: Some(active),
        }
    }

    /// The state of a request `Observe` sees before routing.
    pub(crate) fn before_routing(req: &ServiceRequest) -> Self {
        Self {
            source: Some(Source::Kind(TaskKind::Request {
                method: req.method().clone(),
                uri: req.uri().clone(),
                peer: req.peer_addr(),
                opaque_id: req.headers().get(OPAQUE_ID).cloned(),
            })),
            route: TaskRoute::Plain(None),
            handle: None,
            active: None,
            start: Instant::now(),
        }
    }

    /// The app answered with `status`.
    pub(crate) fn responded(&mut self, status: StatusCode) {
        if let Some(active) = &mut self.active {
            active.responded(status);
        }
    }

    /// Counts a plain request on its route, once actix has said which it is.
    pub(crate) fn count_on(&mut self, stats: &'static RouteStats) {
        if self.active.is_none() {
            self.active = Some(Active::begin(stats, self.start));
        }
    }

    /// The request was ended by a cancellation.
    pub(crate) fn cancelled(&mut self, reason: CancelReason) {
        if let Some(active) = &mut self.active {
            active.cancelled(reason);
        }
    }

    /// The plain route this request's path matches, as actix's `match_pattern` would say
    /// before routing.
    pub(crate) fn resolve_plain(&self) -> Option<&'static underscore_core::registry::DynamicRoute> {
        match &self.source {
            Some(Source::Kind(TaskKind::Request { method, uri, .. })) => {
                underscore_core::registry().resolve_plain(method.as_str(), uri.path())
            }
            _ => None,
        }
    }

    /// A cancellation or stack request since the last poll (nothing before registration).
    #[inline]
    pub(crate) fn signal(&mut self, cx: &Context<'_>) -> Signal {
        match &mut self.handle {
            Some(handle) => handle.poll_signal(cx.waker()),
            None => Signal::None,
        }
    }

    /// Registers the task, if not yet: called once the request has to wait, so a request
    /// answered within its first poll costs no registration at all.
    #[inline]
    pub(crate) fn register(&mut self, cx: &Context<'_>) {
        if self.handle.is_none() {
            let kind = match &self.source {
                Some(Source::Request(req)) => kind_of(req),
                Some(Source::Kind(kind)) => kind.clone(),
                None => return,
            };
            let route = std::mem::replace(&mut self.route, TaskRoute::None);
            self.handle = Some(TaskHandle::register(kind, route, cx.waker()));
        }
    }

    /// The request clone kept by `Track`, to answer an interrupt.
    pub(crate) fn take_request(&mut self) -> Option<HttpRequest> {
        match self.source.take() {
            Some(Source::Request(req)) => Some(req),
            other => {
                self.source = other;
                None
            }
        }
    }

    /// The task handle, once registered.
    pub(crate) fn handle(&self) -> Option<&TaskHandle> {
        self.handle.as_ref()
    }

    /// Records the route of a plain request, once actix has routed it.
    pub(crate) fn set_route(&mut self, route: &'static underscore_core::registry::DynamicRoute) {
        match &self.handle {
            Some(handle) => handle.set_route(route),
            None => self.route = TaskRoute::Plain(Some(route)),
        }
    }

    /// Hands the state to the response body, which keeps it until the body is sent. The
    /// request clone is released now: the body needs only the task entry.
    pub(crate) fn into_body<B>(mut self, body: B) -> TrackBody<B> {
        if let Some(Source::Request(req)) = &self.source {
            if self.handle.is_none() {
                // Not registered yet: keep what a later registration needs, not the request.
                self.source = Some(Source::Kind(kind_of(req)));
            } else {
                self.source = None;
            }
        }
        TrackBody {
            body,
            inflight: Some(self),
        }
    }
}

pin_project! {
    /// A response body that keeps its request in flight (listed, counted as active,
    /// cancellable) until it has been sent. A cancellation while it streams ends the stream
    /// with an error, which makes actix close the connection: a response already begun
    /// cannot turn into a 503.
    pub struct TrackBody<B> {
        #[pin]
        body: B,
        inflight: Option<InFlight>,
    }
}

impl<B> TrackBody<B> {
    /// A body with nothing in flight (a request some other middleware accounts for).
    pub(crate) fn untracked(body: B) -> Self {
        Self {
            body,
            inflight: None,
        }
    }
}

impl<B: MessageBody> MessageBody for TrackBody<B> {
    type Error = Box<dyn StdError>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        if let Some(inflight) = this.inflight.as_mut() {
            if let Signal::Cancelled(reason) = inflight.signal(cx) {
                inflight.cancelled(reason);
                *this.inflight = None;
                return Poll::Ready(Some(Err(INTERRUPTED.into())));
            }
        }
        let next = this.body.poll_next(cx);
        if next.is_pending() {
            if let Some(inflight) = this.inflight.as_mut() {
                inflight.register(cx);
            }
        }
        match next {
            Poll::Ready(None) => {
                *this.inflight = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(err))) => {
                *this.inflight = None;
                Poll::Ready(Some(Err(err.into())))
            }
            Poll::Ready(Some(Ok(bytes))) => Poll::Ready(Some(Ok(bytes))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn try_into_bytes(self) -> Result<Bytes, Self> {
        let TrackBody { body, inflight } = self;
        // A body actix can send in one piece: the request ends as this returns.
        body.try_into_bytes()
            .map_err(|body| TrackBody { body, inflight })
    }
}
