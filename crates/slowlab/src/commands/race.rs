//! `slowlab race`: the article's experiment in one command.

mod embedded;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use slowlab_client::summary::ratio;
use slowlab_client::workload::{format_delay, random_delays};
use slowlab_client::{ARTICLE_DELAYS, Endpoint, Mode, Report, RequestOptions, Summary, Workload};
use slowlab_server::{Config, Model};

use crate::cli::{ModeArg, OutputFormat, RaceArgs};
use crate::render;
use crate::report::{self, Machine, Repeat, write_file};
use crate::sink::OutcomeRecord;
use embedded::Embedded;

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
    /// Sequential wall time over async wall time (`null` unless both ran).
    speedup: Option<f64>,
    /// Sequential wall time over threads wall time (`null` unless both ran).
    threads_speedup: Option<f64>,
    /// Sum over max: the speedup a perfect run would show.
    ideal_speedup: f64,
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
struct Leg {
    mode: Mode,
    /// The embedded server's model, or `None` against --base-url.
    model: Option<Model>,
}

/// Runs the workload in each mode (or against each server model), and prints them side by side.
pub async fn run(args: RaceArgs) -> anyhow::Result<ExitCode> {
    let (base_delays, scale, from_article) = if let Some(count) = args.count {
        (vec![args.delay; count], args.scale.unwrap_or(1.0), false)
    } else if let Some(n) = args.random {
        let drawn = random_delays(n, args.seed).into_iter();
        (
            drawn.map(Duration::from_secs).collect(),
            args.scale.unwrap_or(1.0),
            false,
        )
    } else if args.delays.is_empty() {
        let article = ARTICLE_DELAYS.map(Duration::from_secs).to_vec();
        (article, args.scale.unwrap_or(DEFAULT_ARTICLE_SCALE), true)
    } else {
        (args.delays.clone(), args.scale.unwrap_or(1.0), false)
    };
    if base_delays.is_empty() {
        anyhow::bail!("nothing to race: --count and --random need at least 1 request");
    }
    for path in [&args.report, &args.svg, &args.json].into_iter().flatten() {
        report::check_writable(path)?;
    }
    let delays: Vec<Duration> = base_delays.iter().map(|d| scaled(*d, scale)).collect();
    let longest = delays.iter().copied().max().unwrap_or_default();
    // Every connection is a file descriptor; races of thousands need more than the usual 1,024.
    let _ = slowlab_client::limits::raise_fd_limit();

    let mut modes: Vec<Mode> = args.modes.iter().copied().map(mode_of).collect();
    modes.dedup();
    let legs: Vec<Leg> = if args.compare_models {
        COMPARED_MODELS
            .iter()
            .map(|model| Leg {
                mode: Mode::Async,
                model: Some(model.parse().expect("the compared models are valid")),
            })
            .collect()
    } else {
        let model = args.base_url.is_none().then_some(args.server_model);
        modes.iter().map(|&mode| Leg { mode, model }).collect()
    };

    let mut runs: Vec<(Report, Option<Repeat>, &Leg)> = Vec::new();
    let mut base_url = args.base_url.clone().unwrap_or_default();
    for leg in &legs {
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
        if let Some(server) = &server {
            base_url = server.base_url().to_owned();
        }
        let workload = Workload::from_delays(Endpoint::parse(&base_url)?, &delays);
        let label = label_of(leg, args.compare_models);
        let mut reports = Vec::new();
        for round in 1..=args.repeat {
            let of = if args.repeat > 1 {
                format!(" ({round}/{})", args.repeat)
            } else {
                String::new()
            };
            eprint!(
                "slowlab race: {} requests, {label:<10}{of} ... ",
                delays.len()
            );
            let report = slowlab_client::run(
                leg.mode,
                workload.clone(),
                RequestOptions::default(),
                |_| {},
            )
            .await;
            eprintln!(
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
    let workload = Workload::from_delays(Endpoint::parse(&base_url)?, &delays);
    let document = RaceDocument {
        base_url,
        embedded_server: args.base_url.is_none(),
        scale,
        delays: delays.iter().map(Duration::as_secs_f64).collect(),
        sum_of_delays: workload.sum_of_delays().as_secs_f64(),
        max_delay: workload.max_delay().as_secs_f64(),
        runs: runs
            .iter()
            .map(|(report, repeat, leg)| RunRecord {
                summary: &report.summary,
                label: label_of(leg, args.compare_models),
                server_model: leg.model.map(|m| m.to_string()),
                repeat: repeat.clone(),
                outcomes: outcome_records(report),
            })
            .collect(),
        speedup: speedup_over_sequential(Mode::Async),
        threads_speedup: speedup_over_sequential(Mode::Threads),
        ideal_speedup: ratio(workload.sum_of_delays(), workload.max_delay()),
        machine: Machine::here(),
    };
    // The reports are drawn from the JSON document itself, as `slowlab report html` draws a
    // saved one: one renderer for both.
    let text = serde_json::to_string_pretty(&document)?;
    let drawn = report::Document::from_text(&text)?;
    match args.output {
        OutputFormat::Json => println!("{text}"),
        OutputFormat::Text => {
            print!("{}", table(&document, &delays, from_article));
            if !args.no_timeline {
                println!();
                let color = report::terminal::color_on_stdout();
                print!("{}", report::terminal::timeline(&drawn, color));
            }
        }
    }
    // After the text: a file that cannot be written loses nothing already shown.
    let files = [
        (&args.json, format!("{text}\n")),
        (&args.svg, report::svg::timeline(&drawn)),
        (&args.report, report::html::page(&drawn)),
    ];
    let mut unwritten = 0;
    for (path, contents) in files {
        if let Some(path) = path
            && let Err(err) = write_file(path, &contents)
        {
            eprintln!("slowlab race: {err:#}");
            unwritten += 1;
        }
    }
    let reports: Vec<Report> = runs.into_iter().map(|(report, _, _)| report).collect();
    let failed: usize = reports.iter().map(|r| r.summary.failed).sum();
    if failed > 0 {
        report_failures(&reports);
    }
    Ok(if failed > 0 || unwritten > 0 {
        ExitCode::from(crate::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// What a leg is called: its mode, and its server's model when the race compares models.
fn label_of(leg: &Leg, compare_models: bool) -> String {
    match (compare_models, leg.model) {
        (true, Some(model)) => format!("{} vs {model}", leg.mode.as_str()),
        _ => leg.mode.as_str().to_owned(),
    }
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
        "slowlab race: {} requests, {source}, {server}",
        delays.len(),
    );
    let sum = delays.iter().sum::<Duration>();
    let max = delays.iter().copied().max().unwrap_or_default();
    // The list as the article prints it, while it fits on a line.
    let listed = if delays.len() <= LISTED_DELAYS_UP_TO {
        format!("{} s", render::delay_list(delays))
    } else {
        format!("of {} requests", delays.len())
    };
    let _ = writeln!(
        out,
        "delays {listed}: sum {} s, max {} s",
        format_delay(sum),
        format_delay(max)
    );
    let _ = writeln!(out);
    let width = doc
        .runs
        .iter()
        .map(|r| r.label.len())
        .max()
        .unwrap_or(0)
        .max(10);
    let _ = writeln!(
        out,
        "{:<width$} {:>10}  {:>16}  {:>10}  {:>7}",
        "mode", "wall", "ideal", "efficiency", "ok"
    );
    for run in &doc.runs {
        let summary = run.summary;
        let ideal_of = match (summary.mode, summary.slots) {
            (Mode::Sequential, _) => "sum",
            (_, Some(_)) => "slots",
            (_, None) => "max",
        };
        let _ = write!(
            out,
            "{:<width$} {:>10}  {:>16}  {:>10}  {:>7}",
            run.label,
            render::seconds(summary.wall),
            format!("{} ({ideal_of})", render::seconds(summary.ideal)),
            render::efficiency(summary.efficiency),
            format!("{}/{}", summary.ok, summary.requests),
        );
        if let Some(repeat) = &run.repeat {
            let _ = write!(
                out,
                "  median of {}, min {:.3} s, max {:.3} s",
                repeat.runs, repeat.min, repeat.max
            );
        }
        let _ = writeln!(out);
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
