//! The command line: clap types only. Commands turn these into validated settings.

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Send delay requests to a slow API, one after another or all at once.
    #[command(after_help = FETCH_EXAMPLES)]
    Fetch(FetchArgs),
    /// Run the same requests sequentially and async, side by side, against an embedded server.
    #[command(after_help = RACE_EXAMPLES)]
    Race(RaceArgs),
}

const SERVE_EXAMPLES: &str = "\
Examples:
  slowlab serve                          http://127.0.0.1:8000, like the article's uvicorn
  slowlab serve --port 0                 an ephemeral port; the first stdout line names it
  slowlab serve --max-delay 3600         allow waits of up to an hour
  curl -i http://127.0.0.1:8000/2        waits 2 s: {\"time_elapsed\": 2}
  curl -i http://127.0.0.1:8000/0.25     waits 250 ms: {\"time_elapsed\": 0.25}

Bad input is answered with a JSON 4xx, e.g. /abc -> 400 {\"error\": \"not_a_number\", ...}.
Ctrl-C or SIGTERM stops accepting and lets requests in flight finish, for at most --drain-timeout.";

const FETCH_EXAMPLES: &str = "\
Examples:
  slowlab fetch                              ten random delays in [0, 10) s, all at once
  slowlab fetch 7 2 6 4 0 9 4 2 5 5          the article's list (async: about 9 s)
  slowlab fetch --mode sequential 7 2 6 4 0 9 4 2 5 5    one after another (about 44 s)
  slowlab fetch --seed 1 --base-url http://127.0.0.1:9000

Prints the delays, then each response body as it arrives, then the elapsed time.
Exit status: 0 when every request succeeded, 1 when any failed, 2 on a usage error.";

const RACE_EXAMPLES: &str = "\
Examples:
  slowlab race                     the article's list x 0.1: about 4.4 s vs 0.9 s
  slowlab race --scale 1           the article's own 44 s vs 9 s
  slowlab race 1 1 1 1             your own delays, in seconds
  slowlab race --output json       the same, as one JSON document
  slowlab race --base-url http://127.0.0.1:8000   against a running slowlab serve";

/// Options of `slowlab serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, short, default_value_t = 8000)]
    pub port: u16,
    /// Longest delay a request may ask for, in seconds; longer requests get a 400 too_large.
    #[arg(long, default_value = "600", value_parser = parse_seconds, value_name = "SECONDS")]
    pub max_delay: Duration,
    /// On Ctrl-C or SIGTERM, how long to let requests in flight finish before cutting them off.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub drain_timeout: Duration,
    /// How long a client may take to send its request headers before the connection is closed.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub header_read_timeout: Duration,
    /// Longest request URI (path and query) accepted, in bytes; longer gets a 414.
    #[arg(long, default_value_t = 8192, value_name = "BYTES")]
    pub max_uri_bytes: usize,
    /// Most bytes of request headers accepted; more gets a 431.
    #[arg(long, default_value_t = 16384, value_name = "BYTES")]
    pub max_header_bytes: usize,
    /// Length of the kernel's accept queue (capped by net.core.somaxconn).
    #[arg(long, default_value_t = 4096)]
    pub backlog: u32,
}

/// How `fetch` sends its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// One blocking client, one request after another (like `requests` in a loop).
    Sequential,
    /// All requests at once as tokio tasks (like `asyncio.gather`).
    Async,
}

/// Options of `slowlab fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Delays to request, in seconds (decimals allowed). None: ten random whole seconds in [0, 10).
    #[arg(value_parser = parse_seconds, value_name = "SECONDS")]
    pub delays: Vec<Duration>,
    /// The slow API to call.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8000",
        env = "SLOWLAB_BASE_URL"
    )]
    pub base_url: String,
    /// How to send the requests.
    #[arg(long, short, value_enum, default_value_t = ModeArg::Async)]
    pub mode: ModeArg,
    /// Seed for the random delays, so the same list comes back.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Give up on a request after this many seconds (default: wait as long as the server takes).
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS")]
    pub timeout: Option<Duration>,
    /// Give up connecting after this many seconds.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub connect_timeout: Duration,
}

/// Output formats of `race`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table and a timeline, for people.
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// Options of `slowlab race`.
#[derive(Debug, Args)]
pub struct RaceArgs {
    /// Delays in seconds. None: the article's list 7 2 6 4 0 9 4 2 5 5.
    #[arg(value_parser = parse_seconds, value_name = "SECONDS")]
    pub delays: Vec<Duration>,
    /// Multiply every delay by this. Default 0.1 for the article's list (a race of about 5 s),
    /// 1 for delays you give.
    #[arg(long, value_parser = parse_scale)]
    pub scale: Option<f64>,
    /// Race against this server instead of an embedded one.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Leave out the timeline from the text output.
    #[arg(long)]
    pub no_timeline: bool,
}

/// Parses a non-negative number of seconds, e.g. `7`, `0.25`.
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

fn parse_scale(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!(
            "{text:?} is not a valid scale: use a number above 0, e.g. 0.1 or 1"
        )),
    }
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
        assert!(parse_scale("0").is_err());
    }
}
