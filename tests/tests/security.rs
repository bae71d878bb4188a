//! The admin APIs let no one in who should not be: in-app guards (bearer token, browser
//! requests) and the socket's uid allow-list, over real connections.

mod common;

use actix_web::{web, App, HttpServer};
use underscore_actix::admin::InApp;
use underscore_actix::AdminSocket;

#[test]
fn in_app_guards_require_the_token_and_refuse_browser_state_changes() {
    let server = common::run_server(None, || {
        let server = HttpServer::new(|| {
            let admin = InApp::new().bearer_token("t0ken").loopback_only();
            App::new()
                .route("/", web::get().to(|| async { "app" }))
                .configure(|cfg| admin.configure(cfg))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")?;
        Ok((server.addrs()[0], server.run()))
    });
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
