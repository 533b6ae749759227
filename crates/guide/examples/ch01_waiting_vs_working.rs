//! Chapter 1: waiting versus working, the cooking metaphor in code.
//!
//! Two timers (eggs and bacon, 2 s each) joined take the longer; awaited in turn they take the
//! sum. CPU work (stirring) joined on one thread takes turns; spawned on a multi-thread runtime
//! it runs side by side.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use slowlab_guide::{scale, scaled};

async fn cook(dish: &str, time: Duration) -> &str {
    tokio::time::sleep(time).await; // waiting: the cook is free meanwhile
    dish
}

/// Busy work, no waiting: hashes numbers for a while. Returns when it started and ended.
fn stir(rounds: u64) -> (Instant, Instant) {
    let start = Instant::now();
    let mut hasher = DefaultHasher::new();
    for round in 0..rounds {
        round.hash(&mut hasher);
    }
    std::hint::black_box(hasher.finish());
    (start, Instant::now())
}

fn overlap(a: (Instant, Instant), b: (Instant, Instant)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

fn main() {
    let eggs = scaled(2.0);
    let bacon = scaled(2.0);
    let one_thread = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();

    // Waiting, joined: both timers run at once, so this takes the longer of the two.
    let start = Instant::now();
    one_thread.block_on(async { tokio::join!(cook("eggs", eggs), cook("bacon", bacon)) });
    let joined = start.elapsed();

    // Waiting, in turn: the second timer starts when the first has rung, so this takes the sum.
    let start = Instant::now();
    one_thread.block_on(async {
        cook("eggs", eggs).await;
        cook("bacon", bacon).await;
    });
    let in_turn = start.elapsed();

    println!(
        "timers: eggs {:.3} s, bacon {:.3} s",
        secs(eggs),
        secs(bacon)
    );
    println!("joined timers took {:.3} s", secs(joined));
    println!("timers in turn took {:.3} s", secs(in_turn));

    // Working, joined on one thread: `join!` only switches at an `.await`, and `stir` has none,
    // so the second pot is stirred after the first.
    let rounds = (10_000_000.0 * scale()) as u64;
    let start = Instant::now();
    let (a, b) =
        one_thread.block_on(async { tokio::join!(async { stir(rounds) }, async { stir(rounds) }) });
    println!(
        "stirring joined on one thread took {:.3} s, overlapped: {}",
        secs(start.elapsed()),
        overlap(a, b)
    );

    // Working, spawned on a multi-thread runtime: each task may run on its own worker thread,
    // and with two free cores the two pots are stirred at the same time.
    let threads = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let start = Instant::now();
    let (a, b) = threads.block_on(async {
        let first = tokio::spawn(async move { stir(rounds) });
        let second = tokio::spawn(async move { stir(rounds) });
        (first.await.unwrap(), second.await.unwrap())
    });
    println!(
        "stirring spawned on two threads took {:.3} s, overlapped: {}",
        secs(start.elapsed()),
        overlap(a, b)
    );
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}
