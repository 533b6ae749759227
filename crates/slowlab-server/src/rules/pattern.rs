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
    /// `path = "/api/orders/{id}/items"`: literal segments and `{param}` segments only, the
    /// commonest pattern, matched segment by segment. A compiled glob costs kilobytes and tens of
    /// microseconds to build; this costs the pattern's own bytes.
    Segments {
        /// Each segment after the leading '/': its text, or `None` for a `{param}`.
        segments: Vec<Option<Box<str>>>,
        /// The pattern's literal start, as for a glob.
        literal: String,
    },
}

/// Whether a pattern segment is a `{param}`: a name of letters, digits and '_' in braces.
fn is_param(segment: &str) -> bool {
    segment
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .is_some_and(|name| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// Characters a glob gives a meaning to.
const GLOB_SPECIAL: [char; 8] = ['*', '?', '[', ']', '{', '}', '\\', ','];

impl PathMatch {
    /// `path = PATTERN`: exact unless it holds glob characters or `{param}` segments.
    pub(crate) fn path(pattern: &str) -> Result<PathMatch, String> {
        if !pattern.starts_with('/') {
            return Err(format!("{pattern:?} does not start with '/'"));
        }
        if !pattern.contains(['*', '?', '[', '{']) {
            return Ok(PathMatch::Exact(pattern.to_owned()));
        }
        let literal_end = pattern
            .find(['*', '?', '[', '{', '\\'])
            .unwrap_or(pattern.len());
        let literal = pattern[..literal_end].to_owned();
        let segments: Vec<&str> = pattern[1..].split('/').collect();
        if segments
            .iter()
            .all(|segment| is_param(segment) || !segment.contains(GLOB_SPECIAL))
        {
            let segments = segments
                .iter()
                .map(|segment| (!is_param(segment)).then(|| Box::from(*segment)))
                .collect();
            return Ok(PathMatch::Segments { segments, literal });
        }
        PathMatch::glob(pattern, literal)
    }

    /// `pattern` as a compiled glob, whatever it holds.
    fn glob(pattern: &str, literal: String) -> Result<PathMatch, String> {
        // `{param}` names a segment; to the glob it is any one non-empty segment (`?*`: one
        // character, then any, never a '/'). A `{a,b}` alternation is left to the glob.
        let glob: Vec<String> = pattern
            .split('/')
            .map(|segment| {
                if is_param(segment) {
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
        Ok(PathMatch::Glob {
            matcher: compiled.compile_matcher(),
            literal,
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
            PathMatch::Segments { segments, .. } => {
                let Some(rest) = path.strip_prefix('/') else {
                    return false;
                };
                let mut parts = rest.split('/');
                segments.iter().all(|wanted| {
                    parts.next().is_some_and(|part| match wanted {
                        Some(text) => part == &**text,
                        None => !part.is_empty(),
                    })
                }) && parts.next().is_none()
            }
        }
    }

    /// What every matching path starts with (or, for an exact path, is): how the rule index
    /// files the rule.
    pub(crate) fn literal(&self) -> &str {
        match self {
            PathMatch::Exact(text) | PathMatch::Prefix(text) => text,
            PathMatch::Glob { literal, .. } | PathMatch::Segments { literal, .. } => literal,
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
    fn segments_match_as_the_glob_would() {
        let patterns = [
            "/api/orders/{id}",
            "/api/{kind}/{id}/items",
            "/{a}",
            "/{a}/",
            "/x/{a}/{b}",
            "/é/{id}",
        ];
        let paths = [
            "/",
            "/a",
            "/a/",
            "/api/orders/42",
            "/api/orders/",
            "/api/orders/42/",
            "/api/orders/42/x",
            "/api/o/1/items",
            "/api/o//items",
            "/x/1/2",
            "/x/1/2/",
            "/x//2",
            "/é/1",
            "//",
            "",
        ];
        for pattern in patterns {
            let segments = PathMatch::path(pattern).unwrap();
            assert!(matches!(segments, PathMatch::Segments { .. }), "{pattern}");
            let glob = PathMatch::glob(pattern, String::new()).unwrap();
            for path in paths {
                assert_eq!(
                    segments.matches(path),
                    glob.matches(path),
                    "{pattern} on {path:?}"
                );
            }
        }
        assert!(matches!(
            PathMatch::path("/a/{b,c}").unwrap(),
            PathMatch::Glob { .. }
        ));
        assert!(matches!(
            PathMatch::path("/a/{id}.json").unwrap(),
            PathMatch::Glob { .. }
        ));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(PathMatch::path("api/orders").is_err());
        assert!(PathMatch::path("/files/[a").is_err());
        assert!(PathMatch::path("/a/{b").is_err());
        assert!(PathMatch::prefix("api").is_err());
    }
}
