//! The command line: clap types only, one module per subcommand. Commands turn these into
//! validated settings.

use clap::{Parser, Subcommand};

mod fetch;
mod proxy;
mod race;
mod report;
mod serve;
mod server_core;
pub mod values;

pub use fetch::{FetchArgs, FetchOutput, ModeArg};
pub use proxy::ProxyArgs;
pub use race::{OutputFormat, RaceArgs};
pub use report::{ReportArgs, ReportCommand};
pub use serve::{Host, ServeArgs};
pub use server_core::{ConnectionArgs, RulesArgs, TlsArgs};

/// Why async wins, on real sockets: a deliberately slow HTTP API, the clients that wait on it, and a
/// race between them.
#[derive(Debug, Parser)]
#[command(name = "slowlab", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  slowlab race                       the article's experiment, scaled to about 5 s
  slowlab race --scale 1             the article's full 44 s vs 9 s
  slowlab race --report race.html    the race as a page to keep (see also: slowlab report)
  slowlab serve                      the slow API on http://127.0.0.1:8000 (and /race, live)
  slowlab fetch 7 2 6 4 0 9 4 2 5 5  the article's requests, all at once
  slowlab proxy --listen 127.0.0.1:9000 --upstream http://127.0.0.1:8080 --default 0.2
                                     a real service on 8080, 0.2 s slower on 9000";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the slow API: GET /{seconds} waits, then answers {"time_elapsed": seconds}.
    #[command(after_help = serve::SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Send requests to a slow API sequentially, on threads or async, and measure every one.
    #[command(after_help = fetch::FETCH_EXAMPLES)]
    Fetch(Box<FetchArgs>),
    /// Run the same requests sequentially and async, side by side, against an embedded server.
    #[command(after_help = race::RACE_EXAMPLES)]
    Race(RaceArgs),
    /// Show a saved fetch or race JSON document again: its text summary, or an HTML report.
    #[command(after_help = report::REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// Put slowlab in front of a real service: forward every request, with serve's rules.
    #[command(after_help = proxy::PROXY_EXAMPLES)]
    Proxy(ProxyArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
