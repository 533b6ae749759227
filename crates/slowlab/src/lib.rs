//! The `slowlab` command line: `serve`, `fetch` and `race`.
//!
//! `main` hands the process's arguments to [`parse_args`] (clap, then every check that needs no
//! I/O) and the result to [`run`], then turns what came back into an exit status with
//! [`exit_status`]; everything else lives in the library crates (`slowlab-server`,
//! `slowlab-client`) and in the command modules here.

/// `eprintln!` that never panics: when stderr is closed or full (`slowlab … 2>&1 | head -1`), the
/// message is lost but the run and its exit status are not.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that never panics, as [`say!`].
macro_rules! say_partial {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stderr = std::io::stderr();
        let _ = write!(stderr, $($arg)*);
        let _ = stderr.flush();
    }};
}

pub mod cli;
mod commands;
pub mod merge;
mod output;
mod render;
mod report;
mod sink;

use std::ffi::OsString;
use std::fmt;
use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command};

/// Exit status when every request succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit status on a runtime failure: a request failed, the run was interrupted, the output could
/// not be written, `serve` could not listen.
pub const EXIT_FAILED: u8 = 1;
/// Exit status on a usage error (as clap uses).
pub const EXIT_USAGE: u8 = 2;
/// Exit status when a `--fail-on` threshold was crossed.
pub const EXIT_THRESHOLD: u8 = 3;

/// An argument that cannot be used, found after clap's own checks: exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Builds a [`UsageError`] from a format string.
macro_rules! usage {
    ($($arg:tt)*) => {
        $crate::UsageError(format!($($arg)*))
    };
}
pub(crate) use usage;

/// Why a command line was refused.
#[derive(Debug)]
pub enum ArgsError {
    /// Refused by clap (or `--help`/`--version`, which clap reports the same way).
    Clap(clap::Error),
    /// Parsed, but refused by the command's own checks.
    Usage(UsageError),
}

/// Parses a command line (program name first) and runs every check that needs no I/O and sends
/// nothing: what passes here fails later only on I/O (an unreadable `--urls` file, a bad line in
/// it, the network).
pub fn parse_args<I, T>(args: I) -> Result<Cli, ArgsError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).map_err(ArgsError::Clap)?;
    validate(&cli).map_err(ArgsError::Usage)?;
    Ok(cli)
}

/// The checks [`parse_args`] runs after clap's.
pub fn validate(cli: &Cli) -> Result<(), UsageError> {
    match &cli.command {
        Command::Serve(_) => Ok(()),
        Command::Fetch(args) => commands::fetch::Plan::new(args).map(drop),
        Command::Race(args) => commands::race::Plan::new(args).map(drop),
        Command::Report(_) => Ok(()),
        Command::Proxy(args) => commands::proxy::check(args).map(drop),
    }
}

/// Runs one command to completion and returns the process's exit status. An error is a
/// [`UsageError`] (exit status 2) or a runtime failure (1); [`exit_status`] tells which.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // At least two workers, even on one core: `serve --model blocking` holds a worker in each
    // sleep on purpose, and the other one must still see signals, timers and /healthz.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Fetch(args) => commands::fetch::run(*args).await,
            Command::Race(args) => commands::race::run(args).await,
            Command::Report(args) => commands::report::run(args),
            Command::Proxy(args) => commands::proxy::run(args).await,
        }
    })
}

/// The exit status of an error returned by [`run`]: 2 for a [`UsageError`], else 1.
pub fn exit_status(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<UsageError>().is_some() {
        EXIT_USAGE
    } else {
        EXIT_FAILED
    }
}
