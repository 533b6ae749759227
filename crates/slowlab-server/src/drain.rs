//! The drain on shutdown: every open connection is told to finish what it has in flight and
//! close, and those still open when the drain's time is up are cut off.
//!
//! One watch channel carries the drain's [`Phase`] to every connection. A connection being served
//! hears it through its watchdog (see [`crate::watch`]), which asks hyper for a graceful shutdown
//! when the drain begins and ends the connection when it is cut off; a connection still being set
//! up (its first bytes, its TLS handshake) has nothing in flight and ends as the drain begins. So
//! the accept loop keeps no record of its connections: no set to insert each into and take each
//! out of. If the server goes away without a drain (its future dropped), every connection hears
//! that as a cut.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::rt::bounds::Http2ServerConnExec;
use hyper::rt::{Read, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::HttpService;
use tokio::sync::watch;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the server is in its life, as its connections see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Serving,
    /// Finish the requests in flight, take no more, close.
    Draining,
    /// Close now.
    CutOff,
}

/// The sending side, kept by the accept loop.
#[derive(Debug)]
pub(crate) struct Drain {
    phase: watch::Sender<Phase>,
}

/// What each connection holds.
#[derive(Debug, Clone)]
pub(crate) struct DrainWatch {
    phase: watch::Receiver<Phase>,
}

impl Drain {
    pub(crate) fn new() -> Drain {
        Drain {
            phase: watch::Sender::new(Phase::Serving),
        }
    }

    /// A watch for one more connection.
    pub(crate) fn watch(&self) -> DrainWatch {
        DrainWatch {
            phase: self.phase.subscribe(),
        }
    }

    /// Begins the drain and waits until every connection has closed or `timeout` has passed;
    /// says whether all closed in time. Those still open stay open until [`Drain::cut_off`].
    pub(crate) async fn run(&self, timeout: Duration) -> bool {
        // Kept even with no connection to hear it, for one still being set up.
        self.phase.send_replace(Phase::Draining);
        tokio::time::timeout(timeout, self.phase.closed())
            .await
            .is_ok()
    }

    /// Ends every connection still open.
    pub(crate) fn cut_off(self) {
        self.phase.send_replace(Phase::CutOff);
    }
}

impl DrainWatch {
    /// The next phase this watch has not seen: [`Phase::Draining`] or [`Phase::CutOff`] (also
    /// when the server went away). Never resolves while the server is serving.
    pub(crate) async fn next(&mut self) -> Phase {
        match self.phase.changed().await {
            Ok(()) => *self.phase.borrow_and_update(),
            Err(_) => Phase::CutOff,
        }
    }

    /// Runs `work` unless the drain begins first, when it is dropped: for a connection still
    /// being set up, which has nothing in flight to finish.
    pub(crate) async fn unless_draining<F: Future>(&mut self, work: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            output = work => Some(output),
            _ = self.next() => None,
        }
    }
}

/// A connection that can be asked to finish what it has in flight and then close: hyper's, over
/// either protocol.
pub(crate) trait Drainable {
    fn drain(self: Pin<&mut Self>);
}

impl<I, S, B> Drainable for http1::Connection<I, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin + 'static,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    fn drain(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B, E> Drainable for http2::Connection<I, S, E>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin + 'static,
    B: Body + 'static,
    B::Error: Into<BoxError>,
    E: Http2ServerConnExec<S::Future, B>,
{
    fn drain(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// A boxed connection (HTTP/2's, so that HTTP/1.1 tasks stay small).
impl<C: Drainable + ?Sized> Drainable for Pin<Box<C>> {
    fn drain(self: Pin<&mut Self>) {
        self.get_mut().as_mut().drain();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_hear_the_drain_then_the_cut_and_the_drain_waits_for_them() {
        let drain = Drain::new();
        let mut watch = drain.watch();
        let connection = tokio::spawn(async move {
            let first = watch.next().await;
            drop(watch);
            first
        });
        assert!(
            drain.run(Duration::from_secs(30)).await,
            "the only connection closed"
        );
        assert_eq!(connection.await.expect("its task"), Phase::Draining);

        let drain = Drain::new();
        let mut stays = drain.watch();
        assert!(
            !drain.run(Duration::from_millis(50)).await,
            "one stayed open"
        );
        drain.cut_off();
        // Both changes came before it looked: it sees the last.
        assert_eq!(stays.next().await, Phase::CutOff);
    }

    #[tokio::test]
    async fn a_server_gone_without_a_drain_is_a_cut() {
        let drain = Drain::new();
        let mut watch = drain.watch();
        drop(drain);
        assert_eq!(watch.next().await, Phase::CutOff);
    }

    #[tokio::test]
    async fn set_up_is_dropped_once_the_drain_begins() {
        let drain = Drain::new();
        let mut watch = drain.watch();
        assert_eq!(watch.unless_draining(async { 7 }).await, Some(7));
        let setting_up =
            tokio::spawn(async move { watch.unless_draining(std::future::pending::<()>()).await });
        tokio::task::yield_now().await;
        assert!(drain.run(Duration::from_secs(5)).await);
        let outcome = tokio::time::timeout(Duration::from_secs(5), setting_up)
            .await
            .expect("set-up ends when the drain begins")
            .expect("the task");
        assert_eq!(outcome, None);
    }
}
