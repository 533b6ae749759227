//! A saved histogram's header, checked before HdrHistogram's decoder reads it.
//!
//! The decoder allocates what the header claims: a payload of up to 4 GiB, and counts for the
//! claimed range and precision. A forged histogram of 56 base64 characters made `report show`
//! take 4 GB. So the header is read here first: the payload it claims must be there, and the
//! range and precision those of a histogram of microseconds as slowlab writes them.

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// HdrHistogram's V2 cookie, and the cookie of V2 wrapped in deflate.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// After the cookie: payload length, normalizing offset, significant digits (4 bytes each), the
/// lowest and highest trackable values and the integer-to-double ratio (8 bytes each).
const HEADER_AFTER_COOKIE: usize = 36;
/// The most a saved histogram may inflate to: a histogram of microseconds to 3 significant
/// figures over any range is well under this.
const MAX_INFLATED: u64 = 16 * 1024 * 1024;
/// The most significant figures accepted: slowlab writes 3; more multiplies the counts kept.
const MAX_DIGITS: u32 = 3;

/// Why the header of the base64 histogram `text` cannot be trusted, if it cannot.
pub fn check(text: &str) -> Result<(), String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|err| format!("not base64: {err}"))?;
    let word = |bytes: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let short = || "shorter than a histogram header".to_owned();
    match word(&bytes, 0).ok_or_else(short)? {
        V2_COOKIE => check_v2(&bytes[4..]),
        V2_COMPRESSED_COOKIE => {
            let length = word(&bytes, 4).ok_or_else(short)? as usize;
            let compressed = bytes.get(8..).unwrap_or_default();
            let compressed = &compressed[..length.min(compressed.len())];
            let mut inflated = Vec::new();
            flate2::read::ZlibDecoder::new(compressed)
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut inflated)
                .map_err(|err| format!("its deflate stream is broken: {err}"))?;
            if inflated.len() as u64 > MAX_INFLATED {
                return Err(format!("it inflates past {MAX_INFLATED} bytes"));
            }
            if word(&inflated, 0) != Some(V2_COOKIE) {
                return Err("the inflated histogram has no V2 cookie".to_owned());
            }
            check_v2(&inflated[4..])
        }
        other => Err(format!("cookie {other:#x} is not HdrHistogram V2's")),
    }
}

/// `rest`: a V2 histogram after its cookie.
fn check_v2(rest: &[u8]) -> Result<(), String> {
    if rest.len() < HEADER_AFTER_COOKIE {
        return Err("shorter than a histogram header".to_owned());
    }
    let u32_at = |at: usize| u32::from_be_bytes(rest[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_be_bytes(rest[at..at + 8].try_into().expect("8 bytes"));
    let payload = u32_at(0) as usize;
    let held = rest.len() - HEADER_AFTER_COOKIE;
    if payload > held {
        return Err(format!(
            "its header claims a payload of {payload} bytes where {held} follow"
        ));
    }
    let digits = u32_at(8);
    if digits > MAX_DIGITS {
        return Err(format!(
            "{digits} significant figures: slowlab's histograms keep at most {MAX_DIGITS}"
        ));
    }
    let (low, high) = (u64_at(12), u64_at(20));
    if low == 0 || high < low.saturating_mul(2) {
        return Err(format!("its range {low}..{high} is not a histogram's"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(payload: u32, digits: u32, low: u64, high: u64) -> Vec<u8> {
        let mut bytes = V2_COOKIE.to_be_bytes().to_vec();
        for word in [payload, 0, digits] {
            bytes.extend(word.to_be_bytes());
        }
        bytes.extend(low.to_be_bytes());
        bytes.extend(high.to_be_bytes());
        bytes.extend(1.0f64.to_be_bytes());
        bytes
    }

    #[test]
    fn a_claimed_payload_must_be_there() {
        let forged = STANDARD.encode(header(0xFFFF_FFF0, 3, 1, 2));
        assert!(check(&forged).unwrap_err().contains("claims a payload"));
        assert!(check(&STANDARD.encode(header(0, 3, 1, 2))).is_ok());
    }

    #[test]
    fn precision_and_range_are_those_slowlab_writes() {
        assert!(check(&STANDARD.encode(header(0, 5, 1, 2))).is_err());
        assert!(check(&STANDARD.encode(header(0, 3, 0, 2))).is_err());
    }

    #[test]
    fn what_slowlab_writes_passes() {
        let mut histogram = slowlab_client::histogram::new_micros();
        histogram.record(1234).unwrap();
        histogram.record(3_600_000_000).unwrap();
        assert_eq!(
            check(&slowlab_client::histogram::encode(&histogram)),
            Ok(())
        );
    }
}
