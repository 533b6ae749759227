//! The library called with the largest durations there are: nothing may panic, and what cannot
//! be represented saturates.

use std::time::Duration;

use slowlab_client::{
    Endpoint, Mode, Outcome, Reply, RequestOptions, Summary, Target, Workload, run,
};

fn endpoint() -> Endpoint {
    Endpoint::parse("http://127.0.0.1:1").unwrap()
}

#[test]
fn sums_and_ideals_of_huge_delays_saturate() {
    let huge = Duration::MAX;
    let workload = Workload::from_delays(endpoint(), &[huge, huge, huge]);
    assert_eq!(workload.sum_of_delays(), Duration::MAX);
    assert_eq!(
        workload.ideal(Some(1)),
        Duration::MAX,
        "sequential: the sum"
    );
    assert_eq!(workload.ideal(Some(2)), Duration::MAX, "two slots: 2 x MAX");
    assert_eq!(workload.ideal(None), huge);
    assert_eq!(workload.ideal_per_server(Some(2)), Duration::MAX);
    // 1e19 s each, as `fetch --count 3 --delay 1e19 --concurrency 2` asked.
    let large = Duration::from_secs(10_000_000_000_000_000_000);
    let workload = Workload::repeat(endpoint(), 3, large);
    assert_eq!(workload.ideal(Some(2)), Duration::MAX);
    assert_eq!(workload.sum_of_delays(), Duration::MAX);
    assert_eq!(workload.max_delay(), large);
}

#[test]
fn a_summary_of_huge_delays_and_times_does_not_panic() {
    let workload = Workload::from_delays(endpoint(), &[Duration::MAX, Duration::MAX]);
    let outcomes: Vec<Outcome> = (0..2)
        .map(|index| Outcome {
            index,
            start: Duration::ZERO,
            end: Duration::MAX,
            scheduled: None,
            slot_wait: Duration::ZERO,
            connect: None,
            first_byte: Some(Duration::MAX),
            status: Some(200),
            bytes: 0,
            result: Ok(Reply {
                status: 200,
                body: bytes::Bytes::new(),
                time_elapsed: Some(f64::MAX),
            }),
        })
        .collect();
    for mode in [Mode::Sequential, Mode::Threads, Mode::Async] {
        for slots in [None, Some(1)] {
            let summary = Summary::with_slots(mode, slots, &workload, &outcomes, Duration::MAX);
            assert_eq!(summary.sum_of_delays, Duration::MAX);
            assert_eq!(summary.ok, 2);
            assert!(summary.latency.max > 1e19, "{:?}", summary.latency);
        }
    }
}

#[test]
fn a_delay_target_of_any_size_has_a_path() {
    // Rounded to the microsecond, as every delay is.
    let target = Target::delay(Duration::MAX);
    let seconds: f64 = target.path[1..].parse().unwrap();
    assert!(
        (seconds - Duration::MAX.as_secs_f64()).abs() <= 1.0,
        "{}",
        target.path
    );
}

/// Timeouts past the end of time mean "no limit" in every runner; the blocking client adds them
/// to `Instant::now()`, which used to panic its thread and fail every request as "ended without
/// reporting".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_past_the_end_of_time_are_no_limit_in_every_runner() {
    let server = slowlab_server::spawn(slowlab_server::Config::default())
        .await
        .unwrap();
    let endpoint = Endpoint::parse(&server.base_url()).unwrap();
    let workload = Workload::repeat(endpoint, 3, Duration::from_millis(10));
    let forever = RequestOptions {
        timeout: Some(Duration::MAX),
        connect_timeout: Duration::MAX,
        ..RequestOptions::default()
    };
    let cases = [
        (Mode::Sequential, forever),
        (Mode::Threads, forever),
        (Mode::Async, forever),
        (
            Mode::Async,
            RequestOptions {
                concurrency: Some(1),
                ..forever
            },
        ),
        (
            Mode::Async,
            RequestOptions {
                http2: true,
                ..forever
            },
        ),
    ];
    for (mode, options) in cases {
        let report = run(mode, workload.clone(), options, |_| {}).await;
        let failures: Vec<_> = report
            .outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().err())
            .collect();
        assert!(failures.is_empty(), "{mode:?} {options:?}: {failures:?}");
        assert_eq!(report.summary.ok, 3);
    }
}
