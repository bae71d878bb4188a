use underscore_actix::underscore_route;

#[underscore_route]
async fn handler() -> &'static str {
    "no route"
}

fn main() {}
