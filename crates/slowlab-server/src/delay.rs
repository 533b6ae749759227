//! The delay in a request path: `/7`, `/0.25`, `/007`.
//!
//! The grammar is deliberately narrow: ASCII digits, optionally a dot and 1 to 9 more digits. Anything
//! a float parser would also accept (`1e3`, `inf`, `nan`, `+1`, `0x10`, spaces) is refused, so a
//! request means exactly one delay and the echo can repeat it without rounding.

use std::fmt;
use std::time::Duration;

/// Longest excerpt of user input repeated in an error message.
const EXCERPT_CHARS: usize = 24;

/// Most digits allowed after the decimal point: nanosecond resolution.
const MAX_FRACTION_DIGITS: usize = 9;

/// A requested delay, exact to the nanosecond, remembering how it was written.
///
/// `Display` gives the canonical form used in the response body: leading zeros of the whole part
/// dropped, trailing zeros of the fraction dropped, and no dot at all for whole numbers (`/007` is
/// `7`, `/0.250` is `0.25`, `/3.0` is `3`). It is always a valid JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Delay {
    secs: u64,
    nanos: u32,
}

/// Why a path segment is not a delay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelayError {
    /// Not of the form `digits[.digits]`.
    #[error("{excerpt:?} is not a number of seconds")]
    NotANumber {
        /// A short, safe excerpt of the input.
        excerpt: String,
    },
    /// A minus sign in front of an otherwise valid number.
    #[error("{excerpt:?} is negative")]
    Negative {
        /// A short, safe excerpt of the input.
        excerpt: String,
    },
    /// Digits that do not fit in 64 bits of seconds.
    #[error("{excerpt:?} is too large to represent")]
    Overflow {
        /// A short, safe excerpt of the input.
        excerpt: String,
    },
}

/// Whether a path segment (percent-decoded) is meant as a number of seconds: it starts with a
/// digit (of any script), a sign or a dot. Such a segment gets the delay endpoint's precise 400 when
/// it is not a valid delay (`/+1`, `/1e3`, `/１`); any other segment (`/abc`) is not a route, a 404.
pub fn looks_like_number(segment: &str) -> bool {
    segment
        .chars()
        .next()
        .is_some_and(|c| c.is_numeric() || matches!(c, '+' | '-' | '.'))
}

impl Delay {
    /// No wait at all.
    pub const ZERO: Delay = Delay { secs: 0, nanos: 0 };

    /// A delay of whole seconds.
    pub const fn from_secs(secs: u64) -> Delay {
        Delay { secs, nanos: 0 }
    }

    /// A delay of whole milliseconds.
    pub const fn from_millis(millis: u64) -> Delay {
        Delay {
            secs: millis / 1000,
            nanos: (millis % 1000) as u32 * 1_000_000,
        }
    }

    /// Parses a path segment (already percent-decoded) such as `7`, `0.25` or `007`.
    ///
    /// Runs in one pass over the input and never recurses, so any length the URI limit allows is
    /// safe.
    pub fn parse(text: &str) -> Result<Delay, DelayError> {
        if let Some(rest) = text.strip_prefix('-') {
            // A number after one minus sign is negative; anything else (`--1`, `-x`) is not a
            // number at all.
            return match Delay::parse_unsigned(rest) {
                Ok(_) | Err(DelayError::Overflow { .. }) => Err(DelayError::Negative {
                    excerpt: excerpt(text),
                }),
                Err(_) => Err(DelayError::NotANumber {
                    excerpt: excerpt(text),
                }),
            };
        }
        Delay::parse_unsigned(text)
    }

    /// Parses `digits[.digits]`, no sign.
    fn parse_unsigned(text: &str) -> Result<Delay, DelayError> {
        let not_a_number = || DelayError::NotANumber {
            excerpt: excerpt(text),
        };
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_a_number());
        }
        let nanos = match fraction {
            None => 0,
            Some(f)
                if (1..=MAX_FRACTION_DIGITS).contains(&f.len())
                    && f.bytes().all(|b| b.is_ascii_digit()) =>
            {
                // Right-pad to nine digits: "25" is 250_000_000 ns.
                let digits: u32 = f.parse().map_err(|_| not_a_number())?;
                digits * 10u32.pow((MAX_FRACTION_DIGITS - f.len()) as u32)
            }
            Some(_) => return Err(not_a_number()),
        };
        let secs = whole.parse::<u64>().map_err(|_| DelayError::Overflow {
            excerpt: excerpt(text),
        })?;
        Ok(Delay { secs, nanos })
    }

    /// The delay as a `Duration`.
    pub const fn as_duration(self) -> Duration {
        Duration::new(self.secs, self.nanos)
    }

    /// The delay in seconds when it is a whole number of them.
    pub(crate) fn whole_seconds(self) -> Option<u64> {
        (self.nanos == 0).then_some(self.secs)
    }

    /// Appends the canonical form (the same text as `Display`) to `out`, without the formatting
    /// machinery: this runs for every answer.
    pub(crate) fn write_to(self, out: &mut SmallBuf) {
        out.push_decimal(self.secs);
        if self.nanos != 0 {
            let mut digits = [b'0'; MAX_FRACTION_DIGITS];
            let mut rest = self.nanos;
            for digit in digits.iter_mut().rev() {
                *digit = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            let len = digits.iter().rposition(|d| *d != b'0').map_or(0, |i| i + 1);
            out.push(b".");
            out.push(&digits[..len]);
        }
    }
}

/// A fixed-size text buffer on the stack for the short values of every answer (the body, the
/// `Server-Timing` header); `format!` costs several times more than the rest of building them.
pub(crate) struct SmallBuf {
    bytes: [u8; SmallBuf::CAPACITY],
    len: usize,
}

impl SmallBuf {
    /// Enough for `{"time_elapsed": ` + 20 digits + `.` + 9 digits + `}`, and for the longest
    /// `Server-Timing` value.
    pub(crate) const CAPACITY: usize = 64;

    pub(crate) fn new() -> SmallBuf {
        SmallBuf {
            bytes: [0; SmallBuf::CAPACITY],
            len: 0,
        }
    }

    /// Appends `text`; what does not fit is cut off (every caller stays well inside).
    pub(crate) fn push(&mut self, text: &[u8]) {
        let n = text.len().min(SmallBuf::CAPACITY - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&text[..n]);
        self.len += n;
    }

    /// Appends `n` in decimal.
    pub(crate) fn push_decimal(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[start..]);
    }

    /// Appends `n` in decimal, zero-padded to `width` digits.
    pub(crate) fn push_padded(&mut self, n: u64, width: usize) {
        let mut digits = [b'0'; 20];
        let mut rest = n;
        let mut start = digits.len();
        while rest > 0 || digits.len() - start < width {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if start == 0 {
                break;
            }
        }
        self.push(&digits[start..]);
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl From<Duration> for Delay {
    fn from(d: Duration) -> Delay {
        Delay {
            secs: d.as_secs(),
            nanos: d.subsec_nanos(),
        }
    }
}

impl std::str::FromStr for Delay {
    type Err = DelayError;

    fn from_str(text: &str) -> Result<Delay, DelayError> {
        Delay::parse(text)
    }
}

impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.secs)?;
        if self.nanos != 0 {
            let fraction = format!("{:09}", self.nanos);
            write!(f, ".{}", fraction.trim_end_matches('0'))?;
        }
        Ok(())
    }
}

/// A short excerpt of untrusted input, safe to repeat in an error body.
pub(crate) fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_to_matches_display() {
        for text in [
            "0",
            "1",
            "007",
            "0.25",
            "0.250",
            "3.0",
            "1.000000001",
            "12.5",
            "0.000000001",
            "18446744073709551615.999999999",
            "600",
        ] {
            let delay = Delay::parse(text).unwrap();
            let mut buf = SmallBuf::new();
            delay.write_to(&mut buf);
            assert_eq!(
                std::str::from_utf8(buf.as_bytes()).unwrap(),
                delay.to_string()
            );
        }
    }

    #[test]
    fn small_buf_pads_and_cuts() {
        let mut buf = SmallBuf::new();
        buf.push_padded(7, 3);
        buf.push(b".");
        buf.push_padded(0, 3);
        buf.push(b".");
        buf.push_padded(1234, 3);
        buf.push_decimal(0);
        assert_eq!(buf.as_bytes(), b"007.000.12340");
        let mut full = SmallBuf::new();
        for _ in 0..100 {
            full.push(b"xy");
        }
        assert_eq!(full.as_bytes().len(), SmallBuf::CAPACITY);
    }

    fn canonical(text: &str) -> String {
        Delay::parse(text).unwrap().to_string()
    }

    #[test]
    fn whole_and_decimal_seconds() {
        assert_eq!(
            Delay::parse("7").unwrap().as_duration(),
            Duration::from_secs(7)
        );
        assert_eq!(
            Delay::parse("0.25").unwrap().as_duration(),
            Duration::from_millis(250)
        );
        assert_eq!(
            Delay::parse("1.000000001").unwrap().as_duration(),
            Duration::new(1, 1)
        );
    }

    #[test]
    fn canonical_echo() {
        assert_eq!(canonical("007"), "7");
        assert_eq!(canonical("0"), "0");
        assert_eq!(canonical("0.25"), "0.25");
        assert_eq!(canonical("0.250"), "0.25");
        assert_eq!(canonical("3.0"), "3");
        assert_eq!(canonical("00.5"), "0.5");
        assert_eq!(canonical("18446744073709551615"), "18446744073709551615");
    }

    #[test]
    fn refuses_what_float_parsers_accept() {
        for bad in [
            "",
            "abc",
            "1e3",
            "0x10",
            "+1",
            " 1",
            "1 ",
            "nan",
            "inf",
            "NaN",
            ".5",
            "5.",
            "1.2.3",
            "1,5",
            "1.0000000001",
            "١",
            "--1",
            "-",
        ] {
            assert!(
                matches!(Delay::parse(bad), Err(DelayError::NotANumber { .. })),
                "{bad:?} should be not_a_number, got {:?}",
                Delay::parse(bad)
            );
        }
    }

    #[test]
    fn negative_and_overflow() {
        assert!(matches!(
            Delay::parse("-1"),
            Err(DelayError::Negative { .. })
        ));
        assert!(matches!(
            Delay::parse("-0.5"),
            Err(DelayError::Negative { .. })
        ));
        assert!(matches!(
            Delay::parse("18446744073709551616"),
            Err(DelayError::Overflow { .. })
        ));
        assert!(matches!(
            Delay::parse(&"9".repeat(400)),
            Err(DelayError::Overflow { .. })
        ));
    }

    #[test]
    fn long_runs_of_signs_do_not_recurse() {
        // One mebibyte of minus signs: the longest path the URI limit allows.
        let minuses = "-".repeat(1024 * 1024);
        assert!(matches!(
            Delay::parse(&minuses),
            Err(DelayError::NotANumber { .. })
        ));
        let negative = format!("-{}", "9".repeat(1024 * 1024));
        assert!(matches!(
            Delay::parse(&negative),
            Err(DelayError::Negative { .. })
        ));
    }

    #[test]
    fn from_millis() {
        assert_eq!(Delay::from_millis(1).to_string(), "0.001");
        assert_eq!(
            Delay::from_millis(2500).as_duration(),
            Duration::from_millis(2500)
        );
    }

    #[test]
    fn excerpts_stay_short() {
        let long = "x".repeat(10_000);
        let DelayError::NotANumber { excerpt } = Delay::parse(&long).unwrap_err() else {
            panic!("expected not_a_number");
        };
        assert!(excerpt.chars().count() <= EXCERPT_CHARS + 1);
    }
}
