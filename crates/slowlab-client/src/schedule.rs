//! Open-loop arrivals: when each request of a run is due, whatever the earlier ones are doing.
//!
//! A [`Rate`] is a starting rate and optional linear ramps (`100,1000@30s,1000@60s,0@10s`). The
//! requests are numbered 0, 1, 2, … across the whole run, and request `k` is due at the moment the
//! rate's integral (the number of arrivals so far) reaches `k`: at a constant rate R that is
//! `k / R`. Because a start is a function of `k` alone, any subset of the requests (a shard, a
//! server's queue) keeps its place in the one schedule.

use std::fmt;
use std::time::Duration;

/// The most requests a second a rate may ask for: far above what one client reaches, low enough
/// that every schedule's arithmetic stays exact in an `f64`.
pub const MAX_RATE: f64 = 10_000_000.0;

/// Arrivals whose count falls short of a whole number by less than this still count as whole,
/// so that 200/s for 2 s is 400 requests, not 401 from rounding.
const EPSILON: f64 = 1e-9;

/// When a run's requests go out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pace {
    /// Open loop: each request is due at its place in this rate's schedule.
    pub rate: Option<Rate>,
    /// Closed loop for a time: no request starts after this, from the run's start.
    pub until: Option<Duration>,
}

impl Pace {
    /// Whether requests are sent on a schedule rather than as slots free.
    pub fn is_open_loop(&self) -> bool {
        self.rate.is_some()
    }
}

/// A target arrival rate, constant or in linear stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    /// Requests a second at the start of the run.
    start: f64,
    /// Each ramps linearly from the rate before it to its own, over its duration.
    stages: Vec<Stage>,
}

/// One ramp of a [`Rate`]: to `rate` requests a second over `over`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// The rate reached at the end of the stage.
    pub rate: f64,
    /// How long the ramp takes.
    pub over: Duration,
}

/// Why a `--rate` value was refused: the stage at fault and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RateError(String);

impl Eq for Rate {}

impl Rate {
    /// A constant rate of `per_second` requests a second.
    pub fn constant(per_second: f64) -> Result<Rate, RateError> {
        Rate::parse(&per_second.to_string())
    }

    /// Parses `R` or `R,R@D,R@D…`: a starting rate in requests a second (decimals allowed), then
    /// stages, each ramping linearly to its rate over its duration (`30s`, `2m`, `500ms`).
    pub fn parse(text: &str) -> Result<Rate, RateError> {
        let mut parts = text.split(',').map(str::trim);
        let first = parts.next().unwrap_or_default();
        if first.contains('@') {
            return Err(RateError(format!(
                "the first stage {first:?} is the starting rate and takes no duration: \
                 write e.g. `100,1000@30s`"
            )));
        }
        let start = parse_per_second(first)?;
        let stages = parts
            .map(|stage| {
                let Some((rate, over)) = stage.split_once('@') else {
                    return Err(RateError(format!(
                        "stage {stage:?} has no duration: write RATE@DURATION, e.g. `{stage}@30s`"
                    )));
                };
                let rate = parse_per_second(rate.trim())
                    .map_err(|err| RateError(format!("stage {stage:?}: {err}")))?;
                let over = parse_duration(over.trim()).ok_or_else(|| {
                    RateError(format!(
                        "stage {stage:?}: {over:?} is not a duration above 0 of at most a day; \
                         e.g. 500ms, 30s, 2m"
                    ))
                })?;
                Ok(Stage { rate, over })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if stages.is_empty() && start == 0.0 {
            return Err(RateError(
                "a rate of 0 sends nothing: give a rate above 0, e.g. `--rate 100`".to_owned(),
            ));
        }
        Ok(Rate { start, stages })
    }

    /// The stages after the starting rate.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The starting rate, requests a second.
    pub fn start(&self) -> f64 {
        self.start
    }

    /// How long the stages last together; `None` for a constant rate.
    pub fn length(&self) -> Option<Duration> {
        (!self.stages.is_empty()).then(|| self.stages.iter().map(|s| s.over).sum())
    }

    /// The target rate at `t` into the run; after the last stage its rate holds.
    pub fn at(&self, t: Duration) -> f64 {
        let mut t = t.as_secs_f64();
        let mut from = self.start;
        for stage in &self.stages {
            let over = stage.over.as_secs_f64();
            if t < over {
                return from + (stage.rate - from) * t / over;
            }
            t -= over;
            from = stage.rate;
        }
        from
    }

    /// Arrivals due in the first `t` of the run: the rate's integral from 0 to `t`.
    pub fn integral(&self, t: Duration) -> f64 {
        let mut t = t.as_secs_f64();
        let mut from = self.start;
        let mut sum = 0.0;
        for stage in &self.stages {
            let over = stage.over.as_secs_f64();
            let span = t.min(over);
            let to = from + (stage.rate - from) * span / over;
            sum += (from + to) / 2.0 * span;
            if t <= over {
                return sum;
            }
            t -= over;
            from = stage.rate;
        }
        sum + from * t
    }

    /// How many requests are due before `t`: those numbered below the integral up to `t`.
    pub fn count_before(&self, t: Duration) -> usize {
        let due = self.integral(t);
        (due - EPSILON).ceil().max(0.0) as usize
    }

    /// When request `k` is due, from the run's start: where the integral reaches `k`. `None` when
    /// it never does (the rate ends at 0 first).
    pub fn start_of(&self, k: usize) -> Option<Duration> {
        let mut left = k as f64;
        let mut elapsed = 0.0;
        let mut from = self.start;
        for stage in &self.stages {
            let over = stage.over.as_secs_f64();
            let here = (from + stage.rate) / 2.0 * over;
            if left <= here {
                // Solve from·t + (to - from)·t²/(2·over) = left for the first t ≥ 0, in the form
                // that stays exact when the ramp is flat or starts at 0.
                let a = (stage.rate - from) / (2.0 * over);
                let root = (from * from + 4.0 * a * left).max(0.0).sqrt();
                let t = if left == 0.0 {
                    0.0
                } else {
                    2.0 * left / (from + root)
                };
                return Some(seconds(elapsed + t.min(over)));
            }
            left -= here;
            elapsed += over;
            from = stage.rate;
        }
        if left == 0.0 {
            return Some(seconds(elapsed));
        }
        (from > 0.0).then(|| seconds(elapsed + left / from))
    }
}

impl fmt::Display for Rate {
    /// As typed: `100` or `100,1000@30s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.start)?;
        for stage in &self.stages {
            write!(f, ",{}@{}s", stage.rate, stage.over.as_secs_f64())?;
        }
        Ok(())
    }
}

/// A rate in requests a second: finite, 0 to [`MAX_RATE`].
fn parse_per_second(text: &str) -> Result<f64, RateError> {
    let rate: f64 = text.parse().map_err(|_| {
        RateError(format!(
            "{text:?} is not a number of requests a second; e.g. 100 or 2.5"
        ))
    })?;
    if !rate.is_finite() || !(0.0..=MAX_RATE).contains(&rate) {
        return Err(RateError(format!(
            "{text} requests a second is out of range: 0 to {MAX_RATE}"
        )));
    }
    Ok(rate)
}

/// `30s`, `2m`, `500ms`, `1.5` (seconds): above 0, at most a day.
fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    let secs = number * scale;
    (secs.is_finite() && secs > 0.0 && secs <= 86_400.0).then(|| Duration::from_secs_f64(secs))
}

fn seconds(secs: f64) -> Duration {
    Duration::from_secs_f64(secs.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        Rate::parse(text).unwrap()
    }

    #[test]
    fn constant_rate_starts_request_k_at_k_over_r() {
        let r = rate("200");
        for k in [0, 1, 2, 199, 200, 399, 10_000] {
            let expected = k as f64 / 200.0;
            let got = r.start_of(k).unwrap().as_secs_f64();
            assert!((got - expected).abs() < 1e-9, "k={k}: {got} vs {expected}");
        }
        assert_eq!(r.count_before(Duration::from_secs(2)), 400);
        assert_eq!(r.count_before(Duration::from_millis(2001)), 401);
        assert_eq!(rate("2.5").count_before(Duration::from_secs(2)), 5);
    }

    #[test]
    fn ramps_integrate_to_the_right_counts() {
        // 100 → 1000 over 30 s: (100 + 1000) / 2 × 30 = 16,500; 1000 for 60 s: 60,000; down to 0
        // over 10 s: 5,000.
        let r = rate("100,1000@30s,1000@60s,0@10s");
        assert_eq!(r.length(), Some(Duration::from_secs(100)));
        assert_eq!(r.count_before(Duration::from_secs(30)), 16_500);
        assert_eq!(r.count_before(Duration::from_secs(90)), 76_500);
        assert_eq!(r.count_before(Duration::from_secs(100)), 81_500);
        // After the last stage the rate stays at 0: nothing more is ever due.
        assert_eq!(r.count_before(Duration::from_secs(1000)), 81_500);
        assert!(r.start_of(81_499).is_some());
        assert_eq!(r.start_of(81_500).map(|d| d.as_secs()), Some(100));
        assert_eq!(r.start_of(81_501), None);
        // Every start agrees with the integral: request k is due where k arrivals have come.
        for k in (0..81_500).step_by(997) {
            let t = r.start_of(k).unwrap();
            assert!((r.integral(t) - k as f64).abs() < 1e-6, "k={k} at {t:?}");
        }
        assert!((r.at(Duration::from_secs(15)) - 550.0).abs() < 1e-9);
        assert!((r.at(Duration::from_secs(95)) - 500.0).abs() < 1e-9);
    }

    #[test]
    fn a_ramp_from_zero_starts_at_zero_and_speeds_up() {
        let r = rate("0,100@10s");
        assert_eq!(r.start_of(0), Some(Duration::ZERO));
        assert_eq!(r.count_before(Duration::from_secs(10)), 500);
        let gaps: Vec<f64> = (0..5)
            .map(|k| (r.start_of(k + 1).unwrap() - r.start_of(k).unwrap()).as_secs_f64())
            .collect();
        assert!(gaps.windows(2).all(|w| w[1] < w[0]), "{gaps:?}");
    }

    #[test]
    fn bad_rates_name_the_stage_and_the_rule() {
        for (text, says) in [
            ("0", "a rate of 0"),
            ("-5", "out of range"),
            ("nan", "out of range"),
            ("inf", "out of range"),
            ("fast", "not a number"),
            ("100,1000", "stage \"1000\" has no duration"),
            ("100,1000@", "stage \"1000@\""),
            ("100,1000@0s", "above 0"),
            ("100,x@30s", "stage \"x@30s\""),
            ("100@30s", "starting rate"),
        ] {
            let err = Rate::parse(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
