//! The shape of each runner's run, against a real slow server on an ephemeral loopback port.
//!
//! These tests assert structure (what overlapped, what followed what, what was counted), never speed.

use std::net::TcpListener;
use std::time::Duration;

use slowlab_client::{Endpoint, ErrorKind, Mode, Outcome, RequestOptions, Workload, run};
use slowlab_server::{Config, spawn};

fn workload(base_url: &str, delays: &[Duration]) -> Workload {
    Workload::from_delays(Endpoint::parse(base_url).unwrap(), delays)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_puts_every_request_in_flight_at_once() {
    let server = spawn(Config::default()).await.unwrap();
    let delays = vec![Duration::from_millis(500); 50];
    let mut streamed = 0;
    let report = run(
        Mode::Async,
        workload(&server.base_url(), &delays),
        RequestOptions::default(),
        |_| streamed += 1,
    )
    .await;

    assert_eq!(streamed, 50, "every outcome reaches the callback");
    assert_eq!(report.outcomes.len(), 50);
    assert_eq!(report.summary.ok, 50, "{:?}", report.outcomes[0].result);
    assert!(
        report
            .summary
            .efficiency
            .is_some_and(|e| e > 0.0 && e <= 1.0)
    );
    // Seen from the client: every request started before any ended.
    let last_start = report.outcomes.iter().map(|o| o.start).max().unwrap();
    let first_end = report.outcomes.iter().map(|o| o.end).min().unwrap();
    assert!(
        last_start < first_end,
        "last start {last_start:?} is not before first end {first_end:?}"
    );
    // Seen from the server: all 50 were being handled at the same moment.
    assert_eq!(server.stats().peak_in_flight, 50);
    // Every echo matches what was asked.
    for outcome in &report.outcomes {
        assert_eq!(outcome.result.as_ref().unwrap().time_elapsed, Some(0.5));
    }
    // Structure with a generous bound: concurrent, so nowhere near the 25 s sum.
    assert!(report.summary.wall < Duration::from_secs(12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_never_overlaps() {
    let server = spawn(Config::default()).await.unwrap();
    let delays: Vec<Duration> = [100, 0, 200, 50, 100].map(Duration::from_millis).to_vec();
    let report = run(
        Mode::Sequential,
        workload(&server.base_url(), &delays),
        RequestOptions::default(),
        |_| {},
    )
    .await;

    assert_eq!(report.summary.ok, 5);
    let mut outcomes: Vec<&Outcome> = report.outcomes.iter().collect();
    outcomes.sort_by_key(|o| o.index);
    // Reported in the order sent, each after the one before ended.
    let arrival: Vec<usize> = report.outcomes.iter().map(|o| o.index).collect();
    assert_eq!(arrival, vec![0, 1, 2, 3, 4]);
    for pair in outcomes.windows(2) {
        assert!(pair[1].start >= pair[0].end, "{pair:?}");
    }
    assert_eq!(server.stats().peak_in_flight, 1);
    // The wall time cannot beat the sum of the waits.
    assert!(report.summary.wall >= Duration::from_millis(450));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_outcomes_arrive_in_completion_order() {
    let server = spawn(Config::default()).await.unwrap();
    let delays: Vec<Duration> = [600, 0, 300].map(Duration::from_millis).to_vec();
    let report = run(
        Mode::Async,
        workload(&server.base_url(), &delays),
        RequestOptions::default(),
        |_| {},
    )
    .await;
    let arrival: Vec<usize> = report.outcomes.iter().map(|o| o.index).collect();
    assert_eq!(arrival, vec![1, 2, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_typed_and_counted() {
    // A port that was free a moment ago: nothing listens there now.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base_url = format!("http://127.0.0.1:{port}");
    for mode in [Mode::Sequential, Mode::Async] {
        let report = run(
            mode,
            workload(&base_url, &[Duration::ZERO; 3]),
            RequestOptions::default(),
            |_| {},
        )
        .await;
        assert_eq!(report.outcomes.len(), 3, "{mode:?}");
        assert_eq!(report.summary.failed, 3, "{mode:?}");
        // Failing fast is not "better than ideal": a run with failures has no efficiency.
        assert_eq!(report.summary.efficiency, None, "{mode:?}");
        for outcome in &report.outcomes {
            let err = outcome.result.as_ref().unwrap_err();
            assert_eq!(err.kind, ErrorKind::Refused, "{mode:?}: {err}");
            assert!(err.message.contains(&base_url), "{err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_http_status_outcomes() {
    let server = spawn(Config {
        max_delay: Duration::from_secs(1),
        ..Config::default()
    })
    .await
    .unwrap();
    let delays = [Duration::from_millis(10), Duration::from_secs(5)];
    for mode in [Mode::Sequential, Mode::Async] {
        let report = run(
            mode,
            workload(&server.base_url(), &delays),
            RequestOptions::default(),
            |_| {},
        )
        .await;
        assert_eq!(report.summary.ok, 1, "{mode:?}");
        let failed = report.outcomes.iter().find(|o| o.index == 1).unwrap();
        let err = failed.result.as_ref().unwrap_err();
        assert_eq!(err.kind, ErrorKind::HttpStatus, "{mode:?}");
        assert!(err.message.contains("too_large"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_run_still_yields_one_outcome_per_request() {
    let server = spawn(Config {
        drain_timeout: Duration::ZERO,
        ..Config::default()
    })
    .await
    .unwrap();
    let base_url = server.base_url();
    let mut delays = vec![Duration::from_millis(10); 5];
    delays.extend(vec![Duration::from_secs(30); 5]);
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        server.shutdown().await
    });
    let report = run(
        Mode::Async,
        workload(&base_url, &delays),
        RequestOptions::default(),
        |_| {},
    )
    .await;
    let shutdown = killer.await.unwrap();
    assert_eq!(report.outcomes.len(), 10);
    assert_eq!(shutdown.cut_off, 5);
    assert_eq!(report.summary.ok, 5);
    assert_eq!(report.summary.failed, 5);
    for outcome in report.outcomes.iter().filter(|o| o.index >= 5) {
        let err = outcome.result.as_ref().unwrap_err();
        assert!(
            matches!(err.kind, ErrorKind::ClosedEarly | ErrorKind::Reset),
            "{err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_an_outcome_too() {
    let server = spawn(Config::default()).await.unwrap();
    let options = RequestOptions {
        timeout: Some(Duration::from_millis(200)),
        ..RequestOptions::default()
    };
    for mode in [Mode::Sequential, Mode::Async] {
        let report = run(
            mode,
            workload(&server.base_url(), &[Duration::from_secs(3)]),
            options,
            |_| {},
        )
        .await;
        let err = report.outcomes[0].result.as_ref().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Timeout, "{mode:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_past_their_timeout_end_as_timeouts_and_the_rest_do_not() {
    // One connection, so that the overdue streams wait beside answered ones on one worker,
    // which times them out with one check for all its streams rather than a timer each.
    let server = spawn(Config::default()).await.unwrap();
    let options = RequestOptions {
        timeout: Some(Duration::from_millis(300)),
        http2: true,
        connections: Some(1),
        ..RequestOptions::default()
    };
    let (fast, slow) = (Duration::ZERO, Duration::from_secs(5));
    let report = run(
        Mode::Async,
        workload(&server.base_url(), &[slow, fast, slow, fast, fast, slow]),
        options,
        |_| {},
    )
    .await;
    assert_eq!(report.outcomes.len(), 6);
    for outcome in &report.outcomes {
        let slow = [0, 2, 5].contains(&outcome.index);
        match &outcome.result {
            Err(err) => {
                assert!(slow, "#{}: {err}", outcome.index);
                assert_eq!(err.kind, ErrorKind::Timeout, "#{}: {err}", outcome.index);
            }
            Ok(_) => assert!(!slow, "#{} answered past its timeout", outcome.index),
        }
    }
    assert_eq!(report.summary.ok, 3);
}
