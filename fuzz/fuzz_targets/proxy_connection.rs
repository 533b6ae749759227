//! Fuzzes a whole connection to `slowlab proxy`: arbitrary bytes as one client's input (HTTP/1.1,
//! or HTTP/2 when they start with the preface) to the composed proxy service, on loopback, in front
//! of an in-process `slowlab serve`. Neither may panic (a panic in any thread aborts the fuzzer),
//! and every complete request must get a well-formed response. A default rule draws 503 for a
//! share of requests before the upstream is contacted, so both paths are taken; delays are
//! clamped to 0.
//!
//! Run with `cargo +nightly fuzz run proxy_connection` from the repository root.

#![no_main]

#[path = "../../crates/slowlab-proxy/tests/common/composed.rs"]
mod composed;
#[path = "../../crates/slowlab-server/tests/common/one_connection.rs"]
mod one_connection;

use std::net::SocketAddr;
use std::sync::OnceLock;

use composed::composed_proxy;
use libfuzzer_sys::fuzz_target;
use one_connection::{check, exchange, instant_config};

/// The upstream and the proxy, started once and kept for every input.
fn proxy() -> SocketAddr {
    static PROXY: OnceLock<(tokio::runtime::Runtime, slowlab_server::Server, SocketAddr)> =
        OnceLock::new();
    let (_, _, addr) = PROXY.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let upstream = runtime
            .block_on(slowlab_server::spawn(instant_config()))
            .expect("an upstream on loopback");
        let addr = runtime.block_on(composed_proxy(&upstream.base_url(), instant_config()));
        (runtime, upstream, addr)
    });
    *addr
}

fuzz_target!(|data: &[u8]| {
    let output = exchange(proxy(), data);
    if let Err(err) = check(data, &output) {
        panic!("{err}");
    }
});
