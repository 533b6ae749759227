//! Serving on several threads (`serve --workers N`): the listeners share one port, the kernel
//! spreads connections over them, and the threads share the connection cap and the drain.

#![cfg(target_os = "linux")]

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slowlab_server::{Config, Stats, bind_reuseport, run_on_threads};
use tokio::sync::oneshot;

mod common;

use common::{blocking, eventually, get};

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[test]
fn the_listeners_share_one_port_and_connections_reach_each() {
    let listeners = bind_reuseport(loopback(), 1024, 2).unwrap();
    let addr = listeners[0].local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    assert_eq!(listeners[1].local_addr().unwrap(), addr);

    // The kernel picks a listener by a hash of each connection's addresses: over 64 connections
    // from 64 source ports, each listener gets some (all on one: a chance of 2^-63).
    let clients: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut accepted = [0_usize; 2];
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepted.iter().sum::<usize>() < clients.len() && Instant::now() < deadline {
        for (count, listener) in accepted.iter_mut().zip(&listeners) {
            while listener.accept().is_ok() {
                *count += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(accepted.iter().sum::<usize>(), 64, "{accepted:?}");
    assert!(accepted.iter().all(|&n| n > 0), "{accepted:?}");
}

/// A server on two threads, stopped by the returned sender.
struct OnThreads {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<slowlab_server::ShutdownReport>>,
}

fn start(config: Config) -> OnThreads {
    let listeners = bind_reuseport(loopback(), 1024, 2).unwrap();
    let addr = listeners[0].local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_on_threads(
        listeners,
        config,
        Arc::clone(&stats),
        async move {
            let _ = stopped.await;
        },
    ));
    OnThreads {
        addr,
        stats,
        stop,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_requests_wait_at_once_and_the_drain_lets_them_finish() {
    let server = start(Config {
        drain_timeout: Duration::from_secs(30),
        ..Config::default()
    });
    let addr = server.addr;
    let requests: Vec<_> = (0..200)
        .map(|_| blocking(move || get(addr, "/1")))
        .map(tokio::spawn)
        .collect();
    assert!(
        eventually(Duration::from_secs(20), || server
            .stats
            .snapshot()
            .in_flight
            == 200)
        .await,
        "never all 200 in flight at once: {:?}",
        server.stats.snapshot()
    );
    // Stopped with all of them in flight: each still gets its answer.
    server.stop.send(()).unwrap();
    let report = server.task.await.unwrap().unwrap();
    assert_eq!(report.in_flight_at_shutdown, 200);
    assert_eq!(report.cut_off, 0);
    for request in requests {
        let answer = request.await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["time_elapsed"], 1);
    }
    // Stopped for good: nothing listens any more.
    assert!(TcpStream::connect(addr).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_counts_every_threads_connections() {
    // One connection at a time across both threads: each request waits 0.2 s, so with a cap
    // per thread two would often be in flight together.
    let server = start(Config {
        max_connections: Some(1),
        ..Config::default()
    });
    let addr = server.addr;
    let requests: Vec<_> = (0..8)
        .map(|_| tokio::spawn(blocking(move || get(addr, "/0.2"))))
        .collect();
    let stats = Arc::clone(&server.stats);
    let watch = tokio::spawn(async move {
        let mut most = 0;
        for _ in 0..400 {
            most = most.max(stats.snapshot().in_flight);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        most
    });
    for request in requests {
        assert_eq!(request.await.unwrap().status, 200);
    }
    assert_eq!(
        watch.await.unwrap(),
        1,
        "more than one connection served at once"
    );
    server.stop.send(()).unwrap();
    assert_eq!(server.task.await.unwrap().unwrap().cut_off, 0);
}

#[tokio::test]
async fn the_blocking_model_is_refused_before_serving() {
    let listeners = bind_reuseport(loopback(), 16, 2).unwrap();
    let err = run_on_threads(
        listeners,
        Config {
            model: slowlab_server::Model::Blocking,
            ..Config::default()
        },
        Arc::new(Stats::default()),
        std::future::pending::<()>(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("--model threads:N"), "{err}");
}
