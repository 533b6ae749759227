//! What a rules file may hold: how many rules, how large the file and each body, where body files
//! may live, and what a rule's name may be.
//!
//! A rules file comes from whoever can write it, and a reload happens while the server answers
//! traffic: every size is checked before anything is read or built from it.

use crate::config::{Config, MAX_BODY_BYTES, MAX_RULES, MAX_RULES_FILE_BYTES};

/// The longest rule name, in bytes: it becomes a Prometheus label value on every scrape.
pub const MAX_NAME_BYTES: usize = 128;

/// The limits a rules file is loaded under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesLimits {
    /// Most `[[rule]]` tables (`--max-rules`).
    pub max_rules: usize,
    /// Largest rules file, in bytes (`--max-rules-file-bytes`).
    pub max_file_bytes: u64,
    /// Largest answer body a rule may carry, inline or from `body_file` (`--max-body-bytes`).
    pub max_body_bytes: u64,
    /// Let `body_file` be an absolute path or leave the rules file's folder
    /// (`--rules-allow-any-path`).
    pub allow_any_path: bool,
}

impl Default for RulesLimits {
    fn default() -> RulesLimits {
        RulesLimits {
            max_rules: MAX_RULES.default,
            max_file_bytes: MAX_RULES_FILE_BYTES.default,
            max_body_bytes: MAX_BODY_BYTES.default,
            allow_any_path: false,
        }
    }
}

impl RulesLimits {
    /// The default limits, with the body cap of `config` (`--max-body-bytes`).
    pub fn for_config(config: &Config) -> RulesLimits {
        RulesLimits {
            max_body_bytes: config.max_body_bytes,
            ..RulesLimits::default()
        }
    }
}

/// Checks a rule's `name`: 1 to [`MAX_NAME_BYTES`] bytes of printable ASCII other than `"` and
/// `\`, so that it is a Prometheus label value as written, with nothing to escape.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty; give the rule a short name, e.g. \"orders\"".to_owned());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "is {} bytes; a name is at most {MAX_NAME_BYTES} bytes, e.g. \"orders\"",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(' '..='~').contains(c) || *c == '"' || *c == '\\')
    {
        return Err(format!(
            "holds {bad:?}; a name is printable ASCII without '\"' or '\\', e.g. \"orders\""
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_printable_ascii() {
        assert!(check_name("slow search: /api/orders (v2)").is_ok());
        assert!(check_name(&"a".repeat(MAX_NAME_BYTES)).is_ok());
        assert!(check_name(&"a".repeat(MAX_NAME_BYTES + 1)).is_err());
        assert!(check_name("").is_err());
        assert!(check_name("a\"b").is_err());
        assert!(check_name("a\\b").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name("café").is_err());
    }
}
