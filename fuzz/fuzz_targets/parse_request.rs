//! Fuzzes the delay endpoint's parser: the path segment and query of `/{seconds}?{options}`.
//!
//! Run with `cargo +nightly fuzz run parse_request` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use slowlab_server::Config;
use slowlab_server::options::plan;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (segment, query) = match text.split_once('?') {
        Some((segment, query)) => (segment, Some(query)),
        None => (text, None),
    };
    let config = Config::default();
    match plan(segment, query, &config) {
        Ok(plan) => assert!(plan.wait <= config.max_delay),
        Err(err) => {
            assert!(err.status().is_client_error());
            assert!(!err.detail().is_empty());
        }
    }
});
