//! Saved reports under hostile input: every command that reads one (`report show`, `report html`,
//! `report merge`) checks it the same way before computing anything, refuses what is wrong with
//! exit status 2 naming the file and the field, adds counts without wrapping around, refuses files
//! over the size limit and names the fields it does not know.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{Served, run, scratch, stderr, stdout};
use serde_json::{Value, json};

/// Shard I of 2 of a small run without outcomes, from a real fetch against `server`.
fn shard(server: &Served, index: u32) -> Value {
    let spec = format!("{index}/2");
    let output = run(&[
        "fetch",
        "--base-url",
        &server.base_url,
        "--count",
        "6",
        "--delay",
        "0",
        "--no-outcomes",
        "--shard",
        &spec,
        "--output",
        "json",
        "--quiet",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `slowlab report ARGS`, checked to be refused with exit status 2 and a message holding every
/// one of `says`.
fn assert_refused(args: &[&str], says: &[&str]) {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    let output = run(&all);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{all:?}: {message}");
    for said in says {
        assert!(
            message.contains(said),
            "{all:?} should say {said:?}: {message}"
        );
    }
}

const TOO_BIG: &str = "18446744073709551616";

#[test]
fn merge_adds_counts_without_wrapping_around() {
    let server = Served::start(&[]);
    let dir = scratch("checks-overflow");
    let real = shard(&server, 0);
    // A shard that is consistent on its own, with counts at the top of u64.
    let mut forged = shard(&server, 1);
    let top = u64::MAX;
    forged["summary"]["requests"] = json!(top);
    forged["summary"]["ok"] = json!(top);
    forged["summary"]["failed"] = json!(0);
    let a = write(&dir, "a.json", &real.to_string());
    let b = write(&dir, "b.json", &forged.to_string());
    assert_refused(&["merge", &a, &b], &["b.json", "summary.requests", "2^64"]);

    // Two forged shards: their sum is not 2^64 - 2 either.
    let mut forged_a = real.clone();
    forged_a["summary"]["requests"] = json!(top);
    forged_a["summary"]["ok"] = json!(top);
    forged_a["summary"]["failed"] = json!(0);
    let a = write(&dir, "a.json", &forged_a.to_string());
    assert_refused(&["merge", &a, &b], &["b.json", "summary.requests"]);
}

/// Every way a report is made wrong here, as the field the message must name and a change to the
/// document's text.
fn forgeries(valid: &Value) -> Vec<(&'static str, &'static str, String)> {
    let with = |change: &dyn Fn(&mut Value)| {
        let mut doc = valid.clone();
        change(&mut doc);
        doc.to_string()
    };
    let latency = valid["summary"]["histograms"]["latency"]
        .as_str()
        .unwrap()
        .to_owned();
    let truncated = latency[..(latency.len() / 2) & !3].to_owned();
    let requests = valid["summary"]["requests"].as_u64().unwrap();
    vec![
        (
            "requests of 2^64",
            "summary.requests",
            with(&|d| d["summary"]["requests"] = json!("BIG")).replace("\"BIG\"", TOO_BIG),
        ),
        (
            "negative requests",
            "summary.requests",
            with(&|d| d["summary"]["requests"] = json!(-5)),
        ),
        (
            "ok and failed that do not add up",
            "summary.ok",
            with(&|d| d["summary"]["ok"] = json!(requests + 1)),
        ),
        (
            "status counts above the requests",
            "summary.statuses",
            with(&|d| d["summary"]["statuses"][0]["count"] = json!(requests + 5)),
        ),
        (
            "shard index past the count",
            "shard.index",
            with(&|d| d["shard"]["index"] = json!(5)),
        ),
        (
            "status 99999",
            "summary.statuses[0].status",
            with(&|d| d["summary"]["statuses"][0]["status"] = json!(99999)),
        ),
        (
            "histogram not base64",
            "summary.histograms.latency",
            with(&|d| d["summary"]["histograms"]["latency"] = json!("not base64 at all!")),
        ),
        (
            "histogram truncated",
            "summary.histograms.latency",
            with(&|d| d["summary"]["histograms"]["latency"] = json!(truncated)),
        ),
        (
            // A bare V2 header (no deflate) claiming a payload of 4 GiB, which the decoder
            // allocated before finding it missing: 4 GB and 95 s for `report show`.
            "histogram whose header claims 4 GiB",
            "summary.histograms.latency",
            with(&|d| {
                d["summary"]["histograms"]["latency"] =
                    json!("HISTE/////AAAAAAAAAAAwAAAAAAAAABAAAAAAAAAAI/8AAAAAAAAA==")
            }),
        ),
        (
            "histogram with a bad header",
            "summary.histograms.latency",
            with(&|d| d["summary"]["histograms"]["latency"] = json!("AAAAAAAAAAAAAAAAAAAAAAAA")),
        ),
    ]
}

#[test]
fn show_html_and_merge_refuse_the_same_bad_reports() {
    let server = Served::start(&[]);
    let dir = scratch("checks-same");
    let real = shard(&server, 0);
    let valid = shard(&server, 1);
    let a = write(&dir, "a.json", &real.to_string());
    let b = write(&dir, "b.json", &valid.to_string());
    for command in [vec!["show", &b], vec!["html", &b], vec!["merge", &a, &b]] {
        let mut all = vec!["report"];
        all.extend_from_slice(&command);
        let output = run(&all);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{all:?}: {}",
            stderr(&output)
        );
    }
    for (what, field, text) in forgeries(&valid) {
        let b = write(&dir, "b.json", &text);
        for command in [vec!["show", &b], vec!["html", &b], vec!["merge", &a, &b]] {
            let output = run(&[&["report"][..], &command].concat());
            let message = stderr(&output);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{what}: {command:?} must refuse it: {message}"
            );
            assert!(
                message.contains("b.json") && message.contains(field),
                "{what}: {command:?} must name the file and {field}: {message}"
            );
        }
    }
}

#[test]
fn a_report_over_the_size_limit_is_refused_with_the_flag_that_raises_it() {
    let server = Served::start(&[]);
    let dir = scratch("checks-size");
    let text = shard(&server, 0).to_string();
    let file = write(&dir, "a.json", &text);
    let limit = (text.len() - 1).to_string();
    for command in ["show", "html"] {
        assert_refused(
            &[command, "--max-report-bytes", &limit, &file],
            &["a.json", "--max-report-bytes", &text.len().to_string()],
        );
    }
    assert_refused(
        &["merge", "--max-report-bytes", &limit, &file],
        &["a.json", "--max-report-bytes"],
    );
    // From standard input too, where the size is not known before reading.
    let mut child = common::slowlab()
        .args(["report", "show", "--max-report-bytes", &limit, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    let _ = child.stdin.take().unwrap().write_all(text.as_bytes());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--max-report-bytes"),
        "{}",
        stderr(&output)
    );

    // A device that never ends is refused before anything is read.
    if Path::new("/dev/zero").exists() {
        assert_refused(&["show", "/dev/zero"], &["/dev/zero", "not a regular file"]);
        assert_refused(
            &["merge", "/dev/zero"],
            &["/dev/zero", "not a regular file"],
        );
    }

    // At the limit it is read.
    let exact = text.len().to_string();
    let shown = run(&["report", "show", "--max-report-bytes", &exact, &file]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
}

#[test]
fn unknown_fields_are_named_in_a_warning_and_the_report_still_reads() {
    let server = Served::start(&[]);
    let dir = scratch("checks-unknown");
    let real = shard(&server, 0);
    let mut newer = shard(&server, 1);
    newer["from_the_future"] = json!({"x": 1});
    newer["summary"]["new_gauge"] = json!(3);
    let a = write(&dir, "a.json", &real.to_string());
    let b = write(&dir, "b.json", &newer.to_string());
    for command in [vec!["show", &b], vec!["html", &b], vec!["merge", &a, &b]] {
        let output = run(&[&["report"][..], &command].concat());
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{command:?}: {message}");
        assert!(
            message.contains("b.json")
                && message.contains("from_the_future")
                && message.contains("summary.new_gauge"),
            "{command:?} must name the unknown fields: {message}"
        );
        assert!(!message.contains("a.json"), "a.json has none: {message}");
    }
}

/// Peak resident memory of `slowlab ARGS`, in kB, from `/usr/bin/time -f %M`, after checking it
/// succeeded.
fn peak_kb(args: &[&str]) -> u64 {
    let output = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", env!("CARGO_BIN_EXE_slowlab")])
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .output()
        .expect("/usr/bin/time runs");
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{args:?}: {message}");
    message.lines().last().unwrap().trim().parse().unwrap()
}

#[test]
fn a_report_with_many_latency_buckets_is_held_once_not_three_times_over() {
    if !common::tool_available("/usr/bin/time") {
        return;
    }
    let server = Served::start(&[]);
    let dir = scratch("checks-memory");
    let mut doc = shard(&server, 0);
    // 200,000 buckets, 10 MB: held as text, then JSON values, then structs, the report peaked at
    // 172 MB; parsed once into typed fields, at about 40 MB.
    let buckets: Vec<Value> = (0..200_000u64)
        .map(|i| json!({"upper": 0.012_756_123_456_789 + i as f64 * 1e-9, "count": 1_000_000_000_000_000 + i}))
        .collect();
    doc["summary"]["latency_buckets"] = Value::Array(buckets);
    let text = doc.to_string();
    let big = write(&dir, "big.json", &text);
    let other = write(&dir, "other.json", &shard(&server, 1).to_string());
    let size_kb = text.len() as u64 / 1024;
    for args in [
        vec!["report", "show", &big],
        vec!["report", "merge", &big, &other],
    ] {
        let peak = peak_kb(&args);
        eprintln!("{args:?}: peak {peak} kB for a {size_kb} kB report");
        assert!(
            peak < 100 * 1024,
            "{args:?} peaked at {peak} kB for a {size_kb} kB report"
        );
    }
}

#[test]
fn a_race_document_gets_the_same_checks_run_by_run() {
    let server = Served::start(&[]);
    let dir = scratch("checks-race");
    let file = dir.join("race.json");
    let output = run(&[
        "race",
        "--base-url",
        &server.base_url,
        "--count",
        "2",
        "--delay",
        "0.01",
        "--modes",
        "sequential,async",
        "--json",
        file.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let race: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let shown = run(&["report", "show", file.to_str().unwrap()]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    assert!(stderr(&shown).is_empty(), "{}", stderr(&shown));

    let mut forged = race.clone();
    forged["runs"][1]["ok"] = json!(7);
    let bad = write(&dir, "bad.json", &forged.to_string());
    assert_refused(&["show", &bad], &["bad.json", "runs[1].ok"]);
    assert_refused(&["html", &bad], &["bad.json", "runs[1].ok"]);

    let mut newer = race;
    newer["runs"][0]["new_gauge"] = json!(1);
    let newer = write(&dir, "newer.json", &newer.to_string());
    let shown = run(&["report", "html", &newer]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    assert!(stderr(&shown).contains("new_gauge"), "{}", stderr(&shown));
}
