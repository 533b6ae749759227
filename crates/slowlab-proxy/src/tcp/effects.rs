//! What the TCP proxy does to bytes: parsed once, validated, then only read.
//!
//! Effects are written in serve's option grammar, `key=value` pairs joined by `&`:
//!
//! ```text
//! direction=downstream&latency=0.1&jitter=0.02&bps=100000
//! ```
//!
//! One such string (a flag) or one `[[tcp]]` table of the rules file (the same keys as TOML fields)
//! is one *table*. A table applies to `direction` (`upstream`: client to service, `downstream`:
//! service to client, `both`: the default). Tables apply in order, a later one's fields replacing an
//! earlier one's for the same direction, so flags given after the file win field by field.

use std::fmt;
use std::time::Duration;

use slowlab_server::Delay;

/// Every key a table may use, in the order the errors list them.
pub const KEYS: [&str; 10] = [
    "direction",
    "latency",
    "jitter",
    "bps",
    "slice",
    "slice_variation",
    "slice_delay",
    "timeout",
    "reset_after",
    "down",
];

/// Which way bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the service.
    Upstream,
    /// From the service back to the client.
    Downstream,
}

/// `slice=`: writes split into pieces of about `average` bytes, with a pause between pieces.
///
/// Toxiproxy's slicer, with its three parameters: average size, variation, delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// Average piece size in bytes (`slice=`), at least 1.
    pub average: usize,
    /// Each piece is `average` plus or minus up to this many bytes (`slice_variation=`), drawn
    /// uniformly; at most `average - 1`, so no piece is empty.
    pub variation: usize,
    /// Pause between two pieces of one read (`slice_delay=`, seconds).
    pub delay: Duration,
}

/// The effects on one direction. The default changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectionEffects {
    /// `latency=`: every byte arrives this much later than it was read (order is kept).
    pub latency: Duration,
    /// `jitter=`: each read's latency is drawn uniformly from `latency ± jitter`, cut off at 0.
    pub jitter: Duration,
    /// `bps=`: at most this many bytes per second leave, counted from the moment bytes are waiting.
    pub bps: Option<u64>,
    /// `slice=`: writes split into small pieces.
    pub slice: Option<Slice>,
    /// `timeout=`: nothing is forwarded this way (what arrives is read and dropped), and the whole
    /// connection closes this long after it was accepted; `timeout=0` holds it open for ever.
    pub timeout: Option<Duration>,
    /// `reset_after=`: after this many bytes went this way, the connection is reset (RST to both
    /// sides).
    pub reset_after: Option<u64>,
}

impl DirectionEffects {
    /// Whether bytes pass untouched, so the proxy may copy them directly.
    pub fn is_plain(&self) -> bool {
        *self == DirectionEffects::default()
    }

    /// Whether a read's bytes must be queued with a due time (latency or jitter given).
    pub(crate) fn delays(&self) -> bool {
        !self.latency.is_zero() || !self.jitter.is_zero()
    }
}

/// The effects in the grammar they are written in (`latency=0.1&bps=100000`), each key once, in
/// [`KEYS`] order; empty for no effect. Parsing it gives the same effects back.
impl fmt::Display for DirectionEffects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = |d: Duration| Delay::from(d).to_string();
        let mut pairs: Vec<String> = Vec::new();
        if !self.latency.is_zero() {
            pairs.push(format!("latency={}", seconds(self.latency)));
        }
        if !self.jitter.is_zero() {
            pairs.push(format!("jitter={}", seconds(self.jitter)));
        }
        if let Some(bps) = self.bps {
            pairs.push(format!("bps={bps}"));
        }
        if let Some(slice) = &self.slice {
            pairs.push(format!("slice={}", slice.average));
            if slice.variation > 0 {
                pairs.push(format!("slice_variation={}", slice.variation));
            }
            if !slice.delay.is_zero() {
                pairs.push(format!("slice_delay={}", seconds(slice.delay)));
            }
        }
        if let Some(timeout) = self.timeout {
            pairs.push(format!("timeout={}", seconds(timeout)));
        }
        if let Some(reset_after) = self.reset_after {
            pairs.push(format!("reset_after={reset_after}"));
        }
        f.write_str(&pairs.join("&"))
    }
}

/// For logs and `/healthz`: `upstream: latency=0.1; downstream: none`, then `; down` when
/// connections are refused.
impl fmt::Display for TcpEffects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |effects: &DirectionEffects| {
            if effects.is_plain() {
                "none".to_owned()
            } else {
                effects.to_string()
            }
        };
        write!(
            f,
            "upstream: {}; downstream: {}",
            side(&self.upstream),
            side(&self.downstream)
        )?;
        if self.down {
            f.write_str("; down")?;
        }
        Ok(())
    }
}

/// Everything the TCP proxy does to connections, per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpEffects {
    /// Client to service.
    pub upstream: DirectionEffects,
    /// Service to client.
    pub downstream: DirectionEffects,
    /// `down`: the proxy is off: new connections are refused (`ECONNREFUSED` on Linux, a reset as
    /// soon as accepted elsewhere) and the connections open are closed.
    pub down: bool,
}

impl TcpEffects {
    /// Parses one table written as a flag, e.g. `direction=upstream&latency=0.1&bps=100000`.
    /// `source` names the flag in errors.
    pub fn parse(spec: &str, source: &str) -> Result<TcpEffects, EffectsError> {
        let mut effects = TcpEffects::default();
        effects.apply(spec, source, None)?;
        Ok(effects)
    }

    /// The effects of `direction`.
    pub fn direction(&self, direction: Direction) -> &DirectionEffects {
        match direction {
            Direction::Upstream => &self.upstream,
            Direction::Downstream => &self.downstream,
        }
    }

    /// When the connection closes because of `timeout=`: the shorter of the two directions' non-zero
    /// timeouts. `Some(None)` is a `timeout=0` that holds the connection for ever.
    pub(crate) fn close_after(&self) -> Option<Option<Duration>> {
        let timeouts = [self.upstream.timeout, self.downstream.timeout];
        let closing = timeouts.iter().flatten().filter(|t| !t.is_zero()).min();
        match closing {
            Some(after) => Some(Some(*after)),
            None if timeouts.iter().any(Option::is_some) => Some(None),
            None => None,
        }
    }

    /// Applies one table written as a flag on top of these effects: its fields replace the same
    /// fields of the direction(s) it names. `table` (a 1-based index) is named in errors.
    pub(crate) fn apply(
        &mut self,
        spec: &str,
        source: &str,
        table: Option<usize>,
    ) -> Result<(), EffectsError> {
        let pairs = spec.split('&').filter(|pair| !pair.is_empty()).map(|pair| {
            match pair.split_once('=') {
                Some((key, value)) => (key, Some(value)),
                None => (pair, None),
            }
        });
        self.apply_pairs(pairs, source, table)
    }

    /// Applies one table given as `(key, value)` pairs: a flag's, or a `[[tcp]]` table's fields.
    pub(crate) fn apply_pairs<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
        source: &str,
        table: Option<usize>,
    ) -> Result<(), EffectsError> {
        let error = |field: Option<&str>, detail: String| EffectsError {
            source: source.to_owned(),
            table,
            field: field.map(str::to_owned),
            detail,
        };
        let mut seen: Vec<&str> = Vec::new();
        let mut fields = Fields::default();
        for (key, value) in pairs {
            let Some(key) = KEYS.iter().copied().find(|known| *known == key) else {
                return Err(error(
                    None,
                    format!(
                        "unknown effect {:?}; known effects: {}",
                        excerpt(key),
                        KEYS.join(", ")
                    ),
                ));
            };
            if seen.contains(&key) {
                return Err(error(Some(key), "given twice; give it once".to_owned()));
            }
            seen.push(key);
            fields
                .set(key, value)
                .map_err(|detail| error(Some(key), detail))?;
        }
        fields
            .check()
            .map_err(|(field, detail)| error(field, detail))?;

        let directions: &[Direction] = match fields.direction {
            None => &[Direction::Upstream, Direction::Downstream],
            Some(direction) => match direction {
                Direction::Upstream => &[Direction::Upstream],
                Direction::Downstream => &[Direction::Downstream],
            },
        };
        for direction in directions {
            let effects = match direction {
                Direction::Upstream => &mut self.upstream,
                Direction::Downstream => &mut self.downstream,
            };
            fields.apply_to(effects);
        }
        if let Some(down) = fields.down {
            self.down = down;
        }
        Ok(())
    }
}

/// The fields one table gave, before they are applied.
#[derive(Debug, Default)]
struct Fields {
    direction: Option<Direction>,
    latency: Option<Duration>,
    jitter: Option<Duration>,
    bps: Option<u64>,
    slice: Option<usize>,
    slice_variation: Option<usize>,
    slice_delay: Option<Duration>,
    timeout: Option<Duration>,
    reset_after: Option<u64>,
    down: Option<bool>,
}

impl Fields {
    fn set(&mut self, key: &str, value: Option<&str>) -> Result<(), String> {
        if key == "down" {
            self.down = Some(match value {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => {
                    return Err(format!(
                        "{:?} is not true or false; write `down` (or `down=true`)",
                        excerpt(other)
                    ));
                }
            });
            return Ok(());
        }
        let Some(value) = value else {
            return Err(format!("needs a value: write `{key}=...`"));
        };
        match key {
            "direction" => {
                self.direction = match value {
                    "both" => None,
                    "upstream" => Some(Direction::Upstream),
                    "downstream" => Some(Direction::Downstream),
                    other => {
                        return Err(format!(
                            "{:?} is not a direction; use upstream (client to service), \
                             downstream (service to client) or both",
                            excerpt(other)
                        ));
                    }
                }
            }
            "latency" => self.latency = Some(seconds(value)?),
            "jitter" => self.jitter = Some(seconds(value)?),
            "slice_delay" => self.slice_delay = Some(seconds(value)?),
            "timeout" => self.timeout = Some(seconds(value)?),
            "bps" => self.bps = Some(positive(value, "bytes per second")?),
            "reset_after" => self.reset_after = Some(whole(value, "bytes")?),
            "slice" => self.slice = Some(to_usize(positive(value, "bytes")?)),
            "slice_variation" => self.slice_variation = Some(to_usize(whole(value, "bytes")?)),
            _ => unreachable!("every key in KEYS is handled"),
        }
        Ok(())
    }

    /// Checks the fields against each other.
    fn check(&self) -> Result<(), (Option<&'static str>, String)> {
        if self.slice.is_none() {
            for (given, field) in [
                (self.slice_variation.is_some(), "slice_variation"),
                (self.slice_delay.is_some(), "slice_delay"),
            ] {
                if given {
                    return Err((
                        Some(field),
                        "shapes slices, so it needs slice=BYTES (the average piece size)"
                            .to_owned(),
                    ));
                }
            }
        }
        if let (Some(average), Some(variation)) = (self.slice, self.slice_variation)
            && variation >= average
        {
            return Err((
                Some("slice_variation"),
                format!(
                    "{variation} would allow empty pieces; keep it below slice ({average}), \
                     e.g. slice_variation={}",
                    average / 2
                ),
            ));
        }
        if self.down.is_some() && self.direction.is_some() {
            return Err((
                Some("down"),
                "refuses whole connections, not one direction; give it in a table without \
                 direction"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    fn apply_to(&self, effects: &mut DirectionEffects) {
        if let Some(latency) = self.latency {
            effects.latency = latency;
        }
        if let Some(jitter) = self.jitter {
            effects.jitter = jitter;
        }
        if let Some(bps) = self.bps {
            effects.bps = Some(bps);
        }
        if let Some(average) = self.slice {
            effects.slice = Some(Slice {
                average,
                variation: self.slice_variation.unwrap_or(0),
                delay: self.slice_delay.unwrap_or(Duration::ZERO),
            });
        }
        if let Some(timeout) = self.timeout {
            effects.timeout = Some(timeout);
        }
        if let Some(reset_after) = self.reset_after {
            effects.reset_after = Some(reset_after);
        }
    }
}

/// Seconds in serve's grammar: digits, optionally a dot and up to 9 more.
fn seconds(value: &str) -> Result<Duration, String> {
    Delay::parse(value)
        .map(Delay::as_duration)
        .map_err(|err| format!("{err}; write seconds like 0.25 or 3"))
}

/// A whole number, digits only.
fn whole(value: &str, unit: &str) -> Result<u64, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{:?} is not a whole number of {unit}; write digits only, like 4096",
            excerpt(value)
        ));
    }
    value
        .parse()
        .map_err(|_| format!("{:?} is too large", excerpt(value)))
}

/// A whole number above zero.
fn positive(value: &str, unit: &str) -> Result<u64, String> {
    match whole(value, unit)? {
        0 => Err(format!("must be at least 1 {unit}; leave it out for none")),
        n => Ok(n),
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// At most 40 characters of user input, for messages.
fn excerpt(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Effects that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectsError {
    /// The rules file or the flag.
    pub source: String,
    /// The `[[tcp]]` table (1-based), when the error is in one.
    pub table: Option<usize>,
    /// The field, when the error is in one.
    pub field: Option<String>,
    /// What is wrong and what would be right.
    pub detail: String,
}

impl fmt::Display for EffectsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(table) = self.table {
            write!(f, ": [[tcp]] table {table}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

impl std::error::Error for EffectsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_by_default_and_one_when_named() {
        let both = TcpEffects::parse("latency=0.1&jitter=0.02&bps=100000", "--tcp").unwrap();
        assert_eq!(both.upstream, both.downstream);
        assert_eq!(both.upstream.latency, Duration::from_millis(100));
        assert_eq!(both.upstream.jitter, Duration::from_millis(20));
        assert_eq!(both.upstream.bps, Some(100_000));

        let down = TcpEffects::parse("direction=downstream&reset_after=10", "--tcp").unwrap();
        assert!(down.upstream.is_plain());
        assert_eq!(down.downstream.reset_after, Some(10));
    }

    #[test]
    fn later_tables_replace_fields() {
        let mut effects = TcpEffects::parse("latency=1&bps=10", "file").unwrap();
        effects
            .apply("direction=upstream&latency=2", "--tcp", Some(2))
            .unwrap();
        assert_eq!(effects.upstream.latency, Duration::from_secs(2));
        assert_eq!(effects.upstream.bps, Some(10));
        assert_eq!(effects.downstream.latency, Duration::from_secs(1));
    }

    #[test]
    fn slice_takes_toxiproxys_three_parameters() {
        let effects =
            TcpEffects::parse("slice=64&slice_variation=16&slice_delay=0.001", "f").unwrap();
        assert_eq!(
            effects.upstream.slice,
            Some(Slice {
                average: 64,
                variation: 16,
                delay: Duration::from_millis(1)
            })
        );
    }

    #[test]
    fn timeout_zero_holds_and_the_shorter_timeout_closes() {
        let hold = TcpEffects::parse("direction=upstream&timeout=0", "f").unwrap();
        assert_eq!(hold.close_after(), Some(None));
        let mut both = TcpEffects::parse("direction=upstream&timeout=5", "f").unwrap();
        both.apply("direction=downstream&timeout=2", "f", None)
            .unwrap();
        assert_eq!(both.close_after(), Some(Some(Duration::from_secs(2))));
        assert_eq!(TcpEffects::default().close_after(), None);
    }

    #[test]
    fn display_is_the_grammar_and_parses_back() {
        let spec = "latency=0.1&jitter=0.02&bps=100000&slice=64&slice_variation=16\
                    &slice_delay=0.001&timeout=5&reset_after=4096";
        let effects = TcpEffects::parse(&format!("direction=upstream&{spec}"), "f").unwrap();
        assert_eq!(effects.upstream.to_string(), spec);
        assert_eq!(
            effects.to_string(),
            format!("upstream: {spec}; downstream: none")
        );
        let down = TcpEffects::parse("down", "f").unwrap();
        assert_eq!(down.to_string(), "upstream: none; downstream: none; down");
    }

    /// Effects written out per direction, then parsed again.
    fn written_and_read_back(effects: &TcpEffects) -> TcpEffects {
        let up = format!("direction=upstream&{}", effects.upstream);
        let down = format!("direction=downstream&{}", effects.downstream);
        let mut again = TcpEffects::parse(&up, "prop").unwrap();
        again.apply(&down, "prop", None).unwrap();
        again.down = effects.down;
        again
    }

    proptest::proptest! {
        /// Any input is effects or an error, never a panic.
        #[test]
        fn any_spec_parses_or_is_refused(spec in "[a-z_=&.0-9-]{0,60}") {
            if let Ok(effects) = TcpEffects::parse(&spec, "prop") {
                proptest::prop_assert_eq!(written_and_read_back(&effects), effects);
            }
        }

        /// Keys of the grammar with numbers and junk as values: never a panic.
        #[test]
        fn known_keys_with_any_values(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(KEYS.to_vec()),
                    proptest::prop_oneof!["[0-9]{1,4}", "[0-9]{1,2}\\.[0-9]{1,3}", "[a-z.-]{0,6}"],
                ),
                0..6,
            )
        ) {
            let spec: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = TcpEffects::parse(&spec.join("&"), "prop");
        }

        /// Valid effects of every kind: parsed as given, and written out they parse back the same.
        #[test]
        fn valid_effects_round_trip(
            latency in proptest::option::of(SECONDS),
            jitter in proptest::option::of(SECONDS),
            bps in proptest::option::of(1u64..10_000_000),
            slice in proptest::option::of((1usize..5000, 0usize..5000, proptest::option::of(SECONDS))),
            timeout in proptest::option::of(SECONDS),
            reset_after in proptest::option::of(0u64..1_000_000),
        ) {
            let mut pairs = Vec::new();
            for (key, value) in [("latency", latency), ("jitter", jitter), ("timeout", timeout)] {
                if let Some(value) = value {
                    pairs.push(format!("{key}={value}"));
                }
            }
            if let Some(bps) = bps {
                pairs.push(format!("bps={bps}"));
            }
            if let Some((average, variation, delay)) = &slice {
                pairs.push(format!("slice={average}&slice_variation={}", variation % average));
                if let Some(delay) = delay {
                    pairs.push(format!("slice_delay={delay}"));
                }
            }
            if let Some(reset_after) = reset_after {
                pairs.push(format!("reset_after={reset_after}"));
            }
            let effects = TcpEffects::parse(&pairs.join("&"), "prop").unwrap();
            proptest::prop_assert_eq!(effects.upstream, effects.downstream);
            proptest::prop_assert_eq!(effects.upstream.bps, bps);
            proptest::prop_assert_eq!(effects.upstream.reset_after, reset_after);
            proptest::prop_assert_eq!(effects.upstream.slice.map(|s| s.average), slice.map(|s| s.0));
            proptest::prop_assert_eq!(written_and_read_back(&effects), effects);
        }
    }

    /// Seconds as the grammar writes them.
    const SECONDS: &str = "[0-9]{1,3}(\\.[0-9]{1,9})?";

    #[test]
    fn bad_input_names_the_field_and_the_fix() {
        let cases = [
            ("latency=1e3", "latency", "seconds like 0.25"),
            ("latency=-1", "latency", "negative"),
            ("bps=0", "bps", "at least 1"),
            ("bps=fast", "bps", "digits only"),
            ("slice_delay=0.1", "slice_delay", "needs slice="),
            (
                "slice=4&slice_variation=4",
                "slice_variation",
                "below slice",
            ),
            ("direction=sideways", "direction", "upstream"),
            ("direction=upstream&down", "down", "without direction"),
            ("latency=1&latency=2", "latency", "once"),
            ("latency", "latency", "needs a value"),
            ("down=maybe", "down", "true or false"),
        ];
        for (spec, field, hint) in cases {
            let err = TcpEffects::parse(spec, "--tcp").unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{spec}: {err}");
            assert!(err.to_string().contains(hint), "{spec}: {err}");
        }
        let unknown = TcpEffects::parse("latncy=1", "--tcp").unwrap_err();
        assert!(unknown.detail.contains("known effects: direction, latency"));
    }
}
