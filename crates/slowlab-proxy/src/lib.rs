//! `slowlab proxy`: put slowlab between a client and the real service it calls.
//!
//! Two modes share serve's accept loop, limits, rules loader, metrics and drain:
//! - [`http`]: a reverse proxy for HTTP/1.1 and h2 that forwards every request upstream and applies
//!   serve's rules (waits, mixes, pacing, faults) before contacting the upstream or after it answers;
//! - [`tcp`]: a byte-level proxy for protocols that are not HTTP, with per-direction effects
//!   (latency, bandwidth, slicing, timeouts, resets, refusing connections).

pub mod http;
mod own_address;
pub mod tcp;
