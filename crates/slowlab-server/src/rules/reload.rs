//! `--watch`: noticing that the rules file changed, and waiting until it is whole.
//!
//! An editor saving a file often truncates it and then writes it, and a large file is written in
//! several steps. Reloading on the first change would load half a file, or an empty one, and drop
//! every rule. So a change is acted on only once the file's size and modification time have stayed
//! the same for the settle time, and an empty file only if it is still empty after a longer wait.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often to look at the file, and how long a change must stay unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settle {
    /// How often the file's size and modification time are read.
    pub poll: Duration,
    /// How long they must stay the same before the change is acted on.
    pub settle: Duration,
    /// How long an empty file must stay empty before it is loaded (as no rules).
    pub empty: Duration,
}

impl Default for Settle {
    fn default() -> Settle {
        Settle {
            poll: Duration::from_millis(250),
            settle: Duration::from_millis(500),
            empty: Duration::from_secs(2),
        }
    }
}

/// What the file looked like: its modification time and size, or nothing when it is missing.
type Stamp = Option<(Option<SystemTime>, u64)>;

/// Reads the file's stamp on a blocking thread (a file system may be slow to answer).
async fn stamp(path: &Path) -> Stamp {
    let path = path.to_path_buf();
    let metadata = tokio::task::spawn_blocking(move || std::fs::metadata(path))
        .await
        .ok()?
        .ok()?;
    Some((metadata.modified().ok(), metadata.len()))
}

/// Follows one rules file for changes.
#[derive(Debug)]
pub struct FileWatch {
    path: PathBuf,
    settle: Settle,
    seen: Stamp,
}

impl FileWatch {
    /// Starts following `path` as it is now.
    pub async fn new(path: &Path, settle: Settle) -> FileWatch {
        FileWatch {
            path: path.to_path_buf(),
            settle,
            seen: stamp(path).await,
        }
    }

    /// Takes the file as it is now as seen (after a reload for another reason, e.g. SIGHUP).
    pub async fn mark_seen(&mut self) {
        self.seen = stamp(&self.path).await;
    }

    /// Resolves once the file changed and settled; `say` is told what is being waited for. Safe
    /// to cancel: a change not yet acted on is found again by the next call.
    pub async fn changed(&mut self, say: &(dyn Fn(String) + Sync)) {
        loop {
            tokio::time::sleep(self.settle.poll).await;
            let mut now = stamp(&self.path).await;
            if now == self.seen {
                continue;
            }
            // Wait until the writes stop: the same size and time over a whole settle time.
            loop {
                tokio::time::sleep(self.settle.settle).await;
                let again = stamp(&self.path).await;
                if again == now {
                    break;
                }
                now = again;
            }
            if matches!(now, Some((_, 0))) {
                say(format!(
                    "the rules file is empty; waiting {} s to see whether it stays so (an editor may be saving it)",
                    self.settle.empty.as_secs_f64()
                ));
                tokio::time::sleep(self.settle.empty).await;
                if stamp(&self.path).await != now {
                    say("the rules file was written again; waiting for it to settle".to_owned());
                    continue;
                }
                say("the rules file stayed empty".to_owned());
            }
            self.seen = now;
            return;
        }
    }
}
