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
    /// Starts following `path` as it is now. The file is looked at (one `stat`) before this
    /// returns, not in a task that may run later: a change made once the caller goes on, say
    /// right after the server said it listens, is then always seen as a change.
    pub fn new(path: &Path, settle: Settle) -> FileWatch {
        let seen = std::fs::metadata(path)
            .ok()
            .map(|metadata| (metadata.modified().ok(), metadata.len()));
        FileWatch {
            path: path.to_path_buf(),
            settle,
            seen,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The baseline is the file as it was when the watch was made, even if the first look at it
    /// for changes comes later: serve once took it in a task that, on a busy machine, ran after
    /// a test had already rewritten the file, and that write was never seen.
    #[tokio::test]
    async fn a_write_right_after_the_watch_is_made_counts_as_a_change() {
        let dir = std::env::temp_dir().join(format!("slowlab-filewatch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rules.toml");
        std::fs::write(&path, "one").unwrap();
        let settle = Settle {
            poll: Duration::from_millis(10),
            settle: Duration::from_millis(20),
            empty: Duration::from_millis(20),
        };
        let mut watch = FileWatch::new(&path, settle);
        // Same size, new modification time: only the stamp can tell.
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::write(&path, "two").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let noticed = tokio::time::timeout(Duration::from_secs(30), watch.changed(&|_| {})).await;
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(noticed.is_ok(), "the write was taken as the starting point");
    }
}
