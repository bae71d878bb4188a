//! Process-wide configuration.

use std::path::PathBuf;
use std::time::Duration;

use actix_web::http::header::HeaderName;
use underscore_core::registry;
use underscore_core::settings::SettingsError;

/// Process-wide configuration of the admin APIs, built once at start-up.
///
/// ```no_run
/// # fn main() -> Result<(), underscore_actix::SettingsError> {
/// underscore_actix::Underscore::builder()
///     .settings_file("/var/lib/my-app/underscore-settings.json")
///     .operator_settings("/etc/my-app/operator/settings.json")
///     .init()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct Underscore {
    settings_file: Option<PathBuf>,
    operator_settings: Option<PathBuf>,
    checks: Vec<crate::HealthCheck>,
    drain_delay: Option<Duration>,
    drain_timeout: Option<Duration>,
    drain_on_sigterm: bool,
    correlation_headers: Option<Vec<HeaderName>>,
    poll_timing: bool,
    blocking_threshold: Option<Duration>,
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

    /// Applies the fleet's settings from the operator settings file at `path` (typically a
    /// Kubernetes ConfigMap's `settings.json`): the `operator` tier, above transient, which
    /// the settings APIs refuse to change. [`Underscore::init`] reads it, then its directory
    /// is watched and every change applied within a second, all or nothing. See the guide,
    /// `docs/fleet-settings.md`, and [`underscore_core::settings::operator`] for the format.
    ///
    /// A file that is missing, or not valid, is no start-up error: the app starts without it
    /// (the error is logged and shown by `GET /_operator/settings`), and the next good file
    /// applies. A health check `operator_settings` (not critical) fails while the file read
    /// last is not the one in effect, with its error: the node is then `yellow`.
    pub fn operator_settings(mut self, path: impl Into<PathBuf>) -> Self {
        self.operator_settings = Some(path.into());
        self
    }

    /// Registers a health check (see [`HealthCheck`](crate::HealthCheck)): `GET /_health`
    /// and `GET /_cat/health` show it, `/readyz` fails while a critical one does.
    ///
    /// # Panics
    ///
    /// In [`Underscore::init`], if two checks share a name.
    pub fn health_check(mut self, check: crate::HealthCheck) -> Self {
        self.checks.push(check);
        self
    }

    /// How long a drain keeps serving after readiness fails, before it closes the listeners,
    /// when `POST /_drain` (or SIGTERM) does not say (default 5 s): longer than the load
    /// balancer takes to notice (Kubernetes: the readiness probe's `periodSeconds` times its
    /// `failureThreshold`).
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = Some(delay);
        self
    }

    /// How long a drain waits for the requests in flight once the listeners are closed, before
    /// it interrupts them (503 `Server draining`), when `POST /_drain` does not say (default
    /// 30 s). Give the app's `HttpServer::shutdown_timeout` more than this: actix drops the
    /// connections still open when it runs out.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = Some(timeout);
        self
    }

    /// SIGTERM starts a drain (with the default delay and timeout) instead of stopping the
    /// process: Kubernetes sends it to stop a pod. Turn actix's own signal handling off
    /// (`HttpServer::disable_signals`, or a `shutdown_signal` without SIGTERM), or it stops the
    /// server at once. The process exits once the drain has stopped the servers, as `main`
    /// returns.
    pub fn drain_on_sigterm(mut self) -> Self {
        self.drain_on_sigterm = true;
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
    ///
    /// This is the default of the node setting `poll_timing.enabled`: an operator turns poll
    /// timing on or off at runtime with `PUT /_node/settings`.
    pub fn poll_timing(mut self, on: bool) -> Self {
        self.poll_timing = on;
        self
    }

    /// `blocking.threshold`: a timed poll longer than this blocked its worker (default 10 ms).
    /// It is counted for its route and task, and logged once per task on the target
    /// `underscore::blocking`.
    ///
    /// This is the default of the node setting `blocking.threshold`, which an operator changes
    /// at runtime with `PUT /_node/settings`.
    pub fn blocking_threshold(mut self, threshold: Duration) -> Self {
        self.blocking_threshold = Some(threshold);
        self
    }

    /// Applies the configuration. Call it once, before serving.
    ///
    /// # Errors
    ///
    /// A settings file that is corrupt or unreadable (named in the error, and left untouched),
    /// or a second configuration of the settings file in the same process; an operator
    /// settings file whose directory cannot be watched (it does not exist), or a second one.
    ///
    /// # Panics
    ///
    /// If two health checks share a name, if health checks were installed already, or if a
    /// check's thread cannot be started.
    pub fn init(mut self) -> Result<(), SettingsError> {
        // The defaults of the node settings: a settings file or an operator file read below,
        // or `PUT /_node/settings` later, may set other values.
        registry().configure_node_defaults(
            self.poll_timing,
            self.blocking_threshold
                .unwrap_or(underscore_core::workers::DEFAULT_BLOCKING_THRESHOLD),
        );
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
        if let Some(path) = self.operator_settings {
            crate::operator::configure_and_watch(registry(), path)?;
            // A file that is not applied (not valid, or an older version) makes the node
            // yellow, not unready: the last good settings are in force.
            self.checks.push(
                crate::HealthCheck::new("operator_settings", || async {
                    match registry().operator_status() {
                        Some(status) if !status.is_ok() => {
                            Err(status.last_error.unwrap_or_default())
                        }
                        _ => Ok(()),
                    }
                })
                .interval(Duration::from_secs(1)),
            );
        }
        underscore_core::health::mark_started();
        let (delay, timeout) = underscore_core::health::drain_defaults();
        underscore_core::health::set_drain_defaults(
            self.drain_delay.unwrap_or(delay),
            self.drain_timeout.unwrap_or(timeout),
        );
        if !self.checks.is_empty() {
            if let Err(err) = crate::health::start_checks(self.checks) {
                panic!("{err}");
            }
        }
        if self.drain_on_sigterm {
            crate::health::DRAIN_ON_SIGTERM.store(true, std::sync::atomic::Ordering::Relaxed);
            // Now, if within the runtime that will serve; else when a server is attached.
            crate::health::listen_for_sigterm();
        }
        Ok(())
    }
}
