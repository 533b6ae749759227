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
    let Ok(text) = value.to_str() else {
        return false;
    };
    !text.is_empty() && !text.contains('@') && text.parse::<Authority>().is_ok()
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

    #[test]
    fn asterisk_is_for_options_alone() {
        assert!(check(&request(Method::OPTIONS, "*", &["a"])).is_ok());
        let err = check(&request(Method::GET, "*", &["a"])).unwrap_err();
        assert_eq!(err.code(), "bad_request_target");
    }
}
