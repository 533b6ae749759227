//! Rules for any path: `slowlab serve --rules FILE` makes the paths a client already calls
//! (`/api/orders/42`) slow and flaky, without changing the client.
//!
//! A rules file is an ordered list of `[[rule]]` tables, each matching a method and a path (exact,
//! prefix, glob or `{param}` segments, optionally a header or query value) and saying how to wait,
//! how to fail and what to answer, in the URL's own option words; and an optional `[default]` for
//! every other path. A request goes to, in order:
//!
//! 1. the server's own paths (`/`, `/healthz`, `/metrics`, `/anything`, and its pages);
//! 2. the first rule that matches;
//! 3. the article's `/{seconds}`;
//! 4. the default rule;
//! 5. a 404.
//!
//! [`LiveRules`] holds the rules in force and swaps in a new set on reload (SIGHUP or a change of
//! the file); a request keeps the rule it matched until it ends, so a reload drops nothing, and a
//! bad file keeps the old rules.

mod body;
mod file;
mod index;
mod limits;
mod pattern;
mod reload;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Version};
use axum::response::IntoResponse;
use bytes::Bytes;
use percent_encoding::percent_decode_str;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::custom::Custom;
use crate::options::{plan, plan_drawing};
use crate::request_log::RequestInfo;
use crate::routes::{AppState, RouteCall, serve};

use file::{Methods, RuleSpec};
use index::RuleIndex;
pub use limits::{MAX_NAME_BYTES, RulesLimits};
use pattern::PathMatch;
pub use reload::{FileWatch, Settle};

/// Reads, checks and compiles the rules file at `path` under `limits`: the one entry point for
/// every command that serves rules.
pub fn load(path: &Path, limits: &RulesLimits) -> Result<Rules, RulesError> {
    Rules::load(path, limits)
}

/// Paths the server answers itself, ahead of every rule.
pub const OWN_PATHS: [&str; 6] = [
    "/",
    "/healthz",
    "/metrics",
    "/anything",
    "/race",
    "/favicon.ico",
];

/// Whether the server answers `path` itself (one of [`OWN_PATHS`], or below `/anything`).
pub fn is_own_path(path: &str) -> bool {
    OWN_PATHS.contains(&path) || crate::echo::is_echo(path)
}

/// Whether `path` is for the article's `/{seconds}`: one segment that looks like a number (so
/// `/-1` still gets its precise 400), as the router without rules decides.
fn is_delay_path(path: &str) -> bool {
    path.strip_prefix('/').is_some_and(|segment| {
        !segment.contains('/')
            && crate::delay::looks_like_number(&percent_decode_str(segment).decode_utf8_lossy())
    })
}

/// What answers a request, in the server's order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// One of the server's own paths.
    Own,
    /// The rule at this index (0-based, in file order).
    Rule(usize),
    /// The article's `/{seconds}`.
    Delay,
    /// The default rule.
    Default,
    /// Nothing: a 404.
    Unmatched,
}

/// A rules file (or `--default`) that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    /// The file (or `--default`).
    pub file: String,
    /// The rule, e.g. `rule 2 ("orders")` or `default`, when the error is in one.
    pub rule: Option<String>,
    /// The field, when the error is in one.
    pub field: Option<String>,
    /// What is wrong and what would be right.
    pub detail: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(rule) = &self.rule {
            write!(f, ": {rule}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

impl std::error::Error for RulesError {}

/// One compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    name: String,
    methods: Option<Vec<Method>>,
    path: Option<PathMatch>,
    headers: Vec<(HeaderName, String)>,
    query: Vec<(String, String)>,
    /// The base delay, in the URL's words.
    delay: String,
    /// The wait, failure and answer options, as a URL query.
    options: String,
    custom: Option<Arc<Custom>>,
    /// Whether `custom` has a body of its own (else: the article's JSON, with its headers).
    own_body: bool,
    /// Where the effect applies in `slowlab proxy`.
    when: When,
    hits: Arc<AtomicU64>,
}

/// Where a rule's effect applies in `slowlab proxy` (`when = "before" | "after"`). `slowlab serve`
/// has no upstream and applies every rule the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum When {
    /// Wait or fail before contacting the upstream: a failure drawn never reaches it.
    #[default]
    Before,
    /// Forward first; once the upstream answers, wait, then pace or fail towards the client.
    After,
}

impl When {
    /// The word for it in a rules file.
    pub fn as_str(self) -> &'static str {
        match self {
            When::Before => "before",
            When::After => "after",
        }
    }
}

/// A rule drawn for a request that `slowlab proxy` forwards.
#[derive(Debug)]
pub struct Drawn {
    /// The rule's name (`default` for the default rule).
    pub rule: String,
    /// Where its effect applies.
    pub when: When,
    /// The wait and answer drawn from its options, or why they cannot be used.
    pub plan: Result<crate::options::Plan, crate::ApiError>,
}

impl Rule {
    fn matches(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> bool {
        if let Some(methods) = &self.methods
            && !methods.contains(method)
        {
            return false;
        }
        if let Some(pattern) = &self.path
            && !pattern.matches(path)
        {
            return false;
        }
        let headers_match = self.headers.iter().all(|(name, wanted)| {
            headers
                .get_all(name)
                .iter()
                .any(|value| value.as_bytes() == wanted.as_bytes())
        });
        headers_match
            && self.query.iter().all(|(key, wanted)| {
                query_pairs(query.unwrap_or_default()).any(|(k, v)| k == *key && v == *wanted)
            })
    }
}

/// A query's pairs, decoded as a form is.
fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let decode = |text: &str| {
        percent_decode_str(&text.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query.split('&').filter(|p| !p.is_empty()).map(move |pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key), decode(value))
    })
}

/// A checked, compiled set of rules and its default.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<Arc<Rule>>,
    index: RuleIndex,
    default: Option<Arc<Rule>>,
    digest: String,
}

impl Rules {
    /// No rules and no default: every request is served as if there were no rules.
    pub fn empty() -> Rules {
        Rules {
            rules: Vec::new(),
            index: RuleIndex::default(),
            default: None,
            digest: digest(&[]),
        }
    }

    /// Reads and compiles a rules file under the default limits. Paths in `body_file` are
    /// relative to the file's folder.
    pub fn from_file(path: &Path) -> Result<Rules, RulesError> {
        Rules::load(path, &RulesLimits::default())
    }

    /// Reads and compiles a rules file under `limits`: its size is checked before it is read, and
    /// the read stops past the limit even if the file grows meanwhile. Blocking: call it off the
    /// async runtime (`spawn_blocking`).
    pub fn load(path: &Path, limits: &RulesLimits) -> Result<Rules, RulesError> {
        let file = path.display().to_string();
        let refuse = |detail: String| RulesError {
            file: file.clone(),
            rule: None,
            field: None,
            detail,
        };
        let too_large = |size: String| {
            refuse(format!(
                "the rules file is {size} bytes, over --max-rules-file-bytes {}; split it or raise --max-rules-file-bytes",
                limits.max_file_bytes
            ))
        };
        let handle = std::fs::File::open(path)
            .map_err(|err| refuse(format!("cannot read the rules file: {err}")))?;
        let size = handle
            .metadata()
            .map_err(|err| refuse(format!("cannot read the rules file: {err}")))?
            .len();
        if size > limits.max_file_bytes {
            return Err(too_large(size.to_string()));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        handle
            .take(limits.max_file_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|err| refuse(format!("cannot read the rules file: {err}")))?;
        if bytes.len() as u64 > limits.max_file_bytes {
            return Err(too_large(format!("more than {}", limits.max_file_bytes)));
        }
        let text = String::from_utf8(bytes)
            .map_err(|err| refuse(format!("the rules file is not UTF-8 text: {err}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Rules::parse_with(&text, &file, base, limits)
    }

    /// Compiles the TOML `text` under the default limits; `file` names it in errors and `base`
    /// is where `body_file` paths start.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Rules, RulesError> {
        Rules::parse_with(text, file, base, &RulesLimits::default())
    }

    /// Compiles the TOML `text` under `limits`; `file` names it in errors and `base` is where
    /// `body_file` paths start.
    pub fn parse_with(
        text: &str,
        file: &str,
        base: &Path,
        limits: &RulesLimits,
    ) -> Result<Rules, RulesError> {
        let toml_error = |err: toml::de::Error| RulesError {
            file: file.to_owned(),
            rule: None,
            field: None,
            detail: err.to_string().trim_end().replace('\n', "\n  "),
        };
        // Read in pieces of a few hundred rules, so the TOML tree of the whole file is never
        // held at once; a piece that does not parse alone (a `[[rule]]` line inside a multi-line
        // string) sends the whole file through the parser, which also gives its errors' lines.
        let read = match read_rules(pieces(text), file, base, limits) {
            Err(Unread::Toml(_) | Unread::TwoDefaults) => {
                read_rules(std::iter::once(text), file, base, limits)
            }
            other => other,
        };
        let (mut rules, default_spec) = match read {
            Ok(read) => read,
            Err(Unread::Refused(err)) => return Err(err),
            Err(Unread::Toml(err)) => return Err(toml_error(err)),
            Err(Unread::TwoDefaults) => unreachable!("one piece holds one [default] at most"),
        };
        rules.shrink_to_fit();
        let default = match &default_spec {
            None => None,
            Some(spec) => {
                let error = |field: &str, detail: String| RulesError {
                    file: file.to_owned(),
                    rule: Some("default".to_owned()),
                    field: Some(field.to_owned()),
                    detail,
                };
                if let Some(field) = spec.match_fields().first() {
                    return Err(error(
                        field,
                        "the default rule answers every path no other route takes; it matches nothing itself, so remove this field".to_owned(),
                    ));
                }
                Some(Arc::new(compile(
                    spec,
                    "default".to_owned(),
                    base,
                    limits,
                    &error,
                )?))
            }
        };
        let index = RuleIndex::new(rules.iter().map(|rule| rule.path.as_ref()));
        Ok(Rules {
            rules,
            index,
            default,
            digest: digest(&[text.as_bytes()]),
        })
    }

    /// Sets the default rule from `--default`: a delay and query options in the URL's words,
    /// e.g. `0.2?jitter=0.1&mix=503:0.05`. It replaces a `[default]` from the file.
    pub fn with_default(mut self, spec: &str) -> Result<Rules, RulesError> {
        let (delay, options) = spec.split_once('?').unwrap_or((spec, ""));
        let rule = Rule {
            name: "default".to_owned(),
            methods: None,
            path: None,
            headers: Vec::new(),
            query: Vec::new(),
            delay: delay.to_owned(),
            options: options.to_owned(),
            custom: None,
            own_body: false,
            when: When::Before,
            hits: Arc::new(AtomicU64::new(0)),
        };
        if let Err(err) = plan(&rule.delay, Some(&rule.options), &Config::default()) {
            return Err(RulesError {
                file: "--default".to_owned(),
                rule: None,
                field: None,
                detail: format!(
                    "{spec:?} is not SECONDS?OPTIONS, e.g. 0.2?jitter=0.1&mix=503:0.05: {}",
                    err.detail()
                ),
            });
        }
        self.default = Some(Arc::new(rule));
        self.digest = digest(&[self.digest.as_bytes(), b"\n--default ", spec.as_bytes()]);
        Ok(self)
    }

    /// Checks every rule against the server's limits (`--max-delay`, `--max-body-bytes`), so
    /// that a rule the server would refuse is caught at start-up, not at the first request.
    pub fn check(&self, config: &Config, file: &str) -> Result<(), RulesError> {
        let limits = Config {
            max_delay: config.max_delay,
            over_max: config.over_max,
            max_body_bytes: config.max_body_bytes,
            ..Config::default()
        };
        for (index, rule) in self.rules.iter().chain(&self.default).enumerate() {
            if let Err(err) = plan(&rule.delay, Some(&rule.options), &limits) {
                let label = if rule.name == "default" {
                    "default".to_owned()
                } else {
                    format!("rule {} ({:?})", index + 1, rule.name)
                };
                return Err(RulesError {
                    file: file.to_owned(),
                    rule: Some(label),
                    field: None,
                    detail: err.detail(),
                });
            }
        }
        Ok(())
    }

    /// A digest of what the rules were made from: `sha256:` and 64 hex digits.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// How many rules there are, the default not counted.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules (there may still be a default).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether there is a default rule.
    pub fn has_default(&self) -> bool {
        self.default.is_some()
    }

    /// The rules' names in order, then `default` if there is one.
    pub fn names(&self) -> Vec<&str> {
        self.rules
            .iter()
            .chain(&self.default)
            .map(|r| r.name.as_str())
            .collect()
    }

    /// Where a request goes: the server's own paths, then the first matching rule, then
    /// `/{seconds}`, then the default rule.
    pub fn route(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Route {
        if is_own_path(path) {
            return Route::Own;
        }
        let first = self.index.first(path, |position| {
            self.rules[position].matches(method, path, query, headers)
        });
        self.after_rules(first, path)
    }

    /// [`Rules::route`] by a plain scan of every rule in file order, without the index: what the
    /// index must agree with (for tests and benchmarks).
    #[doc(hidden)]
    pub fn route_by_scan(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Route {
        if is_own_path(path) {
            return Route::Own;
        }
        let first = self
            .rules
            .iter()
            .position(|rule| rule.matches(method, path, query, headers));
        self.after_rules(first, path)
    }

    /// The route once the rules were looked at: the rule found, else `/{seconds}`, the default
    /// rule or nothing.
    fn after_rules(&self, first: Option<usize>, path: &str) -> Route {
        if let Some(index) = first {
            return Route::Rule(index);
        }
        if is_delay_path(path) {
            Route::Delay
        } else if self.default.is_some() {
            Route::Default
        } else {
            Route::Unmatched
        }
    }

    /// Where a request that `slowlab proxy` forwards goes: the first matching rule, then the
    /// default rule. In front of another service the server's own paths and `/{seconds}` are
    /// that service's, so they are never [`Route::Own`] or [`Route::Delay`].
    pub fn route_forwarded(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Route {
        let first = self.index.first(path, |position| {
            self.rules[position].matches(method, path, query, headers)
        });
        if let Some(index) = first {
            Route::Rule(index)
        } else if self.default.is_some() {
            Route::Default
        } else {
            Route::Unmatched
        }
    }

    /// Takes over the counters of the rules of the same name in `old`, so that a reload does not
    /// reset them.
    fn adopt_counters(&mut self, old: &Rules) {
        let previous_hits: HashMap<&str, &Arc<AtomicU64>> = old
            .rules
            .iter()
            .chain(&old.default)
            .map(|r| (r.name.as_str(), &r.hits))
            .collect();
        for rule in self.rules.iter_mut().chain(self.default.iter_mut()) {
            if let Some(previous) = previous_hits.get(rule.name.as_str())
                && let Some(rule) = Arc::get_mut(rule)
            {
                rule.hits = Arc::clone(previous);
            }
        }
    }

    /// `slowlab_rule_requests_total{rule="..."}` in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let counts: Vec<(String, u64)> = self
            .rules
            .iter()
            .chain(&self.default)
            .map(|r| (r.name.clone(), r.hits.load(Ordering::Relaxed)))
            .collect();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(RuleCounts(counts)));
        let mut text = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }
}

/// The per-rule counts of one scrape.
#[derive(Debug)]
struct RuleCounts(Vec<(String, u64)>);

impl Collector for RuleCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut metric = encoder.encode_descriptor(
            "slowlab_rule_requests",
            "Requests answered by each rule of --rules (and the default rule), by rule name.",
            None,
            MetricType::Counter,
        )?;
        for (name, count) in &self.0 {
            ConstCounter::new(*count).encode(metric.encode_family(&[("rule", name.as_str())])?)?;
        }
        Ok(())
    }
}

fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    format!("sha256:{:x}", hasher.finalize())
}

/// Why a rules file was not read.
enum Unread {
    /// A rule was refused: the error says which and why.
    Refused(RulesError),
    /// The TOML does not parse or does not fit the schema.
    Toml(toml::de::Error),
    /// Two pieces each had a `[default]` (read whole, the parser says where).
    TwoDefaults,
}

/// Rules at most in one piece of a file read in pieces.
const RULES_PER_PIECE: usize = 256;

/// `text` cut before every [`RULES_PER_PIECE`]th line that is `[[rule]]` alone (and a comment).
fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut headers = 0;
        let mut offset = 0;
        for line in rest.split_inclusive('\n') {
            let trimmed = line.trim();
            let header = trimmed
                .strip_prefix("[[rule]]")
                .is_some_and(|after| after.is_empty() || after.trim_start().starts_with('#'));
            if header {
                if headers == RULES_PER_PIECE || (headers == 0 && offset > 0) {
                    break;
                }
                headers += 1;
            }
            offset += line.len();
        }
        let (piece, after) = rest.split_at(offset);
        rest = after;
        Some(piece)
    })
}

/// Reads and compiles the rules of `pieces`, in order, and the `[default]`'s spec.
fn read_rules<'a>(
    pieces: impl Iterator<Item = &'a str>,
    file: &str,
    base: &Path,
    limits: &RulesLimits,
) -> Result<(Vec<Arc<Rule>>, Option<RuleSpec>), Unread> {
    // Each rule is compiled as soon as it is read: the specs are never all held at once, and a
    // file over --max-rules stops at the first rule too many.
    let mut names: HashSet<String> = HashSet::new();
    let mut rules: Vec<Arc<Rule>> = Vec::new();
    let mut refused: Option<RulesError> = None;
    let mut default = None;
    for piece in pieces {
        let mut on_rule = |spec: RuleSpec| -> Result<(), ()> {
            let index = rules.len();
            let result = if index >= limits.max_rules {
                Err(RulesError {
                    file: file.to_owned(),
                    rule: None,
                    field: None,
                    detail: format!(
                        "more than {0} rules, over --max-rules {0}; merge rules (a prefix or a pattern covers many paths) or raise --max-rules",
                        limits.max_rules
                    ),
                })
            } else {
                compile_listed(&spec, index, file, base, limits, &mut names)
            };
            match result {
                Ok(rule) => {
                    rules.push(Arc::new(rule));
                    Ok(())
                }
                Err(err) => {
                    refused = Some(err);
                    Err(())
                }
            }
        };
        let document = toml::Deserializer::parse(piece).map_err(Unread::Toml)?;
        match file::read_streaming(document, &mut on_rule) {
            Ok(None) => {}
            Ok(Some(_)) if default.is_some() => return Err(Unread::TwoDefaults),
            Ok(Some(spec)) => default = Some(spec),
            Err(err) => {
                return Err(match refused.take() {
                    Some(refused) => Unread::Refused(refused),
                    None => Unread::Toml(err),
                });
            }
        }
    }
    Ok((rules, default))
}

/// Compiles the rule at `index` (0-based) of the file's list: its name checked (label-safe, not
/// `default`, not taken by an earlier rule in `names`), then the rule itself.
fn compile_listed(
    spec: &RuleSpec,
    index: usize,
    file: &str,
    base: &Path,
    limits: &RulesLimits,
    names: &mut HashSet<String>,
) -> Result<Rule, RulesError> {
    let label = match &spec.name {
        // A name too long to be one is not repeated whole in the message.
        Some(name) if name.len() > MAX_NAME_BYTES => format!("rule {}", index + 1),
        Some(name) => format!("rule {} ({name:?})", index + 1),
        None => format!("rule {}", index + 1),
    };
    let error = |field: &str, detail: String| RulesError {
        file: file.to_owned(),
        rule: Some(label.clone()),
        field: Some(field.to_owned()),
        detail,
    };
    if let Some(name) = &spec.name {
        limits::check_name(name).map_err(|detail| error("name", detail))?;
    }
    let name = spec
        .name
        .clone()
        .unwrap_or_else(|| format!("rule-{}", index + 1));
    if name == "default" {
        return Err(error(
            "name",
            "\"default\" is the [default] rule's name; choose another".to_owned(),
        ));
    }
    if !names.insert(name.clone()) {
        return Err(error(
            "name",
            format!("{name:?} names an earlier rule too; give each rule its own name"),
        ));
    }
    compile(spec, name, base, limits, &error)
}

/// Compiles one rule; `error(field, detail)` says where a problem is.
fn compile(
    spec: &RuleSpec,
    name: String,
    base: &Path,
    limits: &RulesLimits,
    error: &dyn Fn(&str, String) -> RulesError,
) -> Result<Rule, RulesError> {
    let methods = match &spec.method {
        None => None,
        Some(methods) => {
            let list = match methods {
                Methods::One(one) => vec![one.clone()],
                Methods::Many(many) => many.clone(),
            };
            if list.iter().any(|m| m == "*") {
                None
            } else {
                let parsed: Result<Vec<Method>, _> = list
                    .iter()
                    .map(|m| {
                        Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                            .map_err(|_| error("method", format!("{m:?} is not an HTTP method")))
                    })
                    .collect();
                Some(parsed?)
            }
        }
    };
    let path = match (&spec.path, &spec.prefix) {
        (Some(_), Some(_)) => {
            return Err(error("prefix", "give path or prefix, not both".to_owned()));
        }
        (Some(pattern), None) => Some(PathMatch::path(pattern).map_err(|e| error("path", e))?),
        (None, Some(prefix)) => Some(PathMatch::prefix(prefix).map_err(|e| error("prefix", e))?),
        (None, None) => None,
    };
    let mut headers = Vec::new();
    for (header, value) in spec.match_headers.iter().flatten() {
        let header = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| error("match_headers", format!("{header:?} is not a header name")))?;
        headers.push((header, value.clone()));
    }
    let query: Vec<(String, String)> = spec
        .match_query
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    let delay = spec
        .delay
        .as_ref()
        .map_or_else(|| "0".to_owned(), file::Number::to_url);
    let options = spec.options_query();
    if let Err(err) = crate::delay::Delay::parse(&delay) {
        return Err(error(
            "delay",
            format!("{err}: use seconds, whole or decimal, e.g. 0.25"),
        ));
    }
    if let Err(err) = crate::options::parse_query(&options) {
        let field = match &err {
            crate::ApiError::BadOption { key, .. } => (*key).to_owned(),
            crate::ApiError::BadMix { .. } => "mix".to_owned(),
            _ => "options".to_owned(),
        };
        return Err(error(&field, err.detail()));
    }

    let when = match spec.when.as_deref() {
        None | Some("before") => When::Before,
        Some("after") => When::After,
        Some(other) => {
            return Err(error(
                "when",
                format!(
                    "{other:?} is not a place for the effect: use \"before\" (the default: before contacting the upstream) or \"after\" (once it answers)"
                ),
            ));
        }
    };
    let own_body = spec.body.is_some() || spec.json.is_some() || spec.body_file.is_some();
    let custom = answer(spec, base, limits, error)?;
    Ok(Rule {
        name,
        methods,
        path,
        headers,
        query,
        delay,
        options,
        custom: custom.map(Arc::new),
        own_body,
        when,
        hits: Arc::new(AtomicU64::new(0)),
    })
}

/// The rule's own answer (body, content type, headers), if it has one.
fn answer(
    spec: &RuleSpec,
    base: &Path,
    limits: &RulesLimits,
    error: &dyn Fn(&str, String) -> RulesError,
) -> Result<Option<Custom>, RulesError> {
    let given = [
        spec.body.is_some(),
        spec.json.is_some(),
        spec.body_file.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(error(
            "body",
            "give one of body, json and body_file".to_owned(),
        ));
    }
    let (body, guessed_type): (Option<Bytes>, &str) = if let Some(text) = &spec.body {
        (Some(Bytes::from(text.clone())), "text/plain; charset=utf-8")
    } else if let Some(value) = &spec.json {
        let json = serde_json::to_vec(value)
            .map_err(|err| error("json", format!("cannot be written as JSON: {err}")))?;
        (Some(Bytes::from(json)), "application/json")
    } else if let Some(relative) = &spec.body_file {
        let bytes =
            body::read(base, relative, limits).map_err(|detail| error("body_file", detail))?;
        let guessed = match relative.extension().and_then(|e| e.to_str()) {
            Some("json") => "application/json",
            Some("html") => "text/html; charset=utf-8",
            Some("txt") => "text/plain; charset=utf-8",
            _ => "application/octet-stream",
        };
        (Some(Bytes::from(bytes)), guessed)
    } else {
        (None, "application/json")
    };
    if let Some(body) = &body
        && body.len() as u64 > limits.max_body_bytes
    {
        let field = if spec.json.is_some() { "json" } else { "body" };
        return Err(error(
            field,
            format!(
                "is {} bytes, over --max-body-bytes {}; shorten it or raise --max-body-bytes",
                body.len(),
                limits.max_body_bytes
            ),
        ));
    }
    if body.is_none() && spec.content_type.is_none() && spec.headers.is_none() {
        return Ok(None);
    }
    let content_type = match &spec.content_type {
        Some(text) => HeaderValue::from_str(text)
            .map_err(|_| error("content_type", format!("{text:?} is not a header value")))?,
        None => HeaderValue::from_static(guessed_type),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in spec.headers.iter().flatten() {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| error("headers", format!("{name:?} is not a header name")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| error("headers", format!("{value:?} is not a header value")))?;
        headers.insert(name, value);
    }
    Ok(Some(Custom {
        // Without a body of its own the rule answers the article's JSON for its delay.
        body: body.unwrap_or_default(),
        content_type,
        headers,
    }))
}

/// The rules in force, swapped whole on reload. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveRules(Arc<Live>);

#[derive(Debug)]
struct Live {
    file: Option<PathBuf>,
    default: Option<String>,
    limits: RulesLimits,
    current: RwLock<Arc<Rules>>,
}

impl LiveRules {
    /// Loads `file` (if any) and `--default` (if any), checked against `config`'s limits and the
    /// default [`RulesLimits`] (with `config`'s `--max-body-bytes`). Blocking.
    pub fn load(
        file: Option<&Path>,
        default: Option<&str>,
        config: &Config,
    ) -> Result<LiveRules, RulesError> {
        LiveRules::load_with(file, default, config, RulesLimits::for_config(config))
    }

    /// Loads `file` (if any) and `--default` (if any) under `limits`, checked against `config`'s
    /// limits; reloads keep to the same limits. Blocking: call it off the async runtime.
    pub fn load_with(
        file: Option<&Path>,
        default: Option<&str>,
        config: &Config,
        limits: RulesLimits,
    ) -> Result<LiveRules, RulesError> {
        let rules = build(file, default, config, &limits)?;
        Ok(LiveRules(Arc::new(Live {
            file: file.map(Path::to_path_buf),
            default: default.map(str::to_owned),
            limits,
            current: RwLock::new(Arc::new(rules)),
        })))
    }

    /// Rules fixed in code, for tests and embedders; `reload` keeps them.
    pub fn fixed(rules: Rules) -> LiveRules {
        LiveRules(Arc::new(Live {
            file: None,
            default: None,
            limits: RulesLimits::default(),
            current: RwLock::new(Arc::new(rules)),
        }))
    }

    /// The rules in force.
    pub fn current(&self) -> Arc<Rules> {
        Arc::clone(&self.0.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The rules file, if the rules came from one.
    pub fn file(&self) -> Option<&Path> {
        self.0.file.as_deref()
    }

    /// For `slowlab proxy`: the rule `request` goes to ([`Rules::route_forwarded`]), counted as
    /// a hit, with its wait and answer drawn under `config`'s limits; `None` when no rule applies.
    pub fn draw<B>(&self, request: &Request<B>, config: &Config) -> Option<Drawn> {
        let rules = self.current();
        let uri = request.uri();
        let rule = match rules.route_forwarded(
            request.method(),
            uri.path(),
            uri.query(),
            request.headers(),
        ) {
            Route::Rule(index) => Arc::clone(&rules.rules[index]),
            Route::Default => rules.default.clone()?,
            Route::Own | Route::Delay | Route::Unmatched => return None,
        };
        rule.hits.fetch_add(1, Ordering::Relaxed);
        Some(Drawn {
            rule: rule.name.clone(),
            when: rule.when,
            plan: plan(&rule.delay, Some(&rule.options), config),
        })
    }

    /// Reads the file again and puts the new rules in force; requests already matched keep
    /// theirs. On error the old rules stay and the error says why. Returns the new digest.
    pub fn reload(&self, config: &Config) -> Result<String, RulesError> {
        if self.0.file.is_none() {
            return Ok(self.current().digest().to_owned());
        }
        let mut rules = build(
            self.0.file.as_deref(),
            self.0.default.as_deref(),
            config,
            &self.0.limits,
        )?;
        let mut current = self.0.current.write().unwrap_or_else(|p| p.into_inner());
        rules.adopt_counters(&current);
        let digest = rules.digest().to_owned();
        *current = Arc::new(rules);
        Ok(digest)
    }

    /// [`LiveRules::reload`] on a blocking thread, so that reading and compiling a large file
    /// never holds up the requests (and `/healthz`) the runtime is answering meanwhile.
    pub async fn reload_off_runtime(&self, config: &Config) -> Result<String, RulesError> {
        let live = self.clone();
        let config = config.clone();
        match tokio::task::spawn_blocking(move || live.reload(&config)).await {
            Ok(result) => result,
            Err(err) => Err(RulesError {
                file: self
                    .file()
                    .map_or_else(String::new, |p| p.display().to_string()),
                rule: None,
                field: None,
                detail: format!("the reload stopped: {err}"),
            }),
        }
    }
}

fn build(
    file: Option<&Path>,
    default: Option<&str>,
    config: &Config,
    limits: &RulesLimits,
) -> Result<Rules, RulesError> {
    let mut rules = match file {
        Some(path) => Rules::load(path, limits)?,
        None => Rules::empty(),
    };
    if let Some(spec) = default {
        rules = rules.with_default(spec)?;
    }
    let name = file.map_or_else(|| "--default".to_owned(), |p| p.display().to_string());
    rules.check(config, &name)?;
    Ok(rules)
}

/// The rule `request` goes to, if any: the first matching rule, or the default rule.
pub(crate) fn matched<B>(live: &LiveRules, request: &Request<B>) -> Option<Arc<Rule>> {
    let rules = live.current();
    let uri = request.uri();
    match rules.route(request.method(), uri.path(), uri.query(), request.headers()) {
        Route::Rule(index) => Some(Arc::clone(&rules.rules[index])),
        Route::Default => rules.default.clone(),
        Route::Own | Route::Delay | Route::Unmatched => None,
    }
}

/// Serves `request` as `rule` says: counted for the rule, planned from the rule's options, then
/// waited and answered like every other request, its record writing `log`'s line.
pub(crate) fn call<B>(
    state: &AppState,
    rule: Arc<Rule>,
    request: Request<B>,
    log: Option<Box<RequestInfo>>,
) -> RouteCall {
    rule.hits.fetch_add(1, Ordering::Relaxed);
    let head_only = request.method() == Method::HEAD;
    let version: Version = request.version();
    // The head points into hyper's read buffer: let it go before the wait.
    drop(request);
    match plan_drawing(
        &rule.delay,
        Some(&rule.options),
        &state.config,
        state.sequence.as_ref(),
    ) {
        Ok(plan) => {
            let custom = match &rule.custom {
                Some(custom) if rule.own_body => Some(Arc::clone(custom)),
                // Headers but no body: the article's JSON, with the rule's headers.
                Some(custom) => Some(Arc::new(Custom {
                    body: crate::respond::json(&plan),
                    ..Custom::clone(custom)
                })),
                None => None,
            };
            RouteCall::direct(
                head_only,
                Box::pin(serve(state.clone(), plan, head_only, version, custom, log)),
            )
        }
        Err(err) => RouteCall::ready(head_only, err.into_response()),
    }
}
