//! The `underscore` binary: see the `underscore_cli` crate.

fn main() -> std::process::ExitCode {
    underscore_cli::run(underscore_cli::cli::Cli::parse_args(std::env::args_os()))
}
