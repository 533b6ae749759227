//! Chapter 6: cancellation and timeouts. In Rust a task is cancelled by dropping its future: it
//! is simply never polled again, and whatever it owned is dropped with it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use slowlab_guide::{SlowServer, scaled};

static POTS_ON_STOVE: AtomicU32 = AtomicU32::new(0);

/// Counts a pot on, waits, counts it off. Dropped at the `.await`, the last line never runs.
async fn boil_carelessly(time: Duration) {
    POTS_ON_STOVE.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(time).await;
    POTS_ON_STOVE.fetch_sub(1, Ordering::SeqCst);
}

/// The same, with the clean-up in a guard's `Drop`, which runs however the future ends.
async fn boil_carefully(time: Duration) {
    struct OnStove;
    impl Drop for OnStove {
        fn drop(&mut self) {
            POTS_ON_STOVE.fetch_sub(1, Ordering::SeqCst);
        }
    }
    POTS_ON_STOVE.fetch_add(1, Ordering::SeqCst);
    let _pot = OnStove;
    tokio::time::sleep(time).await;
}

#[tokio::main]
async fn main() -> reqwest::Result<()> {
    let server = SlowServer::start();
    let client = reqwest::Client::new();

    // The waits, scaled like every delay: `{:?}` prints a Duration as `4s` or `200ms`.
    let (long, short) = (scaled(4.0), scaled(1.0));

    // A timeout: the request future is dropped when the deadline passes, connection and all.
    let request = client.get(server.delay_url(4.0)).send();
    match tokio::time::timeout(short, request).await {
        Ok(answer) => println!("timeout: answered first: {}", answer?.status()),
        Err(_) => println!("timeout: gave up on the {long:?} request after {short:?}"),
    }

    // select!: whichever answers first wins; the other request is dropped mid-wait.
    tokio::select! {
        _ = client.get(server.delay_url(1.0)).send() => println!("select: the {short:?} request won"),
        _ = client.get(server.delay_url(4.0)).send() => println!("select: the {long:?} request won"),
    }

    // The server saw both clients leave and stopped waiting for them: its /metrics counts the
    // requests cancelled and none still in flight. (Give it a moment to notice.)
    tokio::time::sleep(Duration::from_millis(250)).await;
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for line in metrics.lines() {
        if line.starts_with("slowlab_requests_total") || line.starts_with("slowlab_in_flight") {
            println!("server: {line}");
        }
    }

    // Care at `.await` points: a future dropped there never runs the code after it.
    let _ = tokio::time::timeout(scaled(0.5), boil_carelessly(scaled(1.0))).await;
    println!(
        "pots on the stove after a careless cancel: {}",
        POTS_ON_STOVE.load(Ordering::SeqCst)
    );
    POTS_ON_STOVE.store(0, Ordering::SeqCst);
    let _ = tokio::time::timeout(scaled(0.5), boil_carefully(scaled(1.0))).await;
    println!(
        "pots on the stove after a careful cancel: {}",
        POTS_ON_STOVE.load(Ordering::SeqCst)
    );
    Ok(())
}
