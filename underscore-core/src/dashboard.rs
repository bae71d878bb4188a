//! The browser dashboard: one HTML page, its script and style inline, served by
//! `underscore ui` and by the in-app mount at `<mount>/_ui`.
//!
//! The page uses only the admin APIs (`_cat/routes`, `_tasks`, `_routes/{ids}/settings`,
//! `_routes/{ids}/interrupt`, `_tasks/{id}/_cancel`, `print_stack`, `_logging/settings`,
//! `_cat/loggers`, and `_health` where it answers) plus one list of nodes, `GET <mount>/_ui/nodes`
//! ([`nodes_json`]): `{"nodes": [{"name": .., "base": ..}]}`, where `base` is the path prefix
//! of that node's admin APIs, relative to the mount. It asks nothing of any other host: the
//! [`CONTENT_SECURITY_POLICY`] served with it forbids it.
//!
//! A bearer token, when the admin APIs need one, comes in the URL's fragment
//! (`.../_ui#token=...`), which browsers never send: the page takes it out of the address bar
//! and sends it as `Authorization: Bearer` on its calls. The page itself holds no data, so it
//! is served without the token.
//!
//! The helpers here are the cross-site checks both servers apply: a state change that carries
//! an `Origin` must come from the server's own origin ([`same_origin`]), and without a token the
//! `Host` must name the loopback interface ([`is_loopback_host`]), so that a page of another site
//! resolved to 127.0.0.1 (DNS rebinding) is refused.

/// The page.
pub const PAGE: &str = include_str!("dashboard.html");

/// The `Content-Security-Policy` the page is served with: it may talk to its own origin only,
/// loads nothing, and may not be framed (no clickjacking of its buttons).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Every header the page is served with, besides `Content-Type: text/html; charset=utf-8`.
pub const PAGE_HEADERS: [(&str, &str); 5] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// The body of `GET <mount>/_ui/nodes`: each node's name and the path prefix of its admin
/// APIs, relative to the mount (`""` in-app, `/n/0` for the first socket of `underscore ui`).
pub fn nodes_json<'a>(nodes: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let nodes: Vec<serde_json::Value> = nodes
        .into_iter()
        .map(|(name, base)| serde_json::json!({ "name": name, "base": base }))
        .collect();
    serde_json::json!({ "nodes": nodes }).to_string()
}

/// Whether `origin` (an `Origin` header) is the origin of a request made with `scheme` to
/// `host` (its `Host` header): `http://127.0.0.1:8080` for `http` and `127.0.0.1:8080`.
/// Schemes and host names compare without case; the default port may be left out on either
/// side.
pub fn same_origin(origin: &str, scheme: &str, host: &str) -> bool {
    let Some((o_scheme, o_host)) = origin.split_once("://") else {
        return false;
    };
    if !o_scheme.eq_ignore_ascii_case(scheme) || o_host.contains('/') {
        return false;
    }
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => "",
    };
    let strip = |h: &str| {
        let h = h.to_ascii_lowercase();
        match h.strip_suffix(default_port) {
            Some(short) if !default_port.is_empty() => short.to_owned(),
            _ => h,
        }
    };
    !host.is_empty() && strip(o_host) == strip(host)
}

/// Whether a `Host` header (`name[:port]`, `[v6]:port`) names the loopback interface:
/// `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_talks_to_its_own_origin_only() {
        assert!(PAGE.starts_with("<!doctype html>"));
        // No URL of another host, no external script, style or font.
        for needle in ["http://", "https://", "//cdn", "<script src", "<link"] {
            let hits: Vec<&str> = PAGE
                .lines()
                .filter(|l| l.contains(needle) && !l.contains("www.w3.org/2000/svg"))
                .collect();
            assert!(hits.is_empty(), "{needle}: {hits:?}");
        }
        assert!(CONTENT_SECURITY_POLICY.contains("connect-src 'self'"));
        // Data from the servers is never parsed as HTML.
        assert!(!PAGE.contains("innerHTML") && !PAGE.contains("insertAdjacentHTML"));
        assert!(PAGE.contains("data-ready"));
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin(
            "http://127.0.0.1:8080",
            "http",
            "127.0.0.1:8080"
        ));
        assert!(same_origin("HTTP://LocalHost:9", "http", "localhost:9"));
        assert!(same_origin("http://app.example", "http", "app.example:80"));
        assert!(same_origin(
            "https://app.example:443",
            "https",
            "app.example"
        ));
        assert!(!same_origin(
            "http://127.0.0.1:8081",
            "http",
            "127.0.0.1:8080"
        ));
        assert!(!same_origin(
            "https://127.0.0.1:8080",
            "http",
            "127.0.0.1:8080"
        ));
        assert!(!same_origin(
            "http://evil.example",
            "http",
            "127.0.0.1:8080"
        ));
        assert!(!same_origin("null", "http", "127.0.0.1:8080"));
        assert!(!same_origin(
            "http://127.0.0.1:8080/x",
            "http",
            "127.0.0.1:8080"
        ));
        assert!(!same_origin("http://", "http", ""));
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST:80",
            "127.0.0.1",
            "127.1.2.3:9",
            "[::1]:9090",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "10.0.0.1:80",
            "[::2]:1",
            "",
            "localhost.evil.example",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn the_node_list_is_json() {
        let body = nodes_json([("a", "/n/0"), ("b\"", "/n/1")]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["nodes"][1]["name"], "b\"");
        assert_eq!(v["nodes"][0]["base"], "/n/0");
    }
}
