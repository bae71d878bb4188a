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
///     .init()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct Underscore {
    settings_file: Option<PathBuf>,
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

    /// Applies the configuration. Call it once, before serving.
    ///
    /// # Errors
    ///
    /// A settings file that is corrupt or unreadable (named in the error, and left untouched),
    /// or a second configuration of the settings file in the same process.
    pub fn init(self) -> Result<(), SettingsError> {
        if let Some(path) = self.settings_file {
            registry().configure_settings_file(path)?;
        }
        Ok(())
    }
}
