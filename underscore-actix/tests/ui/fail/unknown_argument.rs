use actix_web::get;
use underscore_actix::underscore_route;

#[underscore_route(id = "x", name = "ok")]
#[get("/")]
async fn handler() -> &'static str {
    "x"
}

fn main() {}
