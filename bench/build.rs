//! Generates 1,000 annotated routes for the route-count round of the benchmark.

use std::fmt::Write as _;

fn main() {
    // The same 1,000 routes twice, with the same actix attribute: annotated (for underscore) and
    // plain (for the others), so the comparison isolates underscore. Two files: the baselines'
    // binary must not contain a line of underscore (see `bench-plain`).
    let dir = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for (file, attribute) in [
        ("plain_routes.rs", ""),
        (
            "annotated_routes.rs",
            "#[::underscore_actix::underscore_route]\n",
        ),
    ] {
        let mut out = String::new();
        routes(&mut out, attribute);
        std::fs::write(dir.join(file), out).unwrap();
    }
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
