//! Options of `slowlab fetch`.

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::parse_seconds;

pub(super) const FETCH_EXAMPLES: &str = "\
Examples:
  slowlab fetch                              ten random delays in [0, 10) s, all at once
  slowlab fetch 7 2 6 4 0 9 4 2 5 5          the article's list (async: about 9 s)
  slowlab fetch --mode sequential 7 2 6 4 0 9 4 2 5 5    one after another (about 44 s)
  slowlab fetch --seed 1 --base-url http://127.0.0.1:9000

Prints the delays, then each response body as it arrives, then the elapsed time.
Exit status: 0 when every request succeeded, 1 when any failed, 2 on a usage error.";

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
