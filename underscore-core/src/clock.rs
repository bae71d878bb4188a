//! The clock that times requests: two readings per request, so it has to be cheap.
//!
//! `std::time::Instant::now()` asks the OS (`clock_gettime`, through the vDSO): about 23 ns a
//! reading on this project's VM. [`Stamp`] reads the CPU's counter through `quanta` instead
//! (the time-stamp counter on x86, about 9 ns here), and converts a difference of two readings
//! to time with a factor calibrated once against the OS clock. Calibration takes from under a
//! millisecond (0.6 ms here) up to quanta's limit of 200 ms; middleware run it as they are
//! built ([`calibrate`]), and otherwise the first reading pays for it. Where quanta finds no
//! invariant counter (CPUID), it reads the OS clock, and a `Stamp` costs what an `Instant` does.
//! Task start times are shown as the wall clock less the running time, so a calibration error
//! grows with a task's age, not with the process's.

use std::sync::OnceLock;
use std::time::Duration;

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

#[inline]
fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Calibrates the clock now, so that no request pays for it (middleware call this as they
/// are built).
pub fn calibrate() {
    clock();
}

/// A reading of the request clock: only meaningful against another reading, in this process.
/// Requests are timed with it, and tasks' start and running times are computed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(u64);

impl Stamp {
    /// The current reading.
    #[inline]
    pub fn now() -> Self {
        Self(clock().raw())
    }

    /// The time from `self` to `later`, zero if `later` is earlier.
    #[inline]
    pub fn until(self, later: Stamp) -> Duration {
        Duration::from_nanos(self.nanos_until(later))
    }

    /// [`Stamp::until`] in nanoseconds (no `Duration` to build on the request path).
    #[inline]
    pub fn nanos_until(self, later: Stamp) -> u64 {
        clock().delta_as_nanos(self.0, later.0)
    }

    /// The counter's reading, for an atomic (never 0 on a running machine's counter; callers
    /// that use 0 as "none" clamp it).
    #[inline]
    pub fn raw(self) -> u64 {
        self.0
    }

    /// A reading kept with [`Stamp::raw`].
    #[inline]
    pub fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The time since `self`, in nanoseconds.
    #[inline]
    pub fn elapsed_nanos(self) -> u64 {
        // The clock looked up once for both the reading and the conversion.
        let clock = clock();
        clock.delta_as_nanos(self.0, clock.raw())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn stamps_measure_the_time_between_them_as_the_os_clock_does() {
        let (stamp, instant) = (Stamp::now(), Instant::now());
        std::thread::sleep(Duration::from_millis(30));
        let (ours, os) = (stamp.until(Stamp::now()), instant.elapsed());
        // Both were read twice within microseconds of each other; allow for a loaded machine.
        let diff = ours.abs_diff(os);
        assert!(
            diff < Duration::from_millis(5),
            "stamp {ours:?} vs OS {os:?}"
        );
        assert!(ours >= Duration::from_millis(29), "{ours:?}");
    }

    #[test]
    fn a_reading_taken_earlier_is_zero_time_away() {
        let a = Stamp::now();
        std::thread::sleep(Duration::from_millis(2));
        let b = Stamp::now();
        assert_eq!(b.until(a), Duration::ZERO);
        assert!(a.until(b) >= Duration::from_millis(1));
    }
}
