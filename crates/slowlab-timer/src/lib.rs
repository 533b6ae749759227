//! Waits that end at their deadline, not up to 2 ms after it.
//!
//! tokio's timer wheel counts whole milliseconds: it rounds a deadline up to the next tick (0 to
//! 1 ms late), and a parked runtime sleeps whole milliseconds counted from the start of the
//! current tick (another 0 to 1 ms). So on an idle server a tokio sleep ends 0 to 2 ms late,
//! about 1 ms on average, before any scheduling delay.
//!
//! [`sleep_until`] waits on tokio's timer until [`HANDOVER`] before the deadline (from there
//! tokio's rounding and a parked runtime's overshoot alone do not carry it past the deadline; a
//! runtime busy with other tasks still can, and then the wait simply ends late), then hands the
//! last stretch to one thread that sleeps on the operating system's nanosecond timer and wakes
//! each task at its deadline. Only waits in their last [`HANDOVER`] sit on that thread, so it
//! holds a handful of entries however many requests wait, and a waiting request carries nothing
//! more than before.
//!
//! `slowlab serve` ends its delays with it, and `slowlab fetch --rate` sends each request at its
//! due time with it. It reads the operating system's clock, so it does not follow tokio's paused
//! test clock: code tested with a paused clock keeps tokio's own sleeps.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

/// How long before its deadline a wait leaves tokio's timer: tokio's rounding up (under 1 ms)
/// plus a parked runtime's overshoot (under 1 ms).
pub const HANDOVER: Duration = Duration::from_millis(2);

/// Waits `duration`, ending as close to the deadline as the operating system allows.
///
/// A named future rather than an `async fn`: it is kept inside every waiting request, and an
/// `async fn` would keep its argument, its start and its deadline beside the timer.
pub fn sleep(duration: Duration) -> Sleep {
    let start = Instant::now();
    match start.checked_add(duration) {
        Some(deadline) => until(start, deadline),
        // Too far away to be an `Instant` (a huge --max-delay): precision is moot.
        None => Sleep {
            coarse: tokio::time::sleep(duration),
            deadline: start,
            phase: Phase::TokioOnly,
        },
    }
}

/// Waits until `deadline`, ending as close to it as the operating system allows; at once when it
/// has passed. Never ends before it.
pub fn sleep_until(deadline: Instant) -> Sleep {
    until(Instant::now(), deadline)
}

fn until(now: Instant, deadline: Instant) -> Sleep {
    let (coarse_until, phase) = match deadline.checked_sub(HANDOVER) {
        Some(early) if early > now => (early, Phase::Coarse),
        _ => (now, Phase::Fine),
    };
    Sleep {
        coarse: tokio::time::sleep_until(tokio::time::Instant::from_std(coarse_until)),
        deadline,
        phase,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`sleep`] and [`sleep_until`].
    pub struct Sleep {
        // tokio's timer: up to `HANDOVER` before the deadline, or for the whole wait when the
        // timer thread is not used.
        #[pin]
        coarse: tokio::time::Sleep,
        deadline: Instant,
        phase: Phase,
    }
}

/// Where a [`Sleep`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// On tokio's timer, until `HANDOVER` before the deadline.
    Coarse,
    /// The last stretch, on the timer thread.
    Fine,
    /// On tokio's timer until the end: the deadline is too far away to be an `Instant`, or no
    /// timer thread could be started.
    TokioOnly,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if *this.phase == Phase::Coarse {
            ready!(this.coarse.as_mut().poll(cx));
            *this.phase = Phase::Fine;
        }
        if *this.phase == Phase::Fine {
            match timer() {
                Some(timer) => {
                    return Pin::new(&mut Until {
                        deadline: *this.deadline,
                        timer,
                    })
                    .poll(cx);
                }
                // No timer thread could be started: the rest on tokio's timer.
                None => {
                    let deadline = tokio::time::Instant::from_std(*this.deadline);
                    this.coarse.as_mut().reset(deadline);
                    *this.phase = Phase::TokioOnly;
                }
            }
        }
        this.coarse.poll(cx)
    }
}

/// The last stretch of a wait, on the timer thread.
struct Until {
    deadline: Instant,
    timer: &'static Timer,
}

impl Future for Until {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        // Polled again before the deadline (the task was woken for something else): a second
        // entry is harmless, it only wakes the task once more.
        self.timer.add(self.deadline, cx.waker().clone());
        Poll::Pending
    }
}

/// A waker due at a deadline; the heap's top is the earliest.
struct Entry {
    deadline: Instant,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.deadline == other.deadline
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap.
        other.deadline.cmp(&self.deadline)
    }
}

/// The wakers waiting for their deadline, and the thread that wakes them.
struct Timer {
    due: Mutex<BinaryHeap<Entry>>,
    earlier: Condvar,
}

impl Timer {
    fn lock(&self) -> MutexGuard<'_, BinaryHeap<Entry>> {
        self.due.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, deadline: Instant, waker: Waker) {
        let mut due = self.lock();
        let earliest = due.peek().is_none_or(|top| deadline < top.deadline);
        due.push(Entry { deadline, waker });
        drop(due);
        if earliest {
            self.earlier.notify_one();
        }
    }

    /// The timer thread: wake what is due, sleep until the next deadline or an earlier entry.
    fn run(&self) {
        let mut woken = Vec::new();
        let mut due = self.lock();
        loop {
            let now = Instant::now();
            while let Some(top) = due.peek()
                && top.deadline <= now
            {
                if let Some(entry) = due.pop() {
                    woken.push(entry.waker);
                }
            }
            if !woken.is_empty() {
                drop(due);
                woken.drain(..).for_each(Waker::wake);
                due = self.lock();
                continue;
            }
            due = match due.peek().map(|top| top.deadline - now) {
                None => self
                    .earlier
                    .wait(due)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(left) => {
                    self.earlier
                        .wait_timeout(due, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

/// The process's timer thread, started on first use; `None` if it could not be started.
fn timer() -> Option<&'static Timer> {
    static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
    *TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            due: Mutex::new(BinaryHeap::new()),
            earlier: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("slowlab-timer".into())
            .spawn(move || timer.run())
            .ok()
            .map(|_| timer)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn never_ends_early() {
        for millis in [0, 1, 2, 3, 7, 25] {
            let duration = Duration::from_millis(millis);
            let start = Instant::now();
            sleep(duration).await;
            assert!(start.elapsed() >= duration, "{millis} ms");
        }
    }

    #[tokio::test]
    async fn many_deadlines_in_any_order() {
        let start = Instant::now();
        let waits: Vec<_> = [9u64, 3, 5, 3, 1, 8, 2]
            .into_iter()
            .map(|millis| {
                tokio::spawn(async move {
                    let duration = Duration::from_millis(millis);
                    sleep(duration).await;
                    (duration, start.elapsed())
                })
            })
            .collect();
        for wait in waits {
            let (duration, elapsed) = wait.await.unwrap();
            assert!(elapsed >= duration);
        }
    }

    #[tokio::test]
    async fn deadlines_in_the_past_end_at_once() {
        // Ready on the first poll: no timer, no wait, whatever the machine's speed.
        let start = Instant::now();
        for deadline in [start - Duration::from_millis(5), start] {
            let mut wait = std::pin::pin!(sleep_until(deadline));
            let first = std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await;
            assert!(first.is_ready(), "{:?} before now", start - deadline);
        }
    }

    #[tokio::test]
    async fn sleep_until_never_ends_early() {
        for millis in [0, 1, 2, 3, 7, 25] {
            let deadline = Instant::now() + Duration::from_millis(millis);
            sleep_until(deadline).await;
            assert!(Instant::now() >= deadline, "{millis} ms");
        }
    }

    #[tokio::test]
    async fn dropped_waits_are_harmless() {
        // Polled once (so it sits on the timer thread), then dropped before its deadline.
        let mut dropped = Box::pin(sleep(HANDOVER));
        let _ = std::future::poll_fn(|cx| Poll::Ready(dropped.as_mut().poll(cx))).await;
        drop(dropped);
        tokio::time::sleep(HANDOVER * 2).await;
        let start = Instant::now();
        sleep(Duration::from_millis(1)).await;
        assert!(start.elapsed() >= Duration::from_millis(1));
    }
}
