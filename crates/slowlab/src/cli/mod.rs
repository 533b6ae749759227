//! The command line: clap types only, one module per subcommand. Commands turn these into
//! validated settings.

use std::time::Duration;

use clap::{Parser, Subcommand};

mod fetch;
mod race;
mod serve;
pub mod values;

pub use fetch::{FetchArgs, FetchOutput, ModeArg};
pub use race::{OutputFormat, RaceArgs};
pub use serve::{Host, ServeArgs};

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
  slowlab serve                      the slow API on http://127.0.0.1:8000
  slowlab fetch 7 2 6 4 0 9 4 2 5 5  the article's requests, all at once";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the slow API: GET /{seconds} waits, then answers {"time_elapsed": seconds}.
    #[command(after_help = serve::SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Send requests to a slow API sequentially, on threads or async, and measure every one.
    #[command(after_help = fetch::FETCH_EXAMPLES)]
    Fetch(FetchArgs),
    /// Run the same requests sequentially and async, side by side, against an embedded server.
    #[command(after_help = race::RACE_EXAMPLES)]
    Race(RaceArgs),
}

/// Parses a non-negative number of seconds, e.g. `7`, `0.25` (`serve`'s options; `fetch` and
/// `race` use the stricter grammars of [`values`]).
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds (e.g. 7 or 0.25)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!(
            "{text:?} is not a valid delay: use a finite number of seconds, 0 or more"
        ));
    }
    Duration::try_from_secs_f64(value).map_err(|_| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("nan").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("1e300").is_err());
    }
}
