//! Options of `slowlab fetch`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, ValueEnum};
use slowlab_client::Mode;

use super::values::{
    MAX_COUNT, MAX_RANDOM, MAX_SLOTS, MAX_THREADS, parse_delay, parse_rate, parse_timeout,
};

pub(super) const FETCH_EXAMPLES: &str = "\
Examples:
  slowlab fetch                              ten random delays in [0, 10) s, all at once
  slowlab fetch 7 2 6 4 0 9 4 2 5 5          the article's list (async: about 9 s)
  slowlab fetch --mode sequential 7 2 6 4 0 9 4 2 5 5    one after another (about 44 s)
  slowlab fetch --mode threads --threads 4 --random 20 --seed 1
  slowlab fetch --count 10000 --delay 1      10,000 waits of 1 s at once, then a summary
  slowlab fetch --count 100000 --delay 0 --concurrency 50 --output json --quiet
  slowlab fetch --count 100000 --delay 5 --http2
  slowlab fetch --count 10000000 --delay 0 -c 100 -o json --no-outcomes -q    a summary, no list
  slowlab fetch --base-url https://example.com --max-response-bytes 1048576 --urls urls.txt
  slowlab fetch --count 1000 --delay 0.5 --fail-on 'p99>0.6s,errors>0'
  slowlab fetch --rate 200 --duration 10s --connections 100 0.05    open loop: 200/s for 10 s
  slowlab fetch --rate 100,1000@30s,1000@60s,0@10s --http2 0.1      a ramp up, a hold, a ramp down
  slowlab fetch --duration 30s --concurrency 50 0 0.1 0.5           closed loop for 30 s
  slowlab fetch --count 10000 --delay 1 --report run.html     the run as a page, at a glance
  slowlab fetch --urls urls.txt --base-url http://127.0.0.1:9000 --output ndjson
  slowlab fetch -X POST --body '{\"n\": 1}' --content-type application/json --urls urls.txt
  printf 'http://127.0.0.1:8000/1\\nhttp://127.0.0.1:8001/2\\n' | slowlab fetch --urls -

Text output prints the delays, each response body as it arrives (up to 20 requests, or always
with --print-bodies), the elapsed time, then a summary with latency percentiles.
Delays are seconds as the server reads them: digits, optionally a dot and up to 9 decimals
(0 to 86400). Other durations take a unit us, ms, s or m (no unit: seconds): 250ms, 2.5s, 1m.
Exit status: 0 when every request succeeded, 1 when any failed (or the run was interrupted, or
the output could not be written), 2 on a usage error, 3 when a --fail-on threshold was crossed
(with a rule on errors or error-rate, failed requests count only through that rule).";

/// How `fetch` sends its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// One blocking client, one request after another (like `requests` in a loop).
    Sequential,
    /// Blocking clients on OS threads, like a thread pool.
    Threads,
    /// Tokio tasks, all requests at once (like `asyncio.gather`).
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

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Mode {
        match mode {
            ModeArg::Sequential => Mode::Sequential,
            ModeArg::Threads => Mode::Threads,
            ModeArg::Async => Mode::Async,
        }
    }
}

/// Options of `slowlab fetch`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("workload").args(["delays", "count", "random", "urls"])))]
pub struct FetchArgs {
    /// Delays to request, in seconds, 0 to 86400 (digits, optionally a dot and up to 9 decimals).
    /// None (and no --count, --random or --urls): ten random whole seconds in [0, 10).
    #[arg(value_parser = parse_delay, value_name = "SECONDS")]
    pub delays: Vec<Duration>,
    /// Send this many requests (1 to 100000000) of --delay seconds each.
    #[arg(long, short = 'n', value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT))]
    pub count: Option<u64>,
    /// The delay of each --count request, in seconds (0 to 86400; default 1). (`-d` is the
    /// delay, not a request body as in curl and hey: bodies are --body and --body-file.)
    // An Option, not a default: clap drops `requires = "count"` when --duration (which conflicts
    // with --count) is given, so the check that it came with --count is ours (Plan::new).
    #[arg(long, short = 'd', value_parser = parse_delay, value_name = "SECONDS")]
    pub delay: Option<Duration>,
    /// Send N (1 to 1000000) random whole-second delays in [0, 10), like the article.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=MAX_RANDOM))]
    pub random: Option<u64>,
    /// Seed for the random delays (--random N, or no workload at all), so the same list comes
    /// back.
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
    /// How to send the requests [default: async, or threads when --threads is given]. Threads:
    /// --threads N sizes the pool; async: --concurrency K bounds the requests in flight.
    #[arg(long, short, value_enum)]
    pub mode: Option<ModeArg>,
    /// Threads of the threads mode, 1 to 10000 [default: one per request, up to 512].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=MAX_THREADS as i64))]
    pub threads: Option<u32>,
    /// Async: at most K requests in flight (per server), 1 to 1000000; over HTTP/1.1 that is K
    /// keep-alive connections.
    #[arg(long, short, value_name = "K",
          value_parser = clap::value_parser!(u32).range(1..=MAX_SLOTS as i64))]
    pub concurrency: Option<u32>,
    /// Async: HTTP/2, many requests per connection (h2c with prior knowledge over http://, ALPN
    /// h2 over https://).
    #[arg(long)]
    pub http2: bool,
    /// Async: open N connections (per server), 1 to 1000000. Over HTTP/1.1 they are a keep-alive
    /// pool, so at most N requests are in flight; over HTTP/2 each carries many streams. Default:
    /// one per request in flight over HTTP/1.1; over HTTP/2, as many as the server's stream limit
    /// requires.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=MAX_SLOTS as i64))]
    pub connections: Option<u32>,
    /// HTTP method of every request.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// Extra header for every request, `Name: value` (repeatable). Headers the client writes
    /// itself (Content-Length, Transfer-Encoding, Connection, Keep-Alive, Upgrade, TE, Trailer,
    /// Proxy-Connection) are refused.
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Send TEXT as the body of every request, in every mode (pick the method with -X, e.g.
    /// POST). Not -d: that is --delay here.
    #[arg(long, value_name = "TEXT", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Send the bytes of FILE (`-`: standard input) as the body of every request, unchanged.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// The Content-Type header of every request, e.g. application/json (same as
    /// -H 'Content-Type: ...').
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// https://: accept any server certificate (self-signed test servers), like `curl -k`.
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Open loop: send R requests a second whatever the earlier ones are doing (decimals allowed),
    /// and measure latency from when each was due, so a slow server cannot hide the queue it
    /// causes. Stages ramp linearly: `100,1000@30s,1000@60s,0@10s` starts at 100/s, ramps to
    /// 1000/s over 30 s, holds it 60 s and ramps down to 0 over 10 s. Async mode only.
    #[arg(long, value_name = "R|R,R@D,...", value_parser = parse_rate)]
    pub rate: Option<slowlab_client::Rate>,
    /// Run for this long (30s, 2m), the delays or --urls sent in turn, round and round: at
    /// --rate, or closed loop with --concurrency K (K at a time, a new one as one ends). At the
    /// end nothing new starts; requests in flight get up to --timeout (30 s by default) to finish.
    #[arg(long, value_parser = parse_timeout, value_name = "DURATION",
          conflicts_with_all = ["count", "random"])]
    pub duration: Option<Duration>,
    /// Give up on a request after this long, e.g. 2.5s or 500ms, above 0 and at most a day
    /// (default: wait as long as the server takes; 30 s in a run for a --duration).
    #[arg(long, value_parser = parse_timeout, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// Give up connecting after this long, above 0 and at most a day.
    #[arg(long, default_value = "10s", value_parser = parse_timeout, value_name = "DURATION")]
    pub connect_timeout: Duration,
    /// Read at most BYTES of each response body, in every mode (16 MiB by default); a longer
    /// body fails its request as body-too-large, at once when its Content-Length announces it.
    #[arg(long, value_name = "BYTES", default_value_t = slowlab_client::DEFAULT_MAX_RESPONSE_BYTES)]
    pub max_response_bytes: u64,
    /// Keep no per-request outcomes: --output json leaves out its outcomes list (and says so);
    /// the summary still counts every request. Memory then stays flat however large --count is.
    /// (text, ndjson and csv never keep them.)
    #[arg(long)]
    pub no_outcomes: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = FetchOutput::Text)]
    pub output: FetchOutput,
    /// Text output: print every response body as it arrives, however many requests.
    #[arg(long)]
    pub print_bodies: bool,
    /// Text output: no latency histogram under the summary (drawn for runs of 100 requests or
    /// more).
    #[arg(long)]
    pub no_histogram: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Thresholds that fail the run with exit status 3, e.g. 'p99>2.5s,errors>0'. Metrics:
    /// p50 p90 p99 p99.9 max mean (latency), overhead-p50 ... overhead-max, errors, error-rate
    /// (0 to 1), wall, efficiency, throughput, peak-concurrency, status-5xx, status-4xx,
    /// status-503 (responses of that class or code); operators > >= < <=; durations
    /// with a unit us, ms, s or m (no unit: seconds). A rule on errors or error-rate replaces the
    /// default "any failed request exits 1".
    #[arg(long, value_name = "RULES")]
    pub fail_on: Option<String>,
    /// Also write a self-contained HTML report to FILE: one bar per request, or past 40 requests
    /// requests in flight, completions, a latency histogram and the slowest requests.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Send only shard I of N of the workload (I from 0 to N-1): request k when k mod N = I, so N
    /// processes with the same arguments and N send every request once. Outcomes keep their index
    /// in the whole workload; `slowlab report merge` joins the shards' JSON reports. With
    /// --duration and no --rate, each shard runs for the whole time with its share of
    /// --concurrency K (K/N, the first K mod N shards one more). Example: --shard 0/4 (or
    /// --shard "$JOB_COMPLETION_INDEX/4" in a Kubernetes Indexed Job).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<slowlab_client::shard::ShardSpec>,
}
