//! HTTP/1.1 over the admin UNIX socket, with hyper.
//!
//! One [`Client`] talks to one socket and keeps its connection alive between requests (`top`
//! polls every second: a new connection each time would cost the server an accept and a
//! handshake per poll). A request that finds the kept connection closed reconnects; a `GET`
//! that fails on a kept connection is sent once more on a new one, a `PUT` or `POST` never is.

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Bytes};
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use crate::error::{CliError, ServerError};

/// How long one request may take, connection included, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer body read, unless told otherwise: a broken server (or something else
/// listening on the socket) must not eat the operator's memory. `_cat/routes?h=*` of 10,000
/// routes is about 10 MiB.
pub const DEFAULT_MAX_ANSWER: usize = 64 << 20;

/// A connection to one admin socket.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    timeout: Duration,
    max_answer: usize,
    conn: Option<SendRequest<Full<Bytes>>>,
}

/// An answer of the admin APIs: its status and its body, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The body, decoded as UTF-8 (invalid sequences replaced).
    pub body: String,
    /// The request it answers, as `GET /_cat/routes?format=json`, for messages.
    pub request: String,
    /// Its `Content-Type`, if it has one.
    pub content_type: Option<String>,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The reply itself when it is a success, else the server's error it carries.
    ///
    /// # Errors
    ///
    /// [`CliError::Server`] with the `reason` of an Elasticsearch error body, or the first line
    /// of any other body.
    pub fn into_success(self) -> Result<Self, CliError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(CliError::Server(ServerError::from_reply(&self)))
        }
    }

    /// The body parsed as JSON.
    ///
    /// # Errors
    ///
    /// [`CliError::BadAnswer`] when the body is not JSON: it names the request and shows the
    /// start of the body.
    pub fn json(&self) -> Result<serde_json::Value, CliError> {
        serde_json::from_str(&self.body).map_err(|err| CliError::BadAnswer {
            request: self.request.clone(),
            status: self.status,
            content_type: self.content_type.clone(),
            why: format!("not JSON ({err})"),
            body: self.body.clone(),
        })
    }
}

impl Client {
    /// A client for the socket at `path`; nothing is connected before the first request.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: DEFAULT_TIMEOUT,
            max_answer: DEFAULT_MAX_ANSWER,
            conn: None,
        }
    }

    /// The same client with another limit on the size of an answer's body, in bytes.
    #[must_use]
    pub fn with_max_answer(mut self, bytes: usize) -> Self {
        self.max_answer = bytes;
        self
    }

    /// The same client with another timeout per request.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `GET path_and_query`.
    ///
    /// # Errors
    ///
    /// See [`Client::request`].
    pub async fn get(&mut self, path_and_query: &str) -> Result<Reply, CliError> {
        self.request(Method::GET, path_and_query, None).await
    }

    /// Sends one request, with a JSON body when given, and reads the whole answer. Any status
    /// is an `Ok` here: [`Reply::into_success`] turns an error status into an error.
    ///
    /// # Errors
    ///
    /// [`CliError::Connect`] when the socket cannot be reached (missing, permission denied,
    /// nothing listening), [`CliError::Timeout`] past the timeout, [`CliError::Http`] when the
    /// exchange breaks, [`CliError::TooLarge`] when the body is larger than the limit
    /// ([`DEFAULT_MAX_ANSWER`]).
    pub async fn request(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: Option<&str>,
    ) -> Result<Reply, CliError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.exchange(method, path_and_query, body)).await {
            Ok(result) => result,
            Err(_) => {
                // The connection may be stuck mid-answer: never reuse it.
                self.conn = None;
                Err(CliError::Timeout {
                    path: self.path.clone(),
                    timeout,
                })
            }
        }
    }

    async fn exchange(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: Option<&str>,
    ) -> Result<Reply, CliError> {
        let reused = self.conn.as_ref().is_some_and(|c| !c.is_closed());
        match self.send_once(&method, path_and_query, body).await {
            // The server may close a kept connection at any time (idle timeout, restart): a
            // GET changes nothing, so sending it again on a fresh connection is safe.
            Err(CliError::Http { .. }) if reused && method == Method::GET => {
                self.conn = None;
                self.send_once(&method, path_and_query, body).await
            }
            other => other,
        }
    }

    async fn send_once(
        &mut self,
        method: &Method,
        path_and_query: &str,
        body: Option<&str>,
    ) -> Result<Reply, CliError> {
        let mut conn = match self.conn.take() {
            Some(conn) if !conn.is_closed() => conn,
            _ => self.connect().await?,
        };
        let http_err = |err| self.http_error(err);
        conn.ready().await.map_err(http_err)?;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path_and_query)
            // HTTP/1.1 requires a Host; the admin server does not look at it.
            .header(header::HOST, "localhost");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
            .map_err(|err| CliError::Usage(format!("invalid request [{path_and_query}]: {err}")))?;
        let res = conn.send_request(req).await.map_err(http_err)?;
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let request = format!("{method} {path_and_query}");
        let too_large = |declared| CliError::TooLarge {
            request: request.clone(),
            limit: self.max_answer,
            declared,
        };
        // A declared length over the limit fails before a byte is read; the connection, with
        // that body unread, is dropped (it is not put back in `self.conn`).
        let declared = res.body().size_hint().exact();
        if let Some(len) = declared.filter(|&len| len > self.max_answer as u64) {
            return Err(too_large(Some(len)));
        }
        let bytes = match Limited::new(res.into_body(), self.max_answer)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<LengthLimitError>() => return Err(too_large(None)),
            Err(err) => {
                return Err(match err.downcast::<hyper::Error>() {
                    Ok(err) => http_err(*err),
                    Err(err) => CliError::Http {
                        path: self.path.clone(),
                        message: err.to_string(),
                    },
                })
            }
        };
        self.conn = Some(conn);
        Ok(Reply {
            status,
            // Without a copy when it is UTF-8, as it should be: the body may be large.
            body: String::from_utf8(Vec::from(bytes))
                .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned()),
            request,
            content_type,
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, CliError> {
        let stream = UnixStream::connect(&self.path)
            .await
            .map_err(|err| CliError::connect(&self.path, err))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| self.http_error(err))?;
        // The connection's I/O runs beside the requests; it ends when the sender is dropped
        // or the server closes it, and its error then shows in the next request.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn http_error(&self, err: hyper::Error) -> CliError {
        CliError::Http {
            path: self.path.clone(),
            message: err.to_string(),
        }
    }
}
