//! Chapter 7: reading a race. Wall time against the ideal of each way of running the article's
//! ten requests: all at once, and at most three at a time with a `Semaphore` and with
//! `buffer_unordered`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use slowlab_guide::{SlowServer, scaled};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const DELAYS: [f64; 10] = [7.0, 2.0, 6.0, 4.0, 0.0, 9.0, 4.0, 2.0, 5.0, 5.0];
const SLOTS: usize = 3;

async fn get(client: &reqwest::Client, url: String) -> reqwest::Result<()> {
    client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    Ok(())
}

/// The best K slots can do with requests started in order, each in the first slot to free up:
/// which requests each slot runs (by index), and when the busiest slot finishes.
fn greedy_packing(delays: &[Duration], slots: usize) -> (Vec<Vec<usize>>, Duration) {
    let mut free_at = vec![Duration::ZERO; slots];
    let mut packing = vec![Vec::new(); slots];
    for (request, delay) in delays.iter().enumerate() {
        let (slot, _) = (free_at.iter().enumerate())
            .min_by_key(|(_, free)| **free)
            .expect("at least one slot");
        free_at[slot] += *delay;
        packing[slot].push(request);
    }
    (packing, free_at.into_iter().max().unwrap_or_default())
}

fn report(mode: &str, wall: Duration, ideal: Duration) {
    let efficiency = 100.0 * ideal.as_secs_f64() / wall.as_secs_f64();
    println!(
        "{mode:<22} wall {:>7.3} s  ideal {:>7.3} s  efficiency {efficiency:5.1}%",
        wall.as_secs_f64(),
        ideal.as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> reqwest::Result<()> {
    let server = SlowServer::start();
    let client = reqwest::Client::new();
    let delays = DELAYS.map(scaled);
    let urls = DELAYS.map(|seconds| server.delay_url(seconds));
    let max = delays.iter().max().copied().unwrap_or_default();

    // All at once: the ideal is the longest delay, and answers come back sorted by delay.
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for (seconds, url) in DELAYS.into_iter().zip(urls.clone()) {
        let client = client.clone();
        tasks.spawn(async move { get(&client, url).await.map(|()| seconds) });
    }
    let mut order = Vec::new();
    while let Some(done) = tasks.join_next().await {
        order.push(done.expect("no panic")?);
    }
    report("all at once", start.elapsed(), max);
    println!("  answers arrived in the order {order:?}");

    // At most three at a time: take one of three permits, in request order, before spawning;
    // the task gives its permit back when it ends. (Acquiring inside the tasks instead would let
    // the runtime's polling order, not the request order, decide who goes first.)
    let start = Instant::now();
    let permits = Arc::new(Semaphore::new(SLOTS));
    let mut tasks = JoinSet::new();
    for url in urls.clone() {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("never closed");
        let client = client.clone();
        tasks.spawn(async move {
            let _permit = permit;
            get(&client, url).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("no panic")?;
    }
    let (packing, ideal) = greedy_packing(&delays, SLOTS);
    report("Semaphore(3)", start.elapsed(), ideal);
    for (slot, requests) in packing.iter().enumerate() {
        let busy: Duration = requests.iter().map(|&request| delays[request]).sum();
        println!(
            "  slot {} runs requests {requests:?}, busy {:.3} s",
            slot + 1,
            busy.as_secs_f64()
        );
    }

    // The same bound as a stream: no task per request, at most three futures polled at once.
    let start = Instant::now();
    let mut answers = futures::stream::iter(urls)
        .map(|url| get(&client, url))
        .buffer_unordered(SLOTS);
    while let Some(answer) = answers.next().await {
        answer?;
    }
    report("buffer_unordered(3)", start.elapsed(), ideal);
    Ok(())
}
