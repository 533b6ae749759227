//! The race's timeline in the terminal: one row per request on a shared time axis, in each mode's
//! colour; past [`DENSE_ABOVE`] requests a run folds into a density view (requests in flight and
//! completions per column), whether or not stdout is a terminal.

use std::fmt::Write as _;
use std::io::IsTerminal;

use super::density;
use super::{DENSE_ABOVE, Document, Run, Timing};
use crate::render;

/// Columns of the timeline's bars.
const WIDTH: usize = 60;
/// Requests listed one by one in a folded run.
const SLOWEST: usize = 3;
/// Eighths of a block, for the density rows.
const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Whether to colour text for stdout: a terminal, and `NO_COLOR` unset or empty.
pub fn color_on_stdout() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Every run of `doc` on one time axis. `color`: paint each mode's bars in its colour.
pub fn timeline(doc: &Document, color: bool) -> String {
    let end = doc.runs.iter().map(|r| r.summary.wall).fold(1e-6, f64::max);
    let column = end / WIDTH as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "timeline: 0 to {:.3} s, one column = {} ms",
        end,
        (column * 1000.0).round().max(1.0)
    );
    for run in &doc.runs {
        let _ = writeln!(out, "{}", render::printable(&run.label));
        let paint = Paint::of(&run.summary.mode, color);
        match &run.timings {
            Some(timings) if timings.len() > DENSE_ABOVE => {
                folded(&mut out, run, timings, end, paint)
            }
            Some(timings) => {
                for t in timings {
                    bar_row(&mut out, t, column, paint);
                }
            }
            None => {
                let _ = writeln!(out, "  (no per-request outcomes)");
            }
        }
    }
    out
}

/// One row: `  #3        /0.2 |   ████      |`.
fn bar_row(out: &mut String, t: &Timing, column: f64, paint: Paint) {
    let to_column = |s: f64| ((s / column).round().max(0.0) as usize).min(WIDTH);
    let from = to_column(t.start);
    let to = to_column(t.end).max(from + 1).min(WIDTH.max(from + 1));
    let bar = if t.ok { '█' } else { 'x' };
    let _ = writeln!(
        out,
        "  #{:<3} {:>9} |{}{}{}|",
        t.index,
        render::printable(&t.target),
        " ".repeat(from),
        paint.apply(&bar.to_string().repeat(to - from)),
        " ".repeat(WIDTH.saturating_sub(to)),
    );
}

/// A run too long to list: requests in flight and completions per column, then the slowest.
fn folded(out: &mut String, run: &Run, timings: &[Timing], end: f64, paint: Paint) {
    let in_flight = density::in_flight(timings, end, WIDTH);
    let done = density::completions(timings, end, WIDTH);
    for (name, counts) in [("in flight", &in_flight), ("completed", &done)] {
        let peak = counts.iter().copied().max().unwrap_or(0);
        let _ = writeln!(
            out,
            "  {name:>14} |{}| peak {peak}",
            paint.apply(&levels(counts))
        );
    }
    let _ = writeln!(
        out,
        "  {} requests folded (more than {DENSE_ABOVE}); the {SLOWEST} slowest:",
        run.summary.requests
    );
    let column = end / WIDTH as f64;
    for t in density::slowest(timings, SLOWEST) {
        bar_row(out, t, column, paint);
    }
}

/// Counts as block heights, the largest a full block; any non-zero count shows.
fn levels(counts: &[usize]) -> String {
    let peak = counts.iter().copied().max().unwrap_or(0).max(1);
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                ' '
            } else {
                LEVELS[((c * 8).div_ceil(peak)).clamp(1, 8)]
            }
        })
        .collect()
}

/// A mode's colour, or none.
#[derive(Clone, Copy)]
struct Paint(Option<&'static str>);

impl Paint {
    fn of(mode: &str, color: bool) -> Paint {
        let code = match mode {
            "sequential" => "33",
            "threads" => "35",
            _ => "36",
        };
        Paint(color.then_some(code))
    }

    fn apply(self, text: &str) -> String {
        match self.0 {
            Some(code) if !text.is_empty() => format!("\x1b[{code}m{text}\x1b[0m"),
            _ => text.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RunSummary, Timing};
    use super::*;

    fn run(mode: &str, timings: Vec<Timing>) -> Run {
        let wall = timings.iter().map(|t| t.end).fold(0.0, f64::max);
        Run {
            label: mode.to_owned(),
            summary: RunSummary {
                mode: mode.to_owned(),
                requests: timings.len(),
                ok: timings.len(),
                wall,
                ..RunSummary::default()
            },
            timings: Some(timings),
            repeat: None,
        }
    }

    fn timing(index: usize, delay: f64, start: f64) -> Timing {
        Timing {
            index,
            target: format!("/{delay}"),
            ok: true,
            start,
            end: start + delay,
            ..Timing::default()
        }
    }

    /// The article's list × 0.1 with ideal timings: the staircase and the stack.
    fn article() -> Document {
        let delays = [0.7, 0.2, 0.6, 0.4, 0.0, 0.9, 0.4, 0.2, 0.5, 0.5];
        let mut at = 0.0;
        let sequential = delays
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let t = timing(i, *d, at);
                at += d;
                t
            })
            .collect();
        let concurrent = delays
            .iter()
            .enumerate()
            .map(|(i, d)| timing(i, *d, 0.0))
            .collect();
        Document {
            title: "slowlab race".to_owned(),
            runs: vec![run("sequential", sequential), run("async", concurrent)],
            parameters: Vec::new(),
            machine: None,
        }
    }

    #[test]
    fn timeline_staircase_and_stack() {
        insta::assert_snapshot!(timeline(&article(), false));
    }

    #[test]
    fn timeline_in_colour_paints_each_mode() {
        let text = timeline(&article(), true);
        assert!(text.contains("\x1b[33m█"), "sequential in yellow");
        assert!(text.contains("\x1b[36m█"), "async in cyan");
    }

    #[test]
    fn past_forty_rows_a_run_folds() {
        // 100 requests of 1 s in two waves of 50.
        let timings = (0..100).map(|i| timing(i, 1.0, (i / 50) as f64)).collect();
        let doc = Document {
            title: "slowlab race".to_owned(),
            runs: vec![run("async", timings)],
            parameters: Vec::new(),
            machine: None,
        };
        let text = timeline(&doc, false);
        assert!(text.lines().count() < 12, "{text}");
        insta::assert_snapshot!(text);
    }
}
