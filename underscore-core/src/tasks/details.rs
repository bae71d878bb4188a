//! What a task's entry keeps of its [`TaskKind`]: the same facts in 80 bytes instead of 184
//! (and the entry's two flags).
//!
//! Every waiting request holds an entry, so its size is the registry's memory in a storm. A
//! [`TaskKind`] is what the admin APIs read, built from these when a task is listed:
//!
//! | fact          | in a `TaskKind`             | here                                        |
//! |---------------|-----------------------------|---------------------------------------------|
//! | method        | `Method`, 24 bytes          | 1 byte for the nine standard ones; others boxed (8) |
//! | target        | `Uri`, 88 bytes             | its path and query, 40 (shared with actix's buffer); any other form boxed |
//! | peer          | `Option<SocketAddr>`, 32    | address, port and family, 19                |
//! | `X-Opaque-Id` | `Option<HeaderValue>`, 40   | boxed, 8 (allocated only when sent)          |
//!
//! A peer's IPv6 flow label and scope id are not kept (nothing shows them).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Uri};

use super::{CancelReason, TaskKind};

/// The standard methods, by their one-byte code.
static METHODS: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::PATCH,
    Method::CONNECT,
    Method::TRACE,
];

/// The code of a method not in [`METHODS`]: then it is boxed.
const OTHER_METHOD: u8 = u8::MAX;

/// A task's facts, compactly (see the module docs).
#[derive(Debug)]
pub(super) struct Details {
    target: Target,
    opaque_id: Option<Box<HeaderValue>>,
    other_method: Option<Box<Method>>,
    ip: [u8; 16],
    port: u16,
    family: Family,
    method: u8,
    // The entry's two flags, here where they fill this struct's padding (in the entry, they
    // would make it 8 bytes bigger).
    /// Why the task was cancelled, once it is.
    pub(super) cancelled: Option<CancelReason>,
    /// Whether a stack was asked and not sent yet (its channel waits in the slab).
    pub(super) stack_asked: bool,
}

/// A request's target, or a background task's name.
#[derive(Debug)]
enum Target {
    /// An origin-form target (`/path?query`), the usual one: a clone shares actix's buffer.
    Path(PathAndQuery),
    /// Anything else, boxed as it is rare.
    Other(Box<Other>),
}

#[derive(Debug)]
enum Other {
    /// An absolute-form (or path-less) target.
    Uri(Uri),
    /// A background task.
    Background(Arc<str>),
    /// A task of underscore's own.
    Underscore(&'static str),
}

/// The peer's address family (an enum: its unused values let a slot tell used from free
/// without a byte of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    None,
    V4,
    V6,
}

impl Details {
    /// The facts of `kind`.
    pub(super) fn of(kind: TaskKind) -> Self {
        match kind {
            TaskKind::Request {
                method,
                uri,
                peer,
                opaque_id,
            } => {
                let (method, other_method) = match METHODS.iter().position(|m| *m == method) {
                    Some(code) => (code as u8, None),
                    None => (OTHER_METHOD, Some(Box::new(method))),
                };
                let target = match uri.path_and_query() {
                    Some(target) if uri.authority().is_none() && uri.scheme().is_none() => {
                        Target::Path(target.clone())
                    }
                    _ => Target::Other(Box::new(Other::Uri(uri))),
                };
                let (ip, port, family) = match peer {
                    None => ([0; 16], 0, Family::None),
                    Some(SocketAddr::V4(a)) => {
                        (a.ip().to_ipv6_mapped().octets(), a.port(), Family::V4)
                    }
                    Some(SocketAddr::V6(a)) => (a.ip().octets(), a.port(), Family::V6),
                };
                Details {
                    target,
                    opaque_id: opaque_id.map(Box::new),
                    other_method,
                    ip,
                    port,
                    family,
                    method,
                    cancelled: None,
                    stack_asked: false,
                }
            }
            TaskKind::Background { name } => Self::not_a_request(Other::Background(name)),
            TaskKind::Underscore { name } => Self::not_a_request(Other::Underscore(name)),
        }
    }

    /// The facts of a task that is not a request.
    fn not_a_request(other: Other) -> Self {
        Details {
            target: Target::Other(Box::new(other)),
            opaque_id: None,
            other_method: None,
            ip: [0; 16],
            port: 0,
            family: Family::None,
            method: OTHER_METHOD,
            cancelled: None,
            stack_asked: false,
        }
    }

    /// Whether these are a request's.
    pub(super) fn is_request(&self) -> bool {
        !matches!(&self.target, Target::Other(other) if !matches!(**other, Other::Uri(_)))
    }

    /// The request's method and target (`None` for a background task).
    pub(super) fn method_and_uri(&self) -> Option<(Method, Uri)> {
        let uri = match &self.target {
            Target::Path(target) => Uri::from(target.clone()),
            Target::Other(other) => match &**other {
                Other::Uri(uri) => uri.clone(),
                Other::Background(_) | Other::Underscore(_) => return None,
            },
        };
        Some((self.method(), uri))
    }

    fn method(&self) -> Method {
        match (&self.other_method, METHODS.get(usize::from(self.method))) {
            (Some(method), _) => (**method).clone(),
            (None, Some(method)) => method.clone(),
            (None, None) => unreachable!("a method's code is in METHODS, or it is boxed"),
        }
    }

    fn peer(&self) -> Option<SocketAddr> {
        let v6 = Ipv6Addr::from(self.ip);
        let ip = match self.family {
            Family::None => return None,
            Family::V4 => IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED)),
            Family::V6 => IpAddr::V6(v6),
        };
        Some(SocketAddr::new(ip, self.port))
    }

    /// The [`TaskKind`] these were made of.
    pub(super) fn kind(&self) -> TaskKind {
        match (&self.target, self.method_and_uri()) {
            (Target::Other(other), None) => match &**other {
                Other::Background(name) => TaskKind::Background { name: name.clone() },
                Other::Underscore(name) => TaskKind::Underscore { name },
                Other::Uri(_) => unreachable!("a request has a method and a target"),
            },
            (_, Some((method, uri))) => TaskKind::Request {
                method,
                uri,
                peer: self.peer(),
                opaque_id: self.opaque_id.as_deref().cloned(),
            },
            (Target::Path(_), None) => unreachable!("a path is a request's"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddrV6;

    use super::*;

    fn request(
        method: Method,
        uri: &str,
        peer: Option<SocketAddr>,
        opaque: Option<&str>,
    ) -> TaskKind {
        TaskKind::Request {
            method,
            uri: uri.parse().unwrap(),
            peer,
            opaque_id: opaque.map(|o| HeaderValue::from_str(o).unwrap()),
        }
    }

    fn round_trip(kind: TaskKind) -> TaskKind {
        Details::of(kind).kind()
    }

    #[test]
    fn details_are_80_bytes() {
        assert_eq!(std::mem::size_of::<Details>(), 80);
    }

    #[test]
    fn a_request_comes_back_as_it_went_in() {
        let peers = [
            None,
            Some("10.1.2.3:4567".parse().unwrap()),
            Some("[2001:db8::7]:443".parse().unwrap()),
            Some("[::ffff:10.0.0.1]:80".parse().unwrap()),
        ];
        let methods = [
            Method::GET,
            Method::TRACE,
            Method::from_bytes(b"PURGE").unwrap(),
        ];
        let targets = [
            "/",
            "/items/7?verbose=1",
            "http://example.com:8080/x?y",
            "*",
        ];
        for peer in peers {
            for method in &methods {
                for target in targets {
                    for opaque in [None, Some("job-42")] {
                        let kind = request(method.clone(), target, peer, opaque);
                        let back = round_trip(kind.clone());
                        let (
                            TaskKind::Request {
                                method: m,
                                uri: u,
                                peer: p,
                                opaque_id: o,
                            },
                            TaskKind::Request {
                                method: m2,
                                uri: u2,
                                peer: p2,
                                opaque_id: o2,
                            },
                        ) = (&kind, &back)
                        else {
                            panic!("a request stays a request");
                        };
                        assert_eq!((m, u, p, o), (m2, u2, p2, o2));
                    }
                }
            }
        }
    }

    #[test]
    fn a_v6_peer_loses_only_its_flow_label_and_scope() {
        let peer = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 9, 7, 3));
        let TaskKind::Request { peer: back, .. } =
            round_trip(request(Method::GET, "/", Some(peer), None))
        else {
            panic!("a request stays a request");
        };
        assert_eq!(back, Some("[fe80::1]:9".parse().unwrap()));
    }

    #[test]
    fn a_background_task_keeps_its_name() {
        let details = Details::of(TaskKind::Background {
            name: "reindex".into(),
        });
        assert!(!details.is_request());
        assert!(details.method_and_uri().is_none());
        assert!(matches!(details.kind(), TaskKind::Background { name } if &*name == "reindex"));
    }
}
