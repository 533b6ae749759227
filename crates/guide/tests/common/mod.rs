//! Running the guide's example programs as built by `cargo test`, not through a nested `cargo run`.

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// The scale the tests run examples at: delays of 0.05 s per article second.
pub const TEST_SCALE: &str = "0.05";

/// `target/<profile>/`, found from this test binary's own path (`target/<profile>/deps/<test>`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The built example `name`. `cargo test` builds every example before it runs tests; a run limited
/// with `--test` does not, hence the hint.
pub fn example(name: &str) -> PathBuf {
    let path = profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is not built: run `cargo test -p slowlab-guide` (which builds the examples), \
         or `cargo build -p slowlab-guide --examples` first",
        path.display()
    );
    // `cargo test --test examples` runs without rebuilding examples: refuse a stale binary
    // rather than check yesterday's program.
    let built = modified(&path);
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for source in [
        crate_dir.join("examples").join(format!("{name}.rs")),
        crate_dir.join("src/lib.rs"),
    ] {
        assert!(
            modified(&source) <= built,
            "{} is older than {}: run `cargo build -p slowlab-guide --examples` first",
            path.display(),
            source.display()
        );
    }
    path
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The example timings are structural, but a CPU-bound example beside a timed one would still
/// blur them: examples run one at a time.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs example `name` with `args` at [`TEST_SCALE`] against its embedded server, and returns its
/// stdout after checking that it succeeded.
pub fn run_example(name: &str, args: &[&str]) -> String {
    run_example_with(name, args, &[])
}

/// [`run_example`] with extra environment variables.
pub fn run_example_with(name: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let _turn = one_at_a_time();
    let mut command = Command::new(example(name));
    command
        .args(args)
        .env("SLOWLAB_GUIDE_SCALE", TEST_SCALE)
        .env_remove("SLOWLAB_BASE_URL");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("the example starts");
    check_success(name, &output);
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

pub fn check_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The number after `prefix` on the line that starts with it, e.g. `seconds(out, "took ")`.
pub fn number_after(output: &str, prefix: &str) -> f64 {
    let rest = output
        .lines()
        .find_map(|line| line.split_once(prefix).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no line with {prefix:?} in:\n{output}"));
    let number: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no number after {prefix:?} in:\n{output}"))
}

/// Whether a test needing an outside tool must fail rather than skip when the tool is missing
/// (CI sets `SLOWLAB_REQUIRE_TOOLS=1`).
pub fn tools_required() -> bool {
    std::env::var("SLOWLAB_REQUIRE_TOOLS").is_ok_and(|value| value == "1")
}
