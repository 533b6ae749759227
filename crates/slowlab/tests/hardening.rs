//! `fetch` and `race` against hostile arguments, streams and servers: every argument refused with a
//! usage error that says why, an exit status that tells the truth, output that cannot harm the
//! terminal. The hostile servers are written here on raw sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

mod common;

use common::{Served, closed_port, run, slowlab, stderr, stdout};

/// Runs `slowlab ARGS` and asserts a usage error (exit status 2) whose message contains every one
/// of `says`.
fn assert_usage_error(args: &[&str], says: &[&str]) {
    let output = run(args);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
    for needle in says {
        assert!(err.contains(needle), "{args:?}: no {needle:?} in {err}");
    }
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

/// A server on a raw socket that reads each request's head and answers `status` with `body`,
/// then closes.
fn raw_server(status: &str, body: &[u8]) -> String {
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    let response = Arc::new(response);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let response = Arc::clone(&response);
            thread::spawn(move || {
                if read_head(&mut stream) {
                    let _ = stream.write_all(&response);
                }
            });
        }
    });
    base_url
}

/// A server that accepts connections, reads the request and never answers.
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            read_head(&mut stream);
            held.push(stream);
        }
    });
    base_url
}

/// Reads up to the blank line ending a request head; false if the peer went away first.
fn read_head(stream: &mut TcpStream) -> bool {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line == "\r\n" => return true,
            Ok(_) => {}
        }
    }
}

/// `slowlab ARGS` with stdin fed from `input`.
fn run_with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = slowlab()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Item 2: durations that overflowed `Duration` (a panic, or a race of 584,000 years) are refused
/// at parse time, naming the argument and the range; delays use the server's grammar.
#[test]
fn durations_out_of_range_are_usage_errors() {
    assert_usage_error(&["fetch", "1e19", "1e19"], &["[SECONDS]", "digits"]);
    assert_usage_error(
        &["fetch", "--count", "3", "--delay", "1e19", "-c", "2"],
        &["--delay", "digits"],
    );
    assert_usage_error(&["fetch", "--count", "3", "--delay", "1e3"], &["--delay"]);
    assert_usage_error(&["fetch", "86401"], &["0 to 86400 s"]);
    for flag in ["--timeout", "--connect-timeout"] {
        assert_usage_error(
            &["fetch", "--mode", "sequential", flag, "1e19", "1"],
            &[flag, "us, ms, s or m"],
        );
        assert_usage_error(&["fetch", flag, "100000"], &[flag, "at most 86400 s"]);
    }
    assert_usage_error(&["race", "1e19"], &["[SECONDS]"]);
    assert_usage_error(
        &["race", "0.1", "--scale", "1e300"],
        &["--scale", "1000000"],
    );
    assert_usage_error(
        &["race", "1000", "--scale", "100"],
        &["scaled delays must stay within 0 to 86400 s"],
    );
}

/// Item 2: a race expected to last over a minute says so before it starts.
#[test]
fn a_long_race_says_how_long_first() {
    let base_url = format!("http://127.0.0.1:{}", closed_port());
    // Nothing listens, so every request fails at once; the notice comes before any request.
    let output = run(&["race", "--base-url", &base_url, "--modes", "async", "61"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    let notice = err
        .find("this race takes at least 1 min 1 s")
        .unwrap_or_else(|| panic!("no notice in {err}"));
    assert!(notice < err.find("async").unwrap(), "{err}");
    let output = run(&["race", "--base-url", &base_url, "--modes", "async", "59"]);
    assert!(!stderr(&output).contains("this race takes"));
}

/// Item 3: counts whose workload could not be allocated are refused with their range.
#[test]
fn counts_out_of_range_are_usage_errors() {
    assert_usage_error(
        &["fetch", "--count", "18446744073709551615"],
        &["--count", "1..=100000000"],
    );
    assert_usage_error(&["fetch", "--count", "1000000000"], &["--count"]);
    assert_usage_error(
        &["fetch", "--random", "18446744073709551615"],
        &["--random", "1..=1000000"],
    );
    assert_usage_error(&["fetch", "--threads", "100000", "1"], &["--threads"]);
}

/// Item 4: a closed stderr loses the messages, not the exit status (it was a panic, 101).
#[test]
fn a_closed_stderr_keeps_the_exit_status() {
    let served = Served::start(&[]);
    let mut child = slowlab()
        .args(["fetch", "-q", "--base-url", &served.base_url])
        .args(["--fail-on", "p99>1us", "0.1", "0.2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
}

/// Item 5: a port out of range is refused, not replaced by port 80.
#[test]
fn a_port_out_of_range_is_refused() {
    for url in ["http://127.0.0.1:99999", "http://127.0.0.1:0"] {
        assert_usage_error(&["fetch", "--base-url", url, "1"], &["1 to 65535"]);
        assert_usage_error(&["race", "--base-url", url, "1"], &["1 to 65535"]);
    }
    let output = run_with_stdin(&["fetch", "--urls", "-"], "http://127.0.0.1:99999/1\n");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--urls line 1"));
}

/// Item 6: headers the client writes itself are refused, saying why (they hung the blocking
/// runners and broke every HTTP/2 request).
#[test]
fn client_owned_headers_are_refused() {
    for header in [
        "Content-Length: 5",
        "Connection: close",
        "Upgrade: h2c",
        "Transfer-Encoding: chunked",
        "keep-alive: 5",
    ] {
        assert_usage_error(
            &["fetch", "--mode", "sequential", "-H", header, "1"],
            &["the client writes"],
        );
    }
}

/// Item 7: `--seed` without random delays, `--count 0` and a line that is not a URL are refused.
#[test]
fn arguments_that_did_nothing_are_refused() {
    assert_usage_error(&["fetch", "--seed", "1", "1", "2"], &["--seed"]);
    assert_usage_error(&["fetch", "--seed", "1", "--count", "2"], &["--seed"]);
    assert_usage_error(&["fetch", "--count", "0"], &["--count"]);
    assert_usage_error(&["fetch", "--random", "0"], &["--random"]);
    let output = run_with_stdin(&["fetch", "--urls", "-"], "/1\nnot a url\n");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--urls line 2: \"not a url\""),
        "{}",
        stderr(&output)
    );
}

/// Item 8: an output that cannot be written is exit 1; a reader that goes away is not an error in
/// any format.
#[test]
fn unwritable_output_exits_1_and_a_closed_pipe_is_quiet() {
    let served = Served::start(&[]);
    let base = served.base_url.as_str();
    if std::path::Path::new("/dev/full").exists() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let output = slowlab()
            .args(["fetch", "--base-url", base, "0"])
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert!(stderr(&output).contains("cannot write the output"));
    }
    // Far more output than a pipe holds, so the writer meets the closed pipe.
    for format in ["text", "json", "ndjson", "csv"] {
        let mut child = slowlab()
            .args(["fetch", "-q", "--print-bodies", "--base-url", base])
            .args(["--count", "5000", "--delay", "0", "-c", "4", "-o", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 1];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{format}: {err}");
        assert!(!err.contains("cannot write"), "{format}: {err}");
        assert!(
            !err.to_lowercase().contains("broken pipe"),
            "{format}: {err}"
        );
    }
}

/// Item 9: a rule on errors is an error budget; impossible thresholds and unknown units are
/// refused.
#[test]
fn fail_on_errors_is_a_budget() {
    let base_url = format!("http://127.0.0.1:{}", closed_port());
    let fetch = |rules: &str| {
        run(&[
            "fetch",
            "-q",
            "--base-url",
            &base_url,
            "--fail-on",
            rules,
            "1",
            "2",
        ])
    };
    let within = fetch("errors>5");
    assert_eq!(within.status.code(), Some(0), "{}", stderr(&within));
    assert!(stderr(&within).contains("2 of 2 requests failed"));
    assert_eq!(fetch("error-rate>0.5").status.code(), Some(3));
    assert_eq!(fetch("errors>=2").status.code(), Some(3));
    // Without a rule on errors, a failure still fails the run.
    assert_eq!(fetch("p99>1m").status.code(), Some(1));
    assert_usage_error(
        &["fetch", "--fail-on", "error-rate>2", "1"],
        &["can never be crossed"],
    );
    assert_usage_error(&["fetch", "--fail-on", "p99>1h", "1"], &["us, ms, s or m"]);
    assert_usage_error(&["fetch", "--fail-on", "p99>1e3", "1"], &["p99>1e3"]);
}

/// Item 10: a run that asks for no delay has no efficiency, rather than 0%.
#[test]
fn no_delay_means_no_efficiency() {
    let served = Served::start(&[]);
    let base = served.base_url.as_str();
    let text = stdout(&run(&[
        "fetch",
        "--base-url",
        base,
        "--count",
        "3",
        "--delay",
        "0",
    ]));
    assert!(text.contains("efficiency n/a (no delay)"), "{text}");
    let output = run(&[
        "fetch",
        "--base-url",
        base,
        "--count",
        "3",
        "--delay",
        "0",
        "-o",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(doc["summary"]["efficiency"].is_null(), "{doc}");
    assert_usage_error(
        &[
            "fetch",
            "--base-url",
            base,
            "--fail-on",
            "efficiency<0.9",
            "0",
            "0",
        ],
        &["no ideal"],
    );
    let output = run(&["race", "--base-url", base, "--no-timeline", "0", "0", "0"]);
    let text = stdout(&output);
    assert!(!text.contains("0.0%"), "{text}");
    assert!(!text.contains("= 0.00x"), "{text}");
    assert!(text.contains("n/a (no delay)"), "{text}");
}

/// Item 11: no speedup from failed runs, aligned columns, a race timeout, each mode once.
#[test]
fn race_reports_no_speedup_from_failures_and_gives_up_on_silence() {
    let base_url = format!("http://127.0.0.1:{}", closed_port());
    let output = run(&["race", "--base-url", &base_url, "--no-timeline", "0.1"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(!text.contains("speedup: 0."), "{text}");
    assert!(text.contains("speedup: n/a (failures"), "{text}");
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("mode"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(table.len(), 4, "{text}");
    let width = table[0].chars().count();
    assert!(
        table.iter().all(|l| l.chars().count() == width),
        "columns out of line:\n{text}"
    );

    let silent = silent_server();
    let output = run(&[
        "race",
        "--base-url",
        &silent,
        "--modes",
        "async,sequential,async",
        "--timeout",
        "300ms",
        "-o",
        "json",
        "0.1",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("(timeout)"), "{}", stderr(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let modes: Vec<&str> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["async", "sequential"], "each mode once, in order");
    assert!(doc["speedup"].is_null());
}

/// Item 12: control characters from a server never reach the terminal raw.
#[test]
fn control_characters_from_the_server_are_escaped() {
    let base_url = raw_server(
        "500 Internal Server Error",
        b"\x1b]0;pwned\x07\x1b[2J boom\r\n",
    );
    for mode in ["async", "sequential"] {
        let output = run(&["fetch", "--mode", mode, "--base-url", &base_url, "1"]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let all = format!("{}{}", stdout(&output), stderr(&output));
        assert!(!all.contains(['\x1b', '\x07']), "{mode}: {all:?}");
        assert!(all.contains("\\u{1b}]0;pwned\\u{7}"), "{mode}: {all}");
    }
    let ok = raw_server("200 OK", b"\x1b]0;pwned\x07 ok");
    let output = run_with_stdin(&["fetch", "--base-url", &ok, "--urls", "-"], "/x\n");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(!text.contains(['\x1b', '\x07']), "{text:?}");
    assert!(text.contains("\\u{1b}]0;pwned\\u{7} ok"), "{text}");
}

/// `serve` that cannot listen is a runtime failure (exit 1), not a usage error.
#[test]
fn serve_on_a_taken_port_exits_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run(&["serve", "--port", &port]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("cannot listen on"));
}

/// Review items: the printf example shows its `\n`, race's help names no flag race lacks, and one
/// request is "1 request".
#[test]
fn help_text_says_what_it_means() {
    let fetch_help = stdout(&run(&["fetch", "--help"]));
    assert!(
        fetch_help.contains(r"printf 'http://127.0.0.1:8000/1\nhttp://127.0.0.1:8001/2\n'"),
        "{fetch_help}"
    );
    assert!(fetch_help.contains("Over HTTP/1.1 they are a keep-alive"));
    let race_help = stdout(&run(&["race", "--help"]));
    for flag in ["--threads", "--concurrency", "--connections", "--http2"] {
        assert!(!race_help.contains(flag), "race --help names {flag}");
    }
    let base_url = format!("http://127.0.0.1:{}", closed_port());
    let output = run(&["race", "--base-url", &base_url, "--modes", "async", "0.1"]);
    assert!(stdout(&output).starts_with("slowlab race: 1 request,"));
    assert!(stderr(&output).contains("slowlab race: 1 request, async"));
}
