//! `slowlab fetch` run as a process against real servers: output formats and their schema, exit
//! statuses, a server killed mid-run, Ctrl-C, and file-descriptor exhaustion.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

use serde_json::Value;

const SCHEMA: &str = include_str!("../../../docs/fetch.schema.json");

mod common;

use common::{Served, run, slowlab, stderr};

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn schema_value() -> Value {
    serde_json::from_str(SCHEMA).unwrap()
}

fn schema() -> jsonschema::Validator {
    jsonschema::validator_for(&schema_value()).unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, doc: &Value) {
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc}");
}

#[test]
fn json_output_matches_the_schema_and_the_harness_names() {
    let served = Served::start(&["--drain-timeout", "0"]);
    let output = run(&[
        "fetch",
        "--count",
        "30",
        "--delay",
        "0.2",
        "--concurrency",
        "3",
        "--output",
        "json",
        "--quiet",
        "--base-url",
        &served.base_url,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let doc = json(&output);
    assert_valid(&schema(), &doc);
    let summary = &doc["summary"];
    for name in [
        "mode",
        "requests",
        "ok",
        "failed",
        "wall",
        "ideal",
        "efficiency",
        "throughput",
        "peak_concurrency",
    ] {
        assert!(!summary[name].is_null(), "no summary.{name}");
    }
    for group in ["latency", "overhead"] {
        for name in ["p50", "p90", "p99", "p99_9", "max"] {
            assert!(summary[group][name].is_f64(), "no summary.{group}.{name}");
        }
    }
    assert_eq!(summary["mode"], "async");
    assert_eq!(summary["requests"], 30);
    assert_eq!(summary["peak_concurrency"], 3);
    assert!((summary["ideal"].as_f64().unwrap() - 2.0).abs() < 1e-9);
    let outcomes = doc["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 30);
    for (i, o) in outcomes.iter().enumerate() {
        assert_eq!(o["index"], i, "ordered by index");
        assert_eq!(o["status"], 200);
        assert_eq!(o["time_elapsed"], 0.2);
    }
    // The error kinds the schema lists are exactly the library's.
    let listed: Vec<String> = schema_value()["$defs"]["error_kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let known: Vec<&str> = slowlab_client::ErrorKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(listed, known);
}

#[test]
fn ndjson_streams_outcomes_then_a_summary_and_validates() {
    let served = Served::start(&["--drain-timeout", "0"]);
    let output = run(&[
        "fetch",
        "--mode",
        "threads",
        "--threads",
        "2",
        "--count",
        "6",
        "--delay",
        "0.05",
        "--output",
        "ndjson",
        "--base-url",
        &served.base_url,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    let outcome_schema = serde_json::json!({
        "$ref": "#/$defs/outcome",
        "$defs": schema_value()["$defs"].clone(),
    });
    let outcome_validator = jsonschema::validator_for(&outcome_schema).unwrap();
    for line in &lines[..6] {
        assert_valid(&outcome_validator, line);
    }
    let summary = &lines[6]["summary"];
    assert_eq!(summary["mode"], "threads");
    assert_eq!(summary["peak_concurrency"], 2);
    let summary_schema = serde_json::json!({
        "$ref": "#/$defs/summary",
        "$defs": schema_value()["$defs"].clone(),
    });
    assert_valid(
        &jsonschema::validator_for(&summary_schema).unwrap(),
        summary,
    );
}

#[test]
fn csv_parses_back_one_row_per_request() {
    let served = Served::start(&["--drain-timeout", "0"]);
    let output = run(&[
        "fetch",
        "--count",
        "5",
        "--delay",
        "0.01",
        "--output",
        "csv",
        "--base-url",
        &served.base_url,
        "--header",
        "X-Test: 1",
        "--method",
        "get",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    let headers = reader.headers().unwrap().clone();
    for name in [
        "index",
        "target",
        "ok",
        "status",
        "latency",
        "slot_wait",
        "error_kind",
    ] {
        assert!(headers.iter().any(|h| h == name), "no column {name}");
    }
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    let mut indexes: Vec<usize> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2, 3, 4]);
    let status = headers.iter().position(|h| h == "status").unwrap();
    assert!(rows.iter().all(|r| &r[status] == "200"));
}

#[test]
fn fail_on_exits_3_and_names_the_threshold() {
    let served = Served::start(&["--drain-timeout", "0"]);
    let base = [
        "fetch",
        "--count",
        "4",
        "--delay",
        "0.1",
        "--base-url",
        &served.base_url,
    ];
    let broken = run(&[&base[..], &["--fail-on", "p50>1ms"]].concat());
    assert_eq!(broken.status.code(), Some(3), "{}", stderr(&broken));
    assert!(
        stderr(&broken).contains("threshold p50>1ms crossed"),
        "{}",
        stderr(&broken)
    );
    let kept = run(&[&base[..], &["--fail-on", "p99>60s,errors>0"]].concat());
    assert_eq!(kept.status.code(), Some(0), "{}", stderr(&kept));
    let bad = run(&[&base[..], &["--fail-on", "p98>1s"]].concat());
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

#[test]
fn text_output_summarises_large_runs_without_body_lines() {
    let served = Served::start(&["--drain-timeout", "0"]);
    let output = run(&[
        "fetch",
        "--count",
        "50",
        "--delay",
        "0",
        "--base-url",
        &served.base_url,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(!text.contains("time_elapsed"), "no body lines: {text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("50 requests of 0 s"), "{text}");
    assert!(lines[1].starts_with("elapsed "), "{text}");
    assert!(text.contains("requests 50: 50 ok, 0 failed"), "{text}");
    assert!(text.contains("latency   p50"), "{text}");
    // Forced: a line per body.
    let output = run(&[
        "fetch",
        "--count",
        "50",
        "--delay",
        "0",
        "--print-bodies",
        "--base-url",
        &served.base_url,
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.matches("{\"time_elapsed\": 0}").count(), 50, "{text}");
    // Not a terminal: no progress bar, nothing on stderr at all.
    assert_eq!(stderr(&output), "");
}

#[test]
fn urls_from_stdin_reach_any_path() {
    let served = Served::start(&["--drain-timeout", "0"]);
    let mut child = slowlab()
        .args([
            "fetch",
            "--urls",
            "-",
            "--output",
            "json",
            "--base-url",
            &served.base_url,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"/0.01\n# a comment\n/\n/nope\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    // /nope is not a number of seconds: a 4xx, one failure, exit 1.
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let doc = json(&output);
    let outcomes = doc["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[1]["target"], "/");
    assert_eq!(outcomes[1]["ok"], true);
    assert_eq!(outcomes[2]["error"]["kind"], "http-status");
    assert!(outcomes[2]["status"].as_u64().unwrap() >= 400);
}

/// The server's count of delay requests answered 200, from `/metrics`.
fn answered(served: &Served) -> u64 {
    let metrics = common::get(&served.addr, "/metrics");
    metrics
        .lines()
        .find(|line| line.starts_with(r#"slowlab_requests_total{status="200",outcome="ok"}"#))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0, |count| count.trim().parse().unwrap())
}

#[test]
fn urls_on_two_servers_reach_each_in_every_mode() {
    let a = Served::start(&["--drain-timeout", "0"]);
    let b = Served::start(&["--drain-timeout", "0"]);
    // Full URLs on both servers, and paths that join the base URL (server b).
    let lines = [
        format!("{}/0.3", a.base_url),
        format!("{}/0.3", b.base_url),
        "/0.3".to_owned(),
        format!("{}/0.3?jitter=0", a.base_url),
        "/0.3".to_owned(),
    ];
    let file = std::env::temp_dir().join(format!("slowlab-urls-{}.txt", std::process::id()));
    std::fs::write(&file, lines.join("\n")).unwrap();
    let runs: [&[&str]; 6] = [
        &["--mode", "sequential"],
        &["--mode", "threads"],
        &["--mode", "async"],
        &["--mode", "async", "--concurrency", "1"],
        &["--mode", "async", "--connections", "1"],
        &["--mode", "async", "--http2"],
    ];
    let validator = schema();
    for extra in runs {
        let (before_a, before_b) = (answered(&a), answered(&b));
        let mut args = vec![
            "fetch",
            "--output",
            "json",
            "--quiet",
            "--base-url",
            &b.base_url,
        ];
        args.extend(["--urls", file.to_str().unwrap()]);
        args.extend(extra);
        let output = run(&args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{extra:?}: {}",
            stderr(&output)
        );
        let doc = json(&output);
        assert_valid(&validator, &doc);
        let servers: Vec<&str> = doc["workload"]["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(
            servers,
            [b.base_url.as_str(), a.base_url.as_str()],
            "{extra:?}: the base URL first, then the other server"
        );
        let outcomes = doc["outcomes"].as_array().unwrap();
        assert_eq!(outcomes.len(), lines.len(), "{extra:?}");
        for outcome in outcomes {
            let index = outcome["index"].as_u64().unwrap() as usize;
            let expected = if lines[index].starts_with('/') {
                format!("{}{}", b.base_url, lines[index])
            } else {
                lines[index].clone()
            };
            assert_eq!(outcome["url"], expected.as_str(), "{extra:?}");
            assert_eq!(outcome["ok"], true, "{extra:?}: {outcome}");
        }
        // Each server answered exactly its own requests.
        assert_eq!(answered(&a) - before_a, 2, "{extra:?}");
        assert_eq!(answered(&b) - before_b, 3, "{extra:?}");
        if extra.contains(&"--concurrency") || extra.contains(&"--connections") {
            // One slot per server: two for the run, both used at once from the start, and
            // server b's three requests of 0.3 s one after another.
            let summary = &doc["summary"];
            assert_eq!(summary["slots"], 2, "{extra:?}");
            assert_eq!(summary["peak_concurrency"], 2, "{extra:?}");
            assert!(
                summary["wall"].as_f64().unwrap() >= 0.9,
                "{extra:?}: {summary}"
            );
        }
    }
    let _ = std::fs::remove_file(file);
}

#[test]
fn a_server_killed_mid_run_still_gives_one_outcome_per_request() {
    for extra in [&[][..], &["--http2"], &["--concurrency", "4"]] {
        let mut served = Served::start(&["--drain-timeout", "0"]);
        let mut args = vec![
            "fetch",
            "--count",
            "20",
            "--delay",
            "5",
            "--output",
            "json",
            "--quiet",
            "--base-url",
            &served.base_url,
        ];
        args.extend_from_slice(extra);
        let fetch = slowlab()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(700));
        served.child.kill().unwrap();
        let output = fetch.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{extra:?}: {}",
            stderr(&output)
        );
        let doc = json(&output);
        assert_eq!(doc["outcomes"].as_array().unwrap().len(), 20, "{extra:?}");
        assert_eq!(doc["summary"]["failed"], 20, "{extra:?}");
        assert_valid(&schema(), &doc);
    }
}

#[test]
fn ctrl_c_reports_finished_and_cancelled() {
    let served = Served::start(&["--drain-timeout", "0"]);
    let mut args = vec!["fetch", "--output", "json", "--base-url", &served.base_url];
    args.extend(["0.05"; 3]);
    args.extend(["30"; 3]);
    let fetch = slowlab()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(1000));
    let status = Command::new("kill")
        .args(["-INT", &fetch.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = fetch.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let doc = json(&output);
    assert_eq!(doc["summary"]["ok"], 3);
    assert_eq!(doc["summary"]["cancelled"], 3);
    assert!(
        stderr(&output).contains("3 finished, 3 cancelled"),
        "{}",
        stderr(&output)
    );
    assert!(doc["summary"]["wall"].as_f64().unwrap() < 20.0);
}

#[test]
fn fd_exhaustion_is_typed_and_the_run_goes_on() {
    let served = Served::start(&["--drain-timeout", "0"]);
    // Soft and hard limits both lowered in a child shell, so the client cannot raise them.
    let script = format!(
        "ulimit -n 64 && exec {} fetch --count 200 --delay 0.5 --output json --quiet --base-url {}",
        env!("CARGO_BIN_EXE_slowlab"),
        served.base_url
    );
    let output = Command::new("sh")
        .args(["-c", &script])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let doc = json(&output);
    assert_eq!(doc["outcomes"].as_array().unwrap().len(), 200);
    let summary = &doc["summary"];
    let kinds: Vec<&str> = summary["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"fd-exhausted"), "{summary}");
    assert!(
        summary["ok"].as_u64().unwrap() > 0,
        "the run went on: {summary}"
    );
    let hints = summary["hints"].to_string();
    assert!(hints.contains("ulimit -n"), "{hints}");
}

#[test]
fn progress_bar_on_a_terminal_only_and_without_colour_under_no_color() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1) (util-linux) is needed to give the client a terminal");
        return;
    }
    let served = Served::start(&["--drain-timeout", "0"]);
    let command = format!(
        "{} fetch --count 30 --delay 0.4 --concurrency 10 --output json --base-url {}",
        env!("CARGO_BIN_EXE_slowlab"),
        served.base_url
    );
    // `script` gives the child a pseudo-terminal, so stderr is a terminal.
    let on_terminal = |no_color: bool| {
        let mut script = Command::new("script");
        script.args(["-qec", &command, "/dev/null"]);
        if no_color {
            script.env("NO_COLOR", "1");
        } else {
            script.env_remove("NO_COLOR");
        }
        let output = script.output().expect("script(1) runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let coloured = on_terminal(false);
    assert!(coloured.contains("in flight 10"), "{coloured}");
    assert!(
        coloured.contains("\x1b[36m"),
        "colours by default: {coloured}"
    );
    let plain = on_terminal(true);
    assert!(
        plain.contains("/30 ") && plain.contains(" in flight "),
        "{plain}"
    );
    assert!(plain.contains("/s eta "), "rate and ETA: {plain}");
    assert!(
        !plain.contains("\x1b[36m"),
        "no colour under NO_COLOR: {plain}"
    );
    // --quiet: no bar even on a terminal.
    let mut script = Command::new("script");
    script.args(["-qec", &format!("{command} --quiet"), "/dev/null"]);
    let quiet = String::from_utf8_lossy(&script.output().unwrap().stdout).into_owned();
    assert!(!quiet.contains("in flight"), "{quiet}");
}

#[test]
fn head_requests_succeed_without_a_body_in_every_runner() {
    // The answer to HEAD has GET's headers and no body: there is no echo to check.
    let served = Served::start(&[]);
    for extra in [
        &["--mode", "sequential"][..],
        &["--mode", "threads"],
        &["--mode", "async"],
        &["--http2"],
    ] {
        let mut args = vec!["fetch", "-q", "-X", "HEAD", "--base-url", &served.base_url];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["0", "0.01"]);
        let output = run(&args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{extra:?}: {}{}",
            common::stdout(&output),
            stderr(&output)
        );
    }
}
