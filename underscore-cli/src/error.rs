//! What can go wrong, each said in one line, and the exit status it gives.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client::Reply;

/// Exit status: the server answered an error (an Elasticsearch error body).
pub const EXIT_SERVER_ERROR: u8 = 1;
/// Exit status: the command line was wrong (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: a socket could not be reached (missing, permission denied, nothing listening,
/// timed out, or a broken answer).
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
        let reason = es.unwrap_or_else(|| {
            reply
                .body
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("(empty body)")
                .to_owned()
        });
        Self {
            status: reply.status,
            reason,
        }
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
    /// The server answered something this CLI cannot read.
    #[error("unexpected answer: {0}")]
    BadAnswer(String),
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

    /// The exit status this error gives (see the `EXIT_*` constants).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Server(_) | Self::Output(_) | Self::Terminal(_) => EXIT_SERVER_ERROR,
            Self::Usage(_) => EXIT_USAGE,
            Self::SocketMissing { .. }
            | Self::PermissionDenied { .. }
            | Self::Refused { .. }
            | Self::Connect { .. }
            | Self::Http { .. }
            | Self::Timeout { .. }
            | Self::BadAnswer(_) => EXIT_UNREACHABLE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_elasticsearch_body_gives_its_reason_and_status() {
        let reply = Reply {
            status: 404,
            body: r#"{"error":{"root_cause":[{"type":"resource_not_found_exception","reason":"no such route [nope]"}],"type":"resource_not_found_exception","reason":"no such route [nope]"},"status":404}"#.to_owned(),
        };
        let err = CliError::Server(ServerError::from_reply(&reply));
        assert_eq!(err.to_string(), "no such route [nope] (status 404)");
        assert_eq!(err.exit_code(), EXIT_SERVER_ERROR);
    }

    #[test]
    fn another_body_gives_its_first_line() {
        let reply = Reply {
            status: 502,
            body: "\n  bad gateway  \nmore\n".to_owned(),
        };
        assert_eq!(ServerError::from_reply(&reply).reason, "bad gateway");
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
