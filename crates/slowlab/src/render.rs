//! Text for people: numbers, lists, outcome lines and the summary. The race's timeline is drawn
//! by `report::terminal`.

use std::fmt::Write;
use std::time::Duration;

use slowlab_client::workload::format_delay;
use slowlab_client::{Outcome, Percentiles, Summary, Workload};

/// Most delays listed one by one on the first line of `fetch`'s text output.
const LISTED_DELAYS_UP_TO: usize = 20;

/// Seconds with millisecond precision: `4.412 s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// A ratio as a percentage: `99.7%`.
pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// A run's efficiency, or why it has none.
pub fn efficiency(efficiency: Option<f64>) -> String {
    efficiency.map_or_else(|| "n/a (failures)".to_owned(), percent)
}

/// The delays as the article prints them: `[7, 2, 6, 4, 0, 9, 4, 2, 5, 5]`.
pub fn delay_list(delays: &[Duration]) -> String {
    let items: Vec<String> = delays.iter().map(|d| format_delay(*d)).collect();
    format!("[{}]", items.join(", "))
}

/// A short duration in the unit that reads best: `850 µs`, `12.3 ms`, `4.412 s`.
pub fn short(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.0} µs", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.3} s")
    }
}

/// The first line of `fetch`'s text output: the delays like the article (`[7, 2, 6]`) when they
/// are few, else what the workload amounts to.
pub fn workload_line(workload: &Workload) -> String {
    let delays: Vec<Duration> = workload.delays().collect();
    let n = workload.targets.len();
    if delays.len() == n && n <= LISTED_DELAYS_UP_TO {
        return delay_list(&delays);
    }
    if delays.len() == n {
        let first = delays.first().copied().unwrap_or_default();
        if delays.iter().all(|d| *d == first) {
            return format!(
                "{n} requests of {} s to {}",
                format_delay(first),
                destination(workload)
            );
        }
        return format!(
            "{n} requests to {}: delays sum {} s, max {} s",
            destination(workload),
            format_delay(workload.sum_of_delays()),
            format_delay(workload.max_delay())
        );
    }
    format!(
        "{n} requests ({}) to {}",
        workload.method,
        destination(workload)
    )
}

/// Where a workload's requests go: the one server's base URL, or how many servers.
fn destination(workload: &Workload) -> String {
    match workload.by_server().as_slice() {
        [] => workload.endpoint().base_url(),
        [only] => workload
            .server_of(&workload.targets[only[0] as usize])
            .base_url(),
        servers => format!("{} servers", servers.len()),
    }
}

/// The summary block printed after the elapsed line. `examples`: quote one message per error kind
/// (pointless when every error already had its own line).
pub fn summary(summary: &Summary, examples: bool) -> String {
    let mut out = String::new();
    let limit = match summary.slots {
        Some(slots) => format!(" of at most {slots}"),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "requests {}: {} ok, {} failed{}; peak concurrency {}{limit}; throughput {:.1} req/s",
        summary.requests,
        summary.ok,
        summary.failed,
        if summary.cancelled > 0 {
            format!(" ({} cancelled)", summary.cancelled)
        } else {
            String::new()
        },
        summary.peak_concurrency,
        summary.throughput,
    );
    if summary.latency.count > 0 {
        let _ = writeln!(out, "latency   {}", percentiles(&summary.latency));
    }
    if summary.overhead.count > 0 {
        let _ = writeln!(out, "overhead  {}", percentiles(&summary.overhead));
    }
    for error in &summary.errors {
        let _ = if examples {
            writeln!(
                out,
                "errors: {} {} (e.g. {})",
                error.kind.as_str(),
                error.count,
                error.example
            )
        } else {
            writeln!(out, "errors: {} {}", error.kind.as_str(), error.count)
        };
    }
    for hint in &summary.hints {
        let _ = writeln!(out, "hint: {hint}");
    }
    out
}

fn percentiles(p: &Percentiles) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        short(p.p50),
        short(p.p90),
        short(p.p99),
        short(p.p99_9),
        short(p.max)
    )
}

/// One line per outcome: the body as received, or an error that says what went wrong.
pub fn outcome_line(outcome: &Outcome, workload: &Workload) -> String {
    match &outcome.result {
        Ok(reply) => String::from_utf8_lossy(&reply.body).trim().to_owned(),
        Err(err) => {
            let asked = workload
                .targets
                .get(outcome.index)
                .map(|t| {
                    if workload.servers().len() > 1 {
                        workload.url(t)
                    } else {
                        t.path.to_string()
                    }
                })
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
