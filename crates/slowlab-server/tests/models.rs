//! Handler models as structure, not speed: who waits for whom.

mod common;

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use common::{blocking, get};
use slowlab_server::{Config, Model, spawn};

/// Sends `count` requests for `path` at once; returns each one's end, measured from the start.
async fn ends(config: Config, count: usize, path: &'static str) -> Vec<Duration> {
    let server = spawn(config).await.unwrap();
    let addr = server.addr();
    let start = Instant::now();
    let handles: Vec<_> = (0..count)
        .map(|_| {
            tokio::task::spawn_blocking(move || {
                assert_eq!(get(addr, path).status, 200);
                start.elapsed()
            })
        })
        .collect();
    let mut ends = Vec::new();
    for handle in handles {
        ends.push(handle.await.unwrap());
    }
    ends.sort();
    ends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_model_queues_the_request_beyond_the_pool() {
    let config = Config {
        model: Model::Threads(NonZeroUsize::new(2).unwrap()),
        ..Config::default()
    };
    let ends = ends(config, 3, "/0.3").await;
    // The third could only start its 0.3 s once one of the first two had ended (at 0.3 s or
    // later), so it cannot end before 0.6 s; with a timer per request it would end near 0.3 s.
    assert!(ends[2] >= Duration::from_millis(600), "{ends:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_model_overlaps_every_wait() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let handles: Vec<_> = (0..20)
        .map(|_| tokio::task::spawn_blocking(move || get(addr, "/0.5").status))
        .collect();
    for handle in handles {
        assert_eq!(handle.await.unwrap(), 200);
    }
    assert!(
        server.stats().peak_in_flight >= 15,
        "peak {}",
        server.stats().peak_in_flight
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_model_serves_one_wait_after_another() {
    let config = Config {
        model: Model::Blocking,
        ..Config::default()
    };
    let ends = ends(config, 2, "/0.3").await;
    assert!(ends[1] >= Duration::from_millis(600), "{ends:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_is_shown_in_healthz_and_metrics() {
    let server = spawn(Config {
        model: Model::Threads(NonZeroUsize::new(40).unwrap()),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let health = blocking(move || get(addr, "/healthz")).await;
    assert_eq!(health.status, 200);
    let json = health.json();
    assert_eq!(json["model"], "threads:40");
    assert_eq!(json["status"], "ok");
    assert!(json["version"].is_string());
    assert!(json["uptime_seconds"].is_number());
    assert_eq!(json["in_flight"], 0);
    let metrics = blocking(move || get(addr, "/metrics")).await;
    assert!(
        metrics.body.contains(r#"slowlab_info{model="threads:40""#),
        "{}",
        metrics.body
    );
}
