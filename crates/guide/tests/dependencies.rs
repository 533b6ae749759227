//! The guide's own dependencies stay in the guide crate: a project that embeds the slow server or
//! the clients does not build an HTTP client, rayon or futures for a tutorial's sake.

use std::path::Path;

/// Dependency names declared in a manifest (any table), one per `name = ...` or `name.workspace`.
fn declared(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    text.lines()
        .filter(|line| !line.starts_with('[') && !line.starts_with('#'))
        .filter_map(|line| line.split(['=', '.']).next())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn the_libraries_do_not_gain_the_guides_dependencies() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let guide = declared(crates.join("guide/Cargo.toml").to_str().unwrap());
    for only_here in ["reqwest", "rayon", "futures"] {
        assert!(
            guide.iter().any(|name| name == only_here),
            "the guide uses {only_here}"
        );
        for library in ["slowlab-server", "slowlab-client"] {
            let manifest = crates.join(library).join("Cargo.toml");
            let names = declared(manifest.to_str().unwrap());
            assert!(
                !names.iter().any(|name| name == only_here),
                "{library} depends on {only_here}, which only the guide needs"
            );
        }
    }
}
