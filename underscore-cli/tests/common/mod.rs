//! What the CLI's end-to-end tests share: the workspace's example and bench binaries beside
//! the tests, built when missing or stale, and processes killed on drop, among them a
//! quickstart on `127.0.0.1:0` with its admin socket where the test says.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

// ---- binaries ------------------------------------------------------------------------------

/// `target/<profile>/`, where this test's own directory (`deps/`) is.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_owned()
}

/// The server's sources, under the workspace's root: a binary older than any of them is stale.
const SERVER_SOURCES: [&str; 5] = [
    "examples",
    "underscore-actix",
    "underscore-core",
    "underscore-macros",
    "Cargo.lock",
];

/// Runs `cargo build --quiet ARGS` (`--release` in a release profile) with the cargo that runs
/// the tests, when any of `exes` is missing or older than the server's sources or than `more`
/// (other paths under the workspace's root). A `cargo test -p underscore-cli` alone builds no
/// other package's binaries; a `cargo test --workspace` has built them already, with the
/// workspace's features. (Building every time would not be a no-op: `-p underscore-examples`
/// unifies fewer features than the whole workspace, so it would rebuild actix-web.)
pub fn build_if_stale(args: &[&str], exes: &[PathBuf], more: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let sources: Vec<SystemTime> = SERVER_SOURCES
        .iter()
        .chain(more)
        .filter_map(|p| newest(&root.join(p)))
        .collect();
    let stale = |exe: &PathBuf| {
        let built = std::fs::metadata(exe).and_then(|m| m.modified()).ok();
        built.is_none_or(|built| sources.iter().any(|s| *s > built))
    };
    if exes.iter().any(stale) {
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--quiet"])
            .args(args)
            .current_dir(root);
        if profile_dir().file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building {args:?} failed");
    }
    for exe in exes {
        assert!(exe.exists(), "{} is missing", exe.display());
    }
}

/// The newest modification time of a file or of any file under a directory.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|entry| newest(&entry.path()))
        .max()
}

/// The quickstart example binary, beside this test's own directory, as
/// `tests/tests/quickstart_binary.rs` finds it; built first, once, when missing or stale.
pub fn quickstart_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = profile_dir().join("examples").join("quickstart");
        let args = ["-p", "underscore-examples", "--example", "quickstart"];
        build_if_stale(&args, std::slice::from_ref(&exe), &[]);
        exe
    })
}

// ---- processes -----------------------------------------------------------------------------

/// A child process, killed (with its process group when `group`) on drop.
pub struct Proc {
    pub child: Child,
    pub group: bool,
    /// Its stdout, past the first line: kept open, so that later lines do not meet a closed
    /// pipe (`println!` panics on one).
    pub out: Option<BufReader<ChildStdout>>,
}

impl Proc {
    pub fn kill(&mut self) {
        if self.group {
            // chromedriver's Chromium processes are in its group: end them all.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns `cmd` (stdout piped, stderr dropped) and reads the first line it prints, which must
/// start with `prefix`: the process (its stdout kept open) and the rest of that line.
pub fn spawn_announcing(cmd: &mut Command, prefix: &str) -> (Proc, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let proc = Proc {
        child,
        group: false,
        out: Some(out),
    };
    let rest = line
        .trim_end()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    (proc, rest)
}

/// All that `child` prints on its (piped) stdout, read to its end.
pub fn read_stdout(child: &mut Child) -> String {
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout is piped, and read once")
        .read_to_string(&mut out)
        .unwrap();
    out
}

/// `curl ARGS --unix-socket SOCKET http://.PATH`, an admin API's answer (10 s at most).
pub fn curl_socket(socket: &Path, path: &str, args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .arg("--unix-socket")
        .arg(socket)
        .arg(format!("http://.{path}"))
        .output()
        .expect("curl runs")
}

/// A quickstart on `127.0.0.1:0` with its admin socket at `socket`; killed on drop.
pub struct Quickstart {
    pub proc: Proc,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    pub socket: PathBuf,
}

impl Quickstart {
    pub fn start(socket: &Path) -> Self {
        Self::start_with(socket, &[])
    }

    /// [`Quickstart::start`], with more environment variables.
    pub fn start_with(socket: &Path, env: &[(&str, &Path)]) -> Self {
        let (proc, addr) = spawn_announcing(
            Command::new(quickstart_exe())
                .envs(env.iter().copied())
                .env("QUICKSTART_ADDR", "127.0.0.1:0")
                .env("UNDERSCORE_SOCKET", socket)
                .env(
                    "UNDERSCORE_SETTINGS",
                    socket.with_extension("settings.json"),
                )
                .env("RUST_LOG", "warn"),
            "app listening on http://",
        );
        // The socket is bound before the address is printed.
        assert!(socket.exists());
        Self {
            proc,
            addr,
            socket: socket.to_owned(),
        }
    }

    /// `http://ADDR{path}`, an address of the app.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn kill(&mut self) {
        self.proc.kill();
    }
}
