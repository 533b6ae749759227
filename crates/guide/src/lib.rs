//! What the guide's examples share: the scale of their delays and a slow server to wait on.
//!
//! Each chapter of `docs/guide/` is one program in `examples/`; this library keeps the two chores
//! they all have out of the code the chapters show.
//!
//! Chapter 2's claim that the compiler catches a future that is never awaited is checked here, by
//! two doc tests that differ in one `.await`. Without it, the crate that denies `unused_must_use`
//! does not compile:
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//!
//! async fn get_stuff_async() -> &'static str {
//!     "The Emperor's Wayfinder is in the Imperial Vault"
//! }
//!
//! async fn caller() {
//!     get_stuff_async(); // error: unused implementer of `Future` that must be used
//! }
//!
//! fn main() {
//!     let _ = caller();
//! }
//! ```
//!
//! With it, the same code compiles, so the failure above is the lint and nothing else:
//!
//! ```
//! #![deny(unused_must_use)]
//!
//! async fn get_stuff_async() -> &'static str {
//!     "The Emperor's Wayfinder is in the Imperial Vault"
//! }
//!
//! async fn caller() {
//!     get_stuff_async().await;
//! }
//!
//! fn main() {
//!     let _ = caller();
//! }
//! ```

pub mod hits_next;

use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

/// Environment variable that multiplies every delay of an example (the tests set it to 0.02).
pub const SCALE_VAR: &str = "SLOWLAB_GUIDE_SCALE";

/// Environment variable naming a running slow server; without it an example starts its own.
pub const BASE_URL_VAR: &str = "SLOWLAB_BASE_URL";

/// How much to multiply the examples' delays by: `SLOWLAB_GUIDE_SCALE`, else 1.
///
/// When the variable is set but is not a positive number, the example stops with a usage error
/// (exit status 2), so that a typo does not silently run it at full length.
pub fn scale() -> f64 {
    match std::env::var(SCALE_VAR) {
        Err(_) => 1.0,
        Ok(text) => match text.parse::<f64>() {
            Ok(scale) if scale.is_finite() && scale > 0.0 => scale,
            _ => {
                eprintln!("error: {SCALE_VAR}={text:?} is not a positive number; try 0.1");
                std::process::exit(2);
            }
        },
    }
}

/// `seconds` times [`scale`], as a duration.
pub fn scaled(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds * scale())
}

/// A slow server for the examples to wait on: the one `SLOWLAB_BASE_URL` names, or slowlab's own
/// started on a free loopback port. An embedded server stops when this is dropped.
#[derive(Debug)]
pub struct SlowServer {
    base_url: String,
    // Dropping the sender stops the embedded server's thread.
    _stop: Option<oneshot::Sender<()>>,
}

impl SlowServer {
    /// Uses `SLOWLAB_BASE_URL` if set, else starts `slowlab_server::spawn` on a thread of its own
    /// (with its own runtime, so blocking and async examples can both use it).
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound: an example cannot do without its server.
    pub fn start() -> SlowServer {
        if let Ok(base_url) = std::env::var(BASE_URL_VAR) {
            return SlowServer {
                base_url: base_url.trim_end_matches('/').to_owned(),
                _stop: None,
            };
        }
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime for the embedded server");
            runtime.block_on(async move {
                let server = slowlab_server::spawn(slowlab_server::Config::default()).await;
                match server {
                    Ok(server) => {
                        let _ = url_tx.send(Ok(server.base_url()));
                        let _ = stopped.await;
                        server.shutdown().await;
                    }
                    Err(err) => {
                        let _ = url_tx.send(Err(err));
                    }
                }
            });
        });
        let base_url = url_rx
            .recv()
            .expect("the embedded server's thread answers")
            .expect("the embedded slow server binds a loopback port");
        SlowServer {
            base_url,
            _stop: Some(stop),
        }
    }

    /// `http://HOST:PORT`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The URL that waits `seconds` times [`scale`], to the millisecond: `delay_url(7.0)` is
    /// `http://HOST:PORT/7` at scale 1 and `.../0.14` at scale 0.02.
    pub fn delay_url(&self, seconds: f64) -> String {
        let millis = (seconds * scale() * 1000.0).round();
        self.url(&format!("/{}", millis / 1000.0))
    }

    /// The URL of `path` on this server, e.g. `server.url("/0.5")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}
