//! The unbounded async runner: every request at once, each a tokio task with its own HTTP/1.1
//! connection, like `asyncio.gather` over aiohttp.

use std::sync::Arc;

use crate::runner::Shared;
use crate::runner::http1::one_shot;

/// Spawns one task per request and returns once all are spawned; in an open-loop run, each at
/// the moment it is due.
pub(super) async fn run(shared: Arc<Shared>) {
    let Some(addrs) = shared.resolve().await else {
        return;
    };
    while let Some(index) = shared.take_when_due().await {
        let shared = Arc::clone(&shared);
        let addrs = Arc::clone(&addrs);
        tokio::spawn(async move {
            let outcome = one_shot(&shared, &addrs, index).await;
            shared.report(outcome);
        });
    }
}
