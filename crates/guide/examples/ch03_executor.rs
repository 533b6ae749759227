//! Chapter 3, part 2: an executor for many tasks, with no runtime crate.
//!
//! A task is a boxed future plus what it needs to be polled again: its waker puts the task back
//! on the executor's queue. `spawn` adds a task, `block_on` runs the queue until the main task is
//! done, and every poll, wake and idle wait goes into a trace that the program prints.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use slowlab_guide::{scale, scaled};

/// A future on the heap: `Box::pin` gives it an address that never changes (see "Why `Pin`").
type BoxedFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One task: its future (`None` once finished) and the queue that its waker puts it back on.
struct Task {
    name: &'static str,
    future: Mutex<Option<BoxedFuture>>,
    queue: Sender<Arc<Task>>,
    trace: Arc<Trace>,
}

impl Wake for Task {
    /// Waking a task is queueing it: the executor polls it when it gets there.
    fn wake(self: Arc<Self>) {
        self.trace.record(format!("wake {}", self.name));
        let queue = self.queue.clone();
        // Once `block_on` has returned nobody reads the queue, and a late wake has nothing to do.
        let _ = queue.send(self);
    }
}

/// What happened, in order, with the time since the start.
struct Trace {
    start: Instant,
    events: Mutex<Vec<(Duration, String)>>,
}

impl Trace {
    fn record(&self, event: String) {
        let at = self.start.elapsed();
        self.events.lock().unwrap().push((at, event));
    }
}

/// The executor: a queue of tasks ready to be polled.
struct Executor {
    ready: Receiver<Arc<Task>>,
    spawner: Spawner,
}

/// A handle that adds tasks to the queue; cheap to clone, so tasks can spawn tasks.
#[derive(Clone)]
struct Spawner {
    queue: Sender<Arc<Task>>,
    trace: Arc<Trace>,
}

impl Spawner {
    /// Starts `future` as a task of its own, and returns a future of its output (a join handle).
    fn spawn<F>(&self, name: &'static str, future: F) -> oneshot::Receiver<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send,
    {
        let (output, handle) = oneshot::channel();
        let task = Arc::new(Task {
            name,
            future: Mutex::new(Some(Box::pin(async move {
                let _ = output.send(future.await);
            }))),
            queue: self.queue.clone(),
            trace: Arc::clone(&self.trace),
        });
        self.trace.record(format!("spawn {name}"));
        self.queue.send(task).expect("the executor owns the queue");
        handle
    }
}

impl Executor {
    fn new() -> Executor {
        let (queue, ready) = mpsc::channel();
        let trace = Arc::new(Trace {
            start: Instant::now(),
            events: Mutex::default(),
        });
        Executor {
            ready,
            spawner: Spawner { queue, trace },
        }
    }

    /// Runs `future` as the main task, and every task it spawns, until the main task is done.
    /// Tasks still unfinished then are dropped, as `asyncio.run` cancels its leftovers.
    fn block_on<F>(self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send,
    {
        let mut main = self.spawner.spawn("main", future);
        loop {
            let task = match self.ready.try_recv() {
                Ok(task) => task,
                Err(_) => {
                    // Nothing is ready: sleep until some waker queues a task.
                    self.spawner.trace.record("idle".to_owned());
                    self.ready.recv().expect("the executor holds a sender")
                }
            };
            let mut slot = task.future.lock().unwrap();
            // A task woken twice before its poll is queued twice, and may be finished by then.
            let Some(future) = slot.as_mut() else {
                continue;
            };
            let waker = Waker::from(Arc::clone(&task));
            let ready = future
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready();
            let outcome = if ready { "Ready" } else { "Pending" };
            self.spawner
                .trace
                .record(format!("poll {} -> {outcome}", task.name));
            if ready {
                *slot = None;
                if let Ok(Some(output)) = main.try_recv() {
                    return output;
                }
            }
        }
    }
}

/// A timer, as in part 1: the first poll starts a thread that sleeps, then wakes the task.
struct Timer {
    duration: Duration,
    state: Arc<Mutex<(bool, Option<Waker>)>>, // (done, the waker of the latest poll)
    started: bool,
}

fn sleep(duration: Duration) -> Timer {
    Timer {
        duration,
        state: Arc::default(),
        started: false,
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().unwrap();
        if state.0 {
            return Poll::Ready(());
        }
        state.1 = Some(context.waker().clone());
        drop(state);
        if !self.started {
            self.started = true;
            let (shared, duration) = (Arc::clone(&self.state), self.duration);
            thread::spawn(move || {
                thread::sleep(duration);
                let mut state = shared.lock().unwrap();
                state.0 = true;
                if let Some(waker) = state.1.take() {
                    waker.wake();
                }
            });
        }
        Poll::Pending
    }
}

fn main() {
    let executor = Executor::new();
    let spawner = executor.spawner.clone();
    let trace = Arc::clone(&spawner.trace);
    let cooked = executor.block_on(async move {
        // Two tasks: each is polled on its own, when its own waker fires.
        let eggs = spawner.spawn("eggs", async {
            sleep(scaled(3.0)).await;
            "eggs"
        });
        let bacon = spawner.spawn("bacon", async {
            sleep(scaled(1.0)).await;
            "bacon"
        });
        // Two futures joined inside the main task: either timer's wake polls the whole of main.
        futures::future::join(sleep(scaled(2.0)), sleep(scaled(4.0))).await;
        (eggs.await.unwrap(), bacon.await.unwrap())
    });
    for (at, event) in trace.events.lock().unwrap().iter() {
        println!("{:5.2} s  {event}", at.as_secs_f64() / scale());
    }
    println!("main returned {cooked:?}");
}
