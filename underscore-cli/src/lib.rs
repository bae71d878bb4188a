//! `underscore`, the command line of the underscore admin APIs.
//!
//! It speaks only the admin APIs' HTTP, over their UNIX sockets (hyper, HTTP/1.1): `_cat`
//! tables, route settings, interrupts, tasks and their stacks, and `top`, a live full-screen
//! view of the routes and the longest-running tasks. Several sockets (repeated `--socket`
//! flags, or a glob in `UNDERSCORE_SOCKET`) are asked at once and merged with a `node` column.
//!
//! The binary is a thin `main` over [`run`]; the modules are public so that the view can be
//! tested as a pure function ([`top::view::render`] over a [`top::model::Model`]).
//!
//! Install the binary with `cargo install underscore-cli`; `underscore --help` and the guide's
//! CLI page (`docs/cli.md` in the repository) describe every command.
//!
//! # Examples
//!
//! Run a command line as the binary would: here against a socket that is not there, which is
//! one `error: ...` line on stderr and exit status 3.
//!
//! ```
//! use std::process::ExitCode;
//!
//! let cli = underscore_cli::cli::Cli::parse_args([
//!     "underscore", "--socket", "/nonexistent/app.sock", "cat", "routes", "-v",
//! ]);
//! assert!(cli.sockets == ["/nonexistent/app.sock"]);
//! let status = underscore_cli::run(cli);
//! assert_eq!(status, ExitCode::from(underscore_cli::error::EXIT_UNREACHABLE));
//! ```

#![deny(missing_docs)]

pub mod cli;
pub mod client;
pub mod commands;
pub mod error;
pub mod nodes;
pub mod table;
pub mod top;
pub mod ui;

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::commands::{Ctx, Failure};
use crate::error::CliError;

/// Runs one command line to its end: prints its output on stdout and each error as one
/// `error: ...` line on stderr, and gives the exit status (see [`error`]'s `EXIT_*`).
pub fn run(cli: Cli) -> ExitCode {
    let failures = execute(cli);
    for failure in &failures {
        eprintln!("error: {failure}");
    }
    match failures.first() {
        None => ExitCode::SUCCESS,
        Some(f) => ExitCode::from(f.error.exit_code()),
    }
}

fn execute(cli: Cli) -> Vec<Failure> {
    let one = |error: CliError| vec![Failure { node: None, error }];
    if let Command::Completions(args) = &cli.command {
        // Into memory first: clap_complete panics on a failed write, and `| head` is one.
        let mut script = Vec::new();
        clap_complete::generate(args.shell, &mut Cli::command(), "underscore", &mut script);
        return match commands::print(&String::from_utf8_lossy(&script)) {
            Ok(()) => Vec::new(),
            Err(err) => one(err),
        };
    }
    let env = std::env::var("UNDERSCORE_SOCKET").ok();
    let nodes = match nodes::resolve(&cli.sockets, env.as_deref()) {
        Ok(nodes) => nodes,
        Err(err) => return one(err),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => return one(CliError::Terminal(err)),
    };
    if let Command::Top(args) = &cli.command {
        // With a glob, replicas started later join the view.
        let rescan = rescan(&cli.sockets, env.as_deref());
        return match top::app::run(&runtime, nodes, rescan, args, cli.timeout) {
            Ok(()) => Vec::new(),
            Err(err) => one(err),
        };
    }
    if let Command::Ui(args) = &cli.command {
        let rescan = rescan(&cli.sockets, env.as_deref());
        return match ui::run(&runtime, nodes, rescan, args, cli.timeout) {
            Ok(()) => Vec::new(),
            Err(err) => one(err),
        };
    }
    let mut ctx = Ctx::new(nodes, cli.timeout);
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Cat(args) => commands::cat(&mut ctx, args).await,
            Command::Tasks(args) => commands::tasks(&mut ctx, args).await,
            Command::Preempt(args) => commands::preempt(&mut ctx, args).await,
            Command::Resume(args) => commands::resume(&mut ctx, args).await,
            Command::Settings(args) => commands::settings(&mut ctx, args).await,
            Command::Interrupt(args) => commands::interrupt(&mut ctx, args).await,
            Command::Cancel(args) => commands::cancel(&mut ctx, args).await,
            Command::Stack(args) => commands::stack(&mut ctx, args).await,
            Command::Health(args) => commands::health(&mut ctx, args).await,
            Command::Workers(args) => commands::workers(&mut ctx, args).await,
            Command::Slowlog(args) => commands::slowlog(&mut ctx, args).await,
            Command::Fail => commands::fail_or_ok(&mut ctx, true).await,
            Command::Ok => commands::fail_or_ok(&mut ctx, false).await,
            Command::Drain(args) => commands::drain(&mut ctx, args).await,
            Command::Top(_) | Command::Ui(_) | Command::Completions(_) => Ok(()),
        }
    });
    let mut failures = ctx.failures;
    if let Err(error) = result {
        failures.push(Failure { node: None, error });
    }
    failures
}

/// With a glob among the socket patterns, what expands them again (replicas started later
/// join `top` and `ui`).
fn rescan(flags: &[String], env: Option<&str>) -> Option<top::app::Rescan> {
    nodes::patterns(flags, env)
        .into_iter()
        .any(nodes::is_glob)
        .then(|| {
            let (flags, env) = (flags.to_vec(), env.map(str::to_owned));
            Box::new(move || nodes::resolve(&flags, env.as_deref()).unwrap_or_default())
                as top::app::Rescan
        })
}
