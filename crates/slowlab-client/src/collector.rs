//! The one receiver of outcomes: it feeds every sink and guarantees one outcome per request.

use tokio::sync::mpsc::UnboundedReceiver;

use crate::outcome::{ErrorKind, FetchError, Outcome};

/// Receives outcomes until every worker is done, calling `on_outcome` for each as it arrives.
///
/// Returns them in arrival order. A request whose worker ended without reporting (a panic, say) still
/// gets an outcome, of kind `other`, so the count always equals `total`.
pub(crate) async fn collect(
    mut outcomes: UnboundedReceiver<Outcome>,
    total: usize,
    mut on_outcome: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let mut seen = vec![false; total];
    let mut received = Vec::with_capacity(total);
    while let Some(outcome) = outcomes.recv().await {
        match seen.get_mut(outcome.index) {
            Some(slot) if !*slot => *slot = true,
            // Out of range or a second report: a runner bug; keep the first word.
            _ => continue,
        }
        on_outcome(&outcome);
        received.push(outcome);
        if received.len() == total {
            break;
        }
    }
    let end = received.iter().map(|o| o.end).max().unwrap_or_default();
    for (index, _) in seen.iter().enumerate().filter(|(_, seen)| !**seen) {
        let lost = Outcome {
            index,
            start: end,
            end,
            connect: None,
            first_byte: None,
            result: Err(FetchError::new(
                ErrorKind::Other,
                "the worker sending this request ended without reporting",
            )),
        };
        on_outcome(&lost);
        received.push(lost);
    }
    received
}
