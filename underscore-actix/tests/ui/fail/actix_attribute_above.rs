use actix_web::get;
use underscore_actix::underscore_route;

#[get("/")]
#[underscore_route]
async fn handler() -> &'static str {
    "wrong order"
}

fn main() {}
