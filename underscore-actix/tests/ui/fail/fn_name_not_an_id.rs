use actix_web::get;
use underscore_actix::underscore_route;

#[underscore_route]
#[get("/")]
async fn grüße() -> &'static str {
    "non-ASCII fn names cannot be typed in a URL"
}

fn main() {}
