//! What both ceiling servers (server.rs on epoll, uring.rs on io_uring) keep per connection:
//! connections by slot, with a generation per slot, and the answers waiting for their time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Generations wrap at 24 bits: io_uring's user data carries one beside an operation's kind and
/// slot.
pub(crate) const GENERATION_MASK: u32 = 0xff_ffff;

/// Connections by slot, each slot's generation (so that a completion or a timer for a closed
/// connection does not touch its successor), and the free slots.
pub(crate) struct Slots<C> {
    conns: Vec<Option<C>>,
    generations: Vec<u32>,
    free: Vec<usize>,
}

impl<C> Default for Slots<C> {
    fn default() -> Self {
        Slots {
            conns: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<C> Slots<C> {
    /// Keeps `conn` in a free slot; returns the slot, its generation and the connection there.
    pub(crate) fn insert(&mut self, conn: C) -> (usize, u32, &mut C) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.conns.push(None);
                self.generations.push(0);
                self.conns.len() - 1
            }
        };
        let conn = self.conns[slot].insert(conn);
        (slot, self.generations[slot], conn)
    }

    /// Drops the slot's connection, if any, and frees the slot for a new generation.
    pub(crate) fn remove(&mut self, slot: usize) {
        if self.conns[slot].take().is_some() {
            self.generations[slot] = self.generations[slot].wrapping_add(1) & GENERATION_MASK;
            self.free.push(slot);
        }
    }

    /// The slot's current generation.
    pub(crate) fn generation(&self, slot: usize) -> u32 {
        self.generations[slot]
    }

    /// The slot's connection, if it is still the one of `generation`.
    pub(crate) fn get_mut(&mut self, slot: usize, generation: u32) -> Option<&mut C> {
        if self.generations[slot] == generation {
            self.conns[slot].as_mut()
        } else {
            None
        }
    }
}

/// An answer waiting for its time: its deadline, slot, the slot's generation, the wait asked for.
pub(crate) type Timer = (Instant, usize, u32, Duration);

/// The answers waiting for their time, earliest first.
#[derive(Default)]
pub(crate) struct Timers(BinaryHeap<Reverse<Timer>>);

impl Timers {
    /// Schedules the answer to a request of `slot` (of `generation`) that waits `delay` from now.
    pub(crate) fn push(&mut self, slot: usize, generation: u32, delay: Duration) {
        self.0
            .push(Reverse((Instant::now() + delay, slot, generation, delay)));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The earliest deadline.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        self.0.peek().map(|Reverse((at, ..))| *at)
    }

    /// Takes the earliest answer if its deadline is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let Reverse(timer) = *self.0.peek()?;
        (timer.0 <= now).then(|| {
            self.0.pop();
            timer
        })
    }
}
