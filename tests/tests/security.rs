//! The admin APIs let no one in who should not be: in-app guards (bearer token, browser
//! requests) and the socket's uid allow-list, over real connections.

mod common;

use actix_web::{web, App, HttpServer};
use underscore_actix::admin::InApp;
use underscore_actix::AdminSocket;

/// One worker on `127.0.0.1:0`: an app whose `/` answers `app`, and the admin APIs mounted
/// in it as `admin` (called in each worker) says.
fn serve_in_app(admin: fn() -> InApp) -> common::Running {
    common::run_server(None, move || {
        let server = HttpServer::new(move || {
            let admin = admin();
            App::new()
                .route("/", web::get().to(|| async { "app" }))
                .configure(|cfg| admin.configure(cfg))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")?;
        Ok((server.addrs()[0], server.run()))
    })
}

#[test]
fn in_app_guards_require_the_token_and_refuse_browser_state_changes() {
    let server = serve_in_app(|| InApp::new().bearer_token("t0ken").loopback_only());
    let addr = server.addr;

    let no_token = common::raw(
        addr,
        "GET /_cat/routes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(no_token.starts_with("HTTP/1.1 401 "), "{no_token}");
    assert!(
        no_token
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{no_token}"
    );
    assert!(
        no_token.contains("\"type\":\"security_exception\""),
        "{no_token}"
    );
    let wrong = common::raw(
        addr,
        "GET /_cat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0kem\r\nConnection: close\r\n\r\n",
    );
    assert!(wrong.starts_with("HTTP/1.1 401 "), "{wrong}");
    let ok = common::raw(
        addr,
        "GET /_cat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\nConnection: close\r\n\r\n",
    );
    assert!(
        ok.starts_with("HTTP/1.1 200 ") && ok.contains("=^.^="),
        "{ok}"
    );
    assert!(
        ok.to_ascii_lowercase().contains("cache-control: no-store"),
        "{ok}"
    );
    // A cross-site form post carries an Origin header: refused, even with the token.
    let csrf = common::raw(
        addr,
        "POST /_routes/_all/interrupt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\nOrigin: https://evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(csrf.starts_with("HTTP/1.1 403 "), "{csrf}");
    // State never changes through GET.
    let get_cancel = common::raw(addr, "GET /_routes/_all/interrupt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\nConnection: close\r\n\r\n");
    assert!(get_cancel.starts_with("HTTP/1.1 405 "), "{get_cancel}");
    // The app itself is untouched by the guard.
    assert!(common::raw(
        addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ends_with("app"));

    server.stop();
}

#[test]
fn the_in_app_dashboard_acts_from_its_own_origin_with_the_token_only() {
    let server = serve_in_app(|| InApp::new().bearer_token("t0ken").dashboard());
    let addr = server.addr;
    let host = addr.to_string();
    let post = |origin: &str, token: &str| {
        common::raw(
            addr,
            format!(
                "POST /_routes/_all/interrupt HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
                 Origin: {origin}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    // The page's own origin, with the token: the state change passes.
    let same = post(&format!("http://{host}"), "t0ken");
    assert!(same.starts_with("HTTP/1.1 200 "), "{same}");
    // Another origin (another port is another origin), even with the token: refused.
    for origin in [
        format!("http://localhost:{}", addr.port()),
        format!("http://127.0.0.1:{}", addr.port() + 1),
        "https://evil.example".to_owned(),
        "null".to_owned(),
    ] {
        let other = post(&origin, "t0ken");
        assert!(other.starts_with("HTTP/1.1 403 "), "{origin}: {other}");
        assert!(other.contains("own origin only"), "{other}");
    }
    assert!(post(&format!("http://{host}"), "nope").starts_with("HTTP/1.1 401 "));
    // The page loads without the token (it holds no data), with a policy that keeps it to
    // its own origin; the node list needs the token.
    let page = common::raw(
        addr,
        format!("GET /_ui HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    );
    assert!(page.starts_with("HTTP/1.1 200 "), "{page}");
    let lower = page.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: text/html; charset=utf-8"),
        "{page}"
    );
    assert!(lower.contains("connect-src 'self'"), "{page}");
    assert!(lower.contains("x-frame-options: deny"), "{page}");
    assert!(page.contains("data-ready"), "{page}");
    let nodes = common::raw(
        addr,
        format!("GET /_ui/nodes HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    );
    assert!(nodes.starts_with("HTTP/1.1 401 "), "{nodes}");
    let nodes = common::raw(
        addr,
        format!(
            "GET /_ui/nodes HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer t0ken\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(nodes.contains("{\"nodes\":[{\"name\":"), "{nodes}");
    let put = common::raw(
        addr,
        format!(
            "PUT /_ui HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(put.starts_with("HTTP/1.1 405 "), "{put}");
    server.stop();
}

#[test]
fn the_dashboard_is_mounted_only_when_asked() {
    let server = serve_in_app(|| InApp::new().bearer_token("t0ken"));
    let page = common::raw(
        server.addr,
        "GET /_ui HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(page.starts_with("HTTP/1.1 404 "), "{page}");
    server.stop();
}

#[test]
fn socket_uid_allow_list_is_enforced() {
    let me = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    for (allowed, expected) in [(me, 200), (me + 4242, 403)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let admin = AdminSocket::bind(&path).unwrap().allow_uids([allowed]);
        let server = common::run_server(Some(admin), || {
            let app = HttpServer::new(App::new)
                .workers(1)
                .disable_signals()
                .bind("127.0.0.1:0")?;
            Ok((app.addrs()[0], app.run()))
        });
        let res = common::curl_unix(&path, "GET", "/_cat", None);
        assert_eq!(
            res.status, expected,
            "allowed uid {allowed}, I am {me}: {}",
            res.body
        );
        if expected == 403 {
            assert!(
                res.body
                    .contains(&format!("uid [{me}] may not use the admin APIs")),
                "{}",
                res.body
            );
        }
        server.stop();
    }
}
