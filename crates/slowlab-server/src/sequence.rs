//! `slowlab serve --seed K`: one seeded sequence of random draws for the whole server.
//!
//! Each request that draws something (a delay shape, a mix) takes the next seed from the sequence
//! when it is planned, and draws from a generator of its own seeded with it. The same order of
//! arrivals (a sequential client, say) then sees the same delays and the same answers, run after
//! run. A URL's own `seed=` still wins: that draw stays a pure function of the URL.

use std::sync::Mutex;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The server's sequence of per-request seeds.
#[derive(Debug)]
pub(crate) struct Sequence(Mutex<SmallRng>);

impl Sequence {
    /// A sequence starting from `seed`.
    pub(crate) fn new(seed: u64) -> Sequence {
        Sequence(Mutex::new(SmallRng::seed_from_u64(seed)))
    }

    /// The generator for the next request to draw.
    pub(crate) fn next(&self) -> SmallRng {
        let mut source = self.0.lock().unwrap_or_else(|p| p.into_inner());
        SmallRng::seed_from_u64(source.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let (a, b, c) = (Sequence::new(7), Sequence::new(7), Sequence::new(8));
        let draws = |s: &Sequence| (0..5).map(|_| s.next().next_u64()).collect::<Vec<_>>();
        let first = draws(&a);
        assert_eq!(first, draws(&b));
        assert_ne!(first, draws(&c));
    }
}
