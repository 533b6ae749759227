//! A request as it waits behind a `before` rule: what forwarding it needs, in less memory.
//!
//! h2 and hyper build a request's `HeaderMap` one field at a time, and the map's first field
//! makes room for six (eight slots of index, six 104-byte entries: 656 bytes on the heap). A
//! request from a client that sends one or two fields keeps almost all of that room for the
//! whole of its wait, which over h2 was the largest part of a waiting stream's memory that is
//! the proxy's own (issue 22). While it waits it keeps its fields as an exact-size list
//! instead, 72 bytes a field, and gets a map back when the wait is over.

use axum::body::Body;
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

/// A request held through a wait: its head, its fields in a list of their own size, its body.
pub(crate) struct Held {
    method: Method,
    uri: Uri,
    version: Version,
    extensions: Extensions,
    /// The fields in the map's order (names in the order they first came, each name's values
    /// in theirs), so that the map rebuilt from them is the one taken apart.
    fields: Box<[(HeaderName, HeaderValue)]>,
    body: Body,
}

impl Held {
    /// `request`, its map's room given back.
    pub(crate) fn new(request: Request<Body>) -> Held {
        let (parts, body) = request.into_parts();
        let mut fields = Vec::with_capacity(parts.headers.len());
        let mut name = None;
        for (next, value) in parts.headers {
            // The map names a field once, before the first of its values.
            if let Some(next) = next {
                name = Some(next);
            }
            if let Some(name) = &name {
                fields.push((name.clone(), value));
            }
        }
        Held {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            extensions: parts.extensions,
            fields: fields.into_boxed_slice(),
            body,
        }
    }

    /// The request again, its map rebuilt with the room its fields need.
    pub(crate) fn into_request(self) -> Request<Body> {
        let mut headers = HeaderMap::with_capacity(self.fields.len());
        for (name, value) in self.fields {
            headers.append(name, value);
        }
        let mut request = Request::new(self.body);
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.version_mut() = self.version;
        *request.extensions_mut() = self.extensions;
        *request.headers_mut() = headers;
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    /// Held and given back, a request is the same request: its head, its extensions, and its
    /// fields in the same order, repeated names and all.
    #[test]
    fn a_held_request_comes_back_whole() {
        let mut request = Request::new(Body::empty());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = "http://example.com/a?b=c".parse().unwrap();
        *request.version_mut() = Version::HTTP_2;
        request.extensions_mut().insert(7_u32);
        let headers = request.headers_mut();
        headers.append(header::ACCEPT, HeaderValue::from_static("text/plain"));
        headers.append("x-one", HeaderValue::from_static("1"));
        headers.append(header::ACCEPT, HeaderValue::from_static("text/html"));
        headers.append(header::VIA, HeaderValue::from_static("1.1 a"));
        let mut sensitive = HeaderValue::from_static("secret");
        sensitive.set_sensitive(true);
        headers.append(header::AUTHORIZATION, sensitive);
        let before: Vec<_> = headers
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();

        let held = Held::new(request);
        assert_eq!(held.fields.len(), 5);
        let back = held.into_request();
        assert_eq!(back.method(), Method::POST);
        assert_eq!(back.uri(), "http://example.com/a?b=c");
        assert_eq!(back.version(), Version::HTTP_2);
        assert_eq!(back.extensions().get::<u32>(), Some(&7));
        let after: Vec<_> = back
            .headers()
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        assert_eq!(after, before);
        assert!(back.headers()[header::AUTHORIZATION].is_sensitive());
    }

    /// A request with no fields holds no list at all.
    #[test]
    fn no_fields_no_list() {
        let held = Held::new(Request::new(Body::empty()));
        assert!(held.fields.is_empty());
        assert!(held.into_request().headers().is_empty());
    }
}
