//! The `slowlab` binary: parse the command line, run, exit.

use std::process::ExitCode;

use clap::Parser;
use slowlab::cli::Cli;

/// jemalloc keeps no bookkeeping inside the blocks it hands out, so the 8 KiB buffers hyper
/// allocates for every connection cost memory only for the pages actually written: a waiting
/// HTTP/1.1 request takes about 7 KB of RSS instead of 15 KB with the system allocator.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLOWLAB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
        .init();
    match slowlab::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("slowlab: {err:#}");
            ExitCode::from(slowlab::EXIT_USAGE)
        }
    }
}
