//! A deliberately slow HTTP API.
//!
//! `GET /{seconds}` waits that many seconds on a timer (no thread is held), then answers
//! `200 application/json` with `{"time_elapsed": seconds}`: the contract of the slow server in
//! "An Introduction to Asynchronous Programming in Python 3", kept exactly, extended with decimal
//! seconds (`/0.25`) and precise JSON errors for bad input.
//!
//! Use it as a binary (`slowlab serve`) or inside your own tests:
//!
//! ```
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! use slowlab_server::{spawn, Config};
//!
//! let server = spawn(Config::default()).await?; // ephemeral port on 127.0.0.1
//! let slow_url = server.url("/0.5");            // point the client under test here
//! # let _ = slow_url;
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! A request's path through the server: the connection layer ([`limits`] on URI and header size)
//! → [`routes`] → [`options::plan`] (the path's [`delay`] and the query's shape, status, body and
//! fault) → [`model`] (timer, thread pool, or blocking) → [`respond`]-ing (body, drip, status, fault),
//! with [`metrics`] counted on the way. Every refusal is an [`ApiError`] answered as a JSON 4xx.

pub mod accept;
pub mod config;
mod custom;
pub mod delay;
mod drain;
mod echo;
mod error;
mod h2_close;
pub mod limits;
pub mod metrics;
pub mod mix;
pub mod model;
pub mod options;
mod pace;
mod request_log;
pub mod respond;
pub mod routes;
pub mod rules;
mod sequence;
mod server;
mod service;
mod stats;
mod target;
#[cfg(feature = "tls")]
pub mod tls;
mod watch;

pub use config::{Config, ConfigError, OverMax, Setting};
pub use delay::{Delay, DelayError};
pub use error::{ALLOWED_METHODS, ApiError};
pub use limits::raise_open_file_limit;
pub use mix::Mix;
pub use model::Model;
pub use options::{Fault, Options, Plan, Shape};
pub use pace::{Paced, paced};
pub use request_log::{LogFormat, RequestInfo, RequestLog};
pub use rules::{Drawn, LiveRules, Route, Rules, RulesError, When};
pub use server::{Handler, Server, ShutdownReport, bind, run, run_with, spawn};
pub use service::{App, AppFuture, InfallibleFuture};
pub use stats::{InFlight, Stats, StatsSnapshot};
#[cfg(feature = "tls")]
pub use tls::{Tls, TlsError};
pub use watch::{ArrivingBody, HeldBody};
