//! Fuzzes the rules file parser (`slowlab serve --rules FILE`): any text is a set of rules or an
//! error that names the file, never a panic.
//!
//! Run with `cargo +nightly fuzz run parse_rules` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use slowlab_server::Rules;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `body_file` paths start in a folder that does not exist, so nothing on disk is read.
    let base = std::path::Path::new("/nonexistent-slowlab-fuzz");
    if let Err(err) = Rules::parse(text, "fuzz.toml", base) {
        assert_eq!(err.file, "fuzz.toml");
        assert!(!err.detail.is_empty());
    }
});
