//! Rules files under hostile input: body files that never end or live elsewhere, bodies over
//! `--max-body-bytes`, too many rules, too large a file, names no label should carry; and the
//! rule index, which must find the rule a plain scan finds.

mod common;

use std::path::Path;

use axum::http::{HeaderMap, Method};
use common::scratch;
use proptest::prelude::*;
use slowlab_server::Config;
use slowlab_server::rules::{LiveRules, MAX_NAME_BYTES, Rules, RulesError, RulesLimits};

/// Writes `text` as `rules.toml` in `dir` and loads it under `limits`.
fn load(dir: &Path, text: &str, limits: &RulesLimits) -> Result<Rules, RulesError> {
    let file = dir.join("rules.toml");
    std::fs::write(&file, text).unwrap();
    slowlab_server::rules::load(&file, limits)
}

fn limits() -> RulesLimits {
    RulesLimits::default()
}

#[test]
fn a_body_file_that_never_ends_is_refused_before_it_is_read() {
    let folder = scratch("rules-dev-zero");
    let dir = folder.path();
    let text = "[[rule]]\nname = \"zero\"\npath = \"/z\"\nbody_file = \"/dev/zero\"\n";
    // Refused for its place (an absolute path)...
    let err = load(dir, text, &limits()).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("body_file"), "{err}");
    assert!(err.detail.contains("absolute path"), "{err}");
    assert!(err.detail.contains("--rules-allow-any-path"), "{err}");
    // ...and, where any path is allowed, for what it is: not a regular file.
    let anywhere = RulesLimits {
        allow_any_path: true,
        ..limits()
    };
    let err = load(dir, text, &anywhere).unwrap_err();
    assert!(err.detail.contains("not a regular file"), "{err}");
    // A FIFO in the folder itself would block a read for ever: refused the same way.
    let fifo = dir.join("pipe");
    if std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        let text = "[[rule]]\npath = \"/p\"\nbody_file = \"pipe\"\n";
        let err = load(dir, text, &limits()).unwrap_err();
        assert!(err.detail.contains("not a regular file"), "{err}");
    } else {
        println!("skipped the FIFO case: mkfifo is not available");
    }
}

#[test]
fn body_files_stay_in_the_rules_folder_unless_allowed() {
    let folder = scratch("rules-escape");
    let root = folder.path();
    let dir = root.join("rules");
    std::fs::create_dir_all(dir.join("bodies")).unwrap();
    std::fs::write(root.join("secret.txt"), "secret").unwrap();
    std::fs::write(dir.join("bodies/ok.json"), "{\"ok\": true}").unwrap();
    let rule = |file: &str| format!("[[rule]]\npath = \"/x\"\nbody_file = {file:?}\n");

    assert!(load(&dir, &rule("bodies/ok.json"), &limits()).is_ok());
    let err = load(&dir, &rule("../secret.txt"), &limits()).unwrap_err();
    assert!(err.detail.contains("'..'"), "{err}");
    let absolute = root.join("secret.txt");
    let err = load(&dir, &rule(absolute.to_str().unwrap()), &limits()).unwrap_err();
    assert!(err.detail.contains("absolute path"), "{err}");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&absolute, dir.join("link.txt")).unwrap();
        let err = load(&dir, &rule("link.txt"), &limits()).unwrap_err();
        assert!(err.detail.contains("leads out of the folder"), "{err}");
    }
    let anywhere = RulesLimits {
        allow_any_path: true,
        ..limits()
    };
    assert!(load(&dir, &rule("../secret.txt"), &anywhere).is_ok());
    assert!(load(&dir, &rule(absolute.to_str().unwrap()), &anywhere).is_ok());
}

#[test]
fn bodies_over_max_body_bytes_are_refused_inline_and_from_files() {
    let folder = scratch("rules-body-cap");
    let dir = folder.path();
    std::fs::write(dir.join("big.txt"), vec![b'x'; 1001]).unwrap();
    std::fs::write(dir.join("fits.txt"), vec![b'x'; 1000]).unwrap();
    let small = RulesLimits {
        max_body_bytes: 1000,
        ..limits()
    };
    let inline = format!(
        "[[rule]]\nname = \"big\"\npath = \"/b\"\nbody = \"{}\"\n",
        "x".repeat(1001)
    );
    let err = load(dir, &inline, &small).unwrap_err();
    assert_eq!(err.rule.as_deref(), Some("rule 1 (\"big\")"), "{err}");
    assert_eq!(err.field.as_deref(), Some("body"), "{err}");
    assert!(err.detail.contains("--max-body-bytes 1000"), "{err}");

    let json = format!(
        "[[rule]]\npath = \"/j\"\njson = {{ a = \"{}\" }}\n",
        "x".repeat(1000)
    );
    let err = load(dir, &json, &small).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("json"), "{err}");

    let file = "[[rule]]\npath = \"/f\"\nbody_file = \"big.txt\"\n";
    let err = load(dir, file, &small).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("body_file"), "{err}");
    assert!(err.detail.contains("1001 bytes"), "{err}");
    assert!(err.detail.contains("--max-body-bytes 1000"), "{err}");
    assert!(
        load(
            dir,
            "[[rule]]\npath = \"/f\"\nbody_file = \"fits.txt\"\n",
            &small
        )
        .is_ok()
    );

    // The server's own entry point takes the cap from its configuration (--max-body-bytes).
    std::fs::write(dir.join("rules.toml"), &inline).unwrap();
    let config = Config {
        max_body_bytes: 1000,
        ..Config::default()
    };
    let err = LiveRules::load(Some(&dir.join("rules.toml")), None, &config).unwrap_err();
    assert!(err.detail.contains("--max-body-bytes 1000"), "{err}");
}

#[test]
fn too_many_rules_or_too_large_a_file_is_refused_with_the_flag() {
    let folder = scratch("rules-caps");
    let dir = folder.path();
    let three = "[[rule]]\npath = \"/a\"\n[[rule]]\npath = \"/b\"\n[[rule]]\npath = \"/c\"\n";
    let two_at_most = RulesLimits {
        max_rules: 2,
        ..limits()
    };
    let err = load(dir, three, &two_at_most).unwrap_err();
    assert!(
        err.detail.contains("more than 2 rules, over --max-rules 2"),
        "{err}"
    );
    assert!(load(dir, three, &limits()).is_ok());

    let tiny = RulesLimits {
        max_file_bytes: 20,
        ..limits()
    };
    let err = load(dir, three, &tiny).unwrap_err();
    assert!(
        err.detail.contains(&format!(
            "is {} bytes, over --max-rules-file-bytes 20",
            three.len()
        )),
        "{err}"
    );
}

#[test]
fn rule_names_are_short_label_safe_text() {
    let folder = scratch("rules-names");
    let dir = folder.path();
    let long = "n".repeat(10 * 1024 * 1024);
    let err = load(
        dir,
        &format!("[[rule]]\nname = \"{long}\"\npath = \"/a\"\n"),
        &limits(),
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("name"), "{}", err.detail);
    assert!(
        err.detail
            .contains(&format!("at most {MAX_NAME_BYTES} bytes")),
        "{}",
        err.detail
    );
    // The message does not repeat the 10 MB name.
    assert!(err.to_string().len() < 1000);
    let err = load(dir, "[[rule]]\nname = 'a\"b'\npath = \"/a\"\n", &limits()).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("name"), "{err}");
    let fits = "n".repeat(MAX_NAME_BYTES);
    assert!(
        load(
            dir,
            &format!("[[rule]]\nname = \"{fits}\"\npath = \"/a\"\n"),
            &limits()
        )
        .is_ok()
    );
}

#[test]
fn tcp_tables_are_left_for_the_proxy() {
    let folder = scratch("rules-tcp");
    let dir = folder.path();
    let text = "[[rule]]\npath = \"/a\"\n\n[[tcp]]\nlisten = \"127.0.0.1:0\"\n";
    let rules = load(dir, text, &limits()).unwrap();
    assert_eq!(rules.len(), 1);
    // Other unknown keys are still refused.
    assert!(load(dir, "[[rules]]\npath = \"/a\"\n", &limits()).is_err());
}

#[test]
fn twenty_thousand_rules_load_and_route_like_a_scan() {
    // Exact, prefix and pattern rules in one large file: the index must give what a scan gives.
    let mut text = String::new();
    for i in 0..20_000 {
        match i % 4 {
            0 => text.push_str(&format!("[[rule]]\npath = \"/api/item/{i}\"\n")),
            1 => text.push_str(&format!("[[rule]]\nprefix = \"/files/{i}/\"\n")),
            2 => text.push_str(&format!("[[rule]]\npath = \"/api/{i}/{{id}}\"\n")),
            _ => text.push_str(&format!(
                "[[rule]]\nmethod = \"POST\"\npath = \"/api/item/{}\"\n",
                i - 3
            )),
        }
    }
    let rules = Rules::parse(&text, "big.toml", Path::new(".")).unwrap();
    assert_eq!(rules.len(), 20_000);
    let headers = HeaderMap::new();
    for path in [
        "/api/item/4",
        "/api/item/19996",
        "/api/item/3",
        "/files/5/a/b",
        "/files/5",
        "/api/6/42",
        "/api/6/42/x",
        "/nowhere",
        "/healthz",
        "/1",
    ] {
        for method in [Method::GET, Method::POST] {
            assert_eq!(
                rules.route(&method, path, None, &headers),
                rules.route_by_scan(&method, path, None, &headers),
                "{method} {path}"
            );
        }
    }
}

/// One rule's match fields, as TOML.
#[derive(Debug, Clone)]
enum PathSpec {
    Exact(String),
    Prefix(String),
    Pattern(String),
    Any,
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("ab".to_owned()),
        Just("b".to_owned()),
        Just("1".to_owned()),
        Just("é".to_owned()),
    ]
}

fn literal_path() -> impl Strategy<Value = String> {
    proptest::collection::vec(segment(), 0..4).prop_map(|s| format!("/{}", s.join("/")))
}

fn path_spec() -> impl Strategy<Value = PathSpec> {
    let pattern_segment = prop_oneof![
        segment(),
        Just("{id}".to_owned()),
        Just("*".to_owned()),
        Just("**".to_owned()),
        Just("a*".to_owned()),
        Just("{a,b}".to_owned()),
    ];
    prop_oneof![
        literal_path().prop_map(PathSpec::Exact),
        (literal_path(), any::<bool>()).prop_map(|(mut p, cut)| {
            // A prefix may end in the middle of a segment: `/a` also starts `/ab`.
            if cut && p.len() > 1 {
                p.pop();
            }
            PathSpec::Prefix(p)
        }),
        proptest::collection::vec(pattern_segment, 1..4)
            .prop_map(|s| PathSpec::Pattern(format!("/{}", s.join("/")))),
        Just(PathSpec::Any),
    ]
}

fn rule_toml(spec: &PathSpec, post_only: bool) -> String {
    let mut text = String::from("[[rule]]\n");
    if post_only {
        text.push_str("method = \"POST\"\n");
    }
    match spec {
        PathSpec::Exact(p) | PathSpec::Pattern(p) => text.push_str(&format!("path = {p:?}\n")),
        PathSpec::Prefix(p) => text.push_str(&format!("prefix = {p:?}\n")),
        PathSpec::Any => text.push_str("method = [\"PUT\"]\n"),
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_index_finds_the_rule_a_scan_finds(
        specs in proptest::collection::vec((path_spec(), any::<bool>()), 0..12),
        paths in proptest::collection::vec(
            prop_oneof![literal_path(), literal_path().prop_map(|p| p + "/")], 1..8),
    ) {
        let text: String = specs
            .iter()
            .filter(|(spec, post)| !(matches!(spec, PathSpec::Any) && *post))
            .map(|(spec, post)| rule_toml(spec, *post))
            .collect();
        let rules = Rules::parse(&text, "prop.toml", Path::new(".")).unwrap();
        let headers = HeaderMap::new();
        for path in &paths {
            for method in [Method::GET, Method::POST, Method::PUT] {
                prop_assert_eq!(
                    rules.route(&method, path, None, &headers),
                    rules.route_by_scan(&method, path, None, &headers),
                    "{} {} in\n{}", method, path, text
                );
            }
        }
    }
}

#[test]
fn a_large_file_read_in_pieces_means_what_it_says_whole() {
    // Past a piece's worth of rules, with `[[rule]]` lines inside a multi-line string, a
    // subtable after its rule, and the default at the end.
    let mut text = String::from("# preamble\n");
    for i in 0..600 {
        text.push_str(&format!("[[rule]]\nname = \"r{i}\"\npath = \"/p/{i}\"\n"));
        if i == 300 {
            text.push_str("body = \"\"\"\n[[rule]]\npath = \"/not-a-rule\"\n\"\"\"\n");
        }
        if i == 511 {
            text.push_str("[rule.headers]\nx-piece = \"edge\"\n");
        }
    }
    text.push_str("[default]\ndelay = 0\n");
    let rules = Rules::parse(&text, "pieces.toml", Path::new(".")).unwrap();
    assert_eq!(rules.len(), 600);
    assert!(rules.has_default());
    let headers = HeaderMap::new();
    assert_eq!(
        rules.route(&Method::GET, "/p/599", None, &headers),
        slowlab_server::rules::Route::Rule(599)
    );
    // The `[[rule]]` inside the string is a body, not a rule.
    assert!(!matches!(
        rules.route(&Method::GET, "/not-a-rule", None, &headers),
        slowlab_server::rules::Route::Rule(_)
    ));
    // Two [default] tables, far apart, are still one too many.
    let twice = format!("[default]\ndelay = 0\n{text}");
    assert!(Rules::parse(&twice, "pieces.toml", Path::new(".")).is_err());
}
