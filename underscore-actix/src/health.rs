//! Health checks run off the app's workers, the probes on the app's port, and the drain.
//!
//! - Each check registered with [`Underscore::health_check`](crate::Underscore::health_check)
//!   runs on a thread of its own (`underscore-health-<name>`, its own runtime), every
//!   `interval`, with its `timeout`; probes only read its last result.
//! - [`probes`] answers `GET /livez` and `GET /readyz` on the app's port, before routing.
//! - A drain (`POST /_drain`, SIGTERM when opted in, or [`start_drain`]) runs on a thread of its
//!   own too (`underscore-drain`), as the task `underscore:drain`.

use std::borrow::Cow;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::dev::{
    forward_ready, Server, ServerHandle, Service, ServiceRequest, ServiceResponse, Transform,
};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{ConnectionType, Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{Error, HttpResponse};
use pin_project_lite::pin_project;
use underscore_core::health::{self, Check, CheckSpec, DrainPhase, Readiness};
use underscore_core::tasks::{tasks, CancelReason, TaskKind};

/// A check's function, as the runner calls it: a fresh future per run.
type CheckFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>>>> + Send + Sync + 'static>;

/// A named health check, for [`Underscore::health_check`](crate::Underscore::health_check).
///
/// ```no_run
/// use std::time::Duration;
/// use underscore_actix::{HealthCheck, Underscore};
///
/// # fn main() -> Result<(), underscore_actix::SettingsError> {
/// Underscore::builder()
///     .health_check(
///         HealthCheck::new("database", || async {
///             // e.g. `SELECT 1` on a pooled connection
///             Ok::<(), std::io::Error>(())
///         })
///         .critical()
///         .interval(Duration::from_secs(5))
///         .timeout(Duration::from_secs(1)),
///     )
///     .init()?;
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Clone)]
pub struct HealthCheck {
    pub(crate) spec: CheckSpec,
    pub(crate) run: CheckFn,
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCheck")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl HealthCheck {
    /// A non-critical check named `name` that calls `check` every 10 s and fails it after 2 s.
    ///
    /// `check` runs on the check's own thread, in a runtime of its own (tokio's timers and I/O
    /// work there), never on the app's workers; its future need not be `Send`. An `Err` fails
    /// the check with the error's text as the reason; so does a run past the timeout (its
    /// future is then dropped). A check that blocks its thread still fails at its timeout, but
    /// its next run waits for it.
    ///
    /// # Panics
    ///
    /// If `name` is empty or holds anything but ASCII letters, digits, `-`, `_` and `.`.
    pub fn new<F, Fut, E>(name: &str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + 'static,
        E: std::fmt::Display,
    {
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "a health check's name is ASCII letters, digits, `-`, `_` or `.`: [{name}]"
        );
        Self {
            spec: CheckSpec {
                name: name.to_owned(),
                critical: false,
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(2),
            },
            run: Arc::new(move || {
                let fut = check();
                Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
            }),
        }
    }

    /// A failure makes the node `red` and not ready (otherwise `yellow`, still ready).
    pub fn critical(mut self) -> Self {
        self.spec.critical = true;
        self
    }

    /// The time between the end of a run and the start of the next (default 10 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.spec.interval = interval;
        self
    }

    /// How long a run may take before it fails (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.spec.timeout = timeout;
        self
    }
}

/// Installs the checks and starts their runners.
pub(crate) fn start_checks(checks: Vec<HealthCheck>) -> Result<(), String> {
    let runs: Vec<CheckFn> = checks.iter().map(|c| c.run.clone()).collect();
    let installed = health::install(checks.into_iter().map(|c| c.spec).collect())?;
    for (check, run) in installed.iter().zip(runs) {
        std::thread::Builder::new()
            .name(format!("underscore-health-{}", check.spec().name))
            .spawn(move || actix_rt::System::new().block_on(run_check(check, run)))
            .map_err(|e| format!("cannot start the health check thread: {e}"))?;
    }
    Ok(())
}

async fn run_check(check: &'static Check, run: CheckFn) {
    let spec = check.spec();
    let mut passed = None;
    loop {
        check.begin();
        let start = Instant::now();
        let result = match actix_rt::time::timeout(spec.timeout, run()).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "timed out after {}",
                underscore_core::time_value::format(spec.timeout)
            )),
        };
        let took = start.elapsed();
        match (&result, passed) {
            (Err(error), Some(true) | None) => {
                tracing::warn!(target: "underscore::health", check = %spec.name, critical = spec.critical, %error, "health check failed");
            }
            (Ok(()), Some(false)) => {
                tracing::info!(target: "underscore::health", check = %spec.name, "health check passes again");
            }
            _ => {}
        }
        passed = Some(result.is_ok());
        check.finish(result, took);
        actix_rt::time::sleep(spec.interval).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Probes.

/// The probes on the app's port: `GET /livez` and `GET /readyz` (see [`Probes`]).
pub fn probes() -> Probes {
    Probes::default()
}

/// App-level middleware answering the liveness and readiness probes before routing.
///
/// - `GET /livez`: `200 live` from whichever worker takes it; it does not depend on the
///   health checks (a database outage must not restart every replica).
/// - `GET /readyz`: `200 ready`, or `503` with one line saying why: the node drains, was
///   failed by hand (`POST /_health/_fail`), or a critical check fails.
///
/// Both take `HEAD` too; another method goes on to the app. They read the last results of the
/// checks (atomic loads), never run them, and are never counted as routes. The answer travels
/// as an error carrying its response (as `Observe`'s own answers do), so that the app's body
/// type, and the cost of its own requests, stay as they are: middleware wrapped outside
/// `probes()` see an error for a probe. While the node
/// drains, every response that passes through this middleware carries `Connection: close`, so
/// that kept-alive connections close once their current request is answered.
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use underscore_actix::{probes, Observe};
///
/// # async fn run() -> std::io::Result<()> {
/// HttpServer::new(|| App::new().wrap(Observe::new()).wrap(probes().readyz("/ready")))
///     .bind("0.0.0.0:8080")?
///     .run()
///     .await
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Probes {
    livez: Cow<'static, str>,
    readyz: Cow<'static, str>,
}

impl Default for Probes {
    fn default() -> Self {
        Self {
            livez: Cow::Borrowed("/livez"),
            readyz: Cow::Borrowed("/readyz"),
        }
    }
}

impl Probes {
    /// The liveness probe's path (default `/livez`).
    pub fn livez(mut self, path: impl Into<Cow<'static, str>>) -> Self {
        self.livez = path.into();
        self
    }

    /// The readiness probe's path (default `/readyz`).
    pub fn readyz(mut self, path: impl Into<Cow<'static, str>>) -> Self {
        self.readyz = path.into();
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for Probes
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = ProbesMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        underscore_core::components::note_middleware(
            "app",
            std::any::type_name::<Probes>(),
            "underscore",
        );
        ready(Ok(ProbesMiddleware {
            service,
            livez: self.livez.clone(),
            readyz: self.readyz.clone(),
        }))
    }
}

/// The [`Service`] of [`Probes`], one per worker.
#[derive(Debug)]
pub struct ProbesMiddleware<S> {
    service: S,
    livez: Cow<'static, str>,
    readyz: Cow<'static, str>,
}

/// A probe's answer: a static line, `text/plain`.
fn probe_answer(status: StatusCode, line: &'static str) -> HttpResponse {
    let mut res =
        HttpResponse::with_body(status, Bytes::from_static(line.as_bytes())).map_into_boxed_body();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // Probes describe this instant: never cached.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

impl<S, B> Service<ServiceRequest> for ProbesMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = ProbesFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let path = req.path();
        let probe = if path == self.readyz {
            Some(true)
        } else if path == self.livez {
            Some(false)
        } else {
            None
        };
        if let Some(readiness) = probe {
            if matches!(*req.method(), Method::GET | Method::HEAD) {
                // Never a route: an `Observe` around this one passes it through.
                crate::claim::claim(&req);
                let mut res = if readiness {
                    match health::readiness() {
                        Readiness::Ready => probe_answer(StatusCode::OK, Readiness::Ready.line()),
                        not => probe_answer(StatusCode::SERVICE_UNAVAILABLE, not.line()),
                    }
                } else {
                    probe_answer(StatusCode::OK, "live\n")
                };
                if health::is_draining() {
                    res.head_mut().set_connection_type(ConnectionType::Close);
                }
                // Sent as an error carrying its response, which actix's dispatcher sends as is:
                // the app's body type stays its own, so its requests pay nothing for it.
                // (Middleware wrapped outside `probes()` see an error.)
                return ProbesFuture::Answer {
                    err: Some(InternalError::from_response("probe", res).into()),
                };
            }
        }
        ProbesFuture::App {
            fut: self.service.call(req),
        }
    }
}

pin_project! {
    /// The response future of [`ProbesMiddleware`].
    #[project = ProbesFutureProj]
    #[allow(missing_docs)]
    pub enum ProbesFuture<F> {
        /// A request of the app.
        App {
            #[pin]
            fut: F,
        },
        /// A probe, answered.
        Answer {
            err: Option<Error>,
        },
    }
}

impl<F, B> Future for ProbesFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<B>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut res = match self.project() {
            ProbesFutureProj::App { fut } => match fut.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Ready(Ok(res)) => res,
            },
            ProbesFutureProj::Answer { err } => {
                return Poll::Ready(Err(err.take().expect("a probe's answer is taken once")))
            }
        };
        if health::is_draining() {
            res.response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        Poll::Ready(Ok(res))
    }
}

// ---------------------------------------------------------------------------------------------
// The drain.

/// The servers a drain stops.
static SERVERS: Mutex<Vec<ServerHandle>> = Mutex::new(Vec::new());

/// Whether SIGTERM starts a drain (the builder's opt-in).
pub(crate) static DRAIN_ON_SIGTERM: AtomicBool = AtomicBool::new(false);
/// A SIGTERM came before any server was attached: drain as soon as one is.
static SIGTERM_PENDING: AtomicBool = AtomicBool::new(false);

/// Why a drain could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DrainError {
    /// No server was attached to be drained.
    #[error("{0}")]
    NothingToDrain(String),
}

/// Starts a drain of the attached servers, as `POST /_drain` does: the builder's delay and
/// timeout where `None`. Returns the drain's task id (that of the drain already running, if
/// one is).
///
/// # Errors
///
/// [`DrainError::NothingToDrain`] when no server was attached
/// ([`AdminSocket::run_alongside`](crate::AdminSocket::run_alongside) or [`serve`]).
pub fn start_drain(
    delay: Option<Duration>,
    timeout: Option<Duration>,
) -> Result<String, DrainError> {
    start_drain_as(delay, timeout, "app")
}

fn start_drain_as(
    delay: Option<Duration>,
    timeout: Option<Duration>,
    caller: &str,
) -> Result<String, DrainError> {
    let started =
        health::start_drain(delay, timeout, caller).map_err(DrainError::NothingToDrain)?;
    if !started.already_running {
        // Not through the admin APIs (whose drains are audited): the app's own, or SIGTERM.
        tracing::info!(target: "underscore::drain", caller, task = %started.info.task, "drain started");
    }
    Ok(started.info.task)
}

/// Serves `app` until it stops, as a drain can stop it: for apps that mount the admin APIs
/// in-app (with [`AdminSocket`](crate::AdminSocket), use its `run_alongside`, which does the
/// same).
///
/// # Errors
///
/// What `app` returns.
pub async fn serve(app: Server) -> std::io::Result<()> {
    attach(&app);
    let result = app.await;
    drained().await;
    result
}

/// Once a server stopped: if a drain stopped it, waits (a second at most) for the drain to
/// finish its last step, so that its last log line is written before `main` returns.
pub(crate) async fn drained() {
    if !health::is_draining() {
        return;
    }
    for _ in 0..1000 {
        if health::drain_phase() == DrainPhase::Stopped {
            return;
        }
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Makes `app` one of the servers a drain stops, and starts listening for SIGTERM when the
/// builder opted in. Call within the actix runtime that runs `app`.
pub(crate) fn attach(app: &Server) {
    health::set_drainer(Box::new(drainer));
    SERVERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(app.handle());
    listen_for_sigterm();
    if SIGTERM_PENDING.swap(false, Ordering::Relaxed) {
        sigterm();
    }
}

/// Installs the SIGTERM handler once, if the builder opted in (within an actix runtime).
pub(crate) fn listen_for_sigterm() {
    static LISTENING: AtomicBool = AtomicBool::new(false);
    if !DRAIN_ON_SIGTERM.load(Ordering::Relaxed) || actix_rt::System::try_current().is_none() {
        return;
    }
    if LISTENING.swap(true, Ordering::Relaxed) {
        return;
    }
    #[cfg(unix)]
    {
        use actix_rt::signal::unix::{signal, SignalKind};
        // Installed now, not when the task first runs: a SIGTERM right after start-up drains.
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                actix_rt::spawn(async move {
                    while term.recv().await.is_some() {
                        sigterm();
                    }
                });
            }
            Err(err) => {
                LISTENING.store(false, Ordering::Relaxed);
                tracing::error!(target: "underscore::drain", %err, "cannot listen for SIGTERM");
            }
        }
    }
}

fn sigterm() {
    if SERVERS.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
        tracing::info!(target: "underscore::drain", "SIGTERM received before any server runs: the drain starts with the first one");
        SIGTERM_PENDING.store(true, Ordering::Relaxed);
        return;
    }
    tracing::info!(target: "underscore::drain", "SIGTERM received: draining");
    if let Err(err) = start_drain_as(None, None, "SIGTERM") {
        tracing::error!(target: "underscore::drain", %err, "the drain did not start");
    }
}

/// Starts the drain's thread; returns its task id once registered.
fn drainer(delay: Duration, timeout: Duration) -> Result<String, String> {
    let servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if servers.is_empty() {
        return Err(
            "no server to drain: serve the app with AdminSocket::run_alongside or \
                    underscore_actix::serve"
                .to_owned(),
        );
    }
    // Counted now, for the answer that starts the drain.
    health::set_drain_in_flight(in_flight().len() as u64);
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("underscore-drain".to_owned())
        .spawn(move || {
            let drain = crate::background::Background::new(
                TaskKind::Underscore { name: "drain" },
                drain(servers, delay, timeout),
                Some(tx),
            );
            actix_rt::System::new().block_on(drain);
        })
        .map_err(|e| format!("cannot start the drain's thread: {e}"))?;
    rx.recv()
        .map_err(|_| "the drain's thread ended before it began".to_owned())
}

/// The numbers of the requests in flight.
fn in_flight() -> std::collections::HashSet<u64> {
    tasks()
        .briefs()
        .into_iter()
        .filter(|b| b.is_request)
        .map(|b| b.number)
        .collect()
}

/// How often the drain counts the requests in flight.
const POLL: Duration = Duration::from_millis(50);

/// The drain's sequence (readiness already fails: [`health::start_drain`] saw to it).
async fn drain(servers: Vec<ServerHandle>, delay: Duration, timeout: Duration) {
    use underscore_core::time_value::format;
    tracing::info!(
        target: "underscore::drain",
        phase = "delay",
        delay = %format(delay),
        timeout = %format(timeout),
        "drain: readiness fails; serving on for the delay, so that load balancers notice"
    );
    // The count of requests in flight kept fresh for `_health` and the task's status.
    let serving_until = Instant::now() + delay;
    loop {
        let now = Instant::now();
        if now >= serving_until {
            break;
        }
        actix_rt::time::sleep(POLL.min(serving_until - now)).await;
        health::set_drain_in_flight(in_flight().len() as u64);
    }

    health::set_drain_phase(DrainPhase::Waiting);
    // Graceful: each server closes its listeners at once, closes idle kept-alive connections,
    // and closes the others once their current response is sent (`Connection: close`).
    let stops: Vec<_> = servers.iter().map(|s| s.stop(true)).collect();
    let deadline = Instant::now() + timeout;
    let mut left = in_flight();
    tracing::info!(
        target: "underscore::drain",
        phase = "waiting",
        in_flight = left.len(),
        "drain: listeners closed; waiting for the requests in flight"
    );
    loop {
        health::set_drain_in_flight(left.len() as u64);
        let now = Instant::now();
        if left.is_empty() || now >= deadline {
            break;
        }
        actix_rt::time::sleep(POLL.min(deadline - now)).await;
        left = in_flight();
    }
    if !left.is_empty() {
        health::set_drain_phase(DrainPhase::Interrupting);
        let interrupted = tasks().cancel_many(&left, CancelReason::Drain).len();
        health::set_drain_interrupted(interrupted as u64);
        tracing::warn!(
            target: "underscore::drain",
            phase = "interrupting",
            interrupted,
            "drain: the timeout ran out; requests still in flight answered 503 Server draining"
        );
    }
    health::set_drain_phase(DrainPhase::Stopping);
    tracing::info!(target: "underscore::drain", phase = "stopping", "drain: waiting for the servers to stop");
    for stop in stops {
        stop.await;
    }
    health::set_drain_in_flight(0);
    health::set_drain_phase(DrainPhase::Stopped);
    tracing::info!(target: "underscore::drain", phase = "stopped", "drain: done");
}
