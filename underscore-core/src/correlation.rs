//! A request's correlation id: what ties it to its client's own logs.
//!
//! Taken from the first of a list of headers the request carries, by default `X-Opaque-Id`
//! (Elasticsearch's), then `X-Request-Id`, then the trace id of a W3C `traceparent`. It is read
//! only where a request is shown (a task registered as it waits, a slow-log entry), never on
//! the path of a request answered at once: a request without any of these headers costs
//! nothing, and one with them costs a boxed header value only if it waits.

use std::sync::OnceLock;

use http::{HeaderName, HeaderValue};

/// The headers looked at, in order, unless [`set_headers`] said otherwise.
pub const DEFAULT_HEADERS: [&str; 3] = ["x-opaque-id", "x-request-id", "traceparent"];

static HEADERS: OnceLock<Box<[HeaderName]>> = OnceLock::new();

/// Sets the headers a correlation id is taken from, in order (a `traceparent` gives its trace
/// id). Once per process, before serving: `false` if they were set (or read) already.
pub fn set_headers(names: impl IntoIterator<Item = HeaderName>) -> bool {
    HEADERS.set(names.into_iter().collect()).is_ok()
}

/// The headers a correlation id is taken from, in order.
pub fn headers() -> &'static [HeaderName] {
    HEADERS.get_or_init(|| {
        DEFAULT_HEADERS
            .iter()
            .map(|name| HeaderName::from_static(name))
            .collect()
    })
}

/// The correlation id of a request whose headers `get` reads: the first of [`headers`] it
/// carries (a `traceparent` only if well formed).
pub fn of<'a>(get: impl Fn(&HeaderName) -> Option<&'a HeaderValue>) -> Option<HeaderValue> {
    headers().iter().find_map(|name| {
        let value = get(name)?;
        if name.as_str() == "traceparent" {
            trace_id(value)
        } else {
            Some(value.clone())
        }
    })
}

/// The trace id of a `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), unless it is
/// malformed or all zeros (which the W3C spec says to ignore).
pub fn trace_id(traceparent: &HeaderValue) -> Option<HeaderValue> {
    let text = traceparent.to_str().ok()?.trim();
    let mut parts = text.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && (version != "00" || parts.next().is_none())
        && trace.bytes().any(|b| b != b'0');
    valid
        .then(|| HeaderValue::from_str(&trace.to_ascii_lowercase()).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn id(headers: &[(&str, &str)]) -> Option<String> {
        let map: HashMap<HeaderName, HeaderValue> = headers
            .iter()
            .map(|(n, v)| (n.parse().unwrap(), HeaderValue::from_str(v).unwrap()))
            .collect();
        of(|name| map.get(name)).map(|v| v.to_str().unwrap().to_owned())
    }

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_first_header_present_wins() {
        assert_eq!(id(&[]), None);
        assert_eq!(
            id(&[("traceparent", PARENT)]).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            id(&[("traceparent", PARENT), ("x-request-id", "r-1")]).as_deref(),
            Some("r-1")
        );
        assert_eq!(
            id(&[
                ("traceparent", PARENT),
                ("x-request-id", "r-1"),
                ("x-opaque-id", "job-42")
            ])
            .as_deref(),
            Some("job-42")
        );
    }

    #[test]
    fn a_malformed_traceparent_gives_nothing() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(id(&[("traceparent", bad)]), None, "{bad}");
        }
        // A later version may carry more fields.
        assert_eq!(
            id(&[(
                "traceparent",
                "01-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01-more"
            )])
            .as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }
}
