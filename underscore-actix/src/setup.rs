//! Process-wide configuration.

use std::path::PathBuf;

use actix_web::http::header::HeaderName;
use underscore_core::registry;
use underscore_core::settings::SettingsError;

/// Process-wide configuration of the admin APIs, built once at start-up.
///
/// ```no_run
/// # fn main() -> Result<(), underscore_actix::SettingsError> {
/// underscore_actix::Underscore::builder()
///     .settings_file("/var/lib/my-app/underscore-settings.json")
///     .init()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct Underscore {
    settings_file: Option<PathBuf>,
    correlation_headers: Option<Vec<HeaderName>>,
    poll_timing: bool,
    blocking_threshold: Option<std::time::Duration>,
}

impl Underscore {
    /// A configuration with nothing set: transient settings only.
    pub fn builder() -> Self {
        Self::default()
    }

    /// Keeps persistent route settings and log levels in `path`: loaded by
    /// [`Underscore::init`], rewritten atomically on every persistent change. Without it, a
    /// `persistent` PUT is a 400.
    pub fn settings_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings_file = Some(path.into());
        self
    }

    /// The headers a request's correlation id is taken from, in order (shown in `_tasks`,
    /// `_cat/tasks`, `print_stack` and the slow log). By default `X-Opaque-Id`, `X-Request-Id`,
    /// then `traceparent`; a `traceparent` gives its trace id.
    ///
    /// ```no_run
    /// use actix_web::http::header::HeaderName;
    /// # fn main() -> Result<(), underscore_actix::SettingsError> {
    /// underscore_actix::Underscore::builder()
    ///     .correlation_headers([HeaderName::from_static("x-correlation-id")])
    ///     .init()?;
    /// # Ok(()) }
    /// ```
    pub fn correlation_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.correlation_headers = Some(names.into_iter().collect());
        self
    }

    /// Times each poll of a tracked request's future (off by default: two clock readings and
    /// a few atomic operations a poll, past the overhead budget). Then `GET /_cat/workers`
    /// shows each app worker's busy ratio, longest poll and the request it is polling now;
    /// `_cat/tasks` each task's polls, and `_routes/stats` each route's `blocking_polls` and
    /// `busy_ms`. See `docs/slow-requests.md`.
    pub fn poll_timing(mut self, on: bool) -> Self {
        self.poll_timing = on;
        self
    }

    /// `blocking.threshold`: a timed poll longer than this blocked its worker (default 10 ms).
    /// It is counted for its route and task, and logged once per task on the target
    /// `underscore::blocking`.
    pub fn blocking_threshold(mut self, threshold: std::time::Duration) -> Self {
        self.blocking_threshold = Some(threshold);
        self
    }

    /// Applies the configuration. Call it once, before serving.
    ///
    /// # Errors
    ///
    /// A settings file that is corrupt or unreadable (named in the error, and left untouched),
    /// or a second configuration of the settings file in the same process.
    pub fn init(self) -> Result<(), SettingsError> {
        underscore_core::workers::set_poll_timing(self.poll_timing);
        if let Some(threshold) = self.blocking_threshold {
            underscore_core::workers::set_blocking_threshold(threshold);
        }
        if let Some(names) = self.correlation_headers {
            if !underscore_core::correlation::set_headers(names) {
                tracing::warn!(
                    target: "underscore",
                    "correlation headers were set already: the first list stays"
                );
            }
        }
        if let Some(path) = self.settings_file {
            registry().configure_settings_file(path)?;
        }
        Ok(())
    }
}
