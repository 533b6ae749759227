//! What a proxy changes in the headers on the way through: hop-by-hop headers out (RFC 9110
//! §7.6.1), `Via`, `X-Forwarded-For` and `Forwarded` in, and the checks that stop a request
//! that would loop or be read differently by the upstream.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Version, header};
use bytes::Bytes;

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1). Names, not text:
/// removing by text would parse each one again for every request and response.
static HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes the hop-by-hop headers: the fixed ones, and every one the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them (a `Connection` naming others is one of them): a look at
    // each name costs less than six lookups that find nothing.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        // `Connection: host` must not leave the upstream guessing which site is meant.
        .filter(|name| name != header::HOST)
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The protocol version as `Via` writes it.
fn via_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// Appends `value` to the list header `name`, as one more element.
fn append_to_list(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    // The usual case, a header not there yet, copies `value` once and looks `name` up once.
    if let header::Entry::Vacant(vacant) = headers.entry(&name) {
        if let Ok(value) = HeaderValue::from_str(value) {
            vacant.insert(value);
        }
        return;
    }
    let joined = match headers.get(&name).and_then(|v| v.to_str().ok()) {
        Some(existing) if headers.get_all(&name).iter().count() == 1 => {
            format!("{existing}, {value}")
        }
        _ => value.to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&joined) {
        if headers.get_all(&name).iter().count() > 1 {
            headers.append(name, value);
        } else {
            headers.insert(name, value);
        }
    }
}

/// Whether the request's `TE` lists `trailers` (RFC 9110 §10.1.4).
pub fn accepts_trailers(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            coding
                .split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case("trailers"))
        })
}

/// This proxy's `Via` element for each protocol version, made once: most requests and
/// responses carry no `Via` yet and take it as it is.
#[derive(Debug, Clone)]
pub struct ViaHops {
    /// `(version, text, value)` for each version `Via` names.
    hops: Vec<(Version, String, Option<HeaderValue>)>,
}

impl ViaHops {
    /// The elements naming `pseudonym`.
    pub fn new(pseudonym: &str) -> ViaHops {
        let versions = [
            Version::HTTP_11,
            Version::HTTP_10,
            Version::HTTP_2,
            Version::HTTP_09,
            Version::HTTP_3,
        ];
        let hops = versions
            .into_iter()
            .map(|version| {
                let text = format!("{} {pseudonym}", via_version(version));
                let value = HeaderValue::from_str(&text).ok();
                (version, text, value)
            })
            .collect();
        ViaHops { hops }
    }

    /// Adds this proxy to `Via` (`1.1 slowlab-3f2a9c01`), for requests and responses alike.
    pub fn add(&self, headers: &mut HeaderMap, version: Version) {
        // A version `Via` has no name for is written as 1.1.
        let (_, text, value) = self
            .hops
            .iter()
            .find(|(v, ..)| *v == version)
            .unwrap_or(&self.hops[0]);
        match (headers.entry(header::VIA), value) {
            (header::Entry::Vacant(vacant), Some(value)) => {
                vacant.insert(value.clone());
            }
            _ => append_to_list(headers, header::VIA, text),
        }
    }
}

/// `X-Forwarded-For`, a name made once rather than checked against the standard names per
/// request.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Adds the client to `X-Forwarded-For` and `Forwarded` (RFC 7239), with the scheme it spoke
/// (`proto`, `http` or `https`) and the host it asked for.
pub fn add_forwarded(headers: &mut HeaderMap, peer: SocketAddr, proto: &str, host: Option<&str>) {
    let ip = peer.ip();
    let ip_text = ip_text(ip);
    let host = host.filter(|h| h.bytes().all(|b| b.is_ascii_graphic() && b != b'"'));
    let forwarded = forwarded_text(&ip_text, ip.is_ipv6(), proto, host);
    append_owned(headers, X_FORWARDED_FOR.clone(), ip_text);
    append_owned(headers, header::FORWARDED, forwarded);
}

/// `ip` as text, in a string exactly as long as its capacity for an IPv4 address (see
/// [`append_owned`]).
fn ip_text(ip: IpAddr) -> String {
    let len = match ip {
        IpAddr::V4(v4) => {
            let digits = |o: u8| 1 + usize::from(o >= 10) + usize::from(o >= 100);
            3 + v4.octets().into_iter().map(digits).sum::<usize>()
        }
        IpAddr::V6(_) => 39,
    };
    let mut text = String::with_capacity(len);
    push_ip(&mut text, ip);
    text
}

/// `Forwarded`'s element for the client at `ip` (as text), in a string exactly as long as its
/// capacity (see [`append_owned`]).
fn forwarded_text(ip: &str, ipv6: bool, proto: &str, host: Option<&str>) -> String {
    let quoted_ip = if ipv6 { "\"[".len() + "]\"".len() } else { 0 };
    let host_len = host.map_or(0, |h| ";host=\"".len() + h.len() + 1);
    let len = "for=".len() + quoted_ip + ip.len() + ";proto=".len() + proto.len() + host_len;
    let mut text = String::with_capacity(len);
    text.push_str("for=");
    if ipv6 {
        text.push_str("\"[");
        text.push_str(ip);
        text.push_str("]\"");
    } else {
        text.push_str(ip);
    }
    text.push_str(";proto=");
    text.push_str(proto);
    if let Some(host) = host {
        text.push_str(";host=\"");
        text.push_str(host);
        text.push('"');
    }
    text
}

/// Appends `text` to the list header `name`, taking the string as the value when the header is
/// not there yet: `Bytes` takes a string whose length is its capacity without allocating or
/// copying, one allocation per forwarding header fewer than a copy of a scratch buffer.
fn append_owned(headers: &mut HeaderMap, name: HeaderName, text: String) {
    if let header::Entry::Vacant(vacant) = headers.entry(&name) {
        if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(text)) {
            vacant.insert(value);
        }
        return;
    }
    append_to_list(headers, name, &text);
}

/// Writes `ip` as its `Display` does; an IPv4 address without the formatter, which costs more
/// than the rest of the forwarding headers together.
fn push_ip(out: &mut String, ip: IpAddr) {
    use std::fmt::Write;
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        // Writing to a String cannot fail.
        IpAddr::V6(v6) => drop(write!(out, "{v6}")),
    }
}

/// A request this proxy will not forward, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// It has been through this proxy before: forwarding it again would loop.
    Loop,
    /// Both `Content-Length` and `Transfer-Encoding`: the shape of request smuggling.
    Smuggling,
    /// A `Transfer-Encoding` other than a lone `chunked` (the value, as sent): the proxy decodes
    /// only `chunked`, so the upstream would get the body without the other codings.
    UnsupportedTransferCoding(String),
    /// A `Max-Forwards` that is not a number.
    BadMaxForwards(String),
    /// `TRACE`, which would echo the client's credentials back through the proxy.
    Trace,
}

impl Refused {
    /// The status to answer.
    pub fn status(&self) -> u16 {
        match self {
            Refused::Loop => 508,
            Refused::Smuggling | Refused::BadMaxForwards(_) => 400,
            // RFC 9112 §6.1: a transfer coding the server does not understand.
            Refused::UnsupportedTransferCoding(_) => 501,
            Refused::Trace => 405,
        }
    }

    /// The `error` word of the JSON answer.
    pub fn code(&self) -> &'static str {
        match self {
            Refused::Loop => "proxy_loop",
            Refused::Smuggling => "ambiguous_length",
            Refused::UnsupportedTransferCoding(_) => "unsupported_transfer_coding",
            Refused::BadMaxForwards(_) => "bad_max_forwards",
            Refused::Trace => "method_not_forwarded",
        }
    }

    /// What was wrong and how to fix it.
    pub fn detail(&self, pseudonym: &str) -> String {
        match self {
            Refused::Loop => format!(
                "this request already passed through this proxy (Via names {pseudonym}); point --upstream at the real service, not back at the proxy"
            ),
            Refused::Smuggling => "the request has both Content-Length and Transfer-Encoding, which servers may read differently; send one of them".to_owned(),
            Refused::UnsupportedTransferCoding(value) => format!(
                "Transfer-Encoding {value:?} is not forwarded: the only transfer coding accepted is chunked, alone; send the body with Transfer-Encoding: chunked or a Content-Length (a compressed body can say so with Content-Encoding)"
            ),
            Refused::BadMaxForwards(value) => format!(
                "Max-Forwards {value:?} is not a whole number; send e.g. Max-Forwards: 5"
            ),
            Refused::Trace => "TRACE is not forwarded (it would echo credentials back); use GET or OPTIONS".to_owned(),
        }
    }
}

/// What to do with a request's `Max-Forwards` (RFC 9110 §7.6.2, for `OPTIONS` only here).
#[derive(Debug, PartialEq, Eq)]
pub enum Forwards {
    /// Forward it.
    Yes,
    /// `Max-Forwards: 0`: this proxy is the last recipient and answers itself.
    AnswerHere,
}

/// The request's `Transfer-Encoding`, joined, if it is anything but a lone `chunked`. hyper
/// decodes the final `chunked` and passes the body on as it is under the other codings, and the
/// header goes with the hop-by-hop ones: forwarded, the body would be read without them.
fn other_transfer_codings(headers: &HeaderMap) -> Option<String> {
    let values = headers.get_all(header::TRANSFER_ENCODING);
    let mut codings = values
        .iter()
        .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|coding| !coding.is_empty());
    match (codings.next(), codings.next()) {
        (None, _) => None,
        (Some(coding), None) if coding.eq_ignore_ascii_case(b"chunked") => None,
        _ => {
            let joined: Vec<String> = values
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .collect();
            Some(joined.join(", "))
        }
    }
}

/// Checks a request before it is forwarded; on the way, counts down `Max-Forwards`.
pub fn check(
    method: &Method,
    headers: &mut HeaderMap,
    pseudonym: &str,
) -> Result<Forwards, Refused> {
    if method == Method::TRACE {
        return Err(Refused::Trace);
    }
    if let Some(codings) = other_transfer_codings(headers) {
        return Err(Refused::UnsupportedTransferCoding(codings));
    }
    // Over HTTP/1.1 hyper reads such a request by Transfer-Encoding alone and removes the
    // Content-Length (RFC 9112 §6.1), and HTTP/2 has no Transfer-Encoding: a backstop.
    if headers.contains_key(header::CONTENT_LENGTH)
        && headers.contains_key(header::TRANSFER_ENCODING)
    {
        return Err(Refused::Smuggling);
    }
    let looped = headers.get_all(header::VIA).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|hop| hop.split_whitespace().nth(1) == Some(pseudonym))
        })
    });
    if looped {
        return Err(Refused::Loop);
    }
    if method == Method::OPTIONS
        && let Some(value) = headers.get(header::MAX_FORWARDS)
    {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let left: u64 = text
            .trim()
            .parse()
            .map_err(|_| Refused::BadMaxForwards(text.clone()))?;
        if left == 0 {
            return Ok(Forwards::AnswerHere);
        }
        headers.insert(header::MAX_FORWARDS, HeaderValue::from(left - 1));
    }
    Ok(Forwards::Yes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_named_in_connection_go_with_the_fixed_ones() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, X-Secret, host"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("upgrade", HeaderValue::from_static("h2c"));
        headers.insert("host", HeaderValue::from_static("example.test"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["host", "x-kept"]);
    }

    #[test]
    fn te_trailers_is_found_among_other_codings_and_parameters() {
        let te = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::TE, HeaderValue::from_static(value));
            accepts_trailers(&headers)
        };
        assert!(te("trailers"));
        assert!(te("gzip;q=0.5, Trailers"));
        assert!(!te("gzip, deflate"));
        assert!(!te("trailersx"));
        assert!(!accepts_trailers(&HeaderMap::new()));
    }

    #[test]
    fn via_and_forwarded_are_appended_to_what_came_before() {
        let mut headers = HeaderMap::new();
        headers.insert("via", HeaderValue::from_static("1.0 cache"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        ViaHops::new("slowlab-1").add(&mut headers, Version::HTTP_11);
        add_forwarded(
            &mut headers,
            "[::1]:5000".parse().unwrap(),
            "https",
            Some("api.test"),
        );
        assert_eq!(headers["via"], "1.0 cache, 1.1 slowlab-1");
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, ::1");
        assert_eq!(
            headers["forwarded"],
            "for=\"[::1]\";proto=https;host=\"api.test\""
        );
    }

    #[test]
    fn via_names_the_version_and_joins_what_came_before() {
        let hops = ViaHops::new("slowlab-1");
        /// The version, the Via lines before, the Via lines after.
        type Case = (Version, &'static [&'static [u8]], &'static [&'static str]);
        let cases: [Case; 5] = [
            (Version::HTTP_11, &[], &["1.1 slowlab-1"]),
            (Version::HTTP_2, &[], &["2 slowlab-1"]),
            (
                Version::HTTP_10,
                &[b"1.0 cache"],
                &["1.0 cache, 1.0 slowlab-1"],
            ),
            // Several lines: one more line, not a rewrite of the others.
            (
                Version::HTTP_11,
                &[b"1.0 a", b"1.1 b"],
                &["1.0 a", "1.1 b", "1.1 slowlab-1"],
            ),
            // A line that is not text cannot be joined: this proxy's element replaces it.
            (Version::HTTP_11, &[b"\xff"], &["1.1 slowlab-1"]),
        ];
        for (version, before, after) in cases {
            let mut headers = HeaderMap::new();
            for value in before {
                headers.append(header::VIA, HeaderValue::from_bytes(value).unwrap());
            }
            hops.add(&mut headers, version);
            let got: Vec<_> = headers.get_all(header::VIA).iter().collect();
            assert_eq!(got, after, "{version:?} after {before:?}");
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let mut addresses: Vec<IpAddr> = (0..=255u8)
            .map(|b| IpAddr::from([b, 255 - b, b / 10, 9]))
            .collect();
        addresses.extend(
            ["::1", "::ffff:10.0.0.1", "2001:db8::8:800:200c:417a"]
                .map(|a| a.parse::<IpAddr>().unwrap()),
        );
        for ip in addresses {
            let mut text = String::new();
            push_ip(&mut text, ip);
            assert_eq!(text, ip.to_string());
        }
    }

    /// The forwarding headers' text is made exactly as long as its capacity, so that it becomes
    /// the header's value without another allocation (`append_owned`): a miscount would cost
    /// one allocation per request again, and show only in a profile.
    #[test]
    fn forwarding_texts_fill_their_capacity_exactly() {
        for ip in ["127.0.0.1", "10.20.255.9", "0.0.0.0", "192.168.100.10"] {
            let ip: IpAddr = ip.parse().unwrap();
            let text = ip_text(ip);
            assert_eq!(
                (text.as_str(), text.capacity()),
                (&*ip.to_string(), text.len())
            );
            for host in [None, Some("shop.test:8080")] {
                for proto in ["http", "https"] {
                    let forwarded = forwarded_text(&text, false, proto, host);
                    assert_eq!(forwarded.capacity(), forwarded.len(), "{forwarded}");
                }
            }
        }
        let forwarded = forwarded_text("::1", true, "http", Some("a"));
        assert_eq!(forwarded, "for=\"[::1]\";proto=http;host=\"a\"");
        assert_eq!(forwarded.capacity(), forwarded.len());
    }

    #[test]
    fn only_a_lone_chunked_transfer_coding_is_forwarded() {
        let check_te = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append("transfer-encoding", HeaderValue::from_static(value));
            }
            check(&Method::POST, &mut headers, "slowlab-1")
        };
        assert_eq!(check_te(&[]), Ok(Forwards::Yes));
        assert_eq!(check_te(&["chunked"]), Ok(Forwards::Yes));
        assert_eq!(check_te(&[" Chunked "]), Ok(Forwards::Yes));
        for (values, shown) in [
            (&["gzip, chunked"][..], "gzip, chunked"),
            (&["gzip", "chunked"][..], "gzip, chunked"),
            (&["chunked, chunked"][..], "chunked, chunked"),
            (&["identity"][..], "identity"),
        ] {
            let refused = check_te(values).unwrap_err();
            assert_eq!(
                refused,
                Refused::UnsupportedTransferCoding(shown.to_owned())
            );
            assert_eq!(refused.status(), 501);
            assert!(refused.detail("slowlab-1").contains("chunked"));
        }
    }

    #[test]
    fn a_request_that_came_through_before_is_a_loop() {
        let mut headers = HeaderMap::new();
        headers.insert("via", HeaderValue::from_static("1.1 other, 1.1 slowlab-1"));
        assert_eq!(
            check(&Method::GET, &mut headers, "slowlab-1"),
            Err(Refused::Loop)
        );
        assert_eq!(
            check(&Method::GET, &mut headers, "slowlab-2"),
            Ok(Forwards::Yes)
        );
    }

    #[test]
    fn max_forwards_counts_down_and_stops_at_zero() {
        let mut headers = HeaderMap::new();
        headers.insert("max-forwards", HeaderValue::from_static("2"));
        assert_eq!(
            check(&Method::OPTIONS, &mut headers, "p"),
            Ok(Forwards::Yes)
        );
        assert_eq!(headers["max-forwards"], "1");
        headers.insert("max-forwards", HeaderValue::from_static("0"));
        assert_eq!(
            check(&Method::OPTIONS, &mut headers, "p"),
            Ok(Forwards::AnswerHere)
        );
        headers.insert("max-forwards", HeaderValue::from_static("x"));
        assert!(matches!(
            check(&Method::OPTIONS, &mut headers, "p"),
            Err(Refused::BadMaxForwards(_))
        ));
    }
}
