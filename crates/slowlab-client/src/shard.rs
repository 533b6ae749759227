//! One shard of a workload split over several processes (`fetch --shard I/N`).
//!
//! Request k of the whole workload belongs to shard k mod N, so N processes given the same
//! workload and the same N send every request exactly once, whatever the workload's shape, and
//! each shard's requests are spread over the whole workload rather than being its first or last
//! part. A shard's outcomes keep their index in the whole workload ([`Shard::global`]), so the
//! shards' reports merge into the report of one run.
//!
//! A closed-loop run for a time (`--duration` without `--rate`) has no fixed list to share out:
//! it lists [`OPEN_ENDED`](crate::workload::OPEN_ENDED) requests and sends as many as its time
//! allows. Each shard then keeps the whole cycle of targets, runs for the whole time, and takes
//! its share of the run's concurrency instead ([`ShardSpec::share_of`]); its outcomes' indices
//! (`I + local * N`) stay distinct from every other shard's.

use std::fmt;
use std::str::FromStr;

use crate::workload::{Target, Targets, Workload};

/// Shard `index` of `count` (`I/N`), and what the whole workload was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// I, from 0 to `count - 1` (Kubernetes' `JOB_COMPLETION_INDEX` counts the same way).
    pub index: u32,
    /// N, the number of shards.
    pub count: u32,
    /// Requests in the whole workload, every shard's together ([`OPEN_ENDED`] for a closed-loop
    /// run for a time, which lists more than it sends).
    ///
    /// [`OPEN_ENDED`]: crate::workload::OPEN_ENDED
    pub whole_requests: usize,
    /// [`digest`] of the whole workload: shards of different workloads do not merge.
    pub digest: String,
    /// A closed-loop run for a time: the whole run's concurrency K, which the shards share out
    /// (see [`Shard::concurrency`]).
    pub whole_concurrency: Option<u32>,
}

/// How a closed-loop run for a time shares its concurrency K among its N shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrencyShare {
    /// K, the whole run's `--concurrency`.
    pub whole: u32,
    /// This shard's part of K: the shards' parts add up to K.
    pub share: u32,
}

/// `I/N` as typed, before the workload is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    /// I.
    pub index: u32,
    /// N.
    pub count: u32,
}

impl FromStr for ShardSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<ShardSpec, String> {
        let usage = || {
            format!(
                "{text:?} is not a shard: write I/N with 0 <= I < N, e.g. 0/4 for the first of \
                 four (I counts from 0, like Kubernetes' JOB_COMPLETION_INDEX)"
            )
        };
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let index: u32 = index.trim().parse().map_err(|_| usage())?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        if count == 0 || index >= count {
            return Err(usage());
        }
        Ok(ShardSpec { index, count })
    }
}

impl ShardSpec {
    /// This shard's part of `whole` slots: floor(K / N), plus one for the first K mod N shards,
    /// so the N parts add up to K and differ by one at most. 0 when K < N and I >= K.
    pub fn share_of(&self, whole: u32) -> u32 {
        whole / self.count + u32::from(self.index < whole % self.count)
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The index in the whole workload of this shard's request `local`.
    pub fn global(&self, local: usize) -> u64 {
        u64::from(self.index) + local as u64 * u64::from(self.count)
    }

    /// A closed-loop run for a time: the whole run's concurrency and this shard's share of it.
    pub fn concurrency(&self) -> Option<ConcurrencyShare> {
        let whole = self.whole_concurrency?;
        Some(ConcurrencyShare {
            whole,
            share: self.spec().share_of(whole),
        })
    }

    /// `I/N`.
    pub fn spec(&self) -> ShardSpec {
        ShardSpec {
            index: self.index,
            count: self.count,
        }
    }
}

impl Workload {
    /// Keeps the requests of shard `spec` (request k when k mod N = I), in order, and records
    /// the shard, so that outcomes can be reported by their index in the whole workload.
    ///
    /// A closed-loop run for a time keeps every target (see [`into_shard_with`]).
    ///
    /// [`into_shard_with`]: Workload::into_shard_with
    pub fn into_shard(self, spec: ShardSpec) -> Workload {
        self.into_shard_with(spec, None)
    }

    /// [`into_shard`](Workload::into_shard), for a run whose concurrency is `concurrency` (K,
    /// when limited). A closed-loop run for a time keeps its whole cycle of targets, since each
    /// shard runs for the whole time and sends as many as its share of K allows; the shard
    /// records K and its share ([`ShardSpec::share_of`]), and K is part of the whole workload's
    /// digest. Other runs ignore `concurrency`: each shard applies its own limit.
    pub fn into_shard_with(mut self, spec: ShardSpec, concurrency: Option<u32>) -> Workload {
        let whole_requests = self.targets.len();
        if self.pace.until.is_some() {
            // Iterating the open-ended list would take hours: nothing here does.
            let digest = digest_with(&self, concurrency);
            self.shard = Some(Shard {
                index: spec.index,
                count: spec.count,
                whole_requests,
                digest,
                whole_concurrency: concurrency,
            });
            return self;
        }
        let digest = digest(&self);
        let (index, count) = (spec.index as usize, spec.count as usize);
        self.targets = match self.targets.as_repeated() {
            // Still one target: the shard has every N-th of the requests from the I-th on.
            Some((target, whole)) => {
                Targets::repeated(target.clone(), whole.saturating_sub(index).div_ceil(count))
            }
            None => {
                let mine: Vec<Target> = self
                    .targets
                    .iter()
                    .skip(index)
                    .step_by(count)
                    .cloned()
                    .collect();
                mine.into()
            }
        };
        self.shard = Some(Shard {
            index: spec.index,
            count: spec.count,
            whole_requests,
            digest,
            whole_concurrency: None,
        });
        self
    }

    /// The index in the whole workload of request `local` of this one (the same index when the
    /// workload is not a shard).
    pub fn global_index(&self, local: usize) -> u64 {
        self.shard
            .as_ref()
            .map_or(local as u64, |shard| shard.global(local))
    }

    /// [`digest`] of the whole workload this one is part of.
    pub fn whole_digest(&self) -> String {
        self.shard
            .as_ref()
            .map_or_else(|| digest(self), |shard| shard.digest.clone())
    }
}

/// A SHA-256 of what a workload sends (servers, method, headers, body, pace, and its targets in
/// order), as hex: the same for the same requests on any host. Targets are hashed as runs of the
/// same target, so a `--count` of a billion hashes one run, not a billion targets, and gives the
/// digest of the same billion targets listed. A closed-loop run for a time is hashed as one
/// round of its targets that cycles (its length is in the pace), whatever it lists.
pub fn digest(workload: &Workload) -> String {
    digest_with(workload, None)
}

/// [`digest`], with the concurrency a closed-loop run for a time shares among its shards: runs
/// that differ in it send at different rates, so they are different workloads.
fn digest_with(workload: &Workload, concurrency: Option<u32>) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut field = |bytes: &[u8]| {
        context.update(&(bytes.len() as u64).to_le_bytes());
        context.update(bytes);
    };
    for server in workload.servers() {
        field(server.base_url().as_bytes());
    }
    field(workload.method.as_str().as_bytes());
    for (name, value) in &workload.headers {
        field(name.as_str().as_bytes());
        field(value.as_bytes());
    }
    field(&workload.body);
    field(format!("{:?}", workload.pace).as_bytes());
    let timed = workload.pace.until.is_some();
    if timed {
        // Open-ended: one round, the fact that it cycles, and the concurrency that sends it say
        // it all, in one round's time.
        field(b"cycled");
        field(&concurrency.unwrap_or(0).to_le_bytes());
    }
    let mut run = |target: &crate::workload::Target, length: usize| {
        field(&target.server.to_le_bytes());
        field(target.path.as_bytes());
        field(&(length as u64).to_le_bytes());
    };
    if timed {
        for target in workload.targets.round() {
            run(target, 1);
        }
    } else if let Some((target, count)) = workload.targets.as_repeated() {
        if count > 0 {
            run(target, count);
        }
    } else {
        let mut current: Option<(&crate::workload::Target, usize)> = None;
        for target in &workload.targets {
            match &mut current {
                Some((same, length))
                    if same.server == target.server && same.path == target.path =>
                {
                    *length += 1;
                }
                _ => {
                    if let Some((previous, length)) = current {
                        run(previous, length);
                    }
                    current = Some((target, 1));
                }
            }
        }
        if let Some((last, length)) = current {
            run(last, length);
        }
    }
    context
        .finish()
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::workload::{Endpoint, Target};

    fn workload(n: usize) -> Workload {
        let targets = (0..n)
            .map(|i| Target::delay(Duration::from_millis(i as u64)))
            .collect();
        Workload::new(Endpoint::parse("http://127.0.0.1:1").unwrap(), targets)
    }

    #[test]
    fn shards_cover_every_request_exactly_once() {
        for n in [1, 2, 3, 7, 10] {
            for total in [0, 1, 5, 10, 23] {
                let whole = workload(total);
                let mut seen = vec![0; total];
                for i in 0..n {
                    let shard = whole.clone().into_shard(ShardSpec { index: i, count: n });
                    for (local, target) in shard.targets.iter().enumerate() {
                        let k = shard.global_index(local) as usize;
                        assert_eq!(target, &whole.targets[k]);
                        seen[k] += 1;
                    }
                }
                assert!(
                    seen.iter().all(|&times| times == 1),
                    "{n} shards of {total}"
                );
            }
        }
    }

    #[test]
    fn a_huge_count_is_hashed_as_one_run() {
        // Hashing target by target would take hours; one run takes no time.
        let endpoint = Endpoint::parse("http://127.0.0.1:1").unwrap();
        let huge = Workload::repeat(endpoint, 1_000_000_000_000, Duration::from_secs(1));
        let shard = huge.clone().into_shard(ShardSpec { index: 3, count: 4 });
        assert_eq!(shard.whole_digest(), digest(&huge));
    }

    #[test]
    fn a_repeated_target_stays_one_target_in_each_shard() {
        let endpoint = Endpoint::parse("http://127.0.0.1:1").unwrap();
        let delay = Duration::from_millis(5);
        for total in [0, 1, 5, 23] {
            let repeated = Workload::repeat(endpoint.clone(), total, delay);
            let listed = Workload::from_delays(endpoint.clone(), &vec![delay; total]);
            assert_eq!(digest(&repeated), digest(&listed));
            for n in [1, 3, 7] {
                for i in 0..n {
                    let spec = ShardSpec { index: i, count: n };
                    let a = repeated.clone().into_shard(spec);
                    let b = listed.clone().into_shard(spec);
                    assert!(a.targets.as_repeated().is_some(), "{i}/{n} of {total}");
                    assert_eq!(a, b, "{i}/{n} of {total}");
                }
            }
        }
    }

    #[test]
    fn every_shard_knows_the_whole_workload() {
        let whole = workload(10);
        let a = whole.clone().into_shard("0/3".parse().unwrap());
        let b = whole.clone().into_shard("2/3".parse().unwrap());
        assert_eq!(a.whole_digest(), digest(&whole));
        assert_eq!(b.whole_digest(), a.whole_digest());
        assert_ne!(digest(&workload(11)), digest(&whole));
        let mut with_body = whole.clone();
        with_body.body = bytes::Bytes::from_static(b"{}");
        assert_ne!(digest(&with_body), digest(&whole));
        assert_eq!(a.shard.as_ref().unwrap().whole_requests, 10);
        assert_eq!(b.targets.len(), 3);
    }

    #[test]
    fn concurrency_shares_add_up_and_differ_by_one_at_most() {
        for n in 1..=7u32 {
            for k in 0..=20u32 {
                let shares: Vec<u32> = (0..n)
                    .map(|i| ShardSpec { index: i, count: n }.share_of(k))
                    .collect();
                assert_eq!(shares.iter().sum::<u32>(), k, "{k} over {n}");
                let (low, high) = (shares.iter().min(), shares.iter().max());
                assert!(
                    high.unwrap() - low.unwrap() <= 1,
                    "{k} over {n}: {shares:?}"
                );
                assert!(
                    shares.windows(2).all(|w| w[0] >= w[1]),
                    "first shards first"
                );
            }
        }
        assert_eq!(ShardSpec { index: 2, count: 3 }.share_of(2), 0);
    }

    #[test]
    fn a_closed_loop_run_for_a_time_shards_without_iterating_its_targets() {
        let endpoint = Endpoint::parse("http://127.0.0.1:1").unwrap();
        let round = [1, 2, 3].map(Duration::from_millis);
        let timed = |round: &[Duration], secs: u64| {
            Workload::from_delays(endpoint.clone(), round).for_duration(Duration::from_secs(secs))
        };
        let whole = timed(&round, 30);
        assert_eq!(whole.targets.len(), crate::workload::OPEN_ENDED);
        // Both shards keep the whole cycle, agree on the digest, and split K = 5 as 3 + 2.
        let a = whole
            .clone()
            .into_shard_with("0/2".parse().unwrap(), Some(5));
        let b = whole
            .clone()
            .into_shard_with("1/2".parse().unwrap(), Some(5));
        // (Compared by round and length: comparing every target would take minutes.)
        assert_eq!(a.targets.round(), whole.targets.round());
        assert_eq!(a.targets.len(), whole.targets.len());
        assert_eq!(a.whole_digest(), b.whole_digest());
        let share = |w: &Workload| w.shard.as_ref().unwrap().concurrency().unwrap();
        assert_eq!(share(&a), ConcurrencyShare { whole: 5, share: 3 });
        assert_eq!(share(&b), ConcurrencyShare { whole: 5, share: 2 });
        // Outcome indices of the two shards never meet.
        assert_eq!((a.global_index(7), b.global_index(7)), (14, 15));
        // Another total, time or round is another workload.
        let digest_of = |w: Workload, k| w.into_shard_with("0/2".parse().unwrap(), Some(k));
        let of = |w: Workload, k| digest_of(w, k).whole_digest();
        assert_ne!(of(whole.clone(), 6), a.whole_digest());
        assert_ne!(of(timed(&round, 31), 5), a.whole_digest());
        assert_ne!(of(timed(&round[..2], 30), 5), a.whole_digest());
        // What the run sent, truncated, still has the digest of what it listed.
        assert_eq!(digest(&whole.truncated(4)), digest(&whole));
        // One target repeated open-endedly is the same case.
        let one = timed(&round[..1], 30);
        let shard = one.clone().into_shard_with("1/3".parse().unwrap(), Some(3));
        assert_eq!(shard.targets.len(), crate::workload::OPEN_ENDED);
        assert_eq!(share(&shard).share, 1);
    }

    #[test]
    fn bad_shards_are_refused() {
        for text in ["", "1", "3/3", "0/0", "-1/2", "a/b", "1/2/3", "4/2"] {
            assert!(text.parse::<ShardSpec>().is_err(), "{text}");
        }
        assert_eq!(
            "1/4".parse::<ShardSpec>().unwrap(),
            ShardSpec { index: 1, count: 4 }
        );
    }
}
