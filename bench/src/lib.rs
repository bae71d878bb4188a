//! The servers and the client of the overhead benchmark (`bench/overhead.sh`).
//!
//! The servers answer the same routes with the same handlers and one worker: plain actix-web,
//! the same app with underscore fully on (every handler annotated, `Observe`, stats, in-flight
//! tracking, the admin socket up), and the same app with actix-web-prom. The baselines are a
//! binary of their own (`bench-plain`), without a line of underscore in it: in one binary, a
//! change to underscore moved how the compiler laid out plain actix's code too (plain `/json`
//! moved by up to 340 instructions a request between two builds).

pub mod client;

use actix_web::HttpResponse;

/// The body of `GET /hello/{name}`.
pub async fn hello_body(name: &str) -> String {
    format!("Hello {name}!")
}

/// The answer of `GET /json`.
pub fn json_body() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"message": "Hello, World!", "id": 42, "ok": true}))
}

/// The answer of `GET /wait` (`bench/scale.sh`), after an hour: a request that waits, as
/// many do in a storm.
pub async fn wait_body() -> HttpResponse {
    actix_web::rt::time::sleep(std::time::Duration::from_secs(3600)).await;
    HttpResponse::Ok().finish()
}

/// What a server is started with: `MODE [ADDR]`, and `BENCH_ROUTES=1000` for 1,000 more routes.
#[derive(Debug)]
pub struct Args {
    /// The server's mode.
    pub mode: String,
    /// The address to bind (default `127.0.0.1:0`).
    pub addr: String,
    /// Whether to register the 1,000 extra routes.
    pub extra: bool,
}

impl Args {
    /// Reads the command line and the environment.
    pub fn read() -> Self {
        let args: Vec<String> = std::env::args().collect();
        Self {
            mode: args.get(1).cloned().unwrap_or_default(),
            addr: args
                .get(2)
                .cloned()
                .unwrap_or_else(|| "127.0.0.1:0".to_owned()),
            extra: std::env::var("BENCH_ROUTES").is_ok_and(|v| v == "1000"),
        }
    }
}

/// Starts an `HttpServer` of `$app` with one worker on `$addr`, announcing its addresses for
/// the bench scripts (`listening on ADDR`); evaluates to the running server.
#[macro_export]
macro_rules! serve {
    ($addr:expr, $app:expr) => {{
        let s = actix_web::HttpServer::new($app).workers(1).bind($addr)?;
        for a in s.addrs() {
            println!("listening on {a}");
        }
        s.run()
    }};
}
