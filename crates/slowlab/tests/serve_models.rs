//! `slowlab serve` as a process, per handler model: the drain deadline holds in every model,
//! `threads:N` refuses what it cannot honour, and what is in flight is told right on SIGTERM.

#![cfg(unix)]

use std::time::{Duration, Instant};

mod common;

use common::{Served, get, run, stderr};

#[test]
fn sigterm_with_blocking_waits_in_flight_exits_at_the_drain_deadline() {
    let mut served = Served::start(&["--model", "blocking", "--drain-timeout", "1"]);
    // One sleeps on a worker, the other waits for its turn: both in flight.
    let first = served.get_in_background("/30");
    let second = served.get_in_background("/30");
    served.wait_in_flight(2);
    // /healthz still answers while a blocking sleep holds a worker.
    let health = get(&served.addr, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let signalled = Instant::now();
    served.terminate();
    let (exit, stderr) = served.wait(Duration::from_secs(25));
    let took = signalled.elapsed();
    assert!(exit.success(), "{exit:?}");
    // The drain timeout is 1 s; the waits were 30 s. Exiting well before they would have ended
    // means they were cut at the deadline (the bound leaves room for a slow machine).
    assert!(took < Duration::from_secs(10), "exited after {took:?}");
    assert!(
        stderr.contains("stopping; 2 requests in flight"),
        "{stderr}"
    );
    assert!(stderr.contains("2 requests were cut off"), "{stderr}");
    // Neither was answered as if it had waited.
    for answer in [first.join().unwrap(), second.join().unwrap()] {
        assert!(!answer.contains("time_elapsed"), "{answer}");
    }
}

#[test]
fn threads_over_the_most_a_server_runs_is_a_usage_error() {
    let output = run(&["serve", "--port", "0", "--model", "threads:10001"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let text = stderr(&output);
    assert!(text.contains("--model"), "{text}");
    assert!(text.contains("N from 1 to 10000"), "{text}");
}

#[test]
fn sigterm_counts_a_hanging_request_in_flight() {
    let mut served = Served::start(&["--drain-timeout", "1", "--max-delay", "30"]);
    let hung = served.get_in_background("/0?fault=hang");
    served.wait_in_flight(1);
    served.terminate();
    let (exit, stderr) = served.wait(Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}");
    assert!(stderr.contains("stopping; 1 request in flight"), "{stderr}");
    assert!(stderr.contains("1 request was cut off"), "{stderr}");
    assert_eq!(hung.join().unwrap(), "");
}

#[test]
fn timeouts_and_capacity_out_of_range_are_usage_errors() {
    for (flag, value, range) in [
        (
            "--idle-timeout",
            "0",
            "0.001 to 86400 seconds, e.g. --idle-timeout 5",
        ),
        (
            "--write-timeout",
            "86401",
            "0.001 to 86400 seconds, e.g. --write-timeout 10",
        ),
        (
            "--max-in-flight",
            "0",
            "1 to 1000000000 requests, e.g. --max-in-flight 10000",
        ),
    ] {
        let output = run(&["serve", "--port", "0", flag, value]);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}: {output:?}");
        let text = stderr(&output);
        assert!(text.contains(flag), "{flag} {value}: {text}");
        assert!(text.contains(range), "{flag} {value}: {text}");
    }
}
