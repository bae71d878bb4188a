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
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use backtrace::BacktraceFrame;
    use tokio::runtime::dump::{trace_with, Root, TraceMeta};
    use underscore_core::tasks::{tasks, TaskHandle};

    /// A request future that tokio can trace.
    pub(crate) type Traced<F> = Root<F>;

    /// Makes `fut` a trace root.
    pub(crate) fn root<F: Future>(fut: F) -> Traced<F> {
        tokio::runtime::dump::Trace::root(fut)
    }

    /// This build can capture stacks.
    pub(crate) fn declare_support() {
        tasks().enable_stacks();
    }

    /// Polls `fut` in tracing mode, and hands the stack it captured to everyone waiting for
    /// it (through `handle`), unresolved.
    pub(crate) fn capture_task<F: Future>(
        fut: Pin<&mut Traced<F>>,
        cx: &mut Context<'_>,
        handle: &TaskHandle,
    ) -> Poll<F::Output> {
        // One backtrace per tokio await point reached. Not `Trace::capture`: it walks the
        // stack with `backtrace::trace`, under the `backtrace` crate's process-wide lock,
        // which resolving symbols also holds, frame by frame (the first time, for as long as
        // the binary's debug info takes to load: a second or more). A capture then stalled
        // its worker behind another request's stack being rendered, and came too late for
        // its report (tokio-rs/tokio#7975).
        let mut backtraces: Vec<Vec<BacktraceFrame>> = Vec::new();
        let res = trace_with(|| fut.poll(cx), |meta| backtraces.push(walk(meta)));
        // Shared by the askers waiting (each renders its own copy).
        let backtraces: Arc<[Vec<BacktraceFrame>]> = backtraces.into();
        handle.send_stack(|| {
            let backtraces = Arc::clone(&backtraces);
            Box::new(move || render(&backtraces))
        });
        if res.is_pending() {
            // In tracing mode tokio's leaf futures return without registering a wake-up:
            // poll again, for real.
            cx.waker().wake_by_ref();
        }
        res
    }

    /// The frames between the tokio leaf being polled and the trace root, innermost first
    /// (what tokio's own `Trace::capture` keeps), unresolved.
    fn walk(meta: &TraceMeta) -> Vec<BacktraceFrame> {
        let mut frames = Vec::new();
        let Some(root) = meta.root_addr else {
            return frames;
        };
        let mut above_leaf = false;
        let mut keep = |frame: &backtrace::Frame| {
            let below_root = !std::ptr::eq(frame.symbol_address(), root);
            if above_leaf && below_root {
                frames.push(frame.clone().into());
            }
            if std::ptr::eq(frame.symbol_address(), meta.trace_leaf_addr) {
                above_leaf = true;
            }
            below_root
        };
        // SAFETY: `trace_unsynchronized` is `trace` without the `backtrace` crate's global
        // lock, which serialises dbghelp on Windows and guards the symbol cache that
        // resolving fills. This module is built for Linux only, where walking the stack is
        // libgcc's `_Unwind_Backtrace` (and `_Unwind_FindEnclosingFunction` for
        // `symbol_address`): thread-safe, and touching no state of the crate's, as std's
        // own backtraces rely on (they walk with this function under std's lock, not the
        // crate's). The callback only reads the frame and pushes to a local vector.
        #[allow(unsafe_code)]
        unsafe {
            backtrace::trace_unsynchronized(&mut keep);
        }
        frames
    }

    /// One line per frame, innermost first, one block per await point in progress. Resolves
    /// the symbols (under the `backtrace` crate's lock), off the worker.
    fn render(backtraces: &[Vec<BacktraceFrame>]) -> String {
        if backtraces.is_empty() {
            return "(no tokio await point reached: the task is waiting on something tokio \
                    does not trace)\n"
                .to_owned();
        }
        let count = backtraces.len();
        let mut out = String::new();
        for (i, frames) in backtraces.iter().enumerate() {
            if count > 1 {
                let _ = writeln!(out, "await point {} of {count}:", i + 1);
            }
            let mut backtrace = backtrace::Backtrace::from(frames.clone());
            backtrace.resolve();
            for frame in backtrace.frames() {
                for symbol in frame.symbols() {
                    let name = symbol
                        .name()
                        .map_or_else(|| "<unknown>".to_owned(), |name| name.to_string());
                    let name = strip_hash(&name);
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
        handle
            .send_stack(|| Box::new(|| "stack capture is not enabled in this build\n".to_owned()));
        fut.poll(cx)
    }
}
