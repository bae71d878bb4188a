//! The effective settings of a route, as the middleware reads them on every request.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;

use super::Flat;
use crate::slowlog::Thresholds;

/// A preempted response, computed once per settings change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preempt {
    /// The status code.
    pub status: u16,
    /// The reason phrase, interned (actix takes a `&'static str`).
    pub reason: Option<&'static str>,
    /// The text/plain body.
    pub text: Option<String>,
    /// The `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
    /// The share of requests preempted, in hundredths of a percent (10,000 is every request).
    pub share: u32,
}

/// [`Preempt::share`] for every request.
pub const ALL_REQUESTS: u32 = 10_000;

impl Preempt {
    /// The preempt that `effective` settings ask for: `None` without `preempt.status`.
    pub fn from_settings(effective: &Flat) -> Option<Self> {
        let status = effective.get("preempt.status")?.as_u64()? as u16;
        Some(Self {
            status,
            reason: effective
                .get("preempt.reason")
                .and_then(Value::as_str)
                .map(intern),
            text: effective
                .get("preempt.text")
                .and_then(Value::as_str)
                .map(str::to_owned),
            retry_after: effective.get("preempt.retry_after").and_then(Value::as_u64),
            share: effective
                .get("preempt.percent")
                .and_then(Value::as_f64)
                .map_or(ALL_REQUESTS, |p| (p * 100.0).round() as u32),
        })
    }

    /// `preempt.percent`, as a number from 0 to 100.
    pub fn percent(&self) -> f64 {
        f64::from(self.share) / 100.0
    }
}

/// The load-shedding limits of a route, computed once per settings change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `limits.max_in_flight`.
    pub max_in_flight: Option<u32>,
    /// `limits.timeout`, and the text it was given as (`2s`).
    pub timeout: Option<(Duration, String)>,
    /// The status of a shed request (`limits.status`, default 503).
    pub status: u16,
    /// The `Retry-After` of a shed request, in seconds.
    pub retry_after: Option<u64>,
}

impl Limits {
    /// The limits that `effective` settings ask for: `None` without `limits.max_in_flight` or
    /// `limits.timeout` (a status or Retry-After alone limits nothing).
    pub fn from_settings(effective: &Flat) -> Option<Self> {
        let max_in_flight = effective
            .get("limits.max_in_flight")
            .and_then(Value::as_u64)
            .map(|n| n.min(u64::from(u32::MAX)) as u32);
        let timeout = effective
            .get("limits.timeout")
            .and_then(Value::as_str)
            .and_then(|text| Some((super::parse_time(text).ok()?, text.to_owned())));
        if max_in_flight.is_none() && timeout.is_none() {
            return None;
        }
        Some(Self {
            max_in_flight,
            timeout,
            status: effective
                .get("limits.status")
                .and_then(Value::as_u64)
                .map_or(503, |s| s as u16),
            retry_after: effective.get("limits.retry_after").and_then(Value::as_u64),
        })
    }
}

/// Interns a reason phrase: each distinct phrase is leaked once, never per request or change.
fn intern(reason: &str) -> &'static str {
    static PHRASES: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Mutex::default);
    let mut phrases = PHRASES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = phrases.get(reason) {
        return found;
    }
    let leaked: &'static str = Box::leak(reason.to_owned().into_boxed_str());
    phrases.insert(leaked);
    leaked
}

/// Which effects a route's settings have, and whether its requests need more than the
/// common path: read with one atomic load per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u8);

impl Flags {
    const PREEMPT: u8 = 1;
    const MAX_IN_FLIGHT: u8 = 2;
    const TIMEOUT: u8 = 4;
    /// Not a setting: kept across settings changes (see [`SettingsSlot::note_waits_outside`]).
    const WAITS_OUTSIDE: u8 = 8;
    /// The slow log is on, or poll timing (see [`SettingsSlot::set_watched`]).
    const WATCHED: u8 = 16;

    /// No effect: the request is served as if underscore had no settings.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// A preempt is set (for all requests or a share of them).
    #[inline]
    pub fn preempt(self) -> bool {
        self.0 & Self::PREEMPT != 0
    }

    /// `limits.max_in_flight` is set.
    #[inline]
    pub fn max_in_flight(self) -> bool {
        self.0 & Self::MAX_IN_FLIGHT != 0
    }

    /// `limits.timeout` is set.
    #[inline]
    pub fn timeout(self) -> bool {
        self.0 & Self::TIMEOUT != 0
    }

    /// The route's requests are watched: its slow log is on, or poll timing is.
    #[inline]
    pub fn watched(self) -> bool {
        self.0 & Self::WATCHED != 0
    }

    /// A request of the route has waited outside its handler (see
    /// [`SettingsSlot::note_waits_outside`]).
    #[inline]
    pub fn waits_outside(self) -> bool {
        self.0 & Self::WAITS_OUTSIDE != 0
    }
}

/// The effective settings of one route, as the middleware reads them on every request.
///
/// A route with no preempt and no limit costs one atomic load ([`SettingsSlot::flags`]). A
/// limited route reads its limit and timeout from atomics too, and a route preempted for a
/// share of its requests reads that share from an atomic; a lock is taken only to build an
/// answer of the middleware (a preempted response), never to serve a request.
#[derive(Debug, Default)]
pub struct SettingsSlot {
    flags: AtomicU8,
    // A lock for the response a preempt answers with (a status, a reason, a body, read
    // together); written on a settings change, read only by a request it answers and by the
    // admin APIs.
    preempt: RwLock<Option<Arc<Preempt>>>,
    /// [`Preempt::share`] of the preempt set, so that a request decides whether it is in the
    /// share without the lock.
    preempt_share: AtomicU32,
    /// Requests that met the preempt so far: decides which share of them is preempted.
    preempt_turns: AtomicU64,
    limits: RwLock<Option<Arc<Limits>>>,
    max_in_flight: AtomicU32,
    timeout_nanos: AtomicU64,
    /// How a shed request is answered: `limits.status`, `limits.retry_after` (`u64::MAX`:
    /// none). Atomics, so shedding takes no lock.
    shed_status: AtomicU16,
    shed_retry_after: AtomicU64,
    /// The smallest `slowlog.threshold.*` in nanoseconds (`u64::MAX`: the slow log is off),
    /// compared with each request's time as it ends.
    slow_nanos: AtomicU64,
    /// The slow log's thresholds, read only for a request past `slow_nanos` and by the
    /// watcher of running requests.
    slowlog: RwLock<Option<Arc<Thresholds>>>,
}

impl SettingsSlot {
    /// An empty slot.
    pub const fn new() -> Self {
        Self {
            flags: AtomicU8::new(0),
            preempt: RwLock::new(None),
            preempt_share: AtomicU32::new(0),
            preempt_turns: AtomicU64::new(0),
            limits: RwLock::new(None),
            max_in_flight: AtomicU32::new(0),
            timeout_nanos: AtomicU64::new(0),
            shed_status: AtomicU16::new(503),
            shed_retry_after: AtomicU64::new(u64::MAX),
            slow_nanos: AtomicU64::new(u64::MAX),
            slowlog: RwLock::new(None),
        }
    }

    /// The smallest slow-log threshold, in nanoseconds (`u64::MAX` while the slow log is off):
    /// one relaxed load, for every request as it ends.
    #[inline(always)]
    pub fn slow_nanos(&self) -> u64 {
        // Relaxed: a request racing with a change is judged by the old or the new threshold.
        self.slow_nanos.load(Ordering::Relaxed)
    }

    /// The slow log's thresholds, if any is set.
    pub fn slowlog(&self) -> Option<Arc<Thresholds>> {
        self.slowlog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Marks the route's requests watched (see [`Flags::watched`]) while its slow log is on
    /// or `poll_timing` is.
    pub fn set_watched(&self, poll_timing: bool) {
        let on = poll_timing || self.slow_nanos.load(Ordering::Relaxed) != u64::MAX;
        // Release: as in `set`, a request that sees the flag sees the thresholds.
        if on {
            self.flags.fetch_or(Flags::WATCHED, Ordering::Release);
        } else {
            self.flags.fetch_and(!Flags::WATCHED, Ordering::Release);
        }
    }

    pub(crate) fn set_slowlog(&self, thresholds: Option<Thresholds>) {
        let nanos = thresholds.as_ref().map_or(u64::MAX, |t| {
            t.min().as_nanos().min(u128::from(u64::MAX)) as u64
        });
        let new = thresholds.map(Arc::new);
        let old = std::mem::replace(
            &mut *self.slowlog.write().unwrap_or_else(|e| e.into_inner()),
            new.clone(),
        );
        self.slow_nanos.store(nanos, Ordering::Relaxed);
        self.set_watched(crate::workers::poll_timing());
        crate::slowlog::thresholds_changed(old.as_deref(), new.as_deref());
    }

    /// Which effects are on.
    #[inline]
    pub fn flags(&self) -> Flags {
        // Acquire pairs with the Release in `set`: once a flag is seen, so is its value.
        Flags(self.flags.load(Ordering::Acquire))
    }

    /// The effective preempt, if any (whatever its share).
    pub fn preempt(&self) -> Option<Arc<Preempt>> {
        if !self.flags().preempt() {
            return None;
        }
        self.preempt
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The preempt to answer this request with: `None` when the route has none, or when this
    /// request is not in its share. Of `n` consecutive requests at `p` percent, `n * p / 100`
    /// (rounded down or up) are preempted: exact in aggregate, not random.
    ///
    /// A request that is served takes no lock: only one that is answered reads the preempt.
    /// (A settings change racing with a request may answer it with the new preempt, or serve
    /// it if the preempt was just removed.)
    pub fn preempt_now(&self) -> Option<Arc<Preempt>> {
        if !self.flags().preempt() {
            return None;
        }
        // Relaxed: the Acquire load of `flags` above orders it after the `set` that raised
        // the flag.
        let share = self.preempt_share.load(Ordering::Relaxed);
        if share < ALL_REQUESTS {
            // Relaxed: a ticket counter; each request takes a distinct number, nothing else is
            // published through it.
            let n = u128::from(self.preempt_turns.fetch_add(1, Ordering::Relaxed));
            let (share, all) = (u128::from(share), u128::from(ALL_REQUESTS));
            // Request n is preempted when it takes the running count of preempted requests,
            // floor(n * share / all), one higher.
            if (n + 1) * share / all == n * share / all {
                return None;
            }
        }
        self.preempt
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the route is preempted now (for all requests or a share of them).
    pub fn is_preempting(&self) -> bool {
        self.flags().preempt()
    }

    /// The effective limits, if any.
    pub fn limits(&self) -> Option<Arc<Limits>> {
        let flags = self.flags();
        if !flags.max_in_flight() && !flags.timeout() {
            return None;
        }
        self.limits
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `limits.max_in_flight`, read with one atomic load.
    #[inline]
    pub fn max_in_flight(&self) -> Option<u32> {
        // Relaxed: `flags` (Acquire) was read first by the caller; a change racing with this
        // request applies from the next one.
        Some(self.max_in_flight.load(Ordering::Relaxed)).filter(|&n| n > 0)
    }

    /// `limits.timeout`, read with one atomic load.
    #[inline]
    pub fn timeout(&self) -> Option<Duration> {
        // Relaxed: as in `max_in_flight`.
        Some(self.timeout_nanos.load(Ordering::Relaxed))
            .filter(|&n| n > 0)
            .map(Duration::from_nanos)
    }

    /// How to answer a request shed by `limits.max_in_flight`: its status and `Retry-After`
    /// seconds, read without a lock. (A change racing with this request may give it the new
    /// status with the old `Retry-After`: each is a valid setting.)
    #[inline]
    pub fn shed_answer(&self) -> (u16, Option<u64>) {
        // Relaxed: as in `max_in_flight`.
        (
            self.shed_status.load(Ordering::Relaxed),
            Some(self.shed_retry_after.load(Ordering::Relaxed)).filter(|&s| s != u64::MAX),
        )
    }

    /// Whether some effect is on (a preempt or a limit).
    pub fn is_set(&self) -> bool {
        let flags = self.flags();
        flags.preempt() || flags.max_in_flight() || flags.timeout()
    }

    /// Records that a request of the route waited outside its handler (in a middleware of the
    /// app's around it, where the route's middleware has no clone of the request to list it
    /// by): from then on its requests keep their details as they come in. In the flags, so that
    /// the common path reads nothing more.
    pub fn note_waits_outside(&self) {
        // Relaxed: a hint; a request racing with it is listed by its route. (A settings change
        // racing with it may drop it: the next such wait sets it again.)
        self.flags.fetch_or(Flags::WAITS_OUTSIDE, Ordering::Relaxed);
    }

    pub(crate) fn set(&self, preempt: Option<Preempt>, limits: Option<Limits>) {
        let mut flags = 0;
        if preempt.is_some() {
            flags |= Flags::PREEMPT;
        }
        let (max, timeout) = limits.as_ref().map_or((0, 0), |l| {
            (
                l.max_in_flight.unwrap_or(0),
                l.timeout
                    .as_ref()
                    .map_or(0, |(d, _)| d.as_nanos().min(u128::from(u64::MAX)) as u64),
            )
        });
        if max > 0 {
            flags |= Flags::MAX_IN_FLIGHT;
        }
        if timeout > 0 {
            flags |= Flags::TIMEOUT;
        }
        let (status, retry_after) = limits
            .as_ref()
            .map_or((503, None), |l| (l.status, l.retry_after));
        self.shed_status.store(status, Ordering::Relaxed);
        self.shed_retry_after
            .store(retry_after.unwrap_or(u64::MAX), Ordering::Relaxed);
        self.preempt_share
            .store(preempt.as_ref().map_or(0, |p| p.share), Ordering::Relaxed);
        *self.preempt.write().unwrap_or_else(|e| e.into_inner()) = preempt.map(Arc::new);
        *self.limits.write().unwrap_or_else(|e| e.into_inner()) = limits.map(Arc::new);
        self.max_in_flight.store(max, Ordering::Relaxed);
        self.timeout_nanos.store(timeout, Ordering::Relaxed);
        let kept = self.flags.load(Ordering::Relaxed) & (Flags::WAITS_OUTSIDE | Flags::WATCHED);
        self.flags.store(flags | kept, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tiers::Tiers;
    use serde_json::json;

    #[test]
    fn effective_is_transient_then_persistent() {
        let mut tiers = Tiers::default();
        tiers.persistent.insert(
            "a".into(),
            [
                ("preempt.status".to_owned(), json!(503)),
                ("preempt.reason".to_owned(), json!("P")),
            ]
            .into(),
        );
        tiers.transient.insert(
            "a".into(),
            [("preempt.reason".to_owned(), json!("T"))].into(),
        );
        let p = Preempt::from_settings(&tiers.effective("a")).unwrap();
        assert_eq!((p.status, p.reason), (503, Some("T")));
        assert_eq!(Preempt::from_settings(&tiers.effective("b")), None);
        assert_eq!(p.share, ALL_REQUESTS);
        // A reason without a status preempts nothing.
        tiers.persistent.clear();
        assert_eq!(Preempt::from_settings(&tiers.effective("a")), None);
    }

    #[test]
    fn reasons_are_interned() {
        assert!(std::ptr::eq(
            intern("Busy now"),
            intern(&String::from("Busy now"))
        ));
    }

    #[test]
    fn a_share_is_exact_over_every_hundred_requests() {
        let slot = SettingsSlot::new();
        let mut settings = Flat::new();
        settings.insert("preempt.status".into(), json!(503));
        for percent in [25.0, 33.3, 1.0, 99.0, 0.0, 50.0] {
            settings.insert("preempt.percent".into(), json!(percent));
            slot.set(Preempt::from_settings(&settings), None);
            let hits: Vec<bool> = (0..1_000).map(|_| slot.preempt_now().is_some()).collect();
            for window in hits.windows(100) {
                let n = window.iter().filter(|&&h| h).count() as f64;
                assert!((n - percent).abs() <= 1.0, "{percent}%: {n} in a window");
            }
        }
        settings.remove("preempt.percent");
        slot.set(Preempt::from_settings(&settings), None);
        assert!((0..100).all(|_| slot.preempt_now().is_some()));
    }

    #[test]
    fn a_served_turn_of_a_partial_preempt_takes_no_lock() {
        let slot: &'static SettingsSlot = Box::leak(Box::new(SettingsSlot::new()));
        let mut settings = Flat::new();
        settings.insert("preempt.status".into(), json!(503));
        settings.insert("preempt.percent".into(), json!(25.0));
        slot.set(Preempt::from_settings(&settings), None);
        // The first of every four turns at 25% is served: 1 * 25 / 100 rounds down to 0.
        let writer = slot.preempt.write().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let turn = std::thread::spawn(move || tx.send(slot.preempt_now().is_none()));
        let served = rx.recv_timeout(Duration::from_secs(5));
        drop(writer);
        turn.join().unwrap().ok();
        assert_eq!(
            served,
            Ok(true),
            "a served turn waited for the preempt's lock"
        );
        // A preempted turn still gets its answer.
        assert_eq!(slot.preempt_now().map(|p| p.status), None);
        assert_eq!(slot.preempt_now().map(|p| p.status), None);
        assert_eq!(slot.preempt_now().map(|p| p.status), Some(503));
    }

    #[test]
    fn a_wait_outside_the_handler_is_kept_across_settings_changes_and_sets_nothing() {
        let slot = SettingsSlot::new();
        slot.note_waits_outside();
        assert!(slot.flags().waits_outside() && !slot.is_set());
        assert_eq!((slot.preempt(), slot.limits()), (None, None));
        let mut settings = Flat::new();
        settings.insert("limits.max_in_flight".into(), json!(2));
        slot.set(None, Limits::from_settings(&settings));
        assert!(slot.flags().waits_outside() && slot.flags().max_in_flight());
        slot.set(None, None);
        assert!(slot.flags().waits_outside() && !slot.is_set());
    }

    #[test]
    fn limits_come_with_max_in_flight_or_a_timeout() {
        let slot = SettingsSlot::new();
        let mut settings = Flat::new();
        settings.insert("limits.status".into(), json!(429));
        assert_eq!(Limits::from_settings(&settings), None);
        settings.insert("limits.max_in_flight".into(), json!(2));
        slot.set(None, Limits::from_settings(&settings));
        let flags = slot.flags();
        assert!(flags.max_in_flight() && !flags.timeout() && !flags.preempt());
        assert_eq!(slot.max_in_flight(), Some(2));
        assert_eq!(slot.limits().unwrap().status, 429);
        assert_eq!(slot.shed_answer(), (429, None));
        settings.insert("limits.timeout".into(), json!("1500ms"));
        slot.set(None, Limits::from_settings(&settings));
        assert_eq!(slot.timeout(), Some(Duration::from_millis(1500)));
        slot.set(None, None);
        assert!(slot.flags().is_empty());
        assert_eq!((slot.max_in_flight(), slot.timeout()), (None, None));
    }
}
