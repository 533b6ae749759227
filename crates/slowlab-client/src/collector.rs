//! The one receiver of outcomes: it feeds every sink and guarantees one outcome per request.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::outcome::{ErrorKind, FetchError, Outcome};
use crate::runner::Control;

/// After a cancel, how long requests in flight get to report their own (cancelled) outcome before
/// the collector writes one for them.
const CANCEL_GRACE: Duration = Duration::from_millis(250);

/// Receives outcomes until every worker is done, calling `on_outcome` for each as it arrives.
///
/// Returns them in arrival order. A request whose worker ended without reporting (a panic, say) still
/// gets an outcome, of kind `other`; after a cancel, every request without an outcome gets one of
/// kind `cancelled`. So the count always equals `total`.
pub(crate) async fn collect(
    mut outcomes: UnboundedReceiver<Outcome>,
    total: usize,
    control: &Control,
    origin: std::time::Instant,
    mut on_outcome: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let mut seen = vec![false; total];
    let mut received = Vec::with_capacity(total);
    let mut accept = |outcome: Outcome, received: &mut Vec<Outcome>| {
        match seen.get_mut(outcome.index) {
            Some(slot) if !*slot => *slot = true,
            // Out of range or a second report: a runner bug; keep the first word.
            _ => return,
        }
        on_outcome(&outcome);
        received.push(outcome);
    };
    let mut cancelled = false;
    while received.len() < total {
        tokio::select! {
            biased;
            outcome = outcomes.recv() => match outcome {
                Some(outcome) => accept(outcome, &mut received),
                None => break,
            },
            () = control.cancelled(), if !cancelled => {
                cancelled = true;
                let deadline = tokio::time::Instant::now() + CANCEL_GRACE;
                while received.len() < total {
                    match tokio::time::timeout_at(deadline, outcomes.recv()).await {
                        Ok(Some(outcome)) => accept(outcome, &mut received),
                        Ok(None) | Err(_) => break,
                    }
                }
                break;
            }
        }
    }
    if received.len() < total {
        let mut seen = vec![false; total];
        for outcome in &received {
            seen[outcome.index] = true;
        }
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
        for (index, _) in seen.iter().enumerate().filter(|(_, seen)| !**seen) {
            let lost = Outcome::unfinished(index, now, error.clone());
            on_outcome(&lost);
            received.push(lost);
        }
    }
    received
}
