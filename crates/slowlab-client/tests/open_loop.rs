//! Open-loop runs (`--rate`) and runs for a time against a real slow server on an ephemeral
//! loopback port: how many were sent, that each has its outcome and due time, and that a server
//! slower than the arrivals shows up in latency from schedule rather than being hidden.
//!
//! Structure and counts, never speed: the bounds are generous for a noisy machine.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::time::Duration;

use slowlab_client::{Endpoint, Mode, Rate, RequestOptions, Workload, run};
use slowlab_server::{Config, Model, spawn};

fn delays(base_url: &str, delays: &[Duration]) -> Workload {
    Workload::from_delays(Endpoint::parse(base_url).unwrap(), delays)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_200_for_2s_sends_400_each_with_its_outcome_and_due_time() {
    let server = spawn(Config::default()).await.unwrap();
    let workload = delays(&server.base_url(), &[ms(50)])
        .at_rate(Rate::parse("200").unwrap(), Some(Duration::from_secs(2)));
    let report = run(Mode::Async, workload, RequestOptions::default(), |_| {}).await;
    let sent = report.outcomes.len();
    assert!((398..=402).contains(&sent), "{sent} requests sent");
    let indices: BTreeSet<usize> = report.outcomes.iter().map(|o| o.index).collect();
    assert_eq!(indices.len(), sent, "one outcome per request");
    assert_eq!(indices.last(), Some(&(sent - 1)));
    for outcome in &report.outcomes {
        assert!(outcome.is_ok(), "{:?}", outcome.result);
        let due = outcome
            .scheduled
            .expect("every open-loop outcome has its due time");
        let expected = Duration::from_secs_f64(outcome.index as f64 / 200.0);
        assert!(
            due.abs_diff(expected) < Duration::from_micros(10),
            "{due:?}"
        );
        assert!(
            outcome.start >= due,
            "#{} sent before it was due",
            outcome.index
        );
        assert!(outcome.latency() >= ms(50), "the server waited the delay");
    }
    let summary = &report.summary;
    let open = summary.open_loop.as_ref().expect("an open-loop summary");
    assert_eq!(summary.requests, sent);
    assert_eq!(open.send_lag.count as usize, sent);
    assert!((open.target_rate - 200.0).abs() < 0.5, "{open:?}");
    // The schedule alone takes 1.995 s; the last answer 50 ms after that at the soonest.
    assert!(summary.wall >= ms(2040), "{:?}", summary.wall);
    assert!(summary.ideal >= ms(2040) && summary.ideal <= ms(2050));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_slower_than_the_arrivals_shows_in_latency_from_schedule() {
    // Two threads answering 100 ms each: 20 answers a second, against 40 arrivals a second on
    // two keep-alive connections. Requests wait for a connection, and that wait is send lag.
    let config = Config {
        model: Model::Threads(NonZeroUsize::new(2).unwrap()),
        ..Config::default()
    };
    let server = spawn(config).await.unwrap();
    let workload = delays(&server.base_url(), &[ms(100)])
        .at_rate(Rate::parse("40").unwrap(), Some(Duration::from_secs(1)));
    let options = RequestOptions {
        connections: Some(2),
        ..RequestOptions::default()
    };
    let report = run(Mode::Async, workload, options, |_| {}).await;
    assert_eq!(report.outcomes.len(), 40);
    assert!(report.outcomes.iter().all(|o| o.is_ok()));
    let summary = &report.summary;
    let open = summary.open_loop.as_ref().unwrap();
    // Service time stays near the delay; latency from schedule grows by the queue: the last
    // request, due at 0.975 s, goes out near 2 s.
    assert!(
        open.from_schedule.max > summary.latency.max + 0.5,
        "from schedule {:?}, service {:?}",
        open.from_schedule,
        summary.latency
    );
    assert!(open.from_schedule.p50 > summary.latency.p50);
    assert!(open.send_lag.max > 0.5, "{:?}", open.send_lag);
    assert!(open.fell_behind);
    assert!(open.achieved_rate < 0.99 * open.target_rate, "{open:?}");
    // Little's law: at most two in flight, against 40/s × 0.1 s = 4 expected.
    assert!((open.expected_in_flight - 4.0).abs() < 0.2, "{open:?}");
    assert!(summary.peak_concurrency <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_over_http2_and_with_a_concurrency_cap() {
    let server = spawn(Config::default()).await.unwrap();
    for options in [
        RequestOptions {
            http2: true,
            ..RequestOptions::default()
        },
        RequestOptions {
            http2: true,
            concurrency: Some(3),
            ..RequestOptions::default()
        },
        RequestOptions {
            concurrency: Some(3),
            ..RequestOptions::default()
        },
    ] {
        let workload = delays(&server.base_url(), &[ms(20), ms(60)])
            .at_rate(Rate::parse("100").unwrap(), Some(ms(500)));
        let report = run(Mode::Async, workload, options, |_| {}).await;
        assert_eq!(report.outcomes.len(), 50, "{options:?}");
        for outcome in &report.outcomes {
            assert!(outcome.is_ok(), "{options:?}: {:?}", outcome.result);
            assert!(outcome.start >= outcome.scheduled.unwrap(), "{options:?}");
        }
        if options.concurrency == Some(3) {
            assert!(report.summary.peak_concurrency <= 3, "{options:?}");
        }
        // The delays alternate, request by request, round the list.
        let long = report.outcomes.iter().filter(|o| o.index % 2 == 1);
        assert!(long.clone().all(|o| o.latency() >= ms(60)), "{options:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_for_a_time_stops_starting_at_the_end() {
    let server = spawn(Config::default()).await.unwrap();
    let workload = delays(&server.base_url(), &[ms(50)]).for_duration(ms(600));
    let options = RequestOptions {
        concurrency: Some(2),
        ..RequestOptions::default()
    };
    let report = run(Mode::Async, workload, options, |_| {}).await;
    let sent = report.outcomes.len();
    // Two at a time, 50 ms each, for 0.6 s: about 24; far fewer or more means the end was missed.
    assert!((8..=26).contains(&sent), "{sent}");
    assert_eq!(
        report.workload.targets.len(),
        sent,
        "the report holds what was sent"
    );
    assert!(report.outcomes.iter().all(|o| o.is_ok()));
    assert!(
        report.outcomes.iter().all(|o| o.start < ms(600)),
        "none starts after the end"
    );
    assert!(report.summary.open_loop.is_none());
    assert_eq!(report.summary.requests, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_of_an_open_loop_run_keeps_its_places_in_the_whole_schedule() {
    let server = spawn(Config::default()).await.unwrap();
    let spec = "1/2".parse().unwrap();
    let workload = delays(&server.base_url(), &[ms(0)])
        .at_rate(Rate::parse("100").unwrap(), Some(ms(400)))
        .into_shard(spec);
    let report = run(Mode::Async, workload, RequestOptions::default(), |_| {}).await;
    // Shard 1 of 2 of 40 arrivals: the odd ones, each due at its whole-run place.
    assert_eq!(report.outcomes.len(), 20);
    for outcome in &report.outcomes {
        let whole = 2 * outcome.index + 1;
        let expected = Duration::from_secs_f64(whole as f64 / 100.0);
        let due = outcome.scheduled.unwrap();
        assert!(
            due.abs_diff(expected) < Duration::from_micros(10),
            "#{whole}: {due:?}"
        );
        assert!(outcome.start >= due);
    }
    let open = report.summary.open_loop.unwrap();
    assert!((open.target_rate - 50.0).abs() < 0.5, "{open:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_at_the_end_that_time_out_are_counted_as_cut_off() {
    let server = spawn(Config::default()).await.unwrap();
    // One at a time for 0.8 s: /0, then /1 timed out at 0.5 s (before the end: not cut off),
    // /0, then /1 from about 0.5 s, still in flight at 0.8 s and timed out at about 1 s.
    let workload = delays(&server.base_url(), &[ms(0), ms(1000)]).for_duration(ms(800));
    let options = RequestOptions {
        concurrency: Some(1),
        timeout: Some(ms(500)),
        ..RequestOptions::default()
    };
    let report = run(Mode::Async, workload, options, |_| {}).await;
    let summary = &report.summary;
    assert_eq!(summary.requests, 4, "{:?}", report.outcomes);
    assert_eq!(summary.errors_of(slowlab_client::ErrorKind::Timeout), 2);
    assert_eq!(summary.cut_off, 1, "{summary:?}");
}
