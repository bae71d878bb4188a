use actix_web::get;
use underscore_actix::underscore_route;

#[underscore_route(name = "has space")]
#[get("/")]
async fn handler() -> &'static str {
    "x"
}

#[underscore_route(name = 42)]
#[get("/other")]
async fn other() -> &'static str {
    "x"
}

fn main() {}
