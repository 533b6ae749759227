//! The one receiver of outcomes: it feeds every sink and guarantees one outcome per request.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::outcome::{ErrorKind, FetchError, Outcome};
use crate::runner::Control;
use crate::summary::Tally;
use crate::workload::Workload;

/// After a cancel, how long requests in flight get to report their own (cancelled) outcome before
/// the collector writes one for them.
const CANCEL_GRACE: Duration = Duration::from_millis(250);

/// What the collector gathered: every outcome counted, and kept when asked.
pub(crate) struct Collected {
    /// In arrival order; empty unless outcomes were kept.
    pub outcomes: Vec<Outcome>,
    /// Every outcome, counted.
    pub tally: Tally,
}

/// Which requests have an outcome: a bit each, the only memory a run needs per request when it
/// keeps no outcomes.
///
/// The bits grow with the highest index seen: a run for a time lists more requests than it will
/// ever send.
struct Seen {
    words: Vec<u64>,
    total: usize,
    count: usize,
}

impl Seen {
    fn new(total: usize) -> Seen {
        Seen {
            words: Vec::new(),
            total,
            count: 0,
        }
    }

    /// Marks `index`; `false` when it is out of range or was marked already.
    fn mark(&mut self, index: usize) -> bool {
        if index >= self.total {
            return false;
        }
        if index / 64 >= self.words.len() {
            self.words.resize(index / 64 + 1, 0);
        }
        let word = &mut self.words[index / 64];
        let bit = 1 << (index % 64);
        if *word & bit != 0 {
            return false;
        }
        *word |= bit;
        self.count += 1;
        true
    }

    /// Whether `index` is marked.
    fn has(&self, index: usize) -> bool {
        self.words
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }
}

/// Receives outcomes until every worker is done, calling `on_outcome` for each as it arrives and
/// counting it; keeps them (in arrival order) when `keep` is set.
///
/// A request whose worker ended without reporting (a panic, say) still gets an outcome, of kind
/// `other`; after a cancel, every request without an outcome gets one of kind `cancelled`. So the
/// count always equals the workload's length.
pub(crate) async fn collect(
    mut outcomes: UnboundedReceiver<Outcome>,
    workload: &Workload,
    keep: bool,
    control: &Control,
    origin: std::time::Instant,
    mut on_outcome: impl FnMut(&Outcome),
) -> Collected {
    let total = workload.targets.len();
    let open_ended = workload.pace.until.is_some();
    let mut seen = Seen::new(total);
    let mut collected = Collected {
        outcomes: Vec::new(),
        tally: Tally::new(),
    };
    if keep && !open_ended {
        // Room for every outcome at once when there is room; otherwise grow as they come.
        let _ = collected.outcomes.try_reserve_exact(total);
    }
    let mut accept = |mut outcome: Outcome, seen: &mut Seen, collected: &mut Collected| {
        if !seen.mark(outcome.index) {
            // Out of range or a second report: a runner bug; keep the first word.
            return;
        }
        if let Some(due) = workload.scheduled_at(outcome.index) {
            // Open loop: the wait before sending counts from when the request was due.
            outcome.scheduled = Some(due);
            outcome.slot_wait = outcome.start.saturating_sub(due);
        }
        on_outcome(&outcome);
        collected.tally.add(workload, &outcome);
        if keep {
            collected.outcomes.push(outcome);
        }
    };
    let mut cancelled = false;
    // Made once: a future per outcome would register with the token and unregister again
    // whenever the channel is empty, which at full speed is nearly every outcome.
    let mut watch = std::pin::pin!(control.watch());
    while seen.count < total {
        tokio::select! {
            biased;
            outcome = outcomes.recv() => match outcome {
                Some(outcome) => accept(outcome, &mut seen, &mut collected),
                None => break,
            },
            () = watch.as_mut(), if !cancelled => {
                cancelled = true;
                let deadline = tokio::time::Instant::now() + CANCEL_GRACE;
                while seen.count < total {
                    match tokio::time::timeout_at(deadline, outcomes.recv()).await {
                        Ok(Some(outcome)) => accept(outcome, &mut seen, &mut collected),
                        Ok(None) | Err(_) => break,
                    }
                }
                break;
            }
        }
    }
    if seen.count < total {
        let now = origin.elapsed();
        let error = if cancelled || control.is_cancelled() {
            FetchError::new(
                ErrorKind::Cancelled,
                "cancelled: the run was interrupted before this request finished",
            )
        } else {
            FetchError::new(
                ErrorKind::Other,
                "the worker sending this request ended without reporting",
            )
        };
        // A run for a time: only the requests some worker took were ever going to be sent.
        let total = if open_ended { control.taken() } else { total };
        let mut index = 0;
        while index < total {
            if seen.words.get(index / 64) == Some(&u64::MAX) {
                index = (index / 64 + 1) * 64; // A word of requests that all reported.
                continue;
            }
            if !seen.has(index) {
                let lost = Outcome::unfinished(index, now, error.clone());
                accept(lost, &mut seen, &mut collected);
            }
            index += 1;
        }
    }
    collected
}
