//! Path patterns of rules: exact paths, prefixes, globs and `{param}` segments.

use globset::{GlobBuilder, GlobMatcher};

/// How a rule matches a request's path.
#[derive(Debug, Clone)]
pub(crate) enum PathMatch {
    /// `path = "/api/orders"`: this path only.
    Exact(String),
    /// `prefix = "/api/"`: every path starting so.
    Prefix(String),
    /// `path = "/api/orders/{id}"`, `"/files/*.json"`, `"/api/**"`: a glob where `*` and `{param}`
    /// stand for one segment's characters and `**` for any number of segments. `literal` is the
    /// pattern up to its first special character: every path it matches starts so.
    Glob {
        /// The compiled glob.
        matcher: GlobMatcher,
        /// The pattern's literal start, e.g. `/api/orders/` for `/api/orders/{id}`.
        literal: String,
    },
}

impl PathMatch {
    /// `path = PATTERN`: exact unless it holds glob characters or `{param}` segments.
    pub(crate) fn path(pattern: &str) -> Result<PathMatch, String> {
        if !pattern.starts_with('/') {
            return Err(format!("{pattern:?} does not start with '/'"));
        }
        if !pattern.contains(['*', '?', '[', '{']) {
            return Ok(PathMatch::Exact(pattern.to_owned()));
        }
        // `{param}` names a segment; to the glob it is any one non-empty segment (`?*`: one
        // character, then any, never a '/'). A `{a,b}` alternation is left to the glob.
        let glob: Vec<String> = pattern
            .split('/')
            .map(|segment| {
                let is_param = segment
                    .strip_prefix('{')
                    .and_then(|s| s.strip_suffix('}'))
                    .is_some_and(|name| {
                        !name.is_empty()
                            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    });
                if is_param {
                    "?*".to_owned()
                } else {
                    segment.to_owned()
                }
            })
            .collect();
        let glob = glob.join("/");
        let compiled = GlobBuilder::new(&glob)
            .literal_separator(true)
            .build()
            .map_err(|err| format!("{pattern:?} is not a valid pattern: {}", err.kind()))?;
        let literal_end = pattern
            .find(['*', '?', '[', '{', '\\'])
            .unwrap_or(pattern.len());
        Ok(PathMatch::Glob {
            matcher: compiled.compile_matcher(),
            literal: pattern[..literal_end].to_owned(),
        })
    }

    /// `prefix = PREFIX`.
    pub(crate) fn prefix(prefix: &str) -> Result<PathMatch, String> {
        if !prefix.starts_with('/') {
            return Err(format!("{prefix:?} does not start with '/'"));
        }
        Ok(PathMatch::Prefix(prefix.to_owned()))
    }

    /// Whether `path` (as sent, not decoded) matches.
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(exact) => path == exact,
            PathMatch::Prefix(prefix) => path.starts_with(prefix.as_str()),
            PathMatch::Glob { matcher, .. } => matcher.is_match(path),
        }
    }

    /// What every matching path starts with (or, for an exact path, is): how the rule index
    /// files the rule.
    pub(crate) fn literal(&self) -> &str {
        match self {
            PathMatch::Exact(text) | PathMatch::Prefix(text) => text,
            PathMatch::Glob { literal, .. } => literal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str) -> bool {
        PathMatch::path(pattern).unwrap().matches(path)
    }

    #[test]
    fn exact_params_and_globs() {
        assert!(matches("/api/orders", "/api/orders"));
        assert!(!matches("/api/orders", "/api/orders/1"));
        assert!(matches("/api/orders/{id}", "/api/orders/42"));
        assert!(!matches("/api/orders/{id}", "/api/orders/42/items"));
        assert!(!matches("/api/orders/{id}", "/api/orders/"));
        assert!(matches("/api/{kind}/{id}/items", "/api/orders/42/items"));
        assert!(matches("/files/*.json", "/files/a.json"));
        assert!(!matches("/files/*.json", "/files/a/b.json"));
        assert!(matches("/api/**", "/api/a/b/c"));
        assert!(matches("/v{1,2}/ping", "/v2/ping"));
        assert!(PathMatch::prefix("/api/").unwrap().matches("/api/x/y"));
        assert!(!PathMatch::prefix("/api/").unwrap().matches("/apix"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(PathMatch::path("api/orders").is_err());
        assert!(PathMatch::path("/files/[a").is_err());
        assert!(PathMatch::path("/a/{b").is_err());
        assert!(PathMatch::prefix("api").is_err());
    }
}
