//! The timeline as SVG: every run on one time axis, one bar per request split into its phases,
//! the ideal and the wall time marked. Past [`DENSE_ABOVE`] requests a run is drawn as requests in
//! flight, completions, a latency histogram and its slowest requests instead.
//!
//! Plain SVG 1.1 with an embedded stylesheet: no script, no external reference, so the file can go
//! into a slide as it is, and the same markup is inlined into the HTML report.

use std::fmt::Write as _;

use super::density::{self, Histogram};
use super::{DENSE_ABOVE, Document, Percentiles, Run, Timing};
use crate::render;

/// Total width of the drawing, px.
const WIDTH: f64 = 880.0;
/// Where the time axis starts: the labels of the requests go to its left.
const PLOT_LEFT: f64 = 150.0;
/// Width of the time axis, px.
const PLOT_WIDTH: f64 = WIDTH - PLOT_LEFT - 30.0;
/// Height of one request's row, px.
const ROW: f64 = 16.0;
/// Height of a bar within its row.
const BAR: f64 = 11.0;
/// Height of a density chart (in flight, completions, histogram).
const CHART: f64 = 56.0;
/// Slices of the time axis in the density charts.
const SLICES: usize = 140;
/// Bins of the latency histogram.
const BINS: usize = 40;
/// Requests drawn one by one in a dense run.
const SLOWEST: usize = 10;

const STYLE: &str = "
text { font: 12px system-ui, -apple-system, 'Segoe UI', sans-serif; fill: #222; }
.title { font-weight: 600; font-size: 13px; }
.small { font-size: 10px; fill: #555; }
.axis, .tick { stroke: #999; stroke-width: 1; }
.grid { stroke: #ddd; stroke-width: 1; }
.sequential { --mode: #d9822b; }
.threads { --mode: #7b61c4; }
.async { --mode: #2a9d8f; }
.span { fill: var(--mode, #2a9d8f); opacity: 0.35; }
.server { fill: var(--mode, #2a9d8f); }
.connect { fill: #3d405b; }
.read { fill: #e9c46a; }
.slot-wait { fill: none; stroke: var(--mode, #2a9d8f); stroke-dasharray: 2 2; }
.failed .span, .failed .server { fill: #d62828; opacity: 1; }
.area { fill: var(--mode, #2a9d8f); }
.ideal { stroke: #0a7d2c; stroke-width: 2; stroke-dasharray: 6 3; }
.wall { stroke: #c1121f; stroke-width: 1.5; }
.ideal-label { fill: #0a7d2c; font-size: 10px; }
.wall-label { fill: #c1121f; font-size: 10px; }
@media (prefers-color-scheme: dark) {
  text { fill: #e6e6e6; }
  .small { fill: #aaa; }
  .grid { stroke: #3a3a3a; }
  .connect { fill: #b8c0ff; }
  .ideal { stroke: #4ade80; } .ideal-label { fill: #4ade80; }
  .wall { stroke: #ff6b6b; } .wall-label { fill: #ff6b6b; }
}
@media print { text { fill: #000; } }
";

/// The timeline of every run of `doc` as one SVG document.
pub fn timeline(doc: &Document) -> String {
    let axis = Axis::new(doc.axis_end());
    let mut body = String::new();
    let mut y = 0.0;
    y = legend(&mut body, y);
    for run in &doc.runs {
        y = match &run.timings {
            Some(timings) if timings.len() <= DENSE_ABOVE => {
                bars(&mut body, &axis, run, timings, y)
            }
            Some(timings) => dense(&mut body, &axis, run, timings, y),
            None => percentiles_only(&mut body, &axis, run, y),
        };
        y += 10.0;
    }
    y = axis.draw(&mut body, y);
    let height = y + 8.0;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"slowlab-timeline\" width=\"{WIDTH}\" \
         height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         data-axis-end=\"{end}\" data-plot-left=\"{PLOT_LEFT}\" data-plot-width=\"{PLOT_WIDTH}\">\
         \n<title>{title}: timelines on a common axis</title>\n<style>{STYLE}</style>\n{body}</svg>\n",
        end = axis.end,
        title = escape(&doc.title),
    )
}

/// The common time axis: seconds to pixels.
struct Axis {
    end: f64,
}

impl Axis {
    fn new(end: f64) -> Axis {
        Axis { end }
    }

    fn x(&self, seconds: f64) -> f64 {
        PLOT_LEFT + seconds.clamp(0.0, self.end) / self.end * PLOT_WIDTH
    }

    fn width(&self, seconds: f64) -> f64 {
        seconds.max(0.0) / self.end * PLOT_WIDTH
    }

    /// Ticks and their labels; returns the next free y.
    fn draw(&self, out: &mut String, y: f64) -> f64 {
        let step = tick_step(self.end);
        let _ = writeln!(
            out,
            "<line class=\"axis\" x1=\"{PLOT_LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/>",
            PLOT_LEFT + PLOT_WIDTH
        );
        let mut t = 0.0;
        while t <= self.end * 1.000_001 {
            let x = px(self.x(t));
            let _ = writeln!(
                out,
                "<line class=\"tick\" x1=\"{x}\" y1=\"{y}\" x2=\"{x}\" y2=\"{}\"/>\
                 <text class=\"small\" x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                y + 4.0,
                y + 16.0,
                tick_label(t)
            );
            t += step;
        }
        let _ = writeln!(
            out,
            "<text class=\"small\" x=\"{}\" y=\"{}\" text-anchor=\"end\">since the start</text>",
            PLOT_LEFT - 14.0,
            y + 16.0
        );
        y + 22.0
    }
}

/// `0`, `500 ms`, `1.5 s`: a tick's time, as short as it reads.
fn tick_label(seconds: f64) -> String {
    if seconds <= 0.0 {
        "0".to_owned()
    } else if seconds < 1.0 {
        format!("{} ms", (seconds * 1e3 * 1000.0).round() / 1000.0)
    } else {
        format!("{} s", (seconds * 1000.0).round() / 1000.0)
    }
}

/// A round step giving 4 to 10 ticks over `[0, end]`.
fn tick_step(end: f64) -> f64 {
    let raw = end / 8.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| end / step <= 10.0)
        .unwrap_or(magnitude * 10.0)
}

/// The phases' key; returns the next free y.
fn legend(out: &mut String, y: f64) -> f64 {
    let items = [
        ("slot-wait", "waiting for a slot"),
        ("connect", "connecting"),
        ("server", "waiting for the server"),
        ("read", "reading the answer"),
    ];
    let mut x = PLOT_LEFT;
    for (class, text) in items {
        let _ = writeln!(
            out,
            "<rect class=\"{class}\" x=\"{x}\" y=\"{}\" width=\"14\" height=\"{BAR}\"/>\
             <text class=\"small\" x=\"{}\" y=\"{}\">{text}</text>",
            y + 4.0,
            x + 18.0,
            y + 13.0
        );
        x += 34.0 + text.len() as f64 * 5.6;
    }
    let _ = writeln!(
        out,
        "<line class=\"ideal\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\"/><text class=\"ideal-label\" x=\"{}\" y=\"{}\">ideal</text>\
         <line class=\"wall\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/><text class=\"wall-label\" x=\"{}\" y=\"{}\">wall</text>",
        y + 2.0,
        y + 16.0,
        x + 5.0,
        y + 13.0,
        x + 42.0,
        y + 2.0,
        x + 42.0,
        y + 16.0,
        x + 47.0,
        y + 13.0
    );
    y + 24.0
}

/// The run's heading line; returns the next free y.
fn heading(out: &mut String, run: &Run, y: f64) -> f64 {
    let s = &run.summary;
    let spread = run.repeat.as_ref().map_or(String::new(), |r| {
        format!(
            "; median of {} runs, min {} max {}",
            r.runs,
            render::short(r.min),
            render::short(r.max)
        )
    });
    let _ = writeln!(
        out,
        "<text class=\"title\" x=\"4\" y=\"{}\">{}</text>\
         <text class=\"small\" x=\"{PLOT_LEFT}\" y=\"{}\">wall {}, ideal {}, efficiency {}, {}/{} ok{}</text>",
        y + 14.0,
        escape(&run.label),
        y + 14.0,
        render::short(s.wall),
        escape(&s.ideal_text()),
        s.efficiency_text(),
        s.ok,
        s.requests,
        escape(&spread),
    );
    y + 20.0
}

/// The ideal and wall markers over `[top, bottom]`.
fn markers(out: &mut String, axis: &Axis, run: &Run, top: f64, bottom: f64) {
    let s = &run.summary;
    let label = escape(&run.label);
    // A run without an ideal (a merged run for a time) has only its wall to mark.
    if let Some(seconds) = s.ideal {
        let ideal = px(axis.x(seconds));
        let _ = write!(
            out,
            "<line class=\"ideal\" data-run=\"{label}\" data-seconds=\"{seconds}\" x1=\"{ideal}\" y1=\"{top}\" x2=\"{ideal}\" y2=\"{bottom}\"/>",
        );
    }
    let wall = px(axis.x(s.wall));
    let _ = writeln!(
        out,
        "<line class=\"wall\" data-run=\"{label}\" data-seconds=\"{}\" x1=\"{wall}\" y1=\"{top}\" x2=\"{wall}\" y2=\"{bottom}\"/>",
        s.wall,
    );
}

/// One bar per request; returns the next free y.
fn bars(out: &mut String, axis: &Axis, run: &Run, timings: &[Timing], y: f64) -> f64 {
    let mut y = heading(out, run, y);
    let top = y;
    let _ = writeln!(
        out,
        "<g class=\"run {}\" data-run=\"{}\">",
        class_of(&run.summary.mode),
        escape(&run.label)
    );
    for timing in timings {
        request_bar(out, axis, &run.label, timing, y);
        y += ROW;
    }
    out.push_str("</g>\n");
    markers(out, axis, run, top - 2.0, y);
    y
}

/// One request's bar, split into its phases, with its label to the left.
fn request_bar(out: &mut String, axis: &Axis, run: &str, t: &Timing, y: f64) {
    let bar_y = y + (ROW - BAR) / 2.0;
    let mut title = format!(
        "#{} {}: {} from {}",
        t.index,
        t.target,
        render::short(t.latency()),
        render::short(t.start)
    );
    if t.slot_wait > 0.0 {
        let _ = write!(
            title,
            ", after {} waiting for a slot",
            render::short(t.slot_wait)
        );
    }
    if let Some(connect) = t.connect {
        let _ = write!(title, ", connect {}", render::short(connect));
    }
    if !t.ok {
        title.push_str(", failed");
    }
    let _ = write!(
        out,
        "<g class=\"request{}\" data-run=\"{}\" data-index=\"{}\" data-start=\"{}\" data-end=\"{}\">\
         <title>{}</title><text class=\"small\" x=\"{}\" y=\"{}\" text-anchor=\"end\">#{} {}</text>",
        if t.ok { "" } else { " failed" },
        escape(run),
        t.index,
        t.start,
        t.end,
        escape(&title),
        PLOT_LEFT - 6.0,
        y + ROW - 4.0,
        t.index,
        escape(&shorten(&t.target, 14)),
    );
    if t.slot_wait > 0.0 {
        let from = (t.start - t.slot_wait).max(0.0);
        rect(
            out,
            "slot-wait",
            axis.x(from),
            bar_y,
            axis.width(t.start - from),
            BAR,
        );
    }
    rect(
        out,
        "span",
        axis.x(t.start),
        bar_y,
        axis.width(t.latency()),
        BAR,
    );
    let connect_end = t.start + t.connect.unwrap_or(0.0).min(t.latency());
    let answer = t.first_byte.unwrap_or(t.end).clamp(connect_end, t.end);
    if connect_end > t.start {
        rect(
            out,
            "connect",
            axis.x(t.start),
            bar_y,
            axis.width(connect_end - t.start),
            BAR,
        );
    }
    rect(
        out,
        "server",
        axis.x(connect_end),
        bar_y,
        axis.width(answer - connect_end),
        BAR,
    );
    if t.end > answer {
        rect(
            out,
            "read",
            axis.x(answer),
            bar_y,
            axis.width(t.end - answer),
            BAR,
        );
    }
    out.push_str("</g>\n");
}

fn rect(out: &mut String, class: &str, x: f64, y: f64, width: f64, height: f64) {
    let _ = write!(
        out,
        "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
        px(x),
        px(y),
        px(width),
        px(height)
    );
}

/// Requests in flight, completions, the latency histogram and the slowest requests; returns the
/// next free y.
fn dense(out: &mut String, axis: &Axis, run: &Run, timings: &[Timing], y: f64) -> f64 {
    let mut y = heading(out, run, y);
    let top = y;
    let class = class_of(&run.summary.mode);
    let _ = writeln!(
        out,
        "<g class=\"run dense {class}\" data-run=\"{}\">",
        escape(&run.label)
    );
    let in_flight = density::in_flight(timings, axis.end, SLICES);
    y = columns(out, "in-flight", "in flight", &in_flight, y);
    let done = density::completions(timings, axis.end, SLICES);
    y = columns(out, "completions", "completions", &done, y);
    out.push_str("</g>\n");
    markers(out, axis, run, top - 2.0, y);
    let slowest = density::slowest(timings, SLOWEST);
    let _ = writeln!(
        out,
        "<text class=\"small\" x=\"4\" y=\"{}\">the {} slowest</text><g class=\"run slowest {class}\">",
        y + 12.0,
        slowest.len()
    );
    for timing in slowest {
        request_bar(out, axis, &run.label, timing, y);
        y += ROW;
    }
    out.push_str("</g>\n");
    histogram(
        out,
        &density::latency_histogram(timings, BINS),
        class,
        y + 4.0,
    )
}

/// A column chart over the time axis (one column per slice); returns the next free y.
fn columns(out: &mut String, class: &str, name: &str, counts: &[usize], y: f64) -> f64 {
    let peak = counts.iter().copied().max().unwrap_or(0).max(1);
    let slice = PLOT_WIDTH / counts.len() as f64;
    let _ = write!(
        out,
        "<g class=\"{class}\"><text class=\"small\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{name}</text>\
         <text class=\"small\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{peak}</text>\
         <line class=\"grid\" x1=\"{PLOT_LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>",
        PLOT_LEFT - 6.0,
        y + CHART / 2.0,
        PLOT_LEFT - 6.0,
        y + 10.0,
        y + CHART,
        PLOT_LEFT + PLOT_WIDTH,
        y + CHART,
    );
    for (i, &count) in counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let height = count as f64 / peak as f64 * (CHART - 4.0);
        rect(
            out,
            "area",
            PLOT_LEFT + i as f64 * slice,
            y + CHART - height,
            slice,
            height,
        );
    }
    let _ = writeln!(out, "</g>");
    y + CHART + 6.0
}

/// The latency histogram on its own axis (shortest to longest); returns the next free y.
fn histogram(out: &mut String, h: &Histogram, class: &str, y: f64) -> f64 {
    let peak = h.counts.iter().copied().max().unwrap_or(0).max(1);
    let bin = PLOT_WIDTH / h.counts.len() as f64;
    let _ = write!(
        out,
        "<g class=\"histogram {class}\"><text class=\"small\" x=\"{}\" y=\"{}\" text-anchor=\"end\">latency</text>\
         <text class=\"small\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{peak}</text>",
        PLOT_LEFT - 6.0,
        y + CHART / 2.0,
        PLOT_LEFT - 6.0,
        y + 10.0,
    );
    for (i, &count) in h.counts.iter().enumerate() {
        if count > 0 {
            let height = count as f64 / peak as f64 * (CHART - 4.0);
            rect(
                out,
                "area",
                PLOT_LEFT + i as f64 * bin,
                y + CHART - height,
                bin - 1.0,
                height,
            );
        }
    }
    let _ = writeln!(
        out,
        "<line class=\"grid\" x1=\"{PLOT_LEFT}\" y1=\"{b}\" x2=\"{}\" y2=\"{b}\"/>\
         <text class=\"small\" x=\"{PLOT_LEFT}\" y=\"{}\">{}</text>\
         <text class=\"small\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{} (latency axis, not time)</text></g>",
        PLOT_LEFT + PLOT_WIDTH,
        y + CHART + 12.0,
        escape(&render::short(h.low)),
        PLOT_LEFT + PLOT_WIDTH,
        y + CHART + 12.0,
        escape(&render::short(h.high)),
        b = y + CHART,
    );
    y + CHART + 16.0
}

/// A run saved without its outcomes: its latency percentiles as bars on the time axis.
fn percentiles_only(out: &mut String, axis: &Axis, run: &Run, y: f64) -> f64 {
    let mut y = heading(out, run, y);
    let top = y;
    let p: &Percentiles = &run.summary.latency;
    let _ = writeln!(
        out,
        "<g class=\"run percentiles {}\">",
        class_of(&run.summary.mode)
    );
    for (name, value) in [
        ("p50", p.p50),
        ("p90", p.p90),
        ("p99", p.p99),
        ("p99.9", p.p99_9),
        ("max", p.max),
    ] {
        let _ = write!(
            out,
            "<text class=\"small\" x=\"{}\" y=\"{}\" text-anchor=\"end\">latency {name}</text>",
            PLOT_LEFT - 6.0,
            y + ROW - 4.0
        );
        rect(
            out,
            "server",
            PLOT_LEFT,
            y + (ROW - BAR) / 2.0,
            axis.width(value),
            BAR,
        );
        out.push('\n');
        y += ROW;
    }
    let saved = run.saved_latency_histogram(BINS);
    let note = if saved.is_some() {
        "saved without per-request outcomes: its latency percentiles and histogram"
    } else {
        "saved without per-request outcomes: percentiles only"
    };
    let _ = writeln!(
        out,
        "<text class=\"small\" x=\"{PLOT_LEFT}\" y=\"{}\">{note}</text></g>",
        y + 12.0
    );
    markers(out, axis, run, top - 2.0, y);
    match saved {
        Some(h) => histogram(out, &h, class_of(&run.summary.mode), y + 20.0),
        None => y + 16.0,
    }
}

/// The stylesheet class of a mode.
fn class_of(mode: &str) -> &'static str {
    match mode {
        "sequential" => "sequential",
        "threads" => "threads",
        _ => "async",
    }
}

/// Text cut to `max` characters, with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// Pixels to two decimals: exact enough, and short.
fn px(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Text made safe for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert!((tick_step(4.4) - 0.5).abs() < 1e-12);
        assert!((tick_step(1.0) - 0.1).abs() < 1e-12);
        assert!((tick_step(0.09) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
