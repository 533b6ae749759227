//! The HTML report: one self-contained page (inline CSS and SVG, no script, no network) with the
//! summary table, the timelines, the percentiles and what was run where. Light and dark follow the
//! reader's `prefers-color-scheme`; it prints on white.

use std::fmt::Write as _;

use super::svg::{self, escape};
use super::{Document, Percentiles};
use crate::render;

const STYLE: &str = "
:root { color-scheme: light dark; --bg: #fff; --fg: #1d1d1f; --muted: #666; --rule: #ddd; --head: #f5f5f7; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #16161a; --fg: #e6e6e6; --muted: #a0a0a0; --rule: #333; --head: #202026; }
}
@media print {
  :root { --bg: #fff; --fg: #000; --muted: #444; --rule: #bbb; --head: #eee; }
  section { break-inside: avoid; }
}
body { background: var(--bg); color: var(--fg); font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif;
       max-width: 920px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.1em; }
h2 { font-size: 1.1em; margin-top: 1.6em; border-bottom: 1px solid var(--rule); }
.lead { color: var(--muted); margin-top: 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid var(--rule); text-align: right; }
th { background: var(--head); font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
.figure { overflow-x: auto; }
.figure svg { max-width: 100%; height: auto; }
footer { margin-top: 2em; color: var(--muted); font-size: 0.85em; }
";

/// The whole page for `doc`.
pub fn page(doc: &Document) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>{title}</h1>\n<p class=\"lead\">{lead}</p>\n",
        title = escape(&doc.title),
        lead = escape(&lead(doc)),
    );
    summary_table(&mut out, doc);
    let _ = write!(
        out,
        "<section>\n<h2>Timelines</h2>\n<p class=\"lead\">Every run on one time axis. The dashed green \
         line is the ideal: the sum of the delays one after another, the longest delay all at once, \
         or the best packing into the slots a run allowed.</p>\n<div class=\"figure\">\n{}</div>\n</section>\n",
        svg::timeline(doc)
    );
    percentile_tables(&mut out, doc);
    let _ = write!(
        out,
        "<section>\n<h2>Parameters</h2>\n<table class=\"parameters\">\n"
    );
    for (name, value) in &doc.parameters {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    let _ = write!(
        out,
        "<tr><th>machine</th><td>{}</td></tr>\n</table>\n</section>\n\
         <footer>Written by slowlab {}.</footer>\n</body>\n</html>\n",
        escape(&doc.machine_line()),
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// One sentence on what the page shows.
fn lead(doc: &Document) -> String {
    let labels: Vec<&str> = doc.runs.iter().map(|r| r.label.as_str()).collect();
    let requests = doc.runs.first().map_or(0, |r| r.summary.requests);
    format!(
        "{} request{} per run; {}.",
        requests,
        if requests == 1 { "" } else { "s" },
        labels.join(" vs ")
    )
}

fn summary_table(out: &mut String, doc: &Document) {
    let repeated = doc.runs.iter().any(|r| r.repeat.is_some());
    let _ = write!(
        out,
        "<section>\n<h2>Summary</h2>\n<table class=\"summary\">\n<tr><th>run</th><th>wall</th>{}\
         <th>ideal</th><th>efficiency</th><th>ok</th><th>peak in flight</th><th>throughput</th></tr>\n",
        if repeated { "<th>min – max</th>" } else { "" }
    );
    for run in &doc.runs {
        let s = &run.summary;
        let spread = match (&run.repeat, repeated) {
            (Some(r), _) => format!(
                "<td>{} – {} ({} runs)</td>",
                render::short(r.min),
                render::short(r.max),
                r.runs
            ),
            (None, true) => "<td></td>".to_owned(),
            (None, false) => String::new(),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td>{spread}<td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{:.1} req/s</td></tr>",
            escape(&run.label),
            render::short(s.wall),
            escape(&s.ideal_text()),
            s.efficiency_text(),
            s.ok,
            s.requests,
            s.peak_concurrency,
            s.throughput,
        );
    }
    out.push_str("</table>\n</section>\n");
}

fn percentile_tables(out: &mut String, doc: &Document) {
    out.push_str(
        "<section>\n<h2>Latency and overhead</h2>\n<p class=\"lead\">Latency: a request's start to \
         its end. Overhead: latency minus the delay it asked for, the client's and the network's own \
         cost.</p>\n<table class=\"percentiles\">\n<tr><th>run</th><th></th><th>p50</th><th>p90</th>\
         <th>p99</th><th>p99.9</th><th>max</th></tr>\n",
    );
    for run in &doc.runs {
        for (name, p) in [
            ("latency", &run.summary.latency),
            ("overhead", &run.summary.overhead),
        ] {
            if p.count > 0 {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{name}</td>{}</tr>",
                    escape(&run.label),
                    cells(p)
                );
            }
        }
    }
    out.push_str("</table>\n</section>\n");
}

fn cells(p: &Percentiles) -> String {
    [p.p50, p.p90, p.p99, p.p99_9, p.max]
        .iter()
        .map(|v| format!("<td>{}</td>", render::short(*v)))
        .collect()
}
