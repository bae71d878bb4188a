//! Generates 1,000 annotated routes for the route-count round of the benchmark.

use std::fmt::Write as _;

fn main() {
    // The same 1,000 routes twice, with the same actix attribute: annotated (for underscore) and
    // plain (for the others), so the comparison isolates underscore.
    let mut out = String::from("pub(crate) mod plain {\n");
    routes(&mut out, "");
    out.push_str("}\n");
    routes(&mut out, "#[::underscore_actix::underscore_route]\n");
    let path = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("annotated_routes.rs");
    std::fs::write(path, out).unwrap();
}

/// Writes the 1,000 handlers, each under `attribute` and `#[get]`, and their `register`.
fn routes(out: &mut String, attribute: &str) {
    for n in 0..1000 {
        let _ = writeln!(
            out,
            "{attribute}#[::actix_web::get(\"/r/{n:03}\")]\npub(crate) async fn r{n:03}() -> &'static str {{ \"r\" }}"
        );
    }
    out.push_str("pub(crate) fn register(cfg: &mut ::actix_web::web::ServiceConfig) {\n");
    for n in 0..1000 {
        let _ = writeln!(out, "    cfg.service(r{n:03});");
    }
    out.push_str("}\n");
}
