//! Beyond one process: replicas behind a real load balancer (haproxy), and client hosts in network
//! namespaces, each with sharded `fetch` processes whose reports merge.
//!
//! Both need installed tools (haproxy; root and `ip` for namespaces) and skip with the reason where
//! they are missing, unless `SLOWLAB_REQUIRE_TOOLS=1`.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Served, get, tool_available, usable};
use serde_json::Value;
use slowlab::merge::{self, Input};

/// `slowlab fetch ARGS --output json --quiet`, started in the background (through `prefix`, e.g.
/// `ip netns exec NS`, when given).
fn start_fetch(prefix: &[&str], args: &[String]) -> Child {
    let binary = env!("CARGO_BIN_EXE_slowlab");
    let mut command = match prefix.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    command
        .env("NO_COLOR", "1")
        .args(["fetch", "--output", "json", "--quiet"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("slowlab fetch starts")
}

/// Waits for a fetch started by [`start_fetch`] and parses its report; exit status 0 or 1 (some
/// request failed) both leave a complete report.
fn report_of(child: Child) -> Value {
    let output: Output = child.wait_with_output().unwrap();
    let code = output.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "fetch exited {code:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("fetch writes one JSON report")
}

/// Runs shards 0..N of the same fetch side by side (each through its own prefix) and merges them.
fn sharded(prefixes: &[&[&str]], args: &[String]) -> (Vec<Value>, Value) {
    let count = prefixes.len();
    let children: Vec<Child> = prefixes
        .iter()
        .enumerate()
        .map(|(index, prefix)| {
            let mut args = args.to_vec();
            args.extend(["--shard".to_owned(), format!("{index}/{count}")]);
            start_fetch(prefix, &args)
        })
        .collect();
    let reports: Vec<Value> = children.into_iter().map(report_of).collect();
    let inputs: Vec<Input> = reports
        .iter()
        .enumerate()
        .map(|(i, report)| Input {
            name: format!("shard {i}"),
            report: report.clone(),
        })
        .collect();
    let merged = merge::merge(&inputs).expect("the shards merge");
    (reports, merged)
}

/// The sum of a server's `slowlab_requests_total`.
fn requests_total(addr: &str) -> u64 {
    get(addr, "/metrics")
        .lines()
        .filter(|line| line.starts_with("slowlab_requests_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Every request of a merged report has exactly one outcome, indices 0..n.
fn assert_every_request_has_an_outcome(merged: &Value, n: u64) {
    assert_eq!(merged["summary"]["requests"].as_u64(), Some(n));
    let indices: Vec<u64> = merged["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, (0..n).collect::<Vec<_>>());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// haproxy in the foreground with `config`, stopped when dropped.
struct Haproxy {
    child: Child,
    _dir: TempDir,
}

impl Haproxy {
    fn start(config: &str) -> Haproxy {
        let dir = TempDir::new("haproxy");
        let path = dir.0.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let check = Command::new("haproxy")
            .args(["-c", "-q", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "haproxy refuses the config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Haproxy { child, _dir: dir }
    }

    /// Stops haproxy and returns what it wrote to stderr (its server state changes).
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut log);
        }
        log
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("slowlab-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits (at most 10 s) until `check` holds.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn replicas_behind_haproxy_account_for_every_request() {
    if !tool_available("haproxy") {
        return;
    }
    let a = Served::start(&["--drain-timeout", "5"]);
    let mut b = Served::start(&["--drain-timeout", "5"]);
    let front = free_port();
    // Health checks on /healthz every 200 ms; `retries 0`, so a request sent to a replica that
    // has gone is the client's failure, not silently sent again.
    let haproxy = Haproxy::start(&format!(
        "global\n    maxconn 4096\n\
         defaults\n    mode http\n    retries 0\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n\
         frontend front\n    bind 127.0.0.1:{front}\n    default_backend replicas\n\
         backend replicas\n    balance roundrobin\n    option httpchk GET /healthz\n    http-check expect status 200\n    \
         default-server inter 200ms fall 2 rise 1\n    server a {} check\n    server b {} check\n",
        a.addr, b.addr
    ));
    let base_url = format!("http://127.0.0.1:{front}");
    eventually("haproxy answers", || {
        std::net::TcpStream::connect(("127.0.0.1", front)).is_ok()
            && get(&format!("127.0.0.1:{front}"), "/0").contains("200 OK")
    });
    let warm = requests_total(&a.addr) + requests_total(&b.addr);
    let args = |count: u32, delay: &str| -> Vec<String> {
        [
            "--base-url",
            &base_url,
            "--count",
            &count.to_string(),
            "--delay",
            delay,
        ]
        .into_iter()
        .map(str::to_owned)
        .chain(["--concurrency".into(), "10".into()])
        .collect()
    };

    // Two sharded clients through the balancer: every request answered, by both replicas.
    let (_, merged) = sharded(&[&[], &[]], &args(200, "0.01"));
    assert_every_request_has_an_outcome(&merged, 200);
    assert_eq!(
        merged["summary"]["ok"].as_u64(),
        Some(200),
        "{}",
        merged["summary"]
    );
    let (served_a, served_b) = (requests_total(&a.addr), requests_total(&b.addr));
    assert!(served_a > 0 && served_b > 0, "a {served_a}, b {served_b}");
    assert_eq!(served_a + served_b - warm, 200);

    // Stop replica b while two sharded clients run through the balancer.
    let children: Vec<Child> = (0..2)
        .map(|i| {
            let mut args = args(600, "0.03");
            args.extend(["--shard".to_owned(), format!("{i}/2")]);
            start_fetch(&[], &args)
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    b.terminate();
    let (status, b_log) = b.wait(Duration::from_secs(20));
    assert!(status.success(), "replica b: {b_log}");
    let reports: Vec<Value> = children.into_iter().map(report_of).collect();
    let inputs: Vec<Input> = reports
        .iter()
        .map(|r| Input {
            name: "shard".into(),
            report: r.clone(),
        })
        .collect();
    let merged = merge::merge(&inputs).unwrap();
    assert_every_request_has_an_outcome(&merged, 600);

    // Every failure is typed: the balancer's 502/503, or a connection error.
    let mut failed = 0;
    for outcome in merged["outcomes"].as_array().unwrap() {
        if outcome["ok"] == Value::Bool(true) {
            continue;
        }
        failed += 1;
        let kind = outcome["error"]["kind"].as_str().unwrap();
        let status = outcome["status"].as_u64();
        assert!(
            (kind == "http-status" && matches!(status, Some(502 | 503)))
                || matches!(kind, "refused" | "reset" | "closed-early"),
            "untyped failure: {outcome}"
        );
    }
    assert_eq!(merged["summary"]["failed"].as_u64(), Some(failed));
    // Requests were still being sent when b went away (600 of 30 ms, 20 at a time, take about
    // 0.9 s; b stopped at 0.3 s), so some met it gone before the health checks noticed.
    assert!(failed > 0, "no request met the stopped replica");
    eprintln!("{failed} of 600 requests failed while replica b stopped");

    // Nothing lost or counted twice: what the replicas ended plus what failed is what was sent.
    let b_total: u64 = b_log
        .lines()
        .find_map(|line| {
            line.strip_prefix("slowlab serve: ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
                .filter(|_| line.contains("ended in all"))
        })
        .unwrap_or_else(|| panic!("replica b's total is not in its log: {b_log}"));
    let a_total = requests_total(&a.addr);
    let ok = merged["summary"]["ok"].as_u64().unwrap();
    assert_eq!(
        a_total + b_total - warm - 200,
        ok,
        "replicas ended {a_total} + {b_total} (less {warm} warm-up and 200 earlier), client ok {ok}"
    );
    assert_eq!(ok + failed, 600);

    // The balancer took b out: every later request succeeds, all on a.
    // (Round robin alternates while both are up, so four answers in a row from a mean b is out.)
    eventually("haproxy marks b down", || {
        let before = requests_total(&a.addr);
        let answered = (0..4)
            .filter(|_| get(&format!("127.0.0.1:{front}"), "/0").contains("200 OK"))
            .count();
        answered == 4 && requests_total(&a.addr) == before + 4
    });
    let before = requests_total(&a.addr);
    let after_report = report_of(start_fetch(&[], &args(50, "0")));
    assert_eq!(after_report["summary"]["ok"].as_u64(), Some(50));
    assert_eq!(requests_total(&a.addr), before + 50);
    let log = haproxy.stop();
    assert!(log.contains("replicas/b is DOWN"), "haproxy's log: {log}");
}

/// Network namespaces made for one test, deleted when dropped (also when the test fails).
struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    fn ip(args: &[&str]) {
        let output = Command::new("ip").args(args).output().unwrap();
        assert!(
            output.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn add(&mut self, name: &str) {
        Namespaces::ip(&["netns", "add", name]);
        self.names.push(name.to_owned());
        Namespaces::ip(&["-n", name, "link", "set", "lo", "up"]);
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

#[test]
fn two_client_hosts_lift_the_ephemeral_port_limit_of_one() {
    if !tool_available("ip") || !usable(is_root(), "network namespaces need root") {
        return;
    }
    // A server host and three client hosts joined by a bridge on the server host, on addresses
    // of 198.18.0.0/15, the range set aside for network benchmarks (RFC 2544). Host a runs alone;
    // b and c run a shard each (a fresh pair: ports a has used wait in TIME_WAIT for a minute).
    let tag = format!("sl{}", std::process::id() % 100_000);
    let [server, host_a, host_b, host_c] = ["s", "a", "b", "c"].map(|n| format!("{tag}{n}"));
    let mut namespaces = Namespaces { names: Vec::new() };
    for name in [&server, &host_a, &host_b, &host_c] {
        namespaces.add(name);
    }
    let ip = Namespaces::ip;
    ip(&["-n", &server, "link", "add", "br0", "type", "bridge"]);
    ip(&["-n", &server, "addr", "add", "198.18.0.1/24", "dev", "br0"]);
    ip(&["-n", &server, "link", "set", "br0", "up"]);
    for (host, address) in [
        (&host_a, "198.18.0.2/24"),
        (&host_b, "198.18.0.3/24"),
        (&host_c, "198.18.0.4/24"),
    ] {
        let (near, far) = (format!("{host}0"), format!("{host}1"));
        ip(&[
            "link", "add", &near, "netns", &server, "type", "veth", "peer", "name", &far, "netns",
            host,
        ]);
        ip(&["-n", &server, "link", "set", &near, "master", "br0", "up"]);
        ip(&["-n", host, "addr", "add", address, "dev", &far]);
        ip(&["-n", host, "link", "set", &far, "up"]);
        // About 1,000 local ports: one host can hold about 1,000 connections to one server port.
        ip(&[
            "netns",
            "exec",
            host,
            "sysctl",
            "-qw",
            "net.ipv4.ip_local_port_range=50000 50999",
        ]);
    }

    let mut serve = Command::new("ip");
    serve
        .args(["netns", "exec", &server, env!("CARGO_BIN_EXE_slowlab")])
        .args(["serve", "--host", "198.18.0.1", "--port", "8000"])
        .env("NO_COLOR", "1");
    let _served = Served::spawn(serve);
    let args: Vec<String> = [
        "--base-url",
        "http://198.18.0.1:8000",
        "--count",
        "1500",
        "--delay",
        "2",
        "--timeout",
        "20",
    ]
    .map(str::to_owned)
    .to_vec();
    let exec_a = ["ip", "netns", "exec", host_a.as_str()];
    let exec_b = ["ip", "netns", "exec", host_b.as_str()];
    let exec_c = ["ip", "netns", "exec", host_c.as_str()];

    // One client host, 1,500 connections at once: it runs out of local ports, and says so.
    let alone = report_of(start_fetch(&exec_a, &args));
    let summary = &alone["summary"];
    assert_eq!(summary["requests"].as_u64(), Some(1500));
    let failed = summary["failed"].as_u64().unwrap();
    assert!(failed >= 400, "one host with 1,000 ports: {summary}");
    let kinds: Vec<&str> = summary["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["port-exhausted"], "{summary}");

    // Two client hosts, a shard each: every request succeeds.
    let (reports, merged) = sharded(&[&exec_b, &exec_c], &args);
    assert_every_request_has_an_outcome(&merged, 1500);
    assert_eq!(
        merged["summary"]["ok"].as_u64(),
        Some(1500),
        "{}",
        merged["summary"]
    );
    assert!(
        reports
            .iter()
            .all(|r| r["summary"]["ok"].as_u64() == Some(750))
    );
}
