//! `slowlab race`: the article's experiment in one command.

mod embedded;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use slowlab_client::summary::ratio;
use slowlab_client::workload::{format_delay, random_delays};
use slowlab_client::{
    ARTICLE_DELAYS, DEFAULT_MAX_THREADS, Endpoint, Mode, Report, RequestOptions, Summary, Workload,
};
use slowlab_server::{Config, Model};

use crate::cli::values::MAX_DELAY;
use crate::cli::{OutputFormat, RaceArgs};
use crate::commands::{drop_efficiency_without_ideal, endpoint};
use crate::report::{self, Machine, Repeat, write_file};
use crate::sink::OutcomeRecord;
use crate::{UsageError, render, usage};
use embedded::Embedded;

/// The scale applied to the article's list when none is given: 44 s and 9 s become 4.4 s and 0.9 s.
const DEFAULT_ARTICLE_SCALE: f64 = 0.1;

/// `race --timeout` when none is given: this much longer than the longest delay, so a request is
/// given up on only when the server is clearly not answering.
const TIMEOUT_MARGIN: Duration = Duration::from_secs(30);

/// A race expected to last longer than this says so before it starts.
const ANNOUNCE_OVER: Duration = Duration::from_secs(60);

/// Most delays the table lists one by one.
const LISTED_DELAYS_UP_TO: usize = 20;

/// The server models `--compare-models` races, in order: FastAPI's default pool of 40 threads
/// stands for the thread-pool model.
const COMPARED_MODELS: [&str; 3] = ["async", "threads:40", "blocking"];

/// The race as one JSON document (`--output json`); its schema is `docs/race.schema.json`.
#[derive(Debug, Serialize)]
struct RaceDocument<'a> {
    base_url: String,
    embedded_server: bool,
    scale: f64,
    delays: Vec<f64>,
    sum_of_delays: f64,
    max_delay: f64,
    runs: Vec<RunRecord<'a>>,
    /// Sequential wall time over async wall time (`null` unless both ran and every request of
    /// both succeeded).
    speedup: Option<f64>,
    /// Sequential wall time over threads wall time (`null` unless both ran and every request of
    /// both succeeded).
    threads_speedup: Option<f64>,
    /// Sum over max: the speedup a perfect run would show (`null` when every delay is 0).
    ideal_speedup: Option<f64>,
    /// Where it ran.
    machine: Machine,
}

/// One run of the race: its summary's fields, what it is called, and every request's outcome.
#[derive(Debug, Serialize)]
struct RunRecord<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    /// The mode, with the server model when races compare them: `async vs threads:40`.
    label: String,
    /// The embedded server's model (`null` against a server given by --base-url).
    server_model: Option<String>,
    /// Wall times over `--repeat` runs (`null` for a single run); this run is the median one.
    repeat: Option<Repeat>,
    /// One per request, by index.
    outcomes: Vec<OutcomeRecord<'a>>,
}

/// One leg of the race: a client mode against a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leg {
    mode: Mode,
    /// The embedded server's model, or `None` against --base-url.
    model: Option<Model>,
}

/// The race's arguments, checked.
#[derive(Debug)]
pub struct Plan {
    delays: Vec<Duration>,
    scale: f64,
    from_article: bool,
    endpoint: Option<Endpoint>,
    /// Each client mode against each server, in the order they run.
    legs: Vec<Leg>,
    compare_models: bool,
    repeat: u32,
    timeout: Duration,
}

impl Plan {
    /// Checks `args`: scaled delays within range, a usable base URL, each mode once.
    pub fn new(args: &RaceArgs) -> Result<Plan, UsageError> {
        let (base_delays, scale, from_article) = if let Some(count) = args.count {
            let count =
                usize::try_from(count).map_err(|_| usage!("--count {count} is too many"))?;
            (vec![args.delay; count], args.scale.unwrap_or(1.0), false)
        } else if let Some(n) = args.random {
            let n = usize::try_from(n).map_err(|_| usage!("--random {n} is too many"))?;
            let drawn = random_delays(n, args.seed).into_iter();
            let drawn = drawn.map(Duration::from_secs).collect();
            (drawn, args.scale.unwrap_or(1.0), false)
        } else if args.delays.is_empty() {
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
        if delays.is_empty() {
            return Err(usage!("nothing to race: give at least one delay"));
        }
        let legs = if args.compare_models {
            COMPARED_MODELS
                .iter()
                .map(|model| Leg {
                    mode: Mode::Async,
                    model: Some(model.parse().expect("the compared models are valid")),
                })
                .collect()
        } else {
            let model = endpoint.is_none().then_some(args.server_model);
            let mut legs: Vec<Leg> = Vec::new();
            for mode in args.modes.iter().copied().map(Mode::from) {
                let leg = Leg { mode, model };
                if !legs.contains(&leg) {
                    legs.push(leg);
                }
            }
            legs
        };
        let longest = delays.iter().copied().max().unwrap_or_default();
        Ok(Plan {
            delays,
            scale,
            from_article,
            endpoint,
            legs,
            compare_models: args.compare_models,
            repeat: args.repeat,
            timeout: args.timeout.unwrap_or(longest + TIMEOUT_MARGIN),
        })
    }

    /// The least time the race can take: each leg's ideal, the client's or the server's,
    /// whichever is longer, added up over every repeat.
    fn least_time(&self, workload: &Workload) -> Duration {
        let threads = self.delays.len().min(DEFAULT_MAX_THREADS);
        self.legs
            .iter()
            .map(|leg| {
                let client = match leg.mode {
                    Mode::Sequential => workload.sum_of_delays(),
                    Mode::Threads => workload.ideal(Some(threads)),
                    Mode::Async => workload.max_delay(),
                };
                let server = match leg.model {
                    Some(Model::Blocking) => workload.sum_of_delays(),
                    Some(Model::Threads(n)) => workload.ideal(Some(n.get())),
                    Some(Model::Async) | None => Duration::ZERO,
                };
                client.max(server).saturating_mul(self.repeat)
            })
            .fold(Duration::ZERO, Duration::saturating_add)
    }

    /// What a leg is called: its mode, and its server's model when the race compares models.
    fn label(&self, leg: &Leg) -> String {
        match (self.compare_models, leg.model) {
            (true, Some(model)) => format!("{} vs {model}", leg.mode.as_str()),
            _ => leg.mode.as_str().to_owned(),
        }
    }
}

/// Runs the workload in each mode (or against each server model), in the order given, and prints
/// the runs side by side.
pub async fn run(args: RaceArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::new(&args)?;
    for path in [&args.report, &args.svg, &args.json].into_iter().flatten() {
        report::check_writable(path)?;
    }
    let delays = &plan.delays;
    let longest = delays.iter().copied().max().unwrap_or_default();
    // Every connection is a file descriptor; races of thousands need more than the usual 1,024.
    let _ = slowlab_client::limits::raise_fd_limit();

    // The workload's shape (sum, longest, packings) is known before any server exists; this
    // copy's address is a placeholder that is never called.
    let shape = Workload::from_delays(Endpoint::parse("http://127.0.0.1:1")?, delays);
    let least = plan.least_time(&shape);
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
    let mut runs: Vec<(Report, Option<Repeat>, Leg)> = Vec::new();
    let mut base_url = plan.endpoint.as_ref().map(Endpoint::base_url);
    for &leg in &plan.legs {
        // Each server model gets a fresh embedded server, on a runtime of its own.
        let server = match leg.model {
            None => None,
            Some(model) => {
                let config = Config {
                    // Whatever the user races, the embedded server must allow it.
                    max_delay: Config::default().max_delay.max(longest),
                    model,
                    ..Config::default()
                };
                Some(Embedded::start(config).await?)
            }
        };
        let endpoint = match (&plan.endpoint, &server) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, Some(server)) => Endpoint::parse(server.base_url())?,
            (None, None) => unreachable!("an embedded server is started when no base URL is given"),
        };
        base_url = Some(endpoint.base_url());
        let workload = Workload::from_delays(endpoint, delays);
        let label = plan.label(&leg);
        let mut reports = Vec::new();
        for round in 1..=plan.repeat {
            let of = if plan.repeat > 1 {
                format!(" ({round}/{})", plan.repeat)
            } else {
                String::new()
            };
            say_partial!(
                "slowlab race: {}, {label:<10}{of} ... ",
                render::count(delays.len(), "request", "requests"),
            );
            let mut report = slowlab_client::run(leg.mode, workload.clone(), options, |_| {}).await;
            drop_efficiency_without_ideal(&mut report);
            say!(
                "{} ({} ok)",
                render::seconds(report.summary.wall),
                report.summary.ok
            );
            reports.push(report);
        }
        if let Some(server) = server {
            server.stop().await;
        }
        let repeat = (reports.len() > 1).then(|| {
            Repeat::of(
                reports
                    .iter()
                    .map(|r| r.summary.wall.as_secs_f64())
                    .collect(),
            )
        });
        // The run shown is the median one.
        reports.sort_by_key(|r| r.summary.wall);
        let median = reports.swap_remove((reports.len() - 1) / 2);
        runs.push((median, repeat, leg));
    }

    let reports: Vec<&Report> = runs.iter().map(|(report, _, _)| report).collect();
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
    let max_delay = shape.max_delay();
    let document = RaceDocument {
        base_url: base_url.unwrap_or_default(),
        embedded_server: plan.endpoint.is_none(),
        scale: plan.scale,
        delays: delays.iter().map(Duration::as_secs_f64).collect(),
        sum_of_delays: shape.sum_of_delays().as_secs_f64(),
        max_delay: max_delay.as_secs_f64(),
        runs: runs
            .iter()
            .map(|(report, repeat, leg)| RunRecord {
                summary: &report.summary,
                label: plan.label(leg),
                server_model: leg.model.map(|m| m.to_string()),
                repeat: repeat.clone(),
                outcomes: outcome_records(report),
            })
            .collect(),
        speedup: speedup_over_sequential(Mode::Async),
        threads_speedup: speedup_over_sequential(Mode::Threads),
        ideal_speedup: (!max_delay.is_zero()).then(|| ratio(shape.sum_of_delays(), max_delay)),
        machine: Machine::here(),
    };
    // The reports are drawn from the JSON document itself, as `slowlab report html` draws a
    // saved one: one renderer for both.
    let json = serde_json::to_string_pretty(&document)?;
    let drawn = report::Document::from_text(&json)?;
    let text = match args.output {
        OutputFormat::Json => format!("{json}\n"),
        OutputFormat::Text => {
            let mut text = table(&document, delays, plan.from_article);
            if !args.no_timeline {
                text.push('\n');
                let color = report::terminal::color_on_stdout();
                text.push_str(&report::terminal::timeline(&drawn, color));
            }
            text
        }
    };
    let written = crate::output::print(&text);
    // After the text: a file that cannot be written loses nothing already shown.
    let files = [
        (&args.json, format!("{json}\n")),
        (&args.svg, report::svg::timeline(&drawn)),
        (&args.report, report::html::page(&drawn)),
    ];
    let mut unwritten = 0;
    for (path, contents) in files {
        if let Some(path) = path
            && let Err(err) = write_file(path, &contents)
        {
            say!("slowlab race: {err:#}");
            unwritten += 1;
        }
    }
    let reports: Vec<Report> = runs.into_iter().map(|(report, _, _)| report).collect();
    let failed: usize = reports.iter().map(|r| r.summary.failed).sum();
    if failed > 0 {
        report_failures(&reports);
    }
    if let Err(err) = written {
        say!("slowlab race: cannot write the output: {err}");
        return Ok(ExitCode::from(crate::EXIT_FAILED));
    }
    if failed > 0 || unwritten > 0 {
        return Ok(ExitCode::from(crate::EXIT_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// The report's outcomes as machine output shows them, by index.
fn outcome_records(report: &Report) -> Vec<OutcomeRecord<'_>> {
    let mut records: Vec<OutcomeRecord<'_>> = report
        .outcomes
        .iter()
        .map(|o| OutcomeRecord::new(&report.workload, o))
        .collect();
    records.sort_by_key(|r| r.index);
    records
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
    let mut models: Vec<&str> = doc
        .runs
        .iter()
        .filter_map(|r| r.server_model.as_deref())
        .collect();
    models.dedup();
    let server = match models.as_slice() {
        [] => format!("server {}", doc.base_url),
        ["async"] => format!("embedded server {}", doc.base_url),
        [model] => format!("embedded {model} server {}", doc.base_url),
        several => format!("embedded servers: {}", several.join(", ")),
    };
    let _ = writeln!(
        out,
        "slowlab race: {}, {source}, {server}",
        render::count(delays.len(), "request", "requests"),
    );
    let sum = delays
        .iter()
        .fold(Duration::ZERO, |sum, d| sum.saturating_add(*d));
    let max = delays.iter().copied().max().unwrap_or_default();
    // The list as the article prints it, while it fits on a line.
    let listed = if delays.len() <= LISTED_DELAYS_UP_TO {
        format!("{} s", render::delay_list(delays))
    } else {
        format!("of {}", render::count(delays.len(), "request", "requests"))
    };
    let _ = writeln!(
        out,
        "delays {listed}: sum {} s, max {} s",
        format_delay(sum),
        format_delay(max)
    );
    let _ = writeln!(out);
    let header = ["mode", "wall", "ideal", "efficiency", "ok", ""].map(str::to_owned);
    let rows: Vec<[String; 6]> = doc
        .runs
        .iter()
        .map(|run| {
            let summary = run.summary;
            let ideal_of = match (summary.mode, summary.slots) {
                (Mode::Sequential, _) => "sum",
                (_, Some(_)) => "slots",
                (_, None) => "max",
            };
            let spread = run.repeat.as_ref().map_or_else(String::new, |r| {
                format!(
                    "median of {}, min {:.3} s, max {:.3} s",
                    r.runs, r.min, r.max
                )
            });
            [
                run.label.clone(),
                render::seconds(summary.wall),
                format!("{} ({ideal_of})", render::seconds(summary.ideal)),
                render::efficiency(summary),
                format!("{}/{}", summary.ok, summary.requests),
                spread,
            ]
        })
        .collect();
    // Each column as wide as its widest cell, so "n/a (failures)" or a day-long wall time keeps
    // the table in line.
    let mut widths = [11, 10, 16, 10, 7, 0];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let [mode, wall, ideal, efficiency, ok, spread] = row;
        let [w0, w1, w2, w3, w4, _] = widths;
        let line = format!(
            "{mode:<w0$} {wall:>w1$}  {ideal:>w2$}  {efficiency:>w3$}  {ok:>w4$}  {spread}"
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out);
    let ideal = doc.ideal_speedup.map_or_else(
        || "n/a, every delay is 0".to_owned(),
        |x| format!("{x:.2}x"),
    );
    let ran = |mode: Mode| doc.runs.iter().any(|r| r.summary.mode == mode);
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
        let modes: Vec<Mode> = plan(&["--modes", "async,sequential,async,sequential"])
            .unwrap()
            .legs
            .iter()
            .map(|leg| leg.mode)
            .collect();
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

    #[test]
    fn a_blocking_server_takes_the_sum_whatever_the_client() {
        let plan = plan(&["--compare-models", "--repeat", "2", "30", "40"]).unwrap();
        let endpoint = Endpoint::parse("http://127.0.0.1:9").unwrap();
        let workload = Workload::from_delays(endpoint, &plan.delays);
        // async: 40, threads:40: 40, blocking: 70; each twice.
        assert_eq!(plan.least_time(&workload), Duration::from_secs(2 * 150));
        let labels: Vec<String> = plan.legs.iter().map(|leg| plan.label(leg)).collect();
        assert_eq!(
            labels,
            ["async vs async", "async vs threads:40", "async vs blocking"]
        );
    }
}
