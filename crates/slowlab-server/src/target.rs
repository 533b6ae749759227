//! The request target and `Host` rules every request must meet before it is routed.
//!
//! RFC 9112 §3.2: an HTTP/1.1 request needs exactly one `Host` header with a valid value, and a
//! server must answer 400 otherwise (HTTP/1.0 may leave it out). RFC 9110 §7.1: the asterisk-form
//! target `*` is for `OPTIONS` alone, in every protocol (over HTTP/2 it is `:path *`).

use axum::http::uri::Authority;
use axum::http::{HeaderValue, Method, Request, Uri, Version, header};

use crate::error::ApiError;

/// Refuses a request whose `Host` headers or asterisk target break the rules above.
pub(crate) fn check<B>(request: &Request<B>) -> Result<(), ApiError> {
    if is_asterisk(request.uri()) && request.method() != Method::OPTIONS {
        return Err(ApiError::AsteriskTarget {
            method: crate::delay::excerpt(request.method().as_str()),
        });
    }
    let mut hosts = request.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if request.version() == Version::HTTP_11 => Err(ApiError::BadHost {
            problem: "the request has no Host header",
        }),
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err(ApiError::BadHost {
            problem: "the request has more than one Host header",
        }),
        (Some(value), None) if !is_valid_host(value) => Err(ApiError::BadHost {
            problem: "the Host header is not a host name or address with an optional port",
        }),
        (Some(_), None) => Ok(()),
    }
}

/// Whether the target is the asterisk form, `*`.
pub(crate) fn is_asterisk(uri: &Uri) -> bool {
    uri.path() == "*"
}

/// `uri-host [ ":" port ]`: what an authority is, without user information.
fn is_valid_host(value: &HeaderValue) -> bool {
    // The usual host, a name or an IPv4 address with an optional port, is settled without
    // parsing it as an `Authority`, which copies it into a new allocation on every request.
    if is_plain_host(value.as_bytes()) {
        return true;
    }
    let Ok(text) = value.to_str() else {
        return false;
    };
    !text.is_empty() && !text.contains('@') && text.parse::<Authority>().is_ok()
}

/// Unreserved characters (RFC 3986 §2.3) with at most one colon: every such non-empty text is an
/// authority without user information, so [`is_valid_host`] may answer yes without parsing it.
/// Anything else (brackets, percent-escapes, `@`, other bytes) takes the full parse.
fn is_plain_host(bytes: &[u8]) -> bool {
    let mut colons = 0;
    !bytes.is_empty()
        && bytes.iter().all(|&b| match b {
            b':' => {
                colons += 1;
                colons == 1
            }
            _ => b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, target: &str, hosts: &[&str]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(target);
        for host in hosts {
            builder = builder.header(header::HOST, *host);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn host_rules() {
        for good in [
            "example.com",
            "127.0.0.1:8000",
            "[::1]:80",
            "localhost",
            "a-b.c",
        ] {
            assert!(
                check(&request(Method::GET, "/0", &[good])).is_ok(),
                "{good}"
            );
        }
        for (hosts, code) in [
            (&[][..], "bad_host"),
            (&["a", "b"][..], "bad_host"),
            (&["a b/c"][..], "bad_host"),
            (&[""][..], "bad_host"),
            (&["user@host"][..], "bad_host"),
        ] {
            let err = check(&request(Method::GET, "/0", hosts)).unwrap_err();
            assert_eq!(err.code(), code, "{hosts:?}");
        }
    }

    /// The shortcut answers exactly as the full parse does, over every text of up to four
    /// characters drawn from host characters and the ones that make a host invalid or unusual.
    #[test]
    fn plain_hosts_agree_with_the_full_parse() {
        let alphabet: &[u8] = b"a0.-_~:@[]%/?# \x7f";
        let full = |text: &[u8]| {
            std::str::from_utf8(text).is_ok_and(|text| {
                !text.is_empty() && !text.contains('@') && text.parse::<Authority>().is_ok()
            })
        };
        let mut layer: Vec<Vec<u8>> = vec![Vec::new()];
        let mut texts = layer.clone();
        for _ in 0..4 {
            layer = layer
                .iter()
                .flat_map(|t| {
                    alphabet.iter().map(move |&b| {
                        let mut t = t.clone();
                        t.push(b);
                        t
                    })
                })
                .collect();
            texts.extend(layer.iter().cloned());
        }
        for text in [
            &b"127.0.0.1:8000"[..],
            b"example.com",
            b"localhost:",
            b":80",
            b"a:b:c",
        ] {
            texts.push(text.to_vec());
        }
        for text in &texts {
            if is_plain_host(text) {
                assert!(full(text), "{:?}", String::from_utf8_lossy(text));
            }
            let value = HeaderValue::from_bytes(text);
            if let Ok(value) = value {
                assert_eq!(is_valid_host(&value), full(text), "{:?}", value);
            }
        }
    }

    #[test]
    fn asterisk_is_for_options_alone() {
        assert!(check(&request(Method::OPTIONS, "*", &["a"])).is_ok());
        let err = check(&request(Method::GET, "*", &["a"])).unwrap_err();
        assert_eq!(err.code(), "bad_request_target");
    }
}
