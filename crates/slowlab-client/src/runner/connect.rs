//! Opening a connection for the async runners: each resolved address in turn, then the TLS
//! handshake for `https://`, all within the connect timeout.

use std::net::SocketAddr;

use tokio::net::TcpStream;

use crate::outcome::{ErrorKind, FetchError};
use crate::runner::Shared;
use crate::runner::tls::Stream;

/// Tries each resolved address in turn, then makes the TLS handshake for `https://`, all within
/// the connect timeout.
pub(super) async fn connect(addrs: &[SocketAddr], shared: &Shared) -> Result<Stream, FetchError> {
    let limit = shared.options.connect_timeout;
    let attempt = async {
        let mut last_error = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no address to connect to")))
    };
    let attempt = async {
        let stream = attempt
            .await
            .map_err(|err| FetchError::from_io(&err, &shared.base_url))?;
        let _ = stream.set_nodelay(true);
        match &shared.tls {
            None => Ok(Stream::Plain(stream)),
            Some(tls) => tls
                .connector
                .connect(tls.server_name.clone(), stream)
                .await
                .map(|stream| Stream::Tls(Box::new(stream)))
                .map_err(|err| tls_error(&err, &shared.base_url)),
        }
    };
    // tokio saturates a deadline past the end of time, so any limit is safe here.
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::new(
            ErrorKind::ConnectTimeout,
            format!("no connection to {} within {limit:?}", shared.base_url),
        )),
    }
}

/// A failed TLS handshake: a certificate or protocol problem, or the connection failing under it.
fn tls_error(err: &std::io::Error, base_url: &str) -> FetchError {
    if err.kind() == std::io::ErrorKind::InvalidData {
        FetchError::new(
            ErrorKind::Other,
            format!(
                "TLS handshake with {base_url} failed: {err} (--insecure skips certificate checks)"
            ),
        )
    } else {
        FetchError::from_io(err, base_url)
    }
}
