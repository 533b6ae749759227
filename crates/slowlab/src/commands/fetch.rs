//! `slowlab fetch`: the article's clients as one measuring command.
//!
//! A run's path: arguments → validated workload and options → `slowlab_client::run_with` → the
//! collector's callback → sinks (text, JSON, NDJSON, CSV) and the progress bar → exit status.

mod fail_on;

use std::collections::HashMap;
use std::io::{self, BufWriter, Read};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use http::{HeaderName, HeaderValue, Method, Uri};
use slowlab_client::workload::random_delays;
use slowlab_client::{Control, Endpoint, Mode, RequestOptions, Target, Workload};

use crate::cli::{FetchArgs, FetchOutput, ModeArg};
use crate::commands::race::mode_of;
use crate::sink::csv::CsvSink;
use crate::sink::json::{JsonSink, NdjsonSink};
use crate::sink::progress::Progress;
use crate::sink::text::{BODY_LINES_UP_TO, TextSink};
use crate::sink::{Sink, tolerate_broken_pipe};

/// Requests drawn when no workload is given, like the article.
const DEFAULT_RANDOM: usize = 10;

/// Sends the workload, streams outcomes to the chosen output, and returns the exit status:
/// 0 all ok, 1 some failed or cancelled, 3 a `--fail-on` rule broken (usage errors are `Err`).
///
/// The run is spawned onto the runtime's workers rather than awaited on the thread that blocks on
/// the runtime: there, the collector would sleep on a thread of its own, and every outcome would
/// wake it (two futex calls and two context switches per request, about a third of the
/// throughput on one core against a fast server).
pub async fn run(args: FetchArgs) -> anyhow::Result<ExitCode> {
    match tokio::spawn(run_here(args)).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(anyhow::anyhow!("the run was stopped: {err}")),
    }
}

/// [`run`], on whichever thread polls it.
async fn run_here(args: FetchArgs) -> anyhow::Result<ExitCode> {
    let mode = resolve_mode(&args)?;
    if let Some(path) = &args.report {
        crate::report::check_writable(path)?;
    }
    let rules = args
        .fail_on
        .as_deref()
        .map(fail_on::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let workload = Arc::new(build_workload(&args)?);
    let total = workload.targets.len();
    let print_bodies = args.print_bodies || total <= BODY_LINES_UP_TO;
    let options = RequestOptions {
        timeout: args.timeout,
        connect_timeout: args.connect_timeout,
        concurrency: args.concurrency.map(|k| k as usize),
        threads: args.threads.map(|n| n as usize),
        http2: args.http2,
        connections: args.connections.map(|n| n as usize),
        insecure: args.insecure,
        keep_bodies: args.output == FetchOutput::Text && print_bodies,
    };
    // Every connection is a file descriptor; 10,000 waits need more than the usual 1,024.
    let fd_limit = slowlab_client::limits::raise_fd_limit();
    tracing::debug!("open-file limit: {fd_limit:?}");

    let stdout = io::stdout();
    let mut sink: Box<dyn Sink + Send> = match args.output {
        FetchOutput::Text => Box::new(TextSink::new(stdout, total, args.print_bodies)),
        FetchOutput::Json => Box::new(JsonSink::new(BufWriter::new(stdout))),
        FetchOutput::Ndjson => Box::new(NdjsonSink::new(BufWriter::new(stdout))),
        FetchOutput::Csv => Box::new(CsvSink::new(BufWriter::new(stdout))),
    };
    let control = Control::new();
    let interrupt = tokio::spawn({
        let control = control.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nslowlab fetch: interrupted; reporting what finished");
                control.cancel();
            }
        }
    });
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let progress = Progress::new(total, !args.quiet, color, &control);

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
    let report = slowlab_client::run_with(mode, sent, options, &control, |outcome| {
        progress.outcome(outcome);
        note(progress.suspend(|| sink.outcome(&workload, outcome)));
    })
    .await;
    interrupt.abort();
    progress.finish();
    note(sink.finish(&report));
    drop(sink);
    if let Some(err) = write_error {
        eprintln!("slowlab fetch: cannot write the output: {err}");
    }

    let mut unwritten = false;
    if let Some(path) = &args.report {
        let written = crate::report::Document::of_fetch(&report)
            .and_then(|doc| crate::report::write_html(path, &doc));
        if let Err(err) = written {
            eprintln!("slowlab fetch: {err:#}");
            unwritten = true;
        }
    }

    let summary = &report.summary;
    if summary.cancelled > 0 {
        eprintln!(
            "slowlab fetch: interrupted: {} finished, {} cancelled",
            summary.requests - summary.cancelled,
            summary.cancelled
        );
    }
    let mut broken = 0;
    for rule in rules.iter().flatten() {
        let (is_broken, value) = rule.check(summary);
        if is_broken {
            broken += 1;
            eprintln!(
                "slowlab fetch: threshold {rule} crossed: measured {}",
                rule.show(value)
            );
        }
    }
    if summary.failed > 0 {
        eprintln!(
            "slowlab fetch: {} of {} requests failed",
            summary.failed, summary.requests
        );
    }
    Ok(if broken > 0 {
        ExitCode::from(crate::EXIT_THRESHOLD)
    } else if summary.failed > 0 || unwritten {
        ExitCode::from(crate::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The mode, checking that the other options fit it.
fn resolve_mode(args: &FetchArgs) -> anyhow::Result<Mode> {
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
        bail!(
            "{flag} applies to --mode async only (the {} mode is blocking HTTP/1.1); \
             use --threads N to size the threads mode",
            mode_of(mode).as_str()
        );
    }
    if mode != ModeArg::Threads && args.threads.is_some() {
        bail!("--threads applies to --mode threads only");
    }
    Ok(mode_of(mode))
}

/// The requests to send, from exactly one of: delays, --count, --random, --urls, or ten random.
fn build_workload(args: &FetchArgs) -> anyhow::Result<Workload> {
    let endpoint = Endpoint::parse(&args.base_url)?;
    let mut workload = if let Some(count) = args.count {
        Workload::repeat(endpoint, count, args.delay)
    } else if let Some(path) = &args.urls {
        let text = if path.as_os_str() == "-" {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .context("reading URLs from standard input")?;
            text
        } else {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading URLs from {}", path.display()))?
        };
        urls_workload(endpoint, &text)?
    } else {
        let delays = if args.delays.is_empty() {
            random_delays(args.random.unwrap_or(DEFAULT_RANDOM), args.seed)
                .into_iter()
                .map(Duration::from_secs)
                .collect()
        } else {
            args.delays.clone()
        };
        Workload::from_delays(endpoint, &delays)
    };
    workload.method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| anyhow::anyhow!("--method {:?} is not an HTTP method", args.method))?;
    for header in &args.headers {
        workload.headers.push(parse_header(header)?);
    }
    Ok(workload)
}

/// One URL or path a line. Paths join the base URL; full URLs name their own server, so one file
/// can mix servers. The base URL is the workload's first server, the others follow in the order
/// they first appear.
fn urls_workload(base: Endpoint, text: &str) -> anyhow::Result<Workload> {
    let mut workload = Workload::new(base.clone(), Vec::new());
    let mut servers: HashMap<Endpoint, u32> = HashMap::from([(base, 0)]);
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.contains("://") {
            workload.targets.push(Target::path(line));
            continue;
        }
        let uri: Uri = line
            .parse()
            .with_context(|| format!("--urls line {}: {line:?} is not a URL", number + 1))?;
        let origin = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("http"),
            uri.authority().map_or("", |a| a.as_str())
        );
        let server =
            Endpoint::parse(&origin).with_context(|| format!("--urls line {}", number + 1))?;
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
        bail!("--urls: no URL in the input (one URL or path a line)");
    }
    Ok(workload)
}

fn parse_header(text: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--header {text:?}: expected NAME:VALUE"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| anyhow::anyhow!("--header {text:?}: {name:?} is not a header name"))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| anyhow::anyhow!("--header {text:?}: the value is not a valid header value"))?;
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
    }
}
