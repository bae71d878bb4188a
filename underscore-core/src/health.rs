//! Health checks, readiness, and the state of a drain: what `GET /_health`, `GET /_cat/health`,
//! the probes (`/livez`, `/readyz`) and `POST /_drain` read and change.
//!
//! The checks run elsewhere (`underscore-actix` runs each on a thread of its own) and write
//! their results here with [`Check::begin`] and [`Check::finish`]; a probe only reads them:
//! a few atomic loads, no lock, no allocation ([`readiness`]). A check still running past its
//! timeout counts as failed from that instant, whether or not its runner noticed (a check that
//! blocks its thread cannot be stopped, but it cannot hold readiness up either).
//!
//! # Status
//!
//! As Elasticsearch's `_cluster/health`: `green` when every check passes, `yellow` when a
//! non-critical one fails, `red` when a critical one fails. A check that has not finished its
//! first run counts as failing. Readiness is lost while a critical check fails, while the node
//! is failed by hand (`POST /_health/_fail`), and from the first instant of a drain on.
//! Liveness does not depend on the checks: whoever answers is live.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the app declares of one check.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    /// Its name, as `_health` and `_cat/health` show it.
    pub name: String,
    /// Whether a failure makes the node red and not ready (otherwise: yellow, still ready).
    pub critical: bool,
    /// The time between the end of a run and the start of the next.
    pub interval: Duration,
    /// How long a run may take before it counts as failed.
    pub timeout: Duration,
}

const PENDING: u8 = 0;
const PASS: u8 = 1;
const FAIL: u8 = 2;

/// The result of a check, as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    /// Not finished once yet.
    Pending,
    /// Its last run passed.
    Pass,
    /// Its last run failed, or the current one runs past its timeout.
    Fail,
}

impl CheckStatus {
    /// `pending`, `pass` or `fail`.
    pub fn name(self) -> &'static str {
        match self {
            CheckStatus::Pending => "pending",
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
        }
    }
}

/// One registered check and its last result.
#[derive(Debug)]
pub struct Check {
    spec: CheckSpec,
    status: AtomicU8,
    /// When the current run began, in microseconds since [`EPOCH`] plus one; 0 when idle.
    running_since: AtomicU64,
    /// How long the last run took, in microseconds.
    took_micros: AtomicU64,
    /// When the last run ended, in milliseconds since the Unix epoch; 0 before the first.
    checked_at: AtomicU64,
    /// Why the last run failed. A lock, taken once per run and by the admin APIs, never by a
    /// probe.
    error: Mutex<Option<String>>,
}

/// The process clock the checks are timed with.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn micros_now() -> u64 {
    EPOCH.elapsed().as_micros() as u64
}

fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Check {
    fn new(spec: CheckSpec) -> Self {
        Self {
            spec,
            status: AtomicU8::new(PENDING),
            running_since: AtomicU64::new(0),
            took_micros: AtomicU64::new(0),
            checked_at: AtomicU64::new(0),
            error: Mutex::new(None),
        }
    }

    /// What the app declared.
    pub fn spec(&self) -> &CheckSpec {
        &self.spec
    }

    /// A run begins now.
    pub fn begin(&self) {
        // Relaxed: a reader compares it with the clock only, and a stale value is at worst one
        // run late.
        self.running_since
            .store(micros_now() + 1, Ordering::Relaxed);
    }

    /// The run begun with [`Check::begin`] ended: `Err` says why it failed.
    pub fn finish(&self, result: Result<(), String>, took: Duration) {
        let passed = result.is_ok();
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = result.err();
        self.took_micros
            .store(took.as_micros() as u64, Ordering::Relaxed);
        self.checked_at
            .store(unix_millis(SystemTime::now()), Ordering::Relaxed);
        // Release: whoever reads the status sees the error written before it.
        self.status
            .store(if passed { PASS } else { FAIL }, Ordering::Release);
        self.running_since.store(0, Ordering::Relaxed);
    }

    /// How long the current run has gone past its timeout, if it has.
    fn overdue(&self) -> bool {
        let since = self.running_since.load(Ordering::Relaxed);
        since != 0 && micros_now().saturating_sub(since - 1) > self.spec.timeout.as_micros() as u64
    }

    /// The check's status now.
    pub fn status(&self) -> CheckStatus {
        if self.overdue() {
            return CheckStatus::Fail;
        }
        match self.status.load(Ordering::Acquire) {
            PASS => CheckStatus::Pass,
            FAIL => CheckStatus::Fail,
            _ => CheckStatus::Pending,
        }
    }

    /// Why it fails, if it does.
    pub fn error(&self) -> Option<String> {
        if self.overdue() {
            return Some(format!(
                "timed out after {}",
                crate::time_value::format(self.spec.timeout)
            ));
        }
        match self.status() {
            CheckStatus::Pass => None,
            CheckStatus::Pending => Some("not checked yet".to_owned()),
            CheckStatus::Fail => self.error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// How long the last run took; `None` before the first.
    pub fn took(&self) -> Option<Duration> {
        (self.checked_at.load(Ordering::Relaxed) != 0)
            .then(|| Duration::from_micros(self.took_micros.load(Ordering::Relaxed)))
    }

    /// When the last run ended, in milliseconds since the Unix epoch; `None` before the first.
    pub fn checked_at_millis(&self) -> Option<u64> {
        Some(self.checked_at.load(Ordering::Relaxed)).filter(|&t| t != 0)
    }
}

static CHECKS: OnceLock<Box<[Check]>> = OnceLock::new();
static FAILED_BY_HAND: AtomicBool = AtomicBool::new(false);

/// Installs the app's checks, once per process, and returns them for their runners.
///
/// # Errors
///
/// If checks were installed already (their runners run), or two share a name.
pub fn install(specs: Vec<CheckSpec>) -> Result<&'static [Check], String> {
    for (i, spec) in specs.iter().enumerate() {
        if specs[..i].iter().any(|s| s.name == spec.name) {
            return Err(format!("two health checks are named [{}]", spec.name));
        }
    }
    started();
    let mut fresh = false;
    let checks = CHECKS.get_or_init(|| {
        fresh = true;
        specs.into_iter().map(Check::new).collect()
    });
    if !fresh {
        return Err("the health checks were installed already".to_owned());
    }
    Ok(checks)
}

/// The installed checks (none until [`install`]).
pub fn checks() -> &'static [Check] {
    CHECKS.get().map_or(&[], |c| &c[..])
}

/// When the process started serving, as far as underscore knows (its configuration).
fn started() -> (Instant, SystemTime) {
    static STARTED: LazyLock<(Instant, SystemTime)> =
        LazyLock::new(|| (Instant::now(), SystemTime::now()));
    *STARTED
}

/// Marks the start of the process's uptime (`uptime_ms` in `_health`), if not marked yet.
pub fn mark_started() {
    started();
}

/// Whether the node takes traffic, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// It does.
    Ready,
    /// It drains.
    Draining,
    /// It was failed by hand (`POST /_health/_fail`).
    FailedByHand,
    /// A critical check fails.
    CheckFailing,
}

impl Readiness {
    /// The one-line body of `/readyz`.
    pub fn line(self) -> &'static str {
        match self {
            Readiness::Ready => "ready\n",
            Readiness::Draining => "not ready: draining\n",
            Readiness::FailedByHand => "not ready: failed by hand\n",
            Readiness::CheckFailing => "not ready: a critical health check fails\n",
        }
    }
}

/// The node's readiness now: atomic loads only (and a clock read while a critical check runs).
#[inline]
pub fn readiness() -> Readiness {
    if is_draining() {
        Readiness::Draining
    } else if FAILED_BY_HAND.load(Ordering::Relaxed) {
        Readiness::FailedByHand
    } else if checks()
        .iter()
        .any(|c| c.spec.critical && c.status() != CheckStatus::Pass)
    {
        Readiness::CheckFailing
    } else {
        Readiness::Ready
    }
}

/// `green`, `yellow` or `red`.
pub fn status() -> &'static str {
    let mut status = "green";
    for check in checks() {
        if check.status() != CheckStatus::Pass {
            if check.spec.critical {
                return "red";
            }
            status = "yellow";
        }
    }
    status
}

/// Whether the node was failed by hand.
pub fn is_failed_by_hand() -> bool {
    FAILED_BY_HAND.load(Ordering::Relaxed)
}

/// Fails the node by hand (`true`) or puts it back (`false`); returns the previous state.
///
/// # Errors
///
/// Putting it back during a drain: the reason, for a 409.
pub fn set_failed_by_hand(failed: bool) -> Result<bool, String> {
    if !failed && is_draining() {
        return Err(
            "the node is draining: it cannot take traffic again (it stops once drained)".to_owned(),
        );
    }
    Ok(FAILED_BY_HAND.swap(failed, Ordering::Relaxed))
}

/// The uptime, for `_health`.
pub fn uptime() -> Duration {
    started().0.elapsed()
}

// ---------------------------------------------------------------------------------------------
// The drain.

/// Where a drain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DrainPhase {
    /// No drain.
    Idle,
    /// Readiness says 503; the node still serves everything, so that load balancers notice.
    Delay,
    /// Listeners closed, kept-alive connections closed after their current response; waiting
    /// for the requests in flight.
    Waiting,
    /// The timeout ran out: the requests left are interrupted (503 `Server draining`).
    Interrupting,
    /// Waiting for the servers to stop.
    Stopping,
    /// Stopped: the app's `main` returns.
    Stopped,
}

impl DrainPhase {
    const ALL: [DrainPhase; 6] = [
        DrainPhase::Idle,
        DrainPhase::Delay,
        DrainPhase::Waiting,
        DrainPhase::Interrupting,
        DrainPhase::Stopping,
        DrainPhase::Stopped,
    ];

    /// Its name in `_health` and the drain task's status.
    pub fn name(self) -> &'static str {
        match self {
            DrainPhase::Idle => "idle",
            DrainPhase::Delay => "delay",
            DrainPhase::Waiting => "waiting",
            DrainPhase::Interrupting => "interrupting",
            DrainPhase::Stopping => "stopping",
            DrainPhase::Stopped => "stopped",
        }
    }
}

static DRAIN_PHASE: AtomicU8 = AtomicU8::new(0);
static DRAIN_IN_FLIGHT: AtomicU64 = AtomicU64::new(0);
static DRAIN_INTERRUPTED: AtomicU64 = AtomicU64::new(0);

/// A drain that runs (or ran).
#[derive(Debug, Clone)]
pub struct DrainInfo {
    /// Its task id in `_tasks`.
    pub task: String,
    /// How long readiness says 503 before the listeners close.
    pub delay: Duration,
    /// How long requests in flight may run once the listeners are closed.
    pub timeout: Duration,
    /// When it began.
    pub started: SystemTime,
    /// Who asked for it (`SIGTERM`, or the admin API's caller).
    pub caller: String,
}

/// What starts a drain: given the delay and timeout, it starts the sequence (which reports
/// through [`set_drain_phase`]) and returns the drain's task id.
pub type Drainer = Box<dyn Fn(Duration, Duration) -> Result<String, String> + Send + Sync>;

struct DrainControl {
    drainer: Option<Drainer>,
    defaults: (Duration, Duration),
    running: Option<DrainInfo>,
}

static DRAIN: Mutex<DrainControl> = Mutex::new(DrainControl {
    drainer: None,
    defaults: (Duration::from_secs(5), Duration::from_secs(30)),
    running: None,
});

fn drain_control() -> std::sync::MutexGuard<'static, DrainControl> {
    // Every critical section leaves the state whole.
    DRAIN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs what starts a drain (the actix glue does, for the servers it knows).
pub fn set_drainer(drainer: Drainer) {
    drain_control().drainer = Some(drainer);
}

/// The delay and timeout of a drain that names neither (5 s and 30 s unless set).
pub fn set_drain_defaults(delay: Duration, timeout: Duration) {
    drain_control().defaults = (delay, timeout);
}

/// The delay and timeout of a drain that names neither.
pub fn drain_defaults() -> (Duration, Duration) {
    drain_control().defaults
}

/// Whether a drain has begun (readiness is then lost for good).
#[inline]
pub fn is_draining() -> bool {
    // Relaxed: a flag read by probes; the drain sets it before anything else it does.
    DRAIN_PHASE.load(Ordering::Relaxed) != 0
}

/// The drain's phase.
pub fn drain_phase() -> DrainPhase {
    DrainPhase::ALL
        .get(usize::from(DRAIN_PHASE.load(Ordering::Relaxed)))
        .copied()
        .unwrap_or(DrainPhase::Stopped)
}

/// Moves the drain to `phase`.
pub fn set_drain_phase(phase: DrainPhase) {
    let index = DrainPhase::ALL
        .iter()
        .position(|p| *p == phase)
        .unwrap_or(0);
    DRAIN_PHASE.store(index as u8, Ordering::Relaxed);
}

/// How many requests the drain waits for, as it last counted them.
pub fn set_drain_in_flight(n: u64) {
    DRAIN_IN_FLIGHT.store(n, Ordering::Relaxed);
}

/// How many requests the drain interrupted.
pub fn set_drain_interrupted(n: u64) {
    DRAIN_INTERRUPTED.store(n, Ordering::Relaxed);
}

/// The drain that runs, if any.
pub fn drain_info() -> Option<DrainInfo> {
    drain_control().running.clone()
}

/// A drain started, or the one already running.
#[derive(Debug, Clone)]
pub struct DrainStarted {
    /// The drain.
    pub info: DrainInfo,
    /// Whether it was running already (this request started nothing).
    pub already_running: bool,
}

/// Starts a drain with this delay and timeout (the defaults where `None`), or answers the one
/// running.
///
/// # Errors
///
/// When nothing can be drained: no server was attached (the reason says how to attach one).
pub fn start_drain(
    delay: Option<Duration>,
    timeout: Option<Duration>,
    caller: &str,
) -> Result<DrainStarted, String> {
    let mut control = drain_control();
    if let Some(info) = &control.running {
        return Ok(DrainStarted {
            info: info.clone(),
            already_running: true,
        });
    }
    let delay = delay.unwrap_or(control.defaults.0);
    let timeout = timeout.unwrap_or(control.defaults.1);
    let Some(drainer) = &control.drainer else {
        return Err(
            "no server to drain: serve the app with AdminSocket::run_alongside or \
                    underscore_actix::serve"
                .to_owned(),
        );
    };
    // Readiness goes first, before the drain's thread even starts. The lock is held until the
    // drain is recorded: a second request waits for it, then answers it.
    set_drain_phase(DrainPhase::Delay);
    let task = match drainer(delay, timeout) {
        Ok(task) => task,
        Err(err) => {
            set_drain_phase(DrainPhase::Idle);
            return Err(err);
        }
    };
    let info = DrainInfo {
        task,
        delay,
        timeout,
        started: SystemTime::now(),
        caller: caller.to_owned(),
    };
    control.running = Some(info.clone());
    Ok(DrainStarted {
        info,
        already_running: false,
    })
}

/// The drain's status, for `_health` and its task: phase, requests in flight, delay, timeout.
pub fn drain_status() -> serde_json::Value {
    let phase = drain_phase();
    let mut out = serde_json::json!({
        "phase": phase.name(),
        "in_flight": DRAIN_IN_FLIGHT.load(Ordering::Relaxed),
        "interrupted": DRAIN_INTERRUPTED.load(Ordering::Relaxed),
    });
    if let Some(info) = drain_info() {
        out["task"] = info.task.into();
        out["delay"] = crate::time_value::format(info.delay).into();
        out["timeout"] = crate::time_value::format(info.timeout).into();
        out["start_time_in_millis"] = unix_millis(info.started).into();
        out["caller"] = info.caller.into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(critical: bool, timeout: Duration) -> Check {
        Check::new(CheckSpec {
            name: "c".into(),
            critical,
            interval: Duration::from_secs(10),
            timeout,
        })
    }

    #[test]
    fn a_check_is_pending_until_it_finishes_once() {
        let c = check(true, Duration::from_secs(2));
        assert_eq!(c.status(), CheckStatus::Pending);
        assert_eq!(c.error().as_deref(), Some("not checked yet"));
        c.begin();
        c.finish(Err("disk full".into()), Duration::from_millis(3));
        assert_eq!(c.status(), CheckStatus::Fail);
        assert_eq!(c.error().as_deref(), Some("disk full"));
        assert_eq!(c.took(), Some(Duration::from_millis(3)));
        c.begin();
        c.finish(Ok(()), Duration::ZERO);
        assert_eq!((c.status(), c.error()), (CheckStatus::Pass, None));
    }

    #[test]
    fn a_run_past_its_timeout_fails_before_it_ends() {
        let c = check(true, Duration::ZERO);
        c.begin();
        c.finish(Ok(()), Duration::ZERO);
        c.begin();
        // Zero timeout: any time at all is past it.
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(c.status(), CheckStatus::Fail);
        assert_eq!(c.error().as_deref(), Some("timed out after 0s"));
    }
}
