//! One shard of a workload split over several processes (`fetch --shard I/N`).
//!
//! Request k of the whole workload belongs to shard k mod N, so N processes given the same
//! workload and the same N send every request exactly once, whatever the workload's shape, and
//! each shard's requests are spread over the whole workload rather than being its first or last
//! part. A shard's outcomes keep their index in the whole workload ([`Shard::global`]), so the
//! shards' reports merge into the report of one run.

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
    /// Requests in the whole workload, every shard's together.
    pub whole_requests: usize,
    /// [`digest`] of the whole workload: shards of different workloads do not merge.
    pub digest: String,
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
    pub fn into_shard(mut self, spec: ShardSpec) -> Workload {
        let whole_requests = self.targets.len();
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
/// digest of the same billion targets listed.
pub fn digest(workload: &Workload) -> String {
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
    let mut run = |target: &crate::workload::Target, length: usize| {
        field(&target.server.to_le_bytes());
        field(target.path.as_bytes());
        field(&(length as u64).to_le_bytes());
    };
    if let Some((target, count)) = workload.targets.as_repeated() {
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
