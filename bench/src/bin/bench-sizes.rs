//! `bench-sizes`: the memory underscore keeps per route and per in-flight request.

fn main() {
    use underscore_actix::core::registry::DynamicRoute;
    use underscore_actix::core::tasks::entry_size;
    use underscore_actix::core::RouteMeta;
    println!(
        "per annotated route: {} bytes (its static: metadata, settings slot, statistics)",
        std::mem::size_of::<RouteMeta>()
    );
    println!(
        "per plain actix route: {} bytes (+ its pattern and id strings)",
        std::mem::size_of::<DynamicRoute>()
    );
    println!(
        "per in-flight request that waits: {} bytes (its task entry)",
        entry_size()
    );
}
