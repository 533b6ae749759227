//! Replays, on every `cargo test`, the inputs the fuzz targets keep as regressions:
//! `fuzz/regressions/serve_connection/` (plus a few hand-written ones) through a real server (no
//! panic, and every complete request gets a well-formed response), and
//! `fuzz/regressions/parse_request/` through the parser, with the target's own checks.

#[path = "common/one_connection.rs"]
mod one_connection;

use std::sync::atomic::{AtomicU64, Ordering};

use one_connection::{H2_PREFACE, check, exchange, instant_config, kept};
use slowlab_server::spawn;

/// Panics anywhere in this process, server tasks included (tokio catches those).
static PANICS: AtomicU64 = AtomicU64::new(0);

fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut h2 = H2_PREFACE.to_vec();
    h2.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let mut inputs = vec![
        (
            "plain GET".to_owned(),
            b"GET /0 HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
        ),
        (
            "hang, clamped to no wait".to_owned(),
            b"GET /5?fault=hang HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
        ),
        ("h2 preface and SETTINGS".to_owned(), h2),
    ];
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
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        default_hook(info);
    }));
    let server = spawn(instant_config()).await.unwrap();
    let addr = server.addr();
    for (name, input) in inputs() {
        let sent = input.clone();
        let output = tokio::task::spawn_blocking(move || exchange(addr, &sent))
            .await
            .unwrap();
        if let Err(err) = check(&input, &output) {
            panic!("{name}: {err}");
        }
        assert_eq!(
            PANICS.load(Ordering::Relaxed),
            0,
            "{name}: the server panicked"
        );
    }
    assert_eq!(server.stats().in_flight, 0);
}
