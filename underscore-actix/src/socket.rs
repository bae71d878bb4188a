//! The private UNIX socket that serves the admin APIs.

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};

/// Why the admin socket could not be bound.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SocketError {
    /// Another live process serves this socket; it is left alone.
    #[error("admin socket {} is in use by a running process (stop it, or choose another path)", .path.display())]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Something other than a socket is at the path; it is left alone.
    #[error("{} exists and is not a socket; refusing to replace it", .path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// An I/O error on the path.
    #[error("admin socket {}: {source}", .path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl From<SocketError> for io::Error {
    fn from(err: SocketError) -> Self {
        let kind = match &err {
            SocketError::InUse { .. } => io::ErrorKind::AddrInUse,
            SocketError::NotASocket { .. } => io::ErrorKind::AlreadyExists,
            SocketError::Io { source, .. } => source.kind(),
        };
        io::Error::new(kind, err)
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SocketError + '_ {
    move |source| SocketError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A bound, private UNIX socket for the admin APIs.
///
/// [`AdminSocket::bind`] makes it safely:
/// - the socket is created in a fresh `0700` directory, set to `0600`, and only then linked at
///   its path (a link never replaces anything), so it is never reachable with wider permissions;
/// - `<path>.lock`, locked for the socket's lifetime, keeps two instances from racing for the
///   path; it stays on disk, and it is never the proof of liveness on its own:
/// - a socket already at the path is probed: a live one (it accepts a connection) is never
///   removed, a stale one is replaced; anything that is not a socket is never touched;
/// - the socket file is removed when the `AdminSocket` is dropped, if it is still this one.
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use underscore_actix::{AdminSocket, Observe};
///
/// #[actix_web::main]
/// async fn main() -> std::io::Result<()> {
///     let admin = AdminSocket::bind("/tmp/my-app.sock")?;
///     let app = HttpServer::new(|| App::new().wrap(Observe::new()))
///         .bind("127.0.0.1:8080")?
///         .run();
///     // Serves the admin APIs until `app` stops (Ctrl-C), then removes the socket.
///     admin.run_alongside(app).await
/// }
/// ```
#[derive(Debug)]
pub struct AdminSocket {
    path: PathBuf,
    listener: Option<UnixListener>,
    allowed_uids: Option<Vec<u32>>,
    /// `(device, inode)` of the socket file this instance created.
    identity: (u64, u64),
    _lock: File,
}

impl AdminSocket {
    /// Binds the admin socket at `path` (see the type's docs for the guarantees).
    ///
    /// A missing parent directory is created with mode `0700`.
    ///
    /// # Errors
    ///
    /// [`SocketError::InUse`] if a live process serves `path` (or holds its lock),
    /// [`SocketError::NotASocket`] if something else is there, [`SocketError::Io`] otherwise.
    pub fn bind(path: impl AsRef<Path>) -> Result<Self, SocketError> {
        let path = path.as_ref().to_owned();
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        if path.file_name().is_none() {
            return Err(SocketError::Io {
                path: path.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
            });
        }
        if !parent.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&parent)
                .map_err(io_err(&parent))?;
        }

        check_directory(&parent);
        let mut lock_path = OsString::from(path.as_os_str());
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(SocketError::InUse { path }),
            Err(TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }

        match fs::symlink_metadata(&path) {
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(SocketError::NotASocket { path })
            }
            Ok(_) => match probe(&path) {
                Ok(()) => return Err(SocketError::InUse { path }),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    fs::remove_file(&path).map_err(io_err(&path))?;
                    tracing::info!(path = %path.display(), "removed a stale admin socket");
                }
                // Anything else (say, no permission to connect) says nothing of liveness.
                Err(e) => return Err(io_err(&path)(e)),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }

        let staging = Staging::create(&parent)?;
        let listener = UnixListener::bind(&staging.socket).map_err(io_err(&staging.socket))?;
        fs::set_permissions(&staging.socket, fs::Permissions::from_mode(0o600))
            .map_err(io_err(&staging.socket))?;
        fs::hard_link(&staging.socket, &path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                SocketError::InUse { path: path.clone() }
            } else {
                io_err(&path)(e)
            }
        })?;
        drop(staging);
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        tracing::info!(path = %path.display(), mode = "0600", "admin socket bound");
        Ok(Self {
            path,
            listener: Some(listener),
            allowed_uids: None,
            identity: (meta.dev(), meta.ino()),
            _lock: lock,
        })
    }

    /// Answers only peers with these uids (from the connection's peer credentials); others
    /// get a 403. The socket's `0600` mode already keeps out every uid but its owner's and
    /// root's; this narrows that further (to keep out root, or for a socket made more open).
    #[must_use]
    pub fn allow_uids(mut self, uids: impl IntoIterator<Item = u32>) -> Self {
        self.allowed_uids = Some(uids.into_iter().collect());
        self
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The admin HTTP server on this socket: one worker, no signal handling of its own (it
    /// stops when told, typically once the application server has stopped).
    ///
    /// Keep the `AdminSocket` alive while the server runs: dropping it removes the socket file.
    /// [`AdminSocket::run_alongside`] does all of this for you. (actix logs the listener under
    /// the private directory the socket was born in, since that is the address it was bound to;
    /// clients connect through the path given to [`AdminSocket::bind`].)
    ///
    /// # Errors
    ///
    /// If the server was already built from this socket, or actix cannot use the listener.
    pub fn server(&mut self) -> io::Result<Server> {
        let listener = self.listener.take().ok_or_else(|| {
            io::Error::other("the admin server was already built from this socket")
        })?;
        let connections = underscore_core::components::record_transport(
            "admin",
            "uds",
            &self.path.display().to_string(),
            Some("0600"),
            true,
        );
        let policy = crate::admin::Policy {
            uids: self.allowed_uids.clone().map(Arc::from),
            ..crate::admin::Policy::default()
        };
        Ok(HttpServer::new(move || {
            let policy = policy.clone();
            App::new()
                .app_data(web::Data::new(policy.clone()))
                .configure(|cfg| crate::admin::register(cfg, policy))
                .default_service(web::to(crate::admin::fallback))
        })
        .on_connect(move |conn, ext| {
            if let Some(counter) = &connections {
                ext.insert(underscore_core::components::Connection::open(
                    counter.clone(),
                ));
            }
            // Peer credentials, for the audit log of every change made through the socket.
            if let Some(stream) = conn.downcast_ref::<actix_rt::net::UnixStream>() {
                if let Ok(cred) = stream.peer_cred() {
                    ext.insert(crate::admin::PeerCred {
                        uid: cred.uid(),
                        pid: cred.pid(),
                    });
                }
            }
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen_uds(listener)?
        .run())
    }

    /// Serves the admin APIs until `app` (the application's server) stops, then stops the
    /// admin server and removes the socket. `app` keeps its own signal handling, so Ctrl-C
    /// shuts both down gracefully.
    ///
    /// # Errors
    ///
    /// What `app` returns, or an error building the admin server.
    pub async fn run_alongside(mut self, app: Server) -> io::Result<()> {
        // A drain (`POST /_drain`, SIGTERM when opted in) stops `app`.
        crate::health::attach(&app);
        let admin = self.server()?;
        let handle = admin.handle();
        let admin_task = actix_rt::spawn(admin);
        let result = app.await;
        crate::health::drained().await;
        handle.stop(true).await;
        // The admin server's own result is not the application's: an error was logged by actix.
        let _ = admin_task.await;
        drop(self);
        result
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        // Remove the socket only if it is still the one this instance created.
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.identity => {
                underscore_core::components::forget_transport(
                    "admin",
                    &self.path.display().to_string(),
                );
                if let Err(err) = fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), %err, "could not remove the admin socket");
                } else {
                    tracing::info!(path = %self.path.display(), "admin socket removed");
                }
            }
            _ => {}
        }
    }
}

/// Connects to the socket at `path`, giving up after a second: a live server whose backlog is
/// full would otherwise block the connect (and the start-up) indefinitely. A connect that does
/// not complete in time is taken as a live socket.
fn probe(path: &Path) -> io::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let target = path.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(UnixStream::connect(&target).map(drop));
    });
    rx.recv_timeout(std::time::Duration::from_secs(1))
        .unwrap_or(Ok(()))
}

/// Warns when others may write the socket's directory without the sticky bit: they could
/// remove the socket (and put their own in its place). The socket's own mode keeps them from
/// connecting either way.
fn check_directory(dir: &Path) {
    if let Ok(meta) = fs::metadata(dir) {
        let mode = meta.permissions().mode();
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{:o}", mode & 0o7777),
                "the admin socket's directory is writable by others without the sticky bit: \
                 they could remove the socket; prefer a private directory (0700)"
            );
        }
    }
}

/// A fresh `0700` directory beside the socket path where the socket is born; removed on drop.
struct Staging {
    dir: PathBuf,
    socket: PathBuf,
}

impl Staging {
    fn create(parent: &Path) -> Result<Self, SocketError> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        // A short name, so the staged path fits `sun_path` (108 bytes) nearly whenever the
        // final one does.
        let dir = parent.join(format!(
            ".us{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        // `create` fails if anything is there already: the directory is ours alone.
        DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io_err(&dir))?;
        let socket = dir.join("s");
        Ok(Self { dir, socket })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.socket);
        let _ = fs::remove_dir(&self.dir);
    }
}
