//! `bench-client ADDR PATH N`: N sequential keep-alive requests (see `client`).

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, path, n] = args.as_slice() else {
        eprintln!("usage: bench-client ADDR PATH N");
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("N is a number");
    if let Err(err) = underscore_bench::client::run(addr, path, n) {
        eprintln!("bench-client: {err}");
        std::process::exit(1);
    }
}
