//! `slowlab race`: the article's experiment in one command.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use slowlab_client::summary::ratio;
use slowlab_client::workload::format_delay;
use slowlab_client::{
    ARTICLE_DELAYS, DEFAULT_MAX_THREADS, Endpoint, Mode, Report, RequestOptions, Summary, Workload,
};
use slowlab_server::Config;

use crate::cli::values::MAX_DELAY;
use crate::cli::{OutputFormat, RaceArgs};
use crate::commands::{drop_efficiency_without_ideal, endpoint};
use crate::{UsageError, render, usage};

/// The scale applied to the article's list when none is given: 44 s and 9 s become 4.4 s and 0.9 s.
const DEFAULT_ARTICLE_SCALE: f64 = 0.1;

/// `race --timeout` when none is given: this much longer than the longest delay, so a request is
/// given up on only when the server is clearly not answering.
const TIMEOUT_MARGIN: Duration = Duration::from_secs(30);

/// A race expected to last longer than this says so before it starts.
const ANNOUNCE_OVER: Duration = Duration::from_secs(60);

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
    /// Sequential wall time over async wall time (`null` unless both ran and every request of
    /// both succeeded).
    speedup: Option<f64>,
    /// Sequential wall time over threads wall time (`null` unless both ran and every request of
    /// both succeeded).
    threads_speedup: Option<f64>,
    /// Sum over max: the speedup a perfect run would show (`null` when every delay is 0).
    ideal_speedup: Option<f64>,
}

/// The race's arguments, checked.
#[derive(Debug)]
pub struct Plan {
    delays: Vec<Duration>,
    scale: f64,
    from_article: bool,
    endpoint: Option<Endpoint>,
    modes: Vec<Mode>,
    timeout: Duration,
}

impl Plan {
    /// Checks `args`: scaled delays within range, a usable base URL, each mode once.
    pub fn new(args: &RaceArgs) -> Result<Plan, UsageError> {
        let (base_delays, scale, from_article) = if args.delays.is_empty() {
            let article = ARTICLE_DELAYS.map(Duration::from_secs).to_vec();
            (article, args.scale.unwrap_or(DEFAULT_ARTICLE_SCALE), true)
        } else {
            (args.delays.clone(), args.scale.unwrap_or(1.0), false)
        };
        let mut delays = Vec::with_capacity(base_delays.len());
        for delay in base_delays {
            let scaled = delay.as_secs_f64() * scale;
            if scaled > MAX_DELAY.as_secs_f64() {
                return Err(usage!(
                    "--scale {scale} makes the delay of {} s last {scaled} s; scaled delays must \
                     stay within 0 to {} s",
                    format_delay(delay),
                    MAX_DELAY.as_secs()
                ));
            }
            // Rounded to the microsecond, as it will be written in the URL.
            delays.push(Duration::from_micros((scaled * 1e6).round() as u64));
        }
        let endpoint = args
            .base_url
            .as_deref()
            .map(endpoint)
            .transpose()
            .map_err(|err| usage!("--base-url {err}"))?;
        let mut modes: Vec<Mode> = Vec::new();
        for mode in args.modes.iter().copied().map(Mode::from) {
            if !modes.contains(&mode) {
                modes.push(mode);
            }
        }
        let longest = delays.iter().copied().max().unwrap_or_default();
        Ok(Plan {
            delays,
            scale,
            from_article,
            endpoint,
            modes,
            timeout: args.timeout.unwrap_or(longest + TIMEOUT_MARGIN),
        })
    }

    /// The least time the race can take: each mode's ideal, added up.
    fn least_time(&self, workload: &Workload) -> Duration {
        let threads = self.delays.len().min(DEFAULT_MAX_THREADS);
        self.modes
            .iter()
            .map(|mode| match mode {
                Mode::Sequential => workload.sum_of_delays(),
                Mode::Threads => workload.ideal(Some(threads)),
                Mode::Async => workload.max_delay(),
            })
            .fold(Duration::ZERO, Duration::saturating_add)
    }
}

/// Runs the workload once per mode, in the order given, and prints the runs side by side.
pub async fn run(args: RaceArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::new(&args)?;
    let delays = &plan.delays;
    let longest = delays.iter().copied().max().unwrap_or_default();

    let server = match &plan.endpoint {
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
    let endpoint = match (&plan.endpoint, &server) {
        (Some(endpoint), _) => endpoint.clone(),
        (None, Some(server)) => Endpoint::parse(&server.base_url())?,
        (None, None) => unreachable!("an embedded server is started when no base URL is given"),
    };
    let base_url = endpoint.base_url();
    let workload = Workload::from_delays(endpoint, delays);
    let least = plan.least_time(&workload);
    if least > ANNOUNCE_OVER {
        say!(
            "slowlab race: this race takes at least {}; Ctrl-C stops it",
            render::long(least)
        );
    }

    let options = RequestOptions {
        timeout: Some(plan.timeout),
        max_response_bytes: args.max_response_bytes,
        ..RequestOptions::default()
    };
    let mut reports = Vec::new();
    for &mode in &plan.modes {
        say_partial!(
            "slowlab race: {}, {:<10} ... ",
            render::count(delays.len(), "request", "requests"),
            mode.as_str()
        );
        let mut report = slowlab_client::run(mode, workload.clone(), options, |_| {}).await;
        drop_efficiency_without_ideal(&mut report);
        say!(
            "{} ({} ok)",
            render::seconds(report.summary.wall),
            report.summary.ok
        );
        reports.push(report);
    }
    if let Some(server) = server {
        server.shutdown().await;
    }

    // A speedup is a ratio of two complete runs: a run cut short by failures is not faster.
    let wall_of = |mode: Mode| {
        reports
            .iter()
            .find(|r| r.summary.mode == mode && r.summary.failed == 0)
            .map(|r| r.summary.wall)
    };
    let speedup_over_sequential = |mode: Mode| match (wall_of(Mode::Sequential), wall_of(mode)) {
        (Some(sequential), Some(other)) if !other.is_zero() => Some(ratio(sequential, other)),
        _ => None,
    };
    let max_delay = workload.max_delay();
    let document = RaceDocument {
        base_url,
        embedded_server: plan.endpoint.is_none(),
        scale: plan.scale,
        delays: delays.iter().map(Duration::as_secs_f64).collect(),
        sum_of_delays: workload.sum_of_delays().as_secs_f64(),
        max_delay: max_delay.as_secs_f64(),
        runs: reports.iter().map(|r| &r.summary).collect(),
        speedup: speedup_over_sequential(Mode::Async),
        threads_speedup: speedup_over_sequential(Mode::Threads),
        ideal_speedup: (!max_delay.is_zero()).then(|| ratio(workload.sum_of_delays(), max_delay)),
    };
    let text = match args.output {
        OutputFormat::Json => format!("{}\n", serde_json::to_string_pretty(&document)?),
        OutputFormat::Text => {
            let mut text = table(&document, delays, plan.from_article);
            if !args.no_timeline {
                let runs: Vec<&Report> = reports.iter().collect();
                text.push('\n');
                text.push_str(&render::timeline(&runs));
            }
            text
        }
    };
    let written = crate::output::print(&text);
    let failed: usize = reports.iter().map(|r| r.summary.failed).sum();
    if failed > 0 {
        report_failures(&reports);
    }
    if let Err(err) = written {
        say!("slowlab race: cannot write the output: {err}");
        return Ok(ExitCode::from(crate::EXIT_FAILED));
    }
    if failed > 0 {
        return Ok(ExitCode::from(crate::EXIT_FAILED));
    }
    Ok(ExitCode::SUCCESS)
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
        "slowlab race: {}, {source}, {server} {}",
        render::count(delays.len(), "request", "requests"),
        doc.base_url
    );
    let sum = delays
        .iter()
        .fold(Duration::ZERO, |sum, d| sum.saturating_add(*d));
    let max = delays.iter().copied().max().unwrap_or_default();
    let _ = writeln!(
        out,
        "delays {} s: sum {} s, max {} s",
        render::delay_list(delays),
        format_delay(sum),
        format_delay(max)
    );
    let _ = writeln!(out);
    let header = ["mode", "wall", "ideal", "efficiency", "ok"].map(str::to_owned);
    let rows: Vec<[String; 5]> = doc
        .runs
        .iter()
        .map(|summary| {
            let ideal_of = match (summary.mode, summary.slots) {
                (Mode::Sequential, _) => "sum",
                (_, Some(_)) => "slots",
                (_, None) => "max",
            };
            [
                summary.mode.as_str().to_owned(),
                render::seconds(summary.wall),
                format!("{} ({ideal_of})", render::seconds(summary.ideal)),
                render::efficiency(summary),
                format!("{}/{}", summary.ok, summary.requests),
            ]
        })
        .collect();
    // Each column as wide as its widest cell, so "n/a (failures)" or a day-long wall time keeps
    // the table in line.
    let mut widths = [11, 10, 16, 10, 7];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let [mode, wall, ideal, efficiency, ok] = row;
        let [w0, w1, w2, w3, w4] = widths;
        let _ = writeln!(
            out,
            "{mode:<w0$} {wall:>w1$}  {ideal:>w2$}  {efficiency:>w3$}  {ok:>w4$}"
        );
    }
    let _ = writeln!(out);
    let ideal = doc.ideal_speedup.map_or_else(
        || "n/a, every delay is 0".to_owned(),
        |x| format!("{x:.2}x"),
    );
    let ran = |mode: Mode| doc.runs.iter().any(|r| r.mode == mode);
    for (mode, speedup) in [
        (Mode::Threads, doc.threads_speedup),
        (Mode::Async, doc.speedup),
    ] {
        if !ran(mode) || !ran(Mode::Sequential) {
            continue;
        }
        let _ = match speedup {
            Some(speedup) => writeln!(
                out,
                "{} speedup: {speedup:.2}x over sequential (ideal: sum / max = {ideal})",
                mode.as_str()
            ),
            None => writeln!(
                out,
                "{} speedup: n/a (failures: a run cut short is not faster)",
                mode.as_str()
            ),
        };
    }
    out
}

fn report_failures(reports: &[Report]) {
    for report in reports {
        for outcome in &report.outcomes {
            if let Err(err) = &outcome.result {
                say!(
                    "slowlab race: {} request #{} failed: {} ({})",
                    report.summary.mode.as_str(),
                    outcome.index,
                    render::printable(&err.message),
                    err.kind.as_str()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn plan(args: &[&str]) -> Result<Plan, UsageError> {
        let cli = Cli::try_parse_from(["slowlab", "race"].iter().chain(args)).unwrap();
        let Command::Race(args) = cli.command else {
            unreachable!("a race command line")
        };
        Plan::new(&args)
    }

    #[test]
    fn timeout_defaults_to_the_longest_delay_plus_30_s() {
        assert_eq!(
            plan(&["1", "2.5"]).unwrap().timeout,
            Duration::from_millis(32_500)
        );
        // The article's list at the default scale: 0.9 s longest.
        assert_eq!(plan(&[]).unwrap().timeout, Duration::from_millis(30_900));
        assert_eq!(
            plan(&["--timeout", "2m", "1"]).unwrap().timeout,
            Duration::from_secs(120)
        );
    }

    #[test]
    fn each_mode_runs_once_in_the_order_first_given() {
        let modes = plan(&["--modes", "async,sequential,async,sequential"])
            .unwrap()
            .modes;
        assert_eq!(modes, [Mode::Async, Mode::Sequential]);
    }

    #[test]
    fn scaled_delays_stay_in_range() {
        assert!(plan(&["86400"]).is_ok());
        assert!(plan(&["1", "--scale", "86400"]).is_ok());
        let err = plan(&["1", "--scale", "86401"]).unwrap_err();
        assert!(err.0.contains("within 0 to 86400 s"), "{err}");
    }

    #[test]
    fn the_least_time_adds_each_modes_ideal() {
        let plan = plan(&["--modes", "sequential,async", "30", "40"]).unwrap();
        let endpoint = Endpoint::parse("http://127.0.0.1:9").unwrap();
        let workload = Workload::from_delays(endpoint, &plan.delays);
        assert_eq!(plan.least_time(&workload), Duration::from_secs(70 + 40));
    }
}
