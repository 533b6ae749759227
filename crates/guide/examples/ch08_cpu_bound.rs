//! Chapter 8: when async does not help. Hashing is work, not waiting: async tasks on one thread
//! take turns, `spawn_blocking` and rayon spread it over cores. And a blocking call hidden in
//! async code, found by the lateness of a ticker that shares its thread.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use slowlab_guide::scale;

const BLOCKS: u64 = 8;

/// Hashes a block's number over and over: pure CPU, nothing to wait for.
fn hash_block(block: u64, rounds: u64) -> u64 {
    let mut value = block;
    for _ in 0..rounds {
        let mut hasher = DefaultHasher::new();
        value.hash(&mut hasher);
        value = hasher.finish();
    }
    value
}

/// Runs `run`, prints how long it took, and returns its output and the seconds.
fn timed<T>(label: &str, run: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let output = run();
    let seconds = start.elapsed().as_secs_f64();
    println!("{label:<40} {seconds:>7.3} s");
    (output, seconds)
}

/// Runs `work` on a current-thread runtime beside a ticker that wants to wake every millisecond,
/// and returns how late the ticker woke at worst: how long the thread was kept from it.
fn worst_lateness<F: Future>(work: impl FnOnce() -> F) -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let done = Arc::new(AtomicBool::new(false));
        let worst_micros = Arc::new(AtomicU64::new(0));
        let ticker = tokio::spawn({
            let (done, worst_micros) = (Arc::clone(&done), Arc::clone(&worst_micros));
            async move {
                while !done.load(Ordering::SeqCst) {
                    let before = Instant::now();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    let late = before.elapsed().saturating_sub(Duration::from_millis(1));
                    worst_micros.fetch_max(late.as_micros() as u64, Ordering::SeqCst);
                }
            }
        });
        tokio::task::yield_now().await; // let the ticker start
        work().await;
        done.store(true, Ordering::SeqCst);
        ticker.await.unwrap();
        Duration::from_micros(worst_micros.load(Ordering::SeqCst))
    })
}

fn main() {
    // About a second of hashing on one core (release build): long enough that a second core's
    // share shows above the noise of starting threads.
    let rounds = (20_000_000.0 * scale()) as u64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("hashing {BLOCKS} blocks of {rounds} rounds each, {cores} cores");

    let (plain, plain_secs): (Vec<u64>, _) = timed("plain loop, one thread", || {
        (0..BLOCKS).map(|block| hash_block(block, rounds)).collect()
    });

    let one_thread = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (joined, _) = timed("async tasks joined on one thread", || {
        let tasks = (0..BLOCKS).map(|block| async move { hash_block(block, rounds) });
        one_thread.block_on(futures::future::join_all(tasks))
    });

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (blocking, blocking_secs) = timed("spawn_blocking, one call per block", || {
        runtime.block_on(async {
            let calls: Vec<_> = (0..BLOCKS)
                .map(|block| tokio::task::spawn_blocking(move || hash_block(block, rounds)))
                .collect();
            let mut digests = Vec::new();
            for call in calls {
                digests.push(call.await.unwrap());
            }
            digests
        })
    });

    let (parallel, rayon_secs): (Vec<u64>, _) = timed("rayon par_iter", || {
        (0..BLOCKS)
            .into_par_iter()
            .map(|block| hash_block(block, rounds))
            .collect()
    });
    let same = plain == joined && plain == blocking && plain == parallel;
    println!("all four computed the same digests: {same}");
    println!(
        "speedup over the plain loop: spawn_blocking {:.2}x, rayon {:.2}x",
        plain_secs / blocking_secs,
        plain_secs / rayon_secs
    );

    // A blocking call hidden in async code stalls everything else on its thread.
    let start = Instant::now();
    let on_loop = worst_lateness(|| async { hash_block(0, rounds / 2) });
    let took = start.elapsed();
    let off_loop = worst_lateness(|| async {
        tokio::task::spawn_blocking(move || hash_block(0, rounds / 2))
            .await
            .unwrap()
    });
    println!(
        "a {:.3} s hash on the event loop kept a 1 ms ticker waiting up to {:.3} s",
        took.as_secs_f64(),
        on_loop.as_secs_f64()
    );
    println!(
        "the same hash in spawn_blocking kept it waiting up to {:.3} s",
        off_loop.as_secs_f64()
    );
}
