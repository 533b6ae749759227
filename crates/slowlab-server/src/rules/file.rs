//! The rules file as written: TOML read with serde, every table strict about its fields.
//!
//! Answer fields carry the URL's option names (`jitter`, `mix`, `bps`, ...) and are handed to the
//! same parser as a URL's query, so a rule and a URL mean the same thing by the same words.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The whole file: `[[rule]]` tables in order, then an optional `[default]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesFile {
    #[serde(default)]
    pub(crate) rule: Vec<RuleSpec>,
    pub(crate) default: Option<RuleSpec>,
    /// `[[tcp]]` tables, for the proxy's TCP mode; `slowlab serve` reads no TCP tables and leaves
    /// them be. (Unknown keys are refused here, in one place: by `deny_unknown_fields`.)
    #[allow(dead_code)]
    pub(crate) tcp: Option<toml::Value>,
}

/// A number of seconds (or a probability-free number) written as a TOML number or string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Number {
    Whole(u64),
    Decimal(f64),
    Text(String),
}

impl Number {
    /// The number as the URL vocabulary writes it: `0.25`, `3`. A negative or non-finite value is
    /// kept as written so that the parser refuses it with its usual message.
    pub(crate) fn to_url(&self) -> String {
        match self {
            Number::Whole(n) => n.to_string(),
            // Display never uses an exponent, so 1e-3 becomes 0.001, as the parser wants.
            Number::Decimal(x) => x.to_string(),
            Number::Text(text) => text.clone(),
        }
    }
}

/// One method or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Methods {
    One(String),
    Many(Vec<String>),
}

/// One `[[rule]]` (or the `[default]`, which takes only the answer fields).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSpec {
    // Naming and matching.
    pub(crate) name: Option<String>,
    pub(crate) method: Option<Methods>,
    pub(crate) path: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) match_headers: Option<BTreeMap<String, String>>,
    pub(crate) match_query: Option<BTreeMap<String, String>>,

    // How to wait: the URL options of the same names.
    pub(crate) delay: Option<Number>,
    pub(crate) jitter: Option<Number>,
    pub(crate) dist: Option<String>,
    pub(crate) min: Option<Number>,
    pub(crate) max: Option<Number>,
    pub(crate) median: Option<Number>,
    pub(crate) sigma: Option<Number>,
    pub(crate) seed: Option<u64>,

    // How to fail.
    pub(crate) mix: Option<String>,
    pub(crate) fault: Option<String>,

    // What to answer.
    pub(crate) status: Option<u16>,
    pub(crate) headers: Option<BTreeMap<String, String>>,
    pub(crate) body: Option<String>,
    pub(crate) json: Option<toml::Value>,
    pub(crate) body_file: Option<PathBuf>,
    pub(crate) content_type: Option<String>,
    pub(crate) bytes: Option<u64>,
    pub(crate) drip: Option<u64>,
    pub(crate) bps: Option<u64>,
}

impl RuleSpec {
    /// The answer fields as a URL query (`jitter=0.1&mix=503:0.2`), for the options parser. Keys
    /// are the field names, so the parser's errors name the field.
    pub(crate) fn options_query(&self) -> String {
        let mut pairs: Vec<String> = Vec::new();
        let mut push = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                pairs.push(format!("{key}={value}"));
            }
        };
        push("jitter", self.jitter.as_ref().map(Number::to_url));
        push("dist", self.dist.clone());
        push("min", self.min.as_ref().map(Number::to_url));
        push("max", self.max.as_ref().map(Number::to_url));
        push("median", self.median.as_ref().map(Number::to_url));
        push("sigma", self.sigma.as_ref().map(Number::to_url));
        push("seed", self.seed.map(|s| s.to_string()));
        push("mix", self.mix.clone());
        push("fault", self.fault.clone());
        push("status", self.status.map(|s| s.to_string()));
        push("bytes", self.bytes.map(|b| b.to_string()));
        push("drip", self.drip.map(|d| d.to_string()));
        push("bps", self.bps.map(|b| b.to_string()));
        pairs.join("&")
    }

    /// The match fields that were given, by name (the default rule may have none).
    pub(crate) fn match_fields(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        if self.method.is_some() {
            given.push("method");
        }
        if self.path.is_some() {
            given.push("path");
        }
        if self.prefix.is_some() {
            given.push("prefix");
        }
        if self.match_headers.is_some() {
            given.push("match_headers");
        }
        if self.match_query.is_some() {
            given.push("match_query");
        }
        given
    }
}
