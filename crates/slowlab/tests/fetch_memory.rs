//! `slowlab fetch` as a process against servers that send too much, and with `--no-outcomes`:
//! memory stays bounded, and the output says what happened.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Output;
use std::thread;

use serde_json::Value;

mod common;

use common::{Served, assert_fetch_schema, run, stderr};

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// A server answering every request with a chunked body that never ends; its address.
fn endless_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let mut chunk = b"4000\r\n".to_vec();
                chunk.extend(std::iter::repeat_n(b'x', 0x4000));
                chunk.extend_from_slice(b"\r\n");
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .is_err()
                {
                    return;
                }
                while stream.write_all(&chunk).is_ok() {}
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn an_endless_body_ends_as_body_too_large_in_every_mode() {
    let base_url = endless_server();
    for mode in ["sequential", "threads", "async"] {
        let output = run(&[
            "fetch",
            "--mode",
            mode,
            "--count",
            "2",
            "--delay",
            "0",
            "--max-response-bytes",
            "100000",
            "--output",
            "json",
            "--quiet",
            "--base-url",
            &base_url,
        ]);
        assert_eq!(output.status.code(), Some(1), "{mode}: {}", stderr(&output));
        let doc = json(&output);
        assert_fetch_schema(&doc);
        for outcome in doc["outcomes"].as_array().unwrap() {
            assert_eq!(
                outcome["error"]["kind"], "body-too-large",
                "{mode}: {outcome}"
            );
            assert!(outcome["bytes"].as_u64().unwrap() <= 100_000 + 65_536);
        }
        assert_eq!(doc["summary"]["errors"][0]["count"], 2, "{mode}");
    }
}

#[test]
fn race_stops_an_endless_body_too() {
    let base_url = endless_server();
    let output = run(&[
        "race",
        "--modes",
        "async",
        "--max-response-bytes",
        "100000",
        "--output",
        "json",
        "--base-url",
        &base_url,
        "0",
        "0",
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("body-too-large"),
        "{text}\n{}",
        stderr(&output)
    );
}

#[test]
fn no_outcomes_leaves_out_the_list_and_keeps_the_summary_exact() {
    let served = Served::start(&["--drain-timeout", "0"]);
    let output = run(&[
        "fetch",
        "--count",
        "500",
        "--delay",
        "0",
        "--concurrency",
        "10",
        "--no-outcomes",
        "--output",
        "json",
        "--quiet",
        "--base-url",
        &served.base_url,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let doc = json(&output);
    assert_fetch_schema(&doc);
    assert!(doc.get("outcomes").is_none(), "no list: {doc}");
    assert!(
        doc["outcomes_omitted"]
            .as_str()
            .unwrap()
            .contains("--no-outcomes")
    );
    let summary = &doc["summary"];
    assert_eq!(summary["requests"], 500);
    assert_eq!(summary["ok"], 500);
    assert_eq!(summary["latency"]["count"], 500);
    let peak = summary["peak_concurrency"].as_u64().unwrap();
    assert!((1..=10).contains(&peak), "{peak}");
}

#[test]
fn shards_without_outcomes_merge_into_a_report_that_says_so() {
    use slowlab::merge::{self, Input};

    let served = Served::start(&["--drain-timeout", "0"]);
    let shard = |spec: &str, keep: bool| {
        let mut args = vec![
            "fetch",
            "--count",
            "40",
            "--delay",
            "0",
            "--shard",
            spec,
            "--output",
            "json",
            "--quiet",
            "--base-url",
            &served.base_url,
        ];
        if !keep {
            args.push("--no-outcomes");
        }
        let output = run(&args);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let doc = json(&output);
        assert_fetch_schema(&doc);
        Input {
            name: spec.to_owned(),
            report: doc,
        }
    };
    // Neither kept outcomes, or only the first did: either way the merge has none, and says so.
    for first_keeps in [false, true] {
        let merged = merge::merge(&[shard("0/2", first_keeps), shard("1/2", false)]).unwrap();
        assert_fetch_schema(&merged);
        assert!(merged.get("outcomes").is_none(), "{merged}");
        assert!(merged["outcomes_omitted"].is_string(), "{merged}");
        assert_eq!(merged["summary"]["requests"], 40);
        assert_eq!(merged["summary"]["ok"], 40);
    }
}
