//! The progress bar on stderr: done/total, requests per second, ETA, in flight, errors, elapsed.
//!
//! Shown only when stderr is a terminal and the run lasts longer than a moment; `--quiet` hides it.
//! It reads outcomes from the collector's callback and the started count from the run's
//! [`Control`], never from the workers.
//!
//! Counting an outcome touches two atomics and nothing else: the bar is redrawn by one task, at
//! most [`REDRAWS_PER_SECOND`] times a second, whatever the rate of outcomes. Lines printed on the
//! terminal the bar shares go through [`BesideBar`], which moves the bar out of their way at the
//! same rate at most. To show more, add a key to the template in [`Progress::drawn_on`], written
//! from [`Counts`] or the [`Control`] as the bar is drawn.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use slowlab_client::{Control, Outcome};

/// A run shorter than this shows no bar at all.
const SHOW_AFTER: Duration = Duration::from_millis(300);

/// Most redraws of the bar a second: smooth to the eye, and a few kilobytes a second on the
/// terminal however fast requests end.
pub const REDRAWS_PER_SECOND: u8 = 15;

/// The time between two redraws.
fn redraw_every() -> Duration {
    Duration::from_secs(1) / u32::from(REDRAWS_PER_SECOND)
}

/// What the collector's callback counts, read by the redrawing task.
#[derive(Debug, Default)]
struct Counts {
    /// Outcomes received.
    done: AtomicU64,
    /// Outcomes that were failures.
    errors: AtomicU64,
}

/// The figures of one redraw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    total: u64,
    done: u64,
    errors: u64,
    in_flight: u64,
}

impl Snapshot {
    /// The figures now: `started` is how many requests the runners began, `done` and `errors`
    /// what the collector received. In flight is what began and has no outcome yet: it cannot go
    /// stale (both counts only grow), and `done + in_flight` never exceeds `total`, even when
    /// the collector writes outcomes for requests that never began (after a cancel).
    fn new(total: u64, started: u64, done: u64, errors: u64) -> Snapshot {
        let done = done.min(total);
        Snapshot {
            total,
            done,
            errors,
            in_flight: started.saturating_sub(done).min(total - done),
        }
    }
}

/// A run at a rate or for a time, whose bar follows the clock: it fills as the schedule's time
/// passes, so its ETA is the schedule's end, and it counts requests done beside it.
#[derive(Debug, Clone)]
pub struct Timed {
    /// How long the run schedules requests for.
    pub length: Duration,
    /// The rate, when it ramps: the bar shows the current target.
    pub ramp: Option<slowlab_client::Rate>,
}

/// The bar, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
    counts: Arc<Counts>,
}

impl Progress {
    /// A bar for `total` requests, if `wanted` and stderr is a terminal; `color` picks the style.
    /// Must be called inside a tokio runtime: a task redraws the bar.
    pub fn new(total: usize, wanted: bool, color: bool, control: &Control) -> Progress {
        Progress::maybe(total, None, wanted, color, control)
    }

    /// A bar for a run at a rate or for a time ([`Timed`]), if `wanted` and stderr is a terminal.
    pub fn timed(timed: Timed, wanted: bool, color: bool, control: &Control) -> Progress {
        Progress::maybe(0, Some(timed), wanted, color, control)
    }

    fn maybe(
        total: usize,
        timed: Option<Timed>,
        wanted: bool,
        color: bool,
        control: &Control,
    ) -> Progress {
        if !(wanted && io::stderr().is_terminal()) {
            return Progress {
                bar: None,
                counts: Arc::default(),
            };
        }
        let target = ProgressDrawTarget::stderr_with_hz(REDRAWS_PER_SECOND);
        match timed {
            Some(timed) => Progress::timed_on(timed, color, control, target),
            None => Progress::drawn_on(total, color, control, target),
        }
    }

    /// A bar that fills with the schedule's time, drawn on `target`.
    fn timed_on(
        timed: Timed,
        color: bool,
        control: &Control,
        target: ProgressDrawTarget,
    ) -> Progress {
        let template = if color {
            "{elapsed_precise} [{bar:30.cyan/blue}] {done} done {rate}eta {eta} \
             in flight {in_flight}, errors {errors}"
        } else {
            "{elapsed_precise} [{bar:30}] {done} done {rate}eta {eta} \
             in flight {in_flight}, errors {errors}"
        };
        let counts = Arc::<Counts>::default();
        let figures = {
            let counts = Arc::clone(&counts);
            let control = control.clone();
            move || {
                Snapshot::new(
                    u64::MAX,
                    control.started() as u64,
                    counts.done.load(Ordering::Relaxed),
                    counts.errors.load(Ordering::Relaxed),
                )
            }
        };
        let (done, in_flight, errors) = (figures.clone(), figures.clone(), figures);
        let style = ProgressStyle::with_template(template)
            .expect("the template is valid")
            .progress_chars("=> ")
            .with_key(
                "done",
                move |_: &ProgressState, out: &mut dyn fmt::Write| {
                    let _ = write!(out, "{}", done().done);
                },
            )
            .with_key(
                "rate",
                move |state: &ProgressState, out: &mut dyn fmt::Write| {
                    if let Some(rate) = &timed.ramp {
                        let now = rate.at(state.elapsed());
                        let _ = write!(out, "target {now:.0}/s ");
                    }
                },
            )
            .with_key(
                "in_flight",
                move |_: &ProgressState, out: &mut dyn fmt::Write| {
                    let _ = write!(out, "{}", in_flight().in_flight);
                },
            )
            .with_key(
                "errors",
                move |_: &ProgressState, out: &mut dyn fmt::Write| {
                    let _ = write!(out, "{}", errors().errors);
                },
            );
        let millis = u64::try_from(timed.length.as_millis()).unwrap_or(u64::MAX);
        let bar = ProgressBar::with_draw_target(Some(millis), ProgressDrawTarget::hidden())
            .with_style(style);
        tokio::spawn(redraw(bar.clone(), target, Arc::clone(&counts), true));
        Progress {
            bar: Some(bar),
            counts,
        }
    }

    /// A bar drawn on `target` once the run has lasted [`SHOW_AFTER`].
    fn drawn_on(
        total: usize,
        color: bool,
        control: &Control,
        target: ProgressDrawTarget,
    ) -> Progress {
        let template = if color {
            "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} {per_sec:0} eta {eta} \
             in flight {in_flight}, errors {errors}"
        } else {
            "{elapsed_precise} [{bar:30}] {pos}/{len} {per_sec:0} eta {eta} \
             in flight {in_flight}, errors {errors}"
        };
        let counts = Arc::<Counts>::default();
        // The figures are read as the bar is drawn, from the position it shows: one draw per
        // redraw, and nothing to fall out of step.
        let snapshot = {
            let counts = Arc::clone(&counts);
            let control = control.clone();
            move |state: &ProgressState| {
                Snapshot::new(
                    state.len().unwrap_or_default(),
                    control.started() as u64,
                    state.pos(),
                    counts.errors.load(Ordering::Relaxed),
                )
            }
        };
        let in_flight = snapshot.clone();
        let style = ProgressStyle::with_template(template)
            .expect("the template is valid")
            .progress_chars("=> ")
            .with_key(
                "in_flight",
                move |state: &ProgressState, out: &mut dyn fmt::Write| {
                    let _ = write!(out, "{}", in_flight(state).in_flight);
                },
            )
            .with_key(
                "errors",
                move |state: &ProgressState, out: &mut dyn fmt::Write| {
                    let _ = write!(out, "{}", snapshot(state).errors);
                },
            );
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::hidden())
            .with_style(style);
        tokio::spawn(redraw(bar.clone(), target, Arc::clone(&counts), false));
        Progress {
            bar: Some(bar),
            counts,
        }
    }

    /// Counts an outcome; the bar shows it at its next redraw.
    pub fn outcome(&self, outcome: &Outcome) {
        if self.bar.is_some() {
            if !outcome.is_ok() {
                self.counts.errors.fetch_add(1, Ordering::Relaxed);
            }
            self.counts.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `out`, for text that shares the terminal with the bar: see [`BesideBar`].
    pub fn beside<W: Write>(&self, out: W, out_is_terminal: bool) -> BesideBar<W> {
        BesideBar {
            out,
            bar: self.bar.clone().filter(|_| out_is_terminal),
            pending: Vec::new(),
            written: None,
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Shows the bar once the run has lasted a moment, then redraws it with fresh figures at most
/// [`REDRAWS_PER_SECOND`] times a second until it is finished.
///
/// `by_time`: the bar's position is the milliseconds elapsed (a [`Timed`] bar), not the count
/// of requests done.
async fn redraw(bar: ProgressBar, target: ProgressDrawTarget, counts: Arc<Counts>, by_time: bool) {
    let began = Instant::now();
    tokio::time::sleep(SHOW_AFTER).await;
    if bar.is_finished() {
        return;
    }
    bar.set_draw_target(target);
    let mut every = tokio::time::interval(redraw_every());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !bar.is_finished() {
        every.tick().await;
        // Draws, at most as often as the target allows.
        let position = if by_time {
            let millis = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
            millis.min(bar.length().unwrap_or(u64::MAX))
        } else {
            counts.done.load(Ordering::Relaxed)
        };
        bar.set_position(position);
    }
}

/// A writer for output that shares the terminal with the bar (text to a terminal stdout).
///
/// Text is held until flushed; a flush moves the bar out of the way, writes, and lets it come
/// back. While the bar is shown, flushes reach the terminal at most [`REDRAWS_PER_SECOND`] times
/// a second (the rest wait for the next), so a line per outcome cannot make the bar redraw per
/// outcome. Without a bar, or once it is finished, everything goes straight through.
pub struct BesideBar<W: Write> {
    out: W,
    bar: Option<ProgressBar>,
    pending: Vec<u8>,
    /// When held text last reached the terminal.
    written: Option<Instant>,
}

impl<W: Write> BesideBar<W> {
    /// The bar, while it is on the terminal.
    fn showing(&self) -> Option<&ProgressBar> {
        self.bar
            .as_ref()
            .filter(|bar| !bar.is_finished() && !bar.is_hidden())
    }

    /// Writes what is held, moving the bar out of the way.
    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return self.out.flush();
        }
        let (out, pending) = (&mut self.out, &self.pending);
        let mut write = || {
            out.write_all(pending)?;
            out.flush()
        };
        let result = match &self.bar {
            Some(bar) if !bar.is_finished() && !bar.is_hidden() => bar.suspend(write),
            _ => write(),
        };
        self.pending.clear();
        self.written = Some(Instant::now());
        result
    }
}

impl<W: Write> Write for BesideBar<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.showing().is_none() {
            // No bar in the way (yet, or any more): what was held goes first.
            if !self.pending.is_empty() {
                self.write_pending()?;
            }
            return self.out.write(buf);
        }
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.bar.is_none() {
            return self.out.flush();
        }
        let too_soon = self.showing().is_some()
            && self.written.is_some_and(|at| at.elapsed() < redraw_every());
        if too_soon {
            return Ok(());
        }
        self.write_pending()
    }
}

impl<W: Write> Drop for BesideBar<W> {
    fn drop(&mut self) {
        let _ = self.write_pending();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use indicatif::TermLike;
    use slowlab_client::{ErrorKind, FetchError};

    use super::*;

    #[test]
    fn in_flight_never_goes_stale_nor_past_the_total() {
        // Everything done: nothing in flight, whatever began.
        assert_eq!(Snapshot::new(3000, 3000, 3000, 0).in_flight, 0);
        // One done of four, all four begun: three in flight, not four.
        assert_eq!(Snapshot::new(4, 4, 1, 0).in_flight, 3);
        // Outcomes written for requests that never began (a cancel): none in flight.
        let cancelled = Snapshot::new(10, 4, 10, 6);
        assert_eq!((cancelled.done, cancelled.in_flight), (10, 0));
        // Counts read at different instants cannot add up past the total.
        for (started, done) in [(10, 0), (10, 3), (7, 9), (10, 12)] {
            let s = Snapshot::new(10, started, done, 0);
            assert!(s.done + s.in_flight <= s.total, "{s:?}");
        }
    }

    /// A terminal that counts the frames drawn on it (each ends with a flush) and keeps the
    /// last line.
    #[derive(Debug, Default, Clone)]
    struct Screen {
        frames: Arc<Mutex<(usize, String)>>,
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, line: &str) -> io::Result<()> {
            self.write_str(line)
        }
        fn write_str(&self, text: &str) -> io::Result<()> {
            if !text.trim().is_empty() {
                self.frames.lock().unwrap().1 = text.to_owned();
            }
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            self.frames.lock().unwrap().0 += 1;
            Ok(())
        }
    }

    fn outcome(index: usize, ok: bool) -> Outcome {
        let error = FetchError::new(ErrorKind::Refused, "nobody home");
        let mut outcome = Outcome::unfinished(index, Duration::ZERO, error);
        if ok {
            outcome.result = Ok(slowlab_client::Reply {
                status: 200,
                body: Default::default(),
                time_elapsed: None,
            });
        }
        outcome
    }

    /// Outcomes as fast as they come, each with a line printed beside the bar: the frames drawn
    /// follow the clock, not the outcomes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redraws_follow_the_clock_not_the_outcomes() {
        let screen = Screen::default();
        let target =
            ProgressDrawTarget::term_like_with_hz(Box::new(screen.clone()), REDRAWS_PER_SECOND);
        let total = 200_000;
        let progress = Progress::drawn_on(total, false, &Control::new(), target);
        let mut lines = progress.beside(Vec::new(), true);
        let began = Instant::now();
        // Let the bar appear, then keep it busy for a while.
        tokio::time::sleep(SHOW_AFTER + Duration::from_millis(100)).await;
        let mut index = 0;
        while began.elapsed() < SHOW_AFTER + Duration::from_millis(900) && index < total {
            for _ in 0..100 {
                progress.outcome(&outcome(index, index % 10 != 0));
                writeln!(lines, "line {index}").unwrap();
                lines.flush().unwrap();
                index += 1;
            }
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (frames, last) = screen.frames.lock().unwrap().clone();
        let seconds = began.elapsed().as_secs_f64();
        let most = (seconds * f64::from(REDRAWS_PER_SECOND) * 3.0) as usize + 10;
        assert!(index > 1000, "enough outcomes to tell: {index}");
        assert!(
            frames <= most,
            "{frames} frames for {index} outcomes in {seconds:.1} s (at most {most})"
        );
        assert!(frames > 0, "the bar was drawn");
        assert!(last.contains("in flight"), "{last}");
        assert!(last.contains(", errors "), "{last}");
        assert!(!last.contains(", errors 0"), "one in ten failed: {last}");
        assert!(last.contains("/s"), "requests per second: {last}");
        assert!(last.contains("eta"), "{last}");
        progress.finish();
        drop(lines);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timed_bar_fills_with_the_clock_and_shows_the_ramps_target() {
        let screen = Screen::default();
        let target =
            ProgressDrawTarget::term_like_with_hz(Box::new(screen.clone()), REDRAWS_PER_SECOND);
        // A ramp from 0 to 1000/s over 2 s: after about 0.6 s the target is about 300/s.
        let timed = Timed {
            length: Duration::from_secs(2),
            ramp: Some(slowlab_client::Rate::parse("0,1000@2s").unwrap()),
        };
        let progress = Progress::timed_on(timed, false, &Control::new(), target);
        for index in 0..7 {
            progress.outcome(&outcome(index, true));
        }
        tokio::time::sleep(SHOW_AFTER + Duration::from_millis(300)).await;
        let (frames, last) = screen.frames.lock().unwrap().clone();
        assert!(frames > 0, "the bar was drawn");
        assert!(last.contains("7 done"), "{last}");
        let target: f64 = last
            .split("target ")
            .nth(1)
            .and_then(|rest| rest.split("/s").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no target rate: {last}"));
        assert!((200.0..=900.0).contains(&target), "{last}");
        // Filled by time, not by requests: a few tenths of the 2 s, whatever the count.
        assert!(last.contains('='), "{last}");
        assert!(last.contains("eta"), "{last}");
        progress.finish();
    }

    #[test]
    fn text_beside_no_bar_goes_straight_through() {
        let progress = Progress {
            bar: None,
            counts: Arc::default(),
        };
        let mut out = progress.beside(Vec::new(), true);
        write!(out, "a").unwrap();
        assert_eq!(out.out, b"a");
    }

    #[tokio::test]
    async fn text_held_beside_the_bar_is_all_written_in_the_end() {
        let target =
            ProgressDrawTarget::term_like_with_hz(Box::new(Screen::default()), REDRAWS_PER_SECOND);
        let progress = Progress::drawn_on(10, false, &Control::new(), target);
        let mut shared = Vec::new();
        {
            let mut out = progress.beside(&mut shared, true);
            for n in 0..50 {
                writeln!(out, "{n}").unwrap();
                out.flush().unwrap();
            }
            progress.finish();
            writeln!(out, "end").unwrap();
            out.flush().unwrap();
        }
        let text = String::from_utf8(shared).unwrap();
        assert_eq!(text.lines().count(), 51);
        assert!(text.ends_with("49\nend\n"));
    }
}
