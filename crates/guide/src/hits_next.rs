//! Chapter 5b's compiler errors, checked: each program the chapter shows failing to compile is
//! a `compile_fail` doc test here, next to its fix as a doc test that must compile, so that the
//! failure can only be the one the chapter explains. (Stable rustdoc does not check a
//! `compile_fail` test's error code, so the pairs are what pins each failure down.)
//!
//! `tokio::spawn` of an `async` block that borrows a local variable: the task may outlive the
//! variable (`spawn` asks for `'static`), error E0373.
//!
//! ```compile_fail
//! #[tokio::main]
//! async fn main() {
//!     let dish = String::from("eggs");
//!     let task = tokio::spawn(async {
//!         println!("cooking {dish}");
//!     });
//!     task.await.unwrap();
//! }
//! ```
//!
//! The fix: `async move` moves `dish` into the task.
//!
//! ```
//! #[tokio::main]
//! async fn main() {
//!     let dish = String::from("eggs");
//!     let task = tokio::spawn(async move {
//!         println!("cooking {dish}");
//!     });
//!     task.await.unwrap();
//! }
//! ```
//!
//! A std `MutexGuard` held across an `.await` in a spawned task: the future is not `Send`, and
//! `spawn` asks for `Send` because a multi-thread runtime may resume the task on another thread.
//!
//! ```compile_fail
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! #[tokio::main]
//! async fn main() {
//!     let cooked = Arc::new(Mutex::new(Vec::new()));
//!     let task = tokio::spawn(async move {
//!         let mut list = cooked.lock().unwrap();
//!         tokio::time::sleep(Duration::from_secs(1)).await;
//!         list.push("eggs");
//!     });
//!     task.await.unwrap();
//! }
//! ```
//!
//! The first fix: take the lock after the `.await`, for as long as the push, so that no guard
//! is alive while the task waits.
//!
//! ```no_run
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! #[tokio::main]
//! async fn main() {
//!     let cooked = Arc::new(Mutex::new(Vec::new()));
//!     let task = tokio::spawn(async move {
//!         tokio::time::sleep(Duration::from_secs(1)).await;
//!         cooked.lock().unwrap().push("eggs");
//!     });
//!     task.await.unwrap();
//! }
//! ```
//!
//! The second, when the lock must be held while waiting: tokio's `Mutex`, whose guard is `Send`
//! and whose `lock` is awaited rather than blocking the thread.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! #[tokio::main]
//! async fn main() {
//!     let cooked = Arc::new(tokio::sync::Mutex::new(Vec::new()));
//!     let task = tokio::spawn(async move {
//!         let mut list = cooked.lock().await;
//!         tokio::time::sleep(Duration::from_secs(1)).await;
//!         list.push("eggs");
//!     });
//!     task.await.unwrap();
//! }
//! ```
