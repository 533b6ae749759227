//! The guide's text cannot drift from what CI runs:
//!
//! - every ```` ```rust ```` block marked `<!-- file: PATH -->` is that file, byte for byte, and
//!   every example is shown in some chapter;
//! - every ```` ```sh ```` block is either run here (each line a `cargo run -p slowlab-guide
//!   --example ...`, run as the built example at the test scale) or marked
//!   `<!-- not run: REASON -->`;
//! - the README links the guide, and the guide's index links every chapter.
//!
//! After changing an example, `SLOWLAB_GUIDE_BLESS=1 cargo test -p slowlab-guide --test
//! chapters_match` copies the files into the chapters.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TEST_SCALE, check_success, example, one_at_a_time};

const FILE_MARK: &str = "<!-- file: ";
const NOT_RUN_MARK: &str = "<!-- not run: ";
const PYTHON_MARK: &str = "<!-- python: ";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The chapters and the index, in name order.
fn guide_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repo_root().join("docs/guide"))
        .expect("docs/guide exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    pages
}

/// A fenced block: its language, the line before its opening fence, and its body's byte range.
struct Block {
    language: String,
    mark: String,
    body: std::ops::Range<usize>,
    line: usize,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut offset = 0;
    let mut previous = "";
    let mut open: Option<(String, String, usize, usize)> = None;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        match &open {
            None => {
                if let Some(language) = trimmed.strip_prefix("```") {
                    let start = offset + line.len();
                    open = Some((language.to_owned(), previous.to_owned(), start, number + 1));
                } else {
                    previous = trimmed;
                }
            }
            Some((language, mark, start, opened)) => {
                if trimmed == "```" {
                    found.push(Block {
                        language: language.clone(),
                        mark: mark.clone(),
                        body: *start..offset,
                        line: *opened,
                    });
                    open = None;
                    previous = "";
                }
            }
        }
        offset += line.len();
    }
    assert!(open.is_none(), "a fence is never closed");
    found
}

fn marked_path(mark: &str) -> Option<&str> {
    mark.strip_prefix(FILE_MARK)?.strip_suffix(" -->")
}

#[test]
fn every_marked_rust_block_is_its_file_and_every_example_is_shown() {
    let bless = std::env::var("SLOWLAB_GUIDE_BLESS").is_ok_and(|value| value == "1");
    let root = repo_root();
    let mut shown = Vec::new();
    let mut stale = Vec::new();
    for page in guide_pages() {
        let mut text = std::fs::read_to_string(&page).unwrap();
        // Back to front, so that blessing one block does not move the ones before it.
        for block in blocks(&text).into_iter().rev() {
            let Some(path) = marked_path(&block.mark) else {
                continue;
            };
            assert_eq!(block.language, "rust", "{}:{}", page.display(), block.line);
            let file = std::fs::read_to_string(root.join(path))
                .unwrap_or_else(|err| panic!("{}:{}: {path}: {err}", page.display(), block.line));
            if text[block.body.clone()] != file {
                stale.push(format!("{}:{} shows {path}", page.display(), block.line));
                text.replace_range(block.body.clone(), &file);
            }
            shown.push(path.to_owned());
        }
        if bless {
            std::fs::write(&page, text).unwrap();
        }
    }
    assert!(
        bless || stale.is_empty(),
        "these blocks differ from their files (bless with SLOWLAB_GUIDE_BLESS=1):\n{}",
        stale.join("\n")
    );
    for entry in std::fs::read_dir(root.join("crates/guide/examples")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let path = format!("crates/guide/examples/{name}");
        assert!(shown.contains(&path), "{path} is shown in no chapter");
    }
}

/// A command the test can run: `[VAR=VALUE ...] cargo run [--release] -p slowlab-guide --example
/// NAME [-- ARGS...]`, as the built example.
#[derive(Debug, PartialEq)]
struct ExampleCommand {
    env: Vec<(String, String)>,
    name: String,
    args: Vec<String>,
}

fn example_command(line: &str) -> Option<ExampleCommand> {
    let mut words = line.split_whitespace().peekable();
    let mut env = Vec::new();
    while let Some((key, value)) = words.peek().and_then(|word| word.split_once('=')) {
        env.push((key.to_owned(), value.to_owned()));
        words.next();
    }
    let words: Vec<&str> = words.collect();
    let (command, args) = match words.iter().position(|word| *word == "--") {
        Some(split) => (&words[..split], &words[split + 1..]),
        None => (&words[..], &[][..]),
    };
    let command: Vec<&str> = command
        .iter()
        .copied()
        .filter(|w| *w != "--release")
        .collect();
    match command.as_slice() {
        ["cargo", "run", "-p", "slowlab-guide", "--example", name] => Some(ExampleCommand {
            env,
            name: (*name).to_owned(),
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        }),
        _ => None,
    }
}

#[test]
fn every_shell_command_is_run_here_or_marked_not_run() {
    let mut ran = 0;
    for page in guide_pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for block in blocks(&text) {
            if block.language != "sh" {
                continue;
            }
            let at = format!("{}:{}", page.display(), block.line);
            if let Some(reason) = block.mark.strip_prefix(NOT_RUN_MARK) {
                let reason = reason.trim_end_matches("-->").trim();
                assert!(reason.len() > 10, "{at}: say why the block is not run");
                continue;
            }
            for line in text[block.body.clone()].lines() {
                let command = line.split(" #").next().unwrap().trim();
                if command.is_empty() || command.starts_with('#') {
                    continue;
                }
                let ExampleCommand { env, name, args } = example_command(command).unwrap_or_else(|| {
                    panic!("{at}: {command:?} is neither an example's cargo run nor marked `{NOT_RUN_MARK}REASON -->`")
                });
                let _turn = one_at_a_time();
                let output = Command::new(example(&name))
                    .args(&args)
                    .envs(env)
                    .env("SLOWLAB_GUIDE_SCALE", TEST_SCALE)
                    .env_remove("SLOWLAB_BASE_URL")
                    .output()
                    .unwrap();
                check_success(&format!("{at}: {command}"), &output);
                ran += 1;
            }
        }
    }
    assert!(
        ran >= 8,
        "only {ran} commands ran: every chapter has one to run"
    );
}

#[test]
fn the_readme_links_the_guide_and_the_index_links_every_chapter() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("(docs/guide/README.md)"),
        "README.md does not link the guide"
    );
    let index = std::fs::read_to_string(root.join("docs/guide/README.md")).unwrap();
    for page in guide_pages() {
        let name = page.file_name().unwrap().to_str().unwrap();
        if name != "README.md" {
            assert!(
                index.contains(&format!("({name})")),
                "the index does not link {name}"
            );
        }
    }
}

/// Python is not copied whole into a chapter (a file has imports and scaffolding the article's
/// snippet leaves out), so each block must be an unbroken part of the file its mark names.
#[test]
fn every_python_block_is_part_of_its_file_and_every_file_is_shown() {
    let root = repo_root();
    let mut shown = Vec::new();
    for page in guide_pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for block in blocks(&text) {
            if block.language != "python" {
                continue;
            }
            let at = format!("{}:{}", page.display(), block.line);
            let path = block
                .mark
                .strip_prefix(PYTHON_MARK)
                .and_then(|rest| rest.strip_suffix(" -->"))
                .unwrap_or_else(|| panic!("{at}: mark the block `{PYTHON_MARK}PATH -->`"));
            let file = std::fs::read_to_string(root.join(path))
                .unwrap_or_else(|err| panic!("{at}: {path}: {err}"));
            assert!(
                file.contains(&text[block.body.clone()]),
                "{at}: the block is not a part of {path}, line for line"
            );
            shown.push(path.to_owned());
        }
    }
    for entry in std::fs::read_dir(root.join("crates/guide/python")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".py") {
            let path = format!("crates/guide/python/{name}");
            let linked = format!("(../../{path})");
            let mentioned = guide_pages()
                .iter()
                .any(|page| std::fs::read_to_string(page).unwrap().contains(&linked));
            assert!(
                shown.contains(&path) || mentioned,
                "{path} is neither shown nor linked in any chapter"
            );
        }
    }
}

/// The measured chapters cite `docs/guide/results/chNN.json`, written by `crates/guide/measure`:
/// a chapter shows its first run's output verbatim, and the wall times of any further runs (in a
/// table).
#[test]
fn measured_output_in_the_chapters_is_from_the_results_files() {
    let root = repo_root();
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("docs/guide/results")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let results: serde_json::Value = serde_json::from_str(&text).unwrap();
        let chapter = results["chapter"].as_u64().expect("a chapter number");
        let prefix = format!("{chapter:02}-");
        let page = guide_pages()
            .into_iter()
            .find(|page| {
                page.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(&prefix)
            })
            .unwrap_or_else(|| panic!("{}: no chapter {chapter}", path.display()));
        let shown = std::fs::read_to_string(&page).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            shown.contains(&format!("results/{name}")),
            "{} does not cite {name}",
            page.display()
        );
        let runs = results["runs"].as_array().expect("runs");
        for (number, run) in runs.iter().enumerate() {
            let machine = &run["machine_before"];
            assert!(
                machine["load_average"].is_array() && machine["cores_usable"].is_u64(),
                "{name}: run {number} does not record the load and the cores"
            );
            let stdout = run["stdout"].as_str().unwrap();
            if number == 0 {
                assert!(
                    shown.contains(stdout),
                    "{} does not show the output of {name}'s first run verbatim",
                    page.display()
                );
                continue;
            }
            for line in stdout.lines() {
                // The race's table rows: `MODE  WALL s  IDEAL s (...)  EFFICIENCY  OK`.
                let words: Vec<&str> = line.split_whitespace().collect();
                if matches!(words.as_slice(), ["sequential" | "async", _, "s", ..]) {
                    let wall = words[1];
                    assert!(
                        shown.contains(&format!("{wall} s")),
                        "{} does not show {name}'s run {number}: {line}",
                        page.display()
                    );
                }
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 4,
        "chapters 1, 4, 7 and 8 each have a results file"
    );
}

#[test]
fn the_block_parser_finds_marks_and_bodies() {
    let text = "intro\n<!-- file: a.rs -->\n```rust\nfn main() {}\n```\n\n```sh\nls\n```\n";
    let found = blocks(text);
    assert_eq!(found.len(), 2);
    assert_eq!(marked_path(&found[0].mark), Some("a.rs"));
    assert_eq!(&text[found[0].body.clone()], "fn main() {}\n");
    assert_eq!(found[1].language, "sh");
    assert_eq!(found[1].mark, "");
    assert_eq!(
        example_command(
            "SLOWLAB_GUIDE_SCALE=0.1 cargo run --release -p slowlab-guide --example ch01 -- x"
        ),
        Some(ExampleCommand {
            env: vec![("SLOWLAB_GUIDE_SCALE".to_owned(), "0.1".to_owned())],
            name: "ch01".to_owned(),
            args: vec!["x".to_owned()],
        })
    );
    assert_eq!(example_command("cargo run -- race"), None);
}
