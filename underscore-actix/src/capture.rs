//! `Capture`: the innermost resource middleware of an annotated route. It hands
//! [`Track`](crate::Track) (the outermost) a clone of the request, taken once the user's own
//! resource middleware are done with it.
//!
//! `Track` needs a clone of the request to answer an interrupted or timed-out request with a
//! real response, and to list a waiting one in `_tasks`. It may not take that clone as it
//! receives the request: a middleware of the user's between the two (the macro puts `Track`
//! outside every `wrap =`) may still edit the request (`headers_mut`, `match_info_mut`), and
//! actix then needs the only reference to it (`Rc::get_mut(..).unwrap()`), so a clone held
//! then would panic on every request. `Capture` runs after them all, just before the handler's
//! extractors, where nothing edits the request any more.
//!
//! The two meet through a thread-local, the way `Observe` and `Track` do (see `claim`): `Track`
//! raises it around its call to the inner service, and around each poll until it has a clone;
//! `Capture`'s `call` runs within one of them (synchronously, or in the poll where a deferring
//! middleware calls on). No allocation, no lookup. A `Capture` whose `Track` is not listening
//! (a middleware that spawned the call onto another task) takes no clone: that request is
//! answered without one (see `TrackFuture::cancel`).

use std::cell::Cell;
use std::future::{ready, Ready};

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::{Error, HttpRequest};

/// What the thread-local holds.
#[derive(Default)]
enum Slot {
    /// No `Track` listens.
    #[default]
    Idle,
    /// A `Track` is calling or polling its inner service and has no clone yet.
    Listening,
    /// The clone `Capture` took, for the `Track` listening.
    Captured(HttpRequest),
}

thread_local! {
    static SLOT: Cell<Slot> = const { Cell::new(Slot::Idle) };
}

/// Runs `call` (the inner service's `call`, or a poll of its future) listening for a
/// `Capture`: returns its result and the request clone, if one was taken meanwhile.
#[inline(always)]
pub(crate) fn listen<T>(call: impl FnOnce() -> T) -> (T, Option<HttpRequest>) {
    let outer = SLOT.replace(Slot::Listening);
    let out = call();
    match SLOT.replace(outer) {
        Slot::Captured(req) => (out, Some(req)),
        Slot::Idle | Slot::Listening => (out, None),
    }
}

/// The innermost middleware of an annotated route; put there by `#[underscore_route]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Capture;

impl<S, B> Transform<S, ServiceRequest> for Capture
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = CaptureMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CaptureMiddleware { service }))
    }
}

/// The [`Service`] of [`Capture`].
#[derive(Debug)]
pub struct CaptureMiddleware<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for CaptureMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = S::Future;

    forward_ready!(service);

    #[inline]
    fn call(&self, req: ServiceRequest) -> Self::Future {
        SLOT.with(|slot| match slot.replace(Slot::Idle) {
            // Safe now: the user's middleware are done editing, and the handler's service
            // only reads the request.
            Slot::Listening => slot.set(Slot::Captured(req.request().clone())),
            other => slot.set(other),
        });
        self.service.call(req)
    }
}
