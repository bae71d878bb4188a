use underscore_actix::underscore_route;

#[underscore_route(name = "bad id")]
fn handler() -> &'static str {
    "x"
}

fn main() {}
