//! The `slowlab` binary run as a process: race, serve's lifecycle, fetch's failures.

use std::net::TcpListener;
use std::time::{Duration, Instant};

mod common;

use common::{Served, closed_port, run, stderr, stdout};

#[test]
fn race_reports_sum_max_and_every_mode() {
    let output = run(&["race", "--scale", "0.01", "--output", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let sum = doc["sum_of_delays"].as_f64().unwrap();
    let max = doc["max_delay"].as_f64().unwrap();
    assert!((sum - 0.44).abs() < 1e-9, "sum {sum}");
    assert!((max - 0.09).abs() < 1e-9, "max {max}");

    let runs = doc["runs"].as_array().unwrap();
    let wall = |mode: &str| {
        runs.iter()
            .find(|r| r["mode"] == mode)
            .unwrap_or_else(|| panic!("no {mode} run"))["wall"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(runs.len(), 3, "sequential, threads and async by default");
    for run in runs {
        assert_eq!(run["ok"], 10, "{run}");
    }
    // Sequential cannot beat the sum; async cannot beat the max, and overlaps far below the sum.
    assert!(
        wall("sequential") >= sum,
        "sequential {}",
        wall("sequential")
    );
    assert!(wall("async") >= max, "async {}", wall("async"));
    assert!(wall("async") < sum / 2.0, "async {}", wall("async"));
    // One thread per request: the same overlap as async.
    assert!(wall("threads") >= max, "threads {}", wall("threads"));
    assert!(wall("threads") < sum / 2.0, "threads {}", wall("threads"));
}

#[test]
fn race_runs_only_the_modes_asked_for() {
    let output = run(&[
        "race",
        "--scale",
        "0.01",
        "--modes",
        "async,sequential",
        "--output",
        "json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let modes: Vec<&str> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["async", "sequential"]);
    assert!(doc["speedup"].as_f64().unwrap() > 1.0);
    assert!(doc["threads_speedup"].is_null());
}

#[test]
fn race_text_has_the_table_and_the_timeline() {
    let output = run(&["race", "--scale", "0.005"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("sum 0.22 s, max 0.045 s"), "{text}");
    for needle in [
        "sequential",
        "threads",
        "async",
        "efficiency",
        "speedup",
        "timeline",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    // One timeline row per request and mode.
    assert_eq!(text.matches("  #").count(), 30, "{text}");
}

#[test]
fn serve_drains_in_flight_requests_on_sigterm() {
    let mut served = Served::start(&[]);
    let request = served.get_in_background("/1");
    served.wait_in_flight(1);
    served.terminate();
    let response = request.join().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(r#"{"time_elapsed": 1}"#), "{response}");
    let (status, err) = served.wait(Duration::from_secs(20));
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("all 1 in-flight request finished"), "{err}");
}

#[test]
fn serve_cuts_off_what_outlives_the_drain_timeout() {
    let mut served = Served::start(&["--drain-timeout", "1"]);
    let request = served.get_in_background("/30");
    served.wait_in_flight(1);
    let stopping = Instant::now();
    served.terminate();
    // The server exits on its own (`wait` gives up at 20 s, before the 30 s the request asked
    // for) and only once the drain timeout has run out: it cut the request off, it did not wait
    // for it, and it did not drop it at once either.
    let (status, err) = served.wait(Duration::from_secs(20));
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("1 request was cut off"), "{err}");
    assert!(stopping.elapsed() >= Duration::from_secs(1), "{err}");
    assert_eq!(
        request.join().unwrap(),
        "",
        "a cut-off request gets no answer"
    );
}

#[test]
fn serve_refuses_a_port_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run(&["serve", "--port", &port]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot listen on"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn fetch_against_a_closed_port_says_what_to_check() {
    let base_url = format!("http://127.0.0.1:{}", closed_port());
    for mode in ["async", "sequential"] {
        let output = run(&[
            "fetch",
            "--mode",
            mode,
            "--base-url",
            &base_url,
            "1",
            "2",
            "0.5",
        ]);
        assert_eq!(output.status.code(), Some(1), "{mode}");
        let text = stdout(&output);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "[1, 2, 0.5]", "{mode}");
        // One line per request, each saying what to check.
        let errors: Vec<&&str> = lines
            .iter()
            .filter(|l| l.starts_with("error: request #"))
            .filter(|l| l.contains(&format!("is `slowlab serve` running on {base_url}?")))
            .collect();
        assert_eq!(errors.len(), 3, "{mode}: {text}");
        assert!(stderr(&output).contains("3 of 3 requests failed"), "{mode}");
    }
}

#[test]
fn fetch_prints_bodies_in_completion_order() {
    let mut served = Served::start(&[]);
    let base_url = served.base_url.clone();
    let output = run(&["fetch", "--base-url", &base_url, "0.3", "0", "0.15"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "[0.3, 0, 0.15]");
    assert_eq!(
        &lines[1..4],
        [
            r#"{"time_elapsed": 0}"#,
            r#"{"time_elapsed": 0.15}"#,
            r#"{"time_elapsed": 0.3}"#
        ]
    );
    assert!(lines[4].starts_with("elapsed "), "{text}");
    served.terminate();
    served.wait(Duration::from_secs(20));
}

#[test]
fn fetch_seed_repeats_the_random_list() {
    let base_url = format!("http://127.0.0.1:{}", closed_port());
    let first_line = |seed: &str| {
        let output = run(&["fetch", "--seed", seed, "--base-url", &base_url]);
        stdout(&output).lines().next().unwrap().to_owned()
    };
    let list = first_line("42");
    assert_eq!(list, first_line("42"));
    assert_ne!(list, first_line("43"));
    // Ten whole seconds in [0, 10), printed like the article.
    let numbers: Vec<u64> = list
        .trim_matches(['[', ']'])
        .split(", ")
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 10);
    assert!(numbers.iter().all(|&n| n < 10));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["fetch", "-1"][..],
        &["fetch", "nan"],
        &["race", "--scale", "0"],
        &["serve", "--port", "99999"],
        &["fetch", "--base-url", "ftp://x", "1"],
        &["fetch", "--mode", "sequential", "--concurrency", "3", "1"],
        &["fetch", "--threads", "4", "--mode", "async", "1"],
        &["fetch", "--count", "3", "1"],
        &["fetch", "--http2", "--mode", "threads", "1"],
        &["fetch", "--header", "nocolon", "1"],
        &["fetch", "--concurrency", "0", "1"],
        &["fetch", "--urls", "/nonexistent/urls.txt"],
        &["fetch", "--output", "xml", "1"],
    ] {
        let output = run(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}
