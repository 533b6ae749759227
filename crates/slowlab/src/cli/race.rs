//! Options of `slowlab race`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, ValueEnum};
use slowlab_server::Model;

use super::ModeArg;
use super::values::{parse_delay, parse_scale, parse_timeout};

pub(super) const RACE_EXAMPLES: &str = "\
Examples:
  slowlab race                     the article's list x 0.1: about 4.4 s vs 0.9 s vs 0.9 s
  slowlab race --scale 1           the article's own 44 s vs 9 s
  slowlab race 1 1 1 1             your own delays, in seconds
  slowlab race --modes sequential,async   only the article's two clients
  slowlab race --output json       the same, as one JSON document
  slowlab race --base-url http://127.0.0.1:8000   against a running slowlab serve
  slowlab race --report race.html  also write a self-contained HTML report (and --svg, --json)
  slowlab race --compare-models --count 60 --delay 0.2
                                   the async client against an async, a 40-thread and a blocking server
  slowlab race --repeat 5          each mode 5 times: median and min-max, the median run drawn
  slowlab race --random 20 --seed 1 --scale 0.1   twenty random delays, the same each time

Delays are seconds as the server reads them (digits, optionally a dot and up to 9 decimals);
scaled, each must stay within 0 to 86400 s. A race expected to last over a minute says so first.
Exit status: 0 when every request succeeded, 1 when any failed or the output could not be
written, 2 on a usage error.";

/// Most requests `--count` and `--random` may race: every run of a race holds its outcomes until
/// the end, and an embedded race holds both ends of every connection in one process.
const MAX_COUNT: u64 = 100_000;

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
#[command(group(ArgGroup::new("workload").args(["delays", "count", "random"])))]
pub struct RaceArgs {
    /// Delays in seconds, 0 to 86400. None: the article's list 7 2 6 4 0 9 4 2 5 5.
    #[arg(value_parser = parse_delay, value_name = "SECONDS")]
    pub delays: Vec<Duration>,
    /// Multiply every delay by this, above 0 and at most 1000000; the scaled delays must stay
    /// within 0 to 86400 s. Default 0.1 for the article's list (a race of about 5 s), 1 for
    /// delays you give.
    #[arg(long, value_parser = parse_scale)]
    pub scale: Option<f64>,
    /// Race this many requests (1 to 100000) of --delay seconds each.
    #[arg(long, short = 'n', value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT))]
    pub count: Option<u64>,
    /// The delay of each --count request, in seconds (0 to 86400).
    #[arg(long, short = 'd', value_parser = parse_delay, value_name = "SECONDS",
          requires = "count", default_value = "1")]
    pub delay: Duration,
    /// Race N (1 to 100000) random whole-second delays in [0, 10), like the article (scale them
    /// with --scale).
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT))]
    pub random: Option<u64>,
    /// Seed for --random, so the same list comes back.
    #[arg(long, requires = "random")]
    pub seed: Option<u64>,
    /// Race against this server instead of an embedded one.
    #[arg(long)]
    pub base_url: Option<String>,
    /// How the embedded server holds a waiting request: async (a timer), threads:N (a blocking
    /// sleep on a pool of N threads, like FastAPI's `def` endpoints) or blocking (a sleep on the
    /// event loop itself).
    #[arg(
        long,
        value_name = "MODEL",
        default_value = "async",
        conflicts_with = "base_url"
    )]
    pub server_model: Model,
    /// Race the async client against embedded servers of each model in turn: async, threads:40
    /// (FastAPI's default pool) and blocking. An async client cannot make a blocking server fast.
    #[arg(long, conflicts_with_all = ["base_url", "server_model", "modes"])]
    pub compare_models: bool,
    /// Run every mode R times; the table shows the median with min and max, the timeline the
    /// median run.
    #[arg(long, value_name = "R", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// The modes to race, in order, comma-separated (a mode named twice runs once). `threads`
    /// runs one OS thread per request (up to 512), the way a thread pool would.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sequential,threads,async"
    )]
    pub modes: Vec<ModeArg>,
    /// Read at most BYTES of each response body (16 MiB by default); a longer body fails its
    /// request as body-too-large.
    #[arg(long, value_name = "BYTES", default_value_t = slowlab_client::DEFAULT_MAX_RESPONSE_BYTES)]
    pub max_response_bytes: u64,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Leave out the timeline from the text output.
    #[arg(long)]
    pub no_timeline: bool,
    /// Give up on a request after this long, e.g. 30s or 2m, above 0 and at most a day
    /// [default: the longest delay plus 30 s].
    #[arg(long, value_parser = parse_timeout, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// Also write a self-contained HTML report (table, timelines, percentiles) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also write the timelines alone as SVG to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Also write the JSON document (as `--output json` prints it) to FILE; render it again later
    /// with `slowlab report html FILE`.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}
