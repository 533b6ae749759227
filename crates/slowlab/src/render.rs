//! Text for people: numbers, lists, outcome lines, the race table and its timeline.

use std::fmt::Write;
use std::time::Duration;

use slowlab_client::workload::format_delay;
use slowlab_client::{Outcome, Report};

/// Seconds with millisecond precision: `4.412 s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// A ratio as a percentage: `99.7%`.
pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// The delays as the article prints them: `[7, 2, 6, 4, 0, 9, 4, 2, 5, 5]`.
pub fn delay_list(delays: &[Duration]) -> String {
    let items: Vec<String> = delays.iter().map(|d| format_delay(*d)).collect();
    format!("[{}]", items.join(", "))
}

/// One line per outcome: the body as received, or an error that says what went wrong.
pub fn outcome_line(outcome: &Outcome, delays: &[Duration]) -> String {
    match &outcome.result {
        Ok(reply) => String::from_utf8_lossy(&reply.body).trim().to_owned(),
        Err(err) => {
            let asked = delays
                .get(outcome.index)
                .map(|d| format!("/{}", format_delay(*d)))
                .unwrap_or_default();
            format!(
                "error: request #{} {asked}: {} ({})",
                outcome.index,
                err.message,
                err.kind.as_str()
            )
        }
    }
}

/// Columns of the timeline's bars.
const TIMELINE_WIDTH: usize = 60;

/// Every request of every report as a bar on one shared time axis, so the staircase of the
/// sequential run and the stack of the async run can be compared at a glance.
pub fn timeline(reports: &[&Report]) -> String {
    let longest = reports
        .iter()
        .map(|r| r.summary.wall)
        .max()
        .unwrap_or_default()
        .max(Duration::from_micros(1));
    let column = longest.as_secs_f64() / TIMELINE_WIDTH as f64;
    let to_column = |d: Duration| ((d.as_secs_f64() / column).round() as usize).min(TIMELINE_WIDTH);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "timeline: 0 to {}, one column = {} ms",
        seconds(longest),
        (column * 1000.0).round().max(1.0)
    );
    for report in reports {
        let _ = writeln!(out, "{}", report.summary.mode.as_str());
        let mut outcomes: Vec<&Outcome> = report.outcomes.iter().collect();
        outcomes.sort_by_key(|o| o.index);
        for outcome in outcomes {
            let target = &report.workload.targets[outcome.index];
            let from = to_column(outcome.start);
            let to = to_column(outcome.end)
                .max(from + 1)
                .min(TIMELINE_WIDTH.max(from + 1));
            let bar = if outcome.is_ok() { '█' } else { 'x' };
            let _ = writeln!(
                out,
                "  #{:<3} {:>9} |{}{}{}|",
                outcome.index,
                target.path,
                " ".repeat(from),
                bar.to_string().repeat(to - from),
                " ".repeat(TIMELINE_WIDTH.saturating_sub(to)),
            );
        }
    }
    out
}
