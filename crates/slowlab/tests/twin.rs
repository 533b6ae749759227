//! `slowlab serve` as the slow, flaky twin of an API, driven by real clients: `slowlab fetch`
//! and, where installed, curl.

mod common;

use std::process::Command;

use common::{Served, scratch, slowlab, stderr, stdout, tool_available};

/// The JSON documents in `text`: its lines that are JSON objects.
fn json_blocks(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
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

/// The rules file of the README's "Make your own API slow", exactly as written there.
fn readme_rules() -> String {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("## Make your own API slow")
        .nth(1)
        .expect("the README has a section \"Make your own API slow\"");
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + section[start..].find("```").unwrap();
    section[start..end].to_owned()
}

/// `name`'s count in `slowlab_rule_requests_total`, from the server's /metrics.
fn rule_count(served: &Served, name: &str) -> Option<u64> {
    let metrics = common::get(&served.addr, "/metrics");
    let prefix = format!("slowlab_rule_requests_total{{rule=\"{name}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|n| n.trim().parse().unwrap())
}

/// The body of a raw response.
fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// The rules digest /healthz reports.
fn digest(served: &Served) -> String {
    let health = common::get(&served.addr, "/healthz");
    let json: serde_json::Value = serde_json::from_str(body(&health)).unwrap();
    json["rules"]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn the_readme_rules_file_runs_as_written() {
    let dir = scratch("twin-readme");
    let rules = dir.join("api.toml");
    std::fs::write(&rules, readme_rules()).unwrap();
    let served = Served::start(&["--rules", rules.to_str().unwrap()]);
    let urls = dir.join("urls.txt");
    let mut list = String::new();
    for id in 1..=4 {
        list.push_str(&format!("/api/orders/{id}\n"));
    }
    list.push_str(&"/api/search?q=slow\n".repeat(3));
    list.push_str(&"/static/app.js\n".repeat(2));
    list.push_str("/api/search?q=fast\n/users/1\n/abc\n");
    std::fs::write(&urls, list).unwrap();
    let output = slowlab()
        .args(["fetch", "--quiet", "--output", "json", "--urls"])
        .arg(&urls)
        .args(["--base-url", &served.base_url])
        .output()
        .unwrap();
    // The orders route fails a share of its requests on purpose: 0 or 1, never a usage error.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let outcomes = report["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 12);
    for outcome in &outcomes[4..] {
        assert_eq!(outcome["status"], 200, "{outcome}");
    }
    for outcome in &outcomes[7..9] {
        assert_eq!(outcome["bytes"], 20000, "assets are padded: {outcome}");
        // 20 kB at 100 kB/s.
        assert!(outcome["latency"].as_f64().unwrap() >= 0.19, "{outcome}");
    }
    for outcome in &outcomes[4..7] {
        assert!(outcome["latency"].as_f64().unwrap() >= 0.5, "{outcome}");
    }
    for (name, count) in [
        ("order", 4),
        ("slow-search", 3),
        ("assets", 2),
        ("default", 3),
    ] {
        assert_eq!(rule_count(&served, name), Some(count), "{name}");
    }
    let order = common::get(&served.addr, "/api/orders/42");
    if order.starts_with("HTTP/1.1 200") {
        assert!(body(&order).contains(r#""status":"shipped""#), "{order}");
    }
    let search = common::get(&served.addr, "/api/search?q=slow");
    assert!(
        search.to_ascii_lowercase().contains("retry-after: 1"),
        "{search}"
    );
    assert_eq!(body(&search), "no results yet");
}

#[test]
fn sighup_reloads_the_rules_without_dropping_requests_in_flight() {
    let dir = scratch("twin-reload");
    let rules = dir.join("rules.toml");
    let old = "[[rule]]\nname = \"slow\"\npath = \"/api/slow\"\ndelay = 2\nbody = \"old\"\n";
    std::fs::write(&rules, old).unwrap();
    let mut served = Served::start(&["--rules", rules.to_str().unwrap()]);
    // Every line the server logs, as it logs it.
    let (lines, logged) = std::sync::mpsc::channel();
    let pipe = served.child.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let hangup = |served: &Served| {
        let status = Command::new("kill")
            .args(["-HUP", &served.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };

    let waiting: Vec<_> = (0..100)
        .map(|_| served.get_in_background("/api/slow"))
        .collect();
    served.wait_in_flight(100);
    let before = digest(&served);
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"slow\"\npath = \"/api/slow\"\nbody = \"new\"\n",
    )
    .unwrap();
    hangup(&served);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while digest(&served) == before {
        assert!(std::time::Instant::now() < deadline, "never reloaded");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // New requests see the new rule at once; the 100 waiting finish under the old one.
    let fresh = common::get(&served.addr, "/api/slow");
    assert_eq!(body(&fresh), "new", "{fresh}");
    for handle in waiting {
        let response = handle.join().unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert_eq!(body(&response), "old");
    }
    assert_eq!(
        rule_count(&served, "slow"),
        Some(101),
        "counts survive the reload"
    );

    // A reload that fails keeps the rules in force, and says why.
    let good = digest(&served);
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"slow\"\npath = \"/api/slow\"\nmix = \"503:1.5\"\n",
    )
    .unwrap();
    hangup(&served);
    let why = loop {
        let line = logged
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the failed reload is logged");
        if line.contains("does not load") {
            break line;
        }
    };
    assert!(why.contains("rules.toml"), "{why}");
    assert!(why.contains("rule 1 (\"slow\"), field mix"), "{why}");
    assert_eq!(digest(&served), good);
    assert_eq!(body(&common::get(&served.addr, "/api/slow")), "new");
}

#[test]
fn a_bad_rules_file_stops_the_server_at_start_up() {
    let dir = scratch("twin-bad");
    let rules = dir.join("bad.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"orders\"\npath = \"/api/orders/{id}\"\nbody_file = \"missing.json\"\n",
    )
    .unwrap();
    let output = slowlab()
        .args(["serve", "--port", "0", "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("bad.toml: rule 1 (\"orders\"), field body_file"),
        "{err}"
    );
    assert!(err.contains("missing.json"), "{err}");
    let output = slowlab()
        .args(["serve", "--port", "0", "--default", "0.2?mix=503:2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--default"), "{}", stderr(&output));
}

#[test]
fn watch_reloads_a_changed_file_and_default_takes_every_other_path() {
    let dir = scratch("twin-watch");
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, "[[rule]]\npath = \"/a\"\nbody = \"one\"\n").unwrap();
    let served = Served::start(&[
        "--rules",
        rules.to_str().unwrap(),
        "--watch",
        "--default",
        "0?status=418",
    ]);
    assert_eq!(body(&common::get(&served.addr, "/a")), "one");
    assert!(common::get(&served.addr, "/no/such/path").starts_with("HTTP/1.1 418"));
    let before = digest(&served);
    std::fs::write(&rules, "[[rule]]\npath = \"/a\"\nbody = \"two\"\n").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while digest(&served) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "--watch never reloaded"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(body(&common::get(&served.addr, "/a")), "two");
}

/// A server process, killed when dropped (also when a test fails).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `slowlab serve --port 0 EXTRA...` over TLS: the process and its `https://` base URL.
fn serve_tls(extra: &[&str]) -> (Killed, String) {
    use std::io::BufRead;
    let mut child = slowlab()
        .args(["serve", "--port", "0"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    assert!(url.starts_with("https://"), "{url}");
    (Killed(child), url)
}

/// Over TLS the first request head's clock starts once the handshake is done: a client that
/// completes it and then says nothing is closed at the header read timeout, not left until the
/// idle timeout. (Python's ssl module is the client: it stops after the handshake, as asked.)
#[test]
fn a_tls_client_silent_after_its_handshake_is_closed_at_the_header_read_timeout() {
    if !tool_available("python3") {
        return;
    }
    let (_server, url) = serve_tls(&[
        "--tls-self-signed",
        "--header-read-timeout",
        "1",
        "--idle-timeout",
        "30",
    ]);
    let (host, port) = url.trim_start_matches("https://").rsplit_once(':').unwrap();
    let script = r#"
import socket, ssl, sys, time
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
tls = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2]))),
                      server_hostname="localhost")
start = time.monotonic()
tls.settimeout(60)
try:
    tls.recv(1)
except (ssl.SSLError, OSError):
    pass
print(time.monotonic() - start)
"#;
    let output = Command::new("python3")
        .args(["-c", script, host, port])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let closed_after: f64 = stdout(&output).trim().parse().unwrap();
    assert!(
        closed_after < 10.0,
        "closed {closed_after} s after the handshake: not at the 1 s header read timeout"
    );
}

#[test]
fn fetch_insecure_works_in_every_mode_and_over_h2_against_a_self_signed_server() {
    let (_server, url) = serve_tls(&["--tls-self-signed", "--default", "0.01"]);
    for mode in [
        &["--mode", "sequential"][..],
        &["--mode", "threads"],
        &["--mode", "async"],
        &["--mode", "async", "--http2"],
    ] {
        let output = slowlab()
            .args(["fetch", "--insecure", "--quiet", "--output", "json"])
            .args(mode)
            .args(["--base-url", &url, "0.05", "0.1", "0"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{mode:?}: {}", stderr(&output));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["summary"]["ok"], 3, "{mode:?}: {report}");
    }
    // A path of the client's own, slowed by the default rule, over TLS.
    let output = slowlab()
        .args([
            "fetch",
            "--insecure",
            "--quiet",
            "--output",
            "json",
            "--urls",
            "-",
        ])
        .args(["--base-url", &url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"/api/orders/42\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["outcomes"][0]["status"], 200, "{report}");
    // Without --insecure the self-signed certificate is refused: the TLS is real.
    let output = slowlab()
        .args(["fetch", "--quiet", "--base-url", &url, "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

#[test]
fn curl_k_speaks_http1_and_h2_to_a_tls_server_from_pem_files() {
    if !tool_available("curl") {
        return;
    }
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../slowlab-client/tests/data");
    let (cert, key) = (
        format!("{data}/localhost.crt"),
        format!("{data}/localhost.key"),
    );
    let (_server, url) = serve_tls(&["--tls-cert", &cert, "--tls-key", &key]);
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let output = Command::new("curl")
            .args(["-sS", "-k", flag, "-w", "\n%{http_version}"])
            .arg(format!("{url}/0.05?status=201"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let text = stdout(&output);
        assert_eq!(
            text,
            format!("{{\"time_elapsed\": 0.05}}\n{version}"),
            "{flag}"
        );
    }
    // Plain HTTP on the TLS port gets no answer.
    let plain = Command::new("curl")
        .args(["-sS", "-m", "5"])
        .arg(url.replacen("https://", "http://", 1) + "/0")
        .output()
        .unwrap();
    assert!(!plain.status.success());
}

#[test]
fn unusable_tls_files_stop_the_server_with_the_path() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../slowlab-client/tests/data");
    let cert = format!("{data}/localhost.crt");
    let dir = scratch("twin-tls");
    let missing = dir.join("missing.key");
    for key in [missing.to_str().unwrap(), &cert] {
        let output = slowlab()
            .args([
                "serve",
                "--port",
                "0",
                "--tls-cert",
                &cert,
                "--tls-key",
                key,
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains(key), "{}", stderr(&output));
    }
}

#[test]
fn a_seeded_server_answers_a_sequential_client_the_same_way_twice() {
    let run = |seed: &str| {
        let served = Served::start(&["--seed", seed]);
        let output = slowlab()
            .args([
                "fetch",
                "--mode",
                "sequential",
                "--quiet",
                "--output",
                "json",
            ])
            .args(["--base-url", &served.base_url, "--urls", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                let urls = "/0?mix=503:0.5\n".repeat(30);
                child.stdin.take().unwrap().write_all(urls.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        report["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["status"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let first = run("5");
    assert_eq!(first.len(), 30);
    assert!(first.contains(&200) && first.contains(&503), "{first:?}");
    assert_eq!(first, run("5"));
    assert_ne!(first, run("6"));
}

#[test]
fn the_published_rules_schema_matches_what_the_server_reads() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/rules.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let as_json =
        |text: &str| serde_json::to_value(toml::from_str::<toml::Value>(text).unwrap()).unwrap();

    let readme = as_json(&readme_rules());
    let errors: Vec<String> = validator
        .iter_errors(&readme)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "the README's rules: {errors:?}");

    // Every field the schema lists, the server knows; a field it does not list, both refuse.
    let fields = schema["$defs"]["rule"]["properties"].as_object().unwrap();
    for field in fields.keys() {
        let text = format!("[[rule]]\n{field} = true\n");
        if let Err(err) = slowlab_server::Rules::parse(&text, "t.toml", std::path::Path::new(".")) {
            assert!(!err.to_string().contains("unknown field"), "{field}: {err}");
        }
    }
    let unknown = "[[rule]]\npath = \"/a\"\ndealy = 1\n";
    assert!(!validator.is_valid(&as_json(unknown)));
    let err =
        slowlab_server::Rules::parse(unknown, "t.toml", std::path::Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
    let server_fields = err.to_string();
    for field in fields.keys() {
        assert!(
            server_fields.contains(&format!("`{field}`")),
            "{field} not in {server_fields}"
        );
    }
    // The default rule takes no match fields, in the schema as in the server.
    assert!(!validator.is_valid(&as_json("[default]\npath = \"/a\"\n")));
}
