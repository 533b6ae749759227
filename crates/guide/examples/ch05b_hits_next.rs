//! Chapter 5b: what a Python developer hits next.
//!
//! Four things every asyncio program does, in tokio: a task of its own (`tokio::spawn`, `async
//! move`), state shared by tasks (`Arc<Mutex<_>>`), a worker pool fed by a channel and answering
//! on one-shot channels, and the first of two (`select!`). The asyncio program beside it,
//! `crates/guide/python/ch05b_hits_next.py`, prints the same lines.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use slowlab_guide::{scale, scaled};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::sleep;

/// Cooks `dish` for `seconds` (the article's seconds, scaled) and returns it.
async fn cook(dish: &'static str, seconds: f64) -> &'static str {
    sleep(scaled(seconds)).await;
    dish
}

/// An order for the worker pool, with the channel its answer goes back on.
struct Order {
    dish: &'static str,
    seconds: f64,
    ordered: Instant,
    reply: oneshot::Sender<String>,
}

/// One thread, like asyncio's loop, so that both programs hand out work in the same order.
/// `tokio::spawn` asks for `Send` all the same: the default runtime has several threads.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    // 1. A task of its own, as `asyncio.create_task`. It may outlive this function's variables,
    //    so it must own what it uses: `async move` moves `dish` into the task.
    let start = Instant::now();
    let dish = String::from("eggs");
    let task = tokio::spawn(async move {
        sleep(scaled(1.0)).await;
        format!("{dish} done")
    });
    let done = task.await.expect("the task does not panic");
    println!("spawn: {done} after {:.1} s", seconds_since(start));

    // 2. State shared by tasks: `Arc` gives each task an owner's handle on one list, `Mutex` lets
    //    one of them in at a time. Each holds the lock for one push, never across an `.await`,
    //    so std's Mutex is the right one.
    let start = Instant::now();
    let cooked = Arc::new(Mutex::new(Vec::new()));
    let mut kitchen = JoinSet::new();
    for (dish, seconds) in [("toast", 3.0), ("eggs", 2.0), ("bacon", 1.0)] {
        let cooked = Arc::clone(&cooked);
        kitchen.spawn(async move {
            let dish = cook(dish, seconds).await;
            cooked.lock().unwrap().push(dish);
        });
    }
    kitchen.join_all().await;
    let cooked = cooked.lock().unwrap().join(", ");
    println!("shared list: {cooked} after {:.1} s", seconds_since(start));

    // 3. A worker pool. Orders go on an mpsc channel (`asyncio.Queue`); each answer comes back
    //    on its order's oneshot channel (an `asyncio.Future`). An mpsc channel has one receiver,
    //    so the workers share it behind tokio's Mutex: a worker holds the lock while it awaits
    //    the next order, and only an async Mutex may be held across an `.await`.
    let (orders, queue) = mpsc::channel::<Order>(8);
    let queue = Arc::new(tokio::sync::Mutex::new(queue));
    for worker in [1, 2] {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move {
            loop {
                // The lock is released at the `;`. (In `while let Some(order) = queue.lock()...`
                // it would be held for the whole loop body, and one worker would cook at a time.)
                let next = queue.lock().await.recv().await;
                // `None`: the channel is closed and empty, the pool's work is over.
                let Some(order) = next else { break };
                let dish = cook(order.dish, order.seconds).await;
                let after = seconds_since(order.ordered);
                let answer =
                    format!("{dish} by worker {worker}, ready {after:.1} s after ordering");
                let _ = order.reply.send(answer); // the customer may have left
            }
        });
    }
    let start = Instant::now();
    let mut answers = Vec::new();
    for (dish, seconds) in [("toast", 3.0), ("eggs", 1.0), ("bacon", 1.0)] {
        let (reply, answer) = oneshot::channel();
        let ordered = Instant::now();
        let order = Order {
            dish,
            seconds,
            ordered,
            reply,
        };
        orders.send(order).await.expect("the workers are running");
        answers.push(answer);
    }
    drop(orders); // no more orders: the workers leave once the queue is empty
    for answer in answers {
        println!("pool: {}", answer.await.expect("a worker answers"));
    }
    println!(
        "pool: 3 orders, 2 workers, all answered after {:.1} s",
        seconds_since(start)
    );

    // 4. The first of two, as `asyncio.wait(..., return_when=FIRST_COMPLETED)`: `select!` polls
    //    both, runs the branch of the first to finish, and drops the other mid-wait.
    let start = Instant::now();
    let first = tokio::select! {
        dish = cook("coffee", 2.0) => dish,
        dish = cook("tea", 1.0) => dish,
    };
    println!(
        "select: {first} first, after {:.1} s, the other stopped",
        seconds_since(start)
    );
}

/// Seconds since `start`, in the article's seconds (unscaled).
fn seconds_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() / scale()
}
