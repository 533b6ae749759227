//! `fetch --rate` and `--duration` from the command line: what is refused and why, and what a
//! run prints, against a real `slowlab serve`.

mod common;

use std::time::Duration;

use common::{Served, assert_fetch_schema, assert_usage_error, run, stderr, stdout};

#[test]
fn bad_rates_and_durations_are_usage_errors_that_say_why() {
    for (args, says) in [
        (&["fetch", "--rate", "0", "1"][..], "a rate of 0"),
        (&["fetch", "--rate=-5", "1"], "out of range"),
        (&["fetch", "--rate", "nan", "1"], "out of range"),
        (
            &["fetch", "--rate", "100,1000", "1"],
            "stage \"1000\" has no duration",
        ),
        (&["fetch", "--rate", "100,1000@x", "1"], "stage \"1000@x\""),
        (
            &["fetch", "--rate", "5", "--mode", "sequential", "1"],
            "closed loop by nature",
        ),
        (
            &["fetch", "--rate", "5", "--threads", "2", "1"],
            "--rate applies to --mode async",
        ),
        (
            &["fetch", "--duration", "1s", "--count", "3"],
            "cannot be used with",
        ),
        (&["fetch", "--duration", "1s", "1"], "needs --concurrency K"),
        // clap drops `--delay requires --count` once --duration (which conflicts with --count)
        // is given; --delay used to be ignored silently and random delays sent instead.
        (
            &[
                "fetch",
                "--duration",
                "1s",
                "--concurrency",
                "2",
                "--delay",
                "0.05",
            ],
            "--delay 0.05 is the delay of each --count request",
        ),
        (
            &[
                "fetch",
                "--rate",
                "5",
                "--duration",
                "1s",
                "--delay",
                "0.05",
            ],
            "e.g. `slowlab fetch --rate 200 --duration 10s 0.05`",
        ),
        (
            &["fetch", "--duration", "0s", "--rate", "5", "1"],
            "out of range",
        ),
        (
            &["fetch", "--rate", "10000000", "--duration", "60m", "1"],
            "more than the",
        ),
    ] {
        assert_usage_error(args, says);
    }
}

#[test]
fn an_open_loop_run_prints_latency_from_schedule_service_time_and_send_lag() {
    let mut served = Served::start(&[]);
    let base_url = served.base_url.clone();
    let output = run(&[
        "fetch",
        "--base-url",
        &base_url,
        "--rate",
        "40",
        "--duration",
        "1s",
        "-q",
        "0.05",
        "0.1",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("open loop at 40 req/s: 40 requests, delays [0.05, 0.1] s in turn"),
        "{text}"
    );
    assert!(text.contains("requests 40: 40 ok, 0 failed"), "{text}");
    for label in [
        "rate      target 40.0 req/s",
        "latency   p50",
        "(from schedule)",
        "service   p50",
        "send lag  p50",
        "in flight expected 3.0",
    ] {
        assert!(text.contains(label), "{label}: {text}");
    }
    served.terminate();
    served.wait(Duration::from_secs(20));
}

#[test]
fn open_loop_and_timed_runs_write_their_schedule_in_json_ndjson_and_csv() {
    let mut served = Served::start(&[]);
    let base_url = served.base_url.clone();
    let fetch = |extra: &[&str]| {
        let mut args = vec!["fetch", "--base-url", &base_url, "-q"];
        args.extend_from_slice(extra);
        let output = run(&args);
        assert!(output.status.success(), "{extra:?}: {}", stderr(&output));
        stdout(&output)
    };
    let ramp = ["--rate", "20,60@0.5s", "-o", "json", "0", "0.05"];
    let doc: serde_json::Value = serde_json::from_str(&fetch(&ramp)).unwrap();
    assert_fetch_schema(&doc);
    // (20 + 60) / 2 × 0.5 s = 20 requests.
    assert_eq!(doc["workload"]["requests"], 20);
    assert_eq!(doc["workload"]["rate"]["start"], 20.0);
    assert_eq!(doc["workload"]["rate"]["stages"][0]["over"], 0.5);
    assert_eq!(doc["summary"]["open_loop"]["rate"], "20,60@0.5s");
    let outcomes = doc["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 20);
    for outcome in outcomes {
        let due = outcome["scheduled_at"].as_f64().unwrap();
        let lag = outcome["send_lag"].as_f64().unwrap();
        let start = outcome["start"].as_f64().unwrap();
        assert!((start - due - lag).abs() < 1e-5, "{outcome}");
    }

    let timed = [
        "--duration",
        "0.3s",
        "--concurrency",
        "2",
        "-o",
        "json",
        "0.05",
    ];
    let doc: serde_json::Value = serde_json::from_str(&fetch(&timed)).unwrap();
    assert_fetch_schema(&doc);
    assert_eq!(doc["workload"]["duration"], 0.3);
    assert!(doc["summary"]["open_loop"].is_null());
    assert!(
        doc["outcomes"][0].get("scheduled_at").is_none(),
        "closed loop: no due time"
    );

    let lines = fetch(&["--rate", "50", "--duration", "0.2s", "-o", "ndjson", "0"]);
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert!(first["scheduled_at"].is_f64(), "{first}");
    let csv = fetch(&["--rate", "50", "--duration", "0.2s", "-o", "csv", "0"]);
    let header = csv.lines().next().unwrap();
    assert!(header.ends_with(",url,scheduled_at,send_lag"), "{header}");
    assert_eq!(csv.lines().count(), 11, "a header and 10 rows: {csv}");
    served.terminate();
    served.wait(Duration::from_secs(20));
}
