//! Watching the operator settings file, so that every change applies within a second.
//!
//! A Kubernetes ConfigMap volume never changes a file in place: the kubelet writes the new
//! files into a new timestamped directory (`..2026_12_04_14_03_07.123456789`), points a
//! temporary symbolic link at it, renames that link over `..data`, then removes the old
//! directory; `settings.json` itself is a link to `..data/settings.json`. A watch on the file
//! (its inode) sees none of that. So the file's directory is watched, and any event in it makes
//! the file read again through its path: a read sees the old files or the new ones, never a mix,
//! since the swap is one rename. A read that finds the file as it was does nothing.
//!
//! Reading the file opens it, which is an event too: events of access are ignored. Events of
//! one change come in bursts (create, link, rename, remove): they are gathered for
//! [`SETTLE`] before the file is read. The file is also read every [`RECHECK`], for what events
//! cannot show (a directory replaced or mounted anew, a file system without events).

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use underscore_core::settings::SettingsError;
use underscore_core::Registry;

/// How long the events of one change are gathered before the file is read.
pub(crate) const SETTLE: Duration = Duration::from_millis(25);

/// How often the file is read even without an event.
pub(crate) const RECHECK: Duration = Duration::from_secs(5);

/// Configures `path` as the operator settings file of `reg` (read and applied now), and
/// watches its directory from a thread of its own, `underscore-operator`, for the life of the
/// process.
pub(crate) fn configure_and_watch(
    reg: &'static Registry,
    path: PathBuf,
) -> Result<(), SettingsError> {
    let unwatchable = |reason: String| SettingsError::Unwatchable {
        path: path.clone(),
        reason,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(unwatchable(format!(
            "its directory {} does not exist (a ConfigMap volume is mounted before the app \
             starts: check the volume's mountPath)",
            dir.display()
        )));
    }
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            // Opening and reading change nothing, and reading the file opens it: reacting to
            // them would read it in a loop.
            Ok(event) if event.kind.is_access() => {}
            // An error (an overflowed event queue) is a reason to read the file too.
            _ => {
                let _ = tx.send(());
            }
        }
    })
    .map_err(|e| unwatchable(e.to_string()))?;
    // Watched before the first read: a change from now on is seen.
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| unwatchable(format!("cannot watch the directory {}: {e}", dir.display())))?;
    reg.configure_operator_settings(&path)?;
    std::thread::Builder::new()
        .name("underscore-operator".to_owned())
        .spawn(move || {
            // Dropping the watcher would end the watch: it lives as long as this thread.
            let _watcher = watcher;
            run(reg, &rx);
        })
        .map_err(|e| unwatchable(format!("cannot start the watching thread: {e}")))?;
    Ok(())
}

fn run(reg: &Registry, events: &mpsc::Receiver<()>) {
    loop {
        match events.recv_timeout(RECHECK) {
            Ok(_) => {
                std::thread::sleep(SETTLE);
                while events.try_recv().is_ok() {}
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        reg.reload_operator_settings();
    }
}
