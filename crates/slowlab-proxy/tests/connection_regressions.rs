//! Replays, on every `cargo test`, the inputs the proxy's fuzz target keeps as regressions
//! (`fuzz/regressions/proxy_connection/`), plus a few hand-written ones, through the proxy
//! composed as the fuzz target composes it: in front of an in-process `slowlab serve`, with a
//! default rule that answers 503 for a share of requests before the upstream is contacted. No
//! panic anywhere, and every complete request gets a well-formed response.

#[path = "common/composed.rs"]
mod composed;
#[path = "../../slowlab-server/tests/common/one_connection.rs"]
mod one_connection;

use composed::composed_proxy;
use one_connection::{first_inputs, instant_config, kept, replay};

fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut inputs = first_inputs();
    inputs.extend([
        (
            "both Content-Length and Transfer-Encoding".to_owned(),
            b"POST /anything HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\
              Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"
                .to_vec(),
        ),
        (
            "a transfer coding before chunked".to_owned(),
            b"POST /anything HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
              4\r\nabcd\r\n0\r\n\r\n"
                .to_vec(),
        ),
        (
            "Max-Forwards 0".to_owned(),
            b"OPTIONS * HTTP/1.1\r\nHost: t\r\nMax-Forwards: 0\r\n\r\n".to_vec(),
        ),
    ]);
    inputs.extend(kept("proxy_connection"));
    inputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_fuzz_inputs_get_well_formed_answers_through_the_proxy() {
    let upstream = slowlab_server::spawn(instant_config()).await.unwrap();
    let proxy = composed_proxy(&upstream.base_url(), instant_config()).await;
    replay(proxy, inputs()).await;
}
