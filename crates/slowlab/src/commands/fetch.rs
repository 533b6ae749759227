//! `slowlab fetch`: the article's clients as one measuring command.
//!
//! A run's path: arguments → validated workload and options → `slowlab_client::run_with` → the
//! collector's callback → sinks (text, JSON, NDJSON, CSV) and the progress bar → exit status.

mod fail_on;

use std::collections::HashMap;
use std::io::{self, BufWriter, IsTerminal, Read};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri};
use slowlab_client::workload::random_delays;
use slowlab_client::{Control, Endpoint, Mode, RequestOptions, Target, Workload};

use crate::UsageError;
use crate::cli::values::MAX_COUNT;
use crate::cli::{FetchArgs, FetchOutput, ModeArg};
use crate::commands::{drop_efficiency_without_ideal, endpoint};
use crate::output::tolerate_broken_pipe;
use crate::sink::Sink;
use crate::sink::csv::CsvSink;
use crate::sink::json::{JsonSink, NdjsonSink};
use crate::sink::progress::{Progress, Timed};
use crate::sink::text::{BODY_LINES_UP_TO, TextSink};
use crate::usage;
use fail_on::Rule;

/// The timeout of a run for a `--duration` when none is given: requests in flight at its end
/// finish within this.
const DURATION_RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests drawn when no workload is given, like the article.
const DEFAULT_RANDOM: usize = 10;
/// The delay of each `--count` request when `--delay` is not given.
const DEFAULT_DELAY: Duration = Duration::from_secs(1);

/// Headers the client writes itself: the body's framing and the connection's own (hop-by-hop)
/// headers. A user's copy would contradict the client's (a `Content-Length: 5` with no body hangs
/// the request) or is forbidden outright by HTTP/2.
const CLIENT_OWNED_HEADERS: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
];

/// Everything of `fetch`'s arguments that can be checked without I/O, checked.
#[derive(Debug)]
pub struct Plan {
    mode: Mode,
    rules: Vec<Rule>,
    endpoint: Endpoint,
    method: Method,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Plan {
    /// Checks `args`; the error says what to change.
    pub fn new(args: &FetchArgs) -> Result<Plan, UsageError> {
        let mode = resolve_mode(args)?;
        if let (Some(delay), None) = (args.delay, args.count) {
            return Err(usage!(
                "--delay {} is the delay of each --count request and needs --count N; other \
                 workloads take their delays as arguments, e.g. `slowlab fetch --rate 200 \
                 --duration 10s {}`",
                delay.as_secs_f64(),
                delay.as_secs_f64()
            ));
        }
        check_duration(args, mode)?;
        let rules = match args.fail_on.as_deref() {
            Some(text) => fail_on::parse(text).map_err(|err| usage!("--fail-on: {err}"))?,
            None => Vec::new(),
        };
        let random = args.random.is_some()
            || (args.count.is_none() && args.urls.is_none() && args.delays.is_empty());
        if args.seed.is_some() && !random {
            return Err(usage!(
                "--seed applies to random delays only (--random N, or no workload at all)"
            ));
        }
        // Each shard would draw a list of its own: together they would not be one workload,
        // and `report merge` would refuse them.
        if let (true, Some(spec), None) = (random, args.shard, args.seed) {
            return Err(usage!(
                "--shard {spec} with random delays: every shard would draw its own list; give \
                 --seed S so that all draw the same (e.g. `--random 100 --seed 7 --shard {spec}`), \
                 or the delays themselves"
            ));
        }
        let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| usage!("--method {:?} is not an HTTP method", args.method))?;
        let mut headers: Vec<(HeaderName, HeaderValue)> = args
            .headers
            .iter()
            .map(|header| parse_header(header))
            .collect::<Result<_, _>>()?;
        if let Some(kind) = &args.content_type {
            let value = HeaderValue::from_str(kind.trim()).map_err(|_| {
                usage!("--content-type {kind:?} is not a valid header value; e.g. application/json")
            })?;
            headers.push((http::header::CONTENT_TYPE, value));
        }
        let stdin_users = [
            args.urls.as_deref().is_some_and(|p| p.as_os_str() == "-"),
            args.body_file
                .as_deref()
                .is_some_and(|p| p.as_os_str() == "-"),
        ];
        if stdin_users.iter().all(|&reads| reads) {
            return Err(usage!(
                "--urls - and --body-file - both read standard input; give one of them a file"
            ));
        }
        Ok(Plan {
            mode,
            rules,
            endpoint: endpoint(&args.base_url).map_err(|err| usage!("--base-url {err}"))?,
            method,
            headers,
        })
    }
}

/// Sends the workload, streams outcomes to the chosen output, and returns the exit status:
/// 0 all ok, 1 some failed or cancelled or the output could not be written, 3 a `--fail-on` rule
/// broken (usage errors are `Err`).
///
/// The run is spawned onto the runtime's workers rather than awaited on the thread that blocks on
/// the runtime: there, the collector would sleep on a thread of its own, and every outcome would
/// wake it (two futex calls and two context switches per request, about a third of the
/// throughput on one core against a fast server).
pub async fn run(args: FetchArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::new(&args)?;
    match tokio::spawn(run_here(args, plan)).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(anyhow::anyhow!("the run was stopped: {err}")),
    }
}

/// [`run`], on whichever thread polls it.
async fn run_here(args: FetchArgs, plan: Plan) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.report {
        crate::report::check_writable(path)?;
    }
    // A JSON document lists every outcome, and so does the HTML report; the other outputs stream
    // them. With --no-outcomes the report draws the run's histograms instead.
    let keep_outcomes =
        (args.output == FetchOutput::Json || args.report.is_some()) && !args.no_outcomes;
    check_memory(&args, keep_outcomes)?;
    let workload = Arc::new(build_workload(&args, &plan)?);
    check_rules_fit(&plan.rules, &workload)?;
    let total = workload.targets.len();
    let print_bodies = args.print_bodies || total <= BODY_LINES_UP_TO;
    // A shard of a closed-loop run for a time sends with its part of --concurrency.
    let shared = workload
        .shard
        .as_ref()
        .and_then(|shard| shard.concurrency());
    let options = RequestOptions {
        // A run for a time ends: what is in flight at its end gets a bounded time to finish.
        timeout: args.timeout.or(args.duration.map(|_| DURATION_RUN_TIMEOUT)),
        connect_timeout: args.connect_timeout,
        concurrency: shared
            .map(|shared| shared.share as usize)
            .or(args.concurrency.map(|k| k as usize)),
        threads: args.threads.map(|n| n as usize),
        http2: args.http2,
        connections: args.connections.map(|n| n as usize),
        insecure: args.insecure,
        keep_bodies: args.output == FetchOutput::Text && print_bodies,
        max_response_bytes: args.max_response_bytes,
        keep_outcomes,
        coarse_timer: false,
    };
    // Every connection is a file descriptor; 10,000 waits need more than the usual 1,024.
    let fd_limit = slowlab_client::limits::raise_fd_limit();
    tracing::debug!("open-file limit: {fd_limit:?}");

    let control = Control::new();
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let pace = &workload.pace;
    // A run at a rate or for a time: a bar that follows the schedule's clock.
    let length = match &pace.rate {
        Some(rate) => args
            .duration
            .or(rate.length())
            .or_else(|| rate.start_of(total.saturating_sub(1))),
        None => pace.until,
    };
    let progress = match length {
        Some(length) => {
            let ramp = pace.rate.clone().filter(|rate| !rate.stages().is_empty());
            Progress::timed(Timed { length, ramp }, !args.quiet, color, &control)
        }
        None => Progress::new(total, !args.quiet, color, &control),
    };
    // Output on the terminal the bar is on moves it out of the way as it is written.
    let stdout = progress.beside(io::stdout(), io::stdout().is_terminal());
    let mut sink: Box<dyn Sink + Send> = match args.output {
        FetchOutput::Text => {
            let sink = TextSink::new(stdout, total, args.print_bodies);
            Box::new(if args.no_histogram {
                sink.without_histogram()
            } else {
                sink
            })
        }
        FetchOutput::Json => Box::new(JsonSink::new(BufWriter::new(stdout))),
        FetchOutput::Ndjson => Box::new(NdjsonSink::new(BufWriter::new(stdout))),
        FetchOutput::Csv => Box::new(CsvSink::new(BufWriter::new(stdout))),
    };
    let interrupt = tokio::spawn({
        let control = control.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                say!("\nslowlab fetch: interrupted; reporting what finished");
                control.cancel();
            }
        }
    });

    let mut write_error: Option<io::Error> = None;
    let mut note = |result: io::Result<()>| {
        if let Err(err) = tolerate_broken_pipe(result)
            && write_error.is_none()
        {
            write_error = Some(err);
        }
    };
    note(sink.start(&workload));
    let sent = Arc::clone(&workload);
    let mut report = slowlab_client::run_with(plan.mode, sent, options, &control, |outcome| {
        progress.outcome(outcome);
        note(sink.outcome(&workload, outcome));
    })
    .await;
    interrupt.abort();
    progress.finish();
    drop_efficiency_without_ideal(&mut report);
    note(sink.finish(&report));
    drop(sink);

    let mut unwritten = false;
    if let Some(path) = &args.report {
        let written = crate::report::Document::of_fetch(&report)
            .and_then(|doc| crate::report::write_html(path, &doc));
        if let Err(err) = written {
            say!("slowlab fetch: {err:#}");
            unwritten = true;
        }
    }

    let summary = &report.summary;
    if summary.cancelled > 0 {
        say!(
            "slowlab fetch: interrupted: {} finished, {} cancelled",
            summary.requests - summary.cancelled,
            summary.cancelled
        );
    }
    let mut broken = 0;
    for rule in &plan.rules {
        let (is_broken, value) = rule.check(summary);
        if is_broken {
            broken += 1;
            say!(
                "slowlab fetch: threshold {rule} crossed: measured {}",
                rule.show(value)
            );
        }
    }
    if summary.failed > 0 {
        say!(
            "slowlab fetch: {} of {} requests failed",
            summary.failed,
            summary.requests
        );
    }
    // With a rule on errors, failed requests are judged by that rule alone: `errors>5` allows
    // five. An interrupted run is a failure whatever the rules say.
    let failures_fail = summary.cancelled > 0
        || (summary.failed > 0 && !plan.rules.iter().any(Rule::judges_failures));
    Ok(if let Some(err) = write_error {
        say!("slowlab fetch: cannot write the output: {err}");
        ExitCode::from(crate::EXIT_FAILED)
    } else if broken > 0 {
        ExitCode::from(crate::EXIT_THRESHOLD)
    } else if failures_fail || unwritten {
        ExitCode::from(crate::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The mode, checking that the other options fit it.
fn resolve_mode(args: &FetchArgs) -> Result<Mode, UsageError> {
    let mode = match (args.mode, args.threads) {
        (Some(mode), _) => mode,
        (None, Some(_)) => ModeArg::Threads,
        (None, None) => ModeArg::Async,
    };
    let async_only = [
        ("--concurrency", args.concurrency.is_some()),
        ("--http2", args.http2),
        ("--connections", args.connections.is_some()),
    ];
    if mode != ModeArg::Async
        && let Some((flag, _)) = async_only.iter().find(|(_, given)| *given)
    {
        return Err(usage!(
            "{flag} applies to --mode async only (the {} mode is blocking HTTP/1.1); \
             use --threads N to size the threads mode",
            Mode::from(mode).as_str()
        ));
    }
    if mode != ModeArg::Threads && args.threads.is_some() {
        return Err(usage!("--threads applies to --mode threads only"));
    }
    if mode != ModeArg::Async && args.rate.is_some() {
        return Err(usage!(
            "--rate applies to --mode async only: the {} mode is closed loop by nature, each \
             client starting a request only when its last one ended; e.g. `--rate 100 \
             --connections 50` in async mode",
            Mode::from(mode).as_str()
        ));
    }
    Ok(Mode::from(mode))
}

/// Checks that a run for a time (`--duration`) has a way to end and a bound on what it holds.
fn check_duration(args: &FetchArgs, mode: Mode) -> Result<(), UsageError> {
    if let Some(rate) = &args.rate {
        let Some(length) = args.duration.or(rate.length()) else {
            return Ok(());
        };
        let due = rate.count_before(length);
        if due as u64 > MAX_COUNT {
            return Err(usage!(
                "--rate {rate} for {} s schedules {due} requests, more than the {MAX_COUNT} one \
                 run may send; lower the rate or the --duration",
                length.as_secs_f64()
            ));
        }
        if due == 0 {
            return Err(usage!(
                "--rate {rate} schedules no request in {} s; raise the rate or the --duration",
                length.as_secs_f64()
            ));
        }
        return Ok(());
    }
    if args.duration.is_none() {
        return Ok(());
    }
    if mode == Mode::Async && args.concurrency.is_none() {
        return Err(usage!(
            "--duration without --rate runs closed loop and needs --concurrency K (K requests at \
             a time, a new one as one ends), e.g. `--duration 30s --concurrency 50`; or give \
             --rate R for open-loop arrivals"
        ));
    }
    if let Some(spec) = args.shard {
        // Each shard runs for the whole time with its part of K: the parts add up to K.
        let Some(whole) = args.concurrency.filter(|_| mode == Mode::Async) else {
            return Err(usage!(
                "--duration without --rate shares --concurrency K among the shards, which the \
                 {} mode has not; use --mode async, e.g. `--duration 30s --concurrency 50 \
                 --shard 0/2`",
                mode.as_str()
            ));
        };
        if spec.share_of(whole) == 0 {
            return Err(usage!(
                "--shard {spec} --concurrency {whole}: a closed-loop run for a time gives each \
                 of the {} shards a part of --concurrency, and shard {} would get none; give \
                 --concurrency at least {}, or fewer shards, e.g. `--duration 30s \
                 --concurrency {} --shard {spec}`",
                spec.count,
                spec.index,
                spec.count,
                spec.count
            ));
        }
    }
    if args.urls.is_some() {
        return Err(usage!(
            "--duration without --rate takes delays, not --urls; with --urls give --rate R, \
             e.g. `--rate 100 --duration 30s --urls urls.txt`"
        ));
    }
    Ok(())
}

/// Refuses rules that cannot mean anything for this workload: an efficiency needs delays to
/// compare with.
fn check_rules_fit(rules: &[Rule], workload: &Workload) -> Result<(), UsageError> {
    let Some(rule) = rules.iter().find(|rule| rule.needs_ideal()) else {
        return Ok(());
    };
    if !workload.all_delays() {
        return Err(usage!(
            "--fail-on {rule}: efficiency needs a workload of delays (not --urls paths)"
        ));
    }
    if workload.max_delay().is_zero() {
        return Err(usage!(
            "--fail-on {rule}: every delay is 0, so the run has no ideal to be efficient against"
        ));
    }
    Ok(())
}

/// Refuses, before anything is allocated, a workload whose requests cannot fit in memory.
fn check_memory(args: &FetchArgs, keep_outcomes: bool) -> Result<(), UsageError> {
    let requests = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let (requests, listed) = match (args.count, args.random) {
        (Some(count), _) => (requests(count), false),
        (None, Some(random)) => (requests(random), true),
        // Delays and --urls are in memory already, as arguments or as the file read.
        (None, None) => (args.delays.len(), true),
    };
    slowlab_client::limits::check_memory(requests, listed, keep_outcomes)
        .map_err(|err| usage!("{err}"))
}

/// The requests to send, from exactly one of: delays, --count, --random, --urls, or ten random.
/// Reading --urls is the only I/O; what it cannot use is a usage error.
fn build_workload(args: &FetchArgs, plan: &Plan) -> Result<Workload, UsageError> {
    let endpoint = plan.endpoint.clone();
    let mut workload = if let Some(count) = args.count {
        Workload::repeat(
            endpoint,
            usize::try_from(count).unwrap_or(usize::MAX),
            args.delay.unwrap_or(DEFAULT_DELAY),
        )
    } else if let Some(path) = &args.urls {
        let text = if path.as_os_str() == "-" {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|err| usage!("--urls -: cannot read standard input: {err}"))?;
            text
        } else {
            std::fs::read_to_string(path)
                .map_err(|err| usage!("--urls: cannot read {}: {err}", path.display()))?
        };
        urls_workload(endpoint, &text)?
    } else {
        let delays = if args.delays.is_empty() {
            let count = args.random.map_or(DEFAULT_RANDOM, |n| n as usize);
            random_delays(count, args.seed)
                .into_iter()
                .map(Duration::from_secs)
                .collect()
        } else {
            args.delays.clone()
        };
        Workload::from_delays(endpoint, &delays)
    };
    workload.method = plan.method.clone();
    workload.headers.clone_from(&plan.headers);
    workload.body = read_body(args)?.into();
    let workload = match (&args.rate, args.duration) {
        (Some(rate), duration) => workload.at_rate(rate.clone(), duration),
        (None, Some(duration)) => workload.for_duration(duration),
        (None, None) => workload,
    };
    // A shard of an open-loop run keeps its requests' places in the whole schedule; a shard of a
    // closed-loop run for a time keeps every target and takes its part of --concurrency.
    Ok(match args.shard {
        Some(spec) => workload.into_shard_with(spec, args.concurrency),
        None => workload,
    })
}

/// The body of every request: --body's text, --body-file's bytes, or none.
fn read_body(args: &FetchArgs) -> Result<Vec<u8>, UsageError> {
    if let Some(text) = &args.body {
        return Ok(text.clone().into_bytes());
    }
    let Some(path) = &args.body_file else {
        return Ok(Vec::new());
    };
    if path.as_os_str() == "-" {
        let mut body = Vec::new();
        io::stdin()
            .read_to_end(&mut body)
            .map_err(|err| usage!("--body-file -: cannot read standard input: {err}"))?;
        return Ok(body);
    }
    if path.is_dir() {
        return Err(usage!(
            "--body-file {}: is a directory; give a file, e.g. --body-file request.json",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|err| {
        usage!(
            "--body-file {}: cannot read it: {err}; give a readable file, e.g. --body-file \
             request.json, or - for standard input",
            path.display()
        )
    })
}

/// One URL or path a line. Paths join the base URL; full URLs name their own server, so one file
/// can mix servers. The base URL is the workload's first server, the others follow in the order
/// they first appear.
fn urls_workload(base: Endpoint, text: &str) -> Result<Workload, UsageError> {
    let mut workload = Workload::new(base.clone(), Vec::new());
    let mut servers: HashMap<Endpoint, u32> = HashMap::from([(base, 0)]);
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let refuse = |why: &str| {
            usage!(
                "--urls line {}: {:?} {why}",
                number + 1,
                crate::render::printable(line)
            )
        };
        if !line.contains("://") {
            let path = if line.starts_with('/') {
                line.to_owned()
            } else {
                format!("/{line}")
            };
            if path.parse::<http::uri::PathAndQuery>().is_err() {
                return Err(refuse(
                    "is neither a URL nor a path (e.g. http://127.0.0.1:8000/1 or /1?jitter=0.5; \
                     spaces and other special characters must be percent-encoded)",
                ));
            }
            workload.targets.push(Target::path(line));
            continue;
        }
        let uri: Uri = line
            .parse()
            .map_err(|_| refuse("is not a URL (e.g. http://127.0.0.1:8000/1)"))?;
        let origin = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("http"),
            uri.authority().map_or("", |a| a.as_str())
        );
        let server = endpoint(&origin).map_err(|err| refuse(&err.0))?;
        let index = match servers.get(&server) {
            Some(&index) => index,
            None => {
                let index = workload.add_server(server.clone());
                servers.insert(server, index);
                index
            }
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        workload.targets.push(Target::path(path).on_server(index));
    }
    if workload.targets.is_empty() {
        return Err(usage!(
            "--urls: no URL in the input (one URL or path a line)"
        ));
    }
    Ok(workload)
}

/// `Name: value`, refusing the headers the client owns.
fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), UsageError> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| usage!("--header {text:?}: expected NAME:VALUE"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| usage!("--header {text:?}: {name:?} is not a header name"))?;
    if CLIENT_OWNED_HEADERS.contains(&name.as_str()) {
        return Err(usage!(
            "--header {text:?}: the client writes {name} itself (it frames the body or manages \
             the connection, and HTTP/2 forbids it); leave it out"
        ));
    }
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| usage!("--header {text:?}: the value is not a valid header value"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_the_base_or_name_one_server() {
        let base = Endpoint::parse("http://127.0.0.1:9").unwrap();
        let w = urls_workload(base.clone(), "# comment\n/a?x=1\n\nb\n").unwrap();
        let paths: Vec<&str> = w.targets.iter().map(|t| &*t.path).collect();
        assert_eq!(paths, ["/a?x=1", "/b"]);
        assert_eq!(w.servers(), std::slice::from_ref(&base));
        let w = urls_workload(base.clone(), "http://localhost:7/x\n/y\n").unwrap();
        assert_eq!(w.endpoint(), &base, "the base URL stays the first server");
        let urls: Vec<String> = w.targets.iter().map(|t| w.url(t)).collect();
        assert_eq!(urls, ["http://localhost:7/x", "http://127.0.0.1:9/y"]);
        assert!(urls_workload(base, "\n# nothing\n").is_err());
    }

    #[test]
    fn urls_on_several_servers_keep_their_order_and_servers() {
        let base = Endpoint::parse("http://127.0.0.1:9").unwrap();
        let text = "http://a:1/x\nhttps://b/y?z=1\nhttp://a:1/w\n/v\n";
        let w = urls_workload(base, text).unwrap();
        let servers: Vec<String> = w.servers().iter().map(Endpoint::base_url).collect();
        assert_eq!(
            servers,
            ["http://127.0.0.1:9", "http://a:1", "https://b:443"]
        );
        let placed: Vec<(u32, &str)> = w.targets.iter().map(|t| (t.server, &*t.path)).collect();
        assert_eq!(placed, [(1, "/x"), (2, "/y?z=1"), (1, "/w"), (0, "/v")]);
    }

    #[test]
    fn headers_parse() {
        let (name, value) = parse_header("X-Test: a b").unwrap();
        assert_eq!(name.as_str(), "x-test");
        assert_eq!(value, "a b");
        assert!(parse_header("no colon").is_err());
        for owned in [
            "Content-Length: 5",
            "connection: close",
            "Upgrade: h2c",
            "TE: trailers",
        ] {
            let err = parse_header(owned).unwrap_err();
            assert!(err.0.contains("the client writes"), "{owned}: {err}");
        }
    }

    #[test]
    fn urls_lines_that_are_not_urls_are_refused_with_their_number() {
        let base = Endpoint::parse("http://127.0.0.1:9").unwrap();
        let err = urls_workload(base.clone(), "/1\n# c\nnot a url\n").unwrap_err();
        assert!(err.0.starts_with("--urls line 3: \"not a url\""), "{err}");
        let err = urls_workload(base, "http://127.0.0.1:99999/1\n").unwrap_err();
        assert!(
            err.0.contains("--urls line 1") && err.0.contains("65535"),
            "{err}"
        );
    }
}
