//! The progress bar on stderr: done/total, in flight, errors, elapsed.
//!
//! Shown only when stderr is a terminal and the run lasts longer than a moment; `--quiet` hides it.
//! It reads outcomes from the collector's callback and the in-flight gauge from the run's
//! [`Control`], never from the workers.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use slowlab_client::{Control, Outcome};

/// A run shorter than this shows no bar at all.
const SHOW_AFTER: Duration = Duration::from_millis(300);

/// How often the bar's numbers are refreshed.
const REFRESH: Duration = Duration::from_millis(100);

/// The bar, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
    errors: Arc<AtomicU64>,
}

impl Progress {
    /// A bar for `total` requests, if `wanted` and stderr is a terminal; `color` picks the style.
    /// Must be called inside a tokio runtime: a task refreshes the bar.
    pub fn new(total: usize, wanted: bool, color: bool, control: &Control) -> Progress {
        let errors = Arc::new(AtomicU64::new(0));
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let template = if color {
                "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} {msg}"
            } else {
                "{elapsed_precise} [{bar:30}] {pos}/{len} {msg}"
            };
            let style = ProgressStyle::with_template(template)
                .expect("the template is valid")
                .progress_chars("=> ");
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::hidden())
                    .with_style(style);
            tokio::spawn(refresh(bar.clone(), control.clone(), Arc::clone(&errors)));
            bar
        });
        Progress { bar, errors }
    }

    /// Counts an outcome.
    pub fn outcome(&self, outcome: &Outcome) {
        if let Some(bar) = &self.bar {
            if !outcome.is_ok() {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
            bar.inc(1);
        }
    }

    /// Runs `print` with the bar out of the way, so lines on the same terminal stay whole.
    pub fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.suspend(print),
            _ => print(),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Shows the bar once the run has lasted a moment, and keeps its message current.
async fn refresh(bar: ProgressBar, control: Control, errors: Arc<AtomicU64>) {
    tokio::time::sleep(SHOW_AFTER).await;
    if bar.is_finished() {
        return;
    }
    bar.set_draw_target(ProgressDrawTarget::stderr());
    let mut every = tokio::time::interval(REFRESH);
    while !bar.is_finished() {
        every.tick().await;
        bar.set_message(format!(
            "in flight {}, errors {}",
            control.in_flight(),
            errors.load(Ordering::Relaxed)
        ));
    }
}
