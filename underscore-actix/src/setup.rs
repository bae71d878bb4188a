//! Process-wide configuration.

use std::path::PathBuf;

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
    /// applies.
    pub fn operator_settings(mut self, path: impl Into<PathBuf>) -> Self {
        self.operator_settings = Some(path.into());
        self
    }

    /// Applies the configuration. Call it once, before serving.
    ///
    /// # Errors
    ///
    /// A settings file that is corrupt or unreadable (named in the error, and left untouched),
    /// or a second configuration of the settings file in the same process; an operator
    /// settings file whose directory cannot be watched (it does not exist), or a second one.
    pub fn init(self) -> Result<(), SettingsError> {
        if let Some(path) = self.settings_file {
            registry().configure_settings_file(path)?;
        }
        if let Some(path) = self.operator_settings {
            crate::operator::configure_and_watch(registry(), path)?;
        }
        Ok(())
    }
}
