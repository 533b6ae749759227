//! `fetch --rate` and `--duration` from the command line: what is refused and why, and what a
//! run prints, against a real `slowlab serve`.

mod common;

use std::time::Duration;

use common::{Served, run, stderr, stdout};

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
        (
            &["fetch", "--duration", "0s", "--rate", "5", "1"],
            "out of range",
        ),
        (
            &["fetch", "--rate", "10000000", "--duration", "60m", "1"],
            "more than the",
        ),
    ] {
        let output = run(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
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
