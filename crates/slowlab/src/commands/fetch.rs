//! `slowlab fetch`: the article's two clients as one command.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use slowlab_client::workload::random_delays;
use slowlab_client::{Endpoint, RequestOptions, Workload};

use crate::cli::FetchArgs;
use crate::commands::race::mode_of;
use crate::render;

/// Prints the delays, each body as it arrives, then the elapsed time; exit 1 if any request failed.
pub async fn run(args: FetchArgs) -> anyhow::Result<ExitCode> {
    let endpoint = Endpoint::parse(&args.base_url)?;
    let delays = if args.delays.is_empty() {
        random_delays(10, args.seed)
            .into_iter()
            .map(Duration::from_secs)
            .collect()
    } else {
        args.delays
    };
    let workload = Workload::from_delays(endpoint, &delays);
    let options = RequestOptions {
        timeout: args.timeout,
        connect_timeout: args.connect_timeout,
    };
    let mode = mode_of(args.mode);

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", render::delay_list(&delays))?;
    stdout.flush()?;
    let report = slowlab_client::run(mode, workload, options, |outcome| {
        let line = render::outcome_line(outcome, &delays);
        // A closed stdout (e.g. piped into `head`) must not stop the run or lose the exit status.
        let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    })
    .await;
    let summary = &report.summary;
    let _ = writeln!(
        stdout,
        "elapsed {} ({}, ideal {}, efficiency {})",
        render::seconds(summary.wall),
        mode.as_str(),
        render::seconds(summary.ideal),
        render::percent(summary.efficiency),
    );
    if summary.failed > 0 {
        eprintln!(
            "slowlab fetch: {} of {} requests failed",
            summary.failed, summary.requests
        );
        return Ok(ExitCode::from(crate::EXIT_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}
