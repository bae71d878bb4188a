//! `print_stack`: capturing where one request's future is waiting.

use std::pin::Pin;
use std::task::Context;

use crate::inflight::InFlight;

/// Answers a stack request of this task. Without the `taskdump` feature there is nothing to
/// capture (and the admin API answers 501 before asking): say so rather than hang the caller.
pub(crate) fn capture<F>(_fut: Pin<&mut F>, _cx: &mut Context<'_>, inflight: &InFlight) {
    if let Some(handle) = inflight.handle() {
        handle.send_stack(Box::new(|| {
            "stack capture is not enabled in this build".to_owned()
        }));
    }
}

/// Tells the registry whether this build can capture stacks.
pub(crate) fn declare_support() {}
