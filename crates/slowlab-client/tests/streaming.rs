//! Runs that keep no outcomes: every outcome still reaches the callback and the summary, and the
//! summary is the one a run that kept them would give.

use std::time::Duration;

use slowlab_client::{Endpoint, ErrorKind, Mode, RequestOptions, Workload, run};
use slowlab_server::{Config, spawn};

const REQUESTS: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_outcomes_the_summary_counts_every_request() {
    let server = spawn(Config::default()).await.unwrap();
    let endpoint = Endpoint::parse(&server.base_url()).unwrap();
    let workload = Workload::repeat(endpoint, REQUESTS, Duration::ZERO);
    for (mode, concurrency, http2) in [
        (Mode::Async, Some(20), false),
        (Mode::Async, Some(20), true),
        (Mode::Threads, None, false),
    ] {
        let options = RequestOptions {
            concurrency,
            http2,
            threads: Some(8),
            keep_bodies: false,
            keep_outcomes: false,
            ..RequestOptions::default()
        };
        let mut seen = vec![0u8; REQUESTS];
        let report = run(mode, workload.clone(), options, |outcome| {
            seen[outcome.index] += 1;
        })
        .await;
        let what = format!("{mode:?} http2 {http2}");
        assert!(seen.iter().all(|&n| n == 1), "{what}: one callback each");
        assert!(report.outcomes.is_empty(), "{what}: none kept");
        assert!(!report.outcomes_kept);
        let s = &report.summary;
        assert_eq!(
            (s.requests, s.ok, s.failed),
            (REQUESTS, REQUESTS, 0),
            "{what}"
        );
        assert_eq!(s.latency.count, REQUESTS as u64, "{what}");
        assert_eq!(s.overhead.count, REQUESTS as u64, "{what}");
        // The peak comes from the runners' gauge: never above the limit, and reached.
        let limit = if mode == Mode::Threads { 8 } else { 20 };
        assert!(
            (1..=limit).contains(&s.peak_concurrency),
            "{what}: {}",
            s.peak_concurrency
        );
        assert_eq!(s.slots, Some(limit), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_outcomes_failures_are_counted_by_kind() {
    // Nothing listens on port 1.
    let endpoint = Endpoint::parse("http://127.0.0.1:1").unwrap();
    let workload = Workload::repeat(endpoint, 300, Duration::ZERO);
    let kept = run(
        Mode::Async,
        workload.clone(),
        RequestOptions::default(),
        |_| {},
    )
    .await;
    let options = RequestOptions {
        keep_outcomes: false,
        ..RequestOptions::default()
    };
    let streamed = run(Mode::Async, workload, options, |_| {}).await;
    for report in [&kept, &streamed] {
        assert_eq!(report.summary.failed, 300);
        assert_eq!(report.summary.errors_of(ErrorKind::Refused), 300);
    }
    assert_eq!(kept.outcomes.len(), 300);
    assert_eq!(streamed.summary.errors, kept.summary.errors);
    assert_eq!(streamed.summary.ideal, kept.summary.ideal);
    assert_eq!(streamed.summary.efficiency, kept.summary.efficiency);
}
