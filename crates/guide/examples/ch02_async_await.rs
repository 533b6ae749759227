//! Chapter 2: async/await and futures.
//!
//! The article's `get_stuff_async`, awaited from `#[tokio::main]`, and a future that is never
//! awaited: its side effect never happens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

async fn some_long_operation() -> HashMap<&'static str, &'static str> {
    HashMap::from([("key", "The Emperor's Wayfinder is in the Imperial Vault")])
}

async fn get_stuff_async() -> &'static str {
    let results = some_long_operation().await;
    results["key"]
}

static TOAST_POPPED: AtomicBool = AtomicBool::new(false);

async fn pop_toast() {
    TOAST_POPPED.store(true, Ordering::SeqCst);
}

#[tokio::main]
async fn main() {
    let results = get_stuff_async().await;
    println!("{results}");

    // Calling an async fn runs none of its body: it only builds a future. Binding it to a name
    // silences the "unused future" warning; dropping it unpolled throws the work away.
    let toast = pop_toast();
    drop(toast);
    println!(
        "toast popped without .await: {}",
        TOAST_POPPED.load(Ordering::SeqCst)
    );

    pop_toast().await;
    println!(
        "toast popped with .await: {}",
        TOAST_POPPED.load(Ordering::SeqCst)
    );
}
