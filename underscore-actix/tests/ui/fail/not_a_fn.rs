use underscore_actix::underscore_route;

#[underscore_route]
struct NotAHandler;

fn main() {}
