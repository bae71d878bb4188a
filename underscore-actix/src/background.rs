//! Background tasks the app spawns through underscore: listed in `_tasks` and `_cat/tasks`
//! beside requests (action `background:<name>`), cancellable with `_tasks/{id}/_cancel`, and
//! their stack printable.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use underscore_core::tasks::{Signal, TaskHandle, TaskKind, TaskRoute};

use crate::stack::Traced;

/// Spawns `fut` on the current actix worker (or `System`) as a named background task.
///
/// The task appears in `_tasks` with action `background:<name>` and can be cancelled there:
/// a cancelled task's future is dropped at its next poll, and the handle resolves to `None`.
/// Must be called from within an actix runtime.
///
/// ```no_run
/// # async fn example() {
/// let handle = underscore_actix::spawn_task("cache-refresh", async {
///     // ... long-running work ...
///     42
/// });
/// assert_eq!(handle.await.unwrap(), Some(42));
/// # }
/// ```
pub fn spawn_task<F>(name: &str, fut: F) -> actix_rt::task::JoinHandle<Option<F::Output>>
where
    F: Future + 'static,
    F::Output: 'static,
{
    actix_rt::spawn(Background::new(
        TaskKind::Background {
            name: Arc::from(name),
        },
        fut,
        None,
    ))
}

pin_project! {
    /// A future listed in `_tasks` as a task of `kind` while it runs.
    pub(crate) struct Background<F> {
        #[pin]
        fut: Traced<F>,
        kind: Option<TaskKind>,
        handle: Option<TaskHandle>,
        // Told the task's id once it is registered.
        announce: Option<std::sync::mpsc::SyncSender<String>>,
    }
}

impl<F: Future> Background<F> {
    /// `fut` as a task of `kind`, registered at its first poll (then its id is sent to
    /// `announce`).
    pub(crate) fn new(
        kind: TaskKind,
        fut: F,
        announce: Option<std::sync::mpsc::SyncSender<String>>,
    ) -> Self {
        Self {
            fut: crate::stack::root(fut),
            kind: Some(kind),
            handle: None,
            announce,
        }
    }
}

impl<F: Future> Future for Background<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let handle = this.handle.get_or_insert_with(|| {
            let kind = this.kind.take().expect("registered once");
            let handle = TaskHandle::register(kind, TaskRoute::None, cx.waker());
            if let Some(announce) = this.announce.take() {
                let _ = announce.try_send(handle.id());
            }
            handle
        });
        match handle.poll_signal(cx.waker()) {
            // Dropping the future is the cancellation; the task entry goes with the handle.
            Signal::Cancelled(_) => Poll::Ready(None),
            Signal::Stack => crate::stack::capture_task(this.fut, cx, handle).map(Some),
            Signal::None => this.fut.poll(cx).map(Some),
        }
    }
}
