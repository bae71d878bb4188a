//! App workers and the polls they run: what `GET /_cat/workers` shows, and blocking polls.
//!
//! With poll timing on ([`set_poll_timing`], off by default: it costs two clock readings and a
//! few atomic operations a poll, more than the overhead budget allows), each poll of a tracked
//! request's future is timed on the request clock ([`Stamp`]). Its worker's [`Worker`] then
//! says, while the poll runs, which route and task it is polling and since when; and
//! afterwards, how busy it was (by a sampler thread, every second) and its longest poll in the
//! last minute. A poll longer than `blocking.threshold` ([`set_blocking_threshold`], 10 ms by
//! default) counts as a blocking poll of its route and task.
//!
//! Everything a worker writes here is its own (one writer per [`Worker`]); the admin APIs,
//! on their own thread, only read. So the admin server answers `_cat/workers` while every app
//! worker is blocked in a poll, which is when it matters.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, OnceLock, RwLock};
use std::time::Duration;

use crate::clock::Stamp;

static POLL_TIMING: AtomicBool = AtomicBool::new(false);

/// The default of `blocking.threshold`.
pub const DEFAULT_BLOCKING_THRESHOLD: Duration = Duration::from_millis(10);

static BLOCKING_NANOS: AtomicU64 = AtomicU64::new(10_000_000);

/// Turns poll timing on or off for the whole process.
pub fn set_poll_timing(on: bool) {
    // Relaxed: a poll that races with the change is timed or not; nothing else hangs on it.
    POLL_TIMING.store(on, Ordering::Relaxed);
    for id in crate::registry().ids() {
        if let Some(settings) = crate::registry().settings_slot(&id) {
            settings.set_watched(on);
        }
    }
    if on {
        start_sampler();
    }
}

/// Whether poll timing is on: one relaxed load a poll.
#[inline(always)]
pub fn poll_timing() -> bool {
    POLL_TIMING.load(Ordering::Relaxed)
}

/// Sets `blocking.threshold`: a poll longer than this is a blocking poll.
pub fn set_blocking_threshold(threshold: Duration) {
    let nanos = threshold.as_nanos().min(u128::from(u64::MAX)) as u64;
    BLOCKING_NANOS.store(nanos, Ordering::Relaxed);
}

/// `blocking.threshold`.
pub fn blocking_threshold() -> Duration {
    Duration::from_nanos(BLOCKING_NANOS.load(Ordering::Relaxed))
}

/// How many 10-second buckets of longest polls a worker keeps (one minute).
const BUCKETS: usize = 6;
const BUCKET_SECS: u64 = 10;
/// Busy samples kept (one a second): enough for the 15-second ratio.
const SAMPLES: usize = 16;

/// One app worker thread.
#[derive(Debug)]
pub struct Worker {
    /// Its number, from 0, in the order workers were built.
    pub index: usize,
    /// Its thread's name.
    pub thread: String,
    /// The task shard of its thread (its registered tasks).
    shard: AtomicUsize,
    /// When the poll running now began ([`Stamp::raw`]; 0: no poll is running).
    polling_since: AtomicU64,
    /// The route being polled (a `&'static RouteMeta` as an address; 0: none).
    polling_route: AtomicUsize,
    /// The task being polled (its number; 0: not registered as a task yet).
    polling_task: AtomicU64,
    /// Time spent in polls, in nanoseconds.
    busy_nanos: AtomicU64,
    polls: AtomicU64,
    blocking_polls: AtomicU64,
    /// The longest poll of each 10-second bucket, and the bucket it is for.
    longest: [(AtomicU64, AtomicU64); BUCKETS],
    /// `(seconds since start, busy_nanos)`, one a second, written by the sampler.
    samples: Mutex<VecDeque<(f64, u64)>>,
}

static WORKERS: RwLock<Vec<&'static Worker>> = RwLock::new(Vec::new());

thread_local! {
    static CURRENT: std::cell::Cell<Option<&'static Worker>> = const { std::cell::Cell::new(None) };
}

/// When the process started, on the request clock: the origin of the buckets.
static ORIGIN: LazyLock<Stamp> = LazyLock::new(Stamp::now);

/// Registers the calling thread as an app worker, once (middleware call this as they are
/// built on each worker).
pub fn register_current() {
    if CURRENT.with(std::cell::Cell::get).is_some() {
        return;
    }
    LazyLock::force(&ORIGIN);
    let mut workers = WORKERS.write().unwrap_or_else(|e| e.into_inner());
    let worker: &'static Worker = Box::leak(Box::new(Worker {
        index: workers.len(),
        thread: std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned(),
        shard: AtomicUsize::new(crate::tasks::current_shard()),
        polling_since: AtomicU64::new(0),
        polling_route: AtomicUsize::new(0),
        polling_task: AtomicU64::new(0),
        busy_nanos: AtomicU64::new(0),
        polls: AtomicU64::new(0),
        blocking_polls: AtomicU64::new(0),
        longest: std::array::from_fn(|_| (AtomicU64::new(0), AtomicU64::new(u64::MAX))),
        samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
    }));
    workers.push(worker);
    CURRENT.with(|c| c.set(Some(worker)));
}

/// The calling thread's worker, if it is one.
#[inline]
pub fn current() -> Option<&'static Worker> {
    CURRENT.with(std::cell::Cell::get)
}

/// Every app worker, in order.
pub fn all() -> Vec<&'static Worker> {
    WORKERS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A poll begun on a worker: hand it to [`Worker::end_poll`].
#[derive(Debug, Clone, Copy)]
pub struct Poll {
    start: Stamp,
}

impl Worker {
    /// A poll of a request of the route at address `route` (of its `&'static RouteMeta`, or
    /// of a plain route's `&'static DynamicRoute`; 0: not known; see
    /// [`Registry::route_id_at`](crate::Registry::route_id_at)), task `task` (0 if not
    /// registered), begins now.
    #[inline]
    pub fn begin_poll(&self, route: usize, task: u64) -> Poll {
        let start = Stamp::now();
        // Relaxed: read by the admin APIs for display; `polling_since` last, as the reader
        // checks it first (a reader may pair a new route with an old stamp for one read).
        self.polling_route.store(route, Ordering::Relaxed);
        self.polling_task.store(task, Ordering::Relaxed);
        self.polling_since
            .store(start.raw().max(1), Ordering::Release);
        Poll { start }
    }

    /// The poll `poll` ended: its time is counted, and returned in nanoseconds.
    #[inline]
    pub fn end_poll(&self, poll: Poll) -> u64 {
        let end = Stamp::now();
        self.polling_since.store(0, Ordering::Release);
        let nanos = poll.start.nanos_until(end);
        // One writer (this worker): plain loads and stores, no read-modify-write.
        let busy = self.busy_nanos.load(Ordering::Relaxed);
        self.busy_nanos
            .store(busy.wrapping_add(nanos), Ordering::Relaxed);
        self.polls
            .store(self.polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        let bucket = ORIGIN.nanos_until(end) / 1_000_000_000 / BUCKET_SECS;
        let (max, of) = &self.longest[(bucket % BUCKETS as u64) as usize];
        if of.load(Ordering::Relaxed) != bucket {
            max.store(nanos, Ordering::Relaxed);
            of.store(bucket, Ordering::Relaxed);
        } else if nanos > max.load(Ordering::Relaxed) {
            max.store(nanos, Ordering::Relaxed);
        }
        if nanos > BLOCKING_NANOS.load(Ordering::Relaxed) {
            self.blocking_polls.store(
                self.blocking_polls.load(Ordering::Relaxed) + 1,
                Ordering::Relaxed,
            );
        }
        nanos
    }

    /// The poll `poll` is given up without being counted: a poll of a plain request in which a
    /// `Track` claimed it, and timed it itself (nested).
    #[inline]
    pub fn abandon_poll(&self, poll: Poll) {
        let _ = poll;
        self.polling_since.store(0, Ordering::Release);
    }

    /// What the worker is polling now: its route's address, its task number (0: not
    /// registered yet) and for how long; `None` between polls.
    pub fn polling(&self) -> Option<(usize, u64, Duration)> {
        let since = self.polling_since.load(Ordering::Acquire);
        if since == 0 {
            return None;
        }
        let route = self.polling_route.load(Ordering::Relaxed);
        let task = self.polling_task.load(Ordering::Relaxed);
        let running = Stamp::from_raw(since).until(Stamp::now());
        Some((route, task, running))
    }

    /// Time spent in polls so far, the poll running now included.
    fn busy_now(&self) -> u64 {
        let busy = self.busy_nanos.load(Ordering::Relaxed);
        let since = self.polling_since.load(Ordering::Acquire);
        if since == 0 {
            busy
        } else {
            busy + Stamp::from_raw(since).nanos_until(Stamp::now())
        }
    }

    /// How many polls were timed.
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// How many of them were blocking polls.
    pub fn blocking_polls(&self) -> u64 {
        self.blocking_polls.load(Ordering::Relaxed)
    }

    /// The task shard of the worker's thread.
    pub fn shard(&self) -> usize {
        self.shard.load(Ordering::Relaxed)
    }

    /// The share of time spent in polls over the last 1, 5 and 15 seconds (over as much of
    /// it as was sampled; `None` before the first sample).
    pub fn busy_ratios(&self) -> [Option<f64>; 3] {
        let now = ORIGIN.until(Stamp::now()).as_secs_f64();
        let busy = self.busy_now();
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        [1.0, 5.0, 15.0].map(|window| {
            // The oldest sample within the window (the sampler writes one a second).
            let (at, then) = samples
                .iter()
                .find(|(at, _)| now - at <= window + 0.5)
                .copied()?;
            let span = now - at;
            (span > 0.05).then(|| (busy.saturating_sub(then) as f64 / 1e9 / span).min(1.0))
        })
    }

    /// The longest poll in the last minute, the poll running now included.
    pub fn longest_poll(&self) -> Duration {
        let bucket = ORIGIN.until(Stamp::now()).as_secs() / BUCKET_SECS;
        let ended = self
            .longest
            .iter()
            .filter(|(_, of)| {
                let of = of.load(Ordering::Relaxed);
                of != u64::MAX && of + (BUCKETS as u64) > bucket
            })
            .map(|(max, _)| max.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let running = self.polling().map_or(0, |(_, _, d)| d.as_nanos() as u64);
        Duration::from_nanos(ended.max(running))
    }
}

static SAMPLER: OnceLock<()> = OnceLock::new();

/// Starts the thread that samples each worker's busy time once a second.
fn start_sampler() {
    SAMPLER.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("underscore-workers".into())
            .spawn(|| loop {
                sample();
                std::thread::sleep(Duration::from_secs(1));
            });
    });
}

fn sample() {
    let now = ORIGIN.until(Stamp::now()).as_secs_f64();
    for worker in all() {
        let busy = worker.busy_now();
        let mut samples = worker.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back((now, busy));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_is_seen_while_it_runs_and_counted_after() {
        register_current();
        let worker = current().unwrap();
        assert!(all().iter().any(|w| std::ptr::eq(*w, worker)));
        assert!(worker.polling().is_none());
        let poll = worker.begin_poll(7, 42);
        let (route, task, _) = worker.polling().unwrap();
        assert_eq!(route, 7);
        assert_eq!(task, 42);
        std::thread::sleep(Duration::from_millis(20));
        let nanos = worker.end_poll(poll);
        assert!(nanos >= 20_000_000);
        assert!(worker.polling().is_none());
        assert_eq!(worker.polls(), 1);
        assert_eq!(
            worker.blocking_polls(),
            1,
            "20 ms is past the default 10 ms"
        );
        assert!(worker.longest_poll() >= Duration::from_millis(20));
        // Registering again is a no-op.
        register_current();
        assert!(std::ptr::eq(current().unwrap(), worker));
    }
}
