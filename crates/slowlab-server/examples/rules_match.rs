//! Times rule lookups: loads a rules file and routes many paths through it, one timed lookup at a
//! time, and prints the load time and the lookup percentiles (p50, p99, in microseconds) by kind
//! of path as one JSON object on stdout.
//!
//! Run: `cargo run --release -p slowlab-server --example rules_match -- RULES.toml [LOOKUPS]`.
//! The paths tried are the ones bench/harness/rules_scale.py writes into its generated files:
//! `/api/item/{i}` (exact), `/files/{i}/...` (prefix), `/api/{i}/{id}` (pattern), and a path no
//! rule matches (the whole index is consulted and nothing found).

use std::path::PathBuf;
use std::time::Instant;

use axum::http::{HeaderMap, Method};
use slowlab_server::rules::{self, Route, RulesLimits};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(file) = args.next().map(PathBuf::from) else {
        eprintln!("usage: rules_match RULES.toml [LOOKUPS]");
        std::process::exit(2);
    };
    let lookups: usize = args
        .next()
        .map_or(100_000, |n| n.parse().expect("LOOKUPS is a number"));

    let started = Instant::now();
    let rules = rules::load(&file, &RulesLimits::default()).unwrap_or_else(|err| {
        eprintln!("rules_match: {err}");
        std::process::exit(2);
    });
    let load_seconds = started.elapsed().as_secs_f64();
    let count = rules.len();
    let headers = HeaderMap::new();

    // A small deterministic generator, so that every run tries the same paths.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |below: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % below.max(1) as u64).unwrap_or(0)
    };
    let kinds: [(&str, usize); 4] = [("exact", 0), ("prefix", 1), ("pattern", 2), ("miss", 3)];
    let mut report = Vec::new();
    for (kind, remainder) in kinds {
        let mut micros = Vec::with_capacity(lookups);
        let mut matched = 0_usize;
        for _ in 0..lookups {
            // Rule i is of kind i % 4 (see rules_scale.py); pick one of that kind.
            let mut i = next(count.div_ceil(4)) * 4 + remainder;
            if i >= count {
                i = i.saturating_sub(4);
            }
            let path = match kind {
                "exact" => format!("/api/item/{i}"),
                "prefix" => format!("/files/{i}/a/b.json"),
                "pattern" => format!("/api/{i}/42"),
                _ => format!("/nowhere/{i}"),
            };
            let began = Instant::now();
            let route = rules.route(&Method::GET, &path, None, &headers);
            micros.push(began.elapsed().as_secs_f64() * 1e6);
            if matches!(route, Route::Rule(_)) {
                matched += 1;
            }
        }
        micros.sort_by(f64::total_cmp);
        let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
        report.push(format!(
            "\"{kind}\": {{\"lookups\": {lookups}, \"matched\": {matched}, \"p50_us\": {:.3}, \"p99_us\": {:.3}, \"max_us\": {:.3}}}",
            at(0.5),
            at(0.99),
            at(1.0)
        ));
    }
    println!(
        "{{\"rules\": {count}, \"load_seconds\": {load_seconds:.4}, {}}}",
        report.join(", ")
    );
}
