//! Rules for any path: first-match precedence (a property test), and rules files refused at
//! load with the file, rule and field named.

mod common;

use std::path::Path;

use axum::http::{HeaderMap, Method};
use proptest::prelude::*;
use slowlab_server::rules::{Route, Rules, RulesError};

/// One rule's match fields, as TOML lines.
#[derive(Debug, Clone)]
struct Spec {
    method: Option<&'static str>,
    path: String,
    prefix: bool,
    query: Option<&'static str>,
}

impl Spec {
    fn toml(&self) -> String {
        let mut text = String::from("[[rule]]\n");
        if let Some(method) = self.method {
            text.push_str(&format!("method = {method:?}\n"));
        }
        let key = if self.prefix { "prefix" } else { "path" };
        text.push_str(&format!("{key} = {:?}\n", self.path));
        if let Some(value) = self.query {
            text.push_str(&format!("match_query = {{ q = {value:?} }}\n"));
        }
        text
    }
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("1".to_owned()),
        Just("healthz".to_owned()),
        Just("anything".to_owned()),
    ]
}

fn pattern_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        segment(),
        Just("{id}".to_owned()),
        Just("*".to_owned()),
        Just("**".to_owned()),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::option::of(prop_oneof![Just("GET"), Just("POST")]),
        proptest::collection::vec(pattern_segment(), 0..3),
        any::<bool>(),
        proptest::option::of(prop_oneof![Just("1"), Just("2")]),
    )
        .prop_map(|(method, segments, prefix, query)| Spec {
            method,
            path: format!("/{}", segments.join("/")),
            prefix,
            query,
        })
}

fn rules(specs: &[Spec], default: bool) -> Rules {
    let mut text: String = specs.iter().map(Spec::toml).collect();
    if default {
        text.push_str("[default]\ndelay = 0\n");
    }
    Rules::parse(&text, "props.toml", Path::new(".")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The server's own paths first, then the first rule that matches on its own, then
    /// `/{seconds}`, then the default rule.
    #[test]
    fn a_request_gets_the_first_matching_rule(
        specs in proptest::collection::vec(spec(), 0..6),
        default in any::<bool>(),
        method in prop_oneof![Just(Method::GET), Just(Method::POST)],
        segments in proptest::collection::vec(segment(), 0..3),
        query in proptest::option::of(prop_oneof![Just("q=1"), Just("q=2"), Just("x=1")]),
    ) {
        let path = format!("/{}", segments.join("/"));
        let headers = HeaderMap::new();
        let all = rules(&specs, default);
        let got = all.route(&method, &path, query, &headers);

        let own = ["/", "/healthz", "/metrics", "/anything", "/race", "/favicon.ico"]
            .contains(&path.as_str())
            || path.starts_with("/anything/");
        let first = specs.iter().position(|spec| {
            rules(std::slice::from_ref(spec), false).route(&method, &path, query, &headers)
                == Route::Rule(0)
        });
        let delay = path.len() > 1 && !path[1..].contains('/') && path.as_bytes()[1].is_ascii_digit();
        let expected = if own {
            Route::Own
        } else if let Some(index) = first {
            Route::Rule(index)
        } else if delay {
            Route::Delay
        } else if default {
            Route::Default
        } else {
            Route::Unmatched
        };
        prop_assert_eq!(got, expected, "{} {}?{:?} with {:#?}", method, path, query, specs);
    }
}

#[test]
fn patterns_match_as_documented() {
    let text = r#"
        [[rule]]
        name = "one order"
        method = ["GET", "HEAD"]
        path = "/api/orders/{id}"
        [[rule]]
        name = "tenant"
        prefix = "/api/"
        match_headers = { "x-tenant" = "acme" }
        [[rule]]
        name = "json files"
        path = "/files/*.json"
    "#;
    let rules = Rules::parse(text, "t.toml", Path::new(".")).unwrap();
    let none = HeaderMap::new();
    let mut acme = HeaderMap::new();
    acme.insert("x-tenant", "acme".parse().unwrap());
    let route =
        |method: Method, path: &str, headers: &HeaderMap| rules.route(&method, path, None, headers);
    assert_eq!(route(Method::GET, "/api/orders/42", &none), Route::Rule(0));
    assert_eq!(
        route(Method::POST, "/api/orders/42", &none),
        Route::Unmatched
    );
    assert_eq!(route(Method::POST, "/api/orders/42", &acme), Route::Rule(1));
    assert_eq!(route(Method::GET, "/files/a.json", &none), Route::Rule(2));
    assert_eq!(
        route(Method::GET, "/files/a/b.json", &none),
        Route::Unmatched
    );
    assert_eq!(route(Method::GET, "/2", &none), Route::Delay);
    assert_eq!(route(Method::GET, "/healthz", &acme), Route::Own);
    assert_eq!(rules.names(), ["one order", "tenant", "json files"]);
}

fn error(text: &str) -> RulesError {
    Rules::parse(text, "api.toml", Path::new(".")).unwrap_err()
}

#[test]
fn bad_files_name_the_file_rule_and_field() {
    let unknown = error("[[rule]]\npath = \"/a\"\ndealy = 1\n");
    assert_eq!(unknown.file, "api.toml");
    assert!(unknown.to_string().contains("dealy"), "{unknown}");
    assert!(unknown.to_string().contains("line 3"), "{unknown}");

    for (text, field, says) in [
        (
            "[[rule]]\npath = \"/files/[a\"\n",
            "path",
            "not a valid pattern",
        ),
        ("[[rule]]\npath = \"a\"\n", "path", "start with '/'"),
        (
            "[[rule]]\npath = \"/a\"\nmix = \"503:1.5\"\n",
            "mix",
            "not a probability",
        ),
        (
            "[[rule]]\npath = \"/a\"\nmix = \"503:0.6,500:0.6\"\n",
            "mix",
            "more than 1",
        ),
        (
            "[[rule]]\npath = \"/a\"\njitter = -1\n",
            "jitter",
            "jitter=-1",
        ),
        (
            "[[rule]]\npath = \"/a\"\nstatus = 99\n",
            "status",
            "200 to 599",
        ),
        (
            "[[rule]]\npath = \"/a\"\nbody_file = \"missing.json\"\n",
            "body_file",
            "missing.json",
        ),
        (
            "[[rule]]\npath = \"/a\"\nbody = \"x\"\njson = 1\n",
            "body",
            "one of body",
        ),
        (
            "[[rule]]\npath = \"/a\"\nprefix = \"/b\"\n",
            "prefix",
            "not both",
        ),
        (
            "[[rule]]\npath = \"/a\"\nmethod = \"G T\"\n",
            "method",
            "not an HTTP method",
        ),
    ] {
        let err = error(&format!(
            "[[rule]]\nname = \"fine\"\npath = \"/ok\"\n{text}"
        ));
        assert_eq!(err.rule.as_deref(), Some("rule 2"), "{err}");
        assert_eq!(err.field.as_deref(), Some(field), "{err}");
        assert!(err.to_string().contains(says), "{err}");
        assert!(
            err.to_string().starts_with("api.toml: rule 2, field "),
            "{err}"
        );
    }

    let named = error("[[rule]]\nname = \"orders\"\npath = \"/a\"\nfault = \"boom\"\n");
    assert_eq!(named.rule.as_deref(), Some("rule 1 (\"orders\")"));
    let default = error("[default]\npath = \"/a\"\n");
    assert_eq!(default.rule.as_deref(), Some("default"));
    assert_eq!(default.field.as_deref(), Some("path"));
}

#[test]
fn the_default_flag_speaks_the_urls_words() {
    let rules = Rules::empty()
        .with_default("0.2?jitter=0.1&mix=503:0.05")
        .unwrap();
    assert!(rules.has_default());
    assert_eq!(
        rules.route(&Method::GET, "/anything-else", None, &HeaderMap::new()),
        Route::Default
    );
    for bad in ["abc", "0.2?jiter=1", "0.2?mix=503:2"] {
        let err = Rules::empty().with_default(bad).unwrap_err();
        assert_eq!(err.file, "--default");
        assert!(err.to_string().contains("e.g. 0.2?jitter=0.1"), "{err}");
    }
    // The digest follows what the rules were made from.
    let a = Rules::empty().with_default("0.2").unwrap();
    let b = Rules::empty().with_default("0.3").unwrap();
    assert_ne!(a.digest(), b.digest());
    assert!(a.digest().starts_with("sha256:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_socket_the_servers_own_paths_come_first_and_rules_answer_the_rest() {
    use slowlab_server::{Config, LiveRules, spawn};
    let text = r#"
        [[rule]]
        name = "tenant"
        path = "/api/**"
        match_headers = { "x-tenant" = "acme" }
        status = 429
        headers = { "retry-after" = "3" }
        body = "slow down"

        [[rule]]
        name = "everything"
        prefix = "/"
        json = { caught = true }
    "#;
    let rules = Rules::parse(text, "t.toml", Path::new(".")).unwrap();
    let server = spawn(Config {
        rules: Some(LiveRules::fixed(rules)),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let get = move |head: &'static str| {
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            write!(stream, "{head}\r\nConnection: close\r\n\r\n").unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).unwrap();
            text
        })
    };
    let tenant = get("GET /api/orders/1 HTTP/1.1\r\nHost: t\r\nX-Tenant: acme")
        .await
        .unwrap();
    assert!(tenant.starts_with("HTTP/1.1 429"), "{tenant}");
    assert!(
        tenant.to_ascii_lowercase().contains("retry-after: 3"),
        "{tenant}"
    );
    assert!(tenant.ends_with("slow down"), "{tenant}");
    let other = get("GET /api/orders/1 HTTP/1.1\r\nHost: t").await.unwrap();
    assert!(other.ends_with(r#"{"caught":true}"#), "{other}");
    // A rule for every path still leaves the server's own paths, and comes before /{seconds}.
    let health = get("GET /healthz HTTP/1.1\r\nHost: t").await.unwrap();
    assert!(health.contains(r#""digest":"sha256:"#), "{health}");
    let echo = get("GET /anything/z HTTP/1.1\r\nHost: t").await.unwrap();
    assert!(echo.contains(r#""path":"/anything/z""#), "{echo}");
    let delay = get("GET /5 HTTP/1.1\r\nHost: t").await.unwrap();
    assert!(delay.ends_with(r#"{"caught":true}"#), "{delay}");
    let metrics = get("GET /metrics HTTP/1.1\r\nHost: t").await.unwrap();
    assert!(
        metrics.contains(r#"slowlab_rule_requests_total{rule="everything"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"slowlab_rule_requests_total{rule="tenant"} 1"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_file_is_answered_with_a_type_from_its_extension() {
    use slowlab_server::{Config, LiveRules, spawn};
    let folder = common::scratch("rules-file");
    let dir = folder.path();
    std::fs::write(dir.join("order.json"), br#"{"id": 7}"#).unwrap();
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\npath = \"/order\"\nbody_file = \"order.json\"\nbytes = 64\n",
    )
    .unwrap();
    let server = spawn(Config {
        rules: Some(LiveRules::load(Some(&rules), None, &Config::default()).unwrap()),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET /order HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    })
    .await
    .unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    // The file, padded with spaces to bytes=64: still the same JSON.
    assert_eq!(body.len(), 64);
    assert_eq!(body.trim_end(), r#"{"id": 7}"#);
}
