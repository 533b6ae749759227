//! Options of `slowlab fetch`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, ValueEnum};

use super::parse_seconds;

pub(super) const FETCH_EXAMPLES: &str = "\
Examples:
  slowlab fetch                              ten random delays in [0, 10) s, all at once
  slowlab fetch 7 2 6 4 0 9 4 2 5 5          the article's list (async: about 9 s)
  slowlab fetch --mode sequential 7 2 6 4 0 9 4 2 5 5    one after another (about 44 s)
  slowlab fetch --mode threads --threads 4 --random 20 --seed 1
  slowlab fetch --count 10000 --delay 1      10,000 waits of 1 s at once, then a summary
  slowlab fetch --count 100000 --delay 0 --concurrency 50 --output json --quiet
  slowlab fetch --count 100000 --delay 5 --http2
  slowlab fetch --count 1000 --delay 0.5 --fail-on 'p99>0.6s,errors>0'
  slowlab fetch --count 10000 --delay 1 --report run.html     the run as a page, at a glance
  slowlab fetch --urls urls.txt --base-url http://127.0.0.1:9000 --output ndjson
  printf 'http://127.0.0.1:8000/1\nhttp://127.0.0.1:8001/2\n' | slowlab fetch --urls -

Text output prints the delays, each response body as it arrives (up to 20 requests, or always
with --print-bodies), the elapsed time, then a summary with latency percentiles.
Exit status: 0 when every request succeeded, 1 when any failed (or the run was interrupted),
2 on a usage error, 3 when a --fail-on threshold was crossed.";

/// How `fetch` sends its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// One blocking client, one request after another (like `requests` in a loop).
    Sequential,
    /// Blocking clients on OS threads (--threads N; default one per request, up to 512).
    Threads,
    /// Tokio tasks: all requests at once (like `asyncio.gather`), or --concurrency K at a time.
    Async,
}

/// Output formats of `fetch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FetchOutput {
    /// For people: the list, bodies as they arrive, the elapsed time and a summary.
    Text,
    /// One JSON document at the end: workload, summary, and every outcome by index.
    Json,
    /// One JSON outcome per line as each request ends, then a `{"summary": ...}` line.
    Ndjson,
    /// One CSV row per outcome, as each request ends, after a header row.
    Csv,
}

/// Options of `slowlab fetch`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("workload").args(["delays", "count", "random", "urls"])))]
pub struct FetchArgs {
    /// Delays to request, in seconds (decimals allowed). None (and no --count, --random or
    /// --urls): ten random whole seconds in [0, 10).
    #[arg(value_parser = parse_seconds, value_name = "SECONDS")]
    pub delays: Vec<Duration>,
    /// Send this many requests of --delay seconds each.
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<usize>,
    /// The delay of each --count request, in seconds.
    #[arg(long, short = 'd', value_parser = parse_seconds, value_name = "SECONDS",
          requires = "count", default_value = "1")]
    pub delay: Duration,
    /// Send N random whole-second delays in [0, 10), like the article.
    #[arg(long, value_name = "N")]
    pub random: Option<usize>,
    /// Seed for the random delays, so the same list comes back.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Read one URL or path per line from FILE (`-`: standard input); paths join --base-url, and
    /// full URLs may name any number of servers. Blank lines and lines starting with # are
    /// skipped. With several servers, async mode gives each its own connections, and
    /// --concurrency and --connections apply to each server.
    #[arg(long, value_name = "FILE")]
    pub urls: Option<PathBuf>,
    /// The server to call.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8000",
        env = "SLOWLAB_BASE_URL"
    )]
    pub base_url: String,
    /// How to send the requests [default: async, or threads when --threads is given].
    #[arg(long, short, value_enum)]
    pub mode: Option<ModeArg>,
    /// Threads of the threads mode [default: one per request, up to 512].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Async: at most K requests in flight (per server); over HTTP/1.1 that is K keep-alive
    /// connections.
    #[arg(long, short, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
    /// Async: HTTP/2 without TLS (h2c, prior knowledge), many requests per connection.
    #[arg(long)]
    pub http2: bool,
    /// Async: open N connections (per server). HTTP/1.1: a keep-alive pool (so at most N in flight);
    /// HTTP/2 [default: as many as the server's stream limit requires].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: Option<u32>,
    /// HTTP method of every request.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// Extra header for every request, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// https://: accept any server certificate (self-signed test servers), like `curl -k`.
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Give up on a request after this many seconds (default: wait as long as the server takes).
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS")]
    pub timeout: Option<Duration>,
    /// Give up connecting after this many seconds.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub connect_timeout: Duration,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = FetchOutput::Text)]
    pub output: FetchOutput,
    /// Text output: print every response body as it arrives, however many requests.
    #[arg(long)]
    pub print_bodies: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Thresholds that fail the run with exit status 3, e.g. 'p99>2.5s,errors>0'. Metrics:
    /// p50 p90 p99 p99.9 max mean (latency), overhead-p50 ... overhead-max, errors, error-rate
    /// (0 to 1), wall, efficiency, throughput, peak-concurrency; operators > >= < <=; durations
    /// in s or ms.
    #[arg(long, value_name = "RULES")]
    pub fail_on: Option<String>,
    /// Also write a self-contained HTML report to FILE: one bar per request, or past 40 requests
    /// requests in flight, completions, a latency histogram and the slowest requests.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}
