//! Text for people: numbers, lists, outcome lines and the summary. The race's timeline is drawn
//! by `report::terminal`.

use std::borrow::Cow;
use std::fmt::Write;
use std::time::Duration;

use slowlab_client::summary::{Bucket, OpenLoop};
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
pub fn efficiency(summary: &Summary) -> String {
    match summary.efficiency {
        Some(efficiency) => percent(efficiency),
        None if summary.failed > 0 => "n/a (failures)".to_owned(),
        None if summary.ideal.is_zero() => "n/a (no delay)".to_owned(),
        None => "n/a".to_owned(),
    }
}

/// `1 request`, `2 requests`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A long duration for people: `2 h 5 min`, `3 min 20 s`, `42 s`.
pub fn long(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, _) => format!("{m} min {s} s"),
        _ => format!("{h} h {m} min"),
    }
}

/// Text from a server or from the user, safe to print on a terminal: control characters (ESC,
/// BEL, CR, a line break inside a body...) are written as escapes like `\u{1b}`, so a body cannot
/// retitle, clear or rewrite the user's terminal.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
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
    if workload.pace.rate.is_some() || workload.pace.until.is_some() {
        return paced_line(workload);
    }
    let n = workload.targets.len();
    // `--count N` holds one target for all N requests: say so without writing out N delays.
    if let Some((target, count)) = workload.targets.as_repeated()
        && let Some(delay) = target.delay
        && count > LISTED_DELAYS_UP_TO
    {
        return format!(
            "{count} requests of {} s to {}",
            format_delay(delay),
            destination(workload)
        );
    }
    let delays: Vec<Duration> = workload.delays().collect();
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

/// The first line of a run at a rate or for a time: the pace, then the round of targets it goes
/// through (never every request, which a run for a time has too many of to list).
fn paced_line(workload: &Workload) -> String {
    let round = workload.targets.round();
    let delays: Vec<Duration> = round.iter().filter_map(|t| t.delay).collect();
    let what = if delays.len() == round.len() && round.len() <= LISTED_DELAYS_UP_TO {
        format!("delays {} s", delay_list(&delays))
    } else {
        format!("{} targets ({})", round.len(), workload.method)
    };
    let servers = workload.servers().len();
    let to = if round
        .iter()
        .all(|t| workload.server_of(t) == workload.endpoint())
    {
        workload.endpoint().base_url()
    } else {
        format!("{servers} servers")
    };
    match (&workload.pace.rate, workload.pace.until) {
        (Some(rate), _) => format!(
            "open loop at {rate} req/s: {} requests, {what} in turn, to {to}",
            workload.targets.len()
        ),
        (None, until) => format!(
            "closed loop for {}: {what} in turn, to {to}",
            seconds(until.unwrap_or_default())
        ),
    }
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
    if let Some(open) = &summary.open_loop {
        open_loop(&mut out, summary, open);
    } else if summary.latency.count > 0 {
        let _ = writeln!(out, "latency   {}", percentiles(&summary.latency));
    }
    if summary.overhead.count > 0 {
        let _ = writeln!(out, "overhead  {}", percentiles(&summary.overhead));
    }
    if summary.statuses.len() > 1 || summary.statuses.iter().any(|s| s.status != 200) {
        for status in &summary.statuses {
            let _ = writeln!(
                out,
                "status {}: {}  p50 {}  p90 {}  p99 {}  max {}",
                status.status,
                status.count,
                short(status.latency.p50),
                short(status.latency.p90),
                short(status.latency.p99),
                short(status.latency.max)
            );
        }
    }
    if summary.cut_off > 0 {
        let _ = writeln!(
            out,
            "cut off: {} in flight at the end of the run did not finish within the timeout",
            summary.cut_off
        );
    }
    for error in &summary.errors {
        let _ = if examples {
            writeln!(
                out,
                "errors: {} {} (e.g. {})",
                error.kind.as_str(),
                error.count,
                printable(&error.example)
            )
        } else {
            writeln!(out, "errors: {} {}", error.kind.as_str(), error.count)
        };
    }
    for hint in &summary.hints {
        let _ = writeln!(out, "hint: {}", printable(hint));
    }
    out
}

/// An open-loop run's lines: latency from schedule first (what callers saw), then service time
/// and send lag, the rates, Little's law, and one line when the client fell behind.
fn open_loop(out: &mut String, summary: &Summary, open: &OpenLoop) {
    let _ = writeln!(
        out,
        "rate      target {:.1} req/s, sent at {:.1} req/s",
        open.target_rate, open.achieved_rate
    );
    if open.from_schedule.count > 0 {
        let _ = writeln!(
            out,
            "latency   {}  (from schedule)",
            percentiles(&open.from_schedule)
        );
    }
    if summary.latency.count > 0 {
        let _ = writeln!(
            out,
            "service   {}  (from send)",
            percentiles(&summary.latency)
        );
    }
    if open.send_lag.count > 0 {
        let _ = writeln!(out, "send lag  {}", percentiles(&open.send_lag));
    }
    let _ = writeln!(
        out,
        "in flight expected {:.1} (rate x mean delay, Little's law); measured mean {:.1}, peak {}",
        open.expected_in_flight, open.mean_in_flight, summary.peak_concurrency
    );
    if open.fell_behind {
        let _ = writeln!(
            out,
            "the client fell behind the schedule: median send lag {}, sent at {:.1} of {:.1} \
             req/s; latency from schedule counts the wait (more --connections or --concurrency \
             may help)",
            short(open.send_lag.p50),
            open.achieved_rate,
            open.target_rate
        );
    }
}

/// Widest bar of a histogram, in characters.
const BAR_WIDTH: usize = 40;

/// The latency histogram, a bar a bucket scaled to the fullest, like hey's:
/// `  0.102 s [  37] |████████`.
///
/// `what`: what the latencies are, for the heading (`latency`, or `service time` in an open-loop
/// run, where latency from schedule is another figure).
pub fn histogram(buckets: &[Bucket], what: &str) -> String {
    let mut out = String::new();
    let Some(most) = buckets.iter().map(|b| b.count).max().filter(|&m| m > 0) else {
        return out;
    };
    let _ = writeln!(out, "{what} histogram (upper bound, count):");
    let width = buckets
        .iter()
        .map(|b| b.count.to_string().len())
        .max()
        .unwrap_or(1);
    for bucket in buckets {
        let bar = (bucket.count as usize * BAR_WIDTH).div_ceil(most as usize);
        let _ = writeln!(
            out,
            "  {:>9} [{:>width$}] |{}",
            short(bucket.upper),
            bucket.count,
            "█".repeat(bar)
        );
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
        Ok(reply) => printable(String::from_utf8_lossy(&reply.body).trim()).into_owned(),
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
                "error: request #{} {}: {} ({})",
                outcome.index,
                printable(&asked),
                printable(&err.message),
                err.kind.as_str()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain"), "plain");
        assert_eq!(
            printable("\u{1b}]0;pwned\u{7}\u{1b}[2J a\r\nb"),
            "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J a\\r\\nb"
        );
    }

    #[test]
    fn a_huge_count_is_described_without_listing_it() {
        // Collecting a trillion delays first would need terabytes.
        let endpoint = slowlab_client::Endpoint::parse("http://127.0.0.1:8000").unwrap();
        let huge = Workload::repeat(endpoint, 1_000_000_000_000, Duration::from_millis(250));
        assert_eq!(
            workload_line(&huge),
            "1000000000000 requests of 0.25 s to http://127.0.0.1:8000"
        );
    }

    #[test]
    fn long_durations_read_as_hours_and_minutes() {
        assert_eq!(long(Duration::from_secs(42)), "42 s");
        assert_eq!(long(Duration::from_secs(200)), "3 min 20 s");
        assert_eq!(long(Duration::from_secs(7500)), "2 h 5 min");
    }
}
