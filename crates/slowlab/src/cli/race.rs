//! Options of `slowlab race`.

use std::time::Duration;

use clap::{Args, ValueEnum};

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

Delays are seconds as the server reads them (digits, optionally a dot and up to 9 decimals);
scaled, each must stay within 0 to 86400 s. A race expected to last over a minute says so first.
Exit status: 0 when every request succeeded, 1 when any failed or the output could not be
written, 2 on a usage error.";

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
    /// Delays in seconds, 0 to 86400. None: the article's list 7 2 6 4 0 9 4 2 5 5.
    #[arg(value_parser = parse_delay, value_name = "SECONDS")]
    pub delays: Vec<Duration>,
    /// Multiply every delay by this, above 0 and at most 1000000; the scaled delays must stay
    /// within 0 to 86400 s. Default 0.1 for the article's list (a race of about 5 s), 1 for
    /// delays you give.
    #[arg(long, value_parser = parse_scale)]
    pub scale: Option<f64>,
    /// Race against this server instead of an embedded one.
    #[arg(long)]
    pub base_url: Option<String>,
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
}
