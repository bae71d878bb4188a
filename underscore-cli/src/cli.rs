//! The command line, parsed with clap.

use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// Talks to the underscore admin APIs of actix-web apps over their UNIX sockets: `_cat`
/// tables, route settings, in-flight tasks, and a live `top` view.
///
/// Sockets: every --socket (a path or a glob), else UNDERSCORE_SOCKET (a path or a glob such
/// as '/run/app-*.sock'), else /tmp/underscore.sock. With several sockets every command asks
/// each of them, and tables get a `node` column (the socket's file name without `.sock`).
///
/// Exit status: 0 done, 1 the server answered an error (or something unreadable), 2 a wrong
/// command line, 3 a socket could not be reached.
#[derive(Debug, Parser)]
#[command(name = "underscore", version, max_term_width = 100)]
pub struct Cli {
    /// Admin socket to talk to; repeat it (or give a glob) to ask every process of a host
    #[arg(long = "socket", value_name = "PATH", global = true, action = ArgAction::Append)]
    pub sockets: Vec<String>,

    /// Longest wait for one answer: a whole number and a unit (`500ms`, `10s`, `1m`; also `d`, `h`,
    /// `micros`, `nanos`), as the server's `limits.timeout`
    #[arg(long, value_name = "DURATION", global = true, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a _cat table as the server renders it (`_cat/routes`, ...)
    #[command(disable_help_flag = true)]
    Cat(CatArgs),
    /// A live full-screen view of the routes and the longest-running tasks
    Top(TopArgs),
    /// Answer a route with a fixed status, without calling its handler
    Preempt(PreemptArgs),
    /// Serve a preempted route normally again
    Resume(ResumeArgs),
    /// Show route settings, per tier, and the effective value
    Settings(SettingsArgs),
    /// End every in-flight request of a route (its clients get 503 Request interrupted)
    Interrupt(RouteArg),
    /// List the in-flight tasks (the `_cat/tasks` table, with a header)
    #[command(disable_help_flag = true)]
    Tasks(TableArgs),
    /// Cancel one task (its client gets 503 Request interrupted)
    Cancel(TaskArg),
    /// Print where a task's future is waiting, like a thread dump
    Stack(TaskArg),
    /// The node's health (green, yellow, red), readiness, drain, and its checks
    #[command(disable_help_flag = true)]
    Health(TableArgs),
    /// The app workers: how busy each is, and what it polls now (the `_cat/workers` table)
    #[command(disable_help_flag = true)]
    Workers(TableArgs),
    /// The slow log, oldest first (the `_cat/slowlog` table); --follow prints new entries
    #[command(disable_help_flag = true)]
    Slowlog(SlowlogArgs),
    /// Take the node out of rotation: readiness (`/readyz`) fails until `underscore ok`
    Fail,
    /// Put a node failed by hand back in rotation (not a draining one)
    Ok,
    /// Drain the node: readiness fails, it serves on for --delay, closes its listeners, waits
    /// for the requests in flight up to --timeout (given after `drain`), interrupts the rest,
    /// and stops
    Drain(DrainArgs),
    /// Serve the browser dashboard on a loopback port, for every socket given, and print its URL
    Ui(UiArgs),
    /// Print a shell completion script (`underscore completions bash > /etc/bash_completion.d/underscore`)
    Completions(CompletionsArgs),
}

/// The `_cat` tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CatTable {
    /// `_cat/routes`: one row per route, with its statistics
    Routes,
    /// `_cat/tasks`: one row per in-flight task
    Tasks,
    /// `_cat/middlewares`: the middleware stack, outermost first
    Middlewares,
    /// `_cat/transports`: the listeners
    Transports,
}

impl CatTable {
    /// The endpoint's name, as in `_cat/<name>`: the name the command line takes for it.
    pub fn endpoint(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// `cat TABLE [IDS] [-v] [-h COLS] [-s SORT]`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// Which table
    #[arg(value_enum)]
    pub table: CatTable,
    /// Only these route or task ids (comma list, `*` wildcards), for routes and tasks
    pub ids: Option<String>,
    /// The `_cat` parameters.
    #[command(flatten)]
    pub table_args: TableArgs,
}

/// The `_cat` parameters, passed through as they are.
#[derive(Debug, Clone, Args)]
pub struct TableArgs {
    /// Print a header row (`v`)
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Columns by name or alias, comma list, `*` wildcards (`h`); `-h '*'` is every column
    #[arg(short = 'h', long = "columns", value_name = "COLS")]
    pub columns: Option<String>,
    /// Sort keys `col[:asc|:desc]`, comma list (`s`)
    #[arg(short = 's', long = "sort", value_name = "SORT")]
    pub sort: Option<String>,
    /// List the columns with their aliases and meaning (`help`)
    #[arg(long = "help-columns")]
    pub help_columns: bool,
    /// Print help (`-h` is the columns here)
    #[arg(long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
}

/// `slowlog [--follow] [-v] [-h COLS] [-s SORT]`.
#[derive(Debug, Args)]
pub struct SlowlogArgs {
    /// Ask again every second and print only the entries not printed yet, until Ctrl-C
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// The `_cat` parameters.
    #[command(flatten)]
    pub table_args: TableArgs,
}

/// `top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Time between refreshes, at least 100ms (`1s`, `500ms`, `1500ms`)
    #[arg(long, short = 'i', value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Print N frames to stdout, one per refresh, and exit: no terminal needed (for scripts
    /// and tests)
    #[arg(long, value_name = "N")]
    pub frames: Option<u32>,
    /// The frame size for --frames, COLUMNSxROWS
    #[arg(long, value_name = "WxH", default_value = "120x40", value_parser = parse_size, requires = "frames")]
    pub size: (u16, u16),
}

/// `ui [--listen ADDR] [--token TOKEN]`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// Where to serve the dashboard (port 0: any free port; the URL printed says which)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub listen: std::net::SocketAddr,
    /// A bearer token every request must carry (required for a non-loopback --listen); the
    /// printed URL has it in its fragment, which browsers never send
    #[arg(
        long,
        value_name = "TOKEN",
        env = "UNDERSCORE_UI_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// `preempt ROUTE --status N ...`.
#[derive(Debug, Args)]
pub struct PreemptArgs {
    /// Route ids (comma list, `*` wildcards, `_all`)
    pub route: String,
    /// The status to answer, 200 to 599
    #[arg(long, value_parser = clap::value_parser!(u16).range(200..=599))]
    pub status: u16,
    /// The reason phrase on the status line
    #[arg(long)]
    pub reason: Option<String>,
    /// The Retry-After header, in seconds
    #[arg(long, value_name = "SECONDS")]
    pub retry_after: Option<u32>,
    /// The response body
    #[arg(long)]
    pub text: Option<String>,
    /// The share of requests preempted, 0 to 100 (`25`, `12.5`); every request when absent
    #[arg(long, value_parser = parse_percent)]
    pub percent: Option<f64>,
    /// Keep it across restarts (the persistent tier, in the app's settings file) instead of
    /// the transient tier
    #[arg(long)]
    pub persistent: bool,
}

/// `resume ROUTE [--persistent]`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Route ids (comma list, `*` wildcards, `_all`)
    pub route: String,
    /// Reset the persistent preempt too (without it only the transient one is reset, and a
    /// persistent preempt takes effect again)
    #[arg(long)]
    pub persistent: bool,
}

/// `settings [ROUTE]`.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Route ids (comma list, `*` wildcards, `_all`); every route when absent
    pub route: Option<String>,
    /// Print the server's JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

/// A route argument.
#[derive(Debug, Args)]
pub struct RouteArg {
    /// Route ids (comma list, `*` wildcards, `_all`)
    pub route: String,
}

/// A task argument.
#[derive(Debug, Args)]
pub struct TaskArg {
    /// Task id (`node:number`, as `underscore tasks` lists it); with several sockets, prefix
    /// the node column to say which process: `app-1/vm:1024`
    pub task: String,
}

/// `drain [--delay D] [--timeout D] [--wait]`.
#[derive(Debug, Args)]
pub struct DrainArgs {
    /// How long the node serves on after readiness fails (the app's default when absent)
    #[arg(long, value_name = "DURATION", value_parser = parse_time_value)]
    pub delay: Option<Duration>,
    /// Print the drain's progress, one line per change, until the node has stopped
    #[arg(long)]
    pub wait: bool,
    /// The drain's timeout: `--timeout` given after `drain` (the app's default when absent)
    #[arg(skip)]
    pub timeout: Option<Duration>,
}

/// `completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl Cli {
    /// Parses a command line (exits with clap's message and status 2 when it is wrong).
    ///
    /// `--socket` may be given before and after the subcommand: clap keeps only the
    /// subcommand's occurrences of a global flag, so every occurrence is collected here from
    /// the arguments themselves (up to a `--`), in order.
    pub fn parse_args<I, T>(args: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let mut cli = Self::parse_from(&args);
        cli.sockets = sockets_in(&args);
        // `drain --timeout`: the drain's timeout, not the wait for an answer (the global flag
        // of the same name, which clap gives it).
        if let Command::Drain(drain) = &mut cli.command {
            if timeout_after_drain(&args) {
                drain.timeout = Some(cli.timeout);
                cli.timeout = DEFAULT_TIMEOUT;
            }
        }
        cli
    }
}

/// The default of `--timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `--timeout` comes after the `drain` subcommand in `args`.
fn timeout_after_drain(args: &[std::ffi::OsString]) -> bool {
    let args: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    let Some(drain) = args.iter().position(|a| a == "drain") else {
        return false;
    };
    args[drain..]
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--timeout" || a.starts_with("--timeout="))
}

/// A time value that may be zero (a drain's delay).
fn parse_time_value(s: &str) -> Result<Duration, String> {
    underscore_core::time_value::parse(s).map_err(|err| err.to_string())
}

/// Every `--socket PATH` and `--socket=PATH` in `args`, up to a `--`.
fn sockets_in(args: &[std::ffi::OsString]) -> Vec<String> {
    let mut sockets = Vec::new();
    let mut args = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        } else if arg == "--socket" {
            sockets.extend(args.next().map(|v| v.into_owned()));
        } else if let Some(v) = arg.strip_prefix("--socket=") {
            sockets.push(v.to_owned());
        }
    }
    sockets
}

/// Parses a time value as the server parses `limits.timeout`: Elasticsearch's grammar
/// ([`underscore_core::time_value`]: a whole number and a unit of `d`, `h`, `m`, `s`, `ms`,
/// `micros` or `nanos`), more than zero.
///
/// # Errors
///
/// What is wrong, in the server's words.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match underscore_core::time_value::parse(s) {
        Ok(d) if d.is_zero() => Err("must be more than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(err) => Err(err.to_string()),
    }
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(100) {
        return Err("the interval must be at least 100ms".to_owned());
    }
    Ok(d)
}

/// A share of requests: a number from 0 to 100, as `preempt.percent` takes it.
fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && (0.0..=100.0).contains(&n) => Ok(n),
        _ => Err(format!("[{s}] is not a number from 0 to 100")),
    }
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("[{s}] is not a size such as 80x24");
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let (w, h): (u16, u16) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if !(20..=1000).contains(&w) || !(5..=1000).contains(&h) {
        return Err("the size must be from 20x5 to 1000x1000".to_owned());
    }
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_are_elasticsearch_time_values() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert_eq!(
            parse_duration("1500micros"),
            Ok(Duration::from_micros(1500))
        );
        assert_eq!(
            parse_duration("1.5s"),
            Err("fractional time values are not supported: write 1500ms".to_owned())
        );
        assert!(parse_duration("2").unwrap_err().contains("no unit"));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("x").is_err());
        assert!(parse_interval("10ms").is_err());
        assert_eq!(parse_interval("100ms"), Ok(Duration::from_millis(100)));
    }

    proptest::proptest! {
        /// What `--timeout` takes is what the server takes in `limits.timeout`, and means
        /// the same time.
        #[test]
        fn the_cli_and_the_server_read_time_values_alike(
            text in "[ ]?-?[0-9]{0,4}(\\.[0-9]{0,2})?[ ]?(d|h|m|M|s|S|ms|MS|micros|nanos|sec|x|)[ ]?",
        ) {
            let cli = parse_duration(&text);
            let server = underscore_core::settings::parse_time(&text);
            proptest::prop_assert_eq!(cli.is_ok(), server.is_ok(), "{:?}: {:?} {:?}", text, cli, server);
            if let (Ok(a), Ok(b)) = (cli, server) {
                proptest::prop_assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn cat_takes_h_as_columns_and_sockets_anywhere() {
        let cli = Cli::parse_args([
            "underscore",
            "--socket",
            "/a.sock",
            "cat",
            "routes",
            "-v",
            "-h",
            "id,total",
            "-s",
            "total:desc",
            "--socket=/b.sock",
        ]);
        assert_eq!(cli.sockets, ["/a.sock", "/b.sock"]);
        let Command::Cat(cat) = cli.command else {
            panic!("not cat: {:?}", cli.command)
        };
        assert_eq!(cat.table, CatTable::Routes);
        assert!(cat.table_args.verbose);
        assert_eq!(cat.table_args.columns.as_deref(), Some("id,total"));
        assert_eq!(cat.table_args.sort.as_deref(), Some("total:desc"));
    }

    #[test]
    fn preempt_checks_its_status() {
        assert!(Cli::try_parse_from(["underscore", "preempt", "hello", "--status", "42"]).is_err());
        assert!(Cli::try_parse_from(["underscore", "preempt", "hello"]).is_err());
        assert!(Cli::try_parse_from(["underscore", "preempt", "hello", "--status", "503"]).is_ok());
        assert_eq!(parse_percent("12.5"), Ok(12.5));
        assert_eq!(parse_percent("0"), Ok(0.0));
        for bad in ["101", "-1", "NaN", "inf", "x", ""] {
            assert!(parse_percent(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn drain_takes_its_own_timeout() {
        let cli = Cli::parse_args(["underscore", "drain", "--delay", "0s", "--timeout", "1m"]);
        let Command::Drain(drain) = cli.command else {
            panic!("not drain")
        };
        assert_eq!(drain.delay, Some(Duration::ZERO));
        assert_eq!(drain.timeout, Some(Duration::from_secs(60)));
        assert_eq!(cli.timeout, DEFAULT_TIMEOUT);
        let cli = Cli::parse_args(["underscore", "--timeout", "3s", "drain", "--wait"]);
        let Command::Drain(drain) = cli.command else {
            panic!("not drain")
        };
        assert_eq!((drain.timeout, drain.wait), (None, true));
        assert_eq!(cli.timeout, Duration::from_secs(3));
        assert!(Cli::try_parse_from(["underscore", "drain", "--delay", "-1s"]).is_err());
    }

    #[test]
    fn sizes_are_columns_by_rows() {
        assert_eq!(parse_size("80x24"), Ok((80, 24)));
        assert!(parse_size("80").is_err());
        assert!(parse_size("5x5").is_err());
    }
}
