//! Which middleware claimed a request: the resource-level [`Track`](crate::Track) of an
//! annotated route, the admin APIs, or nobody (a plain actix-web route, or no route at all).
//!
//! actix routes a request *inside* the App-level service: [`Observe`](crate::Observe) cannot
//! see the route before calling it, and may not keep a clone of the request across the call
//! (routing needs the only reference). But routing, and the `call` of the matched resource's
//! middleware, run synchronously within `Observe`'s call to the inner service. So `Observe`
//! raises a thread-local flag around that call, and `Track` answers through it: no allocation,
//! no lookup. Where a middleware between them defers the call (an `async` one awaiting before
//! calling on), `Track` leaves a marker in the request's extensions instead, which `Observe`
//! reads once the response is back.

use std::cell::Cell;
use std::future::{ready, Ready};
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::{Error, HttpMessage};
use underscore_core::clock::Stamp;

const IDLE: u8 = 0;
const OBSERVING: u8 = 1;
const CLAIMED: u8 = 2;

thread_local! {
    static STATE: Cell<u8> = const { Cell::new(IDLE) };
    /// When `Observe` received the request it is calling the app for: `Track` reuses it
    /// rather than read the clock again.
    static START: Cell<Option<Stamp>> = const { Cell::new(None) };
}

/// The start time `Observe` took for the request being routed, if any.
#[inline]
pub(crate) fn observed_start() -> Option<Stamp> {
    START.with(Cell::get)
}

/// Set once any `Observe` is built: until then `Track` has nobody to tell.
pub(crate) static OBSERVE_INSTALLED: AtomicBool = AtomicBool::new(false);

/// The marker left in the request's extensions when the claim could not be made synchronously.
#[derive(Clone, Copy)]
pub(crate) struct Claimed;

/// Claims `req` for a middleware that accounts for it itself.
#[inline]
pub(crate) fn claim(req: &ServiceRequest) {
    STATE.with(|state| {
        if state.get() == OBSERVING {
            state.set(CLAIMED);
        // Relaxed: a hint; an `Observe` built concurrently with this very request at worst
        // counts it once more as a plain route.
        } else if OBSERVE_INSTALLED.load(Ordering::Relaxed) {
            req.extensions_mut().insert(Claimed);
        }
    });
}

/// Runs `call` (the inner service's `call`) for a request received at `start`, returning its
/// result and whether it claimed the request synchronously.
#[inline]
pub(crate) fn observe<T>(start: Stamp, call: impl FnOnce() -> T) -> (T, bool) {
    let outer_start = START.replace(Some(start));
    let out = observe_poll(call);
    START.set(outer_start);
    out
}

/// Polls a plain request's future (`poll`) with the flag raised, so that a `Track` reached
/// only now (behind a middleware that deferred the call) claims it here: returns the poll's
/// result and whether it did.
#[inline]
pub(crate) fn observe_poll<T>(poll: impl FnOnce() -> T) -> (T, bool) {
    STATE.with(|state| {
        let outer = state.replace(OBSERVING);
        let out = poll();
        let claimed = state.get() == CLAIMED;
        // An enclosing `Observe` must learn of the claim too.
        state.set(if claimed && outer == OBSERVING {
            CLAIMED
        } else {
            outer
        });
        (out, claimed)
    })
}

/// Whether the claim marker was left in the extensions of the request of `res`.
pub(crate) fn claimed_late<B>(res: &ServiceResponse<B>) -> bool {
    res.request().extensions().contains::<Claimed>()
}

/// Marks the admin APIs' own requests, so they are never counted as application routes.
pub(crate) struct AdminClaim;

impl<S, B> Transform<S, ServiceRequest> for AdminClaim
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = AdminClaimMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AdminClaimMiddleware { service }))
    }
}

pub(crate) struct AdminClaimMiddleware<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for AdminClaimMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = S::Future;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        claim(&req);
        self.service.call(req)
    }
}
