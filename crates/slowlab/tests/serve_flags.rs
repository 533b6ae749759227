//! `slowlab serve`'s flags as a process sees them: every numeric flag has a range checked when the
//! command line is parsed (exit 2, naming the flag, the range and an example), the largest values
//! it accepts start a server that works, and `--host` takes names.

#![cfg(unix)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

mod common;

use common::{Served, get, run, stderr};

/// Each flag with a value just outside its range, the range the message must state, and the
/// example it must give.
const OUT_OF_RANGE: &[(&str, &str, &str, &str)] = &[
    // The reproductions of the issue: each once crashed, hung or locked out the server.
    (
        "--max-headers",
        "1000000000000",
        "1 to 10000 headers",
        "--max-headers 50",
    ),
    (
        "--max-headers",
        "1e17",
        "1 to 10000 headers",
        "--max-headers 50",
    ),
    (
        "--max-uri-bytes",
        "4611686018427372520",
        "16 to 65534 bytes",
        "--max-uri-bytes 2048",
    ),
    (
        "--header-read-timeout",
        "1e19",
        "0.001 to 86400 seconds",
        "--header-read-timeout 2",
    ),
    (
        "--max-connections",
        "0",
        "1 to 10000000 connections",
        "--max-connections 1000",
    ),
    (
        "--h2-max-streams",
        "0",
        "1 to 1000000 streams",
        "--h2-max-streams 100000",
    ),
    // The rest of the numeric flags, one past each end.
    (
        "--max-header-bytes",
        "16777217",
        "64 to 16777216 bytes",
        "--max-header-bytes 4096",
    ),
    (
        "--max-headers",
        "0",
        "1 to 10000 headers",
        "--max-headers 50",
    ),
    (
        "--max-uri-bytes",
        "15",
        "16 to 65534 bytes",
        "--max-uri-bytes 2048",
    ),
    (
        "--max-delay",
        "86400.000000001",
        "0 to 86400 seconds",
        "--max-delay 3600",
    ),
    (
        "--max-delay",
        "-1",
        "0 to 86400 seconds",
        "--max-delay 3600",
    ),
    (
        "--drain-timeout",
        "86401",
        "0 to 86400 seconds",
        "--drain-timeout 30",
    ),
    (
        "--header-read-timeout",
        "0",
        "0.001 to 86400 seconds",
        "--header-read-timeout 2",
    ),
    (
        "--max-body-bytes",
        "1099511627777",
        "0 to 1099511627776 bytes",
        "--max-body-bytes 104857600",
    ),
    (
        "--backlog",
        "0",
        "1 to 1048576 connections",
        "--backlog 8192",
    ),
    (
        "--h2-max-streams",
        "4294967296",
        "1 to 1000000 streams",
        "--h2-max-streams 100000",
    ),
];

#[test]
fn out_of_range_flags_are_usage_errors_naming_flag_range_and_example() {
    for (flag, value, range, example) in OUT_OF_RANGE {
        // `--flag=value`, so that `-1` is taken as the value and not as a flag.
        let output = run(&["serve", "--port", "0", &format!("{flag}={value}")]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(flag), "{flag} {value}: {err}");
        assert!(err.contains(range), "{flag} {value}: no {range:?} in {err}");
        assert!(
            err.contains(example),
            "{flag} {value}: no {example:?} in {err}"
        );
        assert!(output.stdout.is_empty(), "{flag} {value}: started serving");
    }
}

#[test]
fn the_largest_accepted_values_start_a_server_that_serves() {
    let mut served = Served::start(&[
        "--max-uri-bytes",
        "65534",
        "--max-header-bytes",
        "16777216",
        "--max-headers",
        "10000",
        "--header-read-timeout",
        "86400",
        "--drain-timeout",
        "0",
        "--max-delay",
        "86400",
        "--max-connections",
        "10000000",
        "--h2-max-streams",
        "1000000",
        "--max-body-bytes",
        "1099511627776",
        "--backlog",
        "1048576",
    ]);
    assert!(get(&served.addr, "/0").starts_with("HTTP/1.1 200"));

    // The longest path the URI limit allows, all minus signs: once a stack overflow per `-`.
    let path = format!("/{}", "-".repeat(65_533));
    let mut stream = TcpStream::connect(&served.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{:.200}", answer);
    assert!(
        answer.contains(r#""error":"not_a_number""#),
        "{:.400}",
        answer
    );

    // 10,000 header lines, the most allowed, are all parsed and accepted; one more is a JSON 431.
    let exchange = |count: usize| {
        let many: String = (2..count).map(|i| format!("X-H{i}: v\r\n")).collect();
        let mut stream = TcpStream::connect(&served.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(
            stream,
            "GET /0 HTTP/1.1\r\nHost: t\r\n{many}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let answer = exchange(10_000);
    assert!(answer.starts_with("HTTP/1.1 200"), "{:.400}", answer);
    let answer = exchange(10_001);
    assert!(answer.starts_with("HTTP/1.1 431"), "{:.400}", answer);
    assert!(
        answer.contains(r#""error":"headers_too_large""#),
        "{:.400}",
        answer
    );

    assert!(get(&served.addr, "/healthz").starts_with("HTTP/1.1 200"));
    served.terminate();
    let (exit, err) = served.wait(Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn host_takes_names() {
    let mut served = Served::start(&["--host", "localhost"]);
    assert!(get(&served.addr, "/0").starts_with("HTTP/1.1 200"));
    assert!(get(&served.addr, "/healthz").starts_with("HTTP/1.1 200"));
    served.terminate();
    let (exit, _) = served.wait(Duration::from_secs(20));
    assert!(exit.success());

    let output = run(&["serve", "--port", "0", "--host", "no such host"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--host"), "{}", stderr(&output));
    assert!(stderr(&output).contains("localhost"), "{}", stderr(&output));
}

/// The request log's lines, as JSON: one per request, refusals and cancelled requests included.
#[test]
fn log_format_json_writes_one_line_per_request() {
    // A rule and /anything have their own handlers; their requests are logged like the rest.
    let dir = common::scratch("log-rules");
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"order\"\npath = \"/api/orders/{id}\"\ndelay = 0\n",
    )
    .unwrap();
    let mut served = Served::start(&[
        "--log-format",
        "json",
        "--drain-timeout",
        "0",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert!(get(&served.addr, "/0.05?jitter=0").starts_with("HTTP/1.1 200"));
    assert!(get(&served.addr, "/api/orders/7").starts_with("HTTP/1.1 200"));
    assert!(get(&served.addr, "/anything/x").starts_with("HTTP/1.1 200"));
    assert!(get(&served.addr, "/1e3").starts_with("HTTP/1.1 400"));
    assert!(get(&served.addr, "/favicon.ico").starts_with("HTTP/1.1 404"));
    // A client that leaves while its request waits.
    let mut leaving = TcpStream::connect(&served.addr).unwrap();
    write!(leaving, "GET /30 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    served.wait_in_flight(1);
    drop(leaving);
    served.wait_in_flight(0);
    served.terminate();
    let (exit, err) = served.wait(Duration::from_secs(20));
    assert!(exit.success(), "{err}");

    let lines: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |target: &str| {
        lines
            .iter()
            .find(|l| l["target"] == target)
            .unwrap_or_else(|| panic!("no line for {target} in {err}"))
    };
    let ok = find("/0.05?jitter=0");
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["outcome"], "ok");
    assert!(
        ok["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{ok}"
    );
    assert!(
        (50..5_000).contains(&ok["waited_ms"].as_u64().unwrap()),
        "{ok}"
    );
    assert!(ok["total_ms"].as_u64().unwrap() >= 50, "{ok}");
    let refused = find("/1e3");
    assert_eq!(refused["status"], 400);
    assert_eq!(refused["outcome"], "rejected");
    assert_eq!(find("/favicon.ico")["status"], 404);
    assert_eq!(find("/api/orders/7")["status"], 200);
    assert_eq!(find("/anything/x")["status"], 200);
    let cancelled = find("/30");
    assert_eq!(cancelled["outcome"], "cancelled");
    assert_eq!(cancelled["status"], serde_json::Value::Null);
    // The /healthz polls of wait_in_flight are logged too.
    assert!(lines.iter().any(|l| l["target"] == "/healthz"), "{err}");
    assert!(!err.contains('\x1b'), "{err}");
}

/// Text lines into a file or pipe carry no colour codes, even without NO_COLOR.
#[test]
fn text_log_has_no_colour_off_a_terminal() {
    let mut command = common::slowlab();
    command
        .env_remove("NO_COLOR")
        .env("SLOWLAB_LOG", "slowlab_server=debug")
        .args(["serve", "--port", "0"]);
    let mut served = Served::spawn(command);
    assert!(get(&served.addr, "/0.01").starts_with("HTTP/1.1 200"));
    assert!(get(&served.addr, "/1?jiter=1").starts_with("HTTP/1.1 400"));
    served.terminate();
    let (_, err) = served.wait(Duration::from_secs(20));
    assert!(!err.contains('\x1b'), "{err:?}");
    let line = err
        .lines()
        .find(|l| l.contains(" GET /0.01 "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(" from 127.0.0.1:"), "{line}");
    assert!(line.contains(": 200 ok, waited "), "{line}");
    assert!(line.ends_with(" ms"), "{line}");
    let refused = err
        .lines()
        .find(|l| l.contains("/1?jiter=1"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(refused.contains(": 400 rejected, total "), "{refused}");
}

#[test]
fn log_lines_into_a_pipe_carry_no_colour_even_without_no_color() {
    let mut command = common::slowlab();
    command
        .env_remove("NO_COLOR")
        .env("SLOWLAB_LOG", "slowlab_server=debug")
        .args(["serve", "--port", "0"]);
    let mut served = common::Served::spawn(command);
    assert!(common::get(&served.addr, "/0").contains("200 OK"));
    served.terminate();
    let (_, log) = served.wait(std::time::Duration::from_secs(15));
    assert!(log.contains("/0"), "no request line in the log: {log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a pipe: {log:?}");
}
