//! The `slowlab` binary: parse the command line, run, exit.

use std::process::ExitCode;

use slowlab::ArgsError;

/// jemalloc keeps no bookkeeping inside the blocks it hands out, so the 8 KiB buffers hyper
/// allocates for every connection cost memory only for the pages actually written: a waiting
/// HTTP/1.1 request takes about 7 KB of RSS instead of 15 KB with the system allocator.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = match slowlab::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(ArgsError::Clap(err)) => {
            // Help and version are "errors" that exit 0; a closed stream loses them quietly.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(slowlab::EXIT_USAGE));
        }
        Err(ArgsError::Usage(err)) => {
            report(&format!("slowlab: {err}"));
            return ExitCode::from(slowlab::EXIT_USAGE);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLOWLAB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Its own report of a failed write goes through `eprintln!`, which panics when stderr is
        // closed: a lost log line must not end the run.
        .log_internal_errors(false)
        // Colour only for a person at a terminal: never into a file or pipe, never with NO_COLOR.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .init();
    match slowlab::run(cli) {
        Ok(code) => code,
        Err(err) => {
            report(&format!("slowlab: {err:#}"));
            ExitCode::from(slowlab::exit_status(&err))
        }
    }
}

/// A line on stderr, lost rather than a panic when stderr is closed.
fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
