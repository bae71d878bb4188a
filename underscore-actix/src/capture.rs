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
//! The two meet through thread-locals, the way `Observe` and `Track` do (see `claim`): `Track`
//! raises a flag around its call to the inner service, and around each poll until it has the
//! clone; `Capture`'s `call` runs within one of them (synchronously, or in the poll where a
//! middleware that deferred its call calls on) and leaves the clone beside the flag. No
//! allocation, no lookup. A `Capture` called while its `Track` does not listen (a middleware
//! that spawned the call onto a task of its own) leaves nothing: that request is answered
//! without a clone (see `TrackFuture::cancel`).

use std::cell::Cell;
use std::future::{ready, Ready};
use std::mem::ManuallyDrop;

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::{Error, HttpRequest};

const IDLE: u8 = 0;
const LISTENING: u8 = 1;

thread_local! {
    /// Whether a `Track` listens (and no `Capture` has answered it yet).
    static STATE: Cell<u8> = const { Cell::new(IDLE) };
    /// The clone handed over. `ManuallyDrop`, so that the thread-local has no destructor to
    /// check at every access (which the request path would pay): it is emptied as soon as it
    /// is filled, within the same call or poll, so nothing is left in it to drop.
    static HANDED_OVER: Cell<ManuallyDrop<Option<HttpRequest>>> =
        const { Cell::new(ManuallyDrop::new(None)) };
}

/// Starts listening for a `Capture`, around the inner service's `call` or a poll of its
/// future; [`stop`] ends it. (Two calls, not one taking a closure: the response passed through
/// a tuple was copied twice more, with `memcpy`.)
#[inline(always)]
pub(crate) fn listen() -> Listening {
    Listening(STATE.replace(LISTENING))
}

/// What [`listen`] found, to put back.
#[must_use]
pub(crate) struct Listening(u8);

/// Stops listening: the request clone, if one was handed over meanwhile.
#[inline(always)]
pub(crate) fn stop(listening: Listening) -> Option<HttpRequest> {
    STATE.set(listening.0);
    ManuallyDrop::into_inner(HANDED_OVER.replace(ManuallyDrop::new(None)))
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
        if STATE.replace(IDLE) == LISTENING {
            // Safe now: the user's middleware are done editing, and the handler's service
            // only reads the request. (The slot is empty, as `stop` empties it: nothing is
            // overwritten undropped.)
            HANDED_OVER.set(ManuallyDrop::new(Some(req.request().clone())));
        }
        self.service.call(req)
    }
}
