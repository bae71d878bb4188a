use actix_web::get;
use underscore_actix::underscore_route;

#[underscore_route]
#[get("/")]
fn handler() -> &'static str {
    "sync"
}

fn main() {}
