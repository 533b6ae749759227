//! `slowlab race`: the article's experiment in one command.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use slowlab_client::summary::ratio;
use slowlab_client::workload::format_delay;
use slowlab_client::{ARTICLE_DELAYS, Endpoint, Mode, Report, RequestOptions, Summary, Workload};
use slowlab_server::Config;

use crate::cli::{ModeArg, OutputFormat, RaceArgs};
use crate::render;

/// The scale applied to the article's list when none is given: 44 s and 9 s become 4.4 s and 0.9 s.
const DEFAULT_ARTICLE_SCALE: f64 = 0.1;

/// The client mode a command-line mode stands for.
pub fn mode_of(mode: ModeArg) -> Mode {
    match mode {
        ModeArg::Sequential => Mode::Sequential,
        ModeArg::Threads => Mode::Threads,
        ModeArg::Async => Mode::Async,
    }
}

/// The race as one JSON document (`--output json`).
#[derive(Debug, Serialize)]
struct RaceDocument<'a> {
    base_url: String,
    embedded_server: bool,
    scale: f64,
    delays: Vec<f64>,
    sum_of_delays: f64,
    max_delay: f64,
    runs: Vec<&'a Summary>,
    /// Sequential wall time over async wall time (`null` unless both ran).
    speedup: Option<f64>,
    /// Sequential wall time over threads wall time (`null` unless both ran).
    threads_speedup: Option<f64>,
    /// Sum over max: the speedup a perfect run would show.
    ideal_speedup: f64,
}

/// Runs the workload sequentially, then async, and prints them side by side.
pub async fn run(args: RaceArgs) -> anyhow::Result<ExitCode> {
    let (base_delays, scale, from_article) = if args.delays.is_empty() {
        let article = ARTICLE_DELAYS.map(Duration::from_secs).to_vec();
        (article, args.scale.unwrap_or(DEFAULT_ARTICLE_SCALE), true)
    } else {
        (args.delays, args.scale.unwrap_or(1.0), false)
    };
    let delays: Vec<Duration> = base_delays.iter().map(|d| scaled(*d, scale)).collect();
    let longest = delays.iter().copied().max().unwrap_or_default();

    let server = match &args.base_url {
        Some(_) => None,
        None => {
            let config = Config {
                // Whatever the user races, the embedded server must allow it.
                max_delay: Config::default().max_delay.max(longest),
                ..Config::default()
            };
            Some(slowlab_server::spawn(config).await?)
        }
    };
    let base_url = match (&args.base_url, &server) {
        (Some(url), _) => url.clone(),
        (None, Some(server)) => server.base_url(),
        (None, None) => unreachable!("an embedded server is started when no base URL is given"),
    };
    let workload = Workload::from_delays(Endpoint::parse(&base_url)?, &delays);

    let mut reports = Vec::new();
    let mut modes: Vec<Mode> = args.modes.iter().copied().map(mode_of).collect();
    modes.dedup();
    for &mode in &modes {
        eprint!(
            "slowlab race: {} requests, {:<10} ... ",
            delays.len(),
            mode.as_str()
        );
        let options = RequestOptions {
            max_response_bytes: args.max_response_bytes,
            ..RequestOptions::default()
        };
        let report = slowlab_client::run(mode, workload.clone(), options, |_| {}).await;
        eprintln!(
            "{} ({} ok)",
            render::seconds(report.summary.wall),
            report.summary.ok
        );
        reports.push(report);
    }
    if let Some(server) = server {
        server.shutdown().await;
    }

    let wall_of = |mode: Mode| {
        reports
            .iter()
            .find(|r| r.summary.mode == mode)
            .map(|r| r.summary.wall)
    };
    let speedup_over_sequential = |mode: Mode| match (wall_of(Mode::Sequential), wall_of(mode)) {
        (Some(sequential), Some(other)) => Some(ratio(sequential, other)),
        _ => None,
    };
    let document = RaceDocument {
        base_url,
        embedded_server: args.base_url.is_none(),
        scale,
        delays: delays.iter().map(Duration::as_secs_f64).collect(),
        sum_of_delays: workload.sum_of_delays().as_secs_f64(),
        max_delay: workload.max_delay().as_secs_f64(),
        runs: reports.iter().map(|r| &r.summary).collect(),
        speedup: speedup_over_sequential(Mode::Async),
        threads_speedup: speedup_over_sequential(Mode::Threads),
        ideal_speedup: ratio(workload.sum_of_delays(), workload.max_delay()),
    };
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&document)?),
        OutputFormat::Text => {
            print!("{}", table(&document, &delays, from_article));
            if !args.no_timeline {
                println!();
                let runs: Vec<&Report> = reports.iter().collect();
                print!("{}", render::timeline(&runs));
            }
        }
    }
    let failed: usize = reports.iter().map(|r| r.summary.failed).sum();
    if failed > 0 {
        report_failures(&reports);
        return Ok(ExitCode::from(crate::EXIT_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// `delay × scale`, rounded to the microsecond as it will be written in the URL.
fn scaled(delay: Duration, scale: f64) -> Duration {
    Duration::from_micros((delay.as_secs_f64() * scale * 1e6).round() as u64)
}

fn table(doc: &RaceDocument<'_>, delays: &[Duration], from_article: bool) -> String {
    let mut out = String::new();
    let source = if from_article {
        format!("the article's delays x {}", doc.scale)
    } else if doc.scale == 1.0 {
        "your delays".to_owned()
    } else {
        format!("your delays x {}", doc.scale)
    };
    let server = if doc.embedded_server {
        "embedded server"
    } else {
        "server"
    };
    let _ = writeln!(
        out,
        "slowlab race: {} requests, {source}, {server} {}",
        delays.len(),
        doc.base_url
    );
    let sum = delays.iter().sum::<Duration>();
    let max = delays.iter().copied().max().unwrap_or_default();
    let _ = writeln!(
        out,
        "delays {} s: sum {} s, max {} s",
        render::delay_list(delays),
        format_delay(sum),
        format_delay(max)
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<11} {:>10}  {:>16}  {:>10}  {:>7}",
        "mode", "wall", "ideal", "efficiency", "ok"
    );
    for summary in &doc.runs {
        let ideal_of = match (summary.mode, summary.slots) {
            (Mode::Sequential, _) => "sum",
            (_, Some(_)) => "slots",
            (_, None) => "max",
        };
        let _ = writeln!(
            out,
            "{:<11} {:>10}  {:>16}  {:>10}  {:>7}",
            summary.mode.as_str(),
            render::seconds(summary.wall),
            format!("{} ({ideal_of})", render::seconds(summary.ideal)),
            render::efficiency(summary.efficiency),
            format!("{}/{}", summary.ok, summary.requests),
        );
    }
    let _ = writeln!(out);
    for (mode, speedup) in [("threads", doc.threads_speedup), ("async", doc.speedup)] {
        if let Some(speedup) = speedup {
            let _ = writeln!(
                out,
                "{mode} speedup: {speedup:.2}x over sequential (ideal: sum / max = {:.2}x)",
                doc.ideal_speedup
            );
        }
    }
    out
}

fn report_failures(reports: &[Report]) {
    for report in reports {
        for outcome in &report.outcomes {
            if let Err(err) = &outcome.result {
                eprintln!(
                    "slowlab race: {} request #{} failed: {} ({})",
                    report.summary.mode.as_str(),
                    outcome.index,
                    err.message,
                    err.kind.as_str()
                );
            }
        }
    }
}
