//! What runs around the routes, recorded at runtime for `_cat/middlewares` and
//! `_cat/transports`: the middleware stack (as far as it is declared) and the listeners.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One middleware of the stack.
#[derive(Debug, Clone)]
pub struct MiddlewareEntry {
    /// The order it was built in (innermost first).
    pub built: usize,
    /// Its full type name.
    pub type_name: String,
    /// Where it applies: `app`, `scope /api`, `resource`, ...
    pub scope: String,
    /// `underscore` for ours, `declared` for those the app recorded.
    pub source: &'static str,
}

static MIDDLEWARES: Mutex<Vec<MiddlewareEntry>> = Mutex::new(Vec::new());

/// Records a middleware as its factory builds it (innermost first). Every worker builds the
/// same stack: the first sighting of a `(scope, type)` fixes its place.
pub fn note_middleware(scope: &str, type_name: &str, source: &'static str) {
    let mut all = MIDDLEWARES.lock().unwrap_or_else(|e| e.into_inner());
    if all
        .iter()
        .any(|m| m.scope == scope && m.type_name == type_name)
    {
        return;
    }
    let built = all.len();
    all.push(MiddlewareEntry {
        built,
        type_name: type_name.to_owned(),
        scope: scope.to_owned(),
        source,
    });
}

/// The recorded middleware, outermost first.
pub fn middlewares() -> Vec<MiddlewareEntry> {
    let mut all = MIDDLEWARES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    all.sort_by_key(|m| std::cmp::Reverse(m.built));
    all
}

/// One listener.
#[derive(Debug, Clone)]
pub struct TransportEntry {
    /// Whose: `app` or `admin`.
    pub owner: &'static str,
    /// `tcp`, `tls`, `uds`, or `in-app`.
    pub kind: &'static str,
    /// The address or socket path.
    pub address: String,
    /// The socket file's mode, for a UNIX socket.
    pub mode: Option<String>,
    /// Open connections, where counted.
    pub connections: Option<Arc<AtomicU64>>,
}

static TRANSPORTS: Mutex<Vec<TransportEntry>> = Mutex::new(Vec::new());

/// Records a listener (once per `(owner, address)`); returns its connection counter.
pub fn record_transport(
    owner: &'static str,
    kind: &'static str,
    address: &str,
    mode: Option<&str>,
    counted: bool,
) -> Option<Arc<AtomicU64>> {
    let mut all = TRANSPORTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = all
        .iter()
        .find(|t| t.owner == owner && t.address == address)
    {
        return existing.connections.clone();
    }
    let connections = counted.then(|| Arc::new(AtomicU64::new(0)));
    all.push(TransportEntry {
        owner,
        kind,
        address: address.to_owned(),
        mode: mode.map(str::to_owned),
        connections: connections.clone(),
    });
    connections
}

/// The connection counter of the listener at `address`, if it is counted.
pub fn transport_counter(address: &str) -> Option<Arc<AtomicU64>> {
    TRANSPORTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|t| t.address == address)
        .and_then(|t| t.connections.clone())
}

/// Forgets a listener (its socket was removed).
pub fn forget_transport(owner: &'static str, address: &str) {
    TRANSPORTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|t| !(t.owner == owner && t.address == address));
}

/// Every listener, in the order recorded.
pub fn transports() -> Vec<TransportEntry> {
    TRANSPORTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// An open connection, counted on its listener until dropped.
#[derive(Debug)]
pub struct Connection(Arc<AtomicU64>);

impl Connection {
    /// Counts a connection on `counter`.
    pub fn open(counter: Arc<AtomicU64>) -> Self {
        // Relaxed: a gauge for display.
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The last path segment of a type name, generics kept: `actix_web::middleware::Logger` is
/// `Logger`.
pub fn short_type_name(type_name: &str) -> &str {
    let base = type_name.split('<').next().unwrap_or(type_name);
    match base.rfind("::") {
        Some(i) => &type_name[i + 2..],
        None => type_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(
            short_type_name("actix_web::middleware::logger::Logger"),
            "Logger"
        );
        assert_eq!(short_type_name("a::b::Wrap<c::d::E>"), "Wrap<c::d::E>");
        assert_eq!(short_type_name("Plain"), "Plain");
    }

    #[test]
    fn middlewares_are_listed_outermost_first_once() {
        note_middleware("test-scope", "a::Inner", "declared");
        note_middleware("test-scope", "b::Outer", "declared");
        note_middleware("test-scope", "a::Inner", "declared");
        let ours: Vec<String> = middlewares()
            .into_iter()
            .filter(|m| m.scope == "test-scope")
            .map(|m| m.type_name)
            .collect();
        assert_eq!(ours, ["b::Outer", "a::Inner"]);
    }

    #[test]
    fn connections_are_counted_while_open() {
        let counter = record_transport("app", "tcp", "127.0.0.9:1", None, true).unwrap();
        let a = Connection::open(counter.clone());
        let b = Connection::open(transport_counter("127.0.0.9:1").unwrap());
        assert_eq!(counter.load(Ordering::Relaxed), 2);
        drop((a, b));
        assert_eq!(counter.load(Ordering::Relaxed), 0);
        forget_transport("app", "127.0.0.9:1");
        assert!(transport_counter("127.0.0.9:1").is_none());
    }
}
