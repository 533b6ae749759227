//! Replays, on every `cargo test`, the inputs the fuzz targets keep as regressions:
//! `fuzz/regressions/serve_connection/` (plus a few hand-written ones) through a real server (no
//! panic, and every complete request gets a well-formed response), and
//! `fuzz/regressions/parse_request/` through the parser, with the target's own checks.

#[path = "common/one_connection.rs"]
mod one_connection;

use one_connection::{first_inputs, instant_config, kept, replay};
use slowlab_server::spawn;

fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut inputs = first_inputs();
    inputs.push((
        "hang, clamped to no wait".to_owned(),
        b"GET /5?fault=hang HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
    ));
    inputs.extend(kept("serve_connection"));
    inputs
}

#[test]
fn kept_parser_inputs_are_planned_or_refused_with_a_4xx() {
    let config = slowlab_server::Config::default();
    for (name, input) in kept("parse_request") {
        let Ok(text) = std::str::from_utf8(&input) else {
            continue;
        };
        let (segment, query) = match text.split_once('?') {
            Some((segment, query)) => (segment, Some(query)),
            None => (text, None),
        };
        match slowlab_server::options::plan(segment, query, &config) {
            Ok(plan) => assert!(plan.wait <= config.max_delay, "{name}"),
            Err(err) => {
                assert!(err.status().is_client_error(), "{name}");
                assert!(!err.detail().is_empty(), "{name}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_fuzz_inputs_get_well_formed_answers() {
    let server = spawn(instant_config()).await.unwrap();
    replay(server.addr(), inputs()).await;
    assert_eq!(server.stats().in_flight, 0);
}
