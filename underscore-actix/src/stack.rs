//! `print_stack`: capturing where one request's future is waiting, with tokio's task tracing
//! (`tokio::runtime::dump::Trace`). It needs the `taskdump` feature of this crate and a build
//! with `RUSTFLAGS="--cfg tokio_unstable"` (Linux on x86, x86_64 or aarch64); otherwise request
//! futures are not traced and `print_stack` answers 501 saying how to turn it on.
//!
//! Each request future is wrapped in `Trace::root`, which costs about 1.5 ns per poll. When an
//! operator asks for a stack, the task is woken; its next poll runs inside `Trace::capture`,
//! which records the backtrace of every tokio await point it reaches, and the trace travels
//! back unresolved: symbols are resolved by the admin request, off the worker.

pub(crate) use imp::{capture_task, declare_support, root, Traced};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use underscore_core::tasks::{Signal, TaskHandle};

/// Polls a request's `fut`: in tracing mode when `signal` asks for its stack, sending the
/// trace to whoever asked (a request whose task is not registered has no one asking: it is
/// just polled).
#[inline]
pub(crate) fn poll<F: Future>(
    fut: Pin<&mut Traced<F>>,
    cx: &mut Context<'_>,
    handle: Option<&TaskHandle>,
    signal: Signal,
) -> Poll<F::Output> {
    match (signal, handle) {
        (Signal::Stack, Some(handle)) => capture_task(fut, cx, handle),
        _ => fut.poll(cx),
    }
}

#[cfg(all(
    feature = "taskdump",
    tokio_unstable,
    target_os = "linux",
    any(target_arch = "aarch64", target_arch = "x86", target_arch = "x86_64")
))]
mod imp {
    use std::fmt::Write as _;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::runtime::dump::{Root, Trace};
    use underscore_core::tasks::{tasks, TaskHandle};

    /// A request future that tokio can trace.
    pub(crate) type Traced<F> = Root<F>;

    /// Makes `fut` a trace root.
    pub(crate) fn root<F: Future>(fut: F) -> Traced<F> {
        Trace::root(fut)
    }

    /// This build can capture stacks.
    pub(crate) fn declare_support() {
        tasks().enable_stacks();
    }

    /// [`capture`] for a task with its handle at hand.
    pub(crate) fn capture_task<F: Future>(
        fut: Pin<&mut Traced<F>>,
        cx: &mut Context<'_>,
        handle: &TaskHandle,
    ) -> Poll<F::Output> {
        let (res, trace) = Trace::capture(|| fut.poll(cx));
        handle.send_stack(Box::new(move || render(&trace)));
        if res.is_pending() {
            // In tracing mode tokio's leaf futures return without registering a wake-up:
            // poll again, for real.
            cx.waker().wake_by_ref();
        }
        res
    }

    /// One line per frame, innermost first, one block per await point in progress.
    fn render(trace: &Trace) -> String {
        let backtraces = trace.resolve_backtraces();
        if backtraces.is_empty() {
            return "(no tokio await point reached: the task is waiting on something tokio \
                    does not trace)\n"
                .to_owned();
        }
        let mut out = String::new();
        for (i, backtrace) in backtraces.iter().enumerate() {
            if backtraces.len() > 1 {
                let _ = writeln!(out, "await point {} of {}:", i + 1, backtraces.len());
            }
            for frame in backtrace.frames() {
                for symbol in frame.symbols() {
                    let name = symbol.name_demangled().unwrap_or("<unknown>");
                    let name = strip_hash(name);
                    let _ = match (symbol.filename(), symbol.lineno()) {
                        (Some(file), Some(line)) => writeln!(
                            out,
                            "  at {name} ({}:{line}:{})",
                            file.display(),
                            symbol.colno().unwrap_or(0)
                        ),
                        _ => writeln!(out, "  at {name}"),
                    };
                }
            }
        }
        out
    }

    /// Drops the `::h0123456789abcdef` hash rustc appends to symbol names.
    fn strip_hash(name: &str) -> &str {
        match name.rsplit_once("::h") {
            Some((head, hash))
                if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                head
            }
            _ => name,
        }
    }
}

#[cfg(not(all(
    feature = "taskdump",
    tokio_unstable,
    target_os = "linux",
    any(target_arch = "aarch64", target_arch = "x86", target_arch = "x86_64")
)))]
mod imp {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use underscore_core::tasks::TaskHandle;

    /// Request futures are not traced in this build.
    pub(crate) type Traced<F> = F;

    /// Nothing to wrap.
    pub(crate) fn root<F: Future>(fut: F) -> Traced<F> {
        fut
    }

    /// This build cannot capture stacks: `print_stack` answers 501 (the registry's default).
    pub(crate) fn declare_support() {}

    /// Not reached (the admin API answers 501 first); answers plainly if it ever is.
    pub(crate) fn capture_task<F: Future>(
        fut: Pin<&mut Traced<F>>,
        cx: &mut Context<'_>,
        handle: &TaskHandle,
    ) -> Poll<F::Output> {
        handle.send_stack(Box::new(|| {
            "stack capture is not enabled in this build\n".to_owned()
        }));
        fut.poll(cx)
    }
}
