//! `body_file`: a rule's answer read from a file beside the rules file.
//!
//! Only a regular file is read (never a device, a FIFO or a folder), its size is checked before
//! reading, and the read itself stops one byte past the cap, so a file that grows while it is read
//! cannot make the server hold more than `--max-body-bytes`.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::limits::RulesLimits;

/// Reads `written` (the `body_file` value) relative to `base` (the rules file's folder), under
/// `limits`. The error says what is wrong and how to fix it.
pub(crate) fn read(base: &Path, written: &Path, limits: &RulesLimits) -> Result<Vec<u8>, String> {
    let path = resolve(base, written, limits.allow_any_path)?;
    let not_regular = || {
        format!(
            "{} is not a regular file; give a file whose bytes are the answer",
            path.display()
        )
    };
    // Looked at before it is opened: opening a FIFO would wait for a writer for ever.
    let before =
        std::fs::metadata(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    if !before.is_file() {
        return Err(not_regular());
    }
    let file = File::open(&path).map_err(|err| format!("cannot open {}: {err}", path.display()))?;
    // And again once open, in case it was replaced in between.
    let metadata = file
        .metadata()
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    if !metadata.is_file() {
        return Err(not_regular());
    }
    let cap = limits.max_body_bytes;
    let too_large = |size: String| {
        format!(
            "{} is {size} bytes, over --max-body-bytes {cap}; use a smaller file or raise --max-body-bytes",
            path.display()
        )
    };
    if metadata.len() > cap {
        return Err(too_large(metadata.len().to_string()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    if bytes.len() as u64 > cap {
        // It grew while being read.
        return Err(too_large(format!("more than {cap}")));
    }
    Ok(bytes)
}

/// Where `written` points: inside `base` unless `allow_any_path`. Absolute paths and `..` are
/// refused, and so is a symbolic link that leads out of the folder.
fn resolve(base: &Path, written: &Path, allow_any_path: bool) -> Result<PathBuf, String> {
    let path = base.join(written);
    if allow_any_path {
        return Ok(path);
    }
    let outside = |why: &str| {
        format!(
            "{} {why}; body files are read from the rules file's folder and below (or start with --rules-allow-any-path)",
            written.display()
        )
    };
    if written.is_absolute() || written.has_root() {
        return Err(outside("is an absolute path"));
    }
    if written
        .components()
        .any(|part| matches!(part, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(outside("goes up with '..'"));
    }
    // A link inside the folder may still lead out of it: compare where both really are.
    if let (Ok(real_base), Ok(real_path)) = (base_dir(base).canonicalize(), path.canonicalize())
        && !real_path.starts_with(&real_base)
    {
        return Err(outside(&format!(
            "leads out of the folder (to {})",
            real_path.display()
        )));
    }
    Ok(path)
}

/// The folder itself: `Path::new("")` (a rules file given without a folder) means here.
fn base_dir(base: &Path) -> &Path {
    if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    }
}
