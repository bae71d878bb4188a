//! What can go wrong, each said in one line, and the exit status it gives.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client::Reply;

/// Exit status: the server answered an error (an Elasticsearch error body), or an answer this
/// CLI cannot read (not JSON where JSON is due, or larger than it reads).
pub const EXIT_SERVER_ERROR: u8 = 1;
/// Exit status: the command line was wrong (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: a socket could not be reached (missing, permission denied, nothing listening,
/// timed out, or the exchange broke off).
pub const EXIT_UNREACHABLE: u8 = 3;

/// An error of the admin APIs, from its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The HTTP status.
    pub status: u16,
    /// The `error.reason` of an Elasticsearch body, else the body's first line.
    pub reason: String,
}

impl ServerError {
    /// Reads the reason out of an error reply: `{"error":{"reason":..},"status":..}`, or the
    /// first non-empty line of a body in another shape.
    pub fn from_reply(reply: &Reply) -> Self {
        let es = serde_json::from_str::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/reason")
                    .and_then(|r| r.as_str())
                    .map(str::to_owned)
            });
        // Whatever the server sent ends up on the operator's terminal: escaped, and a body
        // that is not Elasticsearch's (a proxy's page, ...) cut short.
        let reason = match es {
            Some(reason) => printable(&reason, usize::MAX),
            None => reply
                .body
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map_or_else(
                    || "(empty body)".to_owned(),
                    |l| printable(l, EXCERPT_CHARS),
                ),
        };
        Self {
            status: reply.status,
            reason,
        }
    }
}

/// At most this many characters of a body that is not what was expected go into a message.
pub const EXCERPT_CHARS: usize = 100;

/// `text` with every character a terminal would not print as itself escaped as Rust writes
/// it (`\n`, `\u{1b}`), and cut after `max` characters (then `...` follows).
pub fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    for c in chars.by_ref().take(max) {
        // Quotes and backslashes print as themselves; `escape_debug` would escape them too.
        if matches!(c, '"' | '\'' | '\\') {
            out.push(c);
        } else {
            out.extend(c.escape_debug());
        }
    }
    if chars.next().is_some() {
        out.push_str("...");
    }
    out
}

/// A body shown in a message: `it is "..."`, `it starts "..."` when it is longer than
/// [`EXCERPT_CHARS`], or `the body is empty`.
fn quote_body(body: &str) -> String {
    if body.is_empty() {
        return "the body is empty".to_owned();
    }
    let shown = printable(body, EXCERPT_CHARS);
    if body.chars().nth(EXCERPT_CHARS).is_some() {
        format!("it starts \"{shown}\"")
    } else {
        format!("it is \"{shown}\"")
    }
}

/// A size in bytes, in MiB when it is a whole number of them.
fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// Everything the CLI reports as an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// No socket at the path.
    #[error("no admin socket at {} (is the app running? set --socket or UNDERSCORE_SOCKET)", .path.display())]
    SocketMissing {
        /// The socket path.
        path: PathBuf,
    },
    /// The socket exists but this user may not connect to it.
    #[error("permission denied on {} (the socket is 0600: run as its owner or root)", .path.display())]
    PermissionDenied {
        /// The socket path.
        path: PathBuf,
    },
    /// The path exists but nothing accepts connections there.
    #[error("nothing is listening on {} (connection refused: a stale socket?)", .path.display())]
    Refused {
        /// The socket path.
        path: PathBuf,
    },
    /// Any other failure to connect.
    #[error("cannot connect to {}: {message}", .path.display())]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The OS's word for it.
        message: String,
    },
    /// The HTTP exchange broke (the server closed the connection mid-answer, ...).
    #[error("the exchange with {} failed: {message}", .path.display())]
    Http {
        /// The socket path.
        path: PathBuf,
        /// hyper's word for it.
        message: String,
    },
    /// No answer in time.
    #[error("no answer from {} within {timeout:?}", .path.display())]
    Timeout {
        /// The socket path.
        path: PathBuf,
        /// The limit.
        timeout: Duration,
    },
    /// The server answered an error.
    #[error("{} (status {})", .0.reason, .0.status)]
    Server(ServerError),
    /// A success answer this CLI cannot read (not JSON where JSON is due).
    #[error(
        "unexpected answer to {request} ({status}{}): {why}; {}",
        .content_type.as_ref().map(|t| format!(", {}", printable(t, EXCERPT_CHARS))).unwrap_or_default(),
        quote_body(.body)
    )]
    BadAnswer {
        /// The request answered, as `GET /_cat/routes?format=json`.
        request: String,
        /// Its status.
        status: u16,
        /// Its `Content-Type`, if any.
        content_type: Option<String>,
        /// What is wrong with it.
        why: String,
        /// The body (only its start is shown).
        body: String,
    },
    /// An answer's body is larger than the CLI reads.
    #[error(
        "the answer to {request} is larger than {}, the most this CLI reads{}",
        size(*.limit),
        .declared.map(|d| format!(" (it declares {d} bytes)")).unwrap_or_default()
    )]
    TooLarge {
        /// The request answered, as `GET /_cat/routes`.
        request: String,
        /// The limit, in bytes.
        limit: usize,
        /// The length the answer declared, when it declared one.
        declared: Option<u64>,
    },
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// Writing the output failed (other than a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(io::Error),
    /// The terminal could not be set up for `top`.
    #[error("terminal: {0}")]
    Terminal(io::Error),
}

impl CliError {
    /// Classifies a failed `connect(2)` on `path`.
    pub fn connect(path: &Path, err: io::Error) -> Self {
        let path = path.to_owned();
        match err.kind() {
            io::ErrorKind::NotFound => Self::SocketMissing { path },
            io::ErrorKind::PermissionDenied => Self::PermissionDenied { path },
            io::ErrorKind::ConnectionRefused => Self::Refused { path },
            _ => Self::Connect {
                path,
                message: err.to_string(),
            },
        }
    }

    /// Whether the socket could not be reached at all (as opposed to an answer that was an
    /// error or could not be read).
    pub fn is_unreachable(&self) -> bool {
        self.exit_code() == EXIT_UNREACHABLE
    }

    /// The exit status this error gives (see the `EXIT_*` constants).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Server(_)
            | Self::BadAnswer { .. }
            | Self::TooLarge { .. }
            | Self::Output(_)
            | Self::Terminal(_) => EXIT_SERVER_ERROR,
            Self::Usage(_) => EXIT_USAGE,
            Self::SocketMissing { .. }
            | Self::PermissionDenied { .. }
            | Self::Refused { .. }
            | Self::Connect { .. }
            | Self::Http { .. }
            | Self::Timeout { .. } => EXIT_UNREACHABLE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            request: "GET /x".to_owned(),
            content_type: Some("text/plain".to_owned()),
        }
    }

    #[test]
    fn an_elasticsearch_body_gives_its_reason_and_status() {
        let reply = reply(
            404,
            r#"{"error":{"root_cause":[{"type":"resource_not_found_exception","reason":"no such route [nope]"}],"type":"resource_not_found_exception","reason":"no such route [nope]"},"status":404}"#,
        );
        let err = CliError::Server(ServerError::from_reply(&reply));
        assert_eq!(err.to_string(), "no such route [nope] (status 404)");
        assert_eq!(err.exit_code(), EXIT_SERVER_ERROR);
    }

    #[test]
    fn another_body_gives_its_first_line() {
        let reply = reply(502, "\n  bad gateway  \nmore\n");
        assert_eq!(ServerError::from_reply(&reply).reason, "bad gateway");
    }

    #[test]
    fn bodies_in_messages_are_escaped_and_bounded() {
        assert_eq!(
            printable("a\u{7}b\n\"c\" it's", 100),
            "a\\u{7}b\\n\"c\" it's"
        );
        assert_eq!(printable("\u{202e}evil", 100), "\\u{202e}evil");
        assert_eq!(printable("abcdef", 3), "abc...");
        assert_eq!(printable("日本語", 3), "日本語");
        let long = reply(200, &"x".repeat(1000))
            .json()
            .unwrap_err()
            .to_string();
        assert!(
            long.ends_with(&format!("it starts \"{}...\"", "x".repeat(100))),
            "{long}"
        );
        let empty = reply(200, "").json().unwrap_err();
        assert_eq!(empty.exit_code(), EXIT_SERVER_ERROR);
        assert_eq!(
            empty.to_string(),
            "unexpected answer to GET /x (200, text/plain): not JSON (EOF while parsing a value \
             at line 1 column 0); the body is empty"
        );
    }

    #[test]
    fn connect_errors_are_classified_by_kind() {
        let p = Path::new("/x.sock");
        let missing = CliError::connect(p, io::Error::from(io::ErrorKind::NotFound));
        assert!(matches!(missing, CliError::SocketMissing { .. }));
        assert_eq!(missing.exit_code(), EXIT_UNREACHABLE);
        let denied = CliError::connect(p, io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(
            denied.to_string(),
            "permission denied on /x.sock (the socket is 0600: run as its owner or root)"
        );
    }
}
