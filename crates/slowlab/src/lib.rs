//! The `slowlab` command line: `serve`, `fetch` and `race`.
//!
//! `main` parses [`cli::Cli`] and hands it to [`run`]; everything else lives in the library crates
//! (`slowlab-server`, `slowlab-client`) and in the command modules here.

pub mod cli;
mod commands;
mod render;
mod report;
mod sink;

use std::process::ExitCode;

use cli::{Cli, Command};

/// Exit status when every request succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit status when any request failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status on a usage error (as clap uses).
pub const EXIT_USAGE: u8 = 2;
/// Exit status when a `--fail-on` threshold was crossed.
pub const EXIT_THRESHOLD: u8 = 3;

/// Runs one command to completion and returns the process's exit status.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Fetch(args) => commands::fetch::run(args).await,
            Command::Race(args) => commands::race::run(args).await,
            Command::Report(args) => commands::report::run(args),
        }
    })
}
