//! What the middleware keeps for each in-flight request: its statistics guard, its task entry
//! (listed by `_tasks`, cancellable from another thread), and the body wrapper that keeps both
//! until the response has been sent.
//!
//! A request answered within its first poll with a body sent in one piece (the common case)
//! never registers a task and never copies its URI: the cost is its statistics. What only a
//! waiting, timed or streamed request needs is kept out of line, so that the common path stays
//! small enough for the compiler to fold the middleware into actix's own code (a wrapper that
//! does nothing costs nothing: measured with `bench/ir.sh`).

use std::error::Error as StdError;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::ServiceRequest;
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use pin_project_lite::pin_project;
use underscore_core::clock::Stamp;
use underscore_core::registry::DynamicRoute;
use underscore_core::stats::{Outcome, RouteStats};
use underscore_core::tasks::{CancelReason, Signal, TaskHandle, TaskKind, TaskRoute};

/// The reason phrase and body of an interrupted request.
pub(crate) const INTERRUPTED: &str = "Request interrupted";

/// The reason phrase of a request interrupted at the end of a drain.
pub(crate) const DRAINING: &str = "Server draining";

/// The body of a request stopped by `limits.timeout`.
pub(crate) const TIMED_OUT: &str = "Request timed out";

/// The answer to a request cancelled while its handler ran: `503 Request interrupted` for an
/// interrupt or a cancel, `503 Server draining` at the end of a drain, `504 Gateway Timeout`
/// with the body `Request timed out` for a timeout.
pub(crate) fn cancelled_response(reason: CancelReason) -> HttpResponse {
    let (status, text, phrase) = match reason {
        CancelReason::Interrupt | CancelReason::Cancel => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Request interrupted\n",
            Some(INTERRUPTED),
        ),
        CancelReason::Timeout => (StatusCode::GATEWAY_TIMEOUT, "Request timed out\n", None),
        CancelReason::Drain => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Server draining\n",
            Some(DRAINING),
        ),
    };
    let mut res = crate::preempt::text_response(status, text);
    res.head_mut().reason = phrase;
    res
}

/// Why a response already begun was cut short: the error that ends its body stream.
pub(crate) fn cut_short(reason: CancelReason) -> &'static str {
    match reason {
        CancelReason::Timeout => TIMED_OUT,
        CancelReason::Drain => DRAINING,
        CancelReason::Interrupt | CancelReason::Cancel => INTERRUPTED,
    }
}

/// A request counted in its route's statistics: records its outcome exactly once, when it
/// is dropped (after the response was sent, or on error, panic or cancellation). A request
/// dropped before any outcome was set ends as `dropped`.
#[derive(Debug)]
pub(crate) struct Active {
    stats: &'static RouteStats,
    outcome: Option<Outcome>,
}

impl Active {
    /// Counts a request of the route with `stats`.
    #[inline]
    pub(crate) fn begin(stats: &'static RouteStats) -> Self {
        stats.begin();
        Self {
            stats,
            outcome: None,
        }
    }

    /// Counts a request of the route with `stats` if fewer than `max` of its requests run:
    /// `None` if it must be shed (then nothing is counted yet).
    #[inline]
    pub(crate) fn admit(stats: &'static RouteStats, max: u32) -> Option<Self> {
        // `then`, not `then_some`: an `Active` built and dropped would count an end.
        stats.try_begin(max).then(|| Self {
            stats,
            outcome: None,
        })
    }

    /// The request ended with `outcome` (recorded when this is dropped).
    #[inline]
    fn set_outcome(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
    }
}

/// The outcome of a request ended by `reason`.
fn cancelled_outcome(reason: CancelReason) -> Outcome {
    match reason {
        CancelReason::Interrupt | CancelReason::Drain => Outcome::Interrupted,
        CancelReason::Cancel => Outcome::Cancelled,
        CancelReason::Timeout => Outcome::TimedOut,
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.stats.end(self.outcome.unwrap_or(Outcome::Dropped));
    }
}

/// A timed poll, while it runs (see [`Tracked::begin_poll`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timed {
    worker: &'static underscore_core::workers::Worker,
    poll: underscore_core::workers::Poll,
}

impl Timed {
    /// Ends the poll of a request that is over (cancelled): counted for its worker only.
    pub(crate) fn end(self) {
        self.worker.end_poll(self.poll);
    }

    /// Gives the poll up uncounted: a `Track` claimed the request during it, and timed its
    /// own poll inside it.
    pub(crate) fn abandon(self) {
        self.worker.abandon_poll(self.poll);
    }

    /// The poll ended: counted for its worker, its route's statistics (`None`: its route is
    /// not known) and its task; a blocking poll (past `blocking.threshold`) is logged, once per
    /// task, with its route's id (`route`).
    fn finish(
        self,
        stats: Option<&RouteStats>,
        route: impl FnOnce() -> String,
        handle: Option<&TaskHandle>,
    ) {
        let nanos = self.worker.end_poll(self.poll);
        let threshold = underscore_core::workers::blocking_threshold();
        let limit = threshold.as_nanos().min(u128::from(u64::MAX)) as u64;
        let blocking = nanos > limit;
        if let Some(stats) = stats {
            stats.record_poll(nanos, blocking);
        }
        let first = match handle {
            Some(handle) => handle.record_poll(nanos, limit),
            None => blocking,
        };
        if first {
            let took = std::time::Duration::from_nanos(nanos);
            tracing::warn!(
                target: "underscore::blocking",
                route = %route(),
                task = handle.map_or_else(|| "-".to_owned(), TaskHandle::id),
                worker = self.worker.index,
                took = %underscore_core::time_value::human(took),
                threshold = %underscore_core::time_value::human(threshold),
                "blocking poll: the request's future held its worker past blocking.threshold \
                 (every request on that worker waited)"
            );
        }
    }
}

/// What `Observe` takes of every request before routing, in case no `Track` claims it.
#[derive(Debug)]
pub(crate) struct PlainDetails {
    method: actix_web::http::Method,
    target: Target,
    peer: Option<std::net::SocketAddr>,
    start: Stamp,
}

/// The request target. Shared, not copied: actix clones each request's `Uri` as it builds the
/// request (for its router), so the buffer behind it is shared already, and a clone of its
/// path and query is one atomic increment, with no allocation (measured with `bench/ir.sh`:
/// about 50 instructions a request fewer than copying the text).
#[derive(Debug)]
enum Target {
    /// An origin-form target (`/path?query`), the usual one.
    Path(actix_web::http::uri::PathAndQuery),
    /// Any other (absolute-form, or no path at all): the whole URI, boxed, as it is rare and
    /// four times the size.
    Uri(Box<actix_web::http::Uri>),
}

impl Target {
    #[inline]
    fn of(uri: &actix_web::http::Uri) -> Self {
        match uri.path_and_query() {
            Some(target) if uri.authority().is_none() => Target::Path(target.clone()),
            _ => Target::Uri(Box::new(uri.clone())),
        }
    }

    /// The path, without the query.
    fn path(&self) -> &str {
        match self {
            Target::Path(target) => target.path(),
            Target::Uri(uri) => uri.path(),
        }
    }

    fn to_uri(&self) -> actix_web::http::Uri {
        match self {
            Target::Path(target) => actix_web::http::Uri::from(target.clone()),
            Target::Uri(uri) => (**uri).clone(),
        }
    }
}

impl PlainDetails {
    /// The task's details, built only when the request has to wait.
    fn kind(&self) -> TaskKind {
        TaskKind::Request {
            method: self.method.clone(),
            uri: self.target.to_uri(),
            peer: self.peer,
            opaque_id: None,
        }
    }
}

pin_project! {
    /// What only a request that waits, or has a timeout, needs: boxed, once, so that a request
    /// answered within its first poll carries none of it.
    #[derive(Debug)]
    struct Extra {
        // The registered task.
        handle: Option<TaskHandle>,
        // What fewer requests need, boxed apart: a timer is 96 bytes, which every waiting
        // request would carry otherwise.
        rare: Option<Pin<Box<Rare>>>,
    }
}

pin_project! {
    /// What only requests of some routes need.
    #[derive(Debug)]
    struct Rare {
        // When `limits.timeout` runs out.
        #[pin]
        deadline: Option<actix_web::rt::time::Sleep>,
        // The details of a request of an annotated route taken as it came in, for a route
        // whose middleware defer their call on (see `TrackMiddleware::call`).
        kind: Option<Box<TaskKind>>,
    }
}

impl Extra {
    /// The extra's `Rare`, boxed first if need be.
    fn rare(self: Pin<&mut Self>) -> Pin<&mut Rare> {
        self.project()
            .rare
            .get_or_insert_with(|| {
                Box::pin(Rare {
                    deadline: None,
                    kind: None,
                })
            })
            .as_mut()
    }
}

/// Where a request keeps its [`Extra`] once it needs one. Dropping it is one test inline, and
/// the rest out of line: an `Option<Pin<Box<Extra>>>` is dropped by a call even when empty (9
/// instructions a request, measured with `bench/ir.sh`), as its drop glue is too big to inline.
/// `ManuallyDrop` only moves that drop into [`ExtraSlot`]'s own: nothing is ever left undropped.
#[derive(Debug, Default)]
struct ExtraSlot(Option<ManuallyDrop<Pin<Box<Extra>>>>);

impl Drop for ExtraSlot {
    #[inline]
    fn drop(&mut self) {
        if let Some(extra) = self.0.take() {
            drop_extra(ManuallyDrop::into_inner(extra));
        }
    }
}

#[cold]
#[inline(never)]
fn drop_extra(extra: Pin<Box<Extra>>) {
    drop(extra);
}

impl ExtraSlot {
    /// The slot's `Extra`, boxed first if need be.
    fn get_or_box(&mut self) -> Pin<&mut Extra> {
        self.0
            .get_or_insert_with(|| {
                ManuallyDrop::new(Box::pin(Extra {
                    handle: None,
                    rare: None,
                }))
            })
            .as_mut()
    }

    /// Moves the slot's `Extra`, if any, into a new slot.
    fn take(&mut self) -> ExtraSlot {
        ExtraSlot(self.0.take())
    }

    /// Sets the request's deadline.
    fn set_deadline(&mut self, timeout: std::time::Duration) {
        let deadline = actix_web::rt::time::sleep(timeout);
        let rare = self.get_or_box().rare();
        rare.project().deadline.set(Some(deadline));
    }

    /// Keeps the request's details, for a task registered before `Capture` is reached.
    fn set_kind(&mut self, kind: Box<TaskKind>) {
        *self.get_or_box().rare().project().kind = Some(kind);
    }

    /// The details kept by [`ExtraSlot::set_kind`], once.
    fn take_kind(&mut self) -> Option<TaskKind> {
        let extra = self.0.as_mut()?.as_mut().project();
        let rare = extra.rare.as_mut()?.as_mut().project();
        rare.kind.take().map(|kind| *kind)
    }

    /// Keeps the request's task `handle`.
    fn set_handle(&mut self, handle: TaskHandle) {
        *self.get_or_box().project().handle = Some(handle);
    }

    /// The task handle, once registered.
    fn handle(&self) -> Option<&TaskHandle> {
        self.0.as_ref()?.handle.as_ref()
    }

    /// A cancellation, a timeout or a stack request since the last poll (none for a request
    /// that never waited and has no timeout).
    #[inline(always)]
    fn signal(&mut self, cx: &mut Context<'_>) -> Signal {
        match &mut self.0 {
            None => Signal::None,
            Some(extra) => Extra::signal(extra.as_mut(), cx),
        }
    }
}

impl Extra {
    /// [`ExtraSlot::signal`] for a registered task or a request with a timeout.
    #[inline(never)]
    fn signal(extra: Pin<&mut Extra>, cx: &mut Context<'_>) -> Signal {
        let extra = extra.project();
        if let Some(rare) = extra.rare {
            if let Some(deadline) = rare.as_mut().project().deadline.as_pin_mut() {
                if deadline.poll(cx).is_ready() {
                    return Signal::Cancelled(CancelReason::Timeout);
                }
            }
        }
        match extra.handle {
            Some(handle) => handle.poll_signal(cx.waker()),
            None => Signal::None,
        }
    }
}

/// A request of an annotated route while its handler runs, as [`Track`](crate::Track) keeps it
/// in its future: every such request carries it, so it is small (40 bytes: actix's resource
/// copies its future with a call to `memcpy` past 128 bytes, and holds it twice), and whatever
/// only a waiting, timed or cancelled request needs is out of line. Counted in its route's
/// statistics until dropped, as [`Active`] is; it does not hold one, as its route gives the
/// statistics, and the pointer saved keeps it at 40 bytes.
#[derive(Debug)]
pub(crate) struct Tracked {
    /// A clone of the request, from [`Capture`](crate::Capture) once the user's middleware are
    /// done with it: read only if it has to wait (its task's details) or is cancelled (to
    /// answer it).
    request: Option<HttpRequest>,
    route: &'static underscore_core::RouteMeta,
    /// When the request entered the middleware.
    start: Stamp,
    extra: ExtraSlot,
    outcome: Option<Outcome>,
    /// Whether the count went to the response's body (which then ends it).
    handed_over: bool,
    /// Whether the request holds a slot of its route's `limits.max_in_flight`.
    limited: bool,
    /// Whether its route's slow log or poll timing is on (read on each poll).
    watched: bool,
}

impl Drop for Tracked {
    #[inline]
    fn drop(&mut self) {
        if !self.handed_over {
            let outcome = self.outcome.unwrap_or(Outcome::Dropped);
            self.route.state.stats.end(outcome);
        }
    }
}

impl Tracked {
    /// A request of `route`, counted in its statistics already, received at `start`; `request`
    /// is its clone, if `Capture` has taken one yet.
    #[inline]
    pub(crate) fn new(
        request: Option<HttpRequest>,
        route: &'static underscore_core::RouteMeta,
        start: Stamp,
    ) -> Self {
        Self {
            request,
            route,
            start,
            extra: ExtraSlot::default(),
            outcome: None,
            handed_over: false,
            limited: false,
            watched: false,
        }
    }

    /// Stops the request `timeout` from now, unless it has ended by then.
    pub(crate) fn set_timeout(&mut self, timeout: std::time::Duration) {
        self.extra.set_deadline(timeout);
    }

    /// Keeps the request's details, taken as it came in, in case it waits outside its handler
    /// (where `Capture` has no clone to hand over).
    #[cold]
    #[inline(never)]
    pub(crate) fn set_kind(&mut self, kind: Box<TaskKind>) {
        if self.request.is_none() {
            self.extra.set_kind(kind);
        }
    }

    /// The request holds a slot of its route's `limits.max_in_flight`.
    pub(crate) fn set_limited(&mut self) {
        self.limited = true;
    }

    /// Whether a body of known length is asked if it is in memory, and followed if not: for a
    /// request that waited, or has a timeout or a slot to keep. (One answered within its first
    /// poll on a route without limits ends with its response head, whatever its body.)
    #[inline]
    pub(crate) fn follows_sized(&self) -> bool {
        self.limited || self.extra.0.is_some()
    }

    /// Keeps the clone `Capture` handed over, and lists the real details of a task registered
    /// before it came.
    #[cold]
    #[inline(never)]
    pub(crate) fn captured(&mut self, request: HttpRequest) {
        if let Some(handle) = self.handle() {
            handle.set_kind(kind_of(&request));
        }
        self.request = Some(request);
    }

    /// See [`InFlight::signal`].
    #[inline(always)]
    pub(crate) fn signal(&mut self, cx: &mut Context<'_>) -> Signal {
        self.extra.signal(cx)
    }

    /// The task handle, once registered.
    #[inline]
    pub(crate) fn handle(&self) -> Option<&TaskHandle> {
        self.extra.handle()
    }

    /// The request's details, as `_tasks` lists them: from its clone, else from what was kept
    /// as it came in, else (the first of its route to wait outside its handler) from its
    /// route, until `Capture` hands over the clone.
    fn kind(&mut self) -> TaskKind {
        if let Some(request) = &self.request {
            return kind_of(request);
        }
        self.extra
            .take_kind()
            .unwrap_or_else(|| route_kind(self.route))
    }

    /// Registers the task, if not yet (see [`InFlight::register`]).
    #[inline(never)]
    pub(crate) fn register(&mut self, cx: &Context<'_>) {
        if self.handle().is_none() {
            if self.request.is_none() {
                // Waiting before `Capture` was reached: the route's next requests keep their
                // details as they come in.
                self.route.state.settings.note_waits_outside();
            }
            let handle = TaskHandle::register_started(
                self.kind(),
                TaskRoute::Annotated(self.route),
                cx.waker(),
                self.start,
            );
            self.extra.set_handle(handle);
        }
    }

    /// A timed poll begins (poll timing is on): its worker shows it while it runs.
    #[cold]
    #[inline(never)]
    pub(crate) fn begin_poll(&self) -> Option<Timed> {
        let worker = underscore_core::workers::current()?;
        let task = self.handle().map_or(0, TaskHandle::number);
        let route = std::ptr::from_ref(self.route) as usize;
        Some(Timed {
            worker,
            poll: worker.begin_poll(route, task),
        })
    }

    /// The timed poll `timed` ended: counted for its worker, route and task; a blocking poll
    /// (past `blocking.threshold`) is logged, once per task.
    #[cold]
    #[inline(never)]
    pub(crate) fn end_poll(&mut self, timed: Timed) {
        timed.finish(
            Some(&self.route.state.stats),
            || route_id(self.route),
            self.handle(),
        );
    }

    /// The app answered with `status`: records the latency, and the outcome for later.
    #[inline]
    pub(crate) fn responded(&mut self, status: StatusCode) {
        let stats = &self.route.state.stats;
        stats.record_micros(self.start.elapsed_nanos() / 1000);
        self.outcome = Some(Outcome::Status(status.as_u16()));
    }

    /// The request is watched: its route's slow log is on, or poll timing is (see
    /// `TrackFuture::poll_watched`).
    pub(crate) fn set_watched(&mut self) {
        self.watched = true;
    }

    /// Whether the request is watched.
    #[inline(always)]
    pub(crate) fn is_watched(&self) -> bool {
        self.watched
    }

    /// The request was answered with `status`: logs it in the slow log if it crossed one of
    /// its route's thresholds. (Its time read again, as this runs only for a watched request.)
    pub(crate) fn judge_slow(&self, status: StatusCode) {
        let nanos = self.start.elapsed_nanos();
        if nanos >= self.route.state.settings.slow_nanos() {
            self.slow(nanos, status);
        }
    }

    /// Logs the request in the slow log, if it crossed a threshold (see
    /// [`underscore_core::slowlog`]).
    #[cold]
    #[inline(never)]
    fn slow(&self, nanos: u64, status: StatusCode) {
        let Some(thresholds) = self.route.state.settings.slowlog() else {
            return;
        };
        let took = std::time::Duration::from_nanos(nanos);
        let Some(level) = thresholds.level_of(took) else {
            return;
        };
        let (method, path, opaque_id) = match &self.request {
            Some(req) => (
                req.method().to_string(),
                req.path().to_owned(),
                correlation_id(req),
            ),
            None => match route_kind(self.route) {
                TaskKind::Request { method, uri, .. } => {
                    (method.to_string(), uri.path().to_owned(), None)
                }
                TaskKind::Background { .. } | TaskKind::Underscore { .. } => {
                    unreachable!("a route's kind is a request's")
                }
            },
        };
        underscore_core::slowlog::record(underscore_core::slowlog::Entry {
            seq: 0,
            time_millis: 0,
            level,
            route: route_id(self.route),
            task: self.handle().map(TaskHandle::id),
            method,
            path,
            status: Some(status.as_u16()),
            took,
            opaque_id: opaque_id.and_then(|v| v.to_str().ok().map(str::to_owned)),
            report: None,
            stack: None,
        });
    }

    /// Whether the app has answered (or the request was cancelled).
    #[inline]
    pub(crate) fn answered(&self) -> bool {
        self.outcome.is_some()
    }

    /// The request was cancelled for `reason`: it ends as it is dropped, and its clone (if
    /// `Capture` took one) is handed back to answer it.
    pub(crate) fn cancel(&mut self, reason: CancelReason) -> Option<HttpRequest> {
        self.outcome = Some(cancelled_outcome(reason));
        self.request.take()
    }

    /// The response's body follows the request from here (see [`TrackBody`]): dropping this
    /// no longer ends it.
    #[inline(never)]
    pub(crate) fn hand_over<B: MessageBody + 'static>(&mut self, body: B) -> BoxBody {
        let waited = self.handle().is_some();
        // A streamed body may still wait, so keep what registering it would need.
        let (source, route) = if waited {
            (None, TaskRoute::None)
        } else {
            (
                Some(Source::Kind(Box::new(self.kind()))),
                TaskRoute::Annotated(self.route),
            )
        };
        self.handed_over = true;
        let active = Active {
            stats: &self.route.state.stats,
            outcome: self.outcome,
        };
        let (extra, start) = (self.extra.take(), self.start);
        let inflight = InFlight {
            source,
            route,
            extra,
            active: Some(active),
            start,
            uncounted_plain: false,
        };
        // Boxed, as actix's resource would box it anyway. A body of one piece is not: it ends
        // the request as it is unboxed.
        BoxBody::new(TrackBody {
            body,
            inflight: Some(Box::new(inflight)),
        })
    }
}

/// The id of an annotated route, as the admin APIs name it.
pub(crate) fn route_id(route: &'static underscore_core::RouteMeta) -> String {
    underscore_core::registry()
        .annotated_id(route)
        .map_or_else(|| route.name.to_owned(), str::to_owned)
}

/// What `_tasks` lists of a request known only by its route: the method and path of its
/// attribute (a path's `{segments}` percent-encoded, as a URI cannot hold braces).
#[cold]
fn route_kind(route: &underscore_core::RouteMeta) -> TaskKind {
    let method = route
        .methods
        .first()
        .and_then(|m| actix_web::http::Method::from_bytes(m.as_bytes()).ok())
        .unwrap_or(actix_web::http::Method::GET);
    let path = route.display_paths().into_iter().next().unwrap_or_default();
    let path = path.replace('{', "%7B").replace('}', "%7D");
    TaskKind::Request {
        method,
        uri: path
            .parse()
            .unwrap_or_else(|_| actix_web::http::Uri::from_static("/")),
        peer: None,
        opaque_id: None,
    }
}

/// The in-flight state of one request of a plain route, or of a body being sent.
///
/// Kept small (it travels inside the response future and body, which actix moves and boxes):
/// what only a waiting, timed or plain request needs is boxed.
#[derive(Debug)]
pub(crate) struct InFlight {
    /// Where the task's details come from, until it is registered.
    source: Option<Source>,
    route: TaskRoute,
    extra: ExtraSlot,
    /// The request in its route's statistics (annotated routes; plain ones are counted once
    /// actix has said which route served them).
    active: Option<Active>,
    /// When the request entered the middleware.
    start: Stamp,
    /// A plain request not counted yet: if dropped so, it is counted as `dropped` on the route
    /// its path matches.
    uncounted_plain: bool,
}

#[derive(Debug)]
enum Source {
    /// Details taken before routing (App level, where the request may not be cloned).
    Plain(Box<PlainDetails>),
    /// A waiting request's details, once its clone has gone.
    Kind(Box<TaskKind>),
}

/// The correlation id of `req` (read only for a request that is shown: see
/// [`underscore_core::correlation`]).
pub(crate) fn correlation_id(req: &HttpRequest) -> Option<header::HeaderValue> {
    let headers = req.headers();
    underscore_core::correlation::of(|name| headers.get(name))
}

pub(crate) fn kind_of(req: &HttpRequest) -> TaskKind {
    TaskKind::Request {
        method: req.method().clone(),
        uri: req.uri().clone(),
        peer: req.peer_addr(),
        opaque_id: correlation_id(req),
    }
}

impl InFlight {
    /// Stops the request `timeout` from now, unless it has ended by then.
    pub(crate) fn set_timeout(&mut self, timeout: std::time::Duration) {
        self.extra.set_deadline(timeout);
    }

    /// The state of a request `Observe` sees before routing, started at `start`. (Taken for
    /// every request, claimed or not, so kept to the method, URI and peer: the correlation id
    /// is shown for annotated routes only.)
    #[inline]
    pub(crate) fn before_routing(req: &ServiceRequest, start: Stamp) -> PlainDetails {
        PlainDetails {
            method: req.method().clone(),
            target: Target::of(req.uri()),
            peer: req.peer_addr(),
            start,
        }
    }

    /// The state of a plain request, once it is known that no `Track` claimed it; `admitted`
    /// when the `limits.max_in_flight` of the route its path matched admitted it (then it is
    /// counted there already).
    pub(crate) fn plain(
        details: PlainDetails,
        admitted: Option<(Active, &'static DynamicRoute)>,
    ) -> Self {
        let start = details.start;
        let (active, route) = match admitted {
            Some((active, route)) => (Some(active), TaskRoute::Admitted(route)),
            None => (None, TaskRoute::Plain(None)),
        };
        Self {
            source: Some(Source::Plain(Box::new(details))),
            route,
            extra: ExtraSlot::default(),
            uncounted_plain: active.is_none(),
            active,
            start,
        }
    }

    /// A cancellation, a timeout or a stack request since the last poll (no cancellation or
    /// stack request before registration).
    #[inline(always)]
    pub(crate) fn signal(&mut self, cx: &mut Context<'_>) -> Signal {
        self.extra.signal(cx)
    }

    /// Registers the task, if not yet: called once the request has to wait, so a request
    /// answered within its first poll costs no registration at all.
    #[inline]
    pub(crate) fn register(&mut self, cx: &Context<'_>) {
        if self.handle().is_none() {
            let kind = match &self.source {
                Some(Source::Plain(details)) => details.kind(),
                Some(Source::Kind(kind)) => (**kind).clone(),
                None => return,
            };
            let route = std::mem::replace(&mut self.route, TaskRoute::None);
            let handle = TaskHandle::register_started(kind, route, cx.waker(), self.start);
            self.extra.set_handle(handle);
        }
    }

    /// The task handle, once registered.
    pub(crate) fn handle(&self) -> Option<&TaskHandle> {
        self.extra.handle()
    }

    /// The app answered with `status`: records the latency, and the outcome for later.
    pub(crate) fn responded(&mut self, status: StatusCode) {
        if let Some(active) = &mut self.active {
            active
                .stats
                .record_micros(self.start.elapsed_nanos() / 1000);
            active.set_outcome(Outcome::Status(status.as_u16()));
        }
    }

    /// Counts a plain request on its route, once actix has said which it is.
    pub(crate) fn count_on(&mut self, stats: &'static RouteStats) {
        self.uncounted_plain = false;
        if self.active.is_none() {
            self.active = Some(Active::begin(stats));
        }
    }

    /// The statistics of the route this plain request's path matches, or the unmatched
    /// bucket.
    pub(crate) fn stats_by_path(&self) -> &'static RouteStats {
        self.resolve_plain()
            .map_or(underscore_core::registry().unmatched(), |route| {
                &route.stats
            })
    }

    /// Counts a plain request that ends before actix said which route it was on.
    pub(crate) fn count_by_path(&mut self) {
        let stats = self.stats_by_path();
        self.count_on(stats);
    }

    /// A `Track` claimed this request after all: it counts it, so this state goes quietly.
    pub(crate) fn disown(mut self) {
        self.uncounted_plain = false;
        // Admitted by the limit of the plain route its path matched, yet served by another:
        // the admission is taken back, uncounted.
        if let Some(active) = self.active.take() {
            active.stats.abandon();
            std::mem::forget(active);
        }
    }

    /// The request was ended by a cancellation.
    pub(crate) fn cancelled(&mut self, reason: CancelReason) {
        if let Some(active) = &mut self.active {
            active.set_outcome(cancelled_outcome(reason));
        }
    }

    /// Records the route of a plain request, once actix has routed it.
    pub(crate) fn set_route(&mut self, route: &'static DynamicRoute) {
        match self.handle() {
            Some(handle) => handle.set_route(route),
            None if matches!(self.route, TaskRoute::Admitted(_)) => {}
            None => self.route = TaskRoute::Plain(Some(route)),
        }
    }

    /// A timed poll of a plain request begins (poll timing is on): its worker shows it, with
    /// the plain route the request is known to be on, else the one its path matches (`None`:
    /// no route, a 404 to be).
    #[cold]
    #[inline(never)]
    pub(crate) fn begin_poll(&self) -> Option<(Timed, Option<&'static DynamicRoute>)> {
        let worker = underscore_core::workers::current()?;
        let route = match self.route {
            TaskRoute::Admitted(route) | TaskRoute::Plain(Some(route)) => Some(route),
            _ => self.resolve_plain(),
        };
        let task = self.handle().map_or(0, TaskHandle::number);
        let address = route.map_or(0, |r| std::ptr::from_ref(r) as usize);
        let poll = worker.begin_poll(address, task);
        Some((Timed { worker, poll }, route))
    }

    /// The timed poll of a plain request ended: counted for its worker, route (as
    /// [`InFlight::begin_poll`] found it) and task; a blocking poll is logged, once per task.
    #[cold]
    #[inline(never)]
    pub(crate) fn end_poll(&self, timed: Timed, route: Option<&'static DynamicRoute>) {
        timed.finish(
            route.map(|r| &r.stats),
            || route.map_or_else(|| "-".to_owned(), |r| r.id.clone()),
            self.handle(),
        );
    }

    /// The plain request was answered with `status` by `route`: logs it in the slow log if it
    /// crossed one of the route's thresholds (one load when the route has none).
    #[inline]
    pub(crate) fn judge_slow(&self, route: &'static DynamicRoute, status: StatusCode) {
        let slow = route.settings.slow_nanos();
        if slow != u64::MAX {
            self.log_slow(route, status, slow);
        }
    }

    #[cold]
    #[inline(never)]
    fn log_slow(&self, route: &'static DynamicRoute, status: StatusCode, slow: u64) {
        let nanos = self.start.elapsed_nanos();
        if nanos < slow {
            return;
        }
        let Some(thresholds) = route.settings.slowlog() else {
            return;
        };
        let took = std::time::Duration::from_nanos(nanos);
        let Some(level) = thresholds.level_of(took) else {
            return;
        };
        let (method, path) = match &self.source {
            Some(Source::Plain(details)) => {
                (details.method.to_string(), details.target.path().to_owned())
            }
            Some(Source::Kind(kind)) => match &**kind {
                TaskKind::Request { method, uri, .. } => {
                    (method.to_string(), uri.path().to_owned())
                }
                TaskKind::Background { .. } | TaskKind::Underscore { .. } => return,
            },
            None => return,
        };
        underscore_core::slowlog::record(underscore_core::slowlog::Entry {
            seq: 0,
            time_millis: 0,
            level,
            route: route.id.clone(),
            task: self.handle().map(TaskHandle::id),
            method,
            path,
            status: Some(status.as_u16()),
            took,
            // Not read for a plain request (see `InFlight::before_routing`).
            opaque_id: None,
            report: None,
            stack: None,
        });
    }

    /// The plain route this request's path matches, as actix's `match_pattern` would say
    /// before routing.
    pub(crate) fn resolve_plain(&self) -> Option<&'static DynamicRoute> {
        match &self.source {
            Some(Source::Plain(details)) => underscore_core::registry()
                .resolve_plain(details.method.as_str(), details.target.path()),
            _ => None,
        }
    }
}

pin_project! {
    /// The body of a tracked response that is streamed, or whose request waited: the app's
    /// body, which keeps its request in flight (listed, counted as active, cancellable) until
    /// it has been sent. A cancellation while it streams ends the stream with an error, which
    /// makes actix close the connection: a response already begun cannot turn into a 503.
    pub(crate) struct TrackBody<B> {
        #[pin]
        body: B,
        inflight: Option<Box<InFlight>>,
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
        let inflight = this.inflight;
        if let Some(state) = inflight.as_mut() {
            if let Signal::Cancelled(reason) = state.signal(cx) {
                state.cancelled(reason);
                *inflight = None;
                return Poll::Ready(Some(Err(cut_short(reason).into())));
            }
        }
        let next = this.body.poll_next(cx);
        match &next {
            Poll::Pending => {
                if let Some(state) = inflight.as_mut() {
                    state.register(cx);
                }
            }
            Poll::Ready(None | Some(Err(_))) => *inflight = None,
            Poll::Ready(Some(Ok(_))) => {}
        }
        next.map(|item| item.map(|res| res.map_err(Into::into)))
    }

    fn try_into_bytes(self) -> Result<Bytes, Self> {
        // A body actix can send in one piece: the request ends as this returns.
        let TrackBody { body, inflight } = self;
        body.try_into_bytes()
            .map_err(|body| TrackBody { body, inflight })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // A plain request dropped before it ended (its client went away while actix was
        // shutting down, say): it still counts, once, as dropped.
        if self.uncounted_plain {
            self.count_by_path();
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::Uri;

    use super::{Target, Tracked};

    #[test]
    fn a_waiting_request_boxes_40_bytes() {
        // Its task handle, and room for a timer and early details, boxed apart as fewer
        // requests need them: with the slot its task takes in the registry (128 bytes,
        // asserted in `underscore_core::tasks`), what a waiting request costs beyond
        // `Tracked`. A 40-byte allocation takes 48 bytes of the heap (glibc's malloc).
        assert_eq!(std::mem::size_of::<super::Extra>(), 40);
    }

    #[test]
    fn every_tracked_request_carries_40_bytes() {
        // The request's clone, its route, its start, the boxed extras, its outcome and two
        // flags: past 128 bytes, actix's resource moves its future with a `memcpy` call.
        assert_eq!(std::mem::size_of::<Tracked>(), 40);
    }

    #[test]
    fn an_origin_form_target_keeps_its_path_and_query() {
        let uri: Uri = "/items/7?verbose=1".parse().unwrap();
        let target = Target::of(&uri);
        assert!(matches!(target, Target::Path(_)));
        assert_eq!(target.path(), "/items/7");
        assert_eq!(target.to_uri(), uri);
    }

    #[test]
    fn an_absolute_form_target_keeps_its_scheme_and_authority() {
        let uri: Uri = "http://example.com:8080/items?x=1".parse().unwrap();
        let target = Target::of(&uri);
        assert!(matches!(target, Target::Uri(_)));
        assert_eq!(target.path(), "/items");
        assert_eq!(target.to_uri(), uri);
    }

    #[test]
    fn a_long_target_is_kept_whole() {
        let long = format!("/{}?q={}", "a".repeat(300), "b".repeat(300));
        let uri: Uri = long.parse().unwrap();
        let target = Target::of(&uri);
        assert_eq!(target.path().len(), 301);
        assert_eq!(target.to_uri().to_string(), long);
    }
}
