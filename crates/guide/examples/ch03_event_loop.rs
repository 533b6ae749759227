//! Chapter 3: the event loop, by hand.
//!
//! First what `#[tokio::main]` expands to (a runtime and `block_on`, which is `asyncio.run`), on
//! one thread and on several. Then an executor of our own: `block_on` that parks its thread until
//! a waker unparks it, a timer future woken by a thread, and two timers joined.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use slowlab_guide::scaled;

/// Wakes the executor by unparking its thread.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread: poll it, and when it is `Pending`, sleep until
/// something calls its waker. Returns the output and how many times it was polled.
fn block_on<F: Future>(future: F) -> (F::Output, usize) {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return (output, polls);
        }
        // Nothing to do until a waker fires. (park may also return early; polling again is harmless.)
        thread::park();
    }
}

/// A timer: the first poll starts a thread that sleeps and then wakes whoever polled last.
struct Timer {
    duration: Duration,
    state: Arc<Mutex<TimerState>>,
}

#[derive(Default)]
struct TimerState {
    started: bool,
    done: bool,
    waker: Option<Waker>,
}

impl Timer {
    fn new(duration: Duration) -> Timer {
        Timer {
            duration,
            state: Arc::default(),
        }
    }

    fn started(&self) -> bool {
        self.state.lock().unwrap().started
    }
}

impl Future for Timer {
    type Output = Duration;

    fn poll(self: std::pin::Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Duration> {
        let mut state = self.state.lock().unwrap();
        if state.done {
            return Poll::Ready(self.duration);
        }
        // Remember the latest waker: the future may have moved to another task since.
        state.waker = Some(context.waker().clone());
        if !state.started {
            state.started = true;
            let (shared, duration) = (Arc::clone(&self.state), self.duration);
            thread::spawn(move || {
                thread::sleep(duration);
                let mut state = shared.lock().unwrap();
                state.done = true;
                if let Some(waker) = state.waker.take() {
                    waker.wake();
                }
            });
        }
        Poll::Pending
    }
}

fn main() {
    // `#[tokio::main] async fn main() { body }` is this: build a runtime, `block_on` the body.
    let one_thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let on = one_thread.block_on(async { tokio::spawn(current_thread_name()).await.unwrap() });
    println!("current-thread runtime: a spawned task ran on {on}");
    let several = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tokio-worker")
        .enable_all()
        .build()
        .unwrap();
    let on = several.block_on(async { tokio::spawn(current_thread_name()).await.unwrap() });
    println!("multi-thread runtime: a spawned task ran on {on}");

    // Our own executor. A future does nothing until polled: no timer thread yet.
    let short = Timer::new(scaled(1.0));
    thread::sleep(scaled(0.5));
    println!("timer created, not polled: started = {}", short.started());

    let long = Timer::new(scaled(2.0));
    let start = Instant::now();
    let ((a, b), polls) = block_on(futures::future::join(short, long));
    println!(
        "hand-written block_on joined timers of {:.3} s and {:.3} s in {:.3} s, polling {polls} times",
        a.as_secs_f64(),
        b.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
}

async fn current_thread_name() -> String {
    thread::current()
        .name()
        .unwrap_or("an unnamed thread")
        .to_owned()
}
