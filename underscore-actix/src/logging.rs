//! Log levels at runtime: a reloadable filter for the app's `tracing-subscriber` stack, which
//! `GET|PUT /_logging/settings` and `GET /_cat/loggers` reach.
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//!
//! # fn main() -> Result<(), underscore_actix::logging::LoggingError> {
//! let defaults = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
//! tracing_subscriber::registry()
//!     .with(underscore_actix::logging::layer(&defaults)?)
//!     .with(tracing_subscriber::fmt::layer())
//!     .init();
//! # Ok(()) }
//! ```
//!
//! Then `PUT /_logging/settings` with `{"transient": {"logger.my_app::db": "debug"}}` lets
//! `my_app::db`'s debug events through on every worker at once, until it is reset with `null`.
//!
//! # The filter
//!
//! An [`EnvFilter`] built from `default_directives` with the settings applied:
//! `logger._root` replaces the bare level, and each `logger.<target>` replaces the plain
//! `target=level` directive for exactly that target, or adds one. As in `EnvFilter`, the most
//! specific directive that matches an event wins (the longest target that is a prefix of the
//! event's target, so `logger.my_app` covers `my_app::db` unless `my_app::db` has its own); a
//! directive with a span or field filter in `default_directives` is kept as written.
//! `underscore::audit=info` is added unless the defaults or a setting name that target, so
//! the audit log of admin changes stays visible when `logger._root` is `off`.
//!
//! # Cost
//!
//! `tracing-subscriber`'s `reload::Layer` takes a read lock (`std::sync::RwLock`) on the filter
//! each time it is consulted: for each enabled event (`event_enabled` and `on_event`) and each
//! span operation. Callsites the filter disables are cached as disabled by `tracing` and never
//! reach it. A reload takes the write lock once and rebuilds `tracing`'s callsite cache.

use tracing::Subscriber;
use tracing_subscriber::filter::ParseError;
use tracing_subscriber::{reload, EnvFilter};
use underscore_core::registry;
use underscore_core::settings::InstallError;

/// Why [`layer`] could not make the filter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// The default directives are not valid `EnvFilter` directives.
    #[error("invalid log filter directives [{directives}]: {source}")]
    InvalidDirectives {
        /// The directives given.
        directives: String,
        /// What `EnvFilter` said.
        #[source]
        source: ParseError,
    },
    /// A filter is installed already: the admin APIs reach one per process.
    #[error(transparent)]
    Install(#[from] InstallError),
}

fn build(directives: &str) -> Result<EnvFilter, ParseError> {
    EnvFilter::builder().parse(directives)
}

/// The reloadable filter to add to the app's `tracing-subscriber` registry, registered with the
/// admin APIs so that `PUT /_logging/settings` can change it.
///
/// `default_directives` are `EnvFilter` directives (`RUST_LOG`'s syntax): what the app filters
/// with when no log level is set. Persistent levels from the settings file apply as soon as
/// both this filter and [`Underscore::settings_file`](crate::Underscore::settings_file) exist,
/// in whichever order they come.
///
/// # Errors
///
/// [`LoggingError::InvalidDirectives`] for directives `EnvFilter` refuses;
/// [`LoggingError::Install`] on a second call in the same process: the first filter stays the
/// one the admin APIs change.
pub fn layer<S>(default_directives: &str) -> Result<reload::Layer<EnvFilter, S>, LoggingError>
where
    S: Subscriber + 'static,
{
    let invalid = |source| LoggingError::InvalidDirectives {
        directives: default_directives.to_owned(),
        source,
    };
    let (layer, handle) = reload::Layer::new(build(default_directives).map_err(invalid)?);
    // Called now (the filter with the audit pin and any persistent levels), then on every
    // change, under the settings lock: one reload at a time.
    registry().install_log_filter(
        default_directives,
        Box::new(move |directives: &str| {
            let filter = build(directives)
                .map_err(|e| format!("invalid filter directives [{directives}]: {e}"))?;
            handle
                .reload(filter)
                .map_err(|e| format!("the log filter could not be reloaded: {e}"))
        }),
    )?;
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::prelude::*;
    use underscore_core::api::{handle, Request};

    use super::*;

    /// A writer of formatted events into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
        }
    }

    fn put(body: &str) -> (u16, String) {
        let res = handle(
            &Request::new("PUT", "/_logging/settings", "")
                .with_body(body.as_bytes())
                .with_caller("uid=0 pid=1"),
        );
        (res.status, String::from_utf8(res.body).unwrap())
    }

    fn emit() {
        tracing::debug!(target: "my_app::db", "db debug");
        tracing::info!(target: "my_app::db", "db info");
        tracing::info!(target: "other", "other info");
        tracing::warn!(target: "other", "other warn");
    }

    // One test for the process-wide filter: there is one per process.
    #[test]
    fn settings_reload_the_filter_with_envfilter_precedence() {
        assert!(matches!(
            layer::<tracing_subscriber::Registry>("info,="),
            Err(LoggingError::InvalidDirectives { .. })
        ));
        let out = Buffer::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry()
            .with(layer("info").unwrap())
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .without_time()
                    .with_writer(move || writer.clone()),
            );
        assert!(matches!(
            layer::<tracing_subscriber::Registry>("info"),
            Err(LoggingError::Install(InstallError::AlreadyInstalled))
        ));
        tracing::subscriber::with_default(subscriber, || {
            emit();
            let log = out.take();
            assert!(
                !log.contains("db debug") && log.contains("other info"),
                "{log}"
            );

            // Root warn, one target debug: that target's debug passes, another's info does not.
            let (status, body) =
                put(r#"{"transient":{"logger._root":"warn","logger.my_app::db":"DEBUG"}}"#);
            assert_eq!(status, 200, "{body}");
            let log = out.take();
            // The audit lines of the change itself, through the pinned audit target.
            assert_eq!(log.matches("underscore::audit").count(), 2, "{log}");
            assert!(log.contains("caller=\"uid=0 pid=1\""), "{log}");
            emit();
            let log = out.take();
            assert!(log.contains("db debug") && log.contains("db info"), "{log}");
            assert!(
                !log.contains("other info") && log.contains("other warn"),
                "{log}"
            );

            // `off` at the root silences everything but the audit log.
            put(r#"{"transient":{"logger._root":"off","logger.my_app::db":null}}"#);
            assert!(out.take().contains("log level changed"));
            emit();
            assert_eq!(out.take(), "");

            // A level for a module covers its submodules.
            put(r#"{"transient":{"logger.my_app":"debug"}}"#);
            out.take();
            emit();
            let log = out.take();
            assert!(log.contains("db debug") && !log.contains("other"), "{log}");

            put(r#"{"transient":{"logger.*":null}}"#);
            out.take();
            emit();
            let log = out.take();
            assert!(
                !log.contains("db debug") && log.contains("other info"),
                "{log}"
            );
        });
    }
}
