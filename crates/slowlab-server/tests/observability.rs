//! `/metrics` in the Prometheus text format (parsed back by the format's rules), client disconnects
//! counted, and HTTP/2 (h2c) on the same port.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{blocking, eventually, get, h2_client, h2_get};
use slowlab_server::{Config, spawn};

/// One sample line: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses the text exposition format (version 0.0.4), asserting its rules as it goes; returns the
/// samples and the declared type of each family.
fn parse_exposition(text: &str) -> (Vec<Sample>, HashMap<String, String>) {
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    assert!(text.ends_with('\n'), "the last line ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(is_metric_name(name), "{line}");
            if keyword == "TYPE" {
                let kind = parts.next().unwrap();
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "{line}"
                );
                let before = types.insert(name.to_owned(), kind.to_owned());
                assert!(before.is_none(), "TYPE given twice: {line}");
            } else {
                assert_eq!(keyword, "HELP", "{line}");
            }
            continue;
        }
        assert!(!line.is_empty(), "no blank lines");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let mut labels = BTreeMap::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                    assert!(is_label_name(key), "{line}");
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let end = loop {
                        match chars
                            .next()
                            .unwrap_or_else(|| panic!("unterminated: {line}"))
                        {
                            (_, '\\') => match chars.next().unwrap().1 {
                                'n' => value.push('\n'),
                                c @ ('\\' | '"') => value.push(c),
                                c => panic!("bad escape \\{c}: {line}"),
                            },
                            (i, '"') => break i,
                            (_, c) => value.push(c),
                        }
                    };
                    labels.insert(key.to_owned(), value);
                    rest = after[end + 1..]
                        .strip_prefix(',')
                        .unwrap_or(&after[end + 1..]);
                }
                (name, labels)
            }
        };
        assert!(is_metric_name(name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    (samples, types)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_text_format_and_count_outcomes() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    blocking(move || {
        assert_eq!(get(addr, "/0.01").status, 200);
        assert_eq!(get(addr, "/0.01").status, 200);
        assert_eq!(get(addr, "/0?status=418").status, 418);
        assert_eq!(get(addr, "/1e3").status, 400);
    })
    .await;
    let raw = blocking(move || get(addr, "/metrics")).await;
    assert_eq!(raw.status, 200);
    assert!(
        raw.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let (samples, types) = parse_exposition(&raw.body);

    assert_eq!(types["slowlab_requests_total"], "counter");
    assert_eq!(types["slowlab_in_flight"], "gauge");
    assert_eq!(types["slowlab_connections_open"], "gauge");
    assert_eq!(types["slowlab_requested_delay_seconds"], "histogram");
    assert_eq!(types["slowlab_lateness_seconds"], "histogram");
    let requests = |status, outcome| {
        value(
            &samples,
            "slowlab_requests_total",
            &[("status", status), ("outcome", outcome)],
        )
    };
    assert_eq!(requests("200", "ok"), Some(2.0));
    assert_eq!(requests("418", "ok"), Some(1.0));
    assert_eq!(requests("400", "rejected"), Some(1.0));
    assert_eq!(value(&samples, "slowlab_in_flight", &[]), Some(0.0));
    // The scrape's own connection is open.
    assert!(value(&samples, "slowlab_connections_open", &[]).unwrap() >= 1.0);

    for histogram in [
        "slowlab_requested_delay_seconds",
        "slowlab_lateness_seconds",
    ] {
        let buckets: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == format!("{histogram}_bucket"))
            .collect();
        assert!(buckets.len() > 5, "{histogram}");
        for pair in buckets.windows(2) {
            let (low, high) = (&pair[0], &pair[1]);
            assert!(
                low.value <= high.value,
                "{histogram} buckets are cumulative"
            );
            let bound = |s: &Sample| match s.labels["le"].as_str() {
                "+Inf" => f64::INFINITY,
                b => b.parse::<f64>().unwrap(),
            };
            assert!(bound(low) < bound(high), "{histogram} bounds increase");
        }
        let last = buckets.last().unwrap();
        assert_eq!(last.labels["le"], "+Inf");
        let count = value(&samples, &format!("{histogram}_count"), &[]).unwrap();
        assert_eq!(last.value, count);
        assert_eq!(count, 3.0, "{histogram}: three waits completed");
    }
    // Lateness buckets step by 100 µs up to 1 ms, fine enough to tell a p99 of 0.9 ms from 1 ms.
    for le in [
        "0.0001", "0.0002", "0.0003", "0.0004", "0.0005", "0.0006", "0.0007", "0.0008", "0.0009",
        "0.001",
    ] {
        assert!(
            value(&samples, "slowlab_lateness_seconds_bucket", &[("le", le)]).is_some(),
            "no lateness bucket le={le}: {}",
            raw.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_going_away_stops_the_wait_and_is_counted() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let stream = blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET /30 HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        stream
    })
    .await;
    assert!(eventually(Duration::from_secs(5), || server.stats().in_flight == 1).await);
    drop(stream);
    // The wait of 30 s ends as soon as the server sees the connection close.
    assert!(
        eventually(Duration::from_secs(5), || server.stats().in_flight == 0).await,
        "the wait went on after the client left"
    );
    let metrics = blocking(move || get(addr, "/metrics")).await;
    assert!(
        metrics
            .body
            .contains(r#"slowlab_requests_total{status="200",outcome="cancelled"} 1"#),
        "{}",
        metrics.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_round_trip_and_many_streams_on_one_connection() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let mut sender = h2_client(addr).await;
    let (status, body) = h2_get(&mut sender, addr, "/0.05").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(&body[..], br#"{"time_elapsed": 0.05}"#);

    // More concurrent streams than hyper's default cap of 200, all waiting at once on one
    // connection.
    let streams: Vec<_> = (0..400)
        .map(|_| {
            let mut sender = sender.clone();
            tokio::spawn(async move { h2_get(&mut sender, addr, "/1").await.unwrap().0 })
        })
        .collect();
    for stream in streams {
        assert_eq!(stream.await.unwrap(), 200);
    }
    let stats = server.stats();
    assert!(stats.peak_in_flight >= 300, "peak {}", stats.peak_in_flight);
    assert_eq!(stats.finished, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_stream_reset_stops_its_wait() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let mut sender = h2_client(addr).await;
    let waiting = {
        let mut sender = sender.clone();
        tokio::spawn(async move { h2_get(&mut sender, addr, "/30").await })
    };
    assert!(eventually(Duration::from_secs(5), || server.stats().in_flight == 1).await);
    // Dropping the response future makes the client reset the stream.
    waiting.abort();
    assert!(
        eventually(Duration::from_secs(5), || server.stats().in_flight == 0).await,
        "the wait went on after the stream was reset"
    );
    // The connection itself still serves.
    assert_eq!(h2_get(&mut sender, addr, "/0").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_page_links_the_endpoints_and_options() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let page = blocking(move || get(addr, "/")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    for link in [
        "href=\"/healthz\"",
        "href=\"/metrics\"",
        "href=\"/1?jitter=0.5\"",
        "href=\"/3?drip=3\"",
    ] {
        assert!(page.body.contains(link), "{link} missing");
    }
    // Every example on the page is a request the server accepts.
    let examples: Vec<String> = page
        .body
        .split("href=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().replace("&amp;", "&"))
        .filter(|href| href.contains('?') && !href.contains("fault="))
        .collect();
    assert!(examples.len() >= 6, "{examples:?}");
    let checks: Vec<_> = examples
        .into_iter()
        .map(|example| {
            tokio::task::spawn_blocking(move || {
                let raw = get(addr, &example);
                // Answered (whatever status= asked for), not refused.
                assert_eq!(raw.header("content-type"), Some("application/json"));
                assert!(
                    ![400, 404, 405].contains(&raw.status),
                    "{example}: {}",
                    raw.body
                );
            })
        })
        .collect();
    for check in checks {
        check.await.unwrap();
    }
}

#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    let soft = slowlab_server::raise_open_file_limit().unwrap();
    assert_eq!(soft, hard);
    assert_eq!(rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap().0, hard);
}
