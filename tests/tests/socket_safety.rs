//! The admin socket is private, never steals or deletes what is not its own, and is removed
//! on shutdown.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use underscore_actix::{AdminSocket, SocketError};

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn is_socket(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false)
}

#[test]
fn socket_is_created_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    let admin = AdminSocket::bind(&path).unwrap();
    assert!(is_socket(&path));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(admin.path(), path);
    // The staging directory is gone: only the socket and its lock file remain.
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["admin.sock", "admin.sock.lock"]);
    assert_eq!(mode(&dir.path().join("admin.sock.lock")), 0o600);
}

#[test]
fn socket_is_private_even_with_a_permissive_umask() {
    // The mode must not depend on the umask: the socket is born in a 0700 directory and set to
    // 0600 before it is linked at its path. Run in a child process, as the umask is global.
    if std::env::var_os("UNDERSCORE_UMASK_CHILD").is_some() {
        let path = std::env::var("UNDERSCORE_UMASK_PATH").unwrap();
        let admin = AdminSocket::bind(&path).unwrap();
        assert_eq!(mode(Path::new(&path)), 0o600);
        drop(admin);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" --exact socket_is_private_even_with_a_permissive_umask --nocapture")
        .arg(exe)
        .env("UNDERSCORE_UMASK_CHILD", "1")
        .env("UNDERSCORE_UMASK_PATH", &path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn live_socket_of_another_owner_is_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    // Someone else (no underscore lock) serves this path.
    let other = UnixListener::bind(&path).unwrap();
    let err = AdminSocket::bind(&path).unwrap_err();
    assert!(matches!(err, SocketError::InUse { .. }), "{err:?}");
    assert!(
        err.to_string().contains("in use by a running process"),
        "{err}"
    );
    // Still there, still theirs.
    let mut client = UnixStream::connect(&path).unwrap();
    // The first connection in the backlog is the liveness probe, closed at once.
    let (_probe, _) = other.accept().unwrap();
    let (mut server, _) = other.accept().unwrap();
    client.write_all(b"ping").unwrap();
    let mut buf = [0; 4];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
}

#[test]
fn second_instance_is_refused_and_the_first_keeps_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    let first = AdminSocket::bind(&path).unwrap();
    let err = AdminSocket::bind(&path).unwrap_err();
    assert!(matches!(err, SocketError::InUse { .. }), "{err:?}");
    assert!(is_socket(&path));
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse);
    drop(first);
    assert!(!path.exists());
    // Once the first is gone, the path is free again.
    let again = AdminSocket::bind(&path).unwrap();
    assert!(is_socket(again.path()));
}

#[test]
fn stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(is_socket(&path), "a closed listener leaves its file behind");
    let admin = AdminSocket::bind(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    drop(admin);
    assert!(!path.exists());
}

#[test]
fn regular_file_and_symlink_are_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    fs::write(&path, "precious").unwrap();
    let err = AdminSocket::bind(&path).unwrap_err();
    assert!(matches!(err, SocketError::NotASocket { .. }), "{err:?}");
    assert!(err.to_string().contains("is not a socket"), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "precious");

    let link = dir.path().join("link.sock");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let err = AdminSocket::bind(&link).unwrap_err();
    assert!(matches!(err, SocketError::NotASocket { .. }), "{err:?}");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
}

#[test]
fn a_socket_replaced_by_someone_else_is_not_removed_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    let admin = AdminSocket::bind(&path).unwrap();
    fs::remove_file(&path).unwrap();
    let _theirs = UnixListener::bind(&path).unwrap();
    drop(admin);
    assert!(is_socket(&path), "someone else's socket was deleted");
}

#[test]
fn missing_parent_directory_is_created_private() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("run").join("app");
    let path = parent.join("admin.sock");
    let _admin = AdminSocket::bind(&path).unwrap();
    assert_eq!(mode(&parent), 0o700);
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn socket_file_is_removed_when_the_app_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    let admin = AdminSocket::bind(&path).unwrap();
    let server = common::run_server(Some(admin), || {
        let app = actix_web::HttpServer::new(actix_web::App::new)
            .disable_signals()
            .workers(1)
            .bind("127.0.0.1:0")?;
        Ok((app.addrs()[0], app.run()))
    });
    let out = std::process::Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(&path)
        .arg("http://./_cat")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "=^.^=\n/_cat/routes\n/_cat/routes/{ids}\n/_cat/tasks\n/_cat/tasks/summary\n/_cat/tasks/{task_ids}\n/_cat/middlewares\n/_cat/transports\n/_cat/loggers\n/_cat/health\n/_cat/slowlog\n/_cat/workers\n"
    );
    server.stop();
    assert!(!path.exists(), "the socket outlived the app");
}
