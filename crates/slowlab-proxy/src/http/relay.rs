//! The upstream's response body on its way to the client: streamed frame by frame (never
//! collected), cut off mid-body when a rule says `reset`, and counted when it ends.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::BoxError;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use slowlab_server::metrics::Outcome;
use slowlab_server::{InFlight, RequestInfo};

use super::Shared;
use super::metrics::ProxyOutcome;

/// Why a relayed body ended early, as the error the client's connection sees.
#[derive(Debug, thiserror::Error)]
pub enum Cut {
    /// A rule's `fault=reset` (or `truncate`) cut the body on purpose.
    #[error("rule {0:?} cut the response body on purpose")]
    Rule(String),
    /// The upstream's body broke off.
    #[error("the upstream's response body broke off: {0}")]
    Upstream(BoxError),
}

/// The request's counts, settled once when its body ends (or is dropped).
pub(super) struct Tally {
    pub(super) shared: Arc<Shared>,
    pub(super) rule: Option<String>,
    pub(super) status: u16,
    pub(super) outcome: ProxyOutcome,
    /// The request log's notes on the request, when `--log-format` is on.
    pub(super) log: Option<Box<RequestInfo>>,
    pub(super) _in_flight: InFlight,
}

impl Tally {
    pub(super) fn settle(self, outcome: ProxyOutcome) {
        let server_outcome = match outcome {
            ProxyOutcome::Cancelled => Outcome::Cancelled,
            ProxyOutcome::InjectedFault | ProxyOutcome::UpstreamReset => Outcome::Fault,
            ProxyOutcome::Rejected => Outcome::Rejected,
            _ => Outcome::Ok,
        };
        self.shared
            .stats
            .metrics()
            .count(self.status, server_outcome);
        self.shared.metrics.count(self.rule.as_deref(), outcome);
        if let Some(log) = &self.log {
            // No status reached the client when it left first or a fault replaced the answer.
            let sent =
                matches!(server_outcome, Outcome::Ok | Outcome::Rejected).then_some(self.status);
            log.write(sent, server_outcome, None);
        }
    }
}

pin_project_lite::pin_project! {
    /// `inner`, relayed; cut with an error after `cut_at` bytes if set.
    pub struct Relay<B> {
        #[pin]
        inner: B,
        cut_at: Option<u64>,
        sent: u64,
        // Empty from the start: such a body may never be polled.
        empty: bool,
        tally: Option<Tally>,
    }

    impl<B> PinnedDrop for Relay<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(tally) = this.tally.take() {
                // An empty body may never be polled; anything else dropped before its end means
                // the client went away.
                let outcome = if this.cut_at.is_none() && *this.empty {
                    tally.outcome
                } else {
                    ProxyOutcome::Cancelled
                };
                tally.settle(outcome);
            }
        }
    }
}

impl<B: Body> Relay<B> {
    /// Relays `inner`, settling `tally` at its end; cut after `cut_at` bytes if given.
    pub(super) fn new(inner: B, cut_at: Option<u64>, tally: Tally) -> Relay<B> {
        Relay {
            empty: inner.is_end_stream(),
            inner,
            cut_at,
            sent: 0,
            tally: Some(tally),
        }
    }
}

impl<B> Body for Relay<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Cut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Cut>>> {
        let mut this = self.project();
        if let Some(cut_at) = *this.cut_at
            && *this.sent >= cut_at
        {
            let tally = this.tally.take();
            let rule = tally
                .as_ref()
                .and_then(|t| t.rule.clone())
                .unwrap_or_default();
            if let Some(tally) = tally {
                tally.settle(ProxyOutcome::InjectedFault);
            }
            return Poll::Ready(Some(Err(Cut::Rule(rule))));
        }
        match ready!(this.inner.as_mut().poll_frame(cx)) {
            Some(Ok(mut frame)) => {
                if let Some(data) = frame.data_mut() {
                    if let Some(cut_at) = *this.cut_at {
                        let room = cut_at.saturating_sub(*this.sent);
                        if (data.len() as u64) > room {
                            data.truncate(usize::try_from(room).unwrap_or(usize::MAX));
                        }
                    }
                    *this.sent += data.len() as u64;
                }
                // A client reading a known length may stop polling after the last byte.
                if this.cut_at.is_none()
                    && this.inner.is_end_stream()
                    && let Some(tally) = this.tally.take()
                {
                    let outcome = tally.outcome;
                    tally.settle(outcome);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => {
                if let Some(tally) = this.tally.take() {
                    tally.settle(ProxyOutcome::UpstreamReset);
                }
                Poll::Ready(Some(Err(Cut::Upstream(err.into()))))
            }
            None => {
                if let Some(tally) = this.tally.take() {
                    let outcome = tally.outcome;
                    tally.settle(outcome);
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.cut_at.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // A cut body keeps the promised length: the cut must look like a break, not a short
        // answer.
        self.inner.size_hint()
    }
}
