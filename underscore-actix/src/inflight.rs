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
use underscore_core::route::RequestCounters;
use underscore_core::tasks::{Signal, TaskHandle, TaskKind, TaskRoute};

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

/// Ends the request in the route's counters when dropped: when the response has been sent, or
/// on error, panic, cancellation, or when actix drops the request.
#[derive(Debug)]
pub struct Active(pub(crate) &'static RequestCounters);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The in-flight state of one request.
#[derive(Debug)]
pub struct InFlight {
    /// Where the task's details come from, until it is registered.
    source: Option<Source>,
    route: TaskRoute,
    handle: Option<TaskHandle>,
    /// Held for its `Drop`: ends the request in the route's counters.
    _active: Option<Active>,
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
            _active: Some(active),
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
            _active: None,
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
    pub(crate) fn set_route(
        &mut self,
        route: std::sync::Arc<underscore_core::registry::DynamicRoute>,
    ) {
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
            if inflight.signal(cx) == Signal::Cancelled {
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
