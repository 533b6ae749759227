//! The query options of `/{seconds}` and the plan they make: how long to wait, and how to answer.
//!
//! `/{seconds}` stays the base delay; the query shapes it (`jitter`, `dist`), seeds it (`seed`), and
//! says how to answer after it (`status`, `drip`, `bytes`, `fault`). Parsing is strict: an unknown key,
//! a repeated key, a bad value or options that contradict each other are each a precise 400, because
//! a typo such as `jiter=` that silently did nothing would make a client test pass for the wrong
//! reason.

use std::fmt;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::config::{Config, OverMax};
use crate::delay::{Delay, excerpt};
use crate::error::ApiError;
use crate::mix::{Mix, Pick};
use crate::sequence::Sequence;

/// Every option key the delay endpoint knows, in the order an `unknown_option` answer lists them
/// (and of the bitmask that spots repeated keys).
pub const KEY_NAMES: [&str; 13] = [
    "jitter", "dist", "min", "max", "median", "sigma", "seed", "status", "drip", "bytes", "fault",
    "mix", "bps",
];

/// Most chunks `drip=` may ask for.
pub const MAX_DRIP_CHUNKS: u32 = 10_000;

/// `sigma` of `dist=lognormal` when none is given.
const DEFAULT_SIGMA: f64 = 0.5;

/// How the delay is drawn from the base delay in the path.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Shape {
    /// Exactly the base delay.
    #[default]
    Fixed,
    /// `jitter=S`: uniform in `[base-S, base+S]`, the part below 0 cut off (so uniform in
    /// `[max(0, base-S), base+S]`, which is what resampling until non-negative gives).
    Jitter(Delay),
    /// `dist=uniform`: uniform in `[min, max]`; `min` defaults to 0 and `max` to twice the base.
    Uniform {
        /// Lower bound (`min=`), or 0.
        min: Option<Delay>,
        /// Upper bound (`max=`), or twice the base.
        max: Option<Delay>,
    },
    /// `dist=lognormal`: `median * exp(sigma * Z)`, Z standard normal; heavy-tailed like real
    /// services. `median` defaults to the base delay, `sigma` to 0.5.
    Lognormal {
        /// The median (`median=`), or the base delay.
        median: Option<Delay>,
        /// Spread of the log (`sigma=`), or 0.5.
        sigma: Option<f64>,
    },
}

/// A fault served after the wait instead of an answer (`fault=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close with a TCP RST (SO_LINGER 0); over HTTP/2, reset the stream.
    Reset,
    /// Close cleanly before any response byte; over HTTP/2, reset the stream.
    Hangup,
    /// Send bytes that are not HTTP, then close; over HTTP/2, reset the stream.
    Malformed,
    /// Never answer; close after `--max-delay`, or when the client goes away.
    Hang,
    /// Promise a Content-Length, send half of the body, close.
    Truncate,
}

impl Fault {
    /// The name used in `fault=`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Reset => "reset",
            Fault::Hangup => "hangup",
            Fault::Malformed => "malformed",
            Fault::Hang => "hang",
            Fault::Truncate => "truncate",
        }
    }

    /// The fault named `name` in `fault=` or a mix.
    pub fn from_name(name: &str) -> Option<Fault> {
        match name {
            "reset" => Some(Fault::Reset),
            "hangup" => Some(Fault::Hangup),
            "malformed" => Some(Fault::Malformed),
            "hang" => Some(Fault::Hang),
            "truncate" => Some(Fault::Truncate),
            _ => None,
        }
    }
}

/// Parsed query options; `Options::default()` is a plain article request.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Options {
    /// How the delay is drawn.
    pub shape: Shape,
    /// `seed=K`: makes the draw a pure function of the request target.
    pub seed: Option<u64>,
    /// `status=NNN`: the status answered after the wait.
    pub status: Option<u16>,
    /// `drip=N`: send the body in N chunks spread over the wait.
    pub drip: Option<u32>,
    /// `bytes=N`: pad the body to N bytes.
    pub bytes: Option<u64>,
    /// `fault=...`: misbehave after the wait.
    pub fault: Option<Fault>,
    /// `bps=N`: send the body at N bytes per second.
    pub bps: Option<u64>,
}

/// What a request asked for, resolved: the wait, and how to answer after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// The delay in the path, echoed as `time_elapsed`.
    pub requested: Delay,
    /// How long to actually wait, after drawing and clamping.
    pub wait: Duration,
    /// The drawn delay in seconds, before any clamping, when the options drew one.
    pub drawn: Option<f64>,
    /// The delay in seconds that was clamped to `max_delay`, if one was.
    pub clamped_from: Option<f64>,
    /// The options, validated.
    pub options: Options,
}

impl Plan {
    /// The status to answer after the wait.
    pub fn status(&self) -> u16 {
        self.options.status.unwrap_or(200)
    }
}

/// Seconds as a short decimal for headers: `0.734512`, `12`, `1e300`.
pub(crate) struct Seconds(pub f64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Duration::try_from_secs_f64(self.0) {
            // Microseconds are more than any client can use, and keep the header short.
            // Whole microseconds taken from the duration's own parts: nothing to overflow, however
            // many seconds were drawn.
            Ok(d) => write!(
                f,
                "{}",
                Delay::from(Duration::new(d.as_secs(), d.subsec_micros() * 1000))
            ),
            Err(_) => write!(f, "{:e}", self.0),
        }
    }
}

/// Parses the path segment (percent-decoded) and the raw query into a [`Plan`] under `config`'s
/// limits. Every refusal is an [`ApiError`] answered as a JSON 400.
pub fn plan(segment: &str, query: Option<&str>, config: &Config) -> Result<Plan, ApiError> {
    plan_drawing(segment, query, config, None)
}

/// [`plan`], drawing from the server's seeded `sequence` (`--seed`) when the URL has no `seed=`.
pub(crate) fn plan_drawing(
    segment: &str,
    query: Option<&str>,
    config: &Config,
    sequence: Option<&Sequence>,
) -> Result<Plan, ApiError> {
    let requested = Delay::parse(segment)?;
    let (options, mix) = match query {
        None | Some("") => (Options::default(), None),
        Some(query) => parse_query_and_mix(query)?,
    };
    if let Some(bytes) = options.bytes
        && bytes > config.max_body_bytes
    {
        return Err(ApiError::BodyTooLarge {
            requested: bytes,
            max: config.max_body_bytes,
        });
    }
    let max = config.max_delay;
    let mut plan = Plan {
        requested,
        wait: requested.as_duration(),
        drawn: None,
        clamped_from: None,
        options,
    };
    if plan.wait > max {
        match config.over_max {
            OverMax::Reject => return Err(ApiError::OverMaxDelay { requested, max }),
            OverMax::Clamp => {
                plan.clamped_from = Some(plan.wait.as_secs_f64());
                plan.wait = max;
            }
        }
    }
    if options.shape == Shape::Fixed && mix.is_none() {
        return Ok(plan);
    }
    // One generator per request, for the delay first and then the mix, so that a seeded URL
    // draws the same delay as before mixes existed.
    let (mut seeded, mut thread);
    let rng: &mut dyn rand::Rng = match (options.seed, sequence) {
        (Some(_), _) => {
            let key = fnv1a(&[
                segment.as_bytes(),
                b"?",
                query.unwrap_or_default().as_bytes(),
            ]);
            seeded = rand::rngs::SmallRng::seed_from_u64(key);
            &mut seeded
        }
        (None, Some(sequence)) => {
            seeded = sequence.next();
            &mut seeded
        }
        (None, None) => {
            thread = rand::rng();
            &mut thread
        }
    };
    if options.shape != Shape::Fixed {
        let seconds = draw_with(requested, &options, rng);
        plan.drawn = Some(seconds);
        plan.clamped_from = None;
        plan.wait = match Duration::try_from_secs_f64(seconds) {
            Ok(d) if d <= max => d,
            _ => {
                plan.clamped_from = Some(seconds);
                max
            }
        };
    }
    if let Some(mix) = mix {
        apply(&mut plan.options, mix.draw(rng));
    }
    Ok(plan)
}

/// Turns a mix's draw into the plain options the rest of the server acts on.
fn apply(options: &mut Options, pick: Option<Pick>) {
    match pick {
        Some(Pick::Status(status)) => options.status = Some(status),
        Some(Pick::Fault(fault)) => options.fault = Some(fault),
        None => {}
    }
}

/// Draws a delay in seconds (finite or not, never negative) for a non-fixed shape.
///
/// With `seed`, the generator is seeded from the whole request target, so the draw is a pure
/// function of (path, options, seed) and the server keeps no state for it.
fn draw_with(base: Delay, options: &Options, rng: &mut dyn rand::Rng) -> f64 {
    let base = base.as_duration().as_secs_f64();
    let uniform = |rng: &mut dyn rand::Rng, low: f64, high: f64| {
        if high > low {
            rng.random_range(low..=high)
        } else {
            low
        }
    };
    match options.shape {
        Shape::Fixed => base,
        Shape::Jitter(spread) => {
            let spread = spread.as_duration().as_secs_f64();
            uniform(rng, (base - spread).max(0.0), base + spread)
        }
        Shape::Uniform { min, max } => {
            let low = min.map_or(0.0, |d| d.as_duration().as_secs_f64());
            let high = max.map_or(2.0 * base, |d| d.as_duration().as_secs_f64());
            uniform(rng, low, high.max(low))
        }
        Shape::Lognormal { median, sigma } => {
            let median = median.map_or(base, |d| d.as_duration().as_secs_f64());
            let z: f64 = StandardNormal.sample(rng);
            let value = median * (sigma.unwrap_or(DEFAULT_SIGMA) * z).exp();
            if value.is_nan() { 0.0 } else { value }
        }
    }
}

/// FNV-1a, 64 bits: a stable hash, unlike std's, so seeded draws repeat across builds.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Parses `key=value&key=value`. Values are taken literally (no percent-decoding): every valid value
/// is plain ASCII.
///
/// A `mix=` is checked here, but drawn only by [`plan`], which turns it into `status` or `fault`:
/// the mix is not part of [`Options`], so a waiting request does not carry it.
pub fn parse_query(query: &str) -> Result<Options, ApiError> {
    parse_query_and_mix(query).map(|(options, _)| options)
}

/// [`parse_query`], with the mix to draw from, if any.
fn parse_query_and_mix(query: &str) -> Result<(Options, Option<Mix>), ApiError> {
    let mut options = Options::default();
    let mut mix = None;
    let mut dist: Option<&str> = None;
    let (mut jitter, mut min, mut max, mut median, mut sigma) = (None, None, None, None, None);
    let mut seen = 0u32;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(index) = KEY_NAMES.iter().position(|known| *known == key) else {
            return Err(ApiError::UnknownOption {
                key: excerpt(key),
                known: &KEY_NAMES,
            });
        };
        let key: &'static str = KEY_NAMES[index];
        if seen & (1 << index) != 0 {
            return Err(bad(key, value, "each option at most once"));
        }
        seen |= 1 << index;
        let seconds = || {
            Delay::parse(value).map_err(|_| bad(key, value, "seconds, whole or decimal, e.g. 0.25"))
        };
        match key {
            "jitter" => jitter = Some(seconds()?),
            "min" => min = Some(seconds()?),
            "max" => max = Some(seconds()?),
            "median" => median = Some(seconds()?),
            "sigma" => {
                sigma = Some(
                    Delay::parse(value)
                        .map_err(|_| bad(key, value, "a number 0 or more, e.g. 0.5"))?
                        .as_duration()
                        .as_secs_f64(),
                );
            }
            "dist" => match value {
                "uniform" | "lognormal" => dist = Some(value),
                _ => return Err(bad(key, value, "uniform or lognormal")),
            },
            "seed" => {
                options.seed = Some(
                    parse_digits(value)
                        .ok_or_else(|| bad(key, value, "a whole number, e.g. 42"))?,
                );
            }
            "status" => {
                options.status = Some(
                    parse_digits(value)
                        .filter(|s| (200..=599).contains(s))
                        .map(|s| s as u16)
                        .ok_or_else(|| {
                            bad(
                                key,
                                value,
                                "an HTTP status from 200 to 599 (1xx is informational and cannot end a response)",
                            )
                        })?,
                );
            }
            "drip" => {
                options.drip = Some(
                    parse_digits(value)
                        .filter(|n| (1..=u64::from(MAX_DRIP_CHUNKS)).contains(n))
                        .map(|n| n as u32)
                        .ok_or_else(|| bad(key, value, "a number of chunks from 1 to 10000"))?,
                );
            }
            "bytes" => {
                options.bytes = Some(
                    parse_digits(value)
                        .ok_or_else(|| bad(key, value, "a whole number of bytes, e.g. 1000000"))?,
                );
            }
            "bps" => {
                options.bps = Some(parse_digits(value).filter(|n| *n >= 1).ok_or_else(|| {
                    bad(
                        key,
                        value,
                        "a whole number of bytes per second, 1 or more, e.g. bps=1000000",
                    )
                })?);
            }
            "mix" => {
                mix = Some(Mix::parse(value).map_err(|reason| ApiError::BadMix {
                    value: excerpt(value),
                    reason,
                })?);
            }
            // The only key left: "fault".
            _ => {
                options.fault = Some(Fault::from_name(value).ok_or_else(|| {
                    bad(key, value, "reset, hangup, malformed, hang or truncate")
                })?);
            }
        }
    }

    options.shape = match dist {
        None => {
            if min.is_some() || max.is_some() {
                return Err(conflict("min and max need dist=uniform"));
            }
            if median.is_some() || sigma.is_some() {
                return Err(conflict("median and sigma need dist=lognormal"));
            }
            jitter.map_or(Shape::Fixed, Shape::Jitter)
        }
        Some(_) if jitter.is_some() => {
            return Err(conflict(
                "jitter and dist are two ways to draw the delay; give one of them",
            ));
        }
        Some("uniform") => {
            if median.is_some() || sigma.is_some() {
                return Err(conflict(
                    "median and sigma go with dist=lognormal, not uniform",
                ));
            }
            if let (Some(low), Some(high)) = (min, max)
                && low > high
            {
                return Err(conflict("min is above max"));
            }
            Shape::Uniform { min, max }
        }
        Some(_) => {
            if min.is_some() || max.is_some() {
                return Err(conflict("min and max go with dist=uniform, not lognormal"));
            }
            Shape::Lognormal { median, sigma }
        }
    };
    if matches!(options.status, Some(204 | 205 | 304))
        && (options.drip.is_some() || options.bytes.is_some())
    {
        return Err(conflict(
            "status=204, 205 and 304 answer with no body, and drip and bytes shape a body; give one of them",
        ));
    }
    if options.drip.is_some() && options.fault.is_some() {
        return Err(conflict(
            "drip sends the answer during the wait, fault replaces it after; give one of them",
        ));
    }
    if options.bps.is_some() && options.drip.is_some() {
        return Err(conflict(
            "drip spreads the body over the wait, bps paces it after; give one of them",
        ));
    }
    if let Some(mix) = mix {
        if options.fault.is_some() {
            return Err(conflict(
                "fault serves its fault every time; to serve it sometimes, put it in the mix, e.g. mix=reset:0.1",
            ));
        }
        if options.drip.is_some() && mix.has_fault() {
            return Err(conflict(
                "drip sends the answer during the wait, a fault in the mix replaces it after; give one of them",
            ));
        }
    }
    Ok((options, mix))
}

/// ASCII digits only (no sign, no spaces) of a value that fits in a u64.
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn bad(key: &'static str, value: &str, expected: &'static str) -> ApiError {
    ApiError::BadOption {
        key,
        value: excerpt(value),
        expected,
    }
}

fn conflict(detail: &'static str) -> ApiError {
    ApiError::ConflictingOptions { detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::default()
    }

    fn code(segment: &str, query: &str) -> &'static str {
        plan(segment, Some(query), &config()).unwrap_err().code()
    }

    #[test]
    fn plain_requests_have_no_options() {
        let p = plan("0.25", None, &config()).unwrap();
        assert_eq!(p.wait, Duration::from_millis(250));
        assert_eq!(p.options, Options::default());
        assert_eq!(p.drawn, None);
        assert_eq!(
            plan("1", Some(""), &config()).unwrap().options,
            Options::default()
        );
    }

    #[test]
    fn refusals_have_precise_codes() {
        assert_eq!(code("1", "jiter=0.1"), "unknown_option");
        assert_eq!(code("1", "jitter=abc"), "bad_option");
        assert_eq!(code("1", "jitter=0.1&jitter=0.2"), "bad_option");
        assert_eq!(code("1", "status=99"), "bad_option");
        assert_eq!(code("1", "status=600"), "bad_option");
        assert_eq!(code("1", "status=150"), "bad_option");
        assert_eq!(code("1", "drip=0"), "bad_option");
        assert_eq!(code("1", "fault=explode"), "bad_option");
        assert_eq!(code("1", "dist=normal"), "bad_option");
        assert_eq!(code("1", "min=1"), "conflicting_options");
        assert_eq!(code("1", "dist=uniform&min=2&max=1"), "conflicting_options");
        assert_eq!(code("1", "dist=lognormal&jitter=1"), "conflicting_options");
        assert_eq!(code("1", "drip=2&fault=reset"), "conflicting_options");
        assert_eq!(code("1", "status=204&bytes=100"), "conflicting_options");
        assert_eq!(code("1", "status=304&drip=2"), "conflicting_options");
        assert_eq!(code("1", "status=205&bytes=0"), "conflicting_options");
        assert_eq!(code("1", "bytes=999999999999"), "too_large");
        let ApiError::UnknownOption { key, .. } =
            plan("1", Some("jiter=1"), &config()).unwrap_err()
        else {
            panic!("expected unknown_option")
        };
        assert_eq!(key, "jiter");
    }

    #[test]
    fn over_max_rejects_or_clamps() {
        let mut config = config();
        config.max_delay = Duration::from_secs(2);
        assert_eq!(plan("3", None, &config).unwrap_err().code(), "too_large");
        config.over_max = OverMax::Clamp;
        let p = plan("3", None, &config).unwrap();
        assert_eq!(p.wait, Duration::from_secs(2));
        assert_eq!(p.clamped_from, Some(3.0));
        // A drawn delay is clamped whatever over_max says.
        config.over_max = OverMax::Reject;
        let p = plan("1", Some("dist=uniform&min=5&max=6"), &config).unwrap();
        assert_eq!(p.wait, Duration::from_secs(2));
        assert!(p.clamped_from.unwrap() >= 5.0);
    }

    #[test]
    fn huge_drawn_delays_are_reported_exactly() {
        // 10^14 s has more microseconds than a u64 holds: the header once read 7766279631452.28.
        let p = plan(
            "0",
            Some("dist=uniform&min=100000000000000&max=100000000000001"),
            &config(),
        )
        .unwrap();
        let drawn = Seconds(p.drawn.unwrap()).to_string();
        let value: f64 = drawn.parse().unwrap();
        assert!((1e14..=1.00000000000001e14).contains(&value), "{drawn}");
        assert_eq!(p.wait, config().max_delay);
        assert_eq!(Seconds(1.5e19).to_string(), "15000000000000000000");
        assert_eq!(Seconds(f64::INFINITY).to_string(), "inf");
    }

    #[test]
    fn the_unknown_option_answer_lists_every_key() {
        let detail = plan("1", Some("jiter=1"), &config()).unwrap_err().detail();
        for key in KEY_NAMES {
            assert!(detail.contains(key), "{key} missing from {detail}");
        }
    }

    #[test]
    fn seeded_draws_repeat_and_differ_by_seed() {
        let a = plan("1", Some("jitter=0.5&seed=1"), &config()).unwrap();
        let b = plan("1", Some("jitter=0.5&seed=1"), &config()).unwrap();
        let c = plan("1", Some("jitter=0.5&seed=2"), &config()).unwrap();
        assert_eq!(a.drawn, b.drawn);
        assert_ne!(a.drawn, c.drawn);
    }

    #[test]
    fn jitter_never_goes_below_zero_nor_piles_up_there() {
        let mut zeros = 0;
        for seed in 0..1000 {
            let p = plan("0.1", Some(&format!("jitter=0.5&seed={seed}")), &config()).unwrap();
            let drawn = p.drawn.unwrap();
            assert!((0.0..=0.6).contains(&drawn), "{drawn}");
            zeros += usize::from(drawn == 0.0);
        }
        assert!(zeros < 5, "{zeros} draws at exactly 0");
    }

    #[test]
    fn lognormal_median_is_near_median() {
        let mut draws: Vec<f64> = (0..1000)
            .map(|seed| {
                plan(
                    "9",
                    Some(&format!("dist=lognormal&median=2&sigma=1&seed={seed}")),
                    &config(),
                )
                .unwrap()
                .drawn
                .unwrap()
            })
            .collect();
        draws.sort_by(f64::total_cmp);
        let median = draws[500];
        assert!((1.6..2.5).contains(&median), "median {median}");
        assert!(draws.iter().all(|d| *d >= 0.0));
    }

    #[test]
    fn uniform_stays_in_bounds() {
        for seed in 0..200 {
            let p = plan(
                "0",
                Some(&format!("dist=uniform&min=1&max=1.5&seed={seed}")),
                &config(),
            )
            .unwrap();
            assert!((1.0..=1.5).contains(&p.drawn.unwrap()));
        }
    }
}
