//! Fuzzes a whole connection: arbitrary bytes as one client's input (HTTP/1.1, or HTTP/2 when they
//! start with the preface) to the real composed service, on a real server on loopback. The server
//! must not panic (a panic in any thread aborts the fuzzer), and every complete request must get a
//! well-formed response. Delays are clamped to 0, so `/5` and `fault=hang` end at once.
//!
//! Run with `cargo +nightly fuzz run serve_connection` from the repository root. Inputs it crashed
//! on go into `fuzz/regressions/serve_connection/`, replayed by `cargo test`.

#![no_main]

#[path = "../../crates/slowlab-server/tests/common/one_connection.rs"]
mod one_connection;

use std::net::SocketAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use one_connection::{check, exchange, instant_config};

/// The server, started once and kept for every input.
fn server() -> SocketAddr {
    static SERVER: OnceLock<(tokio::runtime::Runtime, slowlab_server::Server)> = OnceLock::new();
    let (_, server) = SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let server = runtime
            .block_on(slowlab_server::spawn(instant_config()))
            .expect("a server on loopback");
        (runtime, server)
    });
    server.addr()
}

fuzz_target!(|data: &[u8]| {
    let output = exchange(server(), data);
    if let Err(err) = check(data, &output) {
        panic!("{err}");
    }
});
