//! An HTTP/2 connection that dies mid-run fails only the requests it carried: its worker opens a
//! new connection, or leaves the rest of the queue to the other connections. The servers here are
//! written on the h2 crate's server side, so that one connection of several can be reset.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use slowlab_client::{Endpoint, ErrorKind, Mode, Report, RequestOptions, Target, Workload, run};
use tokio::net::TcpListener;

/// Which connection dies, by the order it was accepted, and after how many streams.
const DOOMED: usize = 1;
const DOOMED_AFTER: usize = 10;

/// How long each answer takes: long enough that streams are in flight when the connection dies.
const ANSWER_AFTER: Duration = Duration::from_millis(20);

/// How connection number [`DOOMED`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doom {
    /// Reset (RST, no GOAWAY); connections accepted later are served.
    Reset,
    /// Reset, and every connection accepted later is closed at once.
    ResetAndRefuse,
    /// A graceful GOAWAY: the streams already open are answered, no new one is accepted.
    GoAway,
}

/// A server (h2c) answering every stream `ok` after [`ANSWER_AFTER`], except that connection
/// number [`DOOMED`] ends as `doom` says once [`DOOMED_AFTER`] streams arrived on it. Returns
/// the address and the number of connections accepted.
async fn server(doom: Doom) -> (SocketAddr, Arc<AtomicUsize>) {
    let refuse_after = doom == Doom::ResetAndRefuse;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let number = counter.fetch_add(1, Ordering::SeqCst);
            if refuse_after && number > DOOMED {
                drop(stream);
                continue;
            }
            let doomed = number == DOOMED;
            if doomed && doom != Doom::GoAway {
                // Dropped with a zero linger, the socket sends a reset rather than a FIN.
                stream.set_zero_linger().unwrap();
            }
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(stream).await else {
                    return;
                };
                let mut streams = 0;
                while let Some(Ok((_request, mut respond))) = connection.accept().await {
                    streams += 1;
                    if doomed && streams == DOOMED_AFTER {
                        if doom != Doom::GoAway {
                            return; // Drops the connection, and with it the socket.
                        }
                        // Refuses new streams; the open ones (this one too) are answered while
                        // the connection is driven to its end.
                        connection.graceful_shutdown();
                    }
                    tokio::spawn(async move {
                        tokio::time::sleep(ANSWER_AFTER).await;
                        let response = http::Response::builder().status(200).body(()).unwrap();
                        if let Ok(mut body) = respond.send_response(response, false) {
                            let _ = body.send_data(Bytes::from_static(b"ok"), true);
                        }
                    });
                }
            });
        }
    });
    (addr, accepted)
}

const REQUESTS: usize = 300;
const CONNECTIONS: usize = 3;
const SLOTS_EACH: usize = 2;

async fn run_against(addr: SocketAddr) -> Report {
    let endpoint = Endpoint::parse(&format!("http://{addr}")).unwrap();
    let workload = Workload::new(endpoint, vec![Target::path("/x"); REQUESTS]);
    let options = RequestOptions {
        http2: true,
        connections: Some(CONNECTIONS),
        concurrency: Some(CONNECTIONS * SLOTS_EACH),
        ..RequestOptions::default()
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        run(Mode::Async, workload, options, |_| {}),
    )
    .await
    .expect("the run ends")
}

/// Only the requests in flight on the dead connection failed, each with a connection error; all
/// the others succeeded.
fn assert_only_the_doomed_streams_failed(report: &Report) {
    let summary = &report.summary;
    assert_eq!(report.outcomes.len(), REQUESTS);
    let failed: Vec<_> = report
        .outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .collect();
    assert!(
        !failed.is_empty(),
        "the reset must have met some requests in flight"
    );
    assert!(
        failed.len() <= SLOTS_EACH + 1,
        "{} failed, but at most the dead connection's {SLOTS_EACH} streams were in flight on \
         it: {:?}",
        failed.len(),
        summary.errors
    );
    for err in failed {
        assert!(
            matches!(err.kind, ErrorKind::Reset | ErrorKind::ClosedEarly),
            "{err:?}"
        );
    }
    assert_eq!(summary.ok + summary.failed, REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_connection_is_replaced_and_only_its_streams_fail() {
    let (addr, accepted) = server(Doom::Reset).await;
    let report = run_against(addr).await;
    assert_only_the_doomed_streams_failed(&report);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        CONNECTIONS + 1,
        "the worker of the dead connection opened one new connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_no_new_connection_opens_the_others_take_the_queue() {
    let (addr, accepted) = server(Doom::ResetAndRefuse).await;
    let report = run_against(addr).await;
    assert_only_the_doomed_streams_failed(&report);
    assert!(
        accepted.load(Ordering::SeqCst) > CONNECTIONS,
        "the worker tried to reconnect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_goaway_nothing_fails_and_a_new_connection_takes_over() {
    let (addr, accepted) = server(Doom::GoAway).await;
    let report = run_against(addr).await;
    let failed: Vec<_> = report
        .outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(report.summary.ok, REQUESTS);
    assert_eq!(accepted.load(Ordering::SeqCst), CONNECTIONS + 1);
}
