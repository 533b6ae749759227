//! The pooled client's connectors: [`Dial`], which dials the upstream whatever the request's
//! URI names, and under the TLS layer [`PlainConnector`], hyper-util's [`HttpConnector`] minus
//! the connection details it attaches to every response.
//!
//! [`Dial`] lets HTTP/1 requests name the upstream by a one-letter placeholder
//! ([`POOL_KEY`]): hyper-util's pool keys its connections by the URI's scheme and authority and
//! hashes that key, byte by byte with SipHash, three or four times per request (checkout, the
//! connection's return, the waiters), 2,100 instructions per request for `127.0.0.1:PORT`
//! (issue 22). The pool is still hyper-util's; only its key is shorter.
//!
//! `HttpConnector` reports each connection's addresses ([`HttpInfo`]), and the client copies
//! them into the extensions of every response it returns: an extensions map and a boxed value
//! made, then dropped, for each request, which nothing in the proxy reads (the client's
//! response is not given the upstream's addresses). This connector connects the same way and
//! reports the connection with nothing extra: three allocations fewer per request (issue 22).
//!
//! [`HttpInfo`]: hyper_util::client::legacy::connect::HttpInfo

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The authority HTTP/1 requests give the pooled client in place of the upstream's (see the
/// module's documentation): never sent, as hyper-util writes HTTP/1 requests in origin form and
/// the proxy sets `Host` itself.
pub const POOL_KEY: &str = "u";

/// `inner`, always asked for `upstream` (`scheme://authority/`), whatever URI the pooled client
/// passes: the client derives that URI from its pool key, which may be [`POOL_KEY`].
#[derive(Clone, Debug)]
pub struct Dial<C> {
    /// The connector that dials (and speaks TLS for `https://`).
    pub inner: C,
    /// The upstream's scheme and authority.
    pub upstream: Uri,
}

impl<C: tower::Service<Uri>> tower::Service<Uri> for Dial<C> {
    type Response = C::Response;
    type Error = C::Error;
    type Future = C::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, _pool_key: Uri) -> Self::Future {
        self.inner.call(self.upstream.clone())
    }
}

/// [`HttpConnector`], whose connections report nothing beyond being plain TCP.
#[derive(Clone, Debug)]
pub struct PlainConnector(pub HttpConnector);

/// A connection made by [`PlainConnector`].
#[derive(Debug)]
pub struct PlainTcp(TokioIo<TcpStream>);

impl tower::Service<Uri> for PlainConnector {
    type Response = PlainTcp;
    type Error = <HttpConnector as tower::Service<Uri>>::Error;
    // Boxed: made once per new connection, not per request.
    type Future = Pin<Box<dyn Future<Output = Result<PlainTcp, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move { connecting.await.map(PlainTcp) })
    }
}

impl Connection for PlainTcp {
    fn connected(&self) -> Connected {
        // Not `self.0.connected()`, which carries the addresses as an extra.
        Connected::new()
    }
}

impl Read for PlainTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl Write for PlainTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
}
