//! The rules file as written: TOML read with serde, every table strict about its fields.
//!
//! Answer fields carry the URL's option names (`jitter`, `mix`, `bps`, ...) and are handed to the
//! same parser as a URL's query, so a rule and a URL mean the same thing by the same words.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

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

    // Where the effect applies in front of an upstream (`slowlab proxy`): "before" or "after".
    pub(crate) when: Option<String>,

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

/// Reads a rules file (`[[rule]]` tables in order, then an optional `[default]`) handing each `[[rule]]` to `on_rule` as soon as it is read, so that the
/// specs are never all held at once: a file of 100,000 rules holds one spec at a time beside the
/// compiled rules. `on_rule` returns `Err(())` to stop (it keeps its own error); the `[default]`
/// is returned. Unknown top-level keys are refused here, and `tcp` is left for the proxy.
pub(crate) fn read_streaming<'de, D, F>(
    deserializer: D,
    on_rule: &mut F,
) -> Result<Option<RuleSpec>, D::Error>
where
    D: serde::Deserializer<'de>,
    F: FnMut(RuleSpec) -> Result<(), ()>,
{
    deserializer.deserialize_map(FileVisitor { on_rule })
}

/// The keys a rules file may have at its top level.
const TOP_LEVEL: &[&str] = &["rule", "default", "tcp"];

struct FileVisitor<'a, F> {
    on_rule: &'a mut F,
}

impl<'de, F: FnMut(RuleSpec) -> Result<(), ()>> serde::de::Visitor<'de> for FileVisitor<'_, F> {
    type Value = Option<RuleSpec>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a rules file: [[rule]] tables and an optional [default]")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error;
        let mut default = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "rule" => map.next_value_seed(RuleList {
                    on_rule: &mut *self.on_rule,
                })?,
                "default" => default = Some(map.next_value::<RuleSpec>()?),
                "tcp" => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                other => return Err(A::Error::unknown_field(other, TOP_LEVEL)),
            }
        }
        Ok(default)
    }
}

/// The `rule` array, read one table at a time.
struct RuleList<'a, F> {
    on_rule: &'a mut F,
}

impl<'de, F: FnMut(RuleSpec) -> Result<(), ()>> serde::de::DeserializeSeed<'de>
    for RuleList<'_, F>
{
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(RuleSpec) -> Result<(), ()>> serde::de::Visitor<'de> for RuleList<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("[[rule]] tables")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(spec) = seq.next_element::<RuleSpec>()? {
            if (self.on_rule)(spec).is_err() {
                return Err(serde::de::Error::custom("a rule was refused"));
            }
        }
        Ok(())
    }
}
