//! Failure mixes: `mix=200:0.7,503:0.2,reset:0.1` draws each request's answer from a list of
//! statuses and faults with their probabilities; what the list leaves over is the plain answer.
//!
//! One option carries the whole mix (options appear at most once), so a URL or a rule says "503 on
//! 20% of requests" in one place. The mix is drawn when the request is planned, so the rest of the
//! server sees an ordinary `status=` or `fault=`.

use std::fmt;

use rand::RngExt;

use crate::options::Fault;

/// Most entries one mix may have: every status and fault a test needs, and a bound on the size of
/// a parsed request.
pub const MAX_ENTRIES: usize = 8;

/// Probabilities are counted in billionths: nine decimal digits, like delays.
const ONE: u32 = 1_000_000_000;

/// The grammar of `mix=`, quoted in every refusal.
pub const GRAMMAR: &str = "comma-separated OUTCOME:PROBABILITY pairs, where OUTCOME is an HTTP status from 200 to 599 or a fault (reset, hangup, malformed, hang, truncate) and PROBABILITY a decimal from 0 to 1; the probabilities sum to at most 1 and the rest is the plain answer, e.g. mix=200:0.7,503:0.2,reset:0.1";

/// What one entry of a mix answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Answer with this status.
    Status(u16),
    /// Serve this fault.
    Fault(Fault),
}

impl fmt::Display for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pick::Status(status) => write!(f, "{status}"),
            Pick::Fault(fault) => f.write_str(fault.name()),
        }
    }
}

/// A parsed mix: up to [`MAX_ENTRIES`] outcomes with their probabilities (in billionths), kept
/// inline so that options stay `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    picks: [Pick; MAX_ENTRIES],
    weights: [u32; MAX_ENTRIES],
    len: u8,
}

impl fmt::Debug for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mix({self})")
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (pick, weight)) in self.entries().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{pick}:{}", f64::from(weight) / f64::from(ONE))?;
        }
        Ok(())
    }
}

impl Mix {
    /// Parses `OUTCOME:P,OUTCOME:P,...`; the error says what is wrong with which entry.
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut mix = Mix {
            picks: [Pick::Status(200); MAX_ENTRIES],
            weights: [0; MAX_ENTRIES],
            len: 0,
        };
        if text.is_empty() {
            return Err("the mix is empty".to_owned());
        }
        let mut total: u64 = 0;
        for entry in text.split(',') {
            let Some((outcome, probability)) = entry.split_once(':') else {
                return Err(format!(
                    "{entry:?} has no ':' between outcome and probability"
                ));
            };
            let pick = parse_pick(outcome)?;
            let weight = parse_probability(probability)
                .ok_or_else(|| format!("{probability:?} is not a probability from 0 to 1"))?;
            if mix.entries().any(|(seen, _)| seen == pick) {
                return Err(format!("{pick} appears twice"));
            }
            if usize::from(mix.len) == MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} entries"));
            }
            total += u64::from(weight);
            if total > u64::from(ONE) {
                return Err("the probabilities sum to more than 1".to_owned());
            }
            mix.picks[usize::from(mix.len)] = pick;
            mix.weights[usize::from(mix.len)] = weight;
            mix.len += 1;
        }
        Ok(mix)
    }

    /// The entries in the order given, with probabilities in billionths.
    fn entries(&self) -> impl Iterator<Item = (Pick, u32)> + '_ {
        let len = usize::from(self.len);
        self.picks[..len]
            .iter()
            .copied()
            .zip(self.weights[..len].iter().copied())
    }

    /// Whether any entry is a fault.
    pub fn has_fault(&self) -> bool {
        self.entries()
            .any(|(pick, _)| matches!(pick, Pick::Fault(_)))
    }

    /// Draws one outcome; `None` is the plain answer (the share the entries leave over).
    pub fn draw(&self, rng: &mut (impl rand::Rng + ?Sized)) -> Option<Pick> {
        let mut ticket = rng.random_range(0..ONE);
        for (pick, weight) in self.entries() {
            if ticket < weight {
                return Some(pick);
            }
            ticket -= weight;
        }
        None
    }
}

fn parse_pick(text: &str) -> Result<Pick, String> {
    if let Some(fault) = Fault::from_name(text) {
        return Ok(Pick::Fault(fault));
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u16>() {
            Ok(status) if (200..=599).contains(&status) => Ok(Pick::Status(status)),
            _ => Err(format!("{text} is not a status from 200 to 599")),
        };
    }
    Err(format!(
        "{text:?} is neither a status from 200 to 599 nor a fault (reset, hangup, malformed, hang, truncate)"
    ))
}

/// `0`, `1`, `0.25`, `1.0`: digits, optionally a dot and 1 to 9 more, no more than 1. In
/// billionths.
fn parse_probability(text: &str) -> Option<u32> {
    let delay = crate::delay::Delay::parse(text).ok()?;
    let nanos = delay.as_duration().as_nanos();
    u32::try_from(nanos).ok().filter(|n| *n <= ONE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn parses_statuses_faults_and_leftover() {
        let mix = Mix::parse("200:0.7,503:0.2,reset:0.1").unwrap();
        assert_eq!(mix.to_string(), "200:0.7,503:0.2,reset:0.1");
        assert!(mix.has_fault());
        assert!(!Mix::parse("503:0.2").unwrap().has_fault());
        assert!(Mix::parse("503:1").is_ok());
        assert!(Mix::parse("503:0").is_ok());
    }

    #[test]
    fn refuses_what_is_not_a_mix() {
        for bad in [
            "",
            "503",
            "503:",
            ":0.5",
            "503:1.5",
            "503:-0.1",
            "503:0.5,503:0.1",
            "503:0.6,500:0.5",
            "99:0.1",
            "600:0.1",
            "explode:0.1",
            "503:1e-3",
            "200:0.1,201:0.1,202:0.1,203:0.1,204:0.1,205:0.1,206:0.1,207:0.1,208:0.1",
        ] {
            assert!(Mix::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn draws_follow_the_probabilities() {
        let mix = Mix::parse("503:0.2,reset:0.1").unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let (mut status, mut reset, mut plain) = (0, 0, 0);
        for _ in 0..10_000 {
            match mix.draw(&mut rng) {
                Some(Pick::Status(503)) => status += 1,
                Some(Pick::Fault(Fault::Reset)) => reset += 1,
                None => plain += 1,
                other => panic!("{other:?}"),
            }
        }
        // Three standard deviations: sqrt(10000 * 0.2 * 0.8) = 40, sqrt(10000 * 0.1 * 0.9) = 30.
        assert!((2000 - 120..=2000 + 120).contains(&status), "{status}");
        assert!((1000 - 90..=1000 + 90).contains(&reset), "{reset}");
        assert_eq!(status + reset + plain, 10_000);
    }
}
