//! `--upstream URL`: where requests go, checked at start so that a typo is a usage error, not a
//! stream of 502s.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{HeaderValue, Uri};

use crate::own_address::leads_back;

/// The upstream: scheme, host and port, and a path prefix (usually empty).
#[derive(Debug, Clone)]
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// The URL's path without its trailing `/`: `""` for `http://host:8080/`.
    base: String,
}

/// Why `--upstream` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--upstream {url:?}: {detail}")]
pub struct UpstreamError {
    /// The URL as given.
    pub url: String,
    /// What is wrong and what would be right.
    pub detail: String,
}

impl Upstream {
    /// Parses `http://HOST[:PORT][/PREFIX]` or `https://...`.
    pub fn parse(url: &str) -> Result<Upstream, UpstreamError> {
        let error = |detail: &str| UpstreamError {
            url: url.to_owned(),
            detail: detail.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| {
            error("not a URL; give scheme, host and port, e.g. http://127.0.0.1:8080")
        })?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            Some(_) => {
                return Err(error(
                    "the scheme must be http or https, e.g. http://127.0.0.1:8080",
                ));
            }
            None => {
                return Err(error("no scheme; write it out, e.g. http://127.0.0.1:8080"));
            }
        };
        let Some(authority) = uri.authority().cloned() else {
            return Err(error("no host; e.g. http://127.0.0.1:8080"));
        };
        if authority.host().is_empty() {
            return Err(error("no host; e.g. http://127.0.0.1:8080"));
        }
        if authority.as_str().contains('@') {
            return Err(error(
                "user information in the URL is not forwarded; remove `user@`",
            ));
        }
        if uri.query().is_some() {
            return Err(error("a query has no place in the upstream URL; remove it"));
        }
        let base = uri.path().trim_end_matches('/').to_owned();
        Ok(Upstream {
            scheme,
            authority,
            base,
        })
    }

    /// The port, given or the scheme's.
    pub fn port(&self) -> u16 {
        let default = if self.is_https() { 443 } else { 80 };
        self.authority.port_u16().unwrap_or(default)
    }

    /// Whether the upstream is spoken to over TLS.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// `host:port`, parsed.
    pub fn authority_parsed(&self) -> &Authority {
        &self.authority
    }

    /// `host:port`, as written.
    pub fn authority(&self) -> &str {
        self.authority.as_str()
    }

    /// The addresses the host resolves to now (empty if it does not resolve).
    pub fn resolve(&self) -> Vec<SocketAddr> {
        let host = self
            .authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        (host, self.port())
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default()
    }

    /// Whether the upstream is `listen` itself: a proxy forwarding to itself would loop until it
    /// ran out of connections (the same test as TCP mode's).
    pub fn is_same_as(&self, listen: SocketAddr) -> bool {
        self.resolve()
            .into_iter()
            .any(|addr| leads_back(listen, addr))
    }

    /// The upstream's scheme and authority as a URI (`http://host:port/`), what a connector
    /// dials.
    pub fn origin(&self) -> Uri {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query("/")
            .build()
            .expect("a scheme and an authority parsed from a URL make a URI")
    }

    /// `Host` naming the upstream, as an HTTP client writes it: the host, and the port unless
    /// it is the scheme's.
    pub fn host_header(&self) -> Option<HeaderValue> {
        let host = self.authority.host();
        let default = if self.is_https() { 443 } else { 80 };
        match self.authority.port_u16() {
            Some(port) if port != default => HeaderValue::from_str(&format!("{host}:{port}")).ok(),
            _ => HeaderValue::from_str(host).ok(),
        }
    }

    /// The upstream URI for a request's path and query.
    pub fn uri_for(&self, path_and_query: Option<&PathAndQuery>) -> Result<Uri, axum::http::Error> {
        self.uri_at(&self.authority, path_and_query)
    }

    /// [`Upstream::uri_for`] with `authority` in place of the upstream's (the pooled client's
    /// key: see the connector's module).
    pub fn uri_at(
        &self,
        authority: &Authority,
        path_and_query: Option<&PathAndQuery>,
    ) -> Result<Uri, axum::http::Error> {
        let path_and_query = match path_and_query {
            // No prefix: the request's own, already parsed, is the upstream's.
            Some(pq) if self.base.is_empty() => pq.clone(),
            _ => {
                let rest = path_and_query.map_or("/", PathAndQuery::as_str);
                PathAndQuery::try_from(format!("{}{rest}", self.base))?
            }
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_scheme_or_host_is_refused_with_an_example() {
        for bad in [
            "127.0.0.1:8080",
            "localhost",
            "http://",
            "ftp://host:21",
            "http://:80/",
        ] {
            let err = Upstream::parse(bad).unwrap_err();
            assert!(err.detail.contains("e.g. http://"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_https_upstream_defaults_to_port_443() {
        let upstream = Upstream::parse("https://api.example/v1").unwrap();
        assert!(upstream.is_https());
        assert_eq!(upstream.port(), 443);
        assert_eq!(upstream.to_string(), "https://api.example/v1");
        assert!(!Upstream::parse("http://api.example").unwrap().is_https());
    }

    #[test]
    fn the_default_host_names_the_port_only_when_it_is_not_the_schemes() {
        let host = |url: &str| Upstream::parse(url).unwrap().host_header().unwrap();
        assert_eq!(host("http://127.0.0.1:8080/api"), "127.0.0.1:8080");
        assert_eq!(host("http://api.example:80"), "api.example");
        assert_eq!(host("https://api.example"), "api.example");
        assert_eq!(host("https://api.example:80"), "api.example:80");
        assert_eq!(host("http://[::1]:9000"), "[::1]:9000");
    }

    #[test]
    fn a_uri_may_name_another_authority_with_the_upstreams_scheme_and_prefix() {
        let upstream = Upstream::parse("https://api.example:8443/v1").unwrap();
        let pq = PathAndQuery::from_static("/orders");
        let key = Authority::from_static("u");
        assert_eq!(
            upstream.uri_at(&key, Some(&pq)).unwrap().to_string(),
            "https://u/v1/orders"
        );
        assert_eq!(upstream.origin().to_string(), "https://api.example:8443/");
    }

    #[test]
    fn the_path_prefix_is_kept_before_every_request_path() {
        let upstream = Upstream::parse("http://127.0.0.1:8080/api/").unwrap();
        let pq = PathAndQuery::from_static("/orders?id=1");
        assert_eq!(
            upstream.uri_for(Some(&pq)).unwrap().to_string(),
            "http://127.0.0.1:8080/api/orders?id=1"
        );
        assert_eq!(upstream.to_string(), "http://127.0.0.1:8080/api");
    }
}
