//! `slowlab serve` as the slow, flaky twin of an API, driven by real clients: `slowlab fetch`
//! and, where installed, curl.

mod common;

use std::process::Command;

use common::{Served, slowlab, stderr, stdout, tool_available};

/// The JSON documents in `text`, one per top-level `{ ... }` block starting a line.
fn json_blocks(text: &str) -> Vec<serde_json::Value> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line == "{" {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line == "}" {
            blocks.push(serde_json::from_str(&current).unwrap());
        }
    }
    blocks
}

#[test]
fn the_echo_shows_what_fetch_sent() {
    let served = Served::start(&[]);
    let output = slowlab()
        .args(["fetch", "--print-bodies", "--quiet", "--mode", "sequential"])
        .args(["-X", "PUT", "-H", "X-Tenant: acme", "--urls", "-"])
        .args(["--base-url", &served.base_url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"/anything/orders/42?x=1&x=2\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let echoes = json_blocks(&stdout(&output));
    assert_eq!(echoes.len(), 1, "{}", stdout(&output));
    let echo = &echoes[0];
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["path"], "/anything/orders/42");
    assert_eq!(echo["query"]["x"], serde_json::json!(["1", "2"]));
    assert_eq!(echo["headers"]["x-tenant"], serde_json::json!(["acme"]));
}

#[test]
fn the_echo_shows_what_curl_sent() {
    if !tool_available("curl") {
        return;
    }
    let served = Served::start(&[]);
    let output = Command::new("curl")
        .args(["-sS", "-X", "POST", "-H", "X-Tenant: acme"])
        .args([
            "-H",
            "Content-Type: text/plain",
            "--data-binary",
            "hello, twin",
        ])
        .arg(format!("{}/anything/x?q=a+b&delay=0.05", served.base_url))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let echo: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body"], "hello, twin");
    assert_eq!(echo["query"]["q"], serde_json::json!(["a b"]));
    assert_eq!(echo["headers"]["x-tenant"], serde_json::json!(["acme"]));
    assert_eq!(
        echo["headers"]["content-type"],
        serde_json::json!(["text/plain"])
    );
}
