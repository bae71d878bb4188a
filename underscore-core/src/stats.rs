//! Per-route statistics: request counts by outcome, a latency histogram, and latency means
//! over the last 1, 5 and 15 minutes.
//!
//! Everything is a fixed array of atomics, `const`-constructible so it lives in the route's
//! `static`: recording a request is a handful of `fetch_add`s, with no lock, no allocation and
//! no lookup. Every operation is `Relaxed`: these are statistics, each counter is read on its
//! own, and no other memory is published through them. A reader may see one counter of a
//! request before another (say `total` before its outcome); `total = active + outcomes` holds
//! whenever no request is being recorded. `active` is a counter of its own, exact at every
//! instant, which `limits.max_in_flight` admits against.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// How a request ended. Each request that entered the middleware ends in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response from the app, by status class (1 to 5).
    Status(u16),
    /// Answered by a preempt setting; the app was not called.
    Preempted,
    /// Answered at once because the route had `limits.max_in_flight` requests running; the app
    /// was not called.
    Shed,
    /// Stopped by `limits.timeout`: the app's future was dropped and the client got a 504.
    TimedOut,
    /// Ended by `POST /_routes/{ids}/interrupt`.
    Interrupted,
    /// Ended by `POST /_tasks/{id}/_cancel`.
    Cancelled,
    /// Ended without a response: the app's future was dropped or panicked.
    Dropped,
}

const OUTCOMES: usize = 11;

impl Outcome {
    /// Every outcome, a status class standing for its whole class (`Status(200)` is `2xx`),
    /// in the order the admin APIs list them.
    pub const ALL: [Outcome; OUTCOMES] = [
        Outcome::Status(100),
        Outcome::Status(200),
        Outcome::Status(300),
        Outcome::Status(400),
        Outcome::Status(500),
        Outcome::Preempted,
        Outcome::Shed,
        Outcome::TimedOut,
        Outcome::Interrupted,
        Outcome::Cancelled,
        Outcome::Dropped,
    ];

    /// The outcome's name in `_routes/stats`: `1xx` .. `5xx`, `preempted`, `shed`,
    /// `timed_out`, `interrupted`, `cancelled`, `dropped`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Status(_) => ["1xx", "2xx", "3xx", "4xx", "5xx"][self.index()],
            Outcome::Preempted => "preempted",
            Outcome::Shed => "shed",
            Outcome::TimedOut => "timed_out",
            Outcome::Interrupted => "interrupted",
            Outcome::Cancelled => "cancelled",
            Outcome::Dropped => "dropped",
        }
    }

    #[inline]
    fn index(self) -> usize {
        match self {
            Outcome::Status(status) => (status / 100).clamp(1, 5) as usize - 1,
            Outcome::Preempted => 5,
            Outcome::Shed => 6,
            Outcome::TimedOut => 7,
            Outcome::Interrupted => 8,
            Outcome::Cancelled => 9,
            Outcome::Dropped => 10,
        }
    }

    /// Whether the app answered (a status class), rather than the middleware or nobody.
    pub fn is_status(self) -> bool {
        matches!(self, Outcome::Status(_))
    }
}

/// Latency histogram buckets: 4 linear sub-buckets per power of two of microseconds, from
/// 1 µs to about 4,300 s; the relative error of a percentile is under 25% (12.5% on average).
const SUB: u32 = 2;
const BUCKETS: usize = 128;

/// The rolling windows are computed from samples of the cumulative count and sum, taken every
/// 15 seconds by a background thread (see [`start_sampler`]); 60 samples cover 15 minutes.
/// The request path only adds to the cumulative figures.
const PERIOD_SECS: u64 = 15;
const SAMPLES: usize = 61;

/// Process start, the origin of sampling periods.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The current sampling period.
fn period_now() -> u64 {
    EPOCH.elapsed().as_secs() / PERIOD_SECS
}

/// Statistics of one route.
#[derive(Debug)]
pub struct RouteStats {
    total: AtomicU64,
    /// Requests begun and not ended: exact at every instant, so `limits.max_in_flight` can
    /// admit against it.
    in_flight: AtomicU64,
    outcomes: [AtomicU64; OUTCOMES],
    histogram: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
    max_us: AtomicU64,
    /// Cumulative `(period, count, sum_us)` at the start of each period, written by the
    /// sampler only.
    samples: [[AtomicU64; 3]; SAMPLES],
    /// Timed polls past `blocking.threshold` (see [`workers`](crate::workers)).
    blocking_polls: AtomicU64,
    /// Time spent in timed polls, in nanoseconds.
    busy_nanos: AtomicU64,
}

impl Default for RouteStats {
    fn default() -> Self {
        Self::new()
    }
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const NO_SAMPLE: [AtomicU64; 3] = [AtomicU64::new(u64::MAX), ZERO, ZERO];

impl RouteStats {
    /// All zero.
    pub const fn new() -> Self {
        Self {
            total: ZERO,
            in_flight: ZERO,
            outcomes: [ZERO; OUTCOMES],
            histogram: [ZERO; BUCKETS],
            sum_us: ZERO,
            max_us: ZERO,
            samples: [NO_SAMPLE; SAMPLES],
            blocking_polls: ZERO,
            busy_nanos: ZERO,
        }
    }

    /// Counts a timed poll of `nanos`, a blocking one if `blocking` (poll timing only).
    pub fn record_poll(&self, nanos: u64, blocking: bool) {
        self.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
        if blocking {
            self.blocking_polls.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request entered the middleware and runs.
    #[inline]
    pub fn begin(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request entered the middleware: it runs if fewer than `max` requests of the route
    /// run now (then it is counted as [`RouteStats::begin`] does, and `true` is returned), else
    /// nothing is counted yet. Never admits more than `max` at once, however many workers ask.
    #[inline]
    pub fn try_begin(&self, max: u32) -> bool {
        // Relaxed: the count itself is the only thing decided here; a compare-exchange makes
        // each admission see every admission and end before it, so at most `max` hold a slot.
        let admitted = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < u64::from(max)).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            self.total.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }

    /// Takes back a [`RouteStats::begin`] (or admission) of a request that turned out to be
    /// another route's: it leaves the in-flight count and the total, uncounted. (The total then
    /// steps back by one: only a request admitted by a plain route's limit, then claimed by an
    /// annotated route behind a middleware that deferred routing, does this.)
    pub fn abandon(&self) {
        self.total.fetch_sub(1, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request that [`RouteStats::begin`] counted ended with `outcome`.
    #[inline]
    pub fn end(&self, outcome: Outcome) {
        self.outcomes[outcome.index()].fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request answered at once by the middleware with `outcome` (preempted, shed): counted
    /// in `total` and its outcome, never in flight.
    #[inline]
    pub fn answered(&self, outcome: Outcome) {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.outcomes[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests of the route running now.
    #[inline]
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The app answered a request after `us` microseconds.
    #[inline]
    pub fn record_micros(&self, us: u64) {
        self.histogram[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        // A load first: the maximum rarely changes, and a plain load costs no cache-line write.
        if us > self.max_us.load(Ordering::Relaxed) {
            self.max_us.fetch_max(us, Ordering::Relaxed);
        }
    }

    fn cumulative(&self) -> (u64, u64) {
        // Sum first: a sample may then count a request's latency in `sum` but not yet in the
        // histogram, which skews a window by one sample at most.
        let sum = self.sum_us.load(Ordering::Relaxed);
        let count = self
            .histogram
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        (count, sum)
    }

    /// Records the cumulative figures at the start of `period` (the sampler's job).
    pub fn sample(&self, period: u64) {
        let (count, sum) = self.cumulative();
        let slot = &self.samples[(period % SAMPLES as u64) as usize];
        slot[0].store(period, Ordering::Relaxed);
        slot[1].store(count, Ordering::Relaxed);
        slot[2].store(sum, Ordering::Relaxed);
    }

    /// A consistent-enough copy of every figure.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.snapshot_at(period_now())
    }

    /// A snapshot with the raw latency histogram it was computed from, for exposition
    /// formats with buckets of their own (Prometheus). Read-only, like [`RouteStats::snapshot`].
    pub fn snapshot_with_latencies(&self) -> (StatsSnapshot, Latencies) {
        let (snapshot, latencies) = self.snapshot_parts(period_now(), true);
        (snapshot, latencies.unwrap_or_default())
    }

    fn snapshot_at(&self, now: u64) -> StatsSnapshot {
        self.snapshot_parts(now, false).0
    }

    /// The snapshot, and the histogram it was computed from when `keep_latencies` (only then
    /// is the histogram copied out: `_cat` over thousands of routes does not pay for it).
    fn snapshot_parts(&self, now: u64, keep_latencies: bool) -> (StatsSnapshot, Option<Latencies>) {
        // The outcomes before the total: `total` only grows, and each request adds to it before
        // its outcome, so it is never below the outcomes and never goes back.
        let active = self.in_flight.load(Ordering::Relaxed);
        let outcomes: [u64; OUTCOMES] =
            std::array::from_fn(|i| self.outcomes[i].load(Ordering::Relaxed));
        let ended: u64 = outcomes.iter().sum();
        let total = self.total.load(Ordering::Relaxed).max(ended);
        let histogram: [u64; BUCKETS] =
            std::array::from_fn(|i| self.histogram[i].load(Ordering::Relaxed));
        let (count, sum) = (
            histogram.iter().sum::<u64>(),
            self.sum_us.load(Ordering::Relaxed),
        );
        let window = |minutes: u64| -> Option<f64> {
            // The sample from the start of the period `minutes` ago (minus the current one);
            // the earliest later one if the sampler skipped it; none if the route (or the
            // process) is younger: then everything so far is within the window.
            let first = now.saturating_sub(minutes * 60 / PERIOD_SECS - 1);
            let base = self
                .samples
                .iter()
                .map(|s| {
                    (
                        s[0].load(Ordering::Relaxed),
                        s[1].load(Ordering::Relaxed),
                        s[2].load(Ordering::Relaxed),
                    )
                })
                .filter(|&(p, _, _)| p != u64::MAX && p >= first && p <= now)
                .min_by_key(|&(p, _, _)| p)
                .map_or((0, 0), |(_, c, s)| (c, s));
            let n = count.saturating_sub(base.0);
            (n > 0).then(|| sum.saturating_sub(base.1) as f64 / n as f64 / 1000.0)
        };
        let max = self.max_us.load(Ordering::Relaxed);
        let snapshot = StatsSnapshot {
            total,
            active,
            outcomes,
            avg_ms: [window(1), window(5), window(15)],
            percentiles_ms: [0.5, 0.9, 0.99].map(|q| percentile(&histogram, q, max)),
            max_ms: (count > 0).then(|| max as f64 / 1000.0),
            latency_count: count,
            blocking_polls: self.blocking_polls.load(Ordering::Relaxed),
            busy_nanos: self.busy_nanos.load(Ordering::Relaxed),
        };
        let latencies = keep_latencies.then_some(Latencies {
            counts: histogram,
            sum_us: sum,
        });
        (snapshot, latencies)
    }
}

/// Starts the thread that samples `all()` at the start of every 15-second period, once per
/// process; the rolling windows of stats that are never sampled cover the whole lifetime.
pub fn start_sampler(all: fn() -> Vec<&'static RouteStats>) {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("underscore-stat".to_owned())
            .spawn(move || loop {
                let period = period_now();
                for stats in all() {
                    stats.sample(period);
                }
                let next = EPOCH.elapsed().as_secs_f64() / PERIOD_SECS as f64;
                let wait = (next.floor() + 1.0 - next) * PERIOD_SECS as f64;
                std::thread::sleep(Duration::from_secs_f64(wait.max(0.01)));
            });
        if let Err(err) = spawned {
            tracing::warn!(
                %err,
                "could not start the stats sampler: rolling windows will cover the whole lifetime"
            );
        }
    });
}

/// The bucket of a latency in microseconds.
#[inline]
fn bucket(us: u64) -> usize {
    if us < (1 << SUB) {
        return us as usize;
    }
    let octave = 63 - us.leading_zeros();
    let sub = (us >> (octave - SUB)) & ((1 << SUB) - 1);
    (((octave - SUB + 1) << SUB) as u64 + sub).min(BUCKETS as u64 - 1) as usize
}

/// The smallest latency (µs) in `bucket`.
fn bucket_floor(bucket: usize) -> u64 {
    let b = bucket as u64;
    if b < (1 << SUB) {
        return b;
    }
    let octave = (b >> SUB) + u64::from(SUB) - 1;
    let sub = b & ((1 << SUB) - 1);
    (1 << octave) + (sub << (octave - u64::from(SUB)))
}

/// The `q` quantile in milliseconds: the middle of the bucket it falls in, capped by the max.
fn percentile(histogram: &[u64; BUCKETS], q: f64, max_us: u64) -> Option<f64> {
    let count: u64 = histogram.iter().sum();
    if count == 0 {
        return None;
    }
    let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
    let mut seen = 0;
    for (b, &c) in histogram.iter().enumerate() {
        seen += c;
        if seen >= rank {
            let low = bucket_floor(b);
            let high = if b + 1 < BUCKETS {
                bucket_floor(b + 1)
            } else {
                low
            };
            let mid = (low + high.max(low + 1)) as f64 / 2.0;
            return Some(mid.min(max_us as f64).max(low as f64) / 1000.0);
        }
    }
    Some(max_us as f64 / 1000.0)
}

/// A copy of a route's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSnapshot {
    /// Requests that entered the middleware.
    pub total: u64,
    /// Requests in flight.
    pub active: u64,
    /// Ended requests by outcome (read with [`StatsSnapshot::count`]).
    outcomes: [u64; OUTCOMES],
    /// Mean latency (ms) over the last 1, 5 and 15 minutes; `None` without requests.
    pub avg_ms: [Option<f64>; 3],
    /// p50, p90 and p99 latency (ms), from the histogram.
    pub percentiles_ms: [Option<f64>; 3],
    /// The largest latency (ms).
    pub max_ms: Option<f64>,
    /// Requests with a latency (answered by the app).
    pub latency_count: u64,
    /// Timed polls past `blocking.threshold`.
    pub blocking_polls: u64,
    /// Time spent in timed polls, in nanoseconds.
    pub busy_nanos: u64,
}

impl StatsSnapshot {
    /// The requests that ended with `outcome` (a status counts for its class: `Status(404)`
    /// reads all 4xx).
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome.index()]
    }

    /// The requests that ended, whatever their outcome: the sum of the outcome counters. Each
    /// of them only grows, so this never goes back from one snapshot to a later one, where
    /// `total - active` can (two figures read at different instants).
    pub fn ended(&self) -> u64 {
        self.outcomes.iter().sum()
    }
}

/// A copy of a route's latency histogram (the one its percentiles come from): 128 buckets, 4
/// per power of two of microseconds, so bucket boundaries are `2^k`, `1.25 * 2^k`, `1.5 * 2^k`
/// and `1.75 * 2^k` µs (every integer below 8 µs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latencies {
    counts: [u64; BUCKETS],
    sum_us: u64,
}

impl Default for Latencies {
    /// No latency.
    fn default() -> Self {
        Self {
            counts: [0; BUCKETS],
            sum_us: 0,
        }
    }
}

impl Latencies {
    /// The latencies recorded: `latency_count` in `_routes/stats`.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Their sum, in microseconds.
    pub fn sum_micros(&self) -> u64 {
        self.sum_us
    }

    /// The latencies under `us` microseconds: exact when `us` is a bucket boundary (see
    /// [`Latencies::is_boundary`]), else a lower bound (the bucket holding `us` is left out).
    pub fn count_below(&self, us: u64) -> u64 {
        // The last bucket has no upper bound: it is never entirely below anything.
        (0..BUCKETS - 1)
            .take_while(|&b| bucket_floor(b + 1) <= us)
            .map(|b| self.counts[b])
            .sum()
    }

    /// Whether `us` microseconds is where a bucket starts, so that [`Latencies::count_below`]
    /// is exact there.
    pub fn is_boundary(us: u64) -> bool {
        bucket(us) < BUCKETS - 1 && bucket_floor(bucket(us)) == us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_their_values() {
        let mut last = 0;
        for us in (0..10_000u64).chain([1 << 20, 1 << 32, u64::MAX]) {
            let b = bucket(us);
            assert!(b >= last || us > 10_000, "bucket decreased at {us}");
            last = b;
            assert!(b < BUCKETS);
            if b + 1 < BUCKETS && b < BUCKETS - 1 {
                assert!(bucket_floor(b) <= us, "{us} below its bucket {b}");
                assert!(
                    us < bucket_floor(b + 1) || b == BUCKETS - 1,
                    "{us} above its bucket {b}"
                );
            }
        }
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(3), 3);
        assert_eq!(bucket(4), 4);
        assert_eq!(bucket(7), 7);
        assert_eq!(bucket(8), 8);
        assert_eq!(bucket_floor(bucket(1000)), 896);
    }

    #[test]
    fn percentiles_are_ordered_and_close() {
        let s = RouteStats::new();
        for ms in 1..=100u64 {
            s.record_micros(ms * 1000);
        }
        let snap = s.snapshot_at(7);
        let [p50, p90, p99] = snap.percentiles_ms.map(Option::unwrap);
        assert!(p50 <= p90 && p90 <= p99 && p99 <= snap.max_ms.unwrap());
        assert!((p50 - 50.0).abs() / 50.0 < 0.25, "{p50}");
        assert!((p90 - 90.0).abs() / 90.0 < 0.25, "{p90}");
        assert!((p99 - 99.0).abs() / 99.0 < 0.25, "{p99}");
        assert_eq!(snap.max_ms, Some(100.0));
        assert_eq!(snap.latency_count, 100);
        let avg = snap.avg_ms[0].unwrap();
        assert!((avg - 50.5).abs() < 0.01, "{avg}");
        assert_eq!(snap.avg_ms[0], snap.avg_ms[2]);
    }

    #[test]
    fn latencies_count_exactly_below_bucket_boundaries() {
        let s = RouteStats::new();
        for us in [3, 900, 1023, 1024, 1279, 1280, 5_000_000] {
            s.record_micros(us);
        }
        let (snap, lat) = s.snapshot_with_latencies();
        assert_eq!(lat.count(), snap.latency_count);
        assert_eq!(lat.count(), 7);
        assert_eq!(
            lat.sum_micros(),
            3 + 900 + 1023 + 1024 + 1279 + 1280 + 5_000_000
        );
        assert!(Latencies::is_boundary(1024) && Latencies::is_boundary(1280));
        assert!(!Latencies::is_boundary(1000) && !Latencies::is_boundary(1100));
        // Below a boundary: exact (strictly below, as latencies are whole microseconds).
        assert_eq!(lat.count_below(1024), 3);
        assert_eq!(lat.count_below(1280), 5);
        assert_eq!(lat.count_below(u64::MAX), 7);
        // Between boundaries: a lower bound (900 and 1023 share the bucket [896, 1024)).
        assert_eq!(lat.count_below(1000), 1);
    }

    #[test]
    fn empty_windows_are_none_never_nan() {
        let snap = RouteStats::new().snapshot();
        assert_eq!(snap.avg_ms, [None, None, None]);
        assert_eq!(snap.percentiles_ms, [None, None, None]);
        assert_eq!(snap.max_ms, None);
    }

    #[test]
    fn outcomes_add_up() {
        let s = RouteStats::new();
        for outcome in [
            Outcome::Status(200),
            Outcome::Status(204),
            Outcome::Status(404),
            Outcome::Status(503),
            Outcome::Status(101),
            Outcome::Preempted,
            Outcome::Interrupted,
            Outcome::Cancelled,
            Outcome::Dropped,
        ] {
            s.begin();
            s.end(outcome);
        }
        s.begin();
        let snap = s.snapshot();
        assert_eq!(snap.outcomes, [1, 2, 0, 1, 1, 1, 0, 0, 1, 1, 1]);
        assert_eq!((snap.total, snap.active), (10, 1));
        for outcome in Outcome::ALL {
            assert_eq!(snap.count(outcome), snap.outcomes[outcome.index()]);
        }
        let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(
            names,
            [
                "1xx",
                "2xx",
                "3xx",
                "4xx",
                "5xx",
                "preempted",
                "shed",
                "timed_out",
                "interrupted",
                "cancelled",
                "dropped"
            ]
        );
    }

    #[test]
    fn admission_never_exceeds_the_limit() {
        use std::sync::atomic::AtomicU64;
        static STATS: RouteStats = RouteStats::new();
        static HOLDING: AtomicU64 = AtomicU64::new(0);
        static MOST: AtomicU64 = AtomicU64::new(0);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let (mut admitted, mut shed) = (0u64, 0u64);
                    for _ in 0..20_000 {
                        if STATS.try_begin(3) {
                            let now = HOLDING.fetch_add(1, Ordering::SeqCst) + 1;
                            MOST.fetch_max(now, Ordering::SeqCst);
                            std::hint::spin_loop();
                            HOLDING.fetch_sub(1, Ordering::SeqCst);
                            STATS.end(Outcome::Status(200));
                            admitted += 1;
                        } else {
                            STATS.answered(Outcome::Shed);
                            shed += 1;
                        }
                    }
                    (admitted, shed)
                })
            })
            .collect();
        let (admitted, shed) = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert!(MOST.load(Ordering::SeqCst) <= 3);
        let snap = STATS.snapshot();
        assert_eq!(snap.total, 80_000);
        assert_eq!(snap.active, 0);
        assert_eq!(snap.count(Outcome::Status(200)), admitted);
        assert_eq!(snap.count(Outcome::Shed), shed);
        // A limit below the running count admits nothing until enough have ended.
        let s = RouteStats::new();
        for _ in 0..5 {
            s.begin();
        }
        assert!(!s.try_begin(3));
        s.end(Outcome::Status(200));
        s.end(Outcome::Status(200));
        assert!(!s.try_begin(3));
        s.end(Outcome::Status(200));
        assert!(s.try_begin(3));
        assert_eq!(s.in_flight(), 3);
    }

    #[test]
    fn windows_cover_1_5_and_15_minutes() {
        let s = RouteStats::new();
        let rec = |ms: u64| s.record_micros(ms * 1000);
        let now = 1000; // periods of 15 s
                        // 10 minutes ago: one request of 20 ms; 2 minutes ago: one of 8 ms; now: one of 2 ms.
        s.sample(now - 60);
        s.sample(now - 40);
        rec(20);
        s.sample(now - 39);
        s.sample(now - 9);
        rec(8);
        s.sample(now - 8);
        s.sample(now - 7);
        s.sample(now - 3);
        rec(2);
        s.sample(now);
        assert_eq!(
            s.snapshot_at(now).avg_ms,
            [Some(2.0), Some(5.0), Some(10.0)]
        );
        // Nothing in the last minute: None, never 0 or NaN.
        let quiet = RouteStats::new();
        quiet.sample(now - 10);
        quiet.record_micros(4 * 1000);
        quiet.sample(now - 3);
        assert_eq!(quiet.snapshot_at(now).avg_ms, [None, Some(4.0), Some(4.0)]);
        // Never sampled (no sampler, or a young route): the windows cover everything.
        let young = RouteStats::new();
        young.record_micros(6 * 1000);
        assert_eq!(
            young.snapshot_at(now).avg_ms,
            [Some(6.0), Some(6.0), Some(6.0)]
        );
        assert_eq!(young.snapshot_at(now).latency_count, 1);
        // A sample overwritten a full cycle later is not mistaken for a recent one.
        let cycled = RouteStats::new();
        cycled.sample(now - SAMPLES as u64);
        cycled.record_micros(9 * 1000);
        assert_eq!(cycled.snapshot_at(now).avg_ms[0], Some(9.0));
    }
}
