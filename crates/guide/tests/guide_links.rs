//! Every link in the guide leads somewhere: a relative link names a file that exists, and a
//! `#fragment` names a heading of its page, spelled as GitHub spells heading anchors. The
//! glossary page is linked from the chapters by fragment, so a renamed heading would otherwise
//! break them silently.

use std::path::{Path, PathBuf};

fn guide_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/guide")
}

/// The text of a page without its fenced blocks: links are not looked for in code.
fn prose(text: &str) -> String {
    let mut in_fence = false;
    let mut kept = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// The targets of `[text](target)` links.
fn link_targets(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            rest.find(')').map(|end| rest[..end].to_owned())
        })
        .collect()
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` removed, each
/// space a `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(page).unwrap();
    prose(&text)
        .lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_relative_link_and_fragment_in_the_guide_resolves() {
    let dir = guide_dir();
    let mut checked = 0;
    let mut broken = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let page = entry.unwrap().path();
        if page.extension().is_none_or(|ext| ext != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&page).unwrap();
        for target in link_targets(&prose(&text)) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                page.clone()
            } else {
                dir.join(path)
            };
            let name = page.file_name().unwrap().to_string_lossy();
            if !file.exists() {
                broken.push(format!("{name}: ({target}): no such file"));
            } else if let Some(fragment) = fragment
                && !anchors(&file).iter().any(|anchor| anchor == fragment)
            {
                broken.push(format!("{name}: ({target}): no such heading"));
            }
            checked += 1;
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        checked > 50,
        "only {checked} links found: is the parser still right?"
    );
}

#[test]
fn anchors_are_spelled_as_github_spells_them() {
    assert_eq!(anchor(" `Pin` and `pin!`"), "pin-and-pin");
    assert_eq!(
        anchor("1. A task of its own: `spawn` and `async move`"),
        "1-a-task-of-its-own-spawn-and-async-move"
    );
    assert_eq!(anchor("`spawn_blocking`"), "spawn_blocking");
    assert_eq!(
        link_targets("see [a](x.md#y) and [b](z.md)"),
        ["x.md#y", "z.md"]
    );
}
