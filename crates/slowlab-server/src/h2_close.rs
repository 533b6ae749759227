//! Why hyper's HTTP/2 connection ended, when the server ended it for something the client sent.
//!
//! hyper reports such an end as an error whose source is the `h2` crate's error: a GOAWAY the
//! server sent (not one it received), with the reason code it gave the client. That code is all
//! there is to tell a flood from a protocol error, so it is what `/metrics` counts.

use std::error::Error as _;

use crate::metrics::CloseReason;

/// The close reason for a connection that ended with `err`, if the server ended it over a frame
/// the client sent; `None` for a client that left, an I/O error, or a GOAWAY the client sent.
pub(crate) fn close_reason(err: &hyper::Error) -> Option<CloseReason> {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            return classify(h2);
        }
        source = cause.source();
    }
    None
}

fn classify(err: &h2::Error) -> Option<CloseReason> {
    if !err.is_go_away() || err.is_remote() {
        return None;
    }
    match err.reason()? {
        h2::Reason::NO_ERROR => None,
        h2::Reason::ENHANCE_YOUR_CALM => Some(CloseReason::H2Flood),
        _ => Some(CloseReason::H2ProtocolError),
    }
}
